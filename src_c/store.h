/*
 * store.h - one open data file: its lock, its index, and the operations.
 *
 * Layout on disk: see record.h. The file is an append-only log; the index
 * (hash_index.h) maps each held key to its newest record. Opening scans the
 * log in large chunks to rebuild the index and drops a torn tail (a last
 * record cut short or failing its checksum, as a crash mid-append leaves).
 *
 * Locking rules:
 *  - Between processes and openers: flock(LOCK_EX | LOCK_NB) on an O_CLOEXEC
 *    descriptor for as long as the store is open. flock locks belong to the
 *    open file description, so a second open in the same process is refused
 *    too (fcntl locks would not be, and vanish when any descriptor closes).
 *  - Between threads: one pthread mutex per store, taken by every entry point
 *    below. It is a leaf lock: nothing else is taken while it is held, and
 *    the core never calls Python, so callers release the GIL around each call.
 *    Writers hold it for their whole lookup, append and index update; reads
 *    and iteration hold it only to consult the index, and do their file reads
 *    after letting it go; a flush in fsync mode runs without it (group
 *    commit, commit.c).
 *  - After fork: every call in the child returns FKV_EFORKED without taking
 *    the mutex (the fork may have copied it locked), and the child never
 *    unlocks the file (LOCK_UN would drop the parent's lock).
 *
 * Every entry point returns FKV_OK or a negative status (status.h), and on
 * failure leaves the file and the index as they were.
 */
#ifndef FKV_STORE_H
#define FKV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define FKV_MAX_FILE_SIZE (1ull << 30)  /* 1 GiB: default and ceiling */
#define FKV_MIN_FILE_SIZE 4096ull
#define FKV_TTL_MAX_S 315360000ull      /* ten years */
#define FKV_DURABLE_PROCESS 0           /* survives kill -9 of the process */
#define FKV_DURABLE_FSYNC 1             /* survives power loss */

typedef struct fkv_store fkv_store;

typedef struct fkv_options {
    uint64_t max_file_size;  /* FKV_MIN_FILE_SIZE..FKV_MAX_FILE_SIZE */
    int durability;          /* FKV_DURABLE_PROCESS or FKV_DURABLE_FSYNC */
    uint64_t lock_timeout_ms; /* 0: refuse at once if locked */
} fkv_options;

typedef struct fkv_stats {
    uint64_t live_keys;      /* held and not expired */
    uint64_t held_keys;      /* in the index, expired ones included */
    uint64_t file_bytes;     /* bytes of the data file */
    uint64_t live_bytes;     /* header plus records the index points to */
    uint64_t dead_bytes;     /* reclaimable by compaction (not counting expiry) */
    uint64_t index_bytes;    /* memory of the hash table */
    uint64_t index_slots;
    uint64_t max_file_size;
    uint64_t torn_bytes_dropped; /* cut from the tail when opened */
    uint64_t compactions;    /* since open */
    uint64_t flushes;        /* fdatasync calls by writers and sync() since open */
    int flush_errno;         /* nonzero once a flush failed: writes are refused */
    int snapshot_status;     /* what open made of the index snapshot */
    uint64_t open_scanned_bytes; /* bytes of log the open scanned */
    uint64_t open_hinted_records; /* records past the snapshot it took from hints */
    uint64_t snapshots_written;  /* since open */
    uint64_t snapshot_table_bytes; /* table bytes the background ones wrote, since open */
} fkv_stats;

/* A phrase for fkv_stats.snapshot_status. */
const char *fkv_snapshot_status_name(int status);

/* What verify/repair found in a file, record by record. */
typedef struct fkv_verify_report {
    uint64_t file_bytes;
    int header_ok;              /* 0: the file header's checksum failed */
    uint64_t intact_records;    /* records whose checksum holds */
    uint64_t puts;
    uint64_t tombstones;
    uint64_t groups;            /* whole groups (transactions, put_many...) among them */
    uint64_t damaged_regions;   /* runs of bytes before the tail that are not intact records */
    uint64_t damaged_bytes;
    uint64_t first_damage_offset; /* UINT64_MAX if none */
    uint64_t torn_tail_bytes;   /* what a normal open drops as a torn tail */
    uint64_t live_keys;         /* live after replaying the intact records */
    uint64_t salvaged_keys;     /* written into the new file by fkv_repair */
} fkv_verify_report;

