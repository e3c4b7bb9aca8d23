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

/* A batch's writes as one PUT the size of all of them (room is planned for them together:
 * planned one by one, each plan would ignore the others and a later write could fail after
 * earlier ones applied). 0 when it writes nothing. */
static int batch_as_put(const hc_cmd_t *cmd, uint64_t now, hc_cmd_t *all)
{
    static const char dummy[1];
    const hc_cmd_t *first = NULL;
    uint64_t total = 0;
    for (size_t i = 0; i < cmd->nsub; i++) {
        const hc_cmd_t *w = &cmd->sub[i];
        if (w->op == HC_OP_PUT || w->op == HC_OP_INCR) {
            first = first ? first : w;
            total += hc_store_entry_footprint(w->klen, w->op == HC_OP_PUT ? w->vlen : 20);
        }
    }
    if (first == NULL) {
        return 0;
    }
    *all = *first;
    all->op = HC_OP_PUT;
    all->if_absent = all->if_present = all->has_if_version = all->want_old = all->keep_ttl = 0;
    all->val = dummy; /* sizes only: the planner never reads the bytes */
    all->vlen = (size_t)total;
    if (all->expire_at_ms == 0 && all->ttl_ms != 0) {
        all->expire_at_ms = now + all->ttl_ms;
    }
    return 1;
}

