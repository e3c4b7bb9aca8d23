/* client.c: raft-sim's clients: each has one operation outstanding at a time, a write (75%) or
 * a linearizable read, sent to the server it believes leads; the outcome is known when the
 * entry is applied (or another entry takes its index) or the read is answered. */
#include "sim_int.h"

#include <inttypes.h>

void client_next(sim_t *s, int ci, uint64_t after)
{
    sim_client_t *c = &s->c[ci];
    c->op = OP_NONE;
    c->submitted = false;
    c->op_gen++;
    sim_schedule(s, s->now + after, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
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

void client_on_apply(sim_t *s, int slot, const raft_entry_t *e)
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

void client_on_read(sim_t *s, int slot, const raft_read_t *rd)
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

void client_act(sim_t *s, int ci)
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
        sim_epoch_t *ep = check_current(s, &c->need_gen, &c->need_epoch);
        c->need_index = ep->max_acked;
        c->index = c->term = 0;
    }
    if (s->now >= c->deadline) {
        client_done(s, ci, "timed out");
        return;
    }
    if (c->submitted) { /* an early wake-up: wait for the deadline */
        sim_schedule(s, c->deadline, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
        return;
    }
    int slot = slot_of(c->leader_guess);
    if (!usable(s, slot)) {
        int cand[SIM_MAX_SLOTS], n = 0;
        for (int i = 0; i < s->n_slots; i++)
            if (usable(s, i))
                cand[n++] = i;
        if (n == 0) {
            sim_schedule(s, s->now + 20, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
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
        sim_schedule(s, c->deadline, EV_CLIENT, 0, (uint32_t)ci, c->op_gen);
    } else {
        raft_id_t hint = nd->st.leader;
        c->leader_guess = (rv == RAFT_ENOTLEADER && hint && hint != nd->id)
                              ? hint
                              : (raft_id_t)sim_rng_between(&s->rng, 1, (uint64_t)s->n_slots);
        sim_schedule(s, s->now + sim_rng_between(&s->rng, 1, 15), EV_CLIENT, 0, (uint32_t)ci,
                     c->op_gen);
    }
    node_after(s, slot);
}
