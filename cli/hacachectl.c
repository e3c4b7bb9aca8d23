/* hacachectl: the admin CLI of SPEC section 6, over the HTTP API of any node.
 *
 *   hacachectl [--endpoints URL,...] [--token T] [--cacert FILE] [--tls-server-name NAME]
 *              [-o table|json] [--timeout MS] COMMAND ...
 *
 * Endpoints also come from HACACHE_ENDPOINTS (default http://127.0.0.1:8080), the token from
 * HACACHE_TOKEN, the CA bundle for https:// endpoints from HACACHE_CACERT. Data commands go through
 * libhacache: they start at a random endpoint and move to another (random, not backing off) one on
 * a failure or a 503, so a down or cut-off node is skipped; status and tls reload ask every
 * endpoint. Exit status: 0 success, 1 the operation failed, 2 usage error. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hacache.h"
#include "json.h"
#include "probe.h"
#include "status_check.h"

#define MAX_ENDPOINTS   32
#define MAX_VALUE_BYTES ((size_t)600 * 1024 * 1024) /* put from standard input */

typedef struct {
    char *endpoints[MAX_ENDPOINTS];
    size_t n_endpoints;
    char *endpoints_buf;
    const char *endpoint_list; /* as given: libhacache parses and fails over */
    const char *token;
    const char *cacert;      /* CA bundle for https:// endpoints, or NULL: the system's */
    const char *server_name; /* expected certificate name, or NULL: the endpoint's host */
    int json;
    uint32_t timeout_ms;
} ctl_t;

/* One answer of hc_request. */
typedef struct {
    int status;
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
} answer_t;

static void usage(FILE *f)
{
    fputs("usage: hacachectl [--endpoints URL,...] [--token T] [--cacert FILE]\n"
          "                  [--tls-server-name NAME] [-o table|json] [--timeout MS]\n"
          "                  COMMAND [ARGS]\n"
          "\n"
          "Endpoints: --endpoints or HACACHE_ENDPOINTS (default http://127.0.0.1:8080), comma\n"
          "separated http:// or https:// URLs; token: --token or HACACHE_TOKEN (the API token,\n"
          "CACHE_API_TOKEN). https://: the server certificate is verified against --cacert or\n"
          "HACACHE_CACERT (a PEM bundle; default: the system's trust store) and the endpoint's\n"
          "host, or --tls-server-name (e.g. the service name when dialling 127.0.0.1).\n"
          "\n"
          "Commands:\n"
          "  status                         one row per endpoint: node, role, term, leader, lag,\n"
          "                                 quorum, health, certificate expiry; then a warning\n"
          "                                 line per disagreement (two leaders, diverging terms,\n"
          "                                 different leaders, lag, silent links, unreachable)\n"
          "    [--watch [--interval MS] [--count N]]  repeat every MS (1000) until Ctrl-C or N\n"
          "    [--lag-threshold N] [--contact-threshold MS]  highlight limits (100, 3000)\n"
          "  get CACHE KEY [--consistency local|leader|linearizable]\n"
          "  put CACHE KEY VALUE|- [--ack quorum|once|leader|none] [--ttl MS] [--if-absent]\n"
          "                                 (- reads the value from standard input)\n"
          "  del CACHE KEY [--ack LEVEL]\n"
          "  incr CACHE KEY [--by N]\n"
          "  clear CACHE\n"
          "  caches                         caches with entries and memory\n"
          "  leader transfer [--to HOST:PORT]\n"
          "  tls reload                     on every endpoint (like SIGHUP)\n"
          "  config check [HACACHED FLAGS]  the checks of hacached --check-config, on this\n"
          "                                 machine's environment and flags\n"
          "  config check --probe [--probe-timeout MS] [HACACHED FLAGS]\n"
          "                                 and dial every other HA_HOSTS peer with this node's\n"
          "                                 credentials: TCP, TLS, token, version per peer\n"
          "                                 (each peer within MS, default 2000)\n"
          "\n"
          "Exit status: 0 success, 1 the operation failed (an endpoint did not answer status, a\n"
          "peer failed a probe step), 2 usage or configuration error.\n",
          f);
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "hacachectl: %s (see hacachectl --help)\n", msg);
    return 2;
}

