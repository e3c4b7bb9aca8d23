/* test_raft_incarnation.c: identity per incarnation (raft/incarnation.[ch]): the pure join /
 * bootstrap / replace policy on its own, then driving the raft core through the dangerous
 * orders on the small in-test network of test_raft_net.h: a replaced incarnation's late
 * messages, a replacement racing a leader change, two incarnations of one host, a majority of
 * incarnations gone and the hosts founding a new cluster (the start-over rule), and the
 * one-entry swap the policy must never make. */
#include "incarnation.h"
#include "test_raft_net.h"

/* ---- the pure policy ---- */

static inc_view_t view3(raft_id_t a, raft_id_t b, raft_id_t c)
{
    inc_view_t v;
    memset(&v, 0, sizeof v);
    v.n_hosts = 3;
    v.hosts[0].id = a;
    v.hosts[1].id = b;
    v.hosts[2].id = c;
    for (int h = 0; h < 3; h++)
        v.hosts[h].joining = true; /* new incarnations asked to be added */
    return v;
}

static void add_member(inc_view_t *v, raft_id_t id, int role, int host, bool caught_up)
{
    v->member_host[v->members.n] = host;
    v->caught_up[v->members.n] = caught_up;
    v->members.m[v->members.n++] = (raft_member_t){id, (uint8_t)role};
}

/* Leader view of voters 1, 2, 3 on hosts 0, 1, 2 (3 not caught up); hosts answer with a, b,
 * c; the configuration is committed. */
static inc_view_t voters123(raft_id_t a, raft_id_t b, raft_id_t c)
{
    inc_view_t v = view3(a, b, c);
    v.committed = true;
    add_member(&v, 1, RAFT_VOTER, 0, true);
    add_member(&v, 2, RAFT_VOTER, 1, true);
    add_member(&v, 3, RAFT_VOTER, 2, false);
    return v;
}

static void test_ids(void)
{
    raft_id_t id = inc_id_make(7, 0x123456789abcdefull);
    CHECK_EQ_INT(inc_id_tag(id), 7);
    CHECK(id != inc_placeholder_id(7));
    CHECK(inc_id_make(7, 0) != inc_placeholder_id(7)); /* random 0 never yields the placeholder */
    CHECK_EQ_INT(inc_id_tag(inc_placeholder_id(9)), 9);
    CHECK_EQ_INT(inc_quorum(3), 2);
    CHECK_EQ_INT(inc_quorum(4), 3);
    CHECK_EQ_INT(inc_quorum(5), 3);
}

static void test_majority_bootstrap(void)
{
    raft_members_t out;
    /* two of three hosts answer, fresh: the lowest founds with a placeholder for the third */
    inc_view_t v = view3(11, 12, 0);
    v.self = 0;
    CHECK_EQ_INT(inc_decide_start(&v, NULL, &out), INC_BOOTSTRAP);
    CHECK_EQ_INT(out.n, 3);
    CHECK(out.m[0].id == 11 && out.m[1].id == 12 && out.m[2].id == inc_placeholder_id(3));
    for (uint32_t i = 0; i < out.n; i++)
        CHECK_EQ_INT(out.m[i].role, RAFT_VOTER);
    /* the other founder waits for the offer and adopts it */
    v.self = 1;
    CHECK_EQ_INT(inc_decide_start(&v, NULL, &out), INC_WAIT);
    raft_members_t offer = out;
    CHECK(inc_accept_bootstrap(&v, 0, &offer));
    CHECK(!inc_accept_bootstrap(&v, 1, &offer)); /* not from the lowest answering host */
    /* a node alone waits */
    inc_view_t lone = view3(0, 0, 13);
    lone.self = 2;
    CHECK_EQ_INT(inc_decide_start(&lone, NULL, &out), INC_WAIT);
    /* an offer that does not name me, or with a learner, is refused */
    inc_view_t v3 = view3(11, 12, 13);
    v3.self = 2;
    CHECK(!inc_accept_bootstrap(&v3, 0, &offer));
    /* heard of an established cluster: never bootstrap, never adopt an offer */
    inc_view_t e = view3(11, 12, 0);
    e.self = 0;
    e.hosts[1].established = true;
    CHECK_EQ_INT(inc_decide_start(&e, NULL, &out), INC_JOIN);
    e.self = 1;
    CHECK(!inc_accept_bootstrap(&e, 0, &offer));
    /* five hosts, three answer: five voters, quorum three = a majority of the hosts, so a rival
     * bootstrap among the other hosts cannot elect */
    inc_view_t f;
    memset(&f, 0, sizeof f);
    f.n_hosts = 5;
    f.hosts[1].id = 21;
    f.hosts[3].id = 23;
    f.hosts[4].id = 24;
    f.self = 1;
    uint16_t tags[5] = {100, 101, 102, 103, 104};
    CHECK_EQ_INT(inc_decide_start(&f, tags, &out), INC_BOOTSTRAP);
    CHECK_EQ_INT(out.n, 5);
    CHECK(out.m[0].id == inc_placeholder_id(100) && out.m[2].id == inc_placeholder_id(102));
}

