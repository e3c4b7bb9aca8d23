/* creds.c: credential rotation: file watcher and the one reload path (see creds.h). */
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "hacache.h"
#include "log.h"
#include "peer.h"
#include "tls.h"

#define DEFAULT_CHECK_MS  1000
#define DEFAULT_RETRY_MS  200
#define DEFAULT_WINDOW_MS 3000
#define EVENT_DELAY_MS    50         /* let a burst of writes settle before reading */
#define FILE_MAX          (1u << 20) /* a credential file larger than this is not read */
#define FP_BYTES          32
#define DAY_S             (24 * 3600)
#define MAX_PATHS         6

typedef enum { G_PEER_TLS = 0, G_HTTP_TLS, G_PEER_TOKENS, G_API_TOKENS, G__COUNT } group_id_t;

static const char *const group_names[G__COUNT] = {"peer_tls", "http_tls", "peer_tokens",
                                                  "api_tokens"};

/* Certificates reported in status and metrics. */
typedef enum { C_PEER_SERVER = 0, C_PEER_CLIENT, C_HTTP, C__COUNT } cert_id_t;

static const char *const cert_names[C__COUNT] = {"peer_server", "peer_client", "http"};

/* One set of material that is loaded and swapped as a whole. */
typedef struct {
    int enabled;
    const char *paths[MAX_PATHS]; /* borrowed from the config */
    size_t n_paths;
    uint8_t applied[FP_BYTES];  /* fingerprint of the material in use */
    uint8_t rejected[FP_BYTES]; /* fingerprint given up on (not retried until it changes) */
    int has_rejected;
    int pending;               /* a change failed to load and is being retried */
    uint64_t pending_since_ms; /* first failure of the current retry window */
    char last_error[512];
} group_t;

/* A watched directory: where a configured path lives, and where it resolves to (Kubernetes:
 * <dir>/tls.crt -> ..data/tls.crt -> ..<timestamp>/tls.crt; an in-place copy writes there). */
typedef struct watch {
    uv_fs_event_t handle;
    hc_creds_t *c;
    char *dir;
    int wanted; /* still one of the directories to watch (sync_watches) */
    struct watch *next;
} watch_t;

struct hc_creds {
    uv_loop_t *loop;
    const hc_config_t *cfg;
    struct hc_peers *peers;
    hc_http_tls_t *http_tls;
    hc_auth_t *api_auth;
    uint32_t check_ms, retry_ms, window_ms;
    group_t g[G__COUNT];
    watch_t *watches; /* list */
    size_t n_watches;
    uv_timer_t tick; /* periodic content check, and the daily expiry warning */
    uv_timer_t soon; /* after an fs event, or the next retry */
    int open;        /* handles not yet closed */
    int closing;
    uint64_t reloads_ok, reloads_err;
    hc_tls_cert_info_t certs[C__COUNT];
    int64_t expiry_checked; /* wall second of the last expiry warning pass */
};

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

static void format_time(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
        strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, len, "%s", "");
    }
}

/* ---- fingerprints ---- */

/* Hashes one file's path and content (or the reason it cannot be read) into st. */
static void hash_file(crypto_generichash_state *st, const char *path, uint8_t *buf)
{
    crypto_generichash_update(st, (const uint8_t *)path, strlen(path) + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const char *why = NULL;
    if (fd < 0) {
        why = strerror(errno);
    } else {
        size_t n = 0;
        for (;;) {
            ssize_t got = read(fd, buf + n, FILE_MAX + 1 - n);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0) {
                why = strerror(errno);
                break;
            }
            if (got == 0) {
                break;
            }
            n += (size_t)got;
            if (n > FILE_MAX) {
                why = "too large";
                break;
            }
        }
        close(fd);
        if (why == NULL) {
            crypto_generichash_update(st, (const uint8_t *)"F", 1);
            crypto_generichash_update(st, buf, n);
            sodium_memzero(buf, n);
            return;
        }
    }
    crypto_generichash_update(st, (const uint8_t *)"E", 1);
    crypto_generichash_update(st, (const uint8_t *)why, strlen(why));
}

/* Fingerprint of a set: a BLAKE2b-256 over every file's path and content. Content, not mtime
 * and inode: a symlink swap, an in-place copy and a rename all change it, a touch does not. */
