/* store.c - the store's lifecycle, its mutex, lookups, counts and stats
 * (see store.h); writes are in write.c, reads in read.c. */
#include "store_private.h"

#include <stdlib.h>
#include <time.h>


void fkv_progress_read(const fkv_progress *p, uint64_t *done, uint64_t *total)
{
    *total = fkv_atomic_load(&p->total, FKV_RELAXED);
    *done = fkv_atomic_load(&p->done, FKV_RELAXED);
}

/* ---- fork detection and the mutex ---------------------------------------- */

/* Bumped in every forked child, so a store opened before the fork sees a
 * different generation there. Cheaper than getpid() on every call. */
static uint64_t fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { fork_generation++; }
static void register_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

static inline int in_forked_child(const fkv_store *s)
{
    return s->fork_gen != fkv_atomic_load(&fork_generation, FKV_RELAXED);
}

int store_enter(fkv_store *s, fkv_wait wait)
{
    if (FKV_UNLIKELY(in_forked_child(s)))
        return FKV_EFORKED;
    if (wait == FKV_NO_WAIT) {
        if (pthread_mutex_trylock(&s->mu) != 0)
            return FKV_EAGAIN;
    } else {
        pthread_mutex_lock(&s->mu);
    }
    if (FKV_UNLIKELY(s->closed)) {
        pthread_mutex_unlock(&s->mu);
        return FKV_ECLOSED;
    }
    return FKV_OK;
}

int store_enter_all(fkv_store *s)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc == FKV_OK && FKV_UNLIKELY(s->lazy) && (rc = snapshot_finish(s)) != FKV_OK)
        store_leave(s);
    return rc;
}

/* ---- lookup and count ---------------------------------------------------- */

FKV_STATIC_ASSERT(FKV_MAX_FILE_SIZE <= FKV_MAP_BYTES, "a whole data file fits its mapping");

/* A hash hit counts only when the key read back from disk is the same. */
int store_lookup(fkv_store *s, const char *key, size_t klen, uint32_t hash, uint8_t *buf,
                 size_t buflen, fkv_wait wait, found *f)
{
    const fkv_index *ix = &s->ix;
    for (uint64_t pos = fkv_index_home(ix, hash);; pos = fkv_index_next(ix, pos)) {
        fkv_slot slot = ix->slots[pos];
        if (slot.loc == FKV_LOC_EMPTY)
            return FKV_ENOTFOUND;
        if (FKV_SLOT_HASH(slot.hash) != hash || !FKV_LOC_IS_ENTRY(slot.loc))
            continue;
        uint64_t off = FKV_LOC_OFFSET(slot.loc);
        /* The size class covers the whole record: one pread fetches it. */
        int rc = read_record_at(s->file->fd, s->file->map, s->end, off, buf,
                                slot_read_size(slot, buflen), wait, &f->h, &f->got);
        if (rc != FKV_OK)
            return rc;
        if (f->h.klen == klen && memcmp(buf + FKV_REC_HEADER_SIZE, key, klen) == 0) {
            /* Small records are whole in buf: check them here, so no caller
             * acts on a damaged deadline. read() checks larger ones. */
            f->verified = f->got >= fkv_record_size(&f->h);
            if (f->verified && !fkv_record_checksum_ok(buf, &f->h))
                return fkv_corrupt_at(off);
            f->pos = pos;
            f->off = off;
            return FKV_OK;
        }
        /* Another key with the same hash (a few in a billion lookups), or
         * this key with damaged bytes: a record that fails its checksum is
         * damage, never "not found". */
        if (f->got >= fkv_record_size(&f->h) && !fkv_record_checksum_ok(buf, &f->h))
            return fkv_corrupt_at(off);
    }
}

/* Exact and free while no deadline has passed since the last count;
 * otherwise reads the header of each entry that has a deadline. */
