/* platform_win32.c - the Win32 side of the POSIX calls (platform_win32.h). */
#include "platform.h" /* first: sets the feature macros */

#if defined(_WIN32)

#include <stdarg.h>

/* One byte far past any data file (1 GiB at most) holds the store's lock. */
#define LOCK_OFFSET_HIGH 0x40000000u

/* errno for the last Win32 error. */
static int errno_of(DWORD err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
    case ERROR_BAD_NETPATH:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_WRITE_PROTECT:
        return EACCES;
    case ERROR_SHARING_VIOLATION:
        return EBUSY;
    case ERROR_LOCK_VIOLATION:
    case ERROR_IO_PENDING:
        return EWOULDBLOCK;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
        return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return ENOSPC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    case ERROR_INVALID_HANDLE:
        return EBADF;
    case ERROR_DIRECTORY:
        return ENOTDIR;
    case ERROR_NOT_SUPPORTED:
    case ERROR_INVALID_PARAMETER:
        return EINVAL;
    default:
        return EIO;
    }
}

static int fail(void)
{
    errno = errno_of(GetLastError());
    return -1;
}

/* path as UTF-16 in fresh memory (free it), or NULL with errno set. */
static wchar_t *wide(const char *path)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (n <= 0) {
        errno = ENOENT; /* not UTF-8: no such name */
        return NULL;
    }
    wchar_t *w = (wchar_t *)malloc((size_t)n * sizeof *w);
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w, n);
    return w;
}

static HANDLE handle_of(int fd) { return (HANDLE)_get_osfhandle(fd); }

static int is_directory(const wchar_t *w)
{
    DWORD a = GetFileAttributesW(w);
    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

int fkv_w_open(const char *path, int flags, ...)
{
    wchar_t *w = wide(path);
    if (!w)
        return -1;
    DWORD disposition = OPEN_EXISTING;
    if ((flags & O_CREAT) && (flags & O_TRUNC))
        disposition = CREATE_ALWAYS;
    else if (flags & O_CREAT)
        disposition = OPEN_ALWAYS;
    else if (flags & O_TRUNC)
        disposition = TRUNCATE_EXISTING;
    DWORD access = GENERIC_READ | ((flags & (O_RDWR | O_WRONLY)) ? GENERIC_WRITE : 0);
    HANDLE h = CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, disposition, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        errno = err == ERROR_ACCESS_DENIED && is_directory(w) ? EISDIR : errno_of(err);
        free(w);
        return -1;
    }
    free(w);
    int fd = _open_osfhandle((intptr_t)h, _O_BINARY | ((flags & (O_RDWR | O_WRONLY)) ? 0 : _O_RDONLY));
    if (fd < 0) {
        CloseHandle(h);
        errno = EMFILE;
    }
    return fd;
}

int fkv_w_close(int fd) { return _close(fd); }

/* One transfer is at most 1 GiB (a DWORD count); callers loop on short ones. */
#define MAX_TRANSFER (1u << 30)

/* An OVERLAPPED naming offset off: a transfer there, not at the file pointer. */
static OVERLAPPED at_offset(uint64_t off)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)(off & 0xffffffffu);
    ov.OffsetHigh = (DWORD)(off >> 32);
    return ov;
}

ssize_t fkv_w_pread(int fd, void *buf, size_t len, fkv_w_off_t off)
{
    OVERLAPPED ov = at_offset((uint64_t)off);
    DWORD n = 0;
    if (!ReadFile(handle_of(fd), buf, (DWORD)(len < MAX_TRANSFER ? len : MAX_TRANSFER), &n, &ov))
        return GetLastError() == ERROR_HANDLE_EOF ? 0 : fail();
    return (ssize_t)n;
}

ssize_t fkv_w_pwrite(int fd, const void *buf, size_t len, fkv_w_off_t off)
{
    OVERLAPPED ov = at_offset((uint64_t)off);
    DWORD n = 0;
    if (!WriteFile(handle_of(fd), buf, (DWORD)(len < MAX_TRANSFER ? len : MAX_TRANSFER), &n, &ov))
        return fail();
    return (ssize_t)n;
}

int fkv_w_ftruncate(int fd, fkv_w_off_t len)
{
    FILE_END_OF_FILE_INFO info;
    info.EndOfFile.QuadPart = len;
    return SetFileInformationByHandle(handle_of(fd), FileEndOfFileInfo, &info, sizeof info)
               ? 0 : fail();
}

int fkv_w_fsync(int fd) { return FlushFileBuffers(handle_of(fd)) ? 0 : fail(); }

int fkv_w_flock(int fd, int op)
{
    OVERLAPPED ov = at_offset((uint64_t)LOCK_OFFSET_HIGH << 32);
    HANDLE h = handle_of(fd);
    if (op & LOCK_UN)
        return UnlockFileEx(h, 0, 1, 0, &ov) ? 0 : fail();
    DWORD how = (op & LOCK_EX ? LOCKFILE_EXCLUSIVE_LOCK : 0) |
                (op & LOCK_NB ? LOCKFILE_FAIL_IMMEDIATELY : 0);
    return LockFileEx(h, how, 0, 1, 0, &ov) ? 0 : fail();
}

