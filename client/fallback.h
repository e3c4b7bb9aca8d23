/* fallback.h: when a client remembers, forgets and serves its local stale copy (stale.h), the
 * rules of hacache.h's "Local stale copy" in one place: the synchronous client (client.c) and the
 * asynchronous one (async.c) hand every read and every write that ended to these functions, so
 * the two cannot drift apart. No I/O, no locking: the caller serialises. */
#ifndef HCC_FALLBACK_H
#define HCC_FALLBACK_H

#include <stddef.h>
#include <stdint.h>

#include "hacache.h"
#include "stale.h"
#include "wire.h"

/* A client's copy and its settings. */
typedef struct {
    hcc_stale_t copy;      /* values read, with the per-cache limits */
    uint32_t max_stale_ms; /* the client's limit (hc_client_opts_t.max_stale_ms) */
    int on_invalidated;    /* fall back also after a no_quorum answer (set_stale_on_invalidated) */
} hcc_fallback_t;

void hcc_fallback_init(hcc_fallback_t *f, uint32_t max_stale_ms);
void hcc_fallback_free(hcc_fallback_t *f);
/* hc_client_set_cache_stale: 0, HC_EINVAL (cache name), HC_ENOMEM. */
int hcc_fallback_set_cache_limit(hcc_fallback_t *f, const char *cache, uint32_t max_stale_ms);

/* What a write may have changed. */
typedef enum {
    HCC_TOUCHES_NOTHING, /* no stored value (cache settings) */
    HCC_TOUCHES_KEY,     /* one key of a cache (put, delete, incr) */
    HCC_TOUCHES_CACHE,   /* every key of a cache (clear) */
    HCC_TOUCHES_ALL      /* not known (a raw write through hc_request) */
} hcc_touches_t;

/* A write of this client ended with rv (0, the HC_E* code of a node's answer, or the call's
 * error): unless rv says it certainly was not applied (hcc_write_may_have_changed), what it
 * touched is forgotten. Returns 1 when it was (the write may have changed those keys), else 0. */
int hcc_fallback_after_write(hcc_fallback_t *f, hcc_touches_t touches, const char *cache,
                             const void *key, size_t klen, int rv);

/* How a read of one key ended. */
typedef struct {
    int rv;               /* 0: a node gave a final answer (a); else the call's error */
    hcc_answer_t *a;      /* rv 0: that answer (a successful one's body is taken from it) */
    int invalidated;      /* some node answered that it invalidated after a quorum loss */
    int no_stale;         /* hc_read_opts_t.no_stale of the call */
    int overlapped_write; /* a write of this client that may have changed the key ended while
                           * the read was in flight: the answer may predate it (not remembered) */
    int write_in_flight;  /* a write of this client that may change the key has not ended: its
                           * outcome is not known yet (the copy is not served) */
} hcc_read_end_t;

/* Applies the rules to a read of (cache, key) that ended as e says, at now_ms (hcc_now_ms): the
 * copy remembers a node's fresh value, forgets the key on a 404 or a no_quorum answer (unless
 * opted in), and stands in when no node answered. Returns the call's result: 0 with *out (out->data
 * malloc'd, NUL-terminated, the caller's: hc_value_free) and *meta (may be NULL), from the node's
 * answer or from the copy (out->stale 1); or an HC_E* code with *out and *meta zeroed. */
int hcc_fallback_after_read(hcc_fallback_t *f, const char *cache, const void *key, size_t klen,
                            const hcc_read_end_t *e, uint64_t now_ms, hc_value_t *out,
                            hc_meta_t *meta);

#endif
