"""Transactions and the batch calls on a DataStore: every sentence of SPEC's
"Transactions" and "Several keys at once" paragraphs, with real threads for
isolation and visibility and real processes killed for atomicity."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest

import fastkv
from fastkv import DataStore
from fastkv.errors import (
    CorruptionError,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyExpiredError,
    KeyNotFoundError,
    StoreClosedError,
    StoreFullError,
    TransactionError,
)

JOIN = 30  # seconds a thread gets before the test calls it hung


def run_thread(fn: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def body() -> None:
        try:
            out.append(("ok", fn(*args)))
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out.append(("err", e))

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, out


# ---- several keys at once ---------------------------------------------------------


def test_get_many_leaves_out_missing_and_expired(db: DataStore, clock: Any) -> None:
    db.create("a", {"v": 1})
    db.create("b", {"v": 2}, ttl=10)
    clock.advance(11)
    assert db.get_many(["a", "b", "c", "a"]) == {"a": {"v": 1}}
    assert db.get_many([]) == {}
    with pytest.raises(InvalidKeyError):
        db.get_many(["a", ""])


def test_put_many_keeps_last_value_and_takes_pairs_or_a_mapping(db: DataStore) -> None:
    db.put_many([("a", {"v": 1}), ("b", {"v": 2}), ("a", {"v": 3})])
    assert db.read("a") == {"v": 3} and db.read("b") == {"v": 2}
    db.put_many({"c": {"v": 4}}, ttl=100)
    assert 99 < (db.ttl("c") or 0) <= 100
    db.put_many({})
    assert len(db) == 3


@pytest.mark.parametrize("bad", [
    ("", {"v": 1}, InvalidKeyError),
    ("k", {"v": float("nan")}, InvalidValueError),
    ("k", [1, 2], InvalidValueError),
    ("k", {"v": "x" * 20000}, InvalidValueError),
])
def test_put_many_one_refused_pair_writes_nothing(db: DataStore, bad: tuple[Any, ...]) -> None:
    db.put("a", {"v": 0})
    key, value, err = bad
    with pytest.raises(err):
        db.put_many([("a", {"v": 1}), ("z", {"v": 2}), (key, value)])
    assert db.read("a") == {"v": 0} and "z" not in db and len(db) == 1
    with pytest.raises(InvalidTTLError):
        db.put_many({"a": {"v": 1}}, ttl=0)
    assert db.read("a") == {"v": 0}


def test_delete_many_counts_each_live_key_once(db: DataStore, clock: Any) -> None:
    db.put_many({"a": {}, "b": {}, "c": {}})
    db.create("e", {}, ttl=5)
    clock.advance(6)
    assert db.delete_many(["a", "b", "a", "missing", "e"]) == 2
    assert sorted(db) == ["c"]
    assert db.delete_many([]) == 0


def test_batches_survive_reopen_with_and_without_the_snapshot(store_path: Path) -> None:
    with DataStore(store_path) as db:
        db.put_many({f"k{i}": {"i": i} for i in range(300)})
        db.delete_many([f"k{i}" for i in range(0, 300, 3)])
        with db.transaction() as tx:
            tx.put("t", {"v": 1})
    expected = {f"k{i}": {"i": i} for i in range(300) if i % 3} | {"t": {"v": 1}}
    for drop_snapshot in (False, True):
        if drop_snapshot:
            for p in store_path.parent.glob(store_path.name + ".*"):
                p.unlink()
        with DataStore(store_path) as db:
            assert dict(db.items()) == expected
            assert len(db) == len(expected)


def test_batch_limits(store_path: Path) -> None:
    with DataStore(store_path, max_transaction_bytes=4096) as db:
        big = {f"k{i}": {"pad": "x" * 100} for i in range(50)}
        with pytest.raises(TransactionError, match="max_transaction_bytes"):
            db.put_many(big)
        assert len(db) == 0
        db.put_many(dict(list(big.items())[:10]))
        assert len(db) == 10
        # the limit counts what is written: a key given twice, once
        twice = [(f"d{i % 20}", {"pad": str(i) * 30}) for i in range(60)]
        db.put_many(twice)
        assert db.get_many([f"d{i}" for i in range(20)]) == {
            f"d{i}": {"pad": str(i + 40) * 30} for i in range(20)}
    with pytest.raises(fastkv.ConfigError):
        DataStore(store_path, max_transaction_bytes=10)


# ---- transactions: what SPEC's paragraph says ---------------------------------------


def test_tx_sees_its_own_writes_and_others_see_them_at_commit(db: DataStore) -> None:
    db.create("acct:1", {"balance": 10})
    db.create("hold:3", {})
    with db.transaction() as tx:
        bal = tx.read("acct:1")["balance"]
        tx.put("acct:1", {"balance": bal - 5})
        tx.create("log:77", {"moved": 5}, ttl=86400)
        tx.delete("hold:3")
        assert tx.read("acct:1") == {"balance": 5}
        assert "log:77" in tx and "hold:3" not in tx
        assert tx.get("hold:3", "gone") == "gone"
        assert 86399 < (tx.ttl("log:77") or 0) <= 86400
        assert tx.get_many(["acct:1", "hold:3"]) == {"acct:1": {"balance": 5}}
        # readers see the state before it
        assert db.read("acct:1") == {"balance": 10} and "log:77" not in db and "hold:3" in db
    assert db.read("acct:1") == {"balance": 5} and db.read("log:77") == {"moved": 5}
    assert "hold:3" not in db


def test_exception_inside_discards_every_change(db: DataStore) -> None:
    db.create("a", {"v": 1})
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as tx:
            tx.put("a", {"v": 2})
            tx.create("b", {})
            1 / 0
    assert db.read("a") == {"v": 1} and "b" not in db
    db.put("a", {"v": 3})  # the slot was let go


def test_refused_call_changes_nothing_and_the_tx_goes_on(db: DataStore, clock: Any) -> None:
    db.create("a", {"v": 1})
    db.create("old", {}, ttl=5)
    clock.advance(6)
    with db.transaction() as tx:
        tx.put("b", {"v": 2})
        with pytest.raises(KeyExistsError):
            tx.create("a", {"v": 9})
        with pytest.raises(KeyExistsError):
            tx.create("b", {"v": 9})
        with pytest.raises(KeyNotFoundError):
            tx.delete("nope")
        with pytest.raises(KeyExpiredError):
            tx.read("old")
        with pytest.raises(InvalidValueError):
            tx.put("c", {"v": float("inf")})
        with pytest.raises(InvalidKeyError):
            tx.put("x" * 33, {})
        with pytest.raises(InvalidTTLError):
            tx.put("c", {}, ttl=True)
        with pytest.raises(InvalidValueError):
            tx.put_many([("c", {}), ("d", "not json")])
        assert "c" not in tx and "d" not in tx
        tx.create("old", {"v": "new"})  # an expired key may be created again
        tx.put("c", {"v": 3})
    assert db.get_many(["a", "b", "c", "old"]) == {
        "a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}, "old": {"v": "new"}}


def test_tx_touch_ttl_and_the_batch_calls(db: DataStore) -> None:
    db.put_many({"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}})
    with db.transaction() as tx:
        tx.touch("a", 50)
        tx.put_many({"d": {"v": 4}, "e": {"v": 5}}, ttl=60)
        assert tx.delete_many(["b", "c", "b", "zz", "d"]) == 3
        assert "d" not in tx
        tx.touch("e", None)
        assert tx.ttl("e") is None
        with pytest.raises(KeyNotFoundError):
            tx.touch("b", 5)
    assert sorted(db) == ["a", "e"]
    assert 49 < (db.ttl("a") or 0) <= 50 and db.ttl("e") is None


def test_commit_and_rollback_by_hand(db: DataStore) -> None:
    tx = db.transaction()
    tx.put("a", {"v": 1})
    tx.commit()
    assert db.read("a") == {"v": 1} and not tx.active
    tx = db.transaction()
    tx.put("a", {"v": 2})
    tx.rollback()
    assert db.read("a") == {"v": 1}
    for call in (lambda: tx.read("a"), lambda: tx.put("a", {}), tx.commit, tx.rollback):
        with pytest.raises(TransactionError, match="ended"):
            call()


def test_misuse_raises_and_never_hangs(db: DataStore) -> None:
    with db.transaction() as tx:
        with pytest.raises(TransactionError, match="nest"):
            db.transaction()
        for write in (lambda: db.put("a", {}), lambda: db.create("a", {}),
                      lambda: db.delete("a"), lambda: db.touch("a", 5),
                      lambda: db.put_many({"a": {}}), lambda: db.delete_many(["a"])):
            with pytest.raises(TransactionError, match="holds an open transaction"):
                write()
        t, out = run_thread(tx.put, "a", {})
        t.join(JOIN)
        assert not t.is_alive()
        assert out[0][0] == "err" and isinstance(out[0][1], TransactionError)
        tx.put("b", {"v": 1})
        assert db.get("b") is None  # reads do not wait, and see the state before
    assert db.read("b") == {"v": 1} and "a" not in db


def test_other_writers_wait_for_the_transaction(db: DataStore) -> None:
    db.create("n", {"v": 0})
    tx = db.transaction()
    tx.put("n", {"v": 1})
    t_put, out_put = run_thread(db.put, "n", {"v": 2})
    t_tx, out_tx = run_thread(lambda: db.transaction().commit())
    time.sleep(0.3)
    assert t_put.is_alive() and t_tx.is_alive()  # waiting for the slot
    assert db.read("n") == {"v": 0}  # readers never wait
    tx.commit()
    t_put.join(JOIN)
    t_tx.join(JOIN)
    assert out_put == [("ok", None)] and out_tx == [("ok", None)]
    assert db.read("n") == {"v": 2}  # the waiting write came after the commit


def test_close_lets_waiting_writers_go(store_path: Path) -> None:
    db = DataStore(store_path)
    tx = db.transaction()
    t, out = run_thread(db.put, "a", {})
    time.sleep(0.2)
    db.close()
    t.join(JOIN)
    assert not t.is_alive() and isinstance(out[0][1], StoreClosedError)
    with pytest.raises(StoreClosedError):
        tx.commit()


def test_abandoned_transaction_lets_the_slot_go(db: DataStore) -> None:
    def begin_and_drop() -> None:
        tx = db.transaction()
        tx.put("a", {"v": 1})
        del tx

    t, out = run_thread(begin_and_drop)
    t.join(JOIN)
    db.put("b", {})  # would hang if the slot were still held
    assert "a" not in db


def test_commit_past_the_cap_compacts_or_refuses_writing_nothing(store_path: Path) -> None:
    with DataStore(store_path, max_file_size=64 * 1024) as db:
        for i in range(30):
            db.put("churn", {"pad": "x" * 1500, "i": i})  # dead bytes to reclaim
        with db.transaction() as tx:
            for i in range(20):
                tx.put(f"k{i}", {"pad": "y" * 1500})
        assert len(db) == 21 and db.stats()["compactions"] >= 1
        before = dict(db.items())
        with pytest.raises(StoreFullError):
            with db.transaction() as tx:
                for i in range(40):
                    tx.put(f"big{i}", {"pad": "z" * 1500})
        assert dict(db.items()) == before
        db.put("after", {"v": 1})


def test_max_transaction_bytes(store_path: Path) -> None:
    with DataStore(store_path, max_transaction_bytes=2048) as db:
        assert db.max_transaction_bytes == 2048
        with db.transaction() as tx:
            tx.put("a", {"pad": "x" * 1000})
            with pytest.raises(TransactionError, match="max_transaction_bytes"):
                tx.put("b", {"pad": "x" * 1500})
            assert "b" not in tx
            tx.put("a", {"pad": "x" * 1900})  # replacing a change counts once
        assert len(db["a"]["pad"]) == 1900


# ---- atomicity and isolation under real threads ---------------------------------------


def test_readers_never_see_part_of_a_transaction(db: DataStore) -> None:
    keys = [f"g{i}" for i in range(20)]
    db.put_many({k: {"gen": 0} for k in keys})
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        last = 0
        while not stop.is_set():
            gens = [db.read(k)["gen"] for k in keys]
            # read in order while generations only rise: a later key may be
            # ahead of an earlier one (a commit came between), never behind,
            # and nothing below what was seen before
            if any(b < a for a, b in zip(gens, gens[1:])) or gens[0] < last:
                problems.append(f"torn view {gens}")
            last = gens[-1]
            many = db.get_many(keys)
            if len({v["gen"] for v in many.values()}) != 1:
                problems.append(f"get_many torn {many}")

    def counter() -> None:
        while not stop.is_set():
            n = len(db)
            if n % 20 != 0:
                problems.append(f"len {n}")

    readers = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=counter)]
    for t in readers:
        t.start()
    for gen in range(1, 200):
        with db.transaction() as tx:
            for k in keys:
                tx.put(k, {"gen": gen})
        if gen % 2:
            db.put_many({f"new{i}": {} for i in range(20)})
        else:
            assert db.delete_many([f"new{i}" for i in range(20)]) == 20
    stop.set()
    for t in readers:
        t.join(JOIN)
    assert not problems, problems[:5]


def test_eight_threads_increment_without_losing_one(db: DataStore) -> None:
    db.create("counter", {"n": 0})

    def work() -> None:
        for _ in range(100):
            with db.transaction() as tx:
                tx.put("counter", {"n": tx.read("counter")["n"] + 1})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN * 2)
    assert not any(t.is_alive() for t in threads)
    assert db.read("counter") == {"n": 800}


def test_plain_writers_and_transactions_interleave(db: DataStore) -> None:
    db.create("counter", {"n": 0})
    errors: list[BaseException] = []

    def tx_work() -> None:
        try:
            for _ in range(50):
                with db.transaction() as tx:
                    tx.put("counter", {"n": tx.read("counter")["n"] + 1})
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def plain_work(i: int) -> None:
        try:
            for j in range(200):
                db.put(f"p{i}-{j % 10}", {"j": j})
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=tx_work) for _ in range(4)]
    threads += [threading.Thread(target=plain_work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN * 2)
    assert not errors and not any(t.is_alive() for t in threads)
    assert db.read("counter") == {"n": 200}


# ---- crashes ------------------------------------------------------------------------------

TX_WRITER = r"""
import sys, fastkv
path, durability, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = fastkv.DataStore(path, durability=durability)
keys = [f"k{i}" for i in range(50)]
out = sys.stdout
out.write("ready\n"); out.flush()
gen = start
while True:
    gen += 1
    out.write(f"T {gen}\n"); out.flush()
    if gen % 3:
        with db.transaction() as tx:
            for k in keys:
                tx.put(k, {"gen": gen, "pad": "p" * (gen % 200)})
    else:
        db.put_many({k: {"gen": gen, "pad": "q" * (gen % 300)} for k in keys})
    out.write("ok\n"); out.flush()
