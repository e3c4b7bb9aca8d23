/* test_config.c: the configuration contract (SPEC section 2): HA_HOSTS parsing, finding this
 * node, sizes, env and flags, and every validation error. Certificates are generated here with
 * the OpenSSL API into a temporary directory that is removed at exit. */
#include "config.h"

#include "hacache.h"
#include "certs.h"
#include "test.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DAY        (24 * 3600)
#define GOOD_TOKEN "0123456789abcdef0123456789abcdef" /* 32 bytes */

/* ---------------------------------------------------------------------------------------- */
/* helpers */

/* An injected environment: {name, value} pairs ending with {NULL, NULL}. */
typedef struct {
    const char *name, *value;
} kv_t;

static const char *env_get(void *ud, const char *name)
{
    for (const kv_t *kv = ud; kv != NULL && kv->name != NULL; kv++) {
        if (strcmp(kv->name, name) == 0) {
            return kv->value;
        }
    }
    return NULL;
}

/* Loads `env` and the flags (a NULL-terminated list) with system hostname "testhost". */
static int load(hc_config_t *c, const kv_t *env, hc_config_errors_t *errs, ...)
{
    char *argv[32] = {"hacached"};
    int argc = 1;
    va_list ap;
    va_start(ap, errs);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = a;
    }
    va_end(ap);
    hc_config_init(c);
    memset(errs, 0, sizeof(*errs));
    return hc_config_load(c, argc, argv, env_get, (void *)env, "testhost", errs);
}

/* Is there a line that starts with "var: " and contains `needle`? */
static int has_error(const hc_config_errors_t *e, const char *var, const char *needle)
{
    size_t vl = strlen(var);
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->line[i], var, vl) == 0 && strncmp(e->line[i] + vl, ": ", 2) == 0 &&
            strstr(e->line[i], needle) != NULL) {
            return 1;
        }
    }
    return 0;
}

static void dump_errors(const hc_config_errors_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        fprintf(stderr, "    | %s\n", e->line[i]);
    }
}

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

