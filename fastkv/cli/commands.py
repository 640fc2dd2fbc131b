"""The ``fastkv`` command (also ``python -m fastkv``): look into and move a store.

Exit codes: 0 done; 1 the store said no (a key not found or already there,
a bad value, the store locked by another process, damage found); 2 the
command line itself is wrong. Errors are one line on stderr, never a
traceback; with ``--json`` they are a JSON object there instead.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from fastkv import _core
from fastkv._version import __version__
from fastkv.datastore import DataStore
from fastkv.errors import FastKVError, InvalidPathError, StoreIOError
from fastkv.locations import as_path, default_path, existing_store_path, url_scheme

TYPE_CHECKING = False  # typing stays unimported at run time (see locations.py)
if TYPE_CHECKING:
    from typing import IO, Any, Callable, NoReturn, Optional, Sequence, TypeVar

    T = TypeVar("T")

# transfer, recovery, progress and serving are imported by the commands that
# use them: a one-shot `fastkv read` pays only for what it runs.

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class _UsageError(Exception):
    pass


def _terminal_width() -> int:
    """shutil.get_terminal_size()'s columns, less the 2 argparse takes off."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _Formatter(argparse.HelpFormatter):
    """argparse's own, given the width it would find through shutil: it
    builds one for each add_argument (to check the metavar), and importing
    shutil (and with it bz2 and lzma) cost a one-shot command 3 ms."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_width() if width is None else width)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and the caller chooses the exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The whole command line, or, given argv that names a command, only
    that command (main() falls back to the whole one for its error
    messages): a one-shot `fastkv read` then skips most of the parser's
    construction, which costs more than the read."""
    named = None if argv is None else set(argv)
    if named is not None and not any(named.intersection((name, *aliases))
                                     for name, _, aliases, _ in _COMMAND_LINE):
        named = None  # no command named (--help, a typo): every one, by name
    parser = _Parser(
        prog="fastkv",
        description="Look into, change and move a fastkv store.",
        parents=[_common_options(argparse.SUPPRESS)],
        epilog="Exit codes: 0 done, 1 refused or not found, 2 bad command line.",
    )
    parser.set_defaults(path=None, json=False, wait=0.0, namespace="fastkv")
    parser.add_argument("--version", action="version", version=f"fastkv {__version__}")
    # prog given: argparse would otherwise build a help formatter to work it
    # out, which imports shutil (and with it bz2 and lzma)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                prog="fastkv")
    sub.required = True
    # the commands share one set of these options, apart from the top
    # parser's: its set_defaults changed the defaults of its own copies
    common = _common_options(argparse.SUPPRESS)
    for name, help, aliases, add_arguments in _COMMAND_LINE:
        if named is None or named.intersection((name, *aliases)):
            p = sub.add_parser(name, help=help, description=help, parents=[common],
                               aliases=list(aliases))
            add_arguments(p)
    return parser


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


def _key(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="KEY")


def _key_value_ttl(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="JSON")
    p.add_argument("--ttl", type=int, metavar="SECONDS", help="expire after this many seconds")


def _touch(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="KEY")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--ttl", type=int, metavar="SECONDS", help="expire after this many seconds")
    when.add_argument("--persist", action="store_true", help="never expire")


