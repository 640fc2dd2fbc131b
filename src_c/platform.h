/*
 * platform.h - every #ifdef of the C core lives here.
 *
 * The rest of the core is written against POSIX (pread/pwrite, flock,
 * pthreads); on Windows platform_win32.h gives it those calls over Win32.
 * It calls the small wrappers below where platforms differ:
 * syncing data to stable storage, the branch hints, and little-endian
 * loads/stores for the on-disk format (the format is little-endian on every
 * host, so a file moves between machines).
 */
#ifndef FKV_PLATFORM_H
#define FKV_PLATFORM_H

#if defined(_WIN32)
#include "platform_win32.h" /* the POSIX calls below, over Win32 */
#else
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <string.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#if defined(__linux__)
#include <sys/random.h>
#endif
#include <unistd.h>
#endif

/* A monotonic clock that is cheap to read, at a few milliseconds' grain. */
#if defined(__linux__)
#define FKV_CLOCK_COARSE CLOCK_MONOTONIC_COARSE
#else
#define FKV_CLOCK_COARSE CLOCK_MONOTONIC
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FKV_LIKELY(x) __builtin_expect(!!(x), 1)
#define FKV_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define FKV_THREAD_LOCAL __thread
#define FKV_PREFETCH(addr) __builtin_prefetch((addr), 1, 1)
#elif defined(_MSC_VER)
#define FKV_LIKELY(x) (x)
#define FKV_UNLIKELY(x) (x)
#define FKV_THREAD_LOCAL __declspec(thread)
#define FKV_PREFETCH(addr) ((void)(addr))
#else
#define FKV_LIKELY(x) (x)
#define FKV_UNLIKELY(x) (x)
#define FKV_THREAD_LOCAL _Thread_local
#define FKV_PREFETCH(addr) ((void)(addr))
#endif

/* Atomics, in the few shapes the core uses, on 4- and 8-byte operands.
 * GCC and clang have the __atomic builtins; MSVC the Interlocked intrinsics,
 * each at least as strong as the order asked. Nothing outside this file
 * and platform_win32.h names a compiler's builtins (tests/test_portable_c.py). */
#if defined(_MSC_VER) && !defined(__clang__)
#define FKV_RELAXED 0
#define FKV_ACQUIRE 0
#define FKV_RELEASE 0
#define FKV_ACQ_REL 0
#define fkv_atomic_load(p, o) fkv_w_atomic_load(p)
#define fkv_atomic_store(p, v, o) fkv_w_atomic_store(p, v)
#define fkv_atomic_add(p, v, o) fkv_w_atomic_add(p, (int64_t)(v))
#define fkv_atomic_sub(p, v, o) fkv_w_atomic_add(p, -(int64_t)(v))
#define fkv_atomic_fetch_add(p, v, o) (fkv_w_atomic_add(p, (int64_t)(v)) - (v))
#define fkv_compiler_fence() _ReadWriteBarrier()
/* a CAS on a word: 1 if *p held *expected and now holds desired, else 0
 * with *expected set to what *p held */
static inline int fkv_atomic_cas_word(uintptr_t *p, uintptr_t *expected, uintptr_t desired)
{
    uintptr_t was = (uintptr_t)InterlockedCompareExchange64((volatile LONG64 *)p,
                                                            (LONG64)desired, (LONG64)*expected);
    if (was == *expected)
        return 1;
    *expected = was;
    return 0;
}
/* all of MSVC's targets are little-endian */
#define FKV_LITTLE_ENDIAN 1
#else
#define FKV_RELAXED __ATOMIC_RELAXED
#define FKV_ACQUIRE __ATOMIC_ACQUIRE
#define FKV_RELEASE __ATOMIC_RELEASE
#define FKV_ACQ_REL __ATOMIC_ACQ_REL
#define fkv_atomic_load(p, o) __atomic_load_n(p, o)
#define fkv_atomic_store(p, v, o) __atomic_store_n(p, v, o)
#define fkv_atomic_add(p, v, o) __atomic_add_fetch(p, v, o)
#define fkv_atomic_sub(p, v, o) __atomic_sub_fetch(p, v, o)
#define fkv_atomic_fetch_add(p, v, o) __atomic_fetch_add(p, v, o)
/* keeps the compiler from moving memory accesses across it (a signal
 * handler on this thread sees them in program order) */