static void test_sizes(void)
{
    static const struct {
        const char *s;
        int ok;
        uint64_t want;
    } cases[] = {
        {"0", 1, 0},
        {"1000", 1, 1000},
        {"512B", 1, 512},
        {"64KiB", 1, 64 << 10},
        {"512MiB", 1, 512ull << 20},
        {"2GiB", 1, 2ull << 30},
        {"1TiB", 1, 1ull << 40},
        {"512Mi", 1, 512ull << 20},
        {"2Gi", 1, 2ull << 30},
        {"1k", 1, 1000},
        {"1K", 1, 1000},
        {"1KB", 1, 1000},
        {"10MB", 1, 10000000},
        {"10M", 1, 10000000},
        {"3G", 1, 3000000000ull},
        {"3GB", 1, 3000000000ull},
        {"2TB", 1, 2000000000000ull},
        {"1 MiB", 1, 1 << 20},
        {"1 KB", 1, 1000},
        {"1mib", 1, 1 << 20},
        {"18446744073709551615", 1, UINT64_MAX},
        {"", 0, 0},
        {"-1", 0, 0},
        {"+1", 0, 0},
        {" 1", 0, 0},
        {"1 ", 0, 0},
        {"1  MiB", 0, 0},
        {"MiB", 0, 0},
        {"1.5GiB", 0, 0},
        {"1XB", 0, 0},
        {"1MiBs", 0, 0},
        {"0x10", 0, 0},
        {"18446744073709551616", 0, 0},
        {"17179869184GiB", 0, 0},
        {"16777216TiB", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int rc = hc_parse_size(cases[i].s, &v);
        if (cases[i].ok) {
            if (rc != 0 || v != cases[i].want) {
                fprintf(stderr, "  \"%s\": rc %d value %" PRIu64 ", want %" PRIu64 "\n", cases[i].s,
                        rc, v, cases[i].want);
                hc_test_failures_++;
            }
        } else if (rc != HC_EINVAL) {
            fprintf(stderr, "  \"%s\" was accepted as %" PRIu64 "\n", cases[i].s, v);
            hc_test_failures_++;
        }
    }
    uint64_t v;
    CHECK_EQ_INT(hc_parse_size(NULL, &v), HC_EINVAL);
}

/* ---------------------------------------------------------------------------------------- */
/* loading: defaults, environment, flags */

static void test_defaults(void)
{
    hc_config_t c;
    hc_config_errors_t e;
    static const kv_t none[] = {{NULL, NULL}};
    REQUIRE(load(&c, none, &e, NULL) == 0);
    CHECK_EQ_INT(e.n, 0);
    CHECK_EQ_INT(c.ha_mode, 0);
    CHECK(c.ha_hosts_raw == NULL && c.hosts.n == 0);
    CHECK(c.hostname_overwrite == NULL);
    CHECK_EQ_STR(c.hostname, "testhost");
    CHECK_EQ_INT(c.self_index, -1);
    CHECK_EQ_STR(c.listen_addr, "0.0.0.0");
    CHECK(c.n_auth_tokens == 0 && c.auth_tokens == NULL && c.auth_token_file == NULL);
    CHECK_EQ_INT(c.tls, 1);
    CHECK(c.tls_server_cert == NULL && c.tls_client_cert == NULL && c.tls_ca_client == NULL);
    CHECK_EQ_STR(c.http_addr, "127.0.0.1:8080");
    CHECK(c.http_tls_cert == NULL && c.n_api_tokens == 0 && c.resp_addr == NULL);
    CHECK_EQ_INT(c.api_insecure, 0);
    CHECK_EQ_INT(c.max_memory, 256ull << 20);
    CHECK_EQ_INT(c.max_key_size, 1024);
    CHECK_EQ_INT(c.max_value_size, 1 << 20);
    CHECK_EQ_INT(c.heartbeat_ms, 100);
    CHECK_EQ_INT(c.election_timeout_ms, 1000);
    CHECK_EQ_INT(c.quorum_loss_grace_ms, 1000);
    CHECK(c.data_dir == NULL); /* optional: none by default (SPEC §2) */
    CHECK_EQ_INT(c.log_level, HC_LOG_INFO);
    CHECK_EQ_INT(c.log_format, HC_LOG_TEXT);
    CHECK_EQ_INT(c.shutdown_timeout_ms, 5000);
    CHECK_EQ_INT(c.expiry_interval_ms, 100);
    CHECK(!c.cmd_help && !c.cmd_version && !c.cmd_check_config);

    /* the default configuration is valid */
    CHECK_EQ_INT(hc_config_validate(&c, time(NULL), &e), 0);
    CHECK_EQ_INT(e.n, 0);
    dump_errors(&e);
    hc_config_free(&c);

    /* init alone is valid and free-able; free twice is harmless */
    hc_config_init(&c);
    memset(&e, 0, sizeof(e));
    CHECK_EQ_INT(hc_config_validate(&c, time(NULL), &e), 0);
    CHECK_EQ_INT(e.n, 0);
    hc_config_free(&c);
    hc_config_free(&c);

    /* gethostname() when neither HOSTNAME nor a system hostname is given */
    char sys[256] = "";
    gethostname(sys, sizeof(sys) - 1);
    char *argv[] = {"hacached"};
    hc_config_init(&c);
    memset(&e, 0, sizeof(e));
    CHECK_EQ_INT(hc_config_load(&c, 1, argv, env_get, (void *)none, NULL, &e), 0);
    CHECK_EQ_STR(c.hostname, sys);
    hc_config_free(&c);
}

static void test_env(void)
{
    static const kv_t env[] = {
        {"HA_MODE", "TRUE"},
        {"HA_HOSTS", "http://a:7000, http://b:7000"},
        {"HOSTNAME_OVERWRITE", "a:7000"},
        {"HOSTNAME", "b"},
        {"CACHE_LISTEN_ADDR", "::"},
        {"CACHE_AUTH_TOKEN", GOOD_TOKEN "\n"},
        {"CACHE_TLS", "off"},
        {"CACHE_TLS_SERVER_CERT", "/s.pem"},
        {"CACHE_TLS_SERVER_KEY", "/s.key"},
        {"CACHE_TLS_CA_SERVER", "/ca.pem"},
        {"CACHE_TLS_CLIENT_VALIDATE_DOMAIN", "peers.local"},
        {"CACHE_TLS_SNI_OVERWRITE", "sni.local"},
        {"CACHE_HTTP_ADDR", "[::1]:9090"},
        {"CACHE_API_TOKEN", "api-token-0123456789"},
        {"CACHE_API_INSECURE", "yes"},
        {"CACHE_RESP_ADDR", "127.0.0.1:6379"},
        {"CACHE_MAX_MEMORY", "2GiB"},
        {"CACHE_MAX_KEY_SIZE", " 4KiB "},
        {"CACHE_MAX_VALUE_SIZE", "8MB"},
        {"CACHE_HEARTBEAT_MS", "50"},
        {"CACHE_ELECTION_TIMEOUT_MS", "700"},
        {"CACHE_DATA_DIR", "/data"},
        {"CACHE_LOG_LEVEL", "debug"},
        {"CACHE_LOG_FORMAT", "json"},
        {"CACHE_SHUTDOWN_TIMEOUT_MS", "0"},
        {"CACHE_EXPIRY_INTERVAL_MS", "250"},
        /* redhac knobs without a meaning here, and strangers: never errors */
        {"CACHE_RECONNECT_TIMEOUT_UPPER", "5000"},
        {"CACHE_RECONNECT_TIMEOUT_LOWER", "2500"},
        {"CACHE_ELECTION_TIMEOUT", "5"},
        {"CACHE_BUF_SERVER", "128"},
        {"CACHE_KEEPALIVE_INTERVAL", "5"},
        {"CACHE_SOMETHING_ELSE", "whatever"},
        {NULL, NULL},
    };
    hc_config_t c;
    hc_config_errors_t e;
    CHECK_EQ_INT(load(&c, env, &e, NULL), 0);
    dump_errors(&e);
    CHECK_EQ_INT(c.ha_mode, 1);
    CHECK_EQ_STR(c.ha_hosts_raw, "http://a:7000, http://b:7000");
    CHECK_EQ_INT(c.hosts.n, 2);
    CHECK_EQ_STR(c.hostname_overwrite, "a:7000");
    CHECK_EQ_STR(c.hostname, "b");
    CHECK_EQ_STR(c.listen_addr, "::");
    REQUIRE(c.n_auth_tokens == 1);
    CHECK_EQ_STR(c.auth_tokens[0], GOOD_TOKEN); /* trailing newline dropped */
    CHECK_EQ_INT(c.tls, 0);
    CHECK_EQ_STR(c.tls_client_cert, "/s.pem"); /* client pair defaults to the server pair */
    CHECK_EQ_STR(c.tls_client_key, "/s.key");
    CHECK_EQ_STR(c.tls_ca_client, "/ca.pem");
    CHECK_EQ_STR(c.tls_client_validate_domain, "peers.local");
    CHECK_EQ_STR(c.tls_sni_overwrite, "sni.local");
    CHECK_EQ_STR(c.http_addr, "[::1]:9090");
    REQUIRE(c.n_api_tokens == 1);
    CHECK_EQ_STR(c.api_tokens[0], "api-token-0123456789");
    CHECK_EQ_INT(c.api_insecure, 1);
    CHECK_EQ_STR(c.resp_addr, "127.0.0.1:6379");
    CHECK_EQ_INT(c.max_memory, 2ull << 30);
    CHECK_EQ_INT(c.max_key_size, 4096);
    CHECK_EQ_INT(c.max_value_size, 8000000);
    CHECK_EQ_INT(c.heartbeat_ms, 50);
    CHECK_EQ_INT(c.election_timeout_ms, 700);
    CHECK_EQ_INT(c.quorum_loss_grace_ms, 700); /* follows the election timeout */
    CHECK_EQ_STR(c.data_dir, "/data");
    CHECK_EQ_INT(c.log_level, HC_LOG_DEBUG);
    CHECK_EQ_INT(c.log_format, HC_LOG_JSON);
    CHECK_EQ_INT(c.shutdown_timeout_ms, 0);
    CHECK_EQ_INT(c.expiry_interval_ms, 250);
    hc_config_free(&c);

    /* explicit grace, separate client pair, "off", and empty values meaning the default */
    static const kv_t env2[] = {
        {"CACHE_ELECTION_TIMEOUT_MS", "3000"},
        {"CACHE_QUORUM_LOSS_GRACE_MS", "10000"},
        {"CACHE_TLS_SERVER_CERT", "/s.pem"},
        {"CACHE_TLS_SERVER_KEY", "/s.key"},
        {"CACHE_TLS_CLIENT_CERT", "/c.pem"},
        {"CACHE_TLS_CLIENT_KEY", "/c.key"},
        {"CACHE_TLS_CA_SERVER", "/ca.pem"},
        {"CACHE_TLS_CA_CLIENT", "/ca2.pem"},
        {"CACHE_RESP_ADDR", "off"},
        {"HA_MODE", ""},
        {"CACHE_HTTP_ADDR", ""},
        {NULL, NULL},
    };
    CHECK_EQ_INT(load(&c, env2, &e, NULL), 0);
    CHECK_EQ_INT(c.quorum_loss_grace_ms, 10000);
    CHECK_EQ_STR(c.tls_client_cert, "/c.pem");
    CHECK_EQ_STR(c.tls_client_key, "/c.key");
    CHECK_EQ_STR(c.tls_ca_client, "/ca2.pem");
    CHECK(c.resp_addr == NULL);
    CHECK_EQ_INT(c.ha_mode, 0);
    CHECK_EQ_STR(c.http_addr, "127.0.0.1:8080");
    hc_config_free(&c);
}

static void test_booleans(void)
{
    static const struct {
        const char *text;
        int want; /* -1: rejected */
    } cases[] = {
        {"true", 1}, {"TRUE", 1}, {"True", 1},    {"1", 1},     {"yes", 1},    {"YES", 1},
        {"on", 1},   {"On", 1},   {" true ", 1},  {"false", 0}, {"False", 0},  {"0", 0},
        {"no", 0},   {"NO", 0},   {"off", 0},     {"OFF", 0},   {"maybe", -1}, {"2", -1},
        {"tru", -1}, {"y", -1},   {"enable", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kv_t env[] = {{"CACHE_API_INSECURE", cases[i].text}, {NULL, NULL}};
        hc_config_t c;
        hc_config_errors_t e;
        int rc = load(&c, env, &e, NULL);
        if (cases[i].want < 0) {
            CHECK_EQ_INT(rc, HC_EINVAL);
            CHECK(has_error(&e, "CACHE_API_INSECURE", "is not a boolean"));
        } else {
            CHECK_EQ_INT(rc, 0);
            if (c.api_insecure != cases[i].want) {
                fprintf(stderr, "  \"%s\" -> %d\n", cases[i].text, c.api_insecure);
                hc_test_failures_++;
            }
        }
        hc_config_free(&c);
    }
}

static void test_flags(void)
{
    static const kv_t env[] = {
        {"HA_MODE", "false"},
        {"HA_HOSTS", "a:1"},
        {"CACHE_LOG_LEVEL", "warn"},
        {"CACHE_MAX_MEMORY", "1GiB"},
        {"CACHE_TLS", "true"},
        {"CACHE_HTTP_ADDR", "127.0.0.1:1"},
        {NULL, NULL},
    };
    hc_config_t c;
    hc_config_errors_t e;
    /* flags win over the environment; --x value, --x=value, bare boolean flags */
    CHECK_EQ_INT(load(&c, env, &e, "--ha-mode", "--ha-hosts", "b:2,c:3", "--log-level=trace",
                      "--max-memory", "2GiB", "--tls=false", "--hostname-overwrite", "b",
                      "--http-addr=[::1]:8081", "--api-insecure", "--check-config", NULL),
                 0);
    dump_errors(&e);
    CHECK_EQ_INT(c.ha_mode, 1);
    CHECK_EQ_STR(c.ha_hosts_raw, "b:2,c:3");
    CHECK_EQ_INT(c.hosts.n, 2);
    CHECK_EQ_INT(c.log_level, HC_LOG_TRACE);
    CHECK_EQ_INT(c.max_memory, 2ull << 30);
    CHECK_EQ_INT(c.tls, 0);
    CHECK_EQ_STR(c.hostname_overwrite, "b");
    CHECK_EQ_STR(c.http_addr, "[::1]:8081");
    CHECK_EQ_INT(c.api_insecure, 1);
    CHECK_EQ_INT(c.cmd_check_config, 1);
    CHECK_EQ_INT(c.cmd_help, 0);
    hc_config_free(&c);

    /* a boolean flag takes the next argument only when it is a boolean */
    CHECK_EQ_INT(load(&c, env, &e, "--ha-mode", "false", "--tls", "--api-insecure", "no",
                      "--version", "-h", NULL),
                 0);
    CHECK_EQ_INT(c.ha_mode, 0);
    CHECK_EQ_INT(c.tls, 1);
    CHECK_EQ_INT(c.api_insecure, 0);
    CHECK_EQ_INT(c.cmd_version, 1);
    CHECK_EQ_INT(c.cmd_help, 1);
    hc_config_free(&c);
    CHECK_EQ_INT(load(&c, env, &e, "--help", NULL), 0);
    CHECK_EQ_INT(c.cmd_help, 1);
    hc_config_free(&c);

    /* a bad environment value overridden by a flag is no error */
    static const kv_t bad_env[] = {
        {"CACHE_MAX_MEMORY", "lots"}, {"HA_HOSTS", "a:1,"}, {"HA_MODE", "perhaps"}, {NULL, NULL}};
    CHECK_EQ_INT(load(&c, bad_env, &e, "--max-memory=1GiB", "--ha-hosts=a:1", "--ha-mode=0", NULL),
                 0);
    dump_errors(&e);
    hc_config_free(&c);
    CHECK_EQ_INT(load(&c, bad_env, &e, NULL), HC_EINVAL);
    CHECK(has_error(&e, "CACHE_MAX_MEMORY", "\"lots\" is not a size"));
    CHECK(has_error(&e, "HA_HOSTS", "entry 2 is empty"));
    CHECK(has_error(&e, "HA_MODE", "\"perhaps\" is not a boolean"));
    hc_config_free(&c);

    /* an empty flag value resets to the default */
    CHECK_EQ_INT(load(&c, env, &e, "--log-level=", "--max-memory", "", NULL), 0);
    CHECK_EQ_INT(c.log_level, HC_LOG_INFO);
    CHECK_EQ_INT(c.max_memory, 256ull << 20);
    hc_config_free(&c);

    /* flag errors */
    static const struct {
        const char *args[3];
        const char *var, *needle;
    } errs[] = {
        {{"--frobnicate", NULL}, "--frobnicate", "unknown flag"},
        {{"--frob=1", NULL}, "--frob", "unknown flag"},
        {{"--ha", NULL}, "--ha", "unknown flag"}, /* no prefix abbreviations */
        {{"stray", NULL}, "stray", "unexpected argument"},
        {{"-x", NULL}, "-x", "unexpected argument"},
        {{"--", NULL}, "--", "unexpected argument"},
        {{"--ha-hosts", NULL}, "HA_HOSTS", "--ha-hosts needs a value"},
        {{"--ha-mode=maybe", NULL}, "HA_MODE", "--ha-mode \"maybe\" is not a boolean"},
        {{"--heartbeat-ms", "1s", NULL}, "CACHE_HEARTBEAT_MS", "--heartbeat-ms \"1s\""},
        {{"--election-timeout-ms=-5", NULL}, "CACHE_ELECTION_TIMEOUT_MS", "not a whole number"},
        {{"--shutdown-timeout-ms=4294967296", NULL}, "CACHE_SHUTDOWN_TIMEOUT_MS", "not a whole"},
        {{"--max-key-size=1.5KiB", NULL}, "CACHE_MAX_KEY_SIZE", "is not a size"},
        {{"--log-level=loud", NULL}, "CACHE_LOG_LEVEL", "is not a log level"},
        {{"--log-format=xml", NULL}, "CACHE_LOG_FORMAT", "is not a log format"},
        {{"--ha-hosts=ftp://a:1", NULL}, "HA_HOSTS", "unknown scheme"},
        {{"--version=1", NULL}, "--version", "takes no value"},
        {{"--auth-token", GOOD_TOKEN, "--auth-token-file=/x"}, "CACHE_AUTH_TOKEN_FILE", "not both"},
    };
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        CHECK_EQ_INT(load(&c, NULL, &e, errs[i].args[0], errs[i].args[1], errs[i].args[2], NULL),
                     HC_EINVAL);
        if (!has_error(&e, errs[i].var, errs[i].needle)) {
            fprintf(stderr, "  %s: no \"%s: ...%s...\"\n", errs[i].args[0], errs[i].var,
                    errs[i].needle);
            dump_errors(&e);
            hc_test_failures_++;
        }
        hc_config_free(&c);
    }
}

/* Every knob of SPEC section 2 has the derived flag (strip CACHE_, lowercase, '_' -> '-') and
 * setting it by flag equals setting it by environment. */
static const char *const spec_knobs[] = {
    "HA_MODE",
    "HA_HOSTS",
    "HOSTNAME_OVERWRITE",
    "HOSTNAME",
    "CACHE_LISTEN_ADDR",
    "CACHE_AUTH_TOKEN",
    "CACHE_AUTH_TOKEN_FILE",
    "CACHE_TLS",
    "CACHE_TLS_SERVER_CERT",
    "CACHE_TLS_SERVER_KEY",
    "CACHE_TLS_CLIENT_CERT",
    "CACHE_TLS_CLIENT_KEY",
    "CACHE_TLS_CA_SERVER",
    "CACHE_TLS_CA_CLIENT",
    "CACHE_TLS_CLIENT_VALIDATE_DOMAIN",
    "CACHE_TLS_SNI_OVERWRITE",
    "CACHE_HTTP_ADDR",
    "CACHE_HTTP_TLS_CERT",
    "CACHE_HTTP_TLS_KEY",
    "CACHE_API_TOKEN",
    "CACHE_API_TOKEN_FILE",
    "CACHE_API_INSECURE",
    "CACHE_RESP_ADDR",
    "CACHE_MAX_MEMORY",
    "CACHE_MAX_KEY_SIZE",
    "CACHE_MAX_VALUE_SIZE",
    "CACHE_HEARTBEAT_MS",
    "CACHE_ELECTION_TIMEOUT_MS",
    "CACHE_QUORUM_LOSS_GRACE_MS",
    "CACHE_DATA_DIR",
    "CACHE_LOG_LEVEL",
    "CACHE_LOG_FORMAT",
    "CACHE_SHUTDOWN_TIMEOUT_MS",
    "CACHE_EXPIRY_INTERVAL_MS",
};

static void flag_of(const char *env, char *out, size_t outlen)
{
    if (strncmp(env, "CACHE_", 6) == 0) {
        env += 6;
    }
    snprintf(out, outlen, "--%s", env);
    for (char *p = out + 2; *p; p++) {
        *p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    }
}

/* A value that every knob accepts syntactically and that is not its default. */
static const char *value_for(const char *env)
{
    static const kv_t values[] = {
        {"HA_MODE", "true"},
        {"CACHE_TLS", "false"},
        {"CACHE_API_INSECURE", "1"},
        {"HA_HOSTS", "x:1"},
        {"CACHE_MAX_MEMORY", "2MiB"},
        {"CACHE_MAX_KEY_SIZE", "2KiB"},
        {"CACHE_MAX_VALUE_SIZE", "2MiB"},
        {"CACHE_LOG_LEVEL", "warn"},
        {"CACHE_LOG_FORMAT", "json"},
        {"CACHE_HTTP_ADDR", "[::1]:1"},
        {"CACHE_RESP_ADDR", "[::1]:2"},
        {NULL, NULL},
    };
    const char *v = env_get((void *)values, env);
    if (v != NULL) {
        return v;
    }
    if (strstr(env, "_MS") != NULL) {
        return "321";
    }
    return "12345678901234567"; /* names, paths, tokens */
}

static int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int configs_equal(const hc_config_t *a, const hc_config_t *b)
{
    int eq = a->ha_mode == b->ha_mode && a->tls == b->tls && a->api_insecure == b->api_insecure &&
             a->max_memory == b->max_memory && a->max_key_size == b->max_key_size &&
             a->max_value_size == b->max_value_size && a->heartbeat_ms == b->heartbeat_ms &&
             a->election_timeout_ms == b->election_timeout_ms &&
             a->quorum_loss_grace_ms == b->quorum_loss_grace_ms &&
             a->shutdown_timeout_ms == b->shutdown_timeout_ms &&
             a->expiry_interval_ms == b->expiry_interval_ms && a->log_level == b->log_level &&
             a->log_format == b->log_format && a->hosts.n == b->hosts.n &&
             a->n_auth_tokens == b->n_auth_tokens && a->n_api_tokens == b->n_api_tokens;
    const char *sa[] = {a->ha_hosts_raw,      a->hostname_overwrite, a->hostname,
                        a->listen_addr,       a->auth_token_file,    a->tls_server_cert,
                        a->tls_server_key,    a->tls_client_cert,    a->tls_client_key,
                        a->tls_ca_server,     a->tls_ca_client,      a->tls_client_validate_domain,
                        a->tls_sni_overwrite, a->http_addr,          a->http_tls_cert,
                        a->http_tls_key,      a->api_token_file,     a->resp_addr,
                        a->data_dir};
    const char *sb[] = {b->ha_hosts_raw,      b->hostname_overwrite, b->hostname,
                        b->listen_addr,       b->auth_token_file,    b->tls_server_cert,
                        b->tls_server_key,    b->tls_client_cert,    b->tls_client_key,
                        b->tls_ca_server,     b->tls_ca_client,      b->tls_client_validate_domain,
                        b->tls_sni_overwrite, b->http_addr,          b->http_tls_cert,
                        b->http_tls_key,      b->api_token_file,     b->resp_addr,
                        b->data_dir};
    for (size_t i = 0; i < sizeof(sa) / sizeof(sa[0]); i++) {
        eq = eq && str_eq(sa[i], sb[i]);
    }
    for (size_t i = 0; eq && i < a->n_auth_tokens; i++) {
        eq = str_eq(a->auth_tokens[i], b->auth_tokens[i]);
    }
    for (size_t i = 0; eq && i < a->n_api_tokens; i++) {
        eq = str_eq(a->api_tokens[i], b->api_tokens[i]);
    }
    return eq;
}

static void test_flag_per_knob(void)
{
    hc_config_t def;
    hc_config_errors_t e0;
    REQUIRE(load(&def, NULL, &e0, NULL) == 0);
    for (size_t i = 0; i < sizeof(spec_knobs) / sizeof(spec_knobs[0]); i++) {
        const char *env_name = spec_knobs[i], *value = value_for(env_name);
        char flag[64], arg[128];
        flag_of(env_name, flag, sizeof(flag));
        snprintf(arg, sizeof(arg), "%s=%s", flag, value);
        kv_t env[] = {{env_name, value}, {NULL, NULL}};
        hc_config_t by_env, by_flag, by_flag2;
        hc_config_errors_t e1, e2, e3;
        int rc1 = load(&by_env, env, &e1, NULL);
        int rc2 = load(&by_flag, NULL, &e2, arg, NULL);
        int rc3 = load(&by_flag2, NULL, &e3, flag, value, NULL); /* "--x value" */
        if (rc1 != 0 || rc2 != 0 || rc3 != 0) {
            fprintf(stderr, "  %s / %s: %d %d %d\n", env_name, arg, rc1, rc2, rc3);
            dump_errors(&e1);
            dump_errors(&e2);
            hc_test_failures_++;
        }
        if (!configs_equal(&by_env, &by_flag) || !configs_equal(&by_env, &by_flag2)) {
            fprintf(stderr, "  %s and %s differ\n", env_name, arg);
            hc_test_failures_++;
        }
        if (configs_equal(&by_env, &def)) {
            fprintf(stderr, "  %s=%s changed nothing\n", env_name, value);
            hc_test_failures_++;
        }
        hc_config_free(&by_env);
        hc_config_free(&by_flag);
        hc_config_free(&by_flag2);
    }
    hc_config_free(&def);
}

static void test_help(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f != NULL);
    hc_config_print_help(f);
    fclose(f);
    for (size_t i = 0; i < sizeof(spec_knobs) / sizeof(spec_knobs[0]); i++) {
        char flag[64], needle[128];
        flag_of(spec_knobs[i], flag, sizeof(flag));
        snprintf(needle, sizeof(needle), "(%s, default: ", spec_knobs[i]);
        if (strstr(text, needle) == NULL || strstr(text, flag) == NULL) {
            fprintf(stderr, "  help lacks %s / %s\n", needle, flag);
            hc_test_failures_++;
        }
    }
    static const char *const defaults[] = {
        "(HA_MODE, default: false)",
        "(CACHE_TLS, default: true)",
        "(CACHE_LISTEN_ADDR, default: 0.0.0.0)",
        "(CACHE_HTTP_ADDR, default: 127.0.0.1:8080)",
        "(CACHE_MAX_MEMORY, default: 256MiB)",
        "(CACHE_HEARTBEAT_MS, default: 100)",
        "(CACHE_ELECTION_TIMEOUT_MS, default: 1000)",
        "(CACHE_QUORUM_LOSS_GRACE_MS, default: CACHE_ELECTION_TIMEOUT_MS)",
        "(CACHE_SHUTDOWN_TIMEOUT_MS, default: 5000)",
        "(CACHE_RESP_ADDR, default: off)",
        "(CACHE_LOG_LEVEL, default: info)",
        "(CACHE_LOG_FORMAT, default: text)",
        "--check-config",
        "--version",
        "CACHE_RECONNECT_TIMEOUT_UPPER",
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (strstr(text, defaults[i]) == NULL) {
            fprintf(stderr, "  help lacks %s\n", defaults[i]);
            hc_test_failures_++;
        }
    }
    free(text);
}

