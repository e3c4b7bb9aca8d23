/* test_quorum.c: the quorum-loss state machine (server/cluster/quorum_state.h) driven through every
 * transition with virtual time: arm, trip, hold after a pause, recover, the leader's reset. */
#include "cluster/quorum_state.h"
#include "test.h"

#define GRACE 1000 /* ms; checks every GRACE / 4 */

typedef struct {
    hc_ql_t q;
    uint64_t now;
    uint64_t contact; /* last majority contact, 0: none */
} clock_t_;

/* One periodic check `step` ms after the previous one; quorum: contact at this instant. */
static hc_ql_action_t check(clock_t_ *c, uint64_t step, int quorum)
{
    c->now += step;
    if (quorum) {
        c->contact = c->now;
    }
    hc_ql_input_t in = {
        .now = c->now, .quorum = quorum, .contact_deadline = c->contact ? c->contact + GRACE : 0};
    return hc_ql_check(&c->q, &in);
}

static hc_ql_action_t observe(clock_t_ *c, int quorum, int caught_up, int leading, int lost)
{
    hc_ql_input_t in = {.now = c->now,
                        .quorum = quorum,
                        .caught_up = caught_up,
                        .leading = leading,
                        .lost_leadership = lost};
    return hc_ql_observe(&c->q, &in);
}

static void start(clock_t_ *c)
{
    memset(c, 0, sizeof(*c));
    c->now = 1000;
    hc_ql_init(&c->q, GRACE, c->now);
}

/* Armed: quorum seen at a check. */
static void armed(clock_t_ *c)
{
    start(c);
    CHECK_EQ_INT(check(c, GRACE / 4, 1), HC_QL_NOTHING);
    CHECK_EQ_INT(c->q.state, HC_QL_ARMED);
}

