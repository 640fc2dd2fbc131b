/* lineage.c - the list of writing sessions in a data file's header (see
 * lineage.h). */
#include "platform.h" /* first: sets the feature macros */
#include "lineage.h"
#include "crc32c.h"

#define LIST_N (FKV_LINEAGE_MAX * 16u) /* offset of the count in the list */

void fkv_lineage_encode(uint8_t *out, const fkv_lineage *l)
{
    memset(out, 0, FKV_LINEAGE_BYTES);
    for (uint32_t i = 0; i < l->n; i++) {
        fkv_store64(out + 16u * i, l->s[i].id);
        fkv_store64(out + 16u * i + 8, l->s[i].start);
    }
    fkv_store32(out + LIST_N, l->n);
    fkv_store32(out + LIST_N + 4, fkv_crc32c(0, out, LIST_N + 4));
}

int fkv_lineage_decode(const uint8_t *in, fkv_lineage *l)
{
    memset(l, 0, sizeof *l);
    uint32_t n = fkv_load32(in + LIST_N);
    if (n == 0 || n > FKV_LINEAGE_MAX || fkv_load32(in + LIST_N + 4) != fkv_crc32c(0, in, LIST_N + 4))
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        l->s[i].id = fkv_load64(in + 16u * i);
        l->s[i].start = fkv_load64(in + 16u * i + 8);
        /* newest first, each began where the log had grown to */
        if (l->s[i].id == 0 || (i > 0 && l->s[i].start > l->s[i - 1].start)) {
            memset(l, 0, sizeof *l);
            return 0;
        }
    }
    l->n = n;
    return 1;
}

void fkv_lineage_begin(fkv_lineage *l, uint64_t start)
{
    uint64_t id;
    do {
        id = (uint64_t)fkv_random_u32() << 32 | fkv_random_u32();
    } while (id == 0); /* 0 means "none" */
    uint32_t keep = l->n < FKV_LINEAGE_MAX ? l->n : FKV_LINEAGE_MAX - 1;
    memmove(&l->s[1], &l->s[0], keep * sizeof l->s[0]);
    l->s[0].id = id;
    l->s[0].start = start;
    l->n = keep + 1;
}

int fkv_lineage_descends(const fkv_lineage *l, uint64_t sid, uint64_t end, fkv_descent *d)
{
    if (sid == 0)
        return 0;
    for (uint32_t i = 0; i < l->n; i++) {
        if (l->s[i].id == sid) {
            if (l->s[i].start > end)
                return 0;
            d->after.id = i > 0 ? l->s[i - 1].id : 0;
            d->after.start = i > 0 ? l->s[i - 1].start : 0;
            d->until = i > 1 ? l->s[i - 2].start : UINT64_MAX;
            return 1;
        }
        if (l->s[i].start < end)
            return 0; /* a session after sid wrote below end: another history */
    }
    return 0; /* too many sessions since, or never this file's */
}
