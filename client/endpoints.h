/* endpoints.h: the nodes a client talks to, and how it picks one: a random start, sticky while a
 * node answers, a failing node skipped for an exponential backoff with jitter, a random other one
 * instead. Shared by the synchronous and the asynchronous client; no I/O, no locking (the caller
 * serialises). */
#ifndef HCC_ENDPOINTS_H
#define HCC_ENDPOINTS_H

#include <stddef.h>
#include <stdint.h>

#define HCC_MAX_ENDPOINTS 64
/* A node that failed is not tried again for a backoff that doubles from HCC_BACKOFF_MIN_MS to
 * HCC_BACKOFF_MAX_MS with each failure in a row (+-50% jitter), so clients that lost their node
 * do not all land on the same next one, nor hammer a node that is restarting. */
#define HCC_BACKOFF_MIN_MS 50
#define HCC_BACKOFF_MAX_MS 2000
/* between rounds over every endpoint (+-50%) */
#define HCC_ROUND_PAUSE_MS 50

typedef struct {
    char *host;          /* without brackets for IPv6 */
    char port[8];        /* decimal */
    int tls;             /* https:// */
    uint64_t down_until; /* monotonic ms before which it is not picked (0: up) */
    uint32_t backoff_ms; /* the last backoff, doubled by the next failure; 0 once it answered */
} hcc_endpoint_t;

typedef struct {
    hcc_endpoint_t ep[HCC_MAX_ENDPOINTS];
    size_t n;
    size_t cur;   /* the sticky endpoint */
    uint64_t rng; /* splitmix64 state, seeded from getrandom: start and failover picks */
    /* the current round of an attempt sequence: who was tried since the last full round */
    unsigned char tried[HCC_MAX_ENDPOINTS];
    size_t tried_in_round;
} hcc_endpoints_t;

/* Monotonic milliseconds. */
uint64_t hcc_now_ms(void);

/* Parses "http://h:p,https://h2:p" (scheme optional: http; "[v6]:port" allowed), seeds the
 * generator from getrandom and starts at a random endpoint. 0, HC_EINVAL (empty or malformed
 * list, more than HCC_MAX_ENDPOINTS) or HC_ENOMEM; on error nothing is left allocated. */
int hcc_endpoints_init(hcc_endpoints_t *e, const char *list);
void hcc_endpoints_free(hcc_endpoints_t *e);

/* ms +-50%, uniformly. */
uint64_t hcc_jittered(hcc_endpoints_t *e, uint32_t ms);

/* A new call begins: a fresh round. */
void hcc_endpoints_begin(hcc_endpoints_t *e);
/* The node answered: its backoff is over. */
void hcc_endpoint_answered(hcc_endpoints_t *e, size_t i);
/* e->cur failed: it backs off, counts as tried in this round; returns the pause (ms) to take
 * before the next attempt when the round is over (every endpoint tried), else 0. */
uint64_t hcc_endpoint_failed(hcc_endpoints_t *e, uint64_t now);
/* Before an attempt: keeps e->cur when it is up and not tried in this round, else moves it to a
 * random endpoint that is; when every endpoint backs off, to the one whose backoff ends first.
 * Returns how long to wait (ms, from now) before trying e->cur. */
uint64_t hcc_endpoints_choose(hcc_endpoints_t *e, uint64_t now);

#endif
