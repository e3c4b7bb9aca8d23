/* test_raft_lost.c: raft_state_lost(), the host dropping its state machine while keeping its
 * raft state (hacache's quorum-loss invalidation): no applying until a snapshot, the leader
 * streams one, voters prefer a candidate that kept its state, and a candidate that lost it still
 * wins when it must. On the in-test network of test_raft_net.h. */
#include "test_raft_net.h"

static void elect(net_t *net, int *leader)
{
    net_run(net, 4 * NET_T);
    *leader = net_leader(net);
}

static bool trace_has_text(net_t *net, const char *needle)
{
    size_t start = net->trace_n > 512 ? net->trace_n - 512 : 0;
    for (size_t i = start; i < net->trace_n; i++)
        if (strstr(net->trace[i % 512], needle))
            return true;
    return false;
}

/* the host's part: forget what was applied, tell raft */
static void lose_state(net_t *net, int i)
{
    net_clear_applied(net, i);
    CHECK_EQ_INT(raft_state_lost(net->r[i], net->now), 0);
    net_ready(net, i);
}

static void test_follower_gets_snapshot(void)
{
    net_t net;
    net_init(&net, 3);
    int a;
    elect(&net, &a);
    REQUIRE(a >= 0);
    int b = (a + 1) % 3;
    net_propose(&net, a, "one", NULL);
    net_propose(&net, a, "two", NULL);
    net_run(&net, 5);
    REQUIRE(net_has_applied(&net, b, "two"));
    lose_state(&net, b);
    CHECK(net_status(&net, b).state_lost);
    /* entries keep arriving and committing, but nothing is applied without a snapshot */
    net_propose(&net, a, "three", NULL);
    net_run(&net, 5);
    CHECK(net_has_applied(&net, a, "three"));
    CHECK_EQ_INT((int)net.n_applied[b], 0);
    CHECK(net.n_snaps[a] > 0); /* the leader asked its host to stream one */
    net_run_snap(&net, 3 * NET_T);
    raft_status_t sb = net_status(&net, b);
    CHECK(!sb.state_lost);
    CHECK(net_has_applied(&net, b, "one") && net_has_applied(&net, b, "three"));
    net_propose(&net, a, "four", NULL);
    net_run_snap(&net, 5);
    CHECK(net_has_applied(&net, b, "four"));
    CHECK_EQ_INT((int)net_status(&net, a).term, (int)sb.term); /* no election on the way */
    CHECK(net_consistent(&net));
    net_free(&net);
}

static void test_install_rules(void)
{
    net_t net;
    net_init(&net, 3);
    int a;
    elect(&net, &a);
    REQUIRE(a >= 0);
    int b = (a + 1) % 3;
    for (int k = 0; k < 5; k++)
        net_propose(&net, a, "x", NULL);
    net_run(&net, 5);
    raft_status_t sa = net_status(&net, a), sb0 = net_status(&net, b);
    REQUIRE(sb0.applied == sa.commit);
    lose_state(&net, b);
    raft_members_t m = *raft_members(net.r[a]);
    /* older than what it applied: stale */
    CHECK_EQ_INT(raft_snapshot_installed(net.r[b], net.now, sa.term, sb0.applied - 1, sa.term, &m),
                 RAFT_ESTALE);
    CHECK(net_status(&net, b).state_lost);
    /* at its applied index, even though its commit index is there already: accepted, the log
     * stays */
    raft_term_t t;
    REQUIRE(raft_snapshot_meta(net.r[a], sb0.applied, &t, NULL) == 0);
    CHECK_EQ_INT(raft_snapshot_installed(net.r[b], net.now, sa.term, sb0.applied, t, &m), 0);
    raft_status_t sb = net_status(&net, b);
    CHECK(!sb.state_lost);
    CHECK_EQ_INT((int)sb.applied, (int)sb0.applied);
    CHECK_EQ_INT((int)sb.commit, (int)sb0.commit);
    CHECK_EQ_INT((int)sb.last_index, (int)sb0.last_index);
    net_free(&net);
}

/* The old leader L, cut off, appended an entry nobody else has (its log is the most up to date)
 * and lost its state machine. With both others alive, one of them must lead: L's (pre)votes are
 * refused while they elect among themselves; then L gets a snapshot. */
