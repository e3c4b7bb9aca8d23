/* config.c: the configuration contract of SPEC section 2.
 *
 * One table (`knobs`) drives everything a knob has: its environment variable, its flag, the
 * default applied by hc_config_init, the text of --help and where the value is stored. Adding a
 * knob is one row. hc_config_load only checks syntax and never touches the filesystem;
 * hc_config_validate checks meaning, cross-knob rules, and reads token, certificate and key
 * files. Every problem becomes one line that starts with the variable's name. */
#include "config.h"

#include "hacache.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define HOSTS_MAX          255         /* entries in HA_HOSTS; bounds untrusted input */
#define HOST_MAX_LEN       253         /* longest DNS name */
#define TOKEN_MIN_LEN      16          /* bytes, peer and API tokens alike */
#define TOKEN_FILE_MAX     (64 * 1024) /* a token file is a handful of lines */
#define PEM_FILE_MAX       (1 << 20)   /* certificate chains and CA bundles */
#define VALUE_TEXT_MAX     200         /* how much of a bad value an error line quotes */
#define MAX_VALUE_SIZE_CAP (512ull << 20)
#define MAX_KEY_SIZE_CAP   (64ull << 10)
#define MIN_MAX_MEMORY     (1ull << 20)

/* ---------------------------------------------------------------------------------------- */
/* error lines */

typedef struct {
    hc_config_errors_t *errs; /* may be NULL: count only */
    int n;                    /* problems found by this run, including dropped duplicates */
} report_t;

/* Appends one line. Identical lines are kept once, so main may run load and validate and print
 * the union; lines past HC_CONFIG_MAX_ERRORS are counted but dropped. */
__attribute__((format(printf, 2, 3))) static void report(report_t *r, const char *fmt, ...)
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

/* A bounded string builder: appends with truncation, never overflows. */
typedef struct {
    char *p;
    size_t cap, len;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->cap == 0 || b->len >= b->cap - 1) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w > 0) {
        b->len += (size_t)w;
        if (b->len > b->cap - 1) {
            b->len = b->cap - 1;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the knob table */

typedef enum {
    K_BOOL,       /* int */
    K_STR,        /* char *, owned */
    K_HOSTS,      /* char *ha_hosts_raw plus the parsed c->hosts */
    K_TOKENS,     /* char ** plus size_t count at off_n: one token given inline */
    K_SIZE,       /* uint64_t bytes */
    K_MS,         /* uint32_t milliseconds */
    K_COUNT,      /* uint32_t whole number (days, nodes, ...) */
    K_LOG_LEVEL,  /* hc_log_level_t */
    K_LOG_FORMAT, /* hc_log_format_t */
} knob_type_t;

enum {
    KF_OFF = 1, /* the value "off" means unset (CACHE_RESP_ADDR) */
};

typedef struct {
    const char *env;  /* environment variable */
    const char *flag; /* long flag without the leading "--" */
    knob_type_t type;
    size_t off;           /* the field in hc_config_t */
    size_t off_n;         /* K_TOKENS: the count field */
    uint64_t min, max;    /* K_SIZE, K_MS, K_COUNT: accepted range, checked by validate */
    int flags;            /* KF_* */
    const char *def;      /* default applied by hc_config_init (NULL: unset) */
    const char *def_text; /* default as --help shows it when it is not `def` */
    const char *metavar;  /* placeholder of the value in --help */
    const char *help;
} knob_t;

#define F(field) offsetof(hc_config_t, field)

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
     .def_text = "all of HA_HOSTS",
     .metavar = "N",
     .help = "first start of a new cluster: bootstrap once N nodes of HA_HOSTS (me included) are "
             "up; a founder that comes later never votes"},
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
     .def = "/var/lib/hacache",
     .metavar = "PATH",
     .help = "where the little state that must survive a restart lives"},
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

#define FIELD(c, k, T) ((T *)(void *)((char *)(c) + (k)->off))

static const knob_t *knob_by_field(size_t off)
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

static int is_host_char(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '_';
}

static int looks_like_ipv6(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.') {
            return 0;
        }
    }
    return 1;
}

static int is_ipv4_literal(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1;
}

/* Splits s[0..len) written as "host:port" or "[v6]:port". On failure returns HC_EINVAL with the
 * reason in `why` phrased to follow the quoted text ("has no port ..."). */
