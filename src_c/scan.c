/*
 * scan.c - open-time recovery: check the file header, then read the log
 * front to back and rebuild the index from it.
 *
 * A crash mid-append leaves at most one record's worth of bytes after the
 * last intact record, and no intact record after them: only that is a torn
 * tail, cut off when opening normally. Damage anywhere else is refused
 * (FKV_ECORRUPT at its offset) when opening, and stepped over (to the next
 * offset where an intact record starts) and counted when salvaging for
 * verify or repair, which never write to the file.
 */
#include "store_private.h"
#include "crc32c.h"

#include <stdlib.h>

#define SCAN_BATCH 16

/* 1 if an intact record (header in range, checksum right) starts at off,
 * 0 if not, or a negative status. Fills h. */
static int intact_at(fkv_window *w, uint64_t off, fkv_rec_header *h)
{
    int rc = fkv_window_cover(w, off, FKV_REC_HEADER_SIZE);
    if (rc != FKV_OK)
        return rc == FKV_ENOTFOUND ? 0 : rc;
    if (fkv_record_header_decode(fkv_window_at(w, off), h) != FKV_OK ||
        off + fkv_record_size(h) > w->limit)
        return 0;
    rc = fkv_window_cover(w, off, fkv_record_size(h));
    if (rc != FKV_OK)
        return rc == FKV_ENOTFOUND ? 0 : rc;
    return fkv_record_checksum_ok(fkv_window_at(w, off), h);
}

/* 1 if an intact record starts at off and lies wholly inside the window
 * (no read needed), else 0: the caller goes the slow way. */
static int intact_in_window(const fkv_window *w, uint64_t off, fkv_rec_header *h)
{
    if (!fkv_window_holds(w, off, FKV_REC_HEADER_SIZE))
        return 0;
    const uint8_t *rec = fkv_window_at(w, off);
    if (fkv_record_header_decode(rec, h) != FKV_OK)
        return 0;
    uint64_t end = off + fkv_record_size(h);
    if (end > w->limit || !fkv_window_holds(w, off, fkv_record_size(h)))
        return 0;
    return fkv_record_checksum_ok(rec, h);
}

/* The first offset after off where an intact record starts, or the end.
 * The window holds a chunk plus the largest record, so it is refilled
 * about once per chunk of offsets tried. */
static int next_intact(fkv_window *w, uint64_t off, uint64_t *next)
{
    for (uint64_t p = off + 1; p + FKV_REC_HEADER_SIZE <= w->limit; p++) {
        fkv_rec_header h;
        int r = intact_at(w, p, &h);
        if (r < 0)
            return r;
        if (r) {
            *next = p;
            return FKV_OK;
        }
    }
    *next = w->limit;
    return FKV_OK;
}

/* Apply one intact record to the index. Room in the index was reserved by
 * the caller for the whole batch. */
