"""`fastkv serve`: the real server in a subprocess, on a free loopback port."""

from __future__ import annotations

import http.client
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import quote, urlsplit

import pytest

import fastkv
from fastkv import Client, DataStore
from fastkv.errors import InvalidKeyError

from platforms import NO_CTRL_BREAK, UNDER_WINE, assert_stopped_cleanly

if TYPE_CHECKING:
    from conftest import Served

Serve = Callable[..., "Served"]


def address(served: Served) -> tuple[str, int]:
    parts = urlsplit(served.url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def call(
    served: Served, method: str, target: str, body: Optional[bytes] = None,
    headers: Optional[dict[str, str]] = None, token: Optional[str] = "use-served",
) -> tuple[int, dict[str, str], Any]:
    """One request on a fresh connection: status, headers, decoded JSON body."""
    conn = http.client.HTTPConnection(*address(served), timeout=30)
    hdrs = dict(headers or {})
    tok = served.token if token == "use-served" else token
    if tok is not None:
        hdrs.setdefault("Authorization", f"Bearer {tok}")
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, target, body=body, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else None


@pytest.fixture
def served(serve: Serve, store_path: Path) -> Served:
    return serve(store_path)


# ---- every endpoint and status ---------------------------------------------------


def test_create_read_delete_over_http(served: Served) -> None:
    status, hdrs, body = call(served, "PUT", "/keys/user%3A1", b'{"name": "Ann", "n": [1, 2.5]}')
    assert status == 201 and body == {"key": "user:1"}
    assert hdrs["location"] == "/keys/user%3A1"
    assert call(served, "GET", "/keys/user%3A1")[::2] == (200, {"name": "Ann", "n": [1, 2.5]})
    status, _, body = call(served, "PUT", "/keys/user%3A1", b"{}")
    assert status == 409 and body["error"] == "KeyExistsError"
    status, hdrs, body = call(served, "DELETE", "/keys/user%3A1")
    assert status == 204 and body is None
    status, _, body = call(served, "GET", "/keys/user%3A1")
    assert status == 404 and body["error"] == "KeyNotFoundError" and "user:1" in body["message"]
    assert call(served, "DELETE", "/keys/user%3A1")[0] == 404


def test_expired_keys_are_404_saying_so(served: Served) -> None:
    assert call(served, "PUT", "/keys/s?ttl=1", b'{"uid": 1}')[0] == 201
    assert call(served, "GET", "/keys/s")[0] == 200
    time.sleep(1.2)
    status, _, body = call(served, "GET", "/keys/s")
    assert status == 404 and body["error"] == "KeyExpiredError"
    assert "expired" in body["message"]


def test_keys_are_percent_decoded_path_segments(served: Served) -> None:
    for key in ["a/b", "with space", "ключ", "q?x=1#f", "%41", "é" * 32]:
        target = "/keys/" + quote(key, safe="")
        assert call(served, "PUT", target, json.dumps({"k": key}).encode())[0] == 201, key
        assert call(served, "GET", target)[2] == {"k": key}
    with Client(served.url) as kv:
        assert kv.read("a/b") == {"k": "a/b"}
    # an unencoded '/' makes two segments: no such endpoint
    assert call(served, "GET", "/keys/a/b")[0] == 404


def test_list_keys_with_prefix_and_limit(served: Served) -> None:
    for i in range(12):
        call(served, "PUT", f"/keys/user:{i:02d}", b"{}")
    call(served, "PUT", "/keys/other", b"{}")
    status, _, body = call(served, "GET", "/keys?prefix=user:&limit=5")
    assert status == 200
    assert body == {"keys": [f"user:{i:02d}" for i in range(5)], "truncated": True}
    body = call(served, "GET", "/keys")[2]
    assert len(body["keys"]) == 13 and body["truncated"] is False
    for bad in ["0", "-1", "abc", "100001", "1.5"]:
        status, _, body = call(served, "GET", f"/keys?limit={bad}")
        assert status == 400 and "limit" in body["message"], bad


def test_a_walk_by_cursor_covers_every_key_once(served: Served) -> None:
    with Client(served.url) as kv:
        names = {f"user:{i:05d}" for i in range(3000)} | {"other"}
        for name in names:
            kv.create(name, {"n": name})
        seen: list[str] = []
        cursor, batches = 0, 0
        while True:
            status, _, body = call(served, "GET", f"/keys?prefix=user:&cursor={cursor}")
            assert status == 200 and set(body) == {"keys", "cursor"}
            seen += body["keys"]
            batches += 1
            cursor = body["cursor"]
            if cursor == 0:
                break
        assert batches > 1  # the walk was really in batches
        assert sorted(seen) == sorted(names - {"other"})  # each exactly once
        assert sorted(kv.keys()) == sorted(kv) == sorted(names)
        assert sorted(kv.keys("user:0001")) == [f"user:{i:05d}" for i in range(10, 20)]
        assert dict(kv.items("other")) == {"other": {"n": "other"}}
        assert len(kv) == len(names)
        with pytest.raises(InvalidKeyError):
            kv.keys(5)  # type: ignore[arg-type]
    for bad in ["-1", "abc", "1.5", "99999999999999", str(1 << 40)]:
        status, _, body = call(served, "GET", f"/keys?cursor={bad}")
        assert status == 400 and "cursor" in body["message"], bad


def test_stats_health_and_openapi(served: Served) -> None:
    call(served, "PUT", "/keys/a", b'{"x": 1}')
    status, _, stats = call(served, "GET", "/stats")
    assert status == 200 and stats["live_keys"] == 1 and stats["path"] == str(served.path)
    assert call(served, "GET", "/health")[::2] == (200, {"status": "ok",
                                                         "version": fastkv.__version__})
    status, hdrs, doc = call(served, "GET", "/openapi.json")
    assert status == 200 and hdrs["content-type"] == "application/json"
    assert doc["openapi"].startswith("3.") and "/keys/{key}" in doc["paths"]
    documented = set(doc["paths"]["/keys/{key}"]["put"]["responses"])
    assert {"201", "400", "401", "409", "413", "415", "507"} <= documented


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, body, ctype, status, error",
    [
        ("/keys/k", b"{not json", "application/json", 400, "InvalidValueError"),
        ("/keys/k", b"[1, 2]", "application/json", 400, "InvalidValueError"),
        ("/keys/k", b'"text"', "application/json", 400, "InvalidValueError"),
        ("/keys/k", b"", "application/json", 400, "InvalidValueError"),
        ("/keys/k", b'{"x": NaN}', "application/json", 400, "InvalidValueError"),
        ("/keys/" + "k" * 33, b"{}", "application/json", 400, "InvalidKeyError"),
        ("/keys/", b"{}", "application/json", 400, "InvalidKeyError"),
        ("/keys/%FF", b"{}", "application/json", 400, "InvalidKeyError"),
        ("/keys/k?ttl=0", b"{}", "application/json", 400, "InvalidTTLError"),
        ("/keys/k?ttl=abc", b"{}", "application/json", 400, "InvalidTTLError"),
        ("/keys/k?ttl=-5", b"{}", "application/json", 400, "InvalidTTLError"),
        ("/keys/k?ttl=315360001", b"{}", "application/json", 400, "InvalidTTLError"),
        ("/keys/k?ttl=1&ttl=2", b"{}", "application/json", 400, "RequestError"),
        ("/keys/k", b"{}", "text/plain", 415, "RequestError"),
        ("/keys/k", b'{"a": "' + b"x" * (17 * 1024) + b'"}', "application/json", 413,
         "ValueTooLargeError"),
    ],
)
def test_bad_puts_are_refused_and_change_nothing(
    served: Served, target: str, body: bytes, ctype: str, status: int, error: str
) -> None:
    got, _, answer = call(served, "PUT", target, body, {"Content-Type": ctype})
    assert (got, answer["error"]) == (status, error), answer
    assert answer["message"]
    assert call(served, "GET", "/keys")[2]["keys"] == []


