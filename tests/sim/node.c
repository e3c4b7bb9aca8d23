/* node.c: raft-sim's servers: each hosts a raft_t, a state machine that is a digest chain of
 * the entries it applied, and a "disk" (hard state and the last committed configuration) that
 * survives crashes; it carries out raft's output batch in the order raft.h prescribes, and
 * plays the host's part of snapshot transfers. */
#include "sim_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The live leader of the newest generation with the highest term, or -1. */
int sim_find_leader(const sim_t *s)
{
    int best = -1;
    for (int i = 0; i < s->n_slots; i++) {
        if (!usable(s, i) || s->n[i].st.role != RAFT_LEADER)
            continue;
        const sim_node_t *b = best >= 0 ? &s->n[best] : NULL;
        if (!b || s->n[i].gen > b->gen || (s->n[i].gen == b->gen && s->n[i].st.term > b->st.term))
            best = i;
    }
    return best;
}

/* The configuration the host believes in (like HA_HOSTS): the newest one any live server has. */
void sim_host_members(const sim_t *s, raft_members_t *out)
{
    int best = -1;
    for (int i = 0; i < s->n_slots; i++)
        if (s->n[i].exists && s->n[i].up &&
            (best < 0 || s->n[i].st.members_index > s->n[best].st.members_index))
            best = i;
    if (best >= 0) {
        *out = s->n[best].st.members;
        return;
    }
    memset(out, 0, sizeof *out);
    for (int i = 0; i < s->n_initial; i++) {
        out->m[out->n].id = (raft_id_t)i + 1;
        out->m[out->n].role = RAFT_VOTER;
        out->n++;
    }
}

static void start_snapshot(sim_t *s, int slot, const raft_snapshot_req_t *req);

