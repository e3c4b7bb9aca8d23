/* http.c: the HTTP API (SPEC section 5) on h2o 2.2.5 with libuv.
 *
 * One h2o handler serves every path; routing is a small hand-written parser over the raw path so
 * that percent-encoded binary keys (including %2F) survive untouched. Request bodies are bounded
 * by h2o's max_request_entity_size (= CACHE_MAX_VALUE_SIZE) before they are buffered, keys by
 * CACHE_MAX_KEY_SIZE before they are decoded. Every response body is built in a growable buffer
 * and handed to h2o_send_inline, which copies it into the request's pool.
 *
 * Connection limits (admit.h): a connection is pending from accept until h2o hands us its first
 * complete request, then admitted if the listener's share of CACHE_MAX_CLIENTS has room. The
 * pending pool is bounded (the oldest pending connection is closed to make room) and timed
 * (CACHE_UNAUTH_TIMEOUT_MS, which is also h2o's per-request read timeout), so idle or slow
 * connections cannot lock new clients out. A connection that cannot be admitted still gets
 * /healthz and /readyz answered (the kubelet's probes open new connections), 503 for anything
 * else, and is closed after the answer. Connections are closed from outside h2o with
 * shutdown(2): h2o sees the end of the stream and closes the socket itself.
 *
 * The health listener (CACHE_HEALTH_ADDR) is a second instance of this adapter with `health`
 * set: its own socket, gate and h2o context, plain HTTP, no token, and a router that knows only
 * /healthz, /readyz and /metrics. It lets a sidecar keep the data API on loopback while the
 * kubelet and Prometheus reach the pod IP, and a flood of API clients never reaches it. */
#include "http.h"

#include <inttypes.h>
#include <sodium.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <h2o/http2.h>

#include "admit.h"
#include "drain.h"
#include "http_query.h"
#include "log.h"
#include "peer.h"
#include "util.h"

typedef struct {
    h2o_handler_t super;
    struct hc_http *http;
} api_handler_t;

/* One accepted connection; `tcp` first so h2o's close callback can free the whole thing. */
typedef struct conn {
    uv_tcp_t tcp;
    struct hc_http *http;
    h2o_socket_t *sock;
    int read_shut;            /* shutdown(SHUT_RD) done during drain */
    struct conn *prev, *next; /* hc_http.conns */
    hc_admit_conn_t adm;      /* pending until its first complete request */
    /* a reference to the TLS context the connection was accepted with: h2o keeps the bare
     * pointer and creates the connection's SSL only when the first bytes arrive, which may be
     * after a credential reload replaced (and released) the listener's context */
    SSL_CTX *ssl_ctx;
} conn_t;

struct hc_http {
    uv_loop_t *loop;
    const hc_config_t *cfg;
    hc_node_t *node;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    int ctx_inited;
    uv_tcp_t listener;
    int listener_open;
    hc_auth_t *auth;       /* borrowed: API tokens */
    hc_http_tls_t *tls;    /* borrowed: listener TLS, or NULL */
    hc_metrics_t *metrics; /* borrowed: request counters */
    size_t nconns;
    conn_t *conns; /* every accepted connection, for the drain */
    int shutting_down;
    hc_drain_t drain;
    hc_creds_t *creds; /* credential reloads, status and metrics of them; may be NULL */
    hc_admit_t *admit; /* borrowed: this listener's connection limits */
    const hc_admit_t *gates[HC_HTTP_MAX_GATES]; /* borrowed: every listener's, for /metrics */
    size_t n_gates;
    hc_admit_timer_t admit_timer;
    int admit_timer_open;
    int health;                  /* the health listener: probes and metrics only */
    const struct hc_http *api;   /* health listener: the API listener, or NULL */
    const char *addr, *addr_var; /* the bound address and its variable, for log lines */
};

/* ---- responses ---- */

typedef struct {
    int status;
    const char *reason;
} status_reason_t;

static const char *reason_of(int status)
{
    static const status_reason_t table[] = {{200, "OK"},
                                            {400, "Bad Request"},
                                            {401, "Unauthorized"},
                                            {404, "Not Found"},
                                            {405, "Method Not Allowed"},
                                            {409, "Conflict"},
                                            {413, "Payload Too Large"},
                                            {500, "Internal Server Error"},
                                            {503, "Service Unavailable"},
                                            {504, "Gateway Timeout"},
                                            {507, "Insufficient Storage"}};
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].status == status) {
            return table[i].reason;
        }
    }
    return "Unknown";
}

/* Per-request bookkeeping for the metrics line. */
typedef struct {
    struct hc_http *http;
    h2o_req_t *req;
    hc_metric_op_t op;
    hc_metric_ack_t ack;
    uint64_t start_ns;
    /* A node request in flight (cluster writes and leader/linearizable reads answer later):
     * if the request goes away first, the pool's dispose hook cancels it, so a callback never
     * writes to a request that no longer exists. */
    hc_node_op_t *nop;
    int pending;
} call_t;

static hc_metric_result_t result_of_status(int status)
{
    switch (status) {
    case 200:
        return HC_MRES_OK;
    case 400:
    case 405:
        return HC_MRES_BAD_REQUEST;
    case 401:
        return HC_MRES_UNAUTHORIZED;
    case 404:
        return HC_MRES_NOT_FOUND;
    case 409:
        return HC_MRES_CONFLICT;
    case 413:
        return HC_MRES_TOO_LARGE;
    case 503:
        return HC_MRES_UNAVAILABLE;
    case 504:
        return HC_MRES_TIMEOUT;
    case 507:
        return HC_MRES_NO_MEMORY;
    default:
        return HC_MRES_ERROR;
    }
}

static void send_body(call_t *call, int status, const char *content_type, const char *body,
                      size_t len)
{
    h2o_req_t *req = call->req;
    req->res.status = status;
    req->res.reason = reason_of(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                   strlen(content_type));
    req->res.content_length = len;
    hc_metrics_record(call->http->metrics, call->op, call->ack, result_of_status(status),
                      hc_mono_ns() - call->start_ns);
    if (hc_log_enabled(HC_LOG_DEBUG)) {
        char path[256];
        size_t n = req->path.len < sizeof(path) - 1 ? req->path.len : sizeof(path) - 1;
        memcpy(path, req->path.base, n);
        path[n] = '\0';
        char method[16];
        n = req->method.len < sizeof(method) - 1 ? req->method.len : sizeof(method) - 1;
        memcpy(method, req->method.base, n);
        method[n] = '\0';
        hc_log(HC_LOG_DEBUG, "http request", HC_LS("method", method), HC_LS("path", path),
               HC_LI("status", status), HC_LU("us", (hc_mono_ns() - call->start_ns) / 1000));
    }
    h2o_send_inline(req, body, len);
}

