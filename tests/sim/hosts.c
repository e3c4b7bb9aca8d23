/* hosts.c: raft-sim's --incarnations mode: the initial servers are hosts (HA_HOSTS entries)
 * running one process each. A restart without state is a new incarnation under a fresh id
 * that first DISCOVERS (asks the hosts it reaches, then joins, founds a cluster with the other
 * founders, or waits), as hacached's cluster/discovery.c does. The decisions are the node's own
 * policy, raft/incarnation.h (inc_decide_start, inc_accept_bootstrap, inc_majority_gone,
 * inc_next_change: the same functions hacached calls, never a copy); this file gathers what
 * each process heard and carries them out:
 *  - evidence: every hosts tick (T/4) the processes that reach each other exchange their ids
 *    (hacached's peer pings), and raft messages carry the sender's id (net.c); a process keeps
 *    the id it last heard per host;
 *  - discovering and joining processes also ask for a ClusterInfo (established or not, and the
 *    configuration of an established one);
 *  - a member or joining process whose own configuration lost a majority of its voters on
 *    evidence starts over: a new incarnation without state that discovers;
 *  - a founder offers its configuration to the hosts it reaches (EV_OFFER);
 *  - every leader replaces dead incarnations and placeholders by single-server changes.
 * The faults of this mode (hosts_fault) are a restart without state during another host's
 * replacement and a majority of the hosts restarting without state at once. */
#include "sim_int.h"

#include "incarnation.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- who is who ------------------------------------------------------------------------------ */

/* A majority of the founders may bootstrap only after this long without all of them (hacached's
 * founders wait: 2 T, at least 2 s). */
static uint64_t founders_wait(const sim_t *s)
{
    uint64_t t = 2 * T(s);
    return t > 2000 ? t : 2000;
}

/* The host of a member id: its slot's host, or the host a placeholder stands for; -1 none. The
 * simulator's ids are slot numbers, so raft-sim passes no tags (tag = host index + 1). */
static int host_of_id(const sim_t *s, raft_id_t id)
{
    int sl = slot_of(id);
    if (sl >= 0)
        return s->n[sl].host;
    uint16_t tag = inc_id_tag(id);
    if (tag >= 1 && tag <= s->n_initial && id == inc_placeholder_id(tag))
        return tag - 1;
    return -1;
}

static bool has_placeholder(const raft_members_t *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (slot_of(m->m[i].id) < 0)
            return true;
    return false;
}

/* The process in `a` runs (raft or discovery) and is not paused: it answers requests. */
static bool answers(const sim_t *s, int a)
{
    return a >= 0 && s->n[a].exists && s->n[a].up && !s->n[a].paused;
}

/* A connection between the processes in `a` and `b` (a paused peer keeps its connections). */
static bool linked(const sim_t *s, int a, int b)
{
    return s->n[b].exists && s->n[b].up && !s->cut[a][b] && !s->cut[b][a];
}

static void view_members(const sim_t *s, inc_view_t *v, const raft_members_t *m)
{
    v->members = *m;
    for (uint32_t i = 0; i < m->n; i++)
        v->member_host[i] = host_of_id(s, m->m[i].id);
}

static void trace_members(sim_t *s, char *buf, size_t len, const raft_members_t *m)
{
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < m->n && o + 24 < len; i++) {
        if (slot_of(m->m[i].id) >= 0)
            o += (size_t)snprintf(buf + o, len - o, "%sn%" PRIu64, i ? "," : "", m->m[i].id);
        else
            o += (size_t)snprintf(buf + o, len - o, "%sph%d", i ? "," : "",
                                  host_of_id(s, m->m[i].id));
    }
}

/* ---- the leader's policy -----------------------------------------------------------------------
 */

/* Leader `l` runs the node's policy (raft/incarnation.h) on what it knows, as hacached's
 * leader_reconcile: the incarnation it last heard per host (nothing heard: the host's only
 * member, never evidence), its configuration, each member's host and whether it caught up.
 * One single-server change. */
