/* test_client_parts.c: the pieces of libhacache's client that need no server: endpoint lists and
 * the choice of a node (random start, backoff, failover, rounds), the stale copy's bounds,
 * forgetting, metadata, expiry and per-cache limits, the rules both clients follow to remember,
 * forget and serve it (fallback.c), what answers mean (headers, every error
 * code the server sends, the JSON reader, /v1/caches), and CA bundle files (validation, reload,
 * a bad update keeping the old bundle). */
#include "test.h"

#include <unistd.h>

#include "cafile.h"
#include "certs.h"
#include "endpoints.h"
#include "fallback.h"
#include "hacache.h"
#include "json_scan.h"
#include "stale.h"
#include "util.h"
#include "wire.h"

static void test_endpoints_parse(void)
{
    hcc_endpoints_t e;
    REQUIRE(hcc_endpoints_init(&e, " http://a:1 , https://[::1]:8443/,b:65535") == 0);
    CHECK_EQ_INT(e.n, 3);
    CHECK_EQ_STR(e.ep[0].host, "a");
    CHECK_EQ_INT(e.ep[0].tls, 0);
    CHECK_EQ_STR(e.ep[1].host, "::1");
    CHECK_EQ_STR(e.ep[1].port, "8443");
    CHECK_EQ_INT(e.ep[1].tls, 1);
    CHECK_EQ_STR(e.ep[2].port, "65535");
    CHECK(e.cur < 3);
    hcc_endpoints_free(&e);
    const char *bad[] = {"",         ",",   "http://a",     "a:0",          "a:65536",
                         "a:1x",     ":80", "http://a b:1", "http://u@a:1", "a:1/path",
                         "ftp://a:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hcc_endpoints_init(&e, bad[i]) != HC_EINVAL) {
            fprintf(stderr, "  accepted %s\n", bad[i]);
            hc_test_failures_++;
            hcc_endpoints_free(&e);
        }
    }
}

/* Many clients start at random endpoints: every one of 3 gets a fair share. */
static void test_endpoints_random_start(void)
{
    size_t count[3] = {0};
    for (int i = 0; i < 3000; i++) {
        hcc_endpoints_t e;
        REQUIRE(hcc_endpoints_init(&e, "a:1,b:2,c:3") == 0);
        count[e.cur]++;
        hcc_endpoints_free(&e);
    }
    for (int i = 0; i < 3; i++) {
        CHECK(count[i] > 800 && count[i] < 1200);
    }
}

/* Sticky while up; a failure backs the node off (doubling, capped) and moves to another; when
 * every node was tried the round ends with a pause; when all back off, the soonest is waited
 * for. */
static void test_endpoints_failover(void)
{
    hcc_endpoints_t e;
    REQUIRE(hcc_endpoints_init(&e, "a:1,b:2,c:3") == 0);
    uint64_t now = 1000000;
    hcc_endpoints_begin(&e);
    size_t first = e.cur;
    CHECK_EQ_INT(hcc_endpoints_choose(&e, now), 0);
    CHECK_EQ_INT(e.cur, first); /* sticky */
    CHECK_EQ_INT(hcc_endpoint_failed(&e, now), 0);
    CHECK(e.ep[first].down_until >= now + HCC_BACKOFF_MIN_MS / 2 &&
          e.ep[first].down_until <= now + HCC_BACKOFF_MIN_MS * 3 / 2);
    CHECK_EQ_INT(hcc_endpoints_choose(&e, now), 0);
    size_t second = e.cur;
    CHECK(second != first);
    CHECK_EQ_INT(hcc_endpoint_failed(&e, now), 0);
    CHECK_EQ_INT(hcc_endpoints_choose(&e, now), 0);
    size_t third = e.cur;
    CHECK(third != first && third != second);
    uint64_t pause = hcc_endpoint_failed(&e, now); /* the round is over */
    CHECK(pause >= HCC_ROUND_PAUSE_MS / 2 && pause <= HCC_ROUND_PAUSE_MS * 3 / 2);
    /* every node backs off: wait for the soonest */
    uint64_t wait = hcc_endpoints_choose(&e, now);
    CHECK(wait > 0 && wait <= HCC_BACKOFF_MIN_MS * 3 / 2);
    CHECK_EQ_INT(e.ep[e.cur].down_until, now + wait);
    /* failures in a row double the backoff up to the cap */
    for (int i = 0; i < 20; i++) {
        e.cur = first;
        hcc_endpoint_failed(&e, now);
    }
    CHECK_EQ_INT(e.ep[first].backoff_ms, HCC_BACKOFF_MAX_MS);
    hcc_endpoint_answered(&e, first);
    CHECK_EQ_INT(e.ep[first].backoff_ms, 0);
    CHECK_EQ_INT(e.ep[first].down_until, 0);
    hcc_endpoints_free(&e);
}

