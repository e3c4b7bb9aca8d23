/* wire.c: see wire.h. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "json_scan.h"
#include "names.h"

void hcc_answer_reset(hcc_answer_t *a)
{
    free(a->body);
    memset(a, 0, sizeof(*a));
}

/* Decimal digits only, at most 19 of them; -1 otherwise. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

void hcc_answer_header(hcc_answer_t *a, const char *line, size_t n)
{
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n')) {
        n--;
    }
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new answer begins (after a 1xx): "HTTP/x[.y] NNN ..." */
        free(a->body);
        memset(a, 0, sizeof(*a));
        const char *sp = memchr(line, ' ', n);
        uint64_t st;
        if (sp != NULL && (size_t)(line + n - sp) >= 4 && parse_u64(sp + 1, 3, &st) == 0 &&
            st >= 100 && st <= 599) {
            a->status = (int)st;
        }
        return;
    }
    const char *colon = memchr(line, ':', n);
    if (colon == NULL) {
        return;
    }
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++, vl--;
    }
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
        vl--;
    }
    uint64_t u;
    if (nl == 17 && strncasecmp(line, "x-hacache-version", nl) == 0) {
        if (parse_u64(v, vl, &u) == 0) {
            a->has_version = 1, a->version = u;
        }
    } else if (nl == 16 && strncasecmp(line, "x-hacache-ttl-ms", nl) == 0) {
        if (parse_u64(v, vl, &u) == 0) {
            a->has_ttl = 1, a->ttl_ms = u;
        }
    } else if (nl == 15 && strncasecmp(line, "x-hacache-stale", nl) == 0) {
        a->stale = vl == 1 && v[0] == '1';
    }
}

int hcc_answer_body(hcc_answer_t *a, const void *p, size_t n)
{
    if (n > HCC_MAX_ANSWER_BODY - a->body_len) {
        return -1;
    }
    if (a->body_len + n + 1 > a->body_cap) {
        size_t cap = a->body_cap ? a->body_cap : 256;
        while (cap < a->body_len + n + 1) {
            cap *= 2;
        }
        char *b = realloc(a->body, cap);
        if (b == NULL) {
            return -1;
        }
        a->body = b, a->body_cap = cap;
    }
    memcpy(a->body + a->body_len, p, n);
    a->body_len += n;
    a->body[a->body_len] = '\0';
    return 0;
}

int hcc_answer_finish(hcc_answer_t *a)
{
    if (a->body == NULL) {
        if ((a->body = malloc(1)) == NULL) {
            return -1;
        }
        a->body[0] = '\0';
        a->body_cap = 1;
    }
    return 0;
}

int hcc_answer_retryable(int status)
{
    return status == 502 || status == 503 || status == 504;
}

int hcc_answer_invalidated(const hcc_answer_t *a)
{
    return a->status == 503 && hcc_json_member_is(a->body, a->body_len, "reason", "no_quorum");
}

/* Every outcome the server's HTTP layer sends (server/http.c send_hc_error and send_error), by
 * status and error code; code NULL: any other code of that status. The first match wins. */
static const struct {
    int status;
    const char *code;
    int err;
} answer_errors[] = {
    {200, NULL, 0},
    {400, NULL, HC_EINVAL}, /* bad_request, tls_reload_failed */
    {401, NULL, HC_EAUTH},  /* unauthorized */
    {403, NULL, HC_EAUTH},
    {404, NULL, HC_ENOTFOUND}, /* not_found */
    {405, NULL, HC_EINVAL},    /* method_not_allowed */
    {409, "not_integer", HC_ENOTINT},
    {409, "overflow", HC_EOVERFLOW},
    {409, "upgrade_pending", HC_EUPGRADE},
    {409, NULL, HC_ECONFLICT}, /* conflict; admin calls: not_leader, standalone */
    {413, NULL, HC_ETOOLARGE}, /* too_large (or h2o's plain-text refusal of a large body) */
    {500, NULL, HC_EINTERNAL}, /* internal */
    {502, NULL, HC_EUNAVAILABLE},
    {503, "shutting_down", HC_ESHUTDOWN},
    {503, "busy", HC_EBUSY},
    {503, NULL, HC_EUNAVAILABLE}, /* unavailable (reason: no_quorum, ...), max_clients */
    {504, "unknown_outcome", HC_EUNKNOWN_OUTCOME},
    {504, NULL, HC_ETIMEDOUT}, /* timeout */
    {507, NULL, HC_ENOMEM},    /* insufficient_memory */
};

