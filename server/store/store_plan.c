/* store_plan.c: the leader's eviction and expiry planning (store.h "planners", "plans in
 * flight").
 *
 * A plan looks at the store as applied. A leader proposes many writes before the first of them
 * is applied (a pipeline, concurrent clients), and each would pick the same least recently used
 * victims and count the same free room: applied in order, the first write fits and the others
 * are refused (HC_ENOMEM) although the cache only had to evict more. So the leader tells the
 * store what it proposed: the victims' entries are doomed (STORE_DOOMED in their tick: later
 * plans pass over them and count their bytes as freed), and each write's growth is reserved
 * until the log reaches its index. None of it is replicated or changes what hc_store_apply
 * does; a follower never plans, and a new leader starts from nothing (hc_store_plan_clear). */
#include "store_int.h"

#include <stdlib.h>

struct store_resv {
    uint64_t index;
    cache_t *c; /* NULL: the write creates its cache (only the store-wide bound counts it) */
    uint64_t bytes;
};

/* What `used` becomes once the plans in flight are applied. */
static uint64_t plan_used(uint64_t used, uint64_t growth, uint64_t freed)
{
    return sub_sat(used + growth, freed);
}

/* Bytes to free (besides the replaced entry) for w to fit `bound` with `used` in use. */
static uint64_t plan_over(uint64_t used, const write_t *w, uint64_t bound)
{
    uint64_t after = sub_sat(used + w->new_fp, w->old_fp);
    return bound != 0 && after > bound ? after - bound : 0;
}

static uint64_t plan_need_store(const hc_store_t *s, const write_t *w)
{
    return plan_over(plan_used(s->memory, s->planned_growth, s->planned_free), w, s->max_memory);
}

static uint64_t plan_need_cache(const write_t *w)
{
    const cache_t *c = w->c;
    uint64_t used = c != NULL ? plan_used(c->stats.memory, c->planned_growth, c->planned_free) : 0;
    return plan_over(used, w, w->settings.max_memory);
}

static void report_victim(const entry_t *e, int expired, hc_victim_cb cb, void *ud)
{
    cb(ud, e->cache->name, e->cache->name_len, e->data, e->klen, expired);
}

/* Victims are chosen in two phases:
 *   1. if the cache's own bound is exceeded: the cache's expired entries (earliest expiry
 *      first), then its least recently used ones, until the cache bound holds;
 *   2. if the store-wide bound is still exceeded: expired entries of every cache, then the
 *      least recently used entries across caches (their LRU tails merged by touch tick).
 * Phase 1 takes a prefix of the cache's own order, which is the order phase 2 meets that cache's
 * entries in, so phase 2 skips them by count (expired) or resumes from a cursor (LRU). Every
 * expired victim is reported before any LRU one: phase 1's LRU victims are counted first and
 * reported (by walking the same prefix again) after phase 2's expired ones.
 * Writes that will fail anyway (condition, not an integer) need no room: 0 without victims.
 * Entries doomed by earlier plans are passed over, and the bounds are checked against the store
 * as it will be once the plans in flight are applied (plan_used). */
