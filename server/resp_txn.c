/* resp_txn.c: RESP commands that become one write whose replies come from value records
 * (fsm.h hc_vals_next): MULTI / EXEC / DISCARD, MSET, SET with XX / GET / KEEPTTL / EXAT / PXAT,
 * GETDEL, EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT, PERSIST.
 *
 * A command is gathered into a resp_txn_t: its sub-commands (keys and values copied) and a
 * descriptor saying how its reply is built from their records. Outside MULTI the gathered
 * command is sent at once as a pending write (it pipelines like any write); inside MULTI it is
 * queued (+QUEUED) and EXEC sends the whole queue as one BATCH log entry: applied in order,
 * atomically (nothing interleaves), each command with its own outcome, like Redis. These need
 * protocol 3 on every member of a cluster (HC_EUPGRADE otherwise). WATCH is refused: MULTI
 * itself is atomic, and check-and-set is HTTP's if_version. */
#include "resp_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "metrics.h"

#define TXN_MAX_SUBS 100000 /* commands (keys) in one transaction */

void resp_txn_free(resp_txn_t *t)
{
    hc_buf_free(&t->arena);
    free(t->subs);
    free(t->desc);
    memset(t, 0, sizeof(*t));
}

static void txn_reset(resp_txn_t *t)
{
    resp_txn_free(t);
    hc_buf_init(&t->arena);
}

/* Copies argument i of the current command into the arena: its offset there. */
static size_t txn_copy(resp_conn_t *c, resp_txn_t *t, size_t i, size_t *len)
{
    const char *s = resp_arg(c, i, len);
    size_t off = t->arena.len;
    hc_buf_append(&t->arena, s, *len);
    return off;
}

/* A new sub-command on key argument key_arg (and value argument val_arg, 0: none); NULL (after
 * an error reply) when the transaction is too large or memory ran out. */
static hc_cmd_t *txn_sub(resp_conn_t *c, resp_txn_t *t, hc_op_t op, size_t key_arg, size_t val_arg)
{
    if (t->nsub >= TXN_MAX_SUBS) {
        resp_reply_error(c, HC_MRES_TOO_LARGE, "ERR more than %d keys in one transaction",
                         TXN_MAX_SUBS);
        return NULL;
    }
    if (t->nsub == t->scap) {
        size_t cap = t->scap ? 2 * t->scap : 8;
        struct resp_sub *v = realloc(t->subs, cap * sizeof(*v));
        if (v == NULL) {
            resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
            return NULL;
        }
        t->subs = v;
        t->scap = cap;
    }
    struct resp_sub *s = &t->subs[t->nsub++];
    memset(s, 0, sizeof(*s));
    s->cmd.op = op;
    s->key_off = txn_copy(c, t, key_arg, &s->cmd.klen);
    s->val_off = SIZE_MAX;
    if (val_arg > 0) {
        s->val_off = txn_copy(c, t, val_arg, &s->cmd.vlen);
    }
    if (t->arena.failed) {
        resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
        return NULL;
    }
    return &s->cmd;
}

static int txn_desc(resp_conn_t *c, resp_txn_t *t, resp_desc_kind_t kind, uint32_t nsub)
{
    if (t->ndesc == t->dcap) {
        size_t cap = t->dcap ? 2 * t->dcap : 8;
        resp_desc_t *v = realloc(t->desc, cap * sizeof(*v));
        if (v == NULL) {
            resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
            return -1;
        }
        t->desc = v;
        t->dcap = cap;
    }
    t->desc[t->ndesc++] = (resp_desc_t){.kind = kind, .nsub = nsub};
    return 0;
}

static int value_ok(resp_conn_t *c, size_t i)
{
    if (c->cmd.argv[i].len > c->srv->cfg->max_value_size) {
        resp_reply_error(c, HC_MRES_TOO_LARGE, "ERR value too large");
        return 0;
    }
    return 1;
}

/* An expiry argument: seconds or milliseconds, relative or absolute (unix time), as a relative
 * TTL in ms (0: an absolute instant already past). 0, or -1 after a reply. */
