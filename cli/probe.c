/* probe.c: `hacachectl config check --probe` (see probe.h). One blocking socket per peer,
 * driven with poll() against a deadline; the wire format, the Hello codec, TLS and the token
 * proof are the server's own (frame.h, tls.h, peer_auth.h).
 *
 * The probe goes as far as a real dialer until the peer's Auth: TCP, TLS with this node's
 * client certificate, our Hello (this node's name, HA_HOSTS, protocol range, a fresh nonce and
 * incarnation), the peer's Hello (its name, versions) and the peer's Auth, which we check against
 * every accepted token. It then closes (TLS close_notify, FIN) without sending its own Auth: the
 * peer sees an inbound connection that never authenticated, so it never treats the probe as the
 * node it names (no link up, no replacement of the real node's link). What it does not prove is
 * that the peer accepts our token's proof; that is the same check seen from the peer, done by
 * probing from there. */
#include "probe.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <sodium.h>

#include "frame.h" /* HC_PEER_HANDSHAKE_MAX */
#include "hacache.h"
#include "peer_auth.h"
#include "tls.h"

#define RX_MAX     (HC_PEER_HANDSHAKE_MAX + HC_FRAME_HEADER) /* the peer's frames, bounded */
#define READ_CHUNK 16384
#define DRAIN_MS   300 /* after our FIN, how long to wait for the peer's, for a clean close */
#define DETAIL_MAX 400

typedef enum { STEP_SKIPPED = 0, STEP_OK, STEP_FAIL, STEP_OFF } step_state_t;

/* One step's outcome: `kind` is a short fixed word for scripts ("ok", "refused", "timeout",
 * "wrong token", ...), `detail` what we saw, for people. */
typedef struct {
    step_state_t state;
    char kind[40];
    char detail[DETAIL_MAX];
} step_t;

typedef struct {
    char name[HC_NODE_NAME_MAX + 1]; /* HA_HOSTS entry, host:port */
    const hc_host_t *host;
    char addr[64]; /* the address TCP tried last (or connected to) */
    step_t tcp, tls, token, version;
    hc_tls_cert_info_t cert; /* the peer's certificate, when TLS got that far */
    int have_hello;
    uint32_t proto_min, proto_max, negotiated;
    char software[64]; /* from the peer's Hello: untrusted, printable ASCII only */
    char hint[768];    /* what to do next, for the first failed step */
} result_t;

/* One connection to a peer: the socket, TLS (or NULL) and the plaintext not yet parsed. */
typedef struct {
    int fd;
    hc_tls_conn_t *tls;
    uint64_t deadline_ms;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    int got_any; /* received any byte: the first tells TLS from plaintext */
} conn_t;

/* What reading a frame ended with. */
typedef enum { RD_FRAME, RD_CLOSED, RD_TIMEOUT, RD_TLS_ERROR, RD_BAD, RD_IO_ERROR } rd_t;

/* Everything the probe of one configuration shares. */
typedef struct {
    const hc_config_t *cfg;
    hc_tls_ctx_t *tls;
    char me[HC_NODE_NAME_MAX + 1];
    char **host_names; /* every HA_HOSTS entry formatted, for our Hello */
    uint8_t (*keys)[HC_PEER_TOKEN_KEY];
    size_t n_keys;
    uint32_t timeout_ms;
} probe_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void step_set(step_t *s, step_state_t st, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void step_set(step_t *s, step_state_t st, const char *kind, const char *fmt, ...)
{
    s->state = st;
    snprintf(s->kind, sizeof(s->kind), "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
}

static void hint(result_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hint(result_t *r, const char *fmt, ...)
{
    if (r->hint[0] != '\0') {
        return; /* the first problem is the one to fix first */
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->hint, sizeof(r->hint), fmt, ap);
    va_end(ap);
}

/* Copies untrusted text keeping printable ASCII only. */
static void copy_printable(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; *in != '\0' && o + 1 < cap; in++) {
        out[o++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    }
    out[o] = '\0';
}

static void fmt_time(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, cap, "?");
    }
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline_ms) {
            return 0;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)(deadline_ms - now));
        if (rc > 0) {
            return 1;
        }
        if (rc < 0 && errno != EINTR) {
            return -1;
        }
    }
}

