/* peer_int.h: the peers table behind peer.h, shared by its files; not part of the interface.
 *
 * The peer layer in layers, each file calling only the ones below it (the lower ones report up
 * through callbacks their owner sets):
 *
 *   peer.c            the public API: create, start (listener, tick), send, status, reload, close
 *   peer_session.c    link events, as net->cb: frames by handshake state, a link up (one per
 *                     pair), a link closed (down, refusal and dial logs, redial)
 *   peer_dial.c       dialing with backoff; replacing links after a credential reload
 *   peer_table.c      the records: slots, link records, freeing the table
 *   peer_handshake.c  Hello and Auth on one link (peer_handshake.h)
 *   peer_link.c       one connection: TCP, TLS, frames, send queue, close, liveness (peer_link.h)
 */
#ifndef HC_PEER_INT_H
#define HC_PEER_INT_H

#include <stddef.h>

#include "peer.h"
#include "peer_handshake.h"
#include "peer_link.h"

/* A PING payload that asks the receiver (the lower-named node) to replace this link. Older
 * nodes just echo it in a PONG, which is ignored. */
#define REDIAL_MAGIC     "hacache-redial-1"
#define REDIAL_MAGIC_LEN (sizeof(REDIAL_MAGIC) - 1)

typedef struct slot slot_t;
typedef struct link link_t;

/* The table's record of one link: the connection, its handshake, and what the table keeps. */
struct link {
    peer_link_t io;
    peer_hs_t hs;
    hc_peers_t *p;
    int slot; /* peer index; -1 until an accepted link's Hello names it */

    /* credential reloads */
    uint64_t id;         /* per-process link number, shown in status and logs */
    uint64_t gen;        /* p->cred_gen when the link was created */
    uint64_t up_ms;      /* when it authenticated */
    int replacement;     /* dialed to replace the slot's active link */
    int redial_asked;    /* the higher-named peer asked us to replace it */
    uint64_t revoked_ms; /* a reload no longer accepts the peer's credentials; 0 = no */
    char revoke_reason[200];
};

/* The record around a link of p->net. */
static inline link_t *peer__link_of(peer_link_t *io)
{
    return (link_t *)(void *)((char *)io - offsetof(link_t, io));
}

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
    uv_loop_t *loop; /* also net.loop */
    const hc_config_t *cfg;
    hc_tls_ctx_t *tls; /* the current context (a reference); net.tls is it when CACHE_TLS */
    hc_peers_cb_t cb;
    void *ud;
    size_t max_queue;
    uint32_t backoff_min_ms, backoff_max_ms;

    peer_net_t net;        /* every link; net.closing: hc_peers_close was called */
    peer_identity_t ident; /* my name, HA_HOSTS, token keys, protocol range, incarnation */
    slot_t **slots;
    int n_slots, cap_slots;

    uv_tcp_t listener;
    uv_timer_t tick;
    int listener_open;
    hc_admit_t admit; /* inbound connections not authenticated yet: bounded, oldest evicted */
    char last_anon_refusal[320];

    /* credential reloads */
    uint64_t cred_gen; /* bumped by every reload that changed credentials */
    uint64_t next_link_id;
    link_t *replacing;        /* the one replacement dial in progress, or NULL */
    uv_timer_t replace_timer; /* runs peer__replace_step soon after something changed */
    uint64_t replaced_total, replace_failed_total, revoked_total;

    int open; /* handles not yet closed + getaddrinfo requests pending */
    void (*close_cb)(void *ud);
    void *close_ud;
};

/* ---- peer_table.c: the records ---- */

/* A new peer slot named `name` (host:port); NULL when out of memory. */
slot_t *peer__slot_add(hc_peers_t *p, const char *name, int in_config);
/* The first slot whose name is `name` (hc_same_hostport), or NULL. */
slot_t *peer__slot_find(hc_peers_t *p, const char *name);
/* A new link record in p->net (TCP handle initialised, state L_CONNECTING); NULL when out of
 * memory. `slot` is -1 for an accepted link until its Hello names the peer. */
link_t *peer__link_new(hc_peers_t *p, int dialer, int slot);
/* net->cb.closed: frees the record of a closed link; counts the flush handle closed. */
void peer__net_closed(peer_net_t *net, peer_link_t *io);
/* One handle or getaddrinfo request of p is done; frees p after the last one once closing. */
void peer__handle_closed(hc_peers_t *p);
/* The peer's name for logs: its slot's name, the name its Hello claimed, or "?". */
const char *peer__link_peer(const link_t *l);
/* Authenticated with credentials older than the current ones, asked to be replaced, or revoked. */
int peer__link_stale(const hc_peers_t *p, const link_t *l);

/* ---- peer_dial.c: dialing, replacement ---- */

/* Arms the slot's dial timer: at once, or with backoff after a failed dial. */
void peer__schedule_dial(slot_t *s, int after_failure);
/* A replacement dial for s failed: back off, log, and let the revoked link close. */
void peer__replacement_failed(slot_t *s, const char *reason);
/* One pass over the stale links (see peer_dial.c); peer__replace_soon runs it on the next turn. */
void peer__replace_step(hc_peers_t *p);
void peer__replace_soon(hc_peers_t *p);

/* ---- peer_session.c: what a link's events mean to the table (p->net.cb) ---- */

void peer__on_frame(peer_link_t *io, const hc_frame_t *f);
void peer__on_ready(peer_link_t *io);
void peer__on_closing(peer_link_t *io, lstate_t was, const char *reason, int refused);
int peer__hold_on_eof(peer_link_t *io);

#endif
