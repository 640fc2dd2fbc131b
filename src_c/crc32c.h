/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every record.
 *
 * CRC-32C rather than zlib's CRC-32 because x86-64 computes it in hardware
 * (SSE4.2), picked at run time so one wheel runs on every x86-64 machine.
 * Elsewhere a table-driven version is used. Thread-safe, never touches Python.
 */
#ifndef FKV_CRC32C_H
#define FKV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf[0..len), continuing from crc (pass 0 to start). */
uint32_t fkv_crc32c(uint32_t crc, const void *buf, size_t len);

/* The CRC-32C of a[0..na) and of b[0..nb) into out[0] and out[1]: short
 * buffers (log records) are hashed side by side, two dependency chains in
 * flight where one leaves the CPU two-thirds idle. */
void fkv_crc32c_pair(const void *a, size_t na, const void *b, size_t nb, uint32_t out[2]);

#endif /* FKV_CRC32C_H */