"""


def kill_tx_writer(path: Path, durability: str, start: int, run_for: float) -> tuple[int, int]:
    """(last acknowledged generation, the one in flight or it)."""
    proc = subprocess.Popen([sys.executable, "-c", TX_WRITER, str(path), durability, str(start)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(run_for)
    proc.kill()
    out = proc.stdout.read()
    proc.wait(timeout=60)
    acked, flying = start, start
    for line in out.split("\n"):
        if line.startswith("T "):
            flying = int(line[2:])
        elif line == "ok":
            acked = flying
    return acked, flying


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_kill_leaves_every_key_at_one_generation(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "tx.fkv"
    rng = random.Random(28)
    gen = 0
    for _ in range(20):
        acked, flying = kill_tx_writer(path, durability, gen, rng.uniform(0.05, 0.4))
        with DataStore(path) as db:
            found = {db.read(f"k{i}")["gen"] for i in range(50)} if "k0" in db else {0}
            assert len(found) == 1, f"keys at several generations: {sorted(found)}"
            (now,) = found
            assert acked <= now <= flying, (acked, now, flying)
            gen = max(now, acked)


def _last_group_bounds(path: Path) -> tuple[int, int]:
    """(offset, end) of the last group header's group in the file: found by
    walking the log's record headers from the file header."""
    data = path.read_bytes()
    off, last = int.from_bytes(data[12:16], "little"), None
    while off + 16 <= len(data):
        kind, klen, vlen = data[off + 4], data[off + 5], int.from_bytes(data[off + 6:off + 8], "little")
        if kind == 3:
            members = int.from_bytes(data[off + 20:off + 24], "little")
            last = (off, off + 24 + members)
            off += 24
        else:
            off += 16 + klen + vlen
    assert last is not None and last[1] == len(data)
    return last


