/* ctl_http.c: blocking HTTP/1.1 client for hacachectl (see http.h). */
#include "ctl_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int hc_http_parse_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
                      const char **why)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strncmp(p, "https://", 8) == 0) {
        *why = "https endpoints are not supported by hacachectl yet (use http://)";
        return -1;
    } else if (strstr(p, "://") != NULL) {
        *why = "unknown scheme (use http://host:port)";
        return -1;
    }
    const char *hs = p, *he;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (he == NULL) {
            *why = "unterminated [IPv6 address]";
            return -1;
        }
        p = he + 1;
    } else {
        he = p + strcspn(p, ":/");
        p = he;
    }
    const char *ps = "80";
    size_t pl = 2;
    if (*p == ':') {
        ps = p + 1;
        pl = strcspn(ps, "/");
        if (pl == 0 || pl > 5 || strspn(ps, "0123456789") < pl) {
            *why = "bad port";
            return -1;
        }
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostcap || pl >= portcap) {
        *why = hl == 0 ? "missing host" : "host too long";
        return -1;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    memcpy(port, ps, pl);
    port[pl] = '\0';
    return 0;
}

static const char *find_header_end(const char *buf, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            return buf + i + 4;
        }
    }
    return NULL;
}

/* Decodes a chunked body into out (malloc'd). */
static int dechunk(const char *p, size_t n, char **out, size_t *outlen, const char **why)
{
    char *o = malloc(n + 1);
    size_t k = 0, i = 0;
    if (o == NULL) {
        *why = "out of memory";
        return -1;
    }
    for (;;) {
        size_t sz = 0, digits = 0;
        while (i < n && digits < 16) {
            char c = p[i];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) {
                break;
            }
            sz = sz * 16 + (size_t)d;
            digits++;
            i++;
        }
        while (i < n && p[i] != '\n') { /* chunk extensions, CR */
            i++;
        }
        if (digits == 0 || i >= n) {
            free(o);
            *why = "malformed chunked body";
            return -1;
        }
        i++;
        if (sz == 0) {
            break; /* trailers ignored */
        }
        if (sz > n - i || sz > HC_HTTP_MAX_BODY - k) {
            free(o);
            *why = "truncated chunked body";
            return -1;
        }
        memcpy(o + k, p + i, sz);
        k += sz;
        i += sz;
        if (i < n && p[i] == '\r') {
            i++;
        }
        if (i < n && p[i] == '\n') {
            i++;
        }
    }
    o[k] = '\0';
    *out = o;
    *outlen = k;
    return 0;
}

int hc_http_parse_response(const char *buf, size_t n, hc_http_resp_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    const char *body = find_header_end(buf, n < HC_HTTP_MAX_HEADER ? n : HC_HTTP_MAX_HEADER);
    if (body == NULL) {
        *why = n >= HC_HTTP_MAX_HEADER ? "response header too large" : "incomplete response";
        return -1;
    }
    /* the input is not NUL-terminated: scan a copy of the status line (fuzz_json found it) */
    char sl[64];
    size_t sll = (size_t)(body - buf) < sizeof(sl) - 1 ? (size_t)(body - buf) : sizeof(sl) - 1;
    memcpy(sl, buf, sll);
    sl[sll] = '\0';
    int major, minor, status;
    if (sscanf(sl, "HTTP/%d.%d %3d", &major, &minor, &status) != 3 || status < 100 ||
        status > 599) {
        *why = "not an HTTP response";
        return -1;
    }
    long long clen = -1;
    int chunked = 0;
    const char *line = memchr(buf, '\n', (size_t)(body - buf));
    while (line != NULL && line + 1 < body - 2) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(body - line));
        size_t ll = eol ? (size_t)(eol - line) : 0;
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            char num[32];
            size_t vl = ll - 15 < sizeof(num) - 1 ? ll - 15 : sizeof(num) - 1;
            memcpy(num, line + 15, vl);
            num[vl] = '\0';
            char *end;
            clen = strtoll(num, &end, 10);
            while (*end == ' ' || *end == '\r') {
                end++;
            }
            if (*end != '\0' || clen < 0) {
                *why = "bad Content-Length";
                return -1;
            }
        } else if (ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            char v[64];
            size_t vl = ll - 18 < sizeof(v) - 1 ? ll - 18 : sizeof(v) - 1;
            memcpy(v, line + 18, vl);
            v[vl] = '\0';
            chunked = strstr(v, "chunked") != NULL;
        } else if (ll >= 16 && strncasecmp(line, "x-hacache-stale:", 16) == 0) {
            out->stale = ll > 16 && memchr(line + 16, '1', ll - 16) != NULL;
        }
        line = eol;
    }
    size_t rest = n - (size_t)(body - buf);
    if (chunked) {
        if (dechunk(body, rest, &out->body, &out->len, why) != 0) {
            return -1;
        }
    } else {
        size_t blen = rest;
        if (clen >= 0) {
            if ((unsigned long long)clen > rest) {
                *why = "truncated body";
                return -1;
            }
            blen = (size_t)clen;
        }
        if (blen > HC_HTTP_MAX_BODY) {
            *why = "response body too large";
            return -1;
        }
        out->body = malloc(blen + 1);
        if (out->body == NULL) {
            *why = "out of memory";
            return -1;
        }
        memcpy(out->body, body, blen);
        out->body[blen] = '\0';
        out->len = blen;
    }
    out->status = status;
    return 0;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t t = now_ms();
        if (t >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {fd, ev, 0};
        int r = poll(&pfd, 1, (int)(deadline - t));
        if (r > 0) {
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
    }
}

