/* discovery.c: a node without raft state finds out whether a cluster exists (it joins), founds
 * one with the other founders (majority bootstrap) or waits; a joining node asks to be added;
 * and a member whose configuration lost a majority of its voters starts over as a new
 * incarnation. The decisions are raft/incarnation.h's (raft-sim runs the same functions); this
 * file gathers what the node heard and carries them out.
 *
 * Who is a member is raft's configuration (a log entry), never HA_HOSTS directly:
 *  - Start. A node with a hard state file restarts (RAFT_START_RESTART, cluster.c). A node
 *    without one is a new incarnation: a fresh raft id (inc_id_make), no raft yet
 *    ("discovering"). It asks every peer it links to for a ClusterInfo, every membership tick,
 *    announcing its id (the evidence that its host's older incarnation is gone).
 *  - Join. A peer answers with an established configuration a majority of whose voters is not
 *    gone: RAFT_START_JOIN with it, then a JoinRequest to its leader every tick until a
 *    configuration holds this id; the leader adds it as a learner, lets it catch up, removes
 *    the host's old incarnation and promotes it (membership.c, leader_reconcile).
 *  - Majority bootstrap. Nobody answers established: once a majority of HA_HOSTS answers (all
 *    of them during the first FOUNDERS_WAIT; CACHE_BOOTSTRAP_EXPECT raises the number), the
 *    lowest-indexed answering host founds: one voter per HA_HOSTS entry (the answering
 *    incarnation, or a placeholder that is replaced like a dead incarnation when its host
 *    comes), RAFT_START_BOOTSTRAP, and a BootstrapOffer to the others, which adopt it at most
 *    once. Every quorum of that configuration is a majority of the hosts.
 *  - Start over. A member (or joining node) whose configuration lost a majority of its voters
 *    on evidence (newer incarnations of their hosts answer) and that hears no quorum can never
 *    elect a leader in it: it drops raft, its state files and its whole store, takes a fresh id
 *    and discovers like a new process, so the hosts found a new cluster (empty). Until its
 *    survivors have done that, a discovering node that hears of such a configuration waits
 *    (INC_RECOVER).
 *  - Version 1 peers (no raft ids on the wire): the old rules. Bootstrap needs every HA_HOSTS
 *    entry (or CACHE_BOOTSTRAP_EXPECT), under the legacy ids every founder computes alike; a
 *    node whose legacy id is a member rejoins without a vote (RAFT_START_AMNESIA). */
#include "cluster_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "datadir.h"
#include "log.h"

static void become_replaced(cluster_t *c, uint64_t by);

/* A majority of the founders may bootstrap only after this long without all of them: founders
 * that start together then found without placeholders. */
static uint64_t founders_wait_ms(const cluster_t *c)
{
    uint64_t t = 2 * (uint64_t)c->cfg->election_timeout_ms;
    return t > 2000 ? t : 2000;
}

static int self_in(const cluster_t *c, const raft_members_t *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].id == c->ids[c->self]) {
            return 1;
        }
    }
    return 0;
}

static uint64_t fresh_id(const cluster_t *c)
{
    uint8_t rnd = 0;
    randombytes_buf(&rnd, sizeof(rnd));
    uint64_t stamp = (hc_wall_ms() / 4) & ((1ull << 40) - 1);
    return inc_id_make(c->tags[c->self], (stamp << 8) | rnd);
}

void cl_other_lifetime(cluster_t *c, int peer, uint64_t from_id, uint64_t lifetime)
{
    cl_heard_id(c, peer, from_id); /* who answers for its host is evidence all the same */
    cl_heard_lifetime(c, peer, from_id, lifetime);
    uint64_t now = cl_now(c);
    if (now - c->other_lifetime_logged_at >= 5000 || c->other_lifetime_logged_at == 0) {
        c->other_lifetime_logged_at = now;
        char hx[17], hm[17];
        hc_log(HC_LOG_INFO, "raft message of another cluster lifetime dropped",
               HC_LS("peer", c->names[peer]), HC_LS("lifetime", cl_id_hex(lifetime, hx)),
               HC_LS("mine", cl_id_hex(c->lifetime, hm)));
    }
}

void cl_discovery_begin(cluster_t *c)
{
    c->discovering = 1;
    c->discover_since = cl_now(c);
    c->recover_logged = 0;
    memset(c->info_state, 0, c->cap);
    c->found.n = 0;
    c->found_from = -1;
    c->found_leader = -1;
    c->found_lifetime = 0;
    c->lifetime = 0;
    if (c->fresh_ids) {
        c->ids[c->self] = fresh_id(c);
    }
}

