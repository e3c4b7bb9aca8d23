/* config.c: the configuration contract of SPEC section 2: the knob table, environment and flag
 * parsing, defaults, range checks and --help.
 *
 * One table (`knobs`) drives everything a knob has: its environment variable, its flag, the
 * default applied by hc_config_init, the text of --help and where the value is stored. Adding a
 * knob is one row. hc_config_load only checks syntax and never touches the filesystem;
 * hc_config_validate checks meaning, cross-knob rules, and reads token, certificate and key
 * files. Every problem becomes one line that starts with the variable's name. The HA_HOSTS
 * syntax and the identity rules are in config_hosts.c, hc_config_validate and the files it
 * reads in config_validate.c. */
#include "config.h"
#include "config_int.h"

#include "hacache.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_VALUE_SIZE_CAP (512ull << 20)
#define MAX_KEY_SIZE_CAP   (64ull << 10)
#define MIN_MAX_MEMORY     (1ull << 20)

/* ---------------------------------------------------------------------------------------- */
/* error lines */

/* Appends one line. Identical lines are kept once, so main may run load and validate and print
 * the union; lines past HC_CONFIG_MAX_ERRORS are counted but dropped. */
__attribute__((format(printf, 2, 3))) void config__report(report_t *r, const char *fmt, ...)
{
    char line[sizeof(((hc_config_errors_t *)0)->line[0])];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    r->n++;
    if (r->errs == NULL) {
        return;
    }
    for (size_t i = 0; i < r->errs->n; i++) {
        if (strcmp(r->errs->line[i], line) == 0) {
            return;
        }
    }
    if (r->errs->n < HC_CONFIG_MAX_ERRORS) {
        memcpy(r->errs->line[r->errs->n++], line, sizeof(line));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the knob table */

enum {
    KF_OFF = 1, /* the value "off" means unset (CACHE_RESP_ADDR) */
};

static const knob_t knobs[] = {
    /* cluster membership */
    {.env = "HA_MODE",
     .flag = "ha-mode",
     .type = K_BOOL,
     .off = F(ha_mode),
     .def = "false",
     .metavar = "BOOL",
     .help = "false: standalone single node; true: cluster mode"},
    {.env = "HA_HOSTS",
     .flag = "ha-hosts",
     .type = K_HOSTS,
     .off = F(ha_hosts_raw),
     .metavar = "LIST",
     .help = "peers as CSV of host:port or scheme://host:port (http or https, must agree with "
             "CACHE_TLS); IPv6 as [addr]:port; required in cluster mode"},
    {.env = "HOSTNAME_OVERWRITE",
     .flag = "hostname-overwrite",
     .type = K_STR,
     .off = F(hostname_overwrite),
     .metavar = "NAME",
     .help = "who this node is: host or host:port of its HA_HOSTS entry (host:port when all "
             "nodes share one host)"},
    {.env = "HOSTNAME",
     .flag = "hostname",
     .type = K_STR,
     .off = F(hostname),
     .def_text = "gethostname()",
     .metavar = "NAME",
     .help = "used when HOSTNAME_OVERWRITE is unset; matches an entry whose host equals it or "
             "whose first DNS label equals it"},
    {.env = "CACHE_LISTEN_ADDR",
     .flag = "listen-addr",
     .type = K_STR,
     .off = F(listen_addr),
     .def = "0.0.0.0",
     .metavar = "IP",
     .help = "bind address of the peer port; the port is the one of this node's HA_HOSTS entry"},

    /* peer authentication */
    {.env = "CACHE_AUTH_TOKEN",
     .flag = "auth-token",
     .type = K_TOKENS,
     .off = F(auth_tokens),
     .off_n = F(n_auth_tokens),
     .metavar = "SECRET",
     .help = "shared secret between peers, at least 16 bytes, required in cluster mode "
             "(prefer CACHE_AUTH_TOKEN_FILE: flags show in ps)"},
    {.env = "CACHE_AUTH_TOKEN_FILE",
     .flag = "auth-token-file",
     .type = K_STR,
     .off = F(auth_token_file),
     .metavar = "PATH",
     .help = "file with one peer token per line (blank lines ignored): the first is sent, all "
             "are accepted"},
    {.env = "CACHE_TLS",
     .flag = "tls",
     .type = K_BOOL,
     .off = F(tls),
     .def = "true",
     .metavar = "BOOL",
     .help = "mTLS between peers; false must be explicit and is logged"},
    {.env = "CACHE_TLS_SERVER_CERT",
     .flag = "tls-server-cert",
     .type = K_STR,
     .off = F(tls_server_cert),
     .metavar = "PATH",
     .help = "PEM certificate chain this node presents to peers"},
    {.env = "CACHE_TLS_SERVER_KEY",
     .flag = "tls-server-key",
     .type = K_STR,
     .off = F(tls_server_key),
     .metavar = "PATH",
     .help = "PEM private key of that certificate"},
    {.env = "CACHE_TLS_CLIENT_CERT",
     .flag = "tls-client-cert",
     .type = K_STR,
     .off = F(tls_client_cert),
     .def_text = "CACHE_TLS_SERVER_CERT",
     .metavar = "PATH",
     .help = "PEM certificate chain presented when dialing a peer"},
    {.env = "CACHE_TLS_CLIENT_KEY",
     .flag = "tls-client-key",
     .type = K_STR,
     .off = F(tls_client_key),
     .def_text = "CACHE_TLS_SERVER_KEY",
     .metavar = "PATH",
     .help = "PEM private key of the client certificate"},
    {.env = "CACHE_TLS_CA_SERVER",
     .flag = "tls-ca-server",
     .type = K_STR,
     .off = F(tls_ca_server),
     .metavar = "PATH",
     .help = "CA bundle that verifies peers this node dials (may hold old and new CA)"},
    {.env = "CACHE_TLS_CA_CLIENT",
     .flag = "tls-ca-client",
     .type = K_STR,
     .off = F(tls_ca_client),
     .def_text = "CACHE_TLS_CA_SERVER",
     .metavar = "PATH",
     .help = "CA bundle that verifies peers dialing this node"},
    {.env = "CACHE_TLS_EXPIRY_WARN_DAYS",
     .flag = "tls-expiry-warn-days",
     .type = K_COUNT,
     .off = F(tls_expiry_warn_days),
     .min = 0,
     .max = 3650,
     .def = "7",
     .metavar = "DAYS",
     .help = "warn (log at load and daily, expires_soon in /v1/status) when a certificate expires "
             "within this many days; 0 = never"},
    {.env = "CACHE_TLS_CLIENT_VALIDATE_DOMAIN",
     .flag = "tls-client-validate-domain",
     .type = K_STR,
     .off = F(tls_client_validate_domain),
     .def_text = "the peer's host in HA_HOSTS",
     .metavar = "NAME",
     .help = "name that must be in a peer certificate's subjectAltName"},
    {.env = "CACHE_TLS_SNI_OVERWRITE",
     .flag = "tls-sni-overwrite",
     .type = K_STR,
     .off = F(tls_sni_overwrite),
     .metavar = "NAME",
     .help = "SNI sent when dialing a peer"},

    /* client API */
    {.env = "CACHE_HTTP_ADDR",
     .flag = "http-addr",
     .type = K_STR,
     .off = F(http_addr),
     .def = "127.0.0.1:8080",
     .metavar = "HOST:PORT",
     .help = "HTTP/1.1 and HTTP/2 API listener ([addr]:port for IPv6)"},
    {.env = "CACHE_HTTP_TLS_CERT",
     .flag = "http-tls-cert",
     .type = K_STR,
     .off = F(http_tls_cert),
     .metavar = "PATH",
     .help = "PEM certificate chain of the API (with CACHE_HTTP_TLS_KEY: HTTPS and h2)"},
    {.env = "CACHE_HTTP_TLS_KEY",
     .flag = "http-tls-key",
     .type = K_STR,
     .off = F(http_tls_key),
     .metavar = "PATH",
     .help = "PEM private key of the API certificate"},
    {.env = "CACHE_API_TOKEN",
     .flag = "api-token",
     .type = K_TOKENS,
     .off = F(api_tokens),
     .off_n = F(n_api_tokens),
     .metavar = "SECRET",
     .help = "bearer token of the HTTP and RESP API, at least 16 bytes; required when an API "
             "listens off loopback"},
    {.env = "CACHE_API_TOKEN_FILE",
     .flag = "api-token-file",
     .type = K_STR,
     .off = F(api_token_file),
     .metavar = "PATH",
     .help = "file with one API token per line (blank lines ignored); all are accepted"},
    {.env = "CACHE_API_INSECURE",
     .flag = "api-insecure",
     .type = K_BOOL,
     .off = F(api_insecure),
     .def = "false",
     .metavar = "BOOL",
     .help = "allow an API off loopback without CACHE_API_TOKEN"},
    {.env = "CACHE_RESP_ADDR",
     .flag = "resp-addr",
     .type = K_STR,
     .off = F(resp_addr),
     .flags = KF_OFF,
     .def_text = "off",
     .metavar = "HOST:PORT",
     .help = "Redis-protocol (RESP) listener, or off"},
    {.env = "CACHE_HEALTH_ADDR",
     .flag = "health-addr",
     .type = K_STR,
     .off = F(health_addr),
     .flags = KF_OFF,
     .def_text = "off",
     .metavar = "HOST:PORT",
     .help = "plain-HTTP listener for probes and Prometheus: GET /healthz, /readyz and /metrics "
             "without a token, every other path 404 (keeps the API on loopback in a sidecar), "
             "or off"},

    /* limits */
    {.env = "CACHE_MAX_MEMORY",
     .flag = "max-memory",
     .type = K_SIZE,
     .off = F(max_memory),
     .min = MIN_MAX_MEMORY,
     .max = UINT64_MAX,
     .def = "256MiB",
     .metavar = "SIZE",
     .help = "memory for cached data per node; least recently used entries are evicted above"},
    {.env = "CACHE_MAX_KEY_SIZE",
     .flag = "max-key-size",
     .type = K_SIZE,
     .off = F(max_key_size),
     .min = 1,
     .max = MAX_KEY_SIZE_CAP,
     .def = "1KiB",
     .metavar = "SIZE",
     .help = "largest key (at most 64KiB); larger requests get HTTP 413"},
    {.env = "CACHE_MAX_VALUE_SIZE",
     .flag = "max-value-size",
     .type = K_SIZE,
     .off = F(max_value_size),
     .min = 1,
     .max = MAX_VALUE_SIZE_CAP,
     .def = "1MiB",
     .metavar = "SIZE",
     .help = "largest value (at most 512MiB); larger requests get HTTP 413"},
    {.env = "CACHE_MAX_CLIENTS",
     .flag = "max-clients",
     .type = K_COUNT,
     .off = F(max_clients),
     .min = 1,
     .max = 1000000,
     .def = "10000",
     .metavar = "N",
     .help = "client connections (HTTP and RESP together; each keeps an eighth for itself) "
             "admitted at once; lowered at start to fit the file limit; over it new ones are "
             "refused (RESP -ERR max number of clients reached, HTTP 503 except /healthz and "
             "/readyz)"},
    {.env = "CACHE_UNAUTH_MAX",
     .flag = "unauth-max",
     .type = K_COUNT,
     .off = F(unauth_max),
     .min = 1,
     .max = 100000,
     .def = "128",
     .metavar = "N",
     .help = "per listener (HTTP, RESP, peer port): connections not authenticated yet (no AUTH, "
             "no complete HTTP request, no peer handshake); beyond it the oldest is closed"},
    {.env = "CACHE_UNAUTH_TIMEOUT_MS",
     .flag = "unauth-timeout-ms",
     .type = K_MS,
     .off = F(unauth_timeout_ms),
     .min = 10,
     .max = 600000,
     .def = "5000",
     .metavar = "MS",
     .help = "a new connection must authenticate (RESP AUTH, peer handshake) or send a complete "
             "HTTP request within this time; also the bound for every HTTP request's headers "
             "and body, and for an idle HTTP keep-alive connection"},
    {.env = "CACHE_RESP_IDLE_TIMEOUT_MS",
     .flag = "resp-idle-timeout-ms",
     .type = K_MS,
     .off = F(resp_idle_timeout_ms),
     .min = 0,
     .max = 86400000,
     .def = "0",
     .def_text = "0 (never)",
     .metavar = "MS",
     .help = "close an authenticated RESP connection idle this long (Redis timeout); 0 keeps "
             "idle clients, as pools expect"},

    /* timing */
    {.env = "CACHE_HEARTBEAT_MS",
     .flag = "heartbeat-ms",
     .type = K_MS,
     .off = F(heartbeat_ms),
     .min = 1,
     .max = 60000,
     .def = "100",
     .metavar = "MS",
     .help = "leader heartbeat interval, below CACHE_ELECTION_TIMEOUT_MS"},
    {.env = "CACHE_ELECTION_TIMEOUT_MS",
     .flag = "election-timeout-ms",
     .type = K_MS,
     .off = F(election_timeout_ms),
     .min = 1,
     .max = 600000,
     .def = "1000",
     .metavar = "MS",
     .help = "base election timeout T, randomised in [T, 2T]"},
    {.env = "CACHE_QUORUM_LOSS_GRACE_MS",
     .flag = "quorum-loss-grace-ms",
     .type = K_MS,
     .off = F(quorum_loss_grace_ms),
     .min = 1,
     .max = 86400000,
     .def = "1000",
     .def_text = "CACHE_ELECTION_TIMEOUT_MS",
     .metavar = "MS",
     .help = "how long a node may be without quorum before it invalidates its data"},
    {.env = "CACHE_EXPIRY_INTERVAL_MS",
     .flag = "expiry-interval-ms",
     .type = K_MS,
     .off = F(expiry_interval_ms),
     .min = 1,
     .max = 60000,
     .def = "100",
     .metavar = "MS",
     .help = "how often expired entries are reclaimed (they are never returned either way)"},
    {.env = "CACHE_BOOTSTRAP_EXPECT",
     .flag = "bootstrap-expect",
     .type = K_COUNT,
     .off = F(bootstrap_expect),
     .min = 0,
     .max = 32,
     .def = "0",
     .def_text = "a majority of HA_HOSTS",
     .metavar = "N",
     .help = "first start of a new cluster: bootstrap once N nodes of HA_HOSTS (me included) are "
             "up (default: all during the first 2 s, then a majority); a founder that comes "
             "later joins and votes once caught up"},
    {.env = "CACHE_SHUTDOWN_TIMEOUT_MS",
     .flag = "shutdown-timeout-ms",
     .type = K_MS,
     .off = F(shutdown_timeout_ms),
     .min = 0,
     .max = 3600000,
     .def = "5000",
     .metavar = "MS",
     .help = "upper bound for graceful shutdown"},

    /* operations */
    {.env = "CACHE_DATA_DIR",
     .flag = "data-dir",
     .type = K_STR,
     .off = F(data_dir),
     .metavar = "PATH",
     .help = "optional: raft state kept across restarts (without it every start is a new "
             "incarnation that rejoins as a voter)"},
    {.env = "CACHE_LOG_LEVEL",
     .flag = "log-level",
     .type = K_LOG_LEVEL,
     .off = F(log_level),
     .def = "info",
     .metavar = "LEVEL",
     .help = "error, warn, info, debug or trace"},
    {.env = "CACHE_LOG_FORMAT",
     .flag = "log-format",
     .type = K_LOG_FORMAT,
     .off = F(log_format),
     .def = "text",
     .metavar = "FORMAT",
     .help = "text (logfmt) or json"},
};

#define N_KNOBS (sizeof(knobs) / sizeof(knobs[0]))

/* redhac variables whose meaning does not carry over (buffer sizes, gRPC keepalive, its own
 * election and reconnect timers in seconds): accepted and ignored, listed by --help. Unknown
 * environment variables are never errors anyway. */
static const char *const redhac_ignored[] = {
    "CACHE_BUF_SERVER",
    "CACHE_BUF_CLIENT",
    "CACHE_KEEPALIVE_INTERVAL",
    "CACHE_KEEPALIVE_TIMEOUT",
    "CACHE_ELECTION_TIMEOUT",
    "CACHE_RECONNECT_TIMEOUT_LOWER",
    "CACHE_RECONNECT_TIMEOUT_UPPER",
};

const knob_t *config__knob_by_field(size_t off)
{
    for (size_t i = 0; i < N_KNOBS; i++) {
        if (knobs[i].off == off) {
            return &knobs[i];
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* small parsers */

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return HC_EINVAL;
}

static int parse_u32(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s)) {
        return HC_EINVAL;
    }
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) {
            return HC_EINVAL;
        }
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX) {
            return HC_EINVAL;
        }
    }
    *out = (uint32_t)v;
    return 0;
}