int hcc_answer_err(const hcc_answer_t *a)
{
    for (size_t i = 0; i < sizeof(answer_errors) / sizeof(answer_errors[0]); i++) {
        if (answer_errors[i].status == a->status &&
            (answer_errors[i].code == NULL ||
             hcc_json_member_is(a->body, a->body_len, "code", answer_errors[i].code))) {
            return answer_errors[i].err;
        }
    }
    return HC_EINTERNAL;
}

int hcc_write_may_have_changed(int rv)
{
    switch (rv) {
    case HC_EUNAVAILABLE: /* every node reached answered 503: not accepted */
    case HC_ESHUTDOWN:
    case HC_EBUSY:
    case HC_EINVAL:
    case HC_EAUTH:
    case HC_ETOOLARGE:
    case HC_ECONFLICT:
    case HC_ENOTINT:
    case HC_EOVERFLOW:
    case HC_ENOMEM:
    case HC_ETLS:
    case HC_EUPGRADE:
        return 0;
    default:
        return 1;
    }
}

char *hcc_key_path(const char *cache, const void *key, size_t klen, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t cap = 12 + strlen(cache) + 1 + 3 * klen + strlen(suffix) + 1;
    char *p = malloc(cap);
    if (p == NULL) {
        return NULL;
    }
    size_t n = (size_t)snprintf(p, cap, "/v1/caches/%s%s", cache, key ? "/" : "");
    const unsigned char *k = key;
    for (size_t i = 0; i < klen; i++) {
        unsigned char ch = k[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            p[n++] = (char)ch;
        } else {
            p[n++] = '%';
            p[n++] = hex[ch >> 4];
            p[n++] = hex[ch & 15];
        }
    }
    memcpy(p + n, suffix, strlen(suffix) + 1);
    return p;
}

const char *hcc_ack_name(hc_ack_t ack)
{
    switch (ack) {
    case HC_ACK_ONCE:
        return "once";
    case HC_ACK_LEADER:
        return "leader";
    case HC_ACK_NONE:
        return "none";
    default:
        return "quorum";
    }
}

int hcc_new_rid(char hex_out[33])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0 && errno != EINTR) {
            return HC_EINTERNAL;
        }
        got += n > 0 ? (size_t)n : 0;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(b); i++) {
        hex_out[2 * i] = hex[b[i] >> 4];
        hex_out[2 * i + 1] = hex[b[i] & 15];
    }
    hex_out[32] = '\0';
    return 0;
}

int hcc_cache_name_ok(const char *s)
{
    return s != NULL && hc_cache_name_ok(s, strlen(s));
}

const char *hcc_consistency_name(hc_consistency_t c)
{
    switch (c) {
    case HC_READ_LEADER:
        return "leader";
    case HC_READ_LINEARIZABLE:
        return "linearizable";
    default:
        return "local";
    }
}

/* The settings object of a cache in /v1/caches. */
static int parse_settings(hcc_json_t v, hc_cache_settings_t *out)
{
    hcc_json_t m;
    if (hcc_json_member(v, "quorum_loss_policy", &m) != 1) {
        return -1;
    }
    if (hcc_json_str_is(m, "serve_stale")) {
        out->policy = HC_POLICY_SERVE_STALE;
    } else if (hcc_json_str_is(m, "invalidate")) {
        out->policy = HC_POLICY_INVALIDATE;
    } else {
        return -1;
    }
    if (hcc_json_member_u64(v.p, v.n, "max_memory", &out->max_memory) != 0 ||
        hcc_json_member_u64(v.p, v.n, "default_ttl_ms", &out->default_ttl_ms) != 0 ||
        hcc_json_member_u64(v.p, v.n, "max_stale_ms", &out->max_stale_ms) != 0) {
        return -1;
    }
    return 0;
}