def _keys(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prefix", default="", help="only keys that start with this")


def _repair(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-backup", action="store_true",
                   help="do not keep the damaged file beside the repaired one")


def _backup(p: argparse.ArgumentParser) -> None:
    p.add_argument("dest", metavar="DEST", help="the new file (must not exist)")


def _export(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="where to write (default: stdout)")


def _import(p: argparse.ArgumentParser) -> None:
    from fastkv.cli import transfer

    p.add_argument("file", metavar="FILE", help="the file to read ('-': stdin)")
    p.add_argument("--on-conflict", choices=transfer.CONFLICT_POLICIES, default="fail",
                   help="a key the store already holds: fail (default; nothing is "
                        "imported), skip it, or replace it")


def _serve(p: argparse.ArgumentParser) -> None:
    from fastkv.serving.limits import Limits

    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0: any free one)")
    p.add_argument("--token", default=None,
                   help="require 'Authorization: Bearer TOKEN' over HTTP and 'AUTH TOKEN' over "
                        "the Redis protocol (default: $FASTKV_TOKEN; "
                        "the variable keeps it out of the process list)")
    p.add_argument("--max-file-size", type=int, default=None, metavar="BYTES",
                   help="cap of the store file (default and most: 1 GiB)")
    p.add_argument("--durability", choices=("process", "fsync"), default="process",
                   help="when a write is acknowledged: 'process' once it is in the "
                        "kernel (survives a kill of the server), 'fsync' once it is "
                        "flushed to the disk (survives a power cut; concurrent clients' "
                        "writes share flushes) (default: process)")
    p.add_argument("--resp-port", type=int, default=None, metavar="PORT",
                   help="also speak the Redis protocol (RESP2/RESP3) on this port "
                        "(0: any free one; default: off)")
    defaults = Limits()
    p.add_argument("--max-connections", type=int, default=defaults.max_connections,
                   metavar="N", help="connections open at once, both protocols together "
                   f"(default: {defaults.max_connections:,})")
    p.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s,
                   metavar="SECONDS", help="close a connection silent this long "
                   f"(default: {defaults.idle_timeout_s:g})")


# name, help, aliases, and what adds its arguments
_COMMAND_LINE: list[tuple[str, str, tuple[str, ...], Callable[[argparse.ArgumentParser], None]]] = [
    ("info", "counters of the store: keys, file and index bytes", ("stats",), _no_arguments),
    ("read", "print the value of KEY", (), _key),
    ("create", "store JSON (an object; '-' reads it from stdin) under a new KEY", (),
     _key_value_ttl),
    ("put", "store JSON under KEY, replacing its value and expiry if it is held", (),
     _key_value_ttl),
    ("ttl", "print the seconds KEY has left, or 'none' if it never expires", (), _key),
    ("touch", "give KEY a new expiry counted from now, keeping its value", (), _touch),
    ("delete", "remove KEY", (), _key),
    ("keys", "list the live keys, sorted", (), _keys),
    ("compact", "rewrite the file with only the live records", (), _no_arguments),
    ("verify", "check every record's checksum; exit 1 if any damage is found", (),
     _no_arguments),
    ("repair", "salvage the intact records of a damaged store", (), _repair),
    ("backup", "copy the store as of one moment to DEST, a store of its own, while "
               "others go on writing", (), _backup),
    ("export", "write every live key as JSON Lines, with absolute expiry deadlines", (),
     _export),
    ("import", "create the keys of a JSON Lines file made by export", (), _import),
    ("serve", "serve the store over HTTP/1.1, and the Redis protocol with --resp-port "
              "(see the README)", (), _serve),
]


def _common_options(default: Any) -> "_Parser":
    """--path, --json, --wait: accepted before or after the command. Left
    unset unless given (default SUPPRESS), so a value given before the
    command is not reset by the command's parser."""
    common = _Parser(add_help=False)
    common.add_argument("--path", "--datastore", dest="path", default=default,
                        metavar="PATH", help=_PathHelp("the store: a file, or a redis://, "
                        "rediss:// or unix:// URL of a Redis server (default: {})"))
    common.add_argument("--namespace", default=default, metavar="NS",
                        help="with a Redis URL: keys live in Redis as NS:key (default: fastkv)")
    common.add_argument("--json", action="store_true", default=default,
                        help="machine-readable output (and errors) as JSON")
    common.add_argument("--wait", type=float, default=default, metavar="SECONDS",
                        help="wait this long for a store another process holds (default: 0)")
    return common


class _PathHelp(str):
    """A help text that names the default store location only when help is
    printed: finding it imports platformdirs, which every other run skips.
    (argparse expands a help text with `%`, so that is where it is filled.)"""

    def __mod__(self, params: Any) -> str:
        return str.__mod__(self.format(_default_shown()), params)


def _default_shown() -> str:
    try:
        return str(default_path())
    except Exception:  # platformdirs missing or broken: help must still print
        return "$FASTKV_PATH or the per-user data directory"


# ---- commands ------------------------------------------------------------------


def cmd_info(args: argparse.Namespace, out: "_Output") -> int:
    with _open(args) as db:
        stats = db.stats()
    if "path" in stats:
        stats["path"] = str(stats["path"])
    out.mapping(stats)
    return EXIT_OK


