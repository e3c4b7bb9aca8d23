/* transport.h: one HTTP attempt against one node through a libcurl easy handle: the options
 * (URL, method, headers, deadline, TLS verification with an optional expected name), the answer
 * collected into an hcc_answer_t, and what a failure means for a retry. The synchronous client
 * runs the handle with curl_easy_perform, the asynchronous one with a curl multi handle. */
#ifndef HCC_TRANSPORT_H
#define HCC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "endpoints.h"
#include "wire.h"

/* A connection attempt gets at most this long, so a black-holed node is skipped. */
#define HCC_CONNECT_TIMEOUT_MS 1000

typedef struct {
    const char *ca_pem; /* PEM bundle the server certificate must chain to; NULL: system store */
    size_t ca_len;
    const char *server_name; /* name the certificate must carry (and SNI); NULL: the host */
} hcc_tls_t;

typedef struct {
    const hcc_endpoint_t *ep;
    const hcc_tls_t *tls;  /* for https:// endpoints */
    const char *method;    /* "GET", "PUT", ... */
    const char *path;      /* percent-encoded, with the query */
    const char *auth_line; /* "Authorization: Bearer ..." or NULL */
    const char *rid;       /* a write's request id (32 hex digits) or NULL */
    const void *body;
    size_t blen;
    uint32_t timeout_ms; /* the whole attempt */
} hcc_xfer_req_t;

typedef struct {
    struct curl_slist *headers, *connect_to;
    char *url;
    hcc_answer_t answer;
    int body_refused; /* the answer grew beyond HCC_MAX_ANSWER_BODY */
    char errbuf[CURL_ERROR_SIZE];
} hcc_xfer_t;

typedef enum {
    HCC_X_ANSWER,    /* a complete answer is in x->answer */
    HCC_X_NOT_SENT,  /* failed before any byte of the request left: safe to send anywhere */
    HCC_X_NO_ANSWER, /* (maybe) sent, no complete answer: a write's outcome is unknown */
    HCC_X_TLS,       /* the TLS handshake failed (certificate not trusted, wrong name, ...) */
    HCC_X_BAD        /* a malformed or too large answer */
} hcc_xfer_outcome_t;

/* Sets up easy (reset first; its connection and TLS session caches survive) for req. x must
 * stay in place until hcc_xfer_done. 0 or HC_ENOMEM (then call hcc_xfer_cleanup). */
int hcc_xfer_prepare(hcc_xfer_t *x, CURL *easy, const hcc_xfer_req_t *req);
/* Classifies the finished transfer (rc as curl returned it). */
hcc_xfer_outcome_t hcc_xfer_done(hcc_xfer_t *x, CURL *easy, CURLcode rc);
/* "https://h:p: <what went wrong>" for a failed attempt, into buf. */
void hcc_xfer_describe(const hcc_xfer_t *x, const hcc_endpoint_t *ep, CURLcode rc, char *buf,
                       size_t len);
/* Frees what prepare made, the answer included (take it before: move x->answer out). */
void hcc_xfer_cleanup(hcc_xfer_t *x);

/* curl_global_init, once per process (thread-safe); 0 or HC_EINTERNAL. */
int hcc_transport_global_init(void);

#endif