static void ask_every_peer(cluster_t *c)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if ((int)i != c->self && cl_link_up(c, (int)i)) {
            cl_send_info_req(c, (int)i);
        }
    }
}

void cl_send_info_req(cluster_t *c, int peer)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ClusterInfoRequest rq = HACACHE__CLUSTER_INFO_REQUEST__INIT;
    rq.raft_id = cl_announced_id(c);
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_INFO_REQ;
    pm.info_req = &rq;
    cl_send_pm(c, peer, &pm);
}

/* A configuration made by the version 1 bootstrap: every member a voter under the legacy id
 * of an HA_HOSTS entry. Its founders that have not voted yet are not "established": the other
 * founders compute the same configuration and must bootstrap too, not join. */
static int legacy_first_config(const cluster_t *c, const raft_members_t *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        int h = cl_host_of_member(c, m->m[i].id);
        if (h < 0 || m->m[i].role != RAFT_VOTER || hc_node_id_of(c->names[h]) != m->m[i].id) {
            return 0;
        }
    }
    return 1;
}

void cl_send_cluster_info(cluster_t *c, int peer)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ClusterInfo ci = HACACHE__CLUSTER_INFO__INIT;
    ci.raft_id = cl_announced_id(c);
    uint8_t buf[4 + RAFT_MAX_MEMBERS * 9];
    const raft_members_t *m = c->raft != NULL ? raft_members(c->raft) : NULL;
    if (m != NULL && (c->term > 0 || !legacy_first_config(c, m))) {
        ci.established = 1;
        ci.term = c->term;
        raft_members_encode(m, buf);
        ci.members.data = buf;
        ci.members.len = raft_members_encoded_size(m);
        ci.leader = c->leader_idx >= 0 ? c->names[c->leader_idx] : "";
        ci.lifetime = c->lifetime;
    } else {
        ci.leader = "";
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_INFO;
    pm.info = &ci;
    cl_send_pm(c, peer, &pm);
}

static void start_raft_after_discovery(cluster_t *c, raft_start_mode_t mode,
                                       const raft_members_t *members)
{
    int rv = cl_raft_create(c, mode, NULL, members, 0, 0);
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "raft_new failed", HC_LS("error", raft_strerror(rv)));
        return; /* stays discovering; tried again on the next answer */
    }
    c->discovering = 0;
    c->joining = mode == RAFT_START_JOIN;
    if (mode == RAFT_START_BOOTSTRAP) {
        /* a founder that restarts now must come back as one (RESTART), not as a node that
         * lost its state: it never voted, so (0, no vote) is its true hard state */
        raft_hard_state_t hs = {0, 0, false};
        cl_persist_or_die(c, &hs);
    }
    char hx[17];
    hc_log(mode == RAFT_START_AMNESIA ? HC_LOG_WARN : HC_LOG_INFO,
           mode == RAFT_START_BOOTSTRAP ? "new cluster: bootstrapping"
           : mode == RAFT_START_JOIN
               ? "joining the existing cluster as a new member (or a new incarnation)"
               : "this node is a member but lost its raft state (CACHE_DATA_DIR): it follows "
                 "and serves but never votes again",
           HC_LU("members", members ? members->n : c->nhosts),
           HC_LS("id", cl_id_hex(c->ids[c->self], hx)));
    cl_kick(c);
}

/* The files a new incarnation needs before raft runs under its id (with a data dir): its id,
 * and for a founder the first configuration (a restart before anything committed reads it
 * back rather than deriving one from HA_HOSTS). 0 or -1 (logged; stays discovering). */
static int save_new_identity(cluster_t *c, const raft_members_t *first)
{
    if (c->id_path[0] == '\0') {
        return 0;
    }
    const char *path = c->id_path;
    int rv = hc_id_save(c->id_path, c->ids[c->self]);
    if (rv == 0 && c->lifetime != 0) {
        path = c->lifetime_path;
        rv = hc_lifetime_save(c->lifetime_path, c->lifetime);
    }
    if (rv == 0 && first != NULL) {
        path = c->members_path;
        rv = hc_members_save(c->members_path, 0, 0, first);
    }
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "cannot write to CACHE_DATA_DIR", HC_LS("path", path),
               HC_LS("error", strerror(errno)));
        return -1;
    }
    return 0;
}

static void join_as_new_incarnation(cluster_t *c, const raft_members_t *m)
{
    c->lifetime = c->found_lifetime;
    if (save_new_identity(c, NULL) == 0) {
        start_raft_after_discovery(c, RAFT_START_JOIN, m);
    }
}

