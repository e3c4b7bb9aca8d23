/* peer_int.h: the state of an hc_peers_t shared by the peer layer's files (peer.c,
 * peer_link.c, peer_handshake.c); not part of the interface, which is peer.h. */
#ifndef HC_PEER_INT_H
#define HC_PEER_INT_H

#include "peer.h"
#include "peer_auth.h"

#define TOKEN_KEY       HC_PEER_TOKEN_KEY
#define HASH_BYTES      HC_PEER_HASH_BYTES
#define PEER_READ_CHUNK (64 * 1024) /* one libuv read */
/* A PING payload that asks the receiver (the lower-named node) to replace this link. Older
 * nodes just echo it in a PONG, which is ignored. */
#define REDIAL_MAGIC     "hacache-redial-1"
#define REDIAL_MAGIC_LEN (sizeof(REDIAL_MAGIC) - 1)

/* One queued frame: header and payload, contiguous. */
typedef struct txframe {
    struct txframe *next;
    size_t len;
    uint8_t data[];
} txframe_t;

typedef enum {
    L_CONNECTING, /* dialer: TCP connect in progress */
    L_TLS,        /* TLS handshake */
    L_HELLO,      /* our Hello sent, waiting for the peer's */
    L_AUTH,       /* our Auth sent, waiting for the peer's */
    L_UP,         /* authenticated */
    L_RETIRING, /* authenticated duplicate: our write side is shut, reading until the peer's EOF */
    L_CLOSING,
} lstate_t;

typedef struct slot slot_t;
typedef struct link link_t;

struct link {
    hc_peers_t *p;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    link_t *prev, *next; /* p->links */
    lstate_t state;
    int dialer;
    int slot; /* peer index; -1 until an accepted link's Hello names it */
    char addr[64];
    uint64_t created_ms, last_rx_ms, last_ping_ms, closing_ms, retired_ms;
    uint64_t rx_total;
    hc_tls_conn_t *tls;
    int close_after_write;
    int shutdown_pending; /* retiring: shut our write side once the write in flight is done */
    int peer_eof;         /* retiring because the peer retired it first (see on_read) */

    uint8_t *rx; /* plaintext not yet parsed into frames */
    size_t rx_len, rx_cap;

    txframe_t *q_head, *q_tail; /* not yet written */
    size_t q_bytes;
    int writing;         /* write_req in flight */
    txframe_t *w_frames; /* frames of the write in flight (plaintext links) */
    uv_buf_t *w_bufs;
    uint8_t *w_cipher; /* ciphertext of the write in flight (TLS links) */
    size_t w_bytes;    /* plaintext bytes in flight, counted against max_queue */

    /* handshake */
    uint8_t my_nonce[HC_NONCE_BYTES], peer_nonce[HC_NONCE_BYTES];
    uint8_t my_hello_hash[HASH_BYTES], peer_hello_hash[HASH_BYTES];
    char peer_name[HC_NODE_NAME_MAX + 1];
    uint64_t peer_incarnation;
    uint32_t version;

    /* credential reloads */
    uint64_t id;                 /* per-process link number, shown in status and logs */
    uint64_t gen;                /* p->cred_gen when the link was created */
    char local[64];              /* our address of the TCP connection */
    uint64_t up_ms;              /* when it authenticated */
    int replacement;             /* dialed to replace the slot's active link */
    int redial_asked;            /* the higher-named peer asked us to replace it */
    uint64_t revoked_ms;         /* a reload no longer accepts the peer's credentials; 0 = no */
    uint8_t peer_key[TOKEN_KEY]; /* the accepted token key the peer's proof matched */
    char revoke_reason[200];

    hc_admit_conn_t adm; /* accepted: pending in p->admit until authenticated */
};

struct slot {
    hc_peers_t *p;
    int index;
    char name[HC_NODE_NAME_MAX + 1]; /* host:port as formatted from HA_HOSTS */
    char host[256];
    uint16_t port;
    int in_config; /* from my HA_HOSTS: we dial it */
    int self;
    link_t *link; /* the authenticated link in use, or NULL */
    uint32_t version;
    uv_timer_t dial_timer;
    int timer_open;
    link_t *dial_link; /* our outbound attempt in progress */
    uv_getaddrinfo_t gai;
    int resolving;
    uint32_t attempts;         /* failed dials since the last link up */
    char last_refusal[256];    /* to log a repeated refusal once */
    char last_dial_error[256]; /* likewise for unreachable */
    /* replacement of a link authenticated with old credentials (lower-named side dials) */
    int replace_wanted;           /* the next dial is a replacement (s->link stays) */
    uint32_t replace_failures;    /* since the last successful replacement */
    uint64_t replace_next_ms;     /* earliest next replacement dial */
    uint64_t replace_failed_ms;   /* last failed replacement */
    uint64_t redial_ask_next_ms;  /* higher-named side: next redial request */
    char last_replace_error[256]; /* to log a repeated failure once */
};

