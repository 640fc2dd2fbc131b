/*
 * table_check.h - the pass that proves a hash table read from a snapshot
 * file is one the index code can trust (snapshot.c loads, this checks).
 *
 * A crafted or stale table must never crash the process or break lookups,
 * so every slot is checked: entries point inside [header, E), markers
 * carry no hash, counts are as the snapshot states, and every entry is
 * reachable by probing from its home slot (no empty slot between the
 * two). The table is checked chunk by chunk as it is read, while each
 * chunk is still in the CPU's cache.
 */
#ifndef FKV_TABLE_CHECK_H
#define FKV_TABLE_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "hash_index.h"

typedef struct table_check {
    uint64_t cap, mask;
    unsigned shift;       /* FKV_HASH_BITS - log2(cap): a hash's home is hash >> shift */
    uint32_t first_off;   /* lowest offset an entry may hold */
    uint32_t last_off;    /* highest offset a record of one byte can start at */
    uint64_t n_live, n_deleted, n_dl, bad;
    uint64_t after_empty; /* 1 + position of the last empty slot seen; 0: none yet */
    uint64_t wrap_need;   /* non-empty slots the table's end must supply to the first ones */
} table_check;

/* Start a check of a table of cap slots (a power of two, at least 16) for
 * a log that ends at end. */
void table_check_start(table_check *c, uint64_t cap, uint64_t end);

/* Check slots [from, from + n) of the table, in order; n a multiple of 16. */
void table_check_slots(table_check *c, const fkv_slot *sl, uint64_t from, size_t n);

/* After the last slot: 1 if the table passed and holds live entries,
 * deleted markers and entries with a deadline as stated. */
int table_check_done(const table_check *c, uint64_t live, uint64_t deleted, uint64_t n_ttl);

/* Entries, deleted markers and entries with a deadline among n slots (n a
 * multiple of 4, at most 2^32): what a snapshot states of each block. */
void table_count(const fkv_slot *sl, size_t n, uint32_t *live, uint32_t *deleted,
                 uint32_t *ttl);

/* One block of a table checked on its own, slots [from, from + n), where
 * run is the number of non-empty slots just before from (counting back,
 * wrapping, to the nearest empty one): the same per-slot checks, and each
 * entry reachable (no farther from its home than the run of non-empty
 * slots before it). Adds the block's counts to c's; 1 if it passed. */
int table_check_block(table_check *c, const fkv_slot *sl, uint64_t from, size_t n, uint64_t run);

#endif /* FKV_TABLE_CHECK_H */
