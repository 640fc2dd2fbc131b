"""MULTI/EXEC/DISCARD/WATCH/UNWATCH and MSET over `fastkv serve --resp-port`,
driven by real clients: redis-py's default pipeline() and transaction(),
redis-cli, raw sockets for the exact reply shapes."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from fastkv import DataStore

redis = pytest.importorskip("redis", reason="redis-py is not installed (the test extra)")

from test_resp import port_of, r, redis_cli, resp  # noqa: E402,F401  (shared with test_resp)

if TYPE_CHECKING:
    from conftest import Served


def talk(port: int, data: bytes, replies_end: bytes) -> bytes:
    """Send data on one connection, read until the output ends with replies_end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while not out.endswith(replies_end):
            chunk = s.recv(65536)
            assert chunk, out
            out += chunk
        return out


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


# ---- redis-py ----------------------------------------------------------------------------


def test_default_pipeline_runs_as_one_transaction(r: Any) -> None:
    r.set("a", '{"n": 1}')
    p = r.pipeline()  # transaction=True: MULTI ... EXEC
    p.set("b", '{"n": 2}')
    p.get("a")
    p.set("a", '{"n": 3}', nx=True)  # a live key: nil, as Redis answers
    p.mget("a", "b", "missing")
    p.delete("b", "missing")
    p.exists("a", "b")
    assert p.execute() == [True, b'{"n":1}', None, [b'{"n":1}', b'{"n":2}', None], 1, 1]
    assert r.get("b") is None and r.get("a") == b'{"n":1}'


def test_commands_inside_exec_see_the_transactions_own_writes(r: Any) -> None:
    p = r.pipeline()
    p.set("k", '{"v": 1}', px=100_000)
    p.get("k")
    p.pttl("k")
    p.expire("k", 50)
    p.ttl("k")
    p.persist("k")
    p.ttl("k")
    p.delete("k")
    p.exists("k")
    got = p.execute()
    assert got[0] is True and got[1] == b'{"v":1}' and 99_000 < got[2] <= 100_000
    assert got[3:] == [True, 50, True, -1, 1, 0]
    assert r.get("k") is None


def test_transaction_with_four_threads_loses_no_increment(r: Any, resp: Served) -> None:
    r.set("counter", json.dumps({"n": 0}))
    port, per_thread = port_of(resp), 50

    def work() -> None:
        client = redis.Redis(port=port, socket_timeout=30)

        def bump(pipe: Any) -> None:
            n = json.loads(pipe.get("counter"))["n"]
            pipe.multi()
            pipe.set("counter", json.dumps({"n": n + 1}))

        for _ in range(per_thread):
            client.transaction(bump, "counter")
        client.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    assert json.loads(r.get("counter"))["n"] == 4 * per_thread


def test_a_watched_key_changed_by_another_client_aborts_exec(r: Any, resp: Served) -> None:
    other = redis.Redis(port=port_of(resp))
    r.set("w", "{}")
    p = r.pipeline()
    p.watch("w")
    p.multi()
    p.set("w", '{"mine": 1}')
    p.set("side", '{"also": 1}')
    other.set("w", '{"theirs": 1}')
    with pytest.raises(redis.WatchError):
        p.execute()
    assert r.get("w") == b'{"theirs":1}' and r.get("side") is None
    # watching a key that is not there: its creation is a change too
    p = r.pipeline()
    p.watch("fresh")
    p.multi()
    p.set("x", "{}")
    other.set("fresh", "{}")
    with pytest.raises(redis.WatchError):
        p.execute()
    # unchanged: EXEC runs; UNWATCH forgets
    p = r.pipeline()
    p.watch("w")
    p.multi()
    p.set("x", "{}")
    assert p.execute() == [True]
    r.execute_command("WATCH", "w")
    other.set("w", "{}")
    r.execute_command("UNWATCH")
    assert r.execute_command("MULTI") == b"OK"
    r.execute_command("SET", "y", "{}")
    assert r.execute_command("EXEC") == [b"OK"]
    other.close()


def test_a_write_by_the_watching_client_itself_aborts_exec(r: Any) -> None:
    r.set("self", "{}")
    r.execute_command("WATCH", "self")
    r.set("self", '{"again": 1}')
    r.execute_command("MULTI")
    r.execute_command("SET", "z", "{}")
    assert r.execute_command("EXEC") is None
    assert r.get("z") is None


def test_a_watched_key_that_expires_aborts_exec(r: Any) -> None:
    r.set("brief", "{}", px=300)
    r.execute_command("WATCH", "brief")
    time.sleep(0.5)
    r.execute_command("MULTI")
    r.execute_command("SET", "after", "{}")
    assert r.execute_command("EXEC") is None


def test_discard(r: Any) -> None:
    assert r.execute_command("MULTI") == b"OK"
    r.execute_command("SET", "d", "{}")
    assert r.execute_command("DISCARD") == b"OK"
    assert r.get("d") is None
    with pytest.raises(redis.ResponseError, match="DISCARD without MULTI"):
        r.execute_command("DISCARD")
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        r.execute_command("EXEC")


def test_a_bad_value_or_key_while_queued_aborts_exec_with_execabort(r: Any) -> None:
    for bad in (["SET", "k", "[1]"], ["SET", "k" * 40, "{}"], ["SET", "k", "{}", "EX", "0"],
                ["NOSUCH", "x"], ["GET"], ["MSET", "a", "{}", "b"], ["SCAN", "0"],
                ["PEXPIRE", "k", "1500"]):
        r.set("keep", '{"v": 0}')
        p = r.pipeline()
        p.set("keep", '{"v": 1}')
        p.execute_command(*bad)
        p.set("other", "{}")
        with pytest.raises(redis.ResponseError) as err:
            p.execute()
        # redis-py names the queued command's error in place of EXECABORT
        assert "Command # 2" in str(err.value) or "previous errors" in str(err.value), bad
        assert r.get("keep") == b'{"v":0}' and r.get("other") is None, bad