static void test_stale_bounds_and_forget(void)
{
    hcc_stale_t s;
    hcc_stale_init(&s, 3, 1 << 20);
    hcc_stale_remember(&s, "c", "k1", 2, "v1", 2, NULL, 100);
    hcc_stale_remember(&s, "c", "k2", 2, "v2", 2, NULL, 100);
    hcc_stale_remember(&s, "d", "k1", 2, "w1", 2, NULL, 100);
    hcc_stale_remember(&s, "c", "k3", 2, "v3", 2, NULL, 100); /* k1 of c, the oldest, leaves */
    CHECK_EQ_INT(s.n, 3);
    void *v = NULL;
    size_t vl = 0;
    CHECK_EQ_INT(hcc_stale_get(&s, "c", "k1", 2, 100, 10, &v, &vl, NULL), HC_ENOTFOUND);
    REQUIRE(hcc_stale_get(&s, "d", "k1", 2, 110, 10, &v, &vl, NULL) == 0);
    CHECK(vl == 2 && memcmp(v, "w1", 3) == 0);
    free(v);
    CHECK_EQ_INT(hcc_stale_get(&s, "d", "k1", 2, 111, 10, &v, &vl, NULL),
                 HC_ENOTFOUND); /* too old */
    hcc_stale_forget(&s, "c", "k2", 2);
    CHECK_EQ_INT(hcc_stale_get(&s, "c", "k2", 2, 100, 10, &v, &vl, NULL), HC_ENOTFOUND);
    hcc_stale_forget_cache(&s, "c");
    CHECK_EQ_INT(s.n, 1);
    CHECK_EQ_INT(hcc_stale_get(&s, "c", "k3", 2, 100, 10, &v, &vl, NULL), HC_ENOTFOUND);
    /* a value larger than the byte bound is not remembered */
    hcc_stale_t small;
    hcc_stale_init(&small, 10, 200);
    char big[300] = {0};
    hcc_stale_remember(&small, "c", "k", 1, big, sizeof(big), NULL, 1);
    CHECK_EQ_INT(small.n, 0);
    hcc_stale_clear(&s);
    CHECK_EQ_INT(s.n, 0);
    CHECK_EQ_INT(s.bytes, 0);
    hcc_stale_free(&small);
    hcc_stale_free(&s);
}

/* The copy keeps what the node said of the entry, and is never served past the TTL it had. */
static void test_stale_meta_and_expiry(void)
{
    hcc_stale_t s;
    hcc_stale_init(&s, 10, 1 << 20);
    hc_meta_t in = {.version = 7, .has_ttl = 1, .ttl_ms = 50}, m;
    hcc_stale_remember(&s, "c", "t", 1, "v", 1, &in, 1000);
    hc_meta_t forever = {.version = 8, .has_ttl = 1, .ttl_ms = UINT64_MAX};
    hcc_stale_remember(&s, "c", "f", 1, "w", 1, &forever, 1000);
    void *v = NULL;
    size_t vl = 0;
    REQUIRE(hcc_stale_get(&s, "c", "t", 1, 1020, 60000, &v, &vl, &m) == 0);
    free(v);
    CHECK(m.version == 7 && m.has_ttl == 1 && m.ttl_ms == 30);
    CHECK_EQ_INT(hcc_stale_get(&s, "c", "t", 1, 1050, 60000, &v, &vl, &m), HC_ENOTFOUND);
    REQUIRE(hcc_stale_get(&s, "c", "f", 1, 2000, 60000, &v, &vl, &m) == 0); /* no wrap */
    free(v);
    CHECK(m.version == 8 && m.has_ttl && m.ttl_ms > 1000000);
    hcc_stale_remember(&s, "c", "n", 1, "x", 1, NULL, 1000);
    REQUIRE(hcc_stale_get(&s, "c", "n", 1, 2000, 60000, &v, &vl, &m) == 0);
    free(v);
    CHECK(m.version == 0 && m.has_ttl == 0 && m.ttl_ms == 0);
    hcc_stale_free(&s);
}

/* Per-cache limits: an override wins over the client's max_stale_ms; 0 drops the cache's copies;
 * HC_CACHE_STALE_DEFAULT takes the override away. */
static void test_stale_cache_limits(void)
{
    hcc_stale_t s;
    hcc_stale_init(&s, 10, 1 << 20);
    hcc_stale_remember(&s, "sessions", "a", 1, "1", 1, NULL, 1);
    hcc_stale_remember(&s, "jwks", "a", 1, "2", 1, NULL, 1);
    CHECK(hcc_stale_limit(&s, "sessions", 60000) == 60000);
    REQUIRE(hcc_stale_set_limit(&s, "sessions", 0) == 0);
    REQUIRE(hcc_stale_set_limit(&s, "jwks", 5) == 0);
    REQUIRE(hcc_stale_set_limit(&s, "other", 9) == 0);
    CHECK(hcc_stale_limit(&s, "sessions", 60000) == 0);
    CHECK(hcc_stale_limit(&s, "jwks", 0) == 5);
    CHECK_EQ_INT(s.n, 1); /* the fail-closed cache's copy went at once */
    REQUIRE(hcc_stale_set_limit(&s, "jwks", 7) == 0);
    CHECK(hcc_stale_limit(&s, "jwks", 0) == 7);
    CHECK_EQ_INT(s.nlimits, 3);
    REQUIRE(hcc_stale_set_limit(&s, "sessions", HC_CACHE_STALE_DEFAULT) == 0);
    REQUIRE(hcc_stale_set_limit(&s, "absent", HC_CACHE_STALE_DEFAULT) == 0);
    CHECK(hcc_stale_limit(&s, "sessions", 60000) == 60000);
    CHECK(hcc_stale_limit(&s, "other", 1) == 9);
    CHECK_EQ_INT(s.nlimits, 2);
    hcc_stale_clear(&s); /* copies only */
    CHECK_EQ_INT(s.nlimits, 2);
    hcc_stale_free(&s);
    CHECK_EQ_INT(s.nlimits, 0);
}

