/*
 * store_core.h - the store's core: its state (struct fkv_store) and the
 * calls every other part stands on (store_core.c). src_c/README.md maps
 * the files; the layers, each calling only downward:
 *
 *   primitives   record, hash_index, file_io, file_map, lineage, crc32c,
 *                table_check, clock, status, the platform layer
 *   log          log.c: the log walked front to back into a sink; a
 *                record's key read back
 *   store core   store_core.c: the mutex (enter/leave), lookups, counts,
 *                and pointing the index at a record (writes and recovery)
 *   snapshot     snapshot*.c behind snapshot.h: the index saved beside the
 *                data file, loaded lazily, hints, background saves
 *   recovery     recover.c: the open path, and the rebuild when the
 *                snapshot fails after open
 *   calls        store.c (open, close, compact, stats), read.c, write.c,
 *                iterate.c, commit.c, compact.c, backup.c, repair.c,
 *                debug.c (the test hooks)
 *
 * Locking: every function here that takes an fkv_store expects the caller
 * to hold s->mu (or to own the store alone, while opening), unless it says
 * otherwise. Writers hold s->mu for the whole of their lookup, append and
 * index update; readers hold it only to find a slot and pin the file, and
 * read the record after letting it go (fkv_file in file_io.h). None touches
 * Python.
 */
#ifndef FKV_STORE_CORE_H
#define FKV_STORE_CORE_H

#include "platform.h" /* first: sets the feature macros */
#include "store.h"
#include "clock.h"
#include "file_io.h"
#include "file_map.h"
#include "hash_index.h"
#include "lineage.h"
#include "log.h"
#include "record.h"
#include "warm_pages.h"
#include "status.h"

/* The snapshot's part of a store (s->snap): only snapshot*.c change it
 * (snapshot.h says how it lives); it is here, not there, so that the store's
 * state is whole below every layer that uses it. */
struct snapshot_lazy;
struct snapshot_hints;
struct snapshot_job;
typedef struct snapshot_state {
    struct snapshot_lazy *lazy;   /* its table still loading block by block, or NULL */
    struct snapshot_hints *hints; /* appends being noted beside it, or NULL */
    struct snapshot_job *job;     /* the one being saved in the background, or NULL */
    int reason;                   /* what open made of it (snapshot_reason) */
    uint64_t seq;                 /* write_seq when the one on disk was current */
    uint64_t next;                /* end of log at which a background save starts */
    uint64_t written;             /* snapshots saved */
    uint64_t bytes_written;       /* bytes of table those saved in the background wrote */
    uint64_t hinted;              /* records the open took from hints */
} snapshot_state;

/* Files a store makes beside its data file while it rewrites it. */
#define COMPACT_SUFFIX ".compact"
#define REPAIR_SUFFIX ".repair"

struct fkv_store {
    pthread_mutex_t mu;
    fkv_file *file;         /* the data file; NULL once closed */
    int closed;
    int salvaging;          /* opened for verify or repair: never written */
    uint64_t fork_gen;      /* fork generation at open: differs in a child */
    char *path;
    fkv_index ix;
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
    uint64_t open_scanned;   /* bytes of log the open walked */
    snapshot_state snap;     /* the index saved beside the file (snapshot.h) */
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
    uint32_t cold_skips;     /* reads that skip the page-cache probe (read.c); atomic */
    uint64_t debug_read_pause_ms; /* test hook: the next waiting read sleeps this long */
    uint32_t debug_reads_paused;  /* reads sleeping in that hook now (atomic) */
    /* The writer slot (transaction.c): held by one thread's transaction
     * from its begin to its end; other writes wait on txn_ended. */
    int txn_open;
    int txn_thread;          /* txn_owner is a thread (fkv_thread_self()) */
    uint64_t txn_owner;      /* its holder's token */
    pthread_cond_t txn_ended;
    void *group_scratch;     /* buffers of group writes, kept between calls (transaction.c) */
    uint8_t wbuf[FKV_REC_MAX]; /* record being encoded; guarded by mu */
    uint8_t *batch_buf;        /* FKV_BATCH_BYTES for fkv_put_batch, made at its first call */
};

/* The most records and bytes one fkv_put_batch appends. */
#define FKV_BATCH_BYTES (64u * 1024u)

/* ---- records at index offsets -------------------------------------------- */

static inline int key_len_ok(size_t klen)
{
    return klen > 0 && klen <= FKV_KEY_MAX_BYTES;
}

static inline int is_expired(const fkv_rec_header *h, uint64_t now)
{
    return h->deadline_ms != 0 && h->deadline_ms <= now;
}

/* Bytes to fetch for the record of an index slot: its size class, which
 * covers the whole record, at most cap. */
static inline size_t slot_read_size(fkv_slot slot, size_t cap)
{
    size_t want = fkv_class_bytes(FKV_SLOT_CLASS(slot.hash));
    return want < cap ? want : cap;
}

/* A batch of lookups looks a few keys ahead: first at the home slot of a
 * later key's hash, then, once that slot is in the cache, at the record it
 * points to (through the mapping), so the cache misses of several keys
 * overlap instead of coming one after another. A prefetch never faults: a
 * page that is not mapped in, or a slot not loaded yet, costs nothing. */
#define STORE_AHEAD 8 /* keys ahead for a slot; half as far for a record */

