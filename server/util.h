/* util.h: small shared helpers: clocks, a growable byte buffer with JSON helpers, and
 * percent-decoding of URL components. */
#ifndef HC_UTIL_H
#define HC_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME): TTL expiry instants. */
uint64_t hc_wall_ms(void);
/* Monotonic nanoseconds (CLOCK_MONOTONIC): durations. */
uint64_t hc_mono_ns(void);

/* A growable buffer. Owns `data` (NUL-terminated after every append). An allocation failure
 * sets `failed` and makes further appends no-ops, so callers check once at the end. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} hc_buf_t;

void hc_buf_init(hc_buf_t *b);
void hc_buf_free(hc_buf_t *b);
void hc_buf_reset(hc_buf_t *b);
void hc_buf_append(hc_buf_t *b, const void *p, size_t n);
void hc_buf_puts(hc_buf_t *b, const char *s);
void hc_buf_printf(hc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (n bytes) as a quoted JSON string; bytes >= 0x80 are passed through when they form
 * valid UTF-8 and escaped as \u00XX otherwise, so the output is always valid JSON. */
void hc_buf_json_string(hc_buf_t *b, const char *s, size_t n);
/* Appends s as a Prometheus label value (backslash, quote and newline escaped), unquoted. */
void hc_buf_prom_label(hc_buf_t *b, const char *s, size_t n);

/* The value of one hex digit (either case), or -1. */
int hc_hex_digit(char c);
/* Percent-decodes src (n bytes) into dst (capacity >= n). '+' is kept as is. Returns the decoded
 * length, or -1 on a malformed escape (a '%' not followed by two hex digits). */
long hc_pct_decode(const char *src, size_t n, char *dst);

#include "names.h" /* hc_cache_name_ok */

/* Parses a decimal unsigned / signed 64-bit integer occupying exactly n bytes. 0 or -1. */
int hc_parse_u64(const char *s, size_t n, uint64_t *out);
int hc_parse_i64(const char *s, size_t n, int64_t *out);

/* Little-endian integers of `bytes` (1..8) bytes: appended to a buffer / read from memory. */
void hc_buf_put_le(hc_buf_t *b, uint64_t v, int bytes);
uint64_t hc_get_le(const uint8_t *p, int bytes);

/* A bounded string builder over a caller's array: appends with truncation, never overflows,
 * always NUL-terminated (cap > 0). */
typedef struct {
    char *p;
    size_t cap, len;
} hc_sbuf_t;
void hc_sbuf_printf(hc_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
