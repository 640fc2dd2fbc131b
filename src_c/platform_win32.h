/*
 * platform_win32.h - the POSIX calls the core makes, over Win32.
 *
 * Included by platform.h alone, on Windows. The core is written against
 * POSIX; rather than an #ifdef at each call, this header gives it the
 * subset it uses under the same names (macros onto fkv_w_* functions, so
 * nothing collides with what the C runtime declares), built on:
 *
 *   files     CreateFileW, shared for reading, writing and deletion (so a
 *             compaction can rename a new file over one that is open), as
 *             C runtime descriptors (_open_osfhandle), so `int fd` stays;
 *             ReadFile/WriteFile at OVERLAPPED offsets; SetFileInformation
 *             for the end of file; FlushFileBuffers; paths UTF-8 -> UTF-16
 *   the lock  LockFileEx, exclusive and failing at once, on one byte far
 *             past any data (a Windows lock also blocks reads and writes
 *             of its range): a second handle is refused, whether it is
 *             another process's or this one's, as with flock
 *   rename    a POSIX-semantics rename where Windows has it (10 1709+),
 *             else MoveFileExW(REPLACE_EXISTING | WRITE_THROUGH)
 *   threads   SRWLOCK, CONDITION_VARIABLE, INIT_ONCE, _beginthreadex; no
 *             fork, so no pthread_atfork
 *   time      GetSystemTimePreciseAsFileTime, QueryPerformanceCounter
 *
 * No directory is ever synced here (file_lock_win32.c has no such step):
 * NTFS journals a rename, and WRITE_THROUGH returns once it is on disk.
 */
#ifndef FKV_PLATFORM_WIN32_H
#define FKV_PLATFORM_WIN32_H

#define _CRT_RAND_S /* rand_s, for file ids */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <process.h> /* _beginthreadex; before getpid is defined below */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#if defined(_MSC_VER) && !defined(__clang__)
typedef intptr_t ssize_t;
/* platform.h's atomics on the Interlocked intrinsics (the operands are 4
 * or 8 bytes; every order is at least as strong as asked). */
#define FKV_W_I64(p) ((volatile LONG64 *)(p))
#define FKV_W_I32(p) ((volatile LONG *)(p))
#define fkv_w_atomic_load(p)                                                    \
    (sizeof(*(p)) == 8 ? (uint64_t)InterlockedOr64(FKV_W_I64(p), 0)             \
                       : (uint64_t)(uint32_t)InterlockedOr(FKV_W_I32(p), 0))
#define fkv_w_atomic_store(p, v)                                                \
    (sizeof(*(p)) == 8 ? (void)InterlockedExchange64(FKV_W_I64(p), (LONG64)(v)) \
                       : (void)InterlockedExchange(FKV_W_I32(p), (LONG)(v)))
#define fkv_w_atomic_add(p, v)                                                  \
    (sizeof(*(p)) == 8 ? (uint64_t)InterlockedAdd64(FKV_W_I64(p), (LONG64)(v))  \
                       : (uint64_t)(uint32_t)InterlockedAdd(FKV_W_I32(p), (LONG)(v)))
#endif

/* 64-bit offsets, whatever the C runtime's off_t is */
typedef int64_t fkv_w_off_t;
#define off_t fkv_w_off_t

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef S_ISREG
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
#endif
#ifndef S_ISDIR
#define S_ISDIR(m) (((m) & S_IFMT) == S_IFDIR)
#endif

#define LOCK_SH 1
#define LOCK_EX 2
#define LOCK_NB 4
#define LOCK_UN 8

/* What the core reads of a file's status. */
struct fkv_w_stat {
    unsigned st_mode;
    int64_t st_size;
    uint64_t st_ino; /* the file index: identity within the volume */
    uint64_t st_dev; /* the volume's serial number */
    unsigned st_nlink; /* names the file has */
};

int fkv_w_open(const char *path, int flags, ...);
int fkv_w_close(int fd);
ssize_t fkv_w_pread(int fd, void *buf, size_t len, fkv_w_off_t off);
ssize_t fkv_w_pwrite(int fd, const void *buf, size_t len, fkv_w_off_t off);
int fkv_w_ftruncate(int fd, fkv_w_off_t len);
int fkv_w_fsync(int fd);
int fkv_w_flock(int fd, int op);
int fkv_w_fstat(int fd, struct fkv_w_stat *st);
int fkv_w_stat(const char *path, struct fkv_w_stat *st);
int fkv_w_rename(const char *from, const char *to);
int fkv_w_unlink(const char *path);
int fkv_w_link(const char *existing, const char *new_path);
int fkv_w_nanosleep(const struct timespec *req, struct timespec *rem);