static void test_replace_order(void)
{
    /* voters A(1) B(2) X(3); host 2 now answers with Y(4) */
    inc_view_t v = voters123(1, 2, 4);
    raft_change_t k;
    raft_id_t id;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_ADD_LEARNER && id == 4);
    add_member(&v, 4, RAFT_LEARNER, 2, false);
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 0); /* Y not caught up: wait */
    v.committed = false;
    v.caught_up[3] = true;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 0); /* change pending: wait */
    v.committed = true;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_REMOVE && id == 3); /* remove the old before promoting the new */
    v.members.m[2] = v.members.m[3];
    v.member_host[2] = 2;
    v.caught_up[2] = true;
    v.members.n = 3;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_PROMOTE && id == 4);
    v.members.m[2].role = RAFT_VOTER;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 0);
    CHECK(inc_self_ready(&v, 1));
    /* silence is no evidence: host 2 not heard, X stays */
    inc_view_t s = voters123(1, 2, 0);
    CHECK_EQ_INT(inc_next_change(&s, &k, &id), 0);
    CHECK_EQ_INT(inc_voters_gone(&s), 0);
    /* a member of no listed host goes first (never the leader itself) */
    add_member(&s, 9, RAFT_VOTER, -1, true);
    CHECK_EQ_INT(inc_next_change(&s, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_REMOVE && id == 9);
    /* the leader's own host reported with another id: a stale report, no action */
    inc_view_t l = view3(7, 2, 3);
    l.committed = true;
    add_member(&l, 1, RAFT_VOTER, 0, true);
    add_member(&l, 2, RAFT_VOTER, 1, true);
    add_member(&l, 3, RAFT_VOTER, 2, true);
    l.hosts[0].id = 1;
    l.self = 0;
    CHECK_EQ_INT(inc_next_change(&l, &k, &id), 0);
}

static void test_policy_two_incarnations(void)
{
    /* host 2: X(3) voter, W(4) a learner from a previous replacement that died, Y(5) answers */
    inc_view_t v = voters123(1, 2, 5);
    add_member(&v, 4, RAFT_LEARNER, 2, false);
    raft_change_t k;
    raft_id_t id;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_ADD_LEARNER && id == 5);
    add_member(&v, 5, RAFT_LEARNER, 2, false);
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_REMOVE && id == 4); /* dead learner first, while Y catches up */
    /* both X and Y voters (a leader change lost track): remove X */
    inc_view_t w = voters123(1, 2, 5);
    add_member(&w, 5, RAFT_VOTER, 2, true);
    CHECK_EQ_INT(inc_next_change(&w, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_REMOVE && id == 3);
    CHECK(!inc_self_ready(&w, 5) && inc_self_ready(&w, 1));
}

static void test_policy_majority_gone(void)
{
    /* {A, X1, X2}: hosts 1 and 2 answer with new incarnations */
    inc_view_t v = view3(1, 4, 5);
    v.self = 1;
    add_member(&v, 1, RAFT_VOTER, 0, false);
    add_member(&v, 2, RAFT_VOTER, 1, false);
    add_member(&v, 3, RAFT_VOTER, 2, false);
    CHECK_EQ_INT(inc_voters_gone(&v), 2);
    CHECK(inc_majority_gone(&v));
    raft_members_t out;
    CHECK_EQ_INT(inc_decide_start(&v, NULL, &out), INC_RECOVER);
    v.hosts[2].id = 3; /* only one gone: join */
    CHECK(!inc_majority_gone(&v));
    CHECK_EQ_INT(inc_decide_start(&v, NULL, &out), INC_JOIN);
    v.hosts[2].id = 0; /* silence is no evidence */
    CHECK(!inc_majority_gone(&v));
}

static void test_policy_bugs(void)
{
    inc_view_t v = voters123(1, 2, 4);
    add_member(&v, 4, RAFT_LEARNER, 2, false);
    raft_change_t k;
    raft_id_t id;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 0);
    v.bugs = INC_BUG_SWAP_TWO_VOTERS;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_REMOVE && id == 3);
    v.bugs = INC_BUG_VOTE_BEFORE_CAUGHT_UP;
    CHECK_EQ_INT(inc_next_change(&v, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_REMOVE && id == 3);
}

