/* stale.h: a client's bounded local copy of values it read, served (marked stale) when no node
 * answers, and the per-cache limits of how old a served copy may be; see hacache.h for when. No
 * locking: the caller serialises. */
#ifndef HCC_STALE_H
#define HCC_STALE_H

#include <stddef.h>
#include <stdint.h>

#include "hacache.h"

typedef struct hcc_stale_entry hcc_stale_entry_t;

/* A cache whose copies follow their own age limit (hc_client_set_cache_stale). */
typedef struct {
    char *cache;
    uint32_t max_ms;
} hcc_stale_limit_t;

typedef struct {
    hcc_stale_entry_t *head, *tail; /* oldest first */
    size_t n, bytes;
    size_t max_entries, max_bytes;
    hcc_stale_limit_t *limits; /* the caller's per-cache overrides, in no particular order */
    size_t nlimits;
} hcc_stale_t;

void hcc_stale_init(hcc_stale_t *s, size_t max_entries, size_t max_bytes);
/* Forgets every copy (the per-cache limits stay). */
void hcc_stale_clear(hcc_stale_t *s);
/* Frees everything, limits included. */
void hcc_stale_free(hcc_stale_t *s);
/* Sets the limit of cache to max_ms (0: never served, never kept: its copies are dropped now),
 * or removes it with HC_CACHE_STALE_DEFAULT. 0 or HC_ENOMEM. */
int hcc_stale_set_limit(hcc_stale_t *s, const char *cache, uint32_t max_ms);
/* The age limit of cache's copies: its own, else client_max_ms. */
uint64_t hcc_stale_limit(const hcc_stale_t *s, const char *cache, uint64_t client_max_ms);
/* Forgets the copy of (cache, key), if any. */
void hcc_stale_forget(hcc_stale_t *s, const char *cache, const void *key, size_t klen);
/* Forgets every key of cache. */
void hcc_stale_forget_cache(hcc_stale_t *s, const char *cache);
/* Remembers a value read at now_ms (monotonic) with what the node said of it (meta: its version
 * and the TTL left then; NULL: version unknown, no expiry). The newest goes last; the oldest
 * leave beyond the bounds. A value that does not fit the bounds at all is not remembered. */
void hcc_stale_remember(hcc_stale_t *s, const char *cache, const void *key, size_t klen,
                        const void *val, size_t vlen, const hc_meta_t *meta, uint64_t now_ms);
/* The copy of (cache, key) read no more than max_age_ms before now_ms and not expired by then:
 * 0 with a malloc'd NUL-terminated copy in *val / *vlen (the caller frees it) and, when meta is
 * not NULL, its version and the TTL left at now_ms; HC_ENOTFOUND when there is none, HC_ENOMEM. */
int hcc_stale_get(const hcc_stale_t *s, const char *cache, const void *key, size_t klen,
                  uint64_t now_ms, uint64_t max_age_ms, void **val, size_t *vlen, hc_meta_t *meta);

#endif
