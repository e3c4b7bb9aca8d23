/* test_creds.c: credential reloads without the network: what hc_tls_ctx_validate accepts and
 * rejects (table), and the watcher's state machine on a real uv loop with a peer layer that is
 * created but not started: a change is loaded once, a half-written pair is retried and then
 * loaded when the key lands, a bad pair is rejected once after the retry window (one error
 * line, one count) and not retried until the files change, a forced reload rejects at once, a
 * token file change reaches the peer layer (credential generation), deleted files are an error
 * and fixing them is picked up. Certificates are made with the OpenSSL API in a temporary
 * directory. Waits run the loop until a condition holds or a deadline passes. */
#include "creds.h"

#include "config.h"
#include "hacache.h"
#include "log.h"
#include "peer.h"
#include "certs.h"
#include "test.h"
#include "tls.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DAY 86400

static char dir[64];

static const char *P(const char *name)
{
    static char bufs[16][160];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, 160, "%s/%s", dir, name);
    return b;
}

/* A CA (issuer NULL) or a leaf for key, valid [from, to]. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, time_t from,
                       time_t to, const char *san)
{
    return hct_cert(key, cn, issuer, ikey, from, to, issuer == NULL, issuer ? san : NULL);
}

static void write_cert(const char *name, X509 *x)
{
    hct_write_pem(P(name), x, NULL, NULL);
}

static void write_key(const char *name, EVP_PKEY *k)
{
    hct_write_pem(P(name), NULL, NULL, k);
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(P(name), "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* Copies src to dst in place (what an operator's cp does). */
static void copy(const char *src, const char *dst)
{
    char buf[8192];
    FILE *in = fopen(P(src), "r"), *out = fopen(P(dst), "w");
    size_t n;
    while (in != NULL && out != NULL && (n = fread(buf, 1, sizeof(buf), in)) > 0) {
        fwrite(buf, 1, n, out);
    }
    if (in != NULL) {
        fclose(in);
    }
    if (out != NULL) {
        fclose(out);
    }
}

static const char *const made[] = {
    "ca.pem",     "ca2.pem",     "a.pem",     "a.key",  "b.pem",   "b.key",   "expired.pem",
    "future.pem", "foreign.pem", "nosan.pem", "ip.pem", "tls.crt", "tls.key", "token"};

static void cleanup(void)
{
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        unlink(P(made[i]));
    }
    rmdir(dir);
}

/* ca.pem; a.pem/a.key and b.pem/b.key (both of ca, SAN 127.0.0.1); expired.pem, future.pem
 * (key a); foreign.pem (key a, of ca2); nosan.pem (key a, names elsewhere); ip.pem (key a,
 * only an IP SAN). */
static int fixtures(void)
{
    snprintf(dir, sizeof(dir), "/tmp/hc-creds-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return 0;
    }
    atexit(cleanup);
    time_t now = time(NULL);
    EVP_PKEY *kca = EVP_EC_gen("P-256"), *kca2 = EVP_EC_gen("P-256"), *ka = EVP_EC_gen("P-256"),
             *kb = EVP_EC_gen("P-256");
    X509 *ca = make_cert(kca, "ca", NULL, NULL, now - DAY, now + 30 * DAY, NULL);
    X509 *ca2 = make_cert(kca2, "ca2", NULL, NULL, now - DAY, now + 30 * DAY, NULL);
    const char *san = "DNS:localhost,IP:127.0.0.1";
    X509 *certs[] = {
        ca,
        ca2,
        make_cert(ka, "a", ca, kca, now - DAY, now + 30 * DAY, san),
        make_cert(kb, "b", ca, kca, now - DAY, now + 30 * DAY, san),
        make_cert(ka, "expired", ca, kca, now - 10 * DAY, now - DAY, san),
        make_cert(ka, "future", ca, kca, now + DAY, now + 30 * DAY, san),
        make_cert(ka, "foreign", ca2, kca2, now - DAY, now + 30 * DAY, san),
        make_cert(ka, "nosan", ca, kca, now - DAY, now + 30 * DAY, "DNS:elsewhere.example"),
        make_cert(ka, "ip", ca, kca, now - DAY, now + 3 * DAY, "IP:127.0.0.1"),
    };
    const char *names[] = {"ca.pem",     "ca2.pem",     "a.pem",     "b.pem", "expired.pem",
                           "future.pem", "foreign.pem", "nosan.pem", "ip.pem"};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
        write_cert(names[i], certs[i]);
        X509_free(certs[i]);
    }
    write_key("a.key", ka);
    write_key("b.key", kb);
    EVP_PKEY_free(kca);
    EVP_PKEY_free(kca2);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    return 1;
}

