/* peer_link.c: one peer link's life on the loop (see peer_link.h): creation and close, frames
 * out (queue and one batched write per loop turn), retiring, frames in (reads, TLS, parsing)
 * and liveness. What a frame or an event means is the owner's, through net->cb. */
#include "peer_link.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hacache.h"

#define TLS_READ_CHUNK (16 * 1024)
#define SOFT_CLOSE_MS  1000 /* how long a refused link may take to flush its last TLS alert */

/* One queued frame: header and payload, contiguous. */
struct txframe {
    struct txframe *next;
    size_t len;
    uint8_t data[];
};

void peer_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, len, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, len, "[%s]:%d", ip, port);
    } else {
        snprintf(out, len, "?");
    }
}

/* ---- frames out ---- */

static void free_frames(txframe_t *f)
{
    while (f != NULL) {
        txframe_t *next = f->next;
        free(f);
        f = next;
    }
}

/* Links f (f->next == NULL) at the tail of l's queue. */
static void queue_push(peer_link_t *l, txframe_t *f)
{
    if (l->q_tail != NULL) {
        l->q_tail->next = f;
    } else {
        l->q_head = f;
    }
    l->q_tail = f;
    l->q_bytes += f->len;
}

static void want_flush(peer_net_t *net);
static void retire_flush(peer_link_t *l);
static void on_link_closed(uv_handle_t *h);

int peer_link_send(peer_link_t *l, uint8_t type, const void *payload, size_t len)
{
    txframe_t *f = malloc(sizeof(*f) + HC_FRAME_HEADER + len);
    if (f == NULL) {
        return HC_ENOMEM;
    }
    f->next = NULL;
    f->len = HC_FRAME_HEADER + len;
    hc_frame_header(f->data, type, len);
    if (len > 0) {
        memcpy(f->data + HC_FRAME_HEADER, payload, len);
    }
    queue_push(l, f);
    want_flush(l->net);
    return 0;
}

size_t peer_link_queued(const peer_link_t *l)
{
    return l->q_bytes + l->w_bytes;
}

static void on_write(uv_write_t *req, int status)
{
    peer_link_t *l = req->data;
    free_frames(l->w_frames);
    l->w_frames = NULL;
    free(l->w_bufs);
    l->w_bufs = NULL;
    free(l->w_cipher);
    l->w_cipher = NULL;
    l->w_bytes = 0;
    l->writing = 0;
    if (l->state == L_CLOSING) {
        if (l->close_after_write && !uv_is_closing((uv_handle_t *)&l->tcp)) {
            uv_close((uv_handle_t *)&l->tcp, on_link_closed);
        }
        return;
    }
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof(why), "write failed: %s", uv_strerror(status));
        peer_link_close(l, why, 0);
        return;
    }
    if (l->state == L_RETIRING) {
        if (l->shutdown_pending) {
            retire_flush(l);
        }
        return;
    }
    if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
        want_flush(l->net);
    }
}

