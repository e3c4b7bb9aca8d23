/* util.c: clocks, growable buffers, JSON/Prometheus escaping, percent-decoding. */
#include "util.h"

#include <stdarg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Tests only: HACACHE_TEST_CLOCK_OFFSET_MS (signed) shifts this process's wall clock, to
 * exercise clock-skew reporting and TTLs across skewed nodes without touching the system clock.
 * Read once; the loop is single-threaded. */
static int64_t wall_offset_ms(void)
{
    static int done;
    static int64_t off;
    if (!done) {
        done = 1;
        const char *e = getenv("HACACHE_TEST_CLOCK_OFFSET_MS");
        if (e != NULL && *e != '\0') {
            char *end = NULL;
            long long v = strtoll(e, &end, 10);
            if (end != NULL && *end == '\0' && v > -86400000LL && v < 86400000LL) {
                off = (int64_t)v;
            }
        }
    }
    return off;
}

uint64_t hc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)((int64_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u) +
                      wall_offset_ms());
}

uint64_t hc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hc_buf_init(hc_buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void hc_buf_free(hc_buf_t *b)
{
    free(b->data);
    hc_buf_init(b);
}

void hc_buf_reset(hc_buf_t *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

static int buf_reserve(hc_buf_t *b, size_t extra)
{
    if (b->failed) {
        return -1;
    }
    if (b->len + extra + 1 <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void hc_buf_append(hc_buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0) {
        return;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void hc_buf_puts(hc_buf_t *b, const char *s)
{
    hc_buf_append(b, s, strlen(s));
}

void hc_buf_printf(hc_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        hc_buf_append(b, small, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n) != 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

void hc_buf_json_string(hc_buf_t *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    hc_buf_append(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            hc_buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            hc_buf_printf(b, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            hc_buf_append(b, &p[i], 1);
            i++;
        } else {
            size_t len = utf8_seq_len(p + i, n - i);
            if (len == 0) {
                hc_buf_printf(b, "\\u%04x", c);
                i++;
            } else {
                hc_buf_append(b, p + i, len);
                i += len;
            }
        }
    }
    hc_buf_append(b, "\"", 1);
}

void hc_buf_prom_label(hc_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' || s[i] == '"') {
            char esc[2] = {'\\', s[i]};
            hc_buf_append(b, esc, 2);
        } else if (s[i] == '\n') {
            hc_buf_append(b, "\\n", 2);
        } else {
            hc_buf_append(b, &s[i], 1);
        }
    }
}

int hc_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

long hc_pct_decode(const char *src, size_t n, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] != '%') {
            dst[o++] = src[i];
            continue;
        }
        if (i + 2 >= n) {
            return -1;
        }
        int hi = hc_hex_digit(src[i + 1]), lo = hc_hex_digit(src[i + 2]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        dst[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    return (long)o;
}

int hc_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int hc_parse_i64(const char *s, size_t n, int64_t *out)
{
    int neg = n > 0 && s[0] == '-';
    uint64_t mag;
    if (hc_parse_u64(s + neg, n - (size_t)neg, &mag) != 0) {
        return -1;
    }
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) {
            return -1;
        }
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) {
            return -1;
        }
        *out = (int64_t)mag;
    }
    return 0;
}

void hc_buf_put_le(hc_buf_t *b, uint64_t v, int bytes)
{
    uint8_t p[8];
    for (int i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    hc_buf_append(b, p, (size_t)bytes);
}

uint64_t hc_get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

void hc_sbuf_printf(hc_sbuf_t *b, const char *fmt, ...)
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