/* ---- TCP ---- */

static void format_sockaddr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(out, cap, "?");
    }
}

/* Connects to one address before the deadline: the socket, or -1 with errno (ETIMEDOUT). */
static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int w = wait_fd(fd, POLLOUT, deadline_ms);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
    }
    int e = w == 0 ? ETIMEDOUT : w < 0 ? errno : soerr;
    close(fd);
    errno = e;
    return -1;
}

/* Resolves and connects (every address in turn); fills r->tcp. The socket or -1. */
static int tcp_step(const probe_t *pr, result_t *r, uint64_t deadline_ms)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", r->host->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(r->host->host, port, &hints, &res);
    if (g != 0) {
        step_set(&r->tcp, STEP_FAIL, "dns", "cannot resolve %s: %s", r->host->host,
                 gai_strerror(g));
        hint(r,
             "peer %s: its host %s does not resolve (%s): check the name in HA_HOSTS and DNS "
             "(a pod that does not exist yet has no name)",
             r->name, r->host->host, gai_strerror(g));
        return -1;
    }
    int fd = -1, err = 0;
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        format_sockaddr(ai->ai_addr, r->addr, sizeof(r->addr));
        fd = connect_one(ai, deadline_ms);
        err = fd < 0 ? errno : 0;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        step_set(&r->tcp, STEP_OK, "ok", "connected to %s", r->addr);
        return fd;
    }
    if (err == ECONNREFUSED) {
        step_set(&r->tcp, STEP_FAIL, "refused", "%s refused the connection", r->addr);
        hint(r,
             "peer %s refused TCP at %s: is hacached running there / is the port in HA_HOSTS "
             "right?",
             r->name, r->addr);
    } else if (err == ETIMEDOUT) {
        step_set(&r->tcp, STEP_FAIL, "timeout", "no answer from %s within %u ms", r->addr,
                 pr->timeout_ms);
        hint(r,
             "peer %s did not answer TCP at %s within %u ms: is the host in HA_HOSTS right, "
             "is a firewall dropping the port, is the machine up?",
             r->name, r->addr, pr->timeout_ms);
    } else {
        step_set(&r->tcp, STEP_FAIL, "error", "%s: %s", r->addr, strerror(err));
        hint(r, "peer %s: cannot connect to %s (%s): check the host and the network route", r->name,
             r->addr, strerror(err));
    }
    return -1;
}

/* ---- bytes in and out ---- */

static int send_all(conn_t *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c->fd, POLLOUT, c->deadline_ms) != 1) {
                return -1;
            }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Sends the ciphertext TLS has queued. */
static int flush_tls(conn_t *c)
{
    uint8_t buf[READ_CHUNK];
    while (c->tls != NULL && hc_tls_conn_pending(c->tls) > 0) {
        size_t n = hc_tls_conn_take(c->tls, buf, sizeof(buf));
        if (n == 0 || send_all(c, buf, n) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Receives once from the socket: >0 bytes, 0 EOF, -1 error, -2 timed out. */
static ssize_t recv_some(conn_t *c, uint8_t *buf, size_t cap)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, cap, 0);
        if (n >= 0) {
            c->got_any |= n > 0;
            return n;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return -1;
        }
        int w = wait_fd(c->fd, POLLIN, c->deadline_ms);
        if (w != 1) {
            return w == 0 ? -2 : -1;
        }
    }
}

static int rx_reserve(conn_t *c, size_t more)
{
    if (c->rx_len + more <= c->rx_cap) {
        return 0;
    }
    size_t cap = c->rx_cap ? c->rx_cap : 4096;
    while (cap < c->rx_len + more) {
        cap *= 2;
    }
    if (cap > RX_MAX + READ_CHUNK) {
        cap = RX_MAX + READ_CHUNK;
        if (c->rx_len + more > cap) {
            return -1;
        }
    }
    uint8_t *n = realloc(c->rx, cap);
    if (n == NULL) {
        return -1;
    }
    c->rx = n;
    c->rx_cap = cap;
    return 0;
}

