/* store.h: the data store of one node: named caches of byte keys and values with versions,
 * absolute expiry instants, exact memory accounting and LRU eviction planning.
 *
 * The store is a deterministic state machine. Every mutation goes through hc_store_apply() with
 * a command, the log index that becomes the entry's version, and the wall-clock "now" used only
 * to treat already-expired entries as absent. The store never evicts or expires on its own:
 * the node (the raft leader, or the standalone node) asks hc_store_plan_put() and
 * hc_store_collect_expired() for victims and turns them into EVICT / EXPIRE commands that are
 * applied (and later replicated) like any other write, so replicas stay byte-identical. */
#ifndef HC_STORE_H
#define HC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "hacache.h" /* hc_qloss_policy_t, hc_cache_settings_t (per-cache settings) */
#include "util.h"

typedef struct hc_store hc_store_t;

/* Per-cache settings (hc_cache_settings_t, hacache.h): a cache is created with defaults (all 0,
 * HC_POLICY_INVALIDATE) on its first write. */

typedef struct {
    uint64_t entries; /* live entries (including expired ones not yet reclaimed) */
    uint64_t memory;  /* accounted bytes, see hc_store_entry_footprint() */
    uint64_t hits, misses;
    uint64_t evictions, expirations;
} hc_cache_stats_t;

typedef enum {
    HC_OP_PUT = 1, /* set value; if_absent / if_version conditions; expire_at_ms */
    HC_OP_DEL,     /* delete one key; result.existed */
    HC_OP_INCR,    /* add incr_by to a decimal integer value (absent = 0), keeps expiry */
    HC_OP_CLEAR,   /* drop every entry of one cache (the cache and its settings stay) */
    HC_OP_EVICT,   /* drop one key for memory; counted as an eviction */
    HC_OP_EXPIRE,  /* drop one key whose expiry passed; counted as an expiration. HC_EINVAL if the
                    * entry has no expiry; with expire_at_ms != 0, HC_ECONFLICT if the entry now
                    * expires later than that (it was rewritten after the EXPIRE was planned) */
    HC_OP_CACHE_CONFIG, /* create the cache if needed and set its settings */
    HC_OP_INVALIDATE,   /* quorum-loss invalidation made cluster-wide (no cache name): drop every
                         * entry of every cache whose policy is `invalidate`; result.removed */
    /* protocol 3 (fsm.c; a leader proposes them only when every member speaks 3) */
    HC_OP_BATCH,   /* sub[0..nsub): applied in order as one entry (MSET, MULTI/EXEC) */
    HC_OP_GET,     /* inside a batch: the value now (a read in MULTI) */
    HC_OP_SET_TTL, /* change the expiry of a live key, value kept: expire_at_ms / ttl_ms, or
                    * none when both are 0 (EXPIRE, PEXPIRE, PERSIST); HC_ENOTFOUND if absent,
                    * HC_ECONFLICT for PERSIST of a key without expiry */
} hc_op_t;

/* A command. All pointers are borrowed for the duration of the call; the store copies what it
 * keeps. Cache names are 1..255 bytes. */
typedef struct hc_cmd_s {
    hc_op_t op;
    const char *cache;
    size_t cache_len;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    uint64_t expire_at_ms;        /* absolute wall-clock ms; 0 = never (PUT; INCR creating a key) */
    int if_absent;                /* PUT: fail with HC_ECONFLICT if a live entry exists */
    int has_if_version;           /* PUT/DEL: fail with HC_ECONFLICT unless the live entry has... */
    uint64_t if_version;          /* ...this version (0 = must be absent) */
    int64_t incr_by;              /* INCR */
    hc_cache_settings_t settings; /* CACHE_CONFIG */
    /* protocol 3 */
    int if_present;     /* PUT: fail with HC_ECONFLICT unless a live entry exists (XX) */
    int keep_ttl;       /* PUT: keep the live entry's expiry (KEEPTTL) */
    int no_default_ttl; /* PUT: expire_at_ms 0 means never, not the cache's default */
    int want_old;       /* PUT, DEL: the value before the write is a result (GET, GETDEL) */
    uint64_t ttl_ms;    /* batch sub-commands, SET_TTL: expiry relative to the entry's now */
    const struct hc_cmd_s *sub; /* BATCH */
    size_t nsub;
} hc_cmd_t;

