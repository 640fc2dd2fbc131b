/*
 * snapshot.c - the index saved beside the data file, so that reopening a
 * store reads one file instead of scanning the whole log.
 *
 * At a clean close and after compact() the store flushes the data file,
 * then writes its hash table and counters to <data file>.idx (through a
 * temporary file that is flushed and renamed into place). The snapshot
 * covers the log up to its end E at that moment. Opening loads it, checks
 * it, and scans only the log past E, as a normal open scans (dropping a torn
 * tail). A snapshot is a cache: when any check fails, open says why in its
 * stats and scans the whole log; it never fails an open.
 *
 * Layout, little-endian:
 *    0  8  magic "FKVSNAP\n"
 *    8  u32 snapshot format version (SNAP_VERSION)
 *   12  u32 hash identity: fkv_hash of a fixed string (a changed hash function
 *           would place keys in other slots)
 *   16  u32 slot size (8)
 *   20  u32 zero
 *   24  u64 creation time and u32 file id of the data file (record.h)
 *   36  u32 stored CRC of the record that ends at E (0 if the log is empty)
 *   40  u64 E, bytes of the data file covered
 *   48  u64 offset of the record that ends at E (0 if the log is empty)
 *   56  u64 slots, a power of two
 *   64  u64 entries, 72 u64 deleted markers, 80 u64 live bytes, 88 u64
 *           entries with a deadline
 *   96  the slots, 8 bytes each (hash_index.h)
 *  end  u32 CRC-32C of everything before it
 *
 * The checks, so that no snapshot can produce a wrong read: magic, version,
 * hash identity and slot size; the file's size against its slot count; the
 * CRC; the data file's identity (another store's snapshot, or one from
 * before a compaction or repair, names another file); E inside the data
 * file, and the record ending at E re-read and intact with the CRC the
 * snapshot recorded (a snapshot newer than the log, or an older log under a
 * newer snapshot, fails here); then a pass over the table: every entry's
 * offset inside [header, E), markers well formed, counts as stated, load
 * at most three quarters, and every entry reachable from its home slot by
 * probing. What is left unchecked is what the records themselves guard: a
 * read still confirms the key and the checksum on disk.
 */
#include "store_private.h"
#include "crc32c.h"
#include "table_check.h"

#include <stdlib.h>

#define SNAP_SUFFIX ".idx"
#define SNAP_VERSION 1u
#define SNAP_HEADER SNAPSHOT_HEADER_BYTES
#define SNAP_SLOT 8u
static const uint8_t SNAP_MAGIC[8] = {'F', 'K', 'V', 'S', 'N', 'A', 'P', '\n'};

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
    case SNAP_NO_FILE_ID: return "data file has no id (format 1): written at the next compaction";
    case SNAP_UNREADABLE: return "unreadable";
    case SNAP_BAD_HEADER: return "bad header";
    case SNAP_BAD_SIZE: return "size does not match its slot count";
    case SNAP_BAD_CHECKSUM: return "checksum failed";
    case SNAP_OTHER_FILE: return "made for another data file";
    case SNAP_BAD_END: return "covers more than the data file holds";
    case SNAP_TAIL_MISMATCH: return "the last record it covers differs in the data file";
    case SNAP_BAD_TABLE: return "table failed its checks";
    case SNAP_NO_MEMORY: return "out of memory";
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
}

int snapshot_save(const char *store_path, int like_fd, const uint8_t *header,
                  const fkv_slot *table, uint64_t cap)
{
    uint8_t trailer[4];
    size_t body = (size_t)cap * SNAP_SLOT;
    uint32_t crc = fkv_crc32c(0, header, SNAP_HEADER);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint8_t *slots = (const uint8_t *)table; /* already the file's layout */
#else
#error "snapshot.c writes the table as it lies in memory: add a byte swap for this host"
#endif
    crc = fkv_crc32c(crc, slots, body);
    fkv_store32(trailer, crc);
    char *target = fkv_path_with_suffix(store_path, SNAP_SUFFIX);
    fkv_tempfile tmp;
    int rc = target ? fkv_temp_create(&tmp, store_path, SNAP_SUFFIX "-new", like_fd) : FKV_ENOMEM;
    if (rc == FKV_OK)
        rc = fkv_write_at(tmp.fd, header, SNAP_HEADER, 0);
    if (rc == FKV_OK)
        rc = fkv_write_at(tmp.fd, slots, body, SNAP_HEADER);
    if (rc == FKV_OK)
        rc = fkv_write_at(tmp.fd, trailer, sizeof trailer, SNAP_HEADER + body);
    if (rc == FKV_OK)
        rc = fkv_flush(tmp.fd);
    if (rc == FKV_OK)
        rc = fkv_temp_install(&tmp, target);
    if (target)
        fkv_temp_discard(&tmp);
    free(target);
    return rc;
}