static int split_hostport(const char *s, size_t len, char *host, size_t hostlen, uint16_t *port,
                          int *ipv6, char *why, size_t whylen)
{
    const char *end = s + len, *hb, *he, *p;
    *ipv6 = 0;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (rb == NULL) {
            snprintf(why, whylen, "has '[' without ']'");
            return HC_EINVAL;
        }
        hb = s + 1;
        he = rb;
        p = rb + 1;
        if (p == end) {
            snprintf(why, whylen, "has no port (write [addr]:port)");
            return HC_EINVAL;
        }
        if (*p != ':') {
            snprintf(why, whylen, "has junk after ']' (write [addr]:port)");
            return HC_EINVAL;
        }
        p++;
        *ipv6 = 1;
    } else {
        const char *colon = memrchr(s, ':', len);
        if (colon == NULL) {
            snprintf(why, whylen, "has no port (write host:port)");
            return HC_EINVAL;
        }
        hb = s;
        he = colon;
        p = colon + 1;
        if (memchr(hb, ':', (size_t)(he - hb)) != NULL) {
            if (looks_like_ipv6(hb, (size_t)(end - hb))) {
                snprintf(why, whylen, "is an IPv6 address without brackets (write [addr]:port)");
            } else {
                snprintf(why, whylen, "has more than one ':' (write host:port)");
            }
            return HC_EINVAL;
        }
    }

    /* port: digits, then nothing */
    const char *d = p;
    while (d < end && isdigit((unsigned char)*d)) {
        d++;
    }
    if (d == p) {
        if (p == end) {
            snprintf(why, whylen, "has no port after ':'");
        } else {
            snprintf(why, whylen, "has an invalid port \"%.*s\"", (int)(end - p), p);
        }
        return HC_EINVAL;
    }
    if (d != end) {
        if (*d == '/') {
            snprintf(why, whylen, "has a path after the port (only host:port is allowed)");
        } else {
            snprintf(why, whylen, "has junk \"%.*s\" after the port", (int)(end - d), d);
        }
        return HC_EINVAL;
    }
    unsigned long pv = 0;
    for (const char *q = p; q < d && pv <= 65535; q++) {
        pv = pv * 10 + (unsigned long)(*q - '0');
    }
    if (pv < 1 || pv > 65535) {
        snprintf(why, whylen, "has port %.*s out of range 1..65535", (int)(d - p), p);
        return HC_EINVAL;
    }

    /* host */
    size_t hl = (size_t)(he - hb);
    if (hl == 0) {
        snprintf(why, whylen, "has an empty host");
        return HC_EINVAL;
    }
    if (hl > HOST_MAX_LEN) {
        snprintf(why, whylen, "has a host longer than %d characters", HOST_MAX_LEN);
        return HC_EINVAL;
    }
    if (hl >= hostlen) {
        snprintf(why, whylen, "has a host that is too long");
        return HC_EINVAL;
    }
    memcpy(host, hb, hl);
    host[hl] = '\0';
    if (*ipv6) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            snprintf(why, whylen, "has an invalid IPv6 address");
            return HC_EINVAL;
        }
    } else {
        for (size_t i = 0; i < hl; i++) {
            if (!is_host_char((unsigned char)host[i])) {
                snprintf(why, whylen, "has an invalid character '%c' in the host", host[i]);
                return HC_EINVAL;
            }
        }
    }
    *port = (uint16_t)pv;
    return 0;
}

int hc_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    char why[128];
    int v6;
    if (s == NULL) {
        return HC_EINVAL;
    }
    return split_hostport(s, strlen(s), host, hostlen, port, &v6, why, sizeof(why));
}