/* ---- driving the core: node index i is raft id i + 1; host_of[i] its host ---- */

static int host_of[NET_MAX];
static int answering[3];          /* node index answering for each host, -1 none */
static bool discovering[NET_MAX]; /* process up without raft yet (a new incarnation) */

/* The host of a member id: the node's, or the host a placeholder stands for (tag = host + 1). */
static int32_t host_of_member(raft_id_t id)
{
    if (id >= 1 && id <= NET_MAX)
        return host_of[id - 1];
    uint16_t tag = inc_id_tag(id);
    return tag >= 1 && tag <= 3 && id == inc_placeholder_id(tag) ? tag - 1 : -1;
}

static inc_view_t leader_view(net_t *net, int l)
{
    raft_status_t s = net_status(net, l);
    inc_view_t v;
    memset(&v, 0, sizeof v);
    v.n_hosts = 3;
    v.self = (uint32_t)host_of[l];
    for (int h = 0; h < 3; h++) {
        v.hosts[h].id = answering[h] >= 0 ? (raft_id_t)answering[h] + 1 : 0;
        v.hosts[h].joining = true; /* a new incarnation asks to be added */
    }
    v.members = s.members;
    v.committed = s.members_committed;
    for (uint32_t i = 0; i < s.members.n; i++) {
        raft_id_t id = s.members.m[i].id;
        v.member_host[i] = host_of_member(id);
        if (id == s.id) {
            v.caught_up[i] = true;
            continue;
        }
        for (uint32_t p = 0; p < s.n_peers; p++)
            if (s.peers[p].id == id)
                v.caught_up[i] = s.peers[p].member_role == RAFT_VOTER
                                     ? s.peers[p].counted
                                     : !s.peers[p].recovering && s.peers[p].match >= s.commit;
    }
    return v;
}

/* Runs the leader's policy until it has nothing left to do; returns the changes made. */
static int drive(net_t *net, int rounds)
{
    int made = 0;
    for (int k = 0; k < rounds; k++) {
        net_run(net, NET_T / 4);
        int l = net_leader(net);
        if (l < 0)
            continue;
        inc_view_t v = leader_view(net, l);
        raft_change_t kind;
        raft_id_t id;
        if (!inc_next_change(&v, &kind, &id))
            continue;
        if (raft_change(net->r[l], net->now, kind, id, NULL) == 0)
            made++;
    }
    net_run(net, NET_T);
    return made;
}

static void net3(net_t *net)
{
    net_init(net, 3);
    for (int i = 0; i < NET_MAX; i++) {
        host_of[i] = i < 3 ? i : -1;
        discovering[i] = false;
    }
    for (int h = 0; h < 3; h++)
        answering[h] = h;
}

/* Three hosts, a leader elected and `data` committed; returns the leader or -1. */
static int net3_with(net_t *net, const char *data)
{
    net3(net);
    net_run(net, 4 * NET_T);
    int l = net_leader(net);
    if (l >= 0) {
        net_propose(net, l, data, NULL);
        net_run(net, 5);
    }
    return l;
}

/* Host h's process dies and a new incarnation (node index i, a fresh id) starts without state. */
static void new_incarnation(net_t *net, int h, int i)
{
    int l = net_leader(net);
    raft_members_t m = *raft_members(net->r[l >= 0 ? l : 0]);
    net->down[answering[h]] = true;
    host_of[i] = h;
    answering[h] = i;
    net->n = i + 1 > net->n ? i + 1 : net->n;
    net_start_node(net, i, RAFT_START_JOIN, &m);
}

static bool voters_are(net_t *net, int l, raft_id_t a, raft_id_t b, raft_id_t c)
{
    raft_status_t s = net_status(net, l);
    if (!s.members_committed || s.members.n != 3)
        return false;
    raft_id_t want[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        bool found = false;
        for (uint32_t i = 0; i < s.members.n; i++)
            found |= s.members.m[i].id == want[k] && s.members.m[i].role == RAFT_VOTER;
        if (!found)
            return false;
    }
    return true;
}

/* A write on leader l after the replacement: node `fresh` (the new incarnation) holds the
 * write from before and this one, and all logs agree. Frees the network. */
static void finish(net_t *net, int l, int fresh, const char *before, const char *after)
{
    net_propose(net, l, after, NULL);
    net_run(net, NET_T);
    CHECK(net_has_applied(net, fresh, before) && net_has_applied(net, fresh, after));
    CHECK(net_consistent(net));
    net_free(net);
}

