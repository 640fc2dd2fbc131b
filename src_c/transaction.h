/*
 * transaction.h - the writer slot's life with the store (transaction.c);
 * the calls themselves are in store.h.
 */
#ifndef FKV_TRANSACTION_H
#define FKV_TRANSACTION_H

#include "store_core.h"

/* At open and at the store's end: the slot free, its condition made and
 * destroyed. */
int transaction_init(fkv_store *s);
void transaction_destroy(fkv_store *s);

/* At close (s->mu held): a slot still held is let go, and the writers
 * waiting for it wake to find the store closed. */
void transaction_close(fkv_store *s);

#endif /* FKV_TRANSACTION_H */
