/* peer_link.h: one peer connection on the loop, the bottom of the peer layer: TCP, TLS, frames
 * in (reads, bounded parsing) and out (a send queue written once per loop turn), retiring (our
 * write side shut, reading on until the peer's EOF), closing, and liveness (timeouts, keepalive
 * PINGs). It knows no peer names, slots or tokens: its owner (the peers table, peer_int.h)
 * advances the handshake states and hears back through peer_link_cb_t. */
#ifndef HC_PEER_LINK_H
#define HC_PEER_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "admit.h"
#include "frame.h"
#include "tls.h"

#define PEER_READ_CHUNK (64 * 1024) /* one libuv read */

typedef struct txframe txframe_t; /* one queued frame (peer_link.c) */

/* The link layer sets L_CONNECTING, L_TLS, L_RETIRING and L_CLOSING; the owner's handshake moves
 * a link through L_HELLO and L_AUTH to L_UP. L_UP and L_RETIRING are "authenticated": DATA up to
 * max_frame is read, no handshake timeout. */
typedef enum {
    L_CONNECTING, /* dialer: TCP connect in progress */
    L_TLS,        /* TLS handshake */
    L_HELLO,      /* our Hello sent, waiting for the peer's */
    L_AUTH,       /* our Auth sent, waiting for the peer's */
    L_UP,         /* authenticated */
    L_RETIRING, /* authenticated duplicate: our write side is shut, reading until the peer's EOF */
    L_CLOSING,
} lstate_t;

typedef struct peer_link peer_link_t;
typedef struct peer_net peer_net_t;

/* What a link tells its owner. They run on the loop; the owner may close the link (or close
 * everything, peer_net_close) from inside any of them. */
typedef struct {
    /* One complete frame, within the bound of the link's state; valid during the call only. */
    void (*frame)(peer_link_t *l, const hc_frame_t *f);
    /* The transport is ready (TCP, or TCP + TLS): the owner starts its handshake. */
    void (*ready)(peer_link_t *l);
    /* l was taken out of service (peer_link_close; it was in state `was`), before its socket
     * closes: the owner reports and logs as it needs to. */
    void (*closing)(peer_link_t *l, lstate_t was, const char *reason, int refused);
    /* The peer closed l while it was L_UP. 1: hold l as retiring (no more reads; the owner
     * closes it later), 0: close it ("connection closed by the peer"). */
    int (*hold_on_eof)(peer_link_t *l);
    /* A handle of the net closed: a link's socket (l: the link layer is done with it and the
     * owner frees it now), or the flush handle after peer_net_close (l is NULL). */
    void (*closed)(peer_net_t *net, peer_link_t *l);
} peer_link_cb_t;

/* Every link of one owner, and what they share. The owner sets cb, data, tls, admit and the
 * limits (zeroed struct), peer_net_init the loop and the flush handle; tls and the limits may
 * change while links exist (new values apply to what starts, or is checked, afterwards). */
struct peer_net {
    uv_loop_t *loop;
    peer_link_cb_t cb;
    void *data; /* the owner's */
    /* The TLS context new links start with; NULL: plaintext. Borrowed: the owner holds it. */
    hc_tls_ctx_t *tls;
    hc_admit_t *admit; /* the gate of accepted links not authenticated yet (borrowed) */
    size_t max_frame;  /* payload bound of an authenticated link's frames */
    uint32_t keepalive_ms, dead_timeout_ms, handshake_timeout_ms;

    peer_link_t *links; /* every link whose socket is not closed yet */
    uv_prepare_t flush; /* writes what the links queued, once per loop turn */
    int closing;        /* peer_net_close was called */
    /* every read lands here and is consumed (copied, or fed to TLS) before the next one: one
     * buffer for every link, so an unauthenticated connection costs no read buffer */
    uint8_t rbuf[PEER_READ_CHUNK];
};

