"""The `fastkv` command line: the real console script, run in a subprocess."""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

import fastkv
from fastkv import DataStore, _core

SCRIPT = shutil.which("fastkv", path=str(Path(sys.executable).parent)) or shutil.which("fastkv")
CLI = [SCRIPT] if SCRIPT else []


def fastkv_cli(
    *args: str, input: Optional[str] = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    assert CLI, "the fastkv console script is not installed"
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, input=input, timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    """An error is one line on stderr, nothing on stdout, never a traceback."""
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("fastkv: error: "), lines
    return lines[0]


@pytest.fixture
def cli_store(store_path: Path) -> Path:
    with DataStore(store_path) as db:
        db.create("user:1", {"name": "Ann", "langs": ["en", "fr"]})
        db.create("user:2", {"name": "Bob"})
        db.create("session:9", {"uid": 1}, ttl=3600)
    return store_path


# ---- every command -------------------------------------------------------------


def test_version_is_the_package_version() -> None:
    res = fastkv_cli("--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"fastkv {fastkv.__version__}"


ONE_SHOT = """
import sys
import fastkv.cli
before = set(sys.modules)
try:
    fastkv.cli.main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(set(sys.modules) - before)), file=sys.stderr)
"""


def test_a_one_shot_read_imports_only_what_it_needs(cli_store: Path) -> None:
    # a whole `fastkv read` is bounded by its imports: shutil (with bz2 and
    # lzma, through argparse's help formatter), the client, the server
    res = subprocess.run([sys.executable, "-c", ONE_SHOT, "read", "user:1", "--path",
                          str(cli_store)], capture_output=True, text=True, timeout=60)
    assert json.loads(res.stdout) == {"name": "Ann", "langs": ["en", "fr"]}
    imported = set(res.stderr.split())
    assert not imported & {"shutil", "bz2", "lzma", "http.client", "email", "asyncio",
                           "fastkv.client", "fastkv.serving", "redis"}, imported


def test_python_dash_m_is_the_same_command(cli_store: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "fastkv", "--path", str(cli_store), "keys"],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["session:9", "user:1", "user:2"]


def test_read_prints_the_value_as_json(cli_store: Path) -> None:
    res = fastkv_cli("--path", str(cli_store), "read", "user:1")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"name": "Ann", "langs": ["en", "fr"]}
    res = fastkv_cli("read", "session:9", "--path", str(cli_store), "--json")
    out = json.loads(res.stdout)
    assert out["key"] == "session:9" and out["value"] == {"uid": 1}
    assert 0 < out["expires_at_ms"] - time.time() * 1000 <= 3600 * 1000


def test_create_then_read_back_in_python(cli_store: Path) -> None:
    res = fastkv_cli("--path", str(cli_store), "create", "user:3", '{"name": "Cy", "n": [1, 2.5]}')
    assert res.returncode == 0, res.stderr
    assert "user:3" in res.stdout
    res = fastkv_cli("--path", str(cli_store), "--json", "create", "tmp", "-", "--ttl", "60",
                     input='{"from": "stdin"}')
    assert res.returncode == 0, res.stderr
    created = json.loads(res.stdout)
    assert created["created"] == "tmp" and created["expires_at_ms"] > time.time() * 1000
    with DataStore(cli_store) as db:
        assert db.read("user:3") == {"name": "Cy", "n": [1, 2.5]}
        assert db.read("tmp") == {"from": "stdin"}


def test_create_makes_a_missing_store(tmp_path: Path) -> None:
    path = tmp_path / "new" / "s.fkv"
    assert fastkv_cli("--path", str(path), "create", "k", "{}").returncode == 0
    with DataStore(path) as db:
        assert db.read("k") == {}


def test_delete(cli_store: Path) -> None:
    res = fastkv_cli("--path", str(cli_store), "delete", "user:2")
    assert res.returncode == 0, res.stderr
    with DataStore(cli_store) as db:
        assert "user:2" not in db and "user:1" in db


def test_keys_sorted_with_prefix_and_as_json(cli_store: Path) -> None:
    res = fastkv_cli("--path", str(cli_store), "keys", "--prefix", "user:")
    assert res.stdout.splitlines() == ["user:1", "user:2"]
    res = fastkv_cli("--path", str(cli_store), "keys", "--json")
    assert json.loads(res.stdout) == ["session:9", "user:1", "user:2"]
    res = fastkv_cli("--path", str(cli_store), "keys", "--prefix", "nothing")
    assert res.returncode == 0 and res.stdout == ""


def test_info_and_stats(cli_store: Path) -> None:
    res = fastkv_cli("--path", str(cli_store), "info")
    assert res.returncode == 0, res.stderr
    assert "live_keys" in res.stdout and str(cli_store) in res.stdout
    stats = json.loads(fastkv_cli("--path", str(cli_store), "stats", "--json").stdout)
    assert stats["live_keys"] == 3 and stats["path"] == str(cli_store)


def test_compact_reclaims_deleted_records(cli_store: Path) -> None:
    with DataStore(cli_store) as db:
        for i in range(200):
            db.create(f"junk{i}", {"pad": "x" * 100})
        for i in range(200):
            db.delete(f"junk{i}")
    before = cli_store.stat().st_size
    res = fastkv_cli("--path", str(cli_store), "--json", "compact")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["file_bytes_before"] == before and out["live_keys"] == 3
    assert cli_store.stat().st_size == out["file_bytes"] < before


def test_verify_and_repair_a_damaged_store(cli_store: Path) -> None:
    assert fastkv_cli("--path", str(cli_store), "verify").returncode == 0
    data = bytearray(cli_store.read_bytes())
    pos = data.index(b'"Ann"')
    data[pos + 1] ^= 0x01  # a flipped bit in the first record, not the tail
    cli_store.write_bytes(bytes(data))
    res = fastkv_cli("--path", str(cli_store), "--json", "verify")
    assert res.returncode == 1
    assert json.loads(res.stdout)["damaged_regions"] == 1
    assert json.loads(res.stderr)["error"] == "CorruptionError"
    res = fastkv_cli("--path", str(cli_store), "--json", "repair")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["salvaged_keys"] == 2 and Path(report["backup_path"]).exists()
    assert fastkv_cli("--path", str(cli_store), "verify").returncode == 0
    with DataStore(cli_store) as db:
        assert sorted(db) == ["session:9", "user:2"]


def test_default_path_comes_from_fastkv_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.fkv"
    monkeypatch.setenv("FASTKV_PATH", str(path))
    assert fastkv_cli("create", "k", '{"a": 1}').returncode == 0
    assert json.loads(fastkv_cli("read", "k").stdout) == {"a": 1}
    assert path.exists()


# ---- bad input: one line, the right exit code, the store unchanged -----------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["create", "k", "{bad"], "not valid JSON"),
        (["create", "k", "[1, 2]"], "object"),
        (["create", "k", '{"x": NaN}'], "k"),
        (["create", "k" * 33, "{}"], "33 characters; limit 32"),
        (["create", "k", "{}", "--ttl", "0"], "ttl"),
        (["create", "user:1", "{}"], "already exists"),
        (["read", "missing"], "not found"),
        (["read", "k" * 33], "limit 32"),
        (["delete", "missing"], "not found"),
        (["put", "k", "{bad"], "not valid JSON"),
        (["put", "user:1", "[1]"], "object"),
        (["put", "k" * 33, "{}"], "limit 32"),
        (["put", "user:1", "{}", "--ttl", "-3"], "ttl"),
        (["ttl", "missing"], "not found"),
        (["ttl", "k" * 33], "limit 32"),
        (["touch", "missing", "--ttl", "5"], "not found"),
        (["touch", "user:1", "--ttl", "0"], "ttl"),
        (["touch", "user:1", "--ttl", "315360001"], "ttl"),
    ],
)
def test_refusals_exit_1_with_one_line(cli_store: Path, args: list[str], needle: str) -> None:
    before = cli_store.read_bytes()
    res = fastkv_cli("--path", str(cli_store), *args)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert needle in one_line_error(res)
    assert res.stdout == ""
    assert cli_store.read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [[], ["bogus"], ["read"], ["create", "k"], ["create", "k", "{}", "--ttl", "abc"],
     ["keys", "--wat"], ["--wait", "soon", "keys"], ["import"],
     ["import", "f", "--on-conflict", "merge"], ["put", "k"], ["ttl"], ["touch", "k"],
     ["touch", "k", "--ttl", "5", "--persist"], ["touch", "k", "--ttl", "x"]],
)
def test_usage_errors_exit_2_with_one_line(cli_store: Path, args: list[str]) -> None:
    res = fastkv_cli("--path", str(cli_store), *args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "--help" in one_line_error(res)


def test_put_ttl_and_touch(cli_store: Path) -> None:
    path = str(cli_store)
    res = fastkv_cli("--path", path, "put", "user:1", '{"name": "Ann B"}', "--ttl", "90")
    assert res.returncode == 0 and res.stdout.strip() == "put 'user:1' (expires in 90 s)"
    res = fastkv_cli("--path", path, "ttl", "user:1")
    assert res.returncode == 0 and 85 < float(res.stdout) <= 90
    res = fastkv_cli("--path", path, "--json", "touch", "user:1", "--persist")
    assert res.returncode == 0
    assert json.loads(res.stdout) == {"touched": "user:1", "expires_at_ms": None}
    assert fastkv_cli("--path", path, "ttl", "user:1").stdout.strip() == "none"
    res = fastkv_cli("--path", path, "--json", "put", "new", "-", input='{"n": 1}')
    assert res.returncode == 0 and json.loads(res.stdout) == {"put": "new", "expires_at_ms": None}
    res = fastkv_cli("--path", path, "--json", "ttl", "session:9")
    left = json.loads(res.stdout)["ttl"]
    assert 3590 < left <= 3600
    with DataStore(cli_store) as db:
        assert db.read("user:1") == {"name": "Ann B"} and db.ttl("user:1") is None
        assert db.read("new") == {"n": 1}


def test_errors_as_json_with_the_class_name(cli_store: Path) -> None:
    res = fastkv_cli("--path", str(cli_store), "--json", "read", "missing")
    assert res.returncode == 1
    err = json.loads(res.stderr)
    assert err["error"] == "KeyNotFoundError" and "missing" in err["message"]


def test_commands_that_only_read_do_not_create_a_store(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "nope.fkv"
    for args in (["read", "k"], ["keys"], ["info"], ["delete", "k"], ["compact"],
                 ["verify"], ["repair"], ["export"]):
        res = fastkv_cli("--path", str(path), *args)
        assert res.returncode == 1, args
        assert "no store at" in one_line_error(res)
    assert not path.parent.exists()


def test_a_store_locked_by_another_process_is_refused(cli_store: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, fastkv; db = fastkv.DataStore(sys.argv[1]); print('ready', flush=True); "
         "sys.stdin.read()", str(cli_store)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        for args in (["read", "user:1"], ["create", "x", "{}"], ["verify"], ["import", "-"]):
            res = fastkv_cli("--path", str(cli_store), *args, input='{"key":"a","value":{}}\n')
            assert res.returncode == 1, args
            assert "lock" in one_line_error(res).lower()
    finally:
        holder.communicate("", timeout=30)
    # and once it is let go, the same command works
    assert fastkv_cli("--path", str(cli_store), "read", "user:1").returncode == 0


def test_wait_outlasts_a_short_hold(cli_store: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, fastkv; db = fastkv.DataStore(sys.argv[1]); print('ready', flush=True); "
         "time.sleep(0.5); db.close()", str(cli_store)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    res = fastkv_cli("--path", str(cli_store), "--wait", "20", "read", "user:1")
    holder.wait(timeout=30)
    assert res.returncode == 0, res.stderr


# ---- export / import ------------------------------------------------------------


def test_export_import_round_trip_of_100k_keys_keeps_values_and_deadlines(
    tmp_path: Path,
) -> None:
    src, dst, dump = tmp_path / "src.fkv", tmp_path / "dst.fkv", tmp_path / "dump.jsonl"
    rng = random.Random(5)
    with DataStore(src) as db:
        for i in range(100_000):
            value = {"i": i, "tag": "x" * rng.randrange(0, 40), "f": i / 7}
            db.create(f"key:{i}", value, ttl=rng.randrange(600, 86_400) if i % 2 else None)
        expected = {k: db.read_with_deadline(k) for k in db.keys()}
    res = fastkv_cli("--path", str(src), "export", str(dump))
    assert res.returncode == 0, res.stderr
    assert len(dump.read_bytes().splitlines()) == 100_000
    res = fastkv_cli("--path", str(dst), "--json", "import", str(dump))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["imported"] == 100_000 and report["skipped_expired"] == 0
    with DataStore(dst) as db:
        assert len(db) == 100_000
        for key, (value, deadline) in expected.items():
            assert db.read_with_deadline(key) == (value, deadline), key


def test_import_skips_keys_whose_deadline_has_passed(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    dump = tmp_path / "in.jsonl"
    dump.write_text(_jsonl(
        {"key": "gone", "value": {}, "expires_at_ms": now_ms - 1000},
        {"key": "kept", "value": {}, "expires_at_ms": now_ms + 3_600_000},
        {"key": "forever", "value": {}, "expires_at_ms": None},
    ))
    res = fastkv_cli("--path", str(tmp_path / "d.fkv"), "--json", "import", str(dump))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["skipped_expired"] == 1
    with DataStore(tmp_path / "d.fkv") as db:
        assert sorted(db) == ["forever", "kept"]
        assert db.read_with_deadline("kept")[1] == now_ms + 3_600_000


def test_export_to_stdout_and_import_from_stdin(cli_store: Path, tmp_path: Path) -> None:
    res = fastkv_cli("--path", str(cli_store), "export")
    assert res.returncode == 0
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["key"] for line in lines] == ["session:9", "user:1", "user:2"]
    assert "expires_at_ms" in lines[0] and "expires_at_ms" not in lines[1]
    dst = tmp_path / "copy.fkv"
    res = fastkv_cli("--path", str(dst), "import", "-", input=res.stdout)
    assert res.returncode == 0, res.stderr
    with DataStore(dst) as db, DataStore(cli_store) as orig:
        assert {k: db.read_with_deadline(k) for k in db} == {
            k: orig.read_with_deadline(k) for k in orig
        }


def _jsonl(*rows: Any) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


@pytest.mark.parametrize(
    "bad_line, needle",
    [
        ("{not json", "not valid JSON"),
        ('["key", "value"]', '"key" and "value"'),
        ('{"key": "k"}', '"key" and "value"'),
        ('{"key": "k", "value": {}, "colour": 1}', "unknown field"),
        ('{"key": "' + "k" * 33 + '", "value": {}}', "limit 32"),
        ('{"key": "k", "value": "{}"}', "must be a JSON object"),
        ('{"key": "k", "value": {"big": "' + "x" * 17_000 + '"}}', "16,384"),
        ('{"key": "k", "value": {}, "expires_at_ms": "soon"}', "expires_at_ms"),
        ('{"key": "a", "value": {}}', "also on line 1"),
    ],
)
def test_a_bad_line_imports_nothing_and_names_its_line(
    tmp_path: Path, bad_line: str, needle: str
) -> None:
    dst, dump = tmp_path / "dst.fkv", tmp_path / "in.jsonl"
    dump.write_text(_jsonl({"key": "a", "value": {"n": 1}}, bad_line))
    res = fastkv_cli("--path", str(dst), "import", str(dump))
    assert res.returncode == 1
    line = one_line_error(res)
    assert "line 2" in line and needle in line
    if dst.exists():
        with DataStore(dst) as db:
            assert len(db) == 0


def test_import_conflicts_fail_skip_or_replace(cli_store: Path, tmp_path: Path) -> None:
    dump = tmp_path / "in.jsonl"
    dump.write_text(_jsonl({"key": "new", "value": {}}, {"key": "user:1", "value": {"v": 2}}))
    res = fastkv_cli("--path", str(cli_store), "import", str(dump))
    assert res.returncode == 1 and "already in the store" in one_line_error(res)
    with DataStore(cli_store) as db:
        assert "new" not in db  # nothing was imported
    res = fastkv_cli("--path", str(cli_store), "--json", "import", str(dump), "--on-conflict", "skip")
    assert json.loads(res.stdout)["skipped_existing"] == 1
    with DataStore(cli_store) as db:
        assert db.read("user:1") == {"name": "Ann", "langs": ["en", "fr"]} and "new" in db
        db.delete("new")
    res = fastkv_cli("--path", str(cli_store), "--json", "import", str(dump),
                     "--on-conflict", "replace")
    assert json.loads(res.stdout)["replaced"] == 1
    with DataStore(cli_store) as db:
        assert db.read("user:1") == {"v": 2}


def test_import_into_a_full_store_says_how_far_it_got(tmp_path: Path) -> None:
    """The cap is an option of the opener (the CLI opens with the default),
    so this one drives the library's import into a store opened small."""
    from fastkv.cli import transfer

    dst, dump = tmp_path / "small.fkv", tmp_path / "in.jsonl"
    dump.write_text(_jsonl(*({"key": f"k{i}", "value": {"pad": "x" * 200}} for i in range(40))))

    with DataStore(dst, max_file_size=4096) as db, open(dump, "rb") as f:
        report = transfer.ImportReport()
        with pytest.raises(fastkv.StoreFullError):
            transfer.import_jsonl(db, f, report=report)
        assert 0 < report.imported < 40
        assert len(db) == report.imported


# ---- the progress bar ---------------------------------------------------------------


def _run_on_pty(*args: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; its output."""
    if sys.platform == "win32":
        pytest.skip("no pseudo-terminal on Windows (pty needs termios): the bar's "
                    "drawing is tested on POSIX, its counts by the tests beside this one")
    import pty

    assert CLI
    master, slave = pty.openpty()
    proc = subprocess.Popen([*CLI, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


@pytest.fixture
def big_store(store_path: Path) -> Path:
    with DataStore(store_path) as db:
        for i in range(20_000):
            db.create(f"k{i}", {"pad": "y" * 50})
        for i in range(0, 20_000, 2):
            db.delete(f"k{i}")
    return store_path


@pytest.mark.parametrize("command", ["export", "compact", "verify"])
def test_progress_bar_on_a_terminal(big_store: Path, tmp_path: Path, command: str) -> None:
    extra = [str(tmp_path / "out.jsonl")] if command == "export" else []
    code, screen = _run_on_pty("--path", str(big_store), command, *extra)
    assert code == 0, screen
    assert f"{command} [" in screen and "100%" in screen and "\r" in screen
    assert "#" * 10 in screen


@pytest.mark.parametrize("command", ["export", "compact", "verify"])
def test_no_progress_bar_when_piped(big_store: Path, tmp_path: Path, command: str) -> None:
    extra = [str(tmp_path / "out.jsonl")] if command == "export" else []
    res = fastkv_cli("--path", str(big_store), command, *extra)
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr + res.stdout and "%" not in res.stderr


def test_progress_bar_on_import_from_a_terminal(big_store: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    assert fastkv_cli("--path", str(big_store), "export", str(dump)).returncode == 0
    code, screen = _run_on_pty("--path", str(tmp_path / "copy.fkv"), "import", str(dump))
    assert code == 0, screen
    assert "import [" in screen and "10,000/10,000 keys" in screen


def test_core_progress_counts_the_bytes_of_the_file(big_store: Path) -> None:
    progress = _core.Progress()
    fastkv.verify(big_store, progress=progress)
    assert progress.total == progress.done == big_store.stat().st_size