static int split_endpoints(ctl_t *c, const char *list)
{
    c->endpoints_buf = strdup(list);
    if (c->endpoints_buf == NULL) {
        return -1;
    }
    char *save = NULL;
    for (char *t = strtok_r(c->endpoints_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') {
            t++;
        }
        size_t l = strlen(t);
        while (l > 0 && t[l - 1] == ' ') {
            t[--l] = '\0';
        }
        if (l == 0) {
            continue;
        }
        if (c->n_endpoints == MAX_ENDPOINTS) {
            return -1;
        }
        c->endpoints[c->n_endpoints++] = t;
    }
    return c->n_endpoints > 0 ? 0 : -1;
}

/* Percent-encodes s for a path segment. */
static char *pct(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1), *p = o;
    if (o == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            *p++ = (char)ch;
        } else {
            p += sprintf(p, "%%%02X", ch);
        }
    }
    *p = '\0';
    return o;
}

/* The error message of a JSON error answer, else the status. */
static void print_http_error(const char *ep, const answer_t *r)
{
    char err[128];
    hj_t *j = hj_parse(r->body, r->len, err, sizeof(err));
    const char *msg = hj_str(j, "error", NULL);
    const char *code = hj_str(j, "code", NULL);
    fprintf(stderr, "hacachectl: %s%sHTTP %d%s%s%s%s%s\n", ep ? ep : "", ep ? ": " : "", r->status,
            msg ? ": " : "", msg ? msg : "", code ? " (" : "", code ? code : "", code ? ")" : "");
    if (r->status == 401) {
        fputs("hacachectl: pass the API token with --token or HACACHE_TOKEN\n", stderr);
    }
    hj_free(j);
}

/* A client for `endpoints` (a comma-separated list, or one of ours), with the TLS settings.
 * NULL when the list is malformed or the CA bundle unusable (*why says which, if not NULL). */
static hc_client_t *client_for(const ctl_t *c, const char *endpoints, char *why, size_t whylen)
{
    hc_client_opts_t o = {endpoints, c->token, c->timeout_ms, 0};
    hc_client_t *cl = NULL;
    if (hc_client_new(&o, &cl) != 0) {
        if (why != NULL) {
            snprintf(why, whylen, "endpoint %s: not an http://host:port or https://host:port URL",
                     endpoints);
        }
        return NULL;
    }
    if (c->cacert != NULL || c->server_name != NULL) {
        hc_client_tls_t t = {.ca_file = c->cacert, .server_name = c->server_name};
        if (hc_client_set_tls(cl, &t) != 0) {
            if (why != NULL) {
                char detail[400];
                hc_client_last_error(cl, detail, sizeof(detail));
                snprintf(why, whylen, "%s",
                         detail[0] ? detail : "--tls-server-name: not a host name");
            }
            hc_client_free(cl);
            return NULL;
        }
    }
    return cl;
}

/* The client's reason for its last failure, as " (...)" for a message, or "". */
static void last_error_note(hc_client_t *cl, char *buf, size_t len)
{
    char detail[512];
    buf[0] = '\0';
    if (cl != NULL && hc_client_last_error(cl, detail, sizeof(detail)) == 0 && detail[0]) {
        snprintf(buf, len, " [%s]", detail);
    }
}

/* Sends through libhacache: the first node that answers with anything but 502/503/504, within
 * --timeout; a write carries one request id for all its attempts. 0 with *out, or 1 (printed). */
static int request_any(ctl_t *c, const char *method, const char *path, const void *body,
                       size_t blen, answer_t *out)
{
    memset(out, 0, sizeof(*out));
    hc_client_t *cl = client_for(c, c->endpoint_list, NULL, 0);
    int rv = cl ? hc_request(cl, method, path, body, blen, &out->status, &out->body, &out->len)
                : HC_ENOMEM;
    char note[600];
    last_error_note(cl, note, sizeof(note));
    hc_client_free(cl);
    if (rv == 0) {
        return 0;
    }
    fprintf(stderr, "hacachectl: no endpoint could serve the request (%s)%s%s\n", hc_strerror(rv),
            note,
            rv == HC_EUNKNOWN_OUTCOME ? ": the write may or may not have been applied"
            : rv == HC_ETLS ? "; check --cacert / HACACHE_CACERT (the CA that signed the nodes' "
                              "CACHE_HTTP_TLS_CERT) and --tls-server-name"
            : rv == HC_EUNAVAILABLE
                ? "; check that hacached runs, has a quorum, and that --endpoints / "
                  "HACACHE_ENDPOINTS name its HTTP API (CACHE_HTTP_ADDR)"
                : "");
    return 1;
}