int store_count_live(fkv_store *s, uint64_t now, uint64_t *out)
{
    if (s->n_ttl == 0) {
        s->live_cache = s->ix.live;
        s->cache_until = UINT64_MAX;
    } else if (now >= s->cache_until) {
        uint64_t live = 0, next = UINT64_MAX;
        uint8_t hdr[FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES];
        for (uint64_t pos = 0; pos < s->ix.cap; pos++) {
            uint32_t loc = s->ix.slots[pos].loc;
            if (!FKV_LOC_IS_ENTRY(loc))
                continue;
            if (!(loc & FKV_LOC_TTL)) {
                live++;
                continue;
            }
            size_t got;
            fkv_rec_header h;
            int rc = read_record_at(s->file->fd, NULL, s->end, FKV_LOC_OFFSET(loc), hdr, sizeof hdr,
                                    FKV_MAY_WAIT, &h, &got);
            if (rc != FKV_OK)
                return rc;
            if (!is_expired(&h, now)) {
                live++;
                if (h.deadline_ms && h.deadline_ms < next)
                    next = h.deadline_ms;
            }
        }
        s->live_cache = live;
        s->cache_until = next;
    }
    *out = s->live_cache;
    return FKV_OK;
}

/* ---- open and close ------------------------------------------------------ */

int store_open(const char *path, const fkv_options *opt, open_mode mode,
               fkv_verify_report *rep, fkv_progress *progress, fkv_store **out)
{
    *out = NULL;
    if (opt->max_file_size < FKV_MIN_FILE_SIZE || opt->max_file_size > FKV_MAX_FILE_SIZE)
        return FKV_ECONFIG;
    if (opt->durability != FKV_DURABLE_PROCESS && opt->durability != FKV_DURABLE_FSYNC)
        return FKV_ECONFIG;
    pthread_once(&atfork_once, register_atfork);

    fkv_store *s = (fkv_store *)calloc(1, sizeof *s);
    if (!s)
        return FKV_ENOMEM;
    s->path = strdup(path);
    if (!s->path || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->path);
        free(s);
        return FKV_ENOMEM;
    }
    if (commit_init(s) != FKV_OK) {
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s);
        return FKV_ENOMEM;
    }
    s->max_file_size = opt->max_file_size;
    s->durability = opt->durability;
    s->progress = progress;
    s->salvaging = mode == OPEN_SALVAGE;
    s->fork_gen = fkv_atomic_load(&fork_generation, FKV_RELAXED);

    fkv_create_mode create = mode == OPEN_NORMAL ? FKV_OPEN_CREATE : FKV_OPEN_EXISTING;
    int fd = -1, lock_fd = -1;
    int rc = fkv_open_locked(path, create, opt->lock_timeout_ms, &fd, &lock_fd);
    if (rc == FKV_OK && !(s->file = fkv_file_wrap(fd, lock_fd))) {
        fkv_close_locked(fd, lock_fd);
        rc = FKV_ENOMEM;
    }
    if (rc == FKV_OK && mode == OPEN_NORMAL) {
        /* We hold the lock, so no compaction is running: a leftover is junk. */
        const char *const leftovers[] = {COMPACT_SUFFIX, REPAIR_SUFFIX};
        for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
            char *tmp = fkv_path_with_suffix(path, leftovers[i]);
            if (tmp)
                unlink(tmp);
            free(tmp);
        }
        snapshot_tidy(path);
    }
    if (rc == FKV_OK)
        rc = scan_load(s, mode, rep);
    if (rc != FKV_OK) {
        hints_stop(s);
        snapshot_lazy_free(s->lazy);
        if (s->file)
            fkv_file_release(s->file);
        fkv_index_free(&s->ix);
        commit_destroy(s);
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s);
        return rc;
    }
    s->progress = NULL;
    *out = s;
    return FKV_OK;
}

int fkv_open(const char *path, const fkv_options *opt, fkv_store **out)
{
    return store_open(path, opt, OPEN_NORMAL, NULL, NULL, out);
}

/* A file of an older format (no sessions' list, or no id) gets no
 * snapshot, so every open scans it whole: rewrite it in the current format
 * once, at its first clean close, as a compaction does. A failure leaves it
 * as it was, to be tried at the next close. */
static void upgrade_format(fkv_store *s)
{
    if (s->ident.version == FKV_FORMAT_VERSION || s->salvaging || s->flush_errno != 0 ||
        s->live_bytes + (FKV_FILE_HEADER_SIZE - FKV_FILE_HEADER_OLD) > s->max_file_size)
        return;
    (void)compact_locked(s, COMPACT_KEEP_ALL);
}

