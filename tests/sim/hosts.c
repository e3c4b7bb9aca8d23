/* hosts.c: raft-sim's --incarnations mode: the initial servers are hosts (HA_HOSTS entries)
 * running one process each; a restart without state is a new incarnation under a fresh id, and
 * the leader runs the node's own policy (raft/incarnation.h, the same functions hacached
 * calls) to replace the dead incarnation. */
#include "sim_int.h"

#include "incarnation.h"

#include <inttypes.h>
#include <string.h>

/* --incarnations: the leader runs the node's policy (raft/incarnation.h) on what it knows:
 * which incarnation answers for each host (the one that is up), its configuration, each
 * member's host and whether it caught up. One single-server change per call. */
void hosts_policy_step(sim_t *s)
{
    int l = sim_find_leader(s);
    if (l < 0 || s->n[l].host < 0)
        return;
    const raft_status_t *st = &s->n[l].st;
    inc_view_t v;
    memset(&v, 0, sizeof v);
    v.n_hosts = (uint32_t)s->n_initial;
    v.self = (uint32_t)s->n[l].host;
    for (int h = 0; h < s->n_initial; h++) {
        int sl = s->answer[h];
        v.hosts[h].id = usable(s, sl) ? s->n[sl].id : 0;
        v.hosts[h].established = true;
    }
    v.members = st->members;
    v.committed = st->members_committed;
    v.bugs = s->inc_bugs;
    for (uint32_t i = 0; i < st->members.n; i++) {
        raft_id_t id = st->members.m[i].id;
        int sl = slot_of(id);
        v.member_host[i] = sl >= 0 && sl < s->n_slots ? s->n[sl].host : -1;
        v.caught_up[i] = id == st->id;
        for (uint32_t p = 0; p < st->n_peers; p++)
            if (st->peers[p].id == id)
                v.caught_up[i] = st->peers[p].member_role == RAFT_VOTER
                                     ? st->peers[p].counted
                                     : !st->peers[p].recovering && st->peers[p].match >= st->commit;
    }
    raft_change_t kind;
    raft_id_t target;
    if (!inc_next_change(&v, &kind, &target))
        return;
    raft_index_t idx = 0;
    int rv = raft_change(s->n[l].r, s->now, kind, target, &idx);
    int sl = slot_of(target);
    if (rv == 0 && kind == RAFT_CHANGE_REMOVE && sl >= 0) {
        s->n[sl].removing = true;
        s->res.replacements++;
    }
    static const char *const kinds[] = {"?", "add learner", "promote", "demote", "remove"};
    sim_trace(s, "t=%" PRIu64 " n%d policy %s n%" PRIu64 ": %s index=%" PRIu64, s->now, l + 1,
              kinds[kind], target, rv ? raft_strerror(rv) : "ok", idx);
    node_after(s, l);
}

/* The host of the dead incarnation in `dead` starts its process without state: a new
 * incarnation under a fresh id (the next slot), started JOIN with the host's view of the
 * configuration; the old id never runs again. */
void hosts_new_incarnation(sim_t *s, int dead)
{
    int v = dead;
    raft_members_t m;
    sim_host_members(s, &m);
    int sl = s->n_slots++;
    s->n[v].dead_inc = true;
    s->n[sl].host = s->n[v].host;
    s->answer[s->n[v].host] = sl;
    s->res.new_incarnations++;
    sim_trace(s, "t=%" PRIu64 " FAULT host %d: new incarnation n%d replaces n%d", s->now,
              s->n[v].host, sl + 1, v + 1);
    node_start(s, sl, RAFT_START_JOIN, &m);
}

/* Liveness in --incarnations: full fault tolerance back, every host's current incarnation is
 * a voter of the leader's configuration and no other incarnation of it is a member. */
bool hosts_converged(const sim_t *s, int leader)
{
    const sim_node_t *ld = &s->n[leader];
    for (uint32_t i = 0; i < ld->st.members.n; i++) {
        int sl = slot_of(ld->st.members.m[i].id);
        int h = sl >= 0 ? s->n[sl].host : -1;
        if (!(h >= 0 && s->answer[h] == sl && ld->st.members.m[i].role == RAFT_VOTER))
            return false;
    }
    return ld->st.members.n == (uint32_t)s->n_initial;
}
