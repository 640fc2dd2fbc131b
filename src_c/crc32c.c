/* crc32c.c - CRC-32C in hardware where the CPU has it, else slice-by-8. */
#include "platform.h" /* first: sets the feature macros */
#include "crc32c.h"


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

/*
 * The crc32 instruction takes 3 cycles but can start one per cycle, so one
 * dependency chain runs at a third of the speed the CPU allows. Long
 * buffers are cut into three lanes of LANE bytes hashed side by side and
 * joined: with a raw register r, crc(r, A B) = zeros(crc(r, A)) ^ crc(0, B),
 * where zeros() is what feeding LANE zero bytes does to a register. That
 * map is linear, so it is four table look-ups (one per register byte).
 */
#define LANE 256

static uint32_t lane_shift[4][256];

FKV_TARGET_SSE42 static uint32_t feed_zeros(uint32_t reg)
{
    uint64_t c = reg;
    for (int i = 0; i < LANE / 8; i++)
        c = _mm_crc32_u64(c, 0);
    return (uint32_t)c;
}

/* feed_zeros is linear: each table is filled from its 8 one-bit entries
 * by XOR, 32 calls instead of 1,024 (about 30 µs, paid by every process
 * on its first checksum, down to about 1). */
static void build_lane_shift(void)
{
    for (int b = 0; b < 4; b++) {
        lane_shift[b][0] = 0;
        for (int bit = 0; bit < 8; bit++) {
            uint32_t one = feed_zeros(1u << (8 * b + bit)), filled = 1u << bit;
            for (uint32_t v = 0; v < filled; v++)
                lane_shift[b][filled + v] = lane_shift[b][v] ^ one;
        }
    }
}

static inline uint32_t shift_lane(uint32_t r)
{
    return lane_shift[0][r & 0xff] ^ lane_shift[1][(r >> 8) & 0xff] ^
           lane_shift[2][(r >> 16) & 0xff] ^ lane_shift[3][r >> 24];
}

FKV_TARGET_SSE42 static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = ~crc;
#if defined(FKV_X86_64)
    while (len >= 3 * LANE) {
        uint64_t b = 0, d = 0;
        for (int i = 0; i < LANE; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + LANE + i, 8);
            memcpy(&w2, p + 2 * LANE + i, 8);
            c = _mm_crc32_u64(c, w0);
            b = _mm_crc32_u64(b, w1);
            d = _mm_crc32_u64(d, w2);
        }
        c = shift_lane(shift_lane((uint32_t)c) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * LANE;
        len -= 3 * LANE;
    }
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

/* -1 until detected; then 1 with the lane table built, or 0. */
static int have_hw = -1;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
    int hw = FKV_CPU_HAS_SSE42();
    if (hw)
        build_lane_shift();
    fkv_atomic_store(&have_hw, hw, FKV_RELEASE);
}

static int hw_detected(void)
{
    int hw = fkv_atomic_load(&have_hw, FKV_ACQUIRE);
    if (FKV_UNLIKELY(hw < 0)) {
        pthread_once(&detect_once, detect);
        hw = fkv_atomic_load(&have_hw, FKV_ACQUIRE);
    }
    return hw;
}

uint32_t fkv_crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (hw_detected())
        return crc_hw(crc, (const uint8_t *)buf, len);
    return crc_soft(crc, (const uint8_t *)buf, len);
}

/* Two short buffers side by side: their common length as two chains, the
 * rest of each alone. */
FKV_TARGET_SSE42 static void pair_hw(const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                                     uint32_t out[2])
{
    size_t n = 0;
#if defined(FKV_X86_64)
    uint64_t x = 0xFFFFFFFFu, y = 0xFFFFFFFFu;
    for (size_t both = (na < nb ? na : nb) & ~(size_t)7; n < both; n += 8) {
        uint64_t wa, wb;
        memcpy(&wa, a + n, 8);
        memcpy(&wb, b + n, 8);
        x = _mm_crc32_u64(x, wa);
        y = _mm_crc32_u64(y, wb);
    }
    out[0] = crc_hw(~(uint32_t)x, a + n, na - n);
    out[1] = crc_hw(~(uint32_t)y, b + n, nb - n);
#else
    out[0] = crc_hw(0, a, na);
    out[1] = crc_hw(0, b, nb);
#endif
}

void fkv_crc32c_pair(const void *a, size_t na, const void *b, size_t nb, uint32_t out[2])
{
    if (hw_detected() && na < 3 * LANE && nb < 3 * LANE) { /* else crc_hw's own lanes */
        pair_hw((const uint8_t *)a, na, (const uint8_t *)b, nb, out);
        return;
    }
    out[0] = fkv_crc32c(0, a, na);
    out[1] = fkv_crc32c(0, b, nb);
}
#else
uint32_t fkv_crc32c(uint32_t crc, const void *buf, size_t len)
{
    return crc_soft(crc, (const uint8_t *)buf, len);
}

void fkv_crc32c_pair(const void *a, size_t na, const void *b, size_t nb, uint32_t out[2])
{
    out[0] = crc_soft(0, (const uint8_t *)a, na);
    out[1] = crc_soft(0, (const uint8_t *)b, nb);
}
#endif