static int apply(fkv_store *s, const uint8_t *rec, const fkv_rec_header *h, uint64_t off,
                 uint32_t hash)
{
    const char *key = (const char *)rec + FKV_REC_HEADER_SIZE;
    uint8_t buf[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
    found f;
    int rc = store_lookup(s, key, h->klen, hash, buf, sizeof buf, FKV_MAY_WAIT, &f);
    if (rc != FKV_OK && rc != FKV_ENOTFOUND)
        return rc;
    if (rc == FKV_OK) {
        s->live_bytes -= fkv_record_size(&f.h);
        if (s->ix.slots[f.pos].loc & FKV_LOC_TTL)
            s->n_ttl--;
    }
    if (h->kind == FKV_KIND_PUT) {
        uint32_t loc = (uint32_t)off | (h->deadline_ms ? FKV_LOC_TTL : 0);
        uint32_t word = fkv_slot_word(hash, fkv_record_size(h));
        if (rc == FKV_OK) {
            s->ix.slots[f.pos].hash = word;
            s->ix.slots[f.pos].loc = loc;
        } else {
            fkv_index_put(&s->ix, fkv_index_free_slot(&s->ix, hash), word, loc);
        }
        s->live_bytes += fkv_record_size(h);
        s->n_ttl += h->deadline_ms != 0;
    } else if (rc == FKV_OK) {
        fkv_index_remove(&s->ix, f.pos);
    }
    return FKV_OK;
}

typedef struct scan_item {
    uint64_t off;
    fkv_rec_header h;
    uint32_t hash;
} scan_item;

/* Apply the intact record at off and the intact ones after it that are
 * already in the window: all are hashed and their index slots prefetched
 * first, so the slot loads (cache misses in a large table) overlap instead
 * of coming one after another. *off moves past them. */
static int apply_batch(fkv_store *s, fkv_window *w, uint64_t *off, fkv_rec_header h,
                       fkv_verify_report *rep)
{
    scan_item batch[SCAN_BATCH];
    size_t nb = 0;
    int rc = fkv_index_reserve(&s->ix, SCAN_BATCH);
    if (rc != FKV_OK)
        return rc;
    for (;;) {
        const uint8_t *rec = fkv_window_at(w, *off);
        batch[nb].off = *off;
        batch[nb].h = h;
        batch[nb].hash = fkv_hash(rec + FKV_REC_HEADER_SIZE, h.klen);
        FKV_PREFETCH(&s->ix.slots[fkv_index_home(&s->ix, batch[nb].hash)]);
        *off += fkv_record_size(&h);
        if (++nb == SCAN_BATCH || *off >= w->limit || !intact_in_window(w, *off, &h))
            break;
    }
    for (size_t i = 0; i < nb; i++) {
        rc = apply(s, fkv_window_at(w, batch[i].off), &batch[i].h, batch[i].off, batch[i].hash);
        if (rc != FKV_OK)
            return rc;
        if (rep) {
            rep->intact_records++;
            if (batch[i].h.kind == FKV_KIND_PUT)
                rep->puts++;
            else
                rep->tombstones++;
        }
        s->end = batch[i].off + fkv_record_size(&batch[i].h);
        s->tail_off = batch[i].off;
        s->tail_crc = batch[i].h.crc;
    }
    return FKV_OK;
}

/* Past a snapshot whose table loads block by block (after a crash), a
 * record is only checked and kept for its home block (snapshot_blocks.c),
 * applied when that block is first needed or by a load of the whole table
 * (which too many kept records start, covering the log up to s->end):
 * there is no table slot to prefetch, so no batch, and the checksums go two
 * at a time. Takes the intact records from *off that lie whole in the
 * window, while open still defers; stops before anything else, which the
 * caller then judges as always (a damaged record's checksum is simply
 * computed again). */
static int defer_run(fkv_store *s, const fkv_window *w, uint64_t *off)
{
    int rc = FKV_OK;
    while (s->lazy && s->lazy->deferring) { /* a load of everything may free it */
        fkv_rec_header h[2];
        const uint8_t *rec[2];
        uint64_t start[2], end[2];
        int n = 0;
        for (uint64_t p = *off; n < 2 && fkv_window_holds(w, p, FKV_REC_HEADER_SIZE); n++) {
            rec[n] = fkv_window_at(w, p);
            if (fkv_record_header_decode(rec[n], &h[n]) != FKV_OK)
                break;
            start[n] = p;
            end[n] = p + fkv_record_size(&h[n]);
            if (end[n] > w->limit || !fkv_window_holds(w, p, fkv_record_size(&h[n])))
                break;
            p = end[n];
        }
        if (n == 0)
            break;
        int ok = n == 2 ? fkv_record_checksums_ok(rec[0], &h[0], rec[1], &h[1])
                        : fkv_record_checksum_ok(rec[0], &h[0]);
        for (int i = 0; i < n && (ok >> i & 1) && s->lazy && s->lazy->deferring; i++) {
            /* s->end first: a defer past the bound applies the log up to it */
            s->end = end[i];
            rc = snapshot_defer(s, start[i], fkv_hash(rec[i] + FKV_REC_HEADER_SIZE, h[i].klen));
            if (rc != FKV_OK)
                return rc;
            s->tail_off = start[i];
            s->tail_crc = h[i].crc;
            *off = end[i];
        }
        if (ok != (1 << n) - 1)
            break;
    }
    return rc;
}

/* Bytes at off that are not an intact record: a torn tail (cut, or counted
 * when salvaging), or damage (refused, or stepped over when salvaging).
 * *stop is set when the scan ends here. */
static int on_damage(fkv_store *s, fkv_window *w, open_mode mode, fkv_verify_report *rep,
                     uint64_t *off, int *stop)
{
    uint64_t size = w->limit, next = size;
    int rc;
    if ((mode == OPEN_SALVAGE || size - *off <= FKV_REC_MAX) &&
        (rc = next_intact(w, *off, &next)) != FKV_OK)
        return rc;
    if (next == size && size - *off <= FKV_REC_MAX) {
        *stop = 1;
        if (mode == OPEN_SALVAGE) {
            rep->torn_tail_bytes = size - *off;
            return FKV_OK;
        }
        if (ftruncate(s->file->fd, (off_t)*off) != 0)
            return fkv_io_error();
        s->torn_dropped = size - *off;
        return FKV_OK;
    }
    if (mode != OPEN_SALVAGE)
        return fkv_corrupt_at(*off);
    if (rep->damaged_regions++ == 0)
        rep->first_damage_offset = *off;
    rep->damaged_bytes += next - *off;
    *off = next;
    s->end = next;
    return FKV_OK;
}

/* A walk of the log from offset from up to size, applying it to the index. */
typedef struct scan_walk {
    fkv_store *s;
    fkv_window *w;
    uint64_t from, size;
    open_mode mode;
    fkv_verify_report *rep;
} scan_walk;

static int walk(void *arg)
{
    scan_walk *a = (scan_walk *)arg;
    fkv_store *s = a->s;
    uint64_t off = a->from;
    int rc = FKV_OK, stop = 0;
    while (off < a->size && !stop) {
        fkv_rec_header h;
        progress_done(s, off);
        if (s->lazy && s->lazy->deferring && /* only when opening normally */
            ((rc = defer_run(s, a->w, &off)) != FKV_OK || off >= a->size))
            break;
        int r = intact_at(a->w, off, &h);
        if (r < 0)
            rc = r;
        else if (r == 0)
            rc = on_damage(s, a->w, a->mode, a->rep, &off, &stop);
        else if (!(s->lazy && s->lazy->deferring)) /* else the window now holds it: kept */
            rc = apply_batch(s, a->w, &off, h, a->rep);
        if (rc != FKV_OK)
            break;
    }
    return rc;
}

/* The log past a snapshot up to this long (after a crash) is read through
 * the data file's mapping, asked to be read in ahead, instead of copied out
 * with pread: a reopen of a million keys with 10,000 records past the
 * snapshot took 1.17 ms instead of 1.45 (Python, fresh processes, 20
 * interleaved rounds), the clean one the same. Longer logs, and whole
 * scans, go by pread and its read-ahead. */
#define SCAN_MAPPED_MAX (64u << 20)

/* Apply the log from offset from up to size to the index. */
static int scan(fkv_store *s, uint64_t from, uint64_t size, open_mode mode,
                fkv_verify_report *rep)
{
    fkv_window w;
    const uint8_t *map = s->file->map;
    int mapped = map && s->lazy && s->lazy->deferring && size <= FKV_MAP_BYTES &&
                 size - from <= SCAN_MAPPED_MAX;
    if (mapped) {
        fkv_window_over_map(&w, map, size);
        fkv_map_will_read(map, from, size - from);
    } else if (fkv_window_init(&w, s->file->fd, size) != FKV_OK) {
        return FKV_ENOMEM;
    }
    s->end = from;
    progress_total(s, size);
    /* A fault in the mapping (the file cut short behind the store's back,
     * a disk error) ends the walk with FKV_EIO; the caller drops the index
     * it was building, as after any error. */
    scan_walk a = {s, &w, from, size, mode, rep};
    int rc = mapped ? fkv_map_guarded(walk, &a) : walk(&a);
    fkv_window_free(&w);
    if (rc == FKV_OK)
        progress_done(s, size);
    return rc;
}

/* Check the file header of a file of size bytes, or write one into an
 * empty file (this store's session then writes from the start). */
static int load_header(fkv_store *s, open_mode mode, fkv_verify_report *rep, uint64_t *size)
{
    uint8_t header[FKV_FILE_HEADER_SIZE];
    s->ident.log_start = FKV_FILE_HEADER_SIZE;
    if (*size == 0) {
        if (mode == OPEN_SALVAGE)
            return FKV_OK;
        fkv_file_header_encode(header, fkv_now_ms(), &s->ident, &s->lineage);
        int rc = fkv_write_at(s->file->fd, header, sizeof header, 0);
        if (rc == FKV_OK && s->durability == FKV_DURABLE_FSYNC)
            rc = fkv_flush(s->file->fd);
        if (rc == FKV_OK)
            *size = FKV_FILE_HEADER_SIZE;
        s->writing = 1;
        return rc;
    }
    size_t got;
    if (*size < FKV_FILE_HEADER_OLD)
        return FKV_ENOTSTORE;
    int rc = fkv_read_at(s->file->fd, header, sizeof header, 0, &got, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    if (got < FKV_FILE_HEADER_OLD)
        return FKV_ENOTSTORE;
    rc = fkv_file_header_check(header, &s->ident);
    if (rc == FKV_OK && got < s->ident.log_start)
        rc = FKV_ECORRUPT; /* a format 3 header cut short */
    if (rc == FKV_ECORRUPT && mode == OPEN_SALVAGE) {
        rep->header_ok = 0; /* the magic is ours: salvage what follows */
        s->ident.log_start = fkv_load32(header + 12) == FKV_FILE_HEADER_OLD ? FKV_FILE_HEADER_OLD
                                                                          : FKV_FILE_HEADER_SIZE;
        if (*size < s->ident.log_start)
            *size = s->ident.log_start;
        return FKV_OK;
    }
    if (rc == FKV_ECORRUPT)
        return fkv_corrupt_at(0);
    if (rc != FKV_OK)
        return rc;
    if (s->ident.version == FKV_FORMAT_VERSION)
        (void)fkv_lineage_decode(header + FKV_LINEAGE_AT, &s->lineage); /* else unknown */
    if (*size > FKV_MAX_FILE_SIZE) /* offsets would not fit the index */
        return fkv_corrupt_at(FKV_MAX_FILE_SIZE);
    return FKV_OK;
}

int scan_load(fkv_store *s, open_mode mode, fkv_verify_report *rep)
{
    struct stat st;
    if (fstat(s->file->fd, &st) != 0)
        return fkv_io_error();
    uint64_t size = (uint64_t)st.st_size;
    if (rep)
        rep->file_bytes = size;
    int rc = load_header(s, mode, rep, &size);
    if (rc != FKV_OK)
        return rc;
    if ((rc = fkv_index_init(&s->ix, 0)) != FKV_OK)
        return rc;
    s->live_bytes = s->ident.log_start;
    if (size == 0)
        return FKV_OK;
    /* Verify and repair read every record: they never trust a snapshot. */
    uint64_t covered = s->ident.log_start;
    if (mode == OPEN_NORMAL)
        s->snapshot_status = snapshot_load(s, size, &covered);
    uint64_t from = covered;
    if (s->lazy && from < size) /* after a crash: what hints name needs no scan */
        from = hints_load(s, from, size);
    s->open_scanned = size - from;
    if ((rc = scan(s, from, size, mode, rep)) != FKV_OK)
        return rc;
    if (s->lazy && (rc = snapshot_tail_scanned(s)) != FKV_OK)
        return rc;
    if (s->snapshot_status == SNAP_LOADED && s->end == covered) {
        s->snapshot_seq = s->write_seq; /* nothing past it: the snapshot is current */
        if (s->lazy)
            hints_start(s, s->lazy);
    }
    snapshot_covers(s, s->snapshot_status == SNAP_LOADED ? covered : 0);
    return FKV_OK;
}

int scan_rebuild(fkv_store *s)
{
    fkv_index old = s->ix;
    uint64_t end = s->end, live_bytes = s->live_bytes, n_ttl = s->n_ttl;
    uint64_t tail_off = s->tail_off;
    uint32_t tail_crc = s->tail_crc;
    int rc = fkv_index_init(&s->ix, old.live); /* sized once: no growth during the scan */
    if (rc != FKV_OK) {
        s->ix = old;
        return rc;
    }
    s->live_bytes = s->ident.log_start;
    s->n_ttl = 0;
    rc = scan(s, s->ident.log_start, end, OPEN_NORMAL, NULL);
    if (rc != FKV_OK) {
        fkv_index_free(&s->ix);
        s->ix = old;
        s->end = end;
        s->live_bytes = live_bytes;
        s->n_ttl = n_ttl;
        s->tail_off = tail_off;
        s->tail_crc = tail_crc;
        return rc;
    }
    fkv_index_free(&old);
    s->open_scanned = end - s->ident.log_start;
    s->cache_until = 0;
    return FKV_OK;
}

int scan_read_key(fkv_store *s, uint64_t off, scan_key *k, scan_check check)
{
    size_t got = 0;
    int rc = read_log_at(s->file->fd, s->file->map, s->end, off, k->rec, sizeof k->rec,
                         FKV_MAY_WAIT, &got);
    if (rc != FKV_OK)
        return rc;
    if (got < FKV_REC_HEADER_SIZE || fkv_record_header_decode(k->rec, &k->h) != FKV_OK ||
        got < FKV_REC_HEADER_SIZE + k->h.klen || off + fkv_record_size(&k->h) > s->end)
        return fkv_corrupt_at(off);
    k->hash = fkv_hash(k->rec + FKV_REC_HEADER_SIZE, k->h.klen);
    if (check == SCAN_KEY_ONLY)
        return FKV_OK;
    size_t size = fkv_record_size(&k->h), have = got < size ? got : size;
    uint32_t crc = fkv_crc32c(0, k->rec + 4, have - 4);
    uint8_t more[1024];
    for (uint64_t at = off + have; at < off + size; at += got) {
        size_t want = off + size - at < sizeof more ? (size_t)(off + size - at) : sizeof more;
        if ((rc = read_log_at(s->file->fd, s->file->map, s->end, at, more, want, FKV_MAY_WAIT,
                              &got)) != FKV_OK)
            return rc;
        if (got == 0)
            return fkv_corrupt_at(off);
        crc = fkv_crc32c(crc, more, got);
    }
    return crc == k->h.crc ? FKV_OK : fkv_corrupt_at(off);
}

int scan_apply_key(fkv_store *s, const scan_key *k, uint64_t off)
{
    return apply(s, k->rec, &k->h, off, k->hash);
}
