/* embed.c: the embedded node of hacache.h (hc_embedded_*): a cluster member (member.h) in the
 * caller's process, on a thread of its own or on the caller's loop. Calls from application
 * threads are copied into a call_t, queued under a mutex and handed to the node's loop with a
 * uv_async_t; a blocking caller waits on a condition variable with a deadline, a callback
 * caller is called back on the loop thread. On stop the calls in flight drain like HTTP
 * requests (member.h's drain hook) and are cancelled at the deadline. */
#include "hacache.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include <sodium.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "member.h"
#include "names.h"
#include "node.h"
#include "util.h"

typedef enum { CALL_GET, CALL_PUT, CALL_DEL, CALL_INCR, CALL_CLEAR, CALL_STATUS } call_kind_t;

/* One call handed to the loop. Arguments are copied into the same allocation. A blocking call
 * is shared by its caller and the loop: `done` and `abandoned` are guarded by e->mu, and whoever
 * comes last frees it (the caller after done, the loop after abandoned). */
typedef struct call {
    struct call *next;              /* queue (under e->mu) */
    struct call *fl_prev, *fl_next; /* calls in flight (loop thread) */
    call_kind_t kind;
    const char *cache;
    size_t cache_len;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    hc_ack_t ack;
    uint64_t ttl_ms;
    int64_t by;
    hc_consistency_t consistency;
    int if_absent, has_if_version; /* PUT, DEL: conditions */
    uint64_t if_version;
    hc_node_op_t *op; /* the node's request while it is in flight (loop thread) */
    /* outcome */
    int status;
    void *data; /* GET: malloc'd copy, NUL-terminated */
    size_t len;
    int stale;
    uint64_t version;
    int has_left; /* GET: the entry expires, left_ms from now */
    uint64_t left_ms;
    int64_t integer;
    hc_embedded_status_t *st; /* STATUS: the caller's struct */
    /* completion */
    hc_embedded_cb cb; /* callback call; NULL: blocking */
    void *ud;
    int done, abandoned;
} call_t;

struct hc_embedded {
    hc_config_t cfg;
    int own_thread;
    uv_loop_t own_loop;
    uv_loop_t *loop;
    pthread_t thread;   /* own thread */
    pthread_t loop_tid; /* the thread that runs the loop */
    hc_member_t *member;
    hc_node_t *node;
    uv_async_t wake;
    uv_timer_t drain_timer;
    int handles; /* wake and drain_timer not yet closed */
    int http, resp;
    uint32_t timeout_ms;
    uint64_t max_key_size, max_value_size;
    /* tests only: HACACHE_TEST_EMBED_STALL_MS holds the loop this long after handing a call to
     * the node when it is still in flight, so a test can make its caller give up in flight */
    uint32_t test_stall_ms;
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
    void (*stopped)(void *ud, int status);
    void *stopped_ud;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    call_t *q_head, *q_tail;
    int accepting;      /* calls are taken (until the stop begins) */
    int wake_open;      /* uv_async_send allowed */
    int stop_requested; /* to the loop: begin the stop */
    int start_done, start_rv;
    char start_err[512];
    int closed, stop_rv; /* everything closed */
    int joined;
    int free_when_closed; /* caller's loop: hc_embedded_free came before the end */
    int start_failed;     /* no opts.stopped call for a start that failed */

