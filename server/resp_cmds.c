/* resp_cmds.c: the Redis commands of the RESP adapter, mapped onto the node: the command table,
 * dispatch, and the node requests of a command (replies and arguments: resp_reply.c).
 *
 * Writes (SET, DEL, INCR, FLUSHDB, ...) become pending writes (resp_pend_t, resp_pend.c):
 * every node request of the command is sent at once and the reply is built once all are
 * answered. Reads run one node request at a time (c->busy): multi-key reads (EXISTS, MGET) in
 * order; MGET gathers its values and answers them once all are in (or only the first error). */
#include "resp_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "glob.h"
#include "log.h"
#include "metrics.h"

/* ---- node requests ---- */

static int mode_is_write(op_mode_t m)
{
    return m == M_DEL || m == M_SET || m == M_INCR || m == M_FLUSH;
}

/* Whether a node answer is the command's error reply, rather than one of its outcomes. */
static int is_error(op_mode_t mode, int status)
{
    return status != 0 && status != HC_ENOTFOUND && !(mode == M_SET && status == HC_ECONFLICT);
}

/* Combines one read answer into the reply of the current command. */
static void on_result(resp_conn_t *c, int status, const hc_entry_view_t *view)
{
    if (is_error(c->mode, status)) {
        resp_reply_node_error(c, status);
        c->op_stop = 1;
        return;
    }
    switch (c->mode) {
    case M_GET:
        if (status == 0) {
            resp_reply_bulk(c, view->data, view->len);
        } else {
            resp_reply_raw(c, "$-1\r\n");
            c->mres = HC_MRES_NOT_FOUND;
        }
        break;
    case M_MGET:
        if (status == 0) {
            hc_buf_printf(&c->gather, "$%zu\r\n", view->len);
            hc_buf_append(&c->gather, view->data, view->len);
            hc_buf_puts(&c->gather, "\r\n");
        } else {
            hc_buf_puts(&c->gather, "$-1\r\n");
        }
        c->count++;
        break;
    case M_TTL:
    case M_PTTL:
        if (status != 0) {
            resp_reply_int(c, -2);
        } else if (view->expire_at_ms == 0) {
            resp_reply_int(c, -1);
        } else {
            uint64_t now = hc_wall_ms();
            uint64_t left = view->expire_at_ms > now ? view->expire_at_ms - now : 0;
            resp_reply_int(c, c->mode == M_PTTL ? (int64_t)left : (int64_t)((left + 500) / 1000));
        }
        break;
    case M_EXISTS:
        c->count += status == 0;
        break;
    default:
        break;
    }
}

void resp_pend_reply(resp_conn_t *c, resp_pend_t *p)
{
    if (p->mode == M_TXN) {
        resp_txn_reply(c, p);
        return;
    }
    if (p->err != 0) {
        resp_reply_node_error(c, p->err);
        return;
    }
    switch (p->mode) {
    case M_SET:
        if (p->status == 0) {
            resp_reply_raw(c, "+OK\r\n");
        } else { /* NX and the key exists */
            resp_reply_raw(c, "$-1\r\n");
            c->mres = HC_MRES_CONFLICT;
        }
        break;
    case M_INCR:
        if (p->status == 0) {
            resp_reply_int(c, p->res.integer);
        } else { /* INCR never reports an absent key; keep the reply well formed anyway */
            resp_reply_node_error(c, p->status);
        }
        break;
    case M_DEL:
        resp_reply_int(c, p->count);
        break;
    case M_FLUSH:
        resp_reply_raw(c, "+OK\r\n"); /* an absent cache is already empty */
        break;
    default:
        resp_reply_raw(c, "+OK\r\n");
        break;
    }
}

static void op_answered(resp_conn_t *c);

static void on_pend_done(void *ud, int status, const hc_apply_result_t *res)
{
    resp_wreq_t *w = ud;
    resp_pend_t *p = w->p;
    if (is_error(p->mode, status)) {
        if (p->err == 0) {
            p->err = status; /* the first error is the reply */
        }
    } else if (p->mode == M_DEL) {
        p->count += status == 0;
    } else {
        p->status = status;
        if (res != NULL) {
            p->res = *res;
        }
    }
    resp_pend_req_done(w);
}

static void on_read_done(void *ud, int status, const hc_entry_view_t *view)
{
    resp_conn_t *c = ud;
    on_result(c, status, view);
    op_answered(c);
}