/* A node's final answer to a get, as the transport leaves it (a malloc'd body). */
static hcc_answer_t answer_of(int status, const char *body, int stale)
{
    hcc_answer_t a = {.status = status, .stale = stale, .version = 3, .body_len = strlen(body)};
    a.body = strdup(body);
    return a;
}

/* One read of (cache, key) under the rules; 0 or the code, with the value (stale flag) in *v. */
static int read_end(hcc_fallback_t *f, const char *cache, hcc_read_end_t e, uint64_t now,
                    hc_value_t *v)
{
    hc_meta_t m;
    hcc_answer_t *a = e.a;
    int rv = hcc_fallback_after_read(f, cache, "k", 1, &e, now, v, &m);
    if (a != NULL) {
        hcc_answer_reset(a);
    }
    return rv;
}

/* The rules of hacache.h's "Local stale copy", as both clients apply them. */
static void test_fallback_rules(void)
{
    hcc_fallback_t f;
    hcc_fallback_init(&f, 1000);
    hc_value_t v;
    hcc_answer_t a = answer_of(200, "old", 0);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.a = &a}, 100, &v), 0);
    CHECK(v.stale == 0 && v.len == 3 && strcmp(v.data, "old") == 0);
    hc_value_free(&v);
    /* no node answered: the copy, within the limit only, not with no_stale */
    hcc_read_end_t down = {.rv = HC_ETIMEDOUT};
    CHECK_EQ_INT(read_end(&f, "c", down, 1100, &v), 0);
    CHECK(v.stale == 1 && strcmp(v.data, "old") == 0);
    hc_value_free(&v);
    CHECK_EQ_INT(read_end(&f, "c", down, 1101, &v), HC_ETIMEDOUT);
    CHECK(v.data == NULL && v.stale == 0);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.rv = HC_EUNAVAILABLE, .no_stale = 1}, 200, &v),
                 HC_EUNAVAILABLE);
    /* an answer that is not "no node answered" is the result */
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.rv = HC_EINTERNAL}, 200, &v), HC_EINTERNAL);
    /* a write in flight: not served; a write refused for sure: the copy stays */
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.rv = HC_EBUSY, .write_in_flight = 1}, 200, &v),
                 HC_EBUSY);
    CHECK_EQ_INT(hcc_fallback_after_write(&f, HCC_TOUCHES_KEY, "c", "k", 1, HC_ECONFLICT), 0);
    CHECK_EQ_INT(hcc_fallback_after_write(&f, HCC_TOUCHES_NOTHING, "c", NULL, 0, 0), 0);
    CHECK_EQ_INT(read_end(&f, "c", down, 200, &v), 0);
    hc_value_free(&v);
    /* a write that may have been applied (also cancelled) forgets the key */
    CHECK_EQ_INT(hcc_fallback_after_write(&f, HCC_TOUCHES_KEY, "c", "k", 1, HC_ECANCELED), 1);
    CHECK_EQ_INT(read_end(&f, "c", down, 200, &v), HC_ETIMEDOUT);
    /* an answer that may predate a write is returned, not remembered; a node's stale one too */
    a = answer_of(200, "raced", 0);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.a = &a, .overlapped_write = 1}, 300, &v), 0);
    CHECK(strcmp(v.data, "raced") == 0);
    hc_value_free(&v);
    a = answer_of(200, "nodes-own", 1);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.a = &a}, 300, &v), 0);
    CHECK(v.stale == 1 && strcmp(v.data, "nodes-own") == 0);
    hc_value_free(&v);
    CHECK_EQ_INT(read_end(&f, "c", down, 300, &v), HC_ETIMEDOUT);
    /* 404 forgets; a no_quorum answer forgets unless opted in, which serves the copy */
    a = answer_of(200, "v", 0);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.a = &a}, 300, &v), 0);
    hc_value_free(&v);
    hcc_read_end_t inval = {.rv = HC_EUNAVAILABLE, .invalidated = 1};
    f.on_invalidated = 1;
    CHECK_EQ_INT(read_end(&f, "c", inval, 400, &v), 0);
    CHECK(v.stale == 1);
    hc_value_free(&v);
    f.on_invalidated = 0;
    CHECK_EQ_INT(read_end(&f, "c", inval, 400, &v), HC_EUNAVAILABLE);
    f.on_invalidated = 1;
    CHECK_EQ_INT(read_end(&f, "c", inval, 400, &v), HC_EUNAVAILABLE); /* it was forgotten */
    a = answer_of(200, "v", 0);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.a = &a}, 500, &v), 0);
    hc_value_free(&v);
    a = answer_of(404, "{\"code\":\"not_found\"}", 0);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.a = &a}, 500, &v), HC_ENOTFOUND);
    CHECK_EQ_INT(read_end(&f, "c", down, 500, &v), HC_ETIMEDOUT);
    /* per-cache limits: 0 keeps and serves nothing; a limit of its own on a client with 0 */
    CHECK_EQ_INT(hcc_fallback_set_cache_limit(&f, "bad name", 5), HC_EINVAL);
    REQUIRE(hcc_fallback_set_cache_limit(&f, "c", 0) == 0);
    a = answer_of(200, "v", 0);
    CHECK_EQ_INT(read_end(&f, "c", (hcc_read_end_t){.a = &a}, 600, &v), 0);
    hc_value_free(&v);
    CHECK_EQ_INT(f.copy.n, 0);
    f.max_stale_ms = 0;
    REQUIRE(hcc_fallback_set_cache_limit(&f, "d", 50) == 0);
    a = answer_of(200, "d", 0);
    CHECK_EQ_INT(read_end(&f, "d", (hcc_read_end_t){.a = &a}, 600, &v), 0);
    hc_value_free(&v);
    CHECK_EQ_INT(read_end(&f, "d", down, 650, &v), 0);
    hc_value_free(&v);
    /* a clear forgets the cache's keys; a raw write everything */
    CHECK_EQ_INT(hcc_fallback_after_write(&f, HCC_TOUCHES_CACHE, "d", NULL, 0, 0), 1);
    CHECK_EQ_INT(read_end(&f, "d", down, 650, &v), HC_ETIMEDOUT);
    a = answer_of(200, "d", 0);
    CHECK_EQ_INT(read_end(&f, "d", (hcc_read_end_t){.a = &a}, 700, &v), 0);
    hc_value_free(&v);
    CHECK_EQ_INT(hcc_fallback_after_write(&f, HCC_TOUCHES_ALL, NULL, NULL, 0, HC_EUNKNOWN_OUTCOME),
                 1);
    CHECK_EQ_INT(f.copy.n, 0);
    hcc_fallback_free(&f);
}

