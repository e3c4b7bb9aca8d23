/* client.c: the synchronous remote client of libhacache (see hacache.h): one libcurl easy handle
 * per client (keep-alive connections and TLS sessions kept across calls), one deadline per call,
 * a sticky node with failover (endpoints.c), idempotent write retries (request ids), https with a
 * CA bundle re-read on change (cafile.c), and the bounded local stale copy (fallback.c: the
 * rules shared with the asynchronous client, over stale.c). */
#include "hacache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "fallback.h"
#include "json_scan.h"
#include "settings.h"
#include "transport.h"
#include "wire.h"

struct hc_client {
    pthread_mutex_t mu;
    hcc_settings_t set; /* endpoints, token, deadline, TLS */
    CURL *easy;
    hc_consistency_t consistency; /* of hc_get and hc_get_ex without one */
    hcc_fallback_t stale;         /* the stale copy, its limits and when it is served */
    char last_error[512];         /* what went wrong last, for hc_client_last_error */
};

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- client lifecycle ---- */

int hc_client_new(const hc_client_opts_t *opts, hc_client_t **out)
{
    *out = NULL;
    hc_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    int rv = hcc_settings_init(&c->set, opts);
    if (rv != 0) {
        free(c);
        return rv;
    }
    hcc_fallback_init(&c->stale, opts->max_stale_ms);
    if ((c->easy = curl_easy_init()) == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        if (c->easy) {
            curl_easy_cleanup(c->easy);
        }
        hcc_settings_free(&c->set);
        free(c);
        return HC_ENOMEM;
    }
    *out = c;
    return 0;
}

