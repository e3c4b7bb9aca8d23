/* membership.c: ids and peer slots, discovery and joining, the leader's steps toward HA_HOSTS,
 * leadership transfer and the handover on stop. */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <errno.h>

#include <sodium.h>

#include "datadir.h"
#include "log.h"

/* The HA_HOSTS entry (host index) an incarnation belongs to, -1 when none: its legacy id, the
 * incarnation heard on the host's link, or (fresh ids) its host tag. */
static int host_of_member(const cluster_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->nhosts; i++) {
        if (c->ids[i] == id || hc_node_id_of(c->names[i]) == id ||
            (c->fresh_ids && c->tags[i] == inc_id_tag(id))) {
            return (int)i;
        }
    }
    return -1;
}

int cl_self_voter_alone(cluster_t *c, const raft_status_t *st)
{
    if (!st->members_committed) {
        return c->voter_alone; /* the verdict of the last committed configuration */
    }
    int voter = 0;
    for (uint32_t i = 0; i < st->members.n; i++) {
        const raft_member_t *mm = &st->members.m[i];
        if (mm->id == st->id) {
            voter = mm->role == RAFT_VOTER;
        } else if (host_of_member(c, mm->id) == c->self) {
            voter = -1; /* my host's previous incarnation is still a member */
            break;
        }
    }
    c->voter_alone = voter == 1;
    return c->voter_alone;
}

static int in_my_hosts(const cluster_t *c, uint64_t id)
{
    return host_of_member(c, id) >= 0;
}

