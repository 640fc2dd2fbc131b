/*
 * snapshot_load.c - reading a snapshot back: its front (header and block
 * directory) checked against the data file at open, and its whole table
 * read and checked at once when nothing lazy is left to gain. The format
 * and the checks are described in snapshot.c.
 */
#include "snapshot_parts.h"
#include "crc32c.h"
#include "table_check.h"

#include <stdlib.h>

/* ---- loading ---------------------------------------------------------------- */

#define LOAD_CHUNK (256u * 1024u) /* bytes of table read and checked at a time */

/* A table this large is read by a helper thread ahead of the checks: the
 * copy from the page cache (and the kernel zeroing the fresh pages it lands
 * in, together half of a fresh process's open) then overlaps the checksum
 * and the table check wherever a second core is free. Below it, starting a
 * thread costs more than it saves. */
#define AHEAD_MIN (4u * LOAD_CHUNK)

typedef struct table_reader {
    int fd;
    uint64_t body_off; /* where the slots start in the file */
    uint8_t *dst;
    size_t body;
    pthread_mutex_t mu;
    pthread_cond_t moved;
    size_t ready;   /* bytes read so far, published under mu */
    int failed;     /* the reader hit an error or a short file */
    int stop;       /* the checker gave up: read no further */
} table_reader;

static size_t chunk_at(size_t body, size_t done)
{
    return body - done < LOAD_CHUNK ? body - done : LOAD_CHUNK;
}

/* Read n bytes of the table at done into slots + done: 1 if all came. */
static int read_chunk(int fd, uint64_t body_off, uint8_t *slots, size_t done, size_t n)
{
    size_t got;
    return fkv_read_at(fd, slots + done, n, body_off + done, &got, FKV_MAY_WAIT) == FKV_OK &&
           got == n;
}

static void *read_ahead(void *arg)
{
    table_reader *r = (table_reader *)arg;
    for (size_t done = 0; done < r->body;) {
        size_t n = chunk_at(r->body, done);
        int ok = read_chunk(r->fd, r->body_off, r->dst, done, n);
        done += n;
        pthread_mutex_lock(&r->mu);
        if (ok)
            r->ready = done;
        else
            r->failed = 1;
        int stop = r->stop || !ok;
        pthread_cond_signal(&r->moved);
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
    }
    return NULL;
}

