/* store.c: named caches of byte keys and values (see store.h).
 *
 * Layout. The store keeps its caches in an array sorted by name (few caches; binary search, and
 * hc_store_foreach_cache() walks it in order). Each cache has a chained hash table that grows
 * and shrinks incrementally (two tables during a resize, a few buckets moved per operation, so
 * no operation pays for a whole rehash) and an LRU list (head = most recently used). Every
 * entry is one allocation: the header below, then the key, then the value. Entries with an
 * expiry also sit in one store-wide min-heap on expire_at_ms; the entry remembers its heap
 * position so removal and updates are O(log n).
 *
 * Recency across caches: each touch stamps the entry with a store-wide tick, so the store-wide
 * eviction plan merges the caches' LRU tails by tick (exact LRU globally).
 *
 * Determinism: everything that replicas must agree on (conditions, versions, values, expiry,
 * accounted memory and therefore HC_ENOMEM) depends only on the commands and their arguments.
 * The accounting formula uses fixed constants, never sizeof(), so nodes built differently agree.
 * Hash-table order and LRU ticks are local and never influence replicated state. */
#include "store_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hacache.h"

#define CACHE_NAME_MAX 255
#define HT_MIN_SIZE    8
#define HEAP_NONE      UINT32_MAX
#define REHASH_WRITE   4 /* buckets moved per write while resizing */
#define REHASH_READ    1 /* buckets moved per read */

_Static_assert(sizeof(entry_t) <= ENTRY_HEADER_BYTES, "entry header grew: accounting drifts");

static const unsigned char hash_key[crypto_shorthash_KEYBYTES] = "hacache-store-v1";

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void store_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t key_hash(const void *key, size_t klen)
{
    static const unsigned char empty = 0;
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, klen ? key : &empty, klen, hash_key);
    return load_le64(out);
}

static const unsigned char *entry_value(const entry_t *e)
{
    return e->data + e->klen;
}

static uint64_t malloc_chunk(uint64_t n)
{
    uint64_t c = (n + 8 + 15) & ~(uint64_t)15;
    return c < MALLOC_MIN_CHUNK ? MALLOC_MIN_CHUNK : c;
}

uint64_t hc_store_entry_footprint(size_t klen, size_t vlen)
{
    return malloc_chunk((uint64_t)ENTRY_HEADER_BYTES + klen + vlen) + HASH_SLOT_BYTES +
           EXPIRY_SLOT_BYTES;
}

static int valid_name(const char *name, size_t len)
{
    return name != NULL && len >= 1 && len <= CACHE_NAME_MAX;
}

/* ---- caches ----------------------------------------------------------------------------- */

static int cache_name_cmp(const cache_t *c, const char *name, size_t len)
{
    size_t n = c->name_len < len ? c->name_len : len;
    int r = memcmp(c->name, name, n);
    if (r != 0)
        return r;
    return (c->name_len > len) - (c->name_len < len);
}

