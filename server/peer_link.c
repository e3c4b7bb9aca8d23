/* peer_link.c: one peer link's life on the loop: creation and close, frames out (queue and
 * one batched write per loop turn), frames in (reads, TLS, parsing, dispatch) and liveness. */
#include "peer_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hacache.h"
#include "log.h"

#define TLS_READ_CHUNK (16 * 1024)
#define SOFT_CLOSE_MS  1000 /* how long a refused link may take to flush its last TLS alert */

static int awaiting_replacement(link_t *l);

const char *peer__link_peer(const link_t *l)
{
    if (l->slot >= 0) {
        return l->p->slots[l->slot]->name;
    }
    return l->peer_name[0] ? l->peer_name : "?";
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
void peer__queue_push(link_t *l, txframe_t *f)
{
    if (l->q_tail != NULL) {
        l->q_tail->next = f;
    } else {
        l->q_head = f;
    }
    l->q_tail = f;
    l->q_bytes += f->len;
}

/* Appends one frame to l's queue. Handshake and keepalive frames skip the queue bound. */
int peer__enqueue(link_t *l, uint8_t type, const void *payload, size_t len)
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
    peer__queue_push(l, f);
    peer__want_flush(l->p);
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    link_t *l = req->data;
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
            uv_close((uv_handle_t *)&l->tcp, peer__link_handle_closed);
        }
        return;
    }
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof(why), "write failed: %s", uv_strerror(status));
        peer__link_close(l, why, 0);
        return;
    }
    if (l->state == L_RETIRING) {
        if (l->shutdown_pending) {
            peer__retire_flush(l);
        }
        return;
    }
    if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
        peer__want_flush(l->p);
    }
}

/* Starts one write with everything queued on l (and any TLS output). */
void peer__link_write(link_t *l)
{
    size_t nframes = 0;
    for (txframe_t *f = l->q_head; f != NULL; f = f->next) {
        nframes++;
    }
    size_t nbufs;
    if (l->tls != NULL) {
        for (txframe_t *f = l->q_head; f != NULL; f = f->next) {
            if (hc_tls_conn_write(l->tls, f->data, f->len) != 0) {
                peer__link_close(l, hc_tls_conn_error(l->tls), 0);
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
            peer__link_close(l, "out of memory", 0);
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
            peer__link_close(l, "out of memory", 0);
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
        peer__link_close(l, why, 0);
    }
}

/* Once per loop turn, before polling: one write per link with what accumulated. */
static void on_flush(uv_prepare_t *h)
{
    hc_peers_t *p = h->data;
    uv_prepare_stop(h);
    for (link_t *l = p->links; l != NULL; l = l->next) {
        if (l->state == L_CLOSING || l->state == L_CONNECTING || l->state == L_RETIRING ||
            l->writing) {
            continue;
        }
        if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
            peer__link_write(l);
        }
    }
}

void peer__want_flush(hc_peers_t *p)
{
    if (!p->closing) {
        uv_prepare_start(&p->flush, on_flush);
    }
}

/* ---- link lifecycle ---- */

static void log_refusal(link_t *l, const char *reason)
{
    hc_peers_t *p = l->p;
    const char *dir = l->dialer ? "dialed" : "accepted";
    int repeated;
    if (l->slot >= 0) {
        slot_t *s = p->slots[l->slot];
        repeated = strcmp(s->last_refusal, reason) == 0;
        snprintf(s->last_refusal, sizeof(s->last_refusal), "%s", reason);
    } else {
        char key[sizeof(p->last_anon_refusal)];
        char host[64];
        snprintf(host, sizeof(host), "%s", l->addr);
        char *colon = strrchr(host, ':');
        if (colon != NULL) {
            *colon = '\0'; /* the source port changes on every attempt */
        }
        snprintf(key, sizeof(key), "%s|%s", host, reason);
        repeated = strcmp(p->last_anon_refusal, key) == 0;
        snprintf(p->last_anon_refusal, sizeof(p->last_anon_refusal), "%s", key);
    }
    hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_WARN, "peer link refused",
           HC_LS("peer", peer__link_peer(l)), HC_LS("addr", l->addr), HC_LS("direction", dir),
           HC_LS("reason", reason));
}

/* Takes l out of service: reports and logs as its state requires, then closes the socket
 * (after flushing a pending TLS alert when refused). Safe to call more than once. */
