/* call.c: see call.h. */
#include "call.h"

#include <stdio.h>
#include <string.h>

#include "hacache.h"

void hcc_call_begin(hcc_call_t *k, int is_write, uint32_t timeout_ms, uint64_t now)
{
    memset(k, 0, sizeof(*k));
    k->is_write = is_write;
    k->deadline = now + timeout_ms;
    k->last = HC_EUNAVAILABLE;
    k->all_tls = 1;
}

uint32_t hcc_call_left(const hcc_call_t *k, uint64_t now)
{
    return now >= k->deadline ? 0 : (uint32_t)(k->deadline - now);
}

uint32_t hcc_call_budget(const hcc_call_t *k, uint64_t now)
{
    /* a node that accepted but does not answer (stopped, overloaded) must not eat the whole
     * deadline: the next node gets a chance */
    uint32_t left = hcc_call_left(k, now);
    uint32_t budget = left / 2 > HCC_ATTEMPT_MIN_MS ? left / 2 : HCC_ATTEMPT_MIN_MS;
    return budget < left ? budget : left;
}

hcc_call_step_t hcc_call_after(hcc_call_t *k, hcc_endpoints_t *eps, hcc_xfer_t *x, CURLcode rc,
                               hcc_xfer_outcome_t o, uint64_t now, uint64_t *pause_ms, int *err)
{
    const hcc_endpoint_t *ep = &eps->ep[eps->cur];
    *pause_ms = 0;
    k->attempts++;
    if (o == HCC_X_ANSWER && !hcc_answer_retryable(x->answer.status)) {
        hcc_endpoint_answered(eps, eps->cur);
        return HCC_CALL_FINAL;
    }
    if (o == HCC_X_ANSWER) {
        k->all_tls = 0;
        /* 504: HC_ETIMEDOUT (a write's unknown outcome is maybe_applied); 502/503: the code of
         * the answer (unavailable, shutting_down, busy) */
        k->last = x->answer.status == 504 ? HC_ETIMEDOUT : hcc_answer_err(&x->answer);
        k->maybe_applied |= k->is_write && x->answer.status != 503;
        k->invalidated |= hcc_answer_invalidated(&x->answer);
        snprintf(k->last_error, sizeof(k->last_error), "%s://%s:%s answered %d: %.200s",
                 ep->tls ? "https" : "http", ep->host, ep->port, x->answer.status,
                 x->answer.body ? x->answer.body : "");
    } else {
        hcc_xfer_describe(x, ep, rc, k->last_error, sizeof(k->last_error));
        if (o == HCC_X_BAD) {
            *err = k->maybe_applied || k->is_write ? HC_EUNKNOWN_OUTCOME : HC_EINTERNAL;
            return HCC_CALL_ERROR;
        }
        k->all_tls &= o == HCC_X_TLS;
        k->maybe_applied |= k->is_write && o == HCC_X_NO_ANSWER;
        k->last = o == HCC_X_NO_ANSWER ? HC_ETIMEDOUT : HC_EUNAVAILABLE;
    }
    *pause_ms = hcc_endpoint_failed(eps, now); /* fail over */
    return HCC_CALL_RETRY;
}

int hcc_call_error(const hcc_call_t *k)
{
    if (k->maybe_applied) {
        return HC_EUNKNOWN_OUTCOME;
    }
    if (k->attempts > 0 && k->all_tls) {
        return HC_ETLS;
    }
    return k->last; /* the deadline passed: what the nodes did last */
}