static void policy_leader(sim_t *s, int l)
{
    const raft_status_t *st = &s->n[l].st;
    inc_view_t v;
    memset(&v, 0, sizeof v);
    v.n_hosts = (uint32_t)s->n_initial;
    v.self = (uint32_t)s->n[l].host;
    view_members(s, &v, &st->members);
    v.committed = st->members_committed;
    v.bugs = s->inc_bugs;
    for (uint32_t i = 0; i < st->members.n; i++) {
        raft_id_t id = st->members.m[i].id;
        v.caught_up[i] = id == st->id;
        for (uint32_t p = 0; p < st->n_peers; p++)
            if (st->peers[p].id == id)
                v.caught_up[i] = st->peers[p].member_role == RAFT_VOTER
                                     ? st->peers[p].counted
                                     : !st->peers[p].recovering && st->peers[p].match >= st->commit;
    }
    for (int h = 0; h < s->n_initial; h++) {
        raft_id_t y = h == s->n[l].host ? st->id : s->n[l].heard[h];
        if (y == 0) {
            int count = 0;
            for (uint32_t i = 0; i < st->members.n; i++)
                if (v.member_host[i] == h) {
                    y = st->members.m[i].id;
                    count++;
                }
            y = count == 1 ? y : 0;
        }
        v.hosts[h].id = y;
        v.hosts[h].established = true;
        /* hacached adds only an incarnation that sent this leader a JoinRequest: a joining
         * process that reaches it */
        int a = s->answer[h];
        v.hosts[h].joining = y != 0 && a >= 0 && s->n[a].id == y && s->n[a].joining &&
                             s->n[a].r != NULL && linked(s, l, a);
    }
    /* a leader whose configuration is dead starts over at the next hosts tick; it never
     * adds anyone to it */
    if (inc_majority_gone(&v))
        return;
    raft_change_t kind;
    raft_id_t target;
    if (!inc_next_change(&v, &kind, &target))
        return;
    raft_index_t idx = 0;
    int rv = raft_change(s->n[l].r, s->now, kind, target, &idx);
    int sl = slot_of(target);
    if (rv == 0 && kind == RAFT_CHANGE_REMOVE) {
        if (sl >= 0)
            s->n[sl].removing = true;
        s->res.replacements++;
    }
    static const char *const kinds[] = {"?", "add learner", "promote", "demote", "remove"};
    char who[32];
    if (sl >= 0)
        snprintf(who, sizeof who, "n%" PRIu64, target);
    else
        snprintf(who, sizeof who, "ph%d", host_of_id(s, target));
    sim_trace(s, "t=%" PRIu64 " n%d policy %s %s: %s index=%" PRIu64, s->now, l + 1, kinds[kind],
              who, rv ? raft_strerror(rv) : "ok", idx);
    node_after(s, l);
}

/* Every process that believes it leads runs the policy (one of them may be stale). */
void hosts_policy_step(sim_t *s)
{
    for (int l = 0; l < s->n_slots && !s->done; l++)
        if (usable(s, l) && s->n[l].host >= 0 && s->n[l].st.role == RAFT_LEADER)
            policy_leader(s, l);
}

/* ---- incarnations ------------------------------------------------------------------------------
 */

/* Slot `sl` becomes a new process of `host` without any state: a fresh id that discovers. */
static void discover_start(sim_t *s, int sl, int host)
{
    sim_node_t *nd = &s->n[sl];
    nd->exists = true;
    nd->up = true;
    nd->paused = false;
    nd->host = host;
    nd->id = (raft_id_t)sl + 1;
    nd->life++;
    nd->discovering = true;
    nd->joining = false;
    nd->has_state = false;
    nd->discover_since = s->now;
    memset(nd->heard, 0, sizeof nd->heard);
    memset(nd->last_frame, 0, sizeof nd->last_frame);
    memset(nd->info, 0, sizeof nd->info);
    memset(nd->heard_lifetime, 0, sizeof nd->heard_lifetime);
    nd->found_from = -1;
    nd->found_lifetime = 0;
    nd->lifetime = 0; /* a new process belongs to no cluster lifetime until it joins or founds */
    memset(&nd->found, 0, sizeof nd->found);
    memset(&nd->start_members, 0, sizeof nd->start_members);
    memset(&nd->disk, 0, sizeof nd->disk);
    memset(&nd->disk_members, 0, sizeof nd->disk_members);
    nd->disk_members_epoch = 0;
    nd->disk_members_at = 0;
    nd->gen = -1;
    nd->sm_index = 0;
    nd->sm_chain = 0;
    nd->tick_gen++;
    memset(&nd->st, 0, sizeof nd->st);
    s->answer[host] = sl;
    sim_trace(s, "t=%" PRIu64 " n%d START discovering (host %d) life=%" PRIu64, s->now, sl + 1,
              host, nd->life);
}

