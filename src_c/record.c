/* record.c - encode and check file headers and records (see record.h). */
#include "platform.h" /* first: sets the feature macros */
#include "record.h"
#include "crc32c.h"
#include "status.h"

static const uint8_t MAGIC[8] = {0x89, 'F', 'K', 'V', '\r', '\n', 0x1a, '\n'};

void fkv_file_header_encode(uint8_t *out, uint64_t created_ms, fkv_file_identity *ident,
                            fkv_lineage *lineage)
{
    uint32_t id;
    do {
        id = fkv_random_u32();
    } while (id == 0); /* 0 means "none" */
    memcpy(out, MAGIC, 8);
    fkv_store32(out + 8, FKV_FORMAT_VERSION);
    fkv_store32(out + 12, FKV_FILE_HEADER_SIZE);
    fkv_store64(out + 16, created_ms);
    fkv_store32(out + 24, id);
    fkv_store32(out + 28, fkv_crc32c(0, out, 28));
    ident->created_ms = created_ms;
    ident->id = id;
    ident->version = FKV_FORMAT_VERSION;
    ident->log_start = FKV_FILE_HEADER_SIZE;
    lineage->n = 0;
    fkv_lineage_begin(lineage, FKV_FILE_HEADER_SIZE);
    fkv_lineage_encode(out + FKV_LINEAGE_AT, lineage);
}

int fkv_file_may_be_store(const uint8_t *buf, size_t len, uint64_t size)
{
    if (size == 0)
        return 1; /* a new store's, before its header */
    return size >= FKV_FILE_HEADER_OLD && len >= sizeof MAGIC && memcmp(buf, MAGIC, sizeof MAGIC) == 0;
}

int fkv_file_header_check(const uint8_t *buf, fkv_file_identity *ident)
{
    if (memcmp(buf, MAGIC, 8) != 0)
        return FKV_ENOTSTORE;
    if (fkv_load32(buf + 28) != fkv_crc32c(0, buf, 28))
        return FKV_ECORRUPT;
    uint32_t version = fkv_load32(buf + 8), length = fkv_load32(buf + 12);
    if (version < FKV_FORMAT_VERSION_NO_ID || version > FKV_FORMAT_VERSION ||
        length != (version == FKV_FORMAT_VERSION ? FKV_FILE_HEADER_SIZE : FKV_FILE_HEADER_OLD))
        return FKV_ENOTSTORE;
    ident->created_ms = fkv_load64(buf + 16);
    ident->id = version == FKV_FORMAT_VERSION_NO_ID ? 0 : fkv_load32(buf + 24);
    ident->version = version;
    ident->log_start = length;
    return FKV_OK;
}

size_t fkv_record_encode(uint8_t *out, uint8_t kind, const char *key, size_t klen,
                         const uint8_t *val, size_t vlen, uint64_t deadline_ms)
{
    out[4] = kind;
    out[5] = (uint8_t)klen;
    fkv_store16(out + 6, (uint16_t)vlen);
    fkv_store64(out + 8, deadline_ms);
    memcpy(out + FKV_REC_HEADER_SIZE, key, klen);
    if (vlen)
        memcpy(out + FKV_REC_HEADER_SIZE + klen, val, vlen);
    size_t total = FKV_REC_HEADER_SIZE + klen + vlen;
    fkv_store32(out, fkv_crc32c(0, out + 4, total - 4));
    return total;
}

int fkv_record_header_decode(const uint8_t *buf, fkv_rec_header *h)
{
    h->crc = fkv_load32(buf);
    h->kind = buf[4];
    h->klen = buf[5];
    h->vlen = fkv_load16(buf + 6);
    h->deadline_ms = fkv_load64(buf + 8);
    if (h->kind == FKV_KIND_GROUP)
        return (h->klen == 0 && h->vlen == 8 && h->deadline_ms >> 32 == 0) ? FKV_OK
                                                                          : FKV_ECORRUPT;
    if (h->klen == 0 || h->klen > FKV_KEY_MAX_BYTES)
        return FKV_ECORRUPT;
    if (h->kind == FKV_KIND_PUT)
        return h->vlen <= FKV_VALUE_MAX ? FKV_OK : FKV_ECORRUPT;
    if (h->kind == FKV_KIND_DEL)
        return (h->vlen == 0 && h->deadline_ms == 0) ? FKV_OK : FKV_ECORRUPT;
    return FKV_ECORRUPT;
}

void fkv_group_header_encode(uint8_t *out, uint32_t count, uint32_t bytes, uint32_t members_crc)
{
    out[4] = FKV_KIND_GROUP;
    out[5] = 0;
    fkv_store16(out + 6, 8);
    fkv_store64(out + 8, members_crc);
    fkv_store32(out + 16, count);
    fkv_store32(out + 20, bytes);
    fkv_store32(out, fkv_crc32c(0, out + 4, FKV_GROUP_HEADER_SIZE - 4));
}

int fkv_group_header_decode(const uint8_t *rec, fkv_group_header *g)
{
    g->members_crc = fkv_load32(rec + 8);
    g->count = fkv_load32(rec + 16);
    g->bytes = fkv_load32(rec + 20);
    if (g->count == 0 || g->count > FKV_GROUP_MAX_RECORDS || g->bytes > FKV_GROUP_MAX_BYTES ||
        g->bytes / (FKV_REC_HEADER_SIZE + 1u) < g->count)
        return FKV_ECORRUPT;
    return FKV_OK;
}

int fkv_record_checksum_ok(const uint8_t *rec, const fkv_rec_header *h)
{
    return fkv_crc32c(0, rec + 4, fkv_record_size(h) - 4) == h->crc;
}

int fkv_record_checksums_ok(const uint8_t *a, const fkv_rec_header *ha, const uint8_t *b,
                            const fkv_rec_header *hb)
{
    uint32_t crc[2];
    fkv_crc32c_pair(a + 4, fkv_record_size(ha) - 4, b + 4, fkv_record_size(hb) - 4, crc);
    return (crc[0] == ha->crc) | (crc[1] == hb->crc) << 1;
}