/* Sends the write of argument i (the key; FLUSHDB has none) for the pending write p. */
static hc_node_op_t *issue_write(resp_conn_t *c, size_t i, resp_wreq_t *w)
{
    size_t klen = 0;
    const char *key = i > 0 ? resp_arg(c, i, &klen) : "";
    hc_cmd_t cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = (hc_op_t)c->w_op;
    cmd.cache = c->cache;
    cmd.cache_len = c->cache_len;
    cmd.key = key;
    cmd.klen = klen;
    if (c->w_val_arg > 0) {
        cmd.val = resp_arg(c, c->w_val_arg, &cmd.vlen);
    }
    cmd.if_absent = c->w_if_absent;
    cmd.incr_by = c->w_incr_by;
    /* INCR's new value is only known once the write is applied here: always quorum */
    hc_ack_t ack = w->p->mode == M_INCR ? HC_ACK_QUORUM : c->ack;
    return hc_node_write_seq(c->srv->node, &cmd, c->w_ttl_ms, ack, c, on_pend_done, w);
}

/* Sends the remaining reads of the current command one at a time; answers that come back
 * synchronously are handled in this loop (no recursion), a later answer continues it. */
static void run_ops(resp_conn_t *c)
{
    while (!c->op_stop && c->op_next < c->op_end) {
        size_t i = c->op_next++;
        c->busy = 1;
        c->issuing = 1;
        size_t klen;
        const char *key = resp_arg(c, i, &klen);
        hc_node_op_t *op = hc_node_read_async(c->srv->node, c->cache, c->cache_len, key, klen,
                                              c->cons, on_read_done, c);
        c->issuing = 0;
        if (c->busy) {
            c->nop = op;
            return;
        }
    }
    if (!c->op_stop && c->mode == M_EXISTS) {
        resp_reply_int(c, c->count);
    }
    if (c->mode == M_MGET) {
        if (!c->op_stop && c->gather.failed) {
            resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
        } else if (!c->op_stop) {
            hc_buf_printf(&c->out, "*%" PRId64 "\r\n", c->count);
            hc_buf_append(&c->out, c->gather.data, c->gather.len);
        }
        hc_buf_free(&c->gather);
    }
    resp_command_done(c);
}

static void op_answered(resp_conn_t *c)
{
    c->busy = 0;
    c->nop = NULL;
    if (c->issuing) {
        return; /* run_ops goes on */
    }
    run_ops(c);
    if (!c->busy) {
        c->srv->io.process(c);
    }
    c->srv->io.flush(c);
}

/* Starts node requests for arguments [first, end) (first = end = 1 for one keyless request):
 * reads one after the other, writes all at once as a pending write. */
static void start_ops(resp_conn_t *c, op_mode_t mode, size_t first, size_t end)
{
    c->used_ops = 1;
    if (!mode_is_write(mode)) {
        c->mode = mode;
        c->op_next = first;
        c->op_end = end;
        c->op_stop = 0;
        c->count = 0;
        run_ops(c);
        return;
    }
    c->mack = (hc_metric_ack_t)(mode == M_INCR ? HC_ACK_QUORUM : c->ack);
    uint32_t n = (uint32_t)(end - first);
    resp_pend_t *p = resp_pend_new(c, mode, n, resp_pend_reply);
    if (p == NULL) {
        c->used_ops = 0;
        resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        resp_wreq_t *w = &p->req[k];
        hc_node_op_t *op = issue_write(c, first + k, w);
        if (!w->done) {
            w->nop = op;
        }
    }
    resp_pend_issued(p);
}

/* Resets the write template of the current command to a plain `op`. */
static void start_write(resp_conn_t *c, hc_op_t op)
{
    c->w_op = (int)op;
    c->w_val_arg = 0;
    c->w_ttl_ms = 0;
    c->w_if_absent = 0;
    c->w_incr_by = 0;
}

/* Checks every key argument in [first, end) against CACHE_MAX_KEY_SIZE. */
/* ---- commands ---- */

static void cmd_ping(resp_conn_t *c)
{
    if (c->cmd.argc > 2) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "ERR wrong number of arguments for 'ping' command");
    } else if (c->cmd.argc == 2) {
        size_t n;
        const char *s = resp_arg(c, 1, &n);
        resp_reply_bulk(c, s, n);
    } else {
        resp_reply_raw(c, "+PONG\r\n");
    }
}

static void cmd_echo(resp_conn_t *c)
{
    size_t n;
    const char *s = resp_arg(c, 1, &n);
    resp_reply_bulk(c, s, n);
}

static void cmd_quit(resp_conn_t *c)
{
    resp_reply_raw(c, "+OK\r\n");
    c->close_after = 1;
}

/* Authenticates the connection with the token in argument tok_arg, as user `user_arg` (0: no
 * user given; the only user is "default", Redis 6 ACL form). 0, or -1 after an error reply. */
