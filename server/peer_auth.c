/* peer_auth.c: the token proof of the peer handshake (see peer_auth.h and peer.h). */
#include "peer_auth.h"

#include <string.h>

#include <sodium.h>

static void be32(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

void hc_peer_token_key(const char *token, uint8_t out[HC_PEER_TOKEN_KEY])
{
    static const char label[] = "hacache peer token v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, HC_PEER_TOKEN_KEY);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
    crypto_generichash_update(&st, (const uint8_t *)token, strlen(token));
    crypto_generichash_final(&st, out, HC_PEER_TOKEN_KEY);
}

void hc_peer_hello_hash(const void *hello, size_t len, uint8_t out[HC_PEER_HASH_BYTES])
{
    crypto_generichash(out, HC_PEER_HASH_BYTES, hello, len, NULL, 0);
}

static void update_name(crypto_generichash_state *st, const char *name)
{
    uint8_t len4[4];
    be32(len4, (uint32_t)strlen(name));
    crypto_generichash_update(st, len4, 4);
    crypto_generichash_update(st, (const uint8_t *)name, strlen(name));
}

void hc_peer_auth_mac(const uint8_t key[HC_PEER_TOKEN_KEY], char role,
                      const hc_peer_transcript_t *t, uint8_t out[HC_MAC_BYTES])
{
    static const char label[] = "hacache peer auth v1"; /* with its NUL */
    uint8_t len4[4];
    uint8_t r = (uint8_t)role;
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, HC_PEER_TOKEN_KEY, HC_MAC_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
    crypto_generichash_update(&st, &r, 1);
    crypto_generichash_update(&st, t->dialer_nonce, HC_NONCE_BYTES);
    crypto_generichash_update(&st, t->acceptor_nonce, HC_NONCE_BYTES);
    update_name(&st, t->dialer_name);
    update_name(&st, t->acceptor_name);
    crypto_generichash_update(&st, t->dialer_hello_hash, HC_PEER_HASH_BYTES);
    crypto_generichash_update(&st, t->acceptor_hello_hash, HC_PEER_HASH_BYTES);
    be32(len4, t->exporter ? HC_TLS_EXPORTER_BYTES : 0);
    crypto_generichash_update(&st, len4, 4);
    if (t->exporter != NULL) {
        crypto_generichash_update(&st, t->exporter, HC_TLS_EXPORTER_BYTES);
    }
    crypto_generichash_final(&st, out, HC_MAC_BYTES);
}
