/* peer.c: authenticated, framed peer links on a libuv loop (the design is in peer.h). */
#include "peer.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "hacache.h"
#include "log.h"
#include "util.h"

#define READ_CHUNK          (64 * 1024)
#define TLS_READ_CHUNK      (16 * 1024)
#define SOFT_CLOSE_MS       1000 /* how long a refused link may take to flush its last TLS alert */
#define TOKEN_KEY           32
#define HASH_BYTES          32
#define MAX_PENDING_INBOUND 64 /* inbound connections not yet authenticated */
/* Credential reloads (see peer.h, "Replacement"). */
#define REDIAL_ASK_MS       1000  /* how often the higher-named side repeats its request */
#define REVOKE_GRACE_MS     3000  /* a link whose peer lost its credentials closes this late */
#define REPLACE_BACKOFF_MIN 1000  /* after a failed replacement dial, doubling ... */
#define REPLACE_BACKOFF_MAX 30000 /* ... up to this */
/* A PING payload that asks the receiver (the lower-named node) to replace this link. Older
 * nodes just echo it in a PONG, which is ignored. */
static const char redial_magic[] = "hacache-redial-1";
#define REDIAL_MAGIC_LEN (sizeof(redial_magic) - 1)

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

    uint8_t *inbuf; /* READ_CHUNK bytes for libuv reads */
    uint8_t *rx;    /* plaintext not yet parsed into frames */
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
    int pending_full_logged;
    char last_anon_refusal[320];

    /* credential reloads */
    uint64_t cred_gen; /* bumped by every reload that changed credentials */
    uint64_t next_link_id;
    link_t *replacing;        /* the one replacement dial in progress, or NULL */
    uv_timer_t replace_timer; /* runs replace_step soon after something changed */
    uint64_t replaced_total, replace_failed_total, revoked_total;

    int closing;
    int open; /* handles not yet closed + getaddrinfo requests pending */
    void (*close_cb)(void *ud);
    void *close_ud;
};

static void link_close(link_t *l, const char *reason, int refused);
static void link_write(link_t *l);
static int awaiting_replacement(link_t *l);
static void retire_flush(link_t *l);
static void schedule_dial(slot_t *s, int after_failure);
static void want_flush(hc_peers_t *p);
static void link_handle_closed(uv_handle_t *h);
static void replacement_failed(slot_t *s, const char *reason);
static void replace_soon(hc_peers_t *p);

/* ---- helpers ---- */

static void be32(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

/* Do two "host:port" names denote the same HA_HOSTS entry (host case-insensitive)? */
static int same_node(const char *a, const char *b)
{
    char ha[256], hb[256];
    uint16_t pa, pb;
    if (hc_parse_hostport(a, ha, sizeof(ha), &pa) != 0 ||
        hc_parse_hostport(b, hb, sizeof(hb), &pb) != 0) {
        return strcasecmp(a, b) == 0;
    }
    return pa == pb && strcasecmp(ha, hb) == 0;
}

static slot_t *slot_by_name(hc_peers_t *p, const char *name)
{
    for (int i = 0; i < p->n_slots; i++) {
        if (same_node(p->slots[i]->name, name)) {
            return p->slots[i];
        }
    }
    return NULL;
}

static const char *link_peer(const link_t *l)
{
    if (l->slot >= 0) {
        return l->p->slots[l->slot]->name;
    }
    return l->peer_name[0] ? l->peer_name : "?";
}

static void handle_closed(hc_peers_t *p)
{
    if (--p->open == 0 && p->closing) {
        void (*cb)(void *) = p->close_cb;
        void *ud = p->close_ud;
        for (int i = 0; i < p->n_slots; i++) {
            free(p->slots[i]);
        }
        free(p->slots);
        for (size_t i = 0; i < p->n_hosts; i++) {
            free(p->host_names[i]);
        }
        free(p->host_names);
        sodium_memzero(p->keys, p->n_keys * TOKEN_KEY);
        free(p->keys);
        hc_tls_ctx_unref(p->tls);
        free(p);
        if (cb != NULL) {
            cb(ud);
        }
    }
}

/* Close callback of the listener, tick and flush handles (data is the hc_peers_t). */
static void on_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

/* Close callback of a slot's dial timer (data is the slot). */
static void on_slot_timer_closed(uv_handle_t *h)
{
    slot_t *s = h->data;
    handle_closed(s->p);
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
static void queue_push(link_t *l, txframe_t *f)
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
static int enqueue(link_t *l, uint8_t type, const void *payload, size_t len)
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
    want_flush(l->p);
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
            uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
        }
        return;
    }
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof(why), "write failed: %s", uv_strerror(status));
        link_close(l, why, 0);
        return;
    }
    if (l->state == L_RETIRING) {
        if (l->shutdown_pending) {
            retire_flush(l);
        }
        return;
    }
    if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
        want_flush(l->p);
    }
}

/* Starts one write with everything queued on l (and any TLS output). */
static void link_write(link_t *l)
{
    size_t nframes = 0;
    for (txframe_t *f = l->q_head; f != NULL; f = f->next) {
        nframes++;
    }
    size_t nbufs;
    if (l->tls != NULL) {
        for (txframe_t *f = l->q_head; f != NULL; f = f->next) {
            if (hc_tls_conn_write(l->tls, f->data, f->len) != 0) {
                link_close(l, hc_tls_conn_error(l->tls), 0);
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
            link_close(l, "out of memory", 0);
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
            link_close(l, "out of memory", 0);
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
        link_close(l, why, 0);
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
            link_write(l);
        }
    }
}

static void want_flush(hc_peers_t *p)
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
    hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_WARN, "peer link refused", HC_LS("peer", link_peer(l)),
           HC_LS("addr", l->addr), HC_LS("direction", dir), HC_LS("reason", reason));
}

/* Takes l out of service: reports and logs as its state requires, then closes the socket
 * (after flushing a pending TLS alert when refused). Safe to call more than once. */
