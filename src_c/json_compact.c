/*
 * json_compact.c - recognise JSON text that orjson would write back byte
 * for byte, so that the Python layer can store it without parsing it.
 *
 * Written here rather than taken from a JSON library: the question is not
 * "is this JSON" but "is this already the exact output of orjson.dumps of
 * what orjson.loads makes of it, within fastkv's rules", and the answer
 * must err only towards "ask the Python layer". One pass, no allocation;
 * recursion is bounded by FKV_JSON_MAX_DEPTH.
 */
#include "json_compact.h"

#include <string.h>

typedef struct scan {
    const uint8_t *p, *end;
} scan;

static int value(scan *s, int depth);

/* A string as orjson writes one: ASCII, no control byte, and only the
 * escapes it uses for those characters (it writes other control bytes as
 * \u00XX, which is left to the Python layer with every other \u). With
 * one spelling per string, equal strings are equal bytes. */
static int string(scan *s)
{
    const uint8_t *p = s->p + 1; /* past the opening quote */
    while (p < s->end) {
        uint8_t c = *p;
        if (c == '"') {
            s->p = p + 1;
            return 1;
        }
        if (c < 0x20 || c >= 0x80)
            return 0;
        if (c == '\\') {
            if (p + 1 >= s->end)
                return 0;
            switch (p[1]) {
            case '"': case '\\': case 'n': case 'r': case 't': case 'b': case 'f':
                p += 2;
                continue;
            default:
                return 0;
            }
        }
        p++;
    }
    return 0;
}

/* An integer in signed 64 bits, as orjson writes it. A fraction or an
 * exponent makes a float, whose text orjson chooses: not ours to judge. */
static int number(scan *s)
{
    const uint8_t *p = s->p;
    int negative = *p == '-';
    if (negative)
        p++;
    if (p >= s->end || *p < '0' || *p > '9')
        return 0;
    if (*p == '0') {
        if (negative)
            return 0; /* -0 is stored as 0 */
        p++;
    } else {
        uint64_t v = 0;
        int digits = 0;
        while (p < s->end && *p >= '0' && *p <= '9') {
            if (++digits > 19) /* past 2**63 for sure; 19 digits cannot wrap */
                return 0;
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (v > (negative ? UINT64_C(9223372036854775808) : UINT64_C(9223372036854775807)))
            return 0;
    }
    if (p < s->end && (*p == '.' || *p == 'e' || *p == 'E'))
        return 0;
    s->p = p;
    return 1;
}

static int literal(scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

static int array(scan *s, int depth)
{
    if (depth > FKV_JSON_MAX_DEPTH)
        return 0;
    s->p++;
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 1;
    }
    for (;;) {
        if (!value(s, depth + 1) || s->p >= s->end)
            return 0;
        if (*s->p == ']') {
            s->p++;
            return 1;
        }
        if (*s->p++ != ',')
            return 0;
    }
}

/* A key given twice would keep its first place and its last value in the
 * parsed dict, which orjson then writes differently: such text, and
 * objects too large to compare pairwise, go to the Python layer. */
static int object(scan *s, int depth)
{
    struct { const uint8_t *at; size_t len; } keys[FKV_JSON_FAST_KEYS];
    int nkeys = 0;
    if (depth > FKV_JSON_MAX_DEPTH)
        return 0;
    s->p++;
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 1;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '"' || nkeys == FKV_JSON_FAST_KEYS)
            return 0;
        const uint8_t *key = s->p;
        if (!string(s))
            return 0;
        size_t len = (size_t)(s->p - key);
        for (int i = 0; i < nkeys; i++)
            if (keys[i].len == len && memcmp(keys[i].at, key, len) == 0)
                return 0;
        keys[nkeys].at = key;
        keys[nkeys].len = len;
        nkeys++;
        if (s->p >= s->end || *s->p++ != ':')
            return 0;
        if (!value(s, depth + 1) || s->p >= s->end)
            return 0;
        if (*s->p == '}') {
            s->p++;
            return 1;
        }
        if (*s->p++ != ',')
            return 0;
    }
}

static int value(scan *s, int depth)
{
    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case '{': return object(s, depth);
    case '[': return array(s, depth);
    case '"': return string(s);
    case 't': return literal(s, "true", 4);
    case 'f': return literal(s, "false", 5);
    case 'n': return literal(s, "null", 4);
    default: return number(s);
    }
}

int fkv_json_is_compact(const uint8_t *text, size_t len, size_t max_bytes)
{
    if (len == 0 || len > max_bytes || text[0] != '{')
        return 0;
    scan s = {text, text + len};
    return object(&s, 1) && s.p == s.end;
}
