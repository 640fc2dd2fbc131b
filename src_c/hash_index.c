/* hash_index.c - open-addressing table of (hash, loc) slots (see hash_index.h). */
#include "platform.h" /* first: sets the feature macros */
#include "hash_index.h"
#include "status.h"

#include <stdlib.h>

#define MIN_CAP 16u

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Final avalanche so that every input bit moves the low bits used as slot. */
static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint32_t fkv_hash(const void *key, size_t len)
{
    const uint8_t *p = (const uint8_t *)key;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0x87c37b91114253d5ULL);
    while (len >= 8) {
        h = rotl64(h ^ (fkv_load64(p) * 0x4cf5ad432745937fULL), 29) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t tail = 0;
        for (size_t i = 0; i < len; i++)
            tail |= (uint64_t)p[i] << (8 * i);
        h = rotl64(h ^ (tail * 0x4cf5ad432745937fULL), 29) * 0x9e3779b97f4a7c15ULL;
    }
    return (uint32_t)mix64(h) & FKV_HASH_MASK;
}

static uint64_t cap_for(uint64_t entries)
{
    uint64_t cap = MIN_CAP;
    while (cap < 2 * entries && cap < FKV_INDEX_MAX_CAP) /* rebuilt: at most half full */
        cap <<= 1;
    return cap;
}

static unsigned shift_for(uint64_t cap)
{
    unsigned shift = FKV_HASH_BITS;
    while (cap > 1) {
        cap >>= 1;
        shift--;
    }
    return shift;
}

int fkv_index_alloc(fkv_index *ix, uint64_t cap)
{
    ix->slots = (fkv_slot *)fkv_map_zeroed((size_t)cap * sizeof(fkv_slot));
    ix->cap = ix->slots ? cap : 0;
    ix->shift = shift_for(cap);
    ix->live = 0;
    ix->deleted = 0;
    return ix->slots ? FKV_OK : FKV_ENOMEM;
}

int fkv_index_init(fkv_index *ix, uint64_t expected_entries)
{
    return fkv_index_alloc(ix, cap_for(expected_entries));
}

void fkv_index_free(fkv_index *ix)
{
    fkv_unmap(ix->slots, (size_t)ix->cap * sizeof(fkv_slot));
    ix->slots = NULL;
    ix->cap = 0;
    ix->live = 0;
    ix->deleted = 0;
}

int fkv_index_reserve(fkv_index *ix, uint64_t extra)
{
    /* Keep live + deleted at most 3/4 of the slots: past that linear probing
     * chains grow quickly. */
    if ((ix->live + ix->deleted + extra) * 4 <= ix->cap * 3)
        return FKV_OK;
    uint64_t cap = cap_for(ix->live + extra);
    if (cap < ix->cap)
        cap = ix->cap; /* never shrink here: shrinking on delete bursts thrashes */
    if ((ix->live + extra) * 4 > cap * 3)
        return FKV_ENOMEM; /* past what any store of at most 1 GiB can hold */
    fkv_slot *fresh = (fkv_slot *)fkv_map_zeroed((size_t)cap * sizeof(fkv_slot));
    if (!fresh)
        return FKV_ENOMEM;
    uint64_t mask = cap - 1;
    unsigned shift = shift_for(cap);
    for (uint64_t i = 0; i < ix->cap; i++) {
        fkv_slot s = ix->slots[i];
        if (!FKV_LOC_IS_ENTRY(s.loc))
            continue;
        uint64_t pos = FKV_SLOT_HASH(s.hash) >> shift;
        while (fresh[pos].loc != FKV_LOC_EMPTY)
            pos = (pos + 1) & mask;
        fresh[pos] = s;
    }
    fkv_unmap(ix->slots, (size_t)ix->cap * sizeof(fkv_slot));
    ix->slots = fresh;
    ix->cap = cap;
    ix->shift = shift;
    ix->deleted = 0;
    return FKV_OK;
}

uint64_t fkv_index_free_slot(const fkv_index *ix, uint32_t hash)
{
    uint64_t pos = fkv_index_home(ix, hash);
    while (FKV_LOC_IS_ENTRY(ix->slots[pos].loc))
        pos = fkv_index_next(ix, pos);
    return pos;
}

void fkv_index_put(fkv_index *ix, uint64_t pos, uint32_t word, uint32_t loc)
{
    if (ix->slots[pos].loc == FKV_LOC_DELETED)
        ix->deleted--;
    ix->slots[pos].hash = word;
    ix->slots[pos].loc = loc;
    ix->live++;
}

void fkv_index_remove(fkv_index *ix, uint64_t pos)
{
    ix->slots[pos].loc = FKV_LOC_DELETED;
    ix->slots[pos].hash = 0;
    ix->live--;
    ix->deleted++;
}