static void test_replaced_incarnation_late_messages(void)
{
    net_t net;
    int l = net3_with(&net, "before");
    REQUIRE(l >= 0);
    int old = (l + 1) % 3;
    /* the old incarnation's last words: a vote request of a high term and a success that
     * claims far more than anyone holds, delivered after its replacement */
    raft_status_t so = net_status(&net, old);
    raft_message_t vote = {.type = RAFT_MSG_VOTE,
                           .from = (raft_id_t)old + 1,
                           .to = (raft_id_t)l + 1,
                           .term = so.term + 5,
                           .incarnation = net.inc[old]};
    vote.vote.last_index = so.last_index + 100;
    vote.vote.last_term = so.term + 4;
    raft_message_t ack = {.type = RAFT_MSG_APPEND_RESP,
                          .from = (raft_id_t)old + 1,
                          .to = (raft_id_t)l + 1,
                          .term = so.term,
                          .incarnation = net.inc[old]};
    ack.append_resp.success = true;
    ack.append_resp.index = so.last_index + 50;
    ack.append_resp.last_index = so.last_index + 50;
    ack.append_resp.seq = 1u << 30;
    new_incarnation(&net, old, 3);
    drive(&net, 40);
    l = net_leader(&net);
    REQUIRE(l >= 0);
    CHECK(voters_are(&net, l, 4, (raft_id_t)((old + 1) % 3) + 1, (raft_id_t)((old + 2) % 3) + 1));
    raft_status_t before = net_status(&net, l);
    CHECK_EQ_INT(raft_step(net.r[l], net.now, &ack), 0);
    CHECK_EQ_INT(raft_step(net.r[l], net.now, &vote), 0);
    net_ready(&net, l);
    net_deliver_all(&net);
    raft_status_t after = net_status(&net, l);
    CHECK_EQ_INT(after.role, RAFT_LEADER); /* stickiness: a removed server cannot depose it */
    CHECK_EQ_INT(after.term, before.term);
    CHECK(after.commit <= after.last_index);
    finish(&net, l, 3, "before", "after");
}

static void test_replacement_races_leader_change(void)
{
    net_t net;
    int l = net3_with(&net, "x");
    REQUIRE(l >= 0);
    int old = (l + 1) % 3;
    new_incarnation(&net, old, 3);
    /* the leader adds the learner, it catches up, the leader appends the removal of the old
     * incarnation and crashes (restarts with its hard state) before anyone received it */
    inc_view_t v = leader_view(&net, l);
    raft_change_t k;
    raft_id_t id;
    REQUIRE(inc_next_change(&v, &k, &id) == 1 && k == RAFT_CHANGE_ADD_LEARNER);
    CHECK_EQ_INT(raft_change(net.r[l], net.now, k, id, NULL), 0);
    net_run(&net, NET_T / 2);
    v = leader_view(&net, l);
    REQUIRE(inc_next_change(&v, &k, &id) == 1 && k == RAFT_CHANGE_REMOVE);
    net_isolate(&net, l, true);
    CHECK_EQ_INT(raft_change(net.r[l], net.now, k, id, NULL), 0);
    raft_term_t t0 = net_status(&net, l).term;
    /* the others elect nobody without it (one voter is dead), so the leader change happens
     * when it comes back: a new term, with or without the removal it appended */
    net_run(&net, 3 * NET_T);
    CHECK(net_status(&net, l).role != RAFT_LEADER); /* check-quorum */
    net_heal(&net);
    /* whoever leads next finishes the replacement from its own view */
    drive(&net, 60);
    int nl = net_leader(&net);
    REQUIRE(nl >= 0);
    CHECK(net_status(&net, nl).term > t0);
    raft_id_t survivor = (raft_id_t)((old + 1) % 3 == l ? (old + 2) % 3 : (old + 1) % 3) + 1;
    CHECK(voters_are(&net, nl, (raft_id_t)l + 1, survivor, 4));
    net_propose(&net, nl, "y", NULL);
    net_run(&net, NET_T);
    CHECK(net_has_applied(&net, 3, "y"));
    CHECK(net_consistent(&net));
    /* full fault tolerance is back: any one voter may now fail */
    net_isolate(&net, nl, true);
    net_run(&net, 6 * NET_T);
    int l2 = net_leader(&net);
    CHECK(l2 >= 0 && l2 != nl);
    net_free(&net);
}