static int fingerprint(const group_t *g, uint8_t out[FP_BYTES])
{
    uint8_t *buf = malloc(FILE_MAX + 1);
    if (buf == NULL) {
        return HC_ENOMEM;
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, FP_BYTES);
    for (size_t i = 0; i < g->n_paths; i++) {
        hash_file(&st, g->paths[i], buf);
    }
    crypto_generichash_final(&st, out, FP_BYTES);
    free(buf);
    return 0;
}

/* ---- expiry ---- */

static int expires_soon(const hc_creds_t *c, const hc_tls_cert_info_t *ci, int64_t now)
{
    return ci->present && c->cfg->tls_expiry_warn_days > 0 &&
           ci->not_after - now < (int64_t)c->cfg->tls_expiry_warn_days * DAY_S;
}

static void warn_expiry(hc_creds_t *c, cert_id_t which, int64_t now)
{
    const hc_tls_cert_info_t *ci = &c->certs[which];
    if (!expires_soon(c, ci, now)) {
        return;
    }
    char na[32];
    format_time(ci->not_after, na, sizeof(na));
    if (ci->not_after <= now) {
        hc_log(HC_LOG_ERROR, "certificate in use has expired: rotate it",
               HC_LS("cert", cert_names[which]), HC_LS("subject", ci->subject),
               HC_LS("serial", ci->serial), HC_LS("not_after", na));
    } else {
        hc_log(HC_LOG_WARN, "certificate expires soon: rotate it", HC_LS("cert", cert_names[which]),
               HC_LS("subject", ci->subject), HC_LS("serial", ci->serial), HC_LS("not_after", na),
               HC_LI("hours_left", (ci->not_after - now) / 3600),
               HC_LU("warn_days", c->cfg->tls_expiry_warn_days));
    }
}

/* ---- loading one set ---- */

static void log_cert_loaded(const char *msg, const hc_tls_cert_info_t *ci, const char *trigger,
                            const char *extra_key, uint64_t extra)
{
    char na[32];
    format_time(ci->not_after, na, sizeof(na));
    hc_log(HC_LOG_INFO, msg, HC_LS("subject", ci->subject), HC_LS("serial", ci->serial),
           HC_LS("not_after", na), HC_LS("trigger", trigger), HC_LU(extra_key, extra));
}

/* Loads, validates and swaps in one set. `changed`: its files differ from what is in use (peer
 * links are replaced only then). 0, or HC_EINVAL with the reason in err. */
