/* json.c: recursive-descent JSON reader with a depth bound (see json.h). */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n, pos;
    int depth;
    char *err;
    size_t errlen;
} hj_parser_t;

static int fail(hj_parser_t *p, const char *what)
{
    if (p->err && p->errlen && p->err[0] == '\0') {
        snprintf(p->err, p->errlen, "%s at byte %zu", what, p->pos);
    }
    return -1;
}

static void skip_ws(hj_parser_t *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                             p->s[p->pos] == '\r')) {
        p->pos++;
    }
}

static int literal(hj_parser_t *p, const char *word)
{
    size_t l = strlen(word);
    if (p->n - p->pos < l || memcmp(p->s + p->pos, word, l) != 0) {
        return fail(p, "invalid literal");
    }
    p->pos += l;
    return 0;
}

static int hex4(hj_parser_t *p, unsigned *out)
{
    if (p->n - p->pos < 4) {
        return fail(p, "truncated \\u escape");
    }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return fail(p, "bad hex digit in \\u escape");
        }
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string starting at the opening quote; *out is malloc'd, decoded, NUL-terminated. The
 * decoded form is never longer than the encoded one, so one buffer of that size suffices. */
static int parse_string(hj_parser_t *p, char **out, size_t *outlen)
{
    p->pos++; /* the quote */
    size_t start = p->pos, end = start;
    while (end < p->n && p->s[end] != '"') {
        end += p->s[end] == '\\' ? 2 : 1;
    }
    if (end >= p->n) {
        return fail(p, "unterminated string");
    }
    char *o = malloc(end - start + 1);
    if (o == NULL) {
        return fail(p, "out of memory");
    }
    size_t k = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c < 0x20) {
            free(o);
            return fail(p, "control character in string");
        }
        if (c != '\\') {
            o[k++] = (char)c;
            continue;
        }
        char e = p->s[p->pos++];
        unsigned cp;
        switch (e) {
        case '"':
            o[k++] = '"';
            break;
        case '\\':
            o[k++] = '\\';
            break;
        case '/':
            o[k++] = '/';
            break;
        case 'b':
            o[k++] = '\b';
            break;
        case 'f':
            o[k++] = '\f';
            break;
        case 'n':
            o[k++] = '\n';
            break;
        case 'r':
            o[k++] = '\r';
            break;
        case 't':
            o[k++] = '\t';
            break;
        case 'u':
            if (hex4(p, &cp) != 0) {
                free(o);
                return -1;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p->pos + 2 > end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    free(o);
                    return fail(p, "unpaired surrogate");
                }
                p->pos += 2;
                if (hex4(p, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    free(o);
                    return fail(p, "unpaired surrogate");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(o);
                return fail(p, "unpaired surrogate");
            }
            /* 6 or 12 escape bytes become at most 4 UTF-8 bytes */
            k += put_utf8(o + k, cp);
            break;
        default:
            free(o);
            return fail(p, "bad escape");
        }
        if (p->pos > end) { /* an escape that ran past the closing quote */
            free(o);
            return fail(p, "bad escape");
        }
    }
    p->pos = end + 1;
    o[k] = '\0';
    *out = o;
    *outlen = k;
    return 0;
}

static int parse_number(hj_parser_t *p, double *out)
{
    size_t start = p->pos;
    if (p->pos < p->n && p->s[p->pos] == '-') {
        p->pos++;
    }
    size_t digits = p->pos;
    while (p->pos < p->n && ((p->s[p->pos] >= '0' && p->s[p->pos] <= '9') || p->s[p->pos] == '.' ||
                             p->s[p->pos] == 'e' || p->s[p->pos] == 'E' || p->s[p->pos] == '+' ||
                             p->s[p->pos] == '-')) {
        p->pos++;
    }
    if (p->pos == digits || p->s[digits] < '0' || p->s[digits] > '9' || p->pos - start > 64) {
        return fail(p, "invalid number");
    }
    char buf[72];
    memcpy(buf, p->s + start, p->pos - start);
    buf[p->pos - start] = '\0';
    char *endp;
    *out = strtod(buf, &endp);
    if (*endp != '\0') {
        return fail(p, "invalid number");
    }
    return 0;
}

