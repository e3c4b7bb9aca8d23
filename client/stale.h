/* stale.h: a client's bounded local copy of values it read, served (marked stale) when no node
 * answers; see hacache.h for when. No locking: the caller serialises. */
#ifndef HCC_STALE_H
#define HCC_STALE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hcc_stale_entry hcc_stale_entry_t;

typedef struct {
    hcc_stale_entry_t *head, *tail; /* oldest first */
    size_t n, bytes;
    size_t max_entries, max_bytes;
} hcc_stale_t;

void hcc_stale_init(hcc_stale_t *s, size_t max_entries, size_t max_bytes);
/* Forgets everything. */
void hcc_stale_clear(hcc_stale_t *s);
/* Forgets the copy of (cache, key), if any. */
void hcc_stale_forget(hcc_stale_t *s, const char *cache, const void *key, size_t klen);
/* Forgets every key of cache. */
void hcc_stale_forget_cache(hcc_stale_t *s, const char *cache);
/* Remembers a value read at now_ms (the newest goes last; the oldest leave beyond the bounds).
 * A value that does not fit the bounds at all is not remembered. */
void hcc_stale_remember(hcc_stale_t *s, const char *cache, const void *key, size_t klen,
                        const void *val, size_t vlen, uint64_t now_ms);
/* The copy of (cache, key) read no more than max_age_ms before now_ms: 0 with a malloc'd
 * NUL-terminated copy in *val / *vlen (the caller frees it), HC_ENOTFOUND when there is none,
 * HC_ENOMEM. */
int hcc_stale_get(const hcc_stale_t *s, const char *cache, const void *key, size_t klen,
                  uint64_t now_ms, uint64_t max_age_ms, void **val, size_t *vlen);

#endif