/* A cluster-mode config for node 127.0.0.1:7001 with the given peer TLS files. */
static void cfg_init(hc_config_t *c, const char *cert, const char *key, const char *ca)
{
    hc_config_init(c);
    c->ha_mode = 1;
    c->tls = 1;
    char err[256];
    hc_hosts_parse("127.0.0.1:7001,127.0.0.1:7002", &c->hosts, err, sizeof(err));
    c->self_index = 0;
    c->tls_server_cert = strdup(cert);
    c->tls_server_key = strdup(key);
    c->tls_ca_server = strdup(ca);
    c->auth_tokens = calloc(1, sizeof(char *));
    c->auth_tokens[0] = strdup("token-one-0123456789abcdef");
    c->n_auth_tokens = 1;
}

/* ---- validation table ---- */

static void test_validate_table(void)
{
    static const struct {
        const char *cert, *key, *ca, *want; /* want: NULL = accepted, else a phrase of the error */
    } cases[] = {
        {"a.pem", "a.key", "ca.pem", NULL},
        {"ip.pem", "a.key", "ca.pem", NULL}, /* only an IP SAN: fine for an IP HA_HOSTS entry */
        {"a.pem", "b.key", "ca.pem", "does not match"},
        {"expired.pem", "a.key", "ca.pem", "expired"},
        {"future.pem", "a.key", "ca.pem", "not valid yet"},
        {"foreign.pem", "a.key", "ca.pem", "does not chain"},
        {"nosan.pem", "a.key", "ca.pem", "subjectAltName"},
        {"a.pem", "a.key", "ca2.pem", "does not chain"},
        {"missing.pem", "a.key", "ca.pem", "cannot load"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hc_config_t c;
        cfg_init(&c, P(cases[i].cert), P(cases[i].key), P(cases[i].ca));
        char err[512] = "";
        hc_tls_ctx_t *ctx = NULL;
        int rv = hc_tls_ctx_new(&c, &ctx, err, sizeof(err));
        if (rv == 0) {
            rv = hc_tls_ctx_validate(ctx, &c, (int64_t)time(NULL), err, sizeof(err));
        }
        if (cases[i].want == NULL) {
            if (rv != 0) {
                fprintf(stderr, "  case %zu: %s\n", i, err);
            }
            CHECK_EQ_INT(rv, 0);
            hc_tls_cert_info_t info;
            hc_tls_ctx_info(ctx, 0, &info);
            CHECK(info.present && info.not_after > (int64_t)time(NULL) && info.serial[0] != '\0');
        } else {
            CHECK(rv != 0);
            if (strstr(err, cases[i].want) == NULL) {
                fprintf(stderr, "  case %zu: want \"%s\" in \"%s\"\n", i, cases[i].want, err);
                CHECK(0);
            }
        }
        hc_tls_ctx_unref(ctx);
        hc_config_free(&c);
    }
}

/* ---- the watcher ---- */

static FILE *logf_;

static int log_lines(const char *needle)
{
    fflush(logf_);
    rewind(logf_);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), logf_) != NULL) {
        n += strstr(line, needle) != NULL;
    }
    fseek(logf_, 0, SEEK_END);
    return n;
}