def test_a_refusal_at_run_time_answers_that_command_and_the_rest_go_on(r: Any) -> None:
    r.set("live", "{}")
    p = r.pipeline(transaction=True)
    p.execute_command("SET", "late", "{}", "PXAT", "1000")  # a deadline in 1970
    p.set("after", "{}")
    got = p.execute(raise_on_error=False)
    assert isinstance(got[0], redis.ResponseError) and "KeyExpiredError" in str(got[0])
    assert got[1] is True and r.get("after") == b"{}"


def test_mset_is_one_atomic_group_and_mget_reads_one_moment(r: Any, resp: Served) -> None:
    assert r.mset({f"g{i}": json.dumps({"gen": 0}) for i in range(20)}) is True
    with pytest.raises(redis.ResponseError, match="InvalidValueError"):
        r.execute_command("MSET", "g0", '{"gen": 9}', "g1", "[]")
    assert r.get("g0") == b'{"gen":0}'  # one refused pair: nothing written
    port, stop, seen = port_of(resp), threading.Event(), []

    def writer() -> None:
        w = redis.Redis(port=port)
        for gen in range(1, 200):
            w.mset({f"g{i}": json.dumps({"gen": gen}) for i in range(20)})
        stop.set()
        w.close()

    t = threading.Thread(target=writer)
    t.start()
    while not stop.is_set():
        gens = {json.loads(v)["gen"] for v in r.mget([f"g{i}" for i in range(20)])}
        seen.append(len(gens))
    t.join(60)
    assert seen and max(seen) == 1, "MGET saw two generations at once"


def test_nested_multi_and_watch_inside_multi_are_refused(r: Any) -> None:
    r.execute_command("MULTI")
    with pytest.raises(redis.ResponseError, match="nested"):
        r.execute_command("MULTI")
    with pytest.raises(redis.ResponseError, match="WATCH inside MULTI"):
        r.execute_command("WATCH", "a")
    r.execute_command("SET", "n", "{}")
    assert r.execute_command("EXEC") == [b"OK"]  # neither aborted the transaction


def test_queue_is_bounded_by_max_transaction_bytes(store_path: Path,
                                                   serve: Callable[..., Served]) -> None:
    DataStore(store_path).close()
    served = serve(store_path, "--resp-port", "0")
    port = port_of(served)
    value = json.dumps({"v": "x" * 15_000}).encode()
    n = 16 * 1024 * 1024 // len(value) + 10
    data = command(b"MULTI") + b"".join(
        command(b"SET", b"big%d" % i, value) for i in range(n)) + command(b"EXEC")
    out = talk(port, data, b"previous errors.\r\n")
    assert b"TransactionError" in out and out.endswith(
        b"-EXECABORT Transaction discarded because of previous errors.\r\n")
    c = redis.Redis(port=port)
    assert c.get("big0") is None and c.dbsize() == 0
    c.close()


def test_exact_reply_shapes(resp: Served) -> None:
    port = port_of(resp)
    out = talk(port, command(b"MULTI") + command(b"SET", b"a", b"{}") + command(b"GET", b"a")
               + command(b"EXEC"), b'{}\r\n')
    assert out == b'+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$2\r\n{}\r\n'
    watched = talk(port, command(b"WATCH", b"a") + command(b"SET", b"a", b'{"x":1}')
                   + command(b"MULTI") + command(b"EXEC"), b"*-1\r\n")
    assert watched == b"+OK\r\n+OK\r\n+OK\r\n*-1\r\n"
    three = talk(port, command(b"HELLO", b"3") + command(b"WATCH", b"a")
                 + command(b"DEL", b"a") + command(b"MULTI") + command(b"EXEC"), b"_\r\n")
    assert three.endswith(b"+OK\r\n:1\r\n+OK\r\n_\r\n")


def test_redis_cli_multi_exec(resp: Served) -> None:
    cli = redis_cli()
    script = 'MULTI\nSET acct:1 \'{"balance": 95}\'\nSET acct:2 \'{"balance": 5}\'\nEXEC\n'
    res = subprocess.run([cli, "-p", str(port_of(resp))], input=script, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["OK", "QUEUED", "QUEUED", "OK", "OK"], res.stdout
    res = subprocess.run([cli, "-p", str(port_of(resp)), "MGET", "acct:1", "acct:2"],
                         capture_output=True, text=True, timeout=30)
    assert res.stdout.split() == ['{"balance":95}', '{"balance":5}']


def test_a_connection_closed_inside_multi_writes_nothing(resp: Served, r: Any) -> None:
    port = port_of(resp)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(command(b"MULTI") + command(b"SET", b"gone", b"{}"))
        got = b""
        while not got.endswith(b"+QUEUED\r\n"):
            got += s.recv(100)
    assert r.get("gone") is None
    assert r.set("after", "{}") is True  # and no writer slot was left taken


def test_a_key_set_twice_in_one_block_keeps_its_last_value(r: Any) -> None:
    p = r.pipeline()
    for i in range(5):
        p.set("twice", json.dumps({"i": i}))
        p.set(f"other{i}", "{}")
    assert p.execute() == [True] * 10
    assert r.get("twice") == b'{"i":4}' and r.dbsize() == 6