/* The process in `dead` (running or not) is replaced by a new incarnation of its host; false
 * when the simulator is out of ids. */
static bool new_incarnation(sim_t *s, int dead, const char *why)
{
    if (s->n_slots >= SIM_MAX_SLOTS) {
        sim_fail(s, "internal", "out of server ids (%d)", SIM_MAX_SLOTS);
        return false;
    }
    if (s->n[dead].up)
        node_crash(s, dead, why);
    s->n[dead].dead_inc = true;
    int sl = s->n_slots++;
    s->res.new_incarnations++;
    sim_trace(s, "t=%" PRIu64 " host %d: new incarnation n%d replaces n%d (%s)", s->now,
              s->n[dead].host, sl + 1, dead + 1, why);
    discover_start(s, sl, s->n[dead].host);
    return true;
}

/* Ids left for what must still happen: the fault phase keeps `reserve` of them. */
static bool ids_left(const sim_t *s, int reserve)
{
    return s->n_slots + reserve < SIM_MAX_SLOTS;
}

/* A host other than `except` whose replacement is in progress in the leader's configuration
 * (its answering incarnation is not a voter, or another incarnation of it is a member), or -1. */
static int replacing_host(const sim_t *s, int except)
{
    int l = sim_find_leader(s);
    if (l < 0)
        return -1;
    const raft_members_t *m = &s->n[l].st.members;
    for (int g = 0; g < s->n_initial; g++) {
        if (g == except)
            continue;
        raft_id_t y = s->n[s->answer[g]].id;
        int role = 0;
        if (!is_member(m, y, &role) || role != RAFT_VOTER)
            return g;
        for (uint32_t i = 0; i < m->n; i++)
            if (m->m[i].id != y && host_of_id(s, m->m[i].id) == g)
                return g;
    }
    return -1;
}

/* A fault: the process in `v` (running or crashed) restarts without state. */
static void restart_empty(sim_t *s, int v, const char *why)
{
    int g = replacing_host(s, s->n[v].host);
    s->res.restart_empty++;
    if (g >= 0) {
        s->res.replace_during_replace++;
        sim_trace(s,
                  "t=%" PRIu64 " FAULT host %d restarts without state while host %d's "
                  "replacement runs",
                  s->now, s->n[v].host, g);
    }
    new_incarnation(s, v, why);
}

void hosts_restart(sim_t *s, int v, bool may_lose_state)
{
    sim_node_t *nd = &s->n[v];
    bool room = ids_left(s, 3 * s->n_initial + 2); /* keep ids for the start-overs */
    if (!nd->has_state && !room && s->faults_on)
        return; /* stays down until healing */
    /* a process that never persisted raft state comes back as a new incarnation */
    if (!nd->has_state || (may_lose_state && room && sim_rng_below(&s->rng, 2))) {
        restart_empty(s, v, "restart without state");
        return;
    }
    node_start(s, v, RAFT_START_RESTART, &nd->start_members);
}

/* ---- starting over -----------------------------------------------------------------------------
 */

/* Process `i` hears a quorum (hacached's cl_quorum_st): a leader, a majority of its voters
 * within T; a follower, a raft message of its leader within T. */
static bool hears_quorum(const sim_t *s, int i)
{
    const sim_node_t *nd = &s->n[i];
    const raft_status_t *st = &nd->st;
    if (st->role != RAFT_LEADER) {
        int l = slot_of(st->leader), h = l >= 0 ? s->n[l].host : -1;
        return h >= 0 && l != i && nd->heard[h] == st->leader && nd->last_frame[h] != 0 &&
               s->now - nd->last_frame[h] <= T(s);
    }
    uint32_t voters = 0, heard = 1;
    for (uint32_t k = 0; k < st->members.n; k++)
        voters += st->members.m[k].role == RAFT_VOTER;
    for (uint32_t p = 0; p < st->n_peers; p++) {
        const raft_peer_status_t *ps = &st->peers[p];
        heard += ps->member_role == RAFT_VOTER && ps->last_heard_ms != 0 &&
                 s->now - ps->last_heard_ms <= T(s);
    }
    return heard * 2 > voters;
}