static int authenticate(resp_conn_t *c, size_t user_arg, size_t tok_arg)
{
    const hc_auth_t *auth = c->srv->auth;
    if (!hc_auth_required(auth)) {
        resp_reply_error(
            c, HC_MRES_BAD_REQUEST,
            "ERR AUTH <password> called without any password configured for the default "
            "user. Are you sure your configuration is correct?");
        return -1;
    }
    size_t n;
    const char *tok = resp_arg(c, tok_arg, &n);
    int ok = hc_auth_check(auth, tok, n);
    if (user_arg > 0 && !resp_arg_is(c, user_arg, "default")) {
        ok = 0;
    }
    if (!ok) {
        resp_reply_error(c, HC_MRES_UNAUTHORIZED,
                         "WRONGPASS invalid username-password pair or user is disabled.");
        return -1;
    }
    if (c->authed) {
        return 0; /* already admitted */
    }
    hc_resp_t *r = c->srv;
    if (hc_admit_admit(r->admit, &c->adm, uv_now(r->loop)) != 0) {
        hc_admit_refuse(r->admit, HC_ADMIT_MAX_CLIENTS, uv_now(r->loop));
        resp_reply_error(c, HC_MRES_UNAVAILABLE, "ERR max number of clients reached");
        c->close_after = 1;
        return -1;
    }
    hc_admit_timer_arm(&r->admit_timer);
    c->authed = 1;
    return 0;
}

static void cmd_auth(resp_conn_t *c)
{
    if (c->cmd.argc > 3) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
    } else if (authenticate(c, c->cmd.argc == 3 ? 1 : 0, c->cmd.argc - 1) == 0) {
        resp_reply_raw(c, "+OK\r\n");
    }
}

static void cmd_select(resp_conn_t *c)
{
    int64_t db;
    if (resp_arg_i64(c, 1, &db) != 0) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR value is not an integer or out of range");
    } else if (db != 0) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "ERR DB index is out of range (hacache has one; see HC.CACHE)");
    } else {
        resp_reply_raw(c, "+OK\r\n");
    }
}

static void cmd_get(resp_conn_t *c)
{
    if (resp_keys_ok(c, 1, 2)) {
        start_ops(c, M_GET, 1, 2);
    }
}

static void cmd_ttl(resp_conn_t *c)
{
    if (resp_keys_ok(c, 1, 2)) {
        start_ops(c, resp_arg_is(c, 0, "pttl") ? M_PTTL : M_TTL, 1, 2);
    }
}

static void cmd_exists(resp_conn_t *c)
{
    if (resp_keys_ok(c, 1, c->cmd.argc)) {
        start_ops(c, M_EXISTS, 1, c->cmd.argc);
    }
}

/* Checks the key (argument 1) and the value (argument val_arg) of a put and starts its write
 * template; 0, or -1 after an error reply. */
static int start_put(resp_conn_t *c, size_t val_arg)
{
    if (!resp_keys_ok(c, 1, 2)) {
        return -1;
    }
    if (c->cmd.argv[val_arg].len > c->srv->cfg->max_value_size) {
        resp_reply_error(c, HC_MRES_TOO_LARGE, "ERR value too large");
        return -1;
    }
    start_write(c, HC_OP_PUT);
    c->w_val_arg = val_arg;
    return 0;
}

/* Options of SET that need protocol 3 (resp_txn.c); plain SET stays a protocol 2 entry. */
static const char *const set_later[] = {"xx", "get", "keepttl", "exat", "pxat"};

/* SET key value [EX seconds | PX milliseconds] [NX] */
static void cmd_set(resp_conn_t *c)
{
    if (start_put(c, 2) != 0) {
        return;
    }
    int have_ttl = 0;
    for (size_t i = 3; i < c->cmd.argc; i++) {
        int ex = resp_arg_is(c, i, "ex"), px = resp_arg_is(c, i, "px");
        for (size_t k = 0; k < sizeof(set_later) / sizeof(set_later[0]); k++) {
            if (resp_arg_is(c, i, set_later[k])) {
                /* protocol 3's conditions and results: resp_txn.c */
                resp_cmd_set_ext(c);
                return;
            }
        }
        if (resp_arg_is(c, i, "nx")) {
            c->w_if_absent = 1;
        } else if ((ex || px) && !have_ttl && i + 1 < c->cmd.argc) {
            int64_t v;
            if (resp_arg_i64(c, i + 1, &v) != 0) {
                resp_reply_error(c, HC_MRES_BAD_REQUEST,
                                 "ERR value is not an integer or out of range");
                return;
            }
            if (v <= 0 || (ex && v > INT64_MAX / 1000)) {
                resp_reply_error(c, HC_MRES_BAD_REQUEST,
                                 "ERR invalid expire time in 'set' command");
                return;
            }
            c->w_ttl_ms = ex ? (uint64_t)v * 1000 : (uint64_t)v;
            have_ttl = 1;
            i++;
        } else {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
            return;
        }
    }
    start_ops(c, M_SET, 1, 2);
}

