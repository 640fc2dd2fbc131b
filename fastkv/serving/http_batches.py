"""The HTTP endpoints for several keys at once and for transactions, each
run in a worker thread (they wait for the writer slot, and in fsync mode
for the flush). Bodies are JSON objects:

    POST /batch/get     {"keys": [K, ...]}                       {"values": {K: V}}
    POST /batch/put     {"items": {K: V, ...}, "ttl": N | null}   {"written": n}
    POST /batch/delete  {"keys": [K, ...]}                       {"deleted": n}
    POST /transaction   {"expect": {K: V | null, ...},
                         "ops": [{"op": "create" | "put", "key": K, "value": V, "ttl": N},
                                 {"op": "touch", "key": K, "ttl": N | null},
                                 {"op": "delete", "key": K}, ...]}  {"committed": n}

/batch/put and /batch/delete are one atomic group each. /transaction is
optimistic, for a client that read keys earlier (fastkv.Client's
transaction): inside one DataStore transaction, each expected key must
still hold exactly the value given (null: not live), else 409 with
ConflictError; then the operations run in order, and the first refused one
answers with its error; either way nothing is written. Values are compared
as the compact JSON the store keeps, so 1 and true differ.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from fastkv import _core
from fastkv.datastore import DataStore
from fastkv.errors import ConflictError, RequestError
from fastkv.transaction import Transaction

__all__ = ["ROUTES"]


def _object(raw: bytes, allowed: set[str]) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    extra = set(body) - allowed
    if extra:
        raise RequestError(f"unknown fields in the body: {', '.join(sorted(extra))}; "
                           f"this endpoint takes {', '.join(sorted(allowed))}")
    return body


def _keys(body: dict[str, Any]) -> list[Any]:
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise RequestError('the body must hold "keys": a list of keys')
    return keys


def get_many(db: DataStore, raw: bytes) -> dict[str, Any]:
    return {"values": db.get_many(_keys(_object(raw, {"keys"})))}


def put_many(db: DataStore, raw: bytes) -> dict[str, Any]:
    body = _object(raw, {"items", "ttl"})
    items = body.get("items")
    if not isinstance(items, dict):
        raise RequestError('the body must hold "items": an object of key: value')
    db.put_many(items, ttl=body.get("ttl"))
    return {"written": len(items)}


def delete_many(db: DataStore, raw: bytes) -> dict[str, Any]:
    return {"deleted": db.delete_many(_keys(_object(raw, {"keys"})))}


def transaction(db: DataStore, raw: bytes) -> dict[str, Any]:
    body = _object(raw, {"expect", "ops"})
    expect, ops = body.get("expect", {}), body.get("ops", [])
    if not isinstance(expect, dict) or not isinstance(ops, list):
        raise RequestError('"expect" must be an object of key: value or null, '
                           '"ops" a list of operations')
    wanted = {key: None if value is None else _core.encode_value(value, key)
              for key, value in expect.items()}
    with db.transaction() as tx:
        for key, value in wanted.items():
            if tx._value_bytes(key) != value:
                raise ConflictError(
                    f"{key!r} changed since this transaction read it; nothing was written "
                    f"(run the transaction again)")
        for op in ops:
            _apply(tx, op)
    return {"committed": len(ops)}


def _apply(tx: Transaction, op: Any) -> None:
    if not isinstance(op, dict) or not isinstance(op.get("op"), str):
        raise RequestError('each operation must be an object with "op" and "key"')
    kind, key = op["op"], op.get("key")
    if not isinstance(key, str):
        raise RequestError(f'a {kind} operation needs "key": a string')
    if kind in ("create", "put"):
        if "value" not in op:
            raise RequestError(f'a {kind} operation needs "value"')
        (tx.create if kind == "create" else tx.put)(key, op["value"], op.get("ttl"))
    elif kind == "touch":
        if "ttl" not in op:
            raise RequestError('a touch operation needs "ttl" (seconds, or null)')
        tx.touch(key, op["ttl"])
    elif kind == "delete":
        tx.delete(key)
    else:
        raise RequestError(f"unknown operation {kind!r}: create, put, touch or delete")


ROUTES: dict[str, Callable[[DataStore, bytes], dict[str, Any]]] = {
    "/batch/get": get_many, "/batch/put": put_many, "/batch/delete": delete_many,
    "/transaction": transaction,
}
