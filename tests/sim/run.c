/* run.c: one raft-sim run: the trace and failure reports, the event dispatch, the phases (fault
 * phase, healing, liveness), the stability scenario, and sim_run() that draws the shape of a
 * run from its seed and drives the queue until done. Nothing in raft-sim reads a clock or
 * calls rand(): a run is a function of its seed and options, and its trace hash proves it.
 * The invariants live in check.c. */
#include "sim_int.h"

#include "incarnation.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- trace and failure -------------------------------------------------------------------- */

void sim_trace(sim_t *s, const char *fmt, ...)
{
    char *line = s->ring[s->ring_next % SIM_RING];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof s->ring[0], fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof s->ring[0])
        n = (int)sizeof s->ring[0] - 1;
    s->ring_next++;
    s->trace_hash = sim_fnv(s->trace_hash, line, (size_t)n);
    s->trace_hash = sim_fnv(s->trace_hash, "\n", 1);
    if (s->o.verbose)
        printf("%s\n", line);
}

void sim_fail(sim_t *s, const char *invariant, const char *fmt, ...)
{
    if (s->res.failed)
        return;
    s->res.failed = true;
    snprintf(s->res.invariant, sizeof s->res.invariant, "%s", invariant);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res.what, sizeof s->res.what, fmt, ap);
    va_end(ap);
    sim_trace(s, "t=%" PRIu64 " VIOLATION %s: %s", s->now, invariant, s->res.what);
    s->done = true;
}

static void core_trace(void *ctx, raft_id_t self, uint64_t now, const char *line)
{
    sim_t *s = ctx;
    sim_trace(s, "t=%" PRIu64 " n%" PRIu64 " | %s", now, self, line);
}

const char *const sim_bug_names[] = {
    "commit-without-majority", "vote-twice",      "read-without-quorum",   "recovering-votes",
    "commit-old-term",         "swap-two-voters", "vote-before-caught-up", NULL};

uint32_t sim_bug_flag(const char *name)
{
    for (int i = 0; sim_bug_names[i]; i++)
        if (strcmp(name, sim_bug_names[i]) == 0)
            return 1u << i;
    return 0;
}

/* ---- phases -------------------------------------------------------------------------------- */

/* Start of the liveness phase: heal everything and stop injecting faults. */
static void heal_all(sim_t *s)
{
    s->faults_on = false;
    s->healed = true;
    s->heal_at = s->now;
    net_heal_partitions(s);
    s->loss_ppm = s->dup_ppm = s->tail_ppm = 0;
    memset(s->node_loss_ppm, 0, sizeof s->node_loss_ppm);
    s->delay_min = 1;
    s->delay_max = 10;
    s->tail_max = 10;
    /* a leader must commit a client write within 10 election timeouts (20 when a majority lost
     * its memory: the escape waits recovery_timeouts first); everything must be applied on
     * every live voter within SIM_CONVERGE_MS (slow settings replicate one entry per message) */
    bool mem_loss = check_current(s, NULL, NULL)->mem_loss;
    /* plus the time to replicate the longest log once at the configured batch size and
     * pipeline depth (one round trip is at most 2 x 10 ms now): with one entry per message and
     * one in flight, a voter cut off for a while needs seconds to catch up, and the leader may
     * need it for its first commit (raft-sim seed 3496: 500 entries behind, 1.7 s budget) */
    raft_index_t longest = 0;
    for (int i = 0; i < s->n_slots; i++)
        if (s->n[i].exists && s->n[i].up && s->n[i].st.last_index > longest)
            longest = s->n[i].st.last_index;
    uint64_t catch_up =
        longest * 20 / ((uint64_t)s->rcfg.max_entries_per_msg * s->rcfg.max_inflight);
    s->live_deadline = s->now + (uint64_t)(mem_loss ? 20 : 10) * T(s) + catch_up;
    /* --incarnations: the hosts may still have to found a cluster (start over, wait for the
     * founders, elect) */
    if (s->hosts_mode && hosts_refound_pending(s))
        s->live_deadline += 2000 + 10 * T(s);
    sim_trace(s,
              "t=%" PRIu64 " HEAL: liveness phase, a write commits by t=%" PRIu64
              ", converged by t=%" PRIu64,
              s->now, s->live_deadline, s->now + SIM_CONVERGE_MS);
    for (int i = 0; i < s->n_slots && !s->done; i++) {
        if (!s->n[i].exists || s->n[i].dead_inc)
            continue;
        if (!s->n[i].up && s->hosts_mode) {
            hosts_restart(s, i, false);
        } else if (!s->n[i].up) {
            raft_members_t m;
            sim_host_members(s, &m);
            node_start(s, i, RAFT_START_RESTART, &m);
        } else if (s->n[i].paused) {
            node_resume(s, i);
        }
    }
    for (int ci = 0; ci < SIM_CLIENTS; ci++)
        s->c[ci].ok_after_heal = false;
}