/* Index of the cache named name, or of where it would be inserted; *found says which. */
static size_t cache_search(const hc_store_t *s, const char *name, size_t len, int *found)
{
    size_t lo = 0, hi = s->ncaches;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cache_name_cmp(s->caches[mid], name, len);
        if (r == 0) {
            *found = 1;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

cache_t *store__cache_find(const hc_store_t *s, const char *name, size_t len)
{
    int found;
    if (!valid_name(name, len))
        return NULL;
    size_t i = cache_search(s, name, len, &found);
    return found ? s->caches[i] : NULL;
}

/* A new cache with default settings, not yet linked into the store. */
static cache_t *cache_alloc(const char *name, size_t len)
{
    cache_t *c = calloc(1, sizeof(*c) + len);
    if (c == NULL)
        return NULL;
    memcpy(c->name, name, len);
    c->name_len = len;
    return c;
}

static int caches_reserve(hc_store_t *s)
{
    if (s->ncaches < s->caches_cap)
        return 0;
    size_t cap = s->caches_cap ? s->caches_cap * 2 : 8;
    cache_t **a = realloc(s->caches, cap * sizeof(*a));
    if (a == NULL)
        return HC_ENOMEM;
    s->caches = a;
    s->caches_cap = cap;
    return 0;
}

/* Links c in name order; caches_reserve() must have succeeded. */
static void caches_insert(hc_store_t *s, cache_t *c)
{
    int found;
    size_t i = cache_search(s, c->name, c->name_len, &found);
    memmove(&s->caches[i + 1], &s->caches[i], (s->ncaches - i) * sizeof(s->caches[0]));
    s->caches[i] = c;
    s->ncaches++;
}

/* ---- hash table (per cache, incremental resize) ----------------------------------------- */

static int table_ensure(cache_t *c)
{
    if (c->ht[0].size != 0)
        return 0;
    entry_t **b = calloc(HT_MIN_SIZE, sizeof(*b));
    if (b == NULL)
        return HC_ENOMEM;
    c->ht[0] = (table_t){b, HT_MIN_SIZE, 0};
    return 0;
}

/* Starts moving ht[0] into a table of `size` buckets. An allocation failure only postpones it:
 * chains get longer, nothing breaks. */
static void table_start_resize(cache_t *c, size_t size)
{
    entry_t **b = calloc(size, sizeof(*b));
    if (b == NULL)
        return;
    c->ht[1] = (table_t){b, size, 0};
    c->rehash_idx = 0;
    c->rehashing = 1;
}

/* Moves up to n non-empty buckets (visiting at most 10 * n empty ones) to ht[1]. */
static void table_rehash(cache_t *c, size_t n)
{
    if (!c->rehashing)
        return;
    table_t *from = &c->ht[0], *to = &c->ht[1];
    size_t empty_visits = n > SIZE_MAX / 10 ? SIZE_MAX : n * 10;
    while (n > 0 && c->rehash_idx < from->size) {
        entry_t *e = from->b[c->rehash_idx];
        if (e == NULL) {
            c->rehash_idx++;
            if (--empty_visits == 0)
                return;
            continue;
        }
        while (e != NULL) {
            entry_t *next = e->hnext;
            size_t i = e->hash & (to->size - 1);
            e->hnext = to->b[i];
            to->b[i] = e;
            from->used--;
            to->used++;
            e = next;
        }
        from->b[c->rehash_idx++] = NULL;
        n--;
    }
    if (c->rehash_idx >= from->size) {
        free(from->b);
        c->ht[0] = c->ht[1];
        c->ht[1] = (table_t){NULL, 0, 0};
        c->rehashing = 0;
    }
}

/* Finds key; *linkp is the pointer that references the entry (a bucket or a chain link). */
static entry_t *table_find(const cache_t *c, uint64_t h, const void *key, size_t klen,
                           entry_t ***linkp)
{
    for (int t = 0; t <= c->rehashing; t++) {
        const table_t *tb = &c->ht[t];
        if (tb->size == 0)
            continue;
        for (entry_t **link = &tb->b[h & (tb->size - 1)]; *link != NULL; link = &(*link)->hnext) {
            entry_t *e = *link;
            if (e->hash == h && e->klen == klen && (klen == 0 || memcmp(e->data, key, klen) == 0)) {
                if (linkp != NULL)
                    *linkp = link;
                return e;
            }
        }
    }
    return NULL;
}

entry_t *store__entry_find(const hc_store_t *s, const char *cache, size_t cache_len,
                           const void *key, size_t klen)
{
    const cache_t *c = valid_name(cache, cache_len) ? store__cache_find(s, cache, cache_len) : NULL;
    return c != NULL ? table_find(c, key_hash(key, klen), key, klen, NULL) : NULL;
}

/* Inserts e; table_ensure() must have succeeded. */
static void table_insert(cache_t *c, entry_t *e)
{
    if (c->rehashing && c->ht[0].used + c->ht[1].used > 2 * c->ht[1].size)
        table_rehash(c, SIZE_MAX); /* a shrink overtaken by inserts: finish it now */
    table_t *tb = &c->ht[c->rehashing];
    size_t i = e->hash & (tb->size - 1);
    e->hnext = tb->b[i];
    tb->b[i] = e;
    tb->used++;
    if (!c->rehashing && tb->used > tb->size)
        table_start_resize(c, tb->size * 2);
}

static void table_unlink(cache_t *c, entry_t **link, entry_t *e)
{
    int t = 0;
    if (c->rehashing && (e->hash & (c->ht[0].size - 1)) < c->rehash_idx)
        t = 1; /* its bucket was already moved */
    *link = e->hnext;
    c->ht[t].used--;
    if (!c->rehashing && c->ht[0].size > HT_MIN_SIZE && c->ht[0].used * 8 < c->ht[0].size) {
        size_t size = HT_MIN_SIZE;
        while (size < c->ht[0].used * 2)
            size *= 2;
        table_start_resize(c, size);
    }
}

static void table_free(cache_t *c)
{
    free(c->ht[0].b);
    free(c->ht[1].b);
    memset(c->ht, 0, sizeof(c->ht));
    c->rehash_idx = 0;
    c->rehashing = 0;
}

/* ---- the leader's plans in flight: what store.c keeps up (planning: store_plan.c) ------- */

/* A doomed entry leaves the store (its planned eviction, or anything else that removed it), or
 * its planned expiry found it written again: it is no longer counted as freed. */
static void doomed_removed(hc_store_t *s, entry_t *e)
{
    uint64_t fp = entry_footprint(e);
    e->tick &= ~STORE_DOOMED;
    s->doomed--;
    s->planned_free = sub_sat(s->planned_free, fp);
    e->cache->planned_free = sub_sat(e->cache->planned_free, fp);
}

static void doomed_resized(hc_store_t *s, entry_t *e, uint64_t old_fp, uint64_t new_fp)
{
    s->planned_free = sub_sat(s->planned_free + new_fp, old_fp);
    e->cache->planned_free = sub_sat(e->cache->planned_free + new_fp, old_fp);
}

void hc_store_plan_clear(hc_store_t *s)
{
    for (size_t i = 0; i < s->ncaches; i++) {
        cache_t *c = s->caches[i];
        for (entry_t *e = s->doomed != 0 ? c->lru_head : NULL; e != NULL; e = e->lru_next)
            e->tick &= ~STORE_DOOMED;
        c->planned_free = c->planned_growth = 0;
    }
    s->doomed = 0;
    s->planned_free = s->planned_growth = 0;
    s->resv_head = s->resv_n = 0;
}

/* ---- LRU -------------------------------------------------------------------------------- */

static void lru_unlink(cache_t *c, entry_t *e)
{
    if (e->lru_prev != NULL)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next != NULL)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
}

static void lru_push_head(hc_store_t *s, cache_t *c, entry_t *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head != NULL)
        c->lru_head->lru_prev = e;
    else
        c->lru_tail = e;
    c->lru_head = e;
    e->tick = ++s->tick;
}

static void lru_touch(hc_store_t *s, cache_t *c, entry_t *e)
{
    uint64_t doomed = e->tick & STORE_DOOMED; /* a touch does not undo a planned eviction */
    if (c->lru_head != e) {
        lru_unlink(c, e);
        lru_push_head(s, c, e);
    } else {
        e->tick = ++s->tick;
    }
    e->tick |= doomed;
}