static hj_t *parse_value(hj_parser_t *p);

static int parse_container(hj_parser_t *p, hj_t *v, int object)
{
    char close = object ? '}' : ']';
    p->pos++;
    if (++p->depth > HJ_MAX_DEPTH) {
        return fail(p, "nesting too deep");
    }
    hj_t **tail = &v->child;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"') {
                return fail(p, "expected a member name");
            }
            if (parse_string(p, &key, &klen) != 0) {
                return -1;
            }
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') {
                free(key);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        hj_t *c = parse_value(p);
        if (c == NULL) {
            free(key);
            return -1;
        }
        c->key = key;
        *tail = c;
        tail = &c->next;
        v->len++;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            p->depth--;
            return 0;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static hj_t *parse_value(hj_parser_t *p)
{
    skip_ws(p);
    if (p->pos >= p->n) {
        fail(p, "unexpected end of input");
        return NULL;
    }
    hj_t *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    int rv;
    char c = p->s[p->pos];
    switch (c) {
    case '{':
        v->type = HJ_OBJECT;
        rv = parse_container(p, v, 1);
        break;
    case '[':
        v->type = HJ_ARRAY;
        rv = parse_container(p, v, 0);
        break;
    case '"':
        v->type = HJ_STRING;
        rv = parse_string(p, &v->str, &v->len);
        break;
    case 't':
        v->type = HJ_BOOL;
        v->b = 1;
        rv = literal(p, "true");
        break;
    case 'f':
        v->type = HJ_BOOL;
        rv = literal(p, "false");
        break;
    case 'n':
        v->type = HJ_NULL;
        rv = literal(p, "null");
        break;
    default:
        v->type = HJ_NUMBER;
        rv = parse_number(p, &v->num);
        break;
    }
    if (rv != 0) {
        hj_free(v);
        return NULL;
    }
    return v;
}

hj_t *hj_parse(const char *s, size_t n, char *err, size_t errlen)
{
    hj_parser_t p = {s, n, 0, 0, err, errlen};
    if (err && errlen) {
        err[0] = '\0';
    }
    if (n > HJ_MAX_INPUT) {
        fail(&p, "document too large");
        return NULL;
    }
    hj_t *v = parse_value(&p);
    if (v == NULL) {
        return NULL;
    }
    skip_ws(&p);
    if (p.pos != n) {
        fail(&p, "trailing bytes");
        hj_free(v);
        return NULL;
    }
    return v;
}

void hj_free(hj_t *v)
{
    while (v != NULL) {
        hj_t *next = v->next;
        hj_free(v->child);
        free(v->str);
        free(v->key);
        free(v);
        v = next;
    }
}

const hj_t *hj_get(const hj_t *v, const char *key)
{
    if (v == NULL || v->type != HJ_OBJECT) {
        return NULL;
    }
    for (const hj_t *c = v->child; c; c = c->next) {
        if (c->key && strcmp(c->key, key) == 0) {
            return c;
        }
    }
    return NULL;
}

const char *hj_str(const hj_t *v, const char *key, const char *dflt)
{
    const hj_t *m = hj_get(v, key);
    return m && m->type == HJ_STRING ? m->str : dflt;
}

double hj_num(const hj_t *v, const char *key, double dflt)
{
    const hj_t *m = hj_get(v, key);
    return m && m->type == HJ_NUMBER ? m->num : dflt;
}

int hj_bool(const hj_t *v, const char *key, int dflt)
{
    const hj_t *m = hj_get(v, key);
    return m && m->type == HJ_BOOL ? m->b : dflt;
}