static void test_two_incarnations_of_one_host(void)
{
    net_t net;
    net3(&net);
    net_run(&net, 4 * NET_T);
    int l = net_leader(&net);
    REQUIRE(l >= 0);
    int old = (l + 1) % 3;
    net_propose(&net, l, "x", NULL);
    new_incarnation(&net, old, 3);
    inc_view_t v = leader_view(&net, l);
    raft_change_t k;
    raft_id_t id;
    REQUIRE(inc_next_change(&v, &k, &id) == 1 && k == RAFT_CHANGE_ADD_LEARNER);
    CHECK_EQ_INT(raft_change(net.r[l], net.now, k, id, NULL), 0);
    net_run(&net, 3);
    /* the new incarnation dies too before its promotion; a third one answers */
    new_incarnation(&net, old, 4);
    drive(&net, 60);
    int nl = net_leader(&net);
    REQUIRE(nl >= 0);
    raft_id_t others[2], n = 0;
    for (int i = 0; i < 3; i++)
        if (i != old)
            others[n++] = (raft_id_t)i + 1;
    CHECK(voters_are(&net, nl, others[0], others[1], 5));
    finish(&net, nl, 4, "x", "y");
}

static void test_majority_of_incarnations_gone(void)
{
    /* two of three hosts restart without state at once: the survivor's configuration names two
     * dead incarnations, nobody can be elected in it, and the policy says so at every node */
    net_t net;
    int l = net3_with(&net, "x");
    REQUIRE(l >= 0);
    int a = (l + 1) % 3, b = (l + 2) % 3;
    new_incarnation(&net, a, 3);
    new_incarnation(&net, b, 4);
    net_run(&net, 10 * NET_T);
    /* check-quorum: the old leader stepped down, and no one can win */
    CHECK(net_leader(&net) < 0);
    inc_view_t v = leader_view(&net, l);
    v.self = (uint32_t)l;
    CHECK(inc_majority_gone(&v));
    raft_members_t out;
    CHECK_EQ_INT(inc_decide_start(&v, NULL, &out), INC_RECOVER);
    /* ... and the new incarnations never served or acknowledged a thing */
    CHECK_EQ_INT(net.n_applied[3], 0);
    CHECK_EQ_INT(net.n_applied[4], 0);
    net_free(&net);
}

/* ---- the start-over rule and majority bootstrap ---- */

/* Host h's process (running raft or not) is replaced by a new incarnation, node index i, that
 * runs no raft yet: it discovers. */
static void restart_discovering(net_t *net, int h, int i)
{
    int old = answering[h];
    if (old >= 0) {
        net->down[old] = true;
        discovering[old] = false;
    }
    host_of[i] = h;
    answering[h] = i;
    discovering[i] = true;
    net->down[i] = true; /* no raft_t to tick or deliver to until it starts one */
    net->n = i + 1 > net->n ? i + 1 : net->n;
}

/* Node i's own configuration, with the incarnation answering for each host as evidence. */
static inc_view_t member_view(net_t *net, int i)
{
    inc_view_t v;
    memset(&v, 0, sizeof v);
    v.n_hosts = 3;
    v.self = (uint32_t)host_of[i];
    v.members = *raft_members(net->r[i]);
    for (uint32_t k = 0; k < v.members.n; k++)
        v.member_host[k] = host_of_member(v.members.m[k].id);
    for (int h = 0; h < 3; h++)
        v.hosts[h].id = answering[h] >= 0 ? (raft_id_t)answering[h] + 1 : 0;
    return v;
}

/* What discovering node i hears from the hosts in `reach` (bit per host): who answers, who is
 * established (runs raft; `offerer`, a founder whose offer arrived first, counts as fresh: the
 * offer is its answer), and the configuration of an established one. */
static inc_view_t discovery_view(net_t *net, int i, unsigned reach, int offerer)
{
    inc_view_t v;
    memset(&v, 0, sizeof v);
    v.n_hosts = 3;
    v.self = (uint32_t)host_of[i];
    for (int h = 0; h < 3; h++) {
        int a = answering[h];
        if (a < 0 || !((reach >> h) & 1) || (net->down[a] && !discovering[a]))
            continue;
        v.hosts[h].id = (raft_id_t)a + 1;
        v.hosts[h].established = !discovering[a] && h != offerer;
        if (v.hosts[h].established && v.members.n == 0) {
            v.members = *raft_members(net->r[a]);
            for (uint32_t k = 0; k < v.members.n; k++)
                v.member_host[k] = host_of_member(v.members.m[k].id);
        }
    }
    return v;
}

/* The discovering nodes decide; the founder bootstraps and its offer reaches the others in
 * `reach`, which adopt it if the policy says so. Returns the founder's node index or -1. */
