/*
 * table_check.c - the checks of a snapshot's table (table_check.h).
 *
 * Reachability: an entry at position p whose distance from home is d is
 * found by probing if no slot in [p - d, p) is empty, that is if the last
 * empty slot before p lies before p - d. The slots before the table's first
 * empty one are reached by probing that wraps from the table's end, so
 * what they need from the end (wrap_need) is settled in table_check_done.
 *
 * A reopen of a million keys checks two million slots, so the pass is kept
 * free of branches on the slot's kind (which would be mispredicted half the
 * time) and, on x86-64, checks four slots a step with SSE2; the scalar loop
 * gives the same answers everywhere else.
 */
#include "platform.h" /* first: sets the feature macros */
#include "table_check.h"
#include "record.h"

void table_check_start(table_check *c, uint64_t cap, uint64_t end)
{
    memset(c, 0, sizeof *c);
    c->cap = cap;
    c->mask = cap - 1;
    c->shift = FKV_HASH_BITS;
    while ((1ull << (FKV_HASH_BITS - c->shift)) < cap)
        c->shift--;
    c->first_off = FKV_FILE_HEADER_SIZE;
    uint64_t last = end > FKV_REC_HEADER_SIZE ? end - FKV_REC_HEADER_SIZE - 1 : 0;
    c->last_off = last < FKV_LOC_OFFSET_MASK ? (uint32_t)last : FKV_LOC_OFFSET_MASK;
}

/* One slot, in scalar code: the slots before the first empty one, and every
 * slot where SSE2 is missing. */
static inline void check_one(table_check *c, fkv_slot x, uint64_t pos)
{
    uint32_t loc = x.loc, off = loc & FKV_LOC_OFFSET_MASK;
    uint64_t entry = loc > FKV_LOC_DELETED;
    uint64_t dist = (pos - (FKV_SLOT_HASH(x.hash) >> c->shift)) & c->mask;
    c->n_live += entry;
    c->n_deleted += loc == FKV_LOC_DELETED;
    c->n_dl += loc >> 31; /* the deadline flag: only entries have bit 31 */
    c->bad |= (entry & ((off < c->first_off) | (off > c->last_off))) |
              ((1 - entry) & (x.hash != 0));
    if (loc == FKV_LOC_EMPTY) {
        c->after_empty = pos + 1;
    } else if (c->after_empty) {
        /* home wrapped from the table's end: the path passes the first empty */
        c->bad |= entry & ((dist > pos) | (pos - dist < c->after_empty));
    } else if (entry && dist > pos && dist - pos > c->wrap_need) {
        c->wrap_need = dist - pos;
    }
}

#ifdef FKV_HAVE_SSE2
/* max of signed 32-bit lanes (pmaxsd is SSE4.1) */
static inline __m128i max32(__m128i a, __m128i b)
{
    __m128i gt = _mm_cmpgt_epi32(a, b);
    return _mm_or_si128(_mm_and_si128(gt, a), _mm_andnot_si128(gt, b));
}

/* Slots [from, from + n), n a multiple of 4, once an empty slot has been
 * seen. Positions fit 31 bits (at most 2^27 slots), so signed compares
 * are right. */
static void check_sse2(table_check *c, const fkv_slot *sl, uint64_t from, size_t n)
{
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi32(1);
    const __m128i first = _mm_set1_epi32((int)c->first_off), last = _mm_set1_epi32((int)c->last_off);
    const __m128i offmask = _mm_set1_epi32((int)FKV_LOC_OFFSET_MASK);
    const __m128i hashmask = _mm_set1_epi32((int)FKV_HASH_MASK);
    const __m128i mask = _mm_set1_epi32((int)c->mask), four = _mm_set1_epi32(4);
    const __m128i shift = _mm_cvtsi32_si128((int)c->shift);
    __m128i pos = _mm_add_epi32(_mm_set1_epi32((int)from), _mm_setr_epi32(0, 1, 2, 3));
    __m128i after_empty = _mm_set1_epi32((int)c->after_empty);
    __m128i not_entry = zero, markers = zero, deadlines = zero, bad = zero;
    for (size_t i = 0; i < n; i += 4) {
        __m128 v0 = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(sl + i)));
        __m128 v1 = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(sl + i + 2)));
        __m128i loc = _mm_castps_si128(_mm_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1)));
        __m128i hash = _mm_castps_si128(_mm_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0)));
        __m128i empty = _mm_cmpeq_epi32(loc, zero), marker = _mm_cmpeq_epi32(loc, one);
        __m128i other = _mm_or_si128(empty, marker); /* all ones: not an entry */
        __m128i off = _mm_and_si128(loc, offmask);
        __m128i out = _mm_or_si128(_mm_cmpgt_epi32(first, off), _mm_cmpgt_epi32(off, last));
        /* 1 + the last empty position up to each lane: a running maximum */
        __m128i e = _mm_and_si128(empty, _mm_add_epi32(pos, one));
        e = max32(e, _mm_slli_si128(e, 4));
        e = max32(e, _mm_slli_si128(e, 8));
        e = max32(e, after_empty);
        after_empty = _mm_shuffle_epi32(e, _MM_SHUFFLE(3, 3, 3, 3));
        __m128i home = _mm_srl_epi32(_mm_and_si128(hash, hashmask), shift);
        __m128i start = _mm_sub_epi32(pos, _mm_and_si128(_mm_sub_epi32(pos, home), mask));
        out = _mm_or_si128(out, _mm_cmpgt_epi32(e, start)); /* an empty slot since home */
        bad = _mm_or_si128(bad, _mm_andnot_si128(other, out));
        bad = _mm_or_si128(bad, _mm_andnot_si128(_mm_cmpeq_epi32(hash, zero), other));
        not_entry = _mm_sub_epi32(not_entry, other);
        markers = _mm_sub_epi32(markers, marker);
        deadlines = _mm_add_epi32(deadlines, _mm_srli_epi32(loc, 31));
        pos = _mm_add_epi32(pos, four);
    }
    uint32_t lane[5][4];
    _mm_storeu_si128((__m128i *)lane[0], not_entry);
    _mm_storeu_si128((__m128i *)lane[1], markers);
    _mm_storeu_si128((__m128i *)lane[2], deadlines);
    _mm_storeu_si128((__m128i *)lane[3], bad);
    _mm_storeu_si128((__m128i *)lane[4], after_empty);
    uint64_t sum[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 4; j++)
            sum[k] += k == 3 ? (lane[k][j] != 0) : lane[k][j];
    c->n_live += n - sum[0];
    c->n_deleted += sum[1];
    c->n_dl += sum[2];
    c->bad |= sum[3];
    c->after_empty = lane[4][0];
}
#endif

