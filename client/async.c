/* async.c: the asynchronous remote client of libhacache_uv (see hacache.h): the calls of the
 * synchronous client as state machines on a caller's libuv loop. libcurl's multi interface does
 * the I/O: its sockets are watched with uv_poll handles and its timeout runs on a uv_timer
 * (curl_multi_socket_action), so many calls share the client's connections. Each call keeps the
 * same bookkeeping as a synchronous one (call.c): a deadline, an attempt budget, failover with
 * backoff between attempts (a per-call uv_timer), a request id for all attempts of a write, and
 * the local stale copy under the same rules (fallback.c); what only concurrent calls raise is
 * decided here: which reads a write overlapped, and which writes are still in flight. */
#include "hacache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "call.h"
#include "fallback.h"
#include "settings.h"
#include "transport.h"
#include "wire.h"

/* idle easy handles kept for the next calls (each holds its TLS and DNS caches) */
#define EASY_POOL_MAX 64

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct hc_aclient *c;
    struct sock_ctx *prev, *next;
} sock_ctx_t;

typedef enum { OP_GET, OP_WRITE } op_kind_t;

struct hc_aop {
    hc_aop_t *prev, *next; /* the client's calls in flight */
    struct hc_aclient *c;
    op_kind_t kind;
    int is_incr, is_put; /* the callback's value: the new integer, or the new version */
    char method[8];
    char *cache;
    void *key; /* NULL: the whole cache (a clear) */
    size_t klen;
    hcc_touches_t touches; /* a write: what it may change */
    int no_stale;          /* a read: hc_read_opts_t.no_stale */
    int overlapped_write;  /* a read: a write that may have changed its key ended meanwhile */
    char *path;
    void *body;
    size_t blen;
    char rid[33];
    hcc_call_t call;
    CURL *easy;
    int in_multi; /* an attempt is running in the multi handle */
    size_t ep;    /* the endpoint of the attempt running or last run */
    int has_xfer; /* x holds a prepared attempt */
    hcc_xfer_t x;
    uv_timer_t wait; /* the pause before the next attempt */
    int finished;    /* the callback ran (or runs) */
    hc_aget_cb get_cb;
    hc_aget_ex_cb get_ex_cb;
    hc_awrite_cb write_cb;
    void *ud;
};

struct hc_aclient {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share;
    uv_timer_t timer;             /* curl's timeout */
    hcc_settings_t set;           /* endpoints, token, deadline, TLS */
    hc_consistency_t consistency; /* of reads without one */
    hcc_fallback_t stale;         /* the stale copy, its limits and when it is served */
    hc_aop_t *ops;                /* in flight */
    sock_ctx_t *socks;            /* watched sockets */
    CURL *pool[EASY_POOL_MAX];
    size_t n_pool;
    int dispatching;        /* inside check_done: teardown waits until it returns */
    int closing;            /* hc_aclient_close was called */
    int torn_down;          /* curl handles released */
    size_t closing_handles; /* uv handles whose close callback is pending */
    hc_aclosed_cb closed_cb;
    void *closed_ud;
    char last_error[512];
};

static void op_start_attempt(hc_aop_t *op);
static void on_wait(uv_timer_t *t);
static void op_finish(hc_aop_t *op, int rv, hcc_answer_t *a);
static void maybe_teardown(struct hc_aclient *c);

/* ---- closing handles: the client is freed when the last one is closed ---- */

static void client_free_if_done(struct hc_aclient *c)
{
    if (!c->torn_down || c->closing_handles > 0) {
        return;
    }
    hc_aclosed_cb cb = c->closed_cb;
    void *ud = c->closed_ud;
    hcc_fallback_free(&c->stale);
    hcc_settings_free(&c->set);
    free(c);
    if (cb != NULL) {
        cb(ud);
    }
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_ctx_t *ctx = h->data;
    struct hc_aclient *c = ctx->c;
    free(ctx);
    c->closing_handles--;
    client_free_if_done(c);
}

static void sock_close(struct hc_aclient *c, sock_ctx_t *ctx)
{
    if (ctx->prev) {
        ctx->prev->next = ctx->next;
    } else {
        c->socks = ctx->next;
    }
    if (ctx->next) {
        ctx->next->prev = ctx->prev;
    }
    uv_poll_stop(&ctx->poll);
    c->closing_handles++;
    uv_close((uv_handle_t *)&ctx->poll, on_sock_closed);
}

