/*
 * snapshot.c - the index saved beside the data file, so that reopening a
 * store reads one file instead of scanning the whole log.
 *
 * At a clean close and after compact() the store flushes the data file,
 * then writes its hash table and counters to <data file>.idx (over the one
 * there, in place, when the table's size is unchanged; else through a
 * temporary file that is flushed and renamed into place); a store in use
 * also saves one now and then, always through a temporary file
 * (snapshot_background.c). The snapshot covers
 * the log up to its end E at that moment. Opening checks its header and
 * scans only the log past E, as a normal open scans (dropping a torn tail).
 * A snapshot is a cache: when any check fails, the store says why in its
 * stats and scans the whole log; it never fails an open.
 *
 * Layout, little-endian:
 *    0  8  magic "FKVSNAP\n"
 *    8  u32 snapshot format version (SNAP_VERSION)
 *   12  u32 hash identity: fkv_hash of a fixed string (a changed hash function
 *           would place keys in other slots)
 *   16  u32 slot size (8)
 *   20  u32 slots per block: the smaller of the slot count and SNAP_BLOCK_SLOTS
 *   24  u64 creation time and u32 file id of the data file (record.h)
 *   36  u32 stored CRC of the record that ends at E (0 if the log is empty)
 *   40  u64 E, bytes of the data file covered
 *   48  u64 offset of the record that ends at E (0 if the log is empty)
 *   56  u64 slots, a power of two
 *   64  u64 entries, 72 u64 deleted markers, 80 u64 live bytes, 88 u64
 *           entries with a deadline
 *   96  u64 the session that wrote the log up to E last (lineage.h)
 *  104  per block of slots (n = slots / slots per block), 16 bytes each:
 *           u32 CRC-32C of its slots, u32 entries, u32 deleted markers,
 *           u32 entries with a deadline
 *  104 + 16n  u32 CRC-32C of everything before it
 *  108 + 16n  the slots, 8 bytes each (hash_index.h)
 *  then, after a clean reopen and a crash, perhaps frames of hints naming
 *           the records appended past E (snapshot_hints.c)
 *
 * The checks, so that no snapshot can produce a wrong read. At open: magic,
 * version, hash identity, slot and block size; the file's size against its
 * slot count (hints may follow the slots); the CRC of header and block CRCs; the data file's identity
 * (another store's snapshot, or one from before a compaction or repair,
 * names another file); its history (the session named still in the data
 * file's list, and every later one begun at or past E: lineage.h says why
 * that tells a copy written differently since apart); E inside the data file, and the record ending at E
 * re-read and intact with the CRC the snapshot recorded (a snapshot newer
 * than the log, or an older log under a newer snapshot, fails here); counts
 * that fit the table (load at most three quarters) and the blocks' counts
 * adding up to them. Then each block of slots, before any slot of it is
 * used (snapshot_blocks.c; all at once when the log goes on past E): its
 * CRC, every entry's offset inside [header, E), markers well formed, its
 * counts as stated, and every entry reachable from its home slot by
 * probing. The log past E (after a crash) is scanned at open as always,
 * but for the records hints name (checked when applied); its records are
 * applied when their home block is first needed. What is left
 * unchecked is what the records themselves guard: a read still confirms
 * the key and the checksum on disk.
 */
#include "store_private.h"
#include "crc32c.h"
#include "table_check.h"

#include <stdlib.h>

#define SNAP_SUFFIX SNAPSHOT_SUFFIX
#define SNAP_VERSION 3u
#define SNAP_HEADER SNAPSHOT_HEADER_BYTES
#define SNAP_SLOT 8u
static const uint8_t SNAP_MAGIC[8] = {'F', 'K', 'V', 'S', 'N', 'A', 'P', '\n'};
/* Put over the magic before a snapshot is written over in place, so that
 * a save cut short is refused at open, and said so. */
static const uint8_t SNAP_UNFINISHED[8] = {'F', 'K', 'V', 'S', 'N', 'A', 'P', '~'};