static void feed(hcc_answer_t *a, const char *lines)
{
    while (*lines) {
        const char *nl = strchr(lines, '\n');
        size_t n = nl ? (size_t)(nl - lines) + 1 : strlen(lines);
        hcc_answer_header(a, lines, n);
        lines += n;
    }
}

static void test_answer_headers_and_errors(void)
{
    hcc_answer_t a;
    memset(&a, 0, sizeof(a));
    feed(&a, "HTTP/1.1 100 Continue\r\nX-Hacache-Version: 9\r\n"
             "HTTP/2 200\r\nx-hacache-version: 42\r\nX-HACACHE-TTL-MS: 1500\r\n"
             "X-Hacache-Stale: 1\r\nContent-Length: 2\r\n");
    CHECK_EQ_INT(a.status, 200);
    CHECK(a.has_version && a.version == 42);
    CHECK(a.has_ttl && a.ttl_ms == 1500);
    CHECK_EQ_INT(a.stale, 1);
    REQUIRE(hcc_answer_body(&a, "ok", 2) == 0 && hcc_answer_finish(&a) == 0);
    CHECK_EQ_STR(a.body, "ok");
    CHECK_EQ_INT(hcc_answer_err(&a), 0);
    hcc_answer_reset(&a);
    feed(&a, "HTTP/1.1 200 OK\r\nX-Hacache-Version: 12x\r\nX-Hacache-Ttl-Ms: \r\n");
    CHECK(!a.has_version && !a.has_ttl);
    hcc_answer_reset(&a);
    /* every outcome server/http.c sends (send_hc_error, send_error), and h2o's own refusals */
    struct {
        int status;
        const char *body;
        int err;
    } cases[] = {
        {200, "{\"version\":3}", 0},
        {400, "{}", HC_EINVAL},
        {400, "{\"error\":\"x\",\"code\":\"bad_request\"}", HC_EINVAL},
        {400, "{\"error\":\"x\",\"code\":\"tls_reload_failed\"}", HC_EINVAL},
        {401, "{\"error\":\"x\",\"code\":\"unauthorized\"}", HC_EAUTH},
        {404, "{\"code\":\"not_found\"}", HC_ENOTFOUND},
        {405, "{\"error\":\"x\",\"code\":\"method_not_allowed\"}", HC_EINVAL},
        {409, "{\"error\":\"x\",\"code\":\"conflict\"}", HC_ECONFLICT},
        {409, "{\"error\":\"x\",\"code\":\"not_integer\"}", HC_ENOTINT},
        {409, "{\"error\":\"x\",\"code\":\"overflow\"}", HC_EOVERFLOW},
        {409, "{\"error\":\"x\",\"code\":\"upgrade_pending\"}", HC_EUPGRADE},
        {409, "{\"error\":\"x\",\"code\":\"not_leader\"}", HC_ECONFLICT},
        /* a code inside another string is not the code */
        {409, "{\"error\":\"\\\"code\\\":\\\"overflow\\\"\",\"code\":\"conflict\"}", HC_ECONFLICT},
        {413, "{\"error\":\"x\",\"code\":\"too_large\"}", HC_ETOOLARGE},
        {413, "Request Entity Too Large", HC_ETOOLARGE},
        {500, "{\"error\":\"x\",\"code\":\"internal\"}", HC_EINTERNAL},
        {502, "", HC_EUNAVAILABLE},
        {503, "{\"code\":\"shutting_down\"}", HC_ESHUTDOWN},
        {503, "{\"code\":\"busy\"}", HC_EBUSY},
        {503, "{\"code\":\"unavailable\",\"reason\":\"no_quorum\"}", HC_EUNAVAILABLE},
        {503, "{\"error\":\"x\",\"code\":\"max_clients\"}", HC_EUNAVAILABLE},
        {504, "{\"code\":\"unknown_outcome\"}", HC_EUNKNOWN_OUTCOME},
        {504, "{\"code\":\"timeout\"}", HC_ETIMEDOUT},
        {507, "{\"error\":\"x\",\"code\":\"insufficient_memory\"}", HC_ENOMEM},
        {418, "{}", HC_EINTERNAL},
        {409, "{\"code\":\"overflow\"", HC_ECONFLICT}, /* malformed: only the status */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        a.status = cases[i].status;
        a.body = (char *)cases[i].body;
        a.body_len = strlen(cases[i].body);
        if (hcc_answer_err(&a) != cases[i].err) {
            fprintf(stderr, "  %d %s: %d\n", cases[i].status, cases[i].body, hcc_answer_err(&a));
            hc_test_failures_++;
        }
    }
    a.status = 503;
    a.body = "{\"error\":\"unavailable\",\"code\":\"unavailable\",\"reason\":\"no_quorum\"}";
    a.body_len = strlen(a.body);
    CHECK(hcc_answer_invalidated(&a));
    a.body = "{\"error\":\"unavailable\",\"code\":\"unavailable\",\"reason\":\"joining\"}";
    a.body_len = strlen(a.body);
    CHECK(!hcc_answer_invalidated(&a));
    memset(&a, 0, sizeof(a));
    /* the body bound */
    CHECK_EQ_INT(hcc_answer_body(&a, "x", HCC_MAX_ANSWER_BODY + 1), -1);
    hcc_answer_reset(&a);
}

