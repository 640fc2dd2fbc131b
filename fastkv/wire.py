"""What travels between a fastkv server and its clients: which HTTP status
each error class is sent with, how the Client turns a status and an error
body back into the same exception a DataStore would raise, and the error
reply of the Redis protocol, which names the same classes.

An error body is ``{"error": CLASS, "message": TEXT}``; CLASS is the name of
a class in fastkv.errors, so a Client raises exactly what the server's
DataStore raised.
"""

from __future__ import annotations

from typing import Any

from fastkv import errors
from fastkv.errors import FastKVError

# Most specific first: a subclass must match before its base does.
STATUS_OF: tuple[tuple[type[FastKVError], int], ...] = (
    (errors.ValueTooLargeError, 413),
    (errors.InvalidKeyError, 400),
    (errors.InvalidValueError, 400),
    (errors.InvalidTTLError, 400),
    (errors.RequestError, 400),
    (errors.ConflictError, 409),  # before TransactionError, its base
    (errors.TransactionError, 400),
    (errors.KeyExistsError, 409),
    (errors.KeyNotFoundError, 404),  # KeyExpiredError too: gone is gone
    (errors.StoreFullError, 507),
    (errors.UnauthorizedError, 401),
    (errors.StoreClosedError, 503),
)

# Statuses the server sends for a request it cannot take at all.
METHOD_NOT_ALLOWED = 405
LENGTH_REQUIRED = 411
UNSUPPORTED_MEDIA_TYPE = 415


def refusal(status: int, message: str) -> errors.RequestError:
    """A RequestError for a request the server cannot take at all (no such
    endpoint, a wrong method, no length, a wrong content type), sent with
    its own HTTP status; its class and body are those of every error."""
    exc = errors.RequestError(message)
    exc.http_status = status  # type: ignore[attr-defined]
    return exc


def status_of(exc: FastKVError) -> int:
    own = getattr(exc, "http_status", None)
    if isinstance(own, int):
        return own
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 500  # damage or an I/O error on the server's disk


def resp_error(exc: FastKVError) -> str:
    """The text of the Redis-protocol error reply for exc: the same class
    names as the HTTP error bodies, after the code Redis clients expect."""
    if isinstance(exc, errors.UnauthorizedError):
        return f"NOAUTH {exc}"
    return f"ERR {type(exc).__name__}: {exc}"


def error_body(exc: BaseException) -> dict[str, str]:
    return {"error": type(exc).__name__, "message": str(exc)}


def exception_from(status: int, body: Any) -> FastKVError:
    """The exception a Client raises for an error response."""
    name = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        message = f"the server answered HTTP {status}"
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if isinstance(cls, type) and issubclass(cls, FastKVError):
        return cls(message)
    if status == 401:
        return errors.UnauthorizedError(message)
    if 400 <= status < 500:
        return errors.RequestError(message)
    return errors.StoreIOError(message)