def cmd_read(args: argparse.Namespace, out: "_Output") -> int:
    with _open(args) as db:
        value, deadline = db.read_with_deadline(args.key)
    if out.json:
        out.json_line({"key": args.key, "value": value, "expires_at_ms": deadline})
    else:
        out.text(json.dumps(value, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_create(args: argparse.Namespace, out: "_Output") -> int:
    return _write(args, out, "created")


def cmd_put(args: argparse.Namespace, out: "_Output") -> int:
    return _write(args, out, "put")


def _write(args: argparse.Namespace, out: "_Output", done: str) -> int:
    text = sys.stdin.read() if args.value == "-" else args.value
    with _open(args, create=True) as db:
        (db.create if done == "created" else db.put)(args.key, text, ttl=args.ttl)
        if out.json:  # the deadline the store computed, for scripts
            out.json_line({done: args.key,
                           "expires_at_ms": db.read_with_deadline(args.key)[1]})
            return EXIT_OK
    after = f" (expires in {args.ttl:,} s)" if args.ttl else ""
    out.text(f"{done} {args.key!r}{after}")
    return EXIT_OK


def cmd_ttl(args: argparse.Namespace, out: "_Output") -> int:
    with _open(args) as db:
        left = db.ttl(args.key)
    if out.json:
        out.json_line({"key": args.key, "ttl": left})
    else:
        out.text("none" if left is None else f"{left:.3f}")
    return EXIT_OK


def cmd_touch(args: argparse.Namespace, out: "_Output") -> int:
    ttl = None if args.persist else args.ttl
    with _open(args) as db:
        db.touch(args.key, ttl)
        deadline = db.read_with_deadline(args.key)[1]
    if out.json:
        out.json_line({"touched": args.key, "expires_at_ms": deadline})
    else:
        out.text(f"touched {args.key!r} "
                 + ("(never expires)" if ttl is None else f"(expires in {ttl:,} s)"))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, out: "_Output") -> int:
    with _open(args) as db:
        db.delete(args.key)
    if out.json:
        out.json_line({"deleted": args.key})
    else:
        out.text(f"deleted {args.key!r}")
    return EXIT_OK


def cmd_keys(args: argparse.Namespace, out: "_Output") -> int:
    with _open(args) as db:
        keys = sorted(db.keys(args.prefix))
    if out.json:
        out.json_line(keys)
    else:
        out.lines(keys)
    return EXIT_OK


def cmd_compact(args: argparse.Namespace, out: "_Output") -> int:
    if args.url:
        _open(args).close()  # the server must be there
        out.text("nothing to compact: a Redis server reclaims deleted keys itself")
        return EXIT_OK
    with _open(args) as db:
        before = db.stats()["file_bytes"]
        _run_with_bar("compact", lambda pr: db.compact(pr))
        after = db.stats()
    result = {"file_bytes_before": before, "file_bytes": after["file_bytes"],
              "live_keys": after["live_keys"]}
    if out.json:
        out.json_line(result)
    else:
        out.text(f"compacted {args.resolved}: {before:,} -> {after['file_bytes']:,} bytes, "
                 f"{after['live_keys']:,} live keys")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, out: "_Output") -> int:
    with _open(args) as db:
        dest = _run_with_bar("backup", lambda pr: db.backup(args.dest, pr))
    if out.json:
        out.json_line({"backup": str(dest), "bytes": os.path.getsize(dest)})
    else:
        out.text(f"backed up {args.resolved} to {dest} ({os.path.getsize(dest):,} bytes)")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, out: "_Output") -> int:
    from fastkv import recovery

    path = _existing(args, "verify")
    report = _run_with_bar("verify", lambda pr: recovery.verify(path, progress=pr))
    out.mapping(report)
    if not report["ok"]:
        out.error(f"{path}: damage found; 'fastkv repair' salvages the intact records",
                  "CorruptionError")
        return EXIT_REFUSED
    return EXIT_OK