    /* loop thread only */
    call_t *inflight;
    int draining;
    int node_closing; /* the drain ended: the node is closing, no call starts any more */
    /* the call start_call is handing to the node, and whether it finished meanwhile (then it
     * may be freed already: start_call must not touch it again) */
    call_t *starting;
    int starting_finished;
    void (*drain_done)(void *ud);
    void *drain_done_ud;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int on_loop_thread(const hc_embedded_t *e)
{
    return pthread_equal(pthread_self(), e->loop_tid);
}

/* ---------------------------------------------------------------------------------------- */
/* calls on the loop thread */

static void call_free(call_t *c)
{
    free(c->data);
    free(c);
}

static void inflight_unlink(hc_embedded_t *e, call_t *c)
{
    if (c->fl_prev != NULL) {
        c->fl_prev->fl_next = c->fl_next;
    } else if (e->inflight == c) {
        e->inflight = c->fl_next;
    }
    if (c->fl_next != NULL) {
        c->fl_next->fl_prev = c->fl_prev;
    }
    c->fl_prev = c->fl_next = NULL;
}

static void on_drain_timer(uv_timer_t *t);

/* The call has its outcome: a callback call is answered and freed, a blocking caller woken (or
 * the call freed when its caller gave up). */
static void finish(hc_embedded_t *e, call_t *c)
{
    if (c == e->starting) {
        e->starting_finished = 1;
    }
    inflight_unlink(e, c);
    c->op = NULL;
    if (c->cb != NULL) {
        hc_embedded_result_t r = {.status = c->status,
                                  .data = c->status == 0 ? c->data : NULL,
                                  .len = c->status == 0 ? c->len : 0,
                                  .stale = c->stale,
                                  .version = c->version,
                                  .has_ttl = c->has_left,
                                  .ttl_ms = c->left_ms,
                                  .integer = c->integer};
        c->cb(c->ud, &r);
        call_free(c);
    } else {
        pthread_mutex_lock(&e->mu);
        int abandoned = c->abandoned;
        c->done = 1;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        if (abandoned) {
            call_free(c);
        }
    }
    if (e->draining && e->inflight == NULL) {
        uv_timer_start(&e->drain_timer, on_drain_timer, 0, 0); /* done on the next turn */
    }
}

/* The time an entry has left by this node's wall clock (the instant was fixed by the leader). */
static void remaining_ttl(const hc_entry_view_t *view, int *has_ttl, uint64_t *ttl_ms)
{
    uint64_t now = hc_wall_ms();
    *has_ttl = view->expire_at_ms != 0;
    *ttl_ms = *has_ttl && view->expire_at_ms > now ? view->expire_at_ms - now : 0;
}

/* Copies a read's answer into the call. */
static void read_done(call_t *c, int status, const hc_entry_view_t *view)
{
    c->status = status;
    if (status == 0) {
        c->data = malloc(view->len + 1);
        if (c->data == NULL) {
            c->status = HC_ENOMEM;
        } else {
            memcpy(c->data, view->data, view->len);
            ((char *)c->data)[view->len] = '\0';
            c->len = view->len;
            c->version = view->version;
            remaining_ttl(view, &c->has_left, &c->left_ms);
        }
    }
}

static void status_fill(hc_embedded_t *e, hc_embedded_status_t *out)
{
    hc_node_status_t *st = calloc(1, sizeof(*st));
    memset(out, 0, sizeof(*out));
    if (st == NULL) {
        return;
    }
    hc_node_status(e->node, st);
    out->ready = st->ready;
    out->quorum = st->quorum;
    snprintf(out->role, sizeof(out->role), "%s", st->role ? st->role : "");
    snprintf(out->node, sizeof(out->node), "%s", hc_node_name(e->node));
    snprintf(out->leader, sizeof(out->leader), "%s", st->leader ? st->leader : "");
    out->term = st->term;
    out->commit_index = st->commit_index;
    out->applied_index = st->applied_index;
    snprintf(out->not_ready_reason, sizeof(out->not_ready_reason), "%s",
             !st->ready && st->not_ready_reason ? st->not_ready_reason : "");
    free(st);
}

static void on_read(void *ud, int status, const hc_entry_view_t *view)
{
    call_t *c = ud;
    hc_embedded_t *e = *(hc_embedded_t **)(c + 1); /* see call_new */
    read_done(c, status, view);
    if (status == 0) {
        c->stale = hc_node_read_stale(e->node);
    }
    finish(e, c);
}

static void on_write(void *ud, int status, const hc_apply_result_t *res)
{
    call_t *c = ud;
    hc_embedded_t *e = *(hc_embedded_t **)(c + 1);
    c->status = status;
    if (status == 0 && res != NULL) {
        c->version = res->version;
        c->integer = c->kind == CALL_CLEAR ? (int64_t)res->removed : res->integer;
    }
    finish(e, c);
}

/* Submits a write call to the node; returns its op (see start_call). */
static hc_node_op_t *start_write(hc_embedded_t *e, call_t *c)
{
    hc_cmd_t cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.cache = c->cache;
    cmd.cache_len = c->cache_len;
    cmd.key = c->key;
    cmd.klen = c->klen;
    switch (c->kind) {
    case CALL_PUT:
        cmd.op = HC_OP_PUT;
        cmd.val = c->val;
        cmd.vlen = c->vlen;
        cmd.if_absent = c->if_absent;
        cmd.has_if_version = c->has_if_version;
        cmd.if_version = c->if_version;
        break;
    case CALL_DEL:
        cmd.op = HC_OP_DEL;
        cmd.has_if_version = c->has_if_version;
        cmd.if_version = c->if_version;
        break;
    case CALL_INCR:
        cmd.op = HC_OP_INCR;
        cmd.incr_by = c->by;
        break;
    default:
        cmd.op = HC_OP_CLEAR;
        cmd.key = NULL;
        cmd.klen = 0;
        break;
    }
    return hc_node_write(e->node, &cmd, c->ttl_ms, c->ack, on_write, c);
}

/* Starts one call on the node (loop thread). */
static void start_call(hc_embedded_t *e, call_t *c)
{
    c->fl_next = e->inflight;
    if (e->inflight != NULL) {
        e->inflight->fl_prev = c;
    }
    e->inflight = c;
    if (c->kind == CALL_STATUS) {
        status_fill(e, c->st);
        c->status = 0;
        finish(e, c);
        return;
    }
    e->starting = c;
    e->starting_finished = 0;
    hc_node_op_t *op;
    if (c->kind == CALL_GET) {
        op = hc_node_read_async(e->node, c->cache, c->cache_len, c->key, c->klen, c->consistency,
                                on_read, c);
    } else {
        op = start_write(e, c);
    }
    if (!e->starting_finished) {
        c->op = op; /* still in flight: cancelled by the drain if it does not end in time */
        if (e->test_stall_ms > 0) {
            uv_sleep(e->test_stall_ms);
        }
    }
    e->starting = NULL;
}

/* Fails every queued call with status (loop thread, or the starter after a failed start). */
static void fail_queue(hc_embedded_t *e, int status)
{
    pthread_mutex_lock(&e->mu);
    call_t *q = e->q_head;
    e->q_head = e->q_tail = NULL;
    e->accepting = 0;
    pthread_mutex_unlock(&e->mu);
    while (q != NULL) {
        call_t *c = q;
        q = q->next;
        c->status = status;
        finish(e, c);
    }
}

static void on_wake(uv_async_t *a)
{
    hc_embedded_t *e = a->data;
    pthread_mutex_lock(&e->mu);
    call_t *q = e->q_head;
    e->q_head = e->q_tail = NULL;
    int stop = e->stop_requested;
    e->stop_requested = 0;
    pthread_mutex_unlock(&e->mu);
    while (q != NULL) {
        call_t *c = q;
        q = q->next;
        c->next = NULL;
        if (e->node_closing) {
            c->status = HC_ESHUTDOWN;
            finish(e, c);
        } else {
            start_call(e, c);
        }
    }
    if (stop) {
        hc_member_stop(e->member, "hc_embedded_stop");
    }
}

/* ---- the drain of calls in flight (member.h drain hook) ---- */

static void on_drain_timer(uv_timer_t *t)
{
    hc_embedded_t *e = t->data;
    if (!e->draining) {
        return;
    }
    /* the deadline: whatever is still in flight is cancelled; a write may still happen */
    while (e->inflight != NULL) {
        call_t *c = e->inflight;
        if (c->op != NULL) {
            hc_node_cancel(e->node, c->op);
        }
        c->status = c->kind == CALL_GET ? HC_ESHUTDOWN : HC_EUNKNOWN_OUTCOME;
        finish(e, c);
    }
    uv_timer_stop(&e->drain_timer);
    e->draining = 0;
    e->node_closing = 1;
    e->drain_done(e->drain_done_ud);
}

static void drain_calls(void *ud, uint64_t left_ms, void (*done)(void *), void *done_ud)
{
    hc_embedded_t *e = ud;
    e->draining = 1;
    e->drain_done = done;
    e->drain_done_ud = done_ud;
    uv_timer_start(&e->drain_timer, on_drain_timer, e->inflight == NULL ? 0 : left_ms, 0);
}

/* ---- the end ---- */

static void free_now(hc_embedded_t *e);

static void on_handle_closed(uv_handle_t *h)
{
    hc_embedded_t *e = h->data;
    if (--e->handles > 0) {
        return;
    }
    int abandoned = e->member != NULL && hc_member_abandoned(e->member);
    if (abandoned && e->own_thread) {
        uv_stop(e->loop); /* h2o keeps handles of the abandoned connections */
    }
    int status = abandoned ? HC_ETIMEDOUT : 0;
    /* the callback first: once `closed` is published, a stopping thread may free e */
    if (e->stopped != NULL && !e->start_failed) {
        e->stopped(e->stopped_ud, status);
    }
    pthread_mutex_lock(&e->mu);
    e->closed = 1;
    e->stop_rv = status;
    int free_it = e->free_when_closed; /* set on this thread only */
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (free_it) {
        free_now(e);
    }
}

/* The member closed everything it had (after a stop or a failed start). */
static void on_member_closed(void *ud)
{
    hc_embedded_t *e = ud;
    fail_queue(e, HC_ESHUTDOWN);
    pthread_mutex_lock(&e->mu);
    e->wake_open = 0; /* no uv_async_send from now on */
    pthread_mutex_unlock(&e->mu);
    uv_close((uv_handle_t *)&e->wake, on_handle_closed);
    uv_close((uv_handle_t *)&e->drain_timer, on_handle_closed);
}

/* ---------------------------------------------------------------------------------------- */
/* start */

static const char *env_lookup(void *ud, const char *name)
{
    const char *const *env = ud;
    size_t n = strlen(name);
    for (size_t i = 0; env[i] != NULL; i++) {
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=') {
            return env[i] + n + 1;
        }
    }
    return NULL;
}