static int dial(const char *host, const char *port, uint64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            e = errno;
            close(fd);
            fd = -1;
            continue;
        }
        socklen_t sl = sizeof(e);
        if (wait_fd(fd, POLLOUT, deadline) != 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0 || e != 0) {
            e = e ? e : errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(e));
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) != 0) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return 0;
}

int hc_http_request(const char *url, const char *method, const char *path, const char *token,
                    const void *body, size_t blen, uint32_t timeout_ms, hc_http_resp_t *out,
                    char *err, size_t errlen)
{
    return hc_http_request_h(url, method, path, token, NULL, body, blen, timeout_ms, out, err,
                             errlen);
}

int hc_http_request_h(const char *url, const char *method, const char *path, const char *token,
                      const char *extra, const void *body, size_t blen, uint32_t timeout_ms,
                      hc_http_resp_t *out, char *err, size_t errlen)
{
    char host[256], port[8];
    const char *why;
    memset(out, 0, sizeof(*out));
    if (hc_http_parse_url(url, host, sizeof(host), port, sizeof(port), &why) != 0) {
        snprintf(err, errlen, "%s: %s", url, why);
        return -1;
    }
    uint64_t deadline = now_ms() + timeout_ms;
    int fd = dial(host, port, deadline, err, errlen);
    if (fd < 0) {
        return -1;
    }
    char head[2048];
    int hl =
        snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: hacachectl\r\n"
                 "Connection: close\r\nContent-Length: %zu\r\n%s%s%s%s\r\n",
                 method, path, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                 port, blen, token ? "Authorization: Bearer " : "", token ? token : "",
                 token ? "\r\n" : "", extra ? extra : "");
    if (hl < 0 || (size_t)hl >= sizeof(head)) {
        close(fd);
        snprintf(err, errlen, "request line too long");
        return -1;
    }
    if (send_all(fd, head, (size_t)hl, deadline) != 0 ||
        (blen > 0 && send_all(fd, body, blen, deadline) != 0)) {
        snprintf(err, errlen, "sending to %s: %s", url, strerror(errno));
        close(fd);
        return -1;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    int rv = -1;
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return -1;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= HC_HTTP_MAX_BODY + HC_HTTP_MAX_HEADER) {
                snprintf(err, errlen, "response from %s too large", url);
                goto out;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r > 0) {
            n += (size_t)r;
        } else if (r == 0) {
            break;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline) != 0) {
                snprintf(err, errlen, "%s did not answer within %u ms", url, timeout_ms);
                goto out;
            }
        } else {
            snprintf(err, errlen, "reading from %s: %s", url, strerror(errno));
            goto out;
        }
    }
    if (hc_http_parse_response(buf, n, out, &why) != 0) {
        snprintf(err, errlen, "bad answer from %s: %s", url, why);
        goto out;
    }
    rv = 0;
out:
    free(buf);
    close(fd);
    return rv;
}