/* Starts raft as a founder with configuration m (the first one, or for a founder that missed
 * the offer the one it heard: `lifetime` is then the one it heard too). */
static void found_cluster(cluster_t *c, const raft_members_t *m, uint64_t lifetime, int coordinator)
{
    c->lifetime = lifetime;
    if (save_new_identity(c, m) != 0) {
        return;
    }
    start_raft_after_discovery(c, RAFT_START_BOOTSTRAP, m);
    if (c->raft == NULL || !coordinator) {
        return;
    }
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__BootstrapOffer bo = HACACHE__BOOTSTRAP_OFFER__INIT;
    uint8_t buf[4 + RAFT_MAX_MEMBERS * 9];
    raft_members_encode(m, buf);
    bo.members.data = buf;
    bo.members.len = raft_members_encoded_size(m);
    bo.raft_id = c->ids[c->self];
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_OFFER;
    pm.offer = &bo;
    for (size_t h = 0; h < c->nhosts; h++) {
        if ((int)h != c->self && cl_link_up(c, (int)h) && c->answer_id[h] != 0) {
            cl_send_pm(c, (int)h, &pm);
        }
    }
}

/* What discovery heard, as the policy's view: the incarnations that answered (on a live link,
 * or established: a node that heard of an established cluster keeps it in mind when the link
 * drops, so that it never takes part in a bootstrap; only that peer saying otherwise later,
 * after it started over, clears it), and the configuration an established one reported. */
static void discovery_view(cluster_t *c, inc_view_t *v)
{
    memset(v, 0, sizeof(*v));
    v->n_hosts = (uint32_t)c->nhosts;
    v->self = (uint32_t)c->self;
    v->hosts[c->self].id = c->ids[c->self];
    for (size_t h = 0; h < c->nhosts; h++) {
        int st = c->info_state[h];
        if ((int)h != c->self && (st == 2 || (st == 1 && cl_link_up(c, (int)h)))) {
            v->hosts[h].id = c->answer_id[h];
            v->hosts[h].established = st == 2;
        }
    }
    int f = c->found_from;
    if (f >= 0 && c->found.n > 0 && c->info_state[f] == 2) {
        v->members = c->found;
        for (uint32_t i = 0; i < c->found.n; i++) {
            v->member_host[i] = cl_host_of_member(c, c->found.m[i].id);
        }
        for (size_t h = 0; h < c->nhosts; h++) {
            v->hosts[h].other_lifetime = cl_other_lifetime_at(c, (int)h, c->found_lifetime);
        }
    }
}

/* Version 1 peers are connected: the old rules. */
static void legacy_decide(cluster_t *c)
{
    int f = c->found_from;
    if (f >= 0 && c->found.n > 0 && c->info_state[f] == 2) {
        /* rejoin under the legacy id, as a non-voter if it is a member */
        c->ids[c->self] = hc_node_id_of(c->names[c->self]);
        c->lifetime = c->found_lifetime;
        start_raft_after_discovery(c, self_in(c, &c->found) ? RAFT_START_AMNESIA : RAFT_START_JOIN,
                                   &c->found);
        return;
    }
    size_t answered = 0, others = 0;
    for (size_t i = 0; i < c->nhosts; i++) {
        if ((int)i != c->self) {
            others++;
            answered += c->info_state[i] == 1;
        }
    }
    size_t expect = c->cfg->bootstrap_expect ? c->cfg->bootstrap_expect : others + 1;
    if (answered + 1 >= expect) {
        /* founders bootstrap under their legacy ids: every founder computes the same
         * configuration */
        c->ids[c->self] = hc_node_id_of(c->names[c->self]);
        c->lifetime = 0;
        if (c->id_path[0] != '\0') {
            unlink(c->id_path);
            unlink(c->lifetime_path);
        }
        start_raft_after_discovery(c, RAFT_START_BOOTSTRAP, NULL);
    }
}

static void discovery_decide(cluster_t *c)
{
    if (!c->discovering) {
        return;
    }
    if (!cl_peers_know_incarnations(c)) {
        legacy_decide(c);
        return;
    }
    inc_view_t v;
    discovery_view(c, &v);
    if (c->cfg->bootstrap_expect) {
        v.founders = (uint32_t)c->cfg->bootstrap_expect;
    } else if (cl_now(c) - c->discover_since < founders_wait_ms(c)) {
        v.founders = (uint32_t)c->nhosts;
    }
    raft_members_t first;
    switch (inc_decide_start(&v, c->tags, &first)) {
    case INC_JOIN:
        if (v.members.n > 0) {
            join_as_new_incarnation(c, &v.members);
        }
        break;
    case INC_ADOPT: /* a founder that missed the offer */
        found_cluster(c, &first, c->found_lifetime, 0);
        break;
    case INC_BOOTSTRAP:
        found_cluster(c, &first, inc_lifetime_id(&first), 1);
        break;
    case INC_RECOVER:
        if (!c->recover_logged) {
            c->recover_logged = 1;
            hc_log(HC_LOG_WARN, "the cluster heard of lost a majority of its voters (they "
                                "restarted without their state): waiting for its other members "
                                "to start over, then founding a new one");
        }
        break;
    case INC_WAIT:
        break;
    }
}

