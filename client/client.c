/* client.c: the synchronous remote client of libhacache (see hacache.h): blocking sockets with
 * poll() and one deadline per call, HTTP/1.1 keep-alive to one sticky node, failover to the next
 * endpoint, idempotent write retries (request ids), and a bounded local stale copy. */
#include "hacache.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http1.h"
#include "names.h"

#define MAX_ENDPOINTS      64
#define MAX_RESPONSE_BODY  ((size_t)64 << 20) /* larger answers are refused (HC_EINTERNAL) */
#define CONNECT_TIMEOUT_MS 1000               /* per attempt, so a black-holed node is skipped */
#define ROUND_PAUSE_MS     50                 /* between rounds over every endpoint (+-50%) */
/* A node that failed is not tried again for a backoff that doubles from BACKOFF_MIN_MS to
 * BACKOFF_MAX_MS with each failure in a row (+-50% jitter), so clients that lost their node do
 * not all land on the same next one, nor hammer a node that is restarting. */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
/* an attempt on one node gets half the time left, at least this much */
#define ATTEMPT_MIN_MS 1000

typedef struct {
    char *host;
    char port[8];
    uint64_t down_until; /* monotonic ms before which it is not picked (0: up) */
    uint32_t backoff_ms; /* the last backoff, doubled by the next failure; 0 once it answered */
} endpoint_t;

typedef struct stale_entry {
    struct stale_entry *next; /* oldest first */
    char *cache;
    void *key;
    size_t klen;
    void *val;
    size_t vlen;
    uint64_t at_ms; /* monotonic time it was read */
} stale_entry_t;

struct hc_client {
    pthread_mutex_t mu;
    endpoint_t ep[MAX_ENDPOINTS];
    size_t n_ep;
    size_t cur;   /* the sticky endpoint */
    uint64_t rng; /* splitmix64 state, seeded from getrandom: start and failover picks */
    int fd;       /* keep-alive connection to ep[cur], or -1 */
    char *auth;   /* "Authorization: Bearer ...\r\n" or "" */
    uint32_t timeout_ms;
    uint32_t max_stale_ms;
    int stale_on_invalidated;
    stale_entry_t *stale_head, *stale_tail;
    size_t stale_n, stale_bytes;
};

typedef struct {
    int status; /* HTTP status, 0 when no answer */
    int stale;
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
} response_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int ms_left(uint64_t deadline)
{
    uint64_t n = now_ms();
    return n >= deadline ? 0 : (int)(deadline - n);
}

/* ---- endpoints ---- */

static uint64_t rng_next(hc_client_t *c)
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ms +-50%, uniformly. */
static uint64_t jittered(hc_client_t *c, uint32_t ms)
{
    return ms / 2 + rng_next(c) % ((uint64_t)ms + 1);
}

static void rng_seed(hc_client_t *c)
{
    uint64_t seed = 0;
    size_t got = 0;
    while (got < sizeof(seed)) {
        ssize_t n = getrandom((char *)&seed + got, sizeof(seed) - got, 0);
        if (n < 0 && errno != EINTR) {
            break; /* no entropy source: the address and the clock still differ per client */
        }
        got += n > 0 ? (size_t)n : 0;
    }
    if (got < sizeof(seed)) {
        seed ^= (uint64_t)(uintptr_t)c ^ now_ms() ^ ((uint64_t)getpid() << 32);
    }
    c->rng = seed;
}

static void endpoint_failed(hc_client_t *c, endpoint_t *e)
{
    uint32_t b = e->backoff_ms ? e->backoff_ms * 2 : BACKOFF_MIN_MS;
    e->backoff_ms = b > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b;
    e->down_until = now_ms() + jittered(c, e->backoff_ms);
}

static void endpoint_answered(endpoint_t *e)
{
    e->backoff_ms = 0;
    e->down_until = 0;
}