/* One connection. Embedded in the owner's record, zeroed before peer_link_init. */
struct peer_link {
    peer_net_t *net;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    peer_link_t *prev, *next; /* net->links */
    lstate_t state;
    int dialer;
    const char *host; /* dialer: the host the peer's certificate must name (borrowed) */
    char addr[64];    /* the peer's address of the TCP connection, "?" until known */
    char local[64];   /* ours */
    uint64_t created_ms, last_rx_ms, last_ping_ms, closing_ms, retired_ms;
    uint64_t rx_total;
    hc_tls_conn_t *tls;
    int close_after_write;
    int shutdown_pending; /* retiring: shut our write side once the write in flight is done */
    int peer_eof;         /* retiring because the peer retired it first (see hold_on_eof) */

    uint8_t *rx; /* plaintext not yet parsed into frames */
    size_t rx_len, rx_cap;

    txframe_t *q_head, *q_tail; /* not yet written */
    size_t q_bytes;
    int writing;         /* write_req in flight */
    txframe_t *w_frames; /* frames of the write in flight (plaintext links) */
    uv_buf_t *w_bufs;
    uint8_t *w_cipher; /* ciphertext of the write in flight (TLS links) */
    size_t w_bytes;    /* plaintext bytes in flight */

    hc_admit_conn_t adm; /* accepted: pending in net->admit until authenticated */
};

/* ---- the net ---- */

/* Initialises the flush handle (one handle of the owner's loop until peer_net_close). */
void peer_net_init(peer_net_t *net, uv_loop_t *loop);
/* Liveness, from the owner's periodic timer: closes links past their handshake timeout, silent
 * authenticated links (dead_timeout) and retired links the peer never closed; sends keepalive
 * PINGs; finishes closing links whose last TLS alert could not be flushed. */
void peer_net_tick(peer_net_t *net);
/* Closes every link socket and the flush handle; no callback but `closed` runs after this. */
void peer_net_close(peer_net_t *net);

/* "ip:port" or "[ip6]:port" of a socket address, for logs and status. */
void peer_format_addr(const struct sockaddr *sa, char *out, size_t len);

/* ---- one link ---- */

/* Adds l (zeroed) to net: TCP handle initialised, state L_CONNECTING. 0 or a libuv error (l
 * is then not part of net). */
int peer_link_init(peer_net_t *net, peer_link_t *l, int dialer);
/* Accepts a connection from `server` into l and notes the peer's address. On failure l is
 * closed without a report (only `closed` runs) and the libuv error returned. */
int peer_link_accept(peer_link_t *l, uv_stream_t *server);
/* Dialer: connects l to `sa` (the peer's certificate must name `host`, borrowed until the link
 * is freed); peer_link_start follows by itself. On failure l is closed. */
void peer_link_connect(peer_link_t *l, const struct sockaddr *sa, const char *host);
/* TCP is connected (an accepted link): start TLS, or report `ready` at once. */
void peer_link_start(peer_link_t *l);
/* Appends one frame to l's queue (payload copied); it is written on the next loop turn.
 * 0 or HC_ENOMEM. The queue is unbounded here: the owner bounds what it sends. */
int peer_link_send(peer_link_t *l, uint8_t type, const void *payload, size_t len);
/* Bytes queued and in flight on l. */
size_t peer_link_queued(const peer_link_t *l);
/* Moves the DATA frames queued on `from` (not written yet) to the tail of `to`'s queue; the
 * handshake frames stay on `from`. */
void peer_link_hand_over(peer_link_t *from, peer_link_t *to);
/* Retires an authenticated l: after the write in flight, the rest of its queue is written and
 * our write side shut down; frames the peer still sends arrive until its EOF. */
void peer_link_retire(peer_link_t *l);
/* Takes l out of service: `closing` runs, then the socket closes (after flushing a pending TLS
 * alert when refused). Safe to call more than once. */
void peer_link_close(peer_link_t *l, const char *reason, int refused);

#endif
