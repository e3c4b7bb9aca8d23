/* peer.h: the peer link layer: authenticated, framed connections between cluster nodes on one
 * libuv loop. It knows nothing about raft; the owner gets "link up/down" and opaque DATA frames.
 *
 * Links. There is at most one authenticated link per pair of nodes, used in both directions.
 * Every node dials every other HA_HOSTS entry that it has no link to (so a pair whose lists
 * disagree during a rolling membership change still connects) and accepts inbound links. When
 * both nodes dial at once and two links authenticate, both ends keep the link dialed by the node
 * whose name (host:port) sorts first (strcasecmp) and retire the other: DATA not yet written moves
 * to the kept link, the write side of the retired one is shut down after its last write, and
 * frames still arriving on it are delivered until the peer's EOF. The owner sees one "up" and no
 * flapping; frames may be reordered across the switch, none written before it is lost. If the
 * second link comes from a new incarnation of the peer (it restarted before we noticed the old
 * link die), the old link is closed instead and the owner sees down then up. Frames being written
 * when a link fails are lost (raft retransmits).
 *
 * Connection setup, on every link: TCP; then TLS 1.3 with mutual certificates (CACHE_TLS=true,
 * tls.h); then both sides send a Hello (name, HA_HOSTS, protocol range [min,max], 32-byte nonce,
 * incarnation) and, after checking the other's Hello, an Auth with the token proof:
 *
 *   key_i   = BLAKE2b-256("hacache peer token v1" || token_i)        (unkeyed; tokens may be long)
 *   mac     = BLAKE2b-256 keyed with key_0 over
 *             "hacache peer auth v1\0" || role || nonce_dialer || nonce_acceptor
 *             || len32 || name_dialer || len32 || name_acceptor
 *             || BLAKE2b-256(hello_dialer) || BLAKE2b-256(hello_acceptor)
 *             || len32 || tls_exporter (32 bytes, or nothing without TLS)
 *   role    = 'D' in the dialer's proof, 'A' in the acceptor's (a proof cannot be reflected)
 *
 * The receiver recomputes the MAC with the key of every accepted token (CACHE_AUTH_TOKEN_FILE
 * lines) and compares with sodium_memcmp. The token never crosses the wire; fresh nonces and the
 * TLS exporter bind the proof to this session, the Hello hashes to what was negotiated.
 * A link is refused (closed, one log line naming the address and the reason, never reported to
 * the owner) on: a TLS failure, plaintext on a TLS port (or TLS on a plaintext port), version
 * ranges that do not overlap, a peer that is in neither node's HA_HOSTS, a peer that claims our
 * own name or (when we dialed) another name than the one we dialed, a wrong token, a malformed or
 * unexpected handshake frame, or no handshake within the handshake timeout.
 * The negotiated protocol version is min(my max, peer's max). Under TLS the acceptor also checks
 * that the dialer's client certificate names (SAN) the host its Hello claims, or
 * CACHE_TLS_CLIENT_VALIDATE_DOMAIN when set, so a node cannot speak for another. At most
 * CACHE_UNAUTH_MAX inbound connections may be unauthenticated at once: a new one closes the
 * oldest (so a flood of idle connections cannot lock a restarted peer out), each one counted
 * in hacache_connections_refused_total{listener="peer"} with a rate-limited log line.
 *
 * Frames: see frame.h (4-byte big-endian payload length, 1-byte type, payload). Before a link is
 * authenticated only handshake frames of at most HC_PEER_HANDSHAKE_MAX bytes are accepted; after,
 * DATA up to opts.max_frame. A malformed or oversized frame closes the link with a log line.
 *
 * Sending: hc_peers_send copies the payload into the link's queue; queues are flushed once per
 * loop turn (uv_prepare, active only while something is queued) as one uv_write per link with
 * every queued frame (one write with one encrypted buffer under TLS). At most one write is in
 * flight per link; a link's queue (queued plus in flight) is bounded by opts.max_queue bytes.
 *
 * Liveness: every link sends PING each keepalive interval; a link that received nothing for
 * dead_timeout is closed ("no traffic"). Dialing uses jittered exponential backoff (default
 * 50 ms doubling to 5 s, +-25 %), DNS names are resolved on every attempt (uv_getaddrinfo), so
 * names that do not resolve yet are simply retried. Logging: one line per link state change
 * (up with the number of attempts it took, down with the reason, refused with the reason; the
 * same refusal repeated on the same peer is logged once), never one per retry. */
#ifndef HC_PEER_H
#define HC_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "admit.h"
#include "config.h"
#include "frame.h"
#include "tls.h"

#define HC_PEER_DEFAULT_MAX_FRAME ((size_t)64 * 1024 * 1024 + 64 * 1024)
#define HC_PEER_DEFAULT_MAX_QUEUE ((size_t)64 * 1024 * 1024)

typedef struct hc_peers hc_peers_t;

/* Owner callbacks; `peer` is an index: the peer's position in my HA_HOSTS, or an index past
 * them for a peer that only lists me (hc_peers_name tells its name). They run on the loop. The
 * owner may call hc_peers_send and hc_peers_close from inside them. */
typedef struct {
    void (*up)(void *ud, int peer, uint32_t version);
    /* reason is a short phrase, valid during the call */
    void (*down)(void *ud, int peer, const char *reason);
    /* payload of one DATA frame; valid during the call only */
    void (*frame)(void *ud, int peer, const uint8_t *data, size_t len);
} hc_peers_cb_t;