void hc_host_format(const hc_host_t *h, char *out, size_t outlen)
{
    snprintf(out, outlen, h->ipv6 ? "[%s]:%u" : "%s:%u", h->host, (unsigned)h->port);
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Host equality: IPv6 literals by address, everything else case-insensitively as text. */
static int host_equal(const char *a, int a_v6, const char *b, int b_v6)
{
    if (a_v6 && b_v6) {
        struct in6_addr x, y;
        return inet_pton(AF_INET6, a, &x) == 1 && inet_pton(AF_INET6, b, &y) == 1 &&
               memcmp(&x, &y, sizeof(x)) == 0;
    }
    return a_v6 == b_v6 && strcasecmp(a, b) == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* HA_HOSTS */

void hc_hosts_free(hc_hosts_t *h)
{
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

int hc_hosts_parse(const char *csv, hc_hosts_t *out, char *err, size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    const char *s = csv ? csv : "";
    size_t total = strlen(s), n_entries = 1;
    int blank = 1;
    for (size_t i = 0; i < total; i++) {
        n_entries += s[i] == ',';
        blank &= isspace((unsigned char)s[i]) != 0;
    }
    if (blank) {
        snprintf(err, errlen, "HA_HOSTS: is empty; expected host:port entries separated by commas");
        return HC_EINVAL;
    }
    if (n_entries > HOSTS_MAX) {
        snprintf(err, errlen, "HA_HOSTS: has %zu entries, at most %d are supported", n_entries,
                 HOSTS_MAX);
        return HC_EINVAL;
    }
    hc_host_t *v = calloc(n_entries, sizeof(*v));
    if (v == NULL) {
        snprintf(err, errlen, "HA_HOSTS: out of memory");
        return HC_EINVAL;
    }

    size_t n = 0;
    const char *b = s;
    for (size_t idx = 1; idx <= n_entries; idx++) {
        const char *comma = strchr(b, ',');
        const char *e = comma ? comma : s + total;
        const char *next = comma ? comma + 1 : e;
        while (b < e && isspace((unsigned char)*b)) {
            b++;
        }
        while (e > b && isspace((unsigned char)e[-1])) {
            e--;
        }
        int elen = (int)(e - b) > VALUE_TEXT_MAX ? VALUE_TEXT_MAX : (int)(e - b);
        if (b == e) {
            snprintf(err, errlen, "HA_HOSTS: entry %zu is empty (stray or trailing comma?)", idx);
            goto fail;
        }
        hc_host_t *h = &v[n];
        const char *rest = b;
        const char *sep = memmem(b, (size_t)(e - b), "://", 3);
        if (sep != NULL) {
            size_t sl = (size_t)(sep - b);
            if (sl == 4 && strncasecmp(b, "http", 4) == 0) {
                memcpy(h->scheme, "http", 5);
            } else if (sl == 5 && strncasecmp(b, "https", 5) == 0) {
                memcpy(h->scheme, "https", 6);
            } else {
                snprintf(err, errlen,
                         "HA_HOSTS: entry %zu \"%.*s\" has unknown scheme \"%.*s\" (use http://, "
                         "https:// or none)",
                         idx, elen, b, (int)(sl > 32 ? 32 : sl), b);
                goto fail;
            }
            rest = sep + 3;
        }
        char why[128];
        if (split_hostport(rest, (size_t)(e - rest), h->host, sizeof(h->host), &h->port, &h->ipv6,
                           why, sizeof(why)) != 0) {
            snprintf(err, errlen, "HA_HOSTS: entry %zu \"%.*s\" %s", idx, elen, b, why);
            goto fail;
        }
        for (size_t j = 0; j < n; j++) {
            if (v[j].port == h->port && host_equal(v[j].host, v[j].ipv6, h->host, h->ipv6)) {
                char name[300];
                hc_host_format(h, name, sizeof(name));
                snprintf(err, errlen, "HA_HOSTS: entries %zu and %zu are the same node %s", j + 1,
                         idx, name);
                goto fail;
            }
        }
        n++;
        b = next;
    }
    out->v = v;
    out->n = n;
    return 0;

fail:
    free(v);
    return HC_EINVAL;
}

/* "a:7000, b:7000" of the entries whose flag in `pick` is set (all when pick is NULL). */
static void format_entries(const hc_hosts_t *h, const unsigned char *pick, sbuf_t *b)
{
    int first = 1;
    for (size_t i = 0; i < h->n; i++) {
        if (pick != NULL && !pick[i]) {
            continue;
        }
        char name[300];
        hc_host_format(&h->v[i], name, sizeof(name));
        sb_printf(b, "%s%s", first ? "" : ", ", name);
        first = 0;
    }
    if (first) {
        sb_printf(b, "(none)");
    }
}

/* hc_hosts_find_self with the origin of the name for the messages: `var` is the variable that
 * names the node ("HOSTNAME_OVERWRITE"), `from` how to say where the name came from; both NULL
 * when unknown. */
static int find_self(const hc_hosts_t *h, const char *name, const char *var, const char *from,
                     char *err, size_t errlen)
{
    char nhost[HOST_MAX_LEN + 8];
    uint16_t nport = 0;
    int has_port = 0, nv6 = 0;
    size_t len = name ? strlen(name) : 0;
    char from_text[96] = "";
    if (from != NULL) {
        snprintf(from_text, sizeof(from_text), " (from %s)", from);
    }

    /* the name: host, host:port, [v6]:port, a bare IPv6 literal or [v6] */
    int ok = len > 0 && len <= HOST_MAX_LEN + 8;
    if (ok && name[0] == '[' && name[len - 1] == ']') {
        ok = len - 2 < sizeof(nhost);
        if (ok) {
            memcpy(nhost, name + 1, len - 2);
            nhost[len - 2] = '\0';
            nv6 = 1;
        }
    } else if (ok && name[0] != '[' && strchr(name, ':') == NULL) {
        ok = len < sizeof(nhost);
        for (size_t i = 0; ok && i < len; i++) {
            ok = is_host_char((unsigned char)name[i]);
        }
        if (ok) {
            memcpy(nhost, name, len + 1);
        }
    } else if (ok && name[0] != '[' && strchr(name, ':') != strrchr(name, ':')) {
        struct in6_addr a6;
        ok = len < sizeof(nhost) && inet_pton(AF_INET6, name, &a6) == 1;
        if (ok) {
            memcpy(nhost, name, len + 1);
            nv6 = 1;
        }
    } else if (ok) {
        char why[128];
        ok = split_hostport(name, len, nhost, sizeof(nhost), &nport, &nv6, why, sizeof(why)) == 0;
        has_port = 1;
    }
    if (ok && nv6) {
        struct in6_addr a6;
        ok = inet_pton(AF_INET6, nhost, &a6) == 1;
    }
    if (!ok) {
        snprintf(err, errlen,
                 "%s: this node's name \"%.*s\"%s is not host, host:port or [addr]:port",
                 var ? var : "HA_HOSTS", VALUE_TEXT_MAX, name ? name : "", from_text);
        return HC_EINVAL;
    }

    unsigned char match[HOSTS_MAX] = {0};
    size_t n_match = 0, found = 0;
    size_t nlen = strlen(nhost);
    for (size_t i = 0; i < h->n && i < HOSTS_MAX; i++) {
        const hc_host_t *e = &h->v[i];
        int m = host_equal(e->host, e->ipv6, nhost, nv6);
        if (has_port) {
            m = m && e->port == nport;
        } else if (!m && !nv6 && !e->ipv6 && !is_ipv4_literal(e->host)) {
            /* first DNS label: "hacache-0" matches "hacache-0.hacache", never as a prefix */
            const char *dot = strchr(e->host, '.');
            m = dot != NULL && (size_t)(dot - e->host) == nlen &&
                strncasecmp(e->host, nhost, nlen) == 0;
        }
        if (m) {
            match[i] = 1;
            n_match++;
            found = i;
        }
    }
    if (n_match == 1) {
        return (int)found;
    }

    sbuf_t b = {.p = err, .cap = errlen};
    if (errlen > 0) {
        err[0] = '\0';
    }
    if (n_match == 0) {
        sb_printf(&b,
                  "HA_HOSTS: this node \"%.*s\"%s is not in HA_HOSTS; entries: ", VALUE_TEXT_MAX,
                  name, from_text);
        format_entries(h, NULL, &b);
        if (var == NULL || strcmp(var, "HOSTNAME_OVERWRITE") != 0) {
            sb_printf(&b, "; set HOSTNAME_OVERWRITE to this node's entry");
        }
        return HC_ENOTFOUND;
    }
    sb_printf(&b, "HA_HOSTS: this node \"%.*s\"%s matches %zu entries: ", VALUE_TEXT_MAX, name,
              from_text, n_match);
    format_entries(h, match, &b);
    sb_printf(&b, "; set HOSTNAME_OVERWRITE to this node's host:port");
    return HC_EINVAL;
}

int hc_hosts_find_self(const hc_hosts_t *h, const char *name, char *err, size_t errlen)
{
    return find_self(h, name, NULL, NULL, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */
/* init, free, load */

static void tokens_free(char ***v, size_t *n)
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
        tokens_free(FIELD(c, k, char **), (size_t *)(void *)((char *)c + k->off_n));
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
            report(r, "%s: %s\"%.*s\" is not a boolean (true/false, 1/0, yes/no, on/off)", k->env,
                   where, VALUE_TEXT_MAX, text);
        }
        break;
    case K_STR: {
        if ((k->flags & KF_OFF) && strcasecmp(v, "off") == 0) {
            knob_clear(c, k);
            break;
        }
        char *dup = strdup(v);
        if (dup == NULL) {
            report(r, "%s: out of memory", k->env);
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
            report(r, "%s: out of memory", k->env);
            break;
        }
        char err[512];
        if (hc_hosts_parse(v, &c->hosts, err, sizeof(err)) != 0) {
            report(r, "%s", err);
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
            report(r, "%s: out of memory", k->env);
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
            report(r,
                   "%s: %s\"%.*s\" is not a size (bytes, or a whole number with KiB, MiB, GiB, "
                   "TiB, KB, MB, GB or TB)",
                   k->env, where, VALUE_TEXT_MAX, text);
        }
        break;
    case K_MS:
        if (parse_u32(v, FIELD(c, k, uint32_t)) != 0) {
            report(r, "%s: %s\"%.*s\" is not a whole number of milliseconds", k->env, where,
                   VALUE_TEXT_MAX, text);
        }
        break;
    case K_COUNT:
        if (parse_u32(v, FIELD(c, k, uint32_t)) != 0) {
            report(r, "%s: %s\"%.*s\" is not a whole number", k->env, where, VALUE_TEXT_MAX, text);
        }
        break;
    case K_LOG_LEVEL:
        if (hc_log_level_parse(v, FIELD(c, k, hc_log_level_t)) != 0) {
            report(r, "%s: %s\"%.*s\" is not a log level (error, warn, info, debug, trace)", k->env,
                   where, VALUE_TEXT_MAX, text);
        }
        break;
    case K_LOG_FORMAT:
        if (hc_log_format_parse(v, FIELD(c, k, hc_log_format_t)) != 0) {
            report(r, "%s: %s\"%.*s\" is not a log format (text, json)", k->env, where,
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
            report(r, "%s: out of memory", var);
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
            report(&r,
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
                    report(&r, "--%s: takes no value", commands[j].name);
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
            report(&r, "--%.*s: unknown flag (see --help)", (int)(nlen > 100 ? 100 : nlen), name);
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
            report(&r, "%s: --%s needs a value", k->env, k->flag);
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
        const knob_t *ki = knob_by_field(secrets[i].inline_off);
        const knob_t *kf = knob_by_field(secrets[i].file_off);
        if (value[ki - knobs] && *value[ki - knobs] && value[kf - knobs] && *value[kf - knobs]) {
            report(&r, "%s: set either %s or %s, not both", kf->env, ki->env, kf->env);
        }
    }

    /* defaults that follow other knobs */
    if (value[knob_by_field(F(quorum_loss_grace_ms)) - knobs] == NULL ||
        *value[knob_by_field(F(quorum_loss_grace_ms)) - knobs] == '\0') {
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
/* files: tokens, certificates, keys */

/* Reads at most `max` bytes of a regular file into a NUL-terminated buffer (caller frees).
 * NULL with the reason in `why` when the file is missing, unreadable or too large. */
static char *read_small_file(const char *path, size_t max, size_t *len, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        goto fail;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, max + 1 - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            goto fail;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
        if (n > max) {
            snprintf(why, whylen, "larger than %zu bytes", max);
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;

fail:
    free(buf);
    close(fd);
    return NULL;
}

/* API tokens travel in "Authorization: Bearer" and RESP AUTH: no blanks or control bytes. */
static int token_has_bad_byte(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch <= 0x20 || ch == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/* Reads a token file (one token per line; blank lines and a trailing \r ignored) and, when every
 * line is acceptable, replaces the token list with its lines. */
static void read_token_file(const char *var, const char *path, int api, char ***tokens, size_t *n,
                            report_t *r)
{
    char why[128];
    size_t len;
    char *buf = read_small_file(path, TOKEN_FILE_MAX, &len, why, sizeof(why));
    if (buf == NULL) {
        report(r, "%s: cannot read %s: %s", var, path, why);
        return;
    }
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++) {
        n_lines += buf[i] == '\n';
    }
    char **v = calloc(n_lines, sizeof(*v));
    size_t nv = 0;
    int bad = v == NULL;
    if (v == NULL) {
        report(r, "%s: out of memory", var);
    }
    char *line = buf;
    for (size_t lineno = 1; !bad && line < buf + len; lineno++) {
        char *nl = memchr(line, '\n', (size_t)(buf + len - line));
        char *end = nl ? nl : buf + len;
        char *next = nl ? nl + 1 : buf + len;
        if (end > line && end[-1] == '\r') {
            end--;
        }
        int blank = 1;
        for (char *p = line; p < end; p++) {
            blank &= isspace((unsigned char)*p) != 0;
        }
        size_t tl = (size_t)(end - line);
        if (!blank) {
            if (tl < TOKEN_MIN_LEN) {
                report(r, "%s: token on line %zu of %s is %zu bytes, at least %d required", var,
                       lineno, path, tl, TOKEN_MIN_LEN);
                bad = 1;
            } else if (memchr(line, '\0', tl) != NULL || (api && token_has_bad_byte(line, tl))) {
                report(r, "%s: token on line %zu of %s contains whitespace or a control character",
                       var, lineno, path);
                bad = 1;
            } else if ((v[nv++] = strndup(line, tl)) == NULL) {
                report(r, "%s: out of memory", var);
                bad = 1;
            }
        }
        line = next;
    }
    if (!bad && nv == 0) {
        report(r, "%s: %s holds no token (one token per line)", var, path);
        bad = 1;
    }
    if (bad) {
        tokens_free(&v, &nv);
    } else {
        tokens_free(tokens, n);
        *tokens = v;
        *n = nv;
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
}

int hc_config_read_tokens(const char *var, const char *path, int api, char ***tokens, size_t *n,
                          char *err, size_t errlen)
{
    hc_config_errors_t errs;
    errs.n = 0;
    report_t r = {.errs = &errs};
    char **v = NULL;
    size_t nv = 0;
    read_token_file(var, path, api, &v, &nv, &r);
    if (r.n > 0 || nv == 0) {
        tokens_free(&v, &nv);
        snprintf(err, errlen, "%s", errs.n > 0 ? errs.line[0] : "no token");
        return HC_EINVAL;
    }
    *tokens = v;
    *n = nv;
    return 0;
}

void hc_config_tokens_free(char **tokens, size_t n)
{
    for (size_t i = 0; tokens != NULL && i < n; i++) {
        OPENSSL_cleanse(tokens[i], strlen(tokens[i]));
    }
    tokens_free(&tokens, &n);
}

/* Peer or API tokens: read the file form, then check every token given inline. */
static void check_tokens(const knob_t *k_inline, const knob_t *k_file, hc_config_t *c, int api,
                         report_t *r)
{
    char ***tokens = FIELD(c, k_inline, char **);
    size_t *n = (size_t *)(void *)((char *)c + k_inline->off_n);
    const char *file = *FIELD(c, k_file, char *);
    if (file != NULL) {
        read_token_file(k_file->env, file, api, tokens, n, r);
        return;
    }
    for (size_t i = 0; i < *n; i++) {
        size_t tl = strlen((*tokens)[i]);
        if (tl < TOKEN_MIN_LEN) {
            report(r, "%s: token is %zu bytes, at least %d required", k_inline->env, tl,
                   TOKEN_MIN_LEN);
        } else if (api && token_has_bad_byte((*tokens)[i], tl)) {
            report(r, "%s: token contains whitespace or a control character", k_inline->env);
        }
    }
}

/* Refuses to prompt for a passphrase: a daemon has no terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static BIO *bio_of_file(const char *var, const char *path, report_t *r, char **buf)
{
    char why[128];
    size_t len;
    *buf = read_small_file(path, PEM_FILE_MAX, &len, why, sizeof(why));
    if (*buf == NULL) {
        report(r, "%s: cannot read %s: %s", var, path, why);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(*buf, (int)len);
    if (bio == NULL) {
        report(r, "%s: out of memory", var);
        free(*buf);
        *buf = NULL;
    }
    return bio;
}

/* Every PEM certificate of a file, in order; NULL after reporting why there is none. */
static STACK_OF(X509) * load_certs(const char *var, const char *path, report_t *r)
{
    char *buf;
    BIO *bio = bio_of_file(var, path, r, &buf);
    if (bio == NULL) {
        return NULL;
    }
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    ERR_clear_error();
    while (certs != NULL && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        if (sk_X509_push(certs, x) <= 0) {
            X509_free(x);
            break;
        }
    }
    /* running out of input ends the loop with "no start line"; anything else is damage */
    unsigned long e = ERR_peek_last_error();
    int damaged =
        e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
    ERR_clear_error();
    BIO_free(bio);
    free(buf);
    if (certs == NULL || sk_X509_num(certs) == 0) {
        report(r, "%s: %s holds no PEM certificate", var, path);
        sk_X509_pop_free(certs, X509_free);
        return NULL;
    }
    if (damaged) {
        report(r, "%s: %s has a malformed PEM certificate after certificate %d", var, path,
               sk_X509_num(certs));
        sk_X509_pop_free(certs, X509_free);
        return NULL;
    }
    return certs;
}

static EVP_PKEY *load_key(const char *var, const char *path, report_t *r)
{
    char *buf;
    BIO *bio = bio_of_file(var, path, r, &buf);
    if (bio == NULL) {
        return NULL;
    }
    ERR_clear_error();
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    ERR_clear_error();
    BIO_free(bio);
    OPENSSL_cleanse(buf, strlen(buf));
    free(buf);
    if (key == NULL) {
        report(r, "%s: %s is not a PEM private key (encrypted keys are not supported)", var, path);
    }
    return key;
}

static void format_asn1_time(const ASN1_TIME *t, char *out, size_t outlen)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        snprintf(out, outlen, "(unreadable date)");
    }
}

/* Checks a certificate/key pair: each file that is set is readable and PEM, the key belongs to
 * the leaf, the leaf is valid at `now`. Either path may be NULL (its absence is reported by the
 * caller). Returns the chain (caller frees) or NULL when there is no usable certificate. */
static STACK_OF(X509) * check_pair(const char *cert_var, const char *cert, const char *key_var,
                                   const char *key, int64_t now, report_t *r)
{
    STACK_OF(X509) *chain = cert ? load_certs(cert_var, cert, r) : NULL;
    EVP_PKEY *pkey = key ? load_key(key_var, key, r) : NULL;
    if (chain != NULL) {
        X509 *leaf = sk_X509_value(chain, 0);
        time_t t = (time_t)now;
        char date[64];
        if (pkey != NULL && X509_check_private_key(leaf, pkey) != 1) {
            report(r, "%s: %s does not match the certificate in %s %s", key_var, key, cert_var,
                   cert);
        }
        if (X509_cmp_time(X509_get0_notAfter(leaf), &t) < 0) {
            format_asn1_time(X509_get0_notAfter(leaf), date, sizeof(date));
            report(r, "%s: %s expired on %s (notAfter)", cert_var, cert, date);
        } else if (X509_cmp_time(X509_get0_notBefore(leaf), &t) > 0) {
            format_asn1_time(X509_get0_notBefore(leaf), date, sizeof(date));
            report(r, "%s: %s is not valid before %s (notBefore)", cert_var, cert, date);
        }
    }
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    return chain;
}

/* The leaf must chain to the CA bundle at `now` (the peers verify it against the same bundle).
 * The leaf's own dates were reported by check_pair already. */
static void check_chains_to(const char *cert_var, const char *cert, STACK_OF(X509) * chain,
                            const char *ca_var, const char *ca, STACK_OF(X509) * cas, int64_t now,
                            report_t *r)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (store == NULL || ctx == NULL || untrusted == NULL) {
        report(r, "%s: out of memory", cert_var);
        goto out;
    }
    for (int i = 0; i < sk_X509_num(cas); i++) {
        X509_STORE_add_cert(store, sk_X509_value(cas, i));
    }
    for (int i = 1; i < sk_X509_num(chain); i++) {
        sk_X509_push(untrusted, sk_X509_value(chain, i));
    }
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted) != 1) {
        report(r, "%s: out of memory", cert_var);
        goto out;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)now);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        int dates = e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID;
        if (!(dates && depth == 0)) {
            report(r, "%s: %s does not verify against %s %s: %s", cert_var, cert, ca_var, ca,
                   X509_verify_cert_error_string(e));
        }
    }
out:
    ERR_clear_error();
    sk_X509_free(untrusted); /* borrowed certificates: free the stack only */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

/* Peers dialing this node check its certificate for this name (SPEC: in the SAN). */
static void check_san(const char *cert, X509 *leaf, const char *name, int from_knob, report_t *r)
{
    int ok;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1) {
        ok = X509_check_ip_asc(leaf, name, 0) == 1;
    } else {
        ok = X509_check_host(leaf, name, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1;
    }
    ERR_clear_error();
    if (!ok) {
        report(r,
               "CACHE_TLS_SERVER_CERT: %s has no subjectAltName matching \"%s\", which peers "
               "verify (%s)",
               cert, name,
               from_knob ? "from CACHE_TLS_CLIENT_VALIDATE_DOMAIN"
                         : "this node's host in HA_HOSTS; or set CACHE_TLS_CLIENT_VALIDATE_DOMAIN");
    }
}

/* The peer TLS material of cluster mode with CACHE_TLS=true. */
static void check_peer_tls(const hc_config_t *c, int64_t now, report_t *r)
{
    static const char *const need[] = {"CACHE_TLS_SERVER_CERT", "CACHE_TLS_SERVER_KEY",
                                       "CACHE_TLS_CA_SERVER"};
    const char *have[] = {c->tls_server_cert, c->tls_server_key, c->tls_ca_server};
    for (size_t i = 0; i < 3; i++) {
        if (have[i] == NULL) {
            report(r, "%s: required when HA_MODE=true and CACHE_TLS=true (or set CACHE_TLS=false)",
                   need[i]);
        }
    }
    STACK_OF(X509) *server = NULL, *client = NULL, *ca_s = NULL, *ca_c = NULL;
    server = check_pair("CACHE_TLS_SERVER_CERT", c->tls_server_cert, "CACHE_TLS_SERVER_KEY",
                        c->tls_server_key, now, r);
    /* the client pair defaults to the server pair (load copies it): check it only when it is
     * another one, so a problem of the server pair is reported once */
    const char *ccert = c->tls_client_cert, *ckey = c->tls_client_key;
    int client_is_server = (ccert == NULL && ckey == NULL) ||
                           (str_eq(ccert, c->tls_server_cert) && str_eq(ckey, c->tls_server_key));
    if (!client_is_server) {
        if ((ccert == NULL) != (ckey == NULL)) {
            report(r, "%s: set together with %s",
                   ccert ? "CACHE_TLS_CLIENT_KEY" : "CACHE_TLS_CLIENT_CERT",
                   ccert ? "CACHE_TLS_CLIENT_CERT" : "CACHE_TLS_CLIENT_KEY");
        }
        client = check_pair("CACHE_TLS_CLIENT_CERT", ccert, "CACHE_TLS_CLIENT_KEY", ckey, now, r);
    }
    if (c->tls_ca_server != NULL) {
        ca_s = load_certs("CACHE_TLS_CA_SERVER", c->tls_ca_server, r);
    }
    const char *ca_client = c->tls_ca_client ? c->tls_ca_client : c->tls_ca_server;
    const char *ca_client_var = c->tls_ca_client ? "CACHE_TLS_CA_CLIENT" : "CACHE_TLS_CA_SERVER";
    int ca_same =
        ca_client == NULL || c->tls_ca_server == NULL || strcmp(ca_client, c->tls_ca_server) == 0;
    if (!ca_same) {
        ca_c = load_certs("CACHE_TLS_CA_CLIENT", ca_client, r);
    }

    /* peers verify our server certificate with their CA_SERVER, our client one with CA_CLIENT */
    if (server != NULL && ca_s != NULL) {
        check_chains_to("CACHE_TLS_SERVER_CERT", c->tls_server_cert, server, "CACHE_TLS_CA_SERVER",
                        c->tls_ca_server, ca_s, now, r);
    }
    STACK_OF(X509) *client_chain = client_is_server ? server : client;
    STACK_OF(X509) *client_ca = ca_same ? ca_s : ca_c;
    if (client_chain != NULL && client_ca != NULL) {
        check_chains_to(client_is_server ? "CACHE_TLS_SERVER_CERT" : "CACHE_TLS_CLIENT_CERT",
                        client_is_server ? c->tls_server_cert : ccert, client_chain,
                        ca_same ? "CACHE_TLS_CA_SERVER" : ca_client_var,
                        ca_same ? c->tls_ca_server : ca_client, client_ca, now, r);
    }
    if (server != NULL && c->self_index >= 0 && c->tls_server_key != NULL) {
        const char *domain = c->tls_client_validate_domain;
        check_san(c->tls_server_cert, sk_X509_value(server, 0),
                  domain ? domain : c->hosts.v[c->self_index].host, domain != NULL, r);
    }
    sk_X509_pop_free(server, X509_free);
    sk_X509_pop_free(client, X509_free);
    sk_X509_pop_free(ca_s, X509_free);
    sk_X509_pop_free(ca_c, X509_free);
}

/* ---------------------------------------------------------------------------------------- */
/* validate */

static int host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0) {
        return 1;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) {
            return 1;
        }
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}

static int host_is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0;
}

typedef struct {
    int set, ok;
    char host[HOST_MAX_LEN + 8];
    uint16_t port;
} addr_t;

static addr_t check_addr(const char *var, const char *value, report_t *r)
{
    addr_t a = {.set = value != NULL};
    if (!a.set) {
        return a;
    }
    char why[128];
    int v6;
    a.ok = split_hostport(value, strlen(value), a.host, sizeof(a.host), &a.port, &v6, why,
                          sizeof(why)) == 0;
    if (!a.ok) {
        report(r, "%s: \"%.*s\" %s", var, VALUE_TEXT_MAX, value, why);
    }
    return a;
}

static void check_ranges(const hc_config_t *c, report_t *r)
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
                    report(r, "%s: %s is too small, at least %s required", k->env, v, lo);
                } else {
                    format_size(k->max, hi, sizeof(hi));
                    report(r, "%s: %s is out of range %s..%s", k->env, v, lo, hi);
                }
            }
        } else if (k->type == K_MS || k->type == K_COUNT) {
            uint32_t x = *FIELD(c, k, const uint32_t);
            if (x < k->min || x > k->max) {
                report(r, "%s: %" PRIu32 " is out of range %" PRIu64 "..%" PRIu64, k->env, x,
                       k->min, k->max);
            }
        }
    }
    if (c->bootstrap_expect > c->hosts.n && c->hosts.n > 0) {
        report(r, "CACHE_BOOTSTRAP_EXPECT: %" PRIu32 " is more than the %zu entries of HA_HOSTS",
               c->bootstrap_expect, c->hosts.n);
    }
    if (c->heartbeat_ms >= c->election_timeout_ms) {
        report(r,
               "CACHE_HEARTBEAT_MS: %" PRIu32 " must be below CACHE_ELECTION_TIMEOUT_MS %" PRIu32,
               c->heartbeat_ms, c->election_timeout_ms);
    }
    if (c->max_value_size > c->max_memory) {
        char v[48], m[48];
        format_size(c->max_value_size, v, sizeof(v));
        format_size(c->max_memory, m, sizeof(m));
        report(r, "CACHE_MAX_VALUE_SIZE: %s is larger than CACHE_MAX_MEMORY %s", v, m);
    }
}

