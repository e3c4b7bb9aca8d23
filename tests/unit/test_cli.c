/* test_cli.c: hacachectl's JSON reader and HTTP response parser (cli/json.c, cli/http.c). */
#include "ctl_http.h"
#include "json.h"
#include "test.h"

static hj_t *parse(const char *s)
{
    char err[128];
    return hj_parse(s, strlen(s), err, sizeof(err));
}

static void test_json_values(void)
{
    hj_t *j = parse(" {\"node\":\"a:1\",\"term\":42,\"neg\":-1.5e2,\"ok\":true,\"no\":false,"
                    "\"leader\":null,\"peers\":[{\"n\":1},{\"n\":2}],\"s\":\"q\\\"\\\\\\/\\n"
                    "\\u00e9\\ud83d\\ude00\"} ");
    REQUIRE(j != NULL);
    CHECK(strcmp(hj_str(j, "node", ""), "a:1") == 0);
    CHECK(hj_num(j, "term", 0) == 42);
    CHECK(hj_num(j, "neg", 0) == -150);
    CHECK(hj_bool(j, "ok", 0) == 1 && hj_bool(j, "no", 1) == 0);
    CHECK(hj_get(j, "leader")->type == HJ_NULL);
    CHECK(hj_str(j, "leader", "dflt")[0] == 'd'); /* typed reads fall back */
    const hj_t *peers = hj_get(j, "peers");
    REQUIRE(peers && peers->type == HJ_ARRAY && peers->len == 2);
    CHECK(hj_num(peers->child->next, "n", 0) == 2);
    CHECK(strcmp(hj_str(j, "s", ""), "q\"\\/\n\xc3\xa9\xf0\x9f\x98\x80") == 0);
    CHECK(hj_get(j, "missing") == NULL);
    hj_free(j);
}

static void test_json_rejects(void)
{
    static const char *bad[] = {
        "",    "{",   "{\"a\"}",  "{\"a\":1,}", "[1,]",        "[1 2]",
        "tru", "nul", "\"abc",    "\"\\x\"",    "\"\\ud800\"", "\"\\udc00\"",
        "01x", "-",   "{} extra", "\"\x01\"",   "{1:2}",       "[\"\\u12\"]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128];
        hj_t *j = hj_parse(bad[i], strlen(bad[i]), err, sizeof(err));
        if (j != NULL) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        }
        CHECK(j == NULL && err[0] != '\0');
        hj_free(j);
    }
    /* nesting is bounded */
    char deep[2 * HJ_MAX_DEPTH + 8];
    size_t k = 0;
    for (int i = 0; i < HJ_MAX_DEPTH + 1; i++) {
        deep[k++] = '[';
    }
    for (int i = 0; i < HJ_MAX_DEPTH + 1; i++) {
        deep[k++] = ']';
    }
    char err[128];
    CHECK(hj_parse(deep, k, err, sizeof(err)) == NULL && strstr(err, "deep") != NULL);
    hj_t *ok = hj_parse(deep + 1, k - 2, err, sizeof(err)); /* exactly the limit */
    CHECK(ok != NULL);
    hj_free(ok);
}

static void test_http_response(void)
{
    hc_http_resp_t r;
    const char *why;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Hacache-Stale: 1\r\n\r\nhello!!";
    REQUIRE(hc_http_parse_response(a, strlen(a), &r, &why) == 0);
    CHECK(r.status == 200 && r.len == 5 && memcmp(r.body, "hello", 5) == 0 && r.stale == 1);
    free(r.body);
    const char *b = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "6;x=y\r\n world\r\n0\r\n\r\n";
    REQUIRE(hc_http_parse_response(b, strlen(b), &r, &why) == 0);
    CHECK(r.len == 11 && strcmp(r.body, "hello world") == 0 && r.stale == 0);
    free(r.body);
    const char *c = "HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\n{\"error\":\"no\"}";
    REQUIRE(hc_http_parse_response(c, strlen(c), &r, &why) == 0);
    CHECK(r.status == 503 && r.len == 14);
    free(r.body);
    static const char *bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", /* truncated */
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
        "SMTP 220 hello\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1", /* no end of header */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rv = hc_http_parse_response(bad[i], strlen(bad[i]), &r, &why);
        if (rv == 0) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            free(r.body);
        }
        CHECK(rv != 0);
    }
}

static void test_url(void)
{
    char h[64], p[8];
    const char *why;
    REQUIRE(hc_http_parse_url("http://10.0.0.1:8080", h, sizeof(h), p, sizeof(p), &why) == 0);
    CHECK(strcmp(h, "10.0.0.1") == 0 && strcmp(p, "8080") == 0);
    REQUIRE(hc_http_parse_url("[::1]:81", h, sizeof(h), p, sizeof(p), &why) == 0);
    CHECK(strcmp(h, "::1") == 0 && strcmp(p, "81") == 0);
    REQUIRE(hc_http_parse_url("http://cache", h, sizeof(h), p, sizeof(p), &why) == 0);
    CHECK(strcmp(p, "80") == 0);
    CHECK(hc_http_parse_url("https://a:1", h, sizeof(h), p, sizeof(p), &why) != 0);
    CHECK(hc_http_parse_url("ftp://a:1", h, sizeof(h), p, sizeof(p), &why) != 0);
    CHECK(hc_http_parse_url("http://a:99999x", h, sizeof(h), p, sizeof(p), &why) != 0);
    CHECK(hc_http_parse_url("http://:80", h, sizeof(h), p, sizeof(p), &why) != 0);
}

static hc_test_t tests[] = {
    {"json_values", test_json_values},
    {"json_rejects", test_json_rejects},
    {"http_response", test_http_response},
    {"url", test_url},
};
HC_TEST_MAIN(tests)