static void link_close(link_t *l, const char *reason, int refused)
{
    hc_peers_t *p = l->p;
    if (l->state == L_CLOSING) {
        return;
    }
    lstate_t was = l->state;
    l->state = L_CLOSING;
    l->closing_ms = uv_now(p->loop);
    uv_read_stop((uv_stream_t *)&l->tcp);
    slot_t *s = l->slot >= 0 ? p->slots[l->slot] : NULL;

    if (p->replacing == l) {
        p->replacing = NULL;
    }
    if (!p->closing) {
        if (l->replacement && s != NULL && s->link != NULL && s->link != l && was != L_UP &&
            was != L_RETIRING) {
            replacement_failed(s, reason);
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
            hc_log(HC_LOG_DEBUG, "duplicate peer link closed", HC_LS("peer", link_peer(l)),
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
        replace_soon(p);
    }
    if (!p->closing && s != NULL && s->link != NULL && s->link->peer_eof && was != L_UP &&
        was != L_RETIRING) {
        int others = 0;
        for (link_t *c = p->links; c != NULL; c = c->next) {
            others |= c != l && c != s->link && c->slot == s->index && c->state == L_AUTH;
        }
        if (!others) {
            link_close(s->link, "connection closed by the peer", 0);
        }
    }
    /* p->closing must not schedule anything; a slot whose link (or attempt) ended redials */
    if (s != NULL && l->dialer && s->dial_link == l) {
        s->dial_link = NULL;
    }
    if (!p->closing && s != NULL && s->in_config && s->link == NULL && s->dial_link == NULL) {
        schedule_dial(s, was != L_UP && was != L_RETIRING);
    }

    if (!p->closing && refused && l->tls != NULL && hc_tls_conn_pending(l->tls) > 0) {
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
        uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
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
    free(l->inbuf);
    free(l->rx);
    hc_tls_conn_free(l->tls);
    free(l);
}

/* Every link socket closes through here (its data is the link, not the hc_peers_t). */
static void link_handle_closed(uv_handle_t *h)
{
    link_t *l = h->data;
    hc_peers_t *p = l->p;
    link_free(l);
    handle_closed(p);
}

static link_t *link_new(hc_peers_t *p, int dialer, int slot)
{
    link_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    l->inbuf = malloc(READ_CHUNK);
    if (l->inbuf == NULL || uv_tcp_init(p->loop, &l->tcp) != 0) {
        free(l->inbuf);
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

/* ---- handshake ---- */

static void hash32(const void *data, size_t len, uint8_t out[HASH_BYTES])
{
    crypto_generichash(out, HASH_BYTES, data, len, NULL, 0);
}

/* The token proof of the side `role` ('D' dialer, 'A' acceptor); see peer.h. */
static void auth_mac(const hc_peers_t *p, const uint8_t key[TOKEN_KEY], char role, const link_t *l,
                     const uint8_t *exporter, uint8_t out[HC_MAC_BYTES])
{
    static const char label[] = "hacache peer auth v1"; /* with its NUL */
    const char *dname = l->dialer ? p->me : l->peer_name;
    const char *aname = l->dialer ? l->peer_name : p->me;
    const uint8_t *dnonce = l->dialer ? l->my_nonce : l->peer_nonce;
    const uint8_t *anonce = l->dialer ? l->peer_nonce : l->my_nonce;
    const uint8_t *dhello = l->dialer ? l->my_hello_hash : l->peer_hello_hash;
    const uint8_t *ahello = l->dialer ? l->peer_hello_hash : l->my_hello_hash;
    uint8_t len4[4];
    uint8_t r = (uint8_t)role;
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, TOKEN_KEY, HC_MAC_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
    crypto_generichash_update(&st, &r, 1);
    crypto_generichash_update(&st, dnonce, HC_NONCE_BYTES);
    crypto_generichash_update(&st, anonce, HC_NONCE_BYTES);
    be32(len4, (uint32_t)strlen(dname));
    crypto_generichash_update(&st, len4, 4);
    crypto_generichash_update(&st, (const uint8_t *)dname, strlen(dname));
    be32(len4, (uint32_t)strlen(aname));
    crypto_generichash_update(&st, len4, 4);
    crypto_generichash_update(&st, (const uint8_t *)aname, strlen(aname));
    crypto_generichash_update(&st, dhello, HASH_BYTES);
    crypto_generichash_update(&st, ahello, HASH_BYTES);
    be32(len4, exporter ? HC_TLS_EXPORTER_BYTES : 0);
    crypto_generichash_update(&st, len4, 4);
    if (exporter != NULL) {
        crypto_generichash_update(&st, exporter, HC_TLS_EXPORTER_BYTES);
    }
    crypto_generichash_final(&st, out, HC_MAC_BYTES);
}

/* Transport ready (TCP, or TCP+TLS): send our Hello. */
static void send_hello(link_t *l)
{
    hc_peers_t *p = l->p;
    hc_hello_t h;
    memset(&h, 0, sizeof(h));
    h.proto_min = p->proto_min;
    h.proto_max = p->proto_max;
    snprintf(h.node, sizeof(h.node), "%s", p->me);
    h.hosts = p->host_names;
    h.n_hosts = p->n_hosts;
    snprintf(h.version, sizeof(h.version), "%s", HC_VERSION_STRING);
    randombytes_buf(l->my_nonce, sizeof(l->my_nonce));
    memcpy(h.nonce, l->my_nonce, HC_NONCE_BYTES);
    h.incarnation = p->incarnation;
    uint8_t *buf;
    size_t len;
    if (hc_hello_encode(&h, &buf, &len) != 0) {
        link_close(l, "out of memory", 0);
        return;
    }
    hash32(buf, len, l->my_hello_hash);
    int rc = enqueue(l, HC_FRAME_HELLO, buf, len);
    free(buf);
    if (rc != 0) {
        link_close(l, "out of memory", 0);
        return;
    }
    l->state = L_HELLO;
}

static int hello_lists(const hc_hello_t *h, const char *name)
{
    for (size_t i = 0; i < h->n_hosts; i++) {
        if (same_node(h->hosts[i], name)) {
            return 1;
        }
    }
    return 0;
}

static slot_t *slot_add(hc_peers_t *p, const char *name, int in_config);

static void on_hello(link_t *l, const uint8_t *payload, size_t len)
{
    hc_peers_t *p = l->p;
    hc_hello_t h;
    const char *why;
    char reason[1024];
    hash32(payload, len, l->peer_hello_hash);
    if (hc_hello_decode(payload, len, &h, &why) != 0) {
        snprintf(reason, sizeof(reason), "malformed Hello: %s", why);
        link_close(l, reason, 1);
        return;
    }
    snprintf(l->peer_name, sizeof(l->peer_name), "%s", h.node);
    memcpy(l->peer_nonce, h.nonce, HC_NONCE_BYTES);
    l->peer_incarnation = h.incarnation;
    uint32_t lo = h.proto_min > p->proto_min ? h.proto_min : p->proto_min;
    uint32_t hi = h.proto_max < p->proto_max ? h.proto_max : p->proto_max;
    slot_t *s = slot_by_name(p, h.node);
    int in_mine = s != NULL && s->in_config;
    int in_theirs = hello_lists(&h, p->me);
    reason[0] = '\0';
    if (lo > hi) {
        snprintf(reason, sizeof(reason),
                 "protocol versions do not overlap: mine [%u,%u], peer's [%u,%u]", p->proto_min,
                 p->proto_max, h.proto_min, h.proto_max);
    } else if (same_node(h.node, p->me)) {
        snprintf(reason, sizeof(reason), "peer claims my own name %s", p->me);
    } else if (!in_mine && !in_theirs) {
        snprintf(reason, sizeof(reason),
                 "peer %s is not in my HA_HOSTS and I (%s) am not in its HA_HOSTS", h.node, p->me);
    } else if (l->dialer && !same_node(h.node, p->slots[l->slot]->name)) {
        snprintf(reason, sizeof(reason), "dialed %s but the peer says it is %s",
                 p->slots[l->slot]->name, h.node);
    }
    hc_hello_free(&h);
    if (reason[0] != '\0') {
        link_close(l, reason, 1);
        return;
    }
    if (l->tls != NULL && !l->dialer) {
        /* the client certificate must name the node the Hello claims to be */
        char host[256];
        uint16_t port;
        if (hc_parse_hostport(l->peer_name, host, sizeof(host), &port) != 0 ||
            hc_tls_conn_check_name(l->tls, host) != 0) {
            snprintf(reason, sizeof(reason), "TLS: %s",
                     l->tls ? hc_tls_conn_error(l->tls) : "bad peer name");
            link_close(l, reason, 1);
            return;
        }
    }
    if (!l->dialer && s != NULL) {
        l->slot = s->index; /* a peer only in its own list gets a slot once authenticated */
    }
    l->version = hi;

    uint8_t exporter[HC_TLS_EXPORTER_BYTES], mac[HC_MAC_BYTES], *buf;
    size_t blen;
    if (l->tls != NULL && hc_tls_conn_exporter(l->tls, exporter) != 0) {
        link_close(l, "TLS exporter unavailable", 0);
        return;
    }
    auth_mac(p, p->keys[0], l->dialer ? 'D' : 'A', l, l->tls ? exporter : NULL, mac);
    if (hc_auth_encode(mac, &buf, &blen) != 0) {
        link_close(l, "out of memory", 0);
        return;
    }
    int rc = enqueue(l, HC_FRAME_AUTH, buf, blen);
    free(buf);
    if (rc != 0) {
        link_close(l, "out of memory", 0);
        return;
    }
    l->state = L_AUTH;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    link_t *l = req->data;
    if (status < 0 && status != UV_ECANCELED && l->state == L_RETIRING) {
        link_close(l, "duplicate link retired", 0);
    }
}

/* Retiring link, no write in flight: write what is left (handshake frames), then shut down our
 * write side (uv_shutdown waits for that write). */
static void retire_flush(link_t *l)
{
    l->shutdown_pending = 0;
    if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
        link_write(l);
        if (l->state != L_RETIRING) {
            return;
        }
    }
    if (uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, on_shutdown) != 0) {
        link_close(l, "duplicate link retired", 0);
    }
}

/* Retires the duplicate `drop` in favour of `keep`: frames not yet written move to keep, our
 * write side is shut once the write in flight (if any) is done, and frames the peer still sends
 * on it are delivered until its EOF (it retires the same link on its side). No frame written
 * before the switch is lost; frames may be reordered across the two links. */
static void link_retire(link_t *drop, link_t *keep)
{
    hc_peers_t *p = drop->p;
    /* DATA moves to keep; handshake frames stay, so the peer can finish authenticating this
     * link and retire it by the same rule */
    txframe_t *f = drop->q_head, *next;
    drop->q_head = drop->q_tail = NULL;
    drop->q_bytes = 0;
    for (; f != NULL; f = next) {
        next = f->next;
        f->next = NULL;
        queue_push(f->data[4] == HC_FRAME_DATA ? keep : drop, f);
    }
    if (keep->q_head != NULL) {
        want_flush(p);
    }
    if (drop->peer_eof) {
        link_close(drop, "duplicate link retired", 0);
        return;
    }
    drop->state = L_RETIRING;
    drop->retired_ms = uv_now(p->loop);
    drop->shutdown_req.data = drop;
    hc_log(HC_LOG_DEBUG, "duplicate peer link retired", HC_LS("peer", link_peer(drop)),
           HC_LS("addr", drop->addr), HC_LS("direction", drop->dialer ? "dialed" : "accepted"));
    if (drop->writing) {
        drop->shutdown_pending = 1; /* on_write continues */
    } else {
        retire_flush(drop);
    }
}

/* Which of two authenticated links to the same peer incarnation to keep (see peer.h). */
static link_t *preferred(hc_peers_t *p, link_t *a, link_t *b)
{
    if (a->dialer == b->dialer) {
        return a->created_ms >= b->created_ms ? a : b; /* the older one is likely dead */
    }
    int me_first = strcasecmp(p->me, a->peer_name) < 0;
    link_t *mine = a->dialer ? a : b;
    return me_first ? mine : (mine == a ? b : a);
}

static void link_up(link_t *l)
{
    hc_peers_t *p = l->p;
    slot_t *s = p->slots[l->slot];
    l->state = L_UP;
    if (s->dial_link == l) {
        s->dial_link = NULL;
    }
    l->up_ms = uv_now(p->loop);
    int was_replacement = l->replacement;
    if (p->replacing == l) {
        p->replacing = NULL;
    }
    link_t *old = s->link;
    if (old != NULL && old->peer_incarnation == l->peer_incarnation) {
        link_t *keep = preferred(p, l, old);
        link_t *drop = keep == l ? old : l;
        int stale = old->gen < p->cred_gen || old->redial_asked || old->revoked_ms != 0;
        if (keep == l) {
            s->link = l; /* the peer stays up for the owner */
            s->version = l->version;
        }
        if (keep == l && (was_replacement || stale)) {
            /* make-before-break: the new link carries the traffic from now on, the old one
             * is retired below (its last writes still arrive, the owner sees no down/up) */
            p->replaced_total++;
            s->replace_wanted = 0;
            s->replace_failures = 0;
            s->last_replace_error[0] = '\0';
            hc_log(HC_LOG_INFO, "peer link replaced", HC_LS("peer", s->name),
                   HC_LU("old_link", old->id), HC_LU("new_link", l->id), HC_LS("addr", l->addr),
                   HC_LS("direction", l->dialer ? "dialed" : "accepted"),
                   HC_LU("generation", l->gen),
                   HC_LS("tls_subject", l->tls ? hc_tls_conn_peer_subject(l->tls) : "(plaintext)"));
        } else if (was_replacement) {
            s->replace_wanted = 0;
            replacement_failed(s, "the peer kept the old link (tie-break)");
        }
        if (keep == l) {
            s->redial_ask_next_ms = 0; /* a new link that is stale already is asked for at once */
        }
        link_retire(drop, keep);
        replace_soon(p); /* the next stale link, one at a time */
        return;
    }
    s->replace_wanted = 0;
    if (was_replacement) {
        replace_soon(p);
    }
    if (old != NULL) {
        link_close(old, "replaced by a new connection from the restarted peer", 0);
        if (p->closing || l->state != L_UP) {
            return; /* the owner closed everything in its down callback */
        }
    }
    s->link = l;
    s->version = l->version;
    if (s->timer_open) {
        uv_timer_stop(&s->dial_timer);
    }
    hc_log(HC_LOG_INFO, "peer link up", HC_LS("peer", s->name), HC_LS("addr", l->addr),
           HC_LS("direction", l->dialer ? "dialed" : "accepted"), HC_LU("version", l->version),
           HC_LU("failed_attempts", s->attempts), HC_LU("link", l->id),
           HC_LS("tls_subject", l->tls ? hc_tls_conn_peer_subject(l->tls) : "(plaintext)"));
    s->attempts = 0;
    s->last_refusal[0] = '\0';
    s->last_dial_error[0] = '\0';
    if (p->cb.up != NULL) {
        p->cb.up(p->ud, s->index, l->version);
    }
}

static void on_auth(link_t *l, const uint8_t *payload, size_t len)
{
    hc_peers_t *p = l->p;
    uint8_t got[HC_MAC_BYTES], want[HC_MAC_BYTES], exporter[HC_TLS_EXPORTER_BYTES];
    if (hc_auth_decode(payload, len, got) != 0) {
        link_close(l, "malformed Auth", 1);
        return;
    }
    if (l->tls != NULL && hc_tls_conn_exporter(l->tls, exporter) != 0) {
        link_close(l, "TLS exporter unavailable", 0);
        return;
    }
    int ok = 0;
    for (size_t i = 0; i < p->n_keys; i++) {
        auth_mac(p, p->keys[i], l->dialer ? 'A' : 'D', l, l->tls ? exporter : NULL, want);
        if (sodium_memcmp(got, want, HC_MAC_BYTES) == 0) {
            ok = 1;
            memcpy(l->peer_key, p->keys[i], TOKEN_KEY); /* rechecked when tokens reload */
        }
    }
    if (!ok) {
        link_close(l, "wrong token: its proof matches none of my CACHE_AUTH_TOKEN values", 1);
        return;
    }
    if (l->slot < 0) {
        slot_t *s = slot_by_name(p, l->peer_name);
        if (s == NULL && (s = slot_add(p, l->peer_name, 0)) == NULL) {
            link_close(l, "out of memory", 0);
            return;
        }
        l->slot = s->index;
    }
    link_up(l);
}

/* ---- frames in ---- */

static void on_frame(link_t *l, const hc_frame_t *f)
{
    hc_peers_t *p = l->p;
    char reason[128];
    switch (l->state) {
    case L_HELLO:
        if (f->type == HC_FRAME_HELLO) {
            on_hello(l, f->payload, f->len);
            return;
        }
        break;
    case L_AUTH:
        if (f->type == HC_FRAME_AUTH) {
            on_auth(l, f->payload, f->len);
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
                    memcmp(f->payload, redial_magic, REDIAL_MAGIC_LEN) == 0 && l->state == L_UP &&
                    !l->redial_asked) {
                    hc_log(HC_LOG_DEBUG, "peer asks for a fresh link (its credentials changed)",
                           HC_LS("peer", link_peer(l)), HC_LU("link", l->id));
                    l->redial_asked = 1;
                    replace_soon(p);
                }
                if (l->state == L_UP) {
                    enqueue(l, HC_FRAME_PONG, f->payload, f->len);
                }
                return;
            }
            link_close(l, "malformed frame: PING payload too large", 0);
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
    link_close(l, reason, l->state != L_UP && l->state != L_RETIRING);
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
            link_close(l, reason, !authed);
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
    size_t cap = l->rx_cap ? l->rx_cap * 2 : READ_CHUNK;
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
    send_hello(l);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    link_t *l = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)l->inbuf, READ_CHUNK);
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
        link_close(l, reason, 0);
        return;
    }
    if (nread == 0) {
        return;
    }
    l->last_rx_ms = uv_now(p->loop);
    if (l->rx_total == 0) {
        int tlsish = hc_tls_looks_like_tls(l->inbuf[0]);
        if (l->tls != NULL && !tlsish) {
            link_close(l,
                       l->dialer ? "peer does not speak TLS (plaintext peer port? check CACHE_TLS)"
                                 : "plaintext connection to TLS peer port",
                       1);
            return;
        }
        if (l->tls == NULL && tlsish) {
            link_close(l, "TLS connection to plaintext peer port (check CACHE_TLS)", 1);
            return;
        }
    }
    l->rx_total += (uint64_t)nread;
    if (l->tls == NULL) {
        if (rx_reserve(l, (size_t)nread) != 0) {
            link_close(l, "out of memory", 0);
            return;
        }
        memcpy(l->rx + l->rx_len, l->inbuf, (size_t)nread);
        l->rx_len += (size_t)nread;
        process_rx(l);
        return;
    }
    if (hc_tls_conn_feed(l->tls, l->inbuf, (size_t)nread) != 0) {
        link_close(l, "out of memory", 0);
        return;
    }
    if (!hc_tls_conn_done(l->tls)) {
        int hs = hc_tls_conn_handshake(l->tls);
        if (hs < 0) {
            char reason[300];
            snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
            link_close(l, reason, 1);
            return;
        }
        if (hc_tls_conn_pending(l->tls) > 0) {
            want_flush(p);
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
            link_close(l, "out of memory", 0);
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
                link_close(l, reason, 0);
            } else {
                snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
                link_close(l, reason, l->state != L_UP && l->state != L_RETIRING);
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
        want_flush(p);
    }
}

/* The peer closed l, our active link, while another link to the same peer incarnation is past
 * its Hello: the peer retired l as a duplicate and the other link is about to authenticate on
 * our side. The owner sees no down/up: l stays the active link (its queue waits) until the
 * replacement comes up (link_up retires l) or fails (link_close reports l down). */
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
static void format_addr(const struct sockaddr *sa, char *out, size_t len);

static void link_start(link_t *l)
{
    hc_peers_t *p = l->p;
    uv_tcp_nodelay(&l->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        format_addr((struct sockaddr *)&ss, l->local, sizeof(l->local));
    }
    int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (rc != 0) {
        link_close(l, uv_strerror(rc), 0);
        return;
    }
    if (p->cfg->tls) {
        const char *host = l->dialer ? p->slots[l->slot]->host : NULL;
        if (hc_tls_conn_new(p->tls, l->dialer, host, &l->tls) != 0) {
            link_close(l, "out of memory", 0);
            return;
        }
        l->state = L_TLS;
        if (l->dialer) {
            int hs = hc_tls_conn_handshake(l->tls);
            if (hs < 0) {
                char reason[300];
                snprintf(reason, sizeof(reason), "TLS: %s", hc_tls_conn_error(l->tls));
                link_close(l, reason, 1);
                return;
            }
            want_flush(p);
        }
        return;
    }
    l->state = L_TLS; /* not used without TLS: straight to the Hello */
    transport_ready(l);
}

static void format_addr(const struct sockaddr *sa, char *out, size_t len)
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

static void on_accept(uv_stream_t *server, int status)
{
    hc_peers_t *p = server->data;
    if (status != 0 || p->closing) {
        if (status != 0) {
            hc_log(HC_LOG_WARN, "peer accept failed", HC_LS("error", uv_strerror(status)));
        }
        return;
    }
    link_t *l = link_new(p, 0, -1);
    if (l == NULL) {
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        l->state = L_CLOSING;
        uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
        return;
    }
    /* unauthenticated connections hold buffers: bound how many may exist at once */
    int pending = 0;
    for (link_t *o = p->links; o != NULL; o = o->next) {
        pending += !o->dialer && o->state < L_UP;
    }
    if (pending > MAX_PENDING_INBOUND) {
        if (!p->pending_full_logged) {
            hc_log(HC_LOG_WARN, "too many unauthenticated peer connections, refusing new ones",
                   HC_LI("limit", MAX_PENDING_INBOUND));
            p->pending_full_logged = 1;
        }
        l->state = L_CLOSING;
        uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
        return;
    }
    p->pending_full_logged = 0;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        format_addr((struct sockaddr *)&ss, l->addr, sizeof(l->addr));
    }
    link_start(l);
}

