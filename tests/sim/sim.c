/* sim.c: the simulated world of raft-sim: PRNG, event queue, network, servers hosting a raft_t
 * and a digest state machine, the fault injector, clients, and the phases of a run. The
 * invariants live in check.c. Nothing here reads a clock or calls rand(): a run is a function
 * of its seed and options, and its trace hash proves it. */
#include "sim.h"

#include "incarnation.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- PRNG --------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng_t *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(sim_rng_t *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(sim_rng_t *g, uint64_t n)
{
    return n <= 1 ? 0 : sim_rng_next(g) % n; /* the bias is irrelevant here */
}

uint64_t sim_rng_between(sim_rng_t *g, uint64_t lo, uint64_t hi)
{
    return hi <= lo ? lo : lo + sim_rng_below(g, hi - lo + 1);
}

bool sim_rng_ppm(sim_rng_t *g, uint32_t ppm)
{
    return ppm > 0 && sim_rng_below(g, 1000000) < ppm;
}

uint64_t sim_mix64(uint64_t x)
{
    return splitmix64(&x);
}

uint64_t sim_fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

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

/* ---- event queue: a binary heap ordered by (time, seq) ------------------------------------ */

static bool ev_before(const sim_event_t *a, const sim_event_t *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "raft-sim: out of memory\n");
        exit(2);
    }
    return q;
}

static void push(sim_t *s, sim_event_t ev)
{
    if (s->qn == s->qcap) {
        s->qcap = s->qcap ? s->qcap * 2 : 1024;
        s->q = xrealloc(s->q, s->qcap * sizeof *s->q);
    }
    ev.seq = s->seq++;
    size_t i = s->qn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(&ev, &s->q[p]))
            break;
        s->q[i] = s->q[p];
        i = p;
    }
    s->q[i] = ev;
}

static sim_event_t pop(sim_t *s)
{
    sim_event_t top = s->q[0];
    sim_event_t last = s->q[--s->qn];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const sim_event_t *best = &last;
        if (l < s->qn && ev_before(&s->q[l], best)) {
            m = l;
            best = &s->q[l];
        }
        if (r < s->qn && ev_before(&s->q[r], best))
            m = r;
        if (m == i)
            break;
        s->q[i] = s->q[m];
        i = m;
    }
    if (s->qn > 0)
        s->q[i] = last;
    return top;
}

static void schedule(sim_t *s, uint64_t at, uint8_t type, int slot, uint32_t a, uint64_t gen)
{
    sim_event_t ev = {.time = at, .type = type, .slot = (uint8_t)slot, .a = a, .gen = gen};
    push(s, ev);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t T(const sim_t *s)
{
    return s->rcfg.election_timeout_ms;
}

static int slot_of(raft_id_t id)
{
    return (id >= 1 && id <= SIM_MAX_SLOTS) ? (int)id - 1 : -1;
}

static bool usable(const sim_t *s, int slot)
{
    return slot >= 0 && slot < SIM_MAX_SLOTS && s->n[slot].exists && s->n[slot].up &&
           !s->n[slot].paused;
}

/* The live leader with the highest term, or -1. */
static int find_leader(const sim_t *s)
{
    int best = -1;
    for (int i = 0; i < s->n_slots; i++)
        if (usable(s, i) && s->n[i].st.role == RAFT_LEADER &&
            (best < 0 || s->n[i].st.term > s->n[best].st.term))
            best = i;
    return best;
}

static bool is_member(const raft_members_t *m, raft_id_t id, int *role)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (m->m[i].id == id) {
            if (role)
                *role = m->m[i].role;
            return true;
        }
    return false;
}

static bool members_equal(const raft_members_t *a, const raft_members_t *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->m[i].id != b->m[i].id || a->m[i].role != b->m[i].role)
            return false;
    return true;
}

/* The configuration the host believes in (like HA_HOSTS): the newest one any live server has. */
static void host_members(const sim_t *s, raft_members_t *out)
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

/* ---- the network --------------------------------------------------------------------------- */