void hc_client_free(hc_client_t *c)
{
    if (c == NULL) {
        return;
    }
    curl_easy_cleanup(c->easy);
    hcc_fallback_free(&c->stale);
    hcc_settings_free(&c->set);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void hc_client_set_stale_on_invalidated(hc_client_t *c, int on)
{
    if (c != NULL) {
        pthread_mutex_lock(&c->mu);
        c->stale.on_invalidated = on != 0;
        pthread_mutex_unlock(&c->mu);
    }
}

int hc_client_set_tls(hc_client_t *c, const hc_client_tls_t *tls)
{
    if (c == NULL) {
        return HC_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    int rv = hcc_settings_set_tls(&c->set, tls, c->last_error, sizeof(c->last_error));
    pthread_mutex_unlock(&c->mu);
    return rv;
}

int hc_client_set_token_file(hc_client_t *c, const char *path)
{
    if (c == NULL) {
        return HC_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    int rv = hcc_settings_set_token_file(&c->set, path, c->last_error, sizeof(c->last_error));
    pthread_mutex_unlock(&c->mu);
    return rv;
}

int hc_client_last_error(hc_client_t *c, char *buf, size_t len)
{
    if (c == NULL || buf == NULL || len == 0) {
        return HC_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    snprintf(buf, len, "%s", c->last_error);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* hc_value_free: server/value.c (shared with libhacache_node) */

/* ---- requests with failover ---- */

/* Runs method path (with body) against the nodes until an answer that is not retryable or the
 * deadline. rid: the write's request id, or NULL for a read. Returns 0 with *ans (the caller
 * resets it), or an error of hcc_call_error (HC_EUNKNOWN_OUTCOME, HC_ETLS, HC_EUNAVAILABLE or,
 * when the last 503 said so, HC_ESHUTDOWN / HC_EBUSY, HC_ETIMEDOUT), HC_EINTERNAL (an answer that
 * cannot be parsed) or HC_ENOMEM. *invalidated (may be NULL) is set when some node answered that
 * it invalidated after a quorum loss. c->last_error tells what went wrong. Called with c->mu
 * held. */
static int request(hc_client_t *c, const char *method, const char *path, const void *body,
                   size_t blen, const char *rid, hcc_answer_t *ans, int *invalidated)
{
    memset(ans, 0, sizeof(*ans));
    if (invalidated != NULL) {
        *invalidated = 0;
    }
    c->last_error[0] = '\0';
    hcc_settings_refresh(&c->set, c->last_error, sizeof(c->last_error)); /* CA and token files */
    hcc_tls_t tls;
    hcc_settings_tls(&c->set, &tls);
    hcc_endpoints_t *eps = &c->set.eps;
    hcc_call_t k;
    hcc_call_begin(&k, rid != NULL, c->set.timeout_ms, hcc_now_ms());
    hcc_endpoints_begin(eps);
    int rv = 0;
    for (;;) {
        uint64_t wait = hcc_endpoints_choose(eps, hcc_now_ms());
        uint32_t left = hcc_call_left(&k, hcc_now_ms());
        if (wait > 0) {
            sleep_ms(wait < left ? wait : left);
        }
        if (hcc_call_left(&k, hcc_now_ms()) == 0) {
            rv = hcc_call_error(&k);
            break;
        }
        hcc_xfer_req_t req = {.ep = &eps->ep[eps->cur],
                              .tls = &tls,
                              .method = method,
                              .path = path,
                              .auth_line = c->set.auth_line,
                              .rid = rid,
                              .body = body,
                              .blen = blen,
                              .timeout_ms = hcc_call_budget(&k, hcc_now_ms())};
        hcc_xfer_t x;
        if (hcc_xfer_prepare(&x, c->easy, &req) != 0) {
            hcc_xfer_cleanup(&x);
            rv = k.maybe_applied ? HC_EUNKNOWN_OUTCOME : HC_ENOMEM;
            break;
        }
        CURLcode rc = curl_easy_perform(c->easy);
        hcc_xfer_outcome_t o = hcc_xfer_done(&x, c->easy, rc);
        uint64_t pause = 0;
        hcc_call_step_t step = hcc_call_after(&k, eps, &x, rc, o, hcc_now_ms(), &pause, &rv);
        if (step == HCC_CALL_FINAL) {
            *ans = x.answer;
            memset(&x.answer, 0, sizeof(x.answer));
        }
        hcc_xfer_cleanup(&x);
        if (step != HCC_CALL_RETRY) {
            break;
        }
        if (pause > 0) {
            left = hcc_call_left(&k, hcc_now_ms());
            sleep_ms(pause < left ? pause : left);
        }
    }
    if (k.last_error[0]) {
        snprintf(c->last_error, sizeof(c->last_error), "%s", k.last_error);
    }
    if (invalidated != NULL) {
        *invalidated = k.invalidated;
    }
    return rv;
}

/* ---- calls ---- */

/* A write: key path + suffix (the query included; key NULL: the whole cache), with a fresh
 * request id. Whatever it may have changed (touches) is dropped from the stale copy before the
 * call returns. On 0, *ans holds the answer (the caller resets it). */
static int write_call(hc_client_t *c, const char *method, const char *cache, const void *key,
                      size_t klen, const char *suffix, const void *body, size_t blen,
                      hcc_touches_t touches, hcc_answer_t *ans)
{
    memset(ans, 0, sizeof(*ans));
    if (c == NULL || !hcc_cache_name_ok(cache) || (key == NULL && klen > 0)) {
        return HC_EINVAL;
    }
    char rid[33];
    int rv = hcc_new_rid(rid);
    if (rv != 0) {
        return rv;
    }
    char *path = hcc_key_path(cache, key, klen, suffix);
    if (path == NULL) {
        return HC_ENOMEM;
    }
    pthread_mutex_lock(&c->mu);
    rv = request(c, method, path, body, blen, rid, ans, NULL);
    if (rv == 0 && (rv = hcc_answer_err(ans)) != 0) {
        hcc_answer_reset(ans);
    }
    hcc_fallback_after_write(&c->stale, touches, cache, key, klen, rv);
    pthread_mutex_unlock(&c->mu);
    free(path);
    return rv;
}

int hc_put_ex(hc_client_t *c, const char *cache, const void *key, size_t klen, const void *val,
              size_t vlen, const hc_put_opts_t *opts, uint64_t *version)
{
    if (version != NULL) {
        *version = 0;
    }
    char q[160];
    if (klen == 0 || key == NULL || (val == NULL && vlen > 0) ||
        hcc_put_query(opts, q, sizeof(q)) != 0) {
        return HC_EINVAL;
    }
    hcc_answer_t a;
    int rv = write_call(c, "PUT", cache, key, klen, q, val, vlen, HCC_TOUCHES_KEY, &a);
    if (rv == 0 && version != NULL) {
        *version = hcc_answer_version(&a);
    }
    hcc_answer_reset(&a);
    return rv;
}

int hc_put(hc_client_t *c, const char *cache, const void *key, size_t klen, const void *val,
           size_t vlen, hc_ack_t ack, uint64_t ttl_ms)
{
    hc_put_opts_t o = {.ack = ack, .ttl_ms = ttl_ms};
    return hc_put_ex(c, cache, key, klen, val, vlen, &o, NULL);
}

int hc_del_ex(hc_client_t *c, const char *cache, const void *key, size_t klen,
              const hc_del_opts_t *opts)
{
    char q[80];
    if (klen == 0 || key == NULL || hcc_del_query(opts, q, sizeof(q)) != 0) {
        return HC_EINVAL;
    }
    hcc_answer_t a;
    int rv = write_call(c, "DELETE", cache, key, klen, q, NULL, 0, HCC_TOUCHES_KEY, &a);
    hcc_answer_reset(&a);
    return rv;
}

int hc_del(hc_client_t *c, const char *cache, const void *key, size_t klen, hc_ack_t ack)
{
    hc_del_opts_t o = {.ack = ack};
    return hc_del_ex(c, cache, key, klen, &o);
}

int hc_incr(hc_client_t *c, const char *cache, const void *key, size_t klen, int64_t by,
            hc_ack_t ack, int64_t *value)
{
    if (value != NULL) {
        *value = 0;
    }
    if (klen == 0 || key == NULL || !hcc_ack_ok(ack)) {
        return HC_EINVAL;
    }
    char q[80];
    snprintf(q, sizeof(q), "/incr?by=%lld&ack=%s", (long long)by, hcc_ack_name(ack));
    hcc_answer_t a;
    int rv = write_call(c, "POST", cache, key, klen, q, NULL, 0, HCC_TOUCHES_KEY, &a);
    if (rv == 0 && value != NULL) {
        *value = hcc_answer_incr_value(&a); /* 0: not known (ack other than quorum) */
    }
    hcc_answer_reset(&a);
    return rv;
}

int hc_clear(hc_client_t *c, const char *cache, hc_ack_t ack)
{
    if (!hcc_ack_ok(ack)) {
        return HC_EINVAL;
    }
    char q[32];
    snprintf(q, sizeof(q), "?ack=%s", hcc_ack_name(ack));
    hcc_answer_t a;
    int rv = write_call(c, "DELETE", cache, NULL, 0, q, NULL, 0, HCC_TOUCHES_CACHE, &a);
    hcc_answer_reset(&a);
    return rv;
}

int hc_cache_configure(hc_client_t *c, const char *cache, const hc_cache_settings_t *settings)
{
    if (settings == NULL ||
        (settings->policy != HC_POLICY_INVALIDATE && settings->policy != HC_POLICY_SERVE_STALE)) {
        return HC_EINVAL;
    }
    char q[200];
    snprintf(q, sizeof(q),
             "?ack=quorum&max_memory=%llu&default_ttl_ms=%llu&policy=%s&max_stale_ms=%llu",
             (unsigned long long)settings->max_memory, (unsigned long long)settings->default_ttl_ms,
             settings->policy == HC_POLICY_SERVE_STALE ? "serve_stale" : "invalidate",
             (unsigned long long)settings->max_stale_ms);
    hcc_answer_t a;
    int rv = write_call(c, "PUT", cache, NULL, 0, q, NULL, 0, HCC_TOUCHES_NOTHING, &a);
    hcc_answer_reset(&a);
    return rv;
}

int hc_cache_info(hc_client_t *c, const char *cache, hc_cache_info_t *out)
{
    if (out == NULL) {
        return HC_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (c == NULL || !hcc_cache_name_ok(cache)) {
        return HC_EINVAL;
    }
    hcc_answer_t a;
    pthread_mutex_lock(&c->mu);
    int rv = request(c, "GET", "/v1/caches", NULL, 0, NULL, &a, NULL);
    pthread_mutex_unlock(&c->mu);
    if (rv == 0 && (rv = hcc_answer_err(&a)) == 0) {
        rv = hcc_parse_cache_info(a.body, a.body_len, cache, out);
    }
    hcc_answer_reset(&a);
    return rv;
}

int hc_request(hc_client_t *c, const char *method, const char *path, const void *body, size_t blen,
               int *status, char **resp, size_t *rlen)
{
    if (resp != NULL) {
        *resp = NULL;
    }
    if (c == NULL || method == NULL || path == NULL || path[0] != '/' || status == NULL ||
        resp == NULL || rlen == NULL || strpbrk(method, " \r\n") != NULL ||
        strpbrk(path, " \r\n") != NULL || (body == NULL && blen > 0)) {
        return HC_EINVAL;
    }
    char rid[33];
    int write = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    if (write && hcc_new_rid(rid) != 0) {
        return HC_EINTERNAL;
    }
    hcc_answer_t a;
    pthread_mutex_lock(&c->mu);
    int rv = request(c, method, path, body, blen, write ? rid : NULL, &a, NULL);
    if (write) { /* refused for sure: a 4xx whose code says so (400, 401, 409, 413...) */
        hcc_fallback_after_write(&c->stale, HCC_TOUCHES_ALL, NULL, NULL, 0,
                                 rv == 0 ? hcc_answer_err(&a) : rv);
    }
    pthread_mutex_unlock(&c->mu);
    if (rv != 0) {
        return rv;
    }
    *status = a.status;
    *resp = a.body;
    *rlen = a.body_len;
    return 0;
}

int hc_client_set_consistency(hc_client_t *c, hc_consistency_t level)
{
    if (c == NULL || !hcc_consistency_ok(level)) {
        return HC_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    c->consistency = level;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int hc_client_set_cache_stale(hc_client_t *c, const char *cache, uint32_t max_stale_ms)
{
    if (c == NULL) {
        return HC_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    int rv = hcc_fallback_set_cache_limit(&c->stale, cache, max_stale_ms);
    pthread_mutex_unlock(&c->mu);
    return rv;
}

int hc_get_ex(hc_client_t *c, const char *cache, const void *key, size_t klen,
              const hc_read_opts_t *opts, hc_value_t *out, hc_meta_t *meta)
{
    if (meta != NULL) {
        memset(meta, 0, sizeof(*meta));
    }
    if (out == NULL) {
        return HC_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (c == NULL || !hcc_cache_name_ok(cache) || key == NULL || klen == 0 ||
        (opts != NULL && opts->has_consistency && !hcc_consistency_ok(opts->consistency))) {
        return HC_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    hc_consistency_t cons =
        opts != NULL && opts->has_consistency ? opts->consistency : c->consistency;
    char q[32];
    hcc_read_query(cons, q, sizeof(q));
    char *path = hcc_key_path(cache, key, klen, q);
    if (path == NULL) {
        pthread_mutex_unlock(&c->mu);
        return HC_ENOMEM;
    }
    hcc_answer_t a;
    hcc_read_end_t end = {.a = &a, .no_stale = opts != NULL && opts->no_stale};
    end.rv = request(c, "GET", path, NULL, 0, NULL, &a, &end.invalidated);
    free(path);
    /* calls are serialised: no write of this client overlaps the read */
    int rv = hcc_fallback_after_read(&c->stale, cache, key, klen, &end, hcc_now_ms(), out, meta);
    hcc_answer_reset(&a);
    pthread_mutex_unlock(&c->mu);
    return rv;
}

int hc_get(hc_client_t *c, const char *cache, const void *key, size_t klen, hc_value_t *out)
{
    return hc_get_ex(c, cache, key, klen, NULL, out, NULL);
}