void store__touch(hc_store_t *s, entry_t *e)
{
    lru_touch(s, e->cache, e);
}

/* ---- expiry heap (store-wide) ----------------------------------------------------------- */

static void heap_set(hc_store_t *s, uint32_t i, entry_t *e)
{
    s->heap[i] = e;
    e->heap_pos = i;
}

static void heap_up(hc_store_t *s, uint32_t i)
{
    entry_t *e = s->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (s->heap[p]->expire_at_ms <= e->expire_at_ms)
            break;
        heap_set(s, i, s->heap[p]);
        i = p;
    }
    heap_set(s, i, e);
}

static void heap_down(hc_store_t *s, uint32_t i)
{
    entry_t *e = s->heap[i];
    for (;;) {
        uint64_t l = 2 * (uint64_t)i + 1, r = l + 1, m = l;
        if (l >= s->heap_n)
            break;
        if (r < s->heap_n && s->heap[r]->expire_at_ms < s->heap[l]->expire_at_ms)
            m = r;
        if (e->expire_at_ms <= s->heap[m]->expire_at_ms)
            break;
        heap_set(s, i, s->heap[m]);
        i = (uint32_t)m;
    }
    heap_set(s, i, e);
}

static int heap_reserve(hc_store_t *s)
{
    if (s->heap_n < s->heap_cap)
        return 0;
    uint64_t cap = s->heap_cap ? (uint64_t)s->heap_cap * 2 : 64;
    if (cap > HEAP_NONE - 1)
        cap = HEAP_NONE - 1;
    if (cap <= s->heap_n)
        return HC_ENOMEM;
    entry_t **h = realloc(s->heap, cap * sizeof(*h));
    if (h == NULL)
        return HC_ENOMEM;
    s->heap = h;
    s->heap_cap = (uint32_t)cap;
    return 0;
}

/* heap_reserve() must have succeeded. */
static void heap_insert(hc_store_t *s, entry_t *e)
{
    uint32_t i = s->heap_n++;
    heap_set(s, i, e);
    heap_up(s, i);
}

static void heap_remove(hc_store_t *s, entry_t *e)
{
    uint32_t i = e->heap_pos;
    entry_t *last = s->heap[--s->heap_n];
    e->heap_pos = HEAP_NONE;
    if (i != s->heap_n) {
        heap_set(s, i, last);
        heap_up(s, i);
        heap_down(s, last->heap_pos);
    }
}

/* Sets e's expiry and keeps the heap consistent; a slot must be reserved if e was not in it. */
static void entry_set_expiry(hc_store_t *s, entry_t *e, uint64_t expire_at_ms)
{
    e->expire_at_ms = expire_at_ms;
    if (e->heap_pos != HEAP_NONE) {
        if (expire_at_ms == 0) {
            heap_remove(s, e);
        } else {
            heap_up(s, e->heap_pos);
            heap_down(s, e->heap_pos);
        }
    } else if (expire_at_ms != 0) {
        heap_insert(s, e);
    }
}

static int cand_less(const hc_store_t *s, uint32_t a, uint32_t b)
{
    uint64_t ea = s->heap[a]->expire_at_ms, eb = s->heap[b]->expire_at_ms;
    return ea < eb || (ea == eb && a < b);
}

static int scratch_reserve(hc_store_t *s, size_t n)
{
    if (n <= s->scratch_cap)
        return 0;
    size_t cap = s->scratch_cap ? s->scratch_cap : 64;
    while (cap < n)
        cap *= 2;
    uint32_t *a = realloc(s->scratch, cap * sizeof(*a));
    if (a == NULL)
        return HC_ENOMEM;
    s->scratch = a;
    s->scratch_cap = cap;
    return 0;
}

/* scratch_reserve() must cover it->n + 1. */
static void cand_push(expired_iter_t *it, uint32_t v)
{
    uint32_t *a = it->s->scratch;
    size_t i = it->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(it->s, v, a[p]))
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = v;
}

static uint32_t cand_pop(expired_iter_t *it)
{
    uint32_t *a = it->s->scratch;
    uint32_t top = a[0], v = a[--it->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= it->n)
            break;
        if (l + 1 < it->n && cand_less(it->s, a[l + 1], a[l]))
            m = l + 1;
        if (!cand_less(it->s, a[m], v))
            break;
        a[i] = a[m];
        i = m;
    }
    if (it->n > 0)
        a[i] = v;
    return top;
}

void store__expired_iter_begin(expired_iter_t *it, hc_store_t *s, uint64_t now_ms)
{
    *it = (expired_iter_t){s, now_ms, 0, 0};
    if (s->heap_n > 0 && s->heap[0]->expire_at_ms <= now_ms) {
        if (scratch_reserve(s, 1) != 0) {
            it->failed = 1;
            return;
        }
        cand_push(it, 0);
    }
}

entry_t *store__expired_iter_next(expired_iter_t *it)
{
    hc_store_t *s = it->s;
    if (it->n == 0)
        return NULL;
    if (scratch_reserve(s, it->n + 2) != 0) {
        it->failed = 1;
        it->n = 0;
        return NULL;
    }
    uint32_t top = cand_pop(it);
    for (uint64_t ch = 2 * (uint64_t)top + 1; ch <= 2 * (uint64_t)top + 2; ch++)
        if (ch < s->heap_n && s->heap[ch]->expire_at_ms <= it->now_ms)
            cand_push(it, (uint32_t)ch);
    return s->heap[top];
}

void store__expired_iter_end(expired_iter_t *it)
{
    hc_store_t *s = it->s;
    if (s->scratch_cap > 4096) { /* don't keep a big frontier after a mass expiry */
        free(s->scratch);
        s->scratch = NULL;
        s->scratch_cap = 0;
    }
}

