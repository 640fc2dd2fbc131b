"""Where a store lives: the one place that turns a location into a path or
a server URL.

A location is a path (str or os.PathLike; ``~`` expanded), ``None`` (the
default file: ``$FASTKV_PATH``, else ``default.fkv`` in the per-user data
directory), or a URL of a Redis-protocol server (``redis://``, ``rediss://``,
``unix://``). DataStore, verify/repair, the command line and
``fastkv.open`` all resolve locations here, so they agree on every case.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from fastkv.errors import ConfigError, InvalidPathError

# typing.TYPE_CHECKING without importing typing, which would cost `import
# fastkv` a tenth of its time; mypy reads a name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

    PathArg = Union[str, "os.PathLike[str]"]
    Location = Optional[PathArg]

__all__ = [
    "URL_SCHEMES",
    "DEFAULT_FILE_NAME",
    "default_path",
    "url_scheme",
    "as_path",
    "store_path",
    "existing_store_path",
    "redact",
]

# Schemes of the servers fastkv.RedisStore speaks to (redis-py's own).
URL_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_FILE_NAME = "default.fkv"

# "scheme://": RFC 3986 scheme characters. A Windows path ("C:\x") has no "//".
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def default_path() -> Path:
    """The store used when no path is given.

    ``$FASTKV_PATH`` if set, else ``default.fkv`` in the per-user data
    directory that platformdirs names (``~/.local/share/fastkv`` on Linux).
    """
    env = os.environ.get("FASTKV_PATH")
    if env:
        return Path(os.path.expanduser(env))
    import platformdirs  # only needed for the default location

    return platformdirs.user_data_path("fastkv", appauthor=False) / DEFAULT_FILE_NAME


def url_scheme(location: Location) -> Optional[str]:
    """The lower-cased scheme if location is a URL fastkv serves, None if it
    is a path. An unknown scheme is a ConfigError, not a file name."""
    if not isinstance(location, str):
        return None
    m = _URL.match(location)
    if m is None:
        return None
    scheme = m.group(1).lower()
    if scheme not in URL_SCHEMES:
        raise ConfigError(
            f"{redact(location)!r}: unknown location scheme {scheme!r}; a location is a "
            f"file path or a URL starting with {', '.join(s + '://' for s in URL_SCHEMES)}"
        )
    return scheme


def as_path(location: Location) -> Path:
    """The absolute path of a file location, symlinks resolved (compaction
    renames a new file over the real path), nothing created."""
    if location is None:
        raw = default_path()
    else:
        try:
            raw = Path(os.path.expanduser(os.fsdecode(os.fspath(location))))
        except TypeError:
            raise InvalidPathError(
                f"path must be a str or os.PathLike, not {type(location).__name__}"
            ) from None
    if "\x00" in str(raw):
        raise InvalidPathError(f"{str(raw)!r} holds a NUL character")
    try:
        return raw.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise InvalidPathError(f"cannot use {raw} as a store path: {exc}") from None


def store_path(location: Location) -> Path:
    """The path a DataStore opens: not a directory, parents created."""
    path = as_path(location)
    if path.is_dir():
        raise InvalidPathError(f"{path} is a directory, not a store file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidPathError(
            f"cannot create the directory {path.parent} for the store: {exc.strerror}"
        ) from None
    return path


def existing_store_path(location: Location) -> Path:
    """The path of a store file that must already exist (verify, repair, and
    the commands that only read: a typo must not leave an empty store)."""
    path = as_path(location)
    if path.is_dir():
        raise InvalidPathError(f"{path} is a directory, not a store file")
    # a replace stopped by a kill on Windows may have left the store only
    # under this name; the open puts it back in place (file_lock_win32.c)
    if not path.is_file() and not path.with_name(path.name + ".incoming").is_file():
        raise InvalidPathError(f"no store at {path}")
    return path


def redact(url: str) -> str:
    """url with any password replaced by ***, for messages and logs."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^@/]*):([^@/]*)@", r"\1\2:***@", url)


def __getattr__(name: str) -> object:
    """PathArg and Location (type aliases for annotations) for code that
    wants them at run time."""
    if name in ("PathArg", "Location"):
        from typing import Optional, Union

        path_arg = Union[str, "os.PathLike[str]"]
        return path_arg if name == "PathArg" else Optional[path_arg]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