static int found_round(net_t *net, unsigned reach, raft_members_t *first)
{
    int founder = -1;
    for (int h = 0; h < 3 && founder < 0; h++) {
        int i = answering[h];
        if (i < 0 || !discovering[i] || !((reach >> h) & 1))
            continue;
        inc_view_t v = discovery_view(net, i, reach, -1);
        inc_decision_t d = inc_decide_start(&v, NULL, first);
        if (d == INC_BOOTSTRAP) {
            founder = i;
            discovering[i] = false;
            net_start_node(net, i, RAFT_START_BOOTSTRAP, first);
        } else {
            CHECK_EQ_INT(d, INC_WAIT); /* nobody established: the lowest host coordinates */
        }
    }
    if (founder < 0)
        return -1;
    /* the offers arrive together: each founder decides on what it heard before any adopted */
    bool adopt[3] = {false, false, false};
    for (int h = 0; h < 3; h++) {
        int i = answering[h];
        if (i < 0 || !discovering[i] || !((reach >> h) & 1))
            continue;
        inc_view_t v = discovery_view(net, i, reach, host_of[founder]);
        adopt[h] = inc_accept_bootstrap(&v, (uint32_t)host_of[founder], first);
    }
    for (int h = 0; h < 3; h++)
        if (adopt[h]) {
            discovering[answering[h]] = false;
            net_start_node(net, answering[h], RAFT_START_BOOTSTRAP, first);
        }
    return founder;
}

static bool applied_anywhere(net_t *net, int from, int to, const char *data)
{
    for (int i = from; i < to; i++)
        if (!net->down[i] && net_has_applied(net, i, data))
            return true;
    return false;
}

static void test_majority_gone_hosts_found_a_new_cluster(void)
{
    net_t net;
    int l = net3_with(&net, "old");
    REQUIRE(l >= 0);
    net_run(&net, NET_T);
    CHECK(net_has_applied(&net, l, "old"));
    int a = (l + 1) % 3, b = (l + 2) % 3;
    /* two of three hosts restart without state at once: new incarnations 3 and 4 discover */
    restart_discovering(&net, host_of[a], 3);
    restart_discovering(&net, host_of[b], 4);
    /* a new incarnation that hears the survivor waits: the configuration it reports is dead */
    raft_members_t first;
    inc_view_t dv = discovery_view(&net, 3, 7, -1);
    CHECK(dv.hosts[host_of[l]].established);
    CHECK_EQ_INT(inc_decide_start(&dv, NULL, &first), INC_RECOVER);
    CHECK(!inc_accept_bootstrap(&dv, 0, &first));
    /* the survivor sees the evidence: its configuration lost a majority, nobody can be elected
     * in it, and it starts over as a new incarnation too (store cleared, fresh id) */
    net_run(&net, 3 * NET_T);
    CHECK(net_leader(&net) < 0);
    inc_view_t mv = member_view(&net, l);
    CHECK_EQ_INT(inc_voters_gone(&mv), 2);
    CHECK(inc_majority_gone(&mv));
    restart_discovering(&net, host_of[l], 5);
    net_clear_applied(&net, l);
    /* every host answers, none is established: host 0's incarnation founds with one voter per
     * host, the others adopt its offer */
    int founder = found_round(&net, 7, &first);
    REQUIRE(founder >= 0);
    CHECK_EQ_INT(host_of[founder], 0);
    CHECK_EQ_INT(first.n, 3);
    for (uint32_t k = 0; k < first.n; k++) {
        CHECK(first.m[k].id >= 4 && first.m[k].id <= 6); /* the new incarnations only */
        CHECK_EQ_INT(first.m[k].role, RAFT_VOTER);
    }
    for (int i = 3; i <= 5; i++)
        CHECK(!discovering[i] && !net.down[i]);
    /* a leader is elected among them and serves writes */
    net_run(&net, 4 * NET_T);
    int nl = net_leader(&net);
    REQUIRE(nl >= 3);
    CHECK_EQ_INT(net_propose(&net, nl, "new", NULL), 0);
    net_run(&net, NET_T);
    for (int i = 3; i <= 5; i++)
        CHECK(net_has_applied(&net, i, "new"));
    /* nothing of the old cluster: no node of the new one applied "old", and every log starts
     * with the new founding configuration */
    CHECK(!applied_anywhere(&net, 3, 6, "old"));
    for (int i = 3; i <= 5; i++) {
        raft_entry_t e;
        raft_members_t m;
        REQUIRE(raft_debug_entry(net.r[i], 1, &e) == 0);
        CHECK_EQ_INT(e.type, RAFT_ENTRY_CONFIG);
        CHECK(raft_members_decode(e.data, e.len, &m) == 0 && m.n == 3);
        for (uint32_t k = 0; k < m.n; k++)
            CHECK(m.m[k].id >= 4 && m.m[k].id <= 6);
    }
    CHECK(net_consistent(&net));
    net_free(&net);
}