#define fkv_compiler_fence() __atomic_signal_fence(__ATOMIC_SEQ_CST)
static inline int fkv_atomic_cas_word(uintptr_t *p, uintptr_t *expected, uintptr_t desired)
{
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FKV_LITTLE_ENDIAN 1
#else
#define FKV_LITTLE_ENDIAN 0
#endif
#endif

/* A compile-time check (MSVC's C mode has _Static_assert only with /std:c11). */
#if defined(_MSC_VER) && !defined(__clang__)
#define FKV_STATIC_ASSERT_AT(cond, line) typedef char fkv_static_assert_##line[(cond) ? 1 : -1]
#define FKV_STATIC_ASSERT_LINE(cond, line) FKV_STATIC_ASSERT_AT(cond, line)
#define FKV_STATIC_ASSERT(cond, why) FKV_STATIC_ASSERT_LINE(cond, __LINE__)
#else
#define FKV_STATIC_ASSERT(cond, why) _Static_assert(cond, why)
#endif

/* CRC-32C in hardware: the SSE4.2 crc32 instruction, used when the CPU
 * reports it (FKV_CPU_HAS_SSE42), in functions compiled for it. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FKV_HAVE_SSE42_CRC 1
#define FKV_TARGET_SSE42 __attribute__((target("sse4.2")))
static inline int FKV_CPU_HAS_SSE42(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#elif defined(_MSC_VER) && defined(_M_X64)
#include <intrin.h>
#define FKV_HAVE_SSE42_CRC 1
#define FKV_TARGET_SSE42 /* MSVC emits any intrinsic without a flag */
static inline int FKV_CPU_HAS_SSE42(void)
{
    int info[4];
    __cpuid(info, 1);
    return (info[2] >> 20) & 1; /* ECX bit 20: SSE4.2 */
}
#endif
#if defined(__x86_64__) || defined(_M_X64)
#define FKV_X86_64 1
#endif

/* SSE2 is part of every x86-64 CPU (and what MSVC targets there). */
#if defined(__SSE2__) || defined(_M_X64)
#define FKV_HAVE_SSE2 1
#include <emmintrin.h>
#endif

/* Copy up to len bytes between two files inside the kernel (no trip
 * through user memory): the bytes copied, or -1 with errno (ENOSYS, EXDEV,
 * EINVAL... where it cannot: the caller then copies through a buffer). */
static inline int64_t fkv_kernel_copy(int from, uint64_t from_off, int to, uint64_t to_off,
                                      size_t len)
{
#if defined(__linux__)
    loff_t in = (loff_t)from_off, out = (loff_t)to_off;
    return (int64_t)copy_file_range(from, &in, to, &out, len, 0);
#else
    (void)from; (void)from_off; (void)to; (void)to_off; (void)len;
    errno = ENOSYS;
    return -1;
#endif
}

/* Ask the kernel to start writing a range of fd to the disk now, without
 * waiting: a long copy overlaps its writeback, and the flush at its end
 * waits for less. A hint; nothing where the system has no such call. */
static inline void fkv_start_writeback(int fd, uint64_t off, uint64_t len)
{
#if defined(__linux__)
    (void)sync_file_range(fd, (off64_t)off, (off64_t)len, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)off; (void)len;
#endif
}

/* End this process at once, as a kill from outside would (SIGKILL; on
 * Windows TerminateProcess, exit code 1): the crash tests' stop points. */
static inline void fkv_kill_self(void)
{
#if defined(_WIN32)
    TerminateProcess(GetCurrentProcess(), 1);
#else
    kill(getpid(), SIGKILL);
#endif
}

/* The calling thread, as a number no other live thread of the process
 * has (the owner of a store's writer slot, transaction.c). */
static inline uint64_t fkv_thread_self(void)
{
#if defined(_WIN32)
    return (uint64_t)GetCurrentThreadId();
#else
    return (uint64_t)(uintptr_t)pthread_self();
#endif
}

/* Push written data to stable storage. macOS's fsync only reaches the drive's
 * cache; F_FULLFSYNC asks the drive to flush it too. */
static inline int fkv_fdatasync(int fd)
{
#if defined(_WIN32)
    return fsync(fd); /* FlushFileBuffers */
#elif defined(__APPLE__)
    if (fcntl(fd, F_FULLFSYNC) == 0)
        return 0;
    return fsync(fd);
#elif defined(__linux__)
    return fdatasync(fd);
#else
    return fsync(fd);
#endif
}

/* A pread that fails with EAGAIN instead of waiting for the disk: Linux's
 * preadv2 with RWF_NOWAIT answers from the page cache or not at all. Where
 * the kernel cannot tell, it always fails, and callers take the path that
 * may wait. */
static inline ssize_t fkv_pread_nowait(int fd, void *buf, size_t len, off_t off)
{
#if defined(__linux__) && defined(RWF_NOWAIT)
    struct iovec iov;
    iov.iov_base = buf;
    iov.iov_len = len;
    return preadv2(fd, &iov, 1, off, RWF_NOWAIT);
#else
    (void)fd; (void)buf; (void)len; (void)off;
    errno = EAGAIN;
    return -1;
#endif
}

/* A condition variable whose timed waits run on a clock that never jumps
 * (a wall-clock step must not stretch a wait). macOS has no clock choice
 * for condition variables but waits on a relative time instead. */
static inline int fkv_cond_init(pthread_cond_t *c)
{
#if defined(_WIN32)
    InitializeConditionVariable(c);
    return 0;
#elif defined(__APPLE__)
    return pthread_cond_init(c, NULL);
#else
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
#endif
}

/* Wait on c (mutex m held) for at most us microseconds. */
static inline void fkv_cond_wait_us(pthread_cond_t *c, pthread_mutex_t *m, uint64_t us)
{
#if defined(_WIN32)
    SleepConditionVariableSRW(c, m, (DWORD)((us + 999u) / 1000u), 0);
#elif defined(__APPLE__)
    struct timespec ts;
    ts.tv_sec = (time_t)(us / 1000000u);
    ts.tv_nsec = (long)(us % 1000000u) * 1000L;
    pthread_cond_timedwait_relative_np(c, m, &ts);
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (us % 1000000u) * 1000u;
    ts.tv_sec += (time_t)(us / 1000000u + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(c, m, &ts);
#endif
}

/* 32 random bits for a file id: from the system's generator where there is
 * one, else from the clock, the process id and an address (ids only have to
 * differ between files, not resist an attacker). */
static inline uint32_t fkv_random_u32(void)
{
    uint32_t v = 0;
#if defined(_WIN32)
    unsigned int r = 0;
    if (rand_s(&r) == 0)
        return r;
    v = (uint32_t)GetTickCount() ^ (uint32_t)GetCurrentProcessId() << 16 ^ (uint32_t)(uintptr_t)&v;
#elif defined(__APPLE__)
    v = arc4random();
#elif defined(__linux__)
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^ (uint32_t)getpid() << 16 ^
        (uint32_t)(uintptr_t)&v;
#endif
    return v;
}

/* Zeroed memory straight from the system, given back whole by fkv_unmap:
 * the index's tables, so that a table dropped when it grows (or closes)
 * leaves no hole in the heap that keeps its pages. Large tables ask for
 * huge pages, where the kernel allows: fewer page faults when one is filled. */
static inline void *fkv_map_zeroed(size_t bytes)
{
#if defined(_WIN32)
    return VirtualAlloc(NULL, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#else
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#if defined(MADV_HUGEPAGE)
    if (bytes >= (4u << 20))
        (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
#endif
}

/* Which pages memory from fkv_map_zeroed should be given on first touch
 * from now on. A table read block by block wants small ones: a huge page
 * is zeroed whole (and, with the kernel's usual defrag setting, compacted
 * for) on the first touch of any 64 KiB block in it, 0.2-0.5 ms a read and
 * at times several ms, where small pages cost about 15 µs a block. */
typedef enum fkv_pages { FKV_PAGES_SMALL, FKV_PAGES_HUGE } fkv_pages;

static inline void fkv_map_prefer(void *p, size_t bytes, fkv_pages pages)
{
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
    if (p && bytes >= (4u << 20))
        (void)madvise(p, bytes, pages == FKV_PAGES_HUGE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#else
    (void)p, (void)bytes, (void)pages;
#endif
}

/* Back the whole pages inside p[0..bytes) with memory now, in one call
 * instead of a fault a page: a table block about to be read into (64 KiB
 * in 0.11 ms instead of 0.13, C, medians of 175 reads). Where the kernel
 * cannot, the first touch does it as usual. */
static inline void fkv_map_populate(void *p, size_t bytes)
{
#if defined(MADV_POPULATE_WRITE)
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)p + bytes) & ~(page - 1);
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
#else
    (void)p, (void)bytes;
#endif
}

static inline void fkv_unmap(void *p, size_t bytes)
{
#if defined(_WIN32)
    (void)bytes;
    if (p)
        VirtualFree(p, 0, MEM_RELEASE);
#else
    if (p)
        munmap(p, bytes);
#endif
}

/* Opening a path that is a symbolic link fails, where that can be asked. */
#if defined(O_NOFOLLOW)
#define FKV_O_NOFOLLOW O_NOFOLLOW
#else
#define FKV_O_NOFOLLOW 0
#endif

/* Open flags that skip updating the access time on reads, where allowed. */
#if defined(O_NOATIME)
#define FKV_O_NOATIME O_NOATIME
#else
#define FKV_O_NOATIME 0
#endif

static inline uint16_t fkv_load16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fkv_load32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t fkv_load64(const uint8_t *p)
{
    return (uint64_t)fkv_load32(p) | ((uint64_t)fkv_load32(p + 4) << 32);
}

static inline void fkv_store16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void fkv_store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void fkv_store64(uint8_t *p, uint64_t v)
{
    fkv_store32(p, (uint32_t)v);
    fkv_store32(p + 4, (uint32_t)(v >> 32));
}

#endif /* FKV_PLATFORM_H */