static void send_json(call_t *call, int status, hc_buf_t *b)
{
    if (b->failed) {
        static const char oom[] = "{\"error\":\"out of memory\",\"code\":\"internal\"}";
        send_body(call, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    send_body(call, status, "application/json", b->data ? b->data : "{}", b->data ? b->len : 2);
}

/* {"error": msg, "code": code[, "reason": reason]} */
static void send_error_reason(call_t *call, int status, const char *code, const char *msg,
                              const char *reason)
{
    hc_buf_t b;
    hc_buf_init(&b);
    hc_buf_puts(&b, "{\"error\":");
    hc_buf_json_string(&b, msg, strlen(msg));
    hc_buf_puts(&b, ",\"code\":");
    hc_buf_json_string(&b, code, strlen(code));
    if (reason != NULL) {
        hc_buf_puts(&b, ",\"reason\":");
        hc_buf_json_string(&b, reason, strlen(reason));
    }
    hc_buf_puts(&b, "}");
    send_json(call, status, &b);
    hc_buf_free(&b);
}

static void send_error(call_t *call, int status, const char *code, const char *msg)
{
    send_error_reason(call, status, code, msg, NULL);
}

/* Maps an HC_E* code to the HTTP status and error code of SPEC section 5. */
static void send_hc_error(call_t *call, int err)
{
    int status;
    const char *code;
    switch (err) {
    case HC_ENOTFOUND:
        status = 404, code = "not_found";
        break;
    case HC_ECONFLICT:
        status = 409, code = "conflict";
        break;
    case HC_ENOTINT:
        status = 409, code = "not_integer";
        break;
    case HC_EOVERFLOW:
        status = 409, code = "overflow";
        break;
    case HC_ENOMEM:
        status = 507, code = "insufficient_memory";
        break;
    case HC_ESHUTDOWN:
        status = 503, code = "shutting_down";
        break;
    case HC_EUNAVAILABLE:
        status = 503, code = "unavailable";
        break;
    case HC_ETIMEDOUT:
        status = 504, code = "timeout";
        break;
    case HC_EUNKNOWN_OUTCOME:
        status = 504, code = "unknown_outcome";
        break;
    case HC_EINVAL:
        status = 400, code = "bad_request";
        break;
    case HC_ETOOLARGE:
        status = 413, code = "too_large";
        break;
    case HC_EAUTH:
        status = 401, code = "unauthorized";
        break;
    case HC_EUPGRADE:
        /* final, not retried elsewhere: every node answers the same until the upgrade is done */
        status = 409, code = "upgrade_pending";
        break;
    case HC_EBUSY:
        /* this node cannot take it now; another one may (clients fail over on a 503) */
        status = 503, code = "busy";
        break;
    default:
        status = 500, code = "internal";
        break;
    }
    const char *reason = NULL;
    if (err == HC_EUNAVAILABLE) {
        /* why: the node's readiness reason (no_quorum, catching_up, joining, ...) */
        hc_node_status_t st;
        hc_node_status(call->http->node, &st);
        reason = !st.ready && st.not_ready_reason ? st.not_ready_reason : NULL;
    }
    send_error_reason(call, status, code, hc_strerror(err), reason);
}

/* ---- auth ---- */

static int token_ok(struct hc_http *h, h2o_req_t *req)
{
    if (!hc_auth_required(h->auth)) {
        return 1;
    }
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0) {
        return 0;
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    static const char prefix[] = "Bearer ";
    if (v.len <= sizeof(prefix) - 1 || strncasecmp(v.base, prefix, sizeof(prefix) - 1) != 0) {
        return 0;
    }
    return hc_auth_check(h->auth, v.base + sizeof(prefix) - 1, v.len - (sizeof(prefix) - 1));
}

/* ---- handlers ---- */

static int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static void send_method_not_allowed(call_t *call, const char *allow)
{
    h2o_add_header(&call->req->pool, &call->req->res.headers, H2O_TOKEN_ALLOW, NULL, allow,
                   strlen(allow));
    send_error(call, 405, "method_not_allowed", "method not allowed on this path");
}

static void call_dispose(void *p)
{
    call_t *call = p;
    if (call->pending && call->nop != NULL) {
        hc_node_cancel(call->http->node, call->nop);
    }
    call->pending = 0;
    call->nop = NULL;
}

static void call_node_write(call_t *call, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack);

static void write_done(void *ud, int status, const hc_apply_result_t *res)
{
    call_t *call = ud;
    call->pending = 0;
    call->nop = NULL;
    if (status != 0) {
        send_hc_error(call, status);
        return;
    }
    hc_buf_t b;
    hc_buf_init(&b);
    switch (call->op) {
    case HC_MOP_PUT:
        hc_buf_printf(&b, "{\"version\":%" PRIu64 "}", res->version);
        break;
    case HC_MOP_DEL:
        hc_buf_puts(&b, "{\"deleted\":true}");
        break;
    case HC_MOP_INCR:
        hc_buf_printf(&b, "{\"value\":%" PRId64 ",\"version\":%" PRIu64 "}", res->integer,
                      res->version);
        break;
    case HC_MOP_CLEAR:
        hc_buf_printf(&b, "{\"cleared\":%" PRIu64 "}", res->removed);
        break;
    case HC_MOP_CONFIG:
        hc_buf_puts(&b, "{\"configured\":true}");
        break;
    default:
        hc_buf_puts(&b, "{}");
        break;
    }
    send_json(call, 200, &b);
    hc_buf_free(&b);
}

/* The request id of a write: the X-Hacache-Request-Id header (32 hex digits), so a client that
 * retries the write after an unknown outcome gets it applied once; a random one otherwise.
 * Returns 0, or -1 when the header is present but malformed. */
static int request_id_of(h2o_req_t *req, uint8_t rid[HC_REQUEST_ID_BYTES])
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-hacache-request-id"), -1);
    if (i < 0) {
        randombytes_buf(rid, HC_REQUEST_ID_BYTES);
        return 0;
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len != 2 * HC_REQUEST_ID_BYTES) {
        return -1;
    }
    for (size_t b = 0; b < HC_REQUEST_ID_BYTES; b++) {
        int hi = hc_hex_digit(v.base[2 * b]), lo = hc_hex_digit(v.base[2 * b + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        rid[b] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void call_node_write(call_t *call, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack)
{
    uint8_t rid[HC_REQUEST_ID_BYTES];
    if (request_id_of(call->req, rid) != 0) {
        send_error(call, 400, "bad_request", "X-Hacache-Request-Id must be 32 hex digits");
        return;
    }
    call->pending = 1;
    hc_node_op_t *op = hc_node_write_rid(call->http->node, cmd, rid, ttl_ms, ack, write_done, call);
    if (call->pending) {
        call->nop = op;
    }
}

static void read_done(void *ud, int status, const hc_entry_view_t *view)
{
    call_t *call = ud;
    call->pending = 0;
    call->nop = NULL;
    h2o_req_t *req = call->req;
    if (status != 0) {
        send_hc_error(call, status);
        return;
    }
    char ver[24];
    int vn = snprintf(ver, sizeof(ver), "%" PRIu64, view->version);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_iovec_t vname = h2o_strdup(&req->pool, H2O_STRLIT("x-hacache-version"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, vname.base, vname.len, 0, NULL,
                          h2o_strdup(&req->pool, ver, (size_t)vn).base, (size_t)vn);
    if (view->expire_at_ms != 0) {
        /* the time it has left by this node's wall clock (the instant was fixed by the leader) */
        uint64_t now = hc_wall_ms();
        char ttl[24];
        int tn = snprintf(ttl, sizeof(ttl), "%" PRIu64,
                          view->expire_at_ms > now ? view->expire_at_ms - now : 0);
        h2o_iovec_t tname = h2o_strdup(&req->pool, H2O_STRLIT("x-hacache-ttl-ms"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, tname.base, tname.len, 0, NULL,
                              h2o_strdup(&req->pool, ttl, (size_t)tn).base, (size_t)tn);
    }
    if (hc_node_read_stale(call->http->node)) {
        /* served from a serve_stale cache this node kept after losing its quorum */
        h2o_iovec_t sname = h2o_strdup(&req->pool, H2O_STRLIT("x-hacache-stale"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, sname.base, sname.len, 0, NULL,
                              H2O_STRLIT("1"));
    }
    send_body(call, 200, "application/octet-stream", view->data, view->len);
}

static hc_metric_ack_t metric_ack(hc_ack_t a)
{
    return (hc_metric_ack_t)a; /* same order by construction */
}

/* /v1/caches/{cache}/{key}[/incr] */
static void handle_entry(call_t *call, const char *cache, size_t cache_len, const char *rawkey,
                         size_t rawkey_len, const hc_query_t *q)
{
    struct hc_http *h = call->http;
    h2o_req_t *req = call->req;
    int incr = 0;
    if (method_is(req, "POST")) {
        static const char sfx[] = "/incr";
        if (rawkey_len > sizeof(sfx) - 1 &&
            memcmp(rawkey + rawkey_len - (sizeof(sfx) - 1), sfx, sizeof(sfx) - 1) == 0) {
            incr = 1;
            rawkey_len -= sizeof(sfx) - 1;
            call->op = HC_MOP_INCR;
        } else {
            send_method_not_allowed(call, "GET, PUT, DELETE");
            return;
        }
    } else if (method_is(req, "GET") || method_is(req, "HEAD")) {
        call->op = HC_MOP_GET;
    } else if (method_is(req, "PUT")) {
        call->op = HC_MOP_PUT;
    } else if (method_is(req, "DELETE")) {
        call->op = HC_MOP_DEL;
    } else {
        send_method_not_allowed(call, "GET, PUT, DELETE, POST");
        return;
    }
    if (!hc_cache_name_ok(cache, cache_len)) {
        send_error(call, 400, "bad_request",
                   "cache name must be 1-128 characters of [A-Za-z0-9_.:-]");
        return;
    }
    if (rawkey_len == 0) {
        send_error(call, 400, "bad_request", "empty key");
        return;
    }
    /* A percent escape is 3 bytes for 1: anything longer than 3x the limit is too large
     * before decoding, which bounds the decode buffer. */
    if (rawkey_len > 3 * h->cfg->max_key_size) {
        send_error(call, 413, "too_large", "key larger than CACHE_MAX_KEY_SIZE");
        return;
    }
    char *key = h2o_mem_alloc_pool(&req->pool, rawkey_len + 1);
    long klen = hc_pct_decode(rawkey, rawkey_len, key);
    if (klen < 0) {
        send_error(call, 400, "bad_request", "malformed percent-encoding in key");
        return;
    }
    if ((uint64_t)klen > h->cfg->max_key_size) {
        send_error(call, 413, "too_large", "key larger than CACHE_MAX_KEY_SIZE");
        return;
    }

    if (call->op == HC_MOP_GET) {
        hc_consistency_t cons;
        if (hc_query_consistency(q, &cons) != 0) {
            send_error(call, 400, "bad_request",
                       "consistency must be local, leader or linearizable");
            return;
        }
        call->pending = 1;
        hc_node_op_t *op =
            hc_node_read_async(h->node, cache, cache_len, key, (size_t)klen, cons, read_done, call);
        if (call->pending) {
            call->nop = op;
        }
        return;
    }

    hc_ack_t ack;
    if (hc_query_ack(q, &ack) != 0) {
        send_error(call, 400, "bad_request", "ack must be quorum, once, leader or none");
        return;
    }
    call->ack = metric_ack(ack);
    hc_cmd_t cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.cache = cache;
    cmd.cache_len = cache_len;
    cmd.key = key;
    cmd.klen = (size_t)klen;
    uint64_t ttl_ms = 0, u;
    int rv;

    if (call->op == HC_MOP_PUT || call->op == HC_MOP_INCR) {
        if ((rv = hc_query_u64(q, "ttl_ms", &u)) < 0) {
            send_error(call, 400, "bad_request", "ttl_ms must be a non-negative integer");
            return;
        } else if (rv == 1) {
            ttl_ms = u;
        } else if ((rv = hc_query_u64(q, "ttl", &u)) < 0 || (rv == 1 && u > UINT64_MAX / 1000)) {
            send_error(call, 400, "bad_request", "ttl must be a non-negative integer (seconds)");
            return;
        } else if (rv == 1) {
            ttl_ms = u * 1000;
        }
    }
    if (call->op == HC_MOP_PUT || call->op == HC_MOP_DEL) {
        if ((rv = hc_query_u64(q, "if_version", &u)) < 0) {
            send_error(call, 400, "bad_request", "if_version must be a non-negative integer");
            return;
        } else if (rv == 1) {
            cmd.has_if_version = 1;
            cmd.if_version = u;
        }
    }
    if (call->op == HC_MOP_PUT) {
        char v[8];
        if ((rv = hc_query_get(q, "if_absent", v, sizeof(v))) < 0) {
            send_error(call, 400, "bad_request", "if_absent must be 0 or 1");
            return;
        }
        if (rv == 1 && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)) {
            cmd.if_absent = 1;
        } else if (rv == 1 && strcmp(v, "0") != 0 && strcmp(v, "false") != 0) {
            send_error(call, 400, "bad_request", "if_absent must be 0 or 1");
            return;
        }
        if (req->entity.len > h->cfg->max_value_size) {
            send_error(call, 413, "too_large", "value larger than CACHE_MAX_VALUE_SIZE");
            return;
        }
        cmd.op = HC_OP_PUT;
        cmd.val = req->entity.base ? req->entity.base : "";
        cmd.vlen = req->entity.len;
    } else if (call->op == HC_MOP_DEL) {
        cmd.op = HC_OP_DEL;
    } else { /* incr */
        char v[32];
        cmd.op = HC_OP_INCR;
        cmd.incr_by = 1;
        if ((rv = hc_query_get(q, "by", v, sizeof(v))) < 0 ||
            (rv == 1 && hc_parse_i64(v, strlen(v), &cmd.incr_by) != 0)) {
            send_error(call, 400, "bad_request", "by must be a 64-bit integer");
            return;
        }
    }
    (void)incr;
    call_node_write(call, &cmd, ttl_ms, ack);
}

/* PUT /v1/caches/{cache}?max_memory=&default_ttl_ms=|default_ttl=&policy=&max_stale_ms=:
 * creates the cache or replaces all of its settings (an omitted one is reset to its default:
 * no own bound, no default TTL, policy invalidate). Replicated like a write. */
static int parse_cache_settings(const hc_query_t *q, hc_cache_settings_t *set, const char **why)
{
    char v[64];
    int rv;
    memset(set, 0, sizeof(*set));
    set->policy = HC_POLICY_INVALIDATE;
    if ((rv = hc_query_get(q, "max_memory", v, sizeof(v))) < 0 ||
        (rv == 1 && hc_parse_size(v, &set->max_memory) != 0)) {
        *why = "max_memory must be a size (bytes, or with KiB, MiB, GiB)";
        return -1;
    }
    uint64_t secs = 0;
    if ((rv = hc_query_get(q, "default_ttl_ms", v, sizeof(v))) < 0 ||
        (rv == 1 && hc_parse_u64(v, strlen(v), &set->default_ttl_ms) != 0)) {
        *why = "default_ttl_ms must be a whole number";
        return -1;
    }
    if ((rv = hc_query_get(q, "default_ttl", v, sizeof(v))) < 0 ||
        (rv == 1 && (hc_parse_u64(v, strlen(v), &secs) != 0 || secs > UINT64_MAX / 1000))) {
        *why = "default_ttl must be a whole number of seconds";
        return -1;
    }
    if (rv == 1) {
        set->default_ttl_ms = secs * 1000;
    }
    if ((rv = hc_query_get(q, "policy", v, sizeof(v))) < 0) {
        *why = "policy must be invalidate or serve_stale";
        return -1;
    }
    if (rv == 1) {
        if (strcmp(v, "serve_stale") == 0) {
            set->policy = HC_POLICY_SERVE_STALE;
        } else if (strcmp(v, "invalidate") != 0) {
            *why = "policy must be invalidate or serve_stale";
            return -1;
        }
    }
    if ((rv = hc_query_get(q, "max_stale_ms", v, sizeof(v))) < 0 ||
        (rv == 1 && hc_parse_u64(v, strlen(v), &set->max_stale_ms) != 0)) {
        *why = "max_stale_ms must be a whole number";
        return -1;
    }
    return 0;
}

static void handle_clear(call_t *call, const char *cache, size_t cache_len, const hc_query_t *q)
{
    call->op = method_is(call->req, "PUT") ? HC_MOP_CONFIG : HC_MOP_CLEAR;
    if (!method_is(call->req, "DELETE") && !method_is(call->req, "PUT")) {
        send_method_not_allowed(call, "DELETE, PUT");
        return;
    }
    if (!hc_cache_name_ok(cache, cache_len)) {
        send_error(call, 400, "bad_request",
                   "cache name must be 1-128 characters of [A-Za-z0-9_.:-]");
        return;
    }
    hc_ack_t ack;
    if (hc_query_ack(q, &ack) != 0) {
        send_error(call, 400, "bad_request", "ack must be quorum, once, leader or none");
        return;
    }
    call->ack = metric_ack(ack);
    hc_cmd_t cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = HC_OP_CLEAR;
    cmd.cache = cache;
    cmd.cache_len = cache_len;
    if (call->op == HC_MOP_CONFIG) {
        const char *why = NULL;
        if (parse_cache_settings(q, &cmd.settings, &why) != 0) {
            send_error(call, 400, "bad_request", why);
            return;
        }
        cmd.op = HC_OP_CACHE_CONFIG;
    }
    call_node_write(call, &cmd, 0, ack);
}

/* One cache of /v1/caches and /v1/status, appended to the hc_buf_t at ud. */
static void list_cache_cb(void *ud, const char *name, size_t name_len,
                          const hc_cache_settings_t *settings, const hc_cache_stats_t *st,
                          const uint8_t *digest)
{
    hc_buf_t *b = ud;
    if (b->len > 0 && b->data[b->len - 1] == '}') {
        hc_buf_puts(b, ",");
    }
    hc_buf_puts(b, "{\"name\":");
    hc_buf_json_string(b, name, name_len);
    hc_buf_printf(b,
                  ",\"entries\":%" PRIu64 ",\"memory_bytes\":%" PRIu64 ",\"hits\":%" PRIu64
                  ",\"misses\":%" PRIu64 ",\"evictions\":%" PRIu64 ",\"expirations\":%" PRIu64
                  ",\"settings\":{\"max_memory\":%" PRIu64 ",\"default_ttl_ms\":%" PRIu64
                  ",\"quorum_loss_policy\":\"%s\",\"max_stale_ms\":%" PRIu64 "}",
                  st->entries, st->memory, st->hits, st->misses, st->evictions, st->expirations,
                  settings->max_memory, settings->default_ttl_ms,
                  settings->policy == HC_POLICY_SERVE_STALE ? "serve_stale" : "invalidate",
                  settings->max_stale_ms);
    if (digest != NULL) {
        hc_buf_puts(b, ",\"digest\":\"");
        for (size_t i = 0; i < HC_DIGEST_BYTES; i++) {
            hc_buf_printf(b, "%02x", digest[i]);
        }
        hc_buf_puts(b, "\"");
    }
    hc_buf_puts(b, "}");
}

static void handle_caches(call_t *call, const hc_query_t *q)
{
    call->op = HC_MOP_CACHES;
    if (!method_is(call->req, "GET")) {
        send_method_not_allowed(call, "GET");
        return;
    }
    hc_buf_t b;
    hc_buf_init(&b);
    hc_buf_puts(&b, "{\"caches\":[");
    char v[8];
    int digest = hc_query_get(q, "digest", v, sizeof(v)) == 1 && strcmp(v, "1") == 0;
    hc_node_foreach_cache(call->http->node, digest, list_cache_cb, &b);
    uint64_t used, max;
    hc_node_memory(call->http->node, &used, &max);
    hc_buf_printf(&b, "],\"memory_bytes\":%" PRIu64 ",\"max_memory_bytes\":%" PRIu64 "}", used,
                  max);
    send_json(call, 200, &b);
    hc_buf_free(&b);
}

static void handle_status(call_t *call)
{
    call->op = HC_MOP_STATUS;
    if (!method_is(call->req, "GET")) {
        send_method_not_allowed(call, "GET");
        return;
    }
    struct hc_http *h = call->http;
    hc_node_status_t st;
    hc_node_status(h->node, &st);
    hc_buf_t b;
    hc_buf_init(&b);
    const char *name = hc_node_name(h->node);
    hc_buf_puts(&b, "{\"node\":");
    hc_buf_json_string(&b, name, strlen(name));
    hc_buf_printf(&b, ",\"version\":\"%s\",\"role\":\"%s\",\"term\":%" PRIu64 ",\"leader\":",
                  HC_VERSION_STRING, st.role, st.term);
    if (st.leader) {
        hc_buf_json_string(&b, st.leader, strlen(st.leader));
    } else {
        hc_buf_puts(&b, "null");
    }
    hc_buf_printf(&b,
                  ",\"quorum\":%s,\"ready\":%s,\"commit_index\":%" PRIu64
                  ",\"applied_index\":%" PRIu64 ",\"peers\":[",
                  st.quorum ? "true" : "false", st.ready ? "true" : "false", st.commit_index,
                  st.applied_index);
    for (size_t i = 0; i < st.n_peers; i++) {
        const hc_node_peer_status_t *p = &st.peers[i];
        hc_buf_puts(&b, i ? ",{\"node\":" : "{\"node\":");
        hc_buf_json_string(&b, p->node, strlen(p->node));
        hc_buf_printf(&b,
                      ",\"connected\":%s,\"last_contact_ms\":", p->connected ? "true" : "false");
        if (p->last_contact_ms >= 0) {
            hc_buf_printf(&b, "%" PRId64, p->last_contact_ms);
        } else {
            hc_buf_puts(&b, "null");
        }
        if (p->has_match) {
            hc_buf_printf(&b, ",\"match_index\":%" PRIu64, p->match_index);
        } else {
            hc_buf_puts(&b, ",\"match_index\":null");
        }
        hc_buf_printf(&b, ",\"protocol_version\":%u", (unsigned)p->protocol_version);
        if (p->has_clock) {
            hc_buf_printf(&b, ",\"clock_offset_ms\":%" PRId64 ",\"clock_rtt_ms\":%" PRIu64 "}",
                          p->clock_offset_ms, p->clock_rtt_ms);
        } else {
            hc_buf_puts(&b, ",\"clock_offset_ms\":null}");
        }
    }
    hc_buf_puts(&b, "],\"members\":[");
    for (size_t i = 0; i < st.n_members; i++) {
        hc_buf_puts(&b, i ? ",{\"node\":" : "{\"node\":");
        hc_buf_json_string(&b, st.members[i].node, strlen(st.members[i].node));
        hc_buf_printf(&b, ",\"role\":\"%s\"}", st.members[i].role);
    }
    hc_buf_printf(&b,
                  "],\"members_committed\":%s,\"tls\":", st.members_committed ? "true" : "false");
    if (h->creds != NULL) {
        hc_creds_status_json(h->creds, &b);
    } else {
        hc_http_tls_status_json(h->tls, &b);
    }
    uint64_t used, max;
    hc_node_memory(h->node, &used, &max);
    hc_buf_printf(&b, ",\"memory_bytes\":%" PRIu64 ",\"max_memory_bytes\":%" PRIu64 ",\"caches\":[",
                  used, max);
    hc_node_foreach_cache(h->node, 0, list_cache_cb, &b);
    hc_buf_puts(&b, "]}");
    send_json(call, 200, &b);
    hc_buf_free(&b);
}

static void handle_readyz(call_t *call)
{
    hc_node_status_t st;
    hc_node_status(call->http->node, &st);
    if (call->http->shutting_down) {
        st.ready = 0;
        st.not_ready_reason = "shutting_down";
    }
    if (st.ready) {
        static const char ok[] = "{\"ready\":true}";
        send_body(call, 200, "application/json", ok, sizeof(ok) - 1);
        return;
    }
    hc_buf_t b;
    hc_buf_init(&b);
    const char *reason = st.not_ready_reason ? st.not_ready_reason : "unavailable";
    hc_buf_puts(&b, "{\"ready\":false,\"reason\":");
    hc_buf_json_string(&b, reason, strlen(reason));
    hc_buf_puts(&b, ",\"error\":\"node is not ready\",\"code\":\"unavailable\"}");
    send_json(call, 503, &b);
    hc_buf_free(&b);
}

static void handle_metrics(call_t *call)
{
    hc_buf_t b;
    hc_buf_init(&b);
    hc_node_render_metrics(call->http->node, &b);
    hc_metrics_render_requests(call->http->metrics, &b);
    if (call->http->creds != NULL) {
        hc_creds_render_metrics(call->http->creds, &b);
    }
    const struct hc_http *api = call->http->health ? call->http->api : call->http;
    hc_buf_printf(&b,
                  "# HELP hacache_http_connections Open HTTP API connections.\n"
                  "# TYPE hacache_http_connections gauge\nhacache_http_connections %zu\n",
                  api != NULL ? api->nconns : 0);
    struct hc_peers *peers = hc_node_peers(call->http->node);
    const hc_admit_t *gates[HC_HTTP_MAX_GATES + 1];
    size_t n = call->http->n_gates;
    memcpy(gates, call->http->gates, n * sizeof(gates[0]));
    gates[n++] = peers != NULL ? hc_peers_admit(peers) : NULL;
    hc_admit_render_metrics(gates, n, &b);
    if (b.failed) {
        send_error(call, 500, "internal", "out of memory");
    } else {
        send_body(call, 200, "text/plain; version=0.0.4", b.data, b.len);
    }
    hc_buf_free(&b);
}

static void transfer_done(void *ud, int status, const hc_apply_result_t *res)
{
    call_t *call = ud;
    (void)res;
    call->pending = 0;
    call->nop = NULL;
    hc_node_status_t st;
    hc_node_status(call->http->node, &st);
    if (status == HC_EUNAVAILABLE) {
        char msg[320];
        snprintf(msg, sizeof(msg), "this node is not the leader (leader: %s)",
                 st.leader ? st.leader : "unknown");
        send_error(call, 409, "not_leader", msg);
        return;
    }
    if (status == HC_ENOTFOUND) {
        send_error(call, 400, "bad_request", "to is not a voter that is connected and caught up");
        return;
    }
    if (status == HC_EBUSY) {
        send_error(call, 409, "conflict", "a leadership transfer is already under way");
        return;
    }
    if (status != 0) {
        send_hc_error(call, status);
        return;
    }
    hc_buf_t b;
    hc_buf_init(&b);
    hc_buf_puts(&b, "{\"transferred\":true,\"leader\":");
    if (st.leader != NULL) {
        hc_buf_json_string(&b, st.leader, strlen(st.leader));
    } else {
        hc_buf_puts(&b, "null");
    }
    hc_buf_puts(&b, "}");
    send_json(call, 200, &b);
    hc_buf_free(&b);
}

static void member_done(void *ud, int status, const hc_apply_result_t *res)
{
    call_t *call = ud;
    (void)res;
    call->pending = 0;
    call->nop = NULL;
    switch (status) {
    case 0: {
        static const char body[] = "{\"changed\":true}";
        send_body(call, 200, "application/json", body, sizeof(body) - 1);
        break;
    }
    case HC_EUNAVAILABLE: {
        hc_node_status_t st;
        hc_node_status(call->http->node, &st);
        if (strcmp(st.role, "leader") == 0) {
            send_error(call, 503, "unavailable",
                       "the new configuration would not have a majority of caught-up, reachable "
                       "voters yet; retry");
        } else {
            send_error(call, 409, "not_leader", "membership changes are made on the leader");
        }
        break;
    }
    case HC_EINVAL:
        send_error(call, 400, "bad_request",
                   "add takes a node of the leader's HA_HOSTS that is not a member (HA_HOSTS is "
                   "the desired membership: a node it does not list is removed again)");
        break;
    case HC_ENOTFOUND:
        send_error(call, 404, "not_found", "no such member");
        break;
    case HC_EBUSY:
        send_error(call, 409, "conflict", "another membership change is pending, retry");
        break;
    default:
        send_hc_error(call, status);
        break;
    }
}

static void handle_admin(call_t *call, const char *what, size_t n, const hc_query_t *q)
{
    call->op = HC_MOP_ADMIN;
    if (!method_is(call->req, "POST")) {
        send_method_not_allowed(call, "POST");
        return;
    }
    int add = h2o_memis(what, n, H2O_STRLIT("members/add"));
    if (add || h2o_memis(what, n, H2O_STRLIT("members/remove"))) {
        char node[320] = "";
        if (hc_query_get(q, "node", node, sizeof(node)) != 1 || node[0] == '\0') {
            send_error(call, 400, "bad_request", "node=host:port is required");
            return;
        }
        call->pending = 1;
        hc_node_op_t *op = hc_node_member_change(call->http->node, add, node, member_done, call);
        if (call->pending) {
            call->nop = op;
        }
        return;
    }
    if (h2o_memis(what, n, H2O_STRLIT("leader/transfer"))) {
        hc_node_status_t st;
        hc_node_status(call->http->node, &st);
        if (strcmp(st.role, "standalone") == 0) {
            send_error(call, 409, "standalone",
                       "a standalone node has no peer to hand leadership to");
            return;
        }
        char to[320] = "";
        if (hc_query_get(q, "to", to, sizeof(to)) < 0) {
            send_error(call, 400, "bad_request", "to must be a node as host:port");
            return;
        }
        call->pending = 1;
        hc_node_op_t *op = hc_node_transfer(call->http->node, to, transfer_done, call);
        if (call->pending) {
            call->nop = op;
        }
    } else if (h2o_memis(what, n, H2O_STRLIT("tls/reload")) && call->http->creds != NULL) {
        /* every credential set (peer TLS, HTTP TLS, peer and API tokens), like SIGHUP */
        hc_buf_t b;
        hc_buf_init(&b);
        char err[512];
        hc_buf_puts(&b, "{\"reloaded\":");
        hc_buf_t sets;
        hc_buf_init(&sets);
        int rv = hc_creds_reload(call->http->creds, "admin call", &sets, err, sizeof(err));
        if (rv == 0 || rv == HC_ENOTFOUND) {
            hc_buf_puts(&b, rv == 0 ? "true,\"sets\":"
                                    : "false,\"reason\":\"no credentials "
                                      "configured\",\"sets\":");
            hc_buf_append(&b, sets.data, sets.len);
            hc_buf_puts(&b, "}");
            send_json(call, 200, &b);
        } else {
            char msg[700];
            snprintf(msg, sizeof(msg), "new credentials rejected, the old ones stay: %s", err);
            send_error(call, 400, "tls_reload_failed", msg);
        }
        hc_buf_free(&sets);
        hc_buf_free(&b);
    } else if (h2o_memis(what, n, H2O_STRLIT("tls/reload"))) {
        int rv = call->http->tls != NULL ? hc_http_tls_reload(call->http->tls) : HC_ENOTFOUND;
        if (rv == HC_ENOTFOUND) {
            static const char body[] = "{\"reloaded\":false,\"reason\":\"no TLS configured\"}";
            send_body(call, 200, "application/json", body, sizeof(body) - 1);
        } else if (rv != 0) {
            send_error(call, 400, "tls_reload_failed",
                       "new TLS material rejected; the old one stays (see the log)");
        } else {
            static const char body[] = "{\"reloaded\":true}";
            send_body(call, 200, "application/json", body, sizeof(body) - 1);
        }
    } else {
        send_error(call, 404, "not_found", "no such admin endpoint");
    }
}

/* Admits the connection of req when this is its first complete request. 1: admitted (or not
 * ours to tell); 0: no room, or the connection was already closed by a limit. */
static int admit_request(struct hc_http *h, h2o_req_t *req)
{
    h2o_socket_t *sock = NULL;
    if (req->conn->callbacks->get_socket != NULL) {
        sock = req->conn->callbacks->get_socket(req->conn);
    }
    conn_t *c = sock != NULL ? sock->on_close.data : NULL;
    if (c == NULL || c->adm.state == HC_ADMIT_ADMITTED) {
        return 1;
    }
    return c->adm.state == HC_ADMIT_PENDING &&
           hc_admit_admit(h->admit, &c->adm, uv_now(h->loop)) == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct hc_http *h = ((api_handler_t *)self)->http;
    call_t *call = h2o_mem_alloc_shared(&req->pool, sizeof(*call), call_dispose);
    call->nop = NULL;
    call->pending = 0;
    call->http = h;
    call->req = req;
    call->op = HC_MOP_OTHER;
    call->ack = HC_MACK_NA;
    call->start_ns = hc_mono_ns();
    if (h->shutting_down) {
        /* let HTTP/1.1 clients know this connection goes away after the answer */
        req->http1_is_persistent = 0;
    }

    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;
    hc_query_t q = {.base = "", .len = 0};
    if (req->query_at != SIZE_MAX) {
        q.base = req->path.base + req->query_at + 1;
        q.len = req->path.len - req->query_at - 1;
    }
    int is_probe = h2o_memis(path, plen, H2O_STRLIT("/healthz")) ||
                   h2o_memis(path, plen, H2O_STRLIT("/readyz"));
    int is_metrics = h2o_memis(path, plen, H2O_STRLIT("/metrics"));
    if (!admit_request(h, req)) {
        /* over the limit: probes are answered (on the health listener everything is), the rest
         * refused; either way the connection closes after this answer (HTTP/1.1; HTTP/2 ones
         * stay pending until their deadline) */
        req->http1_is_persistent = 0;
        if (!h->health && !is_probe) {
            hc_admit_refuse(h->admit, HC_ADMIT_MAX_CLIENTS, uv_now(h->loop));
            send_error(call, 503, "max_clients", "max number of clients reached");
            return 0;
        }
    }

    int is_get = method_is(req, "GET") || method_is(req, "HEAD");
    if (!is_get && (is_probe || is_metrics)) {
        send_method_not_allowed(call, "GET, HEAD");
        return 0;
    }
    if (h2o_memis(path, plen, H2O_STRLIT("/healthz"))) {
        static const char ok[] = "{\"status\":\"ok\"}";
        send_body(call, 200, "application/json", ok, sizeof(ok) - 1);
        return 0;
    }
    if (h2o_memis(path, plen, H2O_STRLIT("/readyz"))) {
        handle_readyz(call);
        return 0;
    }
    if (h->health) {
        /* no token here: the health listener serves nothing else */
        if (is_metrics) {
            handle_metrics(call);
        } else {
            send_error(call, 404, "not_found",
                       "the health listener serves /healthz, /readyz and /metrics only");
        }
        return 0;
    }
    if (!token_ok(h, req)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer"));
        send_error(call, 401, "unauthorized", "missing or wrong bearer token");
        return 0;
    }
    if (is_metrics) {
        handle_metrics(call);
        return 0;
    }
    if (h2o_memis(path, plen, H2O_STRLIT("/v1/status"))) {
        handle_status(call);
        return 0;
    }
    if (h2o_memis(path, plen, H2O_STRLIT("/v1/caches")) ||
        h2o_memis(path, plen, H2O_STRLIT("/v1/caches/"))) {
        handle_caches(call, &q);
        return 0;
    }
    static const char caches_prefix[] = "/v1/caches/";
    static const char admin_prefix[] = "/v1/admin/";
    if (plen > sizeof(caches_prefix) - 1 &&
        memcmp(path, caches_prefix, sizeof(caches_prefix) - 1) == 0) {
        const char *cache = path + sizeof(caches_prefix) - 1;
        size_t rest = plen - (sizeof(caches_prefix) - 1);
        const char *slash = memchr(cache, '/', rest);
        if (slash == NULL) {
            handle_clear(call, cache, rest, &q);
        } else {
            size_t cache_len = (size_t)(slash - cache);
            handle_entry(call, cache, cache_len, slash + 1, rest - cache_len - 1, &q);
        }
        return 0;
    }
    if (plen > sizeof(admin_prefix) - 1 &&
        memcmp(path, admin_prefix, sizeof(admin_prefix) - 1) == 0) {
        handle_admin(call, path + sizeof(admin_prefix) - 1, plen - (sizeof(admin_prefix) - 1), &q);
        return 0;
    }
    send_error(call, 404, "not_found", "no such endpoint");
    return 0;
}

void hc_http_drop_creds(hc_http_t *h)
{
    h->creds = NULL;
}

/* ---- connections ---- */

/* Makes h2o close c: it sees the end of the stream (or a failed write) and closes the socket. */
static void force_close(conn_t *c)
{
    uv_os_fd_t fd;
    if (!uv_is_closing((uv_handle_t *)&c->tcp) && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        shutdown(fd, SHUT_RDWR);
    }
}

static conn_t *conn_of_admit(hc_admit_conn_t *a)
{
    return (conn_t *)(void *)((char *)a - offsetof(conn_t, adm));
}

/* A pending connection timed out (no complete request in time). */
static void on_admit_expired(void *ud, hc_admit_conn_t *a)
{
    struct hc_http *h = ud;
    hc_admit_timed_out(h->admit, a, uv_now(h->loop));
    force_close(conn_of_admit(a));
}

static void on_conn_closed(uv_handle_t *handle)
{
    conn_t *c = (conn_t *)handle;
    hc_admit_release(c->http->admit, &c->adm);
    if (c->prev) {
        c->prev->next = c->next;
    } else if (c->http->conns == c) {
        c->http->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->http->nconns--;
    SSL_CTX_free(c->ssl_ctx); /* NULL: no-op */
    free(c);
}

/* Drain step: a connection with no unread input is between requests (or writing a response,
 * or mid TLS handshake). Shutting down its read side makes h2o see end-of-stream: an idle
 * HTTP/1.1 keep-alive connection closes at once, a response being written still completes
 * (h2o closes after the write), and an HTTP/2 connection that already got GOAWAY closes
 * instead of waiting for its grace timer. A connection holding part of a request keeps its
 * read side until the request is complete; its answer then carries "Connection: close".
 * h2o 2.2.5 offers no shutdown hook for HTTP/1.1, hence this. */
static void shut_idle_reads(struct hc_http *h)
{
    for (conn_t *c = h->conns; c != NULL; c = c->next) {
        /* a closing connection has already released its input buffer */
        if (c->read_shut || c->sock == NULL || uv_is_closing((uv_handle_t *)&c->tcp) ||
            c->sock->input == NULL || c->sock->input->size != 0) {
            continue;
        }
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            shutdown(fd, SHUT_RD);
        }
        c->read_shut = 1;
    }
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct hc_http *h = listener->data;
    if (status != 0) {
        hc_log(HC_LOG_WARN, "http accept failed", HC_LS("error", uv_strerror(status)));
        return;
    }
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->http = h;
    c->next = h->conns;
    if (h->conns) {
        h->conns->prev = c;
    }
    h->conns = c;
    uv_tcp_init(h->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        h->nconns++;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    h->nconns++;
    /* the context of the moment: a credential reload swaps it for later connections */
    h->accept_ctx.ssl_ctx = h->tls != NULL ? hc_http_tls_ctx(h->tls) : NULL;
    if (h->accept_ctx.ssl_ctx != NULL && SSL_CTX_up_ref(h->accept_ctx.ssl_ctx) == 1) {
        c->ssl_ctx = h->accept_ctx.ssl_ctx;
    }
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    c->sock->on_close.data = c; /* unused by h2o on server sockets: how on_req finds c */
    hc_admit_conn_t *evicted = hc_admit_add_pending(h->admit, &c->adm, uv_now(h->loop));
    if (evicted != NULL) {
        force_close(conn_of_admit(evicted));
    }
    hc_admit_timer_arm(&h->admit_timer);
    h2o_accept(&h->accept_ctx, c->sock);
}

int hc_http_start(uv_loop_t *loop, const hc_http_opts_t *o, hc_http_t **out)
{
    *out = NULL;
    struct hc_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return HC_ENOMEM;
    }
    const hc_config_t *cfg = o->cfg;
    h->loop = loop;
    h->cfg = cfg;
    h->node = o->node;
    h->auth = o->auth;
    h->tls = o->tls;
    h->metrics = o->metrics;
    h->creds = o->creds;
    h->admit = o->admit;
    h->n_gates = o->n_gates < HC_HTTP_MAX_GATES ? o->n_gates : HC_HTTP_MAX_GATES;
    memcpy(h->gates, o->gates, h->n_gates * sizeof(h->gates[0]));
    h->health = o->health;
    h->api = o->api;
    h->addr = o->health ? cfg->health_addr : cfg->http_addr;
    h->addr_var = o->health ? "CACHE_HEALTH_ADDR" : "CACHE_HTTP_ADDR";
    if (h->health) {
        h->tls = NULL; /* plain HTTP for the kubelet and Prometheus, whatever the API does */
    }
    hc_admit_timer_init(&h->admit_timer, loop, h->admit, on_admit_expired, h);
    h->admit_timer_open = 1;

    h2o_config_init(&h->config);
    h->config.server_name = h2o_iovec_init(H2O_STRLIT("hacache"));
    /* Bodies above the value limit are refused by h2o (413) before they are buffered. */
    h->config.max_request_entity_size = h->health ? 1024 : cfg->max_value_size;
    /* Slow clients: h2o 2.2.5 closes an HTTP/1.1 connection whose request (headers and body)
     * is not complete this long after it started waiting for it (which includes an idle
     * keep-alive wait), an HTTP/2 one idle this long without an open stream, and a TLS
     * handshake not done in time. */
    h->config.http1.req_timeout = cfg->unauth_timeout_ms;
    h->config.http2.idle_timeout = cfg->unauth_timeout_ms;
    h->config.handshake_timeout = cfg->unauth_timeout_ms;
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    api_handler_t *handler = (api_handler_t *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->http = h;
    handler->super.on_req = on_req;

    int rv = 0;
    h2o_context_init(&h->ctx, loop, &h->config);
    h->ctx_inited = 1;
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;

    struct sockaddr_storage ss;
    char what[64];
    if (hc_resolve_listen(h->addr, &ss) != 0) {
        snprintf(what, sizeof(what), "cannot resolve %s", h->addr_var);
        hc_log(HC_LOG_ERROR, what, HC_LS("addr", h->addr));
        rv = HC_EINVAL;
        goto fail_ctx;
    }
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listener_open = 1;
    int uvrv = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (uvrv == 0) {
        uvrv = uv_listen((uv_stream_t *)&h->listener, 511, on_accept);
    }
    if (uvrv != 0) {
        snprintf(what, sizeof(what), "cannot listen on %s", h->addr_var);
        hc_log(HC_LOG_ERROR, what, HC_LS("addr", h->addr), HC_LS("error", uv_strerror(uvrv)));
        rv = HC_EUNAVAILABLE;
        goto fail_ctx;
    }
    if (h->health) {
        hc_log(HC_LOG_INFO, "health listener listening (/healthz, /readyz, /metrics; no token)",
               HC_LS("addr", h->addr));
        *out = h;
        return 0;
    }
    hc_log(HC_LOG_INFO, "http api listening", HC_LS("addr", h->addr),
           HC_LS("tls", h->tls != NULL && hc_http_tls_ctx(h->tls) != NULL ? "on" : "off"),
           HC_LB("auth", hc_auth_required(h->auth)));
    *out = h;
    return 0;

fail_ctx:
    /* The caller closes the loop's handles: leave h so hc_http_close/free clean up. */
    *out = h;
    return rv;
}

static size_t drain_count(void *owner)
{
    return ((struct hc_http *)owner)->nconns;
}

static void drain_poll(void *owner)
{
    shut_idle_reads(owner); /* connections whose request just completed */
}

static void on_listener_closed(uv_handle_t *handle)
{
    (void)handle;
}

void hc_http_shutdown(hc_http_t *h, uint64_t timeout_ms, void (*cb)(void *ud), void *ud)
{
    h->shutting_down = 1;
    if (h->listener_open) {
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        h->listener_open = 0;
    }
    if (h->ctx_inited) {
        /* HTTP/2: GOAWAY, streams in flight finish. */
        h2o_context_request_shutdown(&h->ctx);
    }
    shut_idle_reads(h);
    h->drain.name = h->health ? "health" : "http";
    h->drain.owner = h;
    h->drain.count = drain_count;
    h->drain.poll = drain_poll;
    h->drain.on_expiry = "abandoning";
    hc_drain_start(&h->drain, h->loop, timeout_ms, cb, ud);
}

void hc_http_close(hc_http_t *h)
{
    if (h == NULL) {
        return;
    }
    if (h->listener_open) {
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        h->listener_open = 0;
    }
    hc_drain_close(&h->drain);
    if (h->admit_timer_open) {
        hc_admit_timer_close(&h->admit_timer);
        h->admit_timer_open = 0;
    }
    if (h->ctx_inited && h->nconns == 0) {
        /* request_shutdown armed HTTP/2's forced-close timer even with no HTTP/2 connection */
        if (h2o_timeout_is_linked(&h->ctx.http2._graceful_shutdown_timeout)) {
            h2o_timeout_unlink(&h->ctx.http2._graceful_shutdown_timeout);
        }
        h2o_context_dispose(&h->ctx);
        h->ctx_inited = 0;
    }
}

void hc_http_free(hc_http_t *h)
{
    if (h == NULL) {
        return;
    }
    if (h->nconns == 0) {
        /* with live (abandoned) connections the config is still referenced: leave it to exit */
        h2o_config_dispose(&h->config);
        free(h);
    }
}

size_t hc_http_open_connections(const hc_http_t *h)
{
    return h->nconns;
}

/* h2o 2.2.5 keeps recycled memory per thread: socket buffers in h2o_socket_buffer_prototype's
 * bin, memory-pool chunks in a bin private to libh2o (at most 16 of 4 KiB). A thread that ends
 * would leak both. The first bin is emptied directly; the second through a pool that takes every
 * chunk it holds (4 allocations of 1000 bytes fill one chunk, 17 chunks outnumber the bin) and
 * whose chunks are then freed here rather than returned to the bin. That walk relies on a pool
 * chunk starting with its `next` link (lib/common/memory.c of h2o 2.2.5); the ASan build of the
 * embedded node's tests would report a leak or a bad free if it stopped holding. */
void hc_http_thread_cleanup(void)
{
    h2o_mem_recycle_t *bin = &h2o_socket_buffer_prototype.allocator;
    while (bin->cnt > 0) {
        free(h2o_mem_alloc_recycle(bin, 0));
    }
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    for (int i = 0; i < 17 * 4; i++) {
        (void)h2o_mem_alloc_pool(&pool, 1000);
    }
    while (pool.chunks != NULL) {
        void *chunk = pool.chunks;
        pool.chunks = *(struct st_h2o_mem_pool_chunk_t **)chunk;
        free(chunk);
    }
    h2o_mem_clear_pool(&pool);
}