/* ---- TLS ---- */

/* TLS 1.3 as a dialer with this node's client certificate; fills r->tls. 0 or -1. */
static int tls_step(const probe_t *pr, result_t *r, conn_t *c)
{
    if (hc_tls_conn_new(pr->tls, 1, r->host->host, &c->tls) != 0) {
        step_set(&r->tls, STEP_FAIL, "error", "out of memory");
        return -1;
    }
    uint8_t buf[READ_CHUNK];
    for (;;) {
        int hs = hc_tls_conn_handshake(c->tls);
        if (flush_tls(c) != 0 && hs >= 0) {
            step_set(&r->tls, STEP_FAIL, "closed", "the connection failed while sending: %s",
                     strerror(errno));
            hint(r, "peer %s dropped the connection during TLS: its log says why", r->name);
            return -1;
        }
        if (hs == 1) {
            break;
        }
        if (hs < 0) {
            step_set(&r->tls, STEP_FAIL, "verify", "%s", hc_tls_conn_error(c->tls));
            hint(r,
                 "peer %s failed TLS: %s: check CACHE_TLS_CA_SERVER (the CA bundle that "
                 "signed the peers' certificates) and that the peer's certificate names %s "
                 "in a SAN (or set CACHE_TLS_CLIENT_VALIDATE_DOMAIN)",
                 r->name, hc_tls_conn_error(c->tls),
                 pr->cfg->tls_client_validate_domain ? pr->cfg->tls_client_validate_domain
                                                     : r->host->host);
            return -1;
        }
        int first = !c->got_any;
        ssize_t n = recv_some(c, buf, sizeof(buf));
        if (n > 0 && first && !hc_tls_looks_like_tls(buf[0])) {
            step_set(&r->tls, STEP_FAIL, "no tls", "the peer answered in plaintext");
            hint(r,
                 "peer %s does not speak TLS on its peer port: CACHE_TLS differs between "
                 "the nodes (or HA_HOSTS names another service's port)",
                 r->name);
            return -1;
        }
        if (n <= 0) {
            step_set(&r->tls, STEP_FAIL, n == -2 ? "timeout" : "closed", "%s",
                     n == -2 ? "no TLS handshake answer within the probe timeout"
                             : "the peer closed the connection during the TLS handshake");
            hint(r,
                 "peer %s %s: is that port a hacached peer port (HA_HOSTS), is CACHE_TLS "
                 "the same on every node, is the node stopped or overloaded?",
                 r->name,
                 n == -2 ? "did not complete the TLS handshake in time"
                         : "closed the connection during the TLS handshake");
            return -1;
        }
        if (hc_tls_conn_feed(c->tls, buf, (size_t)n) != 0) {
            step_set(&r->tls, STEP_FAIL, "error", "out of memory");
            return -1;
        }
    }
    hc_tls_conn_peer_info(c->tls, &r->cert);
    char exp[32];
    fmt_time(r->cert.not_after, exp, sizeof(exp));
    step_set(&r->tls, STEP_OK, "ok", "peer certificate %s, expires %s", r->cert.subject, exp);
    return 0;
}

/* ---- frames ---- */

