/* test_raft.c: unit tests of the raft core, one per Raft claim where it helps: elections,
 * Pre-Vote, Check-Quorum, stickiness, replication, commit rules, backtracking, pipelining,
 * ReadIndex, transfer, bug switches. Cluster-level restarts, membership, snapshots and OOM are
 * in test_raft_cluster.c. Failures print a trace of deliveries and decisions. */
#include "test_raft_net.h"

/* ---- a single real node driven by hand-written messages from scripted peers ---- */

typedef struct {
    net_t net; /* only for the trace */
    raft_t *r;
    raft_update_t u;
    uint64_t now;
} solo_t;

static void solo_init(solo_t *s, raft_id_t id, int voters, const raft_config_t *cfg)
{
    memset(s, 0, sizeof(*s));
    net_verbose_ = getenv("RAFT_TRACE") != NULL;
    raft_config_t c = cfg ? *cfg : net_default_cfg();
    c.trace = net_trace_cb;
    c.trace_ctx = &s->net;
    raft_start_t st = {0};
    st.id = id;
    st.incarnation = 1000 + id;
    st.seed = 7;
    st.mode = RAFT_START_BOOTSTRAP;
    st.members = net_members(voters, 0);
    s->now = 1000;
    int rv = raft_new(&s->r, &c, &st, s->now);
    if (rv)
        abort();
}

static void solo_free(solo_t *s)
{
    if (hc_test_failures_ && !net_verbose_)
        net_dump(&s->net);
    raft_free(s->r);
}

static raft_update_t *solo_ready(solo_t *s)
{
    raft_ready(s->r, &s->u);
    return &s->u;
}

static const raft_message_t *find_msg(const raft_update_t *u, int type, raft_id_t to)
{
    for (size_t i = 0; i < u->n_messages; i++)
        if (u->messages[i].type == type && (to == 0 || u->messages[i].to == to))
            return &u->messages[i];
    return NULL;
}

static size_t count_msgs(const raft_update_t *u, int type, raft_id_t to)
{
    size_t n = 0;
    for (size_t i = 0; i < u->n_messages; i++)
        n += u->messages[i].type == type && (to == 0 || u->messages[i].to == to);
    return n;
}

static raft_message_t mk(int type, raft_id_t from, raft_id_t to, raft_term_t term)
{
    raft_message_t m;
    memset(&m, 0, sizeof(m));
    m.type = (uint8_t)type;
    m.from = from;
    m.to = to;
    m.term = term;
    m.incarnation = 1000 + from;
    return m;
}

static void solo_step(solo_t *s, const raft_message_t *m)
{
    raft_step(s->r, s->now, m);
}

static void solo_tick(solo_t *s, uint64_t ms)
{
    s->now += ms;
    raft_tick(s->r, s->now);
}

/* Makes the solo node (id 1 of `voters`) leader of the next term with votes from node 2. */
static void solo_elect(solo_t *s)
{
    raft_status_t st;
    raft_status(s->r, &st);
    for (int k = 0; k < 40 && st.role != RAFT_LEADER; k++) {
        solo_tick(s, NET_T);
        raft_update_t *u = solo_ready(s);
        const raft_message_t *pv = find_msg(u, RAFT_MSG_PREVOTE, 2);
        if (pv) {
            raft_message_t g = mk(RAFT_MSG_PREVOTE_RESP, 2, 1, pv->term);
            g.vote_resp.granted = true;
            solo_step(s, &g);
            u = solo_ready(s);
        }
        const raft_message_t *v = find_msg(u, RAFT_MSG_VOTE, 2);
        if (v) {
            raft_message_t g = mk(RAFT_MSG_VOTE_RESP, 2, 1, v->term);
            g.vote_resp.granted = true;
            solo_step(s, &g);
        }
        raft_status(s->r, &st);
    }
}

/* An append response from `from` acknowledging `index` for the leader's current round. */
static raft_message_t ack(solo_t *s, raft_id_t from, raft_index_t index, bool ok)
{
    raft_status_t st;
    raft_status(s->r, &st);
    raft_message_t m = mk(RAFT_MSG_APPEND_RESP, from, 1, st.term);
    m.append_resp.success = ok;
    m.append_resp.index = index;
    m.append_resp.last_index = index;
    m.append_resp.seq = UINT64_MAX / 2; /* newer than any round */
    return m;
}

/* ---- elections ---- */

static void test_election_one_leader(void)
{
    net_t net;
    net_init(&net, 3);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    raft_status_t ls = net_status(&net, l);
    int leaders = 0;
    for (int i = 0; i < 3; i++) {
        raft_status_t s = net_status(&net, i);
        leaders += s.role == RAFT_LEADER && s.term == ls.term;
        CHECK_EQ_INT(s.leader, ls.id);
        CHECK_EQ_INT(s.term, ls.term);
        CHECK_EQ_INT(net.hs[i].term, s.term); /* persisted */
    }
    CHECK_EQ_INT(leaders, 1);
    net_free(&net);
}

