"""`fastkv serve --resp-port` against real Redis clients: redis-py (RESP2 and
RESP3), redis-cli, raw sockets for framing; limits, shutdown."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastkv
from fastkv import DataStore

redis = pytest.importorskip("redis", reason="redis-py is not installed (the test extra)")

from platforms import assert_stopped_cleanly

if TYPE_CHECKING:
    from conftest import Served


@pytest.fixture
def resp(store_path: Path, serve: Callable[..., Served]) -> Served:
    return serve(store_path, "--resp-port", "0")


def port_of(served: Served) -> int:
    assert served.resp_url is not None, served.banner
    return int(served.resp_url.rsplit(":", 1)[1])


@pytest.fixture
def r(resp: Served) -> Iterator[Any]:
    client = redis.Redis(port=port_of(resp), socket_timeout=30)
    yield client
    client.close()


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes, read until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            if data:
                s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # the server closed first (a refusal): read what it said
            pass
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


# ---- the commands, through redis-py ----------------------------------------------------


def test_set_get_and_expiry(r: Any) -> None:
    assert r.set("user:1", '{"name": "Ann"}') is True
    assert r.get("user:1") == b'{"name":"Ann"}'  # stored compact, as in a file
    assert r.set("user:1", '{"name": "Bob"}', nx=True) is None  # NX is create
    assert r.set("user:1", '{"name": "Cy"}') is True  # plain SET is put
    assert json.loads(r.get("user:1")) == {"name": "Cy"}
    assert r.get("missing") is None
    r.set("s", "{}", ex=100)
    assert 99 <= r.ttl("s") <= 100 and 99_000 < r.pttl("s") <= 100_000
    r.set("p", "{}", px=2500)
    assert 2000 < r.pttl("p") <= 2500
    r.set("at", "{}", pxat=int(time.time() * 1000) + 60_000)
    assert 58 <= r.ttl("at") <= 60
    assert r.ttl("user:1") == -1 and r.ttl("missing") == -2 and r.pttl("missing") == -2
    assert r.expire("user:1", 50) is True and 49 <= r.ttl("user:1") <= 50
    assert r.pexpire("user:1", 70_000) is True and 69 <= r.ttl("user:1") <= 70
    assert r.persist("user:1") is True and r.ttl("user:1") == -1
    assert r.persist("user:1") is False and r.expire("missing", 5) is False
    assert r.exists("user:1", "s", "missing") == 2
    assert r.mget("user:1", "missing", "s") == [b'{"name":"Cy"}', None, b"{}"]
    assert r.delete("s", "p", "missing") == 2
    assert r.dbsize() == 2
    assert r.ping() is True and r.echo("hi") == b"hi"
    assert r.select(0) is True
    with pytest.raises(redis.ResponseError, match="out of range"):
        r.select(1)


def test_a_short_ttl_expires(r: Any) -> None:
    r.set("short", "{}", px=300)
    time.sleep(0.5)
    assert r.get("short") is None and r.exists("short") == 0
    assert r.set("short", '{"again": 1}', nx=True) is True


def test_refusals_name_the_fastkv_class_and_keep_the_connection(r: Any,
                                                                 resp: Served) -> None:
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: r.set("k", "[1, 2]"), "InvalidValueError"),
        (lambda: r.set("k", "not json"), "InvalidValueError"),
        (lambda: r.set("k", '{"x": "' + "y" * 16_400 + '"}'), "ValueTooLargeError"),
        (lambda: r.set("k" * 33, "{}"), "InvalidKeyError"),
        (lambda: r.get("k" * 33), "InvalidKeyError"),
        (lambda: r.set("k", "{}", ex=315_360_001), "InvalidTTLError"),
        (lambda: r.set("k", "{}", ex=0), "invalid expire time"),
        (lambda: r.pexpire("k", 1500), "InvalidTTLError"),
        (lambda: r.set("k", "{}", xx=True), "syntax error"),
        (lambda: r.execute_command("FLUSHALL"), "unknown command"),
        (lambda: r.execute_command("GET"), "wrong number of arguments"),
        (lambda: r.execute_command("SET", b"\xff\xfe", "{}"), "InvalidKeyError"),
    ]
    for call, expected in cases:
        with pytest.raises(redis.ResponseError, match=expected):
            call()
    assert r.get("k") is None and r.ping() is True
    resp.stop()
    with DataStore(resp.path) as db:
        assert len(db) == 0  # nothing refused was stored


def test_scan_walks_every_key_once(r: Any) -> None:
    keys = {f"user:{i}" for i in range(2500)} | {"other:1", "odd*key"}
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, "{}")
    pipe.execute()
    seen = [k.decode() for k in r.scan_iter(count=100)]
    assert len(seen) == len(set(seen)) and set(seen) == keys
    assert {k.decode() for k in r.scan_iter(match="user:1*")} == \
        {k for k in keys if k.startswith("user:1")}
    assert {k.decode() for k in r.scan_iter(match="*:1?")} == \
        {k for k in keys if k.endswith(tuple(f":1{d}" for d in "0123456789"))
         and len(k.split(":")[1]) == 2}
    assert [k.decode() for k in r.scan_iter(match="odd\\*key")] == ["odd*key"]
    assert list(r.scan_iter(_type="hash")) == []


def test_pipelined_requests_answer_in_order(r: Any) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"k{i}", json.dumps({"i": i}))
        pipe.get(f"k{i}")
        pipe.set(f"k{i}", "{}", nx=True)
    out = pipe.execute(raise_on_error=False)
    for i in range(2000):
        assert out[3 * i] is True and json.loads(out[3 * i + 1]) == {"i": i}
        assert out[3 * i + 2] is None


def test_plain_get_and_set_in_one_pipeline_with_errors_and_other_commands(
        resp: Served) -> None:
    """Plain GET and SET are answered in C; in one burst with failures and
    commands of the general path, every reply still comes, in order."""
    def cmd(*words: bytes) -> bytes:
        return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)

    long_key = b"k" * 33
    burst = b"".join([
        cmd(b"set", b"a", b'{"n": 1}'),         # lower case: still the plain path
        cmd(b"GeT", b"a"),
        cmd(b"SET", b"b", b"[1, 2]"),           # not an object: error from the general path
        cmd(b"GET", b"b"),                      # so b was never stored
        cmd(b"SET", long_key, b"{}"),           # bad key
        cmd(b"GET", long_key),                  # Redis answers an error for a bad key too
        cmd(b"SET", b"\xff", b"{}"),            # not UTF-8
        cmd(b"SET", b"a", b'{"n": 2}', b"NX"),  # an option: general path, nil (a is live)
        cmd(b"SET", b"a", b'{"n": 3}'),         # plain put over a live key
        cmd(b"DBSIZE"),
        cmd(b"GET", b"a"),
        b"PING\r\n",                             # inline, between two plain requests
        cmd(b"GET", b"missing"),
    ])
    out = raw(port_of(resp), burst)
    replies = out.split(b"\r\n")
    assert replies[:4] == [b"+OK", b"$7", b'{"n":1}', replies[3]]
    assert replies[3].startswith(b"-ERR InvalidValueError"), replies[3]
    assert replies[4] == b"$-1"
    assert replies[5].startswith(b"-ERR InvalidKeyError"), replies[5]
    assert replies[6].startswith(b"-ERR InvalidKeyError"), replies[6]
    assert replies[7].startswith(b"-ERR InvalidKeyError"), replies[7]
    assert replies[8:] == [b"$-1", b"+OK", b":1", b"$7", b'{"n":3}', b"+PONG", b"$-1", b""]
    info = redis.Redis(port=port_of(resp)).info("stats")
    assert info["total_commands_processed"] >= 13


def test_plain_gets_answered_from_the_buffer_match_the_general_path(resp: Served) -> None:
    """A GET in the array form with a short ASCII key is answered straight
    from the read buffer; every GET that form does not cover (a longer or
    non-ASCII key, a zero-padded length, extra arguments, RESP3, a request
    cut anywhere between two reads) gets the same answer as before."""
    def cmd(*words: bytes) -> bytes:
        return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)

    port = port_of(resp)
    k9, k10, k32 = b"k" * 9, b"K" * 10, b"x" * 32
    uni = "k\u00e9y".encode()
    setup = b"".join(cmd(b"SET", k, b'{"k": "%s"}' % k) for k in (k9, k10, k32, uni))
    assert raw(port, setup) == b"+OK\r\n" * 4
    burst = b"".join([
        cmd(b"get", k9), cmd(b"GET", k10), cmd(b"GET", k32), cmd(b"GET", uni),
        b"*2\r\n$3\r\nGET\r\n$09\r\n" + k9 + b"\r\n",  # zero-padded: the parser's
        cmd(b"GET", k9, k10),                                # wrong number of arguments
        cmd(b"GET", b"x" * 33),                              # too long: a refusal
        cmd(b"GET", b"absent"),
        cmd(b"GETX", k9),                                    # not GET
    ])
    value = {k: b'{"k":"%s"}' % k for k in (k9, k10, k32, uni)}
    want = [value[k9], value[k10], value[k32], value[uni], value[k9]]
    out = raw(port, burst)
    for v in want:
        head = b"$%d\r\n%s\r\n" % (len(v), v)
        assert out.startswith(head), (out[:80], head)
        out = out[len(head):]
    rest = out.split(b"\r\n")
    assert rest[0].startswith(b"-ERR wrong number of arguments for 'get'"), rest[0]
    assert rest[1].startswith(b"-ERR InvalidKeyError"), rest[1]
    assert rest[2] == b"$-1" and rest[3].startswith(b"-ERR unknown command"), rest
    # RESP3's null, in the array form
    assert raw(port, cmd(b"HELLO", b"3") + cmd(b"GET", b"absent")).endswith(b"_\r\n")
    # the same GETs cut at every byte across two reads
    whole = cmd(b"GET", k10) + cmd(b"GET", b"absent")
    expect = b"$%d\r\n%s\r\n$-1\r\n" % (len(value[k10]), value[k10])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for cut in range(1, len(whole)):
            s.sendall(whole[:cut])
            time.sleep(0.002)  # most cuts then arrive as two reads
            s.sendall(whole[cut:])
            got = b""
            while len(got) < len(expect):
                got += s.recv(4096)
            assert got == expect, cut


def test_plain_sets_staged_from_the_buffer_match_the_general_path(
        store_path: Path, serve: Callable[..., Served]) -> None:
    """A SET in the array form with a short ASCII key and a value already
    in stored form is staged straight from the read buffer; every SET that
    form does not cover gets the same answer as before, a SET cut anywhere
    between two reads included, and one the core refuses in the middle of a
    staged run (the file full) is answered in its place, the rest after it."""
    def cmd(*words: bytes) -> bytes:
        return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)

    served = serve(store_path, "--resp-port", "0", "--max-file-size", "65536")
    port = port_of(served)
    k1, k10, k32 = b"a", b"K" * 10, b"x" * 32
    uni = "k\u00e9y".encode()
    biggest = b'{"p":"' + b"y" * (16384 - 8) + b'"}'
    burst = b"".join([
        cmd(b"SET", k1, b'{"n":1}'), cmd(b"set", k10, b'{"n":10}'), cmd(b"SeT", k32, b"{}"),
        cmd(b"SET", uni, b'{"u":1}'),                           # not ASCII: the parser's
        b"*3\r\n$3\r\nSET\r\n$01\r\nb\r\n$2\r\n{}\r\n",     # zero-padded: the parser's
        cmd(b"SET", b"c", b'{ "spaced" : true }'),              # stored compact
        cmd(b"SET", b"x" * 33, b"{}"),                          # too long a key
        cmd(b"SET", b"d", b"[1,2]"),                            # not an object
        cmd(b"SET", b"e", b""),                                 # empty
        cmd(b"SET", b"f", biggest),                             # 16 KiB exactly
        cmd(b"SET", b"g", biggest[:-2] + b'y"}'),               # one byte over
        cmd(b"GET", b"c"),
    ])
    replies = raw(port, burst).split(b"\r\n")
    assert replies[:6] == [b"+OK"] * 6, replies[:8]
    assert replies[6].startswith(b"-ERR InvalidKeyError"), replies[6]
    assert replies[7].startswith(b"-ERR InvalidValueError"), replies[7]
    assert replies[8].startswith(b"-ERR InvalidValueError"), replies[8]
    assert replies[9] == b"+OK"
    assert replies[10].startswith(b"-ERR ValueTooLargeError"), replies[10]
    assert replies[11:] == [b"$15", b'{"spaced":true}', b""]
    # the same SET cut at every byte across two reads
    whole = cmd(b"SET", k10, b'{"v":2}') + cmd(b"GET", k10)
    expect = b'+OK\r\n$7\r\n{"v":2}\r\n'
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for cut in range(1, len(whole)):
            s.sendall(whole[:cut])
            time.sleep(0.002)
            s.sendall(whole[cut:])
            got = b""
            while len(got) < len(expect):
                got += s.recv(4096)
            assert got == expect, cut
    # a run of SETs that fills the file: each one refused in turn, in order
    value = b'{"pad":"' + b"p" * 90 + b'"}'
    out = raw(port, b"".join(cmd(b"SET", b"fill:%04d" % i, value) for i in range(1000)), 30)
    answers = out.split(b"\r\n")[:-1]
    assert len(answers) == 1000
    ok = answers.count(b"+OK")
    assert 0 < ok < 1000 and answers[:ok] == [b"+OK"] * ok
    assert all(a.startswith(b"-ERR StoreFullError") for a in answers[ok:]), answers[ok]
    served.stop()
    with DataStore(store_path) as db:
        assert db.read("a") == {"n": 1} and db.read("x" * 32) == {}
        assert db.read("k\u00e9y") == {"u": 1} and db.read("b") == {}
        assert db.read("f") == json.loads(biggest) and "g" not in db and "d" not in db
        assert all(f"fill:{i:04d}" in db for i in range(ok))
        assert not any(f"fill:{i:04d}" in db for i in range(ok, 1000))


def test_pipelined_sets_put_in_batches_keep_the_last_value_of_each_key(
        store_path: Path, serve: Callable[..., Served]) -> None:
    """Runs of plain SETs go to the core as batches (one append each);
    a key repeated in a run, a value the store must refuse and the file
    cap (a small one, so compaction runs meanwhile) split them."""
    served = serve(store_path, "--resp-port", "0", "--max-file-size", "65536")
    client = redis.Redis(port=port_of(served), socket_timeout=30)
    model: dict[str, int] = {}
    for round_ in range(20):
        pipe = client.pipeline(transaction=False)
        for i in range(300):
            key = f"k{(i * 7 + round_) % 37}"
            value = round_ * 1000 + i
            model[key] = value
            pipe.set(key, json.dumps({"v": value, "pad": "p" * (i % 50)}))
            if i % 97 == 0:
                pipe.set(key, "not json")  # refused; the key keeps the value above
        replies = pipe.execute(raise_on_error=False)
        assert all(r is True for r in replies if not isinstance(r, Exception))
        assert sum(isinstance(r, Exception) for r in replies) == 4
    assert {k: json.loads(client.get(k))["v"] for k in model} == model
    client.close()
    served.stop()
    with DataStore(store_path) as db:
        assert {k: db.read(k)["v"] for k in model} == model
        assert len(db) == len(model)


def test_acknowledged_pipelined_sets_survive_a_kill(resp: Served) -> None:
    """A batch of SETs is written before any of its +OKs leaves: after a
    SIGKILL mid-stream, every acknowledged key holds its value."""
    n = 30_000
    burst = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$%d\r\n%s\r\n"
                     % (len(b"k%d" % i), i, len(v), v)
                     for i, v in ((i, b'{"i":%d}' % i) for i in range(n)))
    sock = socket.create_connection(("127.0.0.1", port_of(resp)), timeout=30)
    sender = threading.Thread(target=lambda: _send_until_closed(sock, burst), daemon=True)
    sender.start()
    got = b""
    while got.count(b"+OK\r\n") < n // 4:
        chunk = sock.recv(65536)
        assert chunk, "the server closed early"
        got += chunk
    resp.proc.kill()  # SIGKILL; TerminateProcess on Windows
    resp.proc.wait(timeout=30)
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except OSError:
        pass
    sock.close()
    acked = got.count(b"+OK\r\n")
    assert got.replace(b"+OK\r\n", b"") in (b"", b"+", b"+O", b"+OK", b"+OK\r")
    assert n // 4 <= acked <= n, acked
    with DataStore(resp.path) as db:
        for i in range(acked):
            assert db.read(f"k{i}") == {"i": i}
        for i in range(acked, n):  # unacknowledged: there whole, or not at all
            assert db.get(f"k{i}") in (None, {"i": i})


def _send_until_closed(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:  # the server was killed
        pass


def test_resp3(resp: Served) -> None:
    client = redis.Redis(port=port_of(resp), protocol=3)
    client.set("k", '{"a": 1}')
    assert client.get("k") == b'{"a":1}' and client.get("nope") is None
    hello = client.execute_command("HELLO", "3")
    assert hello[b"server"] == b"fastkv" and hello[b"proto"] == 3
    client.close()
    assert raw(port_of(resp), b"HELLO 3\r\nGET nope\r\n").endswith(b"_\r\n")  # RESP3 null
    assert raw(port_of(resp), b"HELLO 4\r\n").startswith(b"-NOPROTO")


def test_a_token_is_required(store_path: Path, serve: Callable[..., Served]) -> None:
    served = serve(store_path, "--resp-port", "0", token="s3cret")
    port = port_of(served)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).get("k")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, password="wrong").get("k")
    good = redis.Redis(port=port, password="s3cret")
    good.set("k", "{}")
    assert good.get("k") == b"{}"
    good.close()
    three = redis.Redis(port=port, password="s3cret", protocol=3)  # HELLO 3 AUTH ...
    assert three.get("k") == b"{}"
    three.close()


def redis_cli() -> str:
    """redis-cli's path; the test skips (or, with FASTKV_REQUIRE_REDIS=1, fails)
    without it."""
    cli = shutil.which("redis-cli")
    if cli is None:
        if os.environ.get("FASTKV_REQUIRE_REDIS") == "1":
            pytest.fail("redis-cli is not installed, and FASTKV_REQUIRE_REDIS=1")
        if sys.platform == "win32":
            pytest.skip("redis-cli is a Linux program: the Linux run drives the server with it")
        pytest.skip("redis-cli is not installed (apt-get install redis-tools)")
    return cli


def test_redis_cli(resp: Served) -> None:
    cli = redis_cli()
    port = str(port_of(resp))

    def run(*args: str) -> str:
        res = subprocess.run([cli, "-p", port, *args], capture_output=True, text=True,
                             timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    assert run("SET", "user:1", '{"name": "Ann"}') == "OK"
    assert run("GET", "user:1") == '{"name":"Ann"}'
    assert "InvalidValueError" in run("SET", "user:2", "[1]")
    assert run("DBSIZE") == "1"
    assert "fastkv_version" in run("INFO")
    assert run("--scan") == "user:1"


# ---- framing and limits ------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    b"*abc\r\n", b"*1\r\n:5\r\n", b"*1\r\n$abc\r\n", b"*1\r\n$-5\r\n", b"*1\r\n$+3\r\nGET\r\n",
    b"*1\r\n$3\r\nGETxx", b"*2\r\n$3\r\nGET\r\n$99999999999\r\n", b"*99999999\r\n",
    b"*1\r\n$ 3\r\nGET\r\n", b"*" + b"9" * 40 + b"\r\n", b"$3\r\nGET\r\n",
    b"G" * 70_000, b"GET \x00k\r\n",
])
def test_bad_framing_is_answered_and_closed(resp: Served, bad: bytes) -> None:
    port = port_of(resp)
    reply = raw(port, bad)
    assert reply == b"" or reply.startswith((b"-ERR", b"$-1", b"+", b"*")), reply[:100]
    assert raw(port, b"PING\r\n") == b"+PONG\r\n"  # the server is fine


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"*", b"$", b"\r\n", b"3", b"-1", b"GET", b"SET", b"k",
                              b"{}", b"0", b"99", b" ", b"\n", b"\r"]), max_size=40)
    .map(b"".join),
))
def test_fuzzed_requests_never_hang_or_kill_the_server(resp: Served, data: bytes) -> None:
    # one server for every example (a function-scoped fixture is not remade)
    raw(port_of(resp), data, timeout=5)
    assert raw(port_of(resp), b"PING\r\n") == b"+PONG\r\n"
    assert resp.proc.poll() is None


@pytest.mark.skipif(sys.platform == "win32", reason="lifts RLIMIT_NOFILE (POSIX)")
def test_idle_and_half_sent_connections_do_not_block_others(
        store_path: Path, serve: Callable[..., Served]) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    served = serve(store_path, "--resp-port", "0")
    port = port_of(served)
    socks = []
    try:
        for i in range(1000):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        host, http_port = served.url.rsplit("/", 1)[-1].rsplit(":", 1)
        for i in range(200):  # requests never finished, on both protocols
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n{\"half")
            socks.append(s)
            h = socket.create_connection(("127.0.0.1", int(http_port)))
            h.sendall(b"PUT /keys/k HTTP/1.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"half")
            socks.append(h)
        client = redis.Redis(port=port, socket_timeout=10)
        client.set("alive", "{}")
        assert client.get("alive") == b"{}"
        info = client.info("clients")
        assert info["connected_clients"] >= 1401
        client.close()
        with fastkv.Client(served.url, timeout=10) as http:
            assert http.read("alive") == {}
    finally:
        for s in socks:
            s.close()
    assert_stopped_cleanly(*served.stop())


def test_connection_limit_and_idle_timeout(store_path: Path,
                                           serve: Callable[..., Served]) -> None:
    served = serve(store_path, "--resp-port", "0", "--max-connections", "3",
                   "--idle-timeout", "0.5")
    port = port_of(served)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    time.sleep(0.1)
    # nothing sent: a refused connection's unread request could turn the
    # server's close into a reset that eats its answer
    assert raw(port, b"").startswith(b"-ERR max number of clients")
    time.sleep(2.0)  # the idle ones are closed...
    for s in held:
        s.settimeout(5)
        assert s.recv(10) == b""
        s.close()
    assert raw(port, b"PING\r\n") == b"+PONG\r\n"  # ...and room is made


@pytest.mark.skipif(sys.platform == "win32", reason="reads the server's memory in /proc")
def test_a_client_that_does_not_read_cannot_grow_the_server(
        store_path: Path, serve: Callable[..., Served]) -> None:
    with DataStore(store_path) as db:
        db.create("big", {"x": "y" * 16_000})
    served = serve(store_path, "--resp-port", "0")
    port = port_of(served)

    def rss_kib() -> int:
        for line in Path(f"/proc/{served.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    before = rss_kib()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 1000
    s.settimeout(0.5)
    sent = 0
    try:
        for _ in range(200):  # 200,000 GETs of 16 KB: 3.2 GB of replies if all were made
            s.sendall(request)
            sent += 1
    except socket.timeout:
        pass  # the server stopped reading: what we wanted
    time.sleep(0.5)
    grown_mib = (rss_kib() - before) / 1024
    s.close()
    assert grown_mib < 64, f"the server grew {grown_mib:.0f} MiB for one slow client"
    assert raw(port, b"PING\r\n") == b"+PONG\r\n"


def test_sigterm_with_requests_in_flight_on_both_protocols(
        store_path: Path, serve: Callable[..., Served]) -> None:
    served = serve(store_path, "--resp-port", "0")
    port = port_of(served)
    acked: list[str] = []
    stop = threading.Event()

    def resp_writer() -> None:
        c = redis.Redis(port=port, socket_timeout=10)
        i = 0
        while not stop.is_set():
            try:
                c.set(f"resp:{i}", "{}")
            except (redis.ConnectionError, redis.TimeoutError):
                return
            acked.append(f"resp:{i}")
            i += 1

    def http_writer() -> None:
        with fastkv.Client(served.url, timeout=10) as c:
            i = 0
            while not stop.is_set():
                try:
                    c.create(f"http:{i}", {})
                except (fastkv.StoreUnavailableError, fastkv.StoreClosedError):
                    return
                acked.append(f"http:{i}")
                i += 1

    threads = [threading.Thread(target=resp_writer), threading.Thread(target=http_writer)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    code, err = served.stop()
    stop.set()
    for t in threads:
        t.join(30)
    assert_stopped_cleanly(code, err)
    with DataStore(store_path) as db:
        missing = [k for k in acked if k not in db]
        assert not missing, missing[:5]
        assert any(k.startswith("resp:") for k in acked) and any(k.startswith("http:")
                                                                 for k in acked)


def test_clients_that_vanish_leave_no_traceback(resp: Served) -> None:
    port = port_of(resp)
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" * 100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # a reset, with replies unread
    assert raw(port, b"PING\r\n") == b"+PONG\r\n"
    code, err = resp.stop()
    assert_stopped_cleanly(code, err)
    assert err.count("\n") <= 2, err


def reset_at_once(port: int) -> None:
    """Connect and reset the connection (RST, not FIN) before the server
    has taken it: what made asyncio's Proactor loop close its listener."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    if sys.platform != "win32" else b"\x01\x00\x00\x00")
    sock.close()


@pytest.mark.parametrize("protocol", ["resp", "http"])
def test_the_listeners_outlive_clients_that_reset(resp: Served, protocol: str) -> None:
    port = port_of(resp) if protocol == "resp" else int(resp.url.rsplit(":", 1)[1])
    for _ in range(100):
        reset_at_once(port)
    # still accepting, on both protocols
    assert raw(port_of(resp), b"PING\r\n") == b"+PONG\r\n"
    host, http_port = "127.0.0.1", int(resp.url.rsplit(":", 1)[1])
    with socket.create_connection((host, http_port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 ")