def cmd_repair(args: argparse.Namespace, out: "_Output") -> int:
    from fastkv import recovery

    path = _existing(args, "repair")
    report = _run_with_bar(
        "repair", lambda pr: recovery.repair(path, backup=not args.no_backup, progress=pr)
    )
    out.mapping(report)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, out: "_Output") -> int:
    from fastkv.cli import transfer
    from fastkv.cli.progress import ProgressBar

    with _open(args) as db:
        total = len(db)
        with _Stream(args.file, "wb") as sink, ProgressBar("export", total, "keys") as bar:
            n = transfer.export_jsonl(db, sink, progress=bar.update)
    where = "stdout" if args.file == "-" else args.file
    out.summary({"exported": n, "file": where},
                f"exported {n:,} key{'' if n == 1 else 's'} to {where}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace, out: "_Output") -> int:
    from fastkv.cli import transfer
    from fastkv.cli.progress import ProgressBar

    report = transfer.ImportReport()
    with _Stream(args.file, "rb") as src:
        entries = transfer.read_jsonl(src)  # a bad line stops us before the store opens
    with _open(args, create=True) as db, ProgressBar("import", len(entries), "keys") as bar:
        try:
            transfer.apply_import(db, entries, on_conflict=args.on_conflict,
                                  progress=bar.update, report=report)
        except FastKVError as e:
            if report.imported:
                raise type(e)(f"{e} (after {report.imported:,} keys were imported)") from None
            raise
    fields = vars(report)
    out.summary(fields, ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in fields.items()))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: "_Output") -> int:
    from fastkv import serving  # the servers only for this command
    from fastkv.serving.limits import Limits

    token = args.token if args.token is not None else os.environ.get("FASTKV_TOKEN") or None
    for flag, port in (("--port", args.port), ("--resp-port", args.resp_port)):
        if port is not None and not 0 <= port <= 65535:
            raise _UsageError(f"{flag} must be 0 to 65535, not {port}")
    if args.max_connections < 1 or not args.idle_timeout > 0:
        raise _UsageError("--max-connections and --idle-timeout must be positive")
    limits = Limits(max_connections=args.max_connections, idle_timeout_s=args.idle_timeout)

    def ready(urls: str) -> None:
        guard = "a token" if token else "no token"
        if args.durability == "fsync":
            guard += "; writes answered once flushed"
        shown = " and ".join(urls.split())
        sys.stderr.write(f"fastkv: serving {args.resolved} at {shown} ({guard}); "
                         "Ctrl-C or SIGTERM stops it\n")
        if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
            sys.stderr.write("fastkv: warning: listening beyond this machine with no token\n")
        sys.stderr.flush()

    path = _existing(args, "serve", must_exist=False)
    try:
        serving.serve(path, args.host, args.port, token, lock_timeout=args.wait,
                      max_file_size=args.max_file_size, ready=ready, resp_port=args.resp_port,
                      limits=limits, durability=args.durability)
    except OSError as e:
        if isinstance(e, FastKVError):
            raise
        why = _bind_failure(e)
        err = StoreIOError(f"cannot listen on {args.host}:{args.port}: {why}")
        err.errno = e.errno
        raise err from None
    sys.stderr.write("fastkv: stopped; the store is closed\n")
    return EXIT_OK


def _bind_failure(e: OSError) -> str:
    """Why a listener could not be bound, in the same words on every system
    (Windows gives socket errors as WSA codes, which os.strerror does not
    know, and refuses a port another program holds exclusively as access
    denied)."""
    code = getattr(e, "winerror", None) or e.errno
    if code in (errno.EADDRINUSE, 10048, 10013):  # WSAEADDRINUSE, WSAEACCES
        return "Address already in use"
    return os.strerror(e.errno) if e.errno else (e.strerror or str(e))


COMMANDS: dict[str, Callable[[argparse.Namespace, "_Output"], int]] = {
    "info": cmd_info, "stats": cmd_info, "read": cmd_read, "create": cmd_create,
    "put": cmd_put, "ttl": cmd_ttl, "touch": cmd_touch,
    "delete": cmd_delete, "keys": cmd_keys, "compact": cmd_compact, "verify": cmd_verify,
    "repair": cmd_repair, "backup": cmd_backup, "export": cmd_export, "import": cmd_import, "serve": cmd_serve,
}


# ---- plumbing ------------------------------------------------------------------


def _open(args: argparse.Namespace, create: bool = False) -> Any:
    """The store of --path: a DataStore, or a RedisStore for a URL. A file
    must exist unless the command creates keys (a typo in a path must not
    leave an empty store behind)."""
    if args.url:
        from fastkv.redis.store import RedisStore

        return RedisStore(args.url, namespace=args.namespace)
    if not create:
        existing_store_path(args.resolved)
    return DataStore(args.resolved, lock_timeout=args.wait)