/* A random endpoint among those not in skip[] and not backing off at now; -1 if none. */
static long endpoint_pick(hc_client_t *c, const unsigned char *skip, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_ep; i++) {
        n += !skip[i] && c->ep[i].down_until <= now;
    }
    if (n == 0) {
        return -1;
    }
    size_t k = (size_t)(rng_next(c) % n);
    for (size_t i = 0; i < c->n_ep; i++) {
        if (!skip[i] && c->ep[i].down_until <= now && k-- == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* The endpoint whose backoff ends first (every one is backing off). */
static size_t endpoint_soonest(const hc_client_t *c)
{
    size_t best = 0;
    for (size_t i = 1; i < c->n_ep; i++) {
        if (c->ep[i].down_until < c->ep[best].down_until) {
            best = i;
        }
    }
    return best;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Before an attempt when c->cur is backing off: a random endpoint that is not; if every one is,
 * waits (within the deadline) for the one whose backoff ends first. */
static void endpoint_choose(hc_client_t *c, const unsigned char *tried, uint64_t deadline)
{
    uint64_t now = now_ms();
    if (c->ep[c->cur].down_until <= now && !tried[c->cur]) {
        return;
    }
    long i = endpoint_pick(c, tried, now);
    if (i >= 0) {
        c->cur = (size_t)i;
        return;
    }
    static const unsigned char none[MAX_ENDPOINTS];
    i = endpoint_pick(c, none, now);
    if (i >= 0) {
        c->cur = (size_t)i; /* only tried ones are up: the round is over */
        return;
    }
    c->cur = endpoint_soonest(c);
    uint64_t until = c->ep[c->cur].down_until < deadline ? c->ep[c->cur].down_until : deadline;
    if (until > now) {
        sleep_ms(until - now);
    }
}

static void endpoints_free(hc_client_t *c)
{
    for (size_t i = 0; i < c->n_ep; i++) {
        free(c->ep[i].host);
    }
    c->n_ep = 0;
}

/* "http://host:port" (scheme optional), "[v6]:port" allowed. */
static int endpoint_parse(const char *s, size_t n, endpoint_t *e)
{
    static const char http[] = "http://", https[] = "https://";
    if (n >= sizeof(https) - 1 && strncmp(s, https, sizeof(https) - 1) == 0) {
        return HC_EINVAL; /* TLS to the API is not supported by the client yet */
    }
    if (n >= sizeof(http) - 1 && strncmp(s, http, sizeof(http) - 1) == 0) {
        s += sizeof(http) - 1, n -= sizeof(http) - 1;
    }
    if (n > 0 && s[n - 1] == '/') {
        n--;
    }
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL || colon == s) {
        return HC_EINVAL;
    }
    size_t hl = (size_t)(colon - s), pl = n - hl - 1;
    if (pl == 0 || pl > 5) {
        return HC_EINVAL;
    }
    unsigned port = 0;
    for (size_t i = 0; i < pl; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9') {
            return HC_EINVAL;
        }
        port = port * 10 + (unsigned)(colon[1 + i] - '0');
    }
    if (port == 0 || port > 65535) {
        return HC_EINVAL;
    }
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        s++, hl -= 2;
    }
    for (size_t i = 0; i < hl; i++) {
        if (s[i] == '/' || s[i] == '@' || s[i] == ' ' || s[i] == '[' || s[i] == ']') {
            return HC_EINVAL;
        }
    }
    if (hl == 0 || (e->host = strndup(s, hl)) == NULL) {
        return hl == 0 ? HC_EINVAL : HC_ENOMEM;
    }
    snprintf(e->port, sizeof(e->port), "%u", port);
    return 0;
}

static int endpoints_parse(hc_client_t *c, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++, n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
            n--;
        }
        if (n > 0) {
            if (c->n_ep == MAX_ENDPOINTS) {
                return HC_EINVAL;
            }
            int rv = endpoint_parse(s, n, &c->ep[c->n_ep]);
            if (rv != 0) {
                return rv;
            }
            c->n_ep++;
        }
        p = end ? end + 1 : p + strlen(p);
    }
    return c->n_ep > 0 ? 0 : HC_EINVAL;
}

/* ---- client lifecycle ---- */

static void stale_clear(hc_client_t *c);
static void stale_forget(hc_client_t *c, const char *cache, const void *key, size_t klen);
static void stale_forget_cache(hc_client_t *c, const char *cache);