#define open fkv_w_open
#define close fkv_w_close
#define pread fkv_w_pread
#define pwrite fkv_w_pwrite
#define ftruncate fkv_w_ftruncate
#define fsync fkv_w_fsync
#define fdatasync fkv_w_fsync
#define flock fkv_w_flock
#define stat fkv_w_stat /* the struct and the call, as in POSIX */
#define fstat fkv_w_fstat
#define rename fkv_w_rename
#define unlink fkv_w_unlink
#define link fkv_w_link
#define nanosleep fkv_w_nanosleep
#define getpid() ((int)GetCurrentProcessId())

/* ---- clocks ---------------------------------------------------------------- */

#ifndef CLOCK_REALTIME
#define CLOCK_REALTIME 0
#endif
#ifndef CLOCK_MONOTONIC
#define CLOCK_MONOTONIC 1
#endif

static inline int fkv_w_clock_gettime(int clock, struct timespec *ts)
{
    uint64_t ns;
    if (clock == CLOCK_MONOTONIC) {
        LARGE_INTEGER count, freq;
        QueryPerformanceCounter(&count);
        QueryPerformanceFrequency(&freq);
        uint64_t c = (uint64_t)count.QuadPart, f = (uint64_t)freq.QuadPart;
        ns = c / f * 1000000000u + c % f * 1000000000u / f;
    } else {
        FILETIME ft;
        GetSystemTimePreciseAsFileTime(&ft);
        uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
        ns = (t - 116444736000000000ull) * 100u; /* 100 ns since 1601 -> ns since 1970 */
    }
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
    return 0;
}
#define clock_gettime fkv_w_clock_gettime

/* ---- threads ---------------------------------------------------------------- */

typedef SRWLOCK fkv_w_mutex;
typedef CONDITION_VARIABLE fkv_w_cond;
typedef INIT_ONCE fkv_w_once;
#define pthread_mutex_t fkv_w_mutex
#define pthread_cond_t fkv_w_cond
#define pthread_once_t fkv_w_once
#define PTHREAD_MUTEX_INITIALIZER SRWLOCK_INIT
#define PTHREAD_ONCE_INIT INIT_ONCE_STATIC_INIT

static inline int pthread_mutex_init(fkv_w_mutex *m, const void *attr)
{
    (void)attr;
    InitializeSRWLock(m);
    return 0;
}
static inline int pthread_mutex_destroy(fkv_w_mutex *m) { (void)m; return 0; }
static inline int pthread_mutex_lock(fkv_w_mutex *m) { AcquireSRWLockExclusive(m); return 0; }
static inline int pthread_mutex_unlock(fkv_w_mutex *m) { ReleaseSRWLockExclusive(m); return 0; }
static inline int pthread_mutex_trylock(fkv_w_mutex *m)
{
    return TryAcquireSRWLockExclusive(m) ? 0 : EBUSY;
}

static inline int pthread_cond_init(fkv_w_cond *c, const void *attr)
{
    (void)attr;
    InitializeConditionVariable(c);
    return 0;
}
static inline int pthread_cond_destroy(fkv_w_cond *c) { (void)c; return 0; }
static inline int pthread_cond_signal(fkv_w_cond *c) { WakeConditionVariable(c); return 0; }
static inline int pthread_cond_broadcast(fkv_w_cond *c) { WakeAllConditionVariable(c); return 0; }
static inline int pthread_cond_wait(fkv_w_cond *c, fkv_w_mutex *m)
{
    return SleepConditionVariableSRW(c, m, INFINITE, 0) ? 0 : EINVAL;
}

int fkv_w_run_once(fkv_w_once *once, void (*fn)(void));
#define pthread_once fkv_w_run_once

typedef HANDLE fkv_w_thread;
#define pthread_t fkv_w_thread
int fkv_w_thread_create(fkv_w_thread *t, const void *attr, void *(*fn)(void *), void *arg);
int fkv_w_thread_join(fkv_w_thread t, void **result);
#define pthread_create fkv_w_thread_create
#define pthread_join fkv_w_thread_join

/* No fork on Windows: nothing to register. */
static inline int pthread_atfork(void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void))
{
    (void)prepare;
    (void)parent;
    (void)child;
    return 0;
}

#endif /* FKV_PLATFORM_WIN32_H */