/* SETEX key seconds value, PSETEX key milliseconds value: SET key value EX|PX ttl. */
static void cmd_setex(resp_conn_t *c)
{
    int ms = resp_arg_is(c, 0, "psetex");
    int64_t v;
    if (resp_arg_i64(c, 2, &v) != 0) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR value is not an integer or out of range");
        return;
    }
    if (v <= 0 || (!ms && v > INT64_MAX / 1000)) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR invalid expire time in '%s' command",
                         ms ? "psetex" : "setex");
        return;
    }
    if (start_put(c, 3) != 0) {
        return;
    }
    c->w_ttl_ms = ms ? (uint64_t)v : (uint64_t)v * 1000;
    start_ops(c, M_SET, 1, 2);
}

/* MGET key...: one read per key at the connection's consistency, nil for a missing one. */
static void cmd_mget(resp_conn_t *c)
{
    if (resp_keys_ok(c, 1, c->cmd.argc)) {
        hc_buf_reset(&c->gather);
        start_ops(c, M_MGET, 1, c->cmd.argc);
    }
}

/* DEL and UNLINK (the node frees memory at once either way). */
static void cmd_del(resp_conn_t *c)
{
    if (resp_keys_ok(c, 1, c->cmd.argc)) {
        start_write(c, HC_OP_DEL);
        start_ops(c, M_DEL, 1, c->cmd.argc);
    }
}

/* INCR, DECR, INCRBY, DECRBY */
static void cmd_incr(resp_conn_t *c)
{
    if (!resp_keys_ok(c, 1, 2)) {
        return;
    }
    int decr = resp_arg_is(c, 0, "decr") || resp_arg_is(c, 0, "decrby");
    int64_t by = 1;
    if (c->cmd.argc == 3 && resp_arg_i64(c, 2, &by) != 0) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR value is not an integer or out of range");
        return;
    }
    if (decr) {
        if (by == INT64_MIN) {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR decrement would overflow");
            return;
        }
        by = -by;
    }
    start_write(c, HC_OP_INCR);
    c->w_incr_by = by;
    start_ops(c, M_INCR, 1, 2);
}

/* FLUSHDB [ASYNC|SYNC]: clears the selected cache. */
static void cmd_flushdb(resp_conn_t *c)
{
    if (c->cmd.argc == 2 && !resp_arg_is(c, 1, "async") && !resp_arg_is(c, 1, "sync")) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
        return;
    }
    if (c->cmd.argc > 2) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
        return;
    }
    start_write(c, HC_OP_CLEAR);
    start_ops(c, M_FLUSH, 0, 1); /* argument 0 stands for "no key" */
}

typedef struct {
    const char *name;
    uint64_t entries;
    int found;
} dbsize_t;

static void dbsize_cb(void *ud, const char *name, size_t name_len,
                      const hc_cache_settings_t *settings, const hc_cache_stats_t *stats,
                      const uint8_t *digest)
{
    (void)settings;
    (void)digest;
    dbsize_t *d = ud;
    if (name_len == strlen(d->name) && memcmp(name, d->name, name_len) == 0) {
        d->entries = stats->entries;
        d->found = 1;
    }
}

/* DBSIZE: entries of the selected cache in this node's store (like Redis, expired entries not
 * reclaimed yet count; in a cluster it is this replica's count). */
static void cmd_dbsize(resp_conn_t *c)
{
    dbsize_t d = {c->cache, 0, 0};
    hc_node_foreach_cache(c->srv->node, 0, dbsize_cb, &d);
    resp_reply_int(c, (int64_t)d.entries);
}

/* SCAN's bounds on one call, whatever the client asks: a COUNT above SCAN_COUNT_MAX is taken as
 * SCAN_COUNT_MAX (the store then visits at most 10x that many buckets), and once MATCH has
 * examined SCAN_MATCH_WORK pattern bytes the call ends after the current bucket. A pattern's
 * cost on one key is at most its length times the key's, hence SCAN_PATTERN_MAX. */
#define SCAN_COUNT_DEFAULT 10
#define SCAN_COUNT_MAX     10000
#define SCAN_PATTERN_MAX   4096
#define SCAN_MATCH_WORK    (4u << 20)

typedef struct {
    const char *pat; /* NULL: every key */
    size_t plen;
    uint64_t work;
    hc_buf_t keys; /* the reply's keys, as bulk strings */
    int64_t n;
} scan_reply_t;

