/* store_int.h: the store's insides, shared by store.c (the data structures, apply, reads,
 * snapshots) and store_plan.c (the leader's eviction and expiry planning). Not for anyone else:
 * the rest of the server uses store.h. */
#ifndef HC_STORE_INT_H
#define HC_STORE_INT_H

#include "store.h"

/* Accounting constants (part of the replicated behaviour: change only with a protocol bump). */
#define ENTRY_HEADER_BYTES 80 /* sizeof(entry_t) on LP64 */
#define HASH_SLOT_BYTES    8  /* one bucket pointer per entry at the maximum load factor (1) */
#define EXPIRY_SLOT_BYTES  8  /* one expiry-heap pointer per entry */
#define MALLOC_MIN_CHUNK   32 /* glibc: chunk = max(32, round_up(n + 8, 16)) */

/* entry_t.tick's top bit: the leader planned this entry's eviction or expiry and proposed it;
 * the planners pass over it (store_plan.c). Local, like the tick itself. */
#define STORE_DOOMED (UINT64_C(1) << 63)

typedef struct cache cache_t;
typedef struct entry entry_t;

struct entry {
    entry_t *hnext;               /* hash chain */
    entry_t *lru_prev, *lru_next; /* prev is more recently used */
    cache_t *cache;
    uint64_t hash;
    uint64_t version;
    uint64_t expire_at_ms; /* 0 = never */
    uint64_t tick;         /* store-wide recency stamp of the last touch, | STORE_DOOMED */
    uint32_t heap_pos;     /* index in the expiry heap, HEAP_NONE when expire_at_ms == 0 */
    uint32_t klen;
    uint64_t vlen;
    unsigned char data[]; /* key, then value */
};

typedef struct {
    entry_t **b; /* size buckets, owned */
    size_t size; /* 0 or a power of two */
    size_t used;
} table_t;

struct cache {
    table_t ht[2]; /* ht[1] is the resize target while rehashing */
    size_t rehash_idx;
    int rehashing;
    entry_t *lru_head, *lru_tail;
    entry_t *plan_cursor; /* scratch of hc_store_plan_put() */
    hc_cache_settings_t settings;
    hc_cache_stats_t stats;
    uint64_t planned_free, planned_growth; /* store_plan.c: this cache's share */
    size_t name_len;
    char name[];
};

struct hc_store {
    uint64_t max_memory; /* 0 = no store-wide bound */
    uint64_t memory;
    uint64_t tick;
    cache_t **caches; /* sorted by name, owned */
    size_t ncaches, caches_cap;
    entry_t **heap; /* min-heap on expire_at_ms of the entries that expire */
    uint32_t heap_n, heap_cap;
    uint32_t *scratch; /* candidate heap of the expired-entry iterator */
    size_t scratch_cap;
    /* The leader's plans in flight (store_plan.c; local, never replicated): bytes that planned
     * evictions will free (the footprints of the doomed entries), bytes that planned writes
     * will add (their reservations, released when the log reaches their index). */
    uint64_t planned_free, planned_growth;
    size_t doomed;           /* entries marked STORE_DOOMED */
    struct store_resv *resv; /* reservations, a ring in index order */
    size_t resv_head, resv_n, resv_cap;
};

/* Iterates over the entries expired at now_ms, earliest first (ties: heap order), without
 * modifying the heap: a second min-heap (s->scratch) holds the frontier of heap indices. */
typedef struct {
    hc_store_t *s;
    uint64_t now_ms;
    size_t n;
    int failed; /* out of memory: the iteration stopped early */
} expired_iter_t;

/* Everything a PUT / INCR would do, computed without touching the store. Not copyable: val may
 * point into num. */
typedef struct {
    cache_t *c;     /* NULL: the write creates the cache */
    entry_t *e;     /* the entry the write replaces (live or expired), or NULL */
    entry_t **link; /* e's hash link */
    uint64_t hash;
    hc_cache_settings_t settings; /* c's, or the defaults */
    const void *val;
    size_t vlen;
    char num[24];
    int64_t integer;
    uint64_t expire_at_ms;
    uint64_t old_fp, new_fp;
} write_t;

static inline int is_expired(const entry_t *e, uint64_t now_ms)
{
    return e->expire_at_ms != 0 && e->expire_at_ms <= now_ms;
}

static inline uint64_t entry_footprint(const entry_t *e)
{
    return hc_store_entry_footprint(e->klen, e->vlen);
}

static inline uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static inline int entry_doomed(const entry_t *e)
{
    return (e->tick & STORE_DOOMED) != 0;
}

/* store.c */
cache_t *store__cache_find(const hc_store_t *s, const char *name, size_t len);
/* The entry of key in cache (live or expired), or NULL. */
entry_t *store__entry_find(const hc_store_t *s, const char *cache, size_t cache_len,
                           const void *key, size_t klen);
/* e becomes the most recently used entry of its cache (a doomed one stays doomed). */
void store__touch(hc_store_t *s, entry_t *e);
int store__write_prepare(hc_store_t *s, const hc_cmd_t *cmd, uint64_t now_ms, write_t *w);
void store__expired_iter_begin(expired_iter_t *it, hc_store_t *s, uint64_t now_ms);
entry_t *store__expired_iter_next(expired_iter_t *it);
void store__expired_iter_end(expired_iter_t *it);

#endif
