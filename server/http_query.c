/* http_query.c: query-string parameters of the HTTP API (see http_query.h). */
#include "http_query.h"

#include <string.h>

#include "util.h"

int hc_query_get(const hc_query_t *q, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = q->base, *end = q->base + q->len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : pe;
            size_t vlen = (size_t)(pe - v);
            if (vlen >= cap) {
                return -1;
            }
            long n = hc_pct_decode(v, vlen, out);
            if (n < 0) {
                return -1;
            }
            out[n] = '\0';
            return 1;
        }
        p = pe + 1;
    }
    return 0;
}

int hc_query_u64(const hc_query_t *q, const char *name, uint64_t *out)
{
    char v[32];
    int rv = hc_query_get(q, name, v, sizeof(v));
    if (rv <= 0) {
        return rv;
    }
    return hc_parse_u64(v, strlen(v), out) == 0 ? 1 : -1;
}

int hc_query_enum(const hc_query_t *q, const char *param, const char *const *names, int n, int *out)
{
    char v[32];
    int rv = hc_query_get(q, param, v, sizeof(v));
    if (rv <= 0) {
        *out = 0;
        return rv;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

/* Indexes follow hc_ack_t and hc_consistency_t. */
static const char *const ack_names[] = {"quorum", "once", "leader", "none"};
static const char *const consistency_names[] = {"local", "leader", "linearizable"};

int hc_query_ack(const hc_query_t *q, hc_ack_t *ack)
{
    int i;
    if (hc_query_enum(q, "ack", ack_names, 4, &i) != 0) {
        return -1;
    }
    *ack = (hc_ack_t)i;
    return 0;
}

int hc_query_consistency(const hc_query_t *q, hc_consistency_t *c)
{
    int i;
    if (hc_query_enum(q, "consistency", consistency_names, 3, &i) != 0) {
        return -1;
    }
    *c = (hc_consistency_t)i;
    return 0;
}