static void test_vote_once_per_term(void)
{
    solo_t s;
    solo_init(&s, 1, 3, NULL);
    solo_tick(&s, 10 * NET_T); /* leader lease long gone */
    solo_ready(&s);
    raft_message_t v = mk(RAFT_MSG_VOTE, 2, 1, 5);
    v.vote.last_index = 1;
    solo_step(&s, &v);
    raft_update_t *u = solo_ready(&s);
    const raft_message_t *r = find_msg(u, RAFT_MSG_VOTE_RESP, 2);
    REQUIRE(r);
    CHECK(r->vote_resp.granted);
    CHECK(u->hard_state_changed); /* persisted before the grant is sent */
    CHECK_EQ_INT(u->hard_state.vote, 2);
    CHECK_EQ_INT(u->hard_state.term, 5);
    v = mk(RAFT_MSG_VOTE, 3, 1, 5);
    v.vote.last_index = 1;
    solo_step(&s, &v);
    u = solo_ready(&s);
    r = find_msg(u, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(r);
    CHECK(!r->vote_resp.granted);
    /* the same candidate asking again (retransmission) gets the same answer */
    v = mk(RAFT_MSG_VOTE, 2, 1, 5);
    v.vote.last_index = 1;
    solo_step(&s, &v);
    u = solo_ready(&s);
    r = find_msg(u, RAFT_MSG_VOTE_RESP, 2);
    REQUIRE(r);
    CHECK(r->vote_resp.granted);
    solo_free(&s);
}

static void test_bug_vote_twice(void)
{
    raft_config_t c = net_default_cfg();
    c.debug_bugs = RAFT_BUG_VOTE_TWICE;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    solo_tick(&s, 10 * NET_T);
    solo_ready(&s);
    raft_message_t v = mk(RAFT_MSG_VOTE, 2, 1, 5);
    v.vote.last_index = 1;
    solo_step(&s, &v);
    solo_ready(&s);
    v.from = 3;
    solo_step(&s, &v);
    raft_update_t *u = solo_ready(&s);
    const raft_message_t *r = find_msg(u, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(r);
    CHECK(r->vote_resp.granted); /* the bug is live */
    solo_free(&s);
}

static void test_stale_log_loses(void)
{
    /* a follower whose log ends at 2/3 */
    solo_t s;
    raft_update_t *u;
    raft_message_t v;
    solo_init(&s, 1, 3, NULL);
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 3);
    raft_entry_t e = {3, 2, RAFT_ENTRY_NOOP, NULL, 0};
    a.append.prev_index = 1;
    a.append.prev_term = 0;
    a.append.entries = &e;
    a.append.n_entries = 1;
    solo_step(&s, &a);
    solo_ready(&s);
    s.now += 10 * NET_T;
    v = mk(RAFT_MSG_VOTE, 3, 1, 4);
    v.vote.last_index = 5; /* longer but older last term */
    v.vote.last_term = 2;
    solo_step(&s, &v);
    u = solo_ready(&s);
    const raft_message_t *r = find_msg(u, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(r);
    CHECK(!r->vote_resp.granted);
    v.vote.last_term = 3;
    v.vote.last_index = 2; /* same last term, same length: up to date */
    v.term = 5;
    solo_step(&s, &v);
    u = solo_ready(&s);
    r = find_msg(u, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(r);
    CHECK(r->vote_resp.granted);
    solo_free(&s);
}

static void test_prevote_keeps_terms(void)
{
    net_t net;
    net_init(&net, 3);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    raft_term_t term = net_status(&net, l).term;
    int f = (l + 1) % 3;
    net_isolate(&net, f, true);
    net_run(&net, 20 * NET_T);
    CHECK_EQ_INT(net_status(&net, f).term, term); /* pre-votes fail, no term bump */
    net_heal(&net);
    net_run(&net, 5 * NET_T);
    CHECK_EQ_INT(net_leader(&net), l);
    CHECK_EQ_INT(net_status(&net, l).term, term);
    net_free(&net);
}

static void test_no_prevote_disrupts(void)
{
    /* what Pre-Vote buys: without it (and without check-quorum) a partitioned node's term
     * climbs and it deposes the leader when it comes back */
    raft_config_t c = net_default_cfg();
    c.disable_pre_vote = true;
    c.disable_check_quorum = true;
    net_t net;
    net_init_cfg(&net, 3, 0, &c);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    raft_term_t term = net_status(&net, l).term;
    int f = (l + 1) % 3;
    net_isolate(&net, f, true);
    net_run(&net, 10 * NET_T);
    CHECK(net_status(&net, f).term > term + 2);
    net_heal(&net);
    net_run(&net, 5 * NET_T);
    l = net_leader(&net);
    REQUIRE(l >= 0);
    CHECK(net_status(&net, l).term > term);
    net_free(&net);
}

static void test_check_quorum_step_down(void)
{
    net_t net;
    net_init(&net, 3);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    net_isolate(&net, l, true);
    net_run(&net, 2 * NET_T + 1);
    CHECK(net_status(&net, l).role != RAFT_LEADER);
    net_run(&net, 3 * NET_T);
    int l2 = net_leader(&net);
    CHECK(l2 >= 0 && l2 != l);
    net_free(&net);
}

static void test_leader_stickiness(void)
{
    solo_t s;
    solo_init(&s, 1, 3, NULL);
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 2);
    a.append.prev_index = 1;
    solo_step(&s, &a);
    solo_ready(&s);
    s.now += NET_T / 2;
    raft_message_t v = mk(RAFT_MSG_VOTE, 3, 1, 3);
    v.vote.last_index = 100;
    v.vote.last_term = 2;
    solo_step(&s, &v);
    raft_update_t *u = solo_ready(&s);
    CHECK(find_msg(u, RAFT_MSG_VOTE_RESP, 3) == NULL); /* ignored */
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.term, 2); /* and the term did not move */
    /* a transfer campaign bypasses stickiness */
    v.flags = RAFT_MSGF_TRANSFER;
    solo_step(&s, &v);
    u = solo_ready(&s);
    const raft_message_t *r = find_msg(u, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(r);
    CHECK(r->vote_resp.granted);
    solo_free(&s);
}

static void test_noop_at_term_start(void)
{
    net_t net;
    net_init(&net, 3);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    raft_status_t s = net_status(&net, l);
    raft_entry_t e;
    REQUIRE(raft_debug_entry(net.r[l], s.last_index, &e) == 0);
    CHECK_EQ_INT(e.type, RAFT_ENTRY_NOOP);
    CHECK_EQ_INT(e.term, s.term);
    CHECK_EQ_INT(s.commit, s.last_index);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(net_status(&net, i).commit, s.last_index); /* heartbeats carry commit */
    net_free(&net);
}

/* ---- replication and commit ---- */

static void test_replicate_and_apply(void)
{
    net_t net;
    net_init(&net, 5);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    char buf[32];
    for (int k = 0; k < 100; k++) {
        snprintf(buf, sizeof(buf), "v%d", k);
        CHECK_EQ_INT(net_propose(&net, l, buf, NULL), 0);
    }
    net_run(&net, 2 * NET_T);
    for (int i = 0; i < 5; i++) {
        CHECK(net_has_applied(&net, i, "v0"));
        CHECK(net_has_applied(&net, i, "v99"));
    }
    CHECK(net_consistent(&net));
    /* a follower refuses proposals */
    CHECK_EQ_INT(raft_propose(net.r[(l + 1) % 5], net.now, "x", 1, NULL, NULL), RAFT_ENOTLEADER);
    net_free(&net);
}

static void test_commit_only_current_term(void)
{
    /* Figure 8: an entry of an older term replicated on a majority is not committed by
     * counting; it commits once an entry of the current term does */
    raft_config_t c = net_default_cfg();
    c.disable_check_quorum = true;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    solo_elect(&s);                                                /* term 1: 2 noop@1 */
    CHECK_EQ_INT(raft_propose(s.r, s.now, "x", 1, NULL, NULL), 0); /* 3 x@1 */
    solo_ready(&s);
    /* deposed by a term-2 candidate with a shorter log (vote refused) */
    raft_message_t v = mk(RAFT_MSG_VOTE, 3, 1, 2);
    v.vote.last_index = 1;
    solo_step(&s, &v);
    solo_ready(&s);
    solo_elect(&s); /* term 3: 4 noop@3 */
    raft_status_t st;
    raft_status(s.r, &st);
    REQUIRE(st.role == RAFT_LEADER);
    CHECK_EQ_INT(st.term, 3);
    CHECK_EQ_INT(st.last_index, 4);
    raft_message_t a = ack(&s, 2, 3, true);
    solo_step(&s, &a);
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.commit, 1); /* 3 is on a majority but from term 1 */
    a = ack(&s, 2, 4, true);
    solo_step(&s, &a);
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.commit, 4);
    solo_free(&s);
}