int hc_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000ull},
        {"kb", 1000ull},
        {"m", 1000000ull},
        {"mb", 1000000ull},
        {"g", 1000000000ull},
        {"gb", 1000000000ull},
        {"t", 1000000000000ull},
        {"tb", 1000000000000ull},
        {"ki", 1ull << 10},
        {"kib", 1ull << 10},
        {"mi", 1ull << 20},
        {"mib", 1ull << 20},
        {"gi", 1ull << 30},
        {"gib", 1ull << 30},
        {"ti", 1ull << 40},
        {"tib", 1ull << 40},
    };
    uint64_t v = 0;
    if (s == NULL || !isdigit((unsigned char)*s)) {
        return HC_EINVAL; /* also rejects "-1", "+1" and leading blanks */
    }
    for (; isdigit((unsigned char)*s); s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return HC_EINVAL;
        }
        v = v * 10 + d;
    }
    if (*s == ' ') {
        s++;
        if (*s == '\0') {
            return HC_EINVAL; /* a space must be followed by a unit */
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(s, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mult) {
                return HC_EINVAL;
            }
            *out = v * units[i].mult;
            return 0;
        }
    }
    return HC_EINVAL;
}

/* "64KiB" when exact, else a plain byte count: how error lines show sizes. */
static void format_size(uint64_t v, char *out, size_t outlen)
{
    static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};
    static const unsigned shifts[] = {40, 30, 20, 10};
    for (size_t i = 0; i < 4; i++) {
        uint64_t unit = 1ull << shifts[i];
        if (v >= unit && v % unit == 0) {
            snprintf(out, outlen, "%" PRIu64 "%s", v / unit, names[i]);
            return;
        }
    }
    snprintf(out, outlen, "%" PRIu64 " byte%s", v, v == 1 ? "" : "s");
}