/* ---- dialing ---- */

static void on_connect(uv_connect_t *req, int status)
{
    link_t *l = req->data;
    if (status == UV_ECANCELED || l->state == L_CLOSING || l->p->closing) {
        return;
    }
    if (status != 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(status));
        link_close(l, reason, 0);
        return;
    }
    link_start(l);
}

static void dial_failed(slot_t *s, const char *reason)
{
    if (s->replace_wanted && s->link != NULL) {
        replacement_failed(s, reason);
        return;
    }
    int repeated = s->last_dial_error[0] != '\0';
    snprintf(s->last_dial_error, sizeof(s->last_dial_error), "%s", reason);
    hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_INFO, "peer unreachable, retrying",
           HC_LS("peer", s->name), HC_LS("reason", reason), HC_LU("attempt", s->attempts + 1));
    schedule_dial(s, 1);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    slot_t *s = req->data;
    hc_peers_t *p = s->p;
    s->resolving = 0;
    if (p->closing) {
        uv_freeaddrinfo(res);
        handle_closed(p);
        return;
    }
    p->open--; /* the request is done; p is not closing, so nothing completes here */
    if (status != 0 || res == NULL) {
        char reason[300];
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", s->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        dial_failed(s, reason);
        return;
    }
    int replacing = s->replace_wanted && s->link != NULL;
    if (s->link != NULL && !replacing) { /* came up inbound meanwhile */
        uv_freeaddrinfo(res);
        return;
    }
    link_t *l = link_new(p, 1, s->index);
    if (l == NULL) {
        uv_freeaddrinfo(res);
        dial_failed(s, "out of memory");
        return;
    }
    format_addr(res->ai_addr, l->addr, sizeof(l->addr));
    s->dial_link = l;
    if (replacing) {
        l->replacement = 1;
        p->replacing = l;
    }
    l->connect_req.data = l;
    int rc = uv_tcp_connect(&l->connect_req, &l->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc != 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(rc));
        link_close(l, reason, 0);
    }
}