static int load_group(hc_creds_t *c, group_id_t id, int changed, const char *trigger, char *err,
                      size_t errlen)
{
    const hc_config_t *cfg = c->cfg;
    int64_t now = wall_s();
    switch (id) {
    case G_PEER_TLS: {
        hc_tls_ctx_t *ctx;
        if (hc_tls_ctx_new(cfg, &ctx, err, errlen) != 0) {
            return HC_EINVAL;
        }
        if (hc_tls_ctx_validate(ctx, cfg, now, err, errlen) != 0) {
            hc_tls_ctx_unref(ctx);
            return HC_EINVAL;
        }
        int links = 0;
        if (changed) {
            links = hc_peers_reload(c->peers, ctx, NULL, 0);
        } else {
            hc_peers_set_tls(c->peers, ctx);
        }
        hc_tls_ctx_info(ctx, 0, &c->certs[C_PEER_SERVER]);
        hc_tls_ctx_info(ctx, 1, &c->certs[C_PEER_CLIENT]);
        hc_tls_ctx_unref(ctx);
        if (links < 0) {
            snprintf(err, errlen, "peer layer: %s", hc_strerror(links));
            return HC_EINVAL;
        }
        log_cert_loaded("peer tls reloaded", &c->certs[C_PEER_SERVER], trigger, "links_to_replace",
                        (uint64_t)links);
        if (strcmp(c->certs[C_PEER_CLIENT].serial, c->certs[C_PEER_SERVER].serial) != 0) {
            log_cert_loaded("peer tls client certificate reloaded", &c->certs[C_PEER_CLIENT],
                            trigger, "links_to_replace", (uint64_t)links);
        }
        warn_expiry(c, C_PEER_SERVER, now);
        warn_expiry(c, C_PEER_CLIENT, now);
        return 0;
    }
    case G_HTTP_TLS: {
        int rv = hc_http_tls_load(c->http_tls, now, err, errlen);
        if (rv != 0) {
            return HC_EINVAL;
        }
        hc_http_tls_info(c->http_tls, &c->certs[C_HTTP]);
        log_cert_loaded("http tls reloaded", &c->certs[C_HTTP], trigger, "changed",
                        (uint64_t)changed);
        warn_expiry(c, C_HTTP, now);
        return 0;
    }
    case G_PEER_TOKENS:
    case G_API_TOKENS: {
        int api = id == G_API_TOKENS;
        char **tokens;
        size_t n;
        if (hc_config_read_tokens(api ? "CACHE_API_TOKEN_FILE" : "CACHE_AUTH_TOKEN_FILE",
                                  c->g[id].paths[0], api, &tokens, &n, err, errlen) != 0) {
            return HC_EINVAL;
        }
        int rv = 0;
        if (api) {
            rv = hc_auth_set_tokens(c->api_auth, tokens, n);
        } else if (changed) {
            rv = hc_peers_reload(c->peers, NULL, tokens, n);
        }
        hc_config_tokens_free(tokens, n);
        if (rv < 0) {
            snprintf(err, errlen, "cannot install the tokens: %s", hc_strerror(rv));
            return HC_EINVAL;
        }
        hc_log(HC_LOG_INFO, api ? "api tokens reloaded" : "peer tokens reloaded",
               HC_LU("tokens", n), HC_LS("trigger", trigger),
               HC_LU(api ? "changed" : "links_to_replace", api ? (uint64_t)changed : (uint64_t)rv));
        return 0;
    }
    default:
        snprintf(err, errlen, "unknown credential set");
        return HC_EINVAL;
    }
}

static void reject(hc_creds_t *c, group_id_t id, const uint8_t fp[FP_BYTES], const char *reason,
                   const char *trigger)
{
    group_t *g = &c->g[id];
    g->pending = 0;
    g->has_rejected = 1;
    memcpy(g->rejected, fp, FP_BYTES);
    snprintf(g->last_error, sizeof(g->last_error), "%s", reason);
    c->reloads_err++;
    hc_log(HC_LOG_ERROR, "credentials reload rejected, the old ones stay in use",
           HC_LS("set", group_names[id]), HC_LS("reason", reason), HC_LS("trigger", trigger));
}

/* One pass over the sets. forced: every set is loaded, a failure is final. Returns 0, or
 * HC_EINVAL when a set was rejected in this pass (first reason in err), HC_ENOTFOUND when no set
 * is configured. Sets a retry in *retry_ms when a set is still within its retry window. */
static int run_pass(hc_creds_t *c, int forced, const char *trigger, hc_buf_t *json, char *err,
                    size_t errlen, uint64_t *retry_ms)
{
    uint64_t now = uv_now(c->loop);
    int rv = HC_ENOTFOUND, first = 1;
    if (json != NULL) {
        hc_buf_puts(json, "{");
    }
    for (int i = 0; i < G__COUNT && !c->closing; i++) {
        group_t *g = &c->g[i];
        if (!g->enabled) {
            continue;
        }
        if (rv == HC_ENOTFOUND) {
            rv = 0;
        }
        uint8_t fp[FP_BYTES];
        if (fingerprint(g, fp) != 0) {
            continue; /* out of memory: the next pass tries again */
        }
        int changed = sodium_memcmp(fp, g->applied, FP_BYTES) != 0;
        const char *outcome = "unchanged";
        char why[512] = "";
        if (!forced && !changed) {
            g->pending = 0; /* a change that was reverted */
        } else if (!forced && g->has_rejected && sodium_memcmp(fp, g->rejected, FP_BYTES) == 0) {
            outcome = "rejected";
        } else if (load_group(c, (group_id_t)i, changed, trigger, why, sizeof(why)) == 0) {
            memcpy(g->applied, fp, FP_BYTES);
            g->pending = 0;
            g->has_rejected = 0;
            g->last_error[0] = '\0';
            c->reloads_ok++;
            outcome = "reloaded";
        } else if (forced || (g->pending && now - g->pending_since_ms >= c->window_ms)) {
            reject(c, (group_id_t)i, fp, why, trigger);
            outcome = "rejected";
            if (rv == 0) {
                snprintf(err, errlen, "%s: %s", group_names[i], why);
            }
            rv = HC_EINVAL;
        } else {
            if (!g->pending) {
                g->pending = 1;
                g->pending_since_ms = now;
            }
            hc_log(HC_LOG_DEBUG, "credentials not loadable yet, retrying",
                   HC_LS("set", group_names[i]), HC_LS("reason", why));
            *retry_ms = c->retry_ms;
            outcome = "retrying";
        }
        if (json != NULL) {
            hc_buf_printf(json, "%s\"%s\":{\"result\":\"%s\",\"changed\":%s", first ? "" : ",",
                          group_names[i], outcome, changed ? "true" : "false");
            if (why[0] != '\0' && strcmp(outcome, "reloaded") != 0) {
                hc_buf_puts(json, ",\"error\":");
                hc_buf_json_string(json, why, strlen(why));
            }
            hc_buf_puts(json, "}");
            first = 0;
        }
    }
    if (json != NULL) {
        hc_buf_puts(json, "}");
    }
    return rv;
}