/* Member or joining process `i` finds its own configuration dead (hacached's
 * configuration_dead): it hears no quorum, and a majority of the voters is gone on the
 * evidence it last heard per host. */
static bool config_dead(sim_t *s, int i)
{
    const sim_node_t *nd = &s->n[i];
    if (hears_quorum(s, i))
        return false;
    inc_view_t v;
    memset(&v, 0, sizeof v);
    v.n_hosts = (uint32_t)s->n_initial;
    v.self = (uint32_t)nd->host;
    view_members(s, &v, &nd->st.members);
    for (int h = 0; h < s->n_initial; h++) {
        v.hosts[h].id = h == nd->host ? nd->id : nd->heard[h];
        v.hosts[h].other_lifetime = h != nd->host && nd->lifetime != 0 &&
                                    nd->heard_lifetime[h] != 0 &&
                                    nd->heard_lifetime[h] != nd->lifetime;
    }
    return inc_majority_gone(&v);
}

/* ---- discovery
 * ----------------------------------------------------------------------------------- */

/* What discovering process `i` heard, as the policy's view (hacached's discovery_view): the
 * incarnations that answered on a live connection, which are established, and the
 * configuration an established one reported. */
static void discovery_view(const sim_t *s, int i, inc_view_t *v)
{
    const sim_node_t *nd = &s->n[i];
    memset(v, 0, sizeof *v);
    v->n_hosts = (uint32_t)s->n_initial;
    v->self = (uint32_t)nd->host;
    v->hosts[nd->host].id = nd->id;
    for (int g = 0; g < s->n_initial; g++) {
        /* established answers are kept when the link drops (never a bootstrap after hearing
         * of an established cluster), as hacached's discovery_view does */
        if (g == nd->host || nd->info[g] == 0 || (nd->info[g] == 1 && !linked(s, i, s->answer[g])))
            continue;
        v->hosts[g].id = nd->heard[g];
        v->hosts[g].established = nd->info[g] == 2;
    }
    int f = nd->found_from;
    if (f >= 0 && nd->found.n > 0 && nd->info[f] == 2) {
        view_members(s, v, &nd->found);
        for (int g = 0; g < s->n_initial; g++)
            v->hosts[g].other_lifetime = g != nd->host && nd->found_lifetime != 0 &&
                                         nd->heard_lifetime[g] != 0 &&
                                         nd->heard_lifetime[g] != nd->found_lifetime;
    }
}

/* Founder `i` starts raft with the first configuration `m`; the coordinator offers it. A
 * founder that missed the offer (`adopt`) starts with the configuration it heard of, in the
 * lifetime it heard of; the checker binds it to a generation when its log arrives. */
static void found(sim_t *s, int i, const raft_members_t *m, bool coordinator, bool adopt)
{
    sim_node_t *nd = &s->n[i];
    nd->discovering = false;
    nd->joining = false;
    nd->has_state = true; /* a founder persists its first configuration and (0, no vote) */
    nd->start_members = *m;
    nd->lifetime = adopt ? nd->found_lifetime : inc_lifetime_id(m);
    nd->gen = adopt ? -1 : check_found(s, m);
    char buf[160];
    trace_members(s, buf, sizeof buf, m);
    sim_trace(s, "t=%" PRIu64 " n%d %s generation %d: {%s}", s->now, i + 1,
              coordinator ? "FOUNDS" : "adopts the offer of", nd->gen, buf);
    if (coordinator) {
        s->res.refounds++;
        s->res.bootstrap_with_placeholder += has_placeholder(m);
    }
    node_start(s, i, RAFT_START_BOOTSTRAP, m);
    if (!coordinator || s->done)
        return;
    for (int g = 0; g < s->n_initial; g++) {
        int a = s->answer[g];
        if (g == nd->host || nd->heard[g] == 0 || !linked(s, i, a))
            continue;
        raft_members_t *offer = sim_xrealloc(NULL, sizeof *offer);
        *offer = *m;
        /* sent at once on the peer link: it arrives before any later answer of the founder on
         * that link (TCP), i.e. before the next hosts tick could report it established */
        sim_event_t ev = {.time = s->now + 1,
                          .type = EV_OFFER,
                          .slot = (uint8_t)a,
                          .from = (uint8_t)i,
                          .a = (uint32_t)nd->host,
                          .gen = nd->life,
                          .gen2 = s->n[a].life,
                          .ptr = offer};
        sim_push(s, ev);
        sim_trace(s, "t=%" PRIu64 " n%d offers its configuration to n%d", s->now, i + 1, a + 1);
    }
}

