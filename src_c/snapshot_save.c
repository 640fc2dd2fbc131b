/*
 * snapshot_save.c - writing a snapshot: the table and counters written to
 * <data file>.idx over the one there, in place, when the table's size is
 * unchanged (a store saving its own table), else through a temporary file
 * that is flushed and renamed into place (a copy: from the background, or
 * a backup's). It covers the log up to its end E at the moment the table
 * was taken. The format is in snapshot_parts.h.
 */
#include "snapshot_parts.h"
#include "crc32c.h"
#include "table_check.h"

#include <stdlib.h>

void snapshot_header(const fkv_store *s, uint8_t *h)
{
    memset(h, 0, SNAP_HEADER);
    memcpy(h, SNAP_MAGIC, 8);
    fkv_store32(h + 8, SNAP_VERSION);
    fkv_store32(h + 12, hash_identity());
    fkv_store32(h + 16, SNAP_SLOT);
    fkv_store32(h + 20, (uint32_t)block_slots_for(s->ix.cap));
    fkv_store64(h + 24, s->ident.created_ms);
    fkv_store32(h + 32, s->ident.id);
    fkv_store32(h + 36, s->tail_crc);
    fkv_store64(h + 40, s->end);
    fkv_store64(h + 48, s->tail_off);
    fkv_store64(h + 56, s->ix.cap);
    fkv_store64(h + 64, s->ix.live);
    fkv_store64(h + 72, s->ix.deleted);
    fkv_store64(h + 80, s->live_bytes);
    fkv_store64(h + 88, s->n_ttl);
    fkv_store64(h + 96, fkv_lineage_head(&s->lineage));
}

void snapshot_header_rebind(uint8_t *h, const fkv_file_identity *ident, uint64_t session)
{
    fkv_store64(h + 24, ident->created_ms);
    fkv_store32(h + 32, ident->id);
    fkv_store64(h + 96, session);
}

/* A save's two halves: the slots written out, and the block directory
 * (each block's CRC and counts) built from the same memory, which nobody
 * changes meanwhile. A store saving its own table waits for the save, so a
 * helper thread writes while the saver builds the directory, then helps
 * with what is left of it; blocks are handed out one at a time. */
/* Below this many bytes of slots a helper thread costs more than it saves:
 * starting one takes up to a few hundred µs on a VM (a close of 100 keys
 * took 100 µs with one, 13 without; of 10,000 keys 127 against 41). */
#define SAVE_HELPER_MIN (1u << 20)

typedef struct save_job {
    int data_fd, fd;
    const fkv_index *table;
    uint64_t head, per, nblocks;
    uint8_t *front;
    uint64_t next_block; /* taken with atomics by both threads */
    int rc;              /* of the flush and the write */
} save_job;

/* The data file is flushed first: the front, which names E, is written
 * only after this, so E is durable before any snapshot naming it reads
 * as whole. */
static void write_slots(save_job *j)
{
    j->rc = fkv_flush(j->data_fd);
    if (j->rc == FKV_OK)
        j->rc = fkv_write_at(j->fd, j->table->slots, (size_t)j->table->cap * SNAP_SLOT, j->head);
}

/* Block b's directory entry: its CRC and counts. */
static void directory_entry(uint8_t *front, uint64_t b, const fkv_slot *slots, uint64_t per)
{
    uint32_t live, deleted, ttl;
    table_count(slots, (size_t)per, &live, &deleted, &ttl);
    uint8_t *e = front + SNAP_HEADER + SNAP_BLOCK_ENTRY * b;
    fkv_store32(e, fkv_crc32c(0, slots, (size_t)per * SNAP_SLOT)); /* already the file's layout */
    fkv_store32(e + 4, live);
    fkv_store32(e + 8, deleted);
    fkv_store32(e + 12, ttl);
}

static void build_directory(save_job *j)
{
    for (;;) {
        uint64_t b = fkv_atomic_fetch_add(&j->next_block, 1, FKV_RELAXED);
        if (b >= j->nblocks)
            return;
        directory_entry(j->front, b, j->table->slots + b * j->per, j->per);
    }
}

static void *save_helper(void *arg)
{
    write_slots((save_job *)arg);
    build_directory((save_job *)arg);
    return NULL;
}