static void test_bug_commit_without_majority(void)
{
    raft_config_t c = net_default_cfg();
    c.debug_bugs = RAFT_BUG_COMMIT_WITHOUT_MAJORITY;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    solo_elect(&s);
    raft_index_t idx;
    CHECK_EQ_INT(raft_propose(s.r, s.now, "x", 1, &idx, NULL), 0);
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.commit, idx); /* the bug is live: nobody acknowledged */
    solo_free(&s);
}

static void test_conflict_truncation(void)
{
    solo_t s;
    solo_init(&s, 1, 3, NULL);
    raft_entry_t e[3] = {{1, 2, RAFT_ENTRY_NOOP, NULL, 0},
                         {1, 3, RAFT_ENTRY_NORMAL, "a", 1},
                         {1, 4, RAFT_ENTRY_NORMAL, "b", 1}};
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 1);
    a.append.prev_index = 1;
    a.append.entries = e;
    a.append.n_entries = 3;
    a.append.commit = 2;
    solo_step(&s, &a);
    raft_update_t *u = solo_ready(&s);
    const raft_message_t *r = find_msg(u, RAFT_MSG_APPEND_RESP, 2);
    REQUIRE(r);
    CHECK(r->append_resp.success);
    CHECK_EQ_INT(r->append_resp.index, 4);
    CHECK_EQ_INT(u->commit, 2);
    /* a leader of term 2 overwrites 3..4 */
    raft_entry_t f[1] = {{2, 3, RAFT_ENTRY_NOOP, NULL, 0}};
    a = mk(RAFT_MSG_APPEND, 3, 1, 2);
    a.append.prev_index = 2;
    a.append.prev_term = 1;
    a.append.entries = f;
    a.append.n_entries = 1;
    a.append.commit = 3;
    solo_step(&s, &a);
    u = solo_ready(&s);
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.last_index, 3);
    raft_entry_t got;
    REQUIRE(raft_debug_entry(s.r, 3, &got) == 0);
    CHECK_EQ_INT(got.term, 2);
    CHECK_EQ_INT(st.commit, 3);
    /* an old duplicate of the first message does not truncate anything */
    a = mk(RAFT_MSG_APPEND, 3, 1, 2);
    a.append.prev_index = 2;
    a.append.prev_term = 1;
    solo_step(&s, &a);
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.last_index, 3);
    solo_free(&s);
}