typedef struct {
    uint64_t version; /* version of the entry after PUT/INCR */
    int64_t integer;  /* INCR: the new value */
    int existed;      /* DEL/EVICT/EXPIRE: a live entry was removed; CLEAR: count removed */
    uint64_t removed; /* CLEAR: number of entries removed */
    /* protocol 3: results that carry values (want_old, BATCH, GET) as records (fsm.h
     * hc_vals_next), valid during the callback that receives them; NULL when none */
    const hc_buf_t *vals;
} hc_apply_result_t;

/* A read result. data points into the store and stays valid until the next hc_store_apply()
 * or hc_store_free(); copy it before giving control back to the loop. */
typedef struct {
    const void *data;
    size_t len;
    uint64_t version;
    uint64_t expire_at_ms; /* 0 = never */
} hc_entry_view_t;

/* A victim proposed by the planners: `expired` tells EXPIRE (1) from EVICT (0). Pointers are
 * valid only during the callback. */
typedef void (*hc_victim_cb)(void *ud, const char *cache, size_t cache_len, const void *key,
                             size_t klen, int expired);

/* max_memory: the store-wide bound in accounted bytes (CACHE_MAX_MEMORY). Returns NULL on OOM. */
hc_store_t *hc_store_new(uint64_t max_memory);
void hc_store_free(hc_store_t *s);

/* Applies cmd. `index` becomes the version of written entries and must increase from call to
 * call (the raft log index; the standalone node uses a counter). Returns 0, or:
 * HC_ENOTFOUND (DEL/EVICT/EXPIRE of an absent key), HC_ECONFLICT (condition failed),
 * HC_ENOTINT / HC_EOVERFLOW (INCR), HC_ENOMEM (the write does not fit: plan evictions first),
 * HC_EINVAL (bad command). A failed command changes nothing. */
int hc_store_apply(hc_store_t *s, const hc_cmd_t *cmd, uint64_t index, uint64_t now_ms,
                   hc_apply_result_t *res);

/* Looks up a live (not expired at now_ms) entry; counts a hit or a miss and marks the entry
 * recently used. Returns 0 or HC_ENOTFOUND. */
int hc_store_get(hc_store_t *s, const char *cache, size_t cache_len, const void *key, size_t klen,
                 uint64_t now_ms, hc_entry_view_t *out);

/* A key reported by hc_store_scan(); key is valid during the call only. Return non-zero to end
 * the scan call after the current bucket. Must not modify the store. */
typedef int (*hc_scan_cb)(void *ud, const void *key, size_t klen);

/* One step of a cursor iteration over the keys of one cache (Redis SCAN): start with cursor 0
 * and pass each returned cursor to the next call; 0 returned means the iteration is complete.
 * Guarantees: every key live in the cache from the first call to the last is reported at least
 * once, even when the cache's hash table grows, shrinks or is being resized in between; a key
 * may be reported more than once (after a resize); keys written or removed meanwhile may or may
 * not be. A call visits whole hash buckets until it has examined `count` entries (0 counts as
 * 1) or visited 10 * count buckets, or cb asked to stop; entries expired at now_ms are examined
 * but not reported. A missing cache (or any cursor over an empty one) gives 0 without calling
 * cb. Read-only: no LRU touch, no hit/miss count, no rehash step, so scans never make replicas
 * differ. */
uint64_t hc_store_scan(hc_store_t *s, const char *cache, size_t cache_len, uint64_t cursor,
                       size_t count, uint64_t now_ms, hc_scan_cb cb, void *ud);

/* Plans room for `put` (a PUT or INCR command): calls cb for each entry to remove first, in
 * order (expired entries first, then least recently used; within the cache's own bound when
 * it has one, store-wide otherwise), until applying put would fit. Returns 0 when the plan
 * makes it fit (possibly with no victims), HC_ENOMEM when it cannot fit even in an empty cache
 * (cb is then not called). The store is not modified. */
int hc_store_plan_put(hc_store_t *s, const hc_cmd_t *put, uint64_t now_ms, hc_victim_cb cb,
                      void *ud);

/* Calls cb (expired = 1) for up to max entries whose expiry is <= now_ms, earliest first.
 * Returns how many were reported. The store is not modified. */