typedef struct {
    /* Borrowed and must outlive the hc_peers_t: HA_HOSTS (hosts), self_index (validated),
     * listen_addr, auth_tokens ([0] is proven, all accepted), tls (on/off). */
    const hc_config_t *cfg;
    /* Current TLS context (required when cfg->tls; a reference is taken). */
    hc_tls_ctx_t *tls;
    hc_peers_cb_t cb;
    void *ud;
    /* 0 = default for each of the following */
    uint32_t proto_min, proto_max;           /* HC_PROTO_MIN/MAX; proto_max is also read from the
                                                test-only env HACACHE_TEST_PROTO_MAX when 0 here */
    size_t max_frame;                        /* DATA payload bound, HC_PEER_DEFAULT_MAX_FRAME */
    size_t max_queue;                        /* per link, bytes, HC_PEER_DEFAULT_MAX_QUEUE */
    uint32_t keepalive_ms;                   /* PING interval, 1000 */
    uint32_t dead_timeout_ms;                /* close a silent link, 5000 */
    uint32_t handshake_timeout_ms;           /* TCP+TLS+Hello+Auth, CACHE_UNAUTH_TIMEOUT_MS */
    uint32_t backoff_min_ms, backoff_max_ms; /* 50, 5000 */
} hc_peers_opts_t;

/* Creates the layer (no I/O yet). 0, HC_EINVAL (cfg without self_index, TLS on without a
 * context, no token) or HC_ENOMEM. */
int hc_peers_new(uv_loop_t *loop, const hc_peers_opts_t *opts, hc_peers_t **out);

/* Binds CACHE_LISTEN_ADDR:my-port and starts dialing. 0, or a negative libuv error (e.g.
 * UV_EADDRINUSE) after logging it; then call hc_peers_close. */
int hc_peers_start(hc_peers_t *p);

/* Queues one DATA frame to `peer` (payload copied). 0; HC_EUNAVAILABLE when the peer has no
 * authenticated link; HC_EBUSY when its queue would exceed max_queue (the owner decides: raft
 * drops and retransmits); HC_ETOOLARGE when len exceeds max_frame; HC_EINVAL for a bad index;
 * HC_ENOMEM. */
int hc_peers_send(hc_peers_t *p, int peer, const void *data, size_t len);

/* Peers known (my HA_HOSTS entries, including my own index which never links, then peers that
 * only list me); a peer's name (host:port); its state; bytes queued to it. */
int hc_peers_count(const hc_peers_t *p);
const char *hc_peers_name(const hc_peers_t *p, int peer);
int hc_peers_is_up(const hc_peers_t *p, int peer);
uint32_t hc_peers_version(const hc_peers_t *p, int peer); /* 0 when down */
size_t hc_peers_queued(const hc_peers_t *p, int peer);
int hc_peers_self(const hc_peers_t *p);

/* Replaces the TLS context used by new connections (a reference is taken; the old one is
 * released when the last connection using it closes). Existing links are not touched. */
void hc_peers_set_tls(hc_peers_t *p, hc_tls_ctx_t *tls);

/* Credential reload (issue 5): installs a new TLS context for new connections (tls, or NULL
 * to keep the current one) and/or a new token list (tokens[0] is proven, all are accepted; NULL
 * to keep the current list), then marks every authenticated link stale. Stale links are
 * replaced make-before-break, one at a time: the node whose name sorts first dials a fresh link
 * with the current credentials (the other asks it to with a PING whose payload is
 * "hacache-redial-1", which older nodes simply echo); once it authenticates, the duplicate
 * tie-break retires the old link on both ends without the owner seeing down/up. A link whose
 * peer the new material no longer accepts (its token is gone from the list, or its certificate
 * no longer verifies against the new CA bundle) is "revoked": it is closed when its replacement
 * fails, or 3 s after the reload at the latest. A failed replacement of a link that is still
 * authorized is retried with backoff (1 s doubling to 30 s) and the old link stays. Returns the
 * number of links marked stale, or HC_EINVAL / HC_ENOMEM (nothing changed). The token strings
 * are not kept. */
int hc_peers_reload(hc_peers_t *p, hc_tls_ctx_t *tls, char *const *tokens, size_t n_tokens);
/* The TLS context new connections use (borrowed). */
hc_tls_ctx_t *hc_peers_tls(const hc_peers_t *p);
/* The credential generation: 0 at start, +1 per hc_peers_reload. */
uint64_t hc_peers_generation(const hc_peers_t *p);

/* The active link to a peer, for status: 0, or HC_EUNAVAILABLE when the peer has none. */
typedef struct {
    uint64_t id;                /* per-process link number: a replaced link gets a new one */
    uint64_t generation;        /* credential generation when the link was created */
    int current;                /* not waiting for a replacement */
    int dialed;                 /* this node dialed it */
    const char *local, *remote; /* addresses; owned by the layer, valid until the loop runs */
    uint64_t age_ms;            /* since it authenticated */
} hc_peer_link_info_t;
int hc_peers_link_info(const hc_peers_t *p, int peer, hc_peer_link_info_t *out);

typedef struct {
    uint64_t generation;
    uint64_t replaced;       /* links replaced after a reload (this side's count) */
    uint64_t replace_failed; /* replacement dials that failed */
    uint64_t revoked;        /* links closed because a reload no longer accepted the peer */
    uint64_t stale;          /* active links still waiting for their replacement */
} hc_peers_reload_stats_t;
void hc_peers_reload_stats(const hc_peers_t *p, hc_peers_reload_stats_t *out);

/* The peer port's connection limits and counters (for /metrics). */
const hc_admit_t *hc_peers_admit(const hc_peers_t *p);

/* Closes every handle and connection. No owner callback runs after this call except `cb`,
 * which runs once everything is closed; p is freed right after cb returns. */
void hc_peers_close(hc_peers_t *p, void (*cb)(void *ud), void *ud);

#endif
