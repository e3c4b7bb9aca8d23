/* store_helpers.h: commands and reads of the unit tests of server/store/store.c (test_store.c,
 * test_store_scan.c), as small inline helpers. */
#ifndef HC_TEST_STORE_HELPERS_H
#define HC_TEST_STORE_HELPERS_H

#include <stdio.h>
#include <string.h>

#include "store/store.h"

#define FP 112 /* accounted footprint of an entry with a 2-byte key and a 1-byte value */

static inline hc_cmd_t mk(hc_op_t op, const char *cache, const void *key, size_t klen)
{
    hc_cmd_t c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    c.cache = cache;
    c.cache_len = strlen(cache);
    c.key = key;
    c.klen = klen;
    return c;
}

static inline hc_cmd_t mk_put(const char *cache, const char *key, const char *val,
                              uint64_t expire_at)
{
    hc_cmd_t c = mk(HC_OP_PUT, cache, key, strlen(key));
    c.val = val;
    c.vlen = strlen(val);
    c.expire_at_ms = expire_at;
    return c;
}

static inline int put(hc_store_t *s, const char *cache, const char *key, const char *val,
                      uint64_t expire_at, uint64_t index, uint64_t now)
{
    hc_cmd_t c = mk_put(cache, key, val, expire_at);
    return hc_store_apply(s, &c, index, now, NULL);
}

static inline int op_key(hc_store_t *s, hc_op_t op, const char *cache, const char *key,
                         uint64_t index, uint64_t now)
{
    hc_cmd_t c = mk(op, cache, key, strlen(key));
    return hc_store_apply(s, &c, index, now, NULL);
}

static inline int incr(hc_store_t *s, const char *cache, const char *key, int64_t by,
                       uint64_t expire_at, uint64_t index, uint64_t now, hc_apply_result_t *res)
{
    hc_cmd_t c = mk(HC_OP_INCR, cache, key, strlen(key));
    c.incr_by = by;
    c.expire_at_ms = expire_at;
    return hc_store_apply(s, &c, index, now, res);
}

static inline int config(hc_store_t *s, const char *cache, uint64_t max_memory,
                         uint64_t default_ttl)
{
    hc_cmd_t c = mk(HC_OP_CACHE_CONFIG, cache, NULL, 0);
    c.settings.max_memory = max_memory;
    c.settings.default_ttl_ms = default_ttl;
    return hc_store_apply(s, &c, 0, 0, NULL);
}

/* The value of key as a NUL-terminated string ("<absent>" when not found). */
static inline const char *get_str(hc_store_t *s, const char *cache, const char *key, uint64_t now,
                                  hc_entry_view_t *view)
{
    static char buf[256];
    hc_entry_view_t v;
    if (view != NULL)
        memset(view, 0, sizeof(*view));
    if (hc_store_get(s, cache, strlen(cache), key, strlen(key), now, &v) != 0)
        return "<absent>";
    snprintf(buf, sizeof(buf), "%.*s", (int)v.len, (const char *)v.data);
    if (view != NULL)
        *view = v;
    return buf;
}

static inline hc_cache_stats_t stats_of(hc_store_t *s, const char *cache)
{
    hc_cache_stats_t st;
    memset(&st, 0, sizeof(st));
    hc_store_cache_info(s, cache, strlen(cache), NULL, &st);
    return st;
}

#endif
