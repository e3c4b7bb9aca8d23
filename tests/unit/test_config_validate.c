/* test_config_validate.c: the configuration contract (SPEC section 2) for hc_config_validate,
 * what --check-config runs: the cluster knobs (this node in HA_HOSTS, peer token, TLS
 * certificates, keys and CAs), and the checks that hold always (API tokens, HTTP and RESP
 * addresses, timings, sizes). Certificates are generated here with the OpenSSL API into a
 * temporary directory that is removed at exit. */
#include "config.h"

#include "hacache.h"
#include "certs.h"
#include "config_fixtures.h"
#include "test.h"

#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DAY (24 * 3600)

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
        {"health listener on the peer port",
         {{"CACHE_HEALTH_ADDR", "0.0.0.0:7001"}},
         1,
         "CACHE_HEALTH_ADDR",
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
        {"bad health addr", {{"CACHE_HEALTH_ADDR", "8081"}}, 0, "CACHE_HEALTH_ADDR", "has no port"},
        {"health on the HTTP port",
         {{"CACHE_HEALTH_ADDR", "0.0.0.0:8080"}},
         0,
         "CACHE_HEALTH_ADDR",
         "port 8080 is also CACHE_HTTP_ADDR's"},
        {"health on the RESP addr",
         {{"CACHE_RESP_ADDR", "127.0.0.1:6379"}, {"CACHE_HEALTH_ADDR", "127.0.0.1:6379"}},
         0,
         "CACHE_HEALTH_ADDR",
         "port 6379 is also CACHE_RESP_ADDR's"},
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
        {"zero clients", {{"CACHE_MAX_CLIENTS", "0"}}, 0, "CACHE_MAX_CLIENTS", "out of range"},
        {"zero unauth", {{"CACHE_UNAUTH_MAX", "0"}}, 0, "CACHE_UNAUTH_MAX", "out of range"},
        {"tiny unauth timeout",
         {{"CACHE_UNAUTH_TIMEOUT_MS", "5"}},
         0,
         "CACHE_UNAUTH_TIMEOUT_MS",
         "out of range 10..600000"},
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
    {"validate_cluster_ok", test_validate_cluster_ok},
    {"validate_cluster_errors", test_validate_cluster_errors},
    {"validate_no_echo", test_validate_no_echo},
    {"validate_always", test_validate_always},
    {"validate_programmatic", test_validate_programmatic},
};

HC_TEST_MAIN(tests)
