/*
 * store_private.h - what store.c offers the other calls of the top floor
 * (repair.c): an open in a given mode. The layers beneath are described in
 * store_core.h.
 */
#ifndef FKV_STORE_PRIVATE_H
#define FKV_STORE_PRIVATE_H

#include "recover.h"

/* Open path as a store in the given mode; rep is filled when salvaging. */
int store_open(const char *path, const fkv_options *opt, open_mode mode,
               fkv_verify_report *rep, fkv_progress *progress, fkv_store **out);

#endif /* FKV_STORE_PRIVATE_H */