/* Starts one write with everything queued on l (and any TLS output). */
static void link_write(peer_link_t *l)
{
    size_t nframes = 0;
    for (txframe_t *f = l->q_head; f != NULL; f = f->next) {
        nframes++;
    }
    size_t nbufs;
    if (l->tls != NULL) {
        for (txframe_t *f = l->q_head; f != NULL; f = f->next) {
            if (hc_tls_conn_write(l->tls, f->data, f->len) != 0) {
                peer_link_close(l, hc_tls_conn_error(l->tls), 0);
                return;
            }
            l->w_bytes += f->len;
        }
        free_frames(l->q_head);
        size_t n = hc_tls_conn_pending(l->tls);
        if (n == 0) {
            l->q_head = l->q_tail = NULL;
            l->q_bytes = 0;
            l->w_bytes = 0;
            return;
        }
        l->w_cipher = malloc(n);
        l->w_bufs = malloc(sizeof(uv_buf_t));
        if (l->w_cipher == NULL || l->w_bufs == NULL) {
            l->q_head = l->q_tail = NULL;
            l->q_bytes = 0;
            peer_link_close(l, "out of memory", 0);
            return;
        }
        n = hc_tls_conn_take(l->tls, l->w_cipher, n);
        l->w_bufs[0] = uv_buf_init((char *)l->w_cipher, (unsigned)n);
        nbufs = 1;
    } else {
        if (nframes == 0) {
            return;
        }
        l->w_bufs = malloc(nframes * sizeof(uv_buf_t));
        if (l->w_bufs == NULL) {
            peer_link_close(l, "out of memory", 0);
            return;
        }
        nbufs = 0;
        for (txframe_t *f = l->q_head; f != NULL; f = f->next) {
            l->w_bufs[nbufs++] = uv_buf_init((char *)f->data, (unsigned)f->len);
        }
        l->w_frames = l->q_head;
        l->w_bytes = l->q_bytes;
    }
    l->q_head = l->q_tail = NULL;
    l->q_bytes = 0;
    l->write_req.data = l;
    l->writing = 1;
    int rc = uv_write(&l->write_req, (uv_stream_t *)&l->tcp, l->w_bufs, (unsigned)nbufs, on_write);
    if (rc != 0) {
        l->writing = 0;
        char why[128];
        snprintf(why, sizeof(why), "write failed: %s", uv_strerror(rc));
        free_frames(l->w_frames);
        l->w_frames = NULL;
        free(l->w_bufs);
        l->w_bufs = NULL;
        free(l->w_cipher);
        l->w_cipher = NULL;
        peer_link_close(l, why, 0);
    }
}

/* Once per loop turn, before polling: one write per link with what accumulated. */
static void on_flush(uv_prepare_t *h)
{
    peer_net_t *net = h->data;
    uv_prepare_stop(h);
    for (peer_link_t *l = net->links; l != NULL; l = l->next) {
        if (l->state == L_CLOSING || l->state == L_CONNECTING || l->state == L_RETIRING ||
            l->writing) {
            continue;
        }
        if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
            link_write(l);
        }
    }
}

/* Flushes every link's queue once, before the loop next polls. */
static void want_flush(peer_net_t *net)
{
    if (!net->closing) {
        uv_prepare_start(&net->flush, on_flush);
    }
}

/* ---- retiring ---- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    peer_link_t *l = req->data;
    if (status < 0 && status != UV_ECANCELED && l->state == L_RETIRING) {
        peer_link_close(l, "duplicate link retired", 0);
    }
}

/* Retiring link, no write in flight: write what is left (handshake frames), then shut down our
 * write side (uv_shutdown waits for that write). */
static void retire_flush(peer_link_t *l)
{
    l->shutdown_pending = 0;
    if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
        link_write(l);
        if (l->state != L_RETIRING) {
            return;
        }
    }
    if (uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, on_shutdown) != 0) {
        peer_link_close(l, "duplicate link retired", 0);
    }
}

void peer_link_hand_over(peer_link_t *from, peer_link_t *to)
{
    txframe_t *f = from->q_head, *next;
    from->q_head = from->q_tail = NULL;
    from->q_bytes = 0;
    for (; f != NULL; f = next) {
        next = f->next;
        f->next = NULL;
        queue_push(f->data[4] == HC_FRAME_DATA ? to : from, f);
    }
    if (to->q_head != NULL) {
        want_flush(to->net);
    }
}

void peer_link_retire(peer_link_t *l)
{
    l->state = L_RETIRING;
    l->retired_ms = uv_now(l->net->loop);
    l->shutdown_req.data = l;
    if (l->writing) {
        l->shutdown_pending = 1; /* on_write continues */
    } else {
        retire_flush(l);
    }
}

/* ---- link lifecycle ---- */

