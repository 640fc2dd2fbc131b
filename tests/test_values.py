"""Values: JSON objects whose compact UTF-8 encoding is at most 16 KiB."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from typing import Any

import orjson
import pytest

import fastkv
from fastkv import DataStore

LIMIT = 16_384


def value_of_size(n: int) -> dict[str, str]:
    """A value whose compact JSON is exactly n bytes."""
    v = {"v": "x" * (n - len('{"v":""}'))}
    assert len(orjson.dumps(v)) == n
    return v


def nested(depth: int) -> dict[str, Any]:
    """An object nested `depth` levels deep (the outer object is level 1)."""
    v: dict[str, Any] = {}
    for _ in range(depth - 1):
        v = {"a": v}
    return v


@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT])
def test_value_at_and_below_the_size_limit(db: DataStore, size: int) -> None:
    db.create("k", value_of_size(size))
    assert db.read("k") == value_of_size(size)


@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT * 4])
def test_value_over_the_size_limit_refused(db: DataStore, size: int) -> None:
    with pytest.raises(fastkv.ValueTooLargeError, match=f"{size:,} bytes of JSON; limit 16,384"):
        db.create("k", value_of_size(size))
    assert "k" not in db and db.stats()["file_bytes"] == 128  # the header alone


def test_size_counts_utf8_bytes_not_characters(db: DataStore) -> None:
    # 'é' is 2 bytes of UTF-8 (orjson does not escape it)
    chars = (LIMIT - 8) // 2
    db.create("fits", {"v": "é" * chars})
    with pytest.raises(fastkv.ValueTooLargeError):
        db.create("big", {"v": "é" * (chars + 1)})


def test_every_json_type_round_trips(db: DataStore) -> None:
    value = {
        "s": "text", "u": "ünï ☃ \U0001f600", "i": 42, "neg": -7, "f": 1.5,
        "t": True, "fa": False, "n": None, "l": [1, "a", None, [2.5]],
        "d": {"nested": {"deeper": []}}, "empty": {}, "imax": 2**63 - 1, "imin": -(2**63),
        "tiny": 5e-324, "big": 1.7976931348623157e308, "ctrl": "\x00\n\t\"\\",
    }
    db.create("k", value)
    assert db.read("k") == value


def test_tuples_come_back_as_lists(db: DataStore) -> None:
    db.create("k", {"t": (1, 2, (3,))})
    assert db.read("k") == {"t": [1, 2, [3]]}


def test_dict_subclass_accepted(db: DataStore) -> None:
    import collections

    db.create("k", collections.OrderedDict(a=1, b={"c": 2}))
    assert db.read("k") == {"a": 1, "b": {"c": 2}}


@pytest.mark.parametrize("depth", [1, 32, 63, 64])
def test_nesting_up_to_the_documented_limit(db: DataStore, depth: int) -> None:
    assert fastkv.MAX_DEPTH == 64
    db.create("k", nested(depth))
    assert db.read("k") == nested(depth)


def test_nesting_through_lists_counts_too(db: DataStore) -> None:
    v: Any = 1
    for _ in range(63):
        v = [v]
    db.create("ok", {"l": v})  # object + 63 lists = 64 levels
    with pytest.raises(fastkv.InvalidValueError, match="deeper than 64"):
        db.create("deep", {"l": [v]})


@pytest.mark.parametrize("depth", [65, 300])
def test_nesting_over_the_limit_refused(db: DataStore, depth: int) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="deeper than 64 levels"):
        db.create("k", nested(depth))


def test_self_referencing_value_refused(db: DataStore) -> None:
    v: dict[str, Any] = {}
    v["me"] = v
    with pytest.raises(fastkv.InvalidValueError):
        db.create("k", v)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_refused_not_written_as_null(db: DataStore, bad: float) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="NaN or infinity"):
        db.create("k", {"x": bad})
    with pytest.raises(fastkv.InvalidValueError):
        db.create("k", {"deep": [1, {"x": bad}]})
    assert "k" not in db


@pytest.mark.parametrize("n", [2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**40])
def test_integers_outside_signed_64_bits_refused(db: DataStore, n: int) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="signed 64-bit"):
        db.create("k", {"n": n})


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "bad",
    [
        {1, 2}, b"bytes", bytearray(b"x"), object(), uuid.uuid4(), Color.RED,
        datetime.datetime(2020, 1, 1), datetime.date(2020, 1, 1), Point(1),
        decimal.Decimal("1.5"), complex(1, 2), frozenset(), range(3),
    ],
)
def test_non_json_types_refused(db: DataStore, bad: object) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="JSON cannot represent"):
        db.create("k", {"x": bad})
    assert "k" not in db


@pytest.mark.parametrize("key", [1, 1.5, None, True, ("t",)])
def test_non_str_object_keys_refused(db: DataStore, key: object) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="JSON object keys are str"):
        db.create("k", {key: 1})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", [[1, 2], 42, 1.5, None, True, ("a",), Point(1)])
def test_top_level_must_be_an_object(db: DataStore, bad: object) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="must be a dict"):
        db.create("k", bad)  # type: ignore[arg-type]


def test_surrogate_in_a_string_refused(db: DataStore) -> None:
    with pytest.raises(fastkv.InvalidValueError):
        db.create("k", {"s": "\ud800"})


@pytest.mark.parametrize("text", ['{"a": 1}', b'{"a": 1}', bytearray(b'{"a": 1}'), ' {"a" : 1 } '])
def test_json_text_of_an_object_accepted(db: DataStore, text: Any) -> None:
    db.create("k", text)
    assert db.read("k") == {"a": 1}


def test_json_text_is_stored_compact(db: DataStore) -> None:
    padded = '{"v": "' + "x" * (LIMIT - 8) + '"}'  # 16,385 bytes as written, 16,384 compact
    db.create("k", padded)
    assert len(orjson.dumps(db.read("k"))) == LIMIT


@pytest.mark.parametrize("text", ["[1, 2]", '"str"', "42", "null", "true", b"[]"])
def test_json_text_that_is_not_an_object_refused(db: DataStore, text: Any) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="not an object"):
        db.create("k", text)


@pytest.mark.parametrize(
    "text", ["", "{", '{"a": NaN}', '{"a": Infinity}', "{'a': 1}", '{"a": 1} x', b"\xff"]
)
def test_invalid_json_text_refused(db: DataStore, text: Any) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="not valid JSON"):
        db.create("k", text)


def test_json_text_with_huge_integer_refused_not_rounded(db: DataStore) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="signed 64-bit"):
        db.create("k", '{"a": 123456789012345678901234567890}')
    with pytest.raises(fastkv.InvalidValueError, match="signed 64-bit"):
        db.create("k", '{"a": 9223372036854775808}')
    db.create("k", '{"a": 9223372036854775807, "s": "12345678901234567890123"}')
    assert db.read("k") == {"a": 2**63 - 1, "s": "12345678901234567890123"}
    for text in ('{"a": -9223372036854775809}', b'{"a": [18446744073709551616]}',
                 bytearray(b'{"b": {"a": -99999999999999999999}}')):
        with pytest.raises(fastkv.InvalidValueError, match="signed 64-bit"):
            db.create("big", text)  # one digit short of the old check's 20
    db.create("f", b'{"a": 1.8446744073709552e19, "b": -9223372036854775808}')
    assert db.read("f") == {"a": 1.8446744073709552e19, "b": -(2**63)}


def test_json_text_over_the_depth_limit_refused(db: DataStore) -> None:
    with pytest.raises(fastkv.InvalidValueError, match="deeper than 64"):
        db.create("k", json.dumps(nested(65)))


def test_refused_values_leave_the_store_unchanged(db: DataStore) -> None:
    db.create("keep", {"a": 1})
    before = db.stats()
    for bad in ({"x": math.nan}, {"x": {1}}, value_of_size(LIMIT + 1), "[]", nested(65)):
        with pytest.raises(fastkv.InvalidValueError):
            db.create("new", bad)
    assert db.stats() == before
    assert list(db) == ["keep"] and db.read("keep") == {"a": 1}