static int ttl_arg(resp_conn_t *c, size_t i, int ms, int absolute, int allow_nonpositive,
                   const char *cmd, int64_t *out)
{
    int64_t v;
    if (resp_arg_i64(c, i, &v) != 0) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR value is not an integer or out of range");
        return -1;
    }
    if ((!allow_nonpositive && v <= 0) || (!ms && (v > INT64_MAX / 1000 || v < INT64_MIN / 1000))) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR invalid expire time in '%s' command", cmd);
        return -1;
    }
    int64_t t = ms ? v : v * 1000;
    if (absolute) {
        int64_t now = (int64_t)hc_wall_ms();
        t = t > now ? t - now : 0;
    }
    *out = t;
    return 0;
}

/* ---- the commands, gathered ---- */

/* SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL] */
static int q_set(resp_conn_t *c, resp_txn_t *t)
{
    if (!resp_keys_ok(c, 1, 2) || !value_ok(c, 2)) {
        return -1;
    }
    int nx = 0, xx = 0, get = 0, keep = 0, have_ttl = 0;
    int64_t ttl = 0;
    for (size_t i = 3; i < c->cmd.argc; i++) {
        int ex = resp_arg_is(c, i, "ex"), px = resp_arg_is(c, i, "px");
        int exat = resp_arg_is(c, i, "exat"), pxat = resp_arg_is(c, i, "pxat");
        if (resp_arg_is(c, i, "nx") && !xx) {
            nx = 1;
        } else if (resp_arg_is(c, i, "xx") && !nx) {
            xx = 1;
        } else if (resp_arg_is(c, i, "get")) {
            get = 1;
        } else if (resp_arg_is(c, i, "keepttl") && !have_ttl) {
            keep = 1;
        } else if ((ex || px || exat || pxat) && !have_ttl && !keep && i + 1 < c->cmd.argc) {
            if (ttl_arg(c, i + 1, px || pxat, exat || pxat, 0, "set", &ttl) != 0) {
                return -1;
            }
            have_ttl = 1;
            i++;
        } else {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
            return -1;
        }
    }
    hc_cmd_t *s = txn_sub(c, t, HC_OP_PUT, 1, 2);
    if (s == NULL) {
        return -1;
    }
    s->if_absent = nx;
    s->if_present = xx;
    s->keep_ttl = keep;
    s->want_old = get;
    s->ttl_ms = (uint64_t)ttl;
    if (have_ttl && ttl == 0) {
        s->expire_at_ms = 1; /* EXAT / PXAT already past: expired at once (kept in a BATCH) */
    }
    return txn_desc(c, t, get ? D_SET_GET : D_SET, 1);
}

/* SETEX key seconds value, PSETEX key milliseconds value */
static int q_setex(resp_conn_t *c, resp_txn_t *t)
{
    int ms = resp_arg_is(c, 0, "psetex");
    int64_t ttl;
    if (ttl_arg(c, 2, ms, 0, 0, ms ? "psetex" : "setex", &ttl) != 0 || !resp_keys_ok(c, 1, 2) ||
        !value_ok(c, 3)) {
        return -1;
    }
    hc_cmd_t *s = txn_sub(c, t, HC_OP_PUT, 1, 3);
    if (s == NULL) {
        return -1;
    }
    s->ttl_ms = (uint64_t)ttl;
    return txn_desc(c, t, D_SET, 1);
}

/* One sub-command of `op` per key argument [first, argc); desc `kind` over all of them. */
static int q_keys(resp_conn_t *c, resp_txn_t *t, hc_op_t op, size_t first, resp_desc_kind_t kind)
{
    if (!resp_keys_ok(c, first, c->cmd.argc)) {
        return -1;
    }
    for (size_t i = first; i < c->cmd.argc; i++) {
        if (txn_sub(c, t, op, i, 0) == NULL) {
            return -1;
        }
    }
    return txn_desc(c, t, kind, (uint32_t)(c->cmd.argc - first));
}