/* Reads until one whole frame is buffered in c->rx (then *f points into it). */
static rd_t read_frame(conn_t *c, hc_frame_t *f, char *why, size_t whylen)
{
    uint8_t buf[READ_CHUNK];
    why[0] = '\0';
    for (;;) {
        int pr = hc_frame_parse(c->rx, c->rx_len, HC_PEER_HANDSHAKE_MAX, f);
        if (pr == 1) {
            return RD_FRAME;
        }
        if (pr < 0) {
            snprintf(why, whylen, "%s",
                     pr == HC_ETOOLARGE ? "a handshake frame larger than allowed"
                                        : "an unknown frame type");
            return RD_BAD;
        }
        if (c->tls != NULL) {
            /* whatever TLS already decrypted comes first */
            if (rx_reserve(c, READ_CHUNK) != 0) {
                snprintf(why, whylen, "handshake too large");
                return RD_BAD;
            }
            long n = hc_tls_conn_read(c->tls, c->rx + c->rx_len, READ_CHUNK);
            flush_tls(c); /* TLS may answer (key updates, alerts) */
            if (n > 0) {
                c->rx_len += (size_t)n;
                continue;
            }
            if (n == HC_EUNAVAILABLE) {
                snprintf(why, whylen, "the peer closed the TLS session");
                return RD_CLOSED;
            }
            if (n < 0) {
                snprintf(why, whylen, "%s", hc_tls_conn_error(c->tls));
                return RD_TLS_ERROR;
            }
        }
        ssize_t n;
        if (c->tls != NULL) {
            n = recv_some(c, buf, sizeof(buf));
            if (n > 0 && hc_tls_conn_feed(c->tls, buf, (size_t)n) != 0) {
                snprintf(why, whylen, "out of memory");
                return RD_IO_ERROR;
            }
        } else {
            if (rx_reserve(c, READ_CHUNK) != 0) {
                snprintf(why, whylen, "handshake too large");
                return RD_BAD;
            }
            int first = !c->got_any;
            n = recv_some(c, c->rx + c->rx_len, READ_CHUNK);
            if (n > 0 && first && hc_tls_looks_like_tls(c->rx[c->rx_len])) {
                snprintf(why, whylen, "the peer answered with TLS");
                return RD_BAD;
            }
            if (n > 0) {
                c->rx_len += (size_t)n;
            }
        }
        if (n == 0) {
            snprintf(why, whylen, "the peer closed the connection");
            return RD_CLOSED;
        }
        if (n == -2) {
            snprintf(why, whylen, "no answer within the probe timeout");
            return RD_TIMEOUT;
        }
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            return RD_IO_ERROR;
        }
    }
}

static void consume(conn_t *c, size_t n)
{
    memmove(c->rx, c->rx + n, c->rx_len - n);
    c->rx_len -= n;
}

static int send_frame(conn_t *c, uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t *f = malloc(HC_FRAME_HEADER + len);
    if (f == NULL) {
        return -1;
    }
    hc_frame_header(f, type, len);
    memcpy(f + HC_FRAME_HEADER, payload, len);
    int rc = c->tls != NULL
                 ? (hc_tls_conn_write(c->tls, f, HC_FRAME_HEADER + len) == 0 ? flush_tls(c) : -1)
                 : send_all(c, f, HC_FRAME_HEADER + len);
    free(f);
    return rc;
}

/* A failed read during the handshake, charged to the step it tells about. */
static void handshake_failed(const probe_t *pr, result_t *r, rd_t rd, const char *why,
                             const char *waiting_for)
{
    if (rd == RD_TLS_ERROR && !r->have_hello) {
        /* TLS 1.3: a dialer learns that the acceptor refused its certificate only now */
        step_set(&r->tls, STEP_FAIL, "rejected", "the peer rejected our client certificate: %s",
                 why);
        hint(r,
             "peer %s rejected this node's client certificate (%s): check that "
             "CACHE_TLS_CLIENT_CERT (or the server pair) chains to the peer's "
             "CACHE_TLS_CA_CLIENT and names %s",
             r->name, why, pr->cfg->hosts.v[pr->cfg->self_index].host);
        return;
    }
    if (rd == RD_TIMEOUT) {
        step_set(&r->token, STEP_FAIL, "timeout", "no %s within %u ms", waiting_for,
                 pr->timeout_ms);
        hint(r,
             "peer %s did not finish the handshake within %u ms: is it stopped or "
             "overloaded? (--probe-timeout raises the bound)",
             r->name, pr->timeout_ms);
        return;
    }
    if (rd == RD_BAD) {
        step_set(&r->token, STEP_FAIL, "malformed", "waiting for its %s: %s", waiting_for, why);
        hint(r,
             "peer %s did not speak the hacache peer protocol (%s): is the port in HA_HOSTS "
             "another service's, or does CACHE_TLS differ?",
             r->name, why);
        return;
    }
    step_set(&r->token, STEP_FAIL, "peer closed during handshake",
             "the peer closed the connection while we waited for its %s (%s)", waiting_for, why);
    hint(r,
         "peer %s closed the connection during the handshake: its log line \"peer link "
         "refused\" says why (is %s in its HA_HOSTS, does our certificate name %s, do the "
         "protocol versions overlap?)%s",
         r->name, pr->me, pr->cfg->hosts.v[pr->cfg->self_index].host,
         pr->tls == NULL ? "; with CACHE_TLS=false here: does the peer expect TLS?" : "");
}