static void test_lost_candidate_loses_to_kept(void)
{
    net_t net;
    net_init(&net, 3);
    int l;
    elect(&net, &l);
    REQUIRE(l >= 0);
    net_propose(&net, l, "committed", NULL);
    net_run(&net, 5);
    net_isolate(&net, l, true);
    net_propose(&net, l, "orphan", NULL);
    net_run(&net, 4 * NET_T); /* check-quorum: L steps down; the others elect */
    REQUIRE(net_status(&net, l).role != RAFT_LEADER);
    lose_state(&net, l);
    int other = net_leader(&net);
    REQUIRE(other >= 0 && other != l);
    net_heal(&net);
    for (int k = 0; k < 40; k++) {
        net_run_snap(&net, NET_T / 4);
        CHECK(net_leader(&net) != l);
    }
    raft_status_t sl = net_status(&net, l);
    CHECK(!sl.state_lost);
    CHECK(net_has_applied(&net, l, "committed"));
    CHECK(!net_has_applied(&net, l, "orphan"));
    CHECK(net_consistent(&net));
    net_free(&net);
}

/* Same, but the other survivor is down and the remaining one cannot win L's vote (L's log is
 * longer): after recovery_timeouts it grants L, which leads and goes on from what it kept. */
static void test_lost_candidate_wins_when_it_must(void)
{
    net_t net;
    net_init(&net, 3);
    int l;
    elect(&net, &l);
    REQUIRE(l >= 0);
    int b = (l + 1) % 3, c = (l + 2) % 3;
    net_propose(&net, l, "committed", NULL);
    net_run(&net, 5);
    net_isolate(&net, l, true);
    net_propose(&net, l, "orphan", NULL);
    net.down[c] = true;
    net_run(&net, 4 * NET_T);
    REQUIRE(net_leader(&net) < 0);
    raft_index_t applied_before = net_status(&net, l).applied;
    lose_state(&net, l);
    net_heal(&net);
    /* refused at first: no leader within two election timeouts */
    net_run_snap(&net, 2 * NET_T);
    CHECK(net_leader(&net) < 0);
    net_run_snap(&net, 12 * NET_T);
    int nl = net_leader(&net);
    CHECK_EQ_INT(nl, l);
    CHECK(!net_status(&net, l).state_lost);
    CHECK(trace_has_text(&net, "leading without a state machine"));
    net_propose(&net, l, "after", NULL);
    net_run_snap(&net, 5);
    CHECK(net_has_applied(&net, b, "after"));
    CHECK(net_has_applied(&net, l, "after"));
    /* L's log won (its orphan entry commits everywhere) and L applied from where it stopped: the
     * host makes the state machines converge (hacache replicates a clear) */
    CHECK(net_has_applied(&net, b, "orphan") && net_has_applied(&net, l, "orphan"));
    REQUIRE(net.n_applied[l] > 0);
    CHECK_EQ_INT((int)net.applied[l][0].e.index, (int)applied_before + 1);
    net_free(&net);
}

/* A leader that loses its state machine steps down in its term and is caught up by the next. */
static void test_leader_steps_down(void)
{
    net_t net;
    net_init(&net, 3);
    int a;
    elect(&net, &a);
    REQUIRE(a >= 0);
    net_propose(&net, a, "one", NULL);
    net_run(&net, 5);
    raft_term_t t0 = net_status(&net, a).term;
    lose_state(&net, a);
    raft_status_t sa = net_status(&net, a);
    CHECK(sa.role == RAFT_FOLLOWER && sa.term == t0 && sa.state_lost);
    net_run_snap(&net, 6 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    CHECK(l != a);
    CHECK(!net_status(&net, a).state_lost);
    CHECK(net_has_applied(&net, a, "one"));
    CHECK(net_consistent(&net));
    net_free(&net);
}

static hc_test_t tests[] = {
    {"leader_steps_down", test_leader_steps_down},
    {"follower_gets_snapshot", test_follower_gets_snapshot},
    {"install_rules", test_install_rules},
    {"lost_candidate_loses_to_kept", test_lost_candidate_loses_to_kept},
    {"lost_candidate_wins_when_it_must", test_lost_candidate_wins_when_it_must},
};

HC_TEST_MAIN(tests)
