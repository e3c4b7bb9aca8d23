/* peer_handshake.c: the Hello and Auth exchange on one link (token proof, see peer.h and
 * peer_handshake.h). */
#include "peer_handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hacache.h"

/* The token proof of the side `role` ('D' dialer, 'A' acceptor) on link l; see peer_auth.h. */
static void auth_mac(const peer_identity_t *me, const uint8_t key[HC_PEER_TOKEN_KEY], char role,
                     const peer_link_t *l, const peer_hs_t *hs, const uint8_t *exporter,
                     uint8_t out[HC_MAC_BYTES])
{
    hc_peer_transcript_t t = {
        .dialer_name = l->dialer ? me->me : hs->peer_name,
        .acceptor_name = l->dialer ? hs->peer_name : me->me,
        .dialer_nonce = l->dialer ? hs->my_nonce : hs->peer_nonce,
        .acceptor_nonce = l->dialer ? hs->peer_nonce : hs->my_nonce,
        .dialer_hello_hash = l->dialer ? hs->my_hello_hash : hs->peer_hello_hash,
        .acceptor_hello_hash = l->dialer ? hs->peer_hello_hash : hs->my_hello_hash,
        .exporter = exporter,
    };
    hc_peer_auth_mac(key, role, &t, out);
}

void peer_hs_send_hello(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs)
{
    hc_hello_t h;
    memset(&h, 0, sizeof(h));
    h.proto_min = me->proto_min;
    h.proto_max = me->proto_max;
    snprintf(h.node, sizeof(h.node), "%s", me->me);
    h.hosts = me->host_names;
    h.n_hosts = me->n_hosts;
    snprintf(h.version, sizeof(h.version), "%s", HC_VERSION_STRING);
    randombytes_buf(hs->my_nonce, sizeof(hs->my_nonce));
    memcpy(h.nonce, hs->my_nonce, HC_NONCE_BYTES);
    h.incarnation = me->incarnation;
    uint8_t *buf;
    size_t len;
    if (hc_hello_encode(&h, &buf, &len) != 0) {
        peer_link_close(l, "out of memory", 0);
        return;
    }
    hc_peer_hello_hash(buf, len, hs->my_hello_hash);
    int rc = peer_link_send(l, HC_FRAME_HELLO, buf, len);
    free(buf);
    if (rc != 0) {
        peer_link_close(l, "out of memory", 0);
        return;
    }
    l->state = L_HELLO;
}

/* 1 when one of `hosts` is `name`. */
static int lists(char *const *hosts, size_t n_hosts, const char *name)
{
    for (size_t i = 0; i < n_hosts; i++) {
        if (hc_same_hostport(hosts[i], name)) {
            return 1;
        }
    }
    return 0;
}

int peer_hs_check_hello(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs,
                        const uint8_t *payload, size_t len, const char *dialed)
{
    hc_hello_t h;
    const char *why;
    char reason[1024];
    hc_peer_hello_hash(payload, len, hs->peer_hello_hash);
    if (hc_hello_decode(payload, len, &h, &why) != 0) {
        snprintf(reason, sizeof(reason), "malformed Hello: %s", why);
        peer_link_close(l, reason, 1);
        return -1;
    }
    snprintf(hs->peer_name, sizeof(hs->peer_name), "%s", h.node);
    memcpy(hs->peer_nonce, h.nonce, HC_NONCE_BYTES);
    hs->peer_incarnation = h.incarnation;
    uint32_t lo = h.proto_min > me->proto_min ? h.proto_min : me->proto_min;
    uint32_t hi = h.proto_max < me->proto_max ? h.proto_max : me->proto_max;
    reason[0] = '\0';
    if (lo > hi) {
        snprintf(reason, sizeof(reason),
                 "protocol versions do not overlap: mine [%u,%u], peer's [%u,%u]", me->proto_min,
                 me->proto_max, h.proto_min, h.proto_max);
    } else if (hc_same_hostport(h.node, me->me)) {
        snprintf(reason, sizeof(reason), "peer claims my own name %s", me->me);
    } else if (!lists(me->host_names, me->n_hosts, h.node) && /* my own entry: ruled out above */
               !lists(h.hosts, h.n_hosts, me->me)) {
        snprintf(reason, sizeof(reason),
                 "peer %s is not in my HA_HOSTS and I (%s) am not in its HA_HOSTS", h.node, me->me);
    } else if (dialed != NULL && !hc_same_hostport(h.node, dialed)) {
        snprintf(reason, sizeof(reason), "dialed %s but the peer says it is %s", dialed, h.node);
    }
    hc_hello_free(&h);
    if (reason[0] != '\0') {
        peer_link_close(l, reason, 1);
        return -1;
    }
    if (l->tls != NULL && !l->dialer) {
        /* the client certificate must name the node the Hello claims to be */
        char host[256];
        uint16_t port;
        if (hc_parse_hostport(hs->peer_name, host, sizeof(host), &port) != 0 ||
            hc_tls_conn_check_name(l->tls, host) != 0) {
            snprintf(reason, sizeof(reason), "TLS: %s",
                     l->tls ? hc_tls_conn_error(l->tls) : "bad peer name");
            peer_link_close(l, reason, 1);
            return -1;
        }
    }
    hs->version = hi;
    return 0;
}

void peer_hs_send_auth(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs)
{
    uint8_t exporter[HC_TLS_EXPORTER_BYTES], mac[HC_MAC_BYTES], *buf;
    size_t blen;
    if (l->tls != NULL && hc_tls_conn_exporter(l->tls, exporter) != 0) {
        peer_link_close(l, "TLS exporter unavailable", 0);
        return;
    }
    auth_mac(me, me->keys[0], l->dialer ? 'D' : 'A', l, hs, l->tls ? exporter : NULL, mac);
    if (hc_auth_encode(mac, &buf, &blen) != 0) {
        peer_link_close(l, "out of memory", 0);
        return;
    }
    int rc = peer_link_send(l, HC_FRAME_AUTH, buf, blen);
    free(buf);
    if (rc != 0) {
        peer_link_close(l, "out of memory", 0);
        return;
    }
    l->state = L_AUTH;
}

int peer_hs_check_auth(const peer_identity_t *me, peer_link_t *l, peer_hs_t *hs,
                       const uint8_t *payload, size_t len)
{
    uint8_t got[HC_MAC_BYTES], want[HC_MAC_BYTES], exporter[HC_TLS_EXPORTER_BYTES];
    if (hc_auth_decode(payload, len, got) != 0) {
        peer_link_close(l, "malformed Auth", 1);
        return -1;
    }
    if (l->tls != NULL && hc_tls_conn_exporter(l->tls, exporter) != 0) {
        peer_link_close(l, "TLS exporter unavailable", 0);
        return -1;
    }
    int ok = 0;
    for (size_t i = 0; i < me->n_keys; i++) {
        auth_mac(me, me->keys[i], l->dialer ? 'A' : 'D', l, hs, l->tls ? exporter : NULL, want);
        if (sodium_memcmp(got, want, HC_MAC_BYTES) == 0) {
            ok = 1;
            memcpy(hs->peer_key, me->keys[i], HC_PEER_TOKEN_KEY); /* rechecked when tokens reload */
        }
    }
    if (!ok) {
        peer_link_close(l, "wrong token: its proof matches none of my CACHE_AUTH_TOKEN values", 1);
        return -1;
    }
    return 0;
}
