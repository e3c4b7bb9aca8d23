/* faults.c: raft-sim's fault injector: at random moments of the fault phase it changes the
 * network weather, partitions (symmetric, one-way, isolation, bridge), crashes, restarts (with
 * its state, without it, amnesiac), pauses, membership changes, leadership transfers and flaky
 * links; the leader's reconciler duties (remove gone members, shut down removed servers). */
#include "sim_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int n_up_members(const sim_t *s, const raft_members_t *m, int *voters)
{
    int n = 0;
    *voters = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].role == RAFT_VOTER)
            (*voters)++;
        n++;
    }
    (void)s;
    return n;
}

static int pick_slot(sim_t *s, bool (*ok)(const sim_t *, int))
{
    int cand[SIM_MAX_SLOTS], n = 0;
    for (int i = 0; i < s->n_slots; i++)
        if (ok(s, i))
            cand[n++] = i;
    return n ? cand[sim_rng_below(&s->rng, (uint64_t)n)] : -1;
}

static bool ok_up(const sim_t *s, int i)
{
    return s->n[i].exists && s->n[i].up;
}

static bool ok_crashed(const sim_t *s, int i)
{
    return s->n[i].exists && !s->n[i].up && !s->n[i].dead_inc;
}

static bool ok_exists(const sim_t *s, int i)
{
    return s->n[i].exists;
}

static void fault_membership(sim_t *s)
{
    if (s->hosts_mode) {
        hosts_policy_step(s);
        return;
    }
    int l = sim_find_leader(s);
    if (l < 0)
        return;
    sim_node_t *ld = &s->n[l];
    raft_members_t m = ld->st.members;
    int voters;
    int members = n_up_members(s, &m, &voters);
    raft_index_t idx = 0;
    int rv = 1;
    const char *what = NULL;
    raft_id_t target = 0;
    /* promote a caught-up learner first, then replace amnesiacs, then random churn */
    for (uint32_t i = 0; i < ld->st.n_peers && !what; i++) {
        const raft_peer_status_t *p = &ld->st.peers[i];
        int sl = slot_of(p->id);
        if (p->member_role == RAFT_LEARNER && !p->recovering && p->match >= ld->st.commit &&
            sl >= 0 && s->n[sl].up && !s->n[sl].removing && !s->n[sl].amnesiac) {
            what = "promote";
            target = p->id;
            rv = raft_change(ld->r, s->now, RAFT_CHANGE_PROMOTE, target, &idx);
        }
    }
    for (uint32_t i = 0; i < m.n && !what; i++) {
        int sl = slot_of(m.m[i].id);
        if (sl >= 0 && s->n[sl].amnesiac &&
            (m.m[i].role == RAFT_LEARNER || voters > SIM_MIN_VOTERS)) {
            what = "remove amnesiac";
            target = m.m[i].id;
            rv = raft_change(ld->r, s->now, RAFT_CHANGE_REMOVE, target, &idx);
            if (rv == 0)
                s->n[sl].removing = true;
        }
    }
    if (!what) {
        uint64_t dice = sim_rng_below(&s->rng, 100);
        if (members < SIM_MAX_SERVERS && s->n_slots < SIM_CHURN_SLOTS && dice < 55) {
            target = (raft_id_t)s->n_slots + 1;
            what = "add learner";
            rv = raft_change(ld->r, s->now, RAFT_CHANGE_ADD_LEARNER, target, &idx);
            if (rv == 0) {
                int sl = s->n_slots++;
                raft_members_t hm = m;
                hm.m[hm.n].id = target;
                hm.m[hm.n].role = RAFT_LEARNER;
                hm.n++;
                sim_trace(s, "t=%" PRIu64 " n%d change %s n%" PRIu64 " index=%" PRIu64, s->now,
                          l + 1, what, target, idx);
                node_after(s, l);
                node_start(s, sl, RAFT_START_JOIN, &hm);
                return;
            }
        } else {
            /* remove a member other than a pending one; keep at least 3 voters */
            int cand[RAFT_MAX_MEMBERS], n = 0;
            for (uint32_t i = 0; i < m.n; i++) {
                if (m.m[i].role == RAFT_VOTER && voters <= SIM_MIN_VOTERS)
                    continue;
                /* without memory-loss faults, never leave a configuration whose voters that
                 * hold their log are not a majority (a restarted voter may not vote) */
                raft_members_t after = m;
                after.m[i] = after.m[--after.n];
                if (m.m[i].role == RAFT_VOTER && !s->allow_mem_loss &&
                    !check_memory_majority_of(s, &after, -1))
                    continue;
                cand[n++] = (int)i;
            }
            if (n) {
                target = m.m[cand[sim_rng_below(&s->rng, (uint64_t)n)]].id;
                what = "remove";
                rv = raft_change(ld->r, s->now, RAFT_CHANGE_REMOVE, target, &idx);
                if (rv == 0 && slot_of(target) >= 0)
                    s->n[slot_of(target)].removing = true;
            }
        }
    }
    if (what) {
        sim_trace(s, "t=%" PRIu64 " n%d change %s n%" PRIu64 ": %s index=%" PRIu64, s->now, l + 1,
                  what, target, rv ? raft_strerror(rv) : "ok", idx);
        node_after(s, l);
    }
}