static int scan_key(void *ud, const void *key, size_t klen)
{
    scan_reply_t *r = ud;
    if (r->pat == NULL || hc_glob_match(r->pat, r->plen, key, klen, &r->work)) {
        hc_buf_printf(&r->keys, "$%zu\r\n", klen);
        hc_buf_append(&r->keys, key, klen);
        hc_buf_puts(&r->keys, "\r\n");
        r->n++;
    }
    return r->work >= SCAN_MATCH_WORK;
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: one step over the keys of the selected
 * cache in this node's store (a local read, like DBSIZE, whatever HC.READ says). Every value is
 * a string, so TYPE string is no filter and any other type finds nothing. */
static void cmd_scan(resp_conn_t *c)
{
    size_t n;
    const char *arg = resp_arg(c, 1, &n);
    uint64_t cursor;
    if (hc_parse_u64(arg, n, &cursor) != 0) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR invalid cursor");
        return;
    }
    int64_t count = SCAN_COUNT_DEFAULT;
    int no_keys = 0;
    scan_reply_t r = {0};
    for (size_t i = 2; i < c->cmd.argc; i += 2) {
        if (i + 1 == c->cmd.argc) {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
            return;
        }
        if (resp_arg_is(c, i, "count")) {
            if (resp_arg_i64(c, i + 1, &count) != 0) {
                resp_reply_error(c, HC_MRES_BAD_REQUEST,
                                 "ERR value is not an integer or out of range");
                return;
            }
            if (count < 1) {
                resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
                return;
            }
        } else if (resp_arg_is(c, i, "match")) {
            r.pat = resp_arg(c, i + 1, &r.plen);
            if (r.plen > SCAN_PATTERN_MAX) {
                resp_reply_error(c, HC_MRES_TOO_LARGE, "ERR MATCH pattern longer than %d bytes",
                                 SCAN_PATTERN_MAX);
                return;
            }
            if (r.plen == 1 && r.pat[0] == '*') {
                r.pat = NULL; /* matches everything: skip the matcher */
            }
        } else if (resp_arg_is(c, i, "type")) {
            no_keys = !resp_arg_is(c, i + 1, "string");
        } else {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
            return;
        }
    }
    uint64_t next = 0;
    if (!no_keys) { /* a type no key has: the iteration is complete at once */
        hc_buf_init(&r.keys);
        size_t want = count > SCAN_COUNT_MAX ? SCAN_COUNT_MAX : (size_t)count;
        int rv =
            hc_node_scan(c->srv->node, c->cache, c->cache_len, cursor, want, scan_key, &r, &next);
        if (rv != 0 || r.keys.failed) {
            hc_buf_free(&r.keys);
            if (rv != 0) {
                resp_reply_node_error(c, rv);
            } else {
                resp_reply_error(c, HC_MRES_NO_MEMORY, "ERR out of memory");
            }
            return;
        }
    }
    char cur[24];
    int cn = snprintf(cur, sizeof(cur), "%" PRIu64, next);
    hc_buf_printf(&c->out, "*2\r\n$%d\r\n%s\r\n*%" PRId64 "\r\n", cn, cur, r.n);
    hc_buf_append(&c->out, r.keys.data, r.keys.len);
    hc_buf_free(&r.keys);
}

/* Names the connection after argument i (CLIENT SETNAME, HELLO SETNAME; "" clears the name).
 * 0, or -1 after an error reply. */
static int set_name(resp_conn_t *c, size_t i)
{
    size_t n;
    const char *s = resp_arg(c, i, &n);
    for (size_t k = 0; k < n; k++) {
        if (s[k] <= ' ' || s[k] > '~') { /* Redis: no spaces, newlines or control bytes */
            resp_reply_error(
                c, HC_MRES_BAD_REQUEST,
                "ERR Client names cannot contain spaces, newlines or special characters.");
            return -1;
        }
    }
    if (n > CLIENT_NAME_MAX) {
        resp_reply_error(c, HC_MRES_TOO_LARGE, "ERR client name longer than %d bytes",
                         CLIENT_NAME_MAX);
        return -1;
    }
    memcpy(c->name, s, n);
    c->name[n] = '\0';
    c->name_len = n;
    return 0;
}

/* CLIENT ID | GETNAME | SETNAME name | SETINFO LIB-NAME|LIB-VER value */
static void cmd_client(resp_conn_t *c)
{
    size_t argc = c->cmd.argc;
    if (resp_arg_is(c, 1, "id") && argc == 2) {
        resp_reply_int(c, (int64_t)c->id);
    } else if (resp_arg_is(c, 1, "getname") && argc == 2) {
        if (c->name_len == 0) {
            resp_reply_raw(c, "$-1\r\n");
        } else {
            resp_reply_bulk(c, c->name, c->name_len);
        }
    } else if (resp_arg_is(c, 1, "setname") && argc == 3) {
        if (set_name(c, 2) == 0) {
            resp_reply_raw(c, "+OK\r\n");
        }
    } else if (resp_arg_is(c, 1, "setinfo") && argc == 4) {
        if (!resp_arg_is(c, 2, "lib-name") && !resp_arg_is(c, 2, "lib-ver")) {
            char opt[64];
            resp_arg_text(c, 2, opt, sizeof(opt));
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR Unrecognized option '%s'", opt);
            return;
        }
        resp_reply_raw(c, "+OK\r\n"); /* accepted, not kept */
    } else {
        char sub[64];
        resp_arg_text(c, 1, sub, sizeof(sub));
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "ERR unknown subcommand or wrong number of arguments for 'CLIENT|%s' "
                         "(hacache has ID, GETNAME, SETNAME, SETINFO)",
                         sub);
    }
}