def test_every_error_body_names_a_fastkv_class(served: Served) -> None:
    cases = [("GET", "/nowhere", None, {}, 404), ("GET", "/keys/a/b", None, {}, 404),
             ("POST", "/keys/k", b"{}", {}, 405), ("PUT", "/keys/k", b"[1]", {}, 400),
             ("PUT", "/keys/k", b"{}", {"Content-Type": "text/plain"}, 415),
             ("GET", "/keys/missing", None, {}, 404), ("PUT", "/keys/k?ttl=0", b"{}", {}, 400)]
    for method, target, body, headers, status in cases:
        got, _, err = call(served, method, target, body, headers)
        assert got == status, (method, target, err)
        assert err["error"] in fastkv.errors.__all__ and err["message"], err


def test_expect_100_continue_is_answered(served: Served) -> None:
    body = json.dumps({"x": "y" * 2000}).encode()
    with socket.create_connection(address(served), timeout=10) as sock:
        sock.sendall(b"PUT /keys/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")  # no wait for a timeout
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 201 ")


def test_oversized_body_is_refused_from_its_header_alone(served: Served) -> None:
    """413 comes back although the body was never sent: the server did not
    wait to read 17 KiB it would only throw away."""
    with socket.create_connection(address(served), timeout=10) as sock:
        sock.sendall(b"PUT /keys/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 17408\r\n\r\n")
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413 ")
    assert "Connection: close" in answer and "ValueTooLargeError" in answer