/* The bounded JSON reader: members, arrays, numbers, and malformed or hostile text. */
static void test_json_scan(void)
{
    const char *t = " {\"a\" : [1, {\"x\":\"y\"}, \"s\\\"]\"], \"b\":{\"c\":-5},\"d\":\"e\"} ";
    hcc_json_t j = {.p = t, .n = strlen(t)}, m, e;
    REQUIRE(hcc_json_member(j, "b", &m) == 1);
    hcc_json_t c;
    int64_t i;
    REQUIRE(hcc_json_member(m, "c", &c) == 1);
    CHECK(hcc_json_i64(c, &i) == 0 && i == -5);
    CHECK(hcc_json_member_is(t, strlen(t), "d", "e"));
    CHECK(!hcc_json_member_is(t, strlen(t), "d", "f"));
    CHECK_EQ_INT(hcc_json_member(j, "x", &m), 0); /* only the top level */
    REQUIRE(hcc_json_member(j, "a", &m) == 1);
    size_t pos = 0;
    int n = 0;
    while (hcc_json_next(m, &pos, &e) == 1) {
        n++;
    }
    CHECK_EQ_INT(n, 3);
    uint64_t u;
    CHECK(hcc_json_member_u64("{\"v\":18446744073709551615}", 26, "v", &u) == -1); /* 20 digits */
    CHECK(hcc_json_member_u64("{\"v\":1844674407370955161}", 25, "v", &u) == 0 &&
          u == 1844674407370955161ull);
    CHECK(hcc_json_i64((hcc_json_t){.p = "-9223372036854775808", .n = 20}, &i) == 0 &&
          i == INT64_MIN);
    CHECK(hcc_json_i64((hcc_json_t){.p = "9223372036854775808", .n = 19}, &i) == -1);
    CHECK(hcc_json_i64((hcc_json_t){.p = "-", .n = 1}, &i) == -1);
    const char *bad[] = {"",
                         "{",
                         "{\"a\":}",
                         "{\"a\":1,}",
                         "{\"a\" 1}",
                         "[1,2",
                         "{\"a\":\"x}",
                         "{\"a\":1}}",
                         "{a:1}",
                         "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (hcc_json_member((hcc_json_t){.p = bad[k], .n = strlen(bad[k])}, "a", &m) != -1) {
            fprintf(stderr, "  accepted %s\n", bad[k]);
            hc_test_failures_++;
        }
    }
    pos = 0;
    CHECK_EQ_INT(hcc_json_next((hcc_json_t){.p = "[1,", .n = 3}, &pos, &e), -1);
    pos = 0;
    CHECK_EQ_INT(hcc_json_next((hcc_json_t){.p = "[]", .n = 2}, &pos, &e), 0);
}