static void test_refound_with_placeholder(void)
{
    /* the same, but the survivor's host is cut off while the others found: a placeholder
     * stands for it, and its new incarnation replaces the placeholder like a dead one */
    net_t net;
    int l = net3_with(&net, "old");
    REQUIRE(l >= 0);
    net_run(&net, NET_T);
    int a = (l + 1) % 3, b = (l + 2) % 3;
    restart_discovering(&net, host_of[a], 3);
    restart_discovering(&net, host_of[b], 4);
    net_isolate(&net, l, true);
    unsigned reach = 7u & ~(1u << host_of[l]);
    raft_members_t first;
    int founder = found_round(&net, reach, &first);
    REQUIRE(founder >= 0);
    int ph = 0;
    for (uint32_t k = 0; k < first.n; k++)
        ph += first.m[k].id == inc_placeholder_id((uint16_t)(host_of[l] + 1));
    CHECK_EQ_INT(ph, 1);
    net_run(&net, 4 * NET_T);
    int nl = net_leader(&net);
    REQUIRE(nl == 3 || nl == 4);
    CHECK_EQ_INT(net_propose(&net, nl, "new", NULL), 0);
    net_run(&net, NET_T);
    /* the survivor comes back, finds its configuration dead and starts over; its new
     * incarnation hears the new cluster and joins it */
    net_heal(&net);
    inc_view_t mv = member_view(&net, l);
    CHECK(inc_majority_gone(&mv));
    restart_discovering(&net, host_of[l], 5);
    inc_view_t dv = discovery_view(&net, 5, 7, -1);
    raft_members_t heard;
    CHECK_EQ_INT(inc_decide_start(&dv, NULL, &heard), INC_JOIN);
    discovering[5] = false;
    net_start_node(&net, 5, RAFT_START_JOIN, &dv.members);
    drive(&net, 60);
    nl = net_leader(&net);
    REQUIRE(nl >= 3);
    CHECK(voters_are(&net, nl, 4, 5, 6));
    CHECK(net_has_applied(&net, 5, "new"));
    CHECK(!applied_anywhere(&net, 3, 6, "old"));
    CHECK(net_consistent(&net));
    net_free(&net);
}

/* The one-entry swap {A, B, C1} -> {A, B, C2} that the policy never asks for: with the test
 * switches (raft-sim --bug swap-two-voters) the removal of C1 while C2 is a learner that has
 * not caught up becomes one configuration entry that changes two voters at once; without them
 * the policy waits for the catch-up and the removal leaves {A, B} with C2 still a learner. */
static int swap_voters_after(uint32_t raft_bugs, uint32_t inc_bugs, raft_index_t *entries)
{
    raft_config_t cfg = net_default_cfg();
    cfg.debug_bugs = raft_bugs;
    net_t net;
    net_init_cfg(&net, 3, 0, &cfg);
    for (int i = 0; i < NET_MAX; i++)
        host_of[i] = i < 3 ? i : -1;
    for (int h = 0; h < 3; h++)
        answering[h] = h;
    net_run(&net, 4 * NET_T);
    int a = net_leader(&net);
    int voters = -1;
    if (a >= 0) {
        int c = (a + 2) % 3;
        new_incarnation(&net, c, 3);
        net.cut[a][3] = true; /* the new incarnation cannot catch up */
        raft_index_t first = net_status(&net, a).members_index;
        for (int k = 0; k < 8; k++) {
            net_run(&net, 5);
            inc_view_t v = leader_view(&net, a);
            v.bugs = inc_bugs;
            raft_change_t kind;
            raft_id_t id;
            if (inc_next_change(&v, &kind, &id))
                raft_change(net.r[a], net.now, kind, id, NULL);
        }
        raft_status_t s = net_status(&net, a);
        /* number of voters, plus 10 if the new incarnation is one of them */
        voters = 0;
        for (uint32_t i = 0; i < s.members.n; i++)
            if (s.members.m[i].role == RAFT_VOTER)
                voters += s.members.m[i].id == 4 ? 11 : 1;
        *entries = s.members_index - first;
    }
    net_free(&net);
    return voters;
}