/* ---- store ------------------------------------------------------------------------------ */

hc_store_t *hc_store_new(uint64_t max_memory)
{
    if (sodium_init() < 0)
        return NULL;
    hc_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->max_memory = max_memory;
    return s;
}

/* Frees every entry of c and empties its index; the caller fixes the accounting. */
static uint64_t cache_drop_entries(hc_store_t *s, cache_t *c)
{
    uint64_t n = 0;
    entry_t *e = c->lru_head;
    while (e != NULL) {
        entry_t *next = e->lru_next;
        if (entry_doomed(e))
            doomed_removed(s, e);
        if (e->heap_pos != HEAP_NONE)
            heap_remove(s, e);
        free(e);
        n++;
        e = next;
    }
    c->lru_head = c->lru_tail = NULL;
    table_free(c);
    return n;
}

void hc_store_free(hc_store_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ncaches; i++) {
        cache_t *c = s->caches[i];
        for (entry_t *e = c->lru_head, *next; e != NULL; e = next) {
            next = e->lru_next;
            free(e);
        }
        table_free(c);
        free(c);
    }
    free(s->caches);
    free(s->heap);
    free(s->scratch);
    free(s->resv);
    free(s);
}

uint64_t hc_store_memory(const hc_store_t *s)
{
    return s->memory;
}

uint64_t hc_store_max_memory(const hc_store_t *s)
{
    return s->max_memory;
}

/* ---- writes ----------------------------------------------------------------------------- */

static int parse_int64(const unsigned char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 20)
        return HC_ENOTINT;
    int neg = p[0] == '-';
    if (neg && n == 1)
        return HC_ENOTINT;
    size_t i = (size_t)neg;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return HC_ENOTINT;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (acc > (limit - d) / 10)
            return HC_ENOTINT; /* does not fit an int64: not an integer we can hold */
        acc = acc * 10 + d;
    }
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return 0;
}

static size_t format_int64(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    return len;
}

static int check_key(const void *key, size_t klen)
{
    if (klen > UINT32_MAX || (key == NULL && klen != 0))
        return HC_EINVAL;
    return 0;
}

/* Conditions of PUT and DEL on the live entry (NULL when absent or expired). */
static int check_if_version(const hc_cmd_t *cmd, const entry_t *live)
{
    if (!cmd->has_if_version)
        return 0;
    if (cmd->if_version == 0)
        return live == NULL ? 0 : HC_ECONFLICT;
    return live != NULL && live->version == cmd->if_version ? 0 : HC_ECONFLICT;
}

int store__write_prepare(hc_store_t *s, const hc_cmd_t *cmd, uint64_t now_ms, write_t *w)
{
    if ((cmd->op != HC_OP_PUT && cmd->op != HC_OP_INCR) || !valid_name(cmd->cache, cmd->cache_len))
        return HC_EINVAL;
    if (check_key(cmd->key, cmd->klen) != 0)
        return HC_EINVAL;
    memset(w, 0, sizeof(*w));
    w->c = store__cache_find(s, cmd->cache, cmd->cache_len);
    w->hash = key_hash(cmd->key, cmd->klen);
    if (w->c != NULL) {
        w->settings = w->c->settings;
        w->e = table_find(w->c, w->hash, cmd->key, cmd->klen, &w->link);
    }
    const entry_t *live = w->e != NULL && !is_expired(w->e, now_ms) ? w->e : NULL;
    /* The expiry of a new value: the command's, else the cache's default TTL counted from
     * now_ms (so now_ms must be the same on every replica: the leader's, carried in the log).
     * Also used by an INCR that creates its key; an INCR of a live key keeps its expiry. */
    uint64_t new_expiry = cmd->expire_at_ms;
    if (new_expiry == 0 && cmd->ttl_ms != 0)
        new_expiry = now_ms + cmd->ttl_ms;
    if (new_expiry == 0 && !cmd->no_default_ttl && w->settings.default_ttl_ms != 0)
        new_expiry = now_ms + w->settings.default_ttl_ms;

    if (cmd->op == HC_OP_PUT) {
        if (cmd->if_absent && live != NULL)
            return HC_ECONFLICT;
        if (cmd->if_present && live == NULL)
            return HC_ECONFLICT;
        if (cmd->keep_ttl && live != NULL)
            new_expiry = live->expire_at_ms;
        int rc = check_if_version(cmd, live);
        if (rc != 0)
            return rc;
        if (cmd->val == NULL && cmd->vlen != 0)
            return HC_EINVAL;
        w->val = cmd->val;
        w->vlen = cmd->vlen;
        w->expire_at_ms = new_expiry;
    } else {
        int64_t cur = 0;
        if (live != NULL) {
            int rc = parse_int64(entry_value(live), live->vlen, &cur);
            if (rc != 0)
                return rc;
        }
        if (__builtin_add_overflow(cur, cmd->incr_by, &w->integer))
            return HC_EOVERFLOW;
        w->vlen = format_int64(w->num, w->integer);
        w->val = w->num;
        w->expire_at_ms = live != NULL ? live->expire_at_ms : new_expiry;
    }
    w->old_fp = w->e != NULL ? entry_footprint(w->e) : 0;
    w->new_fp = hc_store_entry_footprint(cmd->klen, w->vlen);
    return 0;
}

/* Bytes that must be freed (besides the replaced entry) for w to fit each bound. */
static uint64_t over_bound(uint64_t used, const write_t *w, uint64_t bound)
{
    uint64_t after = used - w->old_fp + w->new_fp;
    return bound != 0 && after > bound ? after - bound : 0;
}

static uint64_t need_store(const hc_store_t *s, const write_t *w)
{
    return over_bound(s->memory, w, s->max_memory);
}