/* HELLO [protover [AUTH user password] [SETNAME name]]: RESP2 only; the reply is Redis's map as
 * a flat array. */
static void cmd_hello(resp_conn_t *c)
{
    size_t argc = c->cmd.argc;
    if (argc >= 2) {
        int64_t ver;
        if (resp_arg_i64(c, 1, &ver) != 0) {
            resp_reply_error(c, HC_MRES_BAD_REQUEST,
                             "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver != 2) {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "NOPROTO unsupported protocol version");
            return;
        }
    }
    size_t auth_at = 0, name_at = 0;
    for (size_t i = 2; i < argc; i++) {
        if (resp_arg_is(c, i, "auth") && i + 2 < argc) {
            auth_at = i;
            i += 2;
        } else if (resp_arg_is(c, i, "setname") && i + 1 < argc) {
            name_at = i;
            i += 1;
        } else {
            char opt[64];
            resp_arg_text(c, i, opt, sizeof(opt));
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR Syntax error in HELLO option '%s'", opt);
            return;
        }
    }
    if (auth_at > 0 && authenticate(c, auth_at + 1, auth_at + 2) != 0) {
        return;
    }
    if (!c->authed && hc_auth_required(c->srv->auth)) {
        resp_reply_error(c, HC_MRES_UNAUTHORIZED,
                         "NOAUTH HELLO must be called with the client already authenticated, "
                         "otherwise the HELLO <proto> AUTH <user> <pass> option can be used");
        return;
    }
    if (name_at > 0 && set_name(c, name_at + 1) != 0) {
        return;
    }
    hc_node_status_t st;
    hc_node_status(c->srv->node, &st);
    int leads = strcmp(st.role, "leader") == 0 || strcmp(st.role, "standalone") == 0;
    hc_buf_printf(&c->out,
                  "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
                  "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:%" PRIu64
                  "\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n%s$7\r\nmodules\r\n*0\r\n",
                  c->id, leads ? "$6\r\nmaster\r\n" : "$7\r\nreplica\r\n");
}

static const char *const ack_names[] = {"quorum", "once", "leader", "none"};
static const char *const read_names[] = {"local", "leader", "linearizable"};

/* HC.ACK / HC.READ [value]: shows or sets a per-connection enumerated setting. */
static void cmd_setting(resp_conn_t *c, const char *const *names, int n, int *value)
{
    if (c->cmd.argc == 1) {
        resp_reply_bulk_str(c, names[*value]);
        return;
    }
    if (c->cmd.argc > 2) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR syntax error");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (resp_arg_is(c, 1, names[i])) {
            *value = i;
            resp_reply_raw(c, "+OK\r\n");
            return;
        }
    }
    resp_reply_error(c, HC_MRES_BAD_REQUEST,
                     n == 4 ? "ERR ack must be quorum, once, leader or none"
                            : "ERR read must be local, leader or linearizable");
}

static void cmd_hc_ack(resp_conn_t *c)
{
    int v = (int)c->ack;
    cmd_setting(c, ack_names, 4, &v);
    c->ack = (hc_ack_t)v;
}

static void cmd_hc_read(resp_conn_t *c)
{
    int v = (int)c->cons;
    cmd_setting(c, read_names, 3, &v);
    c->cons = (hc_consistency_t)v;
}

/* HC.CACHE [name]: shows or selects the cache of this connection. */
static void cmd_hc_cache(resp_conn_t *c)
{
    if (c->cmd.argc == 1) {
        resp_reply_bulk(c, c->cache, c->cache_len);
        return;
    }
    size_t n;
    const char *s = resp_arg(c, 1, &n);
    if (c->cmd.argc > 2 || !hc_cache_name_ok(s, n)) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "ERR cache name must be 1-128 characters of [A-Za-z0-9_.:-]");
        return;
    }
    memcpy(c->cache, s, n);
    c->cache[n] = '\0';
    c->cache_len = n;
    resp_reply_raw(c, "+OK\r\n");
}