typedef struct {
    uv_loop_t loop;
    uv_timer_t wake;
    hc_config_t cfg;
    hc_peers_t *peers;
    hc_creds_t *creds;
} world_t;

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

typedef int (*cond_fn)(world_t *w);

/* Runs the loop until cond holds or ms pass; returns cond's last value. */
static int run_until(world_t *w, cond_fn cond, uint64_t ms)
{
    uv_update_time(&w->loop);
    uint64_t end = uv_now(&w->loop) + ms;
    while (!cond(w) && uv_now(&w->loop) < end) {
        uv_timer_start(&w->wake, on_wake, 10, 0);
        uv_run(&w->loop, UV_RUN_ONCE);
    }
    return cond(w);
}

static uint64_t ok_count(world_t *w)
{
    uint64_t ok, err;
    hc_creds_counts(w->creds, &ok, &err);
    return ok;
}

static uint64_t err_count(world_t *w)
{
    uint64_t ok, err;
    hc_creds_counts(w->creds, &ok, &err);
    return err;
}

static int never(world_t *w)
{
    (void)w;
    return 0;
}

static uint64_t want_ok, want_err;

static int reached(world_t *w)
{
    return ok_count(w) >= want_ok && err_count(w) >= want_err;
}

static void peers_closed(void *ud)
{
    *(int *)ud = 1;
}

