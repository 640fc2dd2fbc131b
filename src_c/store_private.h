/*
 * store_private.h - what the store's files share and nobody else sees.
 *
 *   store.c    the store's lifecycle (open, close, free), its mutex,
 *              lookups under it, counts and stats
 *   write.c    create, put, touch, delete: appending records
 *   read.c     read and contains: the record read after the mutex is let go
 *   iterate.c  iteration over live keys that holds no lock between batches
 *   commit.c   flushing to stable storage: group commit, sync, a failed
 *              flush refusing later writes
 *   scan.c     open-time recovery: the file header and the log scan that
 *              rebuilds the index and drops a torn tail (or, salvaging,
 *              steps over damage)
 *   snapshot.c the index saved beside the data file, loaded at open so that
 *              only the log past it is scanned
 *   snapshot_blocks.c  the snapshot's table loaded block by block as reads
 *              first need it
 *   snapshot_background.c  snapshots saved while the store is in use, by a
 *              thread that holds no lock
 *   snapshot_hints.c  the records appended after a clean reopen, noted
 *              after the snapshot in its file, so that an open after a
 *              crash need not scan them
 *   compact.c  rewriting the file with live records only
 *   repair.c   verify and repair of a damaged file
 *   file_io.c  the file, lock and directory primitives under all of them
 *
 * Locking: every function here that takes an fkv_store expects the caller
 * to hold s->mu (or to own the store alone, while opening), unless it says
 * otherwise. Writers hold s->mu for the whole of their lookup, append and
 * index update; readers hold it only to find a slot and pin the file, and
 * read the record after letting it go (fkv_file in file_io.h). None touches
 * Python.
 */
#ifndef FKV_STORE_PRIVATE_H
#define FKV_STORE_PRIVATE_H

#include "platform.h" /* first: sets the feature macros */
#include "store.h"
#include "clock.h"
#include "file_io.h"
#include "file_map.h"
#include "hash_index.h"
#include "lineage.h"
#include "record.h"
#include "status.h"


#define COMPACT_SUFFIX ".compact"
#define REPAIR_SUFFIX ".repair"

/* What a snapshot states of one block of its table. */
typedef struct snapshot_block {
    uint32_t crc, live, deleted, ttl;
} snapshot_block;

/* A record of the log past a snapshot, waiting for its home block. */
typedef struct snapshot_pending {
    uint32_t off;  /* offsets fit 31 bits (FKV_LOC_OFFSET_MASK); the key's hash is
                    * computed again when applied: 8 bytes a record, not 12 */
    uint32_t next; /* its block's next record, in log order; SNAPSHOT_NONE after the last */
} snapshot_pending;

#define SNAPSHOT_NONE UINT32_MAX

/* A snapshot's table loaded block by block as reads first need it
 * (snapshot_blocks.c), while nothing but reads has used the store since it
 * opened: the first call of any other kind loads the rest. */
typedef struct snapshot_lazy {
    int fd;               /* the snapshot file, open until every block is in */
    int failed;           /* the SNAP_* status a block failed with, else 0 */
    uint64_t body_off;    /* where its slots start */
    uint64_t block_slots; /* a power of two */
    unsigned block_bits;  /* its log2 */
    uint64_t nblocks;
    uint64_t end;         /* E: entries point below it */
    uint64_t live, deleted, n_ttl; /* as its header states */
    uint64_t read;        /* blocks read, their CRC right */
    uint64_t checked;     /* blocks checked slot by slot */
    uint8_t *state;       /* per block: LAZY_ABSENT, LAZY_READ or LAZY_CHECKED */
    /* The log past E (after a crash), its records not yet applied to the
     * table: kept while open scans it, chained by home block. */
    int deferring;        /* open is scanning that log */
    snapshot_pending *pend;
    size_t npend, pend_cap, pend_ready;
    uint32_t *pend_head;  /* per block: its first record not yet applied, or SNAPSHOT_NONE */
    uint32_t *pend_last;  /* per block: its last record */
    size_t pend_left;     /* records not yet applied */
    snapshot_block *block; /* per block, as the snapshot states */
    uint32_t front_crc;   /* the CRC of its header and block directory */
    uint64_t body_end;    /* where its slots end: hints may follow (snapshot_hints.c) */
    uint64_t file_bytes;  /* its size when opened */
    uint64_t dev, ino;    /* which file it is */
    uint64_t hinted_end;  /* records kept below this came from hints, not the scan */
    fkv_descent descent;  /* where its session stands in the data file's list */
} snapshot_lazy;

