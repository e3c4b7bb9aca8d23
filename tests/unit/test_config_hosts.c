/* test_config_hosts.c: the configuration contract (SPEC section 2) for peer addresses:
 * HA_HOSTS parsing, finding this node in it (HOSTNAME / HOSTNAME_OVERWRITE rules), and the
 * host:port parser and formatter behind the listen addresses. */
#include "config.h"

#include "hacache.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------- */
/* HA_HOSTS */

static void test_hosts_parse(void)
{
    static const struct {
        const char *csv;
        size_t n;           /* entries, 0 = must fail */
        const char *needle; /* in the error, or the formatted first entry */
        const char *scheme; /* of the first entry */
        int ipv6;
    } cases[] = {
        {"a:7000", 1, "a:7000", "", 0},
        {"a:7000,b:7001,c:7002", 3, "a:7000", "", 0},
        {"  a:7000 ,b:7001 ,  c:7002  ", 3, "a:7000", "", 0},
        {"http://a:7000, http://b:7000", 2, "a:7000", "http", 0},
        {"HTTPS://a:7000,https://b:7000", 2, "a:7000", "https", 0},
        {"https://127.0.0.1:8001, https://127.0.0.1:8002 ,https://127.0.0.1:8003", 3,
         "127.0.0.1:8001", "https", 0},
        {"[::1]:7000,[::1]:7001", 2, "[::1]:7000", "", 1},
        {"https://[fe80::1]:7000", 1, "[fe80::1]:7000", "https", 1},
        {"hacache-0.hacache.default.svc.cluster.local:7000", 1,
         "hacache-0.hacache.default.svc.cluster.local:7000", "", 0},
        {"a:1,b:65535", 2, "a:1", "", 0},
        /* errors */
        {"", 0, "HA_HOSTS: is empty", NULL, 0},
        {"   ", 0, "HA_HOSTS: is empty", NULL, 0},
        {"a:7000,", 0, "entry 2 is empty", NULL, 0},
        {"a:7000,,b:7000", 0, "entry 2 is empty", NULL, 0},
        {",a:7000", 0, "entry 1 is empty", NULL, 0},
        {"a:7000,b", 0, "entry 2 \"b\" has no port", NULL, 0},
        {"a:", 0, "has no port after ':'", NULL, 0},
        {"a:0", 0, "port 0 out of range", NULL, 0},
        {"a:70000", 0, "port 70000 out of range", NULL, 0},
        {"a:99999999999999999999", 0, "out of range", NULL, 0},
        {"a:http", 0, "invalid port \"http\"", NULL, 0},
        {"a:7000x", 0, "junk \"x\" after the port", NULL, 0},
        {"https://a:7000/", 0, "path after the port", NULL, 0},
        {"https://a:7000/raft", 0, "path after the port", NULL, 0},
        {"ftp://a:7000", 0, "unknown scheme \"ftp\"", NULL, 0},
        {"grpc://a:7000", 0, "unknown scheme \"grpc\"", NULL, 0},
        {"::1:7000", 0, "IPv6 address without brackets", NULL, 0},
        {"fe80::1", 0, "IPv6 address without brackets", NULL, 0},
        {"[::1]", 0, "has no port", NULL, 0},
        {"[::1:7000", 0, "without ']'", NULL, 0},
        {"[nothex]:7000", 0, "invalid IPv6", NULL, 0},
        {"[::1]x:7000", 0, "junk after ']'", NULL, 0},
        {":7000", 0, "empty host", NULL, 0},
        {"a b:7000", 0, "invalid character ' '", NULL, 0},
        {"user@a:7000", 0, "invalid character '@'", NULL, 0},
        {"a:7000,A:7000", 0, "entries 1 and 2 are the same node A:7000", NULL, 0},
        {"http://a:7000,https://a:7000", 0, "entries 1 and 2", NULL, 0},
        {"[::1]:7000,[0:0::1]:7000", 0, "entries 1 and 2", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hc_hosts_t h;
        char err[512] = "";
        int rc = hc_hosts_parse(cases[i].csv, &h, err, sizeof(err));
        if (cases[i].n == 0) {
            CHECK_EQ_INT(rc, HC_EINVAL);
            CHECK(h.n == 0 && h.v == NULL);
            CHECK(strncmp(err, "HA_HOSTS: ", 10) == 0);
            if (strstr(err, cases[i].needle) == NULL) {
                fprintf(stderr, "  case %zu \"%s\": error \"%s\" lacks \"%s\"\n", i, cases[i].csv,
                        err, cases[i].needle);
                hc_test_failures_++;
            }
            CHECK(strchr(err, '\n') == NULL);
        } else {
            if (rc != 0) {
                fprintf(stderr, "  case %zu \"%s\": %s\n", i, cases[i].csv, err);
            }
            CHECK_EQ_INT(rc, 0);
            CHECK_EQ_INT(h.n, cases[i].n);
            if (rc == 0 && h.n > 0) {
                char name[300];
                hc_host_format(&h.v[0], name, sizeof(name));
                CHECK_EQ_STR(name, cases[i].needle);
                CHECK_EQ_STR(h.v[0].scheme, cases[i].scheme);
                CHECK_EQ_INT(h.v[0].ipv6, cases[i].ipv6);
            }
        }
        hc_hosts_free(&h);
    }

    /* entry details */
    hc_hosts_t h;
    char err[512];
    REQUIRE(hc_hosts_parse(" https://[::1]:7000 , b.example:7001", &h, err, sizeof(err)) == 0);
    CHECK_EQ_STR(h.v[0].host, "::1");
    CHECK_EQ_INT(h.v[0].port, 7000);
    CHECK_EQ_STR(h.v[1].host, "b.example");
    CHECK_EQ_INT(h.v[1].port, 7001);
    CHECK_EQ_STR(h.v[1].scheme, "");
    hc_hosts_free(&h);

    /* hosts longer than a DNS name */
    char big[400];
    memset(big, 'a', 254);
    strcpy(big + 254, ":7000");
    CHECK_EQ_INT(hc_hosts_parse(big, &h, err, sizeof(err)), HC_EINVAL);
    CHECK(strstr(err, "longer than 253") != NULL);
    memset(big, 'a', 253);
    strcpy(big + 253, ":7000");
    CHECK_EQ_INT(hc_hosts_parse(big, &h, err, sizeof(err)), 0);
    hc_hosts_free(&h);
    CHECK_EQ_INT(hc_hosts_parse(NULL, &h, err, sizeof(err)), HC_EINVAL);
}

static void test_find_self(void)
{
    static const struct {
        const char *csv, *name;
        int want;              /* index, or HC_ENOTFOUND / HC_EINVAL */
        const char *needle[3]; /* in the error */
    } cases[] = {
        /* exact host, case-insensitive */
        {"a:7000,b:7000,c:7000", "b", 1, {0}},
        {"a:7000,b:7000,c:7000", "B", 1, {0}},
        {"https://a:7000,https://b:7000", "b:7000", 1, {0}},
        /* first DNS label */
        {"hacache-0.hacache:7000,hacache-1.hacache:7000", "hacache-0", 0, {0}},
        {"hacache-0.hacache:7000,hacache-1.hacache:7000", "hacache-1", 1, {0}},
        {"hacache-0.hacache:7000,hacache-1.hacache:7000", "hacache-0.hacache", 0, {0}},
        /* never a prefix match: hacache-1 is not hacache-10 */
        {"hacache-10.x:7000,hacache-1.x:7000", "hacache-1", 1, {0}},
        {"hacache-10.x:7000,hacache-11.x:7000",
         "hacache-1",
         HC_ENOTFOUND,
         {"\"hacache-1\"", "hacache-10.x:7000, hacache-11.x:7000"}},
        {"hacache-0.hacache:7000", "hacache", HC_ENOTFOUND, {"\"hacache\""}},
        {"hacache-0.hacache:7000", "hacache-0.hac", HC_ENOTFOUND, {0}},
        /* a port only matches the same port */
        {"hacache-0.hacache:7000", "hacache-0.hacache:7001", HC_ENOTFOUND, {0}},
        /* with a port the host must be equal, no label match */
        {"hacache-0.hacache:7000", "hacache-0:7000", HC_ENOTFOUND, {0}},
        /* every node on one host: host:port picks one */
        {"127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003", "127.0.0.1:8002", 1, {0}},
        {"http://127.0.0.1:8001,http://127.0.0.1:8002", "127.0.0.1:8001", 0, {0}},
        {"127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003",
         "127.0.0.1",
         HC_EINVAL,
         {"\"127.0.0.1\"", "matches 3 entries", "HOSTNAME_OVERWRITE"}},
        {"127.0.0.1:8001", "127", HC_ENOTFOUND, {0}}, /* no "first label" of an IP */
        /* a name matching two entries: equal host and first label */
        {"node:7000,node.other:7000",
         "node",
         HC_EINVAL,
         {"\"node\"", "node:7000, node.other:7000"}},
        /* IPv6 */
        {"[::1]:7001,[::1]:7002", "[::1]:7002", 1, {0}},
        {"[::1]:7001,[::1]:7002", "[0::1]:7001", 0, {0}},
        {"[::1]:7001,[::2]:7001", "::2", 1, {0}},
        {"[::1]:7001,[::2]:7001", "[::2]", 1, {0}},
        /* no match lists the name and every entry */
        {"hacache-0.hacache:7000,hacache-1.hacache:7000",
         "hacache-9",
         HC_ENOTFOUND,
         {"\"hacache-9\"", "hacache-0.hacache:7000, hacache-1.hacache:7000", "HA_HOSTS: "}},
        /* bad names */
        {"a:7000", "", HC_EINVAL, {"not host"}},
        {"a:7000", "a:b", HC_EINVAL, {"not host"}},
        {"a:7000", "a b", HC_EINVAL, {"not host"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hc_hosts_t h;
        char err[512] = "";
        REQUIRE(hc_hosts_parse(cases[i].csv, &h, err, sizeof(err)) == 0);
        err[0] = '\0';
        int rc = hc_hosts_find_self(&h, cases[i].name, err, sizeof(err));
        if (rc != cases[i].want) {
            fprintf(stderr, "  case %zu \"%s\" in \"%s\": %d, want %d (%s)\n", i, cases[i].name,
                    cases[i].csv, rc, cases[i].want, err);
            hc_test_failures_++;
        }
        for (size_t j = 0; j < 3 && cases[i].needle[j] != NULL; j++) {
            if (strstr(err, cases[i].needle[j]) == NULL) {
                fprintf(stderr, "  case %zu: \"%s\" lacks \"%s\"\n", i, err, cases[i].needle[j]);
                hc_test_failures_++;
            }
        }
        hc_hosts_free(&h);
    }
}

static void test_hostport(void)
{
    static const struct {
        const char *s, *host;
        int port; /* 0 = must fail */
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"localhost:1", "localhost", 1},
        {"[::1]:6379", "::1", 6379},
        {"[::]:80", "::", 80},
        {"0.0.0.0:65535", "0.0.0.0", 65535},
        {"127.0.0.1", NULL, 0},
        {":8080", NULL, 0},
        {"::1:8080", NULL, 0},
        {"a:0", NULL, 0},
        {"a:65536", NULL, 0},
        {"a:80/x", NULL, 0},
        {"http://a:80", NULL, 0},
        {"", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[256] = "";
        uint16_t port = 0;
        int rc = hc_parse_hostport(cases[i].s, host, sizeof(host), &port);
        if (cases[i].port == 0) {
            CHECK_EQ_INT(rc, HC_EINVAL);
        } else {
            CHECK_EQ_INT(rc, 0);
            CHECK_EQ_STR(host, cases[i].host);
            CHECK_EQ_INT(port, cases[i].port);
        }
    }
    char small[4];
    uint16_t port;
    CHECK_EQ_INT(hc_parse_hostport("toolong:80", small, sizeof(small), &port), HC_EINVAL);

    hc_host_t h4 = {.host = "a.b", .port = 7000}, h6 = {.host = "::1", .port = 7000, .ipv6 = 1};
    char out[300];
    hc_host_format(&h4, out, sizeof(out));
    CHECK_EQ_STR(out, "a.b:7000");
    hc_host_format(&h6, out, sizeof(out));
    CHECK_EQ_STR(out, "[::1]:7000");
}

static hc_test_t tests[] = {
    {"hosts_parse", test_hosts_parse},
    {"find_self", test_find_self},
    {"hostport", test_hostport},
};

HC_TEST_MAIN(tests)