static void on_soon(uv_timer_t *t);
static void sync_watches(hc_creds_t *c);

static void check_now(hc_creds_t *c, const char *trigger)
{
    uint64_t retry = 0;
    char err[512];
    run_pass(c, 0, trigger, NULL, err, sizeof(err), &retry);
    sync_watches(c);
    if (retry > 0 && !c->closing) {
        uv_timer_start(&c->soon, on_soon, retry, 0);
    }
}

static void on_soon(uv_timer_t *t)
{
    check_now(t->data, "file change");
}

static void on_tick(uv_timer_t *t)
{
    hc_creds_t *c = t->data;
    int64_t now = wall_s();
    if (now - c->expiry_checked >= DAY_S) {
        c->expiry_checked = now;
        for (int i = 0; i < C__COUNT; i++) {
            warn_expiry(c, (cert_id_t)i, now);
        }
    }
    /* a retry already scheduled runs the same pass */
    if (!uv_is_active((uv_handle_t *)&c->soon)) {
        check_now(c, "file change");
    }
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    watch_t *w = h->data;
    hc_creds_t *c = w->c;
    (void)filename;
    (void)events;
    if (status != 0 || c->closing) {
        return; /* the periodic check still runs */
    }
    /* debounce: a rotation touches several files; read them once things settle */
    uint64_t due = uv_timer_get_due_in(&c->soon);
    if (!uv_is_active((uv_handle_t *)&c->soon) || due > EVENT_DELAY_MS) {
        uv_timer_start(&c->soon, on_soon, EVENT_DELAY_MS, 0);
    }
}

/* ---- public ---- */

static void add_path(group_t *g, const char *p)
{
    if (p == NULL || g->n_paths == MAX_PATHS) {
        return;
    }
    for (size_t i = 0; i < g->n_paths; i++) {
        if (strcmp(g->paths[i], p) == 0) {
            return;
        }
    }
    g->paths[g->n_paths++] = p;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return strdup(".");
    }
    if (slash == path) {
        return strdup("/");
    }
    return strndup(path, (size_t)(slash - path));
}

static void on_closed(uv_handle_t *h);

/* Watches dir unless it already is; marks it wanted. */
static void want_dir(hc_creds_t *c, char *dir)
{
    for (watch_t *w = c->watches; w != NULL; w = w->next) {
        if (strcmp(w->dir, dir) == 0) {
            w->wanted = 1;
            free(dir);
            return;
        }
    }
    watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        free(dir);
        return; /* the periodic check still sees every change */
    }
    w->c = c;
    w->dir = dir;
    w->wanted = 1;
    uv_fs_event_init(c->loop, &w->handle);
    w->handle.data = w;
    w->next = c->watches;
    c->watches = w;
    c->n_watches++;
    c->open++;
    int rv = uv_fs_event_start(&w->handle, on_fs_event, dir, 0);
    if (rv != 0) {
        hc_log(HC_LOG_DEBUG, "cannot watch a credentials directory, the periodic check covers it",
               HC_LS("dir", dir), HC_LS("error", uv_strerror(rv)));
    }
}