static int slot_of_name(const cluster_t *c, const char *name)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if (strcasecmp(c->names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

hc_node_op_t *hc_cluster_transfer(hc_cluster_t *c, const char *to, hc_write_cb cb, void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    if (c->raft == NULL || c->role != RAFT_LEADER || c->closing) {
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    uint64_t id = 0;
    if (to != NULL && to[0] != '\0') {
        int p = slot_of_name(c, to);
        if (p < 0) {
            cb(ud, HC_ENOTFOUND, &res);
            return NULL;
        }
        id = c->ids[p];
    }
    int rv = raft_transfer(c->raft, cl_now(c), id);
    if (rv != 0) {
        cb(ud,
           rv == RAFT_EINVAL      ? HC_EINVAL
           : rv == RAFT_ETRANSFER ? HC_EBUSY
                                  : HC_ENOTFOUND,
           &res);
        return NULL;
    }
    hc_node_op_t *op = cl_op_new(OP_TRANSFER);
    if (op == NULL) {
        cb(ud, HC_EINTERNAL, &res);
        return NULL;
    }
    op->wcb = cb;
    op->ud = ud;
    op->deadline = cl_now(c) + (uint64_t)c->cfg->election_timeout_ms + 200;
    cl_op_link(c, op);
    hc_log(HC_LOG_INFO, "leadership transfer requested", HC_LS("to", to && to[0] ? to : "any"));
    cl_kick(c);
    return op;
}

hc_node_op_t *hc_cluster_member_change(hc_cluster_t *c, int add, const char *node, hc_write_cb cb,
                                       void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    if (c->raft == NULL || c->role != RAFT_LEADER || c->closing) {
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    uint64_t id = hc_node_id_of(node);
    const raft_members_t *m = raft_members(c->raft);
    int member = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        member |= m->m[i].id == id;
    }
    if (add && !in_my_hosts(c, id)) {
        cb(ud, HC_EINVAL, &res);
        return NULL;
    }
    if (!add && !member) {
        cb(ud, HC_ENOTFOUND, &res);
        return NULL;
    }
    raft_index_t idx = 0;
    int rv = raft_change(c->raft, cl_now(c), add ? RAFT_CHANGE_ADD_LEARNER : RAFT_CHANGE_REMOVE, id,
                         &idx);
    if (rv != 0) {
        cb(ud,
           rv == RAFT_EBUSY || rv == RAFT_ETRANSFER ? HC_EBUSY
           : rv == RAFT_ENOQUORUM                   ? HC_EUNAVAILABLE
                                                    : HC_EINVAL,
           &res);
        return NULL;
    }
    c->members_changes++;
    hc_log(HC_LOG_INFO,
           add ? "membership: adding a learner (admin call)"
               : "membership: removing a member (admin call)",
           HC_LS("node", node), HC_LU("index", idx));
    hc_node_op_t *op = cl_op_new(OP_LEADER_WRITE);
    if (op == NULL) {
        cb(ud, HC_EUNKNOWN_OUTCOME, &res);
        return NULL;
    }
    op->ack = HC_ACK_QUORUM; /* answered when the configuration entry is applied */
    op->index = idx;
    op->term = c->term;
    op->wcb = cb;
    op->ud = ud;
    cl_op_link(c, op);
    cl_kick(c);
    return op;
}

/* The voter to hand leadership to: the most up-to-date one this node lists in HA_HOSTS, else 0
 * (raft's choice). During a scale-down roll the stopping node has the new, shorter list; a
 * leader chosen among the members about to leave lists them all and would never remove them. */
static raft_id_t handover_target(cluster_t *c)
{
    raft_status_t st;
    raft_status(c->raft, &st);
    raft_id_t best = 0;
    raft_index_t best_match = 0;
    for (uint32_t i = 0; i < st.n_peers; i++) {
        const raft_peer_status_t *p = &st.peers[i];
        int voter = 0;
        for (uint32_t k = 0; k < st.members.n; k++) {
            voter |= st.members.m[k].id == p->id && st.members.m[k].role == RAFT_VOTER;
        }
        if (voter && !p->recovering && in_my_hosts(c, p->id) &&
            (best == 0 || p->match > best_match)) {
            best = p->id;
            best_match = p->match;
        }
    }
    return best;
}

void hc_cluster_handover(hc_cluster_t *c, void (*cb)(void *ud), void *ud)
{
    if (c->raft == NULL || c->role != RAFT_LEADER || c->nhosts < 2) {
        cb(ud);
        return;
    }
    int rv = raft_transfer(c->raft, cl_now(c), handover_target(c));
    if (rv != 0) {
        hc_log(HC_LOG_WARN, "leadership transfer refused", HC_LS("error", raft_strerror(rv)));
        cb(ud);
        return;
    }
    hc_log(HC_LOG_INFO, "handing leadership over before stopping");
    c->handover_cb = cb;
    c->handover_ud = ud;
    c->io.timer_start(c->io.ud, CL_TIMER_HANDOVER, c->cfg->election_timeout_ms, 0);
    cl_kick(c);
}

/* ---- membership ----
 * Who is a member is raft's configuration (a log entry), never HA_HOSTS directly. HA_HOSTS is
 * the desired membership, which a leader steers the configuration toward one committed change
 * at a time (raft_change: add a learner, promote it, remove a member), so two majorities never
 * exist:
 *  - Start. A node with a hard state file restarts (RAFT_START_RESTART). A node without one
 *    cannot tell a new cluster from an existing one, so it runs no raft yet ("discovering") and
 *    asks every peer it links to for a ClusterInfo (again every second). If an established
 *    peer's configuration does not hold my id, I am a new member: RAFT_START_JOIN with that
 *    configuration, then a JoinRequest to its leader every second until a configuration holds
 *    me. If it holds my id, this node lost its CACHE_DATA_DIR: RAFT_START_AMNESIA (it follows
 *    and serves but never votes again: it may have voted in any term; replacing it with a
 *    fresh id is not done yet). If every other HA_HOSTS entry (or CACHE_BOOTSTRAP_EXPECT - 1
 *    of them) answered and none is established, this is a new cluster: RAFT_START_BOOTSTRAP
 *    with all of HA_HOSTS as the first configuration (every founder computes the same one,
 *    whoever was there). A founder absent at that moment comes later to an established
 *    cluster that holds its id, which it cannot tell from a lost CACHE_DATA_DIR: it follows
 *    and never votes (hence the default: wait for every founder).
 *  - Leader (membership_tick, every 500 ms, once the configuration is committed and no change
 *    is pending): a JoinRequest from a node in my HA_HOSTS adds it as a learner; a learner in
 *    my HA_HOSTS that caught up (match >= commit) is promoted; a member not in my HA_HOSTS is
 *    removed. A node that joined never asks again once it was in a configuration, so a node
 *    removed while a leader with an older HA_HOSTS list... is not added back by it.
 * Scaling therefore works by rolling restarts with the new HA_HOSTS (README, "Scaling"): new
 * nodes join as soon as a leader lists them; members leave as soon as a leader no longer
 * lists them. A leader with an old list does not undo a change, except that it removes members
 * it does not list: roll the new list out before starting or stopping nodes. */

void cl_send_info_req(cluster_t *c, int peer)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ClusterInfoRequest rq = HACACHE__CLUSTER_INFO_REQUEST__INIT;
    rq.raft_id = c->discovering ? 0 : c->ids[c->self];
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_INFO_REQ;
    pm.info_req = &rq;
    cl_send_pm(c, peer, &pm);
}

void cl_send_cluster_info(cluster_t *c, int peer)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ClusterInfo ci = HACACHE__CLUSTER_INFO__INIT;
    ci.raft_id = c->raft != NULL ? c->ids[c->self] : 0;
    uint8_t buf[4 + RAFT_MAX_MEMBERS * 9];
    /* a founder that bootstrapped moments ago (term 0, nothing voted) is not established yet:
     * the founders that are still discovering must bootstrap too, not join */
    if (c->raft != NULL && c->term > 0) {
        const raft_members_t *m = raft_members(c->raft);
        ci.established = 1;
        ci.term = c->term;
        raft_members_encode(m, buf);
        ci.members.data = buf;
        ci.members.len = raft_members_encoded_size(m);
        ci.leader = c->leader_idx >= 0 ? c->names[c->leader_idx] : "";
    } else {
        ci.leader = "";
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_INFO;
    pm.info = &ci;
    cl_send_pm(c, peer, &pm);
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

/* 1 when every connected peer speaks protocol 2 or later (JoinRequest carries the raft id): a
 * new incarnation may then take a fresh id. An older leader would add the legacy id instead. */
static int peers_know_incarnations(const cluster_t *c)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if ((int)i != c->self && cl_link_up(c, (int)i) &&
            c->io.peer_version(c->io.ud, (int)i) < 2) {
            return 0;
        }
    }
    return 1;
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
           mode == RAFT_START_BOOTSTRAP ? "new cluster: bootstrapping from HA_HOSTS"
           : mode == RAFT_START_JOIN
               ? "joining the existing cluster as a new member (or a new incarnation)"
               : "this node is a member but lost its raft state (CACHE_DATA_DIR): it follows "
                 "and serves but never votes again",
           HC_LU("members", members ? members->n : c->nhosts),
           HC_LS("id", cl_id_hex(c->ids[c->self], hx)));
    cl_kick(c);
}

