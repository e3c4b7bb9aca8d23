/* fsm.c: the replicated state machine (see fsm.h). */
#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "hacache.h"
#include "log.h"

struct hc_fsm {
    hc_store_t *store;
    hc_dedupe_t *dedupe;
    uint64_t max_memory;
    size_t window;
};

hc_fsm_t *hc_fsm_new(uint64_t max_memory, size_t window)
{
    hc_fsm_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->max_memory = max_memory;
    f->window = window;
    f->store = hc_store_new(max_memory);
    f->dedupe = hc_dedupe_new(window);
    if (f->store == NULL || f->dedupe == NULL) {
        hc_fsm_free(f);
        return NULL;
    }
    return f;
}

void hc_fsm_free(hc_fsm_t *f)
{
    if (f != NULL) {
        hc_store_free(f->store);
        hc_dedupe_free(f->dedupe);
        free(f);
    }
}

hc_store_t *hc_fsm_store(hc_fsm_t *f)
{
    return f->store;
}

void hc_cmd_list_free(hc_cmd_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((void *)l->v[i].cache);
        free((void *)l->v[i].key);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

typedef struct {
    hc_cmd_list_t *out;
    uint64_t now;
} planner_t;

/* hc_store_plan_put / hc_store_collect_expired callback: one EVICT or EXPIRE command. */
static void plan_victim(void *ud, const char *cache, size_t cache_len, const void *key, size_t klen,
                        int expired)
{
    planner_t *p = ud;
    hc_cmd_list_t *l = p->out;
    if (l->failed) {
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        hc_cmd_t *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->failed = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    hc_cmd_t *c = &l->v[l->n];
    memset(c, 0, sizeof(*c));
    char *cc = malloc(cache_len ? cache_len : 1);
    void *kc = malloc(klen ? klen : 1);
    if (cc == NULL || kc == NULL) {
        free(cc);
        free(kc);
        l->failed = 1;
        return;
    }
    memcpy(cc, cache, cache_len);
    memcpy(kc, key, klen);
    c->cache = cc;
    c->key = kc;
    c->cache_len = cache_len;
    c->klen = klen;
    c->op = expired ? HC_OP_EXPIRE : HC_OP_EVICT;
    /* guard: an EXPIRE never removes an entry rewritten with a later expiry */
    c->expire_at_ms = expired ? p->now : 0;
    l->n++;
}

int hc_fsm_plan_put(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t now, hc_cmd_list_t *out)
{
    if (cmd->op != HC_OP_PUT && cmd->op != HC_OP_INCR) {
        return 0;
    }
    planner_t p = {.out = out, .now = now};
    int rv = hc_store_plan_put(f->store, cmd, now, plan_victim, &p);
    if (rv == 0 && out->failed) {
        rv = HC_ENOMEM;
    }
    return rv;
}

void hc_fsm_plan_expiry(hc_fsm_t *f, uint64_t now, size_t max, hc_cmd_list_t *out)
{
    planner_t p = {.out = out, .now = now};
    hc_store_collect_expired(f->store, now, max, plan_victim, &p);
}

int hc_fsm_find_request(const hc_fsm_t *f, const uint8_t rid[16], hc_dedupe_result_t *out)
{
    return hc_dedupe_find(f->dedupe, rid, out);
}

int hc_fsm_apply(hc_fsm_t *f, const hc_cmd_t *cmd, const uint8_t *rid, uint64_t index, uint64_t now,
                 hc_apply_result_t *res)
{
    hc_dedupe_result_t prev;
    if (rid != NULL && hc_dedupe_find(f->dedupe, rid, &prev)) {
        /* a retried write: applied once, every retry gets the first outcome */
        *res = prev.res;
        return prev.status;
    }
    memset(res, 0, sizeof(*res));
    int status = hc_store_apply(f->store, cmd, index, now, res);
    if (rid != NULL) {
        hc_dedupe_result_t r = {.index = index, .status = status, .res = *res};
        hc_dedupe_add(f->dedupe, rid, &r);
    }
    if (status != 0 && cmd->op != HC_OP_EVICT && cmd->op != HC_OP_EXPIRE) {
        hc_log(HC_LOG_DEBUG, "write refused by the store", HC_LU("index", index),
               HC_LS("error", hc_strerror(status)));
    }
    return status;
}

void hc_fsm_invalidate_local(hc_fsm_t *f, uint64_t index, uint64_t now)
{
    hc_cmd_t inv = {.op = HC_OP_INVALIDATE};
    hc_apply_result_t r;
    hc_store_apply(f->store, &inv, index, now, &r);
}

void hc_fsm_reset(hc_fsm_t *f)
{
    hc_store_t *fresh = hc_store_new(f->max_memory);
    if (fresh != NULL) {
        hc_store_free(f->store);
        f->store = fresh;
    }
    hc_dedupe_clear(f->dedupe);
}

void hc_fsm_snapshot_encode(hc_fsm_t *f, hc_buf_t *out)
{
    hc_fsm_snapshot_write(f->store, f->dedupe, out);
}

int hc_fsm_snapshot_load(const hc_fsm_t *f, const void *buf, size_t len, hc_fsm_t **out)
{
    hc_fsm_t *n = hc_fsm_new(f->max_memory, f->window);
    int rv = n != NULL ? hc_fsm_snapshot_read(buf, len, n->store, n->dedupe) : HC_ENOMEM;
    if (rv != 0) {
        hc_fsm_free(n);
        return rv;
    }
    *out = n;
    return 0;
}

void hc_fsm_replace(hc_fsm_t *f, hc_fsm_t *with)
{
    hc_store_free(f->store);
    hc_dedupe_free(f->dedupe);
    f->store = with->store;
    f->dedupe = with->dedupe;
    free(with);
}

#define NODE_SNAP_MAGIC   "HCNS"
#define NODE_SNAP_VERSION 1

void hc_fsm_snapshot_write(hc_store_t *s, const hc_dedupe_t *d, hc_buf_t *out)
{
    uint8_t v = NODE_SNAP_VERSION;
    hc_buf_append(out, NODE_SNAP_MAGIC, 4);
    hc_buf_append(out, &v, 1);
    size_t at = out->len;
    hc_buf_put_le(out, 0, 8); /* store length, patched below */
    hc_store_serialize(s, out);
    if (out->failed) {
        return;
    }
    uint64_t slen = out->len - at - 8;
    for (int i = 0; i < 8; i++) {
        out->data[at + (size_t)i] = (char)(uint8_t)(slen >> (8 * i));
    }
    at = out->len;
    hc_buf_put_le(out, 0, 8);
    hc_dedupe_serialize(d, out);
    if (out->failed) {
        return;
    }
    uint64_t dlen = out->len - at - 8;
    for (int i = 0; i < 8; i++) {
        out->data[at + (size_t)i] = (char)(uint8_t)(dlen >> (8 * i));
    }
}

int hc_fsm_snapshot_read(const void *buf, size_t len, hc_store_t *s, hc_dedupe_t *d)
{
    const uint8_t *p = buf;
    if (p == NULL || len < 13 || memcmp(p, NODE_SNAP_MAGIC, 4) != 0 || p[4] != NODE_SNAP_VERSION) {
        return HC_EINVAL;
    }
    uint64_t slen = hc_get_le(p + 5, 8);
    size_t off = 13;
    if (slen > len - off) {
        return HC_EINVAL;
    }
    const uint8_t *sp = p + off;
    off += (size_t)slen;
    if (len - off < 8) {
        return HC_EINVAL;
    }
    uint64_t dlen = hc_get_le(p + off, 8);
    off += 8;
    if (dlen != len - off) {
        return HC_EINVAL;
    }
    int rv = hc_dedupe_load(d, p + off, (size_t)dlen);
    if (rv == 0) {
        rv = hc_store_load(s, sp, (size_t)slen);
    }
    if (rv != 0) {
        hc_dedupe_clear(d);
    }
    return rv;
}
