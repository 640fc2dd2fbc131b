/*
 * snapshot.h - the index saved beside the data file (<data file>.idx), so
 * that a reopen reads one file instead of walking the whole log. It is a
 * cache: losing it, or any check of it failing, costs a walk of the log and
 * never an answer.
 *
 * ---- The life of a snapshot ---------------------------------------------
 *
 * Saving. A clean close and fkv_compact flush the data file, then write the
 * table and counters (snapshot_save_now). A store in use saves one from a
 * thread of its own once the log has doubled past the newest
 * (snapshot_written): the writer that crossed the line copies the table
 * under the mutex and the thread writes the copy, holding no lock. One runs
 * at a time; a later write, stats, a compaction or close collects it.
 *
 * Opening (recover.c, top-down, never nested):
 *   1. snapshot_open checks the snapshot's front (header, block directory,
 *      the data file's identity and history, the record that ends at E) and
 *      takes the table's memory, leaving its blocks unread. Refused: the
 *      store says why in stats (snapshot_reason) and walks the whole log.
 *   2. If the log goes on past E (a crash), the snapshot keeps those
 *      records by the block of their key's home slot instead of applying
 *      them: first those its hints name (snapshot_hints_feed: a second
 *      producer, 8 bytes a record instead of the record), then those the
 *      log walk hands it (snapshot_keep). When it can keep no more, the
 *      walk stops, the whole table is loaded and the walk goes on applying.
 *   3. snapshot_walked: too many kept for the table to hold without
 *      growing loads it whole now; a snapshot that covered the whole log
 *      starts hints.
 *
 * Loading lazily. Until the first call that is not a read, the table is
 * loaded block by block (64 KiB each): a read first makes sure the blocks
 * on its key's probe path are read, their CRC right and their slots
 * checked, and applies its home block's kept records (snapshot_ready). Any
 * other call loads the rest first (snapshot_finish). While any block is
 * still to come (s->snap.lazy), no write has happened, so blocks never
 * change under a lazy load.
 *
 * Failing. A check that fails after open (a block's CRC, a block's slots,
 * a record its hints named) makes snapshot_ready or snapshot_finish answer
 * FKV_ESNAPSHOT and nothing else: the snapshot never walks the log itself.
 * The store's layer then rebuilds the index by a walk (recover.c) and calls
 * snapshot_drop, which lets the snapshot go and records why. Answers given
 * before came from blocks that had passed every check.
 *
 * Who frees what. The snapshot owns s->snap: the lazy load (its file, its
 * block states, the kept records) is freed when the last block is in
 * (snapshot_ready, snapshot_finish), by snapshot_drop, or by
 * snapshot_release; the background job is freed when collected; hints by
 * snapshot_release, a save, or the events below.
 *
 * When hints stop. Hints note every append after a clean reopen, in
 * "process" durability only, and only while the snapshot on disk covers
 * the log up to where they begin. They stop for good when that stops being
 * true: a save (background or not) replaces the snapshot they follow
 * (snapshot_written, snapshot_save_now), a compaction replaces the log
 * (snapshot_log_replaced), a frame fails to write, or the store closes.
 *
 * Locking: as store_core.h says, every call here expects the caller to
 * hold s->mu (or to own the store alone, while opening).
 */
#ifndef FKV_SNAPSHOT_H
#define FKV_SNAPSHOT_H

#include "store_core.h"
#include "snapshot_format.h"

/* ---- open ------------------------------------------------------------------ */

/* At open, the lock held: what a save stopped by a kill left beside the
 * store removed (or put in place, fkv_replace_recover). */
void snapshot_tidy(const char *path);

/* Load and check the front of the snapshot of s's data file (size bytes),
 * replacing the empty index: the log offset it covers, or the start of the
 * log when it was refused (s->snap.reason says why; the store is as it
 * was). Its table is left to load block by block. */
uint64_t snapshot_open(fkv_store *s, uint64_t size);

/* 1 while open is keeping the log past the snapshot for its blocks. */
int snapshot_keeping(const fkv_store *s);

/* Keep the record at off (its key's hash given) for its home block.
 * FKV_OK; FKV_EFULL when no more can be kept (the walk stops and the
 * caller loads the whole table, snapshot_finish); FKV_ENOMEM. */
int snapshot_keep(fkv_store *s, uint64_t off, uint32_t hash);

/* Keep the records the snapshot's hints name past from, in a data file of
 * size bytes: the log offset from which the walk must go on. */
uint64_t snapshot_hints_feed(fkv_store *s, uint64_t from, uint64_t size);

/* After the walk: the kept records that would not fit the table without
 * growing it make it load whole now; a snapshot that covered the log up to
 * its end (covered == s->end) starts hints and is current. FKV_OK,
 * FKV_ESNAPSHOT, or an error reading the log. */
int snapshot_walked(fkv_store *s, uint64_t covered);

/* ---- loading after open ---------------------------------------------------- */

/* Before a read probes for hash: the blocks on its probe path loaded and
 * checked and its home block's kept records applied. FKV_OK; FKV_EAGAIN
 * with FKV_NO_WAIT when the file must be read; FKV_ESNAPSHOT when a check
 * failed (the caller rebuilds); or an error reading the log. Inline below:
 * free while nothing is loading. */