void peer_link_close(peer_link_t *l, const char *reason, int refused)
{
    peer_net_t *net = l->net;
    if (l->state == L_CLOSING) {
        return;
    }
    lstate_t was = l->state;
    l->state = L_CLOSING;
    l->closing_ms = uv_now(net->loop);
    hc_admit_release(net->admit, &l->adm);
    uv_read_stop((uv_stream_t *)&l->tcp);
    net->cb.closing(l, was, reason, refused);

    if (!net->closing && refused && l->tls != NULL && hc_tls_conn_pending(l->tls) > 0) {
        /* let the peer see our TLS alert: it explains the refusal on its side */
        l->close_after_write = 1;
        if (!l->writing) {
            free_frames(l->q_head);
            l->q_head = l->q_tail = NULL;
            l->q_bytes = 0;
            link_write(l); /* only the TLS output is left to write */
            if (l->writing) {
                return;
            }
        } else {
            return;
        }
    }
    if (!uv_is_closing((uv_handle_t *)&l->tcp)) {
        uv_close((uv_handle_t *)&l->tcp, on_link_closed);
    }
}

/* Every link socket closes through here (its data is the link). */
static void on_link_closed(uv_handle_t *h)
{
    peer_link_t *l = h->data;
    peer_net_t *net = l->net;
    if (l->prev) {
        l->prev->next = l->next;
    } else if (net->links == l) {
        net->links = l->next;
    }
    if (l->next) {
        l->next->prev = l->prev;
    }
    free_frames(l->q_head);
    free_frames(l->w_frames);
    free(l->w_bufs);
    free(l->w_cipher);
    free(l->rx);
    hc_tls_conn_free(l->tls);
    net->cb.closed(net, l);
}

int peer_link_init(peer_net_t *net, peer_link_t *l, int dialer)
{
    int rc = uv_tcp_init(net->loop, &l->tcp);
    if (rc != 0) {
        return rc;
    }
    l->net = net;
    l->tcp.data = l;
    l->dialer = dialer;
    l->state = L_CONNECTING;
    l->created_ms = l->last_rx_ms = l->last_ping_ms = uv_now(net->loop);
    snprintf(l->addr, sizeof(l->addr), "?");
    snprintf(l->local, sizeof(l->local), "?");
    l->next = net->links;
    if (net->links) {
        net->links->prev = l;
    }
    net->links = l;
    return 0;
}

int peer_link_accept(peer_link_t *l, uv_stream_t *server)
{
    int rc = uv_accept(server, (uv_stream_t *)&l->tcp);
    if (rc != 0) {
        l->state = L_CLOSING;
        uv_close((uv_handle_t *)&l->tcp, on_link_closed);
        return rc;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        peer_format_addr((struct sockaddr *)&ss, l->addr, sizeof(l->addr));
    }
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    peer_link_t *l = req->data;
    if (status == UV_ECANCELED || l->state == L_CLOSING || l->net->closing) {
        return;
    }
    if (status != 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(status));
        peer_link_close(l, reason, 0);
        return;
    }
    peer_link_start(l);
}

void peer_link_connect(peer_link_t *l, const struct sockaddr *sa, const char *host)
{
    peer_format_addr(sa, l->addr, sizeof(l->addr));
    l->host = host;
    l->connect_req.data = l;
    int rc = uv_tcp_connect(&l->connect_req, &l->tcp, sa, on_connect);
    if (rc != 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(rc));
        peer_link_close(l, reason, 0);
    }
}

/* ---- frames in ---- */

/* Parses every complete frame in l->rx and hands it to the owner. */
static void process_rx(peer_link_t *l)
{
    peer_net_t *net = l->net;
    size_t off = 0;
    while (l->state != L_CLOSING && !net->closing) {
        int authed = l->state == L_UP || l->state == L_RETIRING;
        size_t limit = authed ? net->max_frame : HC_PEER_HANDSHAKE_MAX;
        hc_frame_t f;
        int r = hc_frame_parse(l->rx + off, l->rx_len - off, limit, &f);
        if (r < 0) {
            char reason[160];
            const uint8_t *h = l->rx + off;
            if (r == HC_ETOOLARGE) {
                unsigned long n = ((unsigned long)h[0] << 24) | ((unsigned long)h[1] << 16) |
                                  ((unsigned long)h[2] << 8) | h[3];
                snprintf(reason, sizeof(reason), "frame too large: %lu bytes, limit %zu%s", n,
                         limit, authed ? "" : " during the handshake");
            } else {
                snprintf(reason, sizeof(reason), "malformed frame: unknown type %u", h[4]);
            }
            peer_link_close(l, reason, !authed);
            break;
        }
        if (r == 0) {
            break;
        }
        net->cb.frame(l, &f);
        off += f.frame_len;
    }
    if (off > 0 && l->state != L_CLOSING) {
        memmove(l->rx, l->rx + off, l->rx_len - off);
        l->rx_len -= off;
    }
}

