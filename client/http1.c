/* http1.c: see http1.h. The whole buffer is parsed again on every call: responses are small
 * and bounded, and a stateless parser cannot get out of step whatever the bytes are split into. */
#include "http1.h"

#include <string.h>
#include <strings.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Case-insensitive compare of a header name of length n with a lower-case literal. */
static int name_is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

/* Parses a decimal unsigned value made of digits only; -1 when empty, not digits, or too big. */
static int parse_ull(const char *s, size_t n, unsigned long long *out)
{
    unsigned long long v = 0;
    if (n == 0 || n > 19) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) {
            return -1;
        }
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Does the comma-separated value contain the token tok (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        size_t s = i;
        while (i < n && v[i] != ',') {
            i++;
        }
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Finds the end of the head ("\r\n\r\n"); returns its length or 0 when not there yet. */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            return i + 1;
        }
    }
    return 0;
}

static int parse_status_line(const char *s, size_t n, hc_http1_resp_t *out, int *http10)
{
    /* "HTTP/1.x NNN reason" */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
        !is_digit(s[9]) || !is_digit(s[10]) || !is_digit(s[11]) || (n > 12 && s[12] != ' ')) {
        return -1;
    }
    out->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (out->status < 100 || out->status > 599) {
        return -1;
    }
    *http10 = s[7] == '0';
    for (size_t i = 12; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t') {
            return -1;
        }
    }
    return 0;
}

static int parse_header(const char *s, size_t n, hc_http1_resp_t *out, int *have_len,
                        int *conn_keep_alive)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s) {
        return -1;
    }
    size_t nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f) {
            return -1; /* no whitespace or controls in a field name (RFC 9112 5.1) */
        }
    }
    const char *v = colon + 1;
    size_t vn = n - nl - 1;
    for (size_t i = 0; i < vn; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return -1;
        }
    }
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++, vn--;
    }
    while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) {
        vn--;
    }
    unsigned long long u;
    if (name_is(s, nl, "content-length")) {
        if (parse_ull(v, vn, &u) != 0 || (*have_len && u != out->body_len)) {
            return -1;
        }
        *have_len = 1;
        out->body_len = (size_t)u;
    } else if (name_is(s, nl, "transfer-encoding")) {
        return -1;
    } else if (name_is(s, nl, "connection")) {
        if (has_token(v, vn, "close")) {
            out->keep_alive = 0;
        } else if (has_token(v, vn, "keep-alive")) {
            *conn_keep_alive = 1;
        }
    } else if (name_is(s, nl, "x-hacache-stale")) {
        out->stale = vn == 1 && v[0] == '1';
    } else if (name_is(s, nl, "x-hacache-version")) {
        if (parse_ull(v, vn, &u) != 0) {
            return -1;
        }
        out->has_version = 1;
        out->version = u;
    }
    return 0;
}

long hc_http1_parse(const char *buf, size_t len, size_t max_body, hc_http1_resp_t *out)
{
    size_t hl = head_end(buf, len > HC_HTTP1_MAX_HEAD ? HC_HTTP1_MAX_HEAD : len);
    if (hl == 0) {
        return len >= HC_HTTP1_MAX_HEAD ? -1 : 0;
    }
    memset(out, 0, sizeof(*out));
    out->keep_alive = 1;
    int http10 = 0, have_len = 0, conn_keep_alive = 0;
    size_t pos = 0, line = 0;
    while (pos < hl - 2) {
        const char *eol = memchr(buf + pos, '\n', hl - pos);
        size_t n = (size_t)(eol - (buf + pos));
        if (n == 0 || buf[pos + n - 1] != '\r') {
            return -1; /* bare LF */
        }
        n--;
        if (memchr(buf + pos, '\r', n) != NULL) {
            return -1; /* bare CR */
        }
        int rv = line == 0 ? parse_status_line(buf + pos, n, out, &http10)
                           : parse_header(buf + pos, n, out, &have_len, &conn_keep_alive);
        if (rv != 0) {
            return -1;
        }
        line++;
        pos += n + 2;
    }
    if (http10 && !conn_keep_alive) {
        out->keep_alive = 0;
    }
    /* 1xx, 204 and 304 have no body whatever the headers say */
    if (out->status < 200 || out->status == 204 || out->status == 304) {
        out->body_len = 0;
    }
    if (out->body_len > max_body) {
        return -1;
    }
    out->head_len = hl;
    out->body_off = hl;
    if (len - hl < out->body_len) {
        return 0;
    }
    return (long)(hl + out->body_len);
}