void cl_on_cluster_info(cluster_t *c, int peer, const Hacache__ClusterInfo *ci)
{
    if (ci->raft_id != 0) {
        cl_heard_id(c, peer, ci->raft_id);
    }
    if (!c->discovering && !c->joining) {
        return;
    }
    c->info_state[peer] = ci->established ? 2 : 1;
    if (!ci->established) {
        return;
    }
    raft_members_t m;
    if (raft_members_decode(ci->members.data, ci->members.len, &m) != 0) {
        return;
    }
    c->found = m;
    c->found_leader = ci->leader != NULL && ci->leader[0] ? slot_of_name(c, ci->leader) : -1;
    if (!c->discovering) {
        return;
    }
    if (!c->fresh_ids || !peers_know_incarnations(c)) {
        /* the version 1 way: rejoin under the legacy id, as a non-voter if it is a member */
        start_raft_after_discovery(c, self_in(c, &m) ? RAFT_START_AMNESIA : RAFT_START_JOIN, &m);
        return;
    }
    /* Without raft state this process is a new incarnation: a fresh id that never voted, added
     * as a learner and promoted once caught up, while the leader removes the old incarnation of
     * this host (it answers no more: this process does). */
    uint64_t rnd = 0;
    randombytes_buf(&rnd, sizeof(rnd));
    c->ids[c->self] = inc_id_make(c->tags[c->self], rnd);
    if (c->id_path[0] != '\0' && hc_id_save(c->id_path, c->ids[c->self]) != 0) {
        hc_log(HC_LOG_ERROR, "cannot write the raft id file", HC_LS("path", c->id_path),
               HC_LS("error", strerror(errno)));
        return; /* stays discovering: tried again on the next answer */
    }
    start_raft_after_discovery(c, RAFT_START_JOIN, &m);
}