/* Brings the watched directories in line with the files as they resolve now (a ..data swap
 * moves the resolved directory). */
static void sync_watches(hc_creds_t *c)
{
    if (c->closing) {
        return;
    }
    for (watch_t *w = c->watches; w != NULL; w = w->next) {
        w->wanted = 0;
    }
    for (int i = 0; i < G__COUNT; i++) {
        for (size_t j = 0; c->g[i].enabled && j < c->g[i].n_paths; j++) {
            char *dir = dir_of(c->g[i].paths[j]);
            if (dir != NULL) {
                want_dir(c, dir);
            }
            char *real = realpath(c->g[i].paths[j], NULL);
            if (real != NULL) {
                dir = dir_of(real);
                free(real);
                if (dir != NULL) {
                    want_dir(c, dir);
                }
            }
        }
    }
    for (watch_t **pw = &c->watches; *pw != NULL;) {
        watch_t *w = *pw;
        if (w->wanted) {
            pw = &w->next;
            continue;
        }
        *pw = w->next;
        c->n_watches--;
        uv_close((uv_handle_t *)&w->handle, on_closed);
    }
}

int hc_creds_start(uv_loop_t *loop, const hc_creds_opts_t *o, hc_creds_t **out)
{
    *out = NULL;
    hc_creds_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    const hc_config_t *cfg = o->cfg;
    c->loop = loop;
    c->cfg = cfg;
    c->peers = o->peers;
    c->http_tls = o->http_tls;
    c->api_auth = o->api_auth;
    c->check_ms = o->check_ms ? o->check_ms : DEFAULT_CHECK_MS;
    c->retry_ms = o->retry_ms ? o->retry_ms : DEFAULT_RETRY_MS;
    c->window_ms = o->window_ms ? o->window_ms : DEFAULT_WINDOW_MS;

    group_t *g = &c->g[G_PEER_TLS];
    g->enabled = c->peers != NULL && cfg->tls;
    add_path(g, cfg->tls_server_cert);
    add_path(g, cfg->tls_server_key);
    add_path(g, cfg->tls_client_cert);
    add_path(g, cfg->tls_client_key);
    add_path(g, cfg->tls_ca_server);
    add_path(g, cfg->tls_ca_client);
    g = &c->g[G_HTTP_TLS];
    g->enabled = c->http_tls != NULL && cfg->http_tls_cert != NULL && cfg->http_tls_key != NULL;
    add_path(g, cfg->http_tls_cert);
    add_path(g, cfg->http_tls_key);
    g = &c->g[G_PEER_TOKENS];
    g->enabled = c->peers != NULL && cfg->auth_token_file != NULL;
    add_path(g, cfg->auth_token_file);
    g = &c->g[G_API_TOKENS];
    g->enabled = c->api_auth != NULL && cfg->api_token_file != NULL;
    add_path(g, cfg->api_token_file);

    for (int i = 0; i < G__COUNT; i++) {
        if (c->g[i].enabled && fingerprint(&c->g[i], c->g[i].applied) != 0) {
            free(c);
            return HC_ENOMEM;
        }
    }
    if (c->g[G_PEER_TLS].enabled) {
        hc_tls_ctx_info(hc_peers_tls(c->peers), 0, &c->certs[C_PEER_SERVER]);
        hc_tls_ctx_info(hc_peers_tls(c->peers), 1, &c->certs[C_PEER_CLIENT]);
    }
    if (c->g[G_HTTP_TLS].enabled) {
        hc_http_tls_info(c->http_tls, &c->certs[C_HTTP]);
    }
    c->expiry_checked = wall_s();
    for (int i = 0; i < C__COUNT; i++) {
        warn_expiry(c, (cert_id_t)i, c->expiry_checked);
    }

    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_init(loop, &c->soon);
    c->soon.data = c;
    c->open += 2;
    sync_watches(c);
    uv_timer_start(&c->tick, on_tick, c->check_ms, c->check_ms);
    int sets = 0;
    for (int i = 0; i < G__COUNT; i++) {
        sets += c->g[i].enabled;
    }
    hc_log(HC_LOG_INFO, "watching credentials", HC_LI("sets", sets),
           HC_LU("directories", c->n_watches), HC_LU("check_ms", c->check_ms),
           HC_LU("expiry_warn_days", cfg->tls_expiry_warn_days));
    *out = c;
    return 0;
}