static void log_to_callback(void *ud, hc_log_level_t level, const char *line)
{
    hc_embedded_t *e = ud;
    e->log(e->log_ud, (int)level, line);
}

/* A listener setting resolved: AUTO is on when the variable (or its flag) is given. */
static int listener_on(hc_embedded_listen_t l, const hc_embedded_opts_t *o, const char *var,
                       const char *flag)
{
    if (l != HC_EMBEDDED_LISTEN_AUTO) {
        return l == HC_EMBEDDED_LISTEN_ON;
    }
    const char *v = o->env ? env_lookup((void *)o->env, var) : getenv(var);
    if (v != NULL && *v != '\0') {
        return 1;
    }
    size_t fl = strlen(flag);
    for (int i = 1; i < o->argc && o->argv != NULL; i++) {
        const char *a = o->argv[i];
        if (a != NULL && strncmp(a, flag, fl) == 0 && (a[fl] == '\0' || a[fl] == '=')) {
            return 1;
        }
    }
    return 0;
}

/* The configuration: load, then validate; the first problem goes into err. */
static int configure(hc_embedded_t *e, const hc_embedded_opts_t *o, char *err, size_t errlen)
{
    hc_config_errors_t *errs = calloc(1, sizeof(*errs));
    if (errs == NULL) {
        set_err(err, errlen, "out of memory");
        return HC_ENOMEM;
    }
    hc_config_init(&e->cfg);
    int rv = hc_config_load(&e->cfg, o->argc, (char **)o->argv, o->env ? env_lookup : NULL,
                            (void *)o->env, NULL, errs);
    if (rv == 0 && (e->cfg.cmd_help || e->cfg.cmd_version || e->cfg.cmd_check_config)) {
        set_err(err, errlen,
                "--help, --version and --check-config are commands of hacached, "
                "not of an embedded node");
        rv = HC_EINVAL;
    } else if (rv != 0 || hc_config_validate(&e->cfg, (int64_t)time(NULL), errs) != 0) {
        set_err(err, errlen, "%s", errs->n > 0 ? errs->line[0] : "invalid configuration");
        rv = HC_EINVAL;
    }
    free(errs);
    return rv;
}