void peer__link_close(link_t *l, const char *reason, int refused)
{
    hc_peers_t *p = l->p;
    if (l->state == L_CLOSING) {
        return;
    }
    lstate_t was = l->state;
    l->state = L_CLOSING;
    l->closing_ms = uv_now(p->loop);
    hc_admit_release(&p->admit, &l->adm);
    uv_read_stop((uv_stream_t *)&l->tcp);
    slot_t *s = l->slot >= 0 ? p->slots[l->slot] : NULL;

    if (p->replacing == l) {
        p->replacing = NULL;
    }
    if (!p->closing) {
        if (l->replacement && s != NULL && s->link != NULL && s->link != l && was != L_UP &&
            was != L_RETIRING) {
            peer__replacement_failed(s, reason);
        } else if (s != NULL && s->link == l) {
            s->link = NULL;
            s->version = 0;
            s->replace_wanted = 0;
            hc_log(HC_LOG_WARN, "peer link down", HC_LS("peer", s->name), HC_LS("addr", l->addr),
                   HC_LS("reason", reason));
            if (p->cb.down != NULL) {
                p->cb.down(p->ud, s->index, reason);
            }
        } else if (was == L_UP || was == L_RETIRING) {
            hc_log(HC_LOG_DEBUG, "duplicate peer link closed", HC_LS("peer", peer__link_peer(l)),
                   HC_LS("addr", l->addr), HC_LS("reason", reason));
        } else if (refused) {
            log_refusal(l, reason);
        } else if (l->dialer && s != NULL) {
            /* a failed dial: one line when a peer becomes unreachable, not one per retry */
            int repeated = s->last_dial_error[0] != '\0';
            snprintf(s->last_dial_error, sizeof(s->last_dial_error), "%s", reason);
            hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_INFO, "peer unreachable, retrying",
                   HC_LS("peer", s->name), HC_LS("addr", l->addr), HC_LS("reason", reason),
                   HC_LU("attempt", s->attempts + 1));
        } else {
            hc_log(HC_LOG_DEBUG, "inbound peer connection closed before authentication",
                   HC_LS("addr", l->addr), HC_LS("reason", reason));
        }
    }
    if (!p->closing && s != NULL && s->link != NULL && s->link != l && s->link->revoked_ms != 0 &&
        was != L_UP && was != L_RETIRING && !l->dialer) {
        /* the peer's attempt to replace a revoked link failed: close that link now */
        s->replace_failed_ms = uv_now(p->loop);
        peer__replace_soon(p);
    }
    if (!p->closing && s != NULL && s->link != NULL && s->link->peer_eof && was != L_UP &&
        was != L_RETIRING) {
        int others = 0;
        for (link_t *c = p->links; c != NULL; c = c->next) {
            others |= c != l && c != s->link && c->slot == s->index && c->state == L_AUTH;
        }
        if (!others) {
            peer__link_close(s->link, "connection closed by the peer", 0);
        }
    }
    /* p->closing must not schedule anything; a slot whose link (or attempt) ended redials */
    if (s != NULL && l->dialer && s->dial_link == l) {
        s->dial_link = NULL;
    }
    if (!p->closing && s != NULL && s->in_config && s->link == NULL && s->dial_link == NULL) {
        peer__schedule_dial(s, was != L_UP && was != L_RETIRING);
    }

    if (!p->closing && refused && l->tls != NULL && hc_tls_conn_pending(l->tls) > 0) {
        /* let the peer see our TLS alert: it explains the refusal on its side */
        l->close_after_write = 1;
        if (!l->writing) {
            free_frames(l->q_head);
            l->q_head = l->q_tail = NULL;
            l->q_bytes = 0;
            peer__link_write(l); /* only the TLS output is left to write */
            if (l->writing) {
                return;
            }
        } else {
            return;
        }
    }
    if (!uv_is_closing((uv_handle_t *)&l->tcp)) {
        uv_close((uv_handle_t *)&l->tcp, peer__link_handle_closed);
    }
}