static void test_fast_backtracking(void)
{
    /* follower holds 2..51 of term 1; the leader (term 3) holds 2..30 of term 1 then term 2
     * and 3 entries up to 200; one rejection lands the probe right after the common part */
    solo_t s;
    solo_init(&s, 1, 3, NULL);
    raft_entry_t e[50];
    for (int i = 0; i < 50; i++)
        e[i] = (raft_entry_t){1, (raft_index_t)(2 + i), RAFT_ENTRY_NOOP, NULL, 0};
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 1);
    a.append.prev_index = 1;
    a.append.entries = e;
    a.append.n_entries = 50;
    solo_step(&s, &a);
    solo_ready(&s);
    a = mk(RAFT_MSG_APPEND, 2, 1, 3);
    a.append.prev_index = 200;
    a.append.prev_term = 3;
    solo_step(&s, &a);
    raft_update_t *u = solo_ready(&s);
    const raft_message_t *r = find_msg(u, RAFT_MSG_APPEND_RESP, 2);
    REQUIRE(r);
    CHECK(!r->append_resp.success);
    CHECK_EQ_INT(r->append_resp.index, 200);
    CHECK_EQ_INT(r->append_resp.hint_index, 51); /* its last entry, term 1 <= 3 */
    CHECK_EQ_INT(r->append_resp.hint_term, 1);
    CHECK_EQ_INT(r->append_resp.last_index, 51);
    /* probing at 40/term 2: the follower's 40 is term 1 <= 2, so the hint is 40/1 */
    a.append.prev_index = 40;
    a.append.prev_term = 2;
    solo_step(&s, &a);
    u = solo_ready(&s);
    r = find_msg(u, RAFT_MSG_APPEND_RESP, 2);
    REQUIRE(r);
    CHECK_EQ_INT(r->append_resp.hint_index, 40);
    CHECK_EQ_INT(r->append_resp.hint_term, 1);
    solo_free(&s);

    /* leader side: the leader holds 2..30 of term 1 and 31..51 of term 3; it pipelined
     * 31..51 to a follower whose suffix from 31 is term 2. The rejection hint 40/2 lands next
     * on 31 at once, not one index per round trip. */
    raft_config_t c = net_default_cfg();
    c.disable_check_quorum = true;
    solo_init(&s, 1, 3, &c);
    solo_elect(&s); /* term 1, noop at 2 */
    for (int i = 0; i < 28; i++)
        raft_propose(s.r, s.now, "x", 1, NULL, NULL); /* 3..30 @1 */
    raft_message_t v = mk(RAFT_MSG_VOTE, 3, 1, 2);
    v.vote.last_index = 1;
    solo_step(&s, &v);
    solo_elect(&s); /* term 3: noop 31@3 */
    solo_ready(&s);
    raft_message_t ok30 = ack(&s, 2, 30, true);
    solo_step(&s, &ok30);
    for (int i = 0; i < 20; i++)
        raft_propose(s.r, s.now, "y", 1, NULL, NULL); /* 32..51 @3 */
    solo_ready(&s);
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.peers[0].next, 52);
    raft_message_t rj = ack(&s, 2, 51, false);
    rj.append_resp.hint_index = 40;
    rj.append_resp.hint_term = 2;
    solo_step(&s, &rj);
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.peers[0].id, 2);
    CHECK_EQ_INT(st.peers[0].next, 31);
    u = solo_ready(&s);
    r = find_msg(u, RAFT_MSG_APPEND, 2);
    REQUIRE(r);
    CHECK_EQ_INT(r->append.prev_index, 30);
    CHECK_EQ_INT(r->append.prev_term, 1);
    solo_free(&s);
}

