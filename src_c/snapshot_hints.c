/*
 * snapshot_hints.c - the records appended after a clean reopen, noted 512
 * at a time after the snapshot's slots in its own file (<data file>.idx),
 * so that an open after a crash reads 8 bytes a record there instead of
 * reading and checksumming the records themselves (Bitcask's hint files,
 * kept as the log grows instead of at merge).
 *
 * A frame, little-endian:
 *    0  4  magic "FKVH"
 *    4  u32 records in it, n (1..HINT_FRAME_MAX)
 *    8  u64 the log offset where the last of them ends
 *   16  u32 the stored CRC of that last record
 *   20  u32 CRC-32C of bytes 0..20, 24..32 and the entries, continued from
 *           the CRC of the snapshot's front (header and block directory): a
 *           frame only holds for the snapshot it follows
 *   24  u64 the writing session that appended its records (lineage.h): a
 *           frame only holds for a data file whose list names that session
 *           right after the snapshot's, and below where the next one began
 *   32  n entries: u32 log offset of a record, u32 the hash of its key
 * The first frame starts at the snapshot's end E, each next one where the
 * one before ended: together they cover the log past E, every record
 * once, in log order (every append goes through hints_note).
 *
 * Written only while the snapshot on disk covered the whole log when the
 * store opened, and only with durability "process" (in "fsync" mode a
 * frame could reach the disk before the records it names); stopped for
 * good by a background snapshot, a compaction, a failed frame write or
 * close. As the snapshot itself, never written through a symbolic link or
 * into a file with other names, and only into the file the store loaded.
 * A save of the snapshot over this file cuts them off.
 *
 * Trusted at open only as far as it checks: magic, count, CRC, its
 * session and range against the data file's list, the frame starting where
 * the last one ended, entries rising at least a record
 * header apart inside its range, and the record that ends it re-read from
 * the log and intact with the CRC stated. The first frame that fails ends
 * the hints, and the log past the last good one is scanned as always. As
 * with the log the snapshot covers, the records a frame names are not
 * checksummed at open: each is read back whole and checked when its block
 * is applied, and one that is not what its frame says (damaged, or its
 * key's home in another block) makes the store scan the whole log, as a
 * block that fails its checks does.
 */
#include "snapshot_parts.h"
#include "crc32c.h"

#include <stdlib.h>

/* Records a frame names: one write of 4 KiB per 512 appends, and the last
 * 511 or fewer are scanned after a crash. */
#define HINT_FRAME_MAX 512u
#define HINT_HEAD 32u
#define HINT_ENTRY 8u
#define HINT_FRAME_BYTES (HINT_HEAD + HINT_FRAME_MAX * HINT_ENTRY)
static const uint8_t HINT_MAGIC[4] = {'F', 'K', 'V', 'H'};

typedef struct snapshot_hints {
    int fd;             /* the snapshot's file, -1 until the first frame is written */
    uint32_t seed;      /* the CRC of the snapshot's front */
    uint64_t dev, ino;  /* which file the store loaded */
    uint64_t body_end;  /* where the first frame goes */
    uint64_t at;        /* where the next one goes */
    uint32_t n;         /* entries waiting in frame */
    uint64_t last_end;  /* where the last record noted ends */
    uint32_t last_crc;  /* its stored CRC */
    uint8_t frame[HINT_FRAME_BYTES];
} snapshot_hints;

static uint32_t frame_crc(uint32_t seed, const uint8_t *frame, uint32_t n)
{
    uint32_t crc = fkv_crc32c(fkv_crc32c(seed, frame, 20), frame + 24, 8);
    return fkv_crc32c(crc, frame + HINT_HEAD, (size_t)n * HINT_ENTRY);
}

void hints_start(fkv_store *s, const snapshot_lazy *L)
{
    if (s->durability != FKV_DURABLE_PROCESS || s->snap.hints)
        return;
    snapshot_hints *H = (snapshot_hints *)malloc(sizeof *H);
    if (!H)
        return; /* a cache: without it, the next crash costs a scan */
    H->fd = -1;
    H->seed = L->front_crc;
    H->dev = L->dev;
    H->ino = L->ino;
    H->body_end = H->at = L->body_end;
    H->n = 0;
    s->snap.hints = H;
}

void hints_stop(fkv_store *s)
{
    snapshot_hints *H = s->snap.hints;
    if (!H)
        return;
    if (H->fd >= 0)
        close(H->fd);
    free(H);
    s->snap.hints = NULL;
}

/* The snapshot's file opened for the frames: the one the store loaded, a
 * plain file of one name, with anything after its slots (frames of an
 * earlier run, for a log since cut back) cut off. */
static int open_for_hints(fkv_store *s)
{
    snapshot_hints *H = s->snap.hints;
    char *p = fkv_path_with_suffix(s->path, SNAPSHOT_SUFFIX);
    const uint64_t loaded[2] = {H->dev, H->ino};
    struct stat st;
    int fd = p ? snapshot_open_plain(p, O_WRONLY, H->body_end, loaded, &st) : -1;
    free(p);
    if (fd >= 0 && (uint64_t)st.st_size > H->body_end && ftruncate(fd, (off_t)H->body_end) != 0) {
        close(fd);
        fd = -1;
    }
    H->fd = fd;
    return fd >= 0 ? FKV_OK : FKV_EIO;
}