def _existing(args: argparse.Namespace, command: str, must_exist: bool = True) -> Path:
    """The store file of a command that works on files only."""
    if args.url:
        raise _UsageError(f"'{command}' works on a store file, not on a server URL")
    return existing_store_path(args.resolved) if must_exist else Path(args.resolved)


def _run_with_bar(label: str, call: Callable[[Optional[_core.Progress]], T]) -> T:
    """Run a long core call; on a terminal, in a thread, drawing its progress."""
    import threading

    from fastkv.cli.progress import ProgressBar

    with ProgressBar(label, 0, "bytes") as bar:
        if not bar.enabled:
            return call(None)
        progress = _core.Progress()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = call(progress)
            except BaseException as e:  # handed to the main thread below
                box["error"] = e

        worker = threading.Thread(target=work, name=f"fastkv-{label}", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            bar.total = progress.total
            bar.update(progress.done)
        if "error" in box:
            raise box["error"]
        result: T = box["result"]
        return result


class _Stream:
    """A command's file argument: stdin or stdout for '-', else the named
    file, opened for reading ("rb", an import) or writing ("wb", an export)."""

    def __init__(self, name: str, mode: str) -> None:
        self.name, self.mode = name, mode
        self.file: Optional[IO[bytes]] = None

    def __enter__(self) -> IO[bytes]:
        writing = self.mode == "wb"
        if self.name == "-":
            return sys.stdout.buffer if writing else sys.stdin.buffer
        try:
            self.file = open(self.name, self.mode)
        except OSError as e:
            cls = StoreIOError if writing else InvalidPathError
            verb = "write" if writing else "read"
            err = cls(f"cannot {verb} {self.name}: {e.strerror}")
            err.errno = e.errno
            raise err from None
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
        elif self.mode == "wb":
            sys.stdout.buffer.flush()


class _Output:
    """Human text or JSON on stdout; errors on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.json = as_json

    def text(self, s: str) -> None:
        sys.stdout.write(s + "\n")

    def lines(self, items: Sequence[str]) -> None:
        if items:
            sys.stdout.write("\n".join(items) + "\n")

    def json_line(self, obj: Any) -> None:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")

    def mapping(self, d: dict[str, Any]) -> None:
        if self.json:
            self.json_line(d)
            return
        width = max(len(k) for k in d)
        for k, v in d.items():
            shown = v
            if isinstance(v, float):
                shown = f"{v:,.1f}"
            elif isinstance(v, int) and not isinstance(v, bool):
                shown = f"{v:,}"
            self.text(f"{k:<{width}}  {shown}")

    def summary(self, d: dict[str, Any], text: str) -> None:
        """A job's result: JSON on stdout with --json, else a line on stderr
        (stdout may be carrying the job's data)."""
        if self.json:
            self.json_line(d)
        else:
            sys.stderr.write(text + "\n")

    def error(self, message: str, kind: str) -> None:
        message = " ".join(message.split())  # one line, whatever the message held
        if self.json:
            sys.stderr.write(json.dumps({"error": kind, "message": message}) + "\n")
        else:
            sys.stderr.write(f"fastkv: error: {message}\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    out = _Output(as_json)
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        try:
            args = build_parser(words).parse_args(words)
        except _UsageError:  # said by the whole parser, which knows every command
            args = build_parser().parse_args(words)
        # Resolved without creating anything: a command that only reads must
        # not leave directories behind for a mistyped path.
        args.url = args.path if url_scheme(args.path) else None
        args.resolved = None if args.url else as_path(args.path)
        return COMMANDS[args.command](args, out)
    except _UsageError as e:
        out.error(str(e), "UsageError")
        return EXIT_USAGE
    except FastKVError as e:
        out.error(str(e), type(e).__name__)
        return EXIT_REFUSED
    except BrokenPipeError:  # `fastkv keys | head`: the reader had enough
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (no second error at exit)
        return EXIT_REFUSED
    except OSError as e:  # a file of the command's own (export target, import source)
        out.error(str(e), type(e).__name__)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
