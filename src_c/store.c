/* store.c - the calls that open, close, compact and report on a store (see
 * store.h); the core they stand on is store_core.c, writes are in write.c,
 * reads in read.c, the open's recovery in recover.c. */
#include "store_private.h"
#include "commit.h"
#include "compact.h"
#include "transaction.h"
#include "append.h"

#include <stdlib.h>
#include <time.h>


void fkv_progress_read(const fkv_progress *p, uint64_t *done, uint64_t *total)
{
    *total = fkv_atomic_load(&p->total, FKV_RELAXED);
    *done = fkv_atomic_load(&p->done, FKV_RELAXED);
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
    if (transaction_init(s) != FKV_OK) {
        commit_destroy(s);
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s);
        return FKV_ENOMEM;
    }
    s->max_file_size = opt->max_file_size;
    s->durability = opt->durability;
    s->progress = progress;
    s->salvaging = mode == OPEN_SALVAGE;
    store_fork_mark(s);

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
        rc = recover_open(s, mode, rep);
    if (rc != FKV_OK) {
        snapshot_release(s);
        if (s->file)
            fkv_file_release(s->file);
        fkv_index_free(&s->ix);
        transaction_destroy(s);
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
    if (store_in_forked_child(s)) {
        /* Only our copy of the descriptor goes; the parent keeps its lock.
         * No thread of the parent came along, so no read has it pinned. */
        if (s->file) {
            close(s->file->fd);
            free(s->file);
        }
        snapshot_release(s); /* writes nothing: nothing is written here */
        s->file = NULL;
        s->closed = 1;
        return FKV_OK;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->closed) {
        transaction_close(s);
        commit_close(s);
        upgrade_format(s);
        fkv_append_cut_room(s->file, s->end);
        /* Save the index for a fast reopen; a failure only costs the next
         * open a walk of the log. */
        snapshot_close(s, s->flush_errno == 0);
        s->closed = 1;
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
    if (!store_in_forked_child(s)) { /* a child's copy of the mutex may be locked */
        transaction_destroy(s);
        commit_destroy(s);
        pthread_mutex_destroy(&s->mu);
    }
    fkv_index_free(&s->ix);
    free(s->batch_buf);
    free(s->path);
    free(s);
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
    /* A cache: a failure costs the next open a walk, nothing else. */
    if (rc == FKV_OK)
        (void)snapshot_save_now(s);
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
    st->snapshot_status = (int)s->snap.reason;
    st->open_scanned_bytes = s->open_scanned;
    st->open_hinted_records = s->snap.hinted;
    st->snapshots_written = s->snap.written;
    st->snapshot_table_bytes = s->snap.bytes_written;
    store_leave(s);
    return rc;
}