static void discovery_decide(sim_t *s, int i)
{
    sim_node_t *nd = &s->n[i];
    inc_view_t v;
    discovery_view(s, i, &v);
    if (s->now - nd->discover_since < founders_wait(s))
        v.founders = (uint32_t)s->n_initial; /* all of them for a while first */
    raft_members_t first;
    inc_decision_t d = inc_decide_start(&v, NULL, &first);
    if (d == INC_JOIN && v.members.n > 0) {
        nd->discovering = false;
        nd->joining = true;
        nd->start_members = v.members;
        nd->lifetime = nd->found_lifetime;
        sim_trace(s, "t=%" PRIu64 " n%d joins the cluster host %d reported", s->now, i + 1,
                  nd->found_from);
        node_start(s, i, RAFT_START_JOIN, &v.members);
    } else if (d == INC_BOOTSTRAP) {
        found(s, i, &first, true, false);
    } else if (d == INC_ADOPT) {
        found(s, i, &first, false, true); /* a founder that missed the offer */
    }
}

void hosts_on_offer(sim_t *s, sim_event_t *ev)
{
    raft_members_t *m = ev->ptr;
    sim_node_t *to = &s->n[ev->slot];
    const sim_node_t *from = &s->n[ev->from];
    bool ok = to->exists && to->up && to->life == ev->gen2 && from->up && from->life == ev->gen &&
              !s->cut[ev->from][ev->slot];
    if (ok && to->paused) {
        node_requeue_paused(s, ev);
        return;
    }
    if (ok && to->discovering) {
        /* the offer is its newest answer: a founder, nothing committed yet */
        to->info[ev->a] = 1;
        if (to->found_from == (int)ev->a) {
            to->found.n = 0;
            to->found_from = -1;
        }
        sim_heard(to, ev->a, from->id, from->lifetime);
        inc_view_t v;
        discovery_view(s, ev->slot, &v);
        if (inc_accept_bootstrap(&v, ev->a, m)) {
            s->res.offers_adopted++;
            found(s, ev->slot, m, false, false);
        } else {
            sim_trace(s, "t=%" PRIu64 " n%d declines the bootstrap offer of n%d", s->now,
                      ev->slot + 1, ev->from + 1);
        }
    } else {
        sim_trace(s, "t=%" PRIu64 " n%d->n%d bootstrap offer lost", s->now, ev->from + 1,
                  ev->slot + 1);
    }
    free(m);
}

/* ---- the hosts tick
 * ------------------------------------------------------------------------------ */