static void test_pipelining_window(void)
{
    raft_config_t c = net_default_cfg();
    c.max_inflight = 3;
    c.max_entries_per_msg = 2;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    solo_elect(&s);
    solo_ready(&s);
    raft_message_t a = ack(&s, 2, 2, true); /* 2 reaches replicate state */
    solo_step(&s, &a);
    solo_ready(&s);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(raft_propose(s.r, s.now, "x", 1, NULL, NULL), 0);
    raft_update_t *u = solo_ready(&s);
    CHECK_EQ_INT(count_msgs(u, RAFT_MSG_APPEND, 2), 3); /* window full */
    const raft_message_t *m = find_msg(u, RAFT_MSG_APPEND, 2);
    REQUIRE(m);
    CHECK_EQ_INT(m->append.n_entries, 2);
    CHECK_EQ_INT(m->append.prev_index, 2);
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.peers[0].inflight, 3);
    CHECK_EQ_INT(st.peers[0].next, 9); /* optimistic */
    /* one ack frees one slot */
    a = ack(&s, 2, 4, true);
    solo_step(&s, &a);
    u = solo_ready(&s);
    CHECK_EQ_INT(count_msgs(u, RAFT_MSG_APPEND, 2), 1);
    /* node 3 is still probing: one message at a time */
    CHECK(count_msgs(u, RAFT_MSG_APPEND, 3) <= 1);
    solo_free(&s);
}

static void test_message_size_bounds(void)
{
    raft_config_t c = net_default_cfg();
    c.max_bytes_per_msg = 100;
    c.max_log_entries = 10;
    solo_t s;
    solo_init(&s, 1, 1, &c);
    solo_tick(&s, 3 * NET_T);
    raft_status_t st;
    raft_status(s.r, &st);
    REQUIRE(st.role == RAFT_LEADER);
    char big[101] = {0};
    CHECK_EQ_INT(raft_propose(s.r, s.now, big, 101, NULL, NULL), RAFT_ETOOBIG);
    int ok = 0, full = 0;
    for (int i = 0; i < 20; i++) {
        int rv = raft_propose(s.r, s.now, big, 50, NULL, NULL);
        ok += rv == 0;
        full += rv == RAFT_EFULL;
    }
    CHECK_EQ_INT(ok, 8); /* config + noop + 8 = 10 */
    CHECK_EQ_INT(full, 12);
    /* compaction makes room */
    solo_ready(&s);
    raft_status(s.r, &st);
    CHECK_EQ_INT(raft_snapshot_taken(s.r, st.applied), 0);
    CHECK_EQ_INT(raft_propose(s.r, s.now, big, 50, NULL, NULL), 0);
    CHECK_EQ_INT(raft_snapshot_taken(s.r, st.applied + 5), RAFT_EINVAL);
    solo_free(&s);
}

/* ---- ReadIndex ---- */

static void test_read_index_waits(void)
{
    solo_t s;
    solo_init(&s, 1, 3, NULL);
    solo_elect(&s); /* noop at 2 not yet committed */
    solo_ready(&s);
    CHECK_EQ_INT(raft_read_index(s.r, s.now, 77), 0);
    raft_update_t *u = solo_ready(&s);
    CHECK_EQ_INT(u->n_reads, 0);
    const raft_message_t *hb = find_msg(u, RAFT_MSG_APPEND, 2);
    REQUIRE(hb); /* a confirmation round went out */
    uint64_t seq = hb->append.seq;
    /* an ack of an older round does not confirm (but commits the noop) */
    raft_message_t a = ack(&s, 2, 2, true);
    a.append_resp.seq = seq - 1;
    solo_step(&s, &a);
    u = solo_ready(&s);
    CHECK_EQ_INT(u->commit, 2);
    CHECK_EQ_INT(u->n_reads, 0);
    a.append_resp.seq = seq;
    solo_step(&s, &a);
    u = solo_ready(&s);
    REQUIRE(u->n_reads == 1);
    CHECK_EQ_INT(u->reads[0].ctx, 77);
    CHECK_EQ_INT(u->reads[0].status, 0);
    CHECK_EQ_INT(u->reads[0].index, 2);
    /* followers refuse */
    solo_free(&s);
}

static void test_read_index_needs_quorum(void)
{
    net_t net;
    net_init(&net, 3);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    CHECK_EQ_INT(raft_read_index(net.r[l], net.now, 1), 0);
    net_run(&net, 5);
    REQUIRE(net.n_reads[l] == 1);
    CHECK_EQ_INT(net.reads[l][0].status, 0);
    CHECK_EQ_INT(raft_read_index(net.r[(l + 1) % 3], net.now, 2), RAFT_ENOTLEADER);
    net_isolate(&net, l, true);
    CHECK_EQ_INT(raft_read_index(net.r[l], net.now, 3), 0);
    net_run(&net, 3 * NET_T);
    REQUIRE(net.n_reads[l] == 2);
    CHECK_EQ_INT(net.reads[l][1].ctx, 3);
    CHECK(net.reads[l][1].status != 0); /* never served without a quorum */
    net_free(&net);
}

/* ---- leadership transfer ---- */

