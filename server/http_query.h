/* http_query.h: the query string of an HTTP API request: finding a parameter and decoding its
 * value, bounded by the caller's buffer; numbers, and the ack and consistency enumerations. Pure
 * functions over bytes (no h2o). */
#ifndef HC_HTTP_QUERY_H
#define HC_HTTP_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "hacache.h"

/* A raw query string, without the '?'; borrowed from the request. */
typedef struct {
    const char *base;
    size_t len;
} hc_query_t;

/* Finds parameter `name` and percent-decodes its value into out (cap bytes, NUL-terminated).
 * Returns 1 found, 0 absent, -1 malformed or too long. */
int hc_query_get(const hc_query_t *q, const char *name, char *out, size_t cap);

/* Reads a u64 parameter. 1 found, 0 absent, -1 malformed. */
int hc_query_u64(const hc_query_t *q, const char *name, uint64_t *out);

/* Reads an enumerated parameter: absent = index 0 of names; otherwise the index of the value in
 * names (n entries). 0, or -1 for an unknown or malformed value. */
int hc_query_enum(const hc_query_t *q, const char *param, const char *const *names, int n,
                  int *out);

/* ?ack=quorum|once|leader|none (absent: quorum) and ?consistency=local|leader|linearizable
 * (absent: local). 0, or -1 for another value. */
int hc_query_ack(const hc_query_t *q, hc_ack_t *ack);
int hc_query_consistency(const hc_query_t *q, hc_consistency_t *c);

#endif
