/* ctl_http.h: one blocking HTTP/1.1 request with a deadline, for hacachectl. Plain http:// only;
 * the response is bounded (HC_HTTP_MAX_HEADER, HC_HTTP_MAX_BODY) and parsed by
 * hc_http_parse_response, a pure function (fuzz target tests/fuzz/fuzz_json.c covers it too). */
#ifndef HC_CLI_HTTP_H
#define HC_CLI_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HC_HTTP_MAX_HEADER ((size_t)64 * 1024)
#define HC_HTTP_MAX_BODY   ((size_t)600 * 1024 * 1024)

typedef struct {
    int status; /* e.g. 200 */
    char *body; /* malloc'd, NUL-terminated (len bytes before it); owned by the caller */
    size_t len;
    int stale; /* X-Hacache-Stale: 1 */
} hc_http_resp_t;

/* Splits "http://host:port" (IPv6 as [addr]) into host and port. 0, or -1 with a reason. */
int hc_http_parse_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
                      const char **why);

/* Sends `method path` to url with an optional bearer token and body, waits at most timeout_ms
 * for the whole exchange (Connection: close). 0 with *out filled (free out->body), or -1 with a
 * reason in err (connection refused, timeout, malformed response, too large). */
int hc_http_request(const char *url, const char *method, const char *path, const char *token,
                    const void *body, size_t blen, uint32_t timeout_ms, hc_http_resp_t *out,
                    char *err, size_t errlen);
/* The same with extra header lines (each ending in \r\n; NULL or "" for none). */
int hc_http_request_h(const char *url, const char *method, const char *path, const char *token,
                      const char *extra, const void *body, size_t blen, uint32_t timeout_ms,
                      hc_http_resp_t *out, char *err, size_t errlen);

/* Parses a complete response (everything the server sent before closing): status line,
 * headers, then a body delimited by Content-Length, chunked encoding, or the end of input.
 * 0 with *out (body malloc'd), or -1 with a reason. */
int hc_http_parse_response(const char *buf, size_t n, hc_http_resp_t *out, const char **why);

#endif