static void test_error_lines(void)
{
    /* identical lines are kept once; at most HC_CONFIG_MAX_ERRORS lines; each names a variable */
    hc_config_t c;
    hc_config_errors_t e;
    char *args[80];
    char buf[80][32];
    for (int i = 0; i < 40; i++) {
        snprintf(buf[i], sizeof(buf[i]), "--unknown-%d", i);
        args[i] = buf[i];
    }
    char *argv[41] = {"hacached"};
    memcpy(argv + 1, args, 40 * sizeof(char *));
    hc_config_init(&c);
    memset(&e, 0, sizeof(e));
    CHECK_EQ_INT(hc_config_load(&c, 41, argv, env_get, NULL, "h", &e), HC_EINVAL);
    CHECK_EQ_INT(e.n, HC_CONFIG_MAX_ERRORS);
    hc_config_free(&c);

    CHECK_EQ_INT(load(&c, NULL, &e, "--nope", "--nope", NULL), HC_EINVAL);
    CHECK_EQ_INT(e.n, 1);
    /* validate after a failed load does not repeat the HA_HOSTS line */
    static const kv_t env[] = {{"HA_HOSTS", "a:1,a:1"}, {NULL, NULL}};
    hc_config_free(&c);
    CHECK_EQ_INT(load(&c, env, &e, NULL), HC_EINVAL);
    CHECK_EQ_INT(e.n, 1);
    CHECK_EQ_INT(hc_config_validate(&c, time(NULL), &e), HC_EINVAL);
    CHECK_EQ_INT(e.n, 1);
    CHECK(has_error(&e, "HA_HOSTS", "entries 1 and 2"));
    hc_config_free(&c);

    /* NULL errs: still counted */
    hc_config_init(&c);
    char *argv2[] = {"hacached", "--nope"};
    CHECK_EQ_INT(hc_config_load(&c, 2, argv2, env_get, NULL, "h", NULL), HC_EINVAL);
    hc_config_free(&c);
}