static void cmd_info(resp_conn_t *c)
{
    hc_node_status_t st;
    hc_node_status(c->srv->node, &st);
    int leads = strcmp(st.role, "leader") == 0 || strcmp(st.role, "standalone") == 0;
    hc_buf_t b;
    hc_buf_init(&b);
    hc_buf_printf(&b,
                  "# Server\r\nredis_version:7.0.0\r\nhacache_version:%s\r\nredis_mode:"
                  "standalone\r\nprocess_id:%ld\r\nnode:%s\r\n\r\n",
                  HC_VERSION_STRING, (long)getpid(), hc_node_name(c->srv->node));
    hc_buf_printf(&b,
                  "# Replication\r\nrole:%s\r\nhacache_role:%s\r\nterm:%" PRIu64
                  "\r\nleader:%s\r\nquorum:%d\r\nready:%d\r\ncommit_index:%" PRIu64
                  "\r\napplied_index:%" PRIu64 "\r\n",
                  leads ? "master" : "slave", st.role, st.term, st.leader ? st.leader : "",
                  st.quorum, st.ready, st.commit_index, st.applied_index);
    if (b.failed) {
        resp_reply_error(c, HC_MRES_ERROR, "ERR out of memory");
    } else {
        resp_reply_bulk(c, b.data, b.len);
    }
    hc_buf_free(&b);
}

/* CONFIG GET <parameter>: what redis-benchmark asks on start; nothing else is configurable. */
static void cmd_config(resp_conn_t *c)
{
    if (!resp_arg_is(c, 1, "get") || c->cmd.argc != 3) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST,
                         "ERR only CONFIG GET is supported (hacache is configured by environment)");
        return;
    }
    if (resp_arg_is(c, 2, "save")) {
        resp_reply_raw(c, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    } else if (resp_arg_is(c, 2, "appendonly")) {
        resp_reply_raw(c, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    } else {
        resp_reply_raw(c, "*0\r\n");
    }
}

static void cmd_command(resp_conn_t *c);

typedef struct {
    const char *name;
    int arity;  /* Redis convention: N exactly N arguments (name included), -N at least N */
    int noauth; /* allowed before AUTH */
    int pipe;   /* a write that joins the writes in flight (pipelining) */
    hc_metric_op_t mop;
    void (*fn)(resp_conn_t *c);
} command_t;

static const command_t commands[] = {
    {"ping", -1, 0, 0, HC_MOP_OTHER, cmd_ping},
    {"echo", 2, 0, 0, HC_MOP_OTHER, cmd_echo},
    {"quit", -1, 1, 0, HC_MOP_OTHER, cmd_quit},
    {"auth", -2, 1, 0, HC_MOP_OTHER, cmd_auth},
    {"select", 2, 0, 0, HC_MOP_OTHER, cmd_select},
    {"get", 2, 0, 0, HC_MOP_GET, cmd_get},
    {"set", -3, 0, 1, HC_MOP_PUT, cmd_set},
    {"setex", 4, 0, 1, HC_MOP_PUT, cmd_setex},
    {"psetex", 4, 0, 1, HC_MOP_PUT, cmd_setex},
    {"mget", -2, 0, 0, HC_MOP_GET, cmd_mget},
    {"del", -2, 0, 1, HC_MOP_DEL, cmd_del},
    {"unlink", -2, 0, 1, HC_MOP_DEL, cmd_del},
    {"exists", -2, 0, 0, HC_MOP_GET, cmd_exists},
    {"incr", 2, 0, 1, HC_MOP_INCR, cmd_incr},
    {"decr", 2, 0, 1, HC_MOP_INCR, cmd_incr},
    {"incrby", 3, 0, 1, HC_MOP_INCR, cmd_incr},
    {"decrby", 3, 0, 1, HC_MOP_INCR, cmd_incr},
    {"flushdb", -1, 0, 1, HC_MOP_CLEAR, cmd_flushdb},
    {"ttl", 2, 0, 0, HC_MOP_GET, cmd_ttl},
    {"pttl", 2, 0, 0, HC_MOP_GET, cmd_ttl},
    {"command", -1, 0, 0, HC_MOP_OTHER, cmd_command},
    {"info", -1, 0, 0, HC_MOP_STATUS, cmd_info},
    {"dbsize", 1, 0, 0, HC_MOP_STATUS, cmd_dbsize},
    {"scan", -2, 0, 0, HC_MOP_GET, cmd_scan},
    {"client", -2, 0, 0, HC_MOP_OTHER, cmd_client},
    {"hello", -1, 1, 0, HC_MOP_OTHER, cmd_hello},
    {"config", -2, 0, 0, HC_MOP_OTHER, cmd_config},
    {"hc.cache", -1, 0, 0, HC_MOP_OTHER, cmd_hc_cache},
    {"hc.ack", -1, 0, 0, HC_MOP_OTHER, cmd_hc_ack},
    {"hc.read", -1, 0, 0, HC_MOP_OTHER, cmd_hc_read},
    {"getdel", 2, 0, 1, HC_MOP_DEL, resp_cmd_getdel},
    {"expire", -3, 0, 1, HC_MOP_PUT, resp_cmd_expire},
    {"pexpire", -3, 0, 1, HC_MOP_PUT, resp_cmd_expire},
    {"expireat", -3, 0, 1, HC_MOP_PUT, resp_cmd_expire},
    {"pexpireat", -3, 0, 1, HC_MOP_PUT, resp_cmd_expire},
    {"persist", 2, 0, 1, HC_MOP_PUT, resp_cmd_persist},
    {"mset", -3, 0, 1, HC_MOP_PUT, resp_cmd_mset},
    {"multi", 1, 0, 0, HC_MOP_OTHER, resp_cmd_multi},
    {"exec", 1, 0, 0, HC_MOP_PUT, resp_cmd_exec},
    {"discard", 1, 0, 0, HC_MOP_OTHER, resp_cmd_discard},
    {"watch", -2, 0, 0, HC_MOP_OTHER, resp_cmd_watch},
    {"unwatch", 1, 0, 0, HC_MOP_OTHER, resp_cmd_unwatch},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* COMMAND [COUNT | DOCS | INFO ...]: enough for redis-cli and redis-benchmark, which fall back
 * to their built-in command tables when the server describes nothing. */
static void cmd_command(resp_conn_t *c)
{
    if (c->cmd.argc >= 2 && resp_arg_is(c, 1, "count")) {
        resp_reply_int(c, (int64_t)N_COMMANDS);
    } else {
        resp_reply_raw(c, "*0\r\n");
    }
}

static const command_t *find_command(resp_conn_t *c)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (resp_arg_is(c, 0, commands[i].name)) {
            return &commands[i];
        }
    }
    return NULL;
}

