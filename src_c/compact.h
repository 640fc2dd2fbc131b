/*
 * compact.h - rewriting the data file with its live records only
 * (compact.c): on request, when the cap is near, or once dead bytes pass
 * half the file.
 */
#ifndef FKV_COMPACT_H
#define FKV_COMPACT_H

#include "store_core.h"

/* No slot is left out of a compaction. */
#define COMPACT_KEEP_ALL UINT64_MAX

/* Rewrite the file with the live records, leaving out the entry in slot
 * skip_pos (COMPACT_KEEP_ALL: none) (compact.c). */
int compact_locked(fkv_store *s, uint64_t skip_pos);

/* Room for need more bytes under the cap, compacting if that can make it. */
int compact_make_room(fkv_store *s, size_t need, uint64_t now);

/* Compact on its own once dead bytes pass half the file. */
void compact_maybe(fkv_store *s);

#endif /* FKV_COMPACT_H */