/* Liveness: a leader, every client saw a write invoked after healing acknowledged, and every
 * live voter applied everything the leader committed. */
static void liveness_check(sim_t *s)
{
    int l = sim_find_leader(s);
    bool ok = l >= 0;
    for (int ci = 0; ci < SIM_CLIENTS && ok; ci++)
        ok = s->c[ci].ok_after_heal;
    if (ok) {
        const sim_node_t *ld = &s->n[l];
        for (uint32_t i = 0; i < ld->st.members.n && ok; i++) {
            int sl = slot_of(ld->st.members.m[i].id);
            if (ld->st.members.m[i].role != RAFT_VOTER || sl < 0 || !s->n[sl].exists)
                continue;
            ok = s->n[sl].up && s->n[sl].sm_index >= ld->st.commit && ld->st.commit > 0;
        }
        /* --incarnations: full fault tolerance back */
        ok = ok && (!s->hosts_mode || hosts_converged(s, l));
    }
    if (ok) {
        sim_trace(s,
                  "t=%" PRIu64 " LIVE: leader n%d term=%" PRIu64 " commit=%" PRIu64
                  " applied everywhere",
                  s->now, l + 1, s->n[l].st.term, s->n[l].st.commit);
        s->done = true;
        return;
    }
    int pending = 0;
    for (int ci = 0; ci < SIM_CLIENTS; ci++)
        pending += !s->c[ci].ok_after_heal;
    if ((pending && s->now >= s->live_deadline) || s->now >= s->heal_at + SIM_CONVERGE_MS) {
        char buf[1000];
        size_t o = 0;
        for (int i = 0; i < s->n_slots && o < sizeof buf - 160; i++) {
            const sim_node_t *nd = &s->n[i];
            if (!nd->exists || nd->dead_inc) /* dead incarnations: never again */
                continue;
            o += (size_t)snprintf(
                buf + o, sizeof buf - o, " n%d:%s/%s/t%" PRIu64 "/c%" PRIu64 "/a%" PRIu64 "%s",
                i + 1, nd->up ? "up" : "down", raft_role_name(nd->st.role), nd->st.term,
                nd->st.commit, nd->sm_index, nd->st.recovering ? "/recovering" : "");
            /* its epoch and configuration (L: learner; * after it: committed) */
            o += (size_t)snprintf(buf + o, sizeof buf - o, "/e%" PRIu64 "/{", nd->st.epoch);
            for (uint32_t k = 0; k < nd->st.members.n; k++)
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s%" PRIu64, k ? "," : "",
                                      nd->st.members.m[k].role == RAFT_LEARNER ? "L" : "",
                                      nd->st.members.m[k].id);
            o += (size_t)snprintf(buf + o, sizeof buf - o, "}%s",
                                  nd->st.members_committed ? "*" : "");
        }
        sim_fail(s, "liveness",
                 "%" PRIu64 " ms after healing: %s; %d client(s) without an acknowledged write;%s",
                 s->now - s->heal_at, l < 0 ? "no leader" : "not converged", pending, buf);
    }
}
/* ---- events --------------------------------------------------------------------------------- */

static void on_event(sim_t *s, sim_event_t *ev)
{
    switch (ev->type) {
    case EV_DELIVER:
        net_on_deliver(s, ev);
        break;
    case EV_TICK: {
        sim_node_t *nd = &s->n[ev->slot];
        if (!nd->up || nd->tick_gen != ev->gen || nd->paused)
            break;
        sim_trace(s, "t=%" PRIu64 " n%d tick", s->now, ev->slot + 1);
        int rv = raft_tick(nd->r, s->now);
        if (rv != 0)
            sim_fail(s, "core-error", "raft_tick(n%d): %s", ev->slot + 1, raft_strerror(rv));
        node_after(s, ev->slot);
        break;
    }
    case EV_FAULT:
        if (!s->faults_on) {
            /* --incarnations: the leader's policy keeps replacing after healing */
            if (s->hosts_mode && s->healed) {
                fault_reap_removed(s);
                hosts_policy_step(s);
                sim_schedule(s, s->now + T(s) / 4, EV_FAULT, 0, 0, 0);
            }
            break;
        }
        fault_act(s);
        sim_schedule(s, s->now + sim_rng_between(&s->rng, 20, 3 * T(s)), EV_FAULT, 0, 0, 0);
        break;
    case EV_CLIENT:
        if (ev->gen == s->c[ev->a].op_gen)
            client_act(s, (int)ev->a);
        break;
    case EV_HOSTS:
        hosts_tick(s);
        sim_schedule(s, s->now + T(s) / 4, EV_HOSTS, 0, 0, 0);
        break;
    case EV_OFFER:
        hosts_on_offer(s, ev);
        break;
    case EV_SNAP_ARRIVE:
        node_on_snap_arrive(s, ev);
        break;
    case EV_SNAP_DONE:
        node_on_snap_done(s, ev);
        break;
    case EV_RESUME:
        if (s->n[ev->slot].up && s->n[ev->slot].paused && s->n[ev->slot].pause_gen == ev->gen)
            node_resume(s, ev->slot);
        break;
    case EV_HEAL:
        if (s->o.no_liveness) {
            s->done = true;
            break;
        }
        heal_all(s);
        break;
    case EV_STOP:
        s->done = true;
        break;
    case EV_FLAKY: {
        int f = s->flaky;
        if (f < 0)
            break;
        if (s->flaky_cut)
            net_heal_partitions(s);
        else
            for (int i = 0; i < SIM_MAX_SLOTS; i++)
                if (i != f)
                    s->cut[f][i] = s->cut[i][f] = true;
        s->flaky_cut = !s->flaky_cut;
        sim_trace(s, "t=%" PRIu64 " FLAKY n%d %s", s->now, f + 1,
                  s->flaky_cut ? "isolated" : "reconnected");
        sim_schedule(s, s->now + sim_rng_between(&s->rng, 2 * T(s), 6 * T(s)), EV_FLAKY, 0, 0, 0);
        break;
    }
    default:
        break;
    }
}