typedef struct snapshot_hints snapshot_hints;

struct fkv_store {
    pthread_mutex_t mu;
    fkv_file *file;         /* the data file; NULL once closed */
    int closed;
    int salvaging;          /* opened for verify or repair: never written */
    uint64_t fork_gen;      /* fork generation at open: differs in a child */
    char *path;
    fkv_index ix;
    snapshot_lazy *lazy;    /* blocks of the snapshot's table still to load, or NULL */
    uint64_t end;           /* append offset: bytes of valid log */
    uint64_t live_bytes;    /* header + records the index points to */
    uint64_t n_ttl;         /* index entries whose record has a deadline */
    uint64_t live_cache;    /* live keys, exact while now < cache_until */
    uint64_t cache_until;
    uint64_t max_file_size;
    int durability;
    uint64_t torn_dropped;
    uint64_t compactions;
    uint64_t auto_retry_at;  /* after a failed automatic compaction: file size to retry at */
    fkv_progress *progress;  /* set for the length of a compact/verify/repair call */
    fkv_file_identity ident; /* of the data file's header (record.h) */
    fkv_lineage lineage;     /* its writing sessions (lineage.h), as on disk */
    int writing;             /* this store's session is at the head of lineage */
    uint64_t tail_off;       /* offset of the last record in the log; 0: none */
    uint32_t tail_crc;       /* its stored CRC */
    int snapshot_status;     /* what open made of the snapshot (SNAP_*) */
    uint64_t open_scanned;   /* bytes of log the open scanned */
    uint64_t snapshot_seq;   /* write_seq when the snapshot on disk was current */
    uint64_t snapshots_written;
    uint64_t snap_next;      /* end of log at which a snapshot is saved in the background */
    struct snapshot_job *snap_job; /* the one being saved in the background, or NULL */
    snapshot_hints *hints;   /* appends being noted beside the snapshot, or NULL */
    uint64_t open_hinted;    /* records the open took from those notes */
    /* Group commit (commit.c): records are numbered as they are appended;
     * a flush covers every record appended before it started. */
    pthread_cond_t flushed;  /* signalled when a flush ends */
    uint64_t write_seq;      /* number of the last record appended */
    uint64_t durable_seq;    /* the last record a finished flush covered */
    int flushing;            /* a flush runs outside the mutex */
    int flush_errno;         /* a flush failed: every write refused until reopened */
    int fail_next_flush;     /* test hook: errno for the next flush to fail with */
    uint64_t flushes;
    uint64_t last_batch;     /* records the last flush covered */
    pthread_cond_t gathered; /* signalled when a gathering leader's target is reached */
    uint64_t gather_target;  /* write_seq a leader waits for before flushing; 0: none */
    uint32_t cold_skips;     /* reads that skip the page-cache probe (store.c); atomic */
    uint64_t debug_read_pause_ms; /* test hook: the next waiting read sleeps this long */
    uint32_t debug_reads_paused;  /* reads sleeping in that hook now (atomic) */
    uint8_t wbuf[FKV_REC_MAX]; /* record being encoded; guarded by mu */
    uint8_t *batch_buf;        /* FKV_BATCH_BYTES for fkv_put_batch, made at its first call */
};

/* The most records and bytes one fkv_put_batch appends. */
#define FKV_BATCH_BYTES (64u * 1024u)

/* How an open treats the file: a normal open creates a missing file, drops a
 * torn tail and refuses other damage; a salvage open (verify, repair) never
 * writes, reads past damage and reports it. */