/* ---------------------------------------------------------------------------------------- */
/* certificates and files for validate */

static char tmpdir[64];

static void rm_tmpdir(void)
{
    static const char *const files[] = {
        "ca.pem",       "ca2.pem",       "bundle.pem",     "leaf.pem",   "leaf.key",
        "other.key",    "expired.pem",   "expired.key",    "future.pem", "future.key",
        "foreign.pem",  "foreign.key",   "client.pem",     "client.key", "nosan.pem",
        "nosan.key",    "garbage.pem",   "empty.pem",      "tokens",     "short-tokens",
        "blank-tokens", "api-tokens",    "chain.pem",      "inter.pem",  "chainleaf.key",
        "damaged.pem",  "encrypted.key", "bad-api-tokens",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    rmdir(tmpdir);
}

static const char *path(const char *name)
{
    static char bufs[16][128];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, 128, "%s/%s", tmpdir, name);
    return b;
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path(name), "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static EVP_PKEY *gen_key(void)
{
    return EVP_EC_gen("P-256");
}

static void write_certs(const char *name, X509 *a, X509 *b)
{
    hct_write_pem(path(name), a, b, NULL);
}

static void write_key(const char *name, EVP_PKEY *key)
{
    hct_write_pem(path(name), NULL, NULL, key);
}

/* Creates the fixture files once per process (tests may run alone, by name). */
static int fixtures(void)
{
    static int done;
    if (done) {
        return tmpdir[0] != '\0';
    }
    done = 1;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%.40s/hc-config-XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        tmpdir[0] = '\0';
        return 0;
    }
    atexit(rm_tmpdir);

    time_t now = time(NULL);
    const char *san = "DNS:localhost,DNS:hacache-0.hacache,IP:127.0.0.1,IP:::1";
    EVP_PKEY *ca_key = gen_key(), *ca2_key = gen_key(), *leaf_key = gen_key(),
             *other_key = gen_key(), *client_key = gen_key(), *inter_key = gen_key(),
             *chainleaf_key = gen_key();
    X509 *ca = hct_cert(ca_key, "test CA", NULL, NULL, now - DAY, now + 365 * DAY, 1, NULL);
    X509 *ca2 = hct_cert(ca2_key, "other CA", NULL, NULL, now - DAY, now + 365 * DAY, 1, NULL);
    X509 *leaf = hct_cert(leaf_key, "node", ca, ca_key, now - DAY, now + 30 * DAY, 0, san);
    X509 *expired = hct_cert(leaf_key, "old", ca, ca_key, now - 30 * DAY, now - 2 * DAY, 0, san);
    X509 *future = hct_cert(leaf_key, "new", ca, ca_key, now + 2 * DAY, now + 30 * DAY, 0, san);
    X509 *foreign = hct_cert(leaf_key, "foreign", ca2, ca2_key, now - DAY, now + DAY, 0, san);
    X509 *client =
        hct_cert(client_key, "client", ca, ca_key, now - DAY, now + 30 * DAY, 0, "DNS:client");
    X509 *nosan = hct_cert(leaf_key, "nosan", ca, ca_key, now - DAY, now + 30 * DAY, 0,
                           "DNS:elsewhere.example");
    X509 *inter =
        hct_cert(inter_key, "intermediate", ca, ca_key, now - DAY, now + 30 * DAY, 1, NULL);
    X509 *chainleaf =
        hct_cert(chainleaf_key, "chained", inter, inter_key, now - DAY, now + 30 * DAY, 0, san);

    write_certs("ca.pem", ca, NULL);
    write_certs("ca2.pem", ca2, NULL);
    write_certs("bundle.pem", ca2, ca); /* rotation: old and new CA in one bundle */
    write_certs("leaf.pem", leaf, NULL);
    write_key("leaf.key", leaf_key);
    write_key("other.key", other_key);
    write_certs("expired.pem", expired, NULL);
    write_certs("future.pem", future, NULL);
    write_certs("foreign.pem", foreign, NULL);
    write_certs("client.pem", client, NULL);
    write_key("client.key", client_key);
    write_certs("nosan.pem", nosan, NULL);
    write_certs("chain.pem", chainleaf, inter);
    write_key("chainleaf.key", chainleaf_key);
    write_text("garbage.pem", "this is not PEM\n");
    write_text("empty.pem", "");
    write_text("damaged.pem", "");
    {
        /* a good certificate followed by a broken one */
        FILE *f = fopen(path("damaged.pem"), "w");
        if (f != NULL) {
            PEM_write_X509(f, leaf);
            fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n",
                  f);
            fclose(f);
        }
        f = fopen(path("encrypted.key"), "w");
        if (f != NULL) {
            PEM_write_PrivateKey(f, leaf_key, EVP_aes_128_cbc(), (unsigned char *)"passphrase", 10,
                                 NULL, NULL);
            fclose(f);
        }
    }
    write_text("tokens", "\nfirst-token-0123456789\r\n   \n\nsecond-token-0123456789\n");
    write_text("short-tokens", "first-token-0123456789\nshort\n");
    write_text("blank-tokens", "\n\r\n  \n");
    write_text("api-tokens", "api-token-one-0123456789\napi-token-two-0123456789");
    write_text("bad-api-tokens", "api token with spaces 0123\n");

    X509 *all[] = {ca, ca2, leaf, expired, future, foreign, client, nosan, inter, chainleaf};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        X509_free(all[i]);
    }
    EVP_PKEY *keys[] = {ca_key, ca2_key, leaf_key, other_key, client_key, inter_key, chainleaf_key};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        EVP_PKEY_free(keys[i]);
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* validate */

