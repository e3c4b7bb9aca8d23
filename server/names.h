/* names.h: the cache-name rule, shared by the server and libhacache (server/names.c is built
 * into both, like err.c). */
#ifndef HC_NAMES_H
#define HC_NAMES_H

#include <stddef.h>

#define HC_CACHE_NAME_MAX 128

/* 1 when s (n bytes) is a valid cache name: 1-128 characters of [A-Za-z0-9_.:-]. */
int hc_cache_name_ok(const char *s, size_t n);

#endif