int snapshot_open_plain(const char *path, int flags, uint64_t min_size, const uint64_t *want,
                        struct stat *st)
{
    int fd = open(path, flags | O_CLOEXEC | FKV_O_NOFOLLOW);
    if (fd >= 0 && (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_nlink != 1 ||
                    (uint64_t)st->st_size < min_size ||
                    (want && ((uint64_t)st->st_dev != want[0] || (uint64_t)st->st_ino != want[1])))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The snapshot in place, opened to be written over when it has the size
 * this one needs (and perhaps hints after it, snapshot_hints.c, in *more
 * bytes): rewriting pages the page cache holds costs about a third of
 * filling a new file's (16 MB on tmpfs: 2.5-5 ms against 7-14). Not a link
 * (the write would land in another file) nor a file with other names. */
static int open_for_overwrite(const char *target, uint64_t size, uint64_t *more)
{
    struct stat st;
    int fd = snapshot_open_plain(target, O_RDWR, size, NULL, &st);
    *more = fd >= 0 ? (uint64_t)st.st_size - size : 0;
    return fd;
}

/* The header and directory go in last, and the file is flushed: until
 * then it has no magic and no open takes it. */
static int write_front(int fd, uint8_t *front, size_t head, const uint8_t *header)
{
    memcpy(front, header, SNAP_HEADER);
    fkv_store32(front + head - 4, fkv_crc32c(0, front, head - 4));
    int rc = fkv_write_at(fd, front, head, 0);
    return rc == FKV_OK ? fkv_flush(fd) : rc;
}

int snapshot_save(const char *store_path, int data_fd, const uint8_t *header,
                  const fkv_index *table)
{
#if !FKV_LITTLE_ENDIAN
#error "snapshot.c writes the table as it lies in memory: add a byte swap for this host"
#endif
    uint64_t cap = table->cap, nblocks = cap / block_slots_for(cap);
    size_t head = (size_t)body_offset(nblocks), body = (size_t)cap * SNAP_SLOT;
    uint8_t *front = (uint8_t *)malloc(head);
    char *target = fkv_path_with_suffix(store_path, SNAPSHOT_SUFFIX);
    if (!front || !target) {
        free(front);
        free(target);
        return FKV_ENOMEM;
    }
    /* Written over in place when it has the size (close, compact): a
     * crash then costs the next open a full scan. (A snapshot saved in the
     * background, while the process may die at any moment, is staged in a
     * new file renamed into place, so the one before stays whole until
     * then: below.) */
    fkv_tempfile tmp = {-1, NULL};
    uint64_t hinted = 0;
    int fd = open_for_overwrite(target, head + body, &hinted);
    int in_place = fd >= 0, rc = FKV_OK;
    if (in_place) {
        rc = fkv_write_at(fd, SNAP_UNFINISHED, 8, 0);
        /* the hints after it hold for the snapshot being replaced */
        if (rc == FKV_OK && hinted > 0 && ftruncate(fd, (off_t)(head + body)) != 0)
            rc = fkv_io_error();
    } else if ((rc = fkv_temp_create(&tmp, store_path, SNAPSHOT_SUFFIX "-new", data_fd)) == FKV_OK) {
        fd = tmp.fd;
    }
    save_job job = {data_fd, fd, table, head, block_slots_for(cap), nblocks, front, 0, FKV_OK};
    pthread_t helper;
    int helped = rc == FKV_OK && body >= SAVE_HELPER_MIN &&
                 pthread_create(&helper, NULL, save_helper, &job) == 0;
    if (rc == FKV_OK && !helped)
        write_slots(&job);
    if (rc == FKV_OK)
        build_directory(&job);
    if (helped)
        pthread_join(helper, NULL);
    if (rc == FKV_OK)
        rc = job.rc;
    if (rc == FKV_OK)
        rc = write_front(fd, front, head, header);
    if (in_place) {
        close(fd);
    } else {
        if (rc == FKV_OK)
            rc = fkv_temp_install(&tmp, target);
        fkv_temp_discard(&tmp); /* also frees its path after a failed create */
    }
    free(target);
    free(front);
    return rc;
}

/* ---- a background snapshot: staged under the mutex, finished outside ------- */

int snapshot_stage(const char *store_path, int data_fd, const fkv_index *table,
                   fkv_tempfile *tmp)
{
    uint64_t cap = table->cap, nblocks = cap / block_slots_for(cap);
    int rc = fkv_temp_create(tmp, store_path, SNAPSHOT_SUFFIX "-new", data_fd);
    if (rc == FKV_OK)
        rc = fkv_write_at(tmp->fd, table->slots, (size_t)cap * SNAP_SLOT, body_offset(nblocks));
    if (rc != FKV_OK)
        fkv_temp_discard(tmp);
    return rc;
}

/* The directory is built from the slots read back one block at a time
 * (from the page cache, which holds them dirty): 64 KiB of buffer, not a
 * second table. */
int snapshot_finish_staged(const char *store_path, int data_fd, const uint8_t *header,
                           uint64_t cap, fkv_tempfile *tmp)
{
    uint64_t per = block_slots_for(cap), nblocks = cap / per;
    size_t bytes = (size_t)per * SNAP_SLOT;
    snapshot_prepared p = {*tmp, NULL, (size_t)body_offset(nblocks)};
    tmp->fd = -1;
    tmp->path = NULL;
    p.front = (uint8_t *)malloc(p.head);
    fkv_slot *block = (fkv_slot *)malloc(bytes);
    int rc = p.front && block ? FKV_OK : FKV_ENOMEM;
    for (uint64_t b = 0; rc == FKV_OK && b < nblocks; b++) {
        size_t got = 0;
        rc = fkv_read_at(p.tmp.fd, block, bytes, p.head + b * bytes, &got, FKV_MAY_WAIT);
        if (rc == FKV_OK && got != bytes)
            rc = FKV_EIO; /* someone cut the new file short */
        if (rc == FKV_OK)
            directory_entry(p.front, b, block, per);
    }
    free(block);
    return snapshot_finish_prepared(store_path, data_fd, header, &p, rc);
}

/* ---- a copy's snapshot: prepared beside other work, finished after it ------ */

int snapshot_prepare(const char *store_path, int like_fd, fkv_index *table, snapshot_prepared *p)
{
    uint64_t cap = table->cap, per = block_slots_for(cap), nblocks = cap / per;
    p->tmp.fd = -1;
    p->tmp.path = NULL;
    p->head = (size_t)body_offset(nblocks);
    p->front = (uint8_t *)malloc(p->head);
    int rc = p->front ? fkv_temp_create(&p->tmp, store_path, SNAPSHOT_SUFFIX "-new", like_fd)
                      : FKV_ENOMEM;
    if (rc == FKV_OK)
        rc = fkv_write_at(p->tmp.fd, table->slots, (size_t)cap * SNAP_SLOT, p->head);
    if (rc == FKV_OK) {
        fkv_start_writeback(p->tmp.fd, p->head, cap * SNAP_SLOT); /* the flush waits less */
        for (uint64_t b = 0; b < nblocks; b++)
            directory_entry(p->front, b, table->slots + b * per, per);
    }
    fkv_index_free(table);
    if (rc != FKV_OK) {
        fkv_temp_discard(&p->tmp);
        free(p->front);
        p->front = NULL;
    }
    return rc;
}

int snapshot_finish_prepared(const char *store_path, int data_fd, const uint8_t *header,
                             snapshot_prepared *p, int rc)
{
    char *target = fkv_path_with_suffix(store_path, SNAPSHOT_SUFFIX);
    if (rc == FKV_OK && !target)
        rc = FKV_ENOMEM;
    if (rc == FKV_OK && data_fd >= 0)
        rc = fkv_flush(data_fd); /* see write_slots */
    if (rc == FKV_OK)
        rc = write_front(p->tmp.fd, p->front, p->head, header);
    if (rc == FKV_OK)
        rc = fkv_temp_install(&p->tmp, target);
    fkv_temp_discard(&p->tmp); /* also frees its path after a failed create */
    free(target);
    free(p->front);
    p->front = NULL;
    return rc;
}

void snapshot_forget(const char *path)
{
    char *p = fkv_path_with_suffix(path, SNAPSHOT_SUFFIX);
    if (p)
        unlink(p);
    free(p);
}

void snapshot_tidy(const char *path)
{
    char *p = fkv_path_with_suffix(path, SNAPSHOT_SUFFIX "-new");
    if (p)
        unlink(p); /* a save that never finished */
    free(p);
    if ((p = fkv_path_with_suffix(path, SNAPSHOT_SUFFIX)) != NULL)
        fkv_replace_recover(p); /* one stopped in its replace */
    free(p);
}

