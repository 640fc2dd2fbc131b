"""A hypothesis state machine: fastkv against a dict model, with a pinned
clock for TTLs, reopens and compactions."""

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

    def live(self, key: str) -> bool:
        if key not in self.model:
            return False
        deadline = self.model[key][1]
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
