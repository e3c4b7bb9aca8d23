/* test_cli.c: hacachectl's JSON reader (cli/json.c) and status highlights (cli/status_check.c). */
#include "json.h"
#include "status_check.h"
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

/* One status answer: node, role, term, leader ("" = null), commit, applied, and optionally
 * one peer entry (name, connected, last_contact_ms). */
static hj_t *status(const char *node, const char *role, int term, const char *leader, int commit,
                    int applied, const char *peer, int connected, int contact)
{
    char buf[1024], peers[256] = "[]", ld[128] = "null";
    if (peer != NULL) {
        snprintf(peers, sizeof(peers),
                 "[{\"node\":\"%s\",\"connected\":%s,\"last_contact_ms\":%d}]", peer,
                 connected ? "true" : "false", contact);
    }
    if (leader[0] != '\0') {
        snprintf(ld, sizeof(ld), "\"%s\"", leader);
    }
    snprintf(buf, sizeof(buf),
             "{\"node\":\"%s\",\"role\":\"%s\",\"term\":%d,\"leader\":%s,\"commit_index\":%d,"
             "\"applied_index\":%d,\"peers\":%s}",
             node, role, term, ld, commit, applied, peers);
    return parse(buf);
}

/* Which kinds a set of answers yields, as a bit set, and the nodes of one kind. */
static unsigned kinds_of(hj_t **st, size_t n, uint64_t *nodes_of_kind, sc_kind_t kind)
{
    static const char *eps[] = {"http://a", "http://b", "http://c"};
    sc_limits_t lim = {SC_DEFAULT_MAX_LAG, SC_DEFAULT_MAX_CONTACT_MS};
    sc_findings_t f;
    sc_check((const hj_t *const *)st, eps, n, &lim, &f);
    unsigned kinds = 0;
    *nodes_of_kind = 0;
    for (size_t i = 0; i < f.n; i++) {
        kinds |= 1u << f.v[i].kind;
        if (f.v[i].kind == kind) {
            *nodes_of_kind |= f.v[i].nodes;
        }
        CHECK(f.v[i].message[0] != '\0');
    }
    return kinds;
}

#define K(k) (1u << (k))

static void test_status_highlights(void)
{
    struct {
        const char *what;
        hj_t *st[3];
        unsigned kinds;
        sc_kind_t kind; /* and the nodes it names */
        uint64_t nodes;
    } cases[] = {
        {"healthy",
         {status("a", "leader", 3, "a", 10, 10, "b", 1, 50),
          status("b", "follower", 3, "a", 10, 10, "a", 1, 40),
          status("c", "follower", 3, "a", 10, 9, "a", 1, 40)},
         0,
         SC_LAG,
         0},
        {"old leader still claims leadership after a new election",
         {status("a", "leader", 3, "a", 10, 10, "b", 1, 50),
          status("b", "leader", 4, "b", 12, 12, "a", 0, 4000),
          status("c", "follower", 4, "b", 12, 12, "b", 1, 40)},
         K(SC_LEADERS) | K(SC_TERMS) | K(SC_LEADER_VIEW) | K(SC_CONTACT),
         SC_LEADERS,
         3},
        {"two leaders in one term",
         {status("a", "leader", 5, "a", 10, 10, NULL, 0, 0),
          status("b", "leader", 5, "b", 10, 10, NULL, 0, 0),
          status("c", "follower", 5, "a", 10, 10, NULL, 0, 0)},
         K(SC_LEADERS) | K(SC_LEADER_VIEW),
         SC_LEADER_VIEW,
         2},
        {"a follower lags and one is unreachable",
         {status("a", "leader", 2, "a", 500, 500, "b", 1, 10),
          status("b", "follower", 2, "a", 300, 250, "a", 1, 10), NULL},
         K(SC_UNREACHABLE) | K(SC_LAG),
         SC_LAG,
         2},
        {"a follower that has not heard from its leader",
         {status("a", "leader", 2, "a", 5, 5, NULL, 0, 0),
          status("b", "follower", 2, "a", 5, 5, "a", 1, 9000),
          status("c", "candidate", 3, "", 5, 5, NULL, 0, 0)},
         K(SC_TERMS) | K(SC_LEADER_VIEW) | K(SC_CONTACT),
         SC_TERMS,
         3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t nodes;
        unsigned kinds = kinds_of(cases[i].st, 3, &nodes, cases[i].kind);
        if (kinds != cases[i].kinds || nodes != cases[i].nodes) {
            fprintf(stderr, "  %s: kinds %#x (want %#x), nodes %#llx (want %#llx)\n", cases[i].what,
                    kinds, cases[i].kinds, (unsigned long long)nodes,
                    (unsigned long long)cases[i].nodes);
        }
        CHECK(kinds == cases[i].kinds && nodes == cases[i].nodes);
        for (int k = 0; k < 3; k++) {
            hj_free(cases[i].st[k]);
        }
    }
}

static hc_test_t tests[] = {
    {"json_values", test_json_values},
    {"json_rejects", test_json_rejects},
    {"status_highlights", test_status_highlights},
};
HC_TEST_MAIN(tests)