static int write_frame(fkv_store *s)
{
    snapshot_hints *H = s->snap.hints;
    memcpy(H->frame, HINT_MAGIC, 4);
    fkv_store32(H->frame + 4, H->n);
    fkv_store64(H->frame + 8, H->last_end);
    fkv_store32(H->frame + 16, H->last_crc);
    fkv_store64(H->frame + 24, fkv_lineage_head(&s->lineage)); /* the appends' session */
    fkv_store32(H->frame + 20, frame_crc(H->seed, H->frame, H->n));
    if (H->fd < 0 && open_for_hints(s) != FKV_OK)
        return FKV_EIO;
    size_t bytes = HINT_HEAD + (size_t)H->n * HINT_ENTRY;
    int rc = fkv_write_at(H->fd, H->frame, bytes, H->at);
    if (rc != FKV_OK)
        return rc;
    H->at += bytes;
    H->n = 0;
    return FKV_OK;
}

void hints_note(fkv_store *s, const uint8_t *recs, size_t len, uint64_t off)
{
    snapshot_hints *H = s->snap.hints;
    for (size_t p = 0; p < len;) {
        fkv_rec_header h;
        (void)fkv_record_header_decode(recs + p, &h); /* just encoded: valid */
        uint8_t *e = H->frame + HINT_HEAD + (size_t)H->n * HINT_ENTRY;
        fkv_store32(e, (uint32_t)(off + p));
        fkv_store32(e + 4, fkv_hash(recs + p + FKV_REC_HEADER_SIZE, h.klen));
        p += fkv_record_size(&h);
        H->last_end = off + p;
        H->last_crc = h.crc;
        if (++H->n == HINT_FRAME_MAX && write_frame(s) != FKV_OK) {
            hints_stop(s); /* a frame cut short is refused at open */
            return;
        }
    }
}

/* The frame's entries, from the log offset from up to a file of size
 * bytes: rising at least a record header apart, the first at from, the
 * last record ending at its stated end, intact. */
static int frame_ok(const fkv_store *s, const uint8_t *frame, uint32_t n, uint64_t from,
                    uint64_t size)
{
    const fkv_descent *d = &s->snap.lazy->descent;
    uint64_t end = fkv_load64(frame + 8), prev = 0;
    if (end <= from || end > size || d->after.id == 0 || fkv_load64(frame + 24) != d->after.id ||
        end > d->until)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = fkv_load32(frame + HINT_HEAD + (size_t)i * HINT_ENTRY);
        if (i == 0 ? off != from : off < prev + FKV_REC_HEADER_SIZE + 1)
            return 0;
        prev = off;
    }
    if (end - prev < FKV_REC_HEADER_SIZE + 1)
        return 0;
    return snapshot_record_ends_at(s->file->fd, end, prev, fkv_load32(frame + 16));
}

uint64_t snapshot_hints_feed(fkv_store *s, uint64_t from, uint64_t size)
{
    const snapshot_lazy *L = s->snap.lazy;
    uint8_t *frame = (uint8_t *)malloc(HINT_FRAME_BYTES);
    for (uint64_t at = L->body_end; frame;) {
        size_t got;
        if (at + HINT_HEAD > L->file_bytes ||
            fkv_read_at(L->fd, frame, HINT_FRAME_BYTES, at, &got, FKV_MAY_WAIT) != FKV_OK ||
            got < HINT_HEAD)
            break;
        uint32_t n = fkv_load32(frame + 4);
        if (memcmp(frame, HINT_MAGIC, 4) != 0 || n == 0 || n > HINT_FRAME_MAX ||
            got < HINT_HEAD + (size_t)n * HINT_ENTRY ||
            frame_crc(L->front_crc, frame, n) != fkv_load32(frame + 20) ||
            !snapshot_keep_room(s, n) || !frame_ok(s, frame, n, from, size))
            break;
        s->end = fkv_load64(frame + 8); /* what applying may read up to */
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *e = frame + HINT_HEAD + (size_t)i * HINT_ENTRY;
            if (snapshot_keep(s, fkv_load32(e), fkv_load32(e + 4)) != FKV_OK) {
                s->end = from; /* out of memory: the walk meets these records again */
                break;         /* (applying one twice leaves what once does) */
            }
        }
        if (s->end == from)
            break;
        s->tail_off = fkv_load32(frame + HINT_HEAD + (size_t)(n - 1) * HINT_ENTRY);
        s->tail_crc = fkv_load32(frame + 16);
        s->snap.hinted += n;
        from = s->end;
        at += HINT_HEAD + (size_t)n * HINT_ENTRY;
    }
    free(frame);
    s->snap.lazy->hinted_end = from; /* the records kept below it: checked when applied */
    return from;
}