static int q_get(resp_conn_t *c, resp_txn_t *t)
{
    return q_keys(c, t, HC_OP_GET, 1, D_GET);
}

static int q_mget(resp_conn_t *c, resp_txn_t *t)
{
    return q_keys(c, t, HC_OP_GET, 1, D_MGET);
}

static int q_exists(resp_conn_t *c, resp_txn_t *t)
{
    return q_keys(c, t, HC_OP_GET, 1, D_EXISTS);
}

static int q_ttl(resp_conn_t *c, resp_txn_t *t)
{
    return q_keys(c, t, HC_OP_GET, 1, resp_arg_is(c, 0, "pttl") ? D_PTTL : D_TTL);
}

static int q_del(resp_conn_t *c, resp_txn_t *t)
{
    return q_keys(c, t, HC_OP_DEL, 1, D_DEL);
}

static int q_getdel(resp_conn_t *c, resp_txn_t *t)
{
    if (q_keys(c, t, HC_OP_DEL, 1, D_GETDEL) != 0) {
        return -1;
    }
    t->subs[t->nsub - 1].cmd.want_old = 1;
    return 0;
}

/* INCR, DECR, INCRBY, DECRBY */
static int q_incr(resp_conn_t *c, resp_txn_t *t)
{
    if (!resp_keys_ok(c, 1, 2)) {
        return -1;
    }
    int decr = resp_arg_is(c, 0, "decr") || resp_arg_is(c, 0, "decrby");
    int64_t by = 1;
    if (c->cmd.argc == 3 && resp_arg_i64(c, 2, &by) != 0) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR value is not an integer or out of range");
        return -1;
    }
    if (decr) {
        if (by == INT64_MIN) {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR decrement would overflow");
            return -1;
        }
        by = -by;
    }
    hc_cmd_t *s = txn_sub(c, t, HC_OP_INCR, 1, 0);
    if (s == NULL) {
        return -1;
    }
    s->incr_by = by;
    return txn_desc(c, t, D_INCR, 1);
}

/* EXPIRE key seconds, PEXPIRE key ms, EXPIREAT key unix-s, PEXPIREAT key unix-ms: a TTL that is
 * not positive deletes the key, as in Redis. The NX / XX / GT / LT options are refused. */
static int q_expire(resp_conn_t *c, resp_txn_t *t)
{
    char name[16];
    resp_arg_text(c, 0, name, sizeof(name));
    for (char *p = name; *p; p++) {
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    }
    if (c->cmd.argc > 3) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "ERR %s options NX, XX, GT and LT are not supported by hacache", name);
        return -1;
    }
    int ms = name[0] == 'p', absolute = strstr(name, "at") != NULL;
    int64_t ttl;
    if (!resp_keys_ok(c, 1, 2) || ttl_arg(c, 2, ms, absolute, 1, name, &ttl) != 0) {
        return -1;
    }
    hc_cmd_t *s = txn_sub(c, t, ttl > 0 ? HC_OP_SET_TTL : HC_OP_DEL, 1, 0);
    if (s == NULL) {
        return -1;
    }
    s->ttl_ms = ttl > 0 ? (uint64_t)ttl : 0;
    return txn_desc(c, t, D_EXPIRE, 1);
}

static int q_persist(resp_conn_t *c, resp_txn_t *t)
{
    if (!resp_keys_ok(c, 1, 2) || txn_sub(c, t, HC_OP_SET_TTL, 1, 0) == NULL) {
        return -1;
    }
    return txn_desc(c, t, D_EXPIRE, 1);
}

/* MSET key value [key value ...]: one entry, all or nothing visible at once. */
static int q_mset(resp_conn_t *c, resp_txn_t *t)
{
    if (c->cmd.argc % 2 != 1) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "ERR wrong number of arguments for 'mset' command");
        return -1;
    }
    for (size_t i = 1; i < c->cmd.argc; i += 2) {
        if (!resp_keys_ok(c, i, i + 1) || !value_ok(c, i + 1)) {
            return -1;
        }
    }
    for (size_t i = 1; i < c->cmd.argc; i += 2) {
        if (txn_sub(c, t, HC_OP_PUT, i, i + 1) == NULL) {
            return -1;
        }
    }
    return txn_desc(c, t, D_MSET, (uint32_t)(c->cmd.argc / 2));
}