def test_a_torn_group_at_the_tail_is_dropped_whole(tmp_path: Path) -> None:
    path = tmp_path / "torn.fkv"
    with DataStore(path) as db:
        db.put_many({"a": {"v": 1}, "b": {"v": 1}})
        db.put_many({"a": {"v": 2}, "b": {"v": 2}, "c": {"v": 2}})
    start, end = _last_group_bounds(path)
    whole = path.read_bytes()
    for cut in range(start, end):
        for p in tmp_path.glob("torn.fkv.*"):
            p.unlink()
        path.write_bytes(whole[:cut])
        with DataStore(path) as db:
            assert dict(db.items()) == {"a": {"v": 1}, "b": {"v": 1}}, cut
            assert db.stats()["file_bytes"] == start
    path.write_bytes(whole)
    with DataStore(path) as db:
        assert dict(db.items()) == {k: {"v": 2} for k in "abc"}


def test_a_damaged_group_inside_the_log_is_refused_and_repair_drops_it_whole(
        tmp_path: Path) -> None:
    path = tmp_path / "damaged.fkv"
    with DataStore(path) as db:
        db.put_many({"a": {"v": 1}, "b": {"v": 1}})
        db.put_many({"a": {"v": 2}, "b": {"v": 2}, "c": {"v": 2}})
    start, end = _last_group_bounds(path)
    with DataStore(path) as db:
        db.put("after", {"v": 3})  # the group is no longer at the tail
    for p in tmp_path.glob("damaged.fkv.*"):
        p.unlink()
    data = bytearray(path.read_bytes())
    data[end - 3] ^= 0xFF  # a byte of the group's last member
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match=f"offset {start:,}"):
        DataStore(path)
    report = fastkv.verify(path)
    assert report["damaged_regions"] == 1 and report["first_damage_offset"] == start
    assert report["groups"] == 1  # the first group is whole; the damaged one is not counted
    fastkv.repair(path)
    assert fastkv.verify(path)["groups"] == 0  # repair writes the live keys plainly
    with DataStore(path) as db:
        assert dict(db.items()) == {"a": {"v": 1}, "b": {"v": 1}, "after": {"v": 3}}