void hosts_tick(sim_t *s)
{
    int n = s->n_slots;
    /* evidence: processes that reach each other learn each other's id (peer pings) */
    for (int i = 0; i < n; i++) {
        if (!answers(s, i) || s->n[i].host < 0)
            continue;
        for (int g = 0; g < s->n_initial; g++) {
            int a = s->answer[g];
            if (g != s->n[i].host && answers(s, a) && linked(s, i, a))
                sim_heard(&s->n[i], g, s->n[a].id, s->n[a].lifetime);
        }
    }
    /* discovering and joining processes ask for a ClusterInfo; the configuration of an
     * established answer is the one they would join (the last answer: any of them) */
    for (int i = 0; i < n; i++) {
        sim_node_t *nd = &s->n[i];
        /* joined once a COMMITTED configuration holds it: an uncommitted addition may be lost
         * with its leader, and a new leader adds only those that keep asking */
        if (nd->joining && nd->r && nd->st.members_committed &&
            is_member(&nd->st.members, nd->id, NULL))
            nd->joining = false;
        /* hacached: a process running raft whose id no committed configuration holds (a joiner
         * that restarted with its state, a member removed) asks to be added again */
        if (!nd->joining && !nd->discovering && nd->r && nd->host >= 0 && !nd->dead_inc &&
            nd->st.members_committed && !is_member(&nd->st.members, nd->id, NULL))
            nd->joining = true;
        if (!answers(s, i) || nd->host < 0 || !(nd->discovering || nd->joining))
            continue;
        int est[SIM_MAX_SERVERS], n_est = 0;
        for (int g = 0; g < s->n_initial; g++) {
            int a = s->answer[g];
            if (g == nd->host || !answers(s, a) || !linked(s, i, a))
                continue;
            nd->info[g] = s->n[a].r ? 2 : 1;
            if (s->n[a].r)
                est[n_est++] = g;
        }
        if (n_est > 0) {
            int g = est[sim_rng_below(&s->rng, (uint64_t)n_est)];
            nd->found_from = g;
            nd->found = s->n[s->answer[g]].st.members;
            nd->found_lifetime = s->n[s->answer[g]].lifetime;
        }
    }
    /* the rule: a member or joining process whose own configuration lost a majority of its
     * voters on evidence starts over as a new incarnation without state */
    for (int i = 0; i < n && !s->done; i++) {
        if (!answers(s, i) || !s->n[i].r || s->n[i].host < 0 || !config_dead(s, i))
            continue;
        if (s->faults_on && !ids_left(s, s->n_initial + 1)) {
            s->res.start_overs_postponed++; /* out of ids: after healing */
            continue;
        }
        s->res.start_overs++;
        sim_trace(s,
                  "t=%" PRIu64 " n%d START OVER: a majority of its configuration's voters is "
                  "gone",
                  s->now, i + 1);
        raft_id_t heard[SIM_MAX_SERVERS];
        memcpy(heard, s->n[i].heard, sizeof heard);
        if (new_incarnation(s, i, "start over")) /* the same process: it keeps what it heard */
            memcpy(s->n[s->n_slots - 1].heard, heard, sizeof heard);
    }
    /* discovering processes decide: join, found, or wait */
    for (int i = 0; i < n && !s->done; i++)
        if (answers(s, i) && s->n[i].discovering)
            discovery_decide(s, i);
    /* with a policy bug switched on, the leaders act at every tick (as hacached's reconciler
     * does every 500 ms) rather than at random fault steps: the new incarnation is then often
     * still catching up when the policy looks at it, the window both bugs need */
    if (s->inc_bugs && s->faults_on)
        hosts_policy_step(s);
}

/* ---- faults of this mode
 * ------------------------------------------------------------------------- */

/* Killing the current incarnations of the hosts in `mask` (they restart without state) must not
 * leave a configuration that is not dead on evidence but whose voters with their memory are no
 * majority: those could neither elect nor prove an escape (raft/README.md: a recovering voter
 * and a dead one together; the core has no raft_gone yet). Either dead (then its members start
 * over; only in runs that may lose a majority of incarnations) or able to elect. */
static bool kill_ok(const sim_t *s, unsigned mask)
{
    for (int k = 0; k < s->n_slots; k++) {
        const sim_node_t *cn = &s->n[k];
        if (!cn->exists || !cn->up || !cn->r || (cn->host >= 0 && (mask >> cn->host) & 1))
            continue;
        const raft_members_t *m = &cn->st.members;
        uint32_t voters = 0, gone = 0, holders = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            if (m->m[i].role != RAFT_VOTER)
                continue;
            voters++;
            int h = host_of_id(s, m->m[i].id), sl = slot_of(m->m[i].id);
            if (h >= 0 && (((mask >> h) & 1) || s->answer[h] != sl)) {
                gone++;
                continue;
            }
            const sim_node_t *v = sl >= 0 ? &s->n[sl] : NULL;
            holders += v && v->exists && v->up && v->r && !v->st.recovering && v->st.can_vote;
        }
        bool dead = voters - gone < inc_quorum(voters);
        if (voters && (dead ? !s->allow_majority_loss : holders < inc_quorum(voters)))
            return false;
    }
    return true;
}

