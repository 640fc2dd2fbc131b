/*
 * commit.c - getting appended records to stable storage: group commit.
 *
 * In fsync mode a write returns only once a flush (fdatasync) that started
 * after its record was appended has returned. Writers append and publish
 * under the store's mutex, then wait here; the first waiter that finds no
 * flush running becomes the leader: it notes the last record appended so
 * far, lets the mutex go, flushes, takes the mutex back, marks every record
 * up to the noted one durable and wakes the others. Writers that arrive
 * while a flush runs wait for it to end, and the next leader covers them
 * all with one flush, so N concurrent writers cost about two flushes, not N
 * (LevelDB's writer queue and PostgreSQL's WAL flush work this way).
 *
 * Records are numbered rather than located by offset because a compaction
 * may replace the file while a flush runs; a compaction flushes its new
 * file before renaming it into place, so it marks everything durable.
 *
 * A failed flush may have dropped dirty pages that a retry would then report
 * as written (the fsync error reporting of Linux and PostgreSQL's
 * "fsyncgate"), so after one the store refuses every write until it is
 * reopened, which rescans what really is in the file. Records already
 * acknowledged are never cut away.
 */
#include "store_private.h"

#include <time.h>

#ifndef GATHER_US
#define GATHER_US 100
#endif

int commit_init(fkv_store *s)
{
    /* What the file held at open may never have been flushed: the first
     * sync flushes it. */
    s->write_seq = 1;
    s->durable_seq = 0;
    return pthread_cond_init(&s->flushed, NULL) == 0 ? FKV_OK : FKV_ENOMEM;
}

void commit_destroy(fkv_store *s)
{
    pthread_cond_destroy(&s->flushed);
}

int commit_writable(const fkv_store *s)
{
    if (FKV_LIKELY(s->flush_errno == 0))
        return FKV_OK;
    fkv_set_errno(s->flush_errno);
    return FKV_EFLUSH;
}

/* One flush as the leader, the mutex let go meanwhile. */
static void lead_flush(fkv_store *s)
{
    s->flushing = 1;
    if (s->last_batch > 1 && GATHER_US > 0) {
        store_leave(s);
        struct timespec pause = {0, GATHER_US * 1000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&s->mu);
    }
    uint64_t target = s->write_seq;
    s->last_batch = target - s->durable_seq;
    fkv_file *f = s->file;
    int fail = s->fail_next_flush;
    s->fail_next_flush = 0;
    fkv_file_pin(f);
    store_leave(s);
    int err = 0;
    if (fail)
        err = fail;
    else if (fkv_fdatasync(f->fd) != 0)
        err = errno;
    fkv_file_unpin(f);
    pthread_mutex_lock(&s->mu);
    s->flushing = 0;
    s->flushes++;
    if (err)
        s->flush_errno = err;
    else if (target > s->durable_seq)
        s->durable_seq = target;
    pthread_cond_broadcast(&s->flushed);
}

int commit_wait_durable(fkv_store *s, uint64_t seq)
{
    while (s->durable_seq < seq) {
        int rc = commit_writable(s);
        if (rc != FKV_OK)
            return rc;
        if (s->flushing)
            pthread_cond_wait(&s->flushed, &s->mu);
        else if (s->closed)
            return FKV_ECLOSED; /* a sync() overtaken by close() in process mode */
        else
            lead_flush(s);
    }
    return FKV_OK;
}

void commit_close(fkv_store *s)
{
    while (s->flushing)
        pthread_cond_wait(&s->flushed, &s->mu);
    if (s->durability == FKV_DURABLE_FSYNC && s->durable_seq < s->write_seq &&
        s->flush_errno == 0) {
        if (fkv_fdatasync(s->file->fd) == 0)
            s->durable_seq = s->write_seq;
        else
            s->flush_errno = errno;
        s->flushes++;
    }
    pthread_cond_broadcast(&s->flushed);
}

int fkv_sync(fkv_store *s)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    rc = commit_wait_durable(s, s->write_seq);
    store_leave(s);
    return rc;
}

int fkv_debug_fail_next_flush(fkv_store *s, int err)
{
    int rc = store_enter(s, FKV_MAY_WAIT);
    if (rc != FKV_OK)
        return rc;
    s->fail_next_flush = err;
    store_leave(s);
    return FKV_OK;
}