static void on_dial_timer(uv_timer_t *t)
{
    slot_t *s = t->data;
    hc_peers_t *p = s->p;
    if (p->closing || (s->link != NULL && !s->replace_wanted) || s->dial_link != NULL ||
        s->resolving) {
        return;
    }
    char port[8];
    snprintf(port, sizeof(port), "%u", s->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->gai.data = s;
    int rc = uv_getaddrinfo(p->loop, &s->gai, on_resolved, s->host, port, &hints);
    if (rc != 0) {
        char reason[300];
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", s->host, uv_strerror(rc));
        dial_failed(s, reason);
        return;
    }
    s->resolving = 1;
    p->open++;
}

/* Arms the dial timer: at once for a first dial, after a jittered exponential delay once a
 * dial failed (backoff_min doubling to backoff_max, +-25 %). */
static void schedule_dial(slot_t *s, int after_failure)
{
    hc_peers_t *p = s->p;
    if (!s->timer_open || p->closing) {
        return;
    }
    uint64_t delay = 0;
    if (after_failure) {
        uint32_t shift = s->attempts < 16 ? s->attempts : 16;
        uint64_t base = (uint64_t)p->backoff_min_ms << shift;
        if (base > p->backoff_max_ms) {
            base = p->backoff_max_ms;
        }
        /* [0.75, 1.25] * base */
        delay = base * 3 / 4 + (base / 2) * randombytes_uniform(1001) / 1000;
        s->attempts++;
    } else {
        delay = p->backoff_min_ms / 2; /* a link just dropped: let the peer notice it too */
    }
    uv_timer_start(&s->dial_timer, on_dial_timer, delay, 0);
}

/* ---- replacement after credential reloads ---- */

static void replacement_failed(slot_t *s, const char *reason)
{
    hc_peers_t *p = s->p;
    uint64_t now = uv_now(p->loop);
    s->replace_wanted = 0;
    s->replace_failures++;
    s->replace_failed_ms = now;
    p->replace_failed_total++;
    uint32_t shift = s->replace_failures - 1 < 5 ? s->replace_failures - 1 : 5;
    uint64_t backoff = (uint64_t)REPLACE_BACKOFF_MIN << shift;
    backoff = backoff > REPLACE_BACKOFF_MAX ? REPLACE_BACKOFF_MAX : backoff;
    s->replace_next_ms = now + backoff;
    int repeated = strcmp(s->last_replace_error, reason) == 0;
    snprintf(s->last_replace_error, sizeof(s->last_replace_error), "%s", reason);
    int revoked = s->link != NULL && s->link->revoked_ms != 0;
    hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_WARN,
           revoked ? "peer link replacement failed, the revoked link closes"
                   : "peer link replacement failed, the current link stays",
           HC_LS("peer", s->name), HC_LU("link", s->link ? s->link->id : 0),
           HC_LS("reason", reason), HC_LU("retry_in_ms", backoff), HC_LB("revoked", revoked));
    replace_soon(p);
}