typedef enum open_mode { OPEN_NORMAL, OPEN_SALVAGE } open_mode;

/* Open path as a store in the given mode; rep is filled when salvaging. */
int store_open(const char *path, const fkv_options *opt, open_mode mode,
               fkv_verify_report *rep, fkv_progress *progress, fkv_store **out);

/* ---- progress, polled by another thread without a lock ------------------ */

static inline void progress_total(fkv_store *s, uint64_t total)
{
    if (s->progress) {
        fkv_atomic_store(&s->progress->total, total, FKV_RELAXED);
        fkv_atomic_store(&s->progress->done, 0, FKV_RELAXED);
    }
}

static inline void progress_done(fkv_store *s, uint64_t done)
{
    if (s->progress)
        fkv_atomic_store(&s->progress->done, done, FKV_RELAXED);
}

/* ---- records at index offsets -------------------------------------------- */

static inline int key_len_ok(size_t klen)
{
    return klen > 0 && klen <= FKV_KEY_MAX_BYTES;
}

static inline int is_expired(const fkv_rec_header *h, uint64_t now)
{
    return h->deadline_ms != 0 && h->deadline_ms <= now;
}

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

/* Bytes to fetch for the record of an index slot: its size class, which
 * covers the whole record, at most cap. */
static inline size_t slot_read_size(fkv_slot slot, size_t cap)
{
    size_t want = fkv_class_bytes(FKV_SLOT_CLASS(slot.hash));
    return want < cap ? want : cap;
}

/* ---- shared between the files --------------------------------------------- */

typedef struct found {
    uint64_t pos;  /* slot */
    uint64_t off;  /* record offset */
    size_t got;    /* bytes of the record now in the buffer */
    int verified;  /* checksum already checked */
    fkv_rec_header h;
} found;

/* Stack buffer of lookups that need only a record's header and key
 * (create, delete, contains); records this small are checksummed whole. */
#define READ_HINT 512u

/* Find key's entry (store.c). buf (buflen >= 16 + FKV_KEY_MAX_BYTES)
 * receives the first bytes of its record. FKV_OK, FKV_ENOTFOUND,
 * FKV_ECORRUPT, FKV_EIO, or FKV_EAGAIN with FKV_NO_WAIT. */
int store_lookup(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                 size_t buflen, fkv_wait wait, found *f);

/* Take the mutex for a call; checks fork first (a fork may copy it locked).
 * With FKV_NO_WAIT, FKV_EAGAIN instead of waiting for it (store.c). */
int store_enter(fkv_store *s, fkv_wait wait);

/* store_enter for every call but a read's lookup: those may touch any slot,
 * so a snapshot's table still loading block by block is loaded whole. */
int store_enter_all(fkv_store *s);

static inline void store_leave(fkv_store *s) { pthread_mutex_unlock(&s->mu); }

/* Complete a record found by a lookup: read the rest of it from fd into
 * buf after the f->got bytes already there, and check its checksum unless
 * the lookup did (store.c). */
int store_finish_record(int fd, uint8_t *buf, found *f, fkv_wait wait);

/* Live keys at now (store.c). */
int store_count_live(fkv_store *s, uint64_t now, uint64_t *out);

/* Read the file header (writing one into an empty file when opening
 * normally), then rebuild the index from the log (scan.c). */
int scan_load(fkv_store *s, open_mode mode, fkv_verify_report *rep);

/* What open made of the snapshot (snapshot.c). */
enum {
    SNAP_NOT_TRIED = 0,
    SNAP_LOADED,
    SNAP_MISSING,
    SNAP_OLD_FORMAT,
    SNAP_UNREADABLE,
    SNAP_BAD_HEADER,
    SNAP_BAD_SIZE,
    SNAP_BAD_CHECKSUM,
    SNAP_OTHER_FILE,
    SNAP_BAD_END,
    SNAP_TAIL_MISMATCH,
    SNAP_BAD_TABLE,
    SNAP_NO_MEMORY,
    SNAP_UNFINISHED_SAVE,
    SNAP_BAD_HINT,
    SNAP_OTHER_HISTORY
};