int hc_fsm_plan_put(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t now, hc_cmd_list_t *out)
{
    if (cmd->op == HC_OP_BATCH) {
        /* a batch that cannot fit even in an empty cache is refused whole (HC_ENOMEM), before
         * anything is written */
        hc_cmd_t all;
        return batch_as_put(cmd, now, &all) ? hc_fsm_plan_put(f, &all, now, out) : 0;
    }
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

void hc_fsm_plan_proposed(hc_fsm_t *f, const hc_cmd_list_t *victims, const hc_cmd_t *cmd,
                          uint64_t index, uint64_t now)
{
    for (size_t i = 0; victims != NULL && i < victims->n; i++) {
        const hc_cmd_t *v = &victims->v[i];
        hc_store_plan_doom(f->store, v->cache, v->cache_len, v->key, v->klen);
    }
    hc_cmd_t all;
    if (cmd != NULL && cmd->op == HC_OP_BATCH) {
        cmd = batch_as_put(cmd, now, &all) ? &all : NULL;
    }
    if (cmd != NULL && (cmd->op == HC_OP_PUT || cmd->op == HC_OP_INCR)) {
        (void)hc_store_plan_reserve(f->store, cmd, index, now); /* ENOMEM: plans see less */
    }
}

void hc_fsm_plan_clear(hc_fsm_t *f)
{
    hc_store_plan_clear(f->store);
}

int hc_fsm_find_request(const hc_fsm_t *f, const uint8_t rid[16], hc_dedupe_result_t *out)
{
    return hc_dedupe_find(f->dedupe, rid, out);
}

/* ---- protocol 3: results with values ---- */

/* A record: status (i32) integer (i64) has_value (u8) [len (u32) bytes], little endian. */
static void vals_put(hc_buf_t *vals, int status, int64_t integer, const void *v, size_t len,
                     int has)
{
    uint8_t h[13];
    uint32_t st = (uint32_t)status;
    uint64_t in = (uint64_t)integer;
    for (int i = 0; i < 4; i++) {
        h[i] = (uint8_t)(st >> (8 * i));
    }
    for (int i = 0; i < 8; i++) {
        h[4 + i] = (uint8_t)(in >> (8 * i));
    }
    h[12] = (uint8_t)(has != 0);
    hc_buf_append(vals, h, sizeof(h));
    if (has) {
        uint8_t l[4];
        for (int i = 0; i < 4; i++) {
            l[i] = (uint8_t)((uint32_t)len >> (8 * i));
        }
        hc_buf_append(vals, l, sizeof(l));
        hc_buf_append(vals, v, len);
    }
}

int hc_vals_next(const hc_buf_t *vals, size_t *pos, hc_val_t *out)
{
    memset(out, 0, sizeof(*out));
    if (vals == NULL || *pos + 13 > vals->len) {
        return 0;
    }
    const uint8_t *p = (const uint8_t *)vals->data + *pos;
    uint32_t st = 0;
    uint64_t in = 0;
    for (int i = 0; i < 4; i++) {
        st |= (uint32_t)p[i] << (8 * i);
    }
    for (int i = 0; i < 8; i++) {
        in |= (uint64_t)p[4 + i] << (8 * i);
    }
    out->status = (int)(int32_t)st;
    out->integer = (int64_t)in;
    out->has_value = p[12] != 0;
    size_t used = 13;
    if (out->has_value) {
        if (*pos + 17 > vals->len) {
            return 0;
        }
        uint32_t len = 0;
        for (int i = 0; i < 4; i++) {
            len |= (uint32_t)p[13 + i] << (8 * i);
        }
        if (*pos + 17 + (size_t)len > vals->len) {
            return 0;
        }
        out->value = p + 17;
        out->len = len;
        used = 17 + len;
    }
    *pos += used;
    return 1;
}

/* The live value of cmd's key, copied into *copy (owned by the caller); 0 or HC_ENOTFOUND. */
static int old_value(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t now, hc_buf_t *copy,
                     hc_entry_view_t *view)
{
    int rv = hc_store_get(f->store, cmd->cache, cmd->cache_len, cmd->key, cmd->klen, now, view);
    if (rv == 0) {
        hc_buf_append(copy, view->data, view->len);
        if (copy->failed) {
            return HC_ENOMEM;
        }
    }
    return rv;
}

/* SET_TTL: rewrites the live value with the new expiry (its version moves, like any write). */
static int apply_set_ttl(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t index, uint64_t now,
                         hc_apply_result_t *res)
{
    hc_buf_t v;
    hc_buf_init(&v);
    hc_entry_view_t view;
    int rv = old_value(f, cmd, now, &v, &view);
    if (rv == 0 && cmd->expire_at_ms == 0 && cmd->ttl_ms == 0 && view.expire_at_ms == 0) {
        rv = HC_ECONFLICT; /* PERSIST of a key without expiry */
    }
    if (rv == 0) {
        hc_cmd_t put = *cmd;
        put.op = HC_OP_PUT;
        put.val = v.data;
        put.vlen = v.len;
        put.no_default_ttl = 1;
        rv = hc_store_apply(f->store, &put, index, now, res);
        res->existed = rv == 0;
    }
    hc_buf_free(&v);
    return rv;
}

/* One command of protocol 3 or a plain one, with its value record (when `vals`). */
static int apply_one(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t index, uint64_t now,
                     hc_apply_result_t *res, hc_buf_t *vals)
{
    memset(res, 0, sizeof(*res));
    hc_buf_t old;
    hc_buf_init(&old);
    hc_entry_view_t view;
    int rv, has_old = 0;
    switch (cmd->op) {
    case HC_OP_GET:
        rv = old_value(f, cmd, now, &old, &view);
        has_old = rv == 0;
        break;
    case HC_OP_SET_TTL:
        rv = apply_set_ttl(f, cmd, index, now, res);
        break;
    case HC_OP_BATCH:
        rv = HC_EINVAL; /* never nested */
        break;
    default:
        if (cmd->want_old && (cmd->op == HC_OP_PUT || cmd->op == HC_OP_DEL)) {
            int g = old_value(f, cmd, now, &old, &view);
            has_old = g == 0;
        }
        rv = hc_store_apply(f->store, cmd, index, now, res);
        break;
    }
    if (vals != NULL) {
        int64_t integer = cmd->op == HC_OP_INCR               ? res->integer
                          : cmd->op == HC_OP_DEL              ? res->existed
                          : cmd->op == HC_OP_SET_TTL          ? res->existed
                          : (cmd->op == HC_OP_GET && has_old) ? (int64_t)view.expire_at_ms
                                                              : 0;
        vals_put(vals, rv, integer, old.data, old.len, has_old);
    }
    hc_buf_free(&old);
    return rv;
}

static int apply_cmd(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t index, uint64_t now,
                     hc_apply_result_t *res, hc_buf_t *vals)
{
    if (cmd->op != HC_OP_BATCH) {
        int records = cmd->want_old || cmd->op == HC_OP_GET || cmd->op == HC_OP_SET_TTL;
        int rv = apply_one(f, cmd, index, now, res, records ? vals : NULL);
        if (records && vals != NULL) {
            res->vals = vals;
        }
        return rv;
    }
    /* a batch: every command in order, each with its own outcome, nothing in between */
    for (size_t i = 0; i < cmd->nsub; i++) {
        hc_apply_result_t r;
        (void)apply_one(f, &cmd->sub[i], index, now, &r, vals);
    }
    memset(res, 0, sizeof(*res));
    res->vals = vals;
    return 0;
}

int hc_fsm_apply(hc_fsm_t *f, const hc_cmd_t *cmd, const uint8_t *rid, uint64_t index, uint64_t now,
                 hc_apply_result_t *res)
{
    return hc_fsm_apply_vals(f, cmd, rid, index, now, res, NULL);
}

int hc_fsm_apply_vals(hc_fsm_t *f, const hc_cmd_t *cmd, const uint8_t *rid, uint64_t index,
                      uint64_t now, hc_apply_result_t *res, hc_buf_t *vals)
{
    hc_dedupe_result_t prev;
    hc_store_plan_release(f->store, index); /* the leader's reservations up to here are spent */
    if (rid != NULL && hc_dedupe_find(f->dedupe, rid, &prev)) {
        /* a retried write: applied once, every retry gets the first outcome (values are not
         * kept: a retried command that returns values has res->vals NULL) */
        *res = prev.res;
        return prev.status;
    }
    memset(res, 0, sizeof(*res));
    int status = apply_cmd(f, cmd, index, now, res, vals);
    if (rid != NULL) {
        hc_dedupe_result_t r = {.index = index, .status = status, .res = *res};
        r.res.vals = NULL;
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