static sim_msg_t *msg_copy(const raft_message_t *m)
{
    size_t ne = m->type == RAFT_MSG_APPEND ? m->append.n_entries : 0;
    size_t bytes = sizeof(sim_msg_t) + ne * sizeof(raft_entry_t);
    for (size_t i = 0; i < ne; i++)
        bytes += m->append.entries[i].len;
    sim_msg_t *c = xrealloc(NULL, bytes);
    c->m = *m;
    c->entries = NULL;
    if (m->type == RAFT_MSG_APPEND) {
        raft_entry_t *e = (raft_entry_t *)(c + 1);
        unsigned char *d = (unsigned char *)(e + ne);
        for (size_t i = 0; i < ne; i++) {
            e[i] = m->append.entries[i];
            if (e[i].len) {
                memcpy(d, m->append.entries[i].data, e[i].len);
                e[i].data = d;
                d += e[i].len;
            } else {
                e[i].data = NULL;
            }
        }
        c->entries = ne ? e : NULL;
        c->m.append.entries = c->entries;
    }
    return c;
}

static uint64_t net_delay(sim_t *s)
{
    if (sim_rng_ppm(&s->rng, s->tail_ppm))
        return sim_rng_between(&s->rng, s->delay_max, s->tail_max);
    return sim_rng_between(&s->rng, s->delay_min, s->delay_max);
}

static void net_send(sim_t *s, int from, const raft_message_t *m)
{
    int to = slot_of(m->to);
    if (to < 0 || !s->n[to].exists)
        return;
    uint32_t loss = s->loss_ppm + s->node_loss_ppm[from] + s->node_loss_ppm[to];
    if (sim_rng_ppm(&s->rng, loss)) {
        sim_trace(s, "t=%" PRIu64 " n%d->n%d %s lost", s->now, from + 1, to + 1,
                  raft_msg_type_name(m->type));
        return;
    }
    int copies = sim_rng_ppm(&s->rng, s->dup_ppm) ? 2 : 1;
    for (int k = 0; k < copies; k++) {
        sim_event_t ev = {.time = s->now + net_delay(s),
                          .type = EV_DELIVER,
                          .slot = (uint8_t)to,
                          .from = (uint8_t)from,
                          .gen = s->n[from].life,
                          .gen2 = s->n[to].up ? s->n[to].life : UINT64_MAX,
                          .ptr = msg_copy(m)};
        push(s, ev);
    }
}

static void trace_msg(sim_t *s, const sim_msg_t *c, const char *what)
{
    const raft_message_t *m = &c->m;
    const char *name = raft_msg_type_name(m->type);
    switch (m->type) {
    case RAFT_MSG_APPEND:
        sim_trace(s,
                  "t=%" PRIu64 " n%" PRIu64 "->n%" PRIu64 " %s%s term=%" PRIu64 " prev=%" PRIu64
                  "/%" PRIu64 " n=%zu commit=%" PRIu64 " seq=%" PRIu64 " f=%x",
                  s->now, m->from, m->to, what, name, m->term, m->append.prev_index,
                  m->append.prev_term, m->append.n_entries, m->append.commit, m->append.seq,
                  m->flags);
        break;
    case RAFT_MSG_APPEND_RESP:
        sim_trace(s,
                  "t=%" PRIu64 " n%" PRIu64 "->n%" PRIu64 " %s%s term=%" PRIu64
                  " ok=%d index=%" PRIu64 " hint=%" PRIu64 "/%" PRIu64 " last=%" PRIu64
                  " seq=%" PRIu64 " f=%x",
                  s->now, m->from, m->to, what, name, m->term, m->append_resp.success,
                  m->append_resp.index, m->append_resp.hint_index, m->append_resp.hint_term,
                  m->append_resp.last_index, m->append_resp.seq, m->flags);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        sim_trace(s,
                  "t=%" PRIu64 " n%" PRIu64 "->n%" PRIu64 " %s%s term=%" PRIu64 " last=%" PRIu64
                  "/%" PRIu64 " f=%x",
                  s->now, m->from, m->to, what, name, m->term, m->vote.last_index,
                  m->vote.last_term, m->flags);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        sim_trace(s,
                  "t=%" PRIu64 " n%" PRIu64 "->n%" PRIu64 " %s%s term=%" PRIu64 " granted=%d f=%x",
                  s->now, m->from, m->to, what, name, m->term, m->vote_resp.granted, m->flags);
        break;
    default:
        sim_trace(s, "t=%" PRIu64 " n%" PRIu64 "->n%" PRIu64 " %s%s term=%" PRIu64 " f=%x", s->now,
                  m->from, m->to, what, name, m->term, m->flags);
    }
}