/* Makes room for `extra` more bytes in l->rx. The parser runs after every append and rejects
 * a declared length over the limit, so rx stays below one maximal frame plus one chunk. */
static int rx_reserve(peer_link_t *l, size_t extra)
{
    if (l->rx_cap - l->rx_len >= extra) {
        return 0;
    }
    size_t cap = l->rx_cap ? l->rx_cap * 2 : PEER_READ_CHUNK;
    if (cap < l->rx_len + extra) {
        cap = l->rx_len + extra;
    }
    uint8_t *n = realloc(l->rx, cap);
    if (n == NULL) {
        return HC_ENOMEM;
    }
    l->rx = n;
    l->rx_cap = cap;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    peer_link_t *l = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)l->net->rbuf, PEER_READ_CHUNK);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    peer_link_t *l = stream->data;
    peer_net_t *net = l->net;
    (void)buf;
    if (l->state == L_CLOSING || net->closing) {
        return;
    }
    if (nread < 0) {
        char reason[128];
        if (nread == UV_EOF && l->state == L_UP && net->cb.hold_on_eof(l)) {
            uv_read_stop((uv_stream_t *)&l->tcp);
            l->state = L_RETIRING;
            l->peer_eof = 1;
            l->retired_ms = uv_now(net->loop);
            return;
        }
        if (l->state == L_RETIRING) {
            snprintf(reason, sizeof(reason), "duplicate link retired");
        } else if (nread == UV_EOF) {
            snprintf(reason, sizeof(reason), "connection closed by the peer");
        } else {
            snprintf(reason, sizeof(reason), "read failed: %s", uv_strerror((int)nread));
        }
        /* a peer that hangs up during our handshake refused us; it logged why */
        peer_link_close(l, reason, 0);
        return;
    }
    if (nread == 0) {
        return;
    }
    l->last_rx_ms = uv_now(net->loop);
    if (l->rx_total == 0) {
        int tlsish = hc_tls_looks_like_tls(net->rbuf[0]);
        if (l->tls != NULL && !tlsish) {
            peer_link_close(l,
                            l->dialer
                                ? "peer does not speak TLS (plaintext peer port? check CACHE_TLS)"
                                : "plaintext connection to TLS peer port",
                            1);
            return;
        }
        if (l->tls == NULL && tlsish) {
            peer_link_close(l, "TLS connection to plaintext peer port (check CACHE_TLS)", 1);
            return;
        }
    }
    l->rx_total += (uint64_t)nread;
    if (l->tls == NULL) {
        if (rx_reserve(l, (size_t)nread) != 0) {
            peer_link_close(l, "out of memory", 0);
            return;
        }
        memcpy(l->rx + l->rx_len, net->rbuf, (size_t)nread);
        l->rx_len += (size_t)nread;
        process_rx(l);
        return;
    }
    if (hc_tls_conn_feed(l->tls, net->rbuf, (size_t)nread) != 0) {
        peer_link_close(l, "out of memory", 0);
        return;
    }
    if (!hc_tls_conn_done(l->tls)) {
        int hs = hc_tls_conn_handshake(l->tls);
        if (hs < 0) {
            char reason[300];
            snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
            peer_link_close(l, reason, 1);
            return;
        }
        if (hc_tls_conn_pending(l->tls) > 0) {
            want_flush(net);
        }
        if (hs == 0) {
            return;
        }
        net->cb.ready(l);
        if (l->state == L_CLOSING) {
            return;
        }
    }
    for (;;) {
        if (rx_reserve(l, TLS_READ_CHUNK) != 0) {
            peer_link_close(l, "out of memory", 0);
            return;
        }
        long n = hc_tls_conn_read(l->tls, l->rx + l->rx_len, TLS_READ_CHUNK);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            char reason[300];
            if (n == HC_EUNAVAILABLE) {
                snprintf(reason, sizeof(reason), "peer closed the TLS session");
                peer_link_close(l, reason, 0);
            } else {
                snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
                peer_link_close(l, reason, l->state != L_UP && l->state != L_RETIRING);
            }
            return;
        }
        l->rx_len += (size_t)n;
        process_rx(l);
        if (l->state == L_CLOSING || net->closing) {
            return;
        }
    }
    if (l->state == L_UP && hc_tls_conn_pending(l->tls) > 0) {
        want_flush(net);
    }
}

