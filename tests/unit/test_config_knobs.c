/* test_config_knobs.c: the configuration contract (SPEC section 2) for loading: size values,
 * defaults, the environment and flags (every knob of the table by both), booleans, --help, and
 * the error list. */
#include "config.h"

#include "hacache.h"
#include "config_fixtures.h"
#include "test.h"

#include <ctype.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* values */

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
    CHECK_EQ_INT(c.max_clients, 10000); /* Redis maxclients (SPEC §2) */
    CHECK_EQ_INT(c.unauth_max, 128);
    CHECK_EQ_INT(c.unauth_timeout_ms, 5000);
    CHECK_EQ_INT(c.resp_idle_timeout_ms, 0); /* idle clients are kept (Redis timeout 0) */
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
        {"CACHE_HEALTH_ADDR", "0.0.0.0:8081"},
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
    CHECK_EQ_STR(c.health_addr, "0.0.0.0:8081");
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
        {"CACHE_HEALTH_ADDR", "off"},
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
    CHECK(c.health_addr == NULL);
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
    "CACHE_HEALTH_ADDR",
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
    "CACHE_MAX_CLIENTS",
    "CACHE_UNAUTH_MAX",
    "CACHE_UNAUTH_TIMEOUT_MS",
    "CACHE_RESP_IDLE_TIMEOUT_MS",
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
        {"CACHE_HEALTH_ADDR", "[::1]:3"},
        {"CACHE_MAX_CLIENTS", "500"},
        {"CACHE_UNAUTH_MAX", "7"},
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
             a->max_clients == b->max_clients && a->unauth_max == b->unauth_max &&
             a->unauth_timeout_ms == b->unauth_timeout_ms &&
             a->resp_idle_timeout_ms == b->resp_idle_timeout_ms && a->log_format == b->log_format &&
             a->hosts.n == b->hosts.n && a->n_auth_tokens == b->n_auth_tokens &&
             a->n_api_tokens == b->n_api_tokens;
    const char *sa[] = {a->ha_hosts_raw,      a->hostname_overwrite,
                        a->hostname,          a->listen_addr,
                        a->auth_token_file,   a->tls_server_cert,
                        a->tls_server_key,    a->tls_client_cert,
                        a->tls_client_key,    a->tls_ca_server,
                        a->tls_ca_client,     a->tls_client_validate_domain,
                        a->tls_sni_overwrite, a->http_addr,
                        a->http_tls_cert,     a->http_tls_key,
                        a->api_token_file,    a->resp_addr,
                        a->health_addr,       a->data_dir};
    const char *sb[] = {b->ha_hosts_raw,      b->hostname_overwrite,
                        b->hostname,          b->listen_addr,
                        b->auth_token_file,   b->tls_server_cert,
                        b->tls_server_key,    b->tls_client_cert,
                        b->tls_client_key,    b->tls_ca_server,
                        b->tls_ca_client,     b->tls_client_validate_domain,
                        b->tls_sni_overwrite, b->http_addr,
                        b->http_tls_cert,     b->http_tls_key,
                        b->api_token_file,    b->resp_addr,
                        b->health_addr,       b->data_dir};
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
        "(CACHE_HEALTH_ADDR, default: off)",
        "(CACHE_MAX_CLIENTS, default: 10000)",
        "(CACHE_UNAUTH_MAX, default: 128)",
        "(CACHE_UNAUTH_TIMEOUT_MS, default: 5000)",
        "(CACHE_RESP_IDLE_TIMEOUT_MS, default: 0 (never))",
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

static hc_test_t tests[] = {
    {"sizes", test_sizes}, {"defaults", test_defaults},
    {"env", test_env},     {"booleans", test_booleans},
    {"flags", test_flags}, {"flag_per_knob", test_flag_per_knob},
    {"help", test_help},   {"error_lines", test_error_lines},
};

HC_TEST_MAIN(tests)
