/* file_map.c - the read-only mapping of a data file (see file_map.h). */
#include "platform.h" /* first: sets the feature macros */
#include "file_map.h"
#include "status.h"

#if defined(_WIN32)

const uint8_t *fkv_map_open(int fd)
{
    (void)fd;
    return NULL;
}

void fkv_map_close(const uint8_t *map)
{
    (void)map;
}

uint8_t *fkv_map_open_writable(int fd)
{
    (void)fd;
    return NULL;
}

int fkv_map_write(uint8_t *map, uint64_t off, const void *src, size_t n)
{
    (void)map, (void)off, (void)src, (void)n;
    return FKV_EIO;
}

uint64_t fkv_map_let_go(const uint8_t *map, uint64_t from, uint64_t to)
{
    (void)map, (void)from;
    return to;
}

int fkv_map_copy(void *dst, const uint8_t *map, uint64_t off, size_t n)
{
    (void)dst, (void)map, (void)off, (void)n;
    return FKV_EIO;
}

int fkv_map_guarded(int (*fn)(void *), void *arg)
{
    return fn(arg); /* nothing is mapped here */
}

void fkv_map_will_read(const uint8_t *map, uint64_t off, uint64_t n)
{
    (void)map, (void)off, (void)n;
}

#else

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* 64-bit address spaces only: a 32-bit process keeps its room for itself. */
#define MAP_USABLE (sizeof(void *) >= 8)

/* Where the running thread's guarded copy or call resumes after a fault,
 * or NULL. */
static FKV_THREAD_LOCAL sigjmp_buf *copy_guard;

/* The mappings open now (0: a free place). The handler asks these first:
 * a thread-local read in a shared library may allocate on a thread's first
 * touch, which a signal handler must not do, and a fault outside every
 * mapping is never ours. */
#define MAPS_MAX 256
static uintptr_t maps[MAPS_MAX];

static struct sigaction previous;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_installed;

static int in_a_mapping(uintptr_t addr)
{
    for (int i = 0; i < MAPS_MAX; i++) {
        uintptr_t start = fkv_atomic_load(&maps[i], FKV_ACQUIRE);
        if (start && addr - start < (uintptr_t)FKV_MAP_BYTES)
            return 1;
    }
    return 0;
}

/* A SIGBUS that is not ours, to the handler that was there before, which
 * stays second in line: called as it would have been; or, for the default
 * action, put back, so the process ends as it would have (a fault by
 * running the instruction again, a sent signal by raising it again). */
static void pass_on(int sig, siginfo_t *info, void *context)
{
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    if (previous.sa_handler == SIG_IGN && info->si_code <= 0)
        return; /* an ignored signal sent by someone: still ignored */
    sigaction(SIGBUS, &previous, NULL);
    if (info->si_code <= 0)
        raise(sig);
}

/* A fault in a mapping comes from a guarded copy (nothing else touches the
 * mappings): that copy resumes with an error. */
static void on_sigbus(int sig, siginfo_t *info, void *context)
{
    if (info->si_code > 0 && in_a_mapping((uintptr_t)info->si_addr)) {
        sigjmp_buf *guard = copy_guard;
        if (guard)
            siglongjmp(*guard, 1);
    }
    pass_on(sig, info, context);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    /* NODEFER: leaving by siglongjmp must not leave SIGBUS blocked. */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    handler_installed = sigaction(SIGBUS, &sa, &previous) == 0;
}

/* fd mapped with prot over FKV_MAP_BYTES and listed for the handler, or NULL. */
static uint8_t *map_listed(int fd, int prot)
{
    if (!MAP_USABLE)
        return NULL;
    pthread_once(&handler_once, install_handler);
    if (!handler_installed)
        return NULL;
    void *m = mmap(NULL, (size_t)FKV_MAP_BYTES, prot, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return NULL;
    for (int i = 0; i < MAPS_MAX; i++) {
        uintptr_t free_place = 0;
        if (fkv_atomic_cas_word(&maps[i], &free_place, (uintptr_t)m))
            return (uint8_t *)m;
    }
    munmap(m, (size_t)FKV_MAP_BYTES); /* that many stores open: the rest use pread */
    return NULL;
}

const uint8_t *fkv_map_open(int fd)
{
    uint8_t *m = map_listed(fd, PROT_READ);
    /* Lookups land anywhere in the log: no readahead around a fault. */
    if (m)
        madvise(m, (size_t)FKV_MAP_BYTES, MADV_RANDOM);
    return m;
}

uint8_t *fkv_map_open_writable(int fd)
{
    return map_listed(fd, PROT_READ | PROT_WRITE);
}

void fkv_map_close(const uint8_t *map)
{
    if (!map)
        return;
    for (int i = 0; i < MAPS_MAX; i++) {
        uintptr_t mine = (uintptr_t)map;
        if (fkv_atomic_cas_word(&maps[i], &mine, 0))
            break;
    }
    munmap((void *)map, (size_t)FKV_MAP_BYTES);
}

int fkv_map_guarded(int (*fn)(void *), void *arg)
{
    sigjmp_buf resume, *outer = copy_guard; /* a guarded call's, if inside one */
    if (sigsetjmp(resume, 0)) {
        copy_guard = outer;
        fkv_set_errno(EIO);
        return FKV_EIO;
    }
    copy_guard = &resume;
    /* The fences keep fn's reads between setting and clearing the guard. */
    fkv_compiler_fence();
    int rc = fn(arg);
    fkv_compiler_fence();
    copy_guard = outer;
    return rc;
}

typedef struct map_copy {
    void *dst;
    const uint8_t *src;
    size_t n;
} map_copy;

static int copy_out(void *arg)
{
    map_copy *c = (map_copy *)arg;
    memcpy(c->dst, c->src, c->n);
    return FKV_OK;
}

int fkv_map_copy(void *dst, const uint8_t *map, uint64_t off, size_t n)
{
    map_copy c = {dst, map + off, n};
    return fkv_map_guarded(copy_out, &c);
}

/* Front to back, 16 bytes a step, so that a process killed mid-copy
 * leaves a prefix of the bytes in the file, as a cut-short write would;
 * never a later part without an earlier one (memcpy may store the end
 * first), which the walk at open could take for damage: the members of a
 * group whole without its header. The fences keep the compiler from
 * turning the loop back into a memcpy. */
static int copy_in_order(void *arg)
{
    map_copy *c = (map_copy *)arg;
    uint8_t *dst = (uint8_t *)c->dst;
    size_t i = 0;
    for (; i + 16 <= c->n; i += 16) {
        memcpy(dst + i, c->src + i, 16);
        fkv_compiler_fence();
    }
    for (; i < c->n; i++) {
        dst[i] = c->src[i];
        fkv_compiler_fence();
    }
    return FKV_OK;
}

int fkv_map_write(uint8_t *map, uint64_t off, const void *src, size_t n)
{
    map_copy c = {map + off, (const uint8_t *)src, n};
    return fkv_map_guarded(copy_in_order, &c);
}

uint64_t fkv_map_let_go(const uint8_t *map, uint64_t from, uint64_t to)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    from &= ~(page - 1);
    to &= ~(page - 1);
    if (to > from)
        (void)madvise((void *)(map + from), (size_t)(to - from), MADV_DONTNEED);
    return to;
}

void fkv_map_will_read(const uint8_t *map, uint64_t off, uint64_t n)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = off & ~(page - 1);
    (void)madvise((void *)(map + start), (size_t)(off + n - start), MADV_WILLNEED);
}

#endif