/* Our Hello, the peer's Hello and the peer's Auth; fills r->version and r->token. */
static void handshake(const probe_t *pr, result_t *r, conn_t *c)
{
    hc_hello_t h;
    memset(&h, 0, sizeof(h));
    h.proto_min = HC_PROTO_MIN;
    h.proto_max = HC_PROTO_MAX;
    snprintf(h.node, sizeof(h.node), "%s", pr->me);
    h.hosts = pr->host_names;
    h.n_hosts = pr->cfg->hosts.n;
    snprintf(h.version, sizeof(h.version), "%s", HC_VERSION_STRING);
    randombytes_buf(h.nonce, sizeof(h.nonce));
    /* an incarnation of our own: never the running node's, so no link of it is mistaken for
     * ours (see peer.h, duplicates of one incarnation) */
    randombytes_buf(&h.incarnation, sizeof(h.incarnation));
    uint8_t *hello = NULL, my_hash[HC_PEER_HASH_BYTES], peer_hash[HC_PEER_HASH_BYTES];
    size_t hello_len = 0;
    if (hc_hello_encode(&h, &hello, &hello_len) != 0) {
        step_set(&r->token, STEP_FAIL, "error", "out of memory");
        return;
    }
    hc_peer_hello_hash(hello, hello_len, my_hash);
    int sent = send_frame(c, HC_FRAME_HELLO, hello, hello_len);
    free(hello);
    if (sent != 0) {
        step_set(&r->token, STEP_FAIL, "peer closed during handshake",
                 "sending our Hello failed: %s", strerror(errno));
        hint(r, "peer %s dropped the connection before our Hello: its log says why", r->name);
        return;
    }

    hc_frame_t f;
    char why[300];
    rd_t rd = read_frame(c, &f, why, sizeof(why));
    if (rd != RD_FRAME || f.type != HC_FRAME_HELLO) {
        if (rd == RD_FRAME) {
            rd = RD_BAD;
            snprintf(why, sizeof(why), "frame type %u before its Hello", f.type);
        }
        handshake_failed(pr, r, rd, why, "Hello");
        return;
    }
    hc_hello_t ph;
    const char *bad;
    hc_peer_hello_hash(f.payload, f.len, peer_hash);
    if (hc_hello_decode(f.payload, f.len, &ph, &bad) != 0) {
        handshake_failed(pr, r, RD_BAD, bad, "Hello");
        return;
    }
    consume(c, f.frame_len);
    r->have_hello = 1;
    r->proto_min = ph.proto_min;
    r->proto_max = ph.proto_max;
    copy_printable(r->software, sizeof(r->software), ph.version);
    char peer_name[HC_NODE_NAME_MAX + 1], peer_name_shown[HC_NODE_NAME_MAX + 1];
    uint8_t peer_nonce[HC_NONCE_BYTES];
    snprintf(peer_name, sizeof(peer_name), "%s", ph.node);
    copy_printable(peer_name_shown, sizeof(peer_name_shown), ph.node);
    memcpy(peer_nonce, ph.nonce, sizeof(peer_nonce));
    hc_hello_free(&ph);

    uint32_t lo = r->proto_min > HC_PROTO_MIN ? r->proto_min : HC_PROTO_MIN;
    uint32_t hi = r->proto_max < HC_PROTO_MAX ? r->proto_max : HC_PROTO_MAX;
    if (lo > hi) {
        step_set(&r->version, STEP_FAIL, "incompatible",
                 "peer speaks protocol [%u,%u] (hacache %s), this build [%u,%u]", r->proto_min,
                 r->proto_max, r->software, HC_PROTO_MIN, HC_PROTO_MAX);
        hint(r,
             "peer %s runs hacache %s, which shares no protocol version with this build "
             "(%s): upgrade one version at a time",
             r->name, r->software, HC_VERSION_STRING);
        step_set(&r->token, STEP_SKIPPED, "skipped", "the peer refuses us for the version");
        return;
    }
    r->negotiated = hi;
    step_set(&r->version, STEP_OK, "ok", "protocol [%u,%u], negotiated %u, hacache %s",
             r->proto_min, r->proto_max, hi, r->software);
    if (!hc_same_hostport(peer_name, r->name)) {
        step_set(&r->token, STEP_FAIL, "wrong peer", "dialed %s but the peer says it is %s",
                 r->name, peer_name_shown);
        hint(r,
             "peer %s says it is %s: HA_HOSTS has a wrong port for it, or its "
             "HOSTNAME_OVERWRITE is wrong",
             r->name, peer_name_shown);
        return;
    }

    rd = read_frame(c, &f, why, sizeof(why));
    if (rd != RD_FRAME || f.type != HC_FRAME_AUTH) {
        if (rd == RD_FRAME) {
            rd = RD_BAD;
            snprintf(why, sizeof(why), "frame type %u instead of its Auth", f.type);
        }
        handshake_failed(pr, r, rd, why, "Auth");
        return;
    }
    uint8_t got[HC_MAC_BYTES], want[HC_MAC_BYTES], exporter[HC_TLS_EXPORTER_BYTES];
    if (hc_auth_decode(f.payload, f.len, got) != 0) {
        handshake_failed(pr, r, RD_BAD, "malformed Auth", "Auth");
        return;
    }
    consume(c, f.frame_len);
    if (c->tls != NULL && hc_tls_conn_exporter(c->tls, exporter) != 0) {
        step_set(&r->token, STEP_FAIL, "error", "TLS exporter unavailable");
        return;
    }
    hc_peer_transcript_t t = {
        .dialer_name = pr->me,
        .acceptor_name = peer_name,
        .dialer_nonce = h.nonce,
        .acceptor_nonce = peer_nonce,
        .dialer_hello_hash = my_hash,
        .acceptor_hello_hash = peer_hash,
        .exporter = c->tls != NULL ? exporter : NULL,
    };
    int ok = 0;
    for (size_t i = 0; i < pr->n_keys; i++) {
        hc_peer_auth_mac(pr->keys[i], 'A', &t, want);
        ok |= sodium_memcmp(got, want, HC_MAC_BYTES) == 0;
    }
    sodium_memzero(want, sizeof(want));
    if (!ok) {
        step_set(&r->token, STEP_FAIL, "wrong token",
                 "the peer's proof matches none of our CACHE_AUTH_TOKEN values");
        hint(r,
             "peer %s rejected the token: CACHE_AUTH_TOKEN differs (its proof matches none "
             "of ours); give every node the same CACHE_AUTH_TOKEN / CACHE_AUTH_TOKEN_FILE "
             "(during a rotation: the new token on a second line everywhere first)",
             r->name);
        return;
    }
    step_set(&r->token, STEP_OK, "ok", "the peer proved the shared token");
}

