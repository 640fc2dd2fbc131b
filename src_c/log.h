/*
 * log.h - the log layer: the data file read as a sequence of records.
 *
 * Above the primitives (record.h, file_io.h, file_map.h) and below every
 * index: nothing here knows a hash table, a snapshot or a store. Three
 * things live here:
 *   - reading the bytes of the log at an offset, through the file's mapping
 *     or by pread (read_log_at, read_record_at);
 *   - reading back one record's header and key (log_read_key);
 *   - the walk: the log read front to back, each intact record handed to a
 *     sink its caller chose (recover.c: apply it to the table, or keep it
 *     for the snapshot's blocks), a torn tail cut, damage refused or, when
 *     salvaging, stepped over and counted (log.c).
 */
#ifndef FKV_LOG_H
#define FKV_LOG_H

#include "platform.h" /* first: sets the feature macros */
#include "store.h"
#include "file_io.h"
#include "file_map.h"
#include "record.h"
#include "status.h"

/* ---- bytes at an offset --------------------------------------------------- */

/* Read up to want bytes of the log at off (off inside it; no further than
 * its end). With map (the file's mapping, file_map.h) and a caller that
 * may wait, the bytes are copied from memory, no system call; otherwise
 * they come by pread. */
static inline int read_log_at(int fd, const uint8_t *map, uint64_t end, uint64_t off,
                              uint8_t *buf, size_t want, fkv_wait wait, size_t *got)
{
    if (off >= end)
        return fkv_corrupt_at(off);
    if (off + want > end)
        want = (size_t)(end - off);
    if (map && wait == FKV_MAY_WAIT && end <= FKV_MAP_BYTES) {
        *got = want;
        return fkv_map_copy(buf, map, off, want);
    }
    return fkv_read_at(fd, buf, want, off, got, wait);
}

/* Read up to want bytes of the put record that an index entry says starts
 * at off, and check that it is one: a header that decodes, of a put, whose
 * key was read whole and whose end lies inside the log. Bytes from disk are
 * untrusted; any doubt is FKV_ECORRUPT at off. */
static inline int read_record_at(int fd, const uint8_t *map, uint64_t end, uint64_t off,
                                 uint8_t *buf, size_t want, fkv_wait wait, fkv_rec_header *h,
                                 size_t *got)
{
    int rc = read_log_at(fd, map, end, off, buf, want, wait, got);
    if (rc != FKV_OK)
        return rc;
    if (*got < FKV_REC_HEADER_SIZE || fkv_record_header_decode(buf, h) != FKV_OK ||
        h->kind != FKV_KIND_PUT || *got < FKV_REC_HEADER_SIZE + h->klen ||
        off + fkv_record_size(h) > end)
        return fkv_corrupt_at(off);
    return FKV_OK;
}

/* ---- one record's key read back ------------------------------------------- */

/* A record's header and key read back from the log, and the key's hash. */
typedef struct log_key {
    uint8_t rec[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
    fkv_rec_header h;
    uint32_t hash;
} log_key;

/* What reading a record back checks beyond its header and key: nothing
 * more (a walk checksummed it), or its checksum (hints named it, and no
 * walk read it). */
typedef enum log_check { LOG_KEY_ONLY, LOG_WHOLE_RECORD } log_check;

/* Read back the record at off of the log of file f, which ends at end:
 * its header and key, checked as asked (FKV_ECORRUPT at off if not). */
int log_read_key(const fkv_file *f, uint64_t end, uint64_t off, log_key *k, log_check check);

/* ---- the walk -------------------------------------------------------------- */

/* Records a walk hands its sink at most at once: all of them lie whole in
 * its window, so a sink can look ahead (recover.c prefetches their slots). */
#define LOG_BATCH 16

/* One intact record met by a walk. */
typedef struct log_rec {
    uint64_t off;
    const uint8_t *bytes; /* the whole record, valid until the sink returns */
    fkv_rec_header h;
    uint32_t hash;        /* of its key */
} log_rec;

/* Takes recs[0..n), in log order, and says how many it took in *taken: all
 * of them, or fewer to stop the walk before the first it did not take.
 * FKV_OK, or an error that ends the walk. */
typedef int (*log_sink)(void *ctx, const log_rec *recs, size_t n, size_t *taken);

/* Shown recs[0..n) before their checksums are computed (so not yet known
 * intact), to start fetching what taking them will touch. */
typedef void (*log_look)(void *ctx, const log_rec *recs, size_t n);

typedef struct log_walk {
    /* in */
    const fkv_file *file;
    uint64_t from, size;     /* the log's bytes to walk */
    int salvage;             /* verify or repair: never write, step over damage */
    int mapped;              /* read through the file's mapping (a short walk) */
    log_sink sink;
    log_look look;           /* or NULL */
    void *ctx;
    fkv_verify_report *rep;  /* counts, when salvaging */
    fkv_progress *progress;  /* or NULL */
    /* out */
    uint64_t end;            /* where the walk stopped: the end of the intact log */
    uint64_t torn_dropped;   /* bytes of a torn tail cut off (the zeros after it not counted) */
    int stopped;             /* the sink stopped it before size */
    /* the walk's own */
    uint64_t zeros_from;     /* where the zeros that end the file begin */
    int zeros_from_known;
} log_walk;

/* Walk the log as w says. FKV_OK (w->end, w->stopped set), FKV_ECORRUPT at
 * the offset of damage that is not a torn tail (when not salvaging),
 * FKV_EIO, FKV_ENOMEM, or the sink's error. */
int log_walk_run(log_walk *w);

/* ---- progress, polled by another thread without a lock ------------------ */

static inline void progress_total(fkv_progress *p, uint64_t total)
{
    if (p) {
        fkv_atomic_store(&p->total, total, FKV_RELAXED);
        fkv_atomic_store(&p->done, 0, FKV_RELAXED);
    }
}

static inline void progress_done(fkv_progress *p, uint64_t done)
{
    if (p)
        fkv_atomic_store(&p->done, done, FKV_RELAXED);
}

#endif /* FKV_LOG_H */
