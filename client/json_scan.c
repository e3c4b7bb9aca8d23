/* json_scan.c: see json_scan.h. Every step checks the end of the text, so any input (a node's
 * answer is untrusted) ends in a result or -1. */
#include "json_scan.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

/* The end of the string starting at p (on its opening quote), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++; /* the escaped character (\uXXXX: its digits are plain characters) */
        } else if (*p == '"') {
            return p + 1;
        } else if ((unsigned char)*p < 0x20) {
            return NULL;
        }
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* The end of the object or array starting at p, or NULL. */
static const char *skip_container(const char *p, const char *end, int depth)
{
    char close = *p == '{' ? '}' : ']';
    int object = *p == '{';
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) {
        return p + 1;
    }
    for (;;) {
        if (object) {
            if (p >= end || *p != '"' || (p = skip_string(p, end)) == NULL) {
                return NULL;
            }
            p = skip_ws(p, end);
            if (p >= end || *p != ':') {
                return NULL;
            }
            p = skip_ws(p + 1, end);
        }
        if ((p = skip_value(p, end, depth + 1)) == NULL) {
            return NULL;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
        } else if (p < end && *p == close) {
            return p + 1;
        } else {
            return NULL;
        }
    }
}

/* The end of the value starting at p, or NULL. Numbers and literals are taken as runs of the
 * characters they are made of (their form is checked by whoever reads them). */
static const char *skip_value(const char *p, const char *end, int depth)
{
    if (p >= end || depth > HCC_JSON_MAX_DEPTH) {
        return NULL;
    }
    if (*p == '"') {
        return skip_string(p, end);
    }
    if (*p == '{' || *p == '[') {
        return skip_container(p, end, depth);
    }
    const char *s = p;
    while (p < end && strchr("0123456789+-.eEtruefalsn", *p) != NULL && *p != '\0') {
        p++;
    }
    return p > s ? p : NULL;
}

static hcc_json_t trimmed(hcc_json_t v)
{
    const char *end = v.p + v.n;
    const char *p = skip_ws(v.p, end);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n')) {
        end--;
    }
    return (hcc_json_t){.p = p, .n = (size_t)(end - p)};
}

int hcc_json_member(hcc_json_t v, const char *name, hcc_json_t *out)
{
    v = trimmed(v);
    const char *p = v.p, *end = v.p + v.n;
    if (p >= end || *p != '{' || skip_container(p, end, 0) != end) {
        return -1;
    }
    size_t nl = strlen(name);
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *ks = p + 1, *ke = skip_string(p, end); /* well-formed: checked above */
        p = skip_ws(skip_ws(ke, end) + 1, end);            /* past the ':' */
        const char *ve = skip_value(p, end, 1);
        if ((size_t)(ke - 1 - ks) == nl && memcmp(ks, name, nl) == 0) {
            *out = (hcc_json_t){.p = p, .n = (size_t)(ve - p)};
            return 1;
        }
        p = skip_ws(ve, end);
        p = p < end && *p == ',' ? skip_ws(p + 1, end) : end;
    }
    return 0;
}

int hcc_json_next(hcc_json_t v, size_t *pos, hcc_json_t *elem)
{
    v = trimmed(v);
    const char *end = v.p + v.n;
    if (v.n == 0 || v.p[0] != '[' || *pos > v.n) {
        return -1;
    }
    if (*pos == 0) {
        if (skip_container(v.p, end, 0) != end) {
            return -1;
        }
        *pos = 1;
    }
    const char *p = skip_ws(v.p + *pos, end);
    if (p < end && *p == ',') {
        p = skip_ws(p + 1, end);
    }
    if (p >= end || *p == ']') {
        *pos = v.n;
        return 0;
    }
    const char *e = skip_value(p, end, 1);
    if (e == NULL) {
        return -1;
    }
    *elem = (hcc_json_t){.p = p, .n = (size_t)(e - p)};
    *pos = (size_t)(e - v.p);
    return 1;
}

int hcc_json_u64(hcc_json_t v, uint64_t *out)
{
    v = trimmed(v);
    if (v.n == 0 || v.n > 19) {
        return -1;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') {
            return -1;
        }
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = x;
    return 0;
}

int hcc_json_i64(hcc_json_t v, int64_t *out)
{
    v = trimmed(v);
    int neg = v.n > 0 && v.p[0] == '-';
    hcc_json_t digits = {.p = v.p + neg, .n = v.n - (size_t)neg};
    uint64_t u;
    if (digits.n == 0 || digits.n > 19 || hcc_json_u64(digits, &u) != 0) {
        return -1;
    }
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX) {
        return -1;
    }
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

int hcc_json_str_is(hcc_json_t v, const char *want)
{
    v = trimmed(v);
    size_t n = strlen(want);
    return v.n == n + 2 && v.p[0] == '"' && v.p[n + 1] == '"' && memcmp(v.p + 1, want, n) == 0;
}

int hcc_json_member_is(const char *p, size_t n, const char *name, const char *want)
{
    hcc_json_t m;
    return p != NULL && hcc_json_member((hcc_json_t){.p = p, .n = n}, name, &m) == 1 &&
           hcc_json_str_is(m, want);
}

int hcc_json_member_u64(const char *p, size_t n, const char *name, uint64_t *out)
{
    hcc_json_t m;
    if (p == NULL || hcc_json_member((hcc_json_t){.p = p, .n = n}, name, &m) != 1) {
        return -1;
    }
    return hcc_json_u64(m, out);
}