/* ---------------------------------------------------------------------------------------- */
/* init, free, load */

void config__tokens_free(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free((*v)[i]);
    }
    free(*v);
    *v = NULL;
    *n = 0;
}

/* Clears a knob's field to "unset" (no default applied). */
static void knob_clear(hc_config_t *c, const knob_t *k)
{
    switch (k->type) {
    case K_STR:
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = NULL;
        break;
    case K_HOSTS:
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = NULL;
        hc_hosts_free(&c->hosts);
        break;
    case K_TOKENS:
        config__tokens_free(FIELD(c, k, char **), (size_t *)(void *)((char *)c + k->off_n));
        break;
    default:
        break;
    }
}

/* Sets a knob from its text. `flag` is the flag it came from (NULL: the environment or the
 * default), used to say where a bad value came from. */
static void knob_set(hc_config_t *c, const knob_t *k, const char *text, const char *flag,
                     report_t *r)
{
    char where[96] = "";
    if (flag != NULL) {
        snprintf(where, sizeof(where), "--%s ", flag);
    }
    /* everything but strings is trimmed: "true " from a YAML file is still true */
    char buf[128];
    const char *v = text;
    if (k->type != K_STR && k->type != K_HOSTS && k->type != K_TOKENS) {
        const char *b = text, *e = text + strlen(text);
        while (b < e && isspace((unsigned char)*b)) {
            b++;
        }
        while (e > b && isspace((unsigned char)e[-1])) {
            e--;
        }
        size_t l = (size_t)(e - b) < sizeof(buf) - 1 ? (size_t)(e - b) : sizeof(buf) - 1;
        memcpy(buf, b, l);
        buf[l] = '\0';
        v = buf;
    }

    switch (k->type) {
    case K_BOOL:
        if (parse_bool(v, FIELD(c, k, int)) != 0) {
            config__report(r, "%s: %s\"%.*s\" is not a boolean (true/false, 1/0, yes/no, on/off)",
                           k->env, where, VALUE_TEXT_MAX, text);
        }
        break;
    case K_STR: {
        if ((k->flags & KF_OFF) && strcasecmp(v, "off") == 0) {
            knob_clear(c, k);
            break;
        }
        char *dup = strdup(v);
        if (dup == NULL) {
            config__report(r, "%s: out of memory", k->env);
            break;
        }
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = dup;
        break;
    }
    case K_HOSTS: {
        knob_clear(c, k);
        *FIELD(c, k, char *) = strdup(v);
        if (*FIELD(c, k, char *) == NULL) {
            config__report(r, "%s: out of memory", k->env);
            break;
        }
        char err[512];
        if (hc_hosts_parse(v, &c->hosts, err, sizeof(err)) != 0) {
            config__report(r, "%s", err);
        }
        break;
    }
    case K_TOKENS: {
        /* a secret mounted into an env var often ends in a newline: not part of the token */
        size_t l = strlen(v);
        while (l > 0 && (v[l - 1] == '\n' || v[l - 1] == '\r')) {
            l--;
        }
        char **arr = calloc(1, sizeof(*arr));
        char *tok = strndup(v, l);
        if (arr == NULL || tok == NULL) {
            free(arr);
            free(tok);
            config__report(r, "%s: out of memory", k->env);
            break;
        }
        knob_clear(c, k);
        arr[0] = tok;
        *FIELD(c, k, char **) = arr;
        *(size_t *)(void *)((char *)c + k->off_n) = 1;
        break;
    }
    case K_SIZE:
        if (hc_parse_size(v, FIELD(c, k, uint64_t)) != 0) {
            config__report(
                r,
                "%s: %s\"%.*s\" is not a size (bytes, or a whole number with KiB, MiB, GiB, "
                "TiB, KB, MB, GB or TB)",
                k->env, where, VALUE_TEXT_MAX, text);
        }
        break;
    case K_MS:
        if (parse_u32(v, FIELD(c, k, uint32_t)) != 0) {
            config__report(r, "%s: %s\"%.*s\" is not a whole number of milliseconds", k->env, where,
                           VALUE_TEXT_MAX, text);
        }
        break;
    case K_COUNT:
        if (parse_u32(v, FIELD(c, k, uint32_t)) != 0) {
            config__report(r, "%s: %s\"%.*s\" is not a whole number", k->env, where, VALUE_TEXT_MAX,
                           text);
        }
        break;
    case K_LOG_LEVEL:
        if (hc_log_level_parse(v, FIELD(c, k, hc_log_level_t)) != 0) {
            config__report(r, "%s: %s\"%.*s\" is not a log level (error, warn, info, debug, trace)",
                           k->env, where, VALUE_TEXT_MAX, text);
        }
        break;
    case K_LOG_FORMAT:
        if (hc_log_format_parse(v, FIELD(c, k, hc_log_format_t)) != 0) {
            config__report(r, "%s: %s\"%.*s\" is not a log format (text, json)", k->env, where,
                           VALUE_TEXT_MAX, text);
        }
        break;
    }
}