/* ---- servers -------------------------------------------------------------------------------- */

static void client_on_apply(sim_t *s, int slot, const raft_entry_t *e);
static void client_on_read(sim_t *s, int slot, const raft_read_t *rd);
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
            if (!check_epoch(s, nd->epoch)->mem_loss && check_memory_majority(s, -1))
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
        net_send(s, slot, &u.messages[i]);
    }
    for (size_t i = 0; i < u.n_snapshots; i++)
        start_snapshot(s, slot, &u.snapshots[i]);
    if (u.deadline != nd->tick_at) {
        nd->tick_at = u.deadline;
        nd->tick_gen++;
        schedule(s, u.deadline > s->now ? u.deadline : s->now + 1, EV_TICK, slot, 0, nd->tick_gen);
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
static void node_after(sim_t *s, int slot)
{
    if (s->done || !s->n[slot].up)
        return;
    node_drain(s, slot);
    if (!s->done)
        check_after_event(s, slot);
}

static void node_start(sim_t *s, int slot, raft_start_mode_t mode, const raft_members_t *members)
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
    memset(&nd->st, 0, sizeof nd->st);
    check_segment_start(s, slot);
    node_after(s, slot);
}

static void node_crash(sim_t *s, int slot, const char *why)
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

/* ---- snapshots ------------------------------------------------------------------------------ */

static void start_snapshot(sim_t *s, int slot, const raft_snapshot_req_t *req)
{
    sim_node_t *nd = &s->n[slot];
    int to = slot_of(req->to);
    sim_snap_t *sn = xrealloc(NULL, sizeof *sn);
    memset(sn, 0, sizeof *sn);
    sn->leader_term = nd->st.term;
    sn->index = nd->sm_index;
    sn->chain = nd->sm_chain;
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
    push(s, ev);
}

/* ---- clients -------------------------------------------------------------------------------- */