/* Slots per block: 64 KiB, what a read's first lookup in a block loads. */
#define SNAP_BLOCK_SLOTS 8192u
#define SNAP_BLOCK_ENTRY 16u /* bytes per block before the slots */

static uint64_t block_slots_for(uint64_t cap)
{
    return cap < SNAP_BLOCK_SLOTS ? cap : SNAP_BLOCK_SLOTS;
}

/* Offset of the slots in a snapshot of nblocks blocks. */
static uint64_t body_offset(uint64_t nblocks)
{
    return SNAP_HEADER + SNAP_BLOCK_ENTRY * nblocks + 4;
}

static uint32_t hash_identity(void)
{
    static const char probe[] = "fastkv index hash identity";
    return fkv_hash(probe, sizeof probe - 1);
}

const char *fkv_snapshot_status_name(int status)
{
    switch (status) {
    case SNAP_NOT_TRIED: return "not tried";
    case SNAP_LOADED: return "loaded";
    case SNAP_MISSING: return "missing";
    case SNAP_OLD_FORMAT: return "data file of an older format: rewritten in the current one at its next compaction or close";
    case SNAP_OTHER_HISTORY: return "made for another history of the data file";
    case SNAP_UNREADABLE: return "unreadable";
    case SNAP_BAD_HEADER: return "bad header";
    case SNAP_BAD_SIZE: return "size does not match its slot count";
    case SNAP_BAD_CHECKSUM: return "checksum failed";
    case SNAP_OTHER_FILE: return "made for another data file";
    case SNAP_BAD_END: return "covers more than the data file holds";
    case SNAP_TAIL_MISMATCH: return "the last record it covers differs in the data file";
    case SNAP_BAD_TABLE: return "table failed its checks";
    case SNAP_NO_MEMORY: return "out of memory";
    case SNAP_UNFINISHED_SAVE: return "its save was cut short";
    case SNAP_BAD_HINT: return "a record its hints named was not as they said";
    default: return "unknown";
    }
}

/* ---- writing ---------------------------------------------------------------- */

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

static void build_directory(save_job *j)
{
    size_t bytes = (size_t)j->per * SNAP_SLOT;
    for (;;) {
        uint64_t b = fkv_atomic_fetch_add(&j->next_block, 1, FKV_RELAXED);
        if (b >= j->nblocks)
            return;
        const fkv_slot *slots = j->table->slots + b * j->per;
        uint32_t live, deleted, ttl;
        table_count(slots, (size_t)j->per, &live, &deleted, &ttl);
        uint8_t *e = j->front + SNAP_HEADER + SNAP_BLOCK_ENTRY * b;
        fkv_store32(e, fkv_crc32c(0, slots, bytes)); /* already the file's layout */
        fkv_store32(e + 4, live);
        fkv_store32(e + 8, deleted);
        fkv_store32(e + 12, ttl);
    }
}

static void *save_helper(void *arg)
{
    write_slots((save_job *)arg);
    build_directory((save_job *)arg);
    return NULL;
}

/* The snapshot in place, opened to be written over when it has the size
 * this one needs (and perhaps hints after it, snapshot_hints.c, in *more
 * bytes): rewriting pages the page cache holds costs about a third of
 * filling a new file's (16 MB on tmpfs: 2.5-5 ms against 7-14). Not a link
 * (the write would land in another file) nor a file with other names. */
static int open_for_overwrite(const char *target, uint64_t size, uint64_t *more)
{
    int fd = open(target, O_RDWR | O_CLOEXEC | FKV_O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
                    (uint64_t)st.st_size < size)) {
        close(fd);
        fd = -1;
    }
    *more = fd >= 0 ? (uint64_t)st.st_size - size : 0;
    return fd;
}

