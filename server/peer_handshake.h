/* peer_handshake.h: the Hello and Auth exchange of peer.h on one link, above peer_link.h: our
 * Hello, the checks of the peer's (protocol versions, names, its TLS certificate), the token
 * proof both ways. It knows no slots: the caller says which name it dialed, and decides what
 * an authenticated link means. A check that fails refuses the link (peer_link_close, refused). */
#ifndef HC_PEER_HANDSHAKE_H
#define HC_PEER_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h" /* HC_NODE_NAME_MAX */
#include "frame.h"
#include "peer_auth.h"
#include "peer_link.h"

/* What our side of every handshake says and accepts. Owned by the peers table; keys change on
 * a token reload. */
typedef struct {
    char me[HC_NODE_NAME_MAX + 1]; /* my HA_HOSTS entry, host:port */
    char **host_names;             /* my HA_HOSTS entries formatted, for my Hello */
    size_t n_hosts;
    uint8_t (*keys)[HC_PEER_TOKEN_KEY]; /* one per accepted token; [0] is proven */
    size_t n_keys;
    uint32_t proto_min, proto_max;
    uint64_t incarnation; /* random per process: tells a restarted peer from a duplicate link */
} peer_identity_t;

/* One link's handshake, beside its peer_link_t. */
typedef struct {
    uint8_t my_nonce[HC_NONCE_BYTES], peer_nonce[HC_NONCE_BYTES];
    uint8_t my_hello_hash[HC_PEER_HASH_BYTES], peer_hello_hash[HC_PEER_HASH_BYTES];
    char peer_name[HC_NODE_NAME_MAX + 1]; /* the name the peer's Hello claims */
    uint64_t peer_incarnation;
    uint32_t version;                    /* negotiated: min(my max, the peer's max) */
    uint8_t peer_key[HC_PEER_TOKEN_KEY]; /* the accepted token key the peer's proof matched */
} peer_hs_t;

/* Transport ready (TCP, or TCP+TLS): sends our Hello; l goes to L_HELLO. */
void peer_hs_send_hello(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs);

/* The peer's Hello (l in L_HELLO): 0 when it passes, or -1 with l refused. `dialed` is the name
 * l was dialed to (the Hello must claim it), NULL for an accepted link. */
int peer_hs_check_hello(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs,
                        const uint8_t *payload, size_t len, const char *dialed);

/* After a Hello that passed: sends our Auth (the proof with keys[0]); l goes to L_AUTH. */
void peer_hs_send_auth(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs);

/* The peer's Auth (l in L_AUTH): 0 when its proof matches one of my keys (hs->peer_key), or -1
 * with l refused or closed. The caller brings the link up. */
int peer_hs_check_auth(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs,
                       const uint8_t *payload, size_t len);

#endif
