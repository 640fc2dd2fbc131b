/*
 * hash_index.h - the in-memory index: key hash -> record offset.
 *
 * An open-addressing table with linear probing. Each slot is 8 bytes:
 *   - "hash": bits 0..26 the key's 27-bit hash, bits 27..31 the record's
 *     size class, so a read fetches the whole record in one pread
 *     (fkv_class_bytes: at most 1.19 times its size);
 *   - "loc": bit 31 set if the record carries a deadline, bits 0..30 its
 *     file offset.
 * No key or value bytes are kept: a hash hit is confirmed by the caller,
 * which reads the key from disk, and a miss is almost always answered
 * without I/O because the 27-bit hash is compared first (2^27 slots is
 * also more than a 1 GiB file of the smallest records needs).
 *
 * Memory: the table is a power of two, rebuilt to at most half full and kept
 * at most three quarters full, so it costs 8 / load bytes per live key:
 * 10.7 to 21.3 bytes (16.8 at 1,000,000 keys). Growing needs no disk reads:
 * the stored hash places each entry again.
 *
 * Removal leaves a "deleted" marker so probe chains stay intact; markers are
 * cleared when the table is rebuilt. Offsets 0 and 1 lie inside the file
 * header, so they mark empty and deleted slots.
 *
 * An entry's home slot is the top bits of its hash, so the table is laid out
 * in hash order, whatever its size: an entry sits at its home or, pushed
 * along by linear probing, after it with no empty slot in between. That is
 * what lets iteration resume from a hash value across rebuilds (store.c,
 * "Iteration").
 *
 * No locking: the store's mutex guards the index. Never touches Python.
 */
#ifndef FKV_HASH_INDEX_H
#define FKV_HASH_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define FKV_LOC_EMPTY 0u
#define FKV_LOC_DELETED 1u
#define FKV_LOC_TTL 0x80000000u
#define FKV_LOC_OFFSET_MASK 0x7fffffffu
#define FKV_LOC_OFFSET(loc) ((uint64_t)((loc) & FKV_LOC_OFFSET_MASK))
#define FKV_LOC_IS_ENTRY(loc) ((loc) > FKV_LOC_DELETED)
#define FKV_HASH_BITS 27
#define FKV_HASH_MASK ((1u << FKV_HASH_BITS) - 1)
#define FKV_SLOT_HASH(word) ((word) & FKV_HASH_MASK)
#define FKV_SLOT_CLASS(word) ((word) >> FKV_HASH_BITS)
/* One slot per hash value at most: a 1 GiB file holds at most 63 million
 * records of 17 bytes, and the table stays at most half full when rebuilt. */
#define FKV_INDEX_MAX_CAP (1ull << FKV_HASH_BITS)

/* Size classes: 128 bytes times powers of 2^(1/4), so a read fetches at
 * most 19% more than the record; class 31 (27,554 bytes) holds the largest. */
static inline uint32_t fkv_class_bytes(uint32_t c)
{
    static const uint32_t bytes[32] = {
        128,  152,  181,  215,  256,  304,  362,  430,  512,   608,   724,
        861,  1024, 1217, 1448, 1722, 2048, 2435, 2896, 3444,  4096,  4870,
        5793, 6889, 8192, 9742, 11585, 13777, 16384, 19484, 23170, 27554};
    return bytes[c & 31];
}

/* The smallest class whose bytes hold a record of `size` bytes. */
static inline uint32_t fkv_size_class(size_t size)
{
    uint32_t c = 0;
    while (c < 31 && fkv_class_bytes(c) < size)
        c++;
    return c;
}

/* The slot's first word: a key hash with the record's size class. */
static inline uint32_t fkv_slot_word(uint32_t hash, size_t record_size)
{
    return (hash & FKV_HASH_MASK) | (fkv_size_class(record_size) << FKV_HASH_BITS);
}

typedef struct fkv_slot {
    uint32_t hash; /* FKV_SLOT_HASH and FKV_SLOT_CLASS */
    uint32_t loc;
} fkv_slot;

typedef struct fkv_index {
    fkv_slot *slots;
    uint64_t cap;     /* number of slots, a power of two; 0 when freed */
    uint64_t live;    /* slots holding an entry */
    uint64_t deleted; /* slots holding a deleted marker */
    unsigned shift;   /* FKV_HASH_BITS - log2(cap): hash >> shift is the home */
} fkv_index;

/* 27-bit hash of a key's bytes. */
uint32_t fkv_hash(const void *key, size_t len);

/* FKV_OK or FKV_ENOMEM. */
int fkv_index_init(fkv_index *ix, uint64_t expected_entries);

/* An empty table of exactly cap slots (a power of two up to
 * FKV_INDEX_MAX_CAP), for a caller that fills it (snapshot.c). */
int fkv_index_alloc(fkv_index *ix, uint64_t cap);
void fkv_index_free(fkv_index *ix);

/* Make room so that `extra` more fkv_index_put calls need no rebuild.
 * FKV_OK or FKV_ENOMEM (then the index is unchanged). May move entries. */
int fkv_index_reserve(fkv_index *ix, uint64_t extra);

static inline uint64_t fkv_index_home(const fkv_index *ix, uint32_t hash)
{
    return (hash & FKV_HASH_MASK) >> ix->shift;
}

static inline uint64_t fkv_index_next(const fkv_index *ix, uint64_t pos)
{
    return (pos + 1) & (ix->cap - 1);
}

/* First empty or deleted slot on hash's probe path: where a new entry goes. */
uint64_t fkv_index_free_slot(const fkv_index *ix, uint32_t hash);

/* Fill a slot returned by fkv_index_free_slot (after fkv_index_reserve);
 * word comes from fkv_slot_word. */
void fkv_index_put(fkv_index *ix, uint64_t pos, uint32_t word, uint32_t loc);

/* Turn an entry's slot into a deleted marker. */
void fkv_index_remove(fkv_index *ix, uint64_t pos);

/* Bytes of memory the table holds. */
static inline uint64_t fkv_index_bytes(const fkv_index *ix)
{
    return ix->cap * sizeof(fkv_slot);
}

#endif /* FKV_HASH_INDEX_H */