static inline void store_prefetch_slot(const fkv_store *s, uint32_t hash)
{
    FKV_PREFETCH(&s->ix.slots[fkv_index_home(&s->ix, hash)]);
}

static inline void store_prefetch_record(const fkv_store *s, uint32_t hash)
{
    const uint8_t *map = s->file->map;
    fkv_slot slot = s->ix.slots[fkv_index_home(&s->ix, hash)];
    if (!map || !FKV_LOC_IS_ENTRY(slot.loc) || FKV_SLOT_HASH(slot.hash) != (hash & FKV_HASH_MASK))
        return;
    uint64_t off = FKV_LOC_OFFSET(slot.loc);
    if (off + 192 > s->end)
        return;
    FKV_PREFETCH(map + off); /* a small record's three cache lines */
    FKV_PREFETCH(map + off + 64);
    FKV_PREFETCH(map + off + 128);
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

/* Find key's entry (store_core.c). buf (buflen >= 16 + FKV_KEY_MAX_BYTES)
 * receives the first bytes of its record. FKV_OK, FKV_ENOTFOUND,
 * FKV_ECORRUPT, FKV_EIO, or FKV_EAGAIN with FKV_NO_WAIT. */
int store_lookup(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                 size_t buflen, fkv_wait wait, found *f);

/* store_lookup for a key that most likely has no record (a create): a
 * record met on its probe path is almost always another key's with the
 * same 27-bit hash (about n^2 / 2^28 pairs of n keys: 3,700 at a million),
 * read with pread, which maps nothing. Through the mapping, each such read
 * would map 64 KiB around it (the kernel's fault-around) into the process's
 * resident memory, most of the file by a million creates. */
int store_lookup_absent(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                        size_t buflen, found *f);

/* At open: the fork generation this store belongs to (store_core.c). */
void store_fork_mark(fkv_store *s);

/* 1 in a child forked after the store was opened. */
int store_in_forked_child(const fkv_store *s);

/* Take the mutex for a call; checks fork first (a fork may copy it locked).
 * With FKV_NO_WAIT, FKV_EAGAIN instead of waiting for it (store_core.c). */
int store_enter(fkv_store *s, fkv_wait wait);

static inline void store_leave(fkv_store *s) { pthread_mutex_unlock(&s->mu); }

/* A write's turn at the writer slot (s->mu held): at once while no
 * transaction is open, else after it ends (the wait lets s->mu go), and
 * FKV_ETXN on the thread that holds it, which would wait for itself. */
int store_writer_wait(fkv_store *s);
static inline int store_writer_turn(fkv_store *s)
{
    return FKV_LIKELY(!s->txn_open) ? FKV_OK : store_writer_wait(s);
}

/* Complete a record found by a lookup: read the rest of it from fd into
 * buf after the f->got bytes already there, and check its checksum unless
 * the lookup did (store_core.c). */
int store_finish_record(int fd, uint8_t *buf, found *f, fkv_wait wait);

/* Live keys at now (store_core.c). */
int store_count_live(fkv_store *s, uint64_t now, uint64_t *out);

/* Point the index at the put record of n bytes at off for the key of hash
 * (with a deadline or 0): in the slot of old, the entry it replaces (which
 * was_live, not expired) or, with old NULL, a free slot (room reserved
 * before). The one way an entry is written, by writes and by recovery
 * (inline: it is on every write's path).
 * The count cache (live_cache) is kept in step here for writes; while the
 * store recovers, cache_until is 0, so nothing trusts it until a count. */
static inline void store_point(fkv_store *s, uint32_t hash, uint64_t off, size_t n,
                               uint64_t deadline, const found *old, int was_live)
{
    uint32_t loc = (uint32_t)off | (deadline ? FKV_LOC_TTL : 0);
    uint32_t word = fkv_slot_word(hash, n);
    if (old) {
        s->live_bytes -= fkv_record_size(&old->h);
        s->n_ttl -= (s->ix.slots[old->pos].loc & FKV_LOC_TTL) != 0;
        s->ix.slots[old->pos].hash = word;
        s->ix.slots[old->pos].loc = loc;
    } else {
        fkv_index_put(&s->ix, fkv_index_free_slot(&s->ix, hash), word, loc);
    }
    s->live_bytes += n;
    /* An expired entry being replaced was not in the count (the count is
     * only used while no counted deadline has passed). */
    if (!was_live)
        s->live_cache++;
    if (deadline) {
        s->n_ttl++;
        if (deadline < s->cache_until)
            s->cache_until = deadline;
    }
}

/* Take the entry old found out of the index (a delete, a tombstone). */
static inline void store_unpoint(fkv_store *s, const found *old)
{
    s->live_bytes -= fkv_record_size(&old->h);
    s->n_ttl -= (s->ix.slots[old->pos].loc & FKV_LOC_TTL) != 0;
    fkv_index_remove(&s->ix, old->pos);
    s->live_cache--;
}


/* Apply the intact record rec (header h, key hash) at off, as the log
 * says: a put points the index at it, a tombstone takes its key out. */
int store_apply(fkv_store *s, const uint8_t *rec, const fkv_rec_header *h, uint64_t off,
                uint32_t hash);

#endif /* FKV_STORE_CORE_H */