void peer_link_start(peer_link_t *l)
{
    peer_net_t *net = l->net;
    uv_tcp_nodelay(&l->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        peer_format_addr((struct sockaddr *)&ss, l->local, sizeof(l->local));
    }
    int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (rc != 0) {
        peer_link_close(l, uv_strerror(rc), 0);
        return;
    }
    if (net->tls != NULL) {
        if (hc_tls_conn_new(net->tls, l->dialer, l->host, &l->tls) != 0) {
            peer_link_close(l, "out of memory", 0);
            return;
        }
        l->state = L_TLS;
        if (l->dialer) {
            int hs = hc_tls_conn_handshake(l->tls);
            if (hs < 0) {
                char reason[300];
                snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
                peer_link_close(l, reason, 1);
                return;
            }
            want_flush(net);
        }
        return;
    }
    l->state = L_TLS; /* not used without TLS: straight to the Hello */
    net->cb.ready(l);
}

/* ---- the net ---- */

void peer_net_init(peer_net_t *net, uv_loop_t *loop)
{
    net->loop = loop;
    uv_prepare_init(loop, &net->flush);
    net->flush.data = net;
}

void peer_net_tick(peer_net_t *net)
{
    uint64_t now = uv_now(net->loop);
    for (peer_link_t *l = net->links, *next; l != NULL; l = next) {
        next = l->next;
        char reason[128];
        if (l->state == L_CLOSING) {
            if (!uv_is_closing((uv_handle_t *)&l->tcp) && now - l->closing_ms > SOFT_CLOSE_MS) {
                uv_close((uv_handle_t *)&l->tcp, on_link_closed);
            }
        } else if (l->state == L_RETIRING) {
            if (now - l->retired_ms > net->dead_timeout_ms) {
                peer_link_close(l, "duplicate link retired (no EOF from the peer)", 0);
            }
        } else if (l->state != L_UP) {
            if (now - l->created_ms > net->handshake_timeout_ms) {
                int connecting = l->state == L_CONNECTING;
                hc_admit_timed_out(net->admit, &l->adm, now); /* counts an accepted one */
                snprintf(reason, sizeof(reason), "%s not completed within %u ms",
                         connecting ? "connect" : "handshake", net->handshake_timeout_ms);
                peer_link_close(l, reason, !connecting);
            }
        } else if (now - l->last_rx_ms > net->dead_timeout_ms) {
            snprintf(reason, sizeof(reason), "no traffic for %" PRIu64 " ms (dead link)",
                     now - l->last_rx_ms);
            peer_link_close(l, reason, 0);
        } else if (now - l->last_ping_ms >= net->keepalive_ms) {
            uint8_t ping[8];
            for (int i = 0; i < 8; i++) {
                ping[i] = (uint8_t)(now >> (56 - 8 * i));
            }
            peer_link_send(l, HC_FRAME_PING, ping, sizeof(ping));
            l->last_ping_ms = now;
        }
        if (net->closing) {
            return;
        }
    }
}

static void on_flush_closed(uv_handle_t *h)
{
    peer_net_t *net = h->data;
    net->cb.closed(net, NULL);
}

void peer_net_close(peer_net_t *net)
{
    net->closing = 1;
    uv_prepare_stop(&net->flush);
    for (peer_link_t *l = net->links; l != NULL; l = l->next) {
        l->state = L_CLOSING;
        if (!uv_is_closing((uv_handle_t *)&l->tcp)) {
            uv_close((uv_handle_t *)&l->tcp, on_link_closed);
        }
    }
    uv_close((uv_handle_t *)&net->flush, on_flush_closed);
}