static void link_free(link_t *l)
{
    hc_peers_t *p = l->p;
    if (l->prev) {
        l->prev->next = l->next;
    } else if (p->links == l) {
        p->links = l->next;
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
    free(l);
}

/* Every link socket closes through here (its data is the link, not the hc_peers_t). */
void peer__link_handle_closed(uv_handle_t *h)
{
    link_t *l = h->data;
    hc_peers_t *p = l->p;
    link_free(l);
    peer__handle_closed(p);
}

link_t *peer__link_new(hc_peers_t *p, int dialer, int slot)
{
    link_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    if (uv_tcp_init(p->loop, &l->tcp) != 0) {
        free(l);
        return NULL;
    }
    p->open++;
    l->p = p;
    l->tcp.data = l;
    l->dialer = dialer;
    l->slot = slot;
    l->state = L_CONNECTING;
    l->created_ms = l->last_rx_ms = l->last_ping_ms = uv_now(p->loop);
    l->id = ++p->next_link_id;
    l->gen = p->cred_gen;
    snprintf(l->addr, sizeof(l->addr), "?");
    snprintf(l->local, sizeof(l->local), "?");
    l->next = p->links;
    if (p->links) {
        p->links->prev = l;
    }
    p->links = l;
    return l;
}

/* ---- frames in ---- */

static void on_frame(link_t *l, const hc_frame_t *f)
{
    hc_peers_t *p = l->p;
    char reason[128];
    switch (l->state) {
    case L_HELLO:
        if (f->type == HC_FRAME_HELLO) {
            peer__on_hello(l, f->payload, f->len);
            return;
        }
        break;
    case L_AUTH:
        if (f->type == HC_FRAME_AUTH) {
            peer__on_auth(l, f->payload, f->len);
            return;
        }
        break;
    case L_UP:
    case L_RETIRING:
        switch (f->type) {
        case HC_FRAME_DATA:
            if (p->cb.frame != NULL) {
                p->cb.frame(p->ud, l->slot, f->payload, f->len);
            }
            return;
        case HC_FRAME_PING:
            if (f->len <= HC_FRAME_PING_MAX) {
                if (f->len >= REDIAL_MAGIC_LEN &&
                    memcmp(f->payload, REDIAL_MAGIC, REDIAL_MAGIC_LEN) == 0 && l->state == L_UP &&
                    !l->redial_asked) {
                    hc_log(HC_LOG_DEBUG, "peer asks for a fresh link (its credentials changed)",
                           HC_LS("peer", peer__link_peer(l)), HC_LU("link", l->id));
                    l->redial_asked = 1;
                    peer__replace_soon(p);
                }
                if (l->state == L_UP) {
                    peer__enqueue(l, HC_FRAME_PONG, f->payload, f->len);
                }
                return;
            }
            peer__link_close(l, "malformed frame: PING payload too large", 0);
            return;
        case HC_FRAME_PONG:
            return;
        default:
            break;
        }
        break;
    default:
        break;
    }
    snprintf(reason, sizeof(reason), "unexpected frame type %u %s", f->type,
             l->state == L_UP ? "after the handshake" : "during the handshake");
    peer__link_close(l, reason, l->state != L_UP && l->state != L_RETIRING);
}

/* Parses and dispatches every complete frame in l->rx. */
static void process_rx(link_t *l)
{
    hc_peers_t *p = l->p;
    size_t off = 0;
    while (l->state != L_CLOSING && !p->closing) {
        int authed = l->state == L_UP || l->state == L_RETIRING;
        size_t limit = authed ? p->max_frame : HC_PEER_HANDSHAKE_MAX;
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
            peer__link_close(l, reason, !authed);
            break;
        }
        if (r == 0) {
            break;
        }
        on_frame(l, &f);
        off += f.frame_len;
    }
    if (off > 0 && l->state != L_CLOSING) {
        memmove(l->rx, l->rx + off, l->rx_len - off);
        l->rx_len -= off;
    }
}

/* Makes room for `extra` more bytes in l->rx. The parser runs after every append and rejects
 * a declared length over the limit, so rx stays below one maximal frame plus one chunk. */
static int rx_reserve(link_t *l, size_t extra)
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

static void transport_ready(link_t *l)
{
    peer__send_hello(l);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    link_t *l = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)l->p->rbuf, PEER_READ_CHUNK);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    link_t *l = stream->data;
    hc_peers_t *p = l->p;
    (void)buf;
    if (l->state == L_CLOSING || p->closing) {
        return;
    }
    if (nread < 0) {
        char reason[128];
        if (nread == UV_EOF && l->state == L_UP && awaiting_replacement(l)) {
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
        peer__link_close(l, reason, 0);
        return;
    }
    if (nread == 0) {
        return;
    }
    l->last_rx_ms = uv_now(p->loop);
    if (l->rx_total == 0) {
        int tlsish = hc_tls_looks_like_tls(p->rbuf[0]);
        if (l->tls != NULL && !tlsish) {
            peer__link_close(l,
                             l->dialer
                                 ? "peer does not speak TLS (plaintext peer port? check CACHE_TLS)"
                                 : "plaintext connection to TLS peer port",
                             1);
            return;
        }
        if (l->tls == NULL && tlsish) {
            peer__link_close(l, "TLS connection to plaintext peer port (check CACHE_TLS)", 1);
            return;
        }
    }
    l->rx_total += (uint64_t)nread;
    if (l->tls == NULL) {
        if (rx_reserve(l, (size_t)nread) != 0) {
            peer__link_close(l, "out of memory", 0);
            return;
        }
        memcpy(l->rx + l->rx_len, p->rbuf, (size_t)nread);
        l->rx_len += (size_t)nread;
        process_rx(l);
        return;
    }
    if (hc_tls_conn_feed(l->tls, p->rbuf, (size_t)nread) != 0) {
        peer__link_close(l, "out of memory", 0);
        return;
    }
    if (!hc_tls_conn_done(l->tls)) {
        int hs = hc_tls_conn_handshake(l->tls);
        if (hs < 0) {
            char reason[300];
            snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
            peer__link_close(l, reason, 1);
            return;
        }
        if (hc_tls_conn_pending(l->tls) > 0) {
            peer__want_flush(p);
        }
        if (hs == 0) {
            return;
        }
        transport_ready(l);
        if (l->state == L_CLOSING) {
            return;
        }
    }
    for (;;) {
        if (rx_reserve(l, TLS_READ_CHUNK) != 0) {
            peer__link_close(l, "out of memory", 0);
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
                peer__link_close(l, reason, 0);
            } else {
                snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
                peer__link_close(l, reason, l->state != L_UP && l->state != L_RETIRING);
            }
            return;
        }
        l->rx_len += (size_t)n;
        process_rx(l);
        if (l->state == L_CLOSING || p->closing) {
            return;
        }
    }
    if (l->state == L_UP && hc_tls_conn_pending(l->tls) > 0) {
        peer__want_flush(p);
    }
}

