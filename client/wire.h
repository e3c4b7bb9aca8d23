/* wire.h: what the client puts on the wire and what answers mean: request paths and queries,
 * request ids, the answer it collects (status, hacache headers, a bounded body) and the mapping
 * of answers to HC_E* codes. Pure: no I/O. Shared by the synchronous and asynchronous client. */
#ifndef HCC_WIRE_H
#define HCC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "hacache.h"

/* Larger answer bodies are refused (HC_EINTERNAL). */
#define HCC_MAX_ANSWER_BODY ((size_t)64 << 20)

/* One HTTP answer as the transport collects it. */
typedef struct {
    int status;      /* HTTP status, 0 before a status line */
    int stale;       /* X-Hacache-Stale: 1 */
    int has_version; /* X-Hacache-Version */
    uint64_t version;
    int has_ttl; /* X-Hacache-Ttl-Ms: the remaining time to live */
    uint64_t ttl_ms;
    char *body; /* malloc'd, NUL-terminated after body_len bytes (never NULL once finished) */
    size_t body_len, body_cap;
} hcc_answer_t;

/* Frees the body and zeroes *a. */
void hcc_answer_reset(hcc_answer_t *a);
/* One header line as received ("Name: value\r\n", or a status line "HTTP/1.1 200 OK\r\n" which
 * starts a new answer: a 1xx interim answer is forgotten that way). Unknown headers are ignored,
 * malformed values too. */
void hcc_answer_header(hcc_answer_t *a, const char *line, size_t n);
/* Appends body bytes; -1 beyond HCC_MAX_ANSWER_BODY or on allocation failure. */
int hcc_answer_body(hcc_answer_t *a, const void *p, size_t n);
/* Makes sure body is a NUL-terminated (possibly empty) string; -1 on allocation failure. */
int hcc_answer_finish(hcc_answer_t *a);

/* Is this answer one to take to another node? 502/503: this node cannot serve now; 504: it
 * timed out waiting for the leader (a write's outcome is unknown, resent with the same id). */
int hcc_answer_retryable(int status);
/* Is this a 503 from a node that invalidated its data after losing the quorum (or holds its
 * reads for the same reason)? The server names it with the readiness reason `no_quorum`. */
int hcc_answer_invalidated(const hcc_answer_t *a);
/* Maps an answer to 0 or an HC_E* code, from the status and the error body's "code" (a table
 * of every outcome the server sends; unknown ones are HC_EINTERNAL). Also the retryable ones:
 * the code of the last 502/503/504 is what a call that found no node to answer returns. */
int hcc_answer_err(const hcc_answer_t *a);

/* "local", "leader", "linearizable" (the ?consistency= of a GET). */
const char *hcc_consistency_name(hc_consistency_t c);

/* Valid enum values? */
int hcc_ack_ok(hc_ack_t ack);
int hcc_consistency_ok(hc_consistency_t c);
/* The query string of a call (with its leading '?', "" when none) into q: a put with opts (NULL:
 * quorum, no TTL, no condition), a delete, a read at consistency c. 0, or HC_EINVAL for an
 * invalid ack or consistency, or a condition with an ack other than HC_ACK_QUORUM (a weaker ack
 * is answered before the leader checks the condition). */
int hcc_put_query(const hc_put_opts_t *opts, char *q, size_t cap);
int hcc_del_query(const hc_del_opts_t *opts, char *q, size_t cap);
int hcc_read_query(hc_consistency_t c, char *q, size_t cap);
/* From a write's answer body: {"version":N} of a put (0 when absent), {"value":N} of an incr (0
 * when absent: an ack other than quorum does not know it). */
uint64_t hcc_answer_version(const hcc_answer_t *a);
int64_t hcc_answer_incr_value(const hcc_answer_t *a);
/* Finds cache in the body of GET /v1/caches: 0 with *out, HC_ENOTFOUND when it is not listed,
 * HC_EINTERNAL when the body is not what a node sends (then *out is zeroed). */
int hcc_parse_cache_info(const char *body, size_t len, const char *cache, hc_cache_info_t *out);

/* Could a write that ended in rv have changed what it wrote to? Only the answers that say it was
 * not applied (refused, or no node accepted it) return 0. */
int hcc_write_may_have_changed(int rv);

/* "/v1/caches/{cache}/{percent-encoded key}{suffix}" in a malloc'd string, or NULL on OOM;
 * key NULL: "/v1/caches/{cache}{suffix}". */
char *hcc_key_path(const char *cache, const void *key, size_t klen, const char *suffix);
/* "quorum", "once", "leader", "none". */
const char *hcc_ack_name(hc_ack_t ack);
/* 32 lower-case hex digits of 16 random bytes (+ NUL); 0 or HC_EINTERNAL. */
int hcc_new_rid(char hex_out[33]);
/* The cache name rule of the server (NUL-terminated here). */
int hcc_cache_name_ok(const char *s);

#endif