int hc_creds_reload(hc_creds_t *c, const char *trigger, hc_buf_t *json, char *err, size_t errlen)
{
    uint64_t retry = 0;
    err[0] = '\0';
    uv_timer_stop(&c->soon);
    return run_pass(c, 1, trigger, json, err, errlen, &retry);
}

void hc_creds_check(hc_creds_t *c)
{
    check_now(c, "file change");
}

static void cert_json(const hc_creds_t *c, hc_buf_t *b, const hc_tls_cert_info_t *ci, int64_t now)
{
    if (!ci->present) {
        hc_buf_puts(b, "null");
        return;
    }
    char nb[32], na[32];
    format_time(ci->not_before, nb, sizeof(nb));
    format_time(ci->not_after, na, sizeof(na));
    hc_buf_puts(b, "{\"subject\":");
    hc_buf_json_string(b, ci->subject, strlen(ci->subject));
    hc_buf_puts(b, ",\"serial\":");
    hc_buf_json_string(b, ci->serial, strlen(ci->serial));
    hc_buf_printf(b,
                  ",\"not_before\":\"%s\",\"not_after\":\"%s\",\"not_after_unix\":%" PRId64
                  ",\"expires_soon\":%s}",
                  nb, na, ci->not_after, expires_soon(c, ci, now) ? "true" : "false");
}

void hc_creds_status_json(hc_creds_t *c, hc_buf_t *b)
{
    int64_t now = wall_s();
    hc_buf_puts(b, "{");
    for (int i = 0; i < C__COUNT; i++) {
        hc_buf_printf(b, "%s\"%s\":", i ? "," : "", cert_names[i]);
        cert_json(c, b, &c->certs[i], now);
    }
    hc_buf_printf(b,
                  ",\"expiry_warn_days\":%u,\"reloads\":{\"success\":%" PRIu64 ",\"error\":%" PRIu64
                  "},\"sets\":{",
                  (unsigned)c->cfg->tls_expiry_warn_days, c->reloads_ok, c->reloads_err);
    int first = 1;
    for (int i = 0; i < G__COUNT; i++) {
        const group_t *g = &c->g[i];
        if (!g->enabled) {
            continue;
        }
        hc_buf_printf(b, "%s\"%s\":{\"pending\":%s,\"last_error\":", first ? "" : ",",
                      group_names[i], g->pending ? "true" : "false");
        if (g->last_error[0] != '\0') {
            hc_buf_json_string(b, g->last_error, strlen(g->last_error));
        } else {
            hc_buf_puts(b, "null");
        }
        hc_buf_puts(b, "}");
        first = 0;
    }
    hc_buf_puts(b, "}");
    if (c->peers != NULL) {
        hc_peers_reload_stats_t st;
        hc_peers_reload_stats(c->peers, &st);
        hc_buf_printf(b,
                      ",\"generation\":%" PRIu64 ",\"links_replaced\":%" PRIu64
                      ",\"links_stale\":%" PRIu64 ",\"peer_links\":[",
                      st.generation, st.replaced, st.stale);
        int n = hc_peers_count(c->peers), self = hc_peers_self(c->peers);
        first = 1;
        for (int i = 0; i < n; i++) {
            if (i == self) {
                continue;
            }
            const char *name = hc_peers_name(c->peers, i);
            hc_peer_link_info_t li;
            hc_buf_puts(b, first ? "{\"peer\":" : ",{\"peer\":");
            first = 0;
            hc_buf_json_string(b, name, strlen(name));
            if (hc_peers_link_info(c->peers, i, &li) != 0) {
                hc_buf_puts(b, ",\"connected\":false}");
                continue;
            }
            hc_buf_printf(b,
                          ",\"connected\":true,\"link\":%" PRIu64 ",\"generation\":%" PRIu64
                          ",\"current\":%s,\"direction\":\"%s\",\"local\":",
                          li.id, li.generation, li.current ? "true" : "false",
                          li.dialed ? "dialed" : "accepted");
            hc_buf_json_string(b, li.local, strlen(li.local));
            hc_buf_puts(b, ",\"remote\":");
            hc_buf_json_string(b, li.remote, strlen(li.remote));
            hc_buf_printf(b, ",\"age_ms\":%" PRIu64 "}", li.age_ms);
        }
        hc_buf_puts(b, "]");
    }
    hc_buf_puts(b, "}");
}

