"""JSON text stored as it is (src_c/json_compact.c): the one-pass check that
lets a value sent as compact text skip the parse, the check and the
re-encoding must never accept text the full path would store differently
or refuse. The full path is the one a bytearray takes (the check only ever
looks at bytes)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastkv import _core
from fastkv.errors import FastKVError

LIMIT = 16 * 1024


def full_path(text: bytes) -> Any:
    """What create() stores for text, or the class of its refusal."""
    try:
        return _core.encode_value(bytearray(text))
    except FastKVError as e:
        return type(e)


def agrees(text: bytes) -> None:
    fast = _core.json_is_compact(text)
    want = full_path(text)
    if fast:
        assert want == text, (text, want)
    try:
        got: Any = _core.encode_value(text)
    except FastKVError as e:
        got = type(e)
    assert got == want, (text, got, want)


@pytest.mark.parametrize("text", [
    b"{}",
    b'{"a":1}',
    b'{"name":"user","n":1,"tags":["a","b"],"pad":"xxxxxxxx"}',
    b'{"a":{"b":[1,-2,0,[],{}],"c":null,"d":true,"e":false}}',
    b'{"q":"say \\"hi\\"\\\\ \\n\\r\\t\\b\\f","":"","/":"a/b\x7f"}',
    b'{"min":-9223372036854775808,"max":9223372036854775807}',
    b'{"a":' * 64 + b"1" + b"}" * 64,   # 64 levels, the limit
    b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(32)) + b"}",
])
def test_compact_text_is_taken_as_it_is(text: bytes) -> None:
    assert _core.json_is_compact(text)
    agrees(text)


@pytest.mark.parametrize("text", [
    b'{"a": 1}',                          # a space
    b'{"a":1.5}', b'{"a":1e3}', b'{"a":1.0}',  # floats: orjson's own spelling
    b'{"a":1,"a":2}',                     # a key twice: first place, last value
    b'{"a":"\\u0041"}', b'{"a":"\\u001f"}', b'{"a":"\\/"}',  # \u and \/ escapes
    '{"a":"\u00e9"}'.encode(),            # past ASCII
    b'{"a":-0}',                          # stored as 0
    b'{"a":9223372036854775808}', b'{"a":-9223372036854775809}',
    b'{"a":18446744073709551616}', b'{"a":99999999999999999999}',
    b'{"a":' * 65 + b"1" + b"}" * 65,    # 65 levels
    b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(33)) + b"}",  # 33 keys
    b'{"a":1}x', b'{"a":1}}', b'[1]', b'"s"', b"", b"{", b'{"a"', b'{"a":}',
    b'{"a":01}', b'{"a":-}', b'{"a":tru}', b'{"a":[1,]}', b'{"a":1,}', b'{,}',
    b'{"a":"\x01"}', b'{"a":"\\x"}', b'{"a":"\\', b'\xef\xbb\xbf{}',
    b'{"a":"' + b"x" * LIMIT + b'"}',     # past the size limit
])
def test_other_text_goes_the_full_way(text: bytes) -> None:
    assert not _core.json_is_compact(text)
    agrees(text)


def test_a_duplicate_key_keeps_the_full_paths_answer() -> None:
    assert _core.encode_value(b'{"a":1,"b":2,"a":3}') == b'{"a":3,"b":2}'


scalars = (st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
           | st.integers(min_value=-(2**70), max_value=2**70)
           | st.integers(min_value=-(2**63) - 2, max_value=2**63 + 1)
           | st.text(max_size=8) | st.sampled_from(["\\", '"', "/", "\n", "\x00", "\x7f", "é"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=3), inner, max_size=5), max_leaves=30)


def spellings(v: Any) -> list[bytes]:
    out = [json.dumps(v, allow_nan=True).encode(),
           json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()]
    try:
        out.append(orjson.dumps(v))
    except (TypeError, orjson.JSONEncodeError):
        pass
    return out


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.text(max_size=4), values, max_size=6))
def test_any_spelling_of_any_object_gets_the_full_paths_answer(v: dict[str, Any]) -> None:
    for text in spellings(v):
        agrees(text)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(st.text(max_size=4), values, max_size=6), st.data())
def test_text_cut_or_changed_anywhere_gets_the_full_paths_answer(v: dict[str, Any],
                                                               data: Any) -> None:
    text = spellings(v)[-1]  # orjson's when it can write v
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    byte = data.draw(st.sampled_from(b'{}[],:"\\-0123456789 eE.tfnux\x00\x80'))
    agrees(text[:at])
    agrees(text[:at] + bytes([byte]) + text[at:])
    agrees(text[:at] + bytes([byte]) + text[at + 1:])