/* How far a long call (compact, verify, repair) has got, in bytes of the
 * file: the call stores into it with relaxed atomics while it runs, so
 * another thread may poll it (a progress bar) without taking any lock. */
typedef struct fkv_progress {
    uint64_t done;
    uint64_t total;
} fkv_progress;

/* A consistent-enough snapshot of p for another thread (no lock taken). */
void fkv_progress_read(const fkv_progress *p, uint64_t *done, uint64_t *total);

/* Open or create the store at path (absolute). Blocks up to
 * opt->lock_timeout_ms for the lock. On success *out is a store to pass to
 * fkv_close and then fkv_free. */
int fkv_open(const char *path, const fkv_options *opt, fkv_store **out);

/* Read the whole file at path (which must exist), taking its lock, and
 * report intact, damaged and torn records. Never writes to the file. */
int fkv_verify(const char *path, fkv_verify_report *rep, fkv_progress *progress);

/* Salvage every intact record of the file at path into a fresh store that
 * replaces it (renamed into place, locked first). The damaged file is kept
 * as backup_path (a hard link) unless that is NULL. Holds the lock on path
 * throughout. A deleted key whose tombstone was damaged comes back. */
int fkv_repair(const char *path, const char *backup_path, fkv_verify_report *rep,
               fkv_progress *progress);

/* Unlock and close the file and drop the index; waits for calls in flight
 * (takes the mutex). Later calls return FKV_ECLOSED. Idempotent. */
int fkv_close(fkv_store *s);

/* Release the store's memory. Call once, when no thread can use it. */
void fkv_free(fkv_store *s);

/* Append a record for a key that is not live. ttl_s 0 means no deadline. */
int fkv_create(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
               uint64_t ttl_s);

/* fkv_create with an absolute deadline in ms since the epoch (0: none), as
 * an import needs to keep expiry exact. FKV_EEXPIRED if it has passed,
 * FKV_ETTL if it lies further ahead than FKV_TTL_MAX_S. */
int fkv_create_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val,
                     size_t vlen, uint64_t deadline_ms);

/* Every write (create, delete, compact) returns FKV_EFLUSH once a flush
 * has failed, until the store is reopened. In fsync mode a write returns
 * only after a flush that covers its record has returned. */

/* Create the key or replace its live record, value and deadline together,
 * in one record: a reader or a crash sees the old value or the new one. */
int fkv_put(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
            uint64_t ttl_s);

/* fkv_put with an absolute deadline in ms since the epoch (0: none). */
int fkv_put_until(fkv_store *s, const char *key, size_t klen, const uint8_t *val, size_t vlen,
                  uint64_t deadline_ms);

/* One put of a batch: key and value as fkv_put takes them, no deadline. */
typedef struct fkv_put_item {
    const char *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
} fkv_put_item;

#define FKV_BATCH_MAX 64

/* fkv_put (no deadline) of items in order, in one append and under one hold
 * of the mutex: what a server receiving many pipelined writes at once needs.
 * It may stop early (at a key whose hash repeats in the batch, an item the
 * one-by-one put must judge, 64 KiB of records, FKV_BATCH_MAX items, or the
 * file cap); *done is the number of items put, and the caller puts the rest
 * (item *done with fkv_put). On an error nothing was put. */
int fkv_put_batch(fkv_store *s, const fkv_put_item *items, size_t n, size_t *done);

/* One key of fkv_read_many. */
typedef struct fkv_many {
    const char *key;  /* in */
    size_t klen;
    int status;       /* out: FKV_OK, FKV_ENOTFOUND or FKV_EEXPIRED */
    size_t voff, vlen; /* out, when FKV_OK: the value in the buffer */
    uint64_t at;      /* (its record's offset in the file) */
    int copied;       /* (internal: its record is in the buffer already) */
} fkv_many;

