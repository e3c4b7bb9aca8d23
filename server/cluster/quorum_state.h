/* quorum_state.h: quorum loss (SPEC §3) as one explicit state and its transitions, in one place.
 * Pure: no clock, no I/O. The cluster reports what it observed (hc_ql_check on its periodic
 * check, hc_ql_observe after every raft update) and carries out the action returned; whether
 * the node serves is a plain read of the state (hc_ql_serving). quorum.c is the cluster glue
 * that computes the inputs and performs the invalidation.
 *
 *   UNARMED --quorum seen at a check--> ARMED
 *   UNARMED / ARMED --process was suspended (a check came late by > grace/2, or the loop
 *           overslept before a local read: hc_ql_stall)--> HELD
 *   HELD --quorum contact heard after the stall--> ARMED
 *   ARMED / HELD / RECOVERING --deadline passed without contact--> TRIPPED  (INVALIDATE)
 *   TRIPPED --quorum seen at a check--> RECOVERING
 *   TRIPPED / RECOVERING --quorum, caught up, following--> UNARMED / ARMED
 *   TRIPPED / RECOVERING, leading --> PROPOSE_RESET once; --that entry applied--> UNARMED / ARMED
 *   TRIPPED / RECOVERING --lost the leadership it won while tripped--> TRIPPED  (INVALIDATE)
 */
#ifndef HC_CLUSTER_QUORUM_STATE_H
#define HC_CLUSTER_QUORUM_STATE_H

#include <stdint.h>

typedef enum {
    HC_QL_UNARMED = 0, /* serving; no quorum contact seen yet since the start (or a trip that
                        * ended before a check saw contact): nothing to invalidate on */
    HC_QL_ARMED,       /* serving; invalidates at `deadline` unless contact moves it */
    HC_QL_HELD,        /* the process was suspended: not serving until a fresh quorum contact */
    HC_QL_TRIPPED,     /* invalidated: not serving until caught up again */
    HC_QL_RECOVERING,  /* invalidated, quorum contact seen since: not serving until caught up;
                        * a new loss for a grace period invalidates again */
} hc_ql_state_t;

typedef struct {
    hc_ql_state_t state;
    uint64_t grace;       /* CACHE_QUORUM_LOSS_GRACE_MS */
    uint64_t period;      /* of the checks: grace / 4 */
    uint64_t deadline;    /* ms: invalidate at this instant without fresh contact */
    uint64_t last_check;  /* ms of the last check, to notice a suspended process */
    uint64_t held_since;  /* HELD: only contact heard after this instant ends the hold */
    uint64_t reset_index; /* leading while tripped: the invalidation proposed (index, term); */
    uint64_t reset_term;  /* applying it on every replica ends the trip */
} hc_ql_t;

typedef enum {
    HC_QL_NOTHING = 0,
    HC_QL_INVALIDATE,    /* drop the `invalidate` caches locally and tell raft the state is lost */
    HC_QL_PROPOSE_RESET, /* propose one HC_OP_INVALIDATE, then report it with hc_ql_reset_proposed
                          */
} hc_ql_action_t;

/* What the node observed, at `now` (ms). */
typedef struct {
    uint64_t now;
    int quorum; /* in contact with a quorum now (while HELD: heard after q->held_since) */
    uint64_t contact_deadline; /* hc_ql_check: grace after the last majority contact, 0 none */
    int caught_up;             /* a leader is known and it is not me, the state machine is not
                                * lost, everything heard committed is applied */
    int leading;               /* this node leads */
    int lost_leadership;       /* this node led in the previous update and no longer does */
} hc_ql_input_t;

void hc_ql_init(hc_ql_t *q, uint64_t grace, uint64_t now);
/* The periodic check (every q->period): stall detection, arming, the deadline, the trip. */
hc_ql_action_t hc_ql_check(hc_ql_t *q, const hc_ql_input_t *in);
/* The process did not run for a while (the binding noticed its loop oversleep): the contact
 * times are stale. UNARMED / ARMED -> HELD; 1 when it moved. */
int hc_ql_stall(hc_ql_t *q, uint64_t now);
/* After a raft update (or any event that may end a hold or a trip). */
hc_ql_action_t hc_ql_observe(hc_ql_t *q, const hc_ql_input_t *in);
/* The HC_OP_INVALIDATE asked for by HC_QL_PROPOSE_RESET was proposed at (index, term). */
void hc_ql_reset_proposed(hc_ql_t *q, uint64_t index, uint64_t term);
/* An entry was applied: ends the trip when it is the proposed invalidation of the same term. */
void hc_ql_applied(hc_ql_t *q, uint64_t index, uint64_t term);
/* 1 while the node serves normally (UNARMED, ARMED). */
static inline int hc_ql_serving(const hc_ql_t *q)
{
    return q->state == HC_QL_UNARMED || q->state == HC_QL_ARMED;
}
/* 1 while invalidated (TRIPPED, RECOVERING). */
static inline int hc_ql_tripped(const hc_ql_t *q)
{
    return q->state == HC_QL_TRIPPED || q->state == HC_QL_RECOVERING;
}
const char *hc_ql_state_name(hc_ql_state_t s);

#endif