/* Back to the default: the table's value, or unset. */
static void knob_reset(hc_config_t *c, const knob_t *k, report_t *r)
{
    knob_clear(c, k);
    if (k->def != NULL) {
        knob_set(c, k, k->def, NULL, r);
    }
}

void hc_config_init(hc_config_t *c)
{
    report_t r = {0};
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_KNOBS; i++) {
        knob_reset(c, &knobs[i], &r);
    }
    c->self_index = -1;
}

void hc_config_free(hc_config_t *c)
{
    for (size_t i = 0; i < N_KNOBS; i++) {
        knob_clear(c, &knobs[i]);
    }
    hc_hosts_free(&c->hosts);
    memset(c, 0, sizeof(*c));
    c->self_index = -1;
}

/* Fills *dst with a copy of src when *dst is unset. */
static void default_copy(char **dst, const char *src, const char *var, report_t *r)
{
    if (*dst == NULL && src != NULL) {
        *dst = strdup(src);
        if (*dst == NULL) {
            config__report(r, "%s: out of memory", var);
        }
    }
}

static const knob_t *knob_by_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KNOBS; i++) {
        if (strlen(knobs[i].flag) == len && strncmp(knobs[i].flag, name, len) == 0) {
            return &knobs[i];
        }
    }
    return NULL;
}

