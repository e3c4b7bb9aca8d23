/* tls.h: TLS 1.3 with mutual authentication for peer links, driven through memory BIOs: the
 * caller moves ciphertext between a connection object and its socket, so nothing here touches
 * a file descriptor or a loop.
 *
 * A context (hc_tls_ctx_t) is built once from the CACHE_TLS_* files and never changes after
 * that; it is reference counted, so a reload (issue 5) builds a new context, hands it to the
 * peer layer for new connections and drops its own reference, while existing connections keep
 * the context they were created with until they close. */
#ifndef HC_TLS_H
#define HC_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct hc_tls_ctx hc_tls_ctx_t;
typedef struct hc_tls_conn hc_tls_conn_t;

/* Builds a context from cfg: server pair (CACHE_TLS_SERVER_CERT/KEY) presented to peers that dial
 * us, client pair (CACHE_TLS_CLIENT_CERT/KEY, default the server pair) presented when dialing,
 * CACHE_TLS_CA_SERVER to verify peers we dial, CACHE_TLS_CA_CLIENT (default CA_SERVER) to verify
 * peers that dial us; bundles may hold several CAs. The expected-name and SNI settings are
 * copied too. TLS 1.3 only, no session tickets, no session cache. Returns 0 with *out holding one
 * reference, or HC_EINVAL with a one-line reason in err naming the variable. */
int hc_tls_ctx_new(const hc_config_t *cfg, hc_tls_ctx_t **out, char *err, size_t errlen);
/* Takes / drops one reference; the last drop frees the context. NULL is ignored. */
hc_tls_ctx_t *hc_tls_ctx_ref(hc_tls_ctx_t *ctx);
void hc_tls_ctx_unref(hc_tls_ctx_t *ctx);
/* Subject of this node's server certificate ("CN=..."), for logs; owned by the context. */
const char *hc_tls_ctx_subject(const hc_tls_ctx_t *ctx);

/* What status, logs and metrics tell about one certificate (the leaf of a chain). */
typedef struct {
    int present;
    char subject[256];             /* one-line form, "/CN=node-0" */
    char serial[80];               /* hex */
    int64_t not_before, not_after; /* seconds since the epoch */
} hc_tls_cert_info_t;

/* Fills info from an OpenSSL X509 (struct x509_st); a NULL certificate gives present = 0. */
struct x509_st;
void hc_tls_x509_info(const struct x509_st *x, hc_tls_cert_info_t *info);
/* The leaf this context presents to peers that dial us (client = 0) or when dialing (1). */
void hc_tls_ctx_info(const hc_tls_ctx_t *ctx, int client, hc_tls_cert_info_t *info);

/* Checks a freshly built context before it replaces the current one (credential reloads):
 * both leaves are valid at `now` (not expired, not yet valid), the server leaf chains to the
 * CACHE_TLS_CA_SERVER bundle and the client leaf to CACHE_TLS_CA_CLIENT (what the peers verify
 * them with, assuming every node has the same bundles), and both name this node's host in a
 * SAN (or CACHE_TLS_CLIENT_VALIDATE_DOMAIN when set). Key/certificate agreement was checked by
 * hc_tls_ctx_new. 0, or HC_EINVAL with one line in err naming the variable and the reason. */
int hc_tls_ctx_validate(const hc_tls_ctx_t *ctx, const hc_config_t *cfg, int64_t now, char *err,
                        size_t errlen);

/* A connection. `dialer` selects the client role. For a dialer, peer_host is the HA_HOSTS host
 * we dial: the server certificate must name it in a SAN (DNS or IP, no CN fallback), unless the
 * context has CACHE_TLS_CLIENT_VALIDATE_DOMAIN, which is then required instead; SNI is
 * CACHE_TLS_SNI_OVERWRITE or peer_host (never an IP literal). An acceptor learns the peer's name
 * only from its Hello and checks it afterwards with hc_tls_conn_check_name. The connection holds
 * a reference to ctx. Returns 0 or HC_ENOMEM. */