static uint64_t need_cache(const write_t *w)
{
    return over_bound(w->c != NULL ? w->c->stats.memory : 0, w, w->settings.max_memory);
}

/* Relinks an entry that realloc() moved: everything that pointed to the old address. */
static void entry_moved(hc_store_t *s, cache_t *c, entry_t **link, entry_t *e)
{
    *link = e;
    if (e->lru_prev != NULL)
        e->lru_prev->lru_next = e;
    else
        c->lru_head = e;
    if (e->lru_next != NULL)
        e->lru_next->lru_prev = e;
    else
        c->lru_tail = e;
    if (e->heap_pos != HEAP_NONE)
        s->heap[e->heap_pos] = e;
}

static int store_write(hc_store_t *s, const hc_cmd_t *cmd, uint64_t index, uint64_t now_ms,
                       hc_apply_result_t *res)
{
    cache_t *c = NULL;
    if (valid_name(cmd->cache, cmd->cache_len)) {
        c = store__cache_find(s, cmd->cache, cmd->cache_len);
        if (c != NULL)
            table_rehash(c, REHASH_WRITE);
    }
    write_t w;
    int rc = store__write_prepare(s, cmd, now_ms, &w);
    if (rc != 0)
        return rc;
    if (need_store(s, &w) != 0 || need_cache(&w) != 0)
        return HC_ENOMEM;

    /* Acquire everything that can fail; nothing visible changes until all of it succeeded. */
    cache_t *created = NULL;
    if (c == NULL) {
        created = cache_alloc(cmd->cache, cmd->cache_len);
        if (created == NULL || caches_reserve(s) != 0)
            goto fail;
        c = created;
    }
    if (table_ensure(c) != 0)
        goto fail;
    entry_t *e = w.e;
    if (w.expire_at_ms != 0 && (e == NULL || e->heap_pos == HEAP_NONE) && heap_reserve(s) != 0)
        goto fail;
    if (e == NULL) {
        e = malloc(ENTRY_HEADER_BYTES + cmd->klen + w.vlen);
        if (e == NULL)
            goto fail;
        e->cache = c;
        e->hash = w.hash;
        e->klen = (uint32_t)cmd->klen;
        e->heap_pos = HEAP_NONE;
        e->expire_at_ms = 0;
        if (cmd->klen != 0)
            memcpy(e->data, cmd->key, cmd->klen);
        table_insert(c, e);
        lru_push_head(s, c, e);
        c->stats.entries++;
    } else {
        if (w.vlen != e->vlen) {
            entry_t *moved = realloc(e, ENTRY_HEADER_BYTES + e->klen + w.vlen);
            if (moved == NULL)
                goto fail;
            if (moved != e)
                entry_moved(s, c, w.link, moved);
            e = moved;
        }
        lru_touch(s, c, e);
    }

    /* Commit: nothing below fails. */
    if (created != NULL)
        caches_insert(s, created);
    if (w.vlen != 0)
        memmove(e->data + e->klen, w.val, w.vlen);
    e->vlen = w.vlen;
    e->version = index;
    entry_set_expiry(s, e, w.expire_at_ms);
    if (entry_doomed(e))
        doomed_resized(s, e, w.old_fp, w.new_fp);
    s->memory = s->memory - w.old_fp + w.new_fp;
    c->stats.memory = c->stats.memory - w.old_fp + w.new_fp;
    res->version = index;
    res->integer = w.integer;
    return 0;

fail:
    free(created);
    return HC_ENOMEM;
}

static void entry_remove(hc_store_t *s, cache_t *c, entry_t **link, entry_t *e)
{
    if (entry_doomed(e))
        doomed_removed(s, e);
    uint64_t fp = entry_footprint(e);
    table_unlink(c, link, e);
    lru_unlink(c, e);
    if (e->heap_pos != HEAP_NONE)
        heap_remove(s, e);
    c->stats.entries--;
    c->stats.memory -= fp;
    s->memory -= fp;
    free(e);
}

/* DEL, EVICT, EXPIRE. EXPIRE removes only an entry that has an expiry (HC_EINVAL otherwise),
 * even one whose instant is still ahead of this node's clock: the leader decided. A non-zero
 * cmd->expire_at_ms guards it (HC_ECONFLICT when the entry's expiry is later than that), so an
 * EXPIRE planned before the key was written again with a new TTL does not drop the new entry. */
static int store_remove(hc_store_t *s, const hc_cmd_t *cmd, uint64_t now_ms, hc_apply_result_t *res)
{
    if (!valid_name(cmd->cache, cmd->cache_len) || check_key(cmd->key, cmd->klen) != 0)
        return HC_EINVAL;
    cache_t *c = store__cache_find(s, cmd->cache, cmd->cache_len);
    entry_t *e = NULL, **link = NULL;
    if (c != NULL) {
        table_rehash(c, REHASH_WRITE);
        e = table_find(c, key_hash(cmd->key, cmd->klen), cmd->key, cmd->klen, &link);
    }
    switch (cmd->op) {
    case HC_OP_DEL: {
        entry_t *live = e != NULL && !is_expired(e, now_ms) ? e : NULL;
        int rc = check_if_version(cmd, live);
        if (rc != 0)
            return rc;
        if (live == NULL)
            return HC_ENOTFOUND;
        break;
    }
    case HC_OP_EVICT:
        if (e == NULL)
            return HC_ENOTFOUND;
        c->stats.evictions++;
        break;
    default: /* HC_OP_EXPIRE */
        if (e == NULL)
            return HC_ENOTFOUND;
        if (e->expire_at_ms == 0 ||
            (cmd->expire_at_ms != 0 && e->expire_at_ms > cmd->expire_at_ms)) {
            if (entry_doomed(e))
                doomed_removed(s, e); /* written again since it was planned: it stays */
            return e->expire_at_ms == 0 ? HC_EINVAL : HC_ECONFLICT;
        }
        c->stats.expirations++;
        break;
    }
    entry_remove(s, c, link, e);
    res->existed = 1;
    return 0;
}