/* Stability scenario: after warm-up, pick a non-leader as the flaky node. */
static void stability_begin(sim_t *s)
{
    int l = sim_find_leader(s);
    int f = -1;
    for (int i = 0; i < s->n_slots; i++)
        if (i != l && s->n[i].up) {
            f = i;
            break;
        }
    s->flaky = f;
    s->maj_term = 0;
    for (int i = 0; i < s->n_slots; i++)
        if (i != f && s->n[i].up && s->n[i].st.term > s->maj_term)
            s->maj_term = s->n[i].st.term;
    sim_trace(s, "t=%" PRIu64 " STABILITY flaky=n%d leader=n%d majority term=%" PRIu64, s->now,
              f + 1, l + 1, s->maj_term);
    if (s->o.flaky_mode == 1)
        s->node_loss_ppm[f] = 700000;
    else
        sim_schedule(s, s->now + 1, EV_FLAKY, 0, 0, 0);
}

/* ---- a run ---------------------------------------------------------------------------------- */

static void sim_free(sim_t *s)
{
    for (size_t i = 0; i < s->qn; i++)
        free(s->q[i].ptr);
    free(s->q);
    for (int i = 0; i < SIM_MAX_SLOTS; i++) {
        raft_free(s->n[i].r);
        free(s->n[i].shadow);
    }
    check_free(s);
}

