"""The batch and transaction endpoints of `fastkv serve` over HTTP, raw and
through fastkv.Client: statuses and bodies, ConflictError when another
client changed a key read, and 8 threads of increments that lose none."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from fastkv import Client, ConflictError

from test_server import call

if TYPE_CHECKING:
    from conftest import Served


@pytest.fixture
def served(serve: Callable[..., Served], store_path: Path) -> Served:
    return serve(store_path)


def post(served: Served, target: str, body: Any) -> tuple[int, Any]:
    status, _, answer = call(served, "POST", target, json.dumps(body).encode())
    return status, answer


def test_batch_endpoints(served: Served) -> None:
    assert post(served, "/batch/put", {"items": {"a": {"n": 1}, "b": {"n": 2}}, "ttl": 60}) \
        == (200, {"written": 2})
    assert post(served, "/batch/get", {"keys": ["a", "b", "zz"]}) == \
        (200, {"values": {"a": {"n": 1}, "b": {"n": 2}}})
    status, err = post(served, "/batch/put", {"items": {"a": {"n": 9}, "c": [1]}})
    assert status == 400 and err["error"] == "InvalidValueError"
    assert post(served, "/batch/delete", {"keys": ["a", "a", "zz"]}) == (200, {"deleted": 1})
    assert post(served, "/batch/get", {"keys": ["a", "b"]}) == (200, {"values": {"b": {"n": 2}}})
    for bad in ([1], {"keys": "a"}, {"keys": [1]}, {"keys": ["a"], "extra": 1}):
        status, err = post(served, "/batch/get", bad)
        assert status == 400, bad
        assert err["error"] in ("RequestError", "InvalidKeyError"), bad
    status, _, _ = call(served, "GET", "/batch/get")
    assert status == 405
    status, _, err = call(served, "POST", "/transaction", b"{}",
                          headers={"Content-Type": "text/plain"})
    assert status == 415


def test_transaction_endpoint(served: Served) -> None:
    post(served, "/batch/put", {"items": {"acct:1": {"balance": 10}, "hold:3": {}}})
    ok = {"expect": {"acct:1": {"balance": 10}, "new": None},
          "ops": [{"op": "put", "key": "acct:1", "value": {"balance": 5}},
                  {"op": "create", "key": "new", "value": {"moved": 5}, "ttl": 60},
                  {"op": "delete", "key": "hold:3"},
                  {"op": "touch", "key": "acct:1", "ttl": 100}]}
    assert post(served, "/transaction", ok) == (200, {"committed": 4})
    with Client(served.url) as c:
        assert c.get_many(["acct:1", "new", "hold:3"]) == {
            "acct:1": {"balance": 5}, "new": {"moved": 5}}
        left = c.ttl("acct:1")
        assert left is not None and 98 < left <= 100
    # the same body again: acct:1 no longer holds what was expected
    status, err = post(served, "/transaction", ok)
    assert status == 409 and err["error"] == "ConflictError"
    # a refused operation answers with its own error, and nothing is written
    for ops, code, name in (
            ([{"op": "create", "key": "new", "value": {}}], 409, "KeyExistsError"),
            ([{"op": "delete", "key": "nope"}], 404, "KeyNotFoundError"),
            ([{"op": "put", "key": "x" * 40, "value": {}}], 400, "InvalidKeyError"),
            ([{"op": "put", "key": "k", "value": [1]}], 400, "InvalidValueError"),
            ([{"op": "frob", "key": "k"}], 400, "RequestError"),
            ([{"op": "put", "key": "k"}], 400, "RequestError")):
        status, err = post(served, "/transaction",
                           {"ops": [{"op": "put", "key": "acct:1", "value": {"b": 0}}, *ops]})
        assert (status, err["error"]) == (code, name), ops
        status, _, value = call(served, "GET", "/keys/acct:1")
        assert value == {"balance": 5}


def test_client_transaction_commit_and_conflict(served: Served) -> None:
    with Client(served.url) as kv, Client(served.url) as other:
        kv.put("k", {"v": 1})
        with kv.transaction() as tx:
            tx.put("k", {"v": tx.read("k")["v"] + 1})
            tx.put_many({"m1": {}, "m2": {}})
            assert tx.delete_many(["m1", "zz"]) == 1
            assert tx.get_many(["k", "m1", "m2"]) == {"k": {"v": 2}, "m2": {}}
            assert kv.read("k") == {"v": 1}  # nothing sent before the commit
        assert kv.get_many(["k", "m1", "m2"]) == {"k": {"v": 2}, "m2": {}}
        tx = kv.transaction()
        tx.read("k")
        tx.put("side", {})
        other.put("k", {"v": 100})
        with pytest.raises(ConflictError):
            tx.commit()
        assert "side" not in kv and not tx.active


def test_client_increments_from_8_threads_with_retries_add_up(served: Served) -> None:
    with Client(served.url) as kv:
        kv.put("counter", {"n": 0})
        conflicts = []

        def work() -> None:
            for _ in range(50):
                while True:
                    try:
                        with kv.transaction() as tx:
                            tx.put("counter", {"n": tx.read("counter")["n"] + 1})
                        break
                    except ConflictError:
                        conflicts.append(1)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
            assert not t.is_alive()
        assert kv.read("counter") == {"n": 400}
        assert conflicts, "8 threads never conflicted: the test did not test the check"


def test_a_body_past_the_batch_limit_is_413_from_its_header(served: Served) -> None:
    status, _, err = call(served, "POST", "/batch/put", b"{}",
                          headers={"Content-Length": str(64 * 1024 * 1024)})
    assert status == 413 and err["error"] == "ValueTooLargeError"
    assert "max_transaction_bytes" in err["message"]
