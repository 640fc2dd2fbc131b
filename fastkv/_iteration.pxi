# Iteration over live keys, batch by batch from the C core.
# Included by _core.pyx (one module: these share its C declarations).

cdef class _KeyIterator:
    """Live keys in batches from the core (fkv_iter_next: why no key is
    missed or repeated is in src_c/iterate.c)."""

    cdef Store _store
    cdef uint64_t _cursor
    cdef bytes _prefix
    cdef list _batch
    cdef Py_ssize_t _next
    cdef fkv_key_batch _keys
    cdef bint _filling

    def __cinit__(self, Store store, prefix):
        self._store = store
        self._cursor = FKV_ITER_START
        self._prefix = b"" if prefix is None else (<str>prefix).encode("utf-8", "surrogatepass")
        self._batch = []
        self._next = 0

    def __dealloc__(self):
        fkv_key_batch_free(&self._keys)

    def __iter__(self):
        return self

    cdef int _fill(self) except -1:
        cdef size_t i = 0
        cdef int rc
        cdef const char *prefix = self._prefix
        cdef size_t plen = <size_t>len(self._prefix)
        self._store._live()
        # the core fills _keys without the GIL: a second thread must not
        # come in meanwhile (a generator would say "already executing")
        if self._filling:
            raise RuntimeError("this key iterator is in use by another thread")
        self._filling = True
        try:
            with nogil:
                rc = fkv_iter_next(self._store._s, &self._cursor, prefix, plen, &self._keys)
        finally:
            self._filling = False
        if rc != FKV_OK:
            _raise(self._store, rc, None)
        cdef uint8_t *data = self._keys.data
        batch = []
        while i < self._keys.used:
            batch.append(PyUnicode_DecodeUTF8(<char *>data + i + 1, data[i], "strict"))
            i += 1 + data[i]
        self._batch = batch
        self._next = 0
        return 0

    def __next__(self):
        while self._next >= len(self._batch):
            if self._cursor >= FKV_ITER_END:
                raise StopIteration
            self._fill()
        key = self._batch[self._next]
        self._next += 1
        return key

    def _next_batch(self):
        """The next batch of keys (maybe empty), or None when done: for a
        caller that fetches batches in a worker thread (fastkv.aio)."""
        if self._next < len(self._batch):
            rest = self._batch[self._next:]
            self._batch, self._next = [], 0
            return rest
        if self._cursor >= FKV_ITER_END:
            return None
        self._fill()
        rest, self._batch, self._next = self._batch, [], 0
        return rest