/* Collects and carries out raft's output batch for `slot`, in the order raft.h prescribes. */
static void node_drain(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    raft_update_t u;
    int rv = raft_ready(nd->r, &u);
    if (rv != 0) {
        sim_fail(s, "core-error", "raft_ready on n%d: %s", slot + 1, raft_strerror(rv));
        return;
    }
    if (u.hard_state_changed) {
        nd->disk = u.hard_state;
        nd->has_state = true; /* a restart finds it: RAFT_START_RESTART */
        sim_trace(s, "t=%" PRIu64 " n%d persist term=%" PRIu64 " vote=%" PRIu64 "%s", s->now,
                  slot + 1, u.hard_state.term, u.hard_state.vote,
                  u.hard_state.novote ? " novote" : "");
    }
    if (u.reset) {
        sim_trace(s, "t=%" PRIu64 " n%d RESET state machine (term %" PRIu64 ")", s->now, slot + 1,
                  u.term);
        nd->sm_index = 0;
        nd->sm_chain = 0;
        s->res.resets++;
        raft_status_t rst;
        raft_status(nd->r, &rst);
        if (rst.forfeits > nd->st.forfeits) {
            /* it gave up a log it had kept: only when a majority of some configuration had
             * lost its memory already (counting it, as it was, as one that kept it), now or
             * in the epoch its log belongs to (a server cut off during an escape gives up a
             * log the new epoch would discard anyway) */
            s->res.forfeits++;
            check_note_memory(s);
            const sim_epoch_t *own = check_node_epoch(s, slot);
            if (own && !own->mem_loss && check_memory_majority(s, -1))
                sim_fail(s, "spurious-forfeit",
                         "n%d gave up its log (epoch %u) while every configuration has a "
                         "majority of voters that kept their memory",
                         slot + 1, nd->epoch);
        }
        check_reset(s, slot, rst.epoch);
    }
    for (size_t i = 0; i < u.n_entries && !s->done; i++) {
        const raft_entry_t *e = &u.entries[i];
        if (e->index > u.commit)
            sim_fail(s, "apply-uncommitted", "n%d applies index %" PRIu64 " beyond commit %" PRIu64,
                     slot + 1, e->index, u.commit);
        check_apply(s, slot, e);
        client_on_apply(s, slot, e);
    }
    /* persist the last committed configuration next to the hard state (a restart starts with
     * it): the configuration in effect at the commit index, i.e. only once its entry commits */
    if (u.commit > 0) {
        raft_members_t cm;
        raft_status_t ms;
        raft_status(nd->r, &ms);
        bool newer = ms.epoch > nd->disk_members_epoch ||
                     (ms.epoch == nd->disk_members_epoch && u.commit >= nd->disk_members_at);
        if (newer && raft_snapshot_meta(nd->r, u.commit, NULL, &cm) == 0) {
            nd->disk_members_epoch = ms.epoch;
            nd->disk_members_at = u.commit;
        }
        if (newer && nd->disk_members_at == u.commit && !members_equal(&cm, &nd->disk_members)) {
            nd->disk_members = cm;
            sim_trace(s, "t=%" PRIu64 " n%d persist members (%u) at commit %" PRIu64, s->now,
                      slot + 1, cm.n, u.commit);
        }
    }
    for (size_t i = 0; i < u.n_reads && !s->done; i++)
        client_on_read(s, slot, &u.reads[i]);
    if (u.state_changed) {
        sim_trace(s, "t=%" PRIu64 " n%d state role=%s term=%" PRIu64 " leader=%" PRIu64, s->now,
                  slot + 1, raft_role_name(u.role), u.term, u.leader);
        if (u.role == RAFT_LEADER)
            s->res.leader_changes++;
    }
    for (size_t i = 0; i < u.n_messages; i++) {
        if (u.messages[i].from != nd->id) {
            sim_fail(s, "core-error", "n%d sends a message from %" PRIu64, slot + 1,
                     u.messages[i].from);
            return;
        }
        check_message(s, slot, &u.messages[i]);
        net_send(s, slot, &u.messages[i]);
    }
    for (size_t i = 0; i < u.n_snapshots; i++)
        start_snapshot(s, slot, &u.snapshots[i]);
    if (u.deadline != nd->tick_at) {
        nd->tick_at = u.deadline;
        nd->tick_gen++;
        sim_schedule(s, u.deadline > s->now ? u.deadline : s->now + 1, EV_TICK, slot, 0,
                     nd->tick_gen);
    }
    /* compaction: the state machine was "captured" at its applied index */
    if (s->compact_every && nd->sm_index > nd->st.snapshot_index + s->compact_every) {
        raft_index_t upto = nd->sm_index - sim_rng_below(&s->rng, 8);
        if (upto > 0 && (rv = raft_snapshot_taken(nd->r, upto)) != 0)
            sim_fail(s, "core-error", "raft_snapshot_taken(n%d, %" PRIu64 "): %s", slot + 1, upto,
                     raft_strerror(rv));
    }
}

/* After every event on a server: carry out its output, then check every invariant. */
void node_after(sim_t *s, int slot)
{
    if (s->done || !s->n[slot].up || !s->n[slot].r)
        return;
    node_drain(s, slot);
    if (!s->done)
        check_after_event(s, slot);
}