static void test_watcher(void)
{
    logf_ = tmpfile();
    REQUIRE(logf_ != NULL);
    hc_log_setup(HC_LOG_DEBUG, HC_LOG_TEXT, logf_);
    copy("a.pem", "tls.crt");
    copy("a.key", "tls.key");
    write_text("token", "token-one-0123456789abcdef\n");
    world_t w;
    memset(&w, 0, sizeof(w));
    uv_loop_init(&w.loop);
    uv_timer_init(&w.loop, &w.wake);
    cfg_init(&w.cfg, P("tls.crt"), P("tls.key"), P("ca.pem"));
    w.cfg.auth_token_file = strdup(P("token"));
    char err[512];
    hc_tls_ctx_t *ctx;
    REQUIRE(hc_tls_ctx_new(&w.cfg, &ctx, err, sizeof(err)) == 0);
    hc_peers_opts_t po = {.cfg = &w.cfg, .tls = ctx};
    REQUIRE(hc_peers_new(&w.loop, &po, &w.peers) == 0);
    hc_tls_ctx_unref(ctx);
    hc_creds_opts_t co = {
        .cfg = &w.cfg, .peers = w.peers, .check_ms = 100, .retry_ms = 20, .window_ms = 300};
    REQUIRE(hc_creds_start(&w.loop, &co, &w.creds) == 0);
    CHECK_EQ_INT(hc_peers_generation(w.peers), 0);

    /* a clean change: loaded once, links would be replaced (generation +1) */
    copy("b.pem", "tls.crt");
    copy("b.key", "tls.key");
    want_ok = 1, want_err = 0;
    CHECK(run_until(&w, reached, 3000));
    CHECK_EQ_INT(hc_peers_generation(w.peers), 1);
    CHECK_EQ_INT(log_lines("peer tls reloaded"), 1);

    /* half-written: the certificate lands, the key 150 ms later (within the 300 ms window) */
    copy("a.pem", "tls.crt");
    run_until(&w, never, 150);
    CHECK_EQ_INT(ok_count(&w), 1);
    CHECK(log_lines("credentials not loadable yet") >= 1);
    copy("a.key", "tls.key");
    want_ok = 2;
    CHECK(run_until(&w, reached, 3000));
    CHECK_EQ_INT(err_count(&w), 0);
    CHECK_EQ_INT(hc_peers_generation(w.peers), 2);

    /* a mismatched pair: rejected once after the window, not retried while unchanged */
    copy("b.key", "tls.key");
    want_err = 1;
    CHECK(run_until(&w, reached, 3000));
    run_until(&w, never, 400);
    CHECK_EQ_INT(err_count(&w), 1);
    CHECK_EQ_INT(log_lines("credentials reload rejected"), 1);
    CHECK_EQ_INT(hc_peers_generation(w.peers), 2);

    /* a forced reload of the same bad files is rejected at once, and says why */
    hc_buf_t json;
    hc_buf_init(&json);
    CHECK_EQ_INT(hc_creds_reload(w.creds, "test", &json, err, sizeof(err)), HC_EINVAL);
    CHECK(strstr(err, "does not match") != NULL);
    CHECK(json.data != NULL && strstr(json.data, "\"peer_tls\":{\"result\":\"rejected\"") != NULL);
    hc_buf_free(&json);
    CHECK_EQ_INT(err_count(&w), 2);
    /* ... while the other sets load (unchanged: counted, links left alone) */
    CHECK_EQ_INT(ok_count(&w), 3);
    CHECK_EQ_INT(log_lines("peer tokens reloaded"), 1);
    CHECK_EQ_INT(hc_peers_generation(w.peers), 2);

    /* deleted files: an error; fixing them is picked up */
    unlink(P("tls.crt"));
    want_err = 3;
    CHECK(run_until(&w, reached, 3000));
    copy("b.pem", "tls.crt");
    copy("b.key", "tls.key");
    want_ok = 4;
    CHECK(run_until(&w, reached, 3000));
    CHECK_EQ_INT(hc_peers_generation(w.peers), 3);

    /* a token file change reaches the peer layer; a short token is rejected */
    write_text("token", "token-two-0123456789abcdef\ntoken-one-0123456789abcdef\n");
    want_ok = 5;
    CHECK(run_until(&w, reached, 3000));
    CHECK_EQ_INT(hc_peers_generation(w.peers), 4);
    CHECK_EQ_INT(log_lines("peer tokens reloaded"), 2);
    write_text("token", "short\n");
    want_err = 4;
    CHECK(run_until(&w, reached, 3000));
    CHECK_EQ_INT(hc_peers_generation(w.peers), 4);

    /* status and metrics name what is in use */
    hc_buf_t b;
    hc_buf_init(&b);
    hc_creds_status_json(w.creds, &b);
    CHECK(b.data != NULL && strstr(b.data, "\"peer_server\":{\"subject\":\"/CN=b\"") != NULL);
    CHECK(strstr(b.data, "\"generation\":4") != NULL);
    hc_buf_reset(&b);
    hc_creds_render_metrics(w.creds, &b);
    CHECK(b.data != NULL &&
          strstr(b.data, "hacache_tls_reloads_total{result=\"success\"} 5\n") != NULL);
    CHECK(strstr(b.data, "hacache_tls_reloads_total{result=\"error\"} 4\n") != NULL);
    CHECK(strstr(b.data, "hacache_tls_cert_expiry_timestamp_seconds{cert=\"peer_server\"}") !=
          NULL);
    hc_buf_free(&b);

    /* teardown: every handle closed */
    hc_creds_close(w.creds);
    int closed = 0;
    hc_peers_close(w.peers, peers_closed, &closed);
    uv_close((uv_handle_t *)&w.wake, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    CHECK(closed);
    CHECK_EQ_INT(uv_loop_close(&w.loop), 0);
    hc_config_free(&w.cfg);
    if (hc_test_failures_) {
        fflush(logf_);
        rewind(logf_);
        char line[4096];
        while (fgets(line, sizeof(line), logf_) != NULL) {
            fputs(line, stderr);
        }
    }
    hc_log_setup(HC_LOG_INFO, HC_LOG_TEXT, stderr);
    fclose(logf_);
}

static void test_setup(void)
{
    REQUIRE(fixtures());
}

static hc_test_t tests[] = {
    {"setup", test_setup},
    {"validate_table", test_validate_table},
    {"watcher", test_watcher},
};

HC_TEST_MAIN(tests)