struct hc_peers {
    uv_loop_t *loop;
    const hc_config_t *cfg;
    hc_tls_ctx_t *tls;
    hc_peers_cb_t cb;
    void *ud;
    uint32_t proto_min, proto_max;
    size_t max_frame, max_queue;
    uint32_t keepalive_ms, dead_timeout_ms, handshake_timeout_ms, backoff_min_ms, backoff_max_ms;

    char me[HC_NODE_NAME_MAX + 1];
    char **host_names; /* my HA_HOSTS entries formatted, for my Hello */
    size_t n_hosts;
    uint8_t (*keys)[TOKEN_KEY]; /* one per accepted token; [0] is proven */
    size_t n_keys;
    uint64_t incarnation;

    slot_t **slots;
    int n_slots, cap_slots;
    link_t *links;

    uv_tcp_t listener;
    uv_timer_t tick;
    uv_prepare_t flush;
    int listener_open;
    hc_admit_t admit; /* inbound connections not authenticated yet: bounded, oldest evicted */
    char last_anon_refusal[320];

    /* credential reloads */
    uint64_t cred_gen; /* bumped by every reload that changed credentials */
    uint64_t next_link_id;
    link_t *replacing;        /* the one replacement dial in progress, or NULL */
    uv_timer_t replace_timer; /* runs peer__replace_step soon after something changed */
    uint64_t replaced_total, replace_failed_total, revoked_total;

    /* every read lands here and is consumed (copied, or fed to TLS) before the next one: one
     * buffer for every link, so an unauthenticated connection costs no read buffer */
    uint8_t rbuf[PEER_READ_CHUNK];

    int closing;
    int open; /* handles not yet closed + getaddrinfo requests pending */
    void (*close_cb)(void *ud);
    void *close_ud;
};

/* ---- peer_link.c: one link ---- */

/* A new link (TCP handle initialised, state L_CONNECTING) in p->links; NULL when out of
 * memory. `slot` is -1 for an accepted link until its Hello names the peer. */
link_t *peer__link_new(hc_peers_t *p, int dialer, int slot);
/* TCP is connected (dialed or accepted): start TLS or the Hello. */
void peer__link_start(link_t *l);
/* Takes l out of service: reports and logs as its state requires, then closes the socket
 * (after flushing a pending TLS alert when refused). Safe to call more than once. */
void peer__link_close(link_t *l, const char *reason, int refused);
/* Every link socket closes through here (its data is the link, not the hc_peers_t). */
void peer__link_handle_closed(uv_handle_t *h);
/* The peer's name for logs: its slot's name, the name its Hello claimed, or "?". */
const char *peer__link_peer(const link_t *l);
/* Appends one frame to l's queue. Handshake and keepalive frames skip the queue bound. */
int peer__enqueue(link_t *l, uint8_t type, const void *payload, size_t len);
/* Links f (f->next == NULL) at the tail of l's queue. */
void peer__queue_push(link_t *l, txframe_t *f);
/* Starts one write with everything queued on l (and any TLS output). */
void peer__link_write(link_t *l);
/* Flushes every link's queue once, before the loop next polls. */
void peer__want_flush(hc_peers_t *p);
/* The periodic timer: handshake and dead-link timeouts, keepalive PINGs, replacements. */
void peer__on_tick(uv_timer_t *t);

/* ---- peer_handshake.c: Hello, Auth, link up ---- */

/* Transport ready (TCP, or TCP+TLS): send our Hello. */
void peer__send_hello(link_t *l);
/* The peer's Hello and Auth frames, in states L_HELLO and L_AUTH. */
void peer__on_hello(link_t *l, const uint8_t *payload, size_t len);
void peer__on_auth(link_t *l, const uint8_t *payload, size_t len);
/* Retiring link, no write in flight: write what is left, then shut down our write side. */
void peer__retire_flush(link_t *l);

/* ---- peer.c: closing, dialing, replacement, slots ---- */

/* One handle or getaddrinfo request of p is done; frees p after the last one once closing. */
void peer__handle_closed(hc_peers_t *p);
/* "ip:port" or "[ip6]:port" of a socket address, for logs and status. */
void peer__format_addr(const struct sockaddr *sa, char *out, size_t len);
/* Arms the slot's dial timer: at once, or with backoff after a failed dial. */
void peer__schedule_dial(slot_t *s, int after_failure);
/* A replacement dial for s failed: back off, log, and let the revoked link close. */
void peer__replacement_failed(slot_t *s, const char *reason);
/* One pass over the stale links (see peer.c); peer__replace_soon runs it on the next turn. */
void peer__replace_step(hc_peers_t *p);
void peer__replace_soon(hc_peers_t *p);
/* A new peer slot named `name` (host:port); NULL when out of memory. */
slot_t *peer__slot_add(hc_peers_t *p, const char *name, int in_config);

#endif
