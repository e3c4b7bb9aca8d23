/* quorum_state.c: the quorum-loss state machine (see quorum_state.h). Pure: no clock, no I/O. */
#include "quorum_state.h"

#include <string.h>

void hc_ql_init(hc_ql_t *q, uint64_t grace, uint64_t now)
{
    memset(q, 0, sizeof(*q));
    q->state = HC_QL_UNARMED;
    q->grace = grace ? grace : 1;
    q->period = q->grace / 4 ? q->grace / 4 : 1;
    q->deadline = now + q->grace;
    q->last_check = now;
}

const char *hc_ql_state_name(hc_ql_state_t s)
{
    switch (s) {
    case HC_QL_UNARMED:
        return "unarmed";
    case HC_QL_ARMED:
        return "armed";
    case HC_QL_HELD:
        return "held";
    case HC_QL_TRIPPED:
        return "tripped";
    case HC_QL_RECOVERING:
        return "recovering";
    }
    return "?";
}

static hc_ql_action_t trip(hc_ql_t *q)
{
    q->state = HC_QL_TRIPPED;
    q->reset_index = 0;
    return HC_QL_INVALIDATE;
}

hc_ql_action_t hc_ql_observe(hc_ql_t *q, const hc_ql_input_t *in)
{
    if (q->state == HC_QL_HELD && in->quorum) {
        q->state = HC_QL_ARMED;
    }
    if (!hc_ql_tripped(q)) {
        return HC_QL_NOTHING;
    }
    if (in->leading) {
        return q->reset_index == 0 ? HC_QL_PROPOSE_RESET : HC_QL_NOTHING;
    }
    if (in->lost_leadership) {
        /* it led with what it kept and lost leadership before its invalidation was applied: its
         * state may differ from the others', so it is dropped again and caught up */
        return trip(q);
    }
    if (in->quorum && in->caught_up) {
        q->state = q->state == HC_QL_RECOVERING ? HC_QL_ARMED : HC_QL_UNARMED;
        q->reset_index = 0;
    }
    return HC_QL_NOTHING;
}

int hc_ql_stall(hc_ql_t *q, uint64_t now)
{
    /* the contact times are stale: start over, and hear from a quorum again before serving */
    if (now + q->grace > q->deadline) {
        q->deadline = now + q->grace;
    }
    if (q->state != HC_QL_ARMED && q->state != HC_QL_UNARMED) {
        return 0;
    }
    q->state = HC_QL_HELD;
    q->held_since = now;
    return 1;
}

hc_ql_action_t hc_ql_check(hc_ql_t *q, const hc_ql_input_t *in)
{
    uint64_t now = in->now;
    hc_ql_input_t cur = *in;
    if (now - q->last_check > q->period + q->grace / 2) {
        /* the process did not run for a while: contact heard before the stall proves nothing
         * (the caller computed in->quorum from it), only contact heard from now on ends a hold */
        hc_ql_stall(q, now);
        q->deadline = now + q->grace;
        cur.quorum = 0;
        cur.contact_deadline = 0;
    }
    in = &cur;
    q->last_check = now;
    if (in->quorum) {
        if (q->state == HC_QL_UNARMED) {
            q->state = HC_QL_ARMED;
        } else if (q->state == HC_QL_TRIPPED) {
            q->state = HC_QL_RECOVERING;
        }
    }
    if (in->contact_deadline > q->deadline) {
        q->deadline = in->contact_deadline;
    }
    if ((q->state == HC_QL_ARMED || q->state == HC_QL_HELD || q->state == HC_QL_RECOVERING) &&
        now >= q->deadline) {
        return trip(q);
    }
    return hc_ql_observe(q, in);
}

void hc_ql_reset_proposed(hc_ql_t *q, uint64_t index, uint64_t term)
{
    if (hc_ql_tripped(q)) {
        q->reset_index = index;
        q->reset_term = term;
    }
}

void hc_ql_applied(hc_ql_t *q, uint64_t index, uint64_t term)
{
    if (!hc_ql_tripped(q) || q->reset_index != index) {
        return;
    }
    if (term == q->reset_term) {
        /* every replica drops the same data here: this node is consistent again */
        q->state = q->state == HC_QL_RECOVERING ? HC_QL_ARMED : HC_QL_UNARMED;
    }
    q->reset_index = 0;
}
