/* membership.c: the leader's steps toward HA_HOSTS (join requests, replacing incarnations,
 * removing unlisted members), leadership transfer and the handover on stop. Discovery, the
 * bootstrap and joining are in discovery.c. */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <errno.h>

#include <sodium.h>

#include "datadir.h"
#include "log.h"

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
        } else if (cl_host_of_member(c, mm->id) == c->self) {
            voter = -1; /* my host's previous incarnation is still a member */
            break;
        }
    }
    c->voter_alone = voter == 1;
    return c->voter_alone;
}

static int in_my_hosts(const cluster_t *c, uint64_t id)
{
    return cl_host_of_member(c, id) >= 0;
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
        int p = cl_slot_of_name(c, to);
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
    /* the member answering for that name: founders and new incarnations have fresh ids, so the
     * name's legacy id is only the last resort */
    int slot = cl_slot_of_name(c, node);
    uint64_t id = slot >= 0 && c->answer_id[slot] != 0 ? c->answer_id[slot] : hc_node_id_of(node);
    const raft_members_t *m = raft_members(c->raft);
    int member = 0;
    for (uint32_t i = 0; i < m->n && !member; i++) {
        uint64_t mid = m->m[i].id;
        if (mid == id ||
            (slot >= 0 && (size_t)slot < c->nhosts && cl_host_of_member(c, mid) == slot)) {
            id = mid;
            member = 1;
        }
    }
    if (slot == c->self) {
        id = c->ids[c->self];
        member = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            member |= m->m[i].id == id;
        }
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

void cl_on_join_request(cluster_t *c, int peer, const Hacache__JoinRequest *jr)
{
    if (jr->node == NULL) {
        return;
    }
    /* a version 1 node joins under its legacy id */
    uint64_t id = jr->raft_id != 0 ? jr->raft_id : hc_node_id_of(jr->node);
    if (jr->raft_id != 0 && cl_slot_of_name(c, jr->node) == peer) {
        cl_heard_id(c, peer, id); /* evidence for the replacement of its older incarnation */
        c->join_id[peer] = id;    /* and its wish to be added (inc_host_t.joining) */
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
        v.member_host[i] = cl_host_of_member(c, id);
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
        v.hosts[h].joining = y != 0 && c->join_id[h] == y;
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
        int h = cl_host_of_member(c, id);
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

/* ---- a leader that most voters do not list ----
 * HA_HOSTS is the desired membership, and lists differ during a rolling change of it. A leader
 * steers toward its own list, so a leader among the nodes a scale-down removes (it still lists
 * them all) would never remove them. Each follower whose HA_HOSTS does not list its leader says
 * so (NotListed, every membership tick); a leader that a majority of its voters do not list
 * hands leadership to the most up-to-date of those, which removes the unlisted members. A
 * minority that does not list the leader (a scale-up roll under way) changes nothing. */

static void tell_leader_not_listed(cluster_t *c)
{
    int l = c->leader_idx;
    if (c->role != RAFT_FOLLOWER || l < 0 || l == c->self || (size_t)l < c->nhosts ||
        !cl_link_up(c, l) || c->io.peer_version(c->io.ud, l) < 2) {
        return; /* my HA_HOSTS lists my leader (slots below nhosts are my entries) */
    }
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__NotListed nl = HACACHE__NOT_LISTED__INIT;
    nl.raft_id = c->ids[c->self];
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_NOT_LISTED;
    pm.not_listed = &nl;
    cl_send_pm(c, l, &pm);
}

void cl_on_not_listed(cluster_t *c, int peer, const Hacache__NotListed *nl)
{
    if (c->raft != NULL && c->role == RAFT_LEADER && cl_peer_of_id(c, nl->raft_id) == peer) {
        c->unlisted_at[peer] = cl_now(c);
        c->unlisted_id[peer] = nl->raft_id;
    }
}

static void leave_if_unlisted(cluster_t *c)
{
    uint64_t now = cl_now(c);
    if (now < c->unlisted_transfer_at) {
        return;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    uint32_t voters = 0, unlisting = 0;
    raft_id_t best = 0;
    raft_index_t best_match = 0;
    for (uint32_t i = 0; i < st.members.n; i++) {
        if (st.members.m[i].role != RAFT_VOTER) {
            continue;
        }
        voters++;
        raft_id_t id = st.members.m[i].id;
        int p = cl_peer_of_id(c, id);
        if (p < 0 || p == c->self || c->unlisted_id[p] != id || c->unlisted_at[p] == 0 ||
            now - c->unlisted_at[p] > 2000) {
            continue;
        }
        unlisting++;
        for (uint32_t j = 0; j < st.n_peers; j++) {
            const raft_peer_status_t *ps = &st.peers[j];
            if (ps->id == id && !ps->recovering && (best == 0 || ps->match > best_match)) {
                best = id;
                best_match = ps->match;
            }
        }
    }
    if (voters == 0 || unlisting < inc_quorum(voters) || best == 0) {
        return;
    }
    c->unlisted_transfer_at = now + 2 * (uint64_t)c->cfg->election_timeout_ms;
    char hx[17];
    int rv = raft_transfer(c->raft, now, best);
    hc_log(rv == 0 ? HC_LOG_INFO : HC_LOG_WARN,
           rv == 0
               ? "most voters do not list this leader in HA_HOSTS: handing leadership to one "
                 "of them"
               : "most voters do not list this leader in HA_HOSTS, but the transfer was refused",
           HC_LS("to", cl_name_of_id(c, best)), HC_LS("id", cl_id_hex(best, hx)),
           HC_LU("unlisting", unlisting), HC_LU("voters", voters),
           HC_LS("error", rv == 0 ? "none" : raft_strerror(rv)));
    cl_kick(c);
}

void cl_membership_tick(cluster_t *c)
{
    uint64_t now = cl_now(c);
    if (now < c->member_tick_at) {
        return;
    }
    c->member_tick_at = now + 500;
    if (cl_discovery_tick(c) || c->raft == NULL) {
        return;
    }
    tell_leader_not_listed(c);
    if (c->role == RAFT_LEADER && !c->closing) {
        leader_reconcile(c);
        leave_if_unlisted(c);
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