void node_start(sim_t *s, int slot, raft_start_mode_t mode, const raft_members_t *members)
{
    sim_node_t *nd = &s->n[slot];
    nd->exists = true;
    nd->id = (raft_id_t)slot + 1;
    nd->life++;
    nd->incarnation = (sim_rng_next(&s->rng) << 8) | (nd->life & 0xff);
    if (mode == RAFT_START_AMNESIA || mode == RAFT_START_JOIN) {
        memset(&nd->disk, 0, sizeof nd->disk);
        memset(&nd->disk_members, 0, sizeof nd->disk_members);
        nd->disk_members_epoch = 0;
        nd->disk_members_at = 0;
    }
    /* a restart starts with the configuration it persisted, not the host's global view */
    if (mode == RAFT_START_RESTART && nd->disk_members.n > 0)
        members = &nd->disk_members;
    /* the cluster lifetime of this life: the bootstrap's (set by the caller); with hosts, an
     * empty life belongs to whichever cluster it hears from first (check.c) */
    if (!s->hosts_mode)
        nd->gen = 0;
    else if (mode != RAFT_START_BOOTSTRAP)
        nd->gen = -1;
    if (s->hosts_mode) {
        nd->discovering = false;
        nd->joining = mode == RAFT_START_JOIN;
    }
    if (s->hosts_mode && mode == RAFT_START_RESTART) { /* what it knew of the hosts is gone */
        memset(nd->heard, 0, sizeof nd->heard);
        memset(nd->last_frame, 0, sizeof nd->last_frame);
        memset(nd->info, 0, sizeof nd->info);
        nd->found_from = -1;
    }
    raft_start_t st = {.id = nd->id,
                       .incarnation = nd->incarnation,
                       .seed = sim_rng_next(&s->rng),
                       .mode = mode,
                       .hard_state =
                           mode == RAFT_START_RESTART ? nd->disk : (raft_hard_state_t){0, 0, false},
                       .members = *members};
    if (members == &nd->disk_members) { /* ... and where it was in effect */
        st.members_index = nd->disk_members_at;
        st.members_epoch = nd->disk_members_epoch;
    }
    int rv = raft_new(&nd->r, &s->rcfg, &st, s->now);
    if (rv != 0) {
        sim_fail(s, "core-error", "raft_new(n%d, mode %d): %s", slot + 1, (int)mode,
                 raft_strerror(rv));
        nd->r = NULL;
        return;
    }
    static const char *const modes[] = {"?", "bootstrap", "join", "restart", "amnesia"};
    sim_trace(s, "t=%" PRIu64 " n%d START %s life=%" PRIu64 " inc=%" PRIx64 " term=%" PRIu64,
              s->now, slot + 1, modes[mode], nd->life, nd->incarnation, st.hard_state.term);
    nd->up = true;
    nd->paused = false;
    /* an id that once started amnesiac stays so (raft persists novote with the hard state) */
    nd->amnesiac = mode == RAFT_START_AMNESIA || (mode == RAFT_START_RESTART && nd->disk.novote);
    nd->sm_index = 0;
    nd->sm_chain = 0;
    nd->tick_at = 0;
    nd->tick_gen++;
    nd->sound = mode == RAFT_START_BOOTSTRAP;
    nd->escape_term = 0;
    memset(&nd->st, 0, sizeof nd->st);
    check_segment_start(s, slot);
    node_after(s, slot);
}

void node_crash(sim_t *s, int slot, const char *why)
{
    sim_node_t *nd = &s->n[slot];
    sim_trace(s, "t=%" PRIu64 " n%d CRASH (%s)", s->now, slot + 1, why);
    raft_free(nd->r);
    nd->r = NULL;
    nd->up = false;
    nd->paused = false;
    nd->tick_gen++;
    nd->pause_gen++;
    check_note_memory(s);
}

static void start_snapshot(sim_t *s, int slot, const raft_snapshot_req_t *req)
{
    sim_node_t *nd = &s->n[slot];
    int to = slot_of(req->to);
    sim_snap_t *sn = sim_xrealloc(NULL, sizeof *sn);
    memset(sn, 0, sizeof *sn);
    sn->leader_term = nd->st.term;
    sn->index = nd->sm_index;
    sn->chain = nd->sm_chain;
    sn->gen = nd->gen;
    sn->epoch = nd->epoch;
    int rv = sn->index >= req->index ? raft_snapshot_meta(nd->r, sn->index, &sn->term, &sn->members)
                                     : RAFT_ENOENT;
    /* the leader's current term: raft_status is fresh enough (taken after the last event, and
     * a leader's term does not move while it stays leader) */
    raft_status_t st;
    raft_status(nd->r, &st);
    sn->leader_term = st.term;
    sim_event_t ev = {.type = EV_SNAP_ARRIVE,
                      .slot = (uint8_t)(to < 0 ? 0 : to),
                      .from = (uint8_t)slot,
                      .gen = nd->life,
                      .gen2 = to >= 0 && s->n[to].up ? s->n[to].life : UINT64_MAX,
                      .ptr = sn};
    if (rv != 0 || to < 0) {
        sim_trace(s, "t=%" PRIu64 " n%d snapshot for n%" PRIu64 " at %" PRIu64 " impossible: %s",
                  s->now, slot + 1, req->to, req->index, raft_strerror(rv));
        ev.type = EV_SNAP_DONE;
        ev.slot = (uint8_t)slot;
        ev.a = (uint32_t)req->to;
        ev.gen2 = 0; /* not ok */
        sn->index = req->index;
    }
    sim_trace(s, "t=%" PRIu64 " n%d snapshot to n%" PRIu64 " index=%" PRIu64 " term=%" PRIu64,
              s->now, slot + 1, req->to, sn->index, sn->term);
    ev.time = s->now + 5 * s->delay_max + sim_rng_between(&s->rng, 1, 20);
    sim_push(s, ev);
}

