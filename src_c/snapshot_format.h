/*
 * snapshot_format.h - the snapshot file's format, what its writer
 * (snapshot_save.c) and its reader (snapshot_load.c) share, and the
 * reasons a snapshot is or is not used.
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
 * slot count (hints may follow the slots); the CRC of header and block
 * CRCs; the data file's identity
 * (another store's snapshot, or one from before a compaction or repair,
 * names another file); its history (the session named still in the data
 * file's list, and every later one begun at or past E: lineage.h says why
 * that tells a copy written differently since apart); E inside the data
 * file, and the record ending at E
 * re-read and intact with the CRC the snapshot recorded (a snapshot newer
 * than the log, or an older log under a newer snapshot, fails here); counts
 * that fit the table (load at most three quarters) and the blocks' counts
 * adding up to them. Then each block of slots, before any slot of it is
 * used (snapshot_blocks.c; every block at once for the first call that is
 * not a read): its CRC, every entry's offset inside [header, E), markers
 * well formed, its counts as stated, and every entry reachable from its
 * home slot by probing. The log past E (after a crash) is walked at open
 * as always, but for the records hints name (checked when applied); its
 * records are kept per block and applied when their home block is first
 * needed. What is left
 * unchecked is what the records themselves guard: a read still confirms
 * the key and the checksum on disk.
 */
#ifndef FKV_SNAPSHOT_FORMAT_H
#define FKV_SNAPSHOT_FORMAT_H

#include "hash_index.h"

#define SNAPSHOT_HEADER_BYTES 104u
#define SNAPSHOT_SUFFIX ".idx" /* the snapshot file: <data file>.idx */

#define SNAP_VERSION 3u
#define SNAP_HEADER SNAPSHOT_HEADER_BYTES
#define SNAP_SLOT 8u
#define SNAP_MAGIC "FKVSNAP\n" /* its first 8 bytes */
/* Put over the magic before a snapshot is written over in place, so that
 * a save cut short is refused at open, and said so. */
#define SNAP_UNFINISHED "FKVSNAP~"

/* Slots per block: 64 KiB, what a read's first lookup in a block loads. */
#define SNAP_BLOCK_SLOTS 8192u
#define SNAP_BLOCK_ENTRY 16u /* bytes per block before the slots */

static inline uint64_t block_slots_for(uint64_t cap)
{
    return cap < SNAP_BLOCK_SLOTS ? cap : SNAP_BLOCK_SLOTS;
}

/* Offset of the slots in a snapshot of nblocks blocks. */
static inline uint64_t body_offset(uint64_t nblocks)
{
    return SNAP_HEADER + SNAP_BLOCK_ENTRY * nblocks + 4;
}

/* fkv_hash of a fixed string: a changed hash function would place keys in
 * other slots, so a snapshot names the one it was made with. */
static inline uint32_t hash_identity(void)
{
    static const char probe[] = "fastkv index hash identity";
    return fkv_hash(probe, sizeof probe - 1);
}

/* Why the store's open did or did not use its snapshot (stats). These are
 * reasons, kept and reported: no function returns one as its result. */
typedef enum snapshot_reason {
    SNAP_NOT_TRIED = 0,
    SNAP_LOADED,
    SNAP_MISSING,
    SNAP_OLD_FORMAT,
    SNAP_UNREADABLE,
    SNAP_BAD_HEADER,
    SNAP_BAD_SIZE,
    SNAP_BAD_CHECKSUM,
    SNAP_OTHER_FILE,
    SNAP_BAD_END,
    SNAP_TAIL_MISMATCH,
    SNAP_BAD_TABLE,
    SNAP_NO_MEMORY,
    SNAP_UNFINISHED_SAVE,
    SNAP_BAD_HINT,
    SNAP_OTHER_HISTORY
} snapshot_reason;


#endif /* FKV_SNAPSHOT_FORMAT_H */
