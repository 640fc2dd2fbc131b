"""RedisStore against real redis-server processes: what the parity module
cannot show (it runs the shared API on Redis too): locations, the errors a
server can give, faults, durability, threads, processes, iteration on a
cluster, the command line, and asyncio."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

import fastkv
import fastkv.aio

if TYPE_CHECKING:
    from conftest import RedisCluster, RedisServer, RunPython


# ---- locations ------------------------------------------------------------------------


def test_open_picks_the_store_from_the_location(tmp_path: Path, redis_server: RedisServer,
                                                namespace: str) -> None:
    with fastkv.open(tmp_path / "a.fkv") as db:
        assert isinstance(db, fastkv.DataStore)
    with fastkv.open(redis_server.url, namespace=namespace) as rs:
        assert isinstance(rs, fastkv.RedisStore) and rs.namespace == namespace
    for bad in ("http://host/x", "ftp://x", "postgres://u@h/db"):
        with pytest.raises(fastkv.ConfigError, match="unknown location scheme"):
            fastkv.open(bad)
    with pytest.raises(fastkv.ConfigError, match="server URL"):
        fastkv.DataStore(redis_server.url)
    assert not list(tmp_path.glob("redis*")), "a URL must never become a file"


def test_unix_socket_url(new_redis: Callable[..., RedisServer], tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    new_redis("--unixsocket", str(sock), "--unixsocketperm", "700")
    with fastkv.open(f"unix://{sock}") as db:
        db.create("k", {"v": 1})
        assert db.read("k") == {"v": 1}


def test_tls_url(new_redis: Callable[..., RedisServer], tmp_path: Path, namespace: str) -> None:
    import shutil

    if not shutil.which("openssl"):
        pytest.skip("openssl (to make a test certificate) is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = new_redis("--tls-port", "0", "--tls-cert-file", str(cert), "--tls-key-file",
                       str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
    # the plain port stays for the fixture's ping; TLS listens on a port of its own
    tls_port = free_tls_port(server)
    url = f"rediss://127.0.0.1:{tls_port}/0"
    with fastkv.open(f"{url}?ssl_ca_certs={cert}", namespace=namespace) as db:
        db.put("k", {"v": 1})
        assert db.read("k") == {"v": 1}
    with pytest.raises(fastkv.StoreUnavailableError, match="certificate"):
        fastkv.open(url, namespace=namespace, timeout=5)  # an untrusted certificate


def free_tls_port(server: RedisServer) -> int:
    """Move the server's TLS listener to a free port (CONFIG SET), return it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    server.cli("config", "set", "tls-port", str(port))
    return port


@pytest.mark.parametrize("namespace_arg", ["a:b", 7, None])
def test_bad_namespace(redis_server: RedisServer, namespace_arg: Any) -> None:
    with pytest.raises(fastkv.ConfigError):
        fastkv.RedisStore(redis_server.url, namespace=namespace_arg)


def test_an_empty_namespace_is_the_whole_keyspace(new_redis: Callable[..., RedisServer]) -> None:
    server = new_redis()
    server.cli("set", "other", '{"by": "someone else"}')
    with fastkv.RedisStore(server.url, namespace="") as store:
        store.create("k" * 32, {"a": 1})
        assert server.cli("get", "k" * 32).strip() == '{"a":1}'
        assert sorted(store.keys()) == ["k" * 32, "other"] and len(store) == 2
        store.delete("other")
        assert server.cli("exists", "other").strip() == "0"