/* Read keys k[0..n) as of one moment (their lookups under one hold of the
 * mutex, as one read's): each one's status and, for a live key, its value
 * at buf[voff .. voff + vlen), every record checksummed. *need receives
 * the bytes the live records take; past cap, FKV_ENOMEM and nothing read
 * (the caller grows buf and asks again). An error (FKV_ECORRUPT,
 * FKV_EIO...) answers for all. */
int fkv_read_many(fkv_store *s, fkv_many *k, size_t n, uint8_t *buf, size_t cap, size_t *need);

/* fkv_read_many that never waits (for the mutex or the disk): FKV_EAGAIN
 * instead, and the caller asks fkv_read_many. */
int fkv_try_read_many(fkv_store *s, fkv_many *k, size_t n, uint8_t *buf, size_t cap,
                      size_t *need);

/* Where keys k[0..n) stand, as of one moment, without reading them: each
 * one's status and, for a live key, its record's offset (at). *epoch: the
 * store's compactions so far. A key's (epoch, at) changes with every write
 * to it (the log only grows between compactions): a version for WATCH. */
int fkv_versions(fkv_store *s, fkv_many *k, size_t n, uint64_t *epoch);

/* ---- groups and transactions (transaction.c) ------------------------------ */

/* One change of a group. */
typedef struct fkv_change {
    const char *key;
    size_t klen;
    const uint8_t *val;   /* a put's value (compact JSON); NULL for a delete */
    size_t vlen;
    uint64_t deadline_ms; /* a put's deadline, ms since the epoch; 0: none */
    int op;               /* FKV_CHANGE_PUT or FKV_CHANGE_DELETE */
} fkv_change;

#define FKV_CHANGE_PUT 1
#define FKV_CHANGE_DELETE 2 /* of the key if it is live; skipped if not */

/* Write changes c[0..n), each key named once (else FKV_EDUPLICATE, nothing
 * written), as one group: one append that recovery takes whole or not at
 * all, published to the index under one hold of the mutex, and in fsync
 * mode one flush. *deleted receives how many deletes were written. Waits
 * while another thread's transaction holds the writer slot; FKV_ETXN on
 * the thread that holds it. Compacts first if the group would pass the
 * cap, else FKV_EFULL, writing nothing. */
int fkv_write_group(fkv_store *s, const fkv_change *c, size_t n, size_t *deleted);

/* Take the store's writer slot for a transaction, waiting while another
 * holds it; until fkv_txn_end, every other write waits. With token 0 the
 * transaction is the calling thread's: a plain write of this thread is
 * refused with FKV_ETXN (as is a second begin), since it would wait for
 * itself. Another token (an asyncio task's, whose calls run on several
 * threads) binds no thread. Reads never wait for the slot. */
int fkv_txn_begin(fkv_store *s, uint64_t token);

/* End the transaction begun with token: write c[0..n) as one group
 * (fkv_write_group; n may be 0) if commit, nothing if not, and let the slot
 * go either way. FKV_ETXN if that transaction does not hold the slot. */
int fkv_txn_end(fkv_store *s, uint64_t token, int commit, const fkv_change *c, size_t n,
                size_t *deleted);

/* Give a live key a deadline ttl_s seconds from now (0: none), value kept,
 * in one new record. FKV_ENOTFOUND / FKV_EEXPIRED as a read. */
int fkv_touch(fkv_store *s, const char *key, size_t klen, uint64_t ttl_s);

/* Read a live key's value into buf (room for FKV_REC_MAX bytes). The value
 * is buf[*voff .. *voff + *vlen). Checksum verified before returning. */
int fkv_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
             size_t *vlen);

