/*
 * log.c - the log read front to back (the walk), and one record's key read
 * back (see log.h).
 *
 * A crash mid-append leaves at most one record's worth of bytes after the
 * last intact record (or one group's: record.h), and no intact record
 * after them: only that is a torn tail, cut off by a normal walk. Zeros
 * after it are room that appends made ahead (append.h), cut with it. A
 * group's members reach the sink only once the whole group is known to be
 * there and intact, so a walk never applies part of one. Damage anywhere else is refused
 * (FKV_ECORRUPT at its offset), or stepped over (to the next offset where
 * an intact record starts) and counted when salvaging for verify or
 * repair, which never write to the file.
 */
#include "log.h"
#include "crc32c.h"
#include "hash_index.h" /* fkv_hash: the key's hash, which sinks need */

#include <stdlib.h>

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

/* The first offset in (off, stop) where an intact record starts, or the
 * window's end if none. Past stop the file holds only zeros, where no
 * record starts (a header of zeros never decodes). The window holds a
 * chunk plus the largest record, so it is refilled about once per chunk
 * of offsets tried. */
static int next_intact(fkv_window *w, uint64_t off, uint64_t stop, uint64_t *next)
{
    for (uint64_t p = off + 1; p < stop && p + FKV_REC_HEADER_SIZE <= w->limit; p++) {
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

/* Up to max intact records from off that lie whole in the window, hashed.
 * First every header is decoded and every key hashed, and the sink may
 * look at them (to prefetch what it will touch) while their checksums are
 * computed, two records at a time (two CRC streams interleave). Stops
 * before anything else, which the caller then judges the slow way. */
static size_t gather(const log_walk *a, const fkv_window *w, uint64_t off, log_rec *out,
                     size_t max)
{
    size_t n = 0;
    for (uint64_t p = off; n < max && fkv_window_holds(w, p, FKV_REC_HEADER_SIZE); n++) {
        log_rec *r = &out[n];
        r->bytes = fkv_window_at(w, p);
        if (fkv_record_header_decode(r->bytes, &r->h) != FKV_OK || r->h.kind == FKV_KIND_GROUP)
            break; /* a group is judged whole first (on_group) */
        size_t size = fkv_record_size(&r->h);
        if (p + size > w->limit || !fkv_window_holds(w, p, size))
            break;
        r->off = p;
        r->hash = fkv_hash(r->bytes + FKV_REC_HEADER_SIZE, r->h.klen);
        p += size;
    }
    if (n > 0 && a->look)
        a->look(a->ctx, out, n);
    for (size_t i = 0; i < n; i += 2) {
        int pair = i + 1 < n;
        int ok = pair ? fkv_record_checksums_ok(out[i].bytes, &out[i].h, out[i + 1].bytes,
                                                &out[i + 1].h)
                      : fkv_record_checksum_ok(out[i].bytes, &out[i].h);
        if (!(ok & 1))
            return i;
        if (pair && !(ok & 2))
            return i + 1;
    }
    return n;
}

/* *out: where the zeros that end the file begin (its end if none), at or
 * after off; found once per walk. Zeros past the last record are room
 * made ahead for appends that was never written (append.h): not torn
 * bytes, and not damage however many there are (a power cut can leave
 * more than the room's worth, the file's length reaching the disk before
 * the pages written through the mapping). */
static int zeros_from(log_walk *a, fkv_window *w, uint64_t off, uint64_t *out)
{
    if (a->zeros_from_known) {
        *out = a->zeros_from > off ? a->zeros_from : off;
        return FKV_OK;
    }
    uint64_t p = w->limit;
    while (p > off) {
        size_t n = p - off < FKV_SCAN_CHUNK ? (size_t)(p - off) : FKV_SCAN_CHUNK;
        int rc = fkv_window_cover(w, p - n, n);
        if (rc == FKV_ENOTFOUND)
            break; /* the file is shorter than its length said: all of it counts */
        if (rc != FKV_OK)
            return rc;
        const uint8_t *b = fkv_window_at(w, p - n);
        size_t i = n;
        while (i > 0 && b[i - 1] == 0)
            i--;
        p -= n - i;
        if (i > 0)
            break;
    }
    a->zeros_from = p;
    a->zeros_from_known = 1;
    *out = p > off ? p : off;
    return FKV_OK;
}

/* Cut the log at off, where a torn tail begins (or count it, salvaging):
 * the bytes up to data were written, those after are zeros. */
static int cut_tail(log_walk *a, uint64_t off, uint64_t data)
{
    if (a->salvage) {
        a->rep->torn_tail_bytes = data - off;
        return FKV_OK;
    }
    if (ftruncate(a->file->fd, (off_t)off) != 0)
        return fkv_io_error();
    a->torn_dropped = data - off;
    return FKV_OK;
}

/* Bytes at *off that are not an intact record: a torn tail (cut, or
 * counted when salvaging), or damage (refused, or stepped over when
 * salvaging). *stop is set when the walk ends here. */
static int on_damage(log_walk *a, fkv_window *w, uint64_t *off, int *stop)
{
    uint64_t size = w->limit, next = size, data;
    int rc = zeros_from(a, w, *off, &data);
    if (rc != FKV_OK)
        return rc;
    if ((a->salvage || data - *off <= FKV_REC_MAX) && (rc = next_intact(w, *off, data, &next)) != FKV_OK)
        return rc;
    if (next == size && data - *off <= FKV_REC_MAX) {
        *stop = 1;
        return cut_tail(a, *off, data);
    }
    if (!a->salvage)
        return fkv_corrupt_at(*off);
    if (a->rep->damaged_regions++ == 0)
        a->rep->first_damage_offset = *off;
    a->rep->damaged_bytes += next - *off;
    *off = next;
    return FKV_OK;
}

/* 1 if the members of group g, from first, are all there, parse as g
 * says (count records, none a group, filling its bytes exactly) and match
 * its checksum; 0 if not; or a negative status. */
static int group_whole(fkv_window *w, uint64_t first, const fkv_group_header *g)
{
    uint64_t end = first + g->bytes, p = first;
    uint32_t crc = 0, n = 0;
    while (p < end && n < g->count) {
        fkv_rec_header h;
        int rc = fkv_window_cover(w, p, FKV_REC_HEADER_SIZE);
        if (rc != FKV_OK)
            return rc == FKV_ENOTFOUND ? 0 : rc;
        if (fkv_record_header_decode(fkv_window_at(w, p), &h) != FKV_OK ||
            h.kind == FKV_KIND_GROUP || p + fkv_record_size(&h) > end)
            return 0;
        if ((rc = fkv_window_cover(w, p, fkv_record_size(&h))) != FKV_OK)
            return rc == FKV_ENOTFOUND ? 0 : rc;
        crc = fkv_crc32c(crc, fkv_window_at(w, p), fkv_record_size(&h));
        p += fkv_record_size(&h);
        n++;
    }
    return p == end && n == g->count && crc == g->members_crc;
}

/* An intact group header at *off: the walk goes on past it to gather its
 * members only if the whole group is there and intact. Otherwise it is a
 * torn tail (it ends past the file, or nothing intact follows it), cut
 * whole; or damage, refused or stepped over whole. */
static int on_group(log_walk *a, fkv_window *w, uint64_t *off, int *stop)
{
    uint64_t size = w->limit, first = *off + FKV_GROUP_HEADER_SIZE;
    fkv_group_header g;
    if (fkv_group_header_decode(fkv_window_at(w, *off), &g) != FKV_OK)
        return a->salvage ? on_damage(a, w, off, stop) : fkv_corrupt_at(*off);
    uint64_t end = first + g.bytes, data;
    int rc = zeros_from(a, w, *off, &data);
    if (rc != FKV_OK)
        return rc;
    if (end > size) {
        *stop = 1;
        return cut_tail(a, *off, data);
    }
    int whole = group_whole(w, first, &g);
    if (whole < 0)
        return whole;
    if (whole) {
        if (a->rep)
            a->rep->groups++;
        *off = first;
        return FKV_OK;
    }
    uint64_t next = size;
    if (a->salvage || data <= end || data - end <= FKV_REC_MAX) {
        rc = end > first ? next_intact(w, end - 1, data, &next) : FKV_OK;
        if (rc != FKV_OK)
            return rc;
    }
    if (next == size) {
        *stop = 1;
        return cut_tail(a, *off, data);
    }
    if (!a->salvage)
        return fkv_corrupt_at(*off);
    if (a->rep->damaged_regions++ == 0)
        a->rep->first_damage_offset = *off;
    a->rep->damaged_bytes += end - *off;
    *off = end;
    return FKV_OK;
}

static void count(fkv_verify_report *rep, const log_rec *recs, size_t n)
{
    for (size_t i = 0; rep && i < n; i++) {
        rep->intact_records++;
        if (recs[i].h.kind == FKV_KIND_PUT)
            rep->puts++;
        else
            rep->tombstones++;
    }
}

typedef struct walk_run {
    log_walk *a;
    fkv_window *w;
} walk_run;

static int walk(void *arg)
{
    log_walk *a = ((walk_run *)arg)->a;
    fkv_window *w = ((walk_run *)arg)->w;
    uint64_t off = a->from;
    int rc = FKV_OK, stop = 0;
    while (off < a->size && !stop) {
        progress_done(a->progress, off);
        log_rec recs[LOG_BATCH];
        size_t n = gather(a, w, off, recs, LOG_BATCH), taken = 0;
        if (n > 0) {
            rc = a->sink(a->ctx, recs, n, &taken);
            count(a->rep, recs, taken);
            if (taken > 0)
                off = recs[taken - 1].off + fkv_record_size(&recs[taken - 1].h);
            if (rc != FKV_OK)
                break;
            if (taken < n) {
                a->stopped = 1;
                break;
            }
            continue;
        }
        fkv_rec_header h;
        int r = intact_at(w, off, &h); /* refills the window */
        if (r < 0)
            rc = r;
        else if (r == 0)
            rc = on_damage(a, w, &off, &stop);
        else if (h.kind == FKV_KIND_GROUP)
            rc = on_group(a, w, &off, &stop);
        /* else the window now holds it: the next gather takes it */
        if (rc != FKV_OK)
            break;
    }
    a->end = off;
    return rc;
}

int log_walk_run(log_walk *a)
{
    fkv_window w;
    a->end = a->from;
    a->torn_dropped = 0;
    a->zeros_from_known = 0;
    a->stopped = 0;
    if (a->mapped && a->file->map && a->size <= FKV_MAP_BYTES) {
        fkv_window_over_map(&w, a->file->map, a->size);
        fkv_map_will_read(a->file->map, a->from, a->size - a->from);
    } else if (fkv_window_init(&w, a->file->fd, a->size) != FKV_OK) {
        return FKV_ENOMEM;
    } else {
        a->mapped = 0;
    }
    progress_total(a->progress, a->size);
    /* A fault in the mapping (the file cut short behind the store's back,
     * a disk error) ends the walk with FKV_EIO; the caller drops the index
     * it was building, as after any error. */
    walk_run run = {a, &w};
    int rc = a->mapped ? fkv_map_guarded(walk, &run) : walk(&run);
    fkv_window_free(&w);
    if (rc == FKV_OK && !a->stopped)
        progress_done(a->progress, a->size);
    return rc;
}

int log_read_key(const fkv_file *f, uint64_t end, uint64_t off, log_key *k, log_check check)
{
    size_t got = 0;
    int rc = read_log_at(f->fd, f->map, end, off, k->rec, sizeof k->rec, FKV_MAY_WAIT, &got);
    if (rc != FKV_OK)
        return rc;
    if (got < FKV_REC_HEADER_SIZE || fkv_record_header_decode(k->rec, &k->h) != FKV_OK ||
        got < FKV_REC_HEADER_SIZE + k->h.klen || off + fkv_record_size(&k->h) > end)
        return fkv_corrupt_at(off);
    k->hash = fkv_hash(k->rec + FKV_REC_HEADER_SIZE, k->h.klen);
    if (check == LOG_KEY_ONLY)
        return FKV_OK;
    size_t size = fkv_record_size(&k->h), have = got < size ? got : size;
    uint32_t crc = fkv_crc32c(0, k->rec + 4, have - 4);
    uint8_t more[1024];
    for (uint64_t at = off + have; at < off + size; at += got) {
        size_t want = off + size - at < sizeof more ? (size_t)(off + size - at) : sizeof more;
        if ((rc = read_log_at(f->fd, f->map, end, at, more, want, FKV_MAY_WAIT, &got)) != FKV_OK)
            return rc;
        if (got == 0)
            return fkv_corrupt_at(off);
        crc = fkv_crc32c(crc, more, got);
    }
    return crc == k->h.crc ? FKV_OK : fkv_corrupt_at(off);
}
