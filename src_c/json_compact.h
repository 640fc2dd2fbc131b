/*
 * json_compact.h - is this JSON text already exactly what fastkv stores?
 *
 * A value sent as JSON text (a RESP SET, an HTTP PUT, create() given bytes)
 * is parsed, checked and written back compact by orjson in the Python
 * layer: about 40% of a pipelined SET's time. Most clients send text that
 * is already in that form (orjson's and redis-py's own output), and this
 * one pass over the bytes recognises it, so the text can be stored as it is.
 */
#ifndef FKV_JSON_COMPACT_H
#define FKV_JSON_COMPACT_H

#include <stddef.h>
#include <stdint.h>

/* 1 if text is a JSON object that the Python layer would accept and store
 * byte for byte as it is; 0 when only that layer can tell (it then parses,
 * checks and writes back, and words any error). Conservative by design: 0
 * for any float, any "\u" escape or "\/", any byte past ASCII, a key given
 * twice in one object (or an object of more than FKV_JSON_FAST_KEYS keys),
 * an integer outside signed 64 bits or written "-0", nesting past
 * FKV_JSON_MAX_DEPTH, more than max_bytes, and anything that is not JSON. */
int fkv_json_is_compact(const uint8_t *text, size_t len, size_t max_bytes);

#define FKV_JSON_MAX_DEPTH 64  /* the object itself is level 1 */
#define FKV_JSON_FAST_KEYS 32  /* keys compared pairwise for duplicates */

#endif /* FKV_JSON_COMPACT_H */