typedef struct {
    const char *name;
    int (*q)(resp_conn_t *c, resp_txn_t *t);
} queueable_t;

static const queueable_t queueable[] = {
    {"set", q_set},          {"setex", q_setex},     {"psetex", q_setex},   {"get", q_get},
    {"mget", q_mget},        {"exists", q_exists},   {"del", q_del},        {"unlink", q_del},
    {"getdel", q_getdel},    {"incr", q_incr},       {"decr", q_incr},      {"incrby", q_incr},
    {"decrby", q_incr},      {"expire", q_expire},   {"pexpire", q_expire}, {"expireat", q_expire},
    {"pexpireat", q_expire}, {"persist", q_persist}, {"mset", q_mset},      {"ttl", q_ttl},
    {"pttl", q_ttl},
};

/* ---- sending ---- */

static void on_txn_done(void *ud, int status, const hc_apply_result_t *res)
{
    resp_wreq_t *w = ud;
    resp_pend_t *p = w->p;
    p->status = status;
    if (res != NULL) {
        p->res = *res;
        p->res.vals = NULL;
    }
    if (res != NULL && res->vals != NULL) {
        hc_buf_append(&p->vals, res->vals->data, res->vals->len);
        p->have_vals = !p->vals.failed;
    }
    resp_pend_req_done(w);
}

/* Sends the gathered commands as one write (a BATCH, or the single command itself) and empties
 * t; the reply comes in order with the other writes in flight. */
static void txn_submit(resp_conn_t *c, resp_txn_t *t, int multi)
{
    hc_cmd_t *subs = calloc(t->nsub ? t->nsub : 1, sizeof(*subs));
    if (subs == NULL) {
        resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
        txn_reset(t);
        return;
    }
    for (size_t i = 0; i < t->nsub; i++) {
        subs[i] = t->subs[i].cmd;
        subs[i].cache = c->cache;
        subs[i].cache_len = c->cache_len;
        subs[i].key = t->arena.data + t->subs[i].key_off;
        subs[i].val = t->subs[i].val_off != SIZE_MAX ? t->arena.data + t->subs[i].val_off : NULL;
    }
    hc_cmd_t top;
    /* a command that answers with the old value (SET .. GET, GETDEL) goes as a BATCH too: its
     * status is 0 once applied, so a follower that forwarded it waits for its own apply and
     * the values, even when the condition failed or the key was absent */
    if (!multi && t->nsub == 1 && subs[0].op != HC_OP_GET && !subs[0].want_old &&
        subs[0].expire_at_ms == 0) {
        top = subs[0];
    } else {
        memset(&top, 0, sizeof(top));
        top.op = HC_OP_BATCH;
        top.cache = c->cache;
        top.cache_len = c->cache_len;
        top.sub = subs;
        top.nsub = t->nsub;
    }
    c->mack = (hc_metric_ack_t)HC_ACK_QUORUM;
    resp_pend_t *p = resp_pend_new(c, M_TXN, 1, resp_txn_reply);
    if (p == NULL) {
        free(subs);
        txn_reset(t);
        resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
        return;
    }
    c->used_ops = 1;
    p->desc = t->desc;
    p->ndesc = t->ndesc;
    p->multi = multi;
    t->desc = NULL;
    t->ndesc = t->dcap = 0;
    resp_wreq_t *w = &p->req[0];
    hc_node_op_t *op = hc_node_write_seq(c->srv->node, &top, 0, HC_ACK_QUORUM, c, on_txn_done, w);
    if (!w->done) {
        w->nop = op;
    }
    free(subs);
    txn_reset(t);
    resp_pend_issued(p);
}