static void test_transfer(void)
{
    net_t net;
    net_init(&net, 3);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    raft_term_t term = net_status(&net, l).term;
    int to = (l + 2) % 3;
    net_propose(&net, l, "before", NULL);
    net.cut[l][to] = true; /* the target lags first */
    net_propose(&net, l, "lagging", NULL);
    net_run(&net, 2);
    CHECK_EQ_INT(raft_transfer(net.r[l], net.now, (raft_id_t)to + 1), 0);
    CHECK_EQ_INT(net_propose(&net, l, "refused", NULL), RAFT_ETRANSFER);
    net.cut[l][to] = false;
    net_run(&net, NET_T / 2);
    int l2 = net_leader(&net);
    CHECK_EQ_INT(l2, to);
    CHECK_EQ_INT(net_status(&net, to).term, term + 1);
    CHECK(net_has_applied(&net, to, "lagging") || net_status(&net, to).last_index > 3);
    CHECK(net_consistent(&net));
    net_free(&net);
}

static void test_transfer_aborts(void)
{
    net_t net;
    net_init(&net, 3);
    net_run(&net, 3 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    int to = (l + 1) % 3;
    net.cut[l][to] = net.cut[to][l] = true;
    net_propose(&net, l, "x", NULL);
    CHECK_EQ_INT(raft_transfer(net.r[l], net.now, (raft_id_t)to + 1), 0);
    net_run(&net, NET_T + 5);
    CHECK_EQ_INT(net_status(&net, l).transferee, 0);
    CHECK_EQ_INT(net_leader(&net), l);
    CHECK_EQ_INT(net_propose(&net, l, "y", NULL), 0);
    net_free(&net);
}

/* ---- regressions found by raft-sim ---- */

static void test_vote_without_own_membership(void)
{
    /* Raft thesis: a server grants votes without consulting its own configuration. Node 1's
     * log ends with a configuration (index 2) that leaves it out; the candidate (node 2, log
     * up to date) must still get its pre-vote and vote. (raft-sim seeds 188, 396) */
    raft_config_t c = net_default_cfg();
    c.disable_check_quorum = true;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    raft_members_t m = net_members(3, 0);
    m.m[0] = m.m[--m.n]; /* {3, 2} without 1 */
    unsigned char buf[4 + RAFT_MAX_MEMBERS * 9];
    raft_members_encode(&m, buf);
    raft_entry_t e = {1, 2, RAFT_ENTRY_CONFIG, buf, raft_members_encoded_size(&m)};
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 1);
    a.append.prev_index = 1;
    a.append.entries = &e;
    a.append.n_entries = 1;
    a.append.commit = 2; /* committed: it is really out */
    solo_step(&s, &a);
    solo_ready(&s);
    REQUIRE(raft_members(s.r)->n == 2);
    s.now += 3 * NET_T; /* the leader is long gone */
    raft_message_t pv = mk(RAFT_MSG_PREVOTE, 3, 1, 2);
    pv.vote.last_index = 2;
    pv.vote.last_term = 1;
    solo_step(&s, &pv);
    raft_update_t *u = solo_ready(&s);
    const raft_message_t *r = find_msg(u, RAFT_MSG_PREVOTE_RESP, 3);
    REQUIRE(r);
    CHECK(r->vote_resp.granted);
    raft_message_t v = mk(RAFT_MSG_VOTE, 3, 1, 2);
    v.vote = pv.vote;
    solo_step(&s, &v);
    u = solo_ready(&s);
    r = find_msg(u, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(r);
    CHECK(r->vote_resp.granted);
    CHECK(u->hard_state_changed && u->hard_state.vote == 3);
    /* but it does not campaign itself: it is no voter of its configuration */
    for (int i = 0; i < 10; i++) {
        solo_tick(&s, 2 * NET_T);
        u = solo_ready(&s);
        CHECK(!find_msg(u, RAFT_MSG_PREVOTE, 0));
        CHECK(!find_msg(u, RAFT_MSG_VOTE, 0));
    }
    solo_free(&s);
}

static void test_pending_self_removal_campaigns(void)
{
    /* A leader appended its own removal and lost leadership before committing it; its log is
     * the most up to date, so nobody else can win without its vote, which it refuses them
     * (raft-sim seed 994). It campaigns, counting only the voters of its configuration (not
     * itself), as the thesis' leader that manages a cluster it is not part of. */
    raft_config_t c = net_default_cfg();
    c.disable_check_quorum = true;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    raft_members_t m = net_members(3, 0);
    m.m[0] = m.m[--m.n]; /* {3, 2} without 1 */
    unsigned char buf[4 + RAFT_MAX_MEMBERS * 9];
    raft_members_encode(&m, buf);
    raft_entry_t e = {1, 2, RAFT_ENTRY_CONFIG, buf, raft_members_encoded_size(&m)};
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 1);
    a.append.prev_index = 1;
    a.append.entries = &e;
    a.append.n_entries = 1;
    a.append.commit = 1; /* the removal is not committed */
    solo_step(&s, &a);
    solo_ready(&s);
    raft_update_t *u = NULL;
    const raft_message_t *pv = NULL;
    for (int i = 0; i < 10 && !pv; i++) {
        solo_tick(&s, NET_T);
        u = solo_ready(&s);
        pv = find_msg(u, RAFT_MSG_PREVOTE, 2);
    }
    REQUIRE(pv);
    raft_term_t t = pv->term;
    raft_message_t g = mk(RAFT_MSG_PREVOTE_RESP, 2, 1, t);
    g.vote_resp.granted = true;
    solo_step(&s, &g);
    u = solo_ready(&s);
    CHECK(!find_msg(u, RAFT_MSG_VOTE, 0)); /* its own vote does not count: 1 of {2, 3} */
    g = mk(RAFT_MSG_PREVOTE_RESP, 3, 1, t);
    g.vote_resp.granted = true;
    solo_step(&s, &g);
    u = solo_ready(&s);
    REQUIRE(find_msg(u, RAFT_MSG_VOTE, 2) && find_msg(u, RAFT_MSG_VOTE, 3));
    for (raft_id_t v = 2; v <= 3; v++) {
        g = mk(RAFT_MSG_VOTE_RESP, v, 1, t);
        g.vote_resp.granted = true;
        solo_step(&s, &g);
    }
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK(st.role == RAFT_LEADER);
    /* once its term's entry (and with it the removal) commits, it steps down */
    raft_message_t ok = ack(&s, 2, 3, true);
    solo_step(&s, &ok);
    ok = ack(&s, 3, 3, true);
    solo_step(&s, &ok);
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.commit, 3);
    CHECK(st.role == RAFT_FOLLOWER);
    solo_free(&s);
}