int sim_run(const sim_opts_t *o, sim_result_t *out)
{
    sim_t *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->o = *o;
    s->trace_hash = SIM_FNV_INIT;
    s->flaky = -1;
    sim_rng_seed(&s->rng, o->seed);
    check_init(s);

    /* the shape of this run, all drawn from the seed */
    s->n_initial = o->nodes ? o->nodes : (sim_rng_below(&s->rng, 2) ? 5 : 3);
    s->n_slots = s->n_initial;
    s->rcfg.election_timeout_ms = (uint32_t)sim_rng_between(&s->rng, 150, 400);
    static const uint32_t per_msg[] = {1, 4, 64};
    static const uint32_t inflight[] = {1, 2, 8};
    s->rcfg.max_entries_per_msg = per_msg[sim_rng_below(&s->rng, 3)];
    s->rcfg.max_inflight = inflight[sim_rng_below(&s->rng, 3)];
    s->rcfg.disable_pre_vote = o->no_prevote;
    s->rcfg.disable_check_quorum = o->no_checkquorum;
    s->rcfg.debug_bugs = o->bugs;
    s->rcfg.trace = core_trace;
    s->rcfg.trace_ctx = s;
    static const uint32_t compact[] = {0, 16, 64, 256};
    s->compact_every = compact[sim_rng_below(&s->rng, 4)];
    s->allow_mem_loss = !o->no_faults && sim_rng_below(&s->rng, 100) < 15;
    s->allow_amnesia = !o->no_faults && sim_rng_below(&s->rng, 100) < 30;
    s->hosts_mode = o->incarnations || (o->bugs & (RAFT_BUG_SWAP_VOTERS | RAFT_BUG_JOIN_VOTES));
    s->inc_bugs = ((o->bugs & RAFT_BUG_SWAP_VOTERS) ? INC_BUG_SWAP_TWO_VOTERS : 0) |
                  ((o->bugs & RAFT_BUG_JOIN_VOTES) ? INC_BUG_VOTE_BEFORE_CAUGHT_UP : 0);
    for (int i = 0; i < SIM_MAX_SLOTS; i++)
        s->n[i].host = i < s->n_initial && s->hosts_mode ? i : -1;
    for (int h = 0; h < s->n_initial; h++)
        s->answer[h] = h;
    if (s->hosts_mode) {
        /* the hosts are fixed (no membership churn), restarts without state are new
         * incarnations instead of amnesia, and a majority of the voters never loses its memory
         * by a restart WITH state (rule 4's escape cannot count dead incarnations); a majority
         * of incarnations may be lost at once in 40% of the runs: the hosts start over and
         * found a new cluster */
        s->allow_amnesia = false;
        s->allow_mem_loss = false;
        s->allow_majority_loss = sim_rng_below(&s->rng, 100) < 40;
    }
    uint64_t duration = o->duration_ms
                            ? o->duration_ms
                            : (o->no_faults ? 60000 : sim_rng_between(&s->rng, 20000, 40000));
    s->delay_min = 1;
    s->delay_max = 10;
    s->tail_max = 10;
    sim_trace(s,
              "seed=%" PRIu64 " nodes=%d T=%u per_msg=%u inflight=%u compact=%u mem_loss=%d "
              "amnesia=%d prevote=%d checkquorum=%d bugs=%x duration=%" PRIu64,
              o->seed, s->n_initial, s->rcfg.election_timeout_ms, s->rcfg.max_entries_per_msg,
              s->rcfg.max_inflight, s->compact_every, s->allow_mem_loss, s->allow_amnesia,
              !o->no_prevote, !o->no_checkquorum, o->bugs, duration);

    raft_members_t m = {0};
    for (int i = 0; i < s->n_initial; i++) {
        m.m[m.n].id = (raft_id_t)i + 1;
        m.m[m.n].role = RAFT_VOTER;
        m.n++;
    }
    int founding = check_found(s, &m); /* generation 0 */
    for (int i = 0; i < s->n_initial && !s->done; i++) {
        s->n[i].gen = founding;
        s->n[i].lifetime = s->hosts_mode ? inc_lifetime_id(&m) : 0;
        s->n[i].start_members = m;
        s->n[i].has_state = true;
        node_start(s, i, RAFT_START_BOOTSTRAP, &m);
    }
    for (int ci = 0; ci < SIM_CLIENTS; ci++)
        client_next(s, ci, sim_rng_between(&s->rng, 1, 100));

    uint64_t warmup = o->stability_warmup_ms ? o->stability_warmup_ms : 5000;
    if (o->no_faults) {
        sim_schedule(s, warmup, EV_STABILITY, 0, 0, 0); /* marker: stability begins (below) */
        sim_schedule(s, warmup + duration, EV_STOP, 0, 0, 0);
    } else {
        s->faults_on = true;
        sim_schedule(s, sim_rng_between(&s->rng, 100, 2000), EV_FAULT, 0, 0, 0);
        sim_schedule(s, duration, EV_HEAL, 0, 0, 0);
    }
    if (s->hosts_mode)
        sim_schedule(s, T(s) / 4, EV_HOSTS, 0, 0, 0);

    while (!s->done && s->qn > 0) {
        sim_event_t ev = sim_pop(s);
        s->now = ev.time;
        s->events++;
        if (ev.type == EV_STABILITY) {
            stability_begin(s);
            continue;
        }
        on_event(s, &ev);
        if (s->healed && !s->done)
            liveness_check(s);
        /* a core that answers every message with more messages (e.g. a replication loop under
         * duplication) would otherwise eat all memory */
        if (!s->done && (s->qn > SIM_MAX_QUEUE || s->events > SIM_MAX_EVENTS))
            sim_fail(s, "message-storm",
                     "%zu events queued, %" PRIu64 " processed by t=%" PRIu64
                     ": the cluster floods the network",
                     s->qn, s->events, s->now);
    }
    if (!s->res.failed && !s->done)
        sim_fail(s, "internal", "event queue ran dry");

    s->res.trace_hash = s->trace_hash;
    s->res.vtime = s->now;
    s->res.events = s->events;
    s->res.nodes = s->n_initial;
    for (int g = 0; g < s->n_gen; g++)
        for (uint32_t e = 0; e < s->gen[g].n_ep; e++)
            s->res.committed += s->gen[g].ep[e].max_committed;
    *out = s->res;
    if (s->res.failed && !o->quiet_failure) {
        unsigned n = s->ring_next < 60 ? s->ring_next : 60;
        fprintf(stderr, "--- last %u trace lines (seed=%" PRIu64 ") ---\n", n, o->seed);
        for (unsigned i = s->ring_next - n; i < s->ring_next; i++)
            fprintf(stderr, "%s\n", s->ring[i % SIM_RING]);
        fprintf(stderr, "--- end of trace ---\n");
    }
    sim_free(s);
    free(s);
    return 0;
}