def test_put_without_a_length_is_411(served: Served) -> None:
    with socket.create_connection(address(served), timeout=10) as sock:
        sock.sendall(b"PUT /keys/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        assert sock.recv(65536).decode().startswith("HTTP/1.1 411 ")


def test_unknown_endpoints_and_methods(served: Served) -> None:
    assert call(served, "GET", "/nothing")[0] == 404
    status, hdrs, body = call(served, "POST", "/keys/k", b"{}")
    assert status == 405 and hdrs["allow"] == "GET, PUT, DELETE"
    assert call(served, "DELETE", "/stats")[0] == 405
    assert call(served, "TRACE", "/health")[0] == 405


def test_a_refused_request_leaves_the_connection_in_step(served: Served) -> None:
    """A body the server refuses before reading it (bad ttl, wrong method)
    is still drained, so the next request on the connection parses."""
    conn = http.client.HTTPConnection(*address(served), timeout=10)
    for method, target in [("PUT", "/keys/k?ttl=abc"), ("POST", "/keys/k"), ("GET", "/health"),
                           ("PUT", "/keys/k")]:
        conn.request(method, target, body=b'{"a": 1}', headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (400, 405, 200, 201), (method, target, resp.status)
    conn.close()
    assert call(served, "GET", "/keys/k")[2] == {"a": 1}


def test_store_full_is_507(serve: Serve, store_path: Path) -> None:
    served = serve(store_path, "--max-file-size", "4096")
    statuses = [call(served, "PUT", f"/keys/k{i}", json.dumps({"pad": "x" * 200}).encode())[0]
                for i in range(30)]
    assert 201 in statuses and statuses[-1] == 507
    status, _, body = call(served, "PUT", "/keys/more", json.dumps({"pad": "x" * 200}).encode())
    assert status == 507 and body["error"] == "StoreFullError"
    assert call(served, "GET", "/keys/k0")[0] == 200  # and it still serves


# ---- the token ---------------------------------------------------------------------


def test_token_is_required_on_every_endpoint(serve: Serve, store_path: Path) -> None:
    served = serve(store_path, token="s3cret-token")
    for method, target, body in [("GET", "/health", None), ("GET", "/keys", None),
                                 ("PUT", "/keys/k", b"{}"), ("GET", "/keys/k", None),
                                 ("GET", "/openapi.json", None)]:
        for tok in (None, "wrong", "s3cret-toke", "s3cret-token-and-more"):
            status, hdrs, answer = call(served, method, target, body, token=tok)
            assert status == 401 and answer["error"] == "UnauthorizedError", (target, tok)
            assert hdrs["www-authenticate"].startswith("Bearer")
    assert call(served, "PUT", "/keys/k", b"{}")[0] == 201
    assert call(served, "GET", "/keys/k", headers={"Authorization": "bearer s3cret-token"})[0] == 200
    with Client(served.url, token="nope") as kv, pytest.raises(fastkv.UnauthorizedError):
        kv.read("k")
    with Client(served.url, token="s3cret-token") as kv:
        assert kv.read("k") == {}


def test_token_from_the_environment(serve: Serve, store_path: Path) -> None:
    served = serve(store_path, env={"FASTKV_TOKEN": "from-env"})
    assert call(served, "GET", "/health", token=None)[0] == 401
    assert call(served, "GET", "/health", token="from-env")[0] == 200


# ---- concurrency -------------------------------------------------------------------


def test_32_client_threads_lose_nothing(served: Served) -> None:
    kv = Client(served.url)
    models: list[dict[str, Any]] = [{} for _ in range(32)]
    winners: list[list[int]] = [[] for _ in range(32)]
    errors: list[BaseException] = []

    def work(t: int) -> None:
        rng = random.Random(t)
        model = models[t]
        try:
            for i in range(120):
                key = f"t{t}:{rng.randrange(20)}"
                op = rng.random()
                if op < 0.45:
                    value = {"t": t, "i": i}
                    if key in model:
                        with pytest.raises(fastkv.KeyExistsError):
                            kv.create(key, value)
                    else:
                        kv.create(key, value, ttl=3600 if i % 2 else None)
                        model[key] = value
                elif op < 0.8:
                    if key in model:
                        assert kv.read(key) == model[key]
                    else:
                        with pytest.raises(fastkv.KeyNotFoundError):
                            kv.read(key)
                else:
                    if key in model:
                        kv.delete(key)
                        del model[key]
                    else:
                        with pytest.raises(fastkv.KeyNotFoundError):
                            kv.delete(key)
                if i % 10 == 0:  # all threads race for the same shared keys
                    try:
                        kv.create(f"shared:{i}", {"winner": t})
                        winners[t].append(i)
                    except fastkv.KeyExistsError:
                        pass
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    expected = {k: v for m in models for k, v in m.items()}
    shared = sorted(i for w in winners for i in w)
    assert shared == list(range(0, 120, 10))  # each shared key created exactly once
    assert sorted(kv.keys(prefix="t")) == sorted(expected)
    for key, value in expected.items():
        assert kv.read(key) == value
    for t, won in enumerate(winners):
        for i in won:
            assert kv.read(f"shared:{i}") == {"winner": t}
    kv.close()
    assert_stopped_cleanly(*served.stop())
    with DataStore(served.path) as db:  # and all of it is on disk
        assert {k: db.read(k) for k in db if k.startswith("t")} == expected


# ---- one file, one server; stopping cleanly -------------------------------------------


def test_a_second_server_on_the_same_file_is_refused(served: Served, fastkv_exe: str) -> None:
    res = subprocess.run([fastkv_exe, "--path", str(served.path), "serve", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastkv: error: ")
    assert "lock" in lines[0].lower() and "Traceback" not in res.stderr
    assert call(served, "GET", "/health")[0] == 200  # the first one is untouched


# how a user stops the server: SIGTERM or Ctrl+C; on Windows, Ctrl+Break
STOP = getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM)
STOPS = [STOP] if sys.platform == "win32" else [signal.SIGTERM, signal.SIGINT]


@pytest.mark.parametrize("sig", STOPS)
def test_a_signal_stops_the_server_and_closes_the_store(served: Served, sig: int) -> None:
    with Client(served.url) as kv:
        for i in range(50):
            kv.create(f"k{i}", {"i": i})
    code, err = served.stop(sig)
    assert code == 0, err
    assert "stopped; the store is closed" in err and "Traceback" not in err
    with DataStore(served.path) as db:  # the lock is free and nothing was lost
        assert len(db) == 50 and db.read("k49") == {"i": 49}


def test_a_client_of_a_stopped_server_gets_store_unavailable(served: Served) -> None:
    with Client(served.url, timeout=5) as kv:
        kv.create("k", {"v": 1})
        served.stop()
        for call in (lambda: kv.read("k"), lambda: kv.create("x", {})):
            with pytest.raises(fastkv.StoreUnavailableError) as info:
                call()
            assert isinstance(info.value, ConnectionError)
            assert "may or may not" not in str(info.value)  # refused: never sent


def test_a_client_of_a_silent_server_times_out(tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        with Client(url, timeout=0.5) as kv:
            with pytest.raises(fastkv.StoreUnavailableError, match="may or may not"):
                kv.create("k", {"v": 1})


def test_a_request_in_flight_finishes_during_shutdown(served: Served) -> None:
    """A client mid-way through a slow upload still gets its answer."""
    if UNDER_WINE:
        pytest.skip(NO_CTRL_BREAK)
    sock = socket.create_connection(address(served), timeout=30)
    body = b'{"late": true}'
    sock.sendall(b"PUT /keys/late HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
    time.sleep(0.5)  # the server is now inside the request, reading the body
    served.proc.send_signal(STOP)
    time.sleep(0.5)
    sock.sendall(body[5:])
    answer = sock.recv(65536).decode()
    sock.close()
    assert answer.startswith("HTTP/1.1 201 "), answer
    # the first SIGTERM ends it: a second one (served.stop()) could land
    # after the server put the default handlers back, and kill it
    assert served.proc.wait(timeout=60) == 0
    with DataStore(served.path) as db:
        assert db.read("late") == {"late": True}


# ---- the document against the server ----------------------------------------------------


def test_schemathesis_finds_no_server_error_and_no_mismatch(serve: Serve, tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None and sys.platform == "win32":
        pytest.skip("schemathesis (its st command) is not installed: its jsonschema_rs needs "
                    "bcryptprimitives.dll, which Wine 8 lacks (the Linux run fuzzes the server)")
    if st is None:
        pytest.skip("schemathesis is not installed (it is in the test extra)")
    served = serve(tmp_path / "fuzzed.fkv", token="fuzz")
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_headers_conformance,response_schema_conformance")
    res = subprocess.run(
        [st, "run", served.url + "/openapi.json", "-H", "Authorization: Bearer fuzz",
         "--checks", checks, "--max-examples", "40", "--seed", "7", "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout[-6000:]
    assert " passed" in res.stdout


def test_a_port_in_use_is_one_clear_line(
    served: Served, tmp_path: Path, fastkv_exe: str
) -> None:
    port = str(address(served)[1])
    res = subprocess.run([fastkv_exe, "--path", str(tmp_path / "other.fkv"), "serve", "--port", port],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"fastkv: error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    with DataStore(tmp_path / "other.fkv") as db:  # the store it opened was closed again
        assert len(db) == 0
