/*
 * recover.c - the open path once the file is locked, read top-down:
 *
 *   recover_open
 *     load_header            the file header checked (or written into an
 *                            empty file)
 *     snapshot_open          the snapshot's front checked, or refused
 *     snapshot_hints_feed    after a crash: the records its hints name, kept
 *     walk_log               the log past what those cover, walked:
 *       log_walk_run           the log layer hands each intact record to
 *         keep_sink              the snapshot's blocks (while it can keep),
 *         apply_sink             or the table (store_apply, store_core.c)
 *       snapshot_finish        when it can keep no more: its whole table,
 *                              then the walk goes on applying
 *     snapshot_walked        the snapshot told the walk is done
 *
 * and the way back when the snapshot fails a check after it was taken
 * (FKV_ESNAPSHOT, at open or at any later call): recover_rebuild walks the
 * whole log into a fresh table and drops the snapshot. The snapshot never
 * walks the log itself, so no walk runs inside another.
 */
#include "recover.h"

#include <stdlib.h>

/* A record a sink took: the log is valid up to its end, and it is the last. */
static inline void took(fkv_store *s, const log_rec *r)
{
    s->end = r->off + fkv_record_size(&r->h);
    s->tail_off = r->off;
    s->tail_crc = r->h.crc;
}

/* The index slots a batch will touch, asked for while the walk checksums
 * the records: the slot loads (cache misses in a large table) overlap that
 * work instead of coming one after another. */
static void apply_look(void *ctx, const log_rec *recs, size_t n)
{
    const fkv_store *s = (const fkv_store *)ctx;
    for (size_t i = 0; i < n; i++)
        FKV_PREFETCH(&s->ix.slots[fkv_index_home(&s->ix, recs[i].hash)]);
}

/* Apply each record to the table. */
static int apply_sink(void *ctx, const log_rec *recs, size_t n, size_t *taken)
{
    fkv_store *s = (fkv_store *)ctx;
    int rc = fkv_index_reserve(&s->ix, n);
    if (rc != FKV_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = store_apply(s, recs[i].bytes, &recs[i].h, recs[i].off, recs[i].hash)) != FKV_OK)
            return rc;
        took(s, &recs[i]);
        *taken = i + 1;
    }
    return FKV_OK;
}

/* Keep each record for its home block of the snapshot's table; stop at the
 * first it has no room for. */
static int keep_sink(void *ctx, const log_rec *recs, size_t n, size_t *taken)
{
    fkv_store *s = (fkv_store *)ctx;
    for (size_t i = 0; i < n; i++) {
        int rc = snapshot_keep(s, recs[i].off, recs[i].hash);
        if (rc == FKV_EFULL)
            return FKV_OK;
        if (rc != FKV_OK)
            return rc;
        took(s, &recs[i]);
        *taken = i + 1;
    }
    return FKV_OK;
}

/* The log past a snapshot up to this long (after a crash) is read through
 * the data file's mapping, asked to be read in ahead, instead of copied out
 * with pread: a reopen of a million keys with 10,000 records past the
 * snapshot took 1.17 ms instead of 1.45 (Python, fresh processes, 20
 * interleaved rounds), the clean one the same. Longer logs, and whole
 * walks, go by pread and its read-ahead. */
#define WALK_MAPPED_MAX (64u << 20)

/* Walk the log from from up to size into the table, or (with keep) into
 * the snapshot's blocks while it keeps them; when it can keep no more, its
 * whole table is loaded and the walk goes on applying. */
static int walk_log(fkv_store *s, uint64_t from, uint64_t size, int keep, open_mode mode,
                    fkv_verify_report *rep)
{
    s->end = from;
    for (;;) {
        int keeping = keep && snapshot_keeping(s);
        log_walk w = {0};
        w.file = s->file;
        w.from = from;
        w.size = size;
        w.salvage = mode == OPEN_SALVAGE;
        w.mapped = keeping && size - from <= WALK_MAPPED_MAX;
        w.sink = keeping ? keep_sink : apply_sink;
        w.look = keeping ? NULL : apply_look;
        w.ctx = s;
        w.rep = rep;
        w.progress = s->progress;
        int rc = log_walk_run(&w);
        if (rc != FKV_OK)
            return rc;
        s->torn_dropped += w.torn_dropped;
        if (!w.stopped) {
            s->end = w.end;
            return FKV_OK;
        }
        if ((rc = snapshot_finish(s)) != FKV_OK)
            return rc;
        from = w.end;
    }
}

/* A fresh table built by a walk of the log up to end, in place of the one
 * there; on failure the store is as it was. */
static int walk_whole(fkv_store *s, uint64_t end, open_mode mode, fkv_verify_report *rep)
{
    fkv_index old = s->ix;
    uint64_t live_bytes = s->live_bytes, n_ttl = s->n_ttl, tail_off = s->tail_off;
    uint64_t torn = s->torn_dropped;
    uint32_t tail_crc = s->tail_crc;
    int rc = fkv_index_init(&s->ix, old.live); /* sized once: no growth during the walk */
    if (rc != FKV_OK) {
        s->ix = old;
        return rc;
    }
    s->live_bytes = s->ident.log_start;
    s->n_ttl = 0;
    s->tail_off = 0;
    s->tail_crc = 0;
    rc = walk_log(s, s->ident.log_start, end, 0, mode, rep);
    if (rc != FKV_OK) {
        fkv_index_free(&s->ix);
        s->ix = old;
        s->end = end;
        s->live_bytes = live_bytes;
        s->n_ttl = n_ttl;
        s->tail_off = tail_off;
        s->tail_crc = tail_crc;
        s->torn_dropped = torn;
        return rc;
    }
    fkv_index_free(&old);
    s->open_scanned = end - s->ident.log_start;
    s->cache_until = 0;
    return FKV_OK;
}

int recover_rebuild(fkv_store *s)
{
    int rc = walk_whole(s, s->end, OPEN_NORMAL, NULL);
    if (rc == FKV_OK)
        snapshot_drop(s);
    return rc; /* the log itself is damaged: as an open would have failed */
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

int recover_open(fkv_store *s, open_mode mode, fkv_verify_report *rep)
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
    uint64_t covered = mode == OPEN_NORMAL ? snapshot_open(s, size) : s->ident.log_start;
    uint64_t from = covered;
    if (snapshot_keeping(s) && from < size) /* after a crash: what hints name needs no walk */
        from = snapshot_hints_feed(s, from, size);
    s->open_scanned = size - from;
    rc = walk_log(s, from, size, 1, mode, rep);
    if (rc == FKV_OK) {
        size = s->end; /* a torn tail is cut off by now */
        s->open_scanned = s->end + s->torn_dropped - from; /* zeros past it not counted */
        rc = snapshot_walked(s, covered);
    }
    if (rc == FKV_ESNAPSHOT) { /* its table failed a check while loading whole */
        if ((rc = walk_whole(s, size, mode, rep)) == FKV_OK)
            snapshot_drop(s);
    }
    return rc;
}

int store_enter_all(fkv_store *s)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK || FKV_LIKELY(!s->snap.lazy))
        return rc;
    rc = snapshot_finish(s);
    if (rc == FKV_ESNAPSHOT)
        rc = recover_rebuild(s);
    if (rc != FKV_OK)
        store_leave(s);
    return rc;
}

int store_ready_path(fkv_store *s, uint32_t hash, fkv_wait wait)
{
    int rc = snapshot_ready(s, hash, wait);
    return rc == FKV_ESNAPSHOT ? recover_rebuild(s) : rc;
}