/* Creates the member and the handles on e->loop and starts them (the loop's thread). 0, or the
 * error with err set; then the member is closing and on_member_closed will run (or, when even
 * the member could not be made, nothing was created: e->member NULL). */
static int start_on_loop(hc_embedded_t *e, char *err, size_t errlen)
{
    e->loop_tid = pthread_self();
    struct rlimit rl;
    uint64_t nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        nofile = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
    }
    hc_member_opts_t mo = {.http = e->http,
                           .resp = e->resp,
                           .nofile = nofile,
                           .banner = "embedded node starting",
                           .drain = drain_calls,
                           .closed = on_member_closed,
                           .ud = e};
    int rv = hc_member_new(e->loop, &e->cfg, &mo, &e->member);
    if (rv != 0) {
        set_err(err, errlen, "cannot create the node: %s", hc_strerror(rv));
        return rv;
    }
    e->node = hc_member_node(e->member);
    uv_async_init(e->loop, &e->wake, on_wake);
    e->wake.data = e;
    uv_timer_init(e->loop, &e->drain_timer);
    e->drain_timer.data = e;
    e->handles = 2;
    pthread_mutex_lock(&e->mu);
    e->wake_open = 1;
    pthread_mutex_unlock(&e->mu);
    rv = hc_member_start(e->member);
    if (rv != 0) {
        e->start_failed = 1;
        set_err(err, errlen, "cannot start the node: %s%s", hc_strerror(rv),
                rv == HC_EUNAVAILABLE ? " (a listener could not bind, see the log)" : "");
        return rv;
    }
    pthread_mutex_lock(&e->mu);
    e->accepting = 1;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

static void *node_thread(void *arg)
{
    hc_embedded_t *e = arg;
    char err[512] = "";
    int rv = start_on_loop(e, err, sizeof(err));
    pthread_mutex_lock(&e->mu);
    e->start_done = 1;
    e->start_rv = rv;
    memcpy(e->start_err, err, sizeof(err));
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->member == NULL) {
        return NULL; /* nothing was created on the loop */
    }
    uv_run(e->loop, UV_RUN_DEFAULT);
    if (!hc_member_abandoned(e->member)) {
        if (uv_loop_close(e->loop) != 0) {
            hc_log(HC_LOG_ERROR, "embedded node: handles still open at the end of its loop");
            uv_print_all_handles(e->loop, stderr);
        }
        hc_http_thread_cleanup(); /* h2o's per-thread caches die with this thread */
    }
    return NULL;
}