int hc_store_apply(hc_store_t *s, const hc_cmd_t *cmd, uint64_t index, uint64_t now_ms,
                   hc_apply_result_t *res)
{
    hc_apply_result_t scratch;
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof(*res));
    switch (cmd->op) {
    case HC_OP_PUT:
    case HC_OP_INCR:
        return store_write(s, cmd, index, now_ms, res);
    case HC_OP_DEL:
    case HC_OP_EVICT:
    case HC_OP_EXPIRE:
        return store_remove(s, cmd, now_ms, res);
    case HC_OP_INVALIDATE: {
        for (size_t i = 0; i < s->ncaches; i++) {
            cache_t *c = s->caches[i];
            if (c->settings.policy != HC_POLICY_INVALIDATE)
                continue;
            res->removed += cache_drop_entries(s, c);
            s->memory -= c->stats.memory;
            c->stats.memory = 0;
            c->stats.entries = 0;
        }
        return 0;
    }
    case HC_OP_CLEAR: {
        if (!valid_name(cmd->cache, cmd->cache_len))
            return HC_EINVAL;
        cache_t *c = store__cache_find(s, cmd->cache, cmd->cache_len);
        if (c == NULL)
            return 0;
        uint64_t n = cache_drop_entries(s, c);
        s->memory -= c->stats.memory;
        c->stats.memory = 0;
        c->stats.entries = 0;
        res->removed = n;
        res->existed = n > INT_MAX ? INT_MAX : (int)n;
        return 0;
    }
    case HC_OP_CACHE_CONFIG: {
        const hc_cache_settings_t *set = &cmd->settings;
        if (!valid_name(cmd->cache, cmd->cache_len) ||
            (set->policy != HC_POLICY_INVALIDATE && set->policy != HC_POLICY_SERVE_STALE))
            return HC_EINVAL;
        cache_t *c = store__cache_find(s, cmd->cache, cmd->cache_len);
        if (c == NULL) {
            c = cache_alloc(cmd->cache, cmd->cache_len);
            if (c == NULL || caches_reserve(s) != 0) {
                free(c);
                return HC_ENOMEM;
            }
            caches_insert(s, c);
        }
        c->settings = *set;
        return 0;
    }
    case HC_OP_BATCH:
    case HC_OP_GET:
    case HC_OP_SET_TTL:
        break; /* the state machine's (fsm.c) */
    }
    return HC_EINVAL;
}

/* ---- reads ------------------------------------------------------------------------------ */

int hc_store_get(hc_store_t *s, const char *cache, size_t cache_len, const void *key, size_t klen,
                 uint64_t now_ms, hc_entry_view_t *out)
{
    if (check_key(key, klen) != 0)
        return HC_ENOTFOUND;
    cache_t *c = store__cache_find(s, cache, cache_len);
    if (c == NULL)
        return HC_ENOTFOUND; /* no cache to count the miss in; reads never create caches */
    table_rehash(c, REHASH_READ);
    entry_t *e = table_find(c, key_hash(key, klen), key, klen, NULL);
    if (e == NULL || is_expired(e, now_ms)) {
        c->stats.misses++;
        return HC_ENOTFOUND;
    }
    c->stats.hits++;
    lru_touch(s, c, e);
    if (out != NULL) {
        out->data = entry_value(e);
        out->len = e->vlen;
        out->version = e->version;
        out->expire_at_ms = e->expire_at_ms;
    }
    return 0;
}

/* ---- scan ------------------------------------------------------------------------------- */

static uint64_t bit_reverse(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    return __builtin_bswap64(v);
}

/* The cursor after bucket `v & mask`: the masked bits are counted up from their highest bit
 * down (reverse binary). The bits above the mask are set first so the carry runs through them;
 * once every index was produced the cursor wraps to 0. */
static uint64_t cursor_next(uint64_t v, uint64_t mask)
{
    return bit_reverse(bit_reverse(v | ~mask) + 1);
}

typedef struct {
    uint64_t now_ms;
    hc_scan_cb cb;
    void *ud;
    size_t examined;
    int stop;
} scan_t;

static void scan_chain(scan_t *sc, const entry_t *e)
{
    for (; e != NULL; e = e->hnext) {
        sc->examined++;
        if (!is_expired(e, sc->now_ms) && sc->cb(sc->ud, e->data, e->klen) != 0)
            sc->stop = 1;
    }
}

/* Why no key is missed: bucket i of a table of size 2^n holds the keys whose hash ends in the n
 * bits of i, and the cursor counts with those bits reversed, so the buckets still to visit are
 * the same set of hash suffixes whatever power of two the table has by the next call: a larger
 * table splits each of them in buckets that are all still ahead, a smaller one merges them with
 * buckets that may have been visited (keys then come again). While resizing, a key is in one of
 * the two tables: visiting bucket v of the smaller one with every bucket of the larger one that
 * expands it (same low bits) covers it either way; the cursor then moves on in the larger
 * table's bits, which carries into the smaller one's once the expansions are done. */