static void test_stale_rejection_below_match(void)
{
    /* A rejection at or below matchIndex answers an older probe (late or duplicated): it must
     * be ignored in every progress state, not re-probe at the same next forever (raft-sim
     * seed 1285: "rejected 372 (hint 372/3): next 373 -> 373" millions of times). */
    raft_config_t c = net_default_cfg();
    c.disable_check_quorum = true;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    solo_elect(&s);                               /* noop at 2 */
    raft_propose(s.r, s.now, "x", 1, NULL, NULL); /* 3 */
    solo_ready(&s);
    raft_message_t ok = ack(&s, 2, 3, true);
    solo_step(&s, &ok);
    raft_propose(s.r, s.now, "y", 1, NULL, NULL); /* 4 */
    raft_propose(s.r, s.now, "z", 1, NULL, NULL); /* 5 */
    solo_ready(&s);
    /* 4 was lost: the follower rejects prev 4 (it holds 3): probe from 4 */
    raft_message_t rj = ack(&s, 2, 4, false);
    rj.append_resp.hint_index = 3;
    rj.append_resp.hint_term = 1;
    solo_step(&s, &rj);
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.peers[0].next, 4);
    raft_update_t *u = solo_ready(&s);
    CHECK_EQ_INT(count_msgs(u, RAFT_MSG_APPEND, 2), 1); /* the probe */
    /* an old rejection of prev 3 (from before it held 3) arrives late, twice */
    for (int k = 0; k < 2; k++) {
        raft_message_t old = ack(&s, 2, 3, false);
        old.append_resp.hint_index = 2;
        old.append_resp.hint_term = 1;
        solo_step(&s, &old);
        u = solo_ready(&s);
        CHECK_EQ_INT(count_msgs(u, RAFT_MSG_APPEND, 2), 0); /* no second probe */
        raft_status(s.r, &st);
        CHECK_EQ_INT(st.peers[0].match, 3);
        CHECK_EQ_INT(st.peers[0].next, 4);
    }
    solo_free(&s);
}

static void test_no_heartbeat_storm_below_snapshot(void)
{
    /* A follower whose match point was compacted away gets heartbeats with prev = 0 that
     * cannot carry the commit index. The leader must not answer each of its responses with
     * another such heartbeat (raft-sim seeds 258, 367: unbounded message growth under
     * duplication). */
    raft_config_t c = net_default_cfg();
    c.disable_check_quorum = true;
    solo_t s;
    solo_init(&s, 1, 3, &c);
    solo_elect(&s);
    for (int i = 0; i < 10; i++)
        raft_propose(s.r, s.now, "x", 1, NULL, NULL); /* 3..12 */
    solo_ready(&s);
    raft_message_t ok = ack(&s, 2, 12, true);
    solo_step(&s, &ok);
    raft_update_t *u = solo_ready(&s);
    REQUIRE(u->commit == 12);
    REQUIRE(raft_snapshot_taken(s.r, 10) == 0);
    solo_ready(&s);
    /* node 3 is slow: its first answer says it holds 5, below the snapshot base (10), and
     * its answers keep coming (duplicates) */
    for (int k = 0; k < 3; k++) {
        raft_message_t h = ack(&s, 3, 5, true);
        solo_step(&s, &h);
        u = solo_ready(&s);
        if (k > 0) /* the first answer may start a snapshot; the rest must be quiet */
            CHECK_EQ_INT(count_msgs(u, RAFT_MSG_APPEND, 3), 0);
    }
    solo_free(&s);
}