/* Ends the connection cleanly: close_notify under TLS, our FIN, then (briefly) the peer's. */
static void conn_close(conn_t *c)
{
    if (c->fd >= 0) {
        c->deadline_ms = now_ms() + DRAIN_MS;
        if (c->tls != NULL && hc_tls_conn_done(c->tls) && hc_tls_conn_close_notify(c->tls) == 0) {
            flush_tls(c);
        }
        if (shutdown(c->fd, SHUT_WR) == 0) {
            uint8_t buf[READ_CHUNK];
            while (recv_some(c, buf, sizeof(buf)) > 0) {
            }
        }
        close(c->fd);
        c->fd = -1;
    }
    hc_tls_conn_free(c->tls);
    c->tls = NULL;
    free(c->rx);
    c->rx = NULL;
}

static void probe_peer(const probe_t *pr, result_t *r)
{
    conn_t c;
    memset(&c, 0, sizeof(c));
    c.deadline_ms = now_ms() + pr->timeout_ms;
    c.fd = tcp_step(pr, r, c.deadline_ms);
    if (c.fd < 0) {
        return;
    }
    if (pr->tls == NULL) {
        step_set(&r->tls, STEP_OFF, "off", "CACHE_TLS=false");
    }
    if (pr->tls == NULL || tls_step(pr, r, &c) == 0) {
        handshake(pr, r, &c);
    }
    conn_close(&c);
}