uint64_t hc_store_scan(hc_store_t *s, const char *cache, size_t cache_len, uint64_t cursor,
                       size_t count, uint64_t now_ms, hc_scan_cb cb, void *ud)
{
    const cache_t *c = store__cache_find(s, cache, cache_len);
    if (c == NULL || c->ht[0].size == 0)
        return 0;
    if (count == 0)
        count = 1;
    size_t max_buckets = count > SIZE_MAX / 10 ? SIZE_MAX : count * 10, buckets = 0;
    scan_t sc = {now_ms, cb, ud, 0, 0};
    uint64_t v = cursor;
    do {
        if (!c->rehashing) {
            uint64_t m = c->ht[0].size - 1;
            scan_chain(&sc, c->ht[0].b[v & m]);
            buckets++;
            v = cursor_next(v, m);
            continue;
        }
        const table_t *small = &c->ht[0], *large = &c->ht[1];
        if (small->size > large->size) {
            small = &c->ht[1];
            large = &c->ht[0];
        }
        uint64_t m0 = small->size - 1, m1 = large->size - 1;
        scan_chain(&sc, small->b[v & m0]);
        buckets++;
        do {
            scan_chain(&sc, large->b[v & m1]);
            buckets++;
            v = cursor_next(v, m1);
        } while ((v & (m0 ^ m1)) != 0);
    } while (v != 0 && !sc.stop && sc.examined < count && buckets < max_buckets);
    return v;
}

/* ---- introspection ---------------------------------------------------------------------- */

int hc_store_cache_info(hc_store_t *s, const char *cache, size_t cache_len,
                        hc_cache_settings_t *settings, hc_cache_stats_t *stats)
{
    cache_t *c = store__cache_find(s, cache, cache_len);
    if (c == NULL)
        return HC_ENOTFOUND;
    if (settings != NULL)
        *settings = c->settings;
    if (stats != NULL)
        *stats = c->stats;
    return 0;
}

void hc_store_foreach_cache(hc_store_t *s, hc_cache_cb cb, void *ud)
{
    for (size_t i = 0; i < s->ncaches; i++) {
        const cache_t *c = s->caches[i];
        cb(ud, c->name, c->name_len, &c->settings, &c->stats);
    }
}

void hc_store_totals(hc_store_t *s, hc_cache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < s->ncaches; i++) {
        const hc_cache_stats_t *st = &s->caches[i]->stats;
        out->entries += st->entries;
        out->memory += st->memory;
        out->hits += st->hits;
        out->misses += st->misses;
        out->evictions += st->evictions;
        out->expirations += st->expirations;
    }
}

/* BLAKE2b-256 of one entry over length-prefixed key and value, version and expiry, summed per
 * 64-bit lane: the sum does not depend on iteration order. The result hashes the lane sums and
 * the entry count once more. */
void hc_store_digest(hc_store_t *s, const char *cache, size_t cache_len,
                     uint8_t out[HC_DIGEST_BYTES])
{
    uint64_t lanes[4] = {0, 0, 0, 0}, count = 0;
    const cache_t *c = store__cache_find(s, cache, cache_len);
    for (const entry_t *e = c != NULL ? c->lru_head : NULL; e != NULL; e = e->lru_next) {
        crypto_generichash_state st;
        unsigned char n[8], h[32];
        crypto_generichash_init(&st, NULL, 0, sizeof(h));
        store_le64(n, e->klen);
        crypto_generichash_update(&st, n, sizeof(n));
        crypto_generichash_update(&st, e->data, e->klen);
        store_le64(n, e->vlen);
        crypto_generichash_update(&st, n, sizeof(n));
        crypto_generichash_update(&st, entry_value(e), e->vlen);
        store_le64(n, e->version);
        crypto_generichash_update(&st, n, sizeof(n));
        store_le64(n, e->expire_at_ms);
        crypto_generichash_update(&st, n, sizeof(n));
        crypto_generichash_final(&st, h, sizeof(h));
        for (int i = 0; i < 4; i++)
            lanes[i] += load_le64(h + 8 * i);
        count++;
    }
    unsigned char buf[40];
    for (int i = 0; i < 4; i++)
        store_le64(buf + 8 * i, lanes[i]);
    store_le64(buf + 32, count);
    crypto_generichash(out, HC_DIGEST_BYTES, buf, sizeof(buf), NULL, 0);
}

/* ---- snapshots -------------------------------------------------------------------------- */

#define SNAP_MAGIC     "HCSS"
#define SNAP_REC_CACHE 1
#define SNAP_REC_ENTRY 2
#define SNAP_REC_END   3

static void put_u64(hc_buf_t *b, uint64_t v)
{
    unsigned char p[8];
    store_le64(p, v);
    hc_buf_append(b, p, sizeof(p));
}

static void put_u32(hc_buf_t *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    hc_buf_append(b, p, sizeof(p));
}

static void put_rec(hc_buf_t *b, unsigned char type, uint64_t len)
{
    hc_buf_append(b, &type, 1);
    put_u64(b, len);
}

void hc_store_serialize(hc_store_t *s, hc_buf_t *out)
{
    uint64_t nentries = 0;
    unsigned char v = HC_STORE_SNAP_VERSION;
    hc_buf_append(out, SNAP_MAGIC, 4);
    hc_buf_append(out, &v, 1);
    for (size_t i = 0; i < s->ncaches && !out->failed; i++) {
        const cache_t *c = s->caches[i];
        unsigned char nl = (unsigned char)c->name_len, pol = (unsigned char)c->settings.policy;
        put_rec(out, SNAP_REC_CACHE, 1 + c->name_len + 8 + 8 + 1 + 8);
        hc_buf_append(out, &nl, 1);
        hc_buf_append(out, c->name, c->name_len);
        put_u64(out, c->settings.max_memory);
        put_u64(out, c->settings.default_ttl_ms);
        hc_buf_append(out, &pol, 1);
        put_u64(out, c->settings.max_stale_ms);
        /* least recently used first: loading pushes each at the head, restoring the order */
        for (const entry_t *e = c->lru_tail; e != NULL && !out->failed; e = e->lru_prev) {
            put_rec(out, SNAP_REC_ENTRY, 8 + 8 + 4 + (uint64_t)e->klen + e->vlen);
            put_u64(out, e->version);
            put_u64(out, e->expire_at_ms);
            put_u32(out, e->klen);
            hc_buf_append(out, e->data, e->klen);
            hc_buf_append(out, entry_value(e), e->vlen);
            nentries++;
        }
    }
    put_rec(out, SNAP_REC_END, 16);
    put_u64(out, s->ncaches);
    put_u64(out, nentries);
}

