"""A hypothesis state machine: fastkv against a dict model, with a pinned
clock for TTLs, reopens and compactions, batch calls, and transactions of a
few steps each, committed or aborted at random."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import fastkv
from fastkv import DataStore, _core

KEYS = st.sampled_from([f"k{i}" for i in range(12)] + ["ключ", "\U0001f600" * 32, "x" * 32])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
VALUES = st.dictionaries(st.text(max_size=8), JSON, max_size=5)
TTLS = st.none() | st.integers(1, 100)
STEPS = st.lists(st.tuples(st.sampled_from(["put", "create", "delete", "read"]), KEYS, VALUES),
                 max_size=6)


class Abort(Exception):
    """Raised inside a transaction's block: every change must be discarded."""

START_MS = 1_900_000_000_000


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.path = self.dir / "m.fkv"
        self.now = START_MS
        _core._set_clock(self.now)
        self.db = DataStore(self.path, max_file_size=64 * 1024)
        self.model: dict[str, tuple[Any, Optional[int]]] = {}  # key -> (value, deadline ms)

    def live(self, key: str, model: Optional[dict[str, tuple[Any, Optional[int]]]] = None) -> bool:
        model = self.model if model is None else model
        if key not in model:
            return False
        deadline = model[key][1]
        return deadline is None or self.now < deadline

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def create(self, key: str, value: dict[str, Any], ttl: Optional[int]) -> None:
        if self.live(key):
            try:
                self.db.create(key, value, ttl)
                raise AssertionError("create on a live key succeeded")
            except fastkv.KeyExistsError:
                return
        try:
            self.db.create(key, value, ttl)
        except fastkv.StoreFullError:
            return
        self.model[key] = (value, None if ttl is None else self.now + ttl * 1000)

    @rule(key=KEYS)
    def read(self, key: str) -> None:
        if self.live(key):
            assert self.db.read(key) == self.model[key][0]
        else:
            try:
                self.db.read(key)
                raise AssertionError("read of a missing key succeeded")
            except fastkv.KeyNotFoundError:
                pass

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        if self.live(key):
            self.db.delete(key)
            del self.model[key]
        else:
            try:
                self.db.delete(key)
                raise AssertionError("delete of a missing key succeeded")
            except fastkv.KeyNotFoundError:
                pass

    @rule(steps=STEPS, abort=st.booleans())
    def transaction(self, steps: list[tuple[str, str, dict[str, Any]]], abort: bool) -> None:
        staged = dict(self.model)
        try:
            with self.db.transaction() as tx:
                for op, key, value in steps:
                    self._step(tx, staged, op, key, value)
                if abort:
                    raise Abort
        except (Abort, fastkv.StoreFullError):  # discarded, or refused at commit
            return
        self.model = staged

    def _step(self, tx: Any, staged: dict[str, tuple[Any, Optional[int]]], op: str, key: str,
              value: dict[str, Any]) -> None:
        live = self.live(key, staged)
        if op == "read":
            assert tx.get(key) == (staged[key][0] if live else None)
        elif op == "put":
            tx.put(key, value)
            staged[key] = (value, None)
        elif op == "create" and live:
            try:
                tx.create(key, value)
                raise AssertionError("create on a live key succeeded in a transaction")
            except fastkv.KeyExistsError:
                pass
        elif op == "create":
            tx.create(key, value)
            staged[key] = (value, None)
        elif live:
            tx.delete(key)
            del staged[key]
        else:
            try:
                tx.delete(key)
                raise AssertionError("delete of a missing key succeeded in a transaction")
            except fastkv.KeyNotFoundError:
                pass

    @rule(items=st.lists(st.tuples(KEYS, VALUES), max_size=5), ttl=TTLS)
    def put_many(self, items: list[tuple[str, dict[str, Any]]], ttl: Optional[int]) -> None:
        try:
            self.db.put_many(items, ttl=ttl)
        except fastkv.StoreFullError:
            return
        for key, value in items:
            self.model[key] = (value, None if ttl is None else self.now + ttl * 1000)

    @rule(keys=st.lists(KEYS, max_size=5))
    def delete_many(self, keys: list[str]) -> None:
        live = {k for k in keys if self.live(k)}
        assert self.db.delete_many(keys) == len(live)
        for key in live:
            del self.model[key]

    @rule(keys=st.lists(KEYS, max_size=5))
    def get_many(self, keys: list[str]) -> None:
        assert self.db.get_many(keys) == {k: self.model[k][0] for k in keys if self.live(k)}

    @rule(seconds=st.integers(0, 120))
    def advance_clock(self, seconds: int) -> None:
        self.now += seconds * 1000
        _core._set_clock(self.now)

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.db = DataStore(self.path, max_file_size=64 * 1024)

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @invariant()
    def same_keys(self) -> None:
        expected = {k for k in self.model if self.live(k)}
        assert set(self.db) == expected
        assert len(self.db) == len(expected)

    def teardown(self) -> None:
        self.db.close()
        _core._set_clock(None)
        shutil.rmtree(self.dir, ignore_errors=True)


StoreModel.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreModel = StoreModel.TestCase
