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
#include "commit.h"

/* Longest a leader waits for the writers of the last batch to come back. */
#define GATHER_MAX_US 150u

int commit_init(fkv_store *s)
{
    /* What the file held at open may never have been flushed: the first
     * sync flushes it. */
    s->write_seq = 1;
    s->durable_seq = 0;
    if (pthread_cond_init(&s->flushed, NULL) != 0)
        return FKV_ENOMEM;
    if (fkv_cond_init(&s->gathered) != 0) {
        pthread_cond_destroy(&s->flushed);
        return FKV_ENOMEM;
    }
    return FKV_OK;
}

void commit_destroy(fkv_store *s)
{
    pthread_cond_destroy(&s->flushed);
    pthread_cond_destroy(&s->gathered);
}

void commit_appended(fkv_store *s)
{
    if (FKV_UNLIKELY(s->gather_target) && s->write_seq >= s->gather_target)
        pthread_cond_signal(&s->gathered);
}

int commit_writable(const fkv_store *s)
{
    if (FKV_LIKELY(s->flush_errno == 0))
        return FKV_OK;
    fkv_set_errno(s->flush_errno);
    return FKV_EFLUSH;
}

/* Before a flush: if the last one covered several writers, wait (mutex let
 * go) until as many records are pending again, or GATHER_MAX_US at most.
 * Writers that a flush just released need a moment to come back with their
 * next record (they take turns on Python's GIL); flushing at once would
 * cover only those already back, and the writers would settle into two
 * groups that each get half the flushes. Waiting for the last batch's size
 * adapts by itself: when fewer writers come, the next target is smaller,
 * and a lone writer never waits. PostgreSQL's commit_delay is the same idea
 * with a fixed delay. */
static void gather(fkv_store *s)
{
    if (s->last_batch < 2)
        return;
    uint64_t start = fkv_monotonic_us();
    s->gather_target = s->durable_seq + s->last_batch;
    while (s->write_seq < s->gather_target && !s->closed) {
        uint64_t waited = fkv_monotonic_us() - start;
        if (waited >= GATHER_MAX_US)
            break;
        fkv_cond_wait_us(&s->gathered, &s->mu, GATHER_MAX_US - waited);
    }
    s->gather_target = 0;
}

/* One flush as the leader, the mutex let go meanwhile. */
static void lead_flush(fkv_store *s)
{
    s->flushing = 1;
    gather(s);
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