/* Like hacache's reconciler, which removes members that are not in HA_HOSTS every 500 ms: a
 * leader removes a member whose server is gone for good (an escape from a stale view can write
 * one back into the configuration) as soon as it can. */
static void remove_gone(sim_t *s)
{
    int l = sim_find_leader(s);
    if (l < 0 || !s->n[l].st.members_committed)
        return;
    const raft_members_t *m = &s->n[l].st.members;
    for (uint32_t i = 0; i < m->n; i++) {
        int sl = slot_of(m->m[i].id);
        if (sl < 0 || sl >= s->n_slots || s->n[sl].exists)
            continue;
        raft_index_t idx = 0;
        raft_id_t target = m->m[i].id;
        int rv = raft_change(s->n[l].r, s->now, RAFT_CHANGE_REMOVE, target, &idx);
        sim_trace(s, "t=%" PRIu64 " n%d change remove gone n%" PRIu64 ": %s index=%" PRIu64, s->now,
                  l + 1, target, rv ? raft_strerror(rv) : "ok", idx);
        node_after(s, l);
        return;
    }
}

/* Shut down servers whose removal the leader has committed. With hosts (--incarnations) only a
 * dead incarnation goes: a host's current process stays (the leader acted on a stale report of
 * an older incarnation, see raft/README.md) and is added again once the leader hears it. */
void fault_reap_removed(sim_t *s)
{
    int l = sim_find_leader(s);
    if (l < 0 || !s->n[l].st.members_committed)
        return;
    for (int i = 0; i < s->n_slots; i++) {
        sim_node_t *nd = &s->n[i];
        if (!nd->exists || !nd->removing || is_member(&s->n[l].st.members, nd->id, NULL))
            continue;
        if (s->hosts_mode && nd->host >= 0 && s->answer[nd->host] == i) {
            nd->removing = false;
            continue;
        }
        if (nd->up)
            node_crash(s, i, "removed from the configuration: shut down");
        nd->exists = false;
        sim_trace(s, "t=%" PRIu64 " n%d gone for good", s->now, i + 1);
    }
}

static void fault_weather(sim_t *s)
{
    static const uint32_t loss[] = {0, 0, 10000, 50000, 200000};
    static const uint32_t dup[] = {0, 10000, 50000};
    static const uint32_t tail[] = {0, 10000, 50000};
    s->loss_ppm = loss[sim_rng_below(&s->rng, 5)];
    s->dup_ppm = dup[sim_rng_below(&s->rng, 3)];
    s->tail_ppm = tail[sim_rng_below(&s->rng, 3)];
    s->delay_min = sim_rng_between(&s->rng, 1, 5);
    s->delay_max = s->delay_min + sim_rng_between(&s->rng, 1, 40);
    s->tail_max = s->delay_max + sim_rng_between(&s->rng, 50, 3 * T(s));
    sim_trace(s,
              "t=%" PRIu64 " FAULT weather loss=%u dup=%u tail=%u delay=%" PRIu64 "..%" PRIu64
              " tail_max=%" PRIu64,
              s->now, s->loss_ppm, s->dup_ppm, s->tail_ppm, s->delay_min, s->delay_max,
              s->tail_max);
}