void table_check_slots(table_check *c, const fkv_slot *sl, uint64_t from, size_t n)
{
    size_t i = 0;
#ifdef FKV_HAVE_SSE2
    /* Up to the first empty slot, and on to a multiple of 4, one by one.
     * Counters in 32-bit lanes: at most 2^27 slots, 2^25 per lane. */
    for (; i < n && (!c->after_empty || i % 4 != 0); i++)
        check_one(c, sl[i], from + i);
    if (i < n)
        check_sse2(c, sl + i, from + i, n - i);
#else
    for (; i < n; i++)
        check_one(c, sl[i], from + i);
#endif
}

int table_check_done(const table_check *c, uint64_t live, uint64_t deleted, uint64_t n_ttl)
{
    /* the run of non-empty slots at the table's end is cap - after_empty */
    return !c->bad && c->after_empty && c->wrap_need <= c->cap - c->after_empty &&
           c->n_live == live && c->n_deleted == deleted && c->n_dl == n_ttl &&
           (live + deleted) * 4 <= c->cap * 3;
}

int table_check_block(table_check *c, const fkv_slot *sl, uint64_t from, size_t n, uint64_t run)
{
    uint64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        fkv_slot x = sl[i];
        uint32_t loc = x.loc, off = loc & FKV_LOC_OFFSET_MASK;
        uint64_t entry = loc > FKV_LOC_DELETED;
        uint64_t dist = (from + i - (FKV_SLOT_HASH(x.hash) >> c->shift)) & c->mask;
        c->n_live += entry;
        c->n_deleted += loc == FKV_LOC_DELETED;
        c->n_dl += loc >> 31;
        bad |= (entry & ((off < c->first_off) | (off > c->last_off) | (dist > run))) |
               ((1 - entry) & (x.hash != 0));
        run = loc == FKV_LOC_EMPTY ? 0 : run + 1;
    }
    return !bad;
}

void table_count(const fkv_slot *sl, size_t n, uint32_t *live, uint32_t *deleted, uint32_t *ttl)
{
    uint32_t other = 0, markers = 0, dl = 0;
    size_t i = 0;
#ifdef FKV_HAVE_SSE2
    /* four slots a step, as table_check_slots: a snapshot of a million keys
     * counts two million slots at every save */
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi32(1);
    __m128i a_other = zero, a_markers = zero, a_dl = zero;
    for (; i + 4 <= n; i += 4) {
        __m128 v0 = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(sl + i)));
        __m128 v1 = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(sl + i + 2)));
        __m128i loc = _mm_castps_si128(_mm_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1)));
        __m128i marker = _mm_cmpeq_epi32(loc, one);
        a_other = _mm_sub_epi32(a_other, _mm_or_si128(_mm_cmpeq_epi32(loc, zero), marker));
        a_markers = _mm_sub_epi32(a_markers, marker);
        a_dl = _mm_add_epi32(a_dl, _mm_srli_epi32(loc, 31));
    }
    uint32_t lane[3][4];
    _mm_storeu_si128((__m128i *)lane[0], a_other);
    _mm_storeu_si128((__m128i *)lane[1], a_markers);
    _mm_storeu_si128((__m128i *)lane[2], a_dl);
    for (int j = 0; j < 4; j++) {
        other += lane[0][j];
        markers += lane[1][j];
        dl += lane[2][j];
    }
#endif
    for (; i < n; i++) {
        uint32_t loc = sl[i].loc;
        other += loc <= FKV_LOC_DELETED;
        markers += loc == FKV_LOC_DELETED;
        dl += loc >> 31;
    }
    *live = (uint32_t)n - other;
    *deleted = markers;
    *ttl = dl;
}