int snapshot_save(const char *store_path, int data_fd, const uint8_t *header,
                  fkv_index *table, snapshot_table kind)
{
#if !FKV_LITTLE_ENDIAN
#error "snapshot.c writes the table as it lies in memory: add a byte swap for this host"
#endif
    uint64_t cap = table->cap, nblocks = cap / block_slots_for(cap);
    size_t head = (size_t)body_offset(nblocks), body = (size_t)cap * SNAP_SLOT;
    uint8_t *front = (uint8_t *)malloc(head);
    char *target = fkv_path_with_suffix(store_path, SNAP_SUFFIX);
    if (!front || !target) {
        free(front);
        free(target);
        return FKV_ENOMEM;
    }
    /* Written over in place only by a store saving its own table (close,
     * compact): a crash then costs the next open a full scan. A snapshot
     * saved in the background, while the process may die at any moment,
     * goes to a new file renamed into place, so the one before stays
     * whole until then. */
    fkv_tempfile tmp = {-1, NULL};
    uint64_t hinted = 0;
    int fd = kind == SNAPSHOT_OF_STORE ? open_for_overwrite(target, head + body, &hinted) : -1;
    int in_place = fd >= 0, rc = FKV_OK;
    if (in_place) {
        rc = fkv_write_at(fd, SNAP_UNFINISHED, sizeof SNAP_UNFINISHED, 0);
        /* the hints after it hold for the snapshot being replaced */
        if (rc == FKV_OK && hinted > 0 && ftruncate(fd, (off_t)(head + body)) != 0)
            rc = fkv_io_error();
    } else if ((rc = fkv_temp_create(&tmp, store_path, SNAP_SUFFIX "-new", data_fd)) == FKV_OK) {
        fd = tmp.fd;
    }
    save_job job = {data_fd, fd, table, head, block_slots_for(cap), nblocks, front, 0, FKV_OK};
    pthread_t helper;
    int helped = rc == FKV_OK && kind == SNAPSHOT_OF_STORE && body >= SAVE_HELPER_MIN &&
                 pthread_create(&helper, NULL, save_helper, &job) == 0;
    if (rc == FKV_OK && !helped)
        write_slots(&job);
    if (rc == FKV_OK)
        build_directory(&job);
    if (helped)
        pthread_join(helper, NULL);
    if (rc == FKV_OK)
        rc = job.rc;
    memcpy(front, header, SNAP_HEADER);
    fkv_store32(front + head - 4, fkv_crc32c(0, front, head - 4));
    if (kind == SNAPSHOT_OF_COPY)
        fkv_index_free(table); /* its memory goes back before the flushes */
    if (rc == FKV_OK)
        rc = fkv_write_at(fd, front, head, 0);
    if (rc == FKV_OK)
        rc = fkv_flush(fd);
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

int snapshot_write(fkv_store *s)
{
    if (s->ident.version != FKV_FORMAT_VERSION || s->ix.cap == 0)
        return FKV_OK; /* an older format: no history to bind a snapshot to */
    if (s->lazy)
        return FKV_OK; /* the table is not all in memory: the one on disk stays */
    snapshot_join(s, FKV_MAY_WAIT); /* the one running in the background is older */
    hints_stop(s); /* they hold for the snapshot being replaced */
    uint8_t header[SNAP_HEADER];
    snapshot_header(s, header);
    int rc = snapshot_save(s->path, s->file->fd, header, &s->ix, SNAPSHOT_OF_STORE);
    if (rc == FKV_OK) {
        s->snapshots_written++;
        snapshot_covers(s, s->end);
    }
    return rc;
}

void snapshot_forget(const char *path)
{
    char *p = fkv_path_with_suffix(path, SNAP_SUFFIX);
    if (p)
        unlink(p);
    free(p);
}

void snapshot_tidy(const char *path)
{
    char *p = fkv_path_with_suffix(path, SNAP_SUFFIX "-new");
    if (p)
        unlink(p); /* a save that never finished */
    free(p);
    if ((p = fkv_path_with_suffix(path, SNAP_SUFFIX)) != NULL)
        fkv_replace_recover(p); /* one stopped in its replace */
    free(p);
}

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
 * its entry in block and each chunk checked (c) while in the cache. FKV_OK, or a
 * SNAP_* status as a negative number. */
static int read_table(int fd, uint64_t body_off, fkv_slot *slots, uint64_t cap,
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
    int rc = FKV_OK;
    for (size_t done = 0; done < body && rc == FKV_OK;) {
        size_t n = chunk_at(body, done); /* a whole number of blocks */
        uint8_t *at = (uint8_t *)slots + done;
        if (ahead ? !wait_for(&r, done + n) : !read_chunk(fd, body_off, (uint8_t *)slots, done, n)) {
            rc = -SNAP_UNREADABLE;
            break;
        }
        for (size_t b = 0; b < n; b += block_bytes)
            if (fkv_crc32c(0, at + b, block_bytes) != block[(done + b) / block_bytes].crc)
                rc = -SNAP_BAD_CHECKSUM;
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
    int rc = read_table(L->fd, L->body_off, slots, cap, L->block,
                        (size_t)L->block_slots * SNAP_SLOT, &check);
    if (rc != FKV_OK)
        return -rc;
    if (!table_check_done(&check, L->live, L->deleted, L->n_ttl))
        return SNAP_BAD_TABLE;
    return SNAP_LOADED;
}

int snapshot_record_ends_at(const fkv_store *s, uint64_t end, uint64_t tail_off,
                            uint32_t tail_crc)
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
    int ok = fkv_read_at(s->file->fd, rec, (size_t)(end - tail_off), tail_off, &got,
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
static int check_front(const fkv_store *s, int fd, uint64_t size, uint8_t *h,
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
    int status = SNAP_NO_MEMORY;
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
    uint64_t live_bytes = fkv_load64(h + 80);
    status = SNAP_BAD_TABLE;
    if (live_bytes < FKV_FILE_HEADER_SIZE || live_bytes > end || L->n_ttl > L->live ||
        L->live > cap || L->deleted > cap || (L->live + L->deleted) * 4 > cap * 3 ||
        live != L->live || deleted != L->deleted || ttl != L->n_ttl)
        goto fail;
    status = SNAP_TAIL_MISMATCH;
    /* the record that ends at E: intact, and the one the snapshot saw */
    if (!snapshot_record_ends_at(s, end, fkv_load64(h + 48), fkv_load32(h + 36)))
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

int snapshot_load(fkv_store *s, uint64_t size, uint64_t *covered)
{
    if (s->ident.version != FKV_FORMAT_VERSION)
        return SNAP_OLD_FORMAT;
    char *path = fkv_path_with_suffix(s->path, SNAP_SUFFIX);
    if (!path)
        return SNAP_NO_MEMORY;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return errno == ENOENT ? SNAP_MISSING : SNAP_UNREADABLE;
    uint8_t h[SNAP_HEADER];
    snapshot_lazy *L = NULL;
    int status = check_front(s, fd, size, h, &L);
    fkv_index loaded = {NULL, 0, 0, 0, 0};
    if (status == SNAP_LOADED && fkv_index_alloc(&loaded, fkv_load64(h + 56)) != FKV_OK)
        status = SNAP_NO_MEMORY;
    /* read a block at a time (snapshot_blocks.c), unless all at once */
    fkv_map_prefer(loaded.slots, (size_t)loaded.cap * sizeof(fkv_slot), FKV_PAGES_SMALL);
    if (status == SNAP_LOADED && L->end < size &&
        snapshot_defer_start(L, size - L->end, loaded.cap) != FKV_OK)
        status = SNAP_NO_MEMORY; /* the scan of the log past E keeps its records */
    if (status != SNAP_LOADED) {
        fkv_index_free(&loaded);
        snapshot_lazy_free(L); /* closes fd */
        if (!L)
            close(fd);
        return status;
    }
    loaded.live = L->live;
    loaded.deleted = L->deleted;
    fkv_index_free(&s->ix);
    s->ix = loaded;
    s->end = L->end;
    s->live_bytes = fkv_load64(h + 80);
    s->n_ttl = L->n_ttl;
    s->tail_off = fkv_load64(h + 48);
    s->tail_crc = fkv_load32(h + 36);
    *covered = L->end;
    s->lazy = L;
    return SNAP_LOADED;
}