/* One endpoint only (status and tls reload ask each node; leader transfer looks for the
 * leader). 0 with *out, or -1 with a reason in err. */
static int request_one(const ctl_t *c, const char *endpoint, const char *method, const char *path,
                       answer_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    hc_client_t *cl = client_for(c, endpoint, NULL, 0);
    int rv =
        cl ? hc_request(cl, method, path, NULL, 0, &out->status, &out->body, &out->len) : HC_ENOMEM;
    char note[600];
    last_error_note(cl, note, sizeof(note));
    hc_client_free(cl);
    if (rv != 0) {
        snprintf(err, errlen, "%s: %s%s", endpoint,
                 rv == HC_EUNAVAILABLE ? "unreachable or unavailable" : hc_strerror(rv),
                 rv == HC_ETLS ? note : "");
        return -1;
    }
    return 0;
}

static char *key_path(const char *cache, const char *key, const char *suffix, const char *query)
{
    char *ec = pct(cache), *ek = key ? pct(key) : NULL;
    size_t n = 32 + (ec ? strlen(ec) : 0) + (ek ? strlen(ek) : 0) + strlen(suffix) + strlen(query);
    char *p = malloc(n);
    if (p != NULL && ec != NULL && (key == NULL || ek != NULL)) {
        snprintf(p, n, "/v1/caches/%s%s%s%s%s", ec, ek ? "/" : "", ek ? ek : "", suffix, query);
    } else {
        free(p);
        p = NULL;
    }
    free(ec);
    free(ek);
    return p;
}

/* Runs one data request and prints the answer: the raw value for get, else the JSON body.
 * 0 on 2xx, 1 otherwise. */
static int data_request(ctl_t *c, const char *method, char *path, const void *body, size_t blen,
                        int raw)
{
    if (path == NULL) {
        fputs("hacachectl: out of memory\n", stderr);
        return 1;
    }
    answer_t r;
    int rv = request_any(c, method, path, body, blen, &r);
    free(path);
    if (rv != 0) {
        return 1;
    }
    if (r.status < 200 || r.status > 299) {
        print_http_error(NULL, &r);
        free(r.body);
        return 1;
    }
    fwrite(r.body, 1, r.len, stdout);
    if (!raw && (r.len == 0 || r.body[r.len - 1] != '\n')) {
        putchar('\n');
    }
    free(r.body);
    return 0;
}

static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t l = strlen(name);
    if (strncmp(argv[*i], name, l) == 0 && argv[*i][l] == '=') {
        return argv[*i] + l + 1;
    }
    if (strcmp(argv[*i], name) == 0 && *i + 1 < argc) {
        return argv[++*i];
    }
    return NULL;
}

static int valid_ack(const char *a)
{
    return strcmp(a, "quorum") == 0 || strcmp(a, "once") == 0 || strcmp(a, "leader") == 0 ||
           strcmp(a, "none") == 0;
}

static int all_digits(const char *s, int allow_sign)
{
    if (allow_sign && *s == '-') {
        s++;
    }
    return *s != '\0' && strspn(s, "0123456789") == strlen(s) && strlen(s) < 20;
}

static char *read_stdin(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b != NULL) {
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            break;
        }
        if (n == cap) {
            if (cap >= MAX_VALUE_BYTES) {
                free(b);
                return NULL;
            }
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
    }
    *len = n;
    return b;
}

