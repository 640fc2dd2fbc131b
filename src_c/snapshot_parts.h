/*
 * snapshot_parts.h - what the snapshot's parts share and nobody
 * else sees (the store's layer uses snapshot.h only).
 *
 *   snapshot.c             the events of snapshot.h: the door from the store
 *   snapshot_background.c  saves from a thread of their own
 *   snapshot_hints.c       frames of hints after the table: written, fed at open
 *   snapshot_blocks.c      the table loaded block by block; kept records
 *   snapshot_load.c        the front read and checked; the whole table at once
 *   snapshot_save.c        writing a snapshot; its file's housekeeping
 *
 * Each calls only those listed below it.
 */
#ifndef FKV_SNAPSHOT_PARTS_H
#define FKV_SNAPSHOT_PARTS_H

#include "snapshot.h"

/* What a snapshot states of one block of its table. */
typedef struct snapshot_block {
    uint32_t crc, live, deleted, ttl;
} snapshot_block;

/* A record of the log past a snapshot, kept for its home block. */
typedef struct snapshot_pending {
    uint32_t off;  /* offsets fit 31 bits (FKV_LOC_OFFSET_MASK); the key's hash is
                    * computed again when applied: 8 bytes a record, not 12 */
    uint32_t next; /* its block's next record, in log order; SNAPSHOT_NONE after the last */
} snapshot_pending;

#define SNAPSHOT_NONE UINT32_MAX

/* A snapshot's table loaded block by block (snapshot_blocks.c). */
typedef struct snapshot_lazy {
    int fd;               /* the snapshot file, open until every block is in */
    snapshot_reason failed; /* why a block failed, else SNAP_NOT_TRIED */
    uint64_t body_off;    /* where its slots start */
    uint64_t block_slots; /* a power of two */
    unsigned block_bits;  /* its log2 */
    uint64_t nblocks;
    uint64_t end;         /* E: entries point below it */
    uint64_t live, deleted, n_ttl, live_bytes; /* as its header states */
    uint64_t tail_off;    /* the record that ends at E */
    uint32_t tail_crc;
    uint64_t read;        /* blocks read, their CRC right */
    uint64_t checked;     /* blocks checked slot by slot */
    uint8_t *state;       /* per block: LAZY_ABSENT, LAZY_READ or LAZY_CHECKED */
    /* The log past E (after a crash), its records not yet applied to the
     * table: kept while open walks that log, chained by home block. */
    int keeping;          /* open is walking that log */
    snapshot_pending *pend;
    size_t npend, pend_cap, pend_ready;
    uint32_t *pend_head;  /* per block: its first record not yet applied, or SNAPSHOT_NONE */
    uint32_t *pend_last;  /* per block: its last record */
    size_t pend_left;     /* records not yet applied */
    snapshot_block *block; /* per block, as the snapshot states */
    uint32_t front_crc;   /* the CRC of its header and block directory */
    uint64_t body_end;    /* where its slots end: hints may follow (snapshot_hints.c) */
    uint64_t file_bytes;  /* its size when opened */
    uint64_t dev, ino;    /* which file it is */
    uint64_t hinted_end;  /* records kept below this came from hints, not the walk */
    fkv_descent descent;  /* where its session stands in the data file's list */
} snapshot_lazy;

/* ---- snapshot_save.c -------------------------------------------------------- */

/* The snapshot file at path opened with flags (never through a symbolic
 * link), if it is a plain file of one name at least min_size bytes long
 * and, with want (dev, ino) given, that very file: its descriptor and
 * *st, or -1. */
int snapshot_open_plain(const char *path, int flags, uint64_t min_size, const uint64_t *want,
                        struct stat *st);

/* ---- snapshot_load.c -------------------------------------------------------- */

/* The front of the snapshot of s's data file (size bytes) read and
 * checked: SNAP_LOADED with *out and *table (its memory,
 * blocks unread) filled, or why not. */
snapshot_reason snapshot_load_front(fkv_store *s, uint64_t size, snapshot_lazy **out,
                                    fkv_index *table);

/* Read and check every block of L's table into slots at once: FKV_OK, or
 * FKV_ESNAPSHOT with L->failed saying why. */
int snapshot_load_all(snapshot_lazy *L, fkv_slot *slots, uint64_t cap);

/* 1 if the record of the data file fd that ends at end starts at off, is
 * intact, and has the stored CRC crc. */
int snapshot_record_ends_at(int fd, uint64_t end, uint64_t off, uint32_t crc);

/* Close L's file and free it; NULL is ignored. */
void snapshot_lazy_free(snapshot_lazy *L);

/* ---- snapshot_blocks.c ------------------------------------------------------ */

/* Before open walks tail bytes of log past a snapshot whose table of cap
 * slots loads block by block: room to keep their records by block. */
int snapshot_keep_start(snapshot_lazy *L, uint64_t tail, uint64_t cap);

/* 1 if n more records can be kept without the whole table being loaded. */
int snapshot_keep_room(const fkv_store *s, uint64_t n);

/* ---- snapshot_hints.c ------------------------------------------------------- */

/* Note every append from now on, after the snapshot L (which covers the
 * whole log) in its file. */
void hints_start(fkv_store *s, const snapshot_lazy *L);

/* Note no more (the file keeps what it holds); none running is ignored. */
void hints_stop(fkv_store *s);

/* ---- snapshot_background.c -------------------------------------------------- */

/* The newest snapshot of the data file covers its log up to end (0: there
 * is none): when the next background save falls due. */
void snapshot_covers(fkv_store *s, uint64_t end);

#endif /* FKV_SNAPSHOT_PARTS_H */