/* The peer closed l, our active link, while another link to the same peer incarnation is past
 * its Hello: the peer retired l as a duplicate and the other link is about to authenticate on
 * our side. The owner sees no down/up: l stays the active link (its queue waits) until the
 * replacement comes up (link_up retires l) or fails (peer__link_close reports l down). */
static int awaiting_replacement(link_t *l)
{
    hc_peers_t *p = l->p;
    for (link_t *c = p->links; c != NULL; c = c->next) {
        if (c != l && c->slot == l->slot && c->state == L_AUTH &&
            c->peer_incarnation == l->peer_incarnation) {
            uv_read_stop((uv_stream_t *)&l->tcp);
            l->state = L_RETIRING;
            l->peer_eof = 1;
            l->retired_ms = uv_now(p->loop);
            return 1;
        }
    }
    return 0;
}

/* TCP is connected (dialed or accepted): start TLS or the Hello. */
void peer__link_start(link_t *l)
{
    hc_peers_t *p = l->p;
    uv_tcp_nodelay(&l->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        peer__format_addr((struct sockaddr *)&ss, l->local, sizeof(l->local));
    }
    int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (rc != 0) {
        peer__link_close(l, uv_strerror(rc), 0);
        return;
    }
    if (p->cfg->tls) {
        const char *host = l->dialer ? p->slots[l->slot]->host : NULL;
        if (hc_tls_conn_new(p->tls, l->dialer, host, &l->tls) != 0) {
            peer__link_close(l, "out of memory", 0);
            return;
        }
        l->state = L_TLS;
        if (l->dialer) {
            int hs = hc_tls_conn_handshake(l->tls);
            if (hs < 0) {
                char reason[300];
                snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
                peer__link_close(l, reason, 1);
                return;
            }
            peer__want_flush(p);
        }
        return;
    }
    l->state = L_TLS; /* not used without TLS: straight to the Hello */
    transport_ready(l);
}

/* ---- liveness ---- */

void peer__on_tick(uv_timer_t *t)
{
    hc_peers_t *p = t->data;
    uint64_t now = uv_now(p->loop);
    for (link_t *l = p->links, *next; l != NULL; l = next) {
        next = l->next;
        char reason[128];
        if (l->state == L_CLOSING) {
            if (!uv_is_closing((uv_handle_t *)&l->tcp) && now - l->closing_ms > SOFT_CLOSE_MS) {
                uv_close((uv_handle_t *)&l->tcp, peer__link_handle_closed);
            }
        } else if (l->state == L_RETIRING) {
            if (now - l->retired_ms > p->dead_timeout_ms) {
                peer__link_close(l, "duplicate link retired (no EOF from the peer)", 0);
            }
        } else if (l->state != L_UP) {
            if (now - l->created_ms > p->handshake_timeout_ms) {
                int connecting = l->state == L_CONNECTING;
                hc_admit_timed_out(&p->admit, &l->adm, now); /* counts an accepted one */
                snprintf(reason, sizeof(reason), "%s not completed within %u ms",
                         connecting ? "connect" : "handshake", p->handshake_timeout_ms);
                peer__link_close(l, reason, !connecting);
            }
        } else if (now - l->last_rx_ms > p->dead_timeout_ms) {
            snprintf(reason, sizeof(reason), "no traffic for %" PRIu64 " ms (dead link)",
                     now - l->last_rx_ms);
            peer__link_close(l, reason, 0);
        } else if (now - l->last_ping_ms >= p->keepalive_ms) {
            uint8_t ping[8];
            for (int i = 0; i < 8; i++) {
                ping[i] = (uint8_t)(now >> (56 - 8 * i));
            }
            peer__enqueue(l, HC_FRAME_PING, ping, sizeof(ping));
            l->last_ping_ms = now;
        }
        if (p->closing) {
            return;
        }
    }
    peer__replace_step(p);
}