#define MAX_ENV 24

/* A cluster-mode environment (TLS on, valid files) with `over` replacing or adding variables;
 * a value of NULL in `over` removes the variable. */
static void cluster_env(kv_t *out, const kv_t *over)
{
    const kv_t base[] = {
        {"HA_MODE", "true"},
        {"HA_HOSTS", "https://127.0.0.1:7001, https://127.0.0.1:7002, https://127.0.0.1:7003"},
        {"HOSTNAME_OVERWRITE", "127.0.0.1:7001"},
        {"CACHE_AUTH_TOKEN", GOOD_TOKEN},
        {"CACHE_TLS_SERVER_CERT", path("leaf.pem")},
        {"CACHE_TLS_SERVER_KEY", path("leaf.key")},
        {"CACHE_TLS_CA_SERVER", path("ca.pem")},
        {NULL, NULL},
    };
    size_t n = 0;
    for (const kv_t *b = base; b->name; b++) {
        out[n++] = *b;
    }
    for (const kv_t *o = over; o && o->name; o++) {
        size_t j = 0;
        while (j < n && strcmp(out[j].name, o->name) != 0) {
            j++;
        }
        out[j] = *o;
        if (j == n && n < MAX_ENV - 1) {
            n++;
        }
    }
    /* drop removed variables */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].value != NULL) {
            out[w++] = out[i];
        }
    }
    out[w].name = out[w].value = NULL;
}

/* Loads and validates into one error list, as main does; the first failure wins. */
static int load_validate(hc_config_t *c, const kv_t *over, hc_config_errors_t *e, int cluster)
{
    kv_t env[MAX_ENV];
    if (cluster) {
        cluster_env(env, over);
    } else {
        size_t n = 0;
        for (const kv_t *o = over; o && o->name && n < MAX_ENV - 1; o++) {
            env[n++] = *o;
        }
        env[n].name = env[n].value = NULL;
    }
    int rc = load(c, env, e, NULL);
    int rc2 = hc_config_validate(c, time(NULL), e);
    return rc ? rc : rc2;
}

typedef struct {
    const char *name;
    kv_t over[5];
    int cluster;
    const char *var, *needle;
} bad_case_t;

/* Placeholders replaced by fixture paths, so the table can be static. */
static const char *resolve(const char *v)
{
    if (v != NULL && v[0] == '@') {
        return path(v + 1);
    }
    return v;
}

static void run_bad_cases(const bad_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kv_t over[6];
        size_t k = 0;
        for (; k < 5 && cases[i].over[k].name; k++) {
            over[k].name = cases[i].over[k].name;
            over[k].value = resolve(cases[i].over[k].value);
        }
        over[k].name = NULL;
        hc_config_t c;
        hc_config_errors_t e;
        int rc = load_validate(&c, over, &e, cases[i].cluster);
        if (rc != HC_EINVAL || !has_error(&e, cases[i].var, cases[i].needle)) {
            fprintf(stderr, "  %s: rc %d, want a line \"%s: ...%s...\"\n", cases[i].name, rc,
                    cases[i].var, cases[i].needle);
            dump_errors(&e);
            hc_test_failures_++;
        }
        for (size_t j = 0; j < e.n; j++) {
            CHECK(strchr(e.line[j], '\n') == NULL);
            CHECK(strstr(e.line[j], GOOD_TOKEN) == NULL); /* secrets never echoed */
        }
        hc_config_free(&c);
    }
}

