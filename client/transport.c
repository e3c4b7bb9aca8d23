/* transport.c: see transport.h. */
#include "transport.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rv;

static void global_init(void)
{
    global_rv = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : HC_EINTERNAL;
}

int hcc_transport_global_init(void)
{
    pthread_once(&global_once, global_init);
    return global_rv;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    hcc_xfer_t *x = ud;
    hcc_answer_header(&x->answer, p, size * n);
    return size * n;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    hcc_xfer_t *x = ud;
    if (hcc_answer_body(&x->answer, p, size * n) != 0) {
        x->body_refused = 1;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* Appends a header line; 0 or -1. */
static int add_header(hcc_xfer_t *x, const char *line)
{
    struct curl_slist *l = curl_slist_append(x->headers, line);
    if (l == NULL) {
        return -1;
    }
    x->headers = l;
    return 0;
}

int hcc_xfer_prepare(hcc_xfer_t *x, CURL *easy, const hcc_xfer_req_t *req)
{
    memset(x, 0, sizeof(*x));
    curl_easy_reset(easy);
    const hcc_endpoint_t *ep = req->ep;
    int v6 = strchr(ep->host, ':') != NULL;
    /* with an expected name, the URL names it (curl verifies the certificate against the URL's
     * host and sends it as SNI) and CONNECT_TO sends the connection to the endpoint's address */
    const char *name = ep->tls && req->tls && req->tls->server_name ? req->tls->server_name : NULL;
    const char *host = name ? name : ep->host;
    int bracket = name ? strchr(name, ':') != NULL : v6;
    size_t cap = strlen(host) + strlen(req->path) + 32;
    if ((x->url = malloc(cap)) == NULL) {
        return HC_ENOMEM;
    }
    snprintf(x->url, cap, "%s://%s%s%s:%s%s", ep->tls ? "https" : "http", bracket ? "[" : "", host,
             bracket ? "]" : "", ep->port, req->path);
    if (name != NULL) {
        char ct[600];
        snprintf(ct, sizeof(ct), "%s%s%s:%s:%s%s%s:%s", bracket ? "[" : "", name,
                 bracket ? "]" : "", ep->port, v6 ? "[" : "", ep->host, v6 ? "]" : "", ep->port);
        if ((x->connect_to = curl_slist_append(NULL, ct)) == NULL) {
            return HC_ENOMEM;
        }
        curl_easy_setopt(easy, CURLOPT_CONNECT_TO, x->connect_to);
    }
    char rid_line[64];
    if (add_header(x, "Expect:") != 0 || (req->auth_line && add_header(x, req->auth_line) != 0)) {
        return HC_ENOMEM;
    }
    if (req->rid != NULL) {
        snprintf(rid_line, sizeof(rid_line), "X-Hacache-Request-Id: %s", req->rid);
        if (add_header(x, rid_line) != 0) {
            return HC_ENOMEM;
        }
    }
    int get = strcmp(req->method, "GET") == 0;
    if (!get && add_header(x, "Content-Type: application/octet-stream") != 0) {
        return HC_ENOMEM;
    }
    curl_easy_setopt(easy, CURLOPT_URL, x->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms ? req->timeout_ms : 1));
    long ct_ms =
        req->timeout_ms < HCC_CONNECT_TIMEOUT_MS ? (long)req->timeout_ms : HCC_CONNECT_TIMEOUT_MS;
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, ct_ms > 0 ? ct_ms : 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    if (get) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->blen ? req->body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->blen);
    }
    if (ep->tls) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
        if (req->tls && req->tls->ca_pem) {
            struct curl_blob blob = {
                .data = (void *)req->tls->ca_pem, .len = req->tls->ca_len, .flags = CURL_BLOB_COPY};
            curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
        }
    }
    return 0;
}

static int is_tls_failure(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return 1;
    default:
        return 0;
    }
}

hcc_xfer_outcome_t hcc_xfer_done(hcc_xfer_t *x, CURL *easy, CURLcode rc)
{
    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        if (code < 100 || code > 599 || hcc_answer_finish(&x->answer) != 0) {
            return HCC_X_BAD;
        }
        x->answer.status = (int)code;
        return HCC_X_ANSWER;
    }
    if (x->body_refused) {
        return HCC_X_BAD;
    }
    if (is_tls_failure(rc)) {
        return HCC_X_TLS;
    }
    long sent = 0;
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return HCC_X_NOT_SENT;
    default:
        return sent > 0 ? HCC_X_NO_ANSWER : HCC_X_NOT_SENT;
    }
}

void hcc_xfer_describe(const hcc_xfer_t *x, const hcc_endpoint_t *ep, CURLcode rc, char *buf,
                       size_t len)
{
    int v6 = strchr(ep->host, ':') != NULL;
    const char *what = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    snprintf(buf, len, "%s://%s%s%s:%s: %s%s", ep->tls ? "https" : "http", v6 ? "[" : "", ep->host,
             v6 ? "]" : "", ep->port, is_tls_failure(rc) ? "TLS: " : "", what);
}

void hcc_xfer_cleanup(hcc_xfer_t *x)
{
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->connect_to);
    free(x->url);
    hcc_answer_reset(&x->answer);
    x->headers = x->connect_to = NULL;
    x->url = NULL;
}