/* One command outside MULTI: gathered on its own and sent at once. */
static void run_one(resp_conn_t *c, int (*q)(resp_conn_t *c, resp_txn_t *t))
{
    if (c->in_multi) {
        resp_txn_queue(c);
        return;
    }
    resp_txn_t t;
    memset(&t, 0, sizeof(t));
    if (q(c, &t) == 0) {
        txn_submit(c, &t, 0);
    }
    resp_txn_free(&t);
}

void resp_cmd_set_ext(resp_conn_t *c)
{
    run_one(c, q_set);
}

void resp_cmd_getdel(resp_conn_t *c)
{
    run_one(c, q_getdel);
}

void resp_cmd_expire(resp_conn_t *c)
{
    run_one(c, q_expire);
}

void resp_cmd_persist(resp_conn_t *c)
{
    run_one(c, q_persist);
}

void resp_cmd_mset(resp_conn_t *c)
{
    run_one(c, q_mset);
}

void resp_txn_queue(resp_conn_t *c)
{
    for (size_t i = 0; i < sizeof(queueable) / sizeof(queueable[0]); i++) {
        if (resp_arg_is(c, 0, queueable[i].name)) {
            if (queueable[i].q(c, &c->txn) != 0) {
                c->txn.failed = 1;
            } else {
                resp_reply_raw(c, "+QUEUED\r\n");
            }
            return;
        }
    }
    char name[64];
    resp_arg_text(c, 0, name, sizeof(name));
    resp_reply_error(c, HC_MRES_BAD_REQUEST,
                     "ERR '%s' is not supported inside MULTI (hacache queues SET, SETEX, PSETEX, "
                     "GET, MGET, EXISTS, DEL, UNLINK, GETDEL, INCR, DECR, INCRBY, DECRBY, EXPIRE, "
                     "PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST, MSET, TTL, PTTL)",
                     name);
    c->txn.failed = 1;
}

void resp_cmd_multi(resp_conn_t *c)
{
    if (c->in_multi) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR MULTI calls can not be nested");
        return;
    }
    txn_reset(&c->txn);
    c->in_multi = 1;
    resp_reply_raw(c, "+OK\r\n");
}

void resp_cmd_exec(resp_conn_t *c)
{
    if (!c->in_multi) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR EXEC without MULTI");
        return;
    }
    c->in_multi = 0;
    if (c->txn.failed) {
        txn_reset(&c->txn);
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    if (c->txn.ndesc == 0) {
        txn_reset(&c->txn);
        resp_reply_raw(c, "*0\r\n");
        return;
    }
    txn_submit(c, &c->txn, 1);
}

void resp_cmd_discard(resp_conn_t *c)
{
    if (!c->in_multi) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR DISCARD without MULTI");
        return;
    }
    c->in_multi = 0;
    txn_reset(&c->txn);
    resp_reply_raw(c, "+OK\r\n");
}

void resp_cmd_watch(resp_conn_t *c)
{
    if (c->in_multi) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    resp_reply_error(c, HC_MRES_BAD_REQUEST,
                     "ERR WATCH is not supported by hacache (MULTI/EXEC is applied atomically; "
                     "for check-and-set use the HTTP API's if_version)");
}

void resp_cmd_unwatch(resp_conn_t *c)
{
    resp_reply_raw(c, "+OK\r\n"); /* nothing is ever watched */
}

/* ---- replies ---- */