int fkv_close(fkv_store *s)
{
    if (in_forked_child(s)) {
        /* Only our copy of the descriptor goes; the parent keeps its lock.
         * No thread of the parent came along, so no read has it pinned. */
        if (s->file) {
            close(s->file->fd);
            free(s->file);
        }
        if (s->lazy)
            close(s->lazy->fd);
        hints_stop(s); /* writes no frame: nothing is written here */
        s->file = NULL;
        s->closed = 1;
        return FKV_OK;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->closed) {
        commit_close(s);
        snapshot_join(s, FKV_MAY_WAIT);
        upgrade_format(s);
        /* Save the index for a fast reopen, unless the one on disk is
         * current; a failure only costs the next open a scan. */
        if (s->flush_errno == 0 && s->snapshot_seq != s->write_seq)
            (void)snapshot_write(s);
        s->closed = 1;
        hints_stop(s);
        snapshot_lazy_free(s->lazy); /* reads only since open: nothing to save */
        s->lazy = NULL;
        fkv_file_release(s->file);
        s->file = NULL;
        fkv_index_free(&s->ix);
    }
    pthread_mutex_unlock(&s->mu);
    return FKV_OK;
}

void fkv_free(fkv_store *s)
{
    if (!s)
        return;
    fkv_close(s);
    if (!in_forked_child(s)) { /* a child's copy of the mutex may be locked */
        commit_destroy(s);
        pthread_mutex_destroy(&s->mu);
    }
    fkv_index_free(&s->ix);
    free(s->batch_buf);
    free(s->path);
    free(s);
}

/* Checks as store_private.h says; reads the rest with the wait given. */
int store_finish_record(int fd, uint8_t *buf, found *f, fkv_wait wait)
{
    size_t total = fkv_record_size(&f->h);
    if (f->got < total) {
        size_t got, rest = total - f->got;
        int rc = fkv_read_at(fd, buf + f->got, rest, f->off + f->got, &got, wait);
        if (rc != FKV_OK)
            return rc;
        if (got < rest)
            return fkv_corrupt_at(f->off);
        f->got = total;
    }
    /* Checksum before the deadline: the deadline is part of what it guards. */
    if (!f->verified && !fkv_record_checksum_ok(buf, &f->h))
        return fkv_corrupt_at(f->off);
    f->verified = 1;
    return FKV_OK;
}

/* ---- counts and maintenance ----------------------------------------------- */

int fkv_count(fkv_store *s, uint64_t *n)
{
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    rc = store_count_live(s, fkv_now_ms(), n);
    store_leave(s);
    return rc;
}

int fkv_compact(fkv_store *s, fkv_progress *progress)
{
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    s->progress = progress;
    if ((rc = commit_writable(s)) == FKV_OK)
        rc = compact_locked(s, COMPACT_KEEP_ALL);
    s->progress = NULL;
    /* A cache: a failure costs the next open a scan, nothing else. */
    if (rc == FKV_OK && snapshot_write(s) == FKV_OK)
        s->snapshot_seq = s->write_seq;
    store_leave(s);
    return rc;
}

int fkv_get_stats(fkv_store *s, fkv_stats *st)
{
    int rc = store_enter_all(s);
    if (rc != FKV_OK)
        return rc;
    rc = store_count_live(s, fkv_now_ms(), &st->live_keys);
    snapshot_join(s, FKV_NO_WAIT); /* count one that has finished */
    st->held_keys = s->ix.live;
    st->file_bytes = s->end;
    st->live_bytes = s->live_bytes;
    st->dead_bytes = s->end - s->live_bytes;
    st->index_bytes = fkv_index_bytes(&s->ix);
    st->index_slots = s->ix.cap;
    st->max_file_size = s->max_file_size;
    st->torn_bytes_dropped = s->torn_dropped;
    st->compactions = s->compactions;
    st->flushes = s->flushes;
    st->flush_errno = s->flush_errno;
    st->snapshot_status = s->snapshot_status;
    st->open_scanned_bytes = s->open_scanned;
    st->open_hinted_records = s->open_hinted;
    st->snapshots_written = s->snapshots_written;
    store_leave(s);
    return rc;
}

int fkv_debug_hold(fkv_store *s, uint64_t ms)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    fkv_sleep_ms(ms);
    store_leave(s);
    return FKV_OK;
}