static void test_snapshot_keeps_matching_suffix(void)
{
    /* InstallSnapshot when the follower already holds the snapshot's last entry: the entries
     * after it are kept. They may have been acknowledged and counted toward a commit
     * (raft-sim seed 1231: 488 acknowledged, then a snapshot at 487 dropped it, and a leader
     * without 488 was elected). */
    solo_t s;
    solo_init(&s, 1, 3, NULL);
    raft_entry_t e[6];
    for (int i = 0; i < 6; i++)
        e[i] = (raft_entry_t){1, (raft_index_t)(2 + i), RAFT_ENTRY_NORMAL, "v", 1};
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 1);
    a.append.prev_index = 1;
    a.append.entries = e;
    a.append.n_entries = 6; /* 2..7 */
    a.append.commit = 3;
    solo_step(&s, &a);
    solo_ready(&s);
    raft_members_t m = net_members(3, 0);
    CHECK_EQ_INT(raft_snapshot_installed(s.r, s.now, 1, 5, 1, &m), 0);
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.snapshot_index, 5);
    CHECK_EQ_INT(st.last_index, 7); /* 6 and 7 kept */
    CHECK_EQ_INT(st.commit, 5);
    raft_entry_t got;
    CHECK_EQ_INT(raft_debug_entry(s.r, 7, &got), 0);
    /* a snapshot whose last entry we do not hold (other term) replaces everything */
    CHECK_EQ_INT(raft_snapshot_installed(s.r, s.now, 2, 6, 2, &m), 0);
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.snapshot_index, 6);
    CHECK_EQ_INT(st.last_index, 6);
    solo_free(&s);
}

static void test_stale_epoch_follower_resets(void)
{
    /* A follower that missed an escape election still holds the dead history, committed
     * prefix included. A leader of the new epoch must not be told that prefix matches (a
     * heartbeat with prev 0 was answered "success at my commit index 454" and counted:
     * raft-sim seed 993 lost a committed entry). It discards its state first. */
    solo_t s;
    solo_init(&s, 1, 3, NULL);
    raft_entry_t e[5];
    for (int i = 0; i < 5; i++)
        e[i] = (raft_entry_t){1, (raft_index_t)(2 + i), RAFT_ENTRY_NORMAL, "old", 3};
    raft_message_t a = mk(RAFT_MSG_APPEND, 2, 1, 1);
    a.append.prev_index = 1;
    a.append.entries = e;
    a.append.n_entries = 5; /* 2..6 */
    a.append.commit = 6;
    solo_step(&s, &a);
    raft_update_t *u = solo_ready(&s);
    REQUIRE(u->commit == 6);
    /* leader 3 of term 6, whose log started with an escape election in term 5 */
    raft_message_t h = mk(RAFT_MSG_APPEND, 3, 1, 6);
    h.epoch = 5;
    h.append.commit = 2;
    solo_step(&s, &h);
    u = solo_ready(&s);
    CHECK(u->reset);
    const raft_message_t *r = find_msg(u, RAFT_MSG_APPEND_RESP, 3);
    REQUIRE(r);
    CHECK_EQ_INT(r->append_resp.index, 0); /* not 6 */
    CHECK_EQ_INT(r->epoch, 5);
    raft_status_t st;
    raft_status(s.r, &st);
    CHECK_EQ_INT(st.last_index, 0);
    CHECK_EQ_INT(st.commit, 0);
    CHECK_EQ_INT(st.resets, 1);
    /* later messages of that epoch reset nothing */
    solo_step(&s, &h);
    u = solo_ready(&s);
    CHECK(!u->reset);
    solo_free(&s);
}

static hc_test_t tests[] = {
    {"election_one_leader", test_election_one_leader},
    {"vote_once_per_term", test_vote_once_per_term},
    {"bug_vote_twice", test_bug_vote_twice},
    {"stale_log_loses", test_stale_log_loses},
    {"prevote_keeps_terms", test_prevote_keeps_terms},
    {"no_prevote_disrupts", test_no_prevote_disrupts},
    {"check_quorum_step_down", test_check_quorum_step_down},
    {"leader_stickiness", test_leader_stickiness},
    {"noop_at_term_start", test_noop_at_term_start},
    {"replicate_and_apply", test_replicate_and_apply},
    {"commit_only_current_term", test_commit_only_current_term},
    {"bug_commit_without_majority", test_bug_commit_without_majority},
    {"conflict_truncation", test_conflict_truncation},
    {"fast_backtracking", test_fast_backtracking},
    {"pipelining_window", test_pipelining_window},
    {"message_size_bounds", test_message_size_bounds},
    {"read_index_waits", test_read_index_waits},
    {"read_index_needs_quorum", test_read_index_needs_quorum},
    {"transfer", test_transfer},
    {"transfer_aborts", test_transfer_aborts},
    {"vote_without_own_membership", test_vote_without_own_membership},
    {"pending_self_removal_campaigns", test_pending_self_removal_campaigns},
    {"stale_rejection_below_match", test_stale_rejection_below_match},
    {"no_heartbeat_storm_below_snapshot", test_no_heartbeat_storm_below_snapshot},
    {"snapshot_keeps_matching_suffix", test_snapshot_keeps_matching_suffix},
    {"stale_epoch_follower_resets", test_stale_epoch_follower_resets},
};

HC_TEST_MAIN(tests)
