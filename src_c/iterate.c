/*
 * iterate.c - iteration over live keys while other threads write and compact.
 *
 * The cursor is a key hash, not a slot or a file offset. Iteration visits
 * the hash space [0, 2^27) in increasing order, one range [lo, hi) per
 * batch, and a batch yields the live keys whose hash lies in its range. The
 * ranges of successive batches are disjoint and cover the whole space, and a
 * key's hash never changes, so a key that stays live for the whole
 * iteration is yielded exactly once, and no key is yielded twice, whatever
 * happens between batches:
 *  - writes and deletes only touch their own key's slot;
 *  - a compaction rewrites offsets in place (compact.c) and moves nothing;
 *  - a rebuild of the index moves entries to other slots, but the cursor is
 *    a hash value, which means the same range in a table of any size.
 * Keys created or deleted meanwhile may or may not appear, as promised.
 *
 * Finding a range's keys needs the table laid out in hash order: an entry's
 * home slot is the top bits of its hash (hash_index.h), and linear probing
 * leaves it at its home or after it with no empty slot in between. So every
 * entry with a hash in [lo, hi) lies in the slots from home(lo) through
 * home(hi - 1), or after them (wrapping past the table's end) before the
 * next empty slot. A batch scans exactly those slots and keeps the entries
 * whose hash is in range; a range is halved until its entries fit a batch,
 * down to a single hash value, whose entries all go out together.
 *
 * Memory is one batch: no copy of the key set, and no lock between batches.
 * The mutex is held only to read the index; the keys are then read from the
 * file pinned at that moment (fkv_file), in offset order.
 */
#include "recover.h"

#include <stdlib.h>

FKV_STATIC_ASSERT(FKV_ITER_END == FKV_INDEX_MAX_CAP, "the cursor spans the hash space");

#define BATCH_ENTRIES 256u /* aimed at: entries found per batch */

typedef struct pending {
    uint64_t off;
    uint32_t size; /* the record's size class: it covers the whole record */
} pending;

/* Entries with a hash in [lo, hi): their number, and the first max of them
 * stored in out. */
static size_t collect(const fkv_index *ix, uint64_t lo, uint64_t hi, pending *out, size_t max)
{
    uint64_t first = fkv_index_home(ix, (uint32_t)lo);
    uint64_t last = fkv_index_home(ix, (uint32_t)(hi - 1));
    size_t n = 0;
    int past_last = 0;
    for (uint64_t pos = first;;) {
        fkv_slot slot = ix->slots[pos];
        uint32_t h = FKV_SLOT_HASH(slot.hash);
        if (FKV_LOC_IS_ENTRY(slot.loc) && h >= lo && h < hi) {
            if (n < max) {
                out[n].off = FKV_LOC_OFFSET(slot.loc);
                out[n].size = (uint32_t)slot_read_size(slot, FKV_REC_MAX);
            }
            n++;
        }
        past_last |= pos == last;
        pos = fkv_index_next(ix, pos);
        /* Past the range's home slots, go on to the next empty slot, but not
         * round to slots this scan has seen (a range that spans the table). */
        if (past_last && (pos == first || ix->slots[pos].loc == FKV_LOC_EMPTY))
            break;
    }
    return n;
}

/* Under the mutex: the next range from lo and its entries, in fresh memory. */
static int take_range(const fkv_index *ix, uint64_t lo, uint64_t *hi_out, pending **out,
                      size_t *n_out)
{
    /* Start from a span of hash values that covers BATCH_ENTRIES slots. */
    uint64_t span = (uint64_t)BATCH_ENTRIES << ix->shift, hi;
    size_t n;
    for (;;) {
        hi = lo + span < FKV_ITER_END ? lo + span : FKV_ITER_END;
        n = collect(ix, lo, hi, NULL, 0);
        if (n <= 2 * BATCH_ENTRIES || span == 1)
            break;
        span /= 2;
    }
    pending *p = (pending *)malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return FKV_ENOMEM;
    collect(ix, lo, hi, p, n);
    *out = p;
    *n_out = n;
    *hi_out = hi;
    return FKV_OK;
}

static int batch_add(fkv_key_batch *b, const uint8_t *key, size_t klen)
{
    if (b->used + 1 + klen > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap < b->used + 1 + klen)
            cap *= 2;
        uint8_t *data = (uint8_t *)realloc(b->data, cap);
        if (!data)
            return FKV_ENOMEM;
        b->data = data;
        b->cap = cap;
    }
    b->data[b->used] = (uint8_t)klen;
    memcpy(b->data + b->used + 1, key, klen);
    b->used += 1 + klen;
    b->count++;
    return FKV_OK;
}

/* Without the mutex: read each entry's record from the pinned file, check
 * it whole (a store opened from its snapshot has not read it since; a
 * damaged key must never come out as a key), and keep the live ones that
 * start with prefix. */
static int read_keys(int fd, uint64_t end, pending *p, size_t n, const char *prefix,
                     size_t plen, fkv_key_batch *out)
{
    uint8_t *rec = (uint8_t *)malloc(FKV_REC_MAX);
    if (!rec)
        return FKV_ENOMEM;
    uint64_t now = fkv_now_ms();
    int rc = FKV_OK;
    for (size_t i = 0; i < n && rc == FKV_OK; i++) {
        fkv_rec_header h;
        size_t got = 0;
        rc = read_record_at(fd, NULL, end, p[i].off, rec, p[i].size, FKV_MAY_WAIT, &h, &got);
        if (rc == FKV_OK && (got < fkv_record_size(&h) || !fkv_record_checksum_ok(rec, &h)))
            rc = fkv_corrupt_at(p[i].off);
        if (rc != FKV_OK)
            break;
        const uint8_t *key = rec + FKV_REC_HEADER_SIZE;
        if (is_expired(&h, now) || h.klen < plen || memcmp(key, prefix, plen) != 0)
            continue;
        rc = batch_add(out, key, h.klen);
    }
    free(rec);
    return rc;
}

int fkv_iter_next(fkv_store *s, uint64_t *cursor, const char *prefix, size_t plen,
                  fkv_key_batch *out)
{
    out->used = 0;
    out->count = 0;
    if (*cursor >= FKV_ITER_END)
        return FKV_OK;
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    pending *p = NULL;
    size_t n = 0;
    uint64_t hi = 0;
    rc = take_range(&s->ix, *cursor, &hi, &p, &n);
    fkv_file *file = s->file;
    uint64_t end = s->end;
    fkv_file_pin(file);
    store_leave(s);
    if (rc == FKV_OK)
        rc = read_keys(file->fd, end, p, n, prefix, plen, out);
    fkv_file_unpin(file);
    free(p);
    if (rc == FKV_OK)
        *cursor = hi;
    return rc;
}

void fkv_key_batch_free(fkv_key_batch *b)
{
    free(b->data);
    b->data = NULL;
    b->used = b->cap = b->count = 0;
}