/* Drops every cache (the store becomes empty again). */
static void store_drop_all(hc_store_t *s)
{
    for (size_t i = 0; i < s->ncaches; i++) {
        cache_t *c = s->caches[i];
        cache_drop_entries(s, c);
        free(c);
    }
    s->ncaches = 0;
    s->memory = 0;
    s->heap_n = 0;
    hc_store_plan_clear(s);
}

/* Adds a new entry (the key is known to be absent) at the head of c's LRU. */
static int load_entry(hc_store_t *s, cache_t *c, const unsigned char *key, uint32_t klen,
                      const unsigned char *val, uint64_t vlen, uint64_t version, uint64_t expire)
{
    uint64_t h = key_hash(key, klen);
    if (table_find(c, h, key, klen, NULL) != NULL)
        return HC_EINVAL; /* duplicate key */
    if (table_ensure(c) != 0 || (expire != 0 && heap_reserve(s) != 0))
        return HC_ENOMEM;
    if (vlen > SIZE_MAX - ENTRY_HEADER_BYTES - klen)
        return HC_EINVAL;
    entry_t *e = malloc(ENTRY_HEADER_BYTES + klen + (size_t)vlen);
    if (e == NULL)
        return HC_ENOMEM;
    e->cache = c;
    e->hash = h;
    e->klen = klen;
    e->vlen = vlen;
    e->version = version;
    e->heap_pos = HEAP_NONE;
    e->expire_at_ms = 0;
    if (klen != 0)
        memcpy(e->data, key, klen);
    if (vlen != 0)
        memcpy(e->data + klen, val, (size_t)vlen);
    table_rehash(c, REHASH_WRITE);
    table_insert(c, e);
    lru_push_head(s, c, e);
    entry_set_expiry(s, e, expire);
    uint64_t fp = entry_footprint(e);
    c->stats.entries++;
    c->stats.memory += fp;
    s->memory += fp;
    return 0;
}

static int load_records(hc_store_t *s, const unsigned char *p, size_t len)
{
    if (len < 5 || memcmp(p, SNAP_MAGIC, 4) != 0 || p[4] != HC_STORE_SNAP_VERSION)
        return HC_EINVAL;
    size_t off = 5;
    cache_t *cur = NULL;
    uint64_t nentries = 0;
    for (;;) {
        if (len - off < 9)
            return HC_EINVAL;
        unsigned char type = p[off];
        uint64_t rlen = load_le64(p + off + 1);
        off += 9;
        if (rlen > len - off)
            return HC_EINVAL;
        const unsigned char *r = p + off;
        off += (size_t)rlen;
        switch (type) {
        case SNAP_REC_CACHE: {
            if (rlen < 1)
                return HC_EINVAL;
            size_t nl = r[0];
            if (nl < 1 || rlen != 1 + nl + 8 + 8 + 1 + 8)
                return HC_EINVAL;
            const char *name = (const char *)r + 1;
            /* strictly increasing names: no duplicates, and the serializer's order */
            if (s->ncaches > 0 && cache_name_cmp(s->caches[s->ncaches - 1], name, nl) >= 0)
                return HC_EINVAL;
            const unsigned char *q = r + 1 + nl;
            hc_cache_settings_t set = {.max_memory = load_le64(q),
                                       .default_ttl_ms = load_le64(q + 8),
                                       .policy = (hc_qloss_policy_t)q[16],
                                       .max_stale_ms = load_le64(q + 17)};
            if (q[16] != HC_POLICY_INVALIDATE && q[16] != HC_POLICY_SERVE_STALE)
                return HC_EINVAL;
            cur = cache_alloc(name, nl);
            if (cur == NULL || caches_reserve(s) != 0) {
                free(cur);
                return HC_ENOMEM;
            }
            cur->settings = set;
            s->caches[s->ncaches++] = cur; /* in order: append */
            break;
        }
        case SNAP_REC_ENTRY: {
            if (cur == NULL || rlen < 20)
                return HC_EINVAL;
            uint64_t version = load_le64(r), expire = load_le64(r + 8);
            uint32_t klen = (uint32_t)r[16] | (uint32_t)r[17] << 8 | (uint32_t)r[18] << 16 |
                            (uint32_t)r[19] << 24;
            if (klen > rlen - 20)
                return HC_EINVAL;
            int rc =
                load_entry(s, cur, r + 20, klen, r + 20 + klen, rlen - 20 - klen, version, expire);
            if (rc != 0)
                return rc;
            nentries++;
            break;
        }
        case SNAP_REC_END:
            if (rlen != 16 || off != len || load_le64(r) != s->ncaches ||
                load_le64(r + 8) != nentries)
                return HC_EINVAL;
            return 0;
        default:
            return HC_EINVAL;
        }
    }
}

int hc_store_load(hc_store_t *s, const void *buf, size_t len)
{
    if (s->ncaches != 0 || (buf == NULL && len != 0))
        return HC_EINVAL;
    int rc = load_records(s, buf, len);
    if (rc != 0)
        store_drop_all(s);
    return rc;
}