void cl_on_cluster_info(cluster_t *c, int peer, const Hacache__ClusterInfo *ci)
{
    if (ci->raft_id != 0) {
        cl_heard_id(c, peer, ci->raft_id);
        cl_heard_lifetime(c, peer, ci->raft_id, ci->established ? ci->lifetime : 0);
    }
    if (c->raft != NULL && !c->joining && ci->established) {
        raft_members_t m;
        if (raft_members_decode(ci->members.data, ci->members.len, &m) == 0 &&
            inc_replaced(&m, c->ids[c->self])) {
            uint64_t by = 0;
            for (uint32_t i = 0; i < m.n; i++) {
                by = inc_id_older(c->ids[c->self], m.m[i].id) ? m.m[i].id : by;
            }
            become_replaced(c, by);
        }
        return;
    }
    if (!c->discovering && !c->joining) {
        return;
    }
    c->info_state[peer] = ci->established ? 2 : 1;
    if (ci->established) {
        raft_members_t m;
        if (raft_members_decode(ci->members.data, ci->members.len, &m) != 0) {
            c->info_state[peer] = 1;
            return;
        }
        c->found = m;
        c->found_lifetime = ci->lifetime;
        c->found_from = peer;
        c->found_leader = ci->leader != NULL && ci->leader[0] ? cl_slot_of_name(c, ci->leader) : -1;
    }
    discovery_decide(c);
}

void cl_on_bootstrap_offer(cluster_t *c, int peer, const Hacache__BootstrapOffer *bo)
{
    if (bo->raft_id != 0) {
        cl_heard_id(c, peer, bo->raft_id);
    }
    if (!c->discovering || (size_t)peer >= c->nhosts || !cl_peers_know_incarnations(c)) {
        return;
    }
    raft_members_t m;
    if (raft_members_decode(bo->members.data, bo->members.len, &m) != 0) {
        return;
    }
    /* the offer is its newest answer: a founder, nothing committed yet (whatever it said
     * before, e.g. a survivor that has just started over) */
    c->info_state[peer] = 1;
    if (c->found_from == peer) {
        c->found.n = 0;
        c->found_from = -1;
    }
    inc_view_t v;
    discovery_view(c, &v);
    if (!inc_accept_bootstrap(&v, (uint32_t)peer, &m)) {
        hc_log(HC_LOG_INFO, "bootstrap offer declined", HC_LS("from", c->names[peer]));
        return;
    }
    found_cluster(c, &m, inc_lifetime_id(&m), 0);
}

/* ---- starting over ---- */

/* A majority of my configuration's voters is gone on evidence (newer incarnations of their
 * hosts answer) and I hear no quorum: no leader can ever be elected in it. */
static int configuration_dead(cluster_t *c)
{
    if (!cl_peers_know_incarnations(c)) {
        return 0;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    if (cl_quorum_st(c, cl_now(c), &st, 0)) {
        return 0;
    }
    inc_view_t v;
    memset(&v, 0, sizeof(v));
    v.n_hosts = (uint32_t)c->nhosts;
    v.self = (uint32_t)c->self;
    v.members = st.members;
    for (uint32_t i = 0; i < st.members.n; i++) {
        v.member_host[i] = cl_host_of_member(c, st.members.m[i].id);
    }
    for (size_t h = 0; h < c->nhosts; h++) {
        v.hosts[h].id = (int)h == c->self ? c->ids[c->self] : c->answer_id[h];
        v.hosts[h].other_lifetime = cl_other_lifetime_at(c, (int)h, c->lifetime);
    }
    return inc_majority_gone(&v);
}

/* Leaves raft for good: requests in flight fail (writes: outcome unknown), raft is freed, the
 * store emptied and the state files unlinked (the hard state first: without it a restart is a
 * new incarnation whatever remains). */
static void drop_raft(cluster_t *c)
{
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        int write =
            op->kind == OP_LEADER_WRITE || op->kind == OP_FWD_WRITE || op->kind == OP_RETRY_WRITE;
        cl_op_finish(c, op, write ? HC_EUNKNOWN_OUTCOME : HC_EUNAVAILABLE);
    }
    cl_snap_tx_drop_all(c);
    if (c->rx.active) {
        cl_snap_rx_reset(c);
    }
    if (c->loading != NULL) {
        c->loading->stale = 1; /* still being loaded: dropped when that ends */
    }
    c->io.timer_stop(c->io.ud, CL_TIMER_RAFT);
    raft_free(c->raft);
    c->raft = NULL;
    hc_fsm_reset(c->fsm);
    if (c->state_path[0] != '\0') {
        unlink(c->state_path);
        unlink(c->members_path);
        unlink(c->id_path);
        unlink(c->lifetime_path);
    }
    c->lifetime = 0;
    c->members_saved.n = 0;
    c->members_saved_epoch = 0;
    c->members_check = 0;
    c->role = RAFT_FOLLOWER;
    c->term = 0;
    c->leader = 0;
    c->leader_idx = -1;
    c->commit_heard = 0;
    c->applied = 0;
    c->recovering = 0;
    c->expire_barrier = 0;
    c->joining = 0;
    c->voter_alone = 0;
    hc_ql_init(&c->ql, cl_ql_grace(c), cl_now(c));
}

