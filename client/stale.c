/* stale.c: see stale.h. A list in reading order: small (bounded) and scanned linearly; the
 * per-cache limits are an array (a handful, set by the program). */
#include "stale.h"

#include <stdlib.h>
#include <string.h>

struct hcc_stale_entry {
    hcc_stale_entry_t *next;
    char *cache;
    void *key;
    size_t klen;
    void *val;
    size_t vlen;
    uint64_t at_ms;     /* monotonic time it was read */
    uint64_t version;   /* as the node reported it; 0 unknown */
    int expires;        /* the node reported a TTL... */
    uint64_t expire_ms; /* ...that runs out at this monotonic time */
};

void hcc_stale_init(hcc_stale_t *s, size_t max_entries, size_t max_bytes)
{
    memset(s, 0, sizeof(*s));
    s->max_entries = max_entries;
    s->max_bytes = max_bytes;
}

static void entry_free(hcc_stale_entry_t *e)
{
    free(e->cache);
    free(e->key);
    free(e->val);
    free(e);
}

static size_t entry_bytes(const hcc_stale_entry_t *e)
{
    return sizeof(*e) + strlen(e->cache) + e->klen + e->vlen;
}

static int entry_is(const hcc_stale_entry_t *e, const char *cache, const void *key, size_t klen)
{
    return e->klen == klen && memcmp(e->key, key, klen) == 0 && strcmp(e->cache, cache) == 0;
}

/* Unlinks *pp (prev is the entry before it, or NULL) and frees it. */
static void unlink_entry(hcc_stale_t *s, hcc_stale_entry_t **pp, hcc_stale_entry_t *prev)
{
    hcc_stale_entry_t *e = *pp;
    *pp = e->next;
    if (s->tail == e) {
        s->tail = prev;
    }
    s->n--;
    s->bytes -= entry_bytes(e);
    entry_free(e);
}

void hcc_stale_clear(hcc_stale_t *s)
{
    while (s->head != NULL) {
        unlink_entry(s, &s->head, NULL);
    }
}

void hcc_stale_free(hcc_stale_t *s)
{
    hcc_stale_clear(s);
    for (size_t i = 0; i < s->nlimits; i++) {
        free(s->limits[i].cache);
    }
    free(s->limits);
    s->limits = NULL;
    s->nlimits = 0;
}

static hcc_stale_limit_t *limit_of(const hcc_stale_t *s, const char *cache)
{
    for (size_t i = 0; i < s->nlimits; i++) {
        if (strcmp(s->limits[i].cache, cache) == 0) {
            return &s->limits[i];
        }
    }
    return NULL;
}

int hcc_stale_set_limit(hcc_stale_t *s, const char *cache, uint32_t max_ms)
{
    hcc_stale_limit_t *l = limit_of(s, cache);
    if (max_ms == HC_CACHE_STALE_DEFAULT) {
        if (l != NULL) {
            free(l->cache);
            *l = s->limits[--s->nlimits];
        }
        return 0;
    }
    if (l == NULL) {
        hcc_stale_limit_t *grown = realloc(s->limits, (s->nlimits + 1) * sizeof(*grown));
        if (grown == NULL) {
            return HC_ENOMEM;
        }
        s->limits = grown;
        l = &s->limits[s->nlimits];
        if ((l->cache = strdup(cache)) == NULL) {
            return HC_ENOMEM;
        }
        s->nlimits++;
    }
    l->max_ms = max_ms;
    if (max_ms == 0) {
        hcc_stale_forget_cache(s, cache); /* fail closed: nothing of it stays in memory */
    }
    return 0;
}

uint64_t hcc_stale_limit(const hcc_stale_t *s, const char *cache, uint64_t client_max_ms)
{
    const hcc_stale_limit_t *l = limit_of(s, cache);
    return l != NULL ? l->max_ms : client_max_ms;
}

void hcc_stale_forget(hcc_stale_t *s, const char *cache, const void *key, size_t klen)
{
    hcc_stale_entry_t **pp = &s->head, *prev = NULL;
    for (; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        if (entry_is(*pp, cache, key, klen)) {
            unlink_entry(s, pp, prev);
            return;
        }
    }
}

void hcc_stale_forget_cache(hcc_stale_t *s, const char *cache)
{
    hcc_stale_entry_t **pp = &s->head, *prev = NULL;
    while (*pp != NULL) {
        if (strcmp((*pp)->cache, cache) != 0) {
            prev = *pp;
            pp = &(*pp)->next;
            continue;
        }
        unlink_entry(s, pp, prev);
    }
}

void hcc_stale_remember(hcc_stale_t *s, const char *cache, const void *key, size_t klen,
                        const void *val, size_t vlen, const hc_meta_t *meta, uint64_t now_ms)
{
    hcc_stale_forget(s, cache, key, klen);
    hcc_stale_entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return;
    }
    e->cache = strdup(cache);
    e->key = malloc(klen ? klen : 1);
    e->val = malloc(vlen ? vlen : 1);
    if (e->cache == NULL || e->key == NULL || e->val == NULL) {
        entry_free(e);
        return;
    }
    memcpy(e->key, key, klen);
    if (vlen > 0) {
        memcpy(e->val, val, vlen);
    }
    e->klen = klen;
    e->vlen = vlen;
    e->at_ms = now_ms;
    if (meta != NULL) {
        e->version = meta->version;
        e->expires = meta->has_ttl != 0;
        /* saturating: an expiry beyond the clock's range is never reached */
        e->expire_ms = meta->ttl_ms < UINT64_MAX - now_ms ? now_ms + meta->ttl_ms : UINT64_MAX;
    }
    size_t bytes = entry_bytes(e);
    if (bytes > s->max_bytes || s->max_entries == 0) {
        entry_free(e);
        return;
    }
    while (s->head != NULL && (s->n + 1 > s->max_entries || s->bytes + bytes > s->max_bytes)) {
        unlink_entry(s, &s->head, NULL);
    }
    if (s->tail != NULL) {
        s->tail->next = e;
    } else {
        s->head = e;
    }
    s->tail = e;
    s->n++;
    s->bytes += bytes;
}

int hcc_stale_get(const hcc_stale_t *s, const char *cache, const void *key, size_t klen,
                  uint64_t now_ms, uint64_t max_age_ms, void **val, size_t *vlen, hc_meta_t *meta)
{
    for (const hcc_stale_entry_t *e = s->head; e != NULL; e = e->next) {
        if (!entry_is(e, cache, key, klen)) {
            continue;
        }
        if (now_ms - e->at_ms > max_age_ms || (e->expires && now_ms >= e->expire_ms)) {
            return HC_ENOTFOUND; /* too old, or the cluster would not return it any more */
        }
        char *v = malloc(e->vlen + 1);
        if (v == NULL) {
            return HC_ENOMEM;
        }
        memcpy(v, e->val, e->vlen);
        v[e->vlen] = '\0';
        *val = v;
        *vlen = e->vlen;
        if (meta != NULL) {
            meta->version = e->version;
            meta->has_ttl = e->expires;
            meta->ttl_ms = e->expires ? e->expire_ms - now_ms : 0;
        }
        return 0;
    }
    return HC_ENOTFOUND;
}