static void test_unarmed_never_trips(void)
{
    clock_t_ c;
    start(&c);
    CHECK_EQ_INT(c.q.state, HC_QL_UNARMED);
    CHECK(hc_ql_serving(&c.q));
    for (int i = 0; i < 40; i++) { /* 10 grace periods without ever seeing a quorum */
        CHECK_EQ_INT(check(&c, GRACE / 4, 0), HC_QL_NOTHING);
    }
    CHECK_EQ_INT(c.q.state, HC_QL_UNARMED);
    CHECK(hc_ql_serving(&c.q));
    /* a quorum seen between checks does not arm: only a check does */
    CHECK_EQ_INT(observe(&c, 1, 1, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_UNARMED);
}

static void test_arm_and_trip(void)
{
    clock_t_ c;
    armed(&c);
    CHECK(hc_ql_serving(&c.q));
    uint64_t lost_at = c.now;
    /* no contact: nothing until grace after the last contact, then exactly one invalidation */
    hc_ql_action_t a = HC_QL_NOTHING;
    while (a == HC_QL_NOTHING && c.now < lost_at + 3 * GRACE) {
        a = check(&c, GRACE / 4, 0);
        if (a == HC_QL_NOTHING) {
            CHECK(c.now < lost_at + GRACE);
            CHECK(hc_ql_serving(&c.q));
        }
    }
    CHECK_EQ_INT(a, HC_QL_INVALIDATE);
    CHECK_EQ_INT(c.now, lost_at + GRACE);
    CHECK_EQ_INT(c.q.state, HC_QL_TRIPPED);
    CHECK(!hc_ql_serving(&c.q));
    CHECK(hc_ql_tripped(&c.q));
    /* tripped without contact: no second invalidation */
    CHECK_EQ_INT(check(&c, GRACE / 4, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(check(&c, 4 * GRACE, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_TRIPPED);
}

static void test_contact_keeps_serving(void)
{
    clock_t_ c;
    armed(&c);
    for (int i = 0; i < 40; i++) { /* a short loss inside the grace time invalidates nothing */
        CHECK_EQ_INT(check(&c, GRACE / 4, i % 3 == 0), HC_QL_NOTHING);
        CHECK(hc_ql_serving(&c.q));
    }
}

static void test_hold_after_pause(void)
{
    clock_t_ c;
    armed(&c);
    /* the process was stopped for 30 s: the next check comes late by far more than grace/2 */
    CHECK_EQ_INT(check(&c, 30000, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_HELD);
    CHECK(!hc_ql_serving(&c.q));
    CHECK(!hc_ql_tripped(&c.q));
    /* contact again: serving */
    CHECK_EQ_INT(observe(&c, 1, 0, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_ARMED);
    CHECK(hc_ql_serving(&c.q));

    /* held, and no quorum for another grace period: invalidates then */
    armed(&c);
    CHECK_EQ_INT(check(&c, 30000, 0), HC_QL_NOTHING);
    uint64_t held_at = c.now;
    hc_ql_action_t a = HC_QL_NOTHING;
    while (a == HC_QL_NOTHING && c.now < held_at + 3 * GRACE) {
        a = check(&c, GRACE / 4, 0);
        CHECK(!hc_ql_serving(&c.q));
    }
    CHECK_EQ_INT(a, HC_QL_INVALIDATE);
    CHECK_EQ_INT(c.now, held_at + GRACE);
    CHECK_EQ_INT(c.q.state, HC_QL_TRIPPED);

    /* the check that notices the pause holds even if its input says "quorum": that contact was
     * heard before the pause (frames queued meanwhile); only a later observation ends it */
    armed(&c);
    CHECK_EQ_INT(check(&c, 30000, 1), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_HELD);
    CHECK(!hc_ql_serving(&c.q));
    CHECK_EQ_INT(observe(&c, 1, 0, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_ARMED);

    /* a pause before the first contact holds too: what the node holds may be as old */
    start(&c);
    CHECK_EQ_INT(check(&c, 30000, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_HELD);
    CHECK_EQ_INT(observe(&c, 1, 0, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_ARMED);
}

static void trip(clock_t_ *c)
{
    armed(c);
    hc_ql_action_t a = HC_QL_NOTHING;
    for (int i = 0; i < 8 && a == HC_QL_NOTHING; i++) {
        a = check(c, GRACE / 4, 0);
    }
    CHECK_EQ_INT(a, HC_QL_INVALIDATE);
    CHECK_EQ_INT(c->q.state, HC_QL_TRIPPED);
}

/* The binding noticed its loop oversleep before a local read (hc_ql_stall): held from then on,
 * with a fresh grace period; only from a serving state; the hold ends on contact. */
static void test_stall_before_read(void)
{
    clock_t_ c;
    armed(&c);
    c.now += 700;
    CHECK_EQ_INT(hc_ql_stall(&c.q, c.now), 1);
    CHECK_EQ_INT(c.q.state, HC_QL_HELD);
    CHECK_EQ_INT(c.q.held_since, c.now);
    CHECK(c.q.deadline >= c.now + GRACE);
    CHECK(!hc_ql_serving(&c.q));
    CHECK_EQ_INT(hc_ql_stall(&c.q, c.now + 1), 0); /* already held: unchanged */
    CHECK_EQ_INT(c.q.held_since, c.now);
    CHECK_EQ_INT(observe(&c, 0, 0, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_HELD);
    CHECK_EQ_INT(observe(&c, 1, 0, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_ARMED);
    trip(&c);
    CHECK_EQ_INT(hc_ql_stall(&c.q, c.now), 0); /* tripped: stays tripped */
    CHECK_EQ_INT(c.q.state, HC_QL_TRIPPED);
}

static void test_recover(void)
{
    clock_t_ c;
    trip(&c);
    /* a check sees the quorum again: recovering, still not serving */
    CHECK_EQ_INT(check(&c, GRACE / 4, 1), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_RECOVERING);
    CHECK(!hc_ql_serving(&c.q));
    /* contact but not caught up (snapshot not installed yet): still not serving */
    CHECK_EQ_INT(observe(&c, 1, 0, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_RECOVERING);
    /* caught up but the contact is gone: not serving */
    CHECK_EQ_INT(observe(&c, 0, 1, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_RECOVERING);
    /* both: serving, armed */
    CHECK_EQ_INT(observe(&c, 1, 1, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_ARMED);
    CHECK(hc_ql_serving(&c.q));

    /* caught up before any check saw the quorum: serving, not armed yet */
    trip(&c);
    CHECK_EQ_INT(observe(&c, 1, 1, 0, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_UNARMED);
    CHECK(hc_ql_serving(&c.q));
}

static void test_recovering_loses_quorum_again(void)
{
    clock_t_ c;
    trip(&c);
    CHECK_EQ_INT(check(&c, GRACE / 4, 1), HC_QL_NOTHING);
    CHECK_EQ_INT(c.q.state, HC_QL_RECOVERING);
    hc_ql_action_t a = HC_QL_NOTHING;
    for (int i = 0; i < 8 && a == HC_QL_NOTHING; i++) {
        a = check(&c, GRACE / 4, 0);
    }
    CHECK_EQ_INT(a, HC_QL_INVALIDATE); /* whatever it caught up with is dropped again */
    CHECK_EQ_INT(c.q.state, HC_QL_TRIPPED);
}

static void test_leading_while_tripped(void)
{
    clock_t_ c;
    trip(&c);
    /* it won an election with what it kept: one invalidation for every replica */
    CHECK_EQ_INT(observe(&c, 1, 0, 1, 0), HC_QL_PROPOSE_RESET);
    hc_ql_reset_proposed(&c.q, 10, 3);
    CHECK_EQ_INT(observe(&c, 1, 0, 1, 0), HC_QL_NOTHING); /* once */
    CHECK(!hc_ql_serving(&c.q));
    hc_ql_applied(&c.q, 9, 3); /* another index */
    CHECK(hc_ql_tripped(&c.q));
    hc_ql_applied(&c.q, 10, 2); /* the index, but an entry of another term replaced it */
    CHECK(hc_ql_tripped(&c.q));
    CHECK_EQ_INT(observe(&c, 1, 0, 1, 0), HC_QL_PROPOSE_RESET); /* proposed again */
    hc_ql_reset_proposed(&c.q, 12, 4);
    hc_ql_applied(&c.q, 12, 4);
    CHECK(hc_ql_serving(&c.q));
    CHECK_EQ_INT(c.q.state, HC_QL_UNARMED);

    /* it lost the leadership before its invalidation was applied: dropped again */
    trip(&c);
    CHECK_EQ_INT(check(&c, GRACE / 4, 1), HC_QL_NOTHING); /* recovering */
    CHECK_EQ_INT(observe(&c, 1, 0, 1, 0), HC_QL_PROPOSE_RESET);
    hc_ql_reset_proposed(&c.q, 20, 5);
    CHECK_EQ_INT(observe(&c, 0, 0, 0, 1), HC_QL_INVALIDATE);
    CHECK_EQ_INT(c.q.state, HC_QL_TRIPPED);
    CHECK_EQ_INT(c.q.reset_index, 0);
    hc_ql_applied(&c.q, 20, 5); /* too late: no longer the reset it waits for */
    CHECK(hc_ql_tripped(&c.q));

    /* a node that is not tripped never proposes a reset */
    armed(&c);
    CHECK_EQ_INT(observe(&c, 1, 0, 1, 0), HC_QL_NOTHING);
    CHECK_EQ_INT(observe(&c, 1, 0, 0, 1), HC_QL_NOTHING);
    CHECK(hc_ql_serving(&c.q));
}

static hc_test_t tests[] = {
    {"unarmed_never_trips", test_unarmed_never_trips},
    {"arm_and_trip", test_arm_and_trip},
    {"contact_keeps_serving", test_contact_keeps_serving},
    {"hold_after_pause", test_hold_after_pause},
    {"stall_before_read", test_stall_before_read},
    {"recover", test_recover},
    {"recovering_loses_quorum_again", test_recovering_loses_quorum_again},
    {"leading_while_tripped", test_leading_while_tripped},
};

HC_TEST_MAIN(tests)