static int link_stale(const hc_peers_t *p, const link_t *l)
{
    return l->gen < p->cred_gen || l->redial_asked || l->revoked_ms != 0;
}

/* Walks the active links once: a link authenticated with credentials older than the current
 * ones is replaced make-before-break, one link at a time. The node whose name sorts first dials
 * the replacement (its dial wins the duplicate tie-break on both ends, whichever side dialed the
 * old link); the other node asks it to with a redial PING, repeated every REDIAL_ASK_MS. A link
 * whose peer credentials a reload no longer accepts is closed once its replacement failed, or
 * REVOKE_GRACE_MS after the reload at the latest. */
static void replace_step(hc_peers_t *p)
{
    if (p->closing) {
        return;
    }
    uint64_t now = uv_now(p->loop);
    int busy = p->replacing != NULL;
    for (int i = 0; i < p->n_slots; i++) {
        busy |= p->slots[i]->replace_wanted;
    }
    for (int i = 0; i < p->n_slots && !p->closing; i++) {
        slot_t *s = p->slots[i];
        link_t *l = s->link;
        if (l == NULL || l->state != L_UP || !link_stale(p, l)) {
            continue;
        }
        int in_progress = s->replace_wanted || (p->replacing && p->replacing->slot == i);
        if (l->revoked_ms != 0 && !in_progress &&
            (now - l->revoked_ms >= REVOKE_GRACE_MS || s->replace_failed_ms >= l->revoked_ms)) {
            char why[300];
            snprintf(why, sizeof(why), "credentials no longer accepted after a reload: %s",
                     l->revoke_reason);
            p->revoked_total++;
            link_close(l, why, 0);
            continue;
        }
        int i_dial = s->in_config && strcasecmp(p->me, l->peer_name) < 0;
        if (i_dial) {
            if (!busy && s->dial_link == NULL && !s->resolving && now >= s->replace_next_ms &&
                s->timer_open) {
                s->replace_wanted = 1;
                busy = 1;
                hc_log(HC_LOG_DEBUG, "replacing peer link", HC_LS("peer", s->name),
                       HC_LU("link", l->id), HC_LU("generation", l->gen),
                       HC_LU("current_generation", p->cred_gen));
                uv_timer_start(&s->dial_timer, on_dial_timer, 0, 0);
            }
        } else if (now >= s->redial_ask_next_ms) {
            enqueue(l, HC_FRAME_PING, redial_magic, REDIAL_MAGIC_LEN);
            s->redial_ask_next_ms = now + REDIAL_ASK_MS;
        }
    }
}