/* fkv_read and fkv_contains that never wait: FKV_EAGAIN when the mutex is
 * held or the record is not in the page cache. A caller holding a lock of
 * its own (Python's GIL) tries these first and releases its lock only for
 * the waiting versions: a read served from memory takes about a
 * microsecond, less than handing such a lock to another thread and back. */
int fkv_try_read(fkv_store *s, const char *key, size_t klen, uint8_t *buf, size_t *voff,
                 size_t *vlen);
int fkv_try_contains(fkv_store *s, const char *key, size_t klen, int *found);

/* Delete a live key (appends a tombstone). */
int fkv_delete(fkv_store *s, const char *key, size_t klen);

/* *found = 1 if key is live. */
int fkv_contains(fkv_store *s, const char *key, size_t klen, int *found);

/* Number of live keys. */
int fkv_count(fkv_store *s, uint64_t *n);

/* Keys handed out by fkv_iter_next: count entries of [u8 length][bytes]
 * in data[0..used). The core grows data as needed; start from a zeroed
 * struct and release it with fkv_key_batch_free. */
typedef struct fkv_key_batch {
    uint8_t *data;
    size_t used;
    size_t cap;
    size_t count;
} fkv_key_batch;

/* Iteration cursors run from FKV_ITER_START up to FKV_ITER_END. */
#define FKV_ITER_START 0u
#define FKV_ITER_END (1u << 27)

/* The next batch of live keys (a few hundred) starting with prefix (plen 0:
 * all), replacing what out held, and the cursor moved past them. Holds the
 * mutex only while it reads the index. Iterating from FKV_ITER_START until
 * the cursor reaches FKV_ITER_END yields every key live throughout exactly
 * once, even across writes and compactions (iterate.c says why). */
int fkv_iter_next(fkv_store *s, uint64_t *cursor, const char *prefix, size_t plen,
                  fkv_key_batch *out);

void fkv_key_batch_free(fkv_key_batch *b);

/* Rewrite the file with live records only; progress may be NULL. */
int fkv_compact(fkv_store *s, fkv_progress *progress);

/* Write a consistent copy of the store as of one moment to the new file at
 * dest (absolute), while other calls go on: a new store (its own id and
 * history) with a snapshot beside it, written under a temporary name,
 * flushed, then named dest only if nothing has that name (FKV_EPATHEXISTS,
 * dest untouched). Holds the mutex only to note the log's end and copy the
 * index (backup.c); progress (may be NULL) counts the bytes of log copied. */
int fkv_backup(fkv_store *s, const char *dest, fkv_progress *progress);

/* Flush written data to stable storage (joins a flush that is running). */
int fkv_sync(fkv_store *s);

int fkv_get_stats(fkv_store *s, fkv_stats *st);

/* Hold the store's mutex for ms milliseconds. For tests that show callers
 * wait for the mutex without holding the GIL. */
int fkv_debug_hold(fkv_store *s, uint64_t ms);

/* Make the next read that may wait sleep ms milliseconds after letting the
 * mutex go, as a read waiting for a slow disk would (reads that may not
 * wait answer FKV_EAGAIN meanwhile). Tests. */
int fkv_debug_pause_next_read(fkv_store *s, uint64_t ms);

/* Reads sleeping in that pause now. Tests. */
int fkv_debug_reads_paused(fkv_store *s);

/* Make the next flush fail with err instead of calling fdatasync. Tests. */
int fkv_debug_fail_next_flush(fkv_store *s, int err);

/* Blocks of the snapshot's table checked so far and in all, while it is
 * still loading block by block (0 and 0 once it is all in). Tests. */
int fkv_debug_snapshot_blocks(fkv_store *s, uint64_t *checked, uint64_t *total);

/* End the process, as a kill would, when the next replace of a file
 * (compaction, repair, a snapshot's save) reaches step `step` (1: before
 * it starts; fkv_replace_steps(): after its last); 0 turns it off.
 * Process-wide. Tests: a kill at every step of the replace. */
void fkv_debug_kill_at_replace_step(int step);
int fkv_replace_steps(void);

#endif /* FKV_STORE_H */
