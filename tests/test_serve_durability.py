"""`fastkv serve --durability fsync`: every write over HTTP and RESP is
answered only once a flush covers it, waits for it in a worker thread
(never on the event loop), and concurrent clients' writes share flushes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

import fastkv
from fastkv import DataStore

redis = pytest.importorskip("redis", reason="redis-py is not installed (the test extra)")

if TYPE_CHECKING:
    from conftest import Served


def flushes(served: Served) -> int:
    with urllib.request.urlopen(served.url + "/stats", timeout=30) as r:
        return int(json.load(r)["flushes"])


def resp_port(served: Served) -> int:
    assert served.resp_url is not None, served.banner
    return int(served.resp_url.rsplit(":", 1)[1])


def writes(served: Served) -> list[Callable[[], Any]]:
    """One write of each kind, over both protocols; each returns its reply."""
    r = redis.Redis(port=resp_port(served), socket_timeout=30)
    client = fastkv.Client(served.url)

    def multi() -> Any:
        pipe = r.pipeline()  # MULTI/EXEC
        pipe.set("m1", '{"m":1}')
        pipe.set("m2", '{"m":2}')
        return pipe.execute()

    return [
        lambda: r.set("a", '{"n":1}'),
        lambda: r.set("b", '{"n":2}', nx=True),
        lambda: r.set("c", '{"n":3}', ex=100),
        lambda: r.mset({"d": '{"n":4}', "e": '{"n":5}'}),
        lambda: r.expire("a", 500),
        lambda: r.persist("a"),
        lambda: r.delete("b"),
        multi,
        lambda: client.create("h1", {"n": 6}),
        lambda: client.put("h1", {"n": 7}),
        lambda: client.touch("h1", 300),
        lambda: client.delete("c"),
        lambda: client.put_many({"h2": {"n": 8}, "h3": {"n": 9}}),
    ]


@pytest.mark.parametrize("mode", ["fsync", "process"])
def test_each_acknowledged_write_was_flushed_first(store_path: Path,
                                                   serve: Callable[..., Served],
                                                   mode: str) -> None:
    served = serve(store_path, "--resp-port", "0", "--durability", mode)
    assert ("writes answered once flushed" in served.banner) == (mode == "fsync")
    for write in writes(served):
        before = flushes(served)
        write()
        after = flushes(served)
        if mode == "fsync":  # one client, one write at a time: a flush each
            assert after > before, write
        else:
            assert after == before == 0
    if os.name == "nt":  # Windows: TerminateProcess, no signal to name
        served.stop()
    else:
        served.stop(signal.SIGKILL)
    with DataStore(store_path) as db:
        assert dict(db.items()) == {
            "a": {"n": 1}, "d": {"n": 4}, "e": {"n": 5}, "m1": {"m": 1}, "m2": {"m": 2},
            "h1": {"n": 7}, "h2": {"n": 8}, "h3": {"n": 9}}
        left = db.ttl("h1")
        assert db.ttl("a") is None and left is not None and left > 200


def test_writes_wait_in_workers_and_share_flushes(store_path: Path,
                                                  serve: Callable[..., Served]) -> None:
    """Eight clients write at once while another reads: every write is
    answered, the reads go on meanwhile, and all of it is in the file."""
    served = serve(store_path, "--resp-port", "0", "--durability", "fsync")
    port = resp_port(served)
    errors: list[BaseException] = []
    done = threading.Event()
    reads = [0]

    def writer(w: int) -> None:
        try:
            r = redis.Redis(port=port, socket_timeout=60)
            for i in range(40):
                assert r.set(f"w{w}:{i}", json.dumps({"w": w, "i": i})) is True
            pipe = r.pipeline(transaction=False)  # a pipeline: answered in order
            for i in range(40, 80):
                pipe.set(f"w{w}:{i}", json.dumps({"w": w, "i": i}))
                pipe.get(f"w{w}:{i}")
            out = pipe.execute()
            assert out[0::2] == [True] * 40
            assert [json.loads(v)["i"] for v in out[1::2]] == list(range(40, 80))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def reader() -> None:
        r = redis.Redis(port=port, socket_timeout=60)
        while not done.is_set():
            r.get("w0:0")
            reads[0] += 1

    start = flushes(served)
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    watcher.join(60)
    assert not errors, errors[0]
    assert not any(t.is_alive() for t in threads) and reads[0] > 0
    used = flushes(served) - start
    assert 1 <= used <= 8 * 80
    served.stop()
    with DataStore(store_path) as db:
        assert len(db) == 8 * 80
        assert all(db.read(f"w{w}:{i}") == {"w": w, "i": i} for w in range(8) for i in range(80))


def test_an_unknown_durability_is_refused(store_path: Path) -> None:
    from conftest import fastkv_script

    out = subprocess.run([fastkv_script(), "--path", str(store_path), "serve", "--port", "0",
                          "--durability", "sometimes"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "--durability" in out.stderr
    assert not store_path.exists()