int hc_client_new(const hc_client_opts_t *opts, hc_client_t **out)
{
    *out = NULL;
    if (opts == NULL || opts->endpoints == NULL) {
        return HC_EINVAL;
    }
    if (opts->token != NULL) {
        for (const char *t = opts->token; *t; t++) {
            if ((unsigned char)*t < 0x20 || *t == 0x7f) {
                return HC_EINVAL;
            }
        }
    }
    hc_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    c->fd = -1;
    rng_seed(c);
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : HC_CLIENT_DEFAULT_TIMEOUT_MS;
    c->max_stale_ms = opts->max_stale_ms;
    int rv = endpoints_parse(c, opts->endpoints);
    if (rv == 0) {
        size_t n = opts->token && *opts->token ? strlen(opts->token) + 40 : 1;
        c->auth = malloc(n);
        if (c->auth == NULL) {
            rv = HC_ENOMEM;
        } else if (n > 1) {
            snprintf(c->auth, n, "Authorization: Bearer %s\r\n", opts->token);
        } else {
            c->auth[0] = '\0';
        }
    }
    if (rv == 0) {
        c->cur = (size_t)(rng_next(c) % c->n_ep); /* so that clients spread over the nodes */
    }
    if (rv == 0 && pthread_mutex_init(&c->mu, NULL) != 0) {
        rv = HC_ENOMEM;
    }
    if (rv != 0) {
        endpoints_free(c);
        free(c->auth);
        free(c);
        return rv;
    }
    *out = c;
    return 0;
}