/* Both or neither of an API certificate and key, then the pair like the peer pair. */
static void check_http_tls(const hc_config_t *c, int64_t now, report_t *r)
{
    if (c->http_tls_cert == NULL && c->http_tls_key == NULL) {
        return;
    }
    if (c->http_tls_cert == NULL || c->http_tls_key == NULL) {
        report(r, "%s: set together with %s",
               c->http_tls_cert ? "CACHE_HTTP_TLS_KEY" : "CACHE_HTTP_TLS_CERT",
               c->http_tls_cert ? "CACHE_HTTP_TLS_CERT" : "CACHE_HTTP_TLS_KEY");
    }
    STACK_OF(X509) *chain = check_pair("CACHE_HTTP_TLS_CERT", c->http_tls_cert,
                                       "CACHE_HTTP_TLS_KEY", c->http_tls_key, now, r);
    sk_X509_pop_free(chain, X509_free);
}

static void check_cluster(hc_config_t *c, int64_t now, report_t *r, const addr_t *http,
                          const addr_t *resp)
{
    char err[512];
    if (c->ha_hosts_raw == NULL) {
        report(r,
               "HA_HOSTS: required when HA_MODE=true (host:port of every node, comma-separated)");
    } else if (c->hosts.n > 0) {
        const char *name = c->hostname_overwrite ? c->hostname_overwrite : c->hostname;
        const char *var = c->hostname_overwrite ? "HOSTNAME_OVERWRITE" : "HOSTNAME";
        const char *from =
            c->hostname_overwrite ? "HOSTNAME_OVERWRITE" : "HOSTNAME or gethostname()";
        if (name == NULL) {
            report(r, "HOSTNAME: unknown (HOSTNAME unset and gethostname() failed); set "
                      "HOSTNAME_OVERWRITE to this node's HA_HOSTS entry");
        } else {
            int idx = find_self(&c->hosts, name, var, from, err, sizeof(err));
            if (idx >= 0) {
                c->self_index = idx;
            } else {
                report(r, "%s", err);
            }
        }
        for (size_t i = 0; i < c->hosts.n; i++) {
            const hc_host_t *h = &c->hosts.v[i];
            char hn[300];
            hc_host_format(h, hn, sizeof(hn));
            if (strcmp(h->scheme, "https") == 0 && !c->tls) {
                report(r,
                       "HA_HOSTS: entry %zu \"https://%s\" needs CACHE_TLS=true (or write "
                       "http:// or no scheme)",
                       i + 1, hn);
            } else if (strcmp(h->scheme, "http") == 0 && c->tls) {
                report(r,
                       "HA_HOSTS: entry %zu \"http://%s\" disagrees with CACHE_TLS=true (write "
                       "https:// or no scheme, or set CACHE_TLS=false)",
                       i + 1, hn);
            }
        }
    }

    check_tokens(knob_by_field(F(auth_tokens)), knob_by_field(F(auth_token_file)), c, 0, r);
    if (c->n_auth_tokens == 0 && c->auth_token_file == NULL) {
        report(r,
               "CACHE_AUTH_TOKEN: required when HA_MODE=true (at least %d bytes; or "
               "CACHE_AUTH_TOKEN_FILE)",
               TOKEN_MIN_LEN);
    }

    if (c->tls) {
        check_peer_tls(c, now, r);
    }

    /* the peer port of this node must not be taken by an API listener */
    if (c->self_index >= 0) {
        const hc_host_t *me = &c->hosts.v[c->self_index];
        const addr_t *apis[] = {http, resp};
        static const char *const vars[] = {"CACHE_HTTP_ADDR", "CACHE_RESP_ADDR"};
        for (size_t i = 0; i < 2; i++) {
            if (apis[i]->ok && apis[i]->port == me->port && c->listen_addr != NULL &&
                (host_is_wildcard(c->listen_addr) || host_is_wildcard(apis[i]->host) ||
                 strcasecmp(c->listen_addr, apis[i]->host) == 0)) {
                report(r, "%s: port %u is also this node's peer port in HA_HOSTS", vars[i],
                       (unsigned)me->port);
            }
        }
    }
}