int resp_cmd_pipelines(resp_conn_t *c)
{
    const command_t *cmd = find_command(c);
    return cmd != NULL && cmd->pipe;
}

/* Runs the command's checks and handler. */
static void serve(resp_conn_t *c, const command_t *cmd)
{
    char name[64];
    if (c->in_multi && (cmd == NULL || (cmd->arity > 0 && c->cmd.argc != (size_t)cmd->arity) ||
                        (cmd->arity < 0 && c->cmd.argc < (size_t)-cmd->arity))) {
        c->txn.failed = 1; /* EXEC answers EXECABORT, like Redis */
    }
    if (cmd == NULL) {
        resp_arg_text(c, 0, name, sizeof(name));
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR unknown command '%s'", name);
    } else if (!cmd->noauth && !c->authed && hc_auth_required(c->srv->auth)) {
        resp_reply_error(c, HC_MRES_UNAUTHORIZED, "NOAUTH Authentication required.");
    } else if ((cmd->arity > 0 && c->cmd.argc != (size_t)cmd->arity) ||
               (cmd->arity < 0 && c->cmd.argc < (size_t)-cmd->arity)) {
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR wrong number of arguments for '%s' command",
                         cmd->name);
    } else if (c->in_multi && cmd->fn != resp_cmd_exec && cmd->fn != resp_cmd_discard &&
               cmd->fn != resp_cmd_multi && cmd->fn != resp_cmd_watch && cmd->fn != cmd_quit) {
        resp_txn_queue(c);
    } else {
        cmd->fn(c);
    }
}

void resp_dispatch(resp_conn_t *c)
{
    const command_t *cmd = find_command(c);
    c->start_ns = hc_mono_ns();
    c->mop = cmd ? cmd->mop : HC_MOP_OTHER;
    c->mack = HC_MACK_NA;
    c->mres = HC_MRES_OK;
    c->used_ops = 0;
    if (c->npend == 0) {
        serve(c, cmd);
        if (!c->used_ops) {
            resp_command_done(c);
        }
        return;
    }
    /* Writes are in flight (only pipelining commands get here): a reply given at once (a
     * refusal) is queued behind theirs, as an answered pending write. */
    hc_buf_t saved = c->out;
    hc_buf_init(&c->out);
    serve(c, cmd);
    hc_buf_t now = c->out;
    c->out = saved;
    if (c->used_ops) {
        /* queued; anything written meanwhile was emitted in order */
        hc_buf_append(&c->out, now.data, now.len);
        hc_buf_free(&now);
        return;
    }
    resp_pend_t *p = resp_pend_new(c, M_SET, 0, resp_pend_reply);
    if (p == NULL) {
        hc_buf_free(&now);
        c->mres = HC_MRES_ERROR;
        resp_command_done(c);
        c->close_after = 1; /* the reply order cannot be kept */
        return;
    }
    hc_buf_free(&p->reply);
    p->reply = now;
    p->issuing = 0;
    p->complete = 1; /* metrics: recorded here */
    resp_command_done(c);
}