static void test_swap_two_voters_bug(void)
{
    raft_index_t entries = 0;
    /* C2 never a voter before it caught up; the old voter stays (3 voters + a learner) */
    CHECK_EQ_INT(swap_voters_after(0, 0, &entries), 3);
    /* with the switches: ONE entry took C1 out and put C2 in as a voter */
    CHECK_EQ_INT(swap_voters_after(RAFT_BUG_SWAP_VOTERS, INC_BUG_SWAP_TWO_VOTERS, &entries), 13);
}

/* A founder that missed the offer adopts the established configuration that names it as a
 * voter; founders waiting for all hosts; only a joining incarnation is added as a learner;
 * incarnations of a host order by start; a replaced incarnation recognises it. */
static void test_adopt_join_order(void)
{
    raft_members_t out;
    inc_view_t v = view3(11, 12, 13);
    v.self = 1;
    v.hosts[0].established = true;
    v.members.n = 3;
    v.members.m[0] = (raft_member_t){11, RAFT_VOTER};
    v.members.m[1] = (raft_member_t){12, RAFT_VOTER};
    v.members.m[2] = (raft_member_t){inc_placeholder_id(3), RAFT_VOTER};
    v.member_host[0] = 0;
    v.member_host[1] = 1;
    v.member_host[2] = 2;
    CHECK_EQ_INT(inc_decide_start(&v, NULL, &out), INC_ADOPT);
    CHECK(out.n == 3 && out.m[1].id == 12);
    v.self = 2; /* host 2's incarnation 13 is not named: it joins and replaces the placeholder */
    CHECK_EQ_INT(inc_decide_start(&v, NULL, &out), INC_JOIN);

    /* founders: all three wanted, two answer: wait; a majority once the wait is over */
    inc_view_t w = view3(11, 12, 0);
    w.founders = 3;
    CHECK_EQ_INT(inc_decide_start(&w, NULL, &out), INC_WAIT);
    w.founders = 0;
    CHECK_EQ_INT(inc_decide_start(&w, NULL, &out), INC_BOOTSTRAP);

    /* the leader adds an answering incarnation only when it asked to join */
    inc_view_t l = voters123(1, 2, 9);
    l.caught_up[2] = true;
    l.hosts[2].joining = false;
    raft_change_t k;
    raft_id_t id;
    CHECK_EQ_INT(inc_next_change(&l, &k, &id), 0);
    l.hosts[2].joining = true;
    CHECK_EQ_INT(inc_next_change(&l, &k, &id), 1);
    CHECK(k == RAFT_CHANGE_ADD_LEARNER && id == 9);

    /* start order: the random part holds the start time; a placeholder is the oldest */
    raft_id_t early = inc_id_make(7, 1000), late = inc_id_make(7, 2000);
    CHECK(inc_id_older(early, late));
    CHECK(!inc_id_older(late, early));
    CHECK(!inc_id_older(early, early));
    CHECK(inc_id_older(inc_placeholder_id(7), early));
    CHECK(!inc_id_older(inc_id_make(8, 1), late)); /* another host: no order */

    /* replaced: not a member, and a newer incarnation of my host is */
    raft_members_t m = {0};
    m.n = 2;
    m.m[0] = (raft_member_t){late, RAFT_VOTER};
    m.m[1] = (raft_member_t){inc_id_make(8, 5), RAFT_VOTER};
    CHECK(inc_replaced(&m, early));
    CHECK(!inc_replaced(&m, late));
    m.m[0].id = inc_id_make(7, 500); /* an older one is a member: not replaced by it */
    CHECK(!inc_replaced(&m, early));
}

static hc_test_t tests[] = {
    {"ids", test_ids},
    {"majority_bootstrap", test_majority_bootstrap},
    {"replace_order", test_replace_order},
    {"policy_two_incarnations", test_policy_two_incarnations},
    {"policy_majority_gone", test_policy_majority_gone},
    {"policy_bugs", test_policy_bugs},
    {"replaced_incarnation_late_messages", test_replaced_incarnation_late_messages},
    {"replacement_races_leader_change", test_replacement_races_leader_change},
    {"two_incarnations_of_one_host", test_two_incarnations_of_one_host},
    {"majority_of_incarnations_gone", test_majority_of_incarnations_gone},
    {"majority_gone_hosts_found_a_new_cluster", test_majority_gone_hosts_found_a_new_cluster},
    {"refound_with_placeholder", test_refound_with_placeholder},
    {"swap_two_voters_bug", test_swap_two_voters_bug},
    {"adopt_join_order", test_adopt_join_order},
};

HC_TEST_MAIN(tests)