static void free_now(hc_embedded_t *e)
{
    if (e->member != NULL && hc_member_abandoned(e->member)) {
        /* h2o still references the loop and the configuration (both in e): leave them */
        return;
    }
    hc_log_unset_sink(log_to_callback, e);
    hc_member_free(e->member);
    if (e->own_thread && e->member == NULL && e->loop != NULL) {
        uv_loop_close(e->loop); /* made, but the thread never ran it */
    }
    hc_config_free(&e->cfg);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int hc_embedded_start(const hc_embedded_opts_t *o, hc_embedded_t **out, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (out == NULL || o == NULL) {
        set_err(err, errlen, "opts and out are required");
        return HC_EINVAL;
    }
    *out = NULL;
    hc_embedded_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        set_err(err, errlen, "out of memory");
        return HC_ENOMEM;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    e->own_thread = o->loop == NULL;
    e->log = o->log;
    e->log_ud = o->log_ud;
    e->stopped = o->stopped;
    e->stopped_ud = o->stopped_ud;
    e->timeout_ms = o->timeout_ms ? o->timeout_ms : HC_EMBEDDED_DEFAULT_TIMEOUT_MS;

    int rv = configure(e, o, err, errlen);
    if (rv != 0) {
        free_now(e);
        return rv;
    }
    e->http = listener_on(o->http, o, "CACHE_HTTP_ADDR", "--http-addr");
    e->resp = listener_on(o->resp, o, "CACHE_RESP_ADDR", "--resp-addr");
    const char *stall = o->env ? env_lookup((void *)o->env, "HACACHE_TEST_EMBED_STALL_MS")
                               : getenv("HACACHE_TEST_EMBED_STALL_MS");
    e->test_stall_ms = stall != NULL ? (uint32_t)strtoul(stall, NULL, 10) % 10000 : 0;
    e->max_key_size = e->cfg.max_key_size;
    e->max_value_size = e->cfg.max_value_size;
    hc_log_setup(e->cfg.log_level, e->cfg.log_format, stderr);
    hc_log_set_sink(e->log ? log_to_callback : NULL, e);
    if (sodium_init() < 0) {
        set_err(err, errlen, "libsodium failed to initialise");
        free_now(e);
        return HC_EINTERNAL;
    }

    if (!e->own_thread) {
        e->loop = o->loop;
        rv = start_on_loop(e, err, errlen);
        if (rv != 0) {
            if (e->member == NULL) {
                free_now(e);
            } else {
                /* the handles close on the caller's loop: e goes with the last one */
                pthread_mutex_lock(&e->mu);
                e->free_when_closed = 1;
                pthread_mutex_unlock(&e->mu);
            }
            return rv;
        }
        *out = e;
        return 0;
    }

    e->loop = &e->own_loop;
    if (uv_loop_init(e->loop) != 0) {
        set_err(err, errlen, "cannot create the node's loop");
        e->loop = NULL;
        free_now(e);
        return HC_EINTERNAL;
    }
    /* the node's thread runs with every signal blocked: the program's handlers stay on its own
     * threads, and a write to a closed socket returns EPIPE instead of raising SIGPIPE */
    sigset_t all, old;
    sigfillset(&all);
    /* faults stay deliverable (a blocked synchronous SIGSEGV kills without a handler) */
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        sigdelset(&all, faults[i]);
    }
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int trv = pthread_create(&e->thread, NULL, node_thread, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (trv != 0) {
        set_err(err, errlen, "cannot create the node's thread: %s", strerror(trv));
        free_now(e);
        return HC_EINTERNAL;
    }
    pthread_mutex_lock(&e->mu);
    while (!e->start_done) {
        pthread_cond_wait(&e->cv, &e->mu);
    }
    rv = e->start_rv;
    pthread_mutex_unlock(&e->mu);
    if (rv != 0) {
        pthread_join(e->thread, NULL); /* the loop ran until the member closed */
        set_err(err, errlen, "%s", e->start_err);
        free_now(e);
        return rv;
    }
    *out = e;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* calls from application threads */

static int check_names(const hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                       int need_key)
{
    if (cache == NULL || !hc_cache_name_ok(cache, strlen(cache))) {
        return HC_EINVAL;
    }
    if (need_key && (key == NULL || klen == 0)) {
        return HC_EINVAL;
    }
    if (need_key && klen > e->max_key_size) {
        return HC_ETOOLARGE;
    }
    return 0;
}

/* A call with its arguments copied; the node pointer sits right after the struct (the node's
 * callbacks get the call alone). */
static call_t *call_new(hc_embedded_t *e, const hc_embedded_op_t *op)
{
    size_t cl = op->cache ? strlen(op->cache) : 0;
    size_t kl = op->kind == HC_EMBEDDED_CLEAR ? 0 : op->klen;
    size_t vl = op->kind == HC_EMBEDDED_PUT ? op->vlen : 0;
    size_t hdr = sizeof(call_t) + sizeof(hc_embedded_t *);
    call_t *c = calloc(1, hdr + cl + 1 + kl + vl + 1);
    if (c == NULL) {
        return NULL;
    }
    *(hc_embedded_t **)(c + 1) = e;
    char *p = (char *)c + hdr;
    memcpy(p, op->cache ? op->cache : "", cl);
    c->cache = p;
    c->cache_len = cl;
    p += cl + 1;
    if (kl > 0) {
        memcpy(p, op->key, kl);
    }
    c->key = p;
    c->klen = kl;
    p += kl;
    if (vl > 0) {
        memcpy(p, op->val, vl);
    }
    c->val = p;
    c->vlen = vl;
    c->ack = op->ack;
    c->ttl_ms = op->ttl_ms;
    c->by = op->by;
    c->consistency = (hc_consistency_t)op->consistency;
    c->if_absent = op->if_absent;
    c->has_if_version = op->has_if_version;
    c->if_version = op->if_version;
    static const call_kind_t kinds[] = {CALL_GET, CALL_PUT, CALL_DEL, CALL_INCR, CALL_CLEAR};
    c->kind = kinds[op->kind];
    return c;
}

static int check_op(const hc_embedded_t *e, const hc_embedded_op_t *op)
{
    if (op == NULL || (unsigned)op->kind > HC_EMBEDDED_CLEAR) {
        return HC_EINVAL;
    }
    int rv = check_names(e, op->cache, op->key, op->klen, op->kind != HC_EMBEDDED_CLEAR);
    if (rv != 0) {
        return rv;
    }
    if (op->kind == HC_EMBEDDED_PUT && op->vlen > 0 && op->val == NULL) {
        return HC_EINVAL;
    }
    if (op->kind == HC_EMBEDDED_PUT && op->vlen > e->max_value_size) {
        return HC_ETOOLARGE;
    }
    if (op->kind != HC_EMBEDDED_GET && (unsigned)op->ack > HC_ACK_NONE) {
        return HC_EINVAL;
    }
    if (op->kind == HC_EMBEDDED_GET && (unsigned)op->consistency > HC_READ_LINEARIZABLE) {
        return HC_EINVAL;
    }
    /* conditions: on PUT (if_absent, if_version) and DEL (if_version), and only with a quorum
     * ack, since a weaker ack is answered before the leader checks them */
    int conditional = op->if_absent || op->has_if_version;
    if (conditional &&
        (op->ack != HC_ACK_QUORUM || (op->kind != HC_EMBEDDED_PUT && op->kind != HC_EMBEDDED_DEL) ||
         (op->kind == HC_EMBEDDED_DEL && op->if_absent))) {
        return HC_EINVAL;
    }
    return 0;
}

/* Queues c and wakes the loop; HC_ESHUTDOWN once the stop began. */
static int enqueue(hc_embedded_t *e, call_t *c)
{
    pthread_mutex_lock(&e->mu);
    if (!e->accepting || !e->wake_open) {
        pthread_mutex_unlock(&e->mu);
        return HC_ESHUTDOWN;
    }
    if (e->q_tail != NULL) {
        e->q_tail->next = c;
    } else {
        e->q_head = c;
    }
    e->q_tail = c;
    uv_async_send(&e->wake);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

/* Removes c from the queue if it is still there (under e->mu); 1 when it was. */
static int dequeue_locked(hc_embedded_t *e, call_t *c)
{
    call_t *prev = NULL;
    for (call_t *x = e->q_head; x != NULL; prev = x, x = x->next) {
        if (x == c) {
            if (prev != NULL) {
                prev->next = c->next;
            } else {
                e->q_head = c->next;
            }
            if (e->q_tail == c) {
                e->q_tail = prev;
            }
            return 1;
        }
    }
    return 0;
}

/* Hands c to the loop and waits for it until the deadline. Returns the call's status; c is
 * then the caller's to read and free (0 / an answer), or already given up (HC_ETIMEDOUT,
 * HC_EUNKNOWN_OUTCOME: *cp is set to NULL). */
static int run_blocking(hc_embedded_t *e, call_t **cp)
{
    call_t *c = *cp;
    int rv = enqueue(e, c);
    if (rv != 0) {
        call_free(c);
        *cp = NULL;
        return rv;
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    uint64_t ns = (uint64_t)dl.tv_nsec + (uint64_t)e->timeout_ms * 1000000u;
    dl.tv_sec += (time_t)(ns / 1000000000u);
    dl.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_lock(&e->mu);
    while (!c->done) {
        if (pthread_cond_timedwait(&e->cv, &e->mu, &dl) == ETIMEDOUT && !c->done) {
            break;
        }
    }
    if (c->done) {
        pthread_mutex_unlock(&e->mu);
        return c->status;
    }
    if (dequeue_locked(e, c)) {
        /* never started: nothing happened */
        pthread_mutex_unlock(&e->mu);
        call_free(c);
        *cp = NULL;
        return HC_ETIMEDOUT;
    }
    c->abandoned = 1; /* the loop frees it when its answer comes */
    int writes = c->kind != CALL_GET && c->kind != CALL_STATUS;
    pthread_mutex_unlock(&e->mu);
    *cp = NULL;
    return writes ? HC_EUNKNOWN_OUTCOME : HC_ETIMEDOUT;
}

/* Blocking calls are refused on the loop thread: they would wait for themselves. */
static int blocking_allowed(const hc_embedded_t *e)
{
    return e != NULL && !on_loop_thread(e);
}

static int do_call(hc_embedded_t *e, const hc_embedded_op_t *op, call_t **out)
{
    *out = NULL;
    if (e == NULL) {
        return HC_EINVAL;
    }
    int rv = check_op(e, op);
    if (rv != 0) {
        return rv;
    }
    if (!blocking_allowed(e)) {
        return HC_EINVAL;
    }
    call_t *c = call_new(e, op);
    if (c == NULL) {
        return HC_ENOMEM;
    }
    rv = run_blocking(e, &c);
    *out = c;
    return rv;
}

/* A local get on the loop thread itself: answered at once from the store. */
static int get_on_loop(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                       hc_value_t *out, hc_meta_t *meta)
{
    pthread_mutex_lock(&e->mu);
    int open = e->accepting;
    pthread_mutex_unlock(&e->mu);
    if (!open) {
        return HC_ESHUTDOWN;
    }
    hc_entry_view_t v;
    int rv = hc_node_read(e->node, cache, strlen(cache), key, klen, HC_READ_LOCAL, &v);
    if (rv != 0) {
        return rv;
    }
    out->data = malloc(v.len + 1);
    if (out->data == NULL) {
        return HC_ENOMEM;
    }
    memcpy(out->data, v.data, v.len);
    ((char *)out->data)[v.len] = '\0';
    out->len = v.len;
    out->stale = hc_node_read_stale(e->node);
    if (meta != NULL) {
        meta->version = v.version;
        remaining_ttl(&v, &meta->has_ttl, &meta->ttl_ms);
    }
    return 0;
}

int hc_embedded_get_ex(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                       hc_consistency_t consistency, hc_value_t *out, hc_meta_t *meta)
{
    if (meta != NULL) {
        memset(meta, 0, sizeof(*meta));
    }
    if (out == NULL) {
        return HC_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    hc_embedded_op_t op = {.kind = HC_EMBEDDED_GET,
                           .cache = cache,
                           .key = key,
                           .klen = klen,
                           .consistency = consistency};
    if (e != NULL && on_loop_thread(e) && consistency == HC_READ_LOCAL) {
        int rv = check_op(e, &op);
        return rv != 0 ? rv : get_on_loop(e, cache, key, klen, out, meta);
    }
    call_t *c;
    int rv = do_call(e, &op, &c);
    if (c != NULL) {
        if (rv == 0) {
            out->data = c->data;
            out->len = c->len;
            out->stale = c->stale;
            c->data = NULL;
            if (meta != NULL) {
                meta->version = c->version;
                meta->has_ttl = c->has_left;
                meta->ttl_ms = c->left_ms;
            }
        }
        call_free(c);
    }
    return rv;
}

int hc_embedded_get(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                    hc_consistency_t consistency, hc_value_t *out)
{
    return hc_embedded_get_ex(e, cache, key, klen, consistency, out, NULL);
}

static int write_call(hc_embedded_t *e, const hc_embedded_op_t *op, int64_t *integer,
                      uint64_t *version)
{
    call_t *c;
    int rv = do_call(e, op, &c);
    if (c != NULL) {
        if (rv == 0 && integer != NULL) {
            *integer = c->integer;
        }
        if (rv == 0 && version != NULL) {
            *version = c->version;
        }
        call_free(c);
    }
    return rv;
}

int hc_embedded_put_ex(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                       const void *val, size_t vlen, const hc_put_opts_t *opts, uint64_t *version)
{
    static const hc_put_opts_t defaults;
    const hc_put_opts_t *o = opts != NULL ? opts : &defaults;
    if (version != NULL) {
        *version = 0;
    }
    hc_embedded_op_t op = {.kind = HC_EMBEDDED_PUT,
                           .cache = cache,
                           .key = key,
                           .klen = klen,
                           .val = val,
                           .vlen = vlen,
                           .ack = o->ack,
                           .ttl_ms = o->ttl_ms,
                           .if_absent = o->if_absent,
                           .has_if_version = o->has_if_version,
                           .if_version = o->if_version};
    return write_call(e, &op, NULL, version);
}

int hc_embedded_put(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                    const void *val, size_t vlen, hc_ack_t ack, uint64_t ttl_ms)
{
    hc_put_opts_t o = {.ack = ack, .ttl_ms = ttl_ms};
    return hc_embedded_put_ex(e, cache, key, klen, val, vlen, &o, NULL);
}

int hc_embedded_del_ex(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                       const hc_del_opts_t *opts)
{
    static const hc_del_opts_t defaults;
    const hc_del_opts_t *o = opts != NULL ? opts : &defaults;
    hc_embedded_op_t op = {.kind = HC_EMBEDDED_DEL,
                           .cache = cache,
                           .key = key,
                           .klen = klen,
                           .ack = o->ack,
                           .has_if_version = o->has_if_version,
                           .if_version = o->if_version};
    return write_call(e, &op, NULL, NULL);
}

int hc_embedded_del(hc_embedded_t *e, const char *cache, const void *key, size_t klen, hc_ack_t ack)
{
    hc_del_opts_t o = {.ack = ack};
    return hc_embedded_del_ex(e, cache, key, klen, &o);
}

int hc_embedded_incr(hc_embedded_t *e, const char *cache, const void *key, size_t klen, int64_t by,
                     hc_ack_t ack, int64_t *value)
{
    hc_embedded_op_t op = {
        .kind = HC_EMBEDDED_INCR, .cache = cache, .key = key, .klen = klen, .by = by, .ack = ack};
    if (value != NULL) {
        *value = 0;
    }
    return write_call(e, &op, value, NULL);
}

int hc_embedded_clear(hc_embedded_t *e, const char *cache, hc_ack_t ack)
{
    hc_embedded_op_t op = {.kind = HC_EMBEDDED_CLEAR, .cache = cache, .ack = ack};
    return write_call(e, &op, NULL, NULL);
}

int hc_embedded_submit(hc_embedded_t *e, const hc_embedded_op_t *op, hc_embedded_cb cb, void *ud)
{
    if (e == NULL || cb == NULL) {
        return HC_EINVAL;
    }
    int rv = check_op(e, op);
    if (rv != 0) {
        return rv;
    }
    call_t *c = call_new(e, op);
    if (c == NULL) {
        return HC_ENOMEM;
    }
    c->cb = cb;
    c->ud = ud;
    rv = enqueue(e, c);
    if (rv != 0) {
        call_free(c);
    }
    return rv;
}

int hc_embedded_status(hc_embedded_t *e, hc_embedded_status_t *out)
{
    if (e == NULL || out == NULL) {
        return HC_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (on_loop_thread(e)) {
        pthread_mutex_lock(&e->mu);
        int closed = e->closed;
        pthread_mutex_unlock(&e->mu);
        if (closed) {
            return HC_ESHUTDOWN;
        }
        status_fill(e, out);
        return 0;
    }
    call_t *c = calloc(1, sizeof(call_t) + sizeof(hc_embedded_t *));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    *(hc_embedded_t **)(c + 1) = e;
    c->kind = CALL_STATUS;
    /* the loop fills a copy the call owns: the caller may have given up by then */
    hc_embedded_status_t *st = malloc(sizeof(*st));
    if (st == NULL) {
        free(c);
        return HC_ENOMEM;
    }
    c->st = st;
    c->data = st; /* freed with the call */
    int rv = run_blocking(e, &c);
    if (c != NULL) {
        if (rv == 0) {
            *out = *st;
        }
        call_free(c);
    }
    return rv;
}

int hc_embedded_ready(hc_embedded_t *e)
{
    hc_embedded_status_t st;
    return hc_embedded_status(e, &st) == 0 && st.ready;
}

/* ---------------------------------------------------------------------------------------- */
/* stop and free */

int hc_embedded_stop(hc_embedded_t *e)
{
    if (e == NULL) {
        return HC_EINVAL;
    }
    if (on_loop_thread(e)) {
        if (e->own_thread) {
            return HC_EINVAL; /* it would wait for itself */
        }
        pthread_mutex_lock(&e->mu);
        e->accepting = 0;
        int closed = e->closed;
        pthread_mutex_unlock(&e->mu);
        if (!closed) {
            hc_member_stop(e->member, "hc_embedded_stop");
        }
        return 0;
    }
    pthread_mutex_lock(&e->mu);
    e->accepting = 0;
    if (!e->closed && e->wake_open) {
        e->stop_requested = 1;
        uv_async_send(&e->wake);
    }
    while (!e->closed) {
        pthread_cond_wait(&e->cv, &e->mu);
    }
    int join = e->own_thread && !e->joined;
    e->joined = 1;
    int rv = e->stop_rv;
    pthread_mutex_unlock(&e->mu);
    if (join) {
        pthread_join(e->thread, NULL);
    }
    return rv;
}

void hc_embedded_free(hc_embedded_t *e)
{
    if (e == NULL) {
        return;
    }
    if (e->own_thread) {
        if (on_loop_thread(e)) {
            return; /* misuse: it cannot stop itself from its own thread */
        }
        hc_embedded_stop(e);
        free_now(e);
        return;
    }
    if (!on_loop_thread(e)) {
        hc_embedded_stop(e); /* waits until the caller's loop closed the node */
        free_now(e);
        return;
    }
    pthread_mutex_lock(&e->mu);
    int closed = e->closed;
    e->free_when_closed = !closed;
    e->accepting = 0;
    pthread_mutex_unlock(&e->mu);
    if (closed) {
        free_now(e);
    } else {
        hc_member_stop(e->member, "hc_embedded_free"); /* e goes with its last handle */
    }
}
