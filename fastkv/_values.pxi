# Keys, TTLs and JSON values checked and converted for the C core.
# Included by _core.pyx (one module: these share its C declarations).

# ---- limits ------------------------------------------------------------------

# Nesting levels of objects and arrays a value may have (the value itself is
# level 1). orjson refuses past 255; a documented limit of our own keeps the
# rule independent of its version.
cdef enum:
    _MAX_DEPTH = 64
MAX_DEPTH = _MAX_DEPTH

# orjson reads integers past 64 bits as floats (-2**63 - 1 has only 19
# digits); text with such a float and a run of 19 or more digits is parsed
# again exactly, so such numbers are refused, not rounded.
_LONG_DIGITS_STR = _re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = _re.compile(rb"\d{19}")


# ---- input conversion --------------------------------------------------------

cdef inline const char *_key_utf8(object key, Py_ssize_t *n) except NULL:
    """UTF-8 bytes of a valid key (cached inside the str, no copy)."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"key must be a str, not {type(key).__name__}")
    cdef Py_ssize_t chars = len(<str>key)
    if chars == 0:
        raise InvalidKeyError("key must not be empty")
    if chars > FKV_KEY_MAX_CHARS:
        raise InvalidKeyError(
            f"key {_show(key)} is {chars} characters; limit {FKV_KEY_MAX_CHARS}")
    try:
        return PyUnicode_AsUTF8AndSize(key, n)
    except UnicodeEncodeError:
        raise InvalidKeyError(
            f"key {_show(key)} cannot be encoded as UTF-8 (it holds a lone surrogate)"
        ) from None


cdef int64_t _ttl_seconds(object ttl, object key) except -1:
    if ttl is None:
        return 0
    if type(ttl) is bool or not isinstance(ttl, int):
        raise InvalidTTLError(
            f"ttl for {_show(key)} must be an int of seconds, not {type(ttl).__name__}")
    if ttl < 1 or ttl > FKV_TTL_MAX_S:
        raise InvalidTTLError(
            f"ttl for {_show(key)} is {ttl}; it must be 1 to {FKV_TTL_MAX_S:,} "
            f"seconds (ten years)")
    return <int64_t>ttl


cdef str _kind(object v):
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    return "number"


# A float this large may be an integer literal over 64 bits that orjson
# read as a float (2**64 -> 1.8446744073709552e+19): the text is searched then.
cdef double _INT64_LIMIT = 9223372036854775808.0


cdef int _check(object v, int depth, object key) except -1:
    """Refuse anything JSON cannot hold as it is; 1 if v holds a float at
    least 2**63 in size (see _INT64_LIMIT), else 0. Exact types first: they
    are the common case and cost a pointer comparison each."""
    cdef object t = type(v)
    cdef int overflow = 0, big = 0
    cdef double d
    if t is str or v is None or t is bool:
        return 0
    if t is int:
        PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow:
            raise InvalidValueError(
                f"value for {_show(key)} holds the integer {v}, outside the signed "
                f"64-bit range")
        return 0
    if t is float:
        d = PyFloat_AS_DOUBLE(v)
        if not isfinite(d):
            raise InvalidValueError(
                f"value for {_show(key)} holds {v!r}; JSON has no NaN or infinity")
        return d >= _INT64_LIMIT or d <= -_INT64_LIMIT
    if isinstance(v, dict) or isinstance(v, (list, tuple)):
        if depth > _MAX_DEPTH:
            raise InvalidValueError(
                f"value for {_show(key)} nests deeper than {_MAX_DEPTH} levels")
        if isinstance(v, dict):
            for k, x in (<dict>v).items():
                if not isinstance(k, str):
                    raise InvalidValueError(
                        f"value for {_show(key)} has a key of type {type(k).__name__}; "
                        f"JSON object keys are str")
                big |= _check(x, depth + 1, key)
        else:
            for x in v:
                big |= _check(x, depth + 1, key)
        return big
    if isinstance(v, str):
        return 0
    if isinstance(v, int):
        return _check(int(v), depth, key)
    if isinstance(v, float):
        return _check(float(v), depth, key)
    raise InvalidValueError(
        f"value for {_show(key)} holds a {t.__name__}, which JSON cannot represent")


cdef object _parse_text(object text, object key):
    try:
        obj = _loads(text)
    except _JSONDecodeError as exc:
        raise InvalidValueError(f"value for {_show(key)} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidValueError(
            f"value for {_show(key)} is JSON text of type {_kind(obj)}, not an object")
    return obj


cdef object _exact_if_needed(object obj, object text):
    """obj parsed again exactly if text holds a run of 19 digits: an integer
    orjson turned into a float (called only when _check saw a float that
    large, so the search costs nothing for other values)."""
    pattern = _LONG_DIGITS_STR if isinstance(text, str) else _LONG_DIGITS_BYTES
    if pattern.search(text) is not None:
        return _json.loads(text)
    return obj


cdef bytes _encode(object value, object key):
    """Compact UTF-8 JSON of a value SPEC.md accepts; raises otherwise."""
    cdef object text = None
    if not isinstance(value, dict):
        if type(value) is bytes and fkv_json_is_compact(
                <const uint8_t *>PyBytes_AS_STRING(value), <size_t>PyBytes_GET_SIZE(value),
                FKV_VALUE_MAX):
            return <bytes>value  # already what the steps below would make of it
        if isinstance(value, (str, bytes, bytearray)):
            text = value
            value = _parse_text(value, key)
        else:
            raise InvalidValueError(
                f"value for {_show(key)} must be a dict (a JSON object) or JSON text "
                f"of one, not {type(value).__name__}")
    if _check(value, 1, key) and text is not None:
        value = _exact_if_needed(value, text)
        _check(value, 1, key)
    try:
        data = _dumps(value)
    except _JSONEncodeError as exc:
        raise InvalidValueError(
            f"value for {_show(key)} cannot be encoded as JSON: {exc}") from None
    if PyBytes_GET_SIZE(data) > FKV_VALUE_MAX:
        raise ValueTooLargeError(
            f"value for {_show(key)} is {PyBytes_GET_SIZE(data):,} bytes of JSON; "
            f"limit {FKV_VALUE_MAX:,}")
    return data


cdef bytes _encode_kept(object value, object key):
    """_encode's bytes copied to their exact size, for callers that keep many
    at once: orjson's own bytes sit in a larger allocation, and a thousand of
    them alive together cost fresh pages (measured over 1,000 100-byte
    values: 1.9 ms kept as they are, 0.16 ms copied)."""
    cdef bytes data = _encode(value, key)
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


def json_is_compact(bytes text):
    """Whether text is stored as it is, without a parse (json_compact.c)."""
    return bool(fkv_json_is_compact(<const uint8_t *>PyBytes_AS_STRING(text),
                                    <size_t>PyBytes_GET_SIZE(text), FKV_VALUE_MAX))


def encode_value(value, key="value"):
    """The bytes fastkv stores for value (validated as create() does)."""
    return _encode(value, key)


def check_key(key):
    """Raise InvalidKeyError unless create() would accept key."""
    cdef Py_ssize_t n
    _key_utf8(key, &n)


def check_ttl(ttl, key="value"):
    """The ttl in whole seconds (0 for None), or InvalidTTLError as create()
    raises it: the one check every store uses."""
    return _ttl_seconds(ttl, key)