static void test_validate_cluster_ok(void)
{
    REQUIRE(fixtures());
    static const struct {
        const char *name;
        kv_t over[5];
        int self;
    } cases[] = {
        {"base", {{NULL, NULL}}, 0},
        {"third node", {{"HOSTNAME_OVERWRITE", "127.0.0.1:7003"}}, 2},
        {"CA bundle with old and new CA, separate CA_CLIENT",
         {{"CACHE_TLS_CA_SERVER", "@bundle.pem"}, {"CACHE_TLS_CA_CLIENT", "@ca.pem"}},
         0},
        {"separate client pair",
         {{"CACHE_TLS_CLIENT_CERT", "@client.pem"}, {"CACHE_TLS_CLIENT_KEY", "@client.key"}},
         0},
        {"no scheme agrees with CACHE_TLS=true",
         {{"HA_HOSTS", "127.0.0.1:7001,127.0.0.1:7002"}},
         0},
        {"http with CACHE_TLS=false",
         {{"CACHE_TLS", "false"}, {"HA_HOSTS", "http://127.0.0.1:7001,http://127.0.0.1:7002"}},
         0},
        {"no scheme with CACHE_TLS=false",
         {{"CACHE_TLS", "false"}, {"HA_HOSTS", "127.0.0.1:7002,127.0.0.1:7001"}},
         1},
        {"token file with several tokens",
         {{"CACHE_AUTH_TOKEN", NULL}, {"CACHE_AUTH_TOKEN_FILE", "@tokens"}},
         0},
        {"intermediate in the certificate file",
         {{"CACHE_TLS_SERVER_CERT", "@chain.pem"}, {"CACHE_TLS_SERVER_KEY", "@chainleaf.key"}},
         0},
        {"first DNS label of HOSTNAME",
         {{"HOSTNAME_OVERWRITE", NULL},
          {"HOSTNAME", "hacache-1"},
          {"HA_HOSTS", "hacache-0.hacache:7000,hacache-1.hacache:7000,hacache-10.hacache:7000"},
          {"CACHE_TLS_CLIENT_VALIDATE_DOMAIN", "hacache-0.hacache"}},
         1},
        {"IPv6 peers",
         {{"HA_HOSTS", "[::1]:7001,[::1]:7002"}, {"HOSTNAME_OVERWRITE", "[::1]:7002"}},
         1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kv_t over[6];
        size_t k = 0;
        for (; k < 5 && cases[i].over[k].name; k++) {
            over[k].name = cases[i].over[k].name;
            over[k].value = resolve(cases[i].over[k].value);
        }
        over[k].name = NULL;
        hc_config_t c;
        hc_config_errors_t e;
        int rc = load_validate(&c, over, &e, 1);
        if (rc != 0 || c.self_index != cases[i].self) {
            fprintf(stderr, "  %s: rc %d self %d (want %d)\n", cases[i].name, rc, c.self_index,
                    cases[i].self);
            dump_errors(&e);
            hc_test_failures_++;
        }
        if (strcmp(cases[i].name, "token file with several tokens") == 0) {
            REQUIRE(c.n_auth_tokens == 2);
            CHECK_EQ_STR(c.auth_tokens[0], "first-token-0123456789");
            CHECK_EQ_STR(c.auth_tokens[1], "second-token-0123456789");
            /* validating again re-reads the file without duplicating tokens */
            CHECK_EQ_INT(hc_config_validate(&c, time(NULL), &e), 0);
            CHECK_EQ_INT(c.n_auth_tokens, 2);
        }
        hc_config_free(&c);
    }
}

static void test_validate_cluster_errors(void)
{
    REQUIRE(fixtures());
    static const bad_case_t cases[] = {
        {"no HA_HOSTS", {{"HA_HOSTS", NULL}}, 1, "HA_HOSTS", "required when HA_MODE=true"},
        {"not in HA_HOSTS",
         {{"HOSTNAME_OVERWRITE", "nothere"}},
         1,
         "HA_HOSTS",
         "this node \"nothere\" (from HOSTNAME_OVERWRITE) is not in HA_HOSTS; entries: "
         "127.0.0.1:7001, 127.0.0.1:7002, 127.0.0.1:7003"},
        {"not in HA_HOSTS by hostname",
         {{"HOSTNAME_OVERWRITE", NULL},
          {"HOSTNAME", "hacache-9"},
          {"HA_HOSTS", "hacache-0.hacache:7000,hacache-1.hacache:7000"},
          {"CACHE_TLS", "false"}},
         1,
         "HA_HOSTS",
         "this node \"hacache-9\" (from HOSTNAME or gethostname()) is not in HA_HOSTS; entries: "
         "hacache-0.hacache:7000, hacache-1.hacache:7000; set HOSTNAME_OVERWRITE"},
        {"two entries",
         {{"HOSTNAME_OVERWRITE", NULL}, {"HOSTNAME", "127.0.0.1"}},
         1,
         "HA_HOSTS",
         "matches 3 entries"},
        {"bad overwrite", {{"HOSTNAME_OVERWRITE", "a:b:c:d"}}, 1, "HOSTNAME_OVERWRITE", "not host"},
        {"no token", {{"CACHE_AUTH_TOKEN", NULL}}, 1, "CACHE_AUTH_TOKEN", "required"},
        {"short token",
         {{"CACHE_AUTH_TOKEN", "short"}},
         1,
         "CACHE_AUTH_TOKEN",
         "token is 5 bytes, at least 16 required"},
        {"15-byte token",
         {{"CACHE_AUTH_TOKEN", "0123456789abcde"}},
         1,
         "CACHE_AUTH_TOKEN",
         "token is 15 bytes"},
        {"token file missing",
         {{"CACHE_AUTH_TOKEN", NULL}, {"CACHE_AUTH_TOKEN_FILE", "@nope"}},
         1,
         "CACHE_AUTH_TOKEN_FILE",
         "cannot read"},
        {"token file short line",
         {{"CACHE_AUTH_TOKEN", NULL}, {"CACHE_AUTH_TOKEN_FILE", "@short-tokens"}},
         1,
         "CACHE_AUTH_TOKEN_FILE",
         "token on line 2"},
        {"token file blank",
         {{"CACHE_AUTH_TOKEN", NULL}, {"CACHE_AUTH_TOKEN_FILE", "@blank-tokens"}},
         1,
         "CACHE_AUTH_TOKEN_FILE",
         "holds no token"},
        {"token file is a directory",
         {{"CACHE_AUTH_TOKEN", NULL}, {"CACHE_AUTH_TOKEN_FILE", "/"}},
         1,
         "CACHE_AUTH_TOKEN_FILE",
         "not a regular file"},
        {"https without TLS",
         {{"CACHE_TLS", "false"}},
         1,
         "HA_HOSTS",
         "entry 1 \"https://127.0.0.1:7001\" needs CACHE_TLS=true"},
        {"http with TLS",
         {{"HA_HOSTS", "http://127.0.0.1:7001,http://127.0.0.1:7002"}},
         1,
         "HA_HOSTS",
         "disagrees with CACHE_TLS=true"},
        {"no server cert",
         {{"CACHE_TLS_SERVER_CERT", NULL}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "required when HA_MODE=true and CACHE_TLS=true"},
        {"no server key", {{"CACHE_TLS_SERVER_KEY", NULL}}, 1, "CACHE_TLS_SERVER_KEY", "required"},
        {"no CA", {{"CACHE_TLS_CA_SERVER", NULL}}, 1, "CACHE_TLS_CA_SERVER", "required"},
        {"missing cert file",
         {{"CACHE_TLS_SERVER_CERT", "@missing.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "missing.pem: No such file or directory"},
        {"missing key file",
         {{"CACHE_TLS_SERVER_KEY", "@missing.key"}},
         1,
         "CACHE_TLS_SERVER_KEY",
         "cannot read"},
        {"missing CA file",
         {{"CACHE_TLS_CA_SERVER", "@missing-ca.pem"}},
         1,
         "CACHE_TLS_CA_SERVER",
         "cannot read"},
        {"cert not PEM",
         {{"CACHE_TLS_SERVER_CERT", "@garbage.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "holds no PEM certificate"},
        {"damaged chain",
         {{"CACHE_TLS_SERVER_CERT", "@damaged.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "malformed PEM certificate after certificate 1"},
        {"key not PEM",
         {{"CACHE_TLS_SERVER_KEY", "@garbage.pem"}},
         1,
         "CACHE_TLS_SERVER_KEY",
         "not a PEM private key"},
        {"encrypted key",
         {{"CACHE_TLS_SERVER_KEY", "@encrypted.key"}},
         1,
         "CACHE_TLS_SERVER_KEY",
         "encrypted keys are not supported"},
        {"key not matching",
         {{"CACHE_TLS_SERVER_KEY", "@other.key"}},
         1,
         "CACHE_TLS_SERVER_KEY",
         "does not match the certificate in CACHE_TLS_SERVER_CERT"},
        {"expired",
         {{"CACHE_TLS_SERVER_CERT", "@expired.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "expired on 20"},
        {"not yet valid",
         {{"CACHE_TLS_SERVER_CERT", "@future.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "is not valid before 20"},
        {"empty CA",
         {{"CACHE_TLS_CA_SERVER", "@empty.pem"}},
         1,
         "CACHE_TLS_CA_SERVER",
         "holds no PEM certificate"},
        {"wrong CA",
         {{"CACHE_TLS_CA_SERVER", "@ca2.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "does not verify against CACHE_TLS_CA_SERVER"},
        {"foreign cert",
         {{"CACHE_TLS_SERVER_CERT", "@foreign.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "does not verify"},
        {"client cert from another CA",
         {{"CACHE_TLS_CLIENT_CERT", "@foreign.pem"}, {"CACHE_TLS_CLIENT_KEY", "@leaf.key"}},
         1,
         "CACHE_TLS_CLIENT_CERT",
         "does not verify against CACHE_TLS_CA_SERVER"},
        {"client CA mismatch",
         {{"CACHE_TLS_CA_CLIENT", "@ca2.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "does not verify against CACHE_TLS_CA_CLIENT"},
        {"client pair expired",
         {{"CACHE_TLS_CLIENT_CERT", "@expired.pem"}, {"CACHE_TLS_CLIENT_KEY", "@leaf.key"}},
         1,
         "CACHE_TLS_CLIENT_CERT",
         "expired on"},
        {"client key mismatch",
         {{"CACHE_TLS_CLIENT_CERT", "@client.pem"}, {"CACHE_TLS_CLIENT_KEY", "@leaf.key"}},
         1,
         "CACHE_TLS_CLIENT_KEY",
         "does not match"},
        {"client cert without key",
         {{"CACHE_TLS_CLIENT_CERT", "@client.pem"}},
         1,
         "CACHE_TLS_CLIENT_KEY",
         "set together with CACHE_TLS_CLIENT_CERT"},
        {"SAN without this host",
         {{"CACHE_TLS_SERVER_CERT", "@nosan.pem"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "no subjectAltName matching \"127.0.0.1\""},
        {"SAN without validate domain",
         {{"CACHE_TLS_CLIENT_VALIDATE_DOMAIN", "other.example"}},
         1,
         "CACHE_TLS_SERVER_CERT",
         "from CACHE_TLS_CLIENT_VALIDATE_DOMAIN"},
        {"HTTP on the peer port",
         {{"CACHE_HTTP_ADDR", "127.0.0.1:7001"}},
         1,
         "CACHE_HTTP_ADDR",
         "port 7001 is also this node's peer port"},
        {"bad HA_HOSTS in cluster", {{"HA_HOSTS", "a:1,a:1"}}, 1, "HA_HOSTS", "entries 1 and 2"},
    };
    run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A problem is reported once, under the variable that has it, not again for a derived one. */
static void test_validate_no_echo(void)
{
    REQUIRE(fixtures());
    static const struct {
        const char *name;
        kv_t over[3];
        const char *var, *needle, *absent; /* `absent`: in no line */
    } cases[] = {
        {"server cert without key",
         {{"CACHE_TLS_SERVER_CERT", "@missing.pem"}, {"CACHE_TLS_SERVER_KEY", NULL}},
         "CACHE_TLS_SERVER_CERT",
         "missing.pem: No such file",
         "CACHE_TLS_CLIENT"},
        {"expired server pair is not repeated as client pair",
         {{"CACHE_TLS_SERVER_CERT", "@expired.pem"}},
         "CACHE_TLS_SERVER_CERT",
         "expired",
         "CACHE_TLS_CLIENT"},
        {"wrong CA_SERVER is not repeated for the default CA_CLIENT",
         {{"CACHE_TLS_CA_SERVER", "@ca2.pem"}},
         "CACHE_TLS_SERVER_CERT",
         "CACHE_TLS_CA_SERVER",
         "CACHE_TLS_CA_CLIENT"},
        {"HTTP cert without key is still read",
         {{"CACHE_HTTP_TLS_CERT", "@missing.pem"}},
         "CACHE_HTTP_TLS_CERT",
         "cannot read",
         "CACHE_TLS_"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kv_t over[4];
        size_t k = 0;
        for (; k < 3 && cases[i].over[k].name; k++) {
            over[k].name = cases[i].over[k].name;
            over[k].value = resolve(cases[i].over[k].value);
        }
        over[k].name = NULL;
        hc_config_t c;
        hc_config_errors_t e;
        int rc = load_validate(&c, over, &e, 1);
        int bad = rc != HC_EINVAL || !has_error(&e, cases[i].var, cases[i].needle);
        for (size_t j = 0; j < e.n; j++) {
            bad |= strstr(e.line[j], cases[i].absent) != NULL;
        }
        if (bad) {
            fprintf(stderr, "  %s:\n", cases[i].name);
            dump_errors(&e);
            hc_test_failures_++;
        }
        hc_config_free(&c);
    }
}

static void test_validate_always(void)
{
    REQUIRE(fixtures());
    static const bad_case_t cases[] = {
        {"HTTP off loopback without token",
         {{"CACHE_HTTP_ADDR", "0.0.0.0:8080"}},
         0,
         "CACHE_API_TOKEN",
         "required because CACHE_HTTP_ADDR 0.0.0.0:8080 is not loopback"},
        {"HTTP on a name without token",
         {{"CACHE_HTTP_ADDR", "myhost:8080"}},
         0,
         "CACHE_API_TOKEN",
         "CACHE_API_INSECURE=true"},
        {"HTTP on v6 any without token",
         {{"CACHE_HTTP_ADDR", "[::]:8080"}},
         0,
         "CACHE_API_TOKEN",
         "required"},
        {"RESP off loopback without token",
         {{"CACHE_RESP_ADDR", "0.0.0.0:6379"}},
         0,
         "CACHE_API_TOKEN",
         "CACHE_RESP_ADDR"},
        {"short API token",
         {{"CACHE_API_TOKEN", "abc"}},
         0,
         "CACHE_API_TOKEN",
         "token is 3 bytes, at least 16 required"},
        {"API token with a space",
         {{"CACHE_API_TOKEN", "0123456789 abcdef"}},
         0,
         "CACHE_API_TOKEN",
         "whitespace"},
        {"API token file missing",
         {{"CACHE_API_TOKEN_FILE", "@nope"}},
         0,
         "CACHE_API_TOKEN_FILE",
         "cannot read"},
        {"API token file bad line",
         {{"CACHE_API_TOKEN_FILE", "@bad-api-tokens"}},
         0,
         "CACHE_API_TOKEN_FILE",
         "line 1"},
        {"bad HTTP addr", {{"CACHE_HTTP_ADDR", "8080"}}, 0, "CACHE_HTTP_ADDR", "has no port"},
        {"bad HTTP port", {{"CACHE_HTTP_ADDR", "127.0.0.1:0"}}, 0, "CACHE_HTTP_ADDR", "range"},
        {"bad RESP addr", {{"CACHE_RESP_ADDR", "::1:6379"}}, 0, "CACHE_RESP_ADDR", "brackets"},
        {"RESP on HTTP addr",
         {{"CACHE_RESP_ADDR", "127.0.0.1:8080"}},
         0,
         "CACHE_RESP_ADDR",
         "same address as CACHE_HTTP_ADDR"},
        {"HTTP cert without key",
         {{"CACHE_HTTP_TLS_CERT", "@leaf.pem"}},
         0,
         "CACHE_HTTP_TLS_KEY",
         "set together with CACHE_HTTP_TLS_CERT"},
        {"HTTP key without cert",
         {{"CACHE_HTTP_TLS_KEY", "@leaf.key"}},
         0,
         "CACHE_HTTP_TLS_CERT",
         "set together"},
        {"HTTP cert missing",
         {{"CACHE_HTTP_TLS_CERT", "@missing.pem"}, {"CACHE_HTTP_TLS_KEY", "@leaf.key"}},
         0,
         "CACHE_HTTP_TLS_CERT",
         "cannot read"},
        {"HTTP key mismatch",
         {{"CACHE_HTTP_TLS_CERT", "@leaf.pem"}, {"CACHE_HTTP_TLS_KEY", "@other.key"}},
         0,
         "CACHE_HTTP_TLS_KEY",
         "does not match"},
        {"HTTP cert expired",
         {{"CACHE_HTTP_TLS_CERT", "@expired.pem"}, {"CACHE_HTTP_TLS_KEY", "@leaf.key"}},
         0,
         "CACHE_HTTP_TLS_CERT",
         "expired"},
        {"bad HA_HOSTS standalone", {{"HA_HOSTS", "a:1,"}}, 0, "HA_HOSTS", "entry 2 is empty"},
        {"listen addr", {{"CACHE_LISTEN_ADDR", "eth0"}}, 0, "CACHE_LISTEN_ADDR", "not an IPv4"},
        {"heartbeat >= election",
         {{"CACHE_HEARTBEAT_MS", "1000"}},
         0,
         "CACHE_HEARTBEAT_MS",
         "must be below CACHE_ELECTION_TIMEOUT_MS 1000"},
        {"zero heartbeat", {{"CACHE_HEARTBEAT_MS", "0"}}, 0, "CACHE_HEARTBEAT_MS", "out of range"},
        {"zero election",
         {{"CACHE_ELECTION_TIMEOUT_MS", "0"}},
         0,
         "CACHE_ELECTION_TIMEOUT_MS",
         "out of range"},
        {"zero grace",
         {{"CACHE_QUORUM_LOSS_GRACE_MS", "0"}},
         0,
         "CACHE_QUORUM_LOSS_GRACE_MS",
         "out of range"},
        {"zero expiry",
         {{"CACHE_EXPIRY_INTERVAL_MS", "0"}},
         0,
         "CACHE_EXPIRY_INTERVAL_MS",
         "out of range"},
        {"tiny memory",
         {{"CACHE_MAX_MEMORY", "256"}},
         0,
         "CACHE_MAX_MEMORY",
         "256 bytes is too small, at least 1MiB"},
        {"zero key size", {{"CACHE_MAX_KEY_SIZE", "0"}}, 0, "CACHE_MAX_KEY_SIZE", "out of range"},
        {"big key size",
         {{"CACHE_MAX_KEY_SIZE", "128KiB"}},
         0,
         "CACHE_MAX_KEY_SIZE",
         "128KiB is out of range 1 byte..64KiB"},
        {"zero value size",
         {{"CACHE_MAX_VALUE_SIZE", "0"}},
         0,
         "CACHE_MAX_VALUE_SIZE",
         "out of range"},
        {"big value size",
         {{"CACHE_MAX_VALUE_SIZE", "1GiB"}, {"CACHE_MAX_MEMORY", "4GiB"}},
         0,
         "CACHE_MAX_VALUE_SIZE",
         "out of range 1 byte..512MiB"},
        {"value larger than memory",
         {{"CACHE_MAX_VALUE_SIZE", "300MiB"}},
         0,
         "CACHE_MAX_VALUE_SIZE",
         "300MiB is larger than CACHE_MAX_MEMORY 256MiB"},
    };
    run_bad_cases(cases, sizeof(cases) / sizeof(cases[0]));

    /* accepted: loopback forms, a token, or CACHE_API_INSECURE */
    static const kv_t ok[][3] = {
        {{"CACHE_HTTP_ADDR", "127.1.2.3:8080"}},
        {{"CACHE_HTTP_ADDR", "[::1]:8080"}},
        {{"CACHE_HTTP_ADDR", "localhost:8080"}},
        {{"CACHE_HTTP_ADDR", "LOCALHOST:8080"}},
        {{"CACHE_HTTP_ADDR", "[::ffff:127.0.0.1]:8080"}},
        {{"CACHE_HTTP_ADDR", "0.0.0.0:8080"}, {"CACHE_API_TOKEN", "api-token-0123456789"}},
        {{"CACHE_HTTP_ADDR", "0.0.0.0:8080"}, {"CACHE_API_INSECURE", "true"}},
        {{"CACHE_RESP_ADDR", "127.0.0.1:6379"}},
        {{"CACHE_HTTP_ADDR", "10.0.0.1:8080"}, {"CACHE_API_TOKEN_FILE", "@api-tokens"}},
        {{"CACHE_HTTP_TLS_CERT", "@leaf.pem"}, {"CACHE_HTTP_TLS_KEY", "@leaf.key"}},
        /* standalone ignores the peer knobs, even broken ones */
        {{"CACHE_AUTH_TOKEN", "short"}, {"CACHE_TLS_SERVER_CERT", "@missing.pem"}},
        {{"HA_HOSTS", "a:1,b:2"}, {"HOSTNAME_OVERWRITE", "nothere"}},
        {{"CACHE_MAX_VALUE_SIZE", "512MiB"}, {"CACHE_MAX_MEMORY", "1GiB"}},
        {{"CACHE_SHUTDOWN_TIMEOUT_MS", "0"}},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        kv_t over[3];
        for (size_t j = 0; j < 3; j++) {
            over[j].name = ok[i][j].name;
            over[j].value = resolve(ok[i][j].value);
        }
        hc_config_t c;
        hc_config_errors_t e;
        if (load_validate(&c, over, &e, 0) != 0) {
            fprintf(stderr, "  ok case %zu rejected:\n", i);
            dump_errors(&e);
            hc_test_failures_++;
        }
        if (i == 8) {
            CHECK_EQ_INT(c.n_api_tokens, 2);
        }
        hc_config_free(&c);
    }
}

static void test_validate_programmatic(void)
{
    /* a config filled in by code, not by load: validate parses HA_HOSTS itself */
    hc_config_t c;
    hc_config_errors_t e = {0};
    hc_config_init(&c);
    c.ha_mode = 1;
    c.tls = 0;
    c.ha_hosts_raw = strdup("a:7000,b:7000");
    c.hostname = strdup("b");
    c.auth_tokens = calloc(1, sizeof(char *));
    c.auth_tokens[0] = strdup(GOOD_TOKEN);
    c.n_auth_tokens = 1;
    CHECK_EQ_INT(hc_config_validate(&c, time(NULL), &e), 0);
    dump_errors(&e);
    CHECK_EQ_INT(c.hosts.n, 2);
    CHECK_EQ_INT(c.self_index, 1);
    /* no name at all */
    free(c.hostname);
    c.hostname = NULL;
    memset(&e, 0, sizeof(e));
    CHECK_EQ_INT(hc_config_validate(&c, time(NULL), &e), HC_EINVAL);
    CHECK(has_error(&e, "HOSTNAME", "HOSTNAME_OVERWRITE"));
    CHECK_EQ_INT(c.self_index, -1);
    hc_config_free(&c);
}

static hc_test_t tests[] = {
    {"hosts_parse", test_hosts_parse},
    {"find_self", test_find_self},
    {"hostport", test_hostport},
    {"sizes", test_sizes},
    {"defaults", test_defaults},
    {"env", test_env},
    {"booleans", test_booleans},
    {"flags", test_flags},
    {"flag_per_knob", test_flag_per_knob},
    {"help", test_help},
    {"error_lines", test_error_lines},
    {"validate_cluster_ok", test_validate_cluster_ok},
    {"validate_cluster_errors", test_validate_cluster_errors},
    {"validate_no_echo", test_validate_no_echo},
    {"validate_always", test_validate_always},
    {"validate_programmatic", test_validate_programmatic},
};

HC_TEST_MAIN(tests)