void node_resume(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    nd->paused = false;
    nd->pause_gen++;
    sim_trace(s, "t=%" PRIu64 " n%d RESUME", s->now, slot + 1);
    if (!nd->r)
        return; /* --incarnations: a discovering process (no raft yet) */
    int rv = raft_tick(nd->r, s->now);
    if (rv != 0)
        sim_fail(s, "core-error", "raft_tick(n%d): %s", slot + 1, raft_strerror(rv));
    node_after(s, slot);
}

void node_requeue_paused(sim_t *s, sim_event_t *ev)
{
    ev->time = s->n[ev->slot].resume_at;
    sim_push(s, *ev);
}

void node_on_snap_arrive(sim_t *s, sim_event_t *ev)
{
    sim_snap_t *sn = ev->ptr;
    sim_node_t *to = &s->n[ev->slot];
    sim_node_t *from = &s->n[ev->from];
    bool from_alive = from->up && from->life == ev->gen;
    bool ok = to->exists && to->up && to->r && to->life == ev->gen2 && from_alive &&
              !s->cut[ev->from][ev->slot];
    if (ok && to->paused) {
        node_requeue_paused(s, ev);
        return;
    }
    int rv = RAFT_ETIMEOUT;
    if (ok) {
        rv = raft_snapshot_installed(to->r, s->now, sn->leader_term, sn->index, sn->term,
                                     &sn->members);
        sim_trace(s,
                  "t=%" PRIu64 " n%d->n%d snapshot index=%" PRIu64 " term=%" PRIu64
                  " leader_term=%" PRIu64 ": %s",
                  s->now, ev->from + 1, ev->slot + 1, sn->index, sn->term, sn->leader_term,
                  raft_strerror(rv));
        if (rv == 0) {
            check_snapshot_install(s, ev->slot, sn);
            to->sm_index = sn->index;
            to->sm_chain = sn->chain;
        } else if (rv != RAFT_ESTALE) {
            sim_fail(s, "core-error", "raft_snapshot_installed(n%d): %s", ev->slot + 1,
                     raft_strerror(rv));
        }
        node_after(s, ev->slot);
    } else {
        sim_trace(s, "t=%" PRIu64 " n%d->n%d snapshot index=%" PRIu64 " lost", s->now, ev->from + 1,
                  ev->slot + 1, sn->index);
    }
    if (from_alive) {
        sim_event_t done = {.time = s->now + net_delay(s),
                            .type = EV_SNAP_DONE,
                            .slot = ev->from,
                            .a = (uint32_t)to->id,
                            .gen = ev->gen,
                            .gen2 = (ok && (rv == 0 || rv == RAFT_ESTALE)) ? 1 : 0,
                            .ptr = sn};
        sim_push(s, done);
    } else {
        free(sn);
    }
}

void node_on_snap_done(sim_t *s, sim_event_t *ev)
{
    sim_snap_t *sn = ev->ptr;
    sim_node_t *nd = &s->n[ev->slot];
    if (!nd->up || nd->life != ev->gen) {
        free(sn);
        return;
    }
    if (nd->paused) {
        node_requeue_paused(s, ev);
        return;
    }
    int rv = raft_snapshot_sent(nd->r, s->now, ev->a, sn->index, ev->gen2 != 0);
    sim_trace(s, "t=%" PRIu64 " n%d snapshot to n%u index=%" PRIu64 " %s: %s", s->now, ev->slot + 1,
              ev->a, sn->index, ev->gen2 ? "sent" : "failed", raft_strerror(rv));
    free(sn);
    node_after(s, ev->slot);
}
