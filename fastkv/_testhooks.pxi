# Hooks for the test suite: a pinned clock, held mutexes, failing flushes.
# Included by _core.pyx (one module: these share its C declarations).

# ---- test hooks --------------------------------------------------------------

def _set_clock(ms):
    """Pin the core's clock at ms since the epoch (None: real clock). Tests only."""
    fkv_clock_set(0 if ms is None else <uint64_t>ms)


_now_ms = now_ms  # (_groups.pxi)


def _debug_hold(Store store, double seconds):
    """Hold store's mutex for a while without the GIL. Tests only."""
    cdef uint64_t ms = <uint64_t>(seconds * 1000.0)
    cdef int rc
    store._live()
    with nogil:
        rc = fkv_debug_hold(store._s, ms)
    if rc != FKV_OK:
        _raise(store, rc, None)


def _debug_pause_next_read(Store store, double seconds):
    """Make the next read that waits sleep in the core, outside the store's
    mutex, as a read from a slow disk would. Tests only."""
    store._live()
    cdef int rc = fkv_debug_pause_next_read(store._s, <uint64_t>(seconds * 1000.0))
    if rc != FKV_OK:
        _raise(store, rc, None)


def _debug_reads_paused(Store store):
    """How many reads are sleeping in _debug_pause_next_read now. Tests only."""
    store._live()
    return fkv_debug_reads_paused(store._s)


def _debug_fail_next_flush(Store store, int err):
    """Make the store's next flush fail with errno err. Tests only."""
    store._live()
    cdef int rc = fkv_debug_fail_next_flush(store._s, err)
    if rc != FKV_OK:
        _raise(store, rc, None)


cdef extern from "store.h" nogil:
    void fkv_debug_kill_at_replace_step(int step)
    int fkv_replace_steps()


def _debug_kill_at_replace_step(int step):
    """End this process, as a kill would, when the next replace of a file
    (compaction, repair, a snapshot's save) reaches step `step` (1: before
    it starts; _replace_steps(): after its last). 0: off. Tests only."""
    fkv_debug_kill_at_replace_step(step)


def _replace_steps():
    """How many stop points a replace has on this platform. Tests only."""
    return fkv_replace_steps()


cdef extern from "hash_index.h" nogil:
    unsigned int fkv_hash(const void *key, size_t len)


def _key_hash(key):
    """The index's 32-bit hash of a key. Tests only (to build collisions)."""
    cdef Py_ssize_t n
    cdef const char *k = _key_utf8(key, &n)
    return fkv_hash(k, <size_t>n)


def _crc32c(const unsigned char[:] data, unsigned int crc=0):
    """The core's CRC-32C of data. Tests only (the lanes must join right)."""
    return fkv_crc32c(crc, &data[0] if data.shape[0] else NULL, <size_t>data.shape[0])


def _debug_snapshot_blocks(Store store):
    """(checked, total) blocks of a snapshot's table still loading block by
    block; (0, 0) once it is all in. Tests only."""
    store._live()
    cdef uint64_t checked = 0, total = 0
    cdef int rc = fkv_debug_snapshot_blocks(store._s, &checked, &total)
    if rc != FKV_OK:
        _raise(store, rc, None)
    return checked, total