static void client_next(sim_t *s, int ci, uint64_t after)
{
    sim_client_t *c = &s->c[ci];
    c->op = OP_NONE;
    c->submitted = false;
    c->op_gen++;
    schedule(s, s->now + after, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
}

static uint64_t think(sim_t *s)
{
    return s->o.no_faults ? sim_rng_between(&s->rng, 20, 200) : sim_rng_between(&s->rng, 2, 60);
}

static void client_done(sim_t *s, int ci, const char *outcome)
{
    sim_client_t *c = &s->c[ci];
    sim_trace(s,
              "t=%" PRIu64 " c%d %s uid=%" PRIu64 " %s at n%d index=%" PRIu64 " term=%" PRIu64
              " (invoked t=%" PRIu64 ")",
              s->now, ci + 1, c->op == OP_WRITE ? "write" : "read", c->uid, outcome, c->slot + 1,
              c->index, c->term, c->invoked);
    client_next(s, ci, think(s));
}

static void client_on_apply(sim_t *s, int slot, const raft_entry_t *e)
{
    for (int ci = 0; ci < SIM_CLIENTS; ci++) {
        sim_client_t *c = &s->c[ci];
        if (c->op != OP_WRITE || !c->submitted || c->slot != slot || c->life != s->n[slot].life ||
            c->index != e->index)
            continue;
        if (e->term == c->term) {
            check_ack(s, c);
            if (s->healed && c->invoked >= s->heal_at)
                c->ok_after_heal = true;
            client_done(s, ci, "acked");
        } else {
            client_done(s, ci, "lost (another entry committed there)");
        }
    }
}

static void client_on_read(sim_t *s, int slot, const raft_read_t *rd)
{
    for (int ci = 0; ci < SIM_CLIENTS; ci++) {
        sim_client_t *c = &s->c[ci];
        if (c->op != OP_READ || !c->submitted || c->slot != slot || c->life != s->n[slot].life ||
            c->uid != rd->ctx)
            continue;
        if (rd->status != 0) {
            client_done(s, ci, raft_strerror(rd->status));
            return;
        }
        c->index = rd->index;
        check_read(s, slot, c, rd);
        client_done(s, ci, "read ok");
        return;
    }
}

static bool client_stopped(const sim_t *s, const sim_client_t *c)
{
    /* liveness phase: once each client saw a write acknowledged, the load stops so the
     * cluster can converge */
    return s->healed && c->ok_after_heal;
}

static void client_act(sim_t *s, int ci)
{
    sim_client_t *c = &s->c[ci];
    if (c->op == OP_NONE) {
        if (client_stopped(s, c))
            return;
        c->op = sim_rng_below(&s->rng, 100) < 75 ? OP_WRITE : OP_READ;
        c->uid = ++s->next_uid;
        c->invoked = s->now;
        c->deadline = s->now + 4 * T(s);
        c->submitted = false;
        sim_epoch_t *ep = check_epoch(s, s->n_ep - 1);
        c->need_index = ep->max_acked;
        c->need_epoch = s->n_ep - 1;
        c->index = c->term = 0;
    }
    if (s->now >= c->deadline) {
        client_done(s, ci, "timed out");
        return;
    }
    if (c->submitted) { /* an early wake-up: wait for the deadline */
        schedule(s, c->deadline, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
        return;
    }
    int slot = slot_of(c->leader_guess);
    if (!usable(s, slot)) {
        int cand[SIM_MAX_SLOTS], n = 0;
        for (int i = 0; i < s->n_slots; i++)
            if (usable(s, i))
                cand[n++] = i;
        if (n == 0) {
            schedule(s, s->now + 20, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
            return;
        }
        slot = cand[sim_rng_below(&s->rng, (uint64_t)n)];
    }
    sim_node_t *nd = &s->n[slot];
    int rv;
    if (c->op == OP_WRITE) {
        unsigned char buf[64];
        size_t len = 16 + sim_rng_below(&s->rng, 48);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)(c->uid >> (8 * (i % 8)));
        buf[0] = (unsigned char)ci;
        raft_index_t idx = 0;
        raft_term_t term = 0;
        rv = raft_propose(nd->r, s->now, buf, len, &idx, &term);
        c->index = idx;
        c->term = term;
    } else {
        rv = raft_read_index(nd->r, s->now, c->uid);
    }
    sim_trace(s, "t=%" PRIu64 " c%d %s uid=%" PRIu64 " -> n%d: %s index=%" PRIu64, s->now, ci + 1,
              c->op == OP_WRITE ? "propose" : "read_index", c->uid, slot + 1, raft_strerror(rv),
              c->index);
    if (rv == 0) {
        c->submitted = true;
        c->slot = (uint8_t)slot;
        c->life = nd->life;
        c->leader_guess = nd->id;
        schedule(s, c->deadline, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
    } else {
        raft_id_t hint = nd->st.leader;
        c->leader_guess = (rv == RAFT_ENOTLEADER && hint && hint != nd->id)
                              ? hint
                              : (raft_id_t)sim_rng_between(&s->rng, 1, (uint64_t)s->n_slots);
        schedule(s, s->now + sim_rng_between(&s->rng, 1, 15), EV_CLIENT, 0, (uint32_t)ci,
                 c->op_gen);
    }
    node_after(s, slot);
}

/* ---- faults --------------------------------------------------------------------------------- */

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

static void heal_partitions(sim_t *s)
{
    memset(s->cut, 0, sizeof s->cut);
}

/* --incarnations: the leader runs the node's policy (raft/incarnation.h) on what it knows:
 * which incarnation answers for each host (the one that is up), its configuration, each
 * member's host and whether it caught up. One single-server change per call. */
static void policy_step(sim_t *s)
{
    int l = find_leader(s);
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
        v.hosts[h].joining = true; /* a new incarnation asks to be added */
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

static void fault_membership(sim_t *s)
{
    if (s->hosts_mode) {
        policy_step(s);
        return;
    }
    int l = find_leader(s);
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
        if (members < SIM_MAX_SERVERS && s->n_slots < SIM_MAX_SLOTS && dice < 55) {
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
    int l = find_leader(s);
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

/* Shut down servers whose removal the leader has committed. */
static void reap_removed(sim_t *s)
{
    int l = find_leader(s);
    if (l < 0 || !s->n[l].st.members_committed)
        return;
    for (int i = 0; i < s->n_slots; i++) {
        sim_node_t *nd = &s->n[i];
        if (!nd->exists || !nd->removing || is_member(&s->n[l].st.members, nd->id, NULL))
            continue;
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

static void fault_act(sim_t *s)
{
    reap_removed(s);
    remove_gone(s);
    uint64_t dice = sim_rng_below(&s->rng, 100);
    int a = pick_slot(s, ok_exists), b = pick_slot(s, ok_exists), c = pick_slot(s, ok_exists);
    if (dice < 8) {
        fault_weather(s);
    } else if (dice < 14) { /* symmetric partition into two random groups */
        bool side[SIM_MAX_SLOTS];
        for (int i = 0; i < s->n_slots; i++)
            side[i] = sim_rng_below(&s->rng, 2);
        heal_partitions(s);
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
            heal_partitions(s);
            s->cut[a][c] = s->cut[c][a] = true;
            sim_trace(s, "t=%" PRIu64 " FAULT bridge n%d<-/->n%d, both reach n%d", s->now, a + 1,
                      c + 1, b + 1);
        }
    } else if (dice < 41) {
        heal_partitions(s);
        sim_trace(s, "t=%" PRIu64 " FAULT heal partitions", s->now);
    } else if (dice < 48) {
        int v = pick_slot(s, ok_up);
        int l = find_leader(s);
        if (l >= 0 && sim_rng_below(&s->rng, 2))
            v = l; /* leaders are the interesting victims */
        if (v >= 0 && (s->allow_mem_loss || check_memory_majority(s, v)))
            node_crash(s, v, "fault");
    } else if (dice < 58) {
        int v = pick_slot(s, ok_crashed);
        if (v >= 0 && s->hosts_mode && s->n[v].host >= 0 && s->answer[s->n[v].host] == v &&
            s->n_slots < SIM_MAX_SLOTS && sim_rng_below(&s->rng, 2)) {
            /* the host's process starts without state: a new incarnation, a fresh id */
            raft_members_t m;
            host_members(s, &m);
            int sl = s->n_slots++;
            s->n[v].dead_inc = true;
            s->n[sl].host = s->n[v].host;
            s->answer[s->n[v].host] = sl;
            s->res.new_incarnations++;
            sim_trace(s, "t=%" PRIu64 " FAULT host %d: new incarnation n%d replaces n%d", s->now,
                      s->n[v].host, sl + 1, v + 1);
            node_start(s, sl, RAFT_START_JOIN, &m);
        } else if (v >= 0) {
            raft_members_t m;
            host_members(s, &m);
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
            schedule(s, s->now + len, EV_RESUME, v, 0, s->n[v].pause_gen);
            sim_trace(s, "t=%" PRIu64 " FAULT pause n%d for %" PRIu64 " ms", s->now, v + 1, len);
        }
    } else if (dice < 76) {
        fault_membership(s);
    } else if (dice < 80) {
        int l = find_leader(s);
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

static void resume_node(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    nd->paused = false;
    nd->pause_gen++;
    sim_trace(s, "t=%" PRIu64 " n%d RESUME", s->now, slot + 1);
    int rv = raft_tick(nd->r, s->now);
    if (rv != 0)
        sim_fail(s, "core-error", "raft_tick(n%d): %s", slot + 1, raft_strerror(rv));
    node_after(s, slot);
}

/* Start of the liveness phase: heal everything and stop injecting faults. */
static void heal_all(sim_t *s)
{
    s->faults_on = false;
    s->healed = true;
    s->heal_at = s->now;
    heal_partitions(s);
    s->loss_ppm = s->dup_ppm = s->tail_ppm = 0;
    memset(s->node_loss_ppm, 0, sizeof s->node_loss_ppm);
    s->delay_min = 1;
    s->delay_max = 10;
    s->tail_max = 10;
    /* a leader must commit a client write within 10 election timeouts (20 when a majority lost
     * its memory: the escape waits recovery_timeouts first); everything must be applied on
     * every live voter within SIM_CONVERGE_MS (slow settings replicate one entry per message) */
    bool mem_loss = check_epoch(s, s->n_ep - 1)->mem_loss;
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
    sim_trace(s,
              "t=%" PRIu64 " HEAL: liveness phase, a write commits by t=%" PRIu64
              ", converged by t=%" PRIu64,
              s->now, s->live_deadline, s->now + SIM_CONVERGE_MS);
    for (int i = 0; i < s->n_slots && !s->done; i++) {
        if (!s->n[i].exists || s->n[i].dead_inc)
            continue;
        if (!s->n[i].up) {
            raft_members_t m;
            host_members(s, &m);
            node_start(s, i, RAFT_START_RESTART, &m);
        } else if (s->n[i].paused) {
            resume_node(s, i);
        }
    }
    for (int ci = 0; ci < SIM_CLIENTS; ci++)
        s->c[ci].ok_after_heal = false;
}

/* Liveness: a leader, every client saw a write invoked after healing acknowledged, and every
 * live voter applied everything the leader committed. */
static void liveness_check(sim_t *s)
{
    int l = find_leader(s);
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
        /* --incarnations: full fault tolerance back, every host's current incarnation is a
         * voter and no other incarnation of it is a member */
        for (uint32_t i = 0; i < ld->st.members.n && ok && s->hosts_mode; i++) {
            int sl = slot_of(ld->st.members.m[i].id);
            int h = sl >= 0 ? s->n[sl].host : -1;
            ok = h >= 0 && s->answer[h] == sl && ld->st.members.m[i].role == RAFT_VOTER;
        }
        ok = ok && (!s->hosts_mode || ld->st.members.n == (uint32_t)s->n_initial);
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
            if (!nd->exists)
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

static void requeue_paused(sim_t *s, sim_event_t *ev)
{
    ev->time = s->n[ev->slot].resume_at;
    push(s, *ev);
}

static void on_deliver(sim_t *s, sim_event_t *ev)
{
    sim_msg_t *c = ev->ptr;
    sim_node_t *to = &s->n[ev->slot];
    const char *why = NULL;
    if (!to->exists || !to->up || to->life != ev->gen2)
        why = "receiver down/restarted";
    else if (s->n[ev->from].life != ev->gen || !s->n[ev->from].up)
        why = "sender crashed";
    else if (s->cut[ev->from][ev->slot])
        why = "partitioned";
    if (!why && to->paused) {
        requeue_paused(s, ev);
        return;
    }
    if (why) {
        sim_trace(s, "t=%" PRIu64 " n%d->n%d %s dropped (%s)", s->now, ev->from + 1, ev->slot + 1,
                  raft_msg_type_name(c->m.type), why);
        free(c);
        return;
    }
    trace_msg(s, c, "");
    int rv = raft_step(to->r, s->now, &c->m);
    free(c);
    if (rv != 0 && rv != RAFT_ENOMEM)
        sim_fail(s, "core-error", "raft_step(n%d): %s", ev->slot + 1, raft_strerror(rv));
    node_after(s, ev->slot);
}

static void on_snap_arrive(sim_t *s, sim_event_t *ev)
{
    sim_snap_t *sn = ev->ptr;
    sim_node_t *to = &s->n[ev->slot];
    sim_node_t *from = &s->n[ev->from];
    bool from_alive = from->up && from->life == ev->gen;
    bool ok =
        to->exists && to->up && to->life == ev->gen2 && from_alive && !s->cut[ev->from][ev->slot];
    if (ok && to->paused) {
        requeue_paused(s, ev);
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
        push(s, done);
    } else {
        free(sn);
    }
}

static void on_snap_done(sim_t *s, sim_event_t *ev)
{
    sim_snap_t *sn = ev->ptr;
    sim_node_t *nd = &s->n[ev->slot];
    if (!nd->up || nd->life != ev->gen) {
        free(sn);
        return;
    }
    if (nd->paused) {
        requeue_paused(s, ev);
        return;
    }
    int rv = raft_snapshot_sent(nd->r, s->now, ev->a, sn->index, ev->gen2 != 0);
    sim_trace(s, "t=%" PRIu64 " n%d snapshot to n%u index=%" PRIu64 " %s: %s", s->now, ev->slot + 1,
              ev->a, sn->index, ev->gen2 ? "sent" : "failed", raft_strerror(rv));
    free(sn);
    node_after(s, ev->slot);
}

static void on_event(sim_t *s, sim_event_t *ev)
{
    switch (ev->type) {
    case EV_DELIVER:
        on_deliver(s, ev);
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
                reap_removed(s);
                policy_step(s);
                schedule(s, s->now + T(s) / 4, EV_FAULT, 0, 0, 0);
            }
            break;
        }
        fault_act(s);
        schedule(s, s->now + sim_rng_between(&s->rng, 20, 3 * T(s)), EV_FAULT, 0, 0, 0);
        break;
    case EV_CLIENT:
        if (ev->gen == s->c[ev->a].op_gen)
            client_act(s, (int)ev->a);
        break;
    case EV_SNAP_ARRIVE:
        on_snap_arrive(s, ev);
        break;
    case EV_SNAP_DONE:
        on_snap_done(s, ev);
        break;
    case EV_RESUME:
        if (s->n[ev->slot].up && s->n[ev->slot].paused && s->n[ev->slot].pause_gen == ev->gen)
            resume_node(s, ev->slot);
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
            heal_partitions(s);
        else
            for (int i = 0; i < SIM_MAX_SLOTS; i++)
                if (i != f)
                    s->cut[f][i] = s->cut[i][f] = true;
        s->flaky_cut = !s->flaky_cut;
        sim_trace(s, "t=%" PRIu64 " FLAKY n%d %s", s->now, f + 1,
                  s->flaky_cut ? "isolated" : "reconnected");
        schedule(s, s->now + sim_rng_between(&s->rng, 2 * T(s), 6 * T(s)), EV_FLAKY, 0, 0, 0);
        break;
    }
    default:
        break;
    }
}

/* Stability scenario: after warm-up, pick a non-leader as the flaky node. */
static void stability_begin(sim_t *s)
{
    int l = find_leader(s);
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
        schedule(s, s->now + 1, EV_FLAKY, 0, 0, 0);
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
         * incarnations instead of amnesia, and a majority of the configuration's incarnations
         * never loses its memory: the dead-majority recovery is not in the core yet */
        s->allow_amnesia = false;
        s->allow_mem_loss = false;
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
    for (int i = 0; i < s->n_initial && !s->done; i++)
        node_start(s, i, RAFT_START_BOOTSTRAP, &m);
    for (int ci = 0; ci < SIM_CLIENTS; ci++)
        client_next(s, ci, sim_rng_between(&s->rng, 1, 100));

    uint64_t warmup = o->stability_warmup_ms ? o->stability_warmup_ms : 5000;
    if (o->no_faults) {
        schedule(s, warmup, EV_STABILITY, 0, 0, 0); /* marker: stability begins (below) */
        schedule(s, warmup + duration, EV_STOP, 0, 0, 0);
    } else {
        s->faults_on = true;
        schedule(s, sim_rng_between(&s->rng, 100, 2000), EV_FAULT, 0, 0, 0);
        schedule(s, duration, EV_HEAL, 0, 0, 0);
    }

    while (!s->done && s->qn > 0) {
        sim_event_t ev = pop(s);
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
    for (uint32_t e = 0; e < s->n_ep; e++)
        s->res.committed += s->ep[e].max_committed;
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