void hc_creds_render_metrics(hc_creds_t *c, hc_buf_t *b)
{
    hc_buf_printf(b,
                  "# HELP hacache_tls_reloads_total Credential reloads (peer TLS, HTTP TLS, peer "
                  "and API tokens) by result; one per set loaded or rejected.\n"
                  "# TYPE hacache_tls_reloads_total counter\n"
                  "hacache_tls_reloads_total{result=\"success\"} %" PRIu64 "\n"
                  "hacache_tls_reloads_total{result=\"error\"} %" PRIu64 "\n",
                  c->reloads_ok, c->reloads_err);
    hc_buf_puts(b, "# HELP hacache_tls_cert_expiry_timestamp_seconds notAfter of the "
                   "certificates in use.\n"
                   "# TYPE hacache_tls_cert_expiry_timestamp_seconds gauge\n");
    for (int i = 0; i < C__COUNT; i++) {
        if (c->certs[i].present) {
            hc_buf_printf(b, "hacache_tls_cert_expiry_timestamp_seconds{cert=\"%s\"} %" PRId64 "\n",
                          cert_names[i], c->certs[i].not_after);
        }
    }
    if (c->peers != NULL) {
        hc_peers_reload_stats_t st;
        hc_peers_reload_stats(c->peers, &st);
        hc_buf_printf(b,
                      "# HELP hacache_credentials_generation Peer credential reloads that "
                      "changed something since start.\n"
                      "# TYPE hacache_credentials_generation gauge\n"
                      "hacache_credentials_generation %" PRIu64 "\n"
                      "# HELP hacache_peer_link_replacements_total Peer links replaced with "
                      "current credentials after a reload.\n"
                      "# TYPE hacache_peer_link_replacements_total counter\n"
                      "hacache_peer_link_replacements_total %" PRIu64 "\n"
                      "# HELP hacache_peer_link_replacement_failures_total Replacement dials "
                      "that failed (the old link stays unless revoked).\n"
                      "# TYPE hacache_peer_link_replacement_failures_total counter\n"
                      "hacache_peer_link_replacement_failures_total %" PRIu64 "\n"
                      "# HELP hacache_peer_links_revoked_total Links closed because a reload "
                      "no longer accepts the peer's credentials.\n"
                      "# TYPE hacache_peer_links_revoked_total counter\n"
                      "hacache_peer_links_revoked_total %" PRIu64 "\n"
                      "# HELP hacache_peer_links_stale Active links still authenticated with "
                      "older credentials.\n"
                      "# TYPE hacache_peer_links_stale gauge\n"
                      "hacache_peer_links_stale %" PRIu64 "\n",
                      st.generation, st.replaced, st.replace_failed, st.revoked, st.stale);
    }
}

void hc_creds_counts(const hc_creds_t *c, uint64_t *success, uint64_t *error)
{
    *success = c->reloads_ok;
    *error = c->reloads_err;
}

static void on_closed(uv_handle_t *h)
{
    hc_creds_t *c = h->data;
    if (h->type == UV_FS_EVENT) {
        watch_t *w = h->data;
        c = w->c;
        free(w->dir);
        free(w);
    }
    if (--c->open == 0) {
        free(c);
    }
}

void hc_creds_close(hc_creds_t *c)
{
    if (c == NULL || c->closing) {
        return;
    }
    c->closing = 1;
    c->peers = NULL;
    c->http_tls = NULL;
    c->api_auth = NULL;
    for (watch_t *w = c->watches, *next; w != NULL; w = next) {
        next = w->next;
        uv_close((uv_handle_t *)&w->handle, on_closed);
    }
    c->watches = NULL;
    uv_close((uv_handle_t *)&c->tick, on_closed);
    uv_close((uv_handle_t *)&c->soon, on_closed);
}
