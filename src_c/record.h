/*
 * record.h - the on-disk format: one file header, then an append-only log.
 *
 * File header, 128 bytes (32 in formats 1 and 2), little-endian:
 *   0  magic   8 bytes "\x89FKV\r\n\x1a\n" (catches text-mode mangling)
 *   8  u32     format version (FKV_FORMAT_VERSION; 1 and 2 are read too)
 *  12  u32     header length, where the log starts (128; 32 before format 3)
 *  16  u64     creation time, ms since the Unix epoch
 *  24  u32     random file id, new whenever a header is written (at
 *              creation, compaction and repair); zero in version 1 files
 *  28  u32     CRC-32C of bytes 0..28
 *  32  96 bytes, from format 3: the writing sessions' list (lineage.h),
 *              rewritten in place when a session first writes, with its own
 *              checksum (a damaged list only costs a scan, never the file)
 * Creation time and file id together name one file's contents up to its
 * end, and the list which history of them: an index snapshot (snapshot.c)
 * is only trusted for that file in that history.
 *
 * Record, 16-byte header then key then value:
 *   0  u32     CRC-32C of bytes 4..end of record
 *   4  u8      kind: FKV_KIND_PUT or FKV_KIND_DEL (tombstone)
 *   5  u8      key length in bytes, 1..FKV_KEY_MAX_BYTES
 *   6  u16     value length in bytes, 0..FKV_VALUE_MAX (0 for a tombstone)
 *   8  u64     deadline, ms since the Unix epoch; 0 = never expires
 *  16  key bytes (UTF-8), then value bytes (compact JSON)
 *
 * A later record for a key supersedes earlier ones. Every length is checked
 * here before anyone uses it: bytes from disk are untrusted.
 *
 * Group (a transaction, put_many, delete_many): records that count only
 * together. A group header, a record of its own (checksummed like one, so
 * its fields can be trusted on their own), then its members, ordinary
 * records, all in one append:
 *   0  u32     CRC-32C of bytes 4..24
 *   4  u8      FKV_KIND_GROUP
 *   5  u8      0 (no key)
 *   6  u16     8
 *   8  u64     CRC-32C of the members' bytes (in the low 32 bits)
 *  16  u32     number of members, 1..FKV_GROUP_MAX_RECORDS
 *  20  u32     length of the members in bytes
 * The log walk (log.c) hands a group's members on only once all of them
 * are there and match that checksum; a group that ends past the file, or
 * fails it with nothing intact after it, is a torn tail and is cut whole.
 * Readers of the index never meet a header: no entry points at one.
 * Pure functions: no locks, no I/O, never touches Python.
 */
#ifndef FKV_RECORD_H
#define FKV_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "lineage.h"

#define FKV_FORMAT_VERSION 3u
#define FKV_FORMAT_VERSION_NO_ID 1u /* no file id: still read, never snapshotted */
#define FKV_FORMAT_VERSION_NO_LINEAGE 2u /* no sessions' list: read, never snapshotted */
#define FKV_FILE_HEADER_SIZE 128u   /* of the format written */
#define FKV_FILE_HEADER_OLD 32u     /* of formats 1 and 2; enough to read a version */
#define FKV_REC_HEADER_SIZE 16u
#define FKV_KEY_MAX_CHARS 32u
#define FKV_KEY_MAX_BYTES 128u  /* 32 characters of up to 4 UTF-8 bytes */
#define FKV_VALUE_MAX 16384u
#define FKV_REC_MAX (FKV_REC_HEADER_SIZE + FKV_KEY_MAX_BYTES + FKV_VALUE_MAX)

#define FKV_KIND_PUT 1u
#define FKV_KIND_DEL 2u
#define FKV_KIND_GROUP 3u

#define FKV_GROUP_HEADER_SIZE 24u
#define FKV_GROUP_MAX_BYTES (1u << 30)    /* no group outgrows the largest file */
#define FKV_GROUP_MAX_RECORDS (FKV_GROUP_MAX_BYTES / (FKV_REC_HEADER_SIZE + 1u))

typedef struct fkv_rec_header {
    uint32_t crc;
    uint8_t kind;
    uint8_t klen;
    uint16_t vlen;
    uint64_t deadline_ms;
} fkv_rec_header;

/* Which file a header names: see the layout above. */
typedef struct fkv_file_identity {
    uint64_t created_ms;
    uint32_t id;         /* 0: a version 1 file, which has none */
    uint32_t version;    /* its format */
    uint32_t log_start;  /* the header's length: where the first record goes */
} fkv_file_identity;

/* Write a file header of the current format for a store created at
 * created_ms, with a fresh random file id and one session that begins to
 * write at the log's start, into out[FKV_FILE_HEADER_SIZE]; *ident and
 * *lineage receive what it holds. */
void fkv_file_header_encode(uint8_t *out, uint64_t created_ms, fkv_file_identity *ident,
                            fkv_lineage *lineage);

/* FKV_OK if buf[0..FKV_FILE_HEADER_OLD) starts a fastkv header of a version
 * we read (and its identity in *ident), FKV_ENOTSTORE if the magic
 * differs, FKV_ECORRUPT if it is damaged. The sessions' list of a format 3
 * header is read apart (fkv_lineage_decode at FKV_LINEAGE_AT). */
int fkv_file_header_check(const uint8_t *buf, fkv_file_identity *ident);

/* 1 if a file of size bytes whose first len bytes are buf may be a store
 * (empty, or long enough and starting with the magic); 0 if it is surely
 * not one. */
int fkv_file_may_be_store(const uint8_t *buf, size_t len, uint64_t size);

/* Encode a record into out (room for FKV_REC_MAX bytes); returns its length. */
size_t fkv_record_encode(uint8_t *out, uint8_t kind, const char *key, size_t klen,
                         const uint8_t *val, size_t vlen, uint64_t deadline_ms);

/* A group's header (the layout above), decoded. */
typedef struct fkv_group_header {
    uint32_t members_crc;
    uint32_t count;
    uint32_t bytes;
} fkv_group_header;

/* Write the header of a group whose members, count records of bytes bytes,
 * have the CRC-32C members_crc into out[FKV_GROUP_HEADER_SIZE]. */
void fkv_group_header_encode(uint8_t *out, uint32_t count, uint32_t bytes, uint32_t members_crc);

/* The fields of an intact group header (fkv_record_checksum_ok said so):
 * FKV_OK, or FKV_ECORRUPT when they are impossible. */
int fkv_group_header_decode(const uint8_t *rec, fkv_group_header *g);

/* Decode and range-check a record header (a group's header too: kind
 * FKV_KIND_GROUP, klen 0). FKV_OK, or FKV_ECORRUPT when a field is
 * impossible (then the record's length cannot be trusted). */
int fkv_record_header_decode(const uint8_t *buf, fkv_rec_header *h);

/* Total length of a record whose header decoded fine. */
static inline size_t fkv_record_size(const fkv_rec_header *h)
{
    return FKV_REC_HEADER_SIZE + (size_t)h->klen + (size_t)h->vlen;
}

/* 1 if the whole record rec[0..fkv_record_size(h)) matches its checksum. */
int fkv_record_checksum_ok(const uint8_t *rec, const fkv_rec_header *h);

/* fkv_record_checksum_ok of two records at once, faster than one after the
 * other: bit 0 set if a is intact, bit 1 if b is. */
int fkv_record_checksums_ok(const uint8_t *a, const fkv_rec_header *ha, const uint8_t *b,
                            const fkv_rec_header *hb);

#endif /* FKV_RECORD_H */
