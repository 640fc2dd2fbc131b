/* crc32c.c - CRC-32C in hardware where the CPU has it, else slice-by-8. */
#include "platform.h" /* first: sets the feature macros */
#include "crc32c.h"

#include <pthread.h>

#define POLY_REFLECTED 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY_REFLECTED : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            table[t][n] = (table[t - 1][n] >> 8) ^ table[0][table[t - 1][n] & 0xff];
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
    pthread_once(&table_once, build_table);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = fkv_load32(p) ^ crc;
        uint32_t hi = fkv_load32(p + 4);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
              table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#ifdef FKV_HAVE_SSE42_CRC
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
                                                         size_t len)
{
    uint64_t c = ~crc;
#if defined(__x86_64__)
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
#endif
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

static int have_hw = -1;

uint32_t fkv_crc32c(uint32_t crc, const void *buf, size_t len)
{
    /* A benign race: every thread computes the same answer. */
    if (FKV_UNLIKELY(have_hw < 0)) {
        __builtin_cpu_init();
        have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (have_hw)
        return crc_hw(crc, (const uint8_t *)buf, len);
    return crc_soft(crc, (const uint8_t *)buf, len);
}
#else
uint32_t fkv_crc32c(uint32_t crc, const void *buf, size_t len)
{
    return crc_soft(crc, (const uint8_t *)buf, len);
}
#endif
