/* frame.c: peer frame headers and the Hello/Auth codecs (see frame.h for the wire format). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "hacache.h"
#include "hacache.pb-c.h"

int hc_frame_parse(const uint8_t *buf, size_t len, size_t max_payload, hc_frame_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len < HC_FRAME_HEADER) {
        return 0;
    }
    size_t plen =
        ((size_t)buf[0] << 24) | ((size_t)buf[1] << 16) | ((size_t)buf[2] << 8) | (size_t)buf[3];
    uint8_t type = buf[4];
    if (plen > max_payload) {
        return HC_ETOOLARGE;
    }
    if (type == 0 || type > HC_FRAME_TYPE_MAX) {
        return HC_EINVAL;
    }
    out->type = type;
    out->len = plen;
    out->frame_len = HC_FRAME_HEADER + plen;
    if (len - HC_FRAME_HEADER < plen) {
        return 0;
    }
    out->payload = buf + HC_FRAME_HEADER;
    return 1;
}

void hc_frame_header(uint8_t hdr[HC_FRAME_HEADER], uint8_t type, size_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    hdr[4] = type;
}

int hc_hello_encode(const hc_hello_t *h, uint8_t **out, size_t *outlen)
{
    Hacache__Hello m = HACACHE__HELLO__INIT;
    m.protocol_min = h->proto_min;
    m.protocol_max = h->proto_max;
    m.node = (char *)h->node;
    m.n_ha_hosts = h->n_hosts;
    m.ha_hosts = h->hosts;
    m.version = (char *)h->version;
    m.nonce.data = (uint8_t *)h->nonce;
    m.nonce.len = HC_NONCE_BYTES;
    m.incarnation = h->incarnation;
    size_t n = hacache__hello__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        return HC_ENOMEM;
    }
    *outlen = hacache__hello__pack(&m, buf);
    *out = buf;
    return 0;
}

int hc_hello_decode(const uint8_t *buf, size_t len, hc_hello_t *out, const char **why)
{
    static const char *none = "";
    const char *reason = none;
    memset(out, 0, sizeof(*out));
    Hacache__Hello *m = hacache__hello__unpack(NULL, len, buf);
    if (m == NULL) {
        reason = "Hello is not a valid protobuf message";
        goto fail;
    }
    size_t nl = m->node ? strlen(m->node) : 0;
    if (nl == 0 || nl > HC_NODE_NAME_MAX) {
        reason = "Hello node name is missing or too long";
        goto fail;
    }
    if (m->nonce.len != HC_NONCE_BYTES) {
        reason = "Hello nonce is not 32 bytes";
        goto fail;
    }
    if (m->protocol_min == 0 || m->protocol_min > m->protocol_max) {
        reason = "Hello protocol version range is empty";
        goto fail;
    }
    if (m->n_ha_hosts > HC_HELLO_MAX_HOSTS) {
        reason = "Hello lists too many hosts";
        goto fail;
    }
    for (size_t i = 0; i < m->n_ha_hosts; i++) {
        if (m->ha_hosts[i] == NULL || strlen(m->ha_hosts[i]) > HC_NODE_NAME_MAX) {
            reason = "Hello host entry is too long";
            goto fail;
        }
    }
    out->proto_min = m->protocol_min;
    out->proto_max = m->protocol_max;
    memcpy(out->node, m->node, nl + 1);
    if (m->version != NULL) {
        size_t vl = strlen(m->version);
        if (vl >= sizeof(out->version)) {
            vl = sizeof(out->version) - 1;
        }
        memcpy(out->version, m->version, vl);
        out->version[vl] = '\0';
    }
    memcpy(out->nonce, m->nonce.data, HC_NONCE_BYTES);
    out->incarnation = m->incarnation;
    if (m->n_ha_hosts > 0) {
        out->hosts = calloc(m->n_ha_hosts, sizeof(char *));
        if (out->hosts == NULL) {
            reason = "out of memory";
            goto fail;
        }
        out->n_hosts = m->n_ha_hosts;
        for (size_t i = 0; i < m->n_ha_hosts; i++) {
            out->hosts[i] = strdup(m->ha_hosts[i]);
            if (out->hosts[i] == NULL) {
                reason = "out of memory";
                goto fail;
            }
        }
    }
    hacache__hello__free_unpacked(m, NULL);
    if (why != NULL) {
        *why = none;
    }
    return 0;
fail:
    if (m != NULL) {
        hacache__hello__free_unpacked(m, NULL);
    }
    hc_hello_free(out);
    if (why != NULL) {
        *why = reason;
    }
    return HC_EINVAL;
}

void hc_hello_free(hc_hello_t *h)
{
    for (size_t i = 0; i < h->n_hosts; i++) {
        free(h->hosts[i]);
    }
    free(h->hosts);
    h->hosts = NULL;
    h->n_hosts = 0;
}

int hc_auth_encode(const uint8_t mac[HC_MAC_BYTES], uint8_t **out, size_t *outlen)
{
    Hacache__Auth m = HACACHE__AUTH__INIT;
    m.mac.data = (uint8_t *)mac;
    m.mac.len = HC_MAC_BYTES;
    size_t n = hacache__auth__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    if (buf == NULL) {
        return HC_ENOMEM;
    }
    *outlen = hacache__auth__pack(&m, buf);
    *out = buf;
    return 0;
}

int hc_auth_decode(const uint8_t *buf, size_t len, uint8_t mac[HC_MAC_BYTES])
{
    Hacache__Auth *m = hacache__auth__unpack(NULL, len, buf);
    if (m == NULL) {
        return HC_EINVAL;
    }
    int rc = HC_EINVAL;
    if (m->mac.len == HC_MAC_BYTES) {
        memcpy(mac, m->mac.data, HC_MAC_BYTES);
        rc = 0;
    }
    hacache__auth__free_unpacked(m, NULL);
    return rc;
}