static int cmd_data(ctl_t *c, const char *cmd, int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    const char *ack = NULL, *ttl = NULL, *by = NULL, *cons = NULL;
    int if_absent = 0;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--ack")) != NULL) {
            ack = v;
        } else if ((v = opt_value(argc, argv, &i, "--ttl")) != NULL) {
            ttl = v;
        } else if ((v = opt_value(argc, argv, &i, "--by")) != NULL) {
            by = v;
        } else if ((v = opt_value(argc, argv, &i, "--consistency")) != NULL) {
            cons = v;
        } else if (strcmp(argv[i], "--if-absent") == 0) {
            if_absent = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "hacachectl: %s: unknown option %s\n", cmd, argv[i]);
            return 2;
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            return usage_error("too many arguments");
        }
    }
    if (ack && !valid_ack(ack)) {
        return usage_error("--ack must be quorum, once, leader or none");
    }
    if ((ttl && !all_digits(ttl, 0)) || (by && !all_digits(by, 1))) {
        return usage_error("--ttl takes milliseconds, --by an integer");
    }
    if (cons && strcmp(cons, "local") != 0 && strcmp(cons, "leader") != 0 &&
        strcmp(cons, "linearizable") != 0) {
        return usage_error("--consistency must be local, leader or linearizable");
    }
    char q[256];
    if (strcmp(cmd, "get") == 0) {
        if (npos != 2) {
            return usage_error("get CACHE KEY");
        }
        snprintf(q, sizeof(q), "%s%s", cons ? "?consistency=" : "", cons ? cons : "");
        return data_request(c, "GET", key_path(pos[0], pos[1], "", q), NULL, 0, 1);
    }
    if (strcmp(cmd, "put") == 0) {
        if (npos != 3) {
            return usage_error("put CACHE KEY VALUE (or - for standard input)");
        }
        snprintf(q, sizeof(q), "?ack=%s%s%s%s", ack ? ack : "quorum", ttl ? "&ttl_ms=" : "",
                 ttl ? ttl : "", if_absent ? "&if_absent=1" : "");
        size_t vlen = strlen(pos[2]);
        char *val = NULL;
        if (strcmp(pos[2], "-") == 0) {
            val = read_stdin(&vlen);
            if (val == NULL) {
                fputs("hacachectl: cannot read the value from standard input\n", stderr);
                return 1;
            }
        }
        int rv =
            data_request(c, "PUT", key_path(pos[0], pos[1], "", q), val ? val : pos[2], vlen, 0);
        free(val);
        return rv;
    }
    if (strcmp(cmd, "del") == 0) {
        if (npos != 2) {
            return usage_error("del CACHE KEY");
        }
        snprintf(q, sizeof(q), "?ack=%s", ack ? ack : "quorum");
        return data_request(c, "DELETE", key_path(pos[0], pos[1], "", q), NULL, 0, 0);
    }
    if (strcmp(cmd, "incr") == 0) {
        if (npos != 2) {
            return usage_error("incr CACHE KEY");
        }
        snprintf(q, sizeof(q), "?by=%s", by ? by : "1");
        return data_request(c, "POST", key_path(pos[0], pos[1], "/incr", q), NULL, 0, 0);
    }
    /* clear */
    if (npos != 1) {
        return usage_error("clear CACHE");
    }
    return data_request(c, "DELETE", key_path(pos[0], NULL, "", ""), NULL, 0, 0);
}

static void fmt_expiry(const hj_t *st, char *out, size_t cap)
{
    const hj_t *tls = hj_get(st, "tls");
    const hj_t *ps = hj_get(tls, "peer_server");
    const char *na = hj_str(ps, "not_after", NULL);
    snprintf(out, cap, "%s", na ? na : "-");
}

/* Prints s as a JSON string (control bytes escaped: answers and endpoints are not ours). */
static void json_print_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

/* The findings that concern endpoint i, as the JSON member "problems". */
static void json_print_problems(const sc_findings_t *f, size_t i)
{
    fputs(",\"problems\":[", stdout);
    int first = 1;
    for (size_t k = 0; k < f->n; k++) {
        if (f->v[k].nodes & ((uint64_t)1 << i)) {
            printf("%s{\"kind\":\"%s\",\"message\":", first ? "" : ",", sc_kind_name(f->v[k].kind));
            json_print_str(f->v[k].message);
            putchar('}');
            first = 0;
        }
    }
    putchar(']');
}

/* What `status` does besides asking: --watch rounds and the thresholds of the highlights. */
typedef struct {
    int watch;
    uint32_t interval_ms;
    uint64_t count; /* rounds with --watch; 0 = until SIGINT */
    sc_limits_t limits;
} status_opts_t;