static void on_replace_timer(uv_timer_t *t)
{
    replace_step(t->data);
}

static void replace_soon(hc_peers_t *p)
{
    if (!p->closing) {
        uv_timer_start(&p->replace_timer, on_replace_timer, 0, 0);
    }
}

/* ---- liveness ---- */

static void on_tick(uv_timer_t *t)
{
    hc_peers_t *p = t->data;
    uint64_t now = uv_now(p->loop);
    for (link_t *l = p->links, *next; l != NULL; l = next) {
        next = l->next;
        char reason[128];
        if (l->state == L_CLOSING) {
            if (!uv_is_closing((uv_handle_t *)&l->tcp) && now - l->closing_ms > SOFT_CLOSE_MS) {
                uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
            }
        } else if (l->state == L_RETIRING) {
            if (now - l->retired_ms > p->dead_timeout_ms) {
                link_close(l, "duplicate link retired (no EOF from the peer)", 0);
            }
        } else if (l->state != L_UP) {
            if (now - l->created_ms > p->handshake_timeout_ms) {
                int connecting = l->state == L_CONNECTING;
                snprintf(reason, sizeof(reason), "%s not completed within %u ms",
                         connecting ? "connect" : "handshake", p->handshake_timeout_ms);
                link_close(l, reason, !connecting);
            }
        } else if (now - l->last_rx_ms > p->dead_timeout_ms) {
            snprintf(reason, sizeof(reason), "no traffic for %" PRIu64 " ms (dead link)",
                     now - l->last_rx_ms);
            link_close(l, reason, 0);
        } else if (now - l->last_ping_ms >= p->keepalive_ms) {
            uint8_t ping[8];
            for (int i = 0; i < 8; i++) {
                ping[i] = (uint8_t)(now >> (56 - 8 * i));
            }
            enqueue(l, HC_FRAME_PING, ping, sizeof(ping));
            l->last_ping_ms = now;
        }
        if (p->closing) {
            return;
        }
    }
    replace_step(p);
}

/* ---- public ---- */