void cl_on_join_request(cluster_t *c, int peer, const Hacache__JoinRequest *jr)
{
    if (jr->node == NULL) {
        return;
    }
    /* a version 1 node joins under its legacy id */
    uint64_t id = jr->raft_id != 0 ? jr->raft_id : hc_node_id_of(jr->node);
    if (jr->raft_id != 0 && slot_of_name(c, jr->node) == peer) {
        cl_heard_id(c, peer, id); /* evidence for the replacement of its older incarnation */
    }
    if (c->raft == NULL || c->role != RAFT_LEADER) {
        return;
    }
    if (!in_my_hosts(c, id)) {
        hc_log(HC_LOG_DEBUG, "join request from a node not in my HA_HOSTS ignored",
               HC_LS("node", jr->node));
        return;
    }
    const raft_members_t *m = raft_members(c->raft);
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].id == id) {
            return; /* a member already */
        }
    }
    raft_index_t idx = 0;
    int rv = raft_change(c->raft, cl_now(c), RAFT_CHANGE_ADD_LEARNER, id, &idx);
    if (rv == 0) {
        c->members_changes++;
        hc_log(HC_LOG_INFO, "membership: adding a learner", HC_LS("node", jr->node),
               HC_LU("index", idx));
        cl_kick(c);
    }
}

/* The leader's step toward HA_HOSTS: at most one change, when none is pending, decided by the
 * replacement policy of raft/incarnation.h (which the simulator runs too): remove members
 * whose host is not listed; add a host's new incarnation as a learner, let it catch up, remove
 * the host's old incarnation, promote the new one. An incarnation counts as gone only when
 * another one of its host answers (answer_id); silence never removes a member. */