/* Load and check the snapshot of s's data file (size bytes), replacing the
 * empty index; *covered is the log offset it covers. A SNAP_* status; on
 * anything but SNAP_LOADED the store is as it was. Its table is left to
 * load block by block (s->lazy). */
int snapshot_load(fkv_store *s, uint64_t size, uint64_t *covered);

/* Read and check every block of L's table into slots at once (snapshot.c):
 * SNAP_LOADED or why not. */
int snapshot_load_all(snapshot_lazy *L, fkv_slot *slots, uint64_t cap);

/* Close L's file and free it; NULL is ignored (snapshot_blocks.c). */
void snapshot_lazy_free(snapshot_lazy *L);

int snapshot_ready_path(fkv_store *s, uint32_t hash, fkv_wait wait);

/* Before a read probes for hash: the blocks on its probe path loaded and
 * checked. FKV_OK; FKV_EAGAIN with FKV_NO_WAIT when a block must be read;
 * or, when a block failed its checks and the log could not be scanned in
 * its place, that scan's error. */
static inline int snapshot_ready(fkv_store *s, uint32_t hash, fkv_wait wait)
{
    return FKV_LIKELY(!s->lazy) ? FKV_OK : snapshot_ready_path(s, hash, wait);
}

/* Load and check every block still to come (or, if one fails, rebuild the
 * index by a scan of the log): FKV_OK, or the scan's error. */
int snapshot_finish(fkv_store *s);

/* Rebuild the index from the whole log (scan.c), for a snapshot found bad
 * after open; on failure the index is left as it was. */
int scan_rebuild(fkv_store *s);