int hcc_parse_cache_info(const char *body, size_t len, const char *cache, hc_cache_info_t *out)
{
    memset(out, 0, sizeof(*out));
    hcc_json_t caches, c, m;
    if (body == NULL ||
        hcc_json_member((hcc_json_t){.p = body, .n = len}, "caches", &caches) != 1) {
        return HC_EINTERNAL;
    }
    size_t pos = 0;
    int rv;
    while ((rv = hcc_json_next(caches, &pos, &c)) == 1) {
        if (hcc_json_member(c, "name", &m) != 1 || !hcc_json_str_is(m, cache)) {
            continue;
        }
        if (hcc_json_member_u64(c.p, c.n, "entries", &out->entries) != 0 ||
            hcc_json_member_u64(c.p, c.n, "memory_bytes", &out->memory_bytes) != 0 ||
            hcc_json_member(c, "settings", &m) != 1 || parse_settings(m, &out->settings) != 0) {
            memset(out, 0, sizeof(*out));
            return HC_EINTERNAL;
        }
        /* counters: reported by every version so far, but not needed to make sense of the rest */
        (void)hcc_json_member_u64(c.p, c.n, "hits", &out->hits);
        (void)hcc_json_member_u64(c.p, c.n, "misses", &out->misses);
        (void)hcc_json_member_u64(c.p, c.n, "evictions", &out->evictions);
        (void)hcc_json_member_u64(c.p, c.n, "expirations", &out->expirations);
        return 0;
    }
    return rv == 0 ? HC_ENOTFOUND : HC_EINTERNAL;
}

int hcc_ack_ok(hc_ack_t ack)
{
    return ack == HC_ACK_QUORUM || ack == HC_ACK_ONCE || ack == HC_ACK_LEADER || ack == HC_ACK_NONE;
}

int hcc_consistency_ok(hc_consistency_t c)
{
    return c == HC_READ_LOCAL || c == HC_READ_LEADER || c == HC_READ_LINEARIZABLE;
}

int hcc_put_query(const hc_put_opts_t *opts, char *q, size_t cap)
{
    static const hc_put_opts_t defaults;
    const hc_put_opts_t *o = opts != NULL ? opts : &defaults;
    if (!hcc_ack_ok(o->ack) || ((o->if_absent || o->has_if_version) && o->ack != HC_ACK_QUORUM)) {
        return HC_EINVAL;
    }
    int n = snprintf(q, cap, "?ack=%s&ttl_ms=%llu", hcc_ack_name(o->ack),
                     (unsigned long long)o->ttl_ms);
    if (o->if_absent) {
        n += snprintf(q + n, cap - (size_t)n, "&if_absent=1");
    }
    if (o->has_if_version) {
        snprintf(q + n, cap - (size_t)n, "&if_version=%llu", (unsigned long long)o->if_version);
    }
    return 0;
}

int hcc_del_query(const hc_del_opts_t *opts, char *q, size_t cap)
{
    static const hc_del_opts_t defaults;
    const hc_del_opts_t *o = opts != NULL ? opts : &defaults;
    if (!hcc_ack_ok(o->ack) || (o->has_if_version && o->ack != HC_ACK_QUORUM)) {
        return HC_EINVAL;
    }
    int n = snprintf(q, cap, "?ack=%s", hcc_ack_name(o->ack));
    if (o->has_if_version) {
        snprintf(q + n, cap - (size_t)n, "&if_version=%llu", (unsigned long long)o->if_version);
    }
    return 0;
}

int hcc_read_query(hc_consistency_t c, char *q, size_t cap)
{
    if (!hcc_consistency_ok(c)) {
        return HC_EINVAL;
    }
    q[0] = '\0';
    if (c != HC_READ_LOCAL) {
        snprintf(q, cap, "?consistency=%s", hcc_consistency_name(c));
    }
    return 0;
}

uint64_t hcc_answer_version(const hcc_answer_t *a)
{
    uint64_t v = 0;
    if (a->body == NULL || hcc_json_member_u64(a->body, a->body_len, "version", &v) != 0) {
        return 0;
    }
    return v;
}

int64_t hcc_answer_incr_value(const hcc_answer_t *a)
{
    hcc_json_t v;
    int64_t out = 0;
    if (a->body == NULL ||
        hcc_json_member((hcc_json_t){.p = a->body, .n = a->body_len}, "value", &v) != 1 ||
        hcc_json_i64(v, &out) != 0) {
        return 0;
    }
    return out;
}