/* One round of status: asks every endpoint, prints the table (or JSON) and the disagreement
 * lines. 1 when an endpoint did not answer, else 0 (disagreement alone does not fail). */
static int status_round(ctl_t *c, const status_opts_t *o)
{
    hj_t *st[MAX_ENDPOINTS] = {NULL};
    char errs[MAX_ENDPOINTS][256];
    int failed = 0;
    double max_commit = 0;
    for (size_t i = 0; i < c->n_endpoints; i++) {
        answer_t r;
        errs[i][0] = '\0';
        if (request_one(c, c->endpoints[i], "GET", "/v1/status", &r, errs[i], sizeof(errs[i])) !=
            0) {
            failed = 1;
            continue;
        }
        if (r.status != 200) {
            snprintf(errs[i], sizeof(errs[i]), "HTTP %d", r.status);
        } else {
            char jerr[128];
            st[i] = hj_parse(r.body, r.len, jerr, sizeof(jerr));
            if (st[i] == NULL) {
                snprintf(errs[i], sizeof(errs[i]), "bad status JSON: %s", jerr);
            }
        }
        failed |= st[i] == NULL;
        free(r.body);
        double cm = hj_num(st[i], "commit_index", 0);
        max_commit = cm > max_commit ? cm : max_commit;
    }
    sc_findings_t findings;
    sc_check((const hj_t *const *)st, (const char *const *)c->endpoints, c->n_endpoints, &o->limits,
             &findings);
    if (c->json) {
        fputs("[", stdout);
        for (size_t i = 0; i < c->n_endpoints; i++) {
            /* re-fetching would race; print what we parsed as a compact summary */
            const hj_t *s = st[i];
            printf("%s{\"endpoint\":", i ? "," : "");
            json_print_str(c->endpoints[i]);
            if (s == NULL) {
                printf(",\"error\":");
                json_print_str(errs[i]);
                json_print_problems(&findings, i);
                putchar('}');
                continue;
            }
            const char *leader = hj_str(s, "leader", NULL);
            printf(",\"node\":\"%s\",\"role\":\"%s\",\"term\":%.0f,\"leader\":%s%s%s,"
                   "\"commit_index\":%.0f,\"applied_index\":%.0f,\"quorum\":%s,\"ready\":%s",
                   hj_str(s, "node", ""), hj_str(s, "role", ""), hj_num(s, "term", 0),
                   leader ? "\"" : "", leader ? leader : "null", leader ? "\"" : "",
                   hj_num(s, "commit_index", 0), hj_num(s, "applied_index", 0),
                   hj_bool(s, "quorum", 0) ? "true" : "false",
                   hj_bool(s, "ready", 0) ? "true" : "false");
            json_print_problems(&findings, i);
            putchar('}');
        }
        fputs("]\n", stdout);
    } else {
        printf("%-24s %-11s %6s %-24s %6s %-6s %-11s %s\n", "NODE", "ROLE", "TERM", "LEADER", "LAG",
               "QUORUM", "HEALTH", "CERT EXPIRY");
        for (size_t i = 0; i < c->n_endpoints; i++) {
            const hj_t *s = st[i];
            if (s == NULL) {
                printf("%-24s %-11s %6s %-24s %6s %-6s %-11s %s\n", c->endpoints[i], "-", "-", "-",
                       "-", "-", "unreachable", errs[i]);
                continue;
            }
            char exp[64];
            fmt_expiry(s, exp, sizeof(exp));
            const char *leader = hj_str(s, "leader", NULL);
            printf("%-24s %-11s %6.0f %-24s %6.0f %-6s %-11s %s\n", hj_str(s, "node", "?"),
                   hj_str(s, "role", "?"), hj_num(s, "term", 0), leader ? leader : "-",
                   max_commit - hj_num(s, "applied_index", 0),
                   hj_bool(s, "quorum", 0) ? "yes" : "no",
                   hj_bool(s, "ready", 0) ? "ready" : "not-ready", exp);
        }
        for (size_t k = 0; k < findings.n; k++) {
            printf("warning: %s: %s\n", sc_kind_name(findings.v[k].kind), findings.v[k].message);
        }
    }
    for (size_t i = 0; i < c->n_endpoints; i++) {
        hj_free(st[i]);
    }
    if (failed) {
        fputs("hacachectl: some endpoints did not answer (see the rows marked unreachable)\n",
              stderr);
    }
    fflush(stdout);
    return failed ? 1 : 0;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Sleeps ms, returning early on SIGINT. */
static void sleep_interruptible(uint32_t ms)
{
    struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (!interrupted && nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
}

/* status [--watch [--interval MS] [--count N]] [--lag-threshold N] [--contact-threshold MS] */
static int cmd_status(ctl_t *c, int argc, char **argv)
{
    status_opts_t o = {.interval_ms = 1000,
                       .limits = {SC_DEFAULT_MAX_LAG, SC_DEFAULT_MAX_CONTACT_MS}};
    for (int i = 0; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--watch") == 0) {
            o.watch = 1;
        } else if ((v = opt_value(argc, argv, &i, "--interval")) != NULL) {
            if (!all_digits(v, 0) || atol(v) < 10 || atol(v) > 3600000) {
                return usage_error("--interval takes milliseconds (10..3600000)");
            }
            o.interval_ms = (uint32_t)atol(v);
        } else if ((v = opt_value(argc, argv, &i, "--count")) != NULL) {
            if (!all_digits(v, 0) || atol(v) <= 0) {
                return usage_error("--count takes a positive number of rounds");
            }
            o.count = (uint64_t)atol(v);
        } else if ((v = opt_value(argc, argv, &i, "--lag-threshold")) != NULL) {
            if (!all_digits(v, 0)) {
                return usage_error("--lag-threshold takes a number of log entries");
            }
            o.limits.max_lag = (double)atol(v);
        } else if ((v = opt_value(argc, argv, &i, "--contact-threshold")) != NULL) {
            if (!all_digits(v, 0)) {
                return usage_error("--contact-threshold takes milliseconds");
            }
            o.limits.max_contact_ms = (double)atol(v);
        } else {
            return usage_error("status [--watch [--interval MS] [--count N]] [--lag-threshold N] "
                               "[--contact-threshold MS]");
        }
    }
    if (!o.watch) {
        if (o.count != 0) {
            return usage_error("--count goes with --watch");
        }
        return status_round(c, &o);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint; /* no SA_RESTART: a sleep ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    int rv = 0;
    for (uint64_t round = 1; !interrupted && (o.count == 0 || round <= o.count); round++) {
        if (round > 1) {
            sleep_interruptible(o.interval_ms);
            if (interrupted) {
                break;
            }
            if (!c->json) {
                putchar('\n');
            }
        }
        if (!c->json) {
            char ts[40];
            struct timespec now;
            struct tm tm;
            clock_gettime(CLOCK_REALTIME, &now);
            gmtime_r(&now.tv_sec, &tm);
            strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
            printf("%s.%03ldZ round %" PRIu64 "%s\n", ts, now.tv_nsec / 1000000L, round,
                   o.count ? "" : " (Ctrl-C stops)");
        }
        rv = status_round(c, &o);
    }
    return rv;
}

static int cmd_caches(ctl_t *c)
{
    answer_t r;
    if (request_any(c, "GET", "/v1/caches", NULL, 0, &r) != 0) {
        return 1;
    }
    if (r.status != 200) {
        print_http_error(NULL, &r);
        free(r.body);
        return 1;
    }
    if (c->json) {
        fwrite(r.body, 1, r.len, stdout);
        putchar('\n');
        free(r.body);
        return 0;
    }
    char err[128];
    hj_t *j = hj_parse(r.body, r.len, err, sizeof(err));
    free(r.body);
    const hj_t *arr = hj_get(j, "caches");
    if (arr == NULL || arr->type != HJ_ARRAY) {
        fputs("hacachectl: unexpected answer to /v1/caches\n", stderr);
        hj_free(j);
        return 1;
    }
    printf("%-32s %10s %14s\n", "CACHE", "ENTRIES", "MEMORY_BYTES");
    for (const hj_t *e = arr->child; e; e = e->next) {
        printf("%-32s %10.0f %14.0f\n", hj_str(e, "name", "?"), hj_num(e, "entries", 0),
               hj_num(e, "memory_bytes", 0));
    }
    hj_free(j);
    return 0;
}

static int cmd_admin(ctl_t *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[0], "leader") == 0 && strcmp(argv[1], "transfer") == 0) {
        const char *to = NULL;
        for (int i = 2; i < argc; i++) {
            if ((to = opt_value(argc, argv, &i, "--to")) == NULL) {
                return usage_error("leader transfer [--to HOST:PORT]");
            }
        }
        char path[512];
        char *eto = to ? pct(to) : NULL;
        snprintf(path, sizeof(path), "/v1/admin/leader/transfer%s%s", eto ? "?to=" : "",
                 eto ? eto : "");
        free(eto);
        /* only the leader transfers: skip followers (409 not_leader) and unreachable nodes */
        for (size_t i = 0; i < c->n_endpoints; i++) {
            answer_t r;
            char err[512], jerr[64];
            if (request_one(c, c->endpoints[i], "POST", path, &r, err, sizeof(err)) != 0) {
                fprintf(stderr, "hacachectl: %s\n", err);
                continue;
            }
            hj_t *j = hj_parse(r.body, r.len, jerr, sizeof(jerr));
            int not_leader = r.status == 409 && strcmp(hj_str(j, "code", ""), "not_leader") == 0;
            hj_free(j);
            if (not_leader) {
                free(r.body);
                continue;
            }
            int ok = r.status >= 200 && r.status <= 299;
            if (ok) {
                printf("%.*s\n", (int)r.len, r.body);
            } else {
                print_http_error(c->endpoints[i], &r);
            }
            free(r.body);
            return ok ? 0 : 1;
        }
        fputs("hacachectl: no endpoint is the leader; list the leader's HTTP API in --endpoints\n",
              stderr);
        return 1;
    }
    if (argc == 2 && strcmp(argv[0], "tls") == 0 && strcmp(argv[1], "reload") == 0) {
        int failed = 0;
        for (size_t i = 0; i < c->n_endpoints; i++) {
            answer_t r;
            char err[512];
            if (request_one(c, c->endpoints[i], "POST", "/v1/admin/tls/reload", &r, err,
                            sizeof(err)) != 0) {
                fprintf(stderr, "hacachectl: %s\n", err);
                failed = 1;
                continue;
            }
            if (r.status != 200) {
                print_http_error(c->endpoints[i], &r);
                failed = 1;
            } else {
                printf("%s %.*s\n", c->endpoints[i], (int)r.len, r.body);
            }
            free(r.body);
        }
        return failed;
    }
    return usage_error("expected 'leader transfer' or 'tls reload'");
}

/* config check: the same loading and validation as hacached --check-config; with --probe, then
 * dials every peer (probe.h). The probe's own options are taken out before the rest goes to the
 * configuration parser, which knows only hacached's flags. */
static int cmd_config_check(int argc, char **argv, int json)
{
    int probe = 0;
    uint32_t probe_timeout_ms = 2000;
    char **args = calloc((size_t)argc + 1, sizeof(char *));
    int nargs = 0;
    if (args == NULL) {
        fputs("hacachectl: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char *v;
        if (i > 0 && strcmp(argv[i], "--probe") == 0) {
            probe = 1;
        } else if (i > 0 && (v = opt_value(argc, argv, &i, "--probe-timeout")) != NULL) {
            if (!all_digits(v, 0) || atol(v) <= 0 || atol(v) > 600000) {
                free(args);
                return usage_error("--probe-timeout takes milliseconds (1..600000)");
            }
            probe_timeout_ms = (uint32_t)atol(v);
        } else {
            args[nargs++] = argv[i];
        }
    }
    hc_config_t cfg;
    hc_config_errors_t errs;
    memset(&errs, 0, sizeof(errs));
    hc_config_init(&cfg);
    /* args[0] stands in for the program name, as hacached's own argv would */
    int load_rv = hc_config_load(&cfg, nargs, args, NULL, NULL, NULL, &errs);
    int rv = hc_config_validate(&cfg, (int64_t)time(NULL), &errs) != 0 || load_rv != 0;
    free(args);
    for (size_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "hacachectl: %s\n", errs.line[i]);
    }
    if (rv) {
        hc_config_free(&cfg);
        return 2;
    }
    if (probe && !cfg.ha_mode) {
        hc_config_free(&cfg);
        fputs("hacachectl: configuration OK, but --probe needs a cluster (HA_MODE=true, "
              "HA_HOSTS)\n",
              stderr);
        return 2;
    }
    if (!probe || !json) {
        printf("configuration OK\n");
    }
    rv = probe ? ctl_probe(&cfg, probe_timeout_ms, json) : 0;
    hc_config_free(&cfg);
    return rv;
}

int main(int argc, char **argv)
{
    ctl_t c;
    memset(&c, 0, sizeof(c));
    c.timeout_ms = 5000;
    const char *endpoints = getenv("HACACHE_ENDPOINTS");
    c.token = getenv("HACACHE_TOKEN");
    c.cacert = getenv("HACACHE_CACERT");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("hacachectl %s\n", HC_VERSION_STRING);
            return 0;
        } else if ((v = opt_value(argc, argv, &i, "--endpoints")) != NULL) {
            endpoints = v;
        } else if ((v = opt_value(argc, argv, &i, "--token")) != NULL) {
            c.token = v;
        } else if ((v = opt_value(argc, argv, &i, "--cacert")) != NULL) {
            c.cacert = v;
        } else if ((v = opt_value(argc, argv, &i, "--tls-server-name")) != NULL) {
            c.server_name = v;
        } else if ((v = opt_value(argc, argv, &i, "--timeout")) != NULL) {
            if (!all_digits(v, 0) || atol(v) <= 0 || atol(v) > 3600000) {
                return usage_error("--timeout takes milliseconds (1..3600000)");
            }
            c.timeout_ms = (uint32_t)atol(v);
        } else if ((v = opt_value(argc, argv, &i, "-o")) != NULL) {
            if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0) {
                return usage_error("-o must be table or json");
            }
            c.json = strcmp(v, "json") == 0;
        } else {
            fprintf(stderr, "hacachectl: unknown option %s (see hacachectl --help)\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (c.token != NULL && c.token[0] == '\0') {
        c.token = NULL;
    }
    if (c.cacert != NULL && c.cacert[0] == '\0') {
        c.cacert = NULL;
    }
    const char *cmd = argv[i++];
    if (strcmp(cmd, "config") == 0) {
        if (i >= argc || strcmp(argv[i], "check") != 0) {
            return usage_error("config check [HACACHED FLAGS]");
        }
        return cmd_config_check(argc - i, argv + i, c.json);
    }
    if (split_endpoints(&c, endpoints ? endpoints : "http://127.0.0.1:8080") != 0) {
        free(c.endpoints_buf);
        return usage_error("--endpoints: give 1 to 32 comma-separated http(s)://host:port URLs");
    }
    c.endpoint_list = endpoints ? endpoints : "http://127.0.0.1:8080";
    for (size_t k = 0; k < c.n_endpoints; k++) {
        char why[600];
        hc_client_t *probe = client_for(&c, c.endpoints[k], why, sizeof(why)); /* no I/O */
        if (probe == NULL) {
            fprintf(stderr, "hacachectl: %s\n", why);
            free(c.endpoints_buf);
            return 2;
        }
        hc_client_free(probe);
    }
    int rv;
    if (strcmp(cmd, "status") == 0) {
        rv = cmd_status(&c, argc - i, argv + i);
    } else if (strcmp(cmd, "caches") == 0 && i == argc) {
        rv = cmd_caches(&c);
    } else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "put") == 0 || strcmp(cmd, "del") == 0 ||
               strcmp(cmd, "incr") == 0 || strcmp(cmd, "clear") == 0) {
        rv = cmd_data(&c, cmd, argc - i, argv + i);
    } else if (strcmp(cmd, "leader") == 0 || strcmp(cmd, "tls") == 0) {
        rv = cmd_admin(&c, argc - i + 1, argv + i - 1);
    } else {
        fprintf(stderr, "hacachectl: unknown command %s (see hacachectl --help)\n", cmd);
        rv = 2;
    }
    free(c.endpoints_buf);
    return rv;
}