/* GET /v1/caches as the server writes it (server/http.c list_cache_cb). */
static void test_cache_info_parse(void)
{
    const char *body =
        "{\"caches\":[{\"name\":\"jwks\",\"entries\":1,\"memory_bytes\":2,\"hits\":0,\"misses\":0,"
        "\"evictions\":0,\"expirations\":0,\"settings\":{\"max_memory\":0,\"default_ttl_ms\":0,"
        "\"quorum_loss_policy\":\"invalidate\",\"max_stale_ms\":0}},"
        "{\"name\":\"sessions\",\"entries\":3,\"memory_bytes\":400,\"hits\":5,\"misses\":6,"
        "\"evictions\":7,\"expirations\":8,\"settings\":{\"max_memory\":1048576,"
        "\"default_ttl_ms\":60000,\"quorum_loss_policy\":\"serve_stale\",\"max_stale_ms\":30000},"
        "\"digest\":\"00ff\"}],\"memory_bytes\":402,\"max_memory_bytes\":1000}";
    hc_cache_info_t ci;
    REQUIRE(hcc_parse_cache_info(body, strlen(body), "sessions", &ci) == 0);
    CHECK(ci.entries == 3 && ci.memory_bytes == 400 && ci.hits == 5 && ci.misses == 6 &&
          ci.evictions == 7 && ci.expirations == 8);
    CHECK(ci.settings.max_memory == 1048576 && ci.settings.default_ttl_ms == 60000 &&
          ci.settings.policy == HC_POLICY_SERVE_STALE && ci.settings.max_stale_ms == 30000);
    REQUIRE(hcc_parse_cache_info(body, strlen(body), "jwks", &ci) == 0);
    CHECK(ci.entries == 1 && ci.settings.policy == HC_POLICY_INVALIDATE);
    CHECK_EQ_INT(hcc_parse_cache_info(body, strlen(body), "none", &ci), HC_ENOTFOUND);
    CHECK_EQ_INT(hcc_parse_cache_info(body, strlen(body) - 1, "jwks", &ci), HC_EINTERNAL);
    const char *odd = "{\"caches\":[{\"name\":\"c\",\"entries\":-1,\"memory_bytes\":2,"
                      "\"settings\":{}}]}";
    CHECK_EQ_INT(hcc_parse_cache_info(odd, strlen(odd), "c", &ci), HC_EINTERNAL);
    CHECK(ci.entries == 0);
    CHECK_EQ_INT(hcc_parse_cache_info("{}", 2, "c", &ci), HC_EINTERNAL);
    CHECK_EQ_INT(hcc_parse_cache_info("{\"caches\":[]}", 13, "c", &ci), HC_ENOTFOUND);
}

static void test_paths_and_ids(void)
{
    char *p = hcc_key_path("sessions", "a b/ü", 6, "?ack=once");
    CHECK_EQ_STR(p, "/v1/caches/sessions/a%20b%2F%C3%BC?ack=once");
    free(p);
    p = hcc_key_path("sessions", NULL, 0, "?ack=quorum");
    CHECK_EQ_STR(p, "/v1/caches/sessions?ack=quorum");
    free(p);
    char a[33], b[33];
    REQUIRE(hcc_new_rid(a) == 0 && hcc_new_rid(b) == 0);
    CHECK_EQ_INT(strlen(a), 32);
    CHECK(strcmp(a, b) != 0);
    CHECK(hcc_cache_name_ok("a.b:c-d_e"));
    CHECK(!hcc_cache_name_ok("a/b"));
    CHECK(!hcc_cache_name_ok(""));
}

/* A CA file: loaded when valid, refused with a reason when not; a change is picked up, a bad
 * change keeps the old bundle and says why, and is not retried until the file changes again. */