static slot_t *slot_add(hc_peers_t *p, const char *name, int in_config)
{
    if (p->n_slots == p->cap_slots) {
        int cap = p->cap_slots ? p->cap_slots * 2 : 8;
        slot_t **n = realloc(p->slots, (size_t)cap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        p->slots = n;
        p->cap_slots = cap;
    }
    slot_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->p = p;
    s->index = p->n_slots;
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (hc_parse_hostport(name, s->host, sizeof(s->host), &s->port) != 0) {
        snprintf(s->host, sizeof(s->host), "%s", name);
    }
    s->in_config = in_config;
    p->slots[p->n_slots++] = s;
    return s;
}

static uint32_t env_u32(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    uint64_t x;
    if (v != NULL && hc_parse_u64(v, strlen(v), &x) == 0 && x > 0 && x < UINT32_MAX) {
        return (uint32_t)x;
    }
    return dflt;
}

/* key_i of peer.h: BLAKE2b-256("hacache peer token v1" || token). */
static void token_key(const char *token, uint8_t out[TOKEN_KEY])
{
    static const char label[] = "hacache peer token v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, TOKEN_KEY);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
    crypto_generichash_update(&st, (const uint8_t *)token, strlen(token));
    crypto_generichash_final(&st, out, TOKEN_KEY);
}

int hc_peers_new(uv_loop_t *loop, const hc_peers_opts_t *o, hc_peers_t **out)
{
    *out = NULL;
    const hc_config_t *cfg = o->cfg;
    if (cfg == NULL || cfg->self_index < 0 || (size_t)cfg->self_index >= cfg->hosts.n ||
        cfg->n_auth_tokens == 0 || (cfg->tls && o->tls == NULL)) {
        return HC_EINVAL;
    }
    if (sodium_init() < 0) {
        return HC_EINTERNAL;
    }
    hc_peers_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return HC_ENOMEM;
    }
    p->loop = loop;
    p->cfg = cfg;
    p->cb = o->cb;
    p->ud = o->ud;
    p->proto_min = o->proto_min ? o->proto_min : env_u32("HACACHE_TEST_PROTO_MIN", HC_PROTO_MIN);
    p->proto_max = o->proto_max ? o->proto_max : env_u32("HACACHE_TEST_PROTO_MAX", HC_PROTO_MAX);
    p->max_frame = o->max_frame ? o->max_frame : HC_PEER_DEFAULT_MAX_FRAME;
    if (p->max_frame > UINT32_MAX) {
        p->max_frame = UINT32_MAX;
    }
    p->max_queue = o->max_queue ? o->max_queue : HC_PEER_DEFAULT_MAX_QUEUE;
    p->keepalive_ms = o->keepalive_ms ? o->keepalive_ms : 1000;
    p->dead_timeout_ms = o->dead_timeout_ms ? o->dead_timeout_ms : 5000;
    p->handshake_timeout_ms = o->handshake_timeout_ms ? o->handshake_timeout_ms : 5000;
    p->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 50;
    p->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 5000;
    randombytes_buf(&p->incarnation, sizeof(p->incarnation));
    hc_host_format(&cfg->hosts.v[cfg->self_index], p->me, sizeof(p->me));

    p->keys = calloc(cfg->n_auth_tokens, TOKEN_KEY);
    p->host_names = calloc(cfg->hosts.n, sizeof(char *));
    if (p->keys == NULL || p->host_names == NULL) {
        goto nomem;
    }
    p->n_keys = cfg->n_auth_tokens;
    for (size_t i = 0; i < cfg->n_auth_tokens; i++) {
        token_key(cfg->auth_tokens[i], p->keys[i]);
    }
    p->n_hosts = cfg->hosts.n;
    for (size_t i = 0; i < cfg->hosts.n; i++) {
        char name[HC_NODE_NAME_MAX + 1];
        hc_host_format(&cfg->hosts.v[i], name, sizeof(name));
        if ((p->host_names[i] = strdup(name)) == NULL || slot_add(p, name, 1) == NULL) {
            goto nomem;
        }
        p->slots[i]->self = (int)i == cfg->self_index;
        if (p->slots[i]->self) {
            p->slots[i]->in_config = 0;
        }
    }
    p->tls = hc_tls_ctx_ref(o->tls);

    uv_timer_init(loop, &p->tick);
    p->tick.data = p;
    uv_timer_init(loop, &p->replace_timer);
    p->replace_timer.data = p;
    uv_prepare_init(loop, &p->flush);
    p->flush.data = p;
    p->open += 3;
    for (int i = 0; i < p->n_slots; i++) {
        slot_t *s = p->slots[i];
        if (s->in_config) {
            uv_timer_init(loop, &s->dial_timer);
            s->dial_timer.data = s;
            s->timer_open = 1;
            p->open++;
        }
    }
    *out = p;
    return 0;
nomem:
    for (int i = 0; i < p->n_slots; i++) {
        free(p->slots[i]);
    }
    free(p->slots);
    for (size_t i = 0; p->host_names != NULL && i < p->n_hosts; i++) {
        free(p->host_names[i]);
    }
    free(p->host_names);
    free(p->keys);
    free(p);
    return HC_ENOMEM;
}

int hc_peers_start(hc_peers_t *p)
{
    const hc_host_t *me = &p->cfg->hosts.v[p->cfg->self_index];
    const char *addr = p->cfg->listen_addr ? p->cfg->listen_addr : "0.0.0.0";
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(addr, me->port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        rc = uv_ip6_addr(addr, me->port, (struct sockaddr_in6 *)&ss);
    }
    if (rc == 0) {
        rc = uv_tcp_init(p->loop, &p->listener);
        if (rc == 0) {
            p->listener.data = p;
            p->listener_open = 1;
            p->open++;
            rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&ss, 0);
            if (rc == 0) {
                rc = uv_listen((uv_stream_t *)&p->listener, 128, on_accept);
            }
        }
    }
    if (rc != 0) {
        hc_log(HC_LOG_ERROR, "cannot listen on the peer port", HC_LS("addr", addr),
               HC_LU("port", me->port), HC_LS("error", uv_strerror(rc)));
        return rc;
    }
    hc_log(HC_LOG_INFO, "peer listener started", HC_LS("node", p->me), HC_LS("addr", addr),
           HC_LU("port", me->port), HC_LB("tls", p->cfg->tls), HC_LU("protocol_min", p->proto_min),
           HC_LU("protocol_max", p->proto_max));
    uint32_t period = p->keepalive_ms / 2;
    period = period < 10 ? 10 : period > 250 ? 250 : period;
    uv_timer_start(&p->tick, on_tick, period, period);
    for (int i = 0; i < p->n_slots; i++) {
        schedule_dial(p->slots[i], 0);
    }
    return 0;
}

