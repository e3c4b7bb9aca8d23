/* fallback.c: see fallback.h. */
#include "fallback.h"

#include <string.h>

void hcc_fallback_init(hcc_fallback_t *f, uint32_t max_stale_ms)
{
    memset(f, 0, sizeof(*f));
    hcc_stale_init(&f->copy, HC_CLIENT_STALE_MAX_ENTRIES, HC_CLIENT_STALE_MAX_BYTES);
    f->max_stale_ms = max_stale_ms;
}

void hcc_fallback_free(hcc_fallback_t *f)
{
    hcc_stale_free(&f->copy);
}

int hcc_fallback_set_cache_limit(hcc_fallback_t *f, const char *cache, uint32_t max_stale_ms)
{
    if (!hcc_cache_name_ok(cache)) {
        return HC_EINVAL;
    }
    return hcc_stale_set_limit(&f->copy, cache, max_stale_ms);
}

int hcc_fallback_after_write(hcc_fallback_t *f, hcc_touches_t touches, const char *cache,
                             const void *key, size_t klen, int rv)
{
    if (touches == HCC_TOUCHES_NOTHING || !hcc_write_may_have_changed(rv)) {
        return 0;
    }
    if (touches == HCC_TOUCHES_KEY) {
        hcc_stale_forget(&f->copy, cache, key, klen);
    } else if (touches == HCC_TOUCHES_CACHE) {
        hcc_stale_forget_cache(&f->copy, cache);
    } else {
        hcc_stale_clear(&f->copy); /* which keys it touched is not known */
    }
    return 1;
}

/* Did a read end without any node giving an answer (so the copy may stand in)? */
static int no_node_answered(int rv)
{
    return rv == HC_ETIMEDOUT || rv == HC_EUNAVAILABLE || rv == HC_ESHUTDOWN || rv == HC_EBUSY;
}

int hcc_fallback_after_read(hcc_fallback_t *f, const char *cache, const void *key, size_t klen,
                            const hcc_read_end_t *e, uint64_t now_ms, hc_value_t *out,
                            hc_meta_t *meta)
{
    memset(out, 0, sizeof(*out));
    if (meta != NULL) {
        memset(meta, 0, sizeof(*meta));
    }
    uint64_t keep_ms = hcc_stale_limit(&f->copy, cache, f->max_stale_ms);
    if (e->rv == 0) {
        hcc_answer_t *a = e->a;
        int rv = hcc_answer_err(a);
        if (rv == HC_ENOTFOUND) {
            hcc_stale_forget(&f->copy, cache, key, klen);
        }
        if (rv != 0) {
            return rv;
        }
        out->data = a->body; /* NUL-terminated, handed to the caller */
        out->len = a->body_len;
        out->stale = a->stale;
        a->body = NULL;
        hc_meta_t m = {.version = a->version, .has_ttl = a->has_ttl, .ttl_ms = a->ttl_ms};
        if (meta != NULL) {
            *meta = m;
        }
        /* a node's own stale answer is not fresh: its age is not known */
        if (keep_ms > 0 && !a->stale && !e->overlapped_write) {
            hcc_stale_remember(&f->copy, cache, key, klen, out->data, out->len, &m, now_ms);
        }
        return 0;
    }
    if (e->invalidated && !f->on_invalidated) {
        /* a node said it dropped its data after losing the quorum: that is the answer (a cache
         * with the invalidate policy prefers a miss to an old value), and the copy goes too */
        hcc_stale_forget(&f->copy, cache, key, klen);
        return e->rv;
    }
    if (keep_ms == 0 || e->no_stale || e->write_in_flight || !no_node_answered(e->rv)) {
        return e->rv;
    }
    int s = hcc_stale_get(&f->copy, cache, key, klen, now_ms, keep_ms, &out->data, &out->len, meta);
    if (s == 0) {
        out->stale = 1;
        return 0;
    }
    return s == HC_ENOMEM ? HC_ENOMEM : e->rv;
}