def test_a_ready_client_is_used_and_left_open(redis_server: RedisServer, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    with fastkv.RedisStore(client=client, namespace=namespace) as db:
        db.put("k", {"v": 1})
    assert client.get(f"{namespace}:k") == b'{"v":1}'  # the same bytes a file holds
    client.close()


# ---- what the server can answer -----------------------------------------------------


def test_out_of_memory_is_store_full(new_redis: Callable[..., RedisServer],
                                     namespace: str) -> None:
    server = new_redis("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    big = {"x": "y" * 16_000}
    with fastkv.open(server.url, namespace=namespace) as db:
        with pytest.raises(fastkv.StoreFullError) as info:
            for i in range(1000):
                db.create(f"k{i}", big)
        assert isinstance(info.value, OSError) and "out of memory" in str(info.value)
        assert db.read("k0") == big  # what was written stays readable
        db.delete("k0")  # and deletes still work


def test_passwords(new_redis: Callable[..., RedisServer], namespace: str) -> None:
    server = new_redis("--requirepass", "s3cret")
    with pytest.raises(fastkv.UnauthorizedError):
        fastkv.open(server.url, namespace=namespace)
    wrong = server.url.replace("redis://", "redis://:nope@")
    with pytest.raises(fastkv.UnauthorizedError) as info:
        fastkv.open(wrong, namespace=namespace)
    assert "nope" not in str(info.value)  # no password in a message
    with fastkv.open(server.url.replace("redis://", "redis://:s3cret@"),
                     namespace=namespace) as db:
        db.create("k", {"v": 1})
        assert "s3cret" not in repr(db) and "s3cret" not in str(db.stats())


def test_values_written_by_something_else(redis_server: RedisServer, namespace: str) -> None:
    with fastkv.open(redis_server.url, namespace=namespace) as db:
        c = db.client
        c.set(f"{namespace}:text", b"hello")
        c.set(f"{namespace}:array", b"[1,2]")
        c.set(f"{namespace}:huge", b'{"x":"' + b"y" * 20_000 + b'"}')
        c.hset(f"{namespace}:hash", "f", "v")
        c.set(f"{namespace}:" + "k" * 40, b"{}")  # not a fastkv key: left out
        for key in ("text", "array", "huge", "hash"):
            with pytest.raises(fastkv.CorruptionError, match=key):
                db.read(key)
        assert sorted(db.keys()) == ["array", "hash", "huge", "text"]


# ---- faults ---------------------------------------------------------------------------


def test_a_dead_server_is_unavailable_then_comes_back(new_redis: Callable[..., RedisServer],
                                                      namespace: str) -> None:
    server = new_redis()
    with fastkv.open(server.url, namespace=namespace, timeout=2) as db:
        db.create("k", {"v": 1})
        server.kill()
        for call in (lambda: db.read("k"), lambda: db.create("x", {}), lambda: len(db),
                     db.sync, db.stats):
            started = time.monotonic()
            with pytest.raises(fastkv.StoreUnavailableError) as info:
                call()
            assert isinstance(info.value, ConnectionError)
            assert time.monotonic() - started < 30  # bounded by the timeout: no hang
        server.start()  # same port, no persistence: an empty server
        db.create("k", {"v": 2})
        assert db.read("k") == {"v": 2}


def test_a_cluster_with_a_node_down_is_unavailable(
        new_redis_cluster: Callable[[], RedisCluster], namespace: str) -> None:
    cluster = new_redis_cluster()
    with fastkv.open(cluster.url, namespace=namespace, timeout=2) as db:
        keys = [f"k{i}" for i in range(30)]
        for k in keys:
            db.create(k, {"k": k})
        dead = cluster.nodes[2]
        on_dead = {k for k in keys
                   if db.client.get_node_from_key(f"{namespace}:{k}").port == dead.port}
        assert on_dead and len(on_dead) < len(keys)
        dead.kill()
        # the survivors declare the cluster down after the node timeout
        deadline = time.monotonic() + 60
        while "cluster_state:fail" not in cluster.nodes[0].cli("cluster", "info"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for k in (sorted(on_dead)[0], sorted(set(keys) - on_dead)[0]):
            started = time.monotonic()
            with pytest.raises(fastkv.StoreUnavailableError):
                db.read(k)  # refused, or CLUSTERDOWN from a live node
            assert time.monotonic() - started < 30


def test_a_write_whose_answer_is_lost_is_not_retried(new_redis: Callable[..., RedisServer],
                                                     namespace: str) -> None:
    server = new_redis()
    assert server.proc is not None
    with fastkv.open(server.url, namespace=namespace, timeout=1) as db:
        db.create("warm", {})  # the connection is open
        server.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(fastkv.StoreUnavailableError, match="may or may not"):
                db.create("k", {"v": 1})
        finally:
            server.proc.send_signal(signal.SIGCONT)
        # it did happen once the server woke: the outcome was truly unknown
        deadline = time.monotonic() + 10
        while "k" not in db:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert db.read("k") == {"v": 1}


def test_acknowledged_creates_survive_a_kill_with_appendfsync_always(
        new_redis: Callable[..., RedisServer], namespace: str) -> None:
    server = new_redis("--appendonly", "yes", "--appendfsync", "always")
    acked: list[str] = []
    with fastkv.open(server.url, namespace=namespace, timeout=5) as db:
        def writer() -> None:
            for i in range(1_000_000):
                try:
                    db.create(f"k{i}", {"i": i})
                except fastkv.StoreUnavailableError:
                    return
                acked.append(f"k{i}")

        t = threading.Thread(target=writer)
        t.start()
        while len(acked) < 300:
            time.sleep(0.005)
        server.kill(signal.SIGKILL)
        t.join(60)
        assert not t.is_alive()
        server.start()
        for key in acked:
            assert db.read(key) == {"i": int(key[1:])}


# ---- many threads, many processes, a cluster --------------------------------------------


def test_threads_against_a_model_on_the_cluster(redis_cluster: RedisCluster,
                                                namespace: str) -> None:
    errors: list[BaseException] = []
    models: list[dict[str, Any]] = [{} for _ in range(8)]
    with fastkv.open(redis_cluster.url, namespace=namespace) as db:
        def work(n: int) -> None:
            rnd, model = random.Random(n), models[n]
            try:
                for step in range(400):
                    key = f"t{n}:{rnd.randrange(40)}"
                    op = rnd.choice(("create", "put", "delete", "read", "touch"))
                    if op == "create":
                        if key in model:
                            with pytest.raises(fastkv.KeyExistsError):
                                db.create(key, {"s": step})
                        else:
                            db.create(key, {"s": step})
                            model[key] = {"s": step}
                    elif op == "put":
                        db.put(key, {"p": step}, ttl=3600)
                        model[key] = {"p": step}
                    elif op == "delete":
                        if key in model:
                            db.delete(key)
                            del model[key]
                        else:
                            with pytest.raises(fastkv.KeyNotFoundError):
                                db.delete(key)
                    elif op == "touch" and key in model:
                        db.touch(key, None)
                        assert db.ttl(key) is None
                    else:
                        assert db.get(key) == model.get(key)
            except BaseException as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        expected = {k: v for m in models for k, v in m.items()}
        assert dict(db.items()) == expected
        assert len(db) == len(expected)


def test_two_processes_share_one_location(redis_server: RedisServer, namespace: str,
                                          run_python: RunPython) -> None:
    with fastkv.open(redis_server.url, namespace=namespace) as db:
        db.create("from-parent", {"who": "parent"})
        res = run_python("""
            import sys, fastkv
            with fastkv.open(sys.argv[1], namespace=sys.argv[2]) as db:
                assert db.read("from-parent") == {"who": "parent"}
                db.create("from-child", {"who": "child"}, ttl=60)
            """, redis_server.url, namespace)
        assert res.returncode == 0, res.stderr
        assert db.read("from-child") == {"who": "child"}
        left = db.ttl("from-child")
        assert left is not None and 0 < left <= 60


def test_iteration_covers_every_primary_once(redis_cluster: RedisCluster,
                                             namespace: str) -> None:
    with fastkv.open(redis_cluster.url, namespace=namespace) as db:
        keys = [f"user:{i}" for i in range(3000)] + ["odd*[k]?", "odd*x", "odd\\y"]
        pipe = db.client.pipeline(transaction=False)
        for k in keys:
            pipe.set(f"{namespace}:{k}".encode(), b"{}")
        pipe.execute()
        nodes = {db.client.get_node_from_key(f"{namespace}:{k}").name for k in keys}
        assert len(nodes) == 3  # no hash tag: the keys spread over the nodes
        got = list(db.keys())
        assert len(got) == len(set(got)) and set(got) == set(keys)
        assert sorted(db.keys("odd*")) == ["odd*[k]?", "odd*x"]  # MATCH escaped
        assert list(db.keys("odd*[")) == ["odd*[k]?"]
        assert len(db) == len(keys)


# ---- the command line -------------------------------------------------------------------


def test_cli_moves_a_store_to_redis_and_back(tmp_path: Path, fastkv_exe: str,
                                             redis_server: RedisServer, namespace: str) -> None:
    src, back = tmp_path / "app.fkv", tmp_path / "back.fkv"
    with fastkv.DataStore(src) as db:
        for i in range(50):
            db.create(f"k{i}", {"i": i}, ttl=1000 + i if i % 2 else None)
        expected = {k: db.read_with_deadline(k) for k in db.keys()}
    url = redis_server.url
    ns = ["--namespace", namespace]

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([fastkv_exe, *args], input=stdin, capture_output=True, timeout=60)

    dump = run("export", "--path", str(src))
    assert dump.returncode == 0
    assert run("import", "-", "--path", url, *ns, stdin=dump.stdout).returncode == 0
    again = run("export", "--path", url, *ns)
    assert again.stdout == dump.stdout  # every value and deadline, to the millisecond
    assert run("import", "-", "--path", str(back), stdin=again.stdout).returncode == 0
    with fastkv.DataStore(back) as db:
        assert {k: db.read_with_deadline(k) for k in db.keys()} == expected

    info = run("info", "--json", "--path", url, *ns)
    stats = json.loads(info.stdout)
    assert stats["live_keys"] == 50 and stats["server"].startswith(("redis ", "valkey "))
    read = run("read", "k1", "--json", "--path", url, *ns)
    assert json.loads(read.stdout)["expires_at_ms"] == expected["k1"][1]
    for file_only in ("verify", "repair"):
        res = run(file_only, "--path", url)
        assert res.returncode == 2 and b"store file" in res.stderr
    res = run("keys", "--path", "http://localhost:1/")
    assert res.returncode == 1 and b"unknown location scheme" in res.stderr
    port = url.rsplit(":", 1)[1].split("/")[0]
    dead = url.replace(port, "1")
    res = run("read", "k1", "--path", dead)
    assert res.returncode == 1 and b"did not answer" in res.stderr
    assert res.stderr.count(b"\n") == 1  # one line, no traceback


# ---- asyncio ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["redis_server", "redis_cluster"])
def test_async_redis_store(request: pytest.FixtureRequest, where: str, namespace: str) -> None:
    server = request.getfixturevalue(where)

    async def main() -> None:
        db = await fastkv.aio.open(server.url, namespace=namespace)
        assert isinstance(db, fastkv.aio.AsyncRedisStore)
        async with db:
            await db.create("a", {"v": 1}, ttl=100)
            with pytest.raises(fastkv.KeyExistsError):
                await db.create("a", {"v": 2})
            await db.put("b", {"v": 2})
            assert await db.read("a") == {"v": 1} and await db.get("zz", 5) == 5
            left = await db.ttl("a")
            assert left is not None and 98 < left <= 100
            await db.touch("a", None)
            assert await db.ttl("a") is None and await db.contains("a")
            with pytest.raises(fastkv.InvalidTTLError):
                await db.touch("a", 0)
            with pytest.raises(fastkv.InvalidValueError):
                await db.put("c", [1])
            await asyncio.gather(*(db.put(f"many:{i}", {"i": i}) for i in range(300)))
            assert sorted([k async for k in db.keys("many:")]) == \
                sorted(f"many:{i}" for i in range(300))
            assert dict([kv async for kv in db.items("many:1")]) == \
                {f"many:{i}": {"i": i} for i in range(300) if str(i).startswith("1")}
            assert await db.count() == 302
            await db.delete("a")
            with pytest.raises(fastkv.KeyNotFoundError):
                await db.read("a")
        with pytest.raises(fastkv.StoreClosedError):
            await db.read("b")

    asyncio.run(main())


def test_async_unavailable(new_redis: Callable[..., RedisServer], namespace: str) -> None:
    server = new_redis()
    server.kill()

    async def main() -> None:
        with pytest.raises(fastkv.StoreUnavailableError):
            await fastkv.aio.open(server.url, namespace=namespace, timeout=1)

    asyncio.run(main())


def test_redis_py_is_imported_only_when_used(run_python: RunPython) -> None:
    res = run_python("""
        import sys, fastkv, fastkv.aio
        assert "redis" not in sys.modules, "import fastkv pulled in redis-py"
        fastkv.RedisStore
        assert "redis" in sys.modules
        """)
    assert res.returncode == 0, res.stderr


def test_scan_repeats_and_foreign_names_are_filtered() -> None:
    """SCAN may hand out a key twice (a table resized mid-walk), even in one
    reply: a walk yields each key once. Names that cannot be fastkv keys are
    left out. (The mapping alone: no server can be made to repeat on cue.)"""
    from fastkv.redis.mapping import Mapping

    m = Mapping("ns", "redis://127.0.0.1:1/0")
    seen: set[str] = set()
    assert m.new_keys([b"ns:a", b"ns:b"], seen) == ["a", "b"]
    assert m.new_keys([b"ns:b", b"ns:c", b"ns:c"], seen) == ["c"]
    assert m.new_keys([b"ns:d", b"ns:d"], seen) == ["d"]
    assert m.new_keys([b"ns:\xc3", b"ns:" + b"k" * 33, b"ns:", "ns:e"], seen) == ["e"]
    assert seen == {"a", "b", "c", "d", "e"}
