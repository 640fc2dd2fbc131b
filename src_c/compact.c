/*
 * compact.c - rewrite the data file with only the records the index points
 * to, in log order, dropping expired ones.
 *
 * The new file (path + ".compact") is locked before anything is written to
 * it and renamed over the data file once it is whole and flushed, so a
 * crash leaves either the old file or the new one, and no other opener can
 * get in between. The index is updated slot by slot only after the rename:
 * until then a failure leaves the store exactly as it was.
 */
#include "compact.h"
#include "snapshot.h"

#include <stdlib.h>

#define AUTO_COMPACT_MIN (4u << 20)

/* One entry of the index to carry over: its slot, and its location (the
 * record's offset and the deadline bit; after the copy, its place in the
 * new file, or 0 if it was dropped). */
typedef struct carried {
    uint32_t loc;
    uint32_t pos;
} carried;

#define RADIX_BITS 11
#define RADIX_PASSES 3 /* 33 bits: an offset has 31 */
#define RADIX_DIGIT(loc, shift) ((((loc) & FKV_LOC_OFFSET_MASK) >> (shift)) & ((1u << RADIX_BITS) - 1))

/* The index's entries (but skip_pos), sorted by offset: the order of the
 * log. Walking the table and sorting it, rather than walking the log and
 * finding each record's slot, spares a random probe of the table for every
 * record, dead ones included: those probes' cache misses were two thirds of
 * a compaction's time at a million keys. A radix sort, since a comparison
 * sort of a million entries would cost as much as the probes. NULL if
 * memory runs out. */
static carried *entries_in_log_order(const fkv_index *ix, uint64_t skip_pos, size_t *count)
{
    size_t n = 0, cap = ix->live ? (size_t)ix->live : 1;
    carried *a = (carried *)malloc(cap * sizeof *a), *b = (carried *)malloc(cap * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return NULL;
    }
    for (uint64_t pos = 0; pos < ix->cap && n < cap; pos++) {
        uint32_t loc = ix->slots[pos].loc;
        if (FKV_LOC_IS_ENTRY(loc) && pos != skip_pos)
            a[n++] = (carried){loc, (uint32_t)pos};
    }
    for (unsigned pass = 0; pass < RADIX_PASSES; pass++) {
        unsigned shift = pass * RADIX_BITS;
        size_t at[1u << RADIX_BITS] = {0};
        for (size_t i = 0; i < n; i++)
            at[RADIX_DIGIT(a[i].loc, shift)]++;
        size_t sum = 0;
        for (size_t d = 0; d < (1u << RADIX_BITS); d++) {
            size_t c = at[d];
            at[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            b[at[RADIX_DIGIT(a[i].loc, shift)]++] = a[i];
        carried *t = a;
        a = b;
        b = t;
    }
    free(b);
    *count = n;
    return a;
}

/* Copy each entry's record, in log order, into w unless it has expired;
 * each entry's loc becomes its place in the new file (0: dropped). */
static int copy_live(fkv_store *s, carried *e, size_t n, uint64_t now, fkv_bufwriter *w,
                     uint64_t *tail_off, uint32_t *tail_crc)
{
    fkv_window win;
    if (fkv_window_init(&win, s->file->fd, s->end) != FKV_OK)
        return FKV_ENOMEM;
    int rc = FKV_OK;
    progress_total(s->progress, s->end);
    for (size_t i = 0; i < n; i++) {
        uint64_t off = FKV_LOC_OFFSET(e[i].loc);
        uint32_t ttl = e[i].loc & FKV_LOC_TTL;
        fkv_rec_header h;
        progress_done(s->progress, off);
        rc = fkv_window_cover(&win, off, FKV_REC_HEADER_SIZE);
        if (rc == FKV_OK && (fkv_record_header_decode(fkv_window_at(&win, off), &h) != FKV_OK ||
                             h.kind != FKV_KIND_PUT))
            rc = FKV_ECORRUPT;
        if (rc == FKV_OK)
            rc = fkv_window_cover(&win, off, fkv_record_size(&h));
        if (rc == FKV_OK && !fkv_record_checksum_ok(fkv_window_at(&win, off), &h))
            rc = FKV_ECORRUPT;
        if (rc != FKV_OK) {
            if (rc != FKV_EIO)
                rc = fkv_corrupt_at(off);
            break;
        }
        e[i].loc = 0;
        if (is_expired(&h, now))
            continue;
        uint64_t at = fkv_bufwriter_offset(w);
        if ((rc = fkv_bufwriter_add(w, fkv_window_at(&win, off), fkv_record_size(&h))) != FKV_OK)
            break;
        e[i].loc = (uint32_t)at | ttl;
        *tail_off = at;
        *tail_crc = h.crc;
    }
    fkv_window_free(&win);
    if (rc == FKV_OK)
        progress_done(s->progress, s->end);
    return rc;
}

/* After the rename: point every entry at its new place, or drop it. */
static void repoint_index(fkv_store *s, const carried *e, size_t n, uint64_t skip_pos)
{
    uint64_t n_ttl = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].loc) {
            s->ix.slots[e[i].pos].loc = e[i].loc;
            n_ttl += (e[i].loc & FKV_LOC_TTL) != 0;
        } else {
            fkv_index_remove(&s->ix, e[i].pos);
        }
    }
    if (skip_pos != COMPACT_KEEP_ALL)
        fkv_index_remove(&s->ix, skip_pos);
    s->n_ttl = n_ttl;
}

