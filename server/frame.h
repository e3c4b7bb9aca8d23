/* frame.h: the peer wire format, pure functions without sockets: frame headers, and the Hello and
 * Auth handshake messages (proto/hacache.proto) as plain C structs. Fuzzed by fuzz_frame.c.
 *
 * A frame is a 4-byte big-endian payload length, a 1-byte frame type, then the payload:
 *
 *     +--------+--------+--------+--------+------+----------------- ... -+
 *     |      payload length (BE, u32)      | type | payload (length bytes) |
 *     +--------+--------+--------+--------+------+----------------- ... -+
 *
 * The length counts the payload only. Frame types are never renumbered; a node only sends types
 * that the negotiated protocol version knows. */
#ifndef HC_FRAME_H
#define HC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "config.h" /* HC_NODE_NAME_MAX */

#define HC_FRAME_HEADER 5

/* Protocol versions this build speaks (SPEC section 3 "Versions"). */
#define HC_PROTO_MIN 1
#define HC_PROTO_MAX                                                                               \
    3 /* 2: raft ids per incarnation (ClusterInfo, JoinRequest, TimeSync), majority bootstrap      \
         (BootstrapOffer); 3: Command ops BATCH, GET, SET_TTL and fields if_present, keep_ttl,     \
         no_default_ttl, want_old, ttl_ms, batch (used only when every member speaks 3) */

typedef enum {
    HC_FRAME_HELLO = 1, /* Hello protobuf: identity, HA_HOSTS, version range, nonce */
    HC_FRAME_AUTH = 2,  /* Auth protobuf: token proof */
    HC_FRAME_DATA = 3,  /* opaque payload for the owner (raft messages, forwarded writes) */
    HC_FRAME_PING = 4,  /* keepalive, payload (at most HC_FRAME_PING_MAX bytes) is echoed */
    HC_FRAME_PONG = 5,
} hc_frame_type_t;

#define HC_FRAME_TYPE_MAX  5
#define HC_FRAME_PING_MAX  64
#define HC_NONCE_BYTES     32
#define HC_MAC_BYTES       32
#define HC_HELLO_MAX_HOSTS 1024

/* Before a link is authenticated only handshake frames (Hello, Auth) of at most this many payload
 * bytes are accepted (peer.h); the probe of hacachectl reads with the same bound. */
#define HC_PEER_HANDSHAKE_MAX ((size_t)1024 * 1024)

/* One parsed frame; payload points into the buffer given to hc_frame_parse. */
typedef struct {
    uint8_t type;
    const uint8_t *payload;
    size_t len;       /* payload bytes */
    size_t frame_len; /* HC_FRAME_HEADER + len: bytes to consume */
} hc_frame_t;

/* Parses the frame at the start of buf (len bytes). The payload length is checked against
 * max_payload as soon as the header is complete, before the caller buffers (allocates) any of
 * the payload. Returns 1 with *out filled when a whole frame is present; 0 when more bytes are
 * needed (out->frame_len is then the full size once the header is known, else 0); HC_ETOOLARGE
 * when the declared length exceeds max_payload; HC_EINVAL for an unknown frame type. */
int hc_frame_parse(const uint8_t *buf, size_t len, size_t max_payload, hc_frame_t *out);

/* Writes the 5-byte header of a frame of `type` with `len` payload bytes (len < 2^32). */
void hc_frame_header(uint8_t hdr[HC_FRAME_HEADER], uint8_t type, size_t len);

/* The Hello handshake message as C data. */
typedef struct {
    uint32_t proto_min, proto_max;
    char node[HC_NODE_NAME_MAX + 1]; /* sender's HA_HOSTS entry, host:port */
    char **hosts;                    /* sender's HA_HOSTS entries; owned (hc_hello_free) */
    size_t n_hosts;
    char version[64]; /* software version, informational */
    uint8_t nonce[HC_NONCE_BYTES];
    uint64_t incarnation;
} hc_hello_t;

/* Encodes h into a new malloc'd buffer (*out, *outlen; the caller frees). 0 or HC_ENOMEM. */
int hc_hello_encode(const hc_hello_t *h, uint8_t **out, size_t *outlen);

/* Decodes a Hello. 0, or HC_EINVAL with a short static reason in *why: not a Hello, node name
 * missing or too long, nonce not 32 bytes, empty or inverted version range, more than
 * HC_HELLO_MAX_HOSTS hosts, a host longer than HC_NODE_NAME_MAX. Unknown fields are ignored.
 * On success release with hc_hello_free; on failure nothing is held. */
int hc_hello_decode(const uint8_t *buf, size_t len, hc_hello_t *out, const char **why);
void hc_hello_free(hc_hello_t *h);

/* Auth: the 32-byte token proof. Encode: 0 or HC_ENOMEM; decode: 0 or HC_EINVAL. */
int hc_auth_encode(const uint8_t mac[HC_MAC_BYTES], uint8_t **out, size_t *outlen);
int hc_auth_decode(const uint8_t *buf, size_t len, uint8_t mac[HC_MAC_BYTES]);

#endif