int snapshot_write(fkv_store *s)
{
    if (s->ident.id == 0 || s->ix.cap == 0)
        return FKV_OK; /* a format 1 file: no identity to bind a snapshot to */
    snapshot_join(s, FKV_MAY_WAIT); /* the one running in the background is older */
    /* E must be durable: a snapshot that outlives the log it describes
     * would be refused at open anyway, but only if the record at E is lost. */
    int rc = fkv_flush(s->file->fd);
    if (rc != FKV_OK)
        return rc;
    uint8_t header[SNAP_HEADER];
    snapshot_header(s, header);
    rc = snapshot_save(s->path, s->file->fd, header, s->ix.slots, s->ix.cap);
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

const char *snapshot_leftover_suffix(void) { return SNAP_SUFFIX "-new"; }

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
static int read_chunk(int fd, uint8_t *slots, size_t done, size_t n)
{
    size_t got;
    return fkv_read_at(fd, slots + done, n, SNAP_HEADER + done, &got, FKV_MAY_WAIT) == FKV_OK &&
           got == n;
}

static void *read_ahead(void *arg)
{
    table_reader *r = (table_reader *)arg;
    for (size_t done = 0; done < r->body;) {
        size_t n = chunk_at(r->body, done);
        int ok = read_chunk(r->fd, r->dst, done, n);
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

/* Read the table into slots chunk by chunk, checking each and adding it to
 * *crc. FKV_OK, or SNAP_UNREADABLE as a negative number. */
static int read_table(int fd, fkv_slot *slots, uint64_t cap, uint32_t *crc, table_check *c)
{
    size_t body = (size_t)cap * SNAP_SLOT;
    table_reader r;
    memset(&r, 0, sizeof r);
    r.fd = fd;
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
    for (size_t done = 0; done < body;) {
        size_t n = chunk_at(body, done);
        uint8_t *at = (uint8_t *)slots + done;
        if (ahead ? !wait_for(&r, done + n) : !read_chunk(fd, (uint8_t *)slots, done, n)) {
            rc = -1;
            break;
        }
        *crc = fkv_crc32c(*crc, at, n);
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

/* The record that ends at E: intact, and the one the snapshot saw. */
static int tail_ok(const fkv_store *s, uint64_t end, uint64_t tail_off, uint32_t tail_crc)
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

int snapshot_load(fkv_store *s, uint64_t size, uint64_t *covered)
{
    if (s->ident.id == 0)
        return SNAP_NO_FILE_ID;
    char *path = fkv_path_with_suffix(s->path, SNAP_SUFFIX);
    if (!path)
        return SNAP_NO_MEMORY;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return errno == ENOENT ? SNAP_MISSING : SNAP_UNREADABLE;
    int status = SNAP_UNREADABLE;
    fkv_slot *slots = NULL;
    fkv_index loaded = {NULL, 0, 0, 0, 0};
    uint8_t h[SNAP_HEADER], trailer[4];
    struct stat st;
    size_t got;
    if (fstat(fd, &st) != 0 || fkv_read_at(fd, h, sizeof h, 0, &got, FKV_MAY_WAIT) != FKV_OK)
        goto done;
    status = SNAP_BAD_HEADER;
    if (got < sizeof h || memcmp(h, SNAP_MAGIC, 8) != 0 || fkv_load32(h + 8) != SNAP_VERSION ||
        fkv_load32(h + 12) != hash_identity() || fkv_load32(h + 16) != SNAP_SLOT ||
        fkv_load32(h + 20) != 0)
        goto done;
    uint64_t cap = fkv_load64(h + 56);
    status = SNAP_BAD_SIZE;
    if (cap < 16 || cap > FKV_INDEX_MAX_CAP || (cap & (cap - 1)) != 0 ||
        (uint64_t)st.st_size != SNAP_HEADER + cap * SNAP_SLOT + sizeof trailer)
        goto done;
    status = SNAP_OTHER_FILE;
    if (fkv_load64(h + 24) != s->ident.created_ms || fkv_load32(h + 32) != s->ident.id)
        goto done;
    uint64_t end = fkv_load64(h + 40);
    status = SNAP_BAD_END;
    if (end < FKV_FILE_HEADER_SIZE || end > size)
        goto done;
    status = SNAP_TAIL_MISMATCH;
    if (!tail_ok(s, end, fkv_load64(h + 48), fkv_load32(h + 36)))
        goto done;
    status = SNAP_NO_MEMORY;
    if (fkv_index_alloc(&loaded, cap) != FKV_OK)
        goto done;
    slots = loaded.slots;
    status = SNAP_UNREADABLE;
    uint32_t crc = fkv_crc32c(0, h, sizeof h);
    table_check check;
    table_check_start(&check, cap, end);
    size_t body = (size_t)cap * SNAP_SLOT;
    if (read_table(fd, slots, cap, &crc, &check) != FKV_OK ||
        fkv_read_at(fd, trailer, sizeof trailer, SNAP_HEADER + body, &got, FKV_MAY_WAIT) !=
            FKV_OK || got != sizeof trailer)
        goto done;
    status = SNAP_BAD_CHECKSUM;
    if (crc != fkv_load32(trailer))
        goto done;
    uint64_t live = fkv_load64(h + 64), deleted = fkv_load64(h + 72);
    uint64_t live_bytes = fkv_load64(h + 80), n_ttl = fkv_load64(h + 88);
    status = SNAP_BAD_TABLE;
    if (live_bytes < FKV_FILE_HEADER_SIZE || live_bytes > end ||
        !table_check_done(&check, live, deleted, n_ttl))
        goto done;
    loaded.live = live;
    loaded.deleted = deleted;
    fkv_index_free(&s->ix);
    s->ix = loaded;
    slots = NULL;
    s->end = end;
    s->live_bytes = live_bytes;
    s->n_ttl = n_ttl;
    s->tail_off = fkv_load64(h + 48);
    s->tail_crc = fkv_load32(h + 36);
    *covered = end;
    status = SNAP_LOADED;
done:
    if (slots)
        fkv_index_free(&loaded);
    close(fd);
    return status;
}