int hc_tls_conn_new(hc_tls_ctx_t *ctx, int dialer, const char *peer_host, hc_tls_conn_t **out);
void hc_tls_conn_free(hc_tls_conn_t *c);

/* Feeds ciphertext received from the socket. 0 or HC_ENOMEM. */
int hc_tls_conn_feed(hc_tls_conn_t *c, const void *data, size_t len);
/* Ciphertext waiting to be sent to the socket: its size, and taking up to cap bytes of it
 * (returns the number of bytes copied). */
size_t hc_tls_conn_pending(const hc_tls_conn_t *c);
size_t hc_tls_conn_take(hc_tls_conn_t *c, void *buf, size_t cap);

/* Advances the handshake with the input fed so far. Returns 1 when it is complete (this side),
 * 0 when it needs more input (send hc_tls_conn_pending bytes first), HC_EAUTH on failure with
 * the reason in hc_tls_conn_error. */
int hc_tls_conn_handshake(hc_tls_conn_t *c);
int hc_tls_conn_done(const hc_tls_conn_t *c);

/* Reads decrypted bytes: >0 bytes read, 0 nothing available yet, HC_EUNAVAILABLE when the peer
 * closed the TLS session cleanly, HC_EAUTH on a TLS error (reason in hc_tls_conn_error). In TLS
 * 1.3 a dialer learns that the acceptor rejected its certificate only here, after its own
 * handshake completed. */
long hc_tls_conn_read(hc_tls_conn_t *c, void *buf, size_t cap);
/* Encrypts len bytes into the outgoing ciphertext (memory BIOs never block: all or error).
 * 0, or HC_EAUTH with the reason in hc_tls_conn_error. */
int hc_tls_conn_write(hc_tls_conn_t *c, const void *buf, size_t len);

/* Checks after the handshake that the peer certificate names `host` (or the context's
 * CACHE_TLS_CLIENT_VALIDATE_DOMAIN when set) in a SAN. 0, or HC_EAUTH with the reason set. */
int hc_tls_conn_check_name(hc_tls_conn_t *c, const char *host);

/* After a reload: would the peer's certificate of this established connection still be
 * accepted by `ctx` (its CA bundle for this connection's role, validity at the current time)?
 * 0, or HC_EAUTH with the reason in err. */
int hc_tls_conn_recheck(const hc_tls_conn_t *c, const hc_tls_ctx_t *ctx, char *err, size_t errlen);

/* The last failure as one human-readable phrase ("peer certificate is not signed by a trusted
 * CA (unknown CA)", "peer certificate does not match the expected name x", "peer certificate
 * expired", "peer sent no client certificate", ...). Owned by c; "" when none. */
const char *hc_tls_conn_error(const hc_tls_conn_t *c);
/* The peer certificate's subject one-line ("CN=node"), "" before the handshake. Owned by c. */
const char *hc_tls_conn_peer_subject(const hc_tls_conn_t *c);

/* The peer's leaf certificate after the handshake (present = 0 before, or without one). */
void hc_tls_conn_peer_info(const hc_tls_conn_t *c, hc_tls_cert_info_t *info);

/* Queues a TLS close_notify alert (send hc_tls_conn_pending bytes afterwards), so the peer sees
 * a clean end of the session rather than a bare TCP close. 0, or HC_EAUTH. */
int hc_tls_conn_close_notify(hc_tls_conn_t *c);

/* RFC 8446 exporter value for channel binding (label "EXPORTER-hacache-peer-auth-v1", no
 * context), 32 bytes into out. 0, or HC_EINVAL before the handshake completed. */
#define HC_TLS_EXPORTER_BYTES 32
int hc_tls_conn_exporter(hc_tls_conn_t *c, uint8_t out[HC_TLS_EXPORTER_BYTES]);

/* Is `b` the first byte of a TLS record (handshake content type 0x16)? Used to tell a plaintext
 * peer on a TLS port, or a TLS peer on a plaintext port. */
int hc_tls_looks_like_tls(uint8_t b);

#endif