/* Wait until the reader has read up to want bytes; 0 if it failed. */
static int wait_for(table_reader *r, size_t want)
{
    pthread_mutex_lock(&r->mu);
    while (r->ready < want && !r->failed)
        pthread_cond_wait(&r->moved, &r->mu);
    int ok = r->ready >= want;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Read the table into slots chunk by chunk, each block's CRC compared with
 * its entry in block and each chunk checked (c) while in the cache.
 * SNAP_LOADED, or why not. */
static snapshot_reason read_table(int fd, uint64_t body_off, fkv_slot *slots, uint64_t cap,
                                  const snapshot_block *block, size_t block_bytes, table_check *c)
{
    size_t body = (size_t)cap * SNAP_SLOT;
    table_reader r;
    memset(&r, 0, sizeof r);
    r.fd = fd;
    r.body_off = body_off;
    r.dst = (uint8_t *)slots;
    r.body = body;
    pthread_t helper;
    int ahead = body >= AHEAD_MIN && pthread_mutex_init(&r.mu, NULL) == 0;
    if (ahead && pthread_cond_init(&r.moved, NULL) != 0) {
        pthread_mutex_destroy(&r.mu);
        ahead = 0;
    }
    if (ahead && pthread_create(&helper, NULL, read_ahead, &r) != 0) {
        pthread_cond_destroy(&r.moved);
        pthread_mutex_destroy(&r.mu);
        ahead = 0;
    }
    snapshot_reason rc = SNAP_LOADED;
    for (size_t done = 0; done < body && rc == SNAP_LOADED;) {
        size_t n = chunk_at(body, done); /* a whole number of blocks */
        uint8_t *at = (uint8_t *)slots + done;
        if (ahead ? !wait_for(&r, done + n) : !read_chunk(fd, body_off, (uint8_t *)slots, done, n)) {
            rc = SNAP_UNREADABLE;
            break;
        }
        for (size_t b = 0; b < n; b += block_bytes)
            if (fkv_crc32c(0, at + b, block_bytes) != block[(done + b) / block_bytes].crc)
                rc = SNAP_BAD_CHECKSUM;
        table_check_slots(c, (const fkv_slot *)at, done / SNAP_SLOT, n / SNAP_SLOT);
        done += n;
    }
    if (ahead) {
        pthread_mutex_lock(&r.mu);
        r.stop = 1;
        pthread_mutex_unlock(&r.mu);
        pthread_join(helper, NULL);
        pthread_cond_destroy(&r.moved);
        pthread_mutex_destroy(&r.mu);
    }
    return rc;
}

int snapshot_load_all(snapshot_lazy *L, fkv_slot *slots, uint64_t cap)
{
    table_check check;
    table_check_start(&check, cap, L->end);
    snapshot_reason why = read_table(L->fd, L->body_off, slots, cap, L->block,
                                     (size_t)L->block_slots * SNAP_SLOT, &check);
    if (why == SNAP_LOADED && !table_check_done(&check, L->live, L->deleted, L->n_ttl))
        why = SNAP_BAD_TABLE;
    if (why == SNAP_LOADED)
        return FKV_OK;
    if (!L->failed)
        L->failed = why;
    return FKV_ESNAPSHOT;
}

int snapshot_record_ends_at(int fd, uint64_t end, uint64_t tail_off, uint32_t tail_crc)
{
    if (end == FKV_FILE_HEADER_SIZE)
        return tail_off == 0 && tail_crc == 0;
    if (tail_off < FKV_FILE_HEADER_SIZE || tail_off + FKV_REC_HEADER_SIZE > end ||
        end - tail_off > FKV_REC_MAX)
        return 0;
    uint8_t *rec = (uint8_t *)malloc(FKV_REC_MAX);
    if (!rec)
        return 0;
    size_t got;
    fkv_rec_header h;
    int ok = fkv_read_at(fd, rec, (size_t)(end - tail_off), tail_off, &got,
                         FKV_MAY_WAIT) == FKV_OK &&
             got == end - tail_off && fkv_record_header_decode(rec, &h) == FKV_OK &&
             tail_off + fkv_record_size(&h) == end && h.crc == tail_crc &&
             fkv_record_checksum_ok(rec, &h);
    free(rec);
    return ok;
}

/* Read and check the header (into h) and block CRCs of the snapshot open
 * on fd for a data file of size bytes: SNAP_LOADED with *out filled (the
 * fd passes to it), or why not. */
static snapshot_reason check_front(const fkv_store *s, int fd, uint64_t size, uint8_t *h,
                       snapshot_lazy **out)
{
    struct stat st;
    size_t got;
    if (fstat(fd, &st) != 0 || fkv_read_at(fd, h, SNAP_HEADER, 0, &got, FKV_MAY_WAIT) != FKV_OK)
        return SNAP_UNREADABLE;
    if (got >= SNAP_HEADER && memcmp(h, SNAP_UNFINISHED, 8) == 0)
        return SNAP_UNFINISHED_SAVE;
    if (got < SNAP_HEADER || memcmp(h, SNAP_MAGIC, 8) != 0 || fkv_load32(h + 8) != SNAP_VERSION ||
        fkv_load32(h + 12) != hash_identity() || fkv_load32(h + 16) != SNAP_SLOT)
        return SNAP_BAD_HEADER;
    uint64_t cap = fkv_load64(h + 56);
    if (cap < 16 || cap > FKV_INDEX_MAX_CAP || (cap & (cap - 1)) != 0)
        return SNAP_BAD_SIZE;
    uint64_t per = block_slots_for(cap), nblocks = cap / per, head = body_offset(nblocks);
    if (fkv_load32(h + 20) != per)
        return SNAP_BAD_HEADER;
    if ((uint64_t)st.st_size < head + cap * SNAP_SLOT) /* hints may follow */
        return SNAP_BAD_SIZE;
    if (fkv_load64(h + 24) != s->ident.created_ms || fkv_load32(h + 32) != s->ident.id)
        return SNAP_OTHER_FILE;
    uint64_t end = fkv_load64(h + 40);
    fkv_descent descent;
    if (!fkv_lineage_descends(&s->lineage, fkv_load64(h + 96), end, &descent))
        return SNAP_OTHER_HISTORY;
    if (end < FKV_FILE_HEADER_SIZE || end > size)
        return SNAP_BAD_END;
    snapshot_lazy *L = (snapshot_lazy *)calloc(1, sizeof *L);
    uint8_t *front = (uint8_t *)malloc((size_t)head);
    if (L) {
        L->fd = -1; /* the caller's until it passes to L */
        L->block = (snapshot_block *)malloc((size_t)nblocks * sizeof *L->block);
        L->state = (uint8_t *)calloc((size_t)nblocks, 1);
    }
    snapshot_reason status = SNAP_NO_MEMORY;
    if (!L || !front || !L->block || !L->state)
        goto fail;
    status = SNAP_UNREADABLE;
    memcpy(front, h, SNAP_HEADER);
    if (fkv_read_at(fd, front + SNAP_HEADER, (size_t)(head - SNAP_HEADER), SNAP_HEADER, &got,
                    FKV_MAY_WAIT) != FKV_OK ||
        got != head - SNAP_HEADER)
        goto fail;
    status = SNAP_BAD_CHECKSUM;
    if (fkv_crc32c(0, front, (size_t)head - 4) != fkv_load32(front + head - 4))
        goto fail;
    uint64_t live = 0, deleted = 0, ttl = 0;
    for (uint64_t b = 0; b < nblocks; b++) {
        const uint8_t *e = front + SNAP_HEADER + SNAP_BLOCK_ENTRY * b;
        snapshot_block *k = &L->block[b];
        k->crc = fkv_load32(e);
        live += k->live = fkv_load32(e + 4);
        deleted += k->deleted = fkv_load32(e + 8);
        ttl += k->ttl = fkv_load32(e + 12);
    }
    L->live = fkv_load64(h + 64);
    L->deleted = fkv_load64(h + 72);
    L->n_ttl = fkv_load64(h + 88);
    L->live_bytes = fkv_load64(h + 80);
    L->tail_off = fkv_load64(h + 48);
    L->tail_crc = fkv_load32(h + 36);
    status = SNAP_BAD_TABLE;
    if (L->live_bytes < FKV_FILE_HEADER_SIZE || L->live_bytes > end || L->n_ttl > L->live ||
        L->live > cap || L->deleted > cap || (L->live + L->deleted) * 4 > cap * 3 ||
        live != L->live || deleted != L->deleted || ttl != L->n_ttl)
        goto fail;
    status = SNAP_TAIL_MISMATCH;
    /* the record that ends at E: intact, and the one the snapshot saw */
    if (!snapshot_record_ends_at(s->file->fd, end, fkv_load64(h + 48), fkv_load32(h + 36)))
        goto fail;
    L->front_crc = fkv_load32(front + head - 4);
    L->descent = descent;
    L->body_end = head + cap * SNAP_SLOT;
    L->file_bytes = (uint64_t)st.st_size;
    L->dev = (uint64_t)st.st_dev;
    L->ino = (uint64_t)st.st_ino;
    free(front);
    L->fd = fd;
    L->body_off = head;
    L->block_slots = per;
    while ((1ull << L->block_bits) < per)
        L->block_bits++;
    L->nblocks = nblocks;
    L->end = end;
    *out = L;
    return SNAP_LOADED;
fail:
    free(front);
    snapshot_lazy_free(L);
    return status;
}

snapshot_reason snapshot_load_front(fkv_store *s, uint64_t size, snapshot_lazy **out,
                                    fkv_index *table)
{
    if (s->ident.version != FKV_FORMAT_VERSION)
        return SNAP_OLD_FORMAT;
    char *path = fkv_path_with_suffix(s->path, SNAPSHOT_SUFFIX);
    if (!path)
        return SNAP_NO_MEMORY;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return errno == ENOENT ? SNAP_MISSING : SNAP_UNREADABLE;
    uint8_t h[SNAP_HEADER];
    snapshot_lazy *L = NULL;
    snapshot_reason status = check_front(s, fd, size, h, &L);
    fkv_index loaded = {NULL, 0, 0, 0, 0};
    if (status == SNAP_LOADED && fkv_index_alloc(&loaded, fkv_load64(h + 56)) != FKV_OK)
        status = SNAP_NO_MEMORY;
    /* read a block at a time (snapshot_blocks.c), unless all at once */
    fkv_map_prefer(loaded.slots, (size_t)loaded.cap * sizeof(fkv_slot), FKV_PAGES_SMALL);
    if (status != SNAP_LOADED) {
        fkv_index_free(&loaded);
        snapshot_lazy_free(L); /* closes fd */
        if (!L)
            close(fd);
        return status;
    }
    loaded.live = L->live;
    loaded.deleted = L->deleted;
    *table = loaded;
    *out = L;
    return SNAP_LOADED;
}

void snapshot_lazy_free(snapshot_lazy *L)
{
    if (!L)
        return;
    if (L->fd >= 0)
        close(L->fd);
    free(L->state);
    free(L->block);
    free(L->pend);
    free(L->pend_head);
    free(L->pend_last);
    free(L);
}