int hc_store_plan_put(hc_store_t *s, const hc_cmd_t *put, uint64_t now_ms, hc_victim_cb cb,
                      void *ud)
{
    write_t w;
    int rc = store__write_prepare(s, put, now_ms, &w);
    if (rc == HC_EINVAL)
        return rc;
    if (rc != 0)
        return 0;
    if (w.e != NULL && entry_doomed(w.e))
        w.old_fp = 0; /* its eviction is in flight: gone before this write lands */
    if ((s->max_memory != 0 && w.new_fp > s->max_memory) ||
        (w.settings.max_memory != 0 && w.new_fp > w.settings.max_memory))
        return HC_ENOMEM;
    uint64_t need_c = plan_need_cache(&w), need_s = plan_need_store(s, &w);
    if (need_c == 0 && need_s == 0)
        return 0;

    expired_iter_t it;
    size_t own_expired = 0, own_lru = 0;
    entry_t *own_cursor = w.c != NULL ? w.c->lru_tail : NULL;
    if (need_c != 0) { /* w.c exists: an absent cache holds nothing and needs no room */
        store__expired_iter_begin(&it, s, now_ms);
        for (entry_t *v; need_c != 0 && (v = store__expired_iter_next(&it)) != NULL;) {
            if (v->cache != w.c || v == w.e || entry_doomed(v))
                continue;
            report_victim(v, 1, cb, ud);
            need_c = sub_sat(need_c, entry_footprint(v));
            need_s = sub_sat(need_s, entry_footprint(v));
            own_expired++;
        }
        store__expired_iter_end(&it);
        if (it.failed)
            return HC_ENOMEM;
        /* the cache's LRU victims: counted now, reported after every expired victim */
        for (; need_c != 0 && own_cursor != NULL; own_cursor = own_cursor->lru_prev) {
            if (own_cursor == w.e || is_expired(own_cursor, now_ms) || entry_doomed(own_cursor))
                continue; /* the entry being written, reported above, or planned already */
            need_c = sub_sat(need_c, entry_footprint(own_cursor));
            need_s = sub_sat(need_s, entry_footprint(own_cursor));
            own_lru++;
        }
        if (need_c != 0)
            return HC_ENOMEM; /* the rest of the cache is planned already: writes in flight */
    }

    if (need_s != 0) {
        store__expired_iter_begin(&it, s, now_ms);
        for (entry_t *v; need_s != 0 && (v = store__expired_iter_next(&it)) != NULL;) {
            if (v == w.e || entry_doomed(v))
                continue;
            if (v->cache == w.c && own_expired > 0) {
                own_expired--; /* reported in phase 1 */
                continue;
            }
            report_victim(v, 1, cb, ud);
            need_s = sub_sat(need_s, entry_footprint(v));
        }
        store__expired_iter_end(&it);
        if (it.failed)
            return HC_ENOMEM;
    }

    for (entry_t *v = w.c != NULL ? w.c->lru_tail : NULL; own_lru > 0; v = v->lru_prev) {
        if (v == w.e || is_expired(v, now_ms) || entry_doomed(v))
            continue;
        report_victim(v, 0, cb, ud);
        own_lru--;
    }
    if (need_s == 0)
        return 0;

    for (size_t i = 0; i < s->ncaches; i++)
        s->caches[i]->plan_cursor = s->caches[i] == w.c ? own_cursor : s->caches[i]->lru_tail;
    while (need_s != 0) {
        cache_t *best = NULL;
        for (size_t i = 0; i < s->ncaches; i++) {
            cache_t *x = s->caches[i];
            while (x->plan_cursor != NULL &&
                   (x->plan_cursor == w.e || is_expired(x->plan_cursor, now_ms) ||
                    entry_doomed(x->plan_cursor)))
                x->plan_cursor = x->plan_cursor->lru_prev;
            if (x->plan_cursor != NULL &&
                (best == NULL || x->plan_cursor->tick < best->plan_cursor->tick))
                best = x;
        }
        if (best == NULL)
            return HC_ENOMEM; /* everything else is planned already: the writes in flight fill it */
        entry_t *v = best->plan_cursor;
        best->plan_cursor = v->lru_prev;
        report_victim(v, 0, cb, ud);
        need_s = sub_sat(need_s, entry_footprint(v));
    }
    return 0;
}

size_t hc_store_collect_expired(hc_store_t *s, uint64_t now_ms, size_t max, hc_victim_cb cb,
                                void *ud)
{
    expired_iter_t it;
    size_t n = 0;
    store__expired_iter_begin(&it, s, now_ms);
    for (entry_t *v; n < max && (v = store__expired_iter_next(&it)) != NULL;) {
        if (!entry_doomed(v)) {
            report_victim(v, 1, cb, ud);
            n++;
        }
    }
    store__expired_iter_end(&it);
    return n;
}

/* ---- plans in flight -------------------------------------------------------------------- */

void hc_store_plan_doom(hc_store_t *s, const char *cache, size_t cache_len, const void *key,
                        size_t klen)
{
    entry_t *e = store__entry_find(s, cache, cache_len, key, klen);
    if (e == NULL || entry_doomed(e))
        return;
    uint64_t fp = entry_footprint(e);
    e->tick |= STORE_DOOMED;
    s->doomed++;
    s->planned_free += fp;
    e->cache->planned_free += fp;
}

int hc_store_plan_reserve(hc_store_t *s, const hc_cmd_t *put, uint64_t index, uint64_t now_ms)
{
    write_t w;
    if (store__write_prepare(s, put, now_ms, &w) != 0)
        return 0; /* it will fail */
    /* Its whole footprint, not new - old: another write or an eviction in flight may change or
     * remove the entry it replaces first. Conservative: a plan made meanwhile may evict a
     * little more than needed, never too little. Its entry (if any) becomes the most recently
     * used already, so the next plans do not pick the value being written. */
    if (w.e != NULL)
        store__touch(s, w.e);
    if (s->resv_n == s->resv_cap) {
        size_t cap = s->resv_cap ? s->resv_cap * 2 : 64;
        struct store_resv *r = malloc(cap * sizeof(*r));
        if (r == NULL)
            return HC_ENOMEM;
        for (size_t i = 0; i < s->resv_n; i++)
            r[i] = s->resv[(s->resv_head + i) % s->resv_cap];
        free(s->resv);
        s->resv = r;
        s->resv_cap = cap;
        s->resv_head = 0;
    }
    struct store_resv *r = &s->resv[(s->resv_head + s->resv_n++) % s->resv_cap];
    r->index = index;
    r->c = w.c;
    r->bytes = w.new_fp;
    s->planned_growth += r->bytes;
    if (r->c != NULL)
        r->c->planned_growth += r->bytes;
    return 0;
}

void hc_store_plan_release(hc_store_t *s, uint64_t index)
{
    while (s->resv_n > 0 && s->resv[s->resv_head].index <= index) {
        const struct store_resv *r = &s->resv[s->resv_head];
        s->planned_growth = sub_sat(s->planned_growth, r->bytes);
        if (r->c != NULL)
            r->c->planned_growth = sub_sat(r->c->planned_growth, r->bytes);
        s->resv_head = (s->resv_head + 1) % s->resv_cap;
        s->resv_n--;
    }
}