void fault_act(sim_t *s)
{
    fault_reap_removed(s);
    remove_gone(s);
    if (s->hosts_mode && hosts_fault(s))
        return;
    uint64_t dice = sim_rng_below(&s->rng, 100);
    int a = pick_slot(s, ok_exists), b = pick_slot(s, ok_exists), c = pick_slot(s, ok_exists);
    if (dice < 8) {
        fault_weather(s);
    } else if (dice < 14) { /* symmetric partition into two random groups */
        bool side[SIM_MAX_SLOTS];
        for (int i = 0; i < s->n_slots; i++)
            side[i] = sim_rng_below(&s->rng, 2);
        net_heal_partitions(s);
        char buf[64] = "";
        size_t o = 0;
        for (int i = 0; i < s->n_slots; i++) {
            for (int j = 0; j < s->n_slots; j++)
                s->cut[i][j] = side[i] != side[j];
            if (side[i] && o + 4 < sizeof buf)
                o += (size_t)snprintf(buf + o, sizeof buf - o, " n%d", i + 1);
        }
        sim_trace(s, "t=%" PRIu64 " FAULT partition {%s } | rest", s->now, buf);
    } else if (dice < 19) {
        if (a >= 0 && b >= 0 && a != b) {
            s->cut[a][b] = true;
            sim_trace(s, "t=%" PRIu64 " FAULT one-way cut n%d->n%d", s->now, a + 1, b + 1);
        }
    } else if (dice < 25) {
        if (a >= 0) {
            for (int i = 0; i < SIM_MAX_SLOTS; i++)
                if (i != a)
                    s->cut[a][i] = s->cut[i][a] = true;
            sim_trace(s, "t=%" PRIu64 " FAULT isolate n%d", s->now, a + 1);
        }
    } else if (dice < 29) {
        if (a >= 0 && b >= 0 && c >= 0 && a != b && b != c && a != c) {
            net_heal_partitions(s);
            s->cut[a][c] = s->cut[c][a] = true;
            sim_trace(s, "t=%" PRIu64 " FAULT bridge n%d<-/->n%d, both reach n%d", s->now, a + 1,
                      c + 1, b + 1);
        }
    } else if (dice < 41) {
        net_heal_partitions(s);
        sim_trace(s, "t=%" PRIu64 " FAULT heal partitions", s->now);
    } else if (dice < 48) {
        int v = pick_slot(s, ok_up);
        int l = sim_find_leader(s);
        if (l >= 0 && sim_rng_below(&s->rng, 2))
            v = l; /* leaders are the interesting victims */
        if (v >= 0 && (s->allow_mem_loss || check_memory_majority(s, v)))
            node_crash(s, v, "fault");
    } else if (dice < 58) {
        int v = pick_slot(s, ok_crashed);
        if (v >= 0 && s->hosts_mode) {
            hosts_restart(s, v, true); /* half of the time without state: a new incarnation */
        } else if (v >= 0) {
            raft_members_t m;
            sim_host_members(s, &m);
            bool amnesia = s->allow_amnesia && sim_rng_below(&s->rng, 4) == 0;
            for (int i = 0; i < s->n_slots && amnesia; i++)
                if (s->n[i].exists && s->n[i].amnesiac)
                    amnesia = false; /* one replacement at a time */
            node_start(s, v, amnesia ? RAFT_START_AMNESIA : RAFT_START_RESTART, &m);
        }
    } else if (dice < 62) {
        int v = pick_slot(s, ok_up);
        if (v >= 0 && !s->n[v].paused) {
            s->n[v].paused = true;
            s->n[v].pause_gen++;
            uint64_t len = sim_rng_between(&s->rng, T(s), 5 * T(s));
            s->n[v].resume_at = s->now + len;
            sim_schedule(s, s->now + len, EV_RESUME, v, 0, s->n[v].pause_gen);
            sim_trace(s, "t=%" PRIu64 " FAULT pause n%d for %" PRIu64 " ms", s->now, v + 1, len);
        }
    } else if (dice < 76) {
        fault_membership(s);
    } else if (dice < 80) {
        int l = sim_find_leader(s);
        if (l >= 0) {
            int rv = raft_transfer(s->n[l].r, s->now, 0);
            sim_trace(s, "t=%" PRIu64 " n%d transfer leadership: %s", s->now, l + 1,
                      raft_strerror(rv));
            node_after(s, l);
        }
    } else if (dice < 84) {
        memset(s->node_loss_ppm, 0, sizeof s->node_loss_ppm);
        if (a >= 0 && sim_rng_below(&s->rng, 2)) {
            s->node_loss_ppm[a] = (uint32_t)sim_rng_between(&s->rng, 200000, 800000);
            sim_trace(s, "t=%" PRIu64 " FAULT flaky n%d loss=%u", s->now, a + 1,
                      s->node_loss_ppm[a]);
        } else {
            sim_trace(s, "t=%" PRIu64 " FAULT no flaky node", s->now);
        }
    } /* else: a quiet moment */
}