/* A record's header and key read back from the log, and the key's hash. */
typedef struct scan_key {
    uint8_t rec[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
    fkv_rec_header h;
    uint32_t hash;
} scan_key;

/* What reading a record back checks beyond its header and key: nothing
 * more (the scan checksummed it), or its checksum (hints named it, and
 * open did not read it). */
typedef enum scan_check { SCAN_KEY_ONLY, SCAN_WHOLE_RECORD } scan_check;

/* Read back the record at off, named by the scan or by hints: its header
 * and key, checked as asked (FKV_ECORRUPT at off if not) (scan.c). */
int scan_read_key(fkv_store *s, uint64_t off, scan_key *k, scan_check check);

/* Apply that record to the index, as the scan would have. */
int scan_apply_key(fkv_store *s, const scan_key *k, uint64_t off);

/* Before open scans tail bytes of log past a snapshot whose table of cap
 * slots loads block by block: room to keep their records by block. */
int snapshot_defer_start(snapshot_lazy *L, uint64_t tail, uint64_t cap);

/* While open scans the log past a snapshot that loads block by block: keep
 * the record at off, chained to the others of its home block
 * (snapshot_blocks.c). */
int snapshot_defer(fkv_store *s, uint64_t off, uint32_t hash);

/* After that scan: if the kept records would not fit the table without
 * growing it, load the whole table and apply them now. */
int snapshot_tail_scanned(fkv_store *s);

/* Flush the data file, then save the index beside it (snapshot_save). */
int snapshot_write(fkv_store *s);

/* 1 if the record that ends at end starts at off, is intact, and has the
 * stored CRC crc (snapshot.c). */
int snapshot_record_ends_at(const fkv_store *s, uint64_t end, uint64_t off, uint32_t crc);

/* 1 if n more records can be kept by block without the whole table being
 * loaded for them (snapshot_blocks.c). */
int snapshot_defer_room(const fkv_store *s, uint64_t n);

/* Hints (snapshot_hints.c): note every append from now on, after the
 * snapshot L (which covers the whole log) in its file. */
void hints_start(fkv_store *s, const snapshot_lazy *L);

/* The records recs[0..len), just appended at log offset off. */
void hints_note(fkv_store *s, const uint8_t *recs, size_t len, uint64_t off);

/* Note no more (the file keeps what it holds); NULL hints are ignored. */
void hints_stop(fkv_store *s);

/* At open, after the snapshot s->lazy covering the log up to from loaded:
 * keep by block the records its hints name past it, in a data file of size
 * bytes; the log offset from which to scan. */
uint64_t hints_load(fkv_store *s, uint64_t from, uint64_t size);

#define SNAPSHOT_HEADER_BYTES 104u
#define SNAPSHOT_SUFFIX ".idx" /* the snapshot file: <data file>.idx */

/* The snapshot header for s's index as it stands. */
void snapshot_header(const fkv_store *s, uint8_t *header);

/* The same header made to name another data file and its session: for a
 * copy of the log at the same offsets (a backup). */
void snapshot_header_rebind(uint8_t *header, const fkv_file_identity *ident, uint64_t session);

/* Whose table snapshot_save writes: the store's own, or a copy that it
 * frees as soon as the copy is written. */
typedef enum snapshot_table { SNAPSHOT_OF_STORE, SNAPSHOT_OF_COPY } snapshot_table;

/* Write header and table as the snapshot of the data file at store_path,
 * after flushing the data file (the log the snapshot covers must be durable
 * before it is), and flush it: the store's own table over the snapshot in
 * place when it has the same size, else (and a copy always) through a
 * temporary file made like data_fd, the data file's descriptor, renamed
 * into place. Takes no lock: the caller owns table. */
int snapshot_save(const char *store_path, int data_fd, const uint8_t *header,
                  fkv_index *table, snapshot_table kind);

/* Background snapshots (snapshot_background.c). The newest snapshot of
 * the data file covers its log up to end (0: there is none). */
void snapshot_covers(fkv_store *s, uint64_t end);

/* After each write: once the log has grown past the newest snapshot by a
 * quarter (at least SNAPSHOT_TAIL_MIN), copy the index and save the copy
 * from a thread of its own, so that a crash costs a scan of that much. */
void snapshot_start(fkv_store *s);
static inline void snapshot_maybe(fkv_store *s)
{
    if (FKV_UNLIKELY(s->end >= s->snap_next))
        snapshot_start(s);
}

/* Collect a background snapshot that has finished (with FKV_NO_WAIT; 0 if
 * it runs on) or wait for it to finish: 1 when none is left running. */
int snapshot_join(fkv_store *s, fkv_wait wait);

/* Remove the snapshot of the data file at path, if any. */
void snapshot_forget(const char *path);

/* At open, the lock held: what a snapshot save stopped by a kill left
 * beside the store removed (or put in place, fkv_replace_recover). */
void snapshot_tidy(const char *path);

/* No slot is left out of a compaction. */
#define COMPACT_KEEP_ALL UINT64_MAX

/* Rewrite the file with the live records, leaving out the entry in slot
 * skip_pos (COMPACT_KEEP_ALL: none) (compact.c). */
int compact_locked(fkv_store *s, uint64_t skip_pos);

/* Room for need more bytes under the cap, compacting if that can make it. */
int compact_make_room(fkv_store *s, size_t need, uint64_t now);

/* Compact on its own once dead bytes pass half the file. */
void compact_maybe(fkv_store *s);

/* Set up and tear down the group-commit state (commit.c). */
int commit_init(fkv_store *s);
void commit_destroy(fkv_store *s);

/* After each append: wakes a leader gathering writers for its flush. */
void commit_appended(fkv_store *s);

/* FKV_EFLUSH (errno kept) once a flush has failed: no more writes. */
int commit_writable(const fkv_store *s);

/* Wait until a flush covers record seq, flushing as the leader if no flush
 * is running. Lets s->mu go while flushing or waiting. */
int commit_wait_durable(fkv_store *s, uint64_t seq);

/* At close: wait for a running flush, then flush what is left in fsync
 * mode, so no writer waiting on a flush is left without one. */
void commit_close(fkv_store *s);

#endif /* FKV_STORE_PRIVATE_H */
