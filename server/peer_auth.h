/* peer_auth.h: the peer token proof of peer.h as pure functions (no link, no loop): the key of a
 * token, the hash of a Hello, and the MAC over one handshake. Shared by the peer layer and
 * hacachectl's `config check --probe`, so both compute the proof the same way. */
#ifndef HC_PEER_AUTH_H
#define HC_PEER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h" /* HC_NONCE_BYTES, HC_MAC_BYTES */
#include "tls.h"   /* HC_TLS_EXPORTER_BYTES */

#define HC_PEER_TOKEN_KEY  32 /* bytes of a token's key */
#define HC_PEER_HASH_BYTES 32 /* bytes of a Hello's hash */

/* What one handshake's proofs are bound to, named by role (not by "mine"/"theirs"), so both
 * ends fill it the same way. Every pointer is borrowed for the duration of the call. */
typedef struct {
    const char *dialer_name, *acceptor_name;                /* Hello `node` fields */
    const uint8_t *dialer_nonce, *acceptor_nonce;           /* HC_NONCE_BYTES each */
    const uint8_t *dialer_hello_hash, *acceptor_hello_hash; /* HC_PEER_HASH_BYTES each */
    const uint8_t *exporter; /* HC_TLS_EXPORTER_BYTES of TLS channel binding, NULL without TLS */
} hc_peer_transcript_t;

/* key = BLAKE2b-256("hacache peer token v1" || token). */
void hc_peer_token_key(const char *token, uint8_t out[HC_PEER_TOKEN_KEY]);

/* BLAKE2b-256 of an encoded Hello payload, as the transcript holds it. */
void hc_peer_hello_hash(const void *hello, size_t len, uint8_t out[HC_PEER_HASH_BYTES]);

/* The proof of the side `role` ('D' dialer, 'A' acceptor) keyed with `key` (see peer.h). */
void hc_peer_auth_mac(const uint8_t key[HC_PEER_TOKEN_KEY], char role,
                      const hc_peer_transcript_t *t, uint8_t out[HC_MAC_BYTES]);

#endif