static void start_over(cluster_t *c)
{
    char hx[17];
    hc_log(HC_LOG_WARN,
           "a majority of this cluster's voters restarted without their state: no leader can "
           "be elected any more; starting over as a new incarnation (the cache is emptied)",
           HC_LS("id", cl_id_hex(c->ids[c->self], hx)), HC_LU("term", c->term));
    c->start_overs++;
    drop_raft(c);
    cl_discovery_begin(c);
    ask_every_peer(c);
}

/* A newer incarnation of my host is a member and I am not: two processes answer for one
 * HA_HOSTS entry (the deployment broke its promise). This one stops serving for good. */
static void become_replaced(cluster_t *c, uint64_t by)
{
    char hx[17], hb[17];
    hc_log(HC_LOG_ERROR,
           "this process was replaced by a newer incarnation of its HA_HOSTS entry: it stops "
           "serving (only one process may run per entry; stop this one)",
           HC_LS("id", cl_id_hex(c->ids[c->self], hx)), HC_LS("by", cl_id_hex(by, hb)));
    drop_raft(c);
    c->replaced = 1;
}

int cl_discovery_tick(cluster_t *c)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if (c->tell_stale[i]) {
            /* an older incarnation answered there (slots.c): tell it the configuration, so
             * that it stops if it was replaced */
            c->tell_stale[i] = 0;
            if (c->raft != NULL && !c->joining && cl_link_up(c, (int)i)) {
                cl_send_cluster_info(c, (int)i);
            }
        }
    }
    if (c->raft != NULL && !c->closing && configuration_dead(c)) {
        start_over(c);
    }
    if (c->raft != NULL && !c->discovering && !c->joining && !c->closing &&
        cl_peers_know_incarnations(c)) {
        raft_status_t st;
        raft_status(c->raft, &st);
        if (st.members_committed && !self_in(c, &st.members)) {
            /* a joiner that restarted with its state, or a member that was removed: the leader
             * adds only incarnations that ask (inc_host_t.joining) */
            c->joining = 1;
            hc_log(HC_LOG_INFO, "this node is not in the committed configuration: asking the "
                                "leader to add it");
        }
    }
    if (!c->discovering && !c->joining) {
        return 0;
    }
    /* ask every peer again: an answer changes when a survivor starts over or a founder founds */
    ask_every_peer(c);
    if (c->discovering) {
        discovery_decide(c);
        return 1;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    if (st.members_committed && self_in(c, &st.members)) {
        /* a committed configuration holds me: an uncommitted addition may be lost with its
         * leader, and a new leader adds only those that keep asking */
        c->joining = 0;
        hc_log(HC_LOG_INFO, "joined: this node is in the cluster configuration");
        return 1;
    }
    /* ask the leader to add me: the one raft follows, else the one discovery heard of */
    int l = c->leader_idx >= 0 ? c->leader_idx : c->found_leader;
    if (l >= 0 && l != c->self && cl_link_up(c, l)) {
        Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
        Hacache__JoinRequest jr = HACACHE__JOIN_REQUEST__INIT;
        jr.node = c->names[c->self];
        jr.raft_id = c->ids[c->self];
        pm.body_case = HACACHE__PEER_MESSAGE__BODY_JOIN;
        pm.join = &jr;
        cl_send_pm(c, l, &pm);
    }
    return 1;
}