int hc_peers_send(hc_peers_t *p, int peer, const void *data, size_t len)
{
    if (peer < 0 || peer >= p->n_slots || p->closing) {
        return HC_EINVAL;
    }
    if (len > p->max_frame) {
        return HC_ETOOLARGE;
    }
    link_t *l = p->slots[peer]->link;
    if (l == NULL) {
        return HC_EUNAVAILABLE;
    }
    if (l->q_bytes + l->w_bytes + HC_FRAME_HEADER + len > p->max_queue) {
        return HC_EBUSY;
    }
    return enqueue(l, HC_FRAME_DATA, data, len);
}

int hc_peers_count(const hc_peers_t *p)
{
    return p->n_slots;
}

const char *hc_peers_name(const hc_peers_t *p, int peer)
{
    return peer >= 0 && peer < p->n_slots ? p->slots[peer]->name : NULL;
}

int hc_peers_is_up(const hc_peers_t *p, int peer)
{
    return peer >= 0 && peer < p->n_slots && p->slots[peer]->link != NULL;
}

uint32_t hc_peers_version(const hc_peers_t *p, int peer)
{
    return hc_peers_is_up(p, peer) ? p->slots[peer]->version : 0;
}

size_t hc_peers_queued(const hc_peers_t *p, int peer)
{
    if (!hc_peers_is_up(p, peer)) {
        return 0;
    }
    const link_t *l = p->slots[peer]->link;
    return l->q_bytes + l->w_bytes;
}

int hc_peers_self(const hc_peers_t *p)
{
    return p->cfg->self_index;
}

void hc_peers_set_tls(hc_peers_t *p, hc_tls_ctx_t *tls)
{
    hc_tls_ctx_t *old = p->tls;
    p->tls = hc_tls_ctx_ref(tls);
    hc_tls_ctx_unref(old);
}

hc_tls_ctx_t *hc_peers_tls(const hc_peers_t *p)
{
    return p->tls;
}

int hc_peers_reload(hc_peers_t *p, hc_tls_ctx_t *tls, char *const *tokens, size_t n_tokens)
{
    if (p->closing || (tokens != NULL && n_tokens == 0)) {
        return HC_EINVAL;
    }
    if (tokens != NULL) {
        uint8_t(*keys)[TOKEN_KEY] = calloc(n_tokens, TOKEN_KEY);
        if (keys == NULL) {
            return HC_ENOMEM;
        }
        for (size_t i = 0; i < n_tokens; i++) {
            token_key(tokens[i], keys[i]);
        }
        sodium_memzero(p->keys, p->n_keys * TOKEN_KEY);
        free(p->keys);
        p->keys = keys;
        p->n_keys = n_tokens;
    }
    if (tls != NULL) {
        hc_peers_set_tls(p, tls);
    }
    p->cred_gen++;
    uint64_t now = uv_now(p->loop);
    int stale = 0;
    for (link_t *l = p->links; l != NULL; l = l->next) {
        if (l->state != L_UP) {
            continue;
        }
        stale++;
        char why[200] = "";
        if (tokens != NULL) {
            int ok = 0;
            for (size_t i = 0; i < p->n_keys; i++) {
                ok |= sodium_memcmp(l->peer_key, p->keys[i], TOKEN_KEY) == 0;
            }
            if (!ok) {
                snprintf(why, sizeof(why), "the token the peer proved is no longer accepted");
            }
        }
        if (why[0] == '\0' && tls != NULL && l->tls != NULL) {
            hc_tls_conn_recheck(l->tls, tls, why, sizeof(why));
        }
        if (why[0] != '\0' && l->revoked_ms == 0) {
            l->revoked_ms = now ? now : 1;
            snprintf(l->revoke_reason, sizeof(l->revoke_reason), "%s", why);
            hc_log(HC_LOG_WARN, "peer link no longer authorized, replacing or closing it",
                   HC_LS("peer", link_peer(l)), HC_LU("link", l->id), HC_LS("reason", why));
        }
    }
    for (int i = 0; i < p->n_slots; i++) {
        slot_t *s = p->slots[i];
        s->replace_failures = 0;
        s->replace_next_ms = 0;
        s->redial_ask_next_ms = 0;
        s->last_replace_error[0] = '\0';
    }
    replace_soon(p);
    return stale;
}

uint64_t hc_peers_generation(const hc_peers_t *p)
{
    return p->cred_gen;
}

int hc_peers_link_info(const hc_peers_t *p, int peer, hc_peer_link_info_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!hc_peers_is_up(p, peer)) {
        return HC_EUNAVAILABLE;
    }
    const link_t *l = p->slots[peer]->link;
    out->id = l->id;
    out->generation = l->gen;
    out->current = !link_stale(p, l);
    out->dialed = l->dialer;
    out->local = l->local;
    out->remote = l->addr;
    out->age_ms = uv_now(p->loop) - l->up_ms;
    return 0;
}

void hc_peers_reload_stats(const hc_peers_t *p, hc_peers_reload_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->generation = p->cred_gen;
    out->replaced = p->replaced_total;
    out->replace_failed = p->replace_failed_total;
    out->revoked = p->revoked_total;
    for (int i = 0; i < p->n_slots; i++) {
        const link_t *l = p->slots[i]->link;
        out->stale += l != NULL && l->state == L_UP && link_stale(p, l);
    }
}

void hc_peers_close(hc_peers_t *p, void (*cb)(void *ud), void *ud)
{
    if (p->closing) {
        return;
    }
    p->closing = 1;
    p->close_cb = cb;
    p->close_ud = ud;
    uv_prepare_stop(&p->flush);
    for (link_t *l = p->links; l != NULL; l = l->next) {
        l->state = L_CLOSING;
        if (!uv_is_closing((uv_handle_t *)&l->tcp)) {
            uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
        }
    }
    for (int i = 0; i < p->n_slots; i++) {
        slot_t *s = p->slots[i];
        s->link = NULL;
        if (s->resolving) {
            uv_cancel((uv_req_t *)&s->gai); /* its callback still runs and counts down */
        }
        if (s->timer_open) {
            s->timer_open = 0;
            uv_close((uv_handle_t *)&s->dial_timer, on_slot_timer_closed);
        }
    }
    if (p->listener_open) {
        p->listener_open = 0;
        uv_close((uv_handle_t *)&p->listener, on_handle_closed);
    }
    uv_close((uv_handle_t *)&p->tick, on_handle_closed);
    uv_close((uv_handle_t *)&p->replace_timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->flush, on_handle_closed);
}
