/* call.h: the bookkeeping of one call across its attempts, shared by the synchronous and the
 * asynchronous client: the deadline, each attempt's time budget, what every failed attempt
 * teaches (was a write maybe applied? did every attempt fail its TLS handshake? did a node say
 * it invalidated?), the failover of the endpoint, and the error a call ends with when no node
 * gave a final answer. No I/O. */
#ifndef HCC_CALL_H
#define HCC_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "endpoints.h"
#include "transport.h"

/* an attempt on one node gets half the time left, at least this much */
#define HCC_ATTEMPT_MIN_MS 1000

typedef struct {
    int is_write; /* carries a request id: an attempt without a definite answer may apply it */
    uint64_t deadline;
    int maybe_applied, last, all_tls, attempts;
    int invalidated;      /* some node answered that it invalidated after a quorum loss */
    char last_error[512]; /* the last failed attempt's endpoint and reason */
} hcc_call_t;

void hcc_call_begin(hcc_call_t *k, int is_write, uint32_t timeout_ms, uint64_t now);
/* ms left before the deadline (0: passed). */
uint32_t hcc_call_left(const hcc_call_t *k, uint64_t now);
/* The time budget of the next attempt. */
uint32_t hcc_call_budget(const hcc_call_t *k, uint64_t now);

typedef enum {
    HCC_CALL_FINAL, /* a final answer: x->answer holds it */
    HCC_CALL_RETRY, /* fail over: wait *pause_ms, then choose an endpoint and try again */
    HCC_CALL_ERROR  /* stop now with *err (a malformed answer) */
} hcc_call_step_t;

/* After an attempt on eps->cur that ended with outcome o (rc from curl): a final answer marks the
 * endpoint answered; anything else is recorded, the endpoint fails over (backoff) and *pause_ms
 * says how long to wait first (the pause between rounds, 0 inside a round). */
hcc_call_step_t hcc_call_after(hcc_call_t *k, hcc_endpoints_t *eps, hcc_xfer_t *x, CURLcode rc,
                               hcc_xfer_outcome_t o, uint64_t now, uint64_t *pause_ms, int *err);
/* The error of a call whose deadline passed without a final answer: HC_EUNKNOWN_OUTCOME (a write
 * that may have been applied), HC_ETLS (every attempt failed its handshake), else what the
 * nodes did last: HC_ETIMEDOUT (no answer, or a 504), HC_EUNAVAILABLE, HC_ESHUTDOWN or HC_EBUSY
 * (the last 503 said so). */
int hcc_call_error(const hcc_call_t *k);

#endif
