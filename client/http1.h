/* http1.h: a small, bounded HTTP/1.1 response parser for libhacache (pure: no I/O, no
 * allocation), so it can be unit tested byte by byte and fuzzed. */
#ifndef HC_HTTP1_H
#define HC_HTTP1_H

#include <stddef.h>

/* The header block (status line and headers) is refused beyond this many bytes. */
#define HC_HTTP1_MAX_HEAD 16384

typedef struct {
    int status;      /* 100..599 */
    size_t head_len; /* bytes of the status line and headers, blank line included */
    size_t body_off; /* the body is buf[body_off, body_off + body_len) */
    size_t body_len; /* from Content-Length (0 when absent: no body is expected) */
    int keep_alive;  /* 0 when the server said Connection: close, or HTTP/1.0 without keep-alive */
    int stale;       /* X-Hacache-Stale: 1 */
    int has_version; /* X-Hacache-Version present */
    unsigned long long version;
} hc_http1_resp_t;

/* Parses one response at the start of buf[0, len). Returns the total length of the response
 * (head + body) once it is complete, 0 when more bytes are needed, or -1 when the input is
 * malformed, uses Transfer-Encoding (not supported: hacached always sends Content-Length), has a
 * head longer than HC_HTTP1_MAX_HEAD or a body longer than max_body. *out is valid only when the
 * return value is positive. A 1xx response is parsed like any other (the caller never sends
 * Expect, so servers do not send one). */
long hc_http1_parse(const char *buf, size_t len, size_t max_body, hc_http1_resp_t *out);

#endif