size_t hc_store_collect_expired(hc_store_t *s, uint64_t now_ms, size_t max, hc_victim_cb cb,
                                void *ud);

/* Plans in flight (store_plan.c). The planners above look at the store as applied, but a leader
 * proposes many writes before the first is applied; so it tells the store what it proposed,
 * and later plans account for it: hc_store_plan_doom for each victim it proposed (the entry is
 * passed over by later plans and its bytes count as freed until it leaves the store),
 * hc_store_plan_reserve for a write it proposed at `index` (its growth counts as used until
 * hc_store_plan_release reaches that index: call it as the log is applied). Local bookkeeping:
 * hc_store_apply does exactly the same with or without it, so replicas never differ by it.
 * hc_store_plan_clear forgets every plan (a new leader; entries stay where they are). */
void hc_store_plan_doom(hc_store_t *s, const char *cache, size_t cache_len, const void *key,
                        size_t klen);
int hc_store_plan_reserve(hc_store_t *s, const hc_cmd_t *put, uint64_t index, uint64_t now_ms);
void hc_store_plan_release(hc_store_t *s, uint64_t index);
void hc_store_plan_clear(hc_store_t *s);

/* Accounted bytes of one entry: key, value and the per-entry overhead (entry header, index
 * slot, allocator rounding). The same on every node. */
uint64_t hc_store_entry_footprint(size_t klen, size_t vlen);

uint64_t hc_store_memory(const hc_store_t *s); /* accounted bytes of all caches */
uint64_t hc_store_max_memory(const hc_store_t *s);

/* Settings and stats of one cache; HC_ENOTFOUND when it does not exist. */
int hc_store_cache_info(hc_store_t *s, const char *cache, size_t cache_len,
                        hc_cache_settings_t *settings, hc_cache_stats_t *stats);

/* Calls cb for every cache, in name order. */
typedef void (*hc_cache_cb)(void *ud, const char *name, size_t name_len,
                            const hc_cache_settings_t *settings, const hc_cache_stats_t *stats);
void hc_store_foreach_cache(hc_store_t *s, hc_cache_cb cb, void *ud);

/* Totals over all caches (hits, misses, evictions, expirations are monotonic counters). */
void hc_store_totals(hc_store_t *s, hc_cache_stats_t *out);

/* An order-independent digest of one cache's contents (keys, values, versions, expiry):
 * equal on two replicas iff their contents are equal (up to hash collisions). An absent cache
 * has the digest of an empty one. */
#define HC_DIGEST_BYTES 32
void hc_store_digest(hc_store_t *s, const char *cache, size_t cache_len,
                     uint8_t out[HC_DIGEST_BYTES]);

/* ---- snapshots ---------------------------------------------------------------------------
 * A snapshot is the replicated content of the store: every cache (in name order) with its
 * settings, then its entries (key, value, version, expire_at_ms) from least to most recently
 * used, so the loaded store keeps the LRU order. Statistics (hits, misses, evictions,
 * expirations) are local and not included. The format, all integers little endian:
 *   "HCSS" version(1 byte, HC_STORE_SNAP_VERSION)
 *   records: type(1) len(u64) payload(len)
 *     CACHE (1): name_len(u8, 1..255) name max_memory(u64) default_ttl_ms(u64) policy(u8)
 *                max_stale_ms(u64)
 *     ENTRY (2): version(u64) expire_at_ms(u64) klen(u32) key value(the rest); belongs to the
 *                last CACHE record
 *     END (3):   caches(u64) entries(u64); must be the last record
 * Deterministic: the same store state gives the same bytes. */
#define HC_STORE_SNAP_VERSION 1

/* Appends the snapshot of s to out (check out->failed). */
void hc_store_serialize(hc_store_t *s, hc_buf_t *out);
/* Loads a snapshot into an empty store (HC_EINVAL if it is not empty). Every length is checked
 * against the input before use; a malformed, truncated or trailing-garbage input, a cache out of
 * name order, a duplicate key or an unknown record gives HC_EINVAL, HC_ENOMEM on allocation
 * failure; on any error the store is left empty. The store-wide memory bound is not enforced
 * (the snapshot mirrors the leader). 0 on success. */
int hc_store_load(hc_store_t *s, const void *buf, size_t len);

#endif