static void test_cafile_reload(void)
{
    char dir[] = "/tmp/hcc-ca-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[128], tmp[128];
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    snprintf(tmp, sizeof(tmp), "%s/new.pem", dir);
    time_t now = time(NULL);
    EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
    X509 *ca1 = hct_cert(k1, "ca one", NULL, NULL, now - 60, now + 3600, 1, NULL);
    X509 *ca2 = hct_cert(k2, "ca two", NULL, NULL, now - 60, now + 3600, 1, NULL);
    X509 *old = hct_cert(k2, "expired", NULL, NULL, now - 7200, now - 3600, 1, NULL);
    hct_write_pem(path, ca1, NULL, NULL);
    hcc_cafile_t f;
    char err[256];
    REQUIRE(hcc_cafile_init(&f, path, err, sizeof(err)) == 0);
    CHECK(strstr(f.pem, "BEGIN CERTIFICATE") != NULL);
    size_t len1 = f.len;
    CHECK_EQ_INT(hcc_cafile_refresh(&f), 0); /* unchanged */
    /* a bundle of two: swapped in by rename, picked up */
    hct_write_pem(tmp, ca1, ca2, NULL);
    REQUIRE(rename(tmp, path) == 0);
    CHECK_EQ_INT(hcc_cafile_refresh(&f), 1);
    CHECK(f.len > len1);
    CHECK_EQ_INT(f.reloads, 1);
    /* garbage: rejected, the bundle of two stays */
    size_t len2 = f.len;
    FILE *g = fopen(tmp, "w");
    REQUIRE(g != NULL);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", g);
    fclose(g);
    REQUIRE(rename(tmp, path) == 0);
    CHECK_EQ_INT(hcc_cafile_refresh(&f), -1);
    CHECK(strstr(f.err, "rejected") != NULL);
    CHECK_EQ_INT(f.len, len2);
    CHECK_EQ_INT(hcc_cafile_refresh(&f), 0); /* not retried until it changes */
    /* only an expired certificate: rejected */
    hct_write_pem(tmp, old, NULL, NULL);
    REQUIRE(rename(tmp, path) == 0);
    CHECK_EQ_INT(hcc_cafile_refresh(&f), -1);
    CHECK(strstr(f.err, "valid now") != NULL);
    /* the file disappears for a while: the old bundle stays, no error */
    unlink(path);
    CHECK_EQ_INT(hcc_cafile_refresh(&f), 0);
    CHECK_EQ_INT(f.len, len2);
    hcc_cafile_free(&f);
    /* a missing or empty file at the start is an error with a reason */
    CHECK_EQ_INT(hcc_cafile_init(&f, path, err, sizeof(err)), HC_EINVAL);
    CHECK(strstr(err, "cannot open") != NULL);
    g = fopen(path, "w");
    REQUIRE(g != NULL);
    fclose(g);
    CHECK_EQ_INT(hcc_cafile_init(&f, path, err, sizeof(err)), HC_EINVAL);
    CHECK(strstr(err, "no PEM certificate") != NULL);
    unlink(path);
    rmdir(dir);
    X509_free(ca1);
    X509_free(ca2);
    X509_free(old);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* The public TLS setter: a bad CA file is refused with the reason in hc_client_last_error;
 * https endpoints are accepted. */
static void test_client_tls_settings(void)
{
    hc_client_opts_t o = {.endpoints = "https://127.0.0.1:1,http://127.0.0.1:2"};
    hc_client_t *c = NULL;
    REQUIRE(hc_client_new(&o, &c) == 0);
    hc_client_tls_t t = {.ca_file = "/nonexistent/ca.pem"};
    CHECK_EQ_INT(hc_client_set_tls(c, &t), HC_EINVAL);
    char why[256];
    CHECK_EQ_INT(hc_client_last_error(c, why, sizeof(why)), 0);
    CHECK(strstr(why, "/nonexistent/ca.pem") != NULL);
    hc_client_tls_t n = {.server_name = "bad name"};
    CHECK_EQ_INT(hc_client_set_tls(c, &n), HC_EINVAL);
    hc_client_tls_t ok = {.server_name = "node-1.hacache.svc"};
    CHECK_EQ_INT(hc_client_set_tls(c, &ok), 0);
    hc_client_free(c);
}

/* libhacache and the server objects in one program (see CMakeLists.txt): both work. */
static void test_links_with_server(void)
{
    char out[8];
    CHECK_EQ_INT(hc_pct_decode("a%2Fb", 5, out), 3); /* server/util.c */
    CHECK_EQ_STR(hc_strerror(HC_EAUTH), "authentication failed");
    CHECK(strstr(hc_strerror(HC_ETLS), "TLS") != NULL);
    hc_client_opts_t o = {.endpoints = "http://127.0.0.1:1"};
    hc_client_t *c = NULL;
    CHECK_EQ_INT(hc_client_new(&o, &c), 0);
    /* argument checks of the data API, made before any network call */
    hc_put_opts_t po = {.ack = HC_ACK_ONCE, .if_absent = 1};
    uint64_t ver = 9;
    CHECK_EQ_INT(hc_put_ex(c, "c", "k", 1, "v", 1, &po, &ver), HC_EINVAL);
    CHECK(ver == 0);
    po = (hc_put_opts_t){.ack = (hc_ack_t)9};
    CHECK_EQ_INT(hc_put_ex(c, "c", "k", 1, "v", 1, &po, NULL), HC_EINVAL);
    hc_del_opts_t dop = {.ack = HC_ACK_LEADER, .has_if_version = 1, .if_version = 1};
    CHECK_EQ_INT(hc_del_ex(c, "c", "k", 1, &dop), HC_EINVAL);
    CHECK_EQ_INT(hc_client_set_consistency(c, (hc_consistency_t)3), HC_EINVAL);
    CHECK_EQ_INT(hc_client_set_consistency(c, HC_READ_LINEARIZABLE), 0);
    hc_read_opts_t ro = {.has_consistency = 1, .consistency = (hc_consistency_t)-1};
    hc_value_t v = {.len = 5};
    hc_meta_t meta = {.version = 5};
    CHECK_EQ_INT(hc_get_ex(c, "c", "k", 1, &ro, &v, &meta), HC_EINVAL);
    CHECK(v.len == 0 && v.data == NULL && meta.version == 0);
    CHECK_EQ_INT(hc_client_set_cache_stale(c, "bad name", 0), HC_EINVAL);
    CHECK_EQ_INT(hc_client_set_cache_stale(c, "sessions", 0), 0);
    hc_cache_settings_t set = {.policy = (hc_qloss_policy_t)2};
    CHECK_EQ_INT(hc_cache_configure(c, "c", &set), HC_EINVAL);
    CHECK_EQ_INT(hc_cache_configure(c, "c", NULL), HC_EINVAL);
    hc_cache_info_t ci;
    CHECK_EQ_INT(hc_cache_info(c, "", &ci), HC_EINVAL);
    hc_client_free(c);
}

/* The query strings of the data API, shared by both clients; invalid options refused. */
static void test_queries(void)
{
    char q[160];
    CHECK_EQ_INT(hcc_put_query(NULL, q, sizeof(q)), 0);
    CHECK_EQ_STR(q, "?ack=quorum&ttl_ms=0");
    hc_put_opts_t p = {.ack = HC_ACK_QUORUM, .ttl_ms = 5, .if_absent = 1};
    CHECK_EQ_INT(hcc_put_query(&p, q, sizeof(q)), 0);
    CHECK_EQ_STR(q, "?ack=quorum&ttl_ms=5&if_absent=1");
    p = (hc_put_opts_t){.ack = HC_ACK_QUORUM, .has_if_version = 1, .if_version = 0};
    CHECK_EQ_INT(hcc_put_query(&p, q, sizeof(q)), 0);
    CHECK_EQ_STR(q, "?ack=quorum&ttl_ms=0&if_version=0");
    p = (hc_put_opts_t){.ack = HC_ACK_LEADER, .if_absent = 1};
    CHECK_EQ_INT(hcc_put_query(&p, q, sizeof(q)), HC_EINVAL);
    p = (hc_put_opts_t){.ack = (hc_ack_t)9};
    CHECK_EQ_INT(hcc_put_query(&p, q, sizeof(q)), HC_EINVAL);
    hc_del_opts_t d = {.ack = HC_ACK_NONE};
    CHECK_EQ_INT(hcc_del_query(&d, q, sizeof(q)), 0);
    CHECK_EQ_STR(q, "?ack=none");
    d = (hc_del_opts_t){.ack = HC_ACK_ONCE, .has_if_version = 1, .if_version = 3};
    CHECK_EQ_INT(hcc_del_query(&d, q, sizeof(q)), HC_EINVAL);
    d.ack = HC_ACK_QUORUM;
    CHECK_EQ_INT(hcc_del_query(&d, q, sizeof(q)), 0);
    CHECK_EQ_STR(q, "?ack=quorum&if_version=3");
    CHECK_EQ_INT(hcc_read_query(HC_READ_LOCAL, q, sizeof(q)), 0);
    CHECK_EQ_STR(q, "");
    CHECK_EQ_INT(hcc_read_query(HC_READ_LINEARIZABLE, q, sizeof(q)), 0);
    CHECK_EQ_STR(q, "?consistency=linearizable");
    CHECK_EQ_INT(hcc_read_query((hc_consistency_t)7, q, sizeof(q)), HC_EINVAL);
    hcc_answer_t a = {.status = 200, .body = "{\"version\":42}", .body_len = 14};
    CHECK_EQ_INT(hcc_answer_version(&a), 42);
    a.body = "{\"value\":-7}";
    a.body_len = strlen(a.body);
    CHECK_EQ_INT(hcc_answer_incr_value(&a), -7);
    CHECK_EQ_INT(hcc_answer_version(&a), 0);
}

static const hc_test_t tests[] = {
    {"endpoints_parse", test_endpoints_parse},
    {"endpoints_random_start", test_endpoints_random_start},
    {"endpoints_failover", test_endpoints_failover},
    {"stale_bounds_and_forget", test_stale_bounds_and_forget},
    {"stale_meta_and_expiry", test_stale_meta_and_expiry},
    {"stale_cache_limits", test_stale_cache_limits},
    {"fallback_rules", test_fallback_rules},
    {"answer_headers_and_errors", test_answer_headers_and_errors},
    {"json_scan", test_json_scan},
    {"cache_info_parse", test_cache_info_parse},
    {"paths_and_ids", test_paths_and_ids},
    {"cafile_reload", test_cafile_reload},
    {"client_tls_settings", test_client_tls_settings},
    {"queries", test_queries},
    {"links_with_server", test_links_with_server},
};
HC_TEST_MAIN(tests)