/* The reply of one command from its n records. */
static void desc_reply(resp_conn_t *c, const resp_desc_t *d, const hc_val_t *r, size_t n)
{
    int64_t count = 0;
    switch (d->kind) {
    case D_SET:
        if (r[0].status == 0) {
            resp_reply_raw(c, "+OK\r\n");
        } else if (r[0].status == HC_ECONFLICT) {
            resp_reply_raw(c, "$-1\r\n");
        } else {
            resp_reply_node_error(c, r[0].status);
        }
        return;
    case D_SET_GET:
    case D_GETDEL:
    case D_GET:
        if (r[0].status != 0 && r[0].status != HC_ECONFLICT && r[0].status != HC_ENOTFOUND) {
            resp_reply_node_error(c, r[0].status);
        } else if (r[0].has_value) {
            resp_reply_bulk(c, r[0].value, r[0].len);
        } else {
            resp_reply_raw(c, "$-1\r\n");
        }
        return;
    case D_MGET:
        hc_buf_printf(&c->out, "*%zu\r\n", n);
        for (size_t i = 0; i < n; i++) {
            if (r[i].has_value) {
                resp_reply_bulk(c, r[i].value, r[i].len);
            } else {
                resp_reply_raw(c, "$-1\r\n");
            }
        }
        return;
    case D_EXISTS:
        for (size_t i = 0; i < n; i++) {
            count += r[i].has_value;
        }
        resp_reply_int(c, count);
        return;
    case D_DEL:
    case D_MSET:
        for (size_t i = 0; i < n; i++) {
            if (r[i].status != 0 && r[i].status != HC_ENOTFOUND) {
                resp_reply_node_error(c, r[i].status);
                return;
            }
            count += r[i].status == 0 && r[i].integer != 0;
        }
        if (d->kind == D_DEL) {
            resp_reply_int(c, count);
        } else {
            resp_reply_raw(c, "+OK\r\n");
        }
        return;
    case D_INCR:
        if (r[0].status == 0) {
            resp_reply_int(c, r[0].integer);
        } else {
            resp_reply_node_error(c, r[0].status);
        }
        return;
    case D_TTL:
    case D_PTTL:
        if (!r[0].has_value) {
            resp_reply_int(c, -2);
        } else if (r[0].integer == 0) {
            resp_reply_int(c, -1);
        } else {
            uint64_t now = hc_wall_ms(), at = (uint64_t)r[0].integer;
            uint64_t left = at > now ? at - now : 0;
            resp_reply_int(c, d->kind == D_PTTL ? (int64_t)left : (int64_t)((left + 500) / 1000));
        }
        return;
    case D_EXPIRE:
        if (r[0].status == 0) {
            resp_reply_int(c, r[0].integer != 0);
        } else if (r[0].status == HC_ENOTFOUND || r[0].status == HC_ECONFLICT) {
            resp_reply_int(c, 0);
        } else {
            resp_reply_node_error(c, r[0].status);
        }
        return;
    }
}

void resp_txn_reply(resp_conn_t *c, resp_pend_t *p)
{
    resp_desc_kind_t k = p->ndesc == 1 ? p->desc[0].kind : D_GET;
    if (!p->have_vals && !p->multi && p->ndesc == 1 && p->desc[0].nsub == 1 &&
        (k == D_SET || k == D_DEL || k == D_INCR || k == D_EXPIRE || k == D_MSET)) {
        /* a single command without values (no record): its outcome is the status */
        hc_val_t r = {.status = p->status,
                      .integer = k == D_INCR ? p->res.integer : p->res.existed};
        desc_reply(c, &p->desc[0], &r, 1);
        return;
    }
    if (!p->have_vals) {
        if (p->status != 0) {
            resp_reply_node_error(c, p->status);
        } else {
            /* a retry of a write applied before (request id): its values were not kept */
            resp_reply_node_error(c, HC_EUNKNOWN_OUTCOME);
        }
        return;
    }
    if (p->multi) {
        hc_buf_printf(&c->out, "*%zu\r\n", p->ndesc);
    }
    size_t pos = 0;
    hc_val_t *recs = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < p->ndesc; i++) {
        const resp_desc_t *d = &p->desc[i];
        if (d->nsub > cap) {
            hc_val_t *v = realloc(recs, d->nsub * sizeof(*v));
            if (v == NULL) {
                resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
                continue;
            }
            recs = v;
            cap = d->nsub;
        }
        size_t got = 0;
        while (got < d->nsub && hc_vals_next(&p->vals, &pos, &recs[got])) {
            got++;
        }
        if (got < d->nsub) {
            resp_reply_error(c, HC_MRES_ERROR, "ERR internal error: a result is missing");
            continue;
        }
        desc_reply(c, d, recs, got);
    }
    free(recs);
}