# ---- asyncio ----------------------------------------------------------------------------


def test_async_transaction_and_batches(store_path: Path) -> None:
    import asyncio

    import fastkv.aio

    async def main() -> None:
        async with fastkv.aio.AsyncDataStore(store_path) as db:
            await db.put_many({"a": {"v": 1}, "b": {"v": 2}})
            assert await db.get_many(["a", "b", "c"]) == {"a": {"v": 1}, "b": {"v": 2}}
            async with db.transaction() as tx:
                tx.put("a", {"v": tx.read("a")["v"] + 10})
                tx.delete("b")
                with pytest.raises(TransactionError):
                    await db.put("x", {})
                with pytest.raises(TransactionError, match="nest"):
                    async with db.transaction():
                        pass
                assert await db.get("a") == {"v": 1}
            assert await db.get_many(["a", "b"]) == {"a": {"v": 11}}
            with pytest.raises(RuntimeError):
                async with db.transaction() as tx:
                    tx.put("a", {"v": 0})
                    raise RuntimeError("discard")
            assert await db.read("a") == {"v": 11}
            assert await db.delete_many(["a", "zz"]) == 1

            await db.put("n", {"n": 0})

            async def bump() -> None:
                for _ in range(25):
                    async with db.transaction() as tx:
                        n = tx.read("n")["n"]
                        await asyncio.sleep(0)  # let the others try meanwhile
                        tx.put("n", {"n": n + 1})

            async def plain() -> None:
                for i in range(25):
                    await db.put(f"p{i}", {})

            await asyncio.wait_for(asyncio.gather(*(bump() for _ in range(4)), plain()), JOIN)
            assert await db.read("n") == {"n": 100}

    asyncio.run(main())


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_async_store_takes_max_transaction_bytes(store_path: Path, durability: str) -> None:
    import asyncio

    import fastkv.aio

    async def main() -> None:
        async with fastkv.aio.AsyncDataStore(store_path, durability=durability,
                                             max_transaction_bytes=2048) as db:
            with pytest.raises(TransactionError):
                await db.put_many({f"k{i}": {"pad": "x" * 100} for i in range(30)})
            async with db.transaction() as tx:
                tx.put("k", {"v": 1})
            assert await db.read("k") == {"v": 1}

    asyncio.run(main())