static inline int snapshot_ready(fkv_store *s, uint32_t hash, fkv_wait wait);
int snapshot_ready_path(fkv_store *s, uint32_t hash, fkv_wait wait);

/* Load and check every block still to come and apply every kept record:
 * FKV_OK, FKV_ESNAPSHOT (the caller rebuilds), or an error reading the
 * log (the rest wait for the next call). */
int snapshot_finish(fkv_store *s);

/* After the caller rebuilt the index from the log: let the snapshot's
 * load go, record why, and make a new save due soon. */
void snapshot_drop(fkv_store *s);

/* ---- events of a store in use ---------------------------------------------- */

/* Records recs[0..len) were just appended at log offset off: noted in
 * hints, if they run. Inline below. */
static inline void snapshot_appended(fkv_store *s, const uint8_t *recs, size_t len, uint64_t off);
void hints_note(fkv_store *s, const uint8_t *recs, size_t len, uint64_t off);

/* A write call has finished (the index points at its records): once the
 * log has doubled past the newest snapshot (grown by at least 4 MiB), a
 * copy of the table is saved in the background. Inline below. */
static inline void snapshot_written(fkv_store *s);
void snapshot_start(fkv_store *s);

/* A compaction replaced the log: hints stop, the snapshot on disk names
 * the old file, and a new one is due at once. */
void snapshot_log_replaced(fkv_store *s);

/* Flush the data file and save the table now (close, fkv_compact), unless
 * it is not all in memory or the file is of an older format. */
int snapshot_save_now(fkv_store *s);

/* Collect a background save that has finished (with FKV_NO_WAIT; 0 if it
 * runs on) or wait for it: 1 when none is left running. */
int snapshot_join(fkv_store *s, fkv_wait wait);

/* At close: the background save collected, the table saved unless the one
 * on disk is current (save == 0: a failed flush forbids it), everything
 * released. */
void snapshot_close(fkv_store *s, int save);

/* Everything the snapshot holds let go, nothing written and no thread
 * joined: a failed open, or a forked child's close. */
void snapshot_release(fkv_store *s);

/* ---- for the tools that write a snapshot of their own (backup.c) ------------ */

/* The snapshot header for s's index as it stands. */
void snapshot_header(const fkv_store *s, uint8_t *header);

/* The same header made to name another data file and its session: for a
 * copy of the log at the same offsets (a backup). */
void snapshot_header_rebind(uint8_t *header, const fkv_file_identity *ident, uint64_t session);

/* Write header and table as the snapshot of the data file at store_path,
 * after flushing the data file (the log the snapshot covers must be durable
 * before it is), and flush it: over the snapshot in place when it has the
 * same size, else through a temporary file made like data_fd, the data
 * file's descriptor, renamed into place. Takes no lock: the caller owns
 * table (the store's own, at close and compaction). */
int snapshot_save(const char *store_path, int data_fd, const uint8_t *header,
                  const fkv_index *table);

/* A snapshot of a copy of the table (a backup's) in two steps, so that the
 * first runs beside other work: the table written into a new temporary
 * file made like like_fd and its block directory built, the copy freed;
 * then, when the data file holds the log the snapshot covers, that file
 * flushed (unless data_fd is -1: flushed by the caller), the front
 * written, the file flushed and renamed into place.
 * finish always consumes p, and only discards it when rc (the caller's
 * state so far) is not FKV_OK. */
typedef struct snapshot_prepared {
    fkv_tempfile tmp;
    uint8_t *front; /* header and block directory */
    size_t head;    /* their bytes */
} snapshot_prepared;
int snapshot_prepare(const char *store_path, int like_fd, fkv_index *table, snapshot_prepared *p);
int snapshot_finish_prepared(const char *store_path, int data_fd, const uint8_t *header,
                             snapshot_prepared *p, int rc);

/* A background snapshot in two steps: the table written into a new
 * temporary file beside the snapshot (under the store's mutex: the page
 * cache holds the copy, so the process holds none), then, with no lock,
 * the directory built from it, the data file flushed, the header written
 * and the file flushed and renamed into place. A failed stage leaves no
 * file; finish always consumes tmp. */
int snapshot_stage(const char *store_path, int data_fd, const fkv_index *table,
                   fkv_tempfile *tmp);
int snapshot_finish_staged(const char *store_path, int data_fd, const uint8_t *header,
                           uint64_t cap, fkv_tempfile *tmp);

/* Remove the snapshot of the data file at path, if any (repair). */
void snapshot_forget(const char *path);

/* Blocks checked so far and in all of a table still loading lazily (0, 0
 * when none is): for the test hooks. */
void snapshot_blocks_loaded(const fkv_store *s, uint64_t *checked, uint64_t *total);

/* ---- the fast paths, inline -------------------------------------------------- */

static inline int snapshot_ready(fkv_store *s, uint32_t hash, fkv_wait wait)
{
    return FKV_LIKELY(!s->snap.lazy) ? FKV_OK : snapshot_ready_path(s, hash, wait);
}

static inline void snapshot_appended(fkv_store *s, const uint8_t *recs, size_t len, uint64_t off)
{
    if (s->snap.hints)
        hints_note(s, recs, len, off);
}

static inline void snapshot_written(fkv_store *s)
{
    if (FKV_UNLIKELY(s->end >= s->snap.next))
        snapshot_start(s);
}

#endif /* FKV_SNAPSHOT_H */