static void fill_stat(const BY_HANDLE_FILE_INFORMATION *info, struct fkv_w_stat *st)
{
    st->st_mode = (info->dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ? S_IFDIR | 0755
                                                                        : S_IFREG | 0644;
    st->st_size = (int64_t)(((uint64_t)info->nFileSizeHigh << 32) | info->nFileSizeLow);
    st->st_ino = ((uint64_t)info->nFileIndexHigh << 32) | info->nFileIndexLow;
    st->st_dev = info->dwVolumeSerialNumber;
    st->st_nlink = (unsigned)info->nNumberOfLinks;
}

int fkv_w_fstat(int fd, struct fkv_w_stat *st)
{
    BY_HANDLE_FILE_INFORMATION info;
    if (!GetFileInformationByHandle(handle_of(fd), &info))
        return fail();
    fill_stat(&info, st);
    return 0;
}

int fkv_w_stat(const char *path, struct fkv_w_stat *st)
{
    wchar_t *w = wide(path);
    if (!w)
        return -1;
    HANDLE h = CreateFileW(w, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE)
        return fail();
    BY_HANDLE_FILE_INFORMATION info;
    int ok = GetFileInformationByHandle(h, &info);
    if (!ok) {
        int rc = fail();
        CloseHandle(h);
        return rc;
    }
    CloseHandle(h);
    fill_stat(&info, st);
    return 0;
}

#ifndef FILE_RENAME_FLAG_REPLACE_IF_EXISTS
#define FILE_RENAME_FLAG_REPLACE_IF_EXISTS 0x1
#define FILE_RENAME_FLAG_POSIX_SEMANTICS 0x2
#endif
#define FILE_RENAME_INFO_EX_CLASS 22 /* FileRenameInfoEx, Windows 10 1709 */

/* The POSIX rename: replaces a target that is open (as the store's data
 * file is, during compaction). 0, or -1 where Windows cannot do it. */
static int rename_posix(const wchar_t *from, const wchar_t *to)
{
    size_t tlen = wcslen(to);
    size_t size = sizeof(FILE_RENAME_INFO) + tlen * sizeof(wchar_t);
    FILE_RENAME_INFO *info = (FILE_RENAME_INFO *)calloc(1, size);
    if (!info)
        return -1;
    HANDLE h = CreateFileW(from, DELETE | SYNCHRONIZE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    int rc = -1;
    if (h != INVALID_HANDLE_VALUE) {
        /* in FileRenameInfoEx the first field holds flags, not a BOOLEAN */
        *(DWORD *)info = FILE_RENAME_FLAG_REPLACE_IF_EXISTS | FILE_RENAME_FLAG_POSIX_SEMANTICS;
        info->RootDirectory = NULL;
        info->FileNameLength = (DWORD)(tlen * sizeof(wchar_t));
        memcpy(info->FileName, to, tlen * sizeof(wchar_t));
        if (SetFileInformationByHandle(h, (FILE_INFO_BY_HANDLE_CLASS)FILE_RENAME_INFO_EX_CLASS,
                                       info, (DWORD)size))
            rc = 0;
        CloseHandle(h);
    }
    free(info);
    return rc;
}

int fkv_w_rename(const char *from, const char *to)
{
    wchar_t *wf = wide(from), *wt = wf ? wide(to) : NULL;
    int rc = -1;
    if (wf && wt) {
        if (rename_posix(wf, wt) == 0 ||
            MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
            rc = 0;
        else
            fail();
    }
    free(wf);
    free(wt);
    return rc;
}

int fkv_w_unlink(const char *path)
{
    wchar_t *w = wide(path);
    if (!w)
        return -1;
    int rc = DeleteFileW(w) ? 0 : fail();
    free(w);
    return rc;
}

int fkv_w_link(const char *existing, const char *new_path)
{
    wchar_t *we = wide(existing), *wn = we ? wide(new_path) : NULL;
    int rc = -1;
    if (we && wn)
        rc = CreateHardLinkW(wn, we, NULL) ? 0 : fail();
    free(we);
    free(wn);
    return rc;
}

int fkv_w_nanosleep(const struct timespec *req, struct timespec *rem)
{
    uint64_t ms = (uint64_t)req->tv_sec * 1000u + ((uint64_t)req->tv_nsec + 999999u) / 1000000u;
    Sleep((DWORD)(ms < 0xfffffffeu ? ms : 0xfffffffeu));
    if (rem) {
        rem->tv_sec = 0;
        rem->tv_nsec = 0;
    }
    return 0;
}

static BOOL CALLBACK run_once(PINIT_ONCE once, PVOID fn, PVOID *context)
{
    (void)once;
    (void)context;
    ((void (*)(void))fn)();
    return TRUE;
}

int fkv_w_run_once(fkv_w_once *once, void (*fn)(void))
{
    return InitOnceExecuteOnce(once, run_once, (PVOID)fn, NULL) ? 0 : EINVAL;
}

/* What a new thread runs, handed over on the heap (the creator may return
 * before the thread starts). */
typedef struct thread_start {
    void *(*fn)(void *);
    void *arg;
} thread_start;

static unsigned __stdcall run_thread(void *p)
{
    thread_start start = *(thread_start *)p;
    free(p);
    start.fn(start.arg);
    return 0;
}

int fkv_w_thread_create(fkv_w_thread *t, const void *attr, void *(*fn)(void *), void *arg)
{
    (void)attr;
    thread_start *start = (thread_start *)malloc(sizeof *start);
    if (!start)
        return ENOMEM;
    start->fn = fn;
    start->arg = arg;
    /* _beginthreadex, not CreateThread: the thread uses the C runtime */
    uintptr_t h = _beginthreadex(NULL, 0, run_thread, start, 0, NULL);
    if (h == 0) {
        free(start);
        return EAGAIN;
    }
    *t = (HANDLE)h;
    return 0;
}

int fkv_w_thread_join(fkv_w_thread t, void **result)
{
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    if (result)
        *result = NULL;
    return 0;
}

#endif /* _WIN32 */