int compact_locked(fkv_store *s, uint64_t skip_pos)
{
    fkv_tempfile tmp;
    fkv_bufwriter w = {0};
    size_t n = 0;
    carried *entries = entries_in_log_order(&s->ix, skip_pos, &n);
    int rc = fkv_temp_create(&tmp, s->path, COMPACT_SUFFIX, s->file->fd);
    if (rc == FKV_OK && !entries)
        rc = FKV_ENOMEM;
    if (rc == FKV_OK)
        rc = fkv_bufwriter_init(&w, tmp.fd);
    uint64_t now = fkv_now_ms(), tail_off = 0;
    uint32_t tail_crc = 0;
    uint8_t header[FKV_FILE_HEADER_SIZE];
    fkv_file_identity ident;
    fkv_lineage lineage; /* the new file's first session: this store's */
    fkv_file_header_encode(header, now, &ident, &lineage);
    if (rc == FKV_OK)
        rc = fkv_bufwriter_add(&w, header, sizeof header);
    if (rc == FKV_OK)
        rc = copy_live(s, entries, n, now, &w, &tail_off, &tail_crc);
    if (rc == FKV_OK)
        rc = fkv_bufwriter_finish(&w);
    fkv_file *fresh = NULL;
    if (rc == FKV_OK && !(fresh = fkv_file_wrap(tmp.fd, -1)))
        rc = FKV_ENOMEM;
    if (rc == FKV_OK && (rc = fkv_temp_install(&tmp, s->path)) != FKV_OK)
        free(fresh); /* its descriptor is still tmp's, discarded below */
    if (rc == FKV_OK) {
        repoint_index(s, entries, n, skip_pos);
        /* Wake anyone waiting on the old file: they see it was replaced
         * and retry on the new one, which is locked already. Reads in
         * flight keep the old descriptor until they are done. */
        fkv_file_move_lock(fresh, s->file);
        fkv_file_release(s->file);
        s->file = fresh;
        tmp.fd = -1;
        /* The new file was flushed before the rename: all of it is durable. */
        s->durable_seq = s->write_seq;
        s->end = w.flushed;
        s->live_bytes = w.flushed;
        s->cache_until = 0;
        s->compactions++;
        s->ident = ident;
        s->lineage = lineage;
        s->writing = 1;
        s->tail_off = tail_off;
        s->tail_crc = tail_crc;
        snapshot_log_replaced(s);
    }
    fkv_temp_discard(&tmp);
    fkv_bufwriter_free(&w);
    free(entries);
    return rc;
}

int compact_make_room(fkv_store *s, size_t need, uint64_t now)
{
    uint64_t live;
    int rc = store_count_live(s, now, &live);
    if (rc != FKV_OK)
        return rc;
    int has_expired = live < s->ix.live;
    if (!has_expired && s->live_bytes + need > s->max_file_size)
        return FKV_EFULL; /* compaction could not free enough */
    rc = compact_locked(s, COMPACT_KEEP_ALL);
    if (rc != FKV_OK)
        return rc;
    return s->end + need <= s->max_file_size ? FKV_OK : FKV_EFULL;
}

/* Compacts once dead records are over half of a file of at least
 * AUTO_COMPACT_MIN bytes (half the cap, if that is smaller). Rewriting costs
 * about as much as the writes that left the dead bytes, so the cost per
 * write stays bounded. A failure is not the caller's: its write is done. */
void compact_maybe(fkv_store *s)
{
    uint64_t floor = AUTO_COMPACT_MIN;
    if (floor > s->max_file_size / 2)
        floor = s->max_file_size / 2;
    if (s->end < floor || (s->end - s->live_bytes) * 2 <= s->end || s->end < s->auto_retry_at)
        return;
    if (compact_locked(s, COMPACT_KEEP_ALL) != FKV_OK)
        s->auto_retry_at = s->end + floor; /* do not retry on every write */
}