/* A majority of the hosts restart without state at the same moment; a survivor may be paused,
 * cut off or down, so that it learns late. */
static bool majority_lost(sim_t *s)
{
    int order[SIM_MAX_SERVERS];
    for (int h = 0; h < s->n_initial; h++)
        order[h] = h;
    for (int h = s->n_initial - 1; h > 0; h--) {
        int k = (int)sim_rng_below(&s->rng, (uint64_t)h + 1), t = order[h];
        order[h] = order[k];
        order[k] = t;
    }
    int k = (int)inc_quorum((uint32_t)s->n_initial);
    unsigned mask = 0;
    for (int i = 0; i < k; i++)
        mask |= 1u << order[i];
    if (!kill_ok(s, mask))
        return false;
    s->res.majority_lost++;
    sim_trace(s, "t=%" PRIu64 " FAULT majority lost: %d of %d hosts restart without state", s->now,
              k, s->n_initial);
    for (int i = 0; i < k && !s->done; i++) {
        int v = s->answer[order[i]];
        s->res.restart_empty++;
        new_incarnation(s, v, "majority lost");
    }
    int survivor = s->answer[order[k]];
    if (s->done || !s->n[survivor].up)
        return true;
    switch (sim_rng_below(&s->rng, 4)) {
    case 1: {
        sim_node_t *nd = &s->n[survivor];
        if (nd->paused)
            break;
        nd->paused = true;
        nd->pause_gen++;
        uint64_t len = sim_rng_between(&s->rng, T(s), 5 * T(s));
        nd->resume_at = s->now + len;
        sim_schedule(s, s->now + len, EV_RESUME, survivor, 0, nd->pause_gen);
        sim_trace(s, "t=%" PRIu64 " FAULT survivor n%d paused for %" PRIu64 " ms", s->now,
                  survivor + 1, len);
        break;
    }
    case 2:
        for (int i = 0; i < SIM_MAX_SLOTS; i++)
            if (i != survivor)
                s->cut[survivor][i] = s->cut[i][survivor] = true;
        sim_trace(s, "t=%" PRIu64 " FAULT survivor n%d cut off", s->now, survivor + 1);
        break;
    case 3:
        node_crash(s, survivor, "survivor down");
        break;
    default:
        break;
    }
    return true;
}

bool hosts_fault(sim_t *s)
{
    uint64_t dice = sim_rng_below(&s->rng, 1000);
    if (!ids_left(s, 4 * s->n_initial + 2))
        return false; /* keep ids for the start-overs */
    if (dice < 25)
        return s->allow_majority_loss && majority_lost(s);
    if (dice < 175) {
        /* a restart without state of one host while another host's replacement runs */
        int g = replacing_host(s, -1);
        if (g < 0)
            return false;
        int cand[SIM_MAX_SERVERS], n = 0;
        for (int h = 0; h < s->n_initial; h++)
            if (h != g && s->n[s->answer[h]].up && kill_ok(s, 1u << h))
                cand[n++] = h;
        if (n == 0)
            return false;
        int h = cand[sim_rng_below(&s->rng, (uint64_t)n)];
        restart_empty(s, s->answer[h], "restart without state");
        return true;
    }
    return false;
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

/* At healing: a cluster is still to be founded (a process discovers, or a configuration is dead
 * on the evidence that will reach everyone now). */
bool hosts_refound_pending(const sim_t *s)
{
    for (int i = 0; i < s->n_slots; i++) {
        const sim_node_t *nd = &s->n[i];
        if (!nd->exists || nd->dead_inc || nd->host < 0)
            continue;
        if (nd->discovering || !nd->has_state)
            return true;
        inc_view_t v;
        memset(&v, 0, sizeof v);
        v.n_hosts = (uint32_t)s->n_initial;
        v.self = (uint32_t)nd->host;
        view_members(s, &v, nd->r ? &nd->st.members : &nd->start_members);
        for (int h = 0; h < s->n_initial; h++)
            v.hosts[h].id = s->n[s->answer[h]].id;
        if (inc_majority_gone(&v))
            return true;
    }
    return false;
}
