/*
 * snapshot_background.c - snapshots saved while the store is in use, so
 * that an open after a crash scans what was written since the newest one,
 * not the whole log.
 *
 * Once the log has grown past the newest snapshot by as much as that
 * snapshot covers (at least SNAPSHOT_TAIL_MIN), the writer that crossed the
 * line writes the index into a new file beside the snapshot under the
 * mutex (one pwrite into the page cache: 16 MB at a million keys, about
 * what a memcpy into fresh memory costs, and no second table in the
 * process) and a thread of the snapshot's own builds the block directory
 * from that file, flushes the data file, writes the header and renames
 * the snapshot into place, holding no lock. One runs at a
 * time; it is collected by a later write, stats, an explicit compaction,
 * or close, which waits for it before writing its own.
 *
 * A compaction inside a write while one runs leaves that snapshot naming
 * the old file: open refuses it (another data file) until the next one,
 * which the compaction makes due at once (snapshot_covers(s, 0)).
 */
#include "snapshot_parts.h"

#include <stdlib.h>

/* Below this much unsnapshotted log a crash costs a few milliseconds of
 * scan: not worth a copy of the index. */
#define SNAPSHOT_TAIL_MIN (4u * 1024u * 1024u)

typedef struct snapshot_job {
    const char *store_path; /* the store's: lives as long as the store */
    fkv_file *file;         /* pinned: its fd stays open for the flush */
    fkv_tempfile staged;    /* the new snapshot, the index in it as it was at seq */
    uint64_t cap;           /* its slots */
    uint64_t table_bytes;   /* their bytes */
    uint64_t seq;           /* write_seq at that moment */
    uint8_t header[SNAPSHOT_HEADER_BYTES];
    pthread_t thread;
    int rc;
    int done;               /* atomic: rc is set */
} snapshot_job;

/* The next one when the log has doubled: the tables a bulk load saves then
 * grow by half each time, so together they write less than twice the final
 * one (growing by a quarter, they wrote over four times it). After a kill
 * an open scans at most the newer half of the log (a few hundred ms at
 * 1 GiB, page cache warm). */
void snapshot_covers(fkv_store *s, uint64_t end)
{
    s->snap.next = end + (end > SNAPSHOT_TAIL_MIN ? end : SNAPSHOT_TAIL_MIN);
}

static void *save(void *arg)
{
    snapshot_job *j = (snapshot_job *)arg;
    j->rc = snapshot_finish_staged(j->store_path, j->file->fd, j->header, j->cap, &j->staged);
    fkv_atomic_store(&j->done, 1, FKV_RELEASE);
    return NULL;
}

static void job_free(snapshot_job *j)
{
    if (j->file)
        fkv_file_unpin(j->file);
    free(j);
}

int snapshot_join(fkv_store *s, fkv_wait wait)
{
    snapshot_job *j = s->snap.job;
    if (!j)
        return 1;
    if (wait == FKV_NO_WAIT && !fkv_atomic_load(&j->done, FKV_ACQUIRE))
        return 0;
    pthread_join(j->thread, NULL);
    if (j->rc == FKV_OK) {
        s->snap.written++;
        s->snap.bytes_written += j->table_bytes;
        if (j->file == s->file) /* no compaction since: the copy was the state at seq */
            s->snap.seq = j->seq;
    }
    s->snap.job = NULL;
    job_free(j);
    return 1;
}

void snapshot_start(fkv_store *s)
{
    hints_stop(s); /* the snapshot they hold for is about to be replaced */
    if (!snapshot_join(s, FKV_NO_WAIT))
        return; /* the one before still runs: try again at the next write */
    snapshot_covers(s, s->end); /* if this one fails, the log must grow again */
    if (s->ident.version != FKV_FORMAT_VERSION || s->ix.cap == 0)
        return; /* an older format: no history to bind a snapshot to */
    snapshot_job *j = (snapshot_job *)calloc(1, sizeof *j);
    if (!j || snapshot_stage(s->path, s->file->fd, &s->ix, &j->staged) != FKV_OK) {
        free(j);
        return;
    }
    j->cap = s->ix.cap;
    j->table_bytes = (uint64_t)s->ix.cap * sizeof(fkv_slot);
    snapshot_header(s, j->header);
    j->store_path = s->path;
    j->seq = s->write_seq;
    j->file = s->file;
    fkv_file_pin(j->file);
    if (pthread_create(&j->thread, NULL, save, j) != 0) {
        fkv_temp_discard(&j->staged);
        job_free(j);
        return;
    }
    s->snap.job = j;
}