/* ---- output ---- */

static const char *state_word(step_state_t s)
{
    return s == STEP_OK ? "ok" : s == STEP_FAIL ? "FAIL" : s == STEP_OFF ? "off" : "skipped";
}

static int passed(const result_t *r)
{
    return r->tcp.state == STEP_OK && (r->tls.state == STEP_OK || r->tls.state == STEP_OFF) &&
           r->token.state == STEP_OK && r->version.state == STEP_OK;
}

static void print_step_text(const char *name, const step_t *s, int last)
{
    if (s->state == STEP_OK || s->state == STEP_OFF) {
        printf("%s %s (%s)%s", name, state_word(s->state), s->detail, last ? "" : ", ");
    } else if (s->state == STEP_FAIL) {
        printf("%s FAIL: %s: %s%s", name, s->kind, s->detail, last ? "" : ", ");
    } else {
        printf("%s skipped%s", name, last ? "" : ", ");
    }
}

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20 || *p >= 0x7f) {
            printf("\\u%04x", *p < 0x20 ? *p : '?');
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

static void print_step_json(const char *name, const step_t *s)
{
    printf("\"%s\":{\"ok\":%s,\"state\":\"%s\",\"result\":", name,
           s->state == STEP_OK || s->state == STEP_OFF ? "true" : "false",
           s->state == STEP_OK     ? "ok"
           : s->state == STEP_FAIL ? "fail"
           : s->state == STEP_OFF  ? "off"
                                   : "skipped");
    json_str(s->kind);
    printf(",\"detail\":");
    json_str(s->detail);
    putchar('}');
}

static void print_json(const probe_t *pr, const result_t *res, size_t n, int all_ok)
{
    printf("{\"node\":");
    json_str(pr->me);
    printf(",\"ok\":%s,\"peers\":[", all_ok ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        const result_t *r = &res[i];
        printf("%s{\"peer\":", i ? "," : "");
        json_str(r->name);
        printf(",\"addr\":");
        json_str(r->addr);
        printf(",\"ok\":%s,", passed(r) ? "true" : "false");
        print_step_json("tcp", &r->tcp);
        putchar(',');
        print_step_json("tls", &r->tls);
        putchar(',');
        print_step_json("token", &r->token);
        putchar(',');
        print_step_json("version", &r->version);
        if (r->cert.present) {
            char exp[32];
            fmt_time(r->cert.not_after, exp, sizeof(exp));
            printf(",\"cert\":{\"subject\":");
            json_str(r->cert.subject);
            printf(",\"serial\":");
            json_str(r->cert.serial);
            printf(",\"not_after\":\"%s\"}", exp);
        }
        if (r->have_hello) {
            printf(",\"protocol_min\":%u,\"protocol_max\":%u,\"protocol\":%u,\"software\":",
                   r->proto_min, r->proto_max, r->negotiated);
            json_str(r->software);
        }
        if (r->hint[0] != '\0') {
            printf(",\"hint\":");
            json_str(r->hint);
        }
        putchar('}');
    }
    printf("]}\n");
}

/* ---- the command ---- */

static void probe_free(probe_t *pr)
{
    for (size_t i = 0; pr->host_names != NULL && i < pr->cfg->hosts.n; i++) {
        free(pr->host_names[i]);
    }
    free(pr->host_names);
    if (pr->keys != NULL) {
        sodium_memzero(pr->keys, pr->n_keys * HC_PEER_TOKEN_KEY);
    }
    free(pr->keys);
    hc_tls_ctx_unref(pr->tls);
}

int ctl_probe(const hc_config_t *cfg, uint32_t timeout_ms, int json)
{
    if (!cfg->ha_mode || cfg->self_index < 0 || cfg->hosts.n == 0) {
        fputs("hacachectl: --probe needs a cluster configuration (HA_MODE=true, HA_HOSTS)\n",
              stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fputs("hacachectl: libsodium failed to initialise\n", stderr);
        return 2;
    }
    probe_t pr;
    memset(&pr, 0, sizeof(pr));
    pr.cfg = cfg;
    pr.timeout_ms = timeout_ms;
    hc_host_format(&cfg->hosts.v[cfg->self_index], pr.me, sizeof(pr.me));
    result_t *res = calloc(cfg->hosts.n, sizeof(*res));
    pr.host_names = calloc(cfg->hosts.n, sizeof(char *));
    pr.keys = calloc(cfg->n_auth_tokens ? cfg->n_auth_tokens : 1, HC_PEER_TOKEN_KEY);
    int rv = 2;
    if (res == NULL || pr.host_names == NULL || pr.keys == NULL) {
        fputs("hacachectl: out of memory\n", stderr);
        goto done;
    }
    for (size_t i = 0; i < cfg->hosts.n; i++) {
        char name[HC_NODE_NAME_MAX + 1];
        hc_host_format(&cfg->hosts.v[i], name, sizeof(name));
        if ((pr.host_names[i] = strdup(name)) == NULL) {
            fputs("hacachectl: out of memory\n", stderr);
            goto done;
        }
    }
    pr.n_keys = cfg->n_auth_tokens;
    for (size_t i = 0; i < pr.n_keys; i++) {
        hc_peer_token_key(cfg->auth_tokens[i], pr.keys[i]);
    }
    if (cfg->tls) {
        char err[512];
        if (hc_tls_ctx_new(cfg, &pr.tls, err, sizeof(err)) != 0) {
            fprintf(stderr, "hacachectl: %s\n", err);
            goto done;
        }
    }

    size_t n = 0;
    int all_ok = 1;
    for (size_t i = 0; i < cfg->hosts.n; i++) {
        if ((int)i == cfg->self_index) {
            continue;
        }
        result_t *r = &res[n++];
        r->host = &cfg->hosts.v[i];
        snprintf(r->name, sizeof(r->name), "%s", pr.host_names[i]);
        snprintf(r->addr, sizeof(r->addr), "-");
        probe_peer(&pr, r);
        all_ok &= passed(r);
        if (!json) {
            printf("peer %s: ", r->name);
            print_step_text("tcp", &r->tcp, 0);
            print_step_text("tls", &r->tls, 0);
            print_step_text("token", &r->token, 0);
            print_step_text("version", &r->version, 1);
            putchar('\n');
            fflush(stdout);
        }
    }
    if (json) {
        print_json(&pr, res, n, all_ok);
    } else if (n == 0) {
        printf("probe: HA_HOSTS lists no peer besides this node (%s)\n", pr.me);
    } else {
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            bad += !passed(&res[i]);
        }
        if (bad == 0) {
            printf("probe: %zu peer%s of %s, every step ok\n", n, n == 1 ? "" : "s", pr.me);
        } else {
            printf("probe: %zu of %zu peer%s of %s failed\n", bad, n, n == 1 ? "" : "s", pr.me);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (res[i].hint[0] != '\0') {
            fprintf(stderr, "hacachectl: %s\n", res[i].hint);
        }
    }
    rv = all_ok ? 0 : 1;
done:
    free(res);
    probe_free(&pr);
    return rv;
}