/* ---- curl's multi interface on the loop ---- */

static void check_done(struct hc_aclient *c)
{
    c->dispatching++;
    CURLMsg *m;
    int left;
    while (!c->torn_down && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        hc_aop_t *op = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&op);
        curl_multi_remove_handle(c->multi, e);
        op->in_multi = 0;
        hcc_xfer_outcome_t o = hcc_xfer_done(&op->x, e, rc);
        uint64_t pause = 0;
        int err = 0;
        c->set.eps.cur = op->ep; /* other calls may have moved on meanwhile */
        hcc_call_step_t step =
            hcc_call_after(&op->call, &c->set.eps, &op->x, rc, o, uv_now(c->loop), &pause, &err);
        if (op->call.last_error[0]) {
            snprintf(c->last_error, sizeof(c->last_error), "%s", op->call.last_error);
        }
        if (step == HCC_CALL_FINAL) {
            hcc_answer_t a = op->x.answer;
            memset(&op->x.answer, 0, sizeof(op->x.answer));
            hcc_xfer_cleanup(&op->x);
            op->has_xfer = 0;
            op_finish(op, hcc_answer_err(&a), &a);
            hcc_answer_reset(&a);
            continue;
        }
        hcc_xfer_cleanup(&op->x);
        op->has_xfer = 0;
        if (step == HCC_CALL_ERROR) {
            op_finish(op, err, NULL);
        } else {
            uv_timer_start(&op->wait, on_wait, pause, 0);
        }
    }
    c->dispatching--;
    maybe_teardown(c);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx_t *ctx = p->data;
    struct hc_aclient *c = ctx->c;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    }
    if (events & UV_READABLE) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & UV_WRITABLE) {
        flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(c->multi, ctx->fd, flags, &running);
    check_done(c);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    struct hc_aclient *c = userp;
    sock_ctx_t *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx != NULL) {
            curl_multi_assign(c->multi, s, NULL);
            sock_close(c, ctx);
        }
        return 0;
    }
    if (ctx == NULL) {
        if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
            return -1;
        }
        if (uv_poll_init_socket(c->loop, &ctx->poll, s) != 0) {
            free(ctx);
            return -1;
        }
        ctx->poll.data = ctx;
        ctx->fd = s;
        ctx->c = c;
        ctx->next = c->socks;
        if (c->socks) {
            c->socks->prev = ctx;
        }
        c->socks = ctx;
        curl_multi_assign(c->multi, s, ctx);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) {
        ev |= UV_READABLE;
    }
    if (what & CURL_POLL_OUT) {
        ev |= UV_WRITABLE;
    }
    uv_poll_start(&ctx->poll, ev, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    struct hc_aclient *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_timer_set(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct hc_aclient *c = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
    } else {
        /* 0: as soon as the loop comes round (never from inside curl's own call) */
        uv_timer_start(&c->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

/* ---- client lifecycle ---- */

int hc_aclient_new(uv_loop_t *loop, const hc_client_opts_t *opts, hc_aclient_t **out)
{
    *out = NULL;
    if (loop == NULL) {
        return HC_EINVAL;
    }
    struct hc_aclient *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    int rv = hcc_settings_init(&c->set, opts);
    if (rv != 0) {
        free(c);
        return rv;
    }
    c->loop = loop;
    hcc_fallback_init(&c->stale, opts->max_stale_ms);
    if ((c->multi = curl_multi_init()) == NULL || (c->share = curl_share_init()) == NULL) {
        if (c->multi) {
            curl_multi_cleanup(c->multi);
        }
        hcc_settings_free(&c->set);
        free(c);
        return HC_ENOMEM;
    }
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    *out = c;
    return 0;
}

int hc_aclient_set_tls(hc_aclient_t *c, const hc_client_tls_t *tls)
{
    if (c == NULL || c->closing) {
        return HC_EINVAL;
    }
    return hcc_settings_set_tls(&c->set, tls, c->last_error, sizeof(c->last_error));
}

int hc_aclient_set_token_file(hc_aclient_t *c, const char *path)
{
    if (c == NULL || c->closing) {
        return HC_EINVAL;
    }
    return hcc_settings_set_token_file(&c->set, path, c->last_error, sizeof(c->last_error));
}

void hc_aclient_set_stale_on_invalidated(hc_aclient_t *c, int on)
{
    if (c != NULL) {
        c->stale.on_invalidated = on != 0;
    }
}

int hc_aclient_set_cache_stale(hc_aclient_t *c, const char *cache, uint32_t max_stale_ms)
{
    if (c == NULL || c->closing) {
        return HC_EINVAL;
    }
    return hcc_fallback_set_cache_limit(&c->stale, cache, max_stale_ms);
}

int hc_aclient_last_error(hc_aclient_t *c, char *buf, size_t len)
{
    if (c == NULL || buf == NULL || len == 0) {
        return HC_EINVAL;
    }
    snprintf(buf, len, "%s", c->last_error);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct hc_aclient *c = h->data;
    c->closing_handles--;
    client_free_if_done(c);
}

/* Releases curl's handles once the client is closing and no dispatch is running: every call has
 * ended by then. */
static void maybe_teardown(struct hc_aclient *c)
{
    if (!c->closing || c->torn_down || c->dispatching > 0 || c->ops != NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_pool; i++) {
        curl_easy_cleanup(c->pool[i]);
    }
    c->n_pool = 0;
    curl_multi_cleanup(c->multi); /* may report sockets removed: they close as usual */
    curl_share_cleanup(c->share);
    c->multi = NULL;
    c->share = NULL;
    while (c->socks != NULL) {
        sock_close(c, c->socks);
    }
    uv_timer_stop(&c->timer);
    c->closing_handles++;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    c->torn_down = 1;
}

void hc_aclient_close(hc_aclient_t *c, hc_aclosed_cb closed_cb, void *ud)
{
    if (c == NULL || c->closing) {
        return;
    }
    c->closing = 1;
    c->closed_cb = closed_cb;
    c->closed_ud = ud;
    while (c->ops != NULL) {
        hc_acancel(c->ops);
    }
    maybe_teardown(c);
}

/* ---- calls ---- */

static CURL *easy_get(struct hc_aclient *c)
{
    if (c->n_pool > 0) {
        return c->pool[--c->n_pool];
    }
    return curl_easy_init();
}

static void easy_put(struct hc_aclient *c, CURL *e)
{
    if (c->n_pool < EASY_POOL_MAX && !c->closing) {
        c->pool[c->n_pool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static void on_op_wait_closed(uv_handle_t *h)
{
    hc_aop_t *op = h->data;
    struct hc_aclient *c = op->c;
    free(op->path);
    free(op->body);
    free(op->cache);
    free(op->key);
    free(op);
    c->closing_handles--;
    client_free_if_done(c);
}

/* Might write w change (cache, key)? */
static int write_touches(const hc_aop_t *w, const char *cache, const void *key, size_t klen)
{
    return w->kind == OP_WRITE && w->touches != HCC_TOUCHES_NOTHING &&
           strcmp(w->cache, cache) == 0 &&
           (w->touches == HCC_TOUCHES_CACHE || (w->klen == klen && memcmp(w->key, key, klen) == 0));
}

/* Is a write of (cache, key) still in flight? */
static int write_in_flight(const struct hc_aclient *c, const char *cache, const void *key,
                           size_t klen)
{
    for (const hc_aop_t *o = c->ops; o != NULL; o = o->next) {
        if (write_touches(o, cache, key, klen)) {
            return 1;
        }
    }
    return 0;
}

/* The result of get op that ended with rv (a: a node's final answer, or NULL), under the stale
 * copy's rules: *v and *m filled on 0 (v->data the caller's). */
static int get_result(hc_aop_t *op, int rv, hcc_answer_t *a, hc_value_t *v, hc_meta_t *m)
{
    struct hc_aclient *c = op->c;
    hcc_read_end_t end = {.rv = a != NULL ? 0 : rv,
                          .a = a,
                          .invalidated = op->call.invalidated,
                          .no_stale = op->no_stale,
                          .overlapped_write = op->overlapped_write,
                          .write_in_flight = write_in_flight(c, op->cache, op->key, op->klen)};
    return hcc_fallback_after_read(&c->stale, op->cache, op->key, op->klen, &end, hcc_now_ms(), v,
                                   m);
}

/* Write w ended with rv: what it may have changed leaves the copy, and the reads in flight of
 * those keys may have been answered before it: their answers are not remembered. */
static void write_ended(hc_aop_t *w, int rv)
{
    struct hc_aclient *c = w->c;
    if (!hcc_fallback_after_write(&c->stale, w->touches, w->cache, w->key, w->klen, rv)) {
        return;
    }
    for (hc_aop_t *o = c->ops; o != NULL; o = o->next) {
        if (o->kind == OP_GET && write_touches(w, o->cache, o->key, o->klen)) {
            o->overlapped_write = 1;
        }
    }
}

/* Ends op: unlinks it, runs its callback once with rv (a: the node's final answer, NULL when
 * none; rv is then its code) after the stale copy has learnt from it, and releases what it
 * holds. */
static void op_finish(hc_aop_t *op, int rv, hcc_answer_t *a)
{
    struct hc_aclient *c = op->c;
    if (op->finished) {
        return;
    }
    op->finished = 1;
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        c->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    if (op->in_multi) {
        curl_multi_remove_handle(c->multi, op->easy);
        op->in_multi = 0;
    }
    if (op->has_xfer) {
        hcc_xfer_cleanup(&op->x);
        op->has_xfer = 0;
    }
    uv_timer_stop(&op->wait);
    /* back to the pool before the callback, which may close the client (and its share) */
    easy_put(c, op->easy);
    op->easy = NULL;
    if (op->kind == OP_GET) {
        hc_value_t v;
        hc_meta_t m;
        rv = get_result(op, rv, a, &v, &m);
        if (op->get_ex_cb != NULL) {
            op->get_ex_cb(op->ud, rv, rv == 0 ? &v : NULL, rv == 0 ? &m : NULL);
        } else {
            op->get_cb(op->ud, rv, rv == 0 ? &v : NULL);
        }
        hc_value_free(&v);
    } else {
        write_ended(op, rv);
        int64_t value = 0;
        if (rv == 0 && a != NULL) {
            value = op->is_incr  ? hcc_answer_incr_value(a)
                    : op->is_put ? (int64_t)hcc_answer_version(a)
                                 : 0;
        }
        op->write_cb(op->ud, rv, value);
    }
    c->closing_handles++;
    uv_close((uv_handle_t *)&op->wait, on_op_wait_closed);
}

static void op_start_attempt(hc_aop_t *op)
{
    struct hc_aclient *c = op->c;
    uv_update_time(c->loop);
    uint64_t now = uv_now(c->loop);
    if (hcc_call_left(&op->call, now) == 0) {
        op_finish(op, hcc_call_error(&op->call), NULL);
        return;
    }
    hcc_endpoints_t *eps = &c->set.eps;
    uint64_t wait = hcc_endpoints_choose(eps, now);
    if (wait > 0) {
        uint32_t left = hcc_call_left(&op->call, now);
        uv_timer_start(&op->wait, on_wait, wait < left ? wait : left, 0);
        return;
    }
    op->ep = eps->cur;
    hcc_tls_t tls;
    hcc_settings_tls(&c->set, &tls);
    hcc_xfer_req_t req = {.ep = &eps->ep[eps->cur],
                          .tls = &tls,
                          .method = op->method,
                          .path = op->path,
                          .auth_line = c->set.auth_line,
                          .rid = op->kind == OP_WRITE ? op->rid : NULL,
                          .body = op->body,
                          .blen = op->blen,
                          .timeout_ms = hcc_call_budget(&op->call, now)};
    op->has_xfer = 1;
    if (hcc_xfer_prepare(&op->x, op->easy, &req) != 0) {
        op_finish(op, op->call.maybe_applied ? HC_EUNKNOWN_OUTCOME : HC_ENOMEM, NULL);
        return;
    }
    curl_easy_setopt(op->easy, CURLOPT_PRIVATE, (char *)op);
    curl_easy_setopt(op->easy, CURLOPT_SHARE, c->share);
    if (curl_multi_add_handle(c->multi, op->easy) != CURLM_OK) {
        op_finish(op, op->call.maybe_applied ? HC_EUNKNOWN_OUTCOME : HC_EINTERNAL, NULL);
        return;
    }
    op->in_multi = 1;
}

static void on_wait(uv_timer_t *t)
{
    op_start_attempt(t->data);
}

/* What a call does: method on (cache, key) (key NULL: the whole cache) with the query suffix and
 * a body; all borrowed. */
typedef struct {
    op_kind_t kind;
    const char *method;
    const char *cache;
    const void *key;
    size_t klen;
    const char *suffix;
    const void *body;
    size_t blen;
} op_spec_t;

static void *copy_of(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q != NULL && n > 0) {
        memcpy(q, p, n);
    }
    return q;
}

/* Creates and starts a call; the caller sets its callback before returning to the loop. */
static int op_start(struct hc_aclient *c, const op_spec_t *sp, hc_aop_t **out)
{
    *out = NULL;
    if (c->closing) {
        return HC_ESHUTDOWN;
    }
    hc_aop_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return HC_ENOMEM;
    }
    op->c = c;
    op->kind = sp->kind;
    snprintf(op->method, sizeof(op->method), "%s", sp->method);
    op->path = hcc_key_path(sp->cache, sp->key, sp->klen, sp->suffix);
    op->cache = strdup(sp->cache);
    op->key = sp->key != NULL ? copy_of(sp->key, sp->klen) : NULL;
    op->klen = sp->klen;
    op->touches = sp->kind == OP_GET ? HCC_TOUCHES_NOTHING
                  : sp->key != NULL  ? HCC_TOUCHES_KEY
                                     : HCC_TOUCHES_CACHE;
    op->body = sp->blen > 0 ? copy_of(sp->body, sp->blen) : NULL;
    op->blen = sp->blen;
    int rv = 0;
    if (op->path == NULL || op->cache == NULL || (sp->key != NULL && op->key == NULL) ||
        (sp->blen > 0 && op->body == NULL)) {
        rv = HC_ENOMEM;
    } else if ((sp->kind == OP_WRITE && hcc_new_rid(op->rid) != 0) ||
               (op->easy = easy_get(c)) == NULL) {
        rv = HC_EINTERNAL;
    }
    if (rv != 0) {
        free(op->path);
        free(op->cache);
        free(op->key);
        free(op->body);
        free(op);
        return rv;
    }
    uv_timer_init(c->loop, &op->wait);
    op->wait.data = op;
    hcc_settings_refresh(&c->set, c->last_error, sizeof(c->last_error)); /* CA and token files */
    uv_update_time(c->loop);
    /* no hcc_endpoints_begin: the calls in flight share the client's rounds over the nodes */
    hcc_call_begin(&op->call, sp->kind == OP_WRITE, c->set.timeout_ms, uv_now(c->loop));
    op->next = c->ops;
    if (c->ops) {
        c->ops->prev = op;
    }
    c->ops = op;
    *out = op;
    /* the first attempt starts from the loop, so the callback never runs inside this call */
    uv_timer_start(&op->wait, on_wait, 0, 0);
    return 0;
}

void hc_acancel(hc_aop_t *op)
{
    if (op != NULL && !op->finished) {
        op_finish(op, HC_ECANCELED, NULL);
    }
}

int hc_aclient_set_consistency(hc_aclient_t *c, hc_consistency_t level)
{
    if (c == NULL || !hcc_consistency_ok(level)) {
        return HC_EINVAL;
    }
    c->consistency = level;
    return 0;
}

/* A read at the given consistency (opts NULL: the client's), reported to one of the callbacks. */
static int get_start(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
                     const hc_read_opts_t *opts, hc_aget_cb cb, hc_aget_ex_cb ex_cb, void *ud,
                     hc_aop_t **op)
{
    char q[32];
    if (c == NULL || (cb == NULL && ex_cb == NULL) || !hcc_cache_name_ok(cache) || key == NULL ||
        klen == 0 ||
        hcc_read_query(opts != NULL && opts->has_consistency ? opts->consistency : c->consistency,
                       q, sizeof(q)) != 0) {
        return HC_EINVAL;
    }
    hc_aop_t *o = NULL;
    op_spec_t sp = {
        .kind = OP_GET, .method = "GET", .cache = cache, .key = key, .klen = klen, .suffix = q};
    int rv = op_start(c, &sp, &o);
    if (rv == 0) {
        o->get_cb = cb;
        o->get_ex_cb = ex_cb;
        o->ud = ud;
        o->no_stale = opts != NULL && opts->no_stale;
    }
    if (op != NULL) {
        *op = o;
    }
    return rv;
}

int hc_aget(hc_aclient_t *c, const char *cache, const void *key, size_t klen, hc_aget_cb cb,
            void *ud, hc_aop_t **op)
{
    if (cb == NULL) {
        return HC_EINVAL;
    }
    return get_start(c, cache, key, klen, NULL, cb, NULL, ud, op);
}

int hc_aget_ex(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
               const hc_read_opts_t *opts, hc_aget_ex_cb cb, void *ud, hc_aop_t **op)
{
    if (cb == NULL) {
        return HC_EINVAL;
    }
    return get_start(c, cache, key, klen, opts, NULL, cb, ud, op);
}

/* A write of key (NULL: the whole cache) with the query suffix. */
static int write_start(hc_aclient_t *c, const char *method, const char *cache, const void *key,
                       size_t klen, const char *suffix, const void *body, size_t blen, int incr,
                       int put, hc_awrite_cb cb, void *ud, hc_aop_t **op)
{
    if (c == NULL || cb == NULL || !hcc_cache_name_ok(cache) || (key != NULL && klen == 0) ||
        (body == NULL && blen > 0)) {
        return HC_EINVAL;
    }
    hc_aop_t *o = NULL;
    op_spec_t sp = {.kind = OP_WRITE,
                    .method = method,
                    .cache = cache,
                    .key = key,
                    .klen = klen,
                    .suffix = suffix,
                    .body = body,
                    .blen = blen};
    int rv = op_start(c, &sp, &o);
    if (rv == 0) {
        o->write_cb = cb;
        o->ud = ud;
        o->is_incr = incr;
        o->is_put = put;
    }
    if (op != NULL) {
        *op = o;
    }
    return rv;
}

int hc_aput_ex(hc_aclient_t *c, const char *cache, const void *key, size_t klen, const void *val,
               size_t vlen, const hc_put_opts_t *opts, hc_awrite_cb cb, void *ud, hc_aop_t **op)
{
    char q[160];
    if (key == NULL || hcc_put_query(opts, q, sizeof(q)) != 0) {
        return HC_EINVAL;
    }
    return write_start(c, "PUT", cache, key, klen, q, val, vlen, 0, 1, cb, ud, op);
}

int hc_aput(hc_aclient_t *c, const char *cache, const void *key, size_t klen, const void *val,
            size_t vlen, hc_ack_t ack, uint64_t ttl_ms, hc_awrite_cb cb, void *ud, hc_aop_t **op)
{
    hc_put_opts_t o = {.ack = ack, .ttl_ms = ttl_ms};
    return hc_aput_ex(c, cache, key, klen, val, vlen, &o, cb, ud, op);
}

int hc_adel_ex(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
               const hc_del_opts_t *opts, hc_awrite_cb cb, void *ud, hc_aop_t **op)
{
    char q[80];
    if (key == NULL || hcc_del_query(opts, q, sizeof(q)) != 0) {
        return HC_EINVAL;
    }
    return write_start(c, "DELETE", cache, key, klen, q, NULL, 0, 0, 0, cb, ud, op);
}

int hc_adel(hc_aclient_t *c, const char *cache, const void *key, size_t klen, hc_ack_t ack,
            hc_awrite_cb cb, void *ud, hc_aop_t **op)
{
    hc_del_opts_t o = {.ack = ack};
    return hc_adel_ex(c, cache, key, klen, &o, cb, ud, op);
}

int hc_aincr(hc_aclient_t *c, const char *cache, const void *key, size_t klen, int64_t by,
             hc_ack_t ack, hc_awrite_cb cb, void *ud, hc_aop_t **op)
{
    if (key == NULL) {
        return HC_EINVAL;
    }
    if (!hcc_ack_ok(ack)) {
        return HC_EINVAL;
    }
    char q[80];
    snprintf(q, sizeof(q), "/incr?by=%lld&ack=%s", (long long)by, hcc_ack_name(ack));
    return write_start(c, "POST", cache, key, klen, q, NULL, 0, 1, 0, cb, ud, op);
}

int hc_aclear(hc_aclient_t *c, const char *cache, hc_ack_t ack, hc_awrite_cb cb, void *ud,
              hc_aop_t **op)
{
    if (!hcc_ack_ok(ack)) {
        return HC_EINVAL;
    }
    char q[32];
    snprintf(q, sizeof(q), "?ack=%s", hcc_ack_name(ack));
    return write_start(c, "DELETE", cache, NULL, 0, q, NULL, 0, 0, 0, cb, ud, op);
}