int hc_config_load(hc_config_t *c, int argc, char **argv, hc_getenv_fn getenv_fn, void *ud,
                   const char *system_hostname, hc_config_errors_t *errs)
{
    report_t r = {.errs = errs};
    const char *value[N_KNOBS] = {0}; /* the winning text of each knob; NULL = not given */
    const char *from_flag[N_KNOBS] = {0};

    for (size_t i = 0; i < N_KNOBS; i++) {
        const char *v = getenv_fn ? getenv_fn(ud, knobs[i].env) : getenv(knobs[i].env);
        if (v != NULL && *v != '\0') { /* VAR="" is how Kubernetes templates say "unset" */
            value[i] = v;
        }
    }

    static const struct {
        const char *name;
        size_t off;
    } commands[] = {
        {"help", F(cmd_help)},
        {"version", F(cmd_version)},
        {"check-config", F(cmd_check_config)},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) {
            c->cmd_help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            config__report(&r,
                           "%.*s: unexpected argument; flags are --name value or --name=value (see "
                           "--help)",
                           VALUE_TEXT_MAX, a);
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int is_command = 0;
        for (size_t j = 0; j < sizeof(commands) / sizeof(commands[0]); j++) {
            if (strlen(commands[j].name) == nlen && strncmp(commands[j].name, name, nlen) == 0) {
                is_command = 1;
                if (eq != NULL) {
                    config__report(&r, "--%s: takes no value", commands[j].name);
                } else {
                    *(int *)(void *)((char *)c + commands[j].off) = 1;
                }
            }
        }
        if (is_command) {
            continue;
        }
        const knob_t *k = knob_by_flag(name, nlen);
        if (k == NULL) {
            config__report(&r, "--%.*s: unknown flag (see --help)", (int)(nlen > 100 ? 100 : nlen),
                           name);
            continue;
        }
        const char *v;
        if (eq != NULL) {
            v = eq + 1;
        } else if (k->type == K_BOOL) {
            int ignored;
            v = "true"; /* "--ha-mode" alone; "--ha-mode false" still works */
            if (i + 1 < argc && parse_bool(argv[i + 1], &ignored) == 0) {
                v = argv[++i];
            }
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            config__report(&r, "%s: --%s needs a value", k->env, k->flag);
            continue;
        }
        value[k - knobs] = v; /* "" resets the knob to its default */
        from_flag[k - knobs] = k->flag;
    }

    for (size_t i = 0; i < N_KNOBS; i++) {
        if (value[i] == NULL) {
            continue;
        }
        if (*value[i] == '\0') {
            knob_reset(c, &knobs[i], &r);
        } else {
            knob_set(c, &knobs[i], value[i], from_flag[i], &r);
        }
    }

    /* both forms of a secret at once is ambiguous: which one wins is not obvious */
    static const struct {
        size_t inline_off, file_off;
    } secrets[] = {{F(auth_tokens), F(auth_token_file)}, {F(api_tokens), F(api_token_file)}};
    for (size_t i = 0; i < 2; i++) {
        const knob_t *ki = config__knob_by_field(secrets[i].inline_off);
        const knob_t *kf = config__knob_by_field(secrets[i].file_off);
        if (value[ki - knobs] && *value[ki - knobs] && value[kf - knobs] && *value[kf - knobs]) {
            config__report(&r, "%s: set either %s or %s, not both", kf->env, ki->env, kf->env);
        }
    }

    /* defaults that follow other knobs */
    if (value[config__knob_by_field(F(quorum_loss_grace_ms)) - knobs] == NULL ||
        *value[config__knob_by_field(F(quorum_loss_grace_ms)) - knobs] == '\0') {
        c->quorum_loss_grace_ms = c->election_timeout_ms;
    }
    if (c->tls_client_cert == NULL && c->tls_client_key == NULL) {
        default_copy(&c->tls_client_cert, c->tls_server_cert, "CACHE_TLS_CLIENT_CERT", &r);
        default_copy(&c->tls_client_key, c->tls_server_key, "CACHE_TLS_CLIENT_KEY", &r);
    }
    default_copy(&c->tls_ca_client, c->tls_ca_server, "CACHE_TLS_CA_CLIENT", &r);
    if (c->hostname == NULL) {
        char sys[HOST_MAX_LEN + 2] = "";
        if (system_hostname == NULL && gethostname(sys, sizeof(sys) - 1) == 0) {
            system_hostname = sys;
        }
        if (system_hostname != NULL && *system_hostname != '\0') {
            default_copy(&c->hostname, system_hostname, "HOSTNAME", &r);
        }
    }
    return r.n ? HC_EINVAL : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* range checks (the table's bounds; run by hc_config_validate) */

void config__check_ranges(const hc_config_t *c, report_t *r)
{
    for (size_t i = 0; i < N_KNOBS; i++) {
        const knob_t *k = &knobs[i];
        char v[48], lo[48], hi[48];
        if (k->type == K_SIZE) {
            uint64_t x = *FIELD(c, k, const uint64_t);
            if (x < k->min || x > k->max) {
                format_size(x, v, sizeof(v));
                format_size(k->min, lo, sizeof(lo));
                if (k->max == UINT64_MAX) {
                    config__report(r, "%s: %s is too small, at least %s required", k->env, v, lo);
                } else {
                    format_size(k->max, hi, sizeof(hi));
                    config__report(r, "%s: %s is out of range %s..%s", k->env, v, lo, hi);
                }
            }
        } else if (k->type == K_MS || k->type == K_COUNT) {
            uint32_t x = *FIELD(c, k, const uint32_t);
            if (x < k->min || x > k->max) {
                config__report(r, "%s: %" PRIu32 " is out of range %" PRIu64 "..%" PRIu64, k->env,
                               x, k->min, k->max);
            }
        }
    }
    if (c->bootstrap_expect > c->hosts.n && c->hosts.n > 0) {
        config__report(
            r, "CACHE_BOOTSTRAP_EXPECT: %" PRIu32 " is more than the %zu entries of HA_HOSTS",
            c->bootstrap_expect, c->hosts.n);
    }
    if (c->heartbeat_ms >= c->election_timeout_ms) {
        config__report(
            r, "CACHE_HEARTBEAT_MS: %" PRIu32 " must be below CACHE_ELECTION_TIMEOUT_MS %" PRIu32,
            c->heartbeat_ms, c->election_timeout_ms);
    }
    if (c->max_value_size > c->max_memory) {
        char v[48], m[48];
        format_size(c->max_value_size, v, sizeof(v));
        format_size(c->max_memory, m, sizeof(m));
        config__report(r, "CACHE_MAX_VALUE_SIZE: %s is larger than CACHE_MAX_MEMORY %s", v, m);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* --help */

/* Prints text indented and wrapped at word boundaries. */
static void print_wrapped(FILE *out, const char *text, int indent, int width)
{
    int col = 0;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > indent && col + 1 + (int)word > width) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0) {
            col = fprintf(out, "%*s", indent, "");
        } else {
            fputc(' ', out);
            col++;
        }
        col += fprintf(out, "%.*s", (int)word, text);
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

void hc_config_print_help(FILE *out)
{
    fprintf(out,
            "Usage: hacached [--check-config] [--FLAG VALUE | --FLAG=VALUE]...\n"
            "\n"
            "Every setting is an environment variable and a flag of the same name; flags win.\n"
            "Booleans: true/false, 1/0, yes/no, on/off (a boolean flag alone means true).\n"
            "Sizes: bytes, or a whole number with KiB MiB GiB TiB (1024-based) or KB MB GB TB\n"
            "(1000-based). An empty value means the default.\n"
            "\n"
            "Commands:\n"
            "  -h, --help       print this help and exit\n"
            "  --version        print the version and exit\n"
            "  --check-config   run every configuration check (files included) and exit:\n"
            "                   0 valid, 2 invalid\n"
            "\n"
            "Settings:\n");
    for (size_t i = 0; i < N_KNOBS; i++) {
        const knob_t *k = &knobs[i];
        const char *def = k->def_text ? k->def_text : k->def ? k->def : "none";
        fprintf(out, "  --%s %s  (%s, default: %s)\n", k->flag, k->metavar, k->env, def);
        print_wrapped(out, k->help, 6, 78);
    }
    char ignored[512] = "";
    hc_sbuf_t b = {.p = ignored, .cap = sizeof(ignored)};
    for (size_t i = 0; i < sizeof(redhac_ignored) / sizeof(redhac_ignored[0]); i++) {
        hc_sbuf_printf(&b, "%s%s", i ? ", " : "", redhac_ignored[i]);
    }
    fprintf(out, "\nredhac variables without a meaning here, accepted and ignored:\n");
    print_wrapped(out, ignored, 2, 78);
}