static void conn_close(hc_client_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

void hc_client_free(hc_client_t *c)
{
    if (c == NULL) {
        return;
    }
    conn_close(c);
    stale_clear(c);
    endpoints_free(c);
    free(c->auth);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void hc_client_set_stale_on_invalidated(hc_client_t *c, int on)
{
    if (c != NULL) {
        pthread_mutex_lock(&c->mu);
        c->stale_on_invalidated = on != 0;
        pthread_mutex_unlock(&c->mu);
    }
}

/* hc_value_free: server/value.c (shared with libhacache_node) */

/* ---- one connection ---- */

/* Connects to ep within the deadline (and CONNECT_TIMEOUT_MS). Returns the fd or -1. */
static int conn_open(const endpoint_t *ep, uint64_t deadline)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(ep->host, ep->port, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            int wait = ms_left(deadline);
            if (wait > CONNECT_TIMEOUT_MS) {
                wait = CONNECT_TIMEOUT_MS;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t el = sizeof(err);
            if (errno != EINPROGRESS || poll(&pfd, 1, wait) != 1 ||
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                close(fd);
                fd = -1;
                continue;
            }
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends all of buf before the deadline; 0 or -1. */
static int send_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n, len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int left = ms_left(deadline);
            if (left == 0 || poll(&pfd, 1, left) <= 0) {
                return -1;
            }
            continue;
        }
        return -1;
    }
    return 0;
}

typedef enum { EX_OK, EX_NOT_SENT, EX_CLOSED, EX_NO_ANSWER, EX_BAD } exchange_result_t;

/* Sends req on c->fd and reads one response into *resp. EX_NOT_SENT: the connection failed
 * before the request could have reached the server (safe to resend anything); EX_CLOSED: the
 * peer closed the connection before sending a byte of an answer (typically an idle keep-alive
 * connection it had closed); EX_NO_ANSWER: sent (or maybe sent) but no complete answer before
 * the deadline; EX_BAD: malformed or too large answer. */
static exchange_result_t exchange(hc_client_t *c, const char *head, size_t hlen, const void *body,
                                  size_t blen, uint64_t deadline, response_t *resp)
{
    if (send_all(c->fd, head, hlen, deadline) != 0) {
        return EX_NOT_SENT;
    }
    if (blen > 0 && send_all(c->fd, body, blen, deadline) != 0) {
        return EX_NO_ANSWER;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return EX_NO_ANSWER;
    }
    hc_http1_resp_t r;
    memset(&r, 0, sizeof(r));
    for (;;) {
        long done = hc_http1_parse(buf, len, MAX_RESPONSE_BODY, &r);
        if (done < 0) {
            free(buf);
            return EX_BAD;
        }
        if (done > 0) {
            break;
        }
        if (len == cap) {
            size_t want = cap * 2;
            if (r.head_len > 0 && r.head_len + r.body_len > want) {
                want = r.head_len + r.body_len;
            }
            char *nb = realloc(buf, want);
            if (nb == NULL) {
                free(buf);
                return EX_NO_ANSWER;
            }
            buf = nb, cap = want;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int left = ms_left(deadline);
        if (left == 0 || poll(&pfd, 1, left) <= 0) {
            free(buf);
            return EX_NO_ANSWER;
        }
        ssize_t n = recv(c->fd, buf + len, cap - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            free(buf);
            return len == 0 ? EX_CLOSED : EX_NO_ANSWER;
        }
        len += (size_t)n;
        memset(&r, 0, sizeof(r));
    }
    resp->status = r.status;
    resp->stale = r.stale;
    resp->body = malloc(r.body_len + 1);
    if (resp->body == NULL) {
        free(buf);
        return EX_NO_ANSWER;
    }
    memcpy(resp->body, buf + r.body_off, r.body_len);
    resp->body[r.body_len] = '\0';
    resp->body_len = r.body_len;
    free(buf);
    if (!r.keep_alive) {
        conn_close(c);
    }
    return EX_OK;
}

/* ---- requests with failover ---- */

/* Is this answer one to take to another node? 503: this node cannot serve now; 504: it timed out
 * waiting for the leader (a write's outcome is unknown, resent with the same request id). */
static int answer_is_retryable(int status)
{
    return status == 503 || status == 504 || status == 502;
}

/* Is this 503 from a node that invalidated its data after losing the quorum (or holds its
 * reads for the same reason)? The server names it with the readiness reason `no_quorum`. */
static int answer_is_invalidated(const response_t *r)
{
    return r->status == 503 && r->body != NULL &&
           strstr(r->body, "\"reason\":\"no_quorum\"") != NULL;
}

/* Runs method path (with body) against the nodes until an answer that is not retryable or the
 * deadline. rid_hex: the write's request id, or NULL for a read. Returns 0 with *resp, or an
 * error: HC_EUNKNOWN_OUTCOME (a write that may have been applied), HC_EUNAVAILABLE (every answer
 * was a 503, or nobody could be reached), HC_ETIMEDOUT, HC_ETOOLARGE / HC_EINTERNAL (an answer
 * that cannot be parsed). *invalidated (may be NULL) is set when some node answered that it
 * invalidated after a quorum loss (answer_is_invalidated). */
static int request(hc_client_t *c, const char *method, const char *path, const void *body,
                   size_t blen, const char *rid_hex, response_t *resp, int *invalidated)
{
    memset(resp, 0, sizeof(*resp));
    if (invalidated != NULL) {
        *invalidated = 0;
    }
    uint64_t deadline = now_ms() + c->timeout_ms;
    char rid_line[64] = "";
    if (rid_hex != NULL) {
        snprintf(rid_line, sizeof(rid_line), "X-Hacache-Request-Id: %s\r\n", rid_hex);
    }
    size_t longest_host = 0;
    for (size_t i = 0; i < c->n_ep; i++) {
        size_t hl = strlen(c->ep[i].host);
        longest_host = hl > longest_host ? hl : longest_host;
    }
    /* 256: method, fixed header text, port, request id line */
    size_t hcap = strlen(path) + strlen(c->auth) + longest_host + 256;
    char *head = malloc(hcap);
    if (head == NULL) {
        return HC_ENOMEM;
    }
    int maybe_applied = 0, last = HC_EUNAVAILABLE, timed_out = 0;
    unsigned char tried[MAX_ENDPOINTS] = {0}; /* in this round */
    size_t tried_in_round = 0;
    for (;;) {
        if (c->fd < 0) {
            endpoint_choose(c, tried, deadline);
        }
        if (ms_left(deadline) == 0) {
            timed_out = 1;
            break;
        }
        endpoint_t *ep = &c->ep[c->cur];
        int reused = c->fd >= 0;
        if (!reused) {
            c->fd = conn_open(ep, deadline);
        }
        if (c->fd >= 0) {
            int v6 = strchr(ep->host, ':') != NULL;
            int hlen = snprintf(
                head, hcap, "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n%s%sContent-Length: %zu\r\n\r\n",
                method, path, v6 ? "[" : "", ep->host, v6 ? "]" : "", ep->port, c->auth, rid_line,
                blen);
            /* a node that accepted but does not answer (stopped, overloaded) must not eat the
             * whole deadline: the next node gets a chance */
            int left = ms_left(deadline);
            int budget = left / 2 > ATTEMPT_MIN_MS ? left / 2 : ATTEMPT_MIN_MS;
            uint64_t attempt_deadline = budget < left ? now_ms() + (uint64_t)budget : deadline;
            exchange_result_t x =
                exchange(c, head, (size_t)hlen, body, blen, attempt_deadline, resp);
            if (x == EX_OK && !answer_is_retryable(resp->status)) {
                endpoint_answered(ep);
                free(head);
                return 0;
            }
            if (x == EX_OK) {
                last = resp->status == 503 ? HC_EUNAVAILABLE : HC_ETIMEDOUT;
                maybe_applied |= rid_hex != NULL && resp->status != 503;
                if (invalidated != NULL && answer_is_invalidated(resp)) {
                    *invalidated = 1;
                }
                free(resp->body);
                memset(resp, 0, sizeof(*resp));
            } else {
                conn_close(c);
                if (x == EX_BAD) {
                    free(head);
                    return HC_EINTERNAL;
                }
                if (x == EX_NOT_SENT && reused) {
                    continue; /* the idle keep-alive connection was closed: same node, anew */
                }
                if (x == EX_CLOSED && reused && ms_left(deadline) > 0) {
                    /* the server may have closed an idle connection as we sent: one fresh try
                     * on the same node (a write keeps its request id, so this is safe) */
                    maybe_applied |= rid_hex != NULL;
                    continue;
                }
                maybe_applied |= rid_hex != NULL && x != EX_NOT_SENT;
                last = x == EX_NO_ANSWER ? HC_ETIMEDOUT : HC_EUNAVAILABLE;
            }
        }
        conn_close(c);
        endpoint_failed(c, ep); /* fail over: endpoint_choose picks another one */
        tried[c->cur] = 1;
        if (++tried_in_round >= c->n_ep) {
            tried_in_round = 0;
            memset(tried, 0, sizeof(tried));
            uint64_t pause = jittered(c, ROUND_PAUSE_MS), left = (uint64_t)ms_left(deadline);
            sleep_ms(pause < left ? pause : left);
        }
    }
    free(head);
    if (maybe_applied) {
        return HC_EUNKNOWN_OUTCOME;
    }
    return timed_out && last != HC_EUNAVAILABLE ? HC_ETIMEDOUT : last;
}

/* Maps a final HTTP answer to 0 or an HC_E* code. */
static int status_to_err(const response_t *r)
{
    switch (r->status) {
    case 200:
        return 0;
    case 400:
        return HC_EINVAL;
    case 401:
        return HC_EAUTH;
    case 404:
        return HC_ENOTFOUND;
    case 409:
        if (strstr(r->body, "\"not_integer\"") != NULL) {
            return HC_ENOTINT;
        }
        return strstr(r->body, "\"overflow\"") != NULL ? HC_EOVERFLOW : HC_ECONFLICT;
    case 413:
        return HC_ETOOLARGE;
    case 507:
        return HC_ENOMEM;
    default:
        return HC_EINTERNAL;
    }
}

/* ---- paths ---- */

/* The server's rule (server/names.c); NUL-terminated here. */
static int cache_name_ok(const char *s)
{
    return s != NULL && hc_cache_name_ok(s, strlen(s));
}

/* "/v1/caches/{cache}/{percent-encoded key}{suffix}" in a malloc'd string, or NULL. */
static char *key_path(const char *cache, const void *key, size_t klen, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t cap = 12 + strlen(cache) + 1 + 3 * klen + strlen(suffix) + 1;
    char *p = malloc(cap);
    if (p == NULL) {
        return NULL;
    }
    size_t n = (size_t)snprintf(p, cap, "/v1/caches/%s/", cache);
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

static const char *ack_name(hc_ack_t ack)
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

static int new_rid(char hex_out[33])
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
    for (size_t i = 0; i < sizeof(b); i++) {
        snprintf(hex_out + 2 * i, 3, "%02x", b[i]);
    }
    return 0;
}

/* Could a write that ended in rv have changed the key? Only the answers that say it was not
 * applied (refused, or no node accepted it) leave the client's stale copy alone: success, a
 * 404 (the key is absent now) and every unknown outcome (HC_EUNKNOWN_OUTCOME, HC_ETIMEDOUT,
 * HC_EINTERNAL) drop it, so the copy never contradicts the client's own writes. */
static int write_may_have_changed(int rv)
{
    switch (rv) {
    case HC_EUNAVAILABLE: /* every node reached answered 503: not accepted */
    case HC_EINVAL:
    case HC_EAUTH:
    case HC_ETOOLARGE:
    case HC_ECONFLICT:
    case HC_ENOTINT:
    case HC_EOVERFLOW:
    case HC_ENOMEM:
        return 0;
    default:
        return 1;
    }
}

/* A write: percent-encoded key path + suffix (the query included), with a fresh request id.
 * key NULL: a write of the whole cache (hc_clear). Whatever may have changed the key (or the
 * cache) is dropped from the stale copy before the call returns. */
static int write_call(hc_client_t *c, const char *method, const char *cache, const void *key,
                      size_t klen, const char *suffix, const void *body, size_t blen,
                      response_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    if (c == NULL || !cache_name_ok(cache) || (key == NULL && klen > 0)) {
        return HC_EINVAL;
    }
    char rid[33];
    int rv = new_rid(rid);
    if (rv != 0) {
        return rv;
    }
    char *path = key ? key_path(cache, key, klen, suffix) : NULL;
    if (key && path == NULL) {
        return HC_ENOMEM;
    }
    if (key == NULL) {
        size_t cap = 12 + strlen(cache) + strlen(suffix) + 1;
        if ((path = malloc(cap)) == NULL) {
            return HC_ENOMEM;
        }
        snprintf(path, cap, "/v1/caches/%s%s", cache, suffix);
    }
    pthread_mutex_lock(&c->mu);
    rv = request(c, method, path, body, blen, rid, resp, NULL);
    if (rv == 0) {
        rv = status_to_err(resp);
        if (rv != 0) {
            free(resp->body);
            memset(resp, 0, sizeof(*resp));
        }
    }
    if (write_may_have_changed(rv)) {
        if (key != NULL) {
            stale_forget(c, cache, key, klen);
        } else {
            stale_forget_cache(c, cache);
        }
    }
    pthread_mutex_unlock(&c->mu);
    free(path);
    return rv;
}

int hc_put(hc_client_t *c, const char *cache, const void *key, size_t klen, const void *val,
           size_t vlen, hc_ack_t ack, uint64_t ttl_ms)
{
    if (klen == 0 || (val == NULL && vlen > 0)) {
        return HC_EINVAL;
    }
    char q[80];
    snprintf(q, sizeof(q), "?ack=%s&ttl_ms=%llu", ack_name(ack), (unsigned long long)ttl_ms);
    response_t r;
    int rv = write_call(c, "PUT", cache, key, klen, q, val, vlen, &r);
    free(r.body);
    return rv;
}

int hc_del(hc_client_t *c, const char *cache, const void *key, size_t klen, hc_ack_t ack)
{
    if (klen == 0) {
        return HC_EINVAL;
    }
    char q[32];
    snprintf(q, sizeof(q), "?ack=%s", ack_name(ack));
    response_t r;
    int rv = write_call(c, "DELETE", cache, key, klen, q, NULL, 0, &r);
    free(r.body);
    return rv;
}

int hc_incr(hc_client_t *c, const char *cache, const void *key, size_t klen, int64_t by,
            hc_ack_t ack, int64_t *value)
{
    if (klen == 0) {
        return HC_EINVAL;
    }
    char q[80];
    snprintf(q, sizeof(q), "/incr?by=%lld&ack=%s", (long long)by, ack_name(ack));
    response_t r;
    int rv = write_call(c, "POST", cache, key, klen, q, NULL, 0, &r);
    if (rv == 0 && value != NULL) {
        const char *v = strstr(r.body, "\"value\":");
        *value = v ? strtoll(v + 8, NULL, 10) : 0;
    }
    free(r.body);
    return rv;
}

int hc_request(hc_client_t *c, const char *method, const char *path, const void *body, size_t blen,
               int *status, char **resp, size_t *rlen)
{
    if (resp != NULL) {
        *resp = NULL;
    }
    if (c == NULL || method == NULL || path == NULL || path[0] != '/' || status == NULL ||
        resp == NULL || rlen == NULL || strpbrk(method, " \r\n") != NULL ||
        strpbrk(path, " \r\n") != NULL || (body == NULL && blen > 0)) {
        return HC_EINVAL;
    }
    char rid[33];
    int write = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    if (write && new_rid(rid) != 0) {
        return HC_EINTERNAL;
    }
    response_t r;
    pthread_mutex_lock(&c->mu);
    int rv = request(c, method, path, body, blen, write ? rid : NULL, &r, NULL);
    /* a 4xx answer refused the write; anything else may have changed some key */
    if (write && write_may_have_changed(rv) && (rv != 0 || r.status < 400 || r.status >= 500)) {
        stale_clear(c); /* any path: which keys a raw write touched is not known here */
    }
    pthread_mutex_unlock(&c->mu);
    if (rv != 0) {
        return rv;
    }
    *status = r.status;
    *resp = r.body;
    *rlen = r.body_len;
    return 0;
}

int hc_clear(hc_client_t *c, const char *cache, hc_ack_t ack)
{
    char q[32];
    snprintf(q, sizeof(q), "?ack=%s", ack_name(ack));
    response_t r;
    int rv = write_call(c, "DELETE", cache, NULL, 0, q, NULL, 0, &r);
    free(r.body);
    return rv;
}

/* ---- the local stale copy ---- */

static void stale_entry_free(stale_entry_t *e)
{
    free(e->cache);
    free(e->key);
    free(e->val);
    free(e);
}

static size_t stale_entry_bytes(const stale_entry_t *e)
{
    return sizeof(*e) + strlen(e->cache) + e->klen + e->vlen;
}

static void stale_clear(hc_client_t *c)
{
    while (c->stale_head != NULL) {
        stale_entry_t *e = c->stale_head;
        c->stale_head = e->next;
        stale_entry_free(e);
    }
    c->stale_tail = NULL;
    c->stale_n = c->stale_bytes = 0;
}

/* Unlinks and frees the entry for (cache, key), if any. */
static void stale_forget(hc_client_t *c, const char *cache, const void *key, size_t klen)
{
    stale_entry_t **pp = &c->stale_head, *prev = NULL;
    for (; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        stale_entry_t *e = *pp;
        if (e->klen == klen && memcmp(e->key, key, klen) == 0 && strcmp(e->cache, cache) == 0) {
            *pp = e->next;
            if (c->stale_tail == e) {
                c->stale_tail = prev;
            }
            c->stale_n--;
            c->stale_bytes -= stale_entry_bytes(e);
            stale_entry_free(e);
            return;
        }
    }
}

static const stale_entry_t *stale_find(const hc_client_t *c, const char *cache, const void *key,
                                       size_t klen)
{
    for (const stale_entry_t *e = c->stale_head; e != NULL; e = e->next) {
        if (e->klen == klen && memcmp(e->key, key, klen) == 0 && strcmp(e->cache, cache) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Drops every entry of cache (hc_clear). */
static void stale_forget_cache(hc_client_t *c, const char *cache)
{
    stale_entry_t **pp = &c->stale_head, *prev = NULL;
    while (*pp != NULL) {
        stale_entry_t *e = *pp;
        if (strcmp(e->cache, cache) != 0) {
            prev = e;
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        if (c->stale_tail == e) {
            c->stale_tail = prev;
        }
        c->stale_n--;
        c->stale_bytes -= stale_entry_bytes(e);
        stale_entry_free(e);
    }
}

/* Remembers a value read (the newest goes last; the oldest leave beyond the bounds). A value
 * that does not fit the bounds at all is not remembered. */
static void stale_remember(hc_client_t *c, const char *cache, const void *key, size_t klen,
                           const void *val, size_t vlen)
{
    stale_forget(c, cache, key, klen);
    stale_entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return;
    }
    e->cache = strdup(cache);
    e->key = malloc(klen ? klen : 1);
    e->val = malloc(vlen ? vlen : 1);
    if (e->cache == NULL || e->key == NULL || e->val == NULL) {
        stale_entry_free(e);
        return;
    }
    memcpy(e->key, key, klen);
    memcpy(e->val, val, vlen);
    e->klen = klen;
    e->vlen = vlen;
    e->at_ms = now_ms();
    size_t bytes = stale_entry_bytes(e);
    if (bytes > HC_CLIENT_STALE_MAX_BYTES) {
        stale_entry_free(e);
        return;
    }
    while (c->stale_head != NULL && (c->stale_n + 1 > HC_CLIENT_STALE_MAX_ENTRIES ||
                                     c->stale_bytes + bytes > HC_CLIENT_STALE_MAX_BYTES)) {
        stale_entry_t *old = c->stale_head;
        c->stale_head = old->next;
        if (c->stale_tail == old) {
            c->stale_tail = NULL;
        }
        c->stale_n--;
        c->stale_bytes -= stale_entry_bytes(old);
        stale_entry_free(old);
    }
    if (c->stale_tail != NULL) {
        c->stale_tail->next = e;
    } else {
        c->stale_head = e;
    }
    c->stale_tail = e;
    c->stale_n++;
    c->stale_bytes += bytes;
}

int hc_get(hc_client_t *c, const char *cache, const void *key, size_t klen, hc_value_t *out)
{
    if (out == NULL) {
        return HC_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (c == NULL || !cache_name_ok(cache) || key == NULL || klen == 0) {
        return HC_EINVAL;
    }
    char *path = key_path(cache, key, klen, "");
    if (path == NULL) {
        return HC_ENOMEM;
    }
    response_t r;
    int invalidated = 0;
    pthread_mutex_lock(&c->mu);
    int rv = request(c, "GET", path, NULL, 0, NULL, &r, &invalidated);
    free(path);
    if (rv == 0) {
        rv = status_to_err(&r);
        if (rv == 0) {
            out->data = r.body; /* NUL-terminated, handed to the caller */
            out->len = r.body_len;
            out->stale = r.stale;
            r.body = NULL;
            if (c->max_stale_ms > 0) {
                stale_remember(c, cache, key, klen, out->data, out->len);
            }
        } else if (rv == HC_ENOTFOUND && c->max_stale_ms > 0) {
            stale_forget(c, cache, key, klen);
        }
        free(r.body);
    } else if (invalidated && !c->stale_on_invalidated) {
        /* a node said it dropped its data after losing the quorum: that is the answer (a cache
         * with the invalidate policy prefers a miss to an old value), and the copy goes too */
        stale_forget(c, cache, key, klen);
    } else if (c->max_stale_ms > 0 && (rv == HC_ETIMEDOUT || rv == HC_EUNAVAILABLE)) {
        const stale_entry_t *e = stale_find(c, cache, key, klen);
        if (e != NULL && now_ms() - e->at_ms <= c->max_stale_ms) {
            out->data = malloc(e->vlen + 1);
            if (out->data == NULL) {
                rv = HC_ENOMEM;
            } else {
                memcpy(out->data, e->val, e->vlen);
                ((char *)out->data)[e->vlen] = '\0';
                out->len = e->vlen;
                out->stale = 1;
                rv = 0;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rv;
}
