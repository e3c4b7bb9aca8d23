/* test_http1.c: the libhacache HTTP/1.1 response parser (client/http1.c): complete responses,
 * every split point, bounds, and malformed input. */
#include "test.h"

#include "hacache.h"
#include "http1.h"
#include "util.h"

#define BIG (1u << 20)

/* Parses s (NUL-terminated) whole; also checks that every strict prefix asks for more bytes
 * (or is already an error when the whole is one), so the result does not depend on how the
 * bytes arrive. */
static long parse_split(const char *s, size_t max_body, hc_http1_resp_t *out)
{
    size_t len = strlen(s);
    long whole = hc_http1_parse(s, len, max_body, out);
    for (size_t cut = 0; cut < len; cut++) {
        hc_http1_resp_t r;
        long p = hc_http1_parse(s, cut, max_body, &r);
        if (whole > 0) {
            /* a prefix never completes early, and never fails */
            if (p != 0) {
                fprintf(stderr, "  prefix %zu of a valid response gave %ld\n", cut, p);
                hc_test_failures_++;
                break;
            }
        } else if (p > 0) {
            fprintf(stderr, "  prefix %zu of an invalid response completed\n", cut);
            hc_test_failures_++;
            break;
        }
    }
    if (whole > 0) {
        hc_http1_resp_t again;
        CHECK_EQ_INT(hc_http1_parse(s, len, max_body, &again), whole);
    }
    return whole;
}

static void test_ok_with_body(void)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    "X-Hacache-Version: 42\r\ncontent-length: 5\r\n\r\nhello";
    hc_http1_resp_t r;
    CHECK_EQ_INT(parse_split(s, BIG, &r), strlen(s));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.body_len, 5);
    CHECK(memcmp(s + r.body_off, "hello", 5) == 0);
    CHECK_EQ_INT(r.keep_alive, 1);
    CHECK_EQ_INT(r.has_version, 1);
    CHECK_EQ_INT(r.version, 42);
    CHECK_EQ_INT(r.stale, 0);
}

static void test_pipelined_bytes_after(void)
{
    /* bytes after the response (a next response) are not consumed */
    const char *s = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n";
    hc_http1_resp_t r;
    long n = hc_http1_parse(s, strlen(s), BIG, &r);
    CHECK_EQ_INT(n, strlen("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"));
    CHECK_EQ_INT(r.status, 404);
}

static void test_headers(void)
{
    static const struct {
        const char *resp;
        int keep_alive, stale;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0, 0},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", 0, 0},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0},
        {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 1, 0},
        {"HTTP/1.1 200 OK\r\nx-hacache-stale:1\r\nContent-Length: 0\r\n\r\n", 1, 1},
        {"HTTP/1.1 200 OK\r\nX-Hacache-Stale: 0\r\n\r\n", 1, 0},
        {"HTTP/1.1 503 Service Unavailable\r\nContent-Length:  0 \r\n\r\n", 1, 0},
        {"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 1, 0}, /* empty reason */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hc_http1_resp_t r;
        long n = parse_split(cases[i].resp, BIG, &r);
        CHECK_EQ_INT(n, strlen(cases[i].resp));
        if (n > 0) {
            CHECK_EQ_INT(r.keep_alive, cases[i].keep_alive);
            CHECK_EQ_INT(r.stale, cases[i].stale);
            CHECK_EQ_INT(r.body_len, 0);
        }
    }
}

static void test_no_body_statuses(void)
{
    const char *s = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
    hc_http1_resp_t r;
    CHECK_EQ_INT(parse_split(s, BIG, &r), strlen(s));
    CHECK_EQ_INT(r.body_len, 0);
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 600 OK\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",    /* bare LF */
        "HTTP/1.1 200 OK\r\nA\rB: 1\r\n\r\n",            /* bare CR */
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",            /* header without a colon */
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",       /* empty name */
        "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",        /* space in the name */
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /* negative length */
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", /* junk length */
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",   /* empty length */
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Hacache-Version: v1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x01z\r\n\r\n", /* control char in a value */
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hc_http1_resp_t r;
        long n = parse_split(bad[i], BIG, &r);
        if (n != -1) {
            fprintf(stderr, "  case %zu accepted (%ld): %s\n", i, n, bad[i]);
            hc_test_failures_++;
        }
    }
}

static void test_bounds(void)
{
    hc_http1_resp_t r;
    /* the body bound is checked as soon as the head is there */
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
    CHECK_EQ_INT(hc_http1_parse(s, strlen(s), 10, &r), -1);
    CHECK_EQ_INT(hc_http1_parse(s, strlen(s), 11, &r), 0);
    /* a head that never ends is refused once it reaches the bound, not buffered forever */
    static char big[HC_HTTP1_MAX_HEAD + 100];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    CHECK_EQ_INT(hc_http1_parse(big, HC_HTTP1_MAX_HEAD - 1, BIG, &r), 0);
    CHECK_EQ_INT(hc_http1_parse(big, HC_HTTP1_MAX_HEAD, BIG, &r), -1);
    CHECK_EQ_INT(hc_http1_parse(big, sizeof(big), BIG, &r), -1);
    /* a head that ends just inside the bound is fine */
    memcpy(big + HC_HTTP1_MAX_HEAD - 4, "\r\n\r\n", 4);
    CHECK_EQ_INT(hc_http1_parse(big, HC_HTTP1_MAX_HEAD, BIG, &r), HC_HTTP1_MAX_HEAD);
    CHECK_EQ_INT(hc_http1_parse("", 0, BIG, &r), 0);
}

/* libhacache and the server objects in one program (see CMakeLists.txt): both work. */
static void test_links_with_server(void)
{
    char out[8];
    CHECK_EQ_INT(hc_pct_decode("a%2Fb", 5, out), 3); /* server/util.c */
    CHECK_EQ_STR(hc_strerror(HC_EAUTH), "authentication failed");
    hc_client_opts_t o = {.endpoints = "http://127.0.0.1:1"};
    hc_client_t *c = NULL;
    CHECK_EQ_INT(hc_client_new(&o, &c), 0);
    hc_client_free(c);
}

static const hc_test_t tests[] = {
    {"links_with_server", test_links_with_server},
    {"ok_with_body", test_ok_with_body},
    {"pipelined_bytes_after", test_pipelined_bytes_after},
    {"headers", test_headers},
    {"no_body_statuses", test_no_body_statuses},
    {"malformed", test_malformed},
    {"bounds", test_bounds},
};
HC_TEST_MAIN(tests)