int hc_config_validate(hc_config_t *c, int64_t now, hc_config_errors_t *errs)
{
    report_t r = {.errs = errs};
    c->self_index = -1;

    check_ranges(c, &r);

    if (c->listen_addr == NULL) {
        report(&r, "CACHE_LISTEN_ADDR: not set");
    } else {
        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, c->listen_addr, &a4) != 1 &&
            inet_pton(AF_INET6, c->listen_addr, &a6) != 1) {
            report(&r, "CACHE_LISTEN_ADDR: \"%.*s\" is not an IPv4 or IPv6 address", VALUE_TEXT_MAX,
                   c->listen_addr);
        }
    }

    /* client API: addresses, then the token rule off loopback */
    addr_t http = check_addr("CACHE_HTTP_ADDR", c->http_addr, &r);
    addr_t resp = check_addr("CACHE_RESP_ADDR", c->resp_addr, &r);
    if (!http.set) {
        report(&r, "CACHE_HTTP_ADDR: not set");
    }
    if (http.ok && resp.ok && http.port == resp.port && strcasecmp(http.host, resp.host) == 0) {
        report(&r, "CACHE_RESP_ADDR: same address as CACHE_HTTP_ADDR");
    }
    check_tokens(knob_by_field(F(api_tokens)), knob_by_field(F(api_token_file)), c, 1, &r);
    if (c->n_api_tokens == 0 && c->api_token_file == NULL && !c->api_insecure) {
        const addr_t *apis[] = {&http, &resp};
        static const char *const vars[] = {"CACHE_HTTP_ADDR", "CACHE_RESP_ADDR"};
        for (size_t i = 0; i < 2; i++) {
            if (apis[i]->ok && !host_is_loopback(apis[i]->host)) {
                report(&r,
                       "CACHE_API_TOKEN: required because %s %s:%u is not loopback (or set "
                       "CACHE_API_INSECURE=true)",
                       vars[i], apis[i]->host, (unsigned)apis[i]->port);
            }
        }
    }
    check_http_tls(c, now, &r);

    /* HA_HOSTS is checked whenever it is set, even standalone */
    if (c->ha_hosts_raw != NULL && c->hosts.n == 0) {
        char err[512];
        if (hc_hosts_parse(c->ha_hosts_raw, &c->hosts, err, sizeof(err)) != 0) {
            report(&r, "%s", err);
        }
    }
    if (c->ha_mode) {
        check_cluster(c, now, &r, &http, &resp);
    }
    return r.n ? HC_EINVAL : 0;
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
    sbuf_t b = {.p = ignored, .cap = sizeof(ignored)};
    for (size_t i = 0; i < sizeof(redhac_ignored) / sizeof(redhac_ignored[0]); i++) {
        sb_printf(&b, "%s%s", i ? ", " : "", redhac_ignored[i]);
    }
    fprintf(out, "\nredhac variables without a meaning here, accepted and ignored:\n");
    print_wrapped(out, ignored, 2, 78);
}
