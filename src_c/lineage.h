/*
 * lineage.h - which writing sessions made a data file, so that a cache of
 * its index (the snapshot and its hints) is only trusted for the history of
 * the log it was made from.
 *
 * Why: a data file's identity (record.h) and the record that ends at the
 * snapshot's end E tell the file apart from others, but not from another
 * history of itself. Copy a data file, go on writing the store, put the
 * copy back and write other records of the same sizes: the file id, the
 * length and even the last record can be the same, while the records
 * before it are not the ones the snapshot indexed.
 *
 * How: every session that writes to a data file (a store open from its
 * first write to its close) draws a random 64-bit id and, before its first
 * record, writes it at the head of a short list in the file header, with
 * the log offset where its writing starts. A snapshot names the session
 * that wrote the log it covers last (the head of the list when saved).
 * At open it is trusted only if that session is still in the list and every
 * session after it started at or past E: the log below E is then exactly
 * what that session (and the ones before it) left, because a log only grows
 * within one history, and any other history of the file, to write at all,
 * had to start a session below E. A copy that was never written since is
 * a prefix of the history it was copied from: a snapshot of a later state
 * then covers more than the file holds. It costs no read at open: the
 * list is in the header the open reads anyway.
 *
 * The list holds the newest FKV_LINEAGE_MAX sessions: a snapshot older
 * than that many writing sessions (crashes without a clean close, each)
 * is refused, which costs one scan. A list whose checksum fails is empty:
 * every snapshot is refused until the next session writes a new list.
 *
 * Layout, at bytes 32..128 of a format 3 file header, little-endian:
 *    32  FKV_LINEAGE_MAX entries of 16 bytes, newest first: u64 session
 *        id (never 0), u64 log offset where that session began to write;
 *        unused entries zero
 *   112  u32 entries in use (1..FKV_LINEAGE_MAX)
 *   116  u32 CRC-32C of bytes 32..116
 *   120  8 bytes zero
 * Rewritten in place at each session's first write: a write torn there
 * fails the checksum, which only costs the next open a scan.
 * Pure functions: no locks, no I/O, never touches Python.
 */
#ifndef FKV_LINEAGE_H
#define FKV_LINEAGE_H

#include <stddef.h>
#include <stdint.h>

#define FKV_LINEAGE_MAX 5u
#define FKV_LINEAGE_AT 32u     /* offset of the list in the file header */
#define FKV_LINEAGE_BYTES 96u  /* its length: the header ends at 128 */

typedef struct fkv_session {
    uint64_t id;    /* random, never 0 */
    uint64_t start; /* log offset of its first record */
} fkv_session;

typedef struct fkv_lineage {
    uint32_t n;                       /* 0: unknown (no list, or a damaged one) */
    fkv_session s[FKV_LINEAGE_MAX];   /* newest first */
} fkv_lineage;

/* Where a snapshot's session stands in a lineage. */
typedef struct fkv_descent {
    fkv_session after; /* the session right after it (id 0: none): the only
                        * one whose appends its hints may name */
    uint64_t until;    /* where the session after that began (UINT64_MAX: none):
                        * hints hold below it */
} fkv_descent;

/* The list in out[0..FKV_LINEAGE_BYTES). */
void fkv_lineage_encode(uint8_t *out, const fkv_lineage *l);

/* Read the list at in[0..FKV_LINEAGE_BYTES): 1 if intact; else 0 and an
 * empty *l. */
int fkv_lineage_decode(const uint8_t *in, fkv_lineage *l);

/* Put a new session with a fresh random id, starting at log offset start,
 * at the head of *l (the oldest entry drops out of a full list). */
void fkv_lineage_begin(fkv_lineage *l, uint64_t start);

/* The newest session's id, or 0 if the list is unknown. */
static inline uint64_t fkv_lineage_head(const fkv_lineage *l)
{
    return l->n ? l->s[0].id : 0;
}

/* 1 if a cache made when session sid had written the log up to end holds
 * for the file with lineage l (see the essay above), filling *d; else 0. */
int fkv_lineage_descends(const fkv_lineage *l, uint64_t sid, uint64_t end, fkv_descent *d);

#endif /* FKV_LINEAGE_H */