static void leader_reconcile(cluster_t *c)
{
    raft_status_t st;
    raft_status(c->raft, &st);
    if (!st.members_committed) {
        return;
    }
    inc_view_t v;
    memset(&v, 0, sizeof(v));
    v.n_hosts = (uint32_t)c->nhosts;
    v.self = (uint32_t)c->self;
    v.members = st.members;
    v.committed = true;
    for (uint32_t i = 0; i < st.members.n; i++) {
        uint64_t id = st.members.m[i].id;
        v.member_host[i] = host_of_member(c, id);
        v.caught_up[i] = id == st.id;
        for (uint32_t j = 0; j < st.n_peers; j++) {
            const raft_peer_status_t *ps = &st.peers[j];
            if (ps->id == id && ps->match >= st.commit && !ps->recovering) {
                v.caught_up[i] = true;
            }
        }
    }
    for (size_t h = 0; h < c->nhosts; h++) {
        uint64_t y = (int)h == c->self ? st.id : c->answer_id[h];
        if (y == 0) {
            /* nothing heard on its link yet: its only member, if it has exactly one (so a
             * caught-up learner added by name is promoted); never evidence that one is gone */
            int count = 0;
            for (uint32_t i = 0; i < st.members.n; i++) {
                if (v.member_host[i] == (int32_t)h) {
                    y = st.members.m[i].id;
                    count++;
                }
            }
            y = count == 1 ? y : 0;
        }
        v.hosts[h].id = y;
    }
    raft_change_t kind = 0;
    raft_id_t id = 0;
    if (!inc_next_change(&v, &kind, &id)) {
        return;
    }
    raft_index_t idx = 0;
    int rv = raft_change(c->raft, cl_now(c), kind, id, &idx);
    if (rv == 0) {
        c->members_changes++;
        char hx[17];
        int h = host_of_member(c, id);
        hc_log(HC_LOG_INFO,
               kind == RAFT_CHANGE_REMOVE ? (h < 0 ? "membership: removing a member not in HA_HOSTS"
                                                   : "membership: removing a replaced incarnation")
               : kind == RAFT_CHANGE_PROMOTE ? "membership: promoting a caught-up learner"
                                             : "membership: adding a learner",
               HC_LS("node", h >= 0 ? c->names[h] : cl_name_of_id(c, id)),
               HC_LS("id", cl_id_hex(id, hx)), HC_LU("index", idx));
        cl_kick(c);
    } else if (rv != RAFT_EBUSY && rv != RAFT_ENOQUORUM) {
        hc_log(HC_LOG_DEBUG, "membership change refused", HC_LS("error", raft_strerror(rv)));
    } /* EBUSY / ENOQUORUM (too few caught-up, reachable voters for it yet): next tick */
}

void cl_membership_tick(cluster_t *c)
{
    uint64_t now = cl_now(c);
    if (now < c->member_tick_at) {
        return;
    }
    c->member_tick_at = now + 500;
    if (c->discovering) {
        size_t answered = 0, others = 0;
        for (size_t i = 0; i < c->nhosts; i++) {
            if ((int)i == c->self) {
                continue;
            }
            others++;
            answered += c->info_state[i] == 1;
            if (cl_link_up(c, (int)i) && c->info_state[i] == 0) {
                cl_send_info_req(c, (int)i);
            }
        }
        size_t expect = c->cfg->bootstrap_expect ? c->cfg->bootstrap_expect : others + 1;
        if (answered + 1 >= expect) {
            /* founders bootstrap under their legacy ids: every founder computes the same
             * configuration */
            c->ids[c->self] = hc_node_id_of(c->names[c->self]);
            if (c->id_path[0] != '\0') {
                unlink(c->id_path);
            }
            start_raft_after_discovery(c, RAFT_START_BOOTSTRAP, NULL);
        }
        return;
    }
    if (c->raft == NULL) {
        return;
    }
    if (c->joining) {
        if (self_in(c, raft_members(c->raft))) {
            c->joining = 0;
            hc_log(HC_LOG_INFO, "joined: this node is in the cluster configuration");
            return;
        }
        /* ask again who leads, and ask it to add me */
        for (size_t i = 0; i < c->npeers; i++) {
            if ((int)i != c->self && cl_link_up(c, (int)i)) {
                cl_send_info_req(c, (int)i);
            }
        }
        int l = c->found_leader;
        if (l >= 0 && l != c->self && cl_link_up(c, l)) {
            Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
            Hacache__JoinRequest jr = HACACHE__JOIN_REQUEST__INIT;
            jr.node = c->names[c->self];
            jr.raft_id = c->ids[c->self];
            pm.body_case = HACACHE__PEER_MESSAGE__BODY_JOIN;
            pm.join = &jr;
            cl_send_pm(c, l, &pm);
        }
        return;
    }
    if (c->role == RAFT_LEADER && !c->closing) {
        leader_reconcile(c);
    }
}

void cl_on_handover_timeout(cluster_t *c)
{
    if (c->handover_cb) {
        void (*cb)(void *) = c->handover_cb;
        c->handover_cb = NULL;
        hc_log(HC_LOG_WARN, "leadership transfer did not complete in time, stopping anyway");
        cb(c->handover_ud);
    }
}
