/* test_cli.c: hacachectl's JSON reader (cli/json.c). */
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

static hc_test_t tests[] = {
    {"json_values", test_json_values},
    {"json_rejects", test_json_rejects},
};
HC_TEST_MAIN(tests)
