/* check.c: the invariants raft-sim checks after every event, and the checker's memory of what
 * was committed, applied and acknowledged. Generations: every founded cluster (the bootstrap
 * at t=0; with --incarnations also every re-founding after a majority of incarnations was
 * gone) is a lifetime of its own, identified by its first configuration entry; terms, logs
 * and state machines are checked per generation, and an entry of one generation showing up
 * in another fails the run (`generation-leak`). Epochs: within a generation, a reset (escape
 * from a majority memory loss, update.reset) starts a new epoch; log and state machine
 * invariants hold within an epoch. */
#include "sim_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void epoch_new(sim_gen_t *g, raft_term_t start_term)
{
    g->ep = sim_xrealloc(g->ep, (g->n_ep + 1) * sizeof *g->ep);
    memset(&g->ep[g->n_ep], 0, sizeof g->ep[0]);
    g->ep[g->n_ep].start_term = start_term;
    g->n_ep++;
}

void check_init(sim_t *s)
{
    s->gen = NULL;
    s->n_gen = 0;
}

void check_free(sim_t *s)
{
    for (int g = 0; g < s->n_gen; g++) {
        for (uint32_t e = 0; e < s->gen[g].n_ep; e++)
            free(s->gen[g].ep[e].rec);
        free(s->gen[g].ep);
        free(s->gen[g].term_leader);
    }
    free(s->gen);
    free(s->origin);
    free(s->lm);
}

/* The hash of the configuration entry a bootstrap with `m` writes at index 1 (term 0). */
static uint64_t founding_hash(const raft_members_t *m)
{
    unsigned char buf[4 + RAFT_MAX_MEMBERS * 9];
    raft_members_encode(m, buf);
    raft_entry_t e = {.term = 0,
                      .index = 1,
                      .type = RAFT_ENTRY_CONFIG,
                      .data = buf,
                      .len = raft_members_encoded_size(m)};
    return check_entry_hash(&e);
}

static int gen_of_founding(const sim_t *s, uint64_t h)
{
    for (int g = 0; g < s->n_gen; g++)
        if (s->gen[g].founding == h)
            return g;
    return -1;
}

int check_found(sim_t *s, const raft_members_t *m)
{
    uint64_t h = founding_hash(m);
    int g = gen_of_founding(s, h);
    if (g >= 0)
        return g;
    s->gen = sim_xrealloc(s->gen, ((size_t)s->n_gen + 1) * sizeof *s->gen);
    sim_gen_t *ng = &s->gen[s->n_gen];
    memset(ng, 0, sizeof *ng);
    ng->founding = h;
    epoch_new(ng, 0);
    if (s->n_gen > 0)
        sim_trace(s, "t=%" PRIu64 " CHECK generation %d founded (%u members)", s->now, s->n_gen,
                  m->n);
    return s->n_gen++;
}

sim_epoch_t *check_current(sim_t *s, int *gen, uint32_t *epoch)
{
    sim_gen_t *g = &s->gen[s->n_gen - 1];
    if (gen)
        *gen = s->n_gen - 1;
    if (epoch)
        *epoch = g->n_ep - 1;
    return &g->ep[g->n_ep - 1];
}

sim_epoch_t *check_node_epoch(sim_t *s, int slot)
{
    const sim_node_t *nd = &s->n[slot];
    return nd->gen < 0 ? NULL : &s->gen[nd->gen].ep[nd->epoch];
}

static sim_gen_t *gen_of(sim_t *s, const sim_node_t *nd)
{
    return &s->gen[nd->gen];
}

/* ---- generations: which cluster lifetime a life belongs to ---------------------------------- */

/* A life that started empty (a join, a restart: --incarnations) belongs to the cluster whose
 * log or snapshot it receives first. Its log's first configuration entry (index 1, term 0)
 * names the founding; without one (a log started by an escape), the generation of the leader
 * it follows, else the newest. */
static void bind_gen(sim_t *s, int slot, int g, const char *how)
{
    sim_node_t *nd = &s->n[slot];
    nd->gen = g;
    nd->epoch = s->gen[g].n_ep - 1;
    sim_trace(s, "t=%" PRIu64 " CHECK n%d belongs to generation %d (%s)", s->now, slot + 1, g, how);
}

static void bind_by_leader(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    if (nd->gen >= 0)
        return;
    raft_status_t st;
    raft_status(nd->r, &st);
    int l = slot_of(st.leader);
    if (l >= 0 && s->n[l].gen >= 0)
        bind_gen(s, slot, s->n[l].gen, "its leader's");
    else
        bind_gen(s, slot, s->n_gen - 1, "the newest");
}

/* Entry `e` is in slot's log (or applied there): bind an unknown life by it, and fail if its
 * first configuration entry is another generation's founding. */
static void gen_entry(sim_t *s, int slot, const raft_entry_t *e, uint64_t dhash)
{
    sim_node_t *nd = &s->n[slot];
    if (e->index != 1 || e->term != 0 || e->type != RAFT_ENTRY_CONFIG) {
        bind_by_leader(s, slot);
        return;
    }
    int g = gen_of_founding(s, dhash);
    if (g < 0) {
        sim_fail(s, "generation-leak", "n%d holds a first configuration entry no bootstrap wrote",
                 slot + 1);
        return;
    }
    if (nd->gen < 0)
        bind_gen(s, slot, g, "its first entry");
    else if (nd->gen != g)
        sim_fail(s, "generation-leak",
                 "n%d (generation %d) holds the founding entry of generation %d", slot + 1, nd->gen,
                 g);
}

/* --incarnations: a client write (its data is unique) belongs to one generation; it must
 * never appear in a log or a state machine of another. */
static void gen_origin(sim_t *s, int slot, const raft_entry_t *e, uint64_t dhash)
{
    if (!s->hosts_mode || e->type != RAFT_ENTRY_NORMAL || s->n[slot].gen < 0)
        return;
    if (s->origin_n * 2 >= s->origin_cap) {
        size_t cap = s->origin_cap ? s->origin_cap * 2 : 1024;
        sim_origin_t *old = s->origin;
        size_t oldcap = s->origin_cap;
        s->origin = sim_xrealloc(NULL, cap * sizeof *s->origin);
        memset(s->origin, 0, cap * sizeof *s->origin);
        s->origin_cap = cap;
        for (size_t k = 0; k < oldcap; k++) {
            if (!old[k].used)
                continue;
            size_t h = sim_mix64(old[k].dhash) & (cap - 1);
            while (s->origin[h].used)
                h = (h + 1) & (cap - 1);
            s->origin[h] = old[k];
        }
        free(old);
    }
    size_t h = sim_mix64(dhash) & (s->origin_cap - 1);
    while (s->origin[h].used) {
        if (s->origin[h].dhash == dhash) {
            if (s->origin[h].gen != s->n[slot].gen)
                sim_fail(s, "generation-leak",
                         "n%d (generation %d) holds index %" PRIu64 " term %" PRIu64
                         ", a client write of generation %d",
                         slot + 1, s->n[slot].gen, e->index, e->term, s->origin[h].gen);
            return;
        }
        h = (h + 1) & (s->origin_cap - 1);
    }
    s->origin[h] = (sim_origin_t){dhash, s->n[slot].gen, true};
    s->origin_n++;
}

static sim_slotrec_t *rec_at(sim_epoch_t *ep, raft_index_t i)
{
    if (i >= ep->cap) {
        size_t cap = ep->cap ? ep->cap : 256;
        while (cap <= i)
            cap *= 2;
        ep->rec = sim_xrealloc(ep->rec, cap * sizeof *ep->rec);
        memset(ep->rec + ep->cap, 0, (cap - ep->cap) * sizeof *ep->rec);
        ep->cap = cap;
    }
    return &ep->rec[i];
}

uint64_t check_entry_hash(const raft_entry_t *e)
{
    uint64_t h = sim_fnv(SIM_FNV_INIT, &e->type, 1);
    return e->len ? sim_fnv(h, e->data, e->len) : h;
}

uint64_t check_chain(uint64_t chain, const raft_entry_t *e, uint64_t dhash)
{
    return sim_mix64(chain ^ sim_mix64(e->index * 0x9e3779b97f4a7c15ull ^
                                       e->term * 0xc2b2ae3d27d4eb4full ^ dhash));
}

/* ---- memory accounting (when may committed entries legitimately be lost?) ----------------- */

/* A voter "holds memory" when its process runs, never lost its log since it was last caught up
 * (not recovering) and did not lose its hard state. True when, for the configuration of every
 * live server, such voters (excluding `victim`) are a majority. */
bool check_memory_majority_of(const sim_t *s, const raft_members_t *m, int victim)
{
    int voters = 0, holders = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].role != RAFT_VOTER)
            continue;
        voters++;
        raft_id_t id = m->m[i].id;
        int sl = (id >= 1 && id <= SIM_MAX_SLOTS) ? (int)id - 1 : -1;
        if (sl < 0 || sl == victim)
            continue;
        const sim_node_t *v = &s->n[sl];
        if (v->exists && v->up && !v->st.recovering && !v->amnesiac && v->st.can_vote)
            holders++;
    }
    return 2 * holders > voters;
}

/* ... for the live servers of generation `gen` (-1: all). */
static bool memory_majority_in(const sim_t *s, int gen, int victim)
{
    bool any = false;
    for (int k = 0; k < s->n_slots; k++) {
        const sim_node_t *cfgn = &s->n[k];
        if (!cfgn->exists || !cfgn->up || cfgn->st.members.n == 0 || (gen >= 0 && cfgn->gen != gen))
            continue;
        any = true;
        if (!check_memory_majority_of(s, &cfgn->st.members, victim))
            return false;
    }
    return any;
}

bool check_memory_majority(sim_t *s, int victim)
{
    return memory_majority_in(s, -1, victim);
}

void check_note_memory(sim_t *s)
{
    for (int g = 0; g < s->n_gen; g++) {
        sim_gen_t *gn = &s->gen[g];
        sim_epoch_t *ep = &gn->ep[gn->n_ep - 1];
        if (ep->mem_loss || memory_majority_in(s, g, -1))
            continue;
        ep->mem_loss = true;
        if (g == 0)
            sim_trace(s, "t=%" PRIu64 " CHECK a majority lost its memory (epoch %u)", s->now,
                      gn->n_ep - 1);
        else
            sim_trace(s, "t=%" PRIu64 " CHECK a majority lost its memory (generation %d epoch %u)",
                      s->now, g, gn->n_ep - 1);
    }
}

/* ---- segments and epochs -------------------------------------------------------------------- */

void check_segment_start(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    nd->epoch = nd->gen >= 0 ? gen_of(s, nd)->n_ep - 1 : 0;
    nd->resets = 0;
    nd->last_commit = 0;
    nd->leader_checked_term = 0;
    nd->shadow_last = 0;
}

void check_reset(sim_t *s, int slot, raft_term_t term)
{
    sim_node_t *nd = &s->n[slot];
    bind_by_leader(s, slot);
    sim_gen_t *g = gen_of(s, nd);
    sim_epoch_t *cur = &g->ep[g->n_ep - 1];
    if (term > cur->start_term) {
        check_note_memory(s); /* a removal may have left too few holders, too */
        if (!cur->mem_loss) {
            sim_fail(s, "spurious-reset",
                     "n%d discarded its state (escape term %" PRIu64
                     ") but no majority of any configuration lost its memory in epoch %u",
                     slot + 1, term, g->n_ep - 1);
            return;
        }
        epoch_new(g, term);
        sim_trace(s, "t=%" PRIu64 " CHECK epoch %u starts (reset term %" PRIu64 ")", s->now,
                  g->n_ep - 1, term);
    }
    nd->epoch = g->n_ep - 1;
    nd->last_commit = 0;
    nd->leader_checked_term = 0;
    nd->shadow_last = 0;
}

/* A life that started empty in an older epoch and has committed and applied nothing yet joins
 * the newest epoch when it receives that epoch's entries (terms >= the escape term): a server
 * restarted before the escape need not be reset to follow the new log. */
static void maybe_rebind(sim_t *s, int slot, raft_term_t term)
{
    sim_node_t *nd = &s->n[slot];
    sim_gen_t *g = gen_of(s, nd);
    uint32_t latest = g->n_ep - 1;
    if (nd->epoch == latest || nd->sm_index != 0 || nd->last_commit != 0 ||
        term < g->ep[latest].start_term)
        return;
    sim_trace(s, "t=%" PRIu64 " CHECK n%d (empty) joins epoch %u", s->now, slot + 1, latest);
    nd->epoch = latest;
}

/* ---- state machine safety ------------------------------------------------------------------- */

void check_apply(sim_t *s, int slot, const raft_entry_t *e)
{
    sim_node_t *nd = &s->n[slot];
    uint64_t dh = check_entry_hash(e);
    gen_entry(s, slot, e, dh);
    gen_origin(s, slot, e, dh);
    if (s->done)
        return;
    maybe_rebind(s, slot, e->term);
    sim_epoch_t *ep = &gen_of(s, nd)->ep[nd->epoch];
    if (e->index != nd->sm_index + 1) {
        sim_fail(s, "apply-order", "n%d applies index %" PRIu64 " after %" PRIu64, slot + 1,
                 e->index, nd->sm_index);
        return;
    }
    uint64_t chain = check_chain(nd->sm_chain, e, dh);
    sim_slotrec_t *r = rec_at(ep, e->index);
    if (r->committed && r->term != e->term) {
        sim_fail(s, "state-machine-safety",
                 "n%d applies index %" PRIu64 " term %" PRIu64 " but term %" PRIu64
                 " was committed there (epoch %u)",
                 slot + 1, e->index, e->term, r->term, nd->epoch);
        return;
    }
    if (r->applied) {
        if (r->term != e->term || r->dhash != dh || r->chain != chain) {
            sim_fail(s, "state-machine-safety",
                     "n%d applies index %" PRIu64 " term %" PRIu64
                     " but another node applied term %" PRIu64 " %s there (epoch %u)",
                     slot + 1, e->index, e->term, r->term,
                     r->term == e->term && r->dhash == dh ? "with a different history"
                                                          : "with other data",
                     nd->epoch);
            return;
        }
    } else {
        r->applied = 1;
        r->term = e->term;
        r->dhash = dh;
        r->chain = chain;
    }
    nd->sm_index = e->index;
    nd->sm_chain = chain;
}

void check_snapshot_install(sim_t *s, int slot, const sim_snap_t *sn)
{
    sim_node_t *nd = &s->n[slot];
    if (nd->gen < 0 && sn->gen >= 0)
        bind_gen(s, slot, sn->gen, "a snapshot");
    if (nd->gen != sn->gen) {
        sim_fail(s, "generation-leak",
                 "n%d (generation %d) installs a snapshot of generation %d at index %" PRIu64,
                 slot + 1, nd->gen, sn->gen, sn->index);
        return;
    }
    if (nd->sm_index == 0 && nd->last_commit == 0 && sn->epoch > nd->epoch)
        nd->epoch = sn->epoch; /* an empty life joins the snapshot's (newer) epoch */
    sim_epoch_t *ep = &gen_of(s, nd)->ep[nd->epoch];
    sim_slotrec_t *r = rec_at(ep, sn->index);
    if (sn->epoch != nd->epoch)
        sim_trace(s, "t=%" PRIu64 " CHECK n%d installs a snapshot of epoch %u in epoch %u", s->now,
                  slot + 1, sn->epoch, nd->epoch);
    if (r->applied && (r->chain != sn->chain || r->term != sn->term)) {
        sim_fail(s, "state-machine-safety",
                 "n%d installs a snapshot at index %" PRIu64 " term %" PRIu64
                 " whose state differs from what was applied there (term %" PRIu64 ")",
                 slot + 1, sn->index, sn->term, r->term);
        return;
    }
    if (sn->index < nd->sm_index)
        sim_fail(s, "state-machine-safety",
                 "n%d installs a snapshot at %" PRIu64 " older than its applied %" PRIu64, slot + 1,
                 sn->index, nd->sm_index);
}

/* ---- client history ------------------------------------------------------------------------- */

void check_ack(sim_t *s, sim_client_t *c)
{
    sim_epoch_t *ep = check_node_epoch(s, c->slot);
    if (!ep) {
        sim_fail(s, "internal", "n%d acknowledged a write before its generation is known",
                 c->slot + 1);
        return;
    }
    if (c->index > ep->max_acked)
        ep->max_acked = c->index;
    ep->acked++;
    s->res.acked++;
}

/* --incarnations, rule 2 (raft/README.md): only a server whose log holds every committed entry
 * grants a normal vote; one that started empty (a new incarnation joining, a restart) votes
 * only once a leader caught it up. Escape votes are the exception (any voter grants them). */
void check_message(sim_t *s, int slot, const raft_message_t *m)
{
    const sim_node_t *nd = &s->n[slot];
    if (!s->hosts_mode || m->type != RAFT_MSG_VOTE_RESP || !m->vote_resp.granted || nd->sound ||
        nd->escape_term == m->term)
        return;
    const sim_epoch_t *ep = check_node_epoch(s, slot);
    sim_fail(s, "unsound-vote",
             "n%d grants n%" PRIu64 " its vote in term %" PRIu64 " with a log (last %" PRIu64
             ") that never held every committed entry (%" PRIu64 "): it started empty and no "
             "leader caught it up",
             slot + 1, m->to, m->term, nd->st.last_index, ep ? ep->max_committed : 0);
}

static void note_sound(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    const sim_epoch_t *ep = check_node_epoch(s, slot);
    if (!nd->sound && ep && nd->st.last_index >= ep->max_committed && nd->st.last_index > 0)
        nd->sound = true;
}

/* Membership changes one server at a time: the configuration entry at `k` differs from the one
 * in effect before it in the same log by at most one server (added, removed or its role
 * changed). Two consecutive configurations then have intersecting majorities; a one-entry swap
 * of two voters ({A, B, C1} -> {A, B, C2}) does not. */
static void check_config_step(sim_t *s, int slot, const raft_entry_t *e)
{
    sim_node_t *nd = &s->n[slot];
    raft_members_t now, before;
    if (raft_members_decode(e->data, e->len, &now) != 0) {
        sim_fail(s, "core-error", "n%d: undecodable configuration at %" PRIu64, slot + 1, e->index);
        return;
    }
    bool found = false;
    for (raft_index_t i = e->index - 1; i >= nd->st.first_index && i > 0 && !found; i--) {
        raft_entry_t p;
        if (raft_debug_entry(nd->r, i, &p) != 0)
            break;
        if (p.type == RAFT_ENTRY_CONFIG) {
            if (p.term > e->term || raft_members_decode(p.data, p.len, &before) != 0)
                return;
            found = true;
        }
    }
    if (!found && (e->index <= 1 || e->index - 1 != nd->st.snapshot_index ||
                   raft_snapshot_meta(nd->r, e->index - 1, NULL, &before) != 0))
        return; /* the first configuration of this log */
    uint32_t changed = 0;
    for (uint32_t i = 0; i < now.n; i++) {
        int role = 0;
        changed += !is_member(&before, now.m[i].id, &role) || role != now.m[i].role;
    }
    for (uint32_t i = 0; i < before.n; i++)
        changed += !is_member(&now, before.m[i].id, NULL);
    if (changed > 1)
        sim_fail(s, "single-server-change",
                 "n%d holds a configuration entry at index %" PRIu64 " term %" PRIu64
                 " that changes %u servers at once (%u -> %u members)",
                 slot + 1, e->index, e->term, changed, before.n, now.n);
}

void check_read(sim_t *s, int slot, sim_client_t *c, const raft_read_t *rd)
{
    sim_node_t *nd = &s->n[slot];
    s->res.reads_checked++;
    if (nd->gen == c->need_gen && nd->epoch == c->need_epoch && rd->index < c->need_index) {
        sim_fail(s, "linearizable-read",
                 "read uid=%" PRIu64 " invoked t=%" PRIu64 " answered by n%d with index %" PRIu64
                 ", but a write acknowledged before it was invoked sits at index %" PRIu64,
                 c->uid, c->invoked, slot + 1, rd->index, c->need_index);
        return;
    }
    if (nd->sm_index < rd->index)
        sim_fail(s, "linearizable-read",
                 "n%d answers read uid=%" PRIu64 " at index %" PRIu64 " but applied only %" PRIu64,
                 slot + 1, c->uid, rd->index, nd->sm_index);
}

/* ---- per-event invariants ------------------------------------------------------------------- */

static bool entry_term(const sim_node_t *nd, raft_index_t i, raft_term_t *t)
{
    if (i == 0) {
        *t = 0;
        return true;
    }
    if (i == nd->st.snapshot_index) {
        *t = nd->st.snapshot_term;
        return true;
    }
    raft_entry_t e;
    if (raft_debug_entry(nd->r, i, &e) != 0)
        return false;
    *t = e.term;
    return true;
}

/* Leader completeness for one committed index against one leader. */
static void check_leader_has(sim_t *s, int l, raft_index_t i, const sim_slotrec_t *r)
{
    const sim_node_t *ld = &s->n[l];
    if (i < ld->st.snapshot_index)
        return; /* compacted: covered by the snapshot digest checks */
    raft_term_t t;
    if (i > ld->st.last_index || !entry_term(ld, i, &t) || t != r->term) {
        bool has = i <= ld->st.last_index && entry_term(ld, i, &t);
        char buf[48] = "nothing";
        if (has)
            snprintf(buf, sizeof buf, "term %" PRIu64, t);
        sim_fail(s, "leader-completeness",
                 "n%d leads term %" PRIu64 " but has %s at index %" PRIu64 " where term %" PRIu64
                 " was committed in term %" PRIu64 " (epoch %u, last=%" PRIu64 ")",
                 l + 1, ld->st.term, buf, i, r->term, r->t_obs, ld->epoch, ld->st.last_index);
    }
}

static void record_commit(sim_t *s, int slot, raft_index_t i, raft_term_t t)
{
    sim_node_t *nd = &s->n[slot];
    sim_epoch_t *ep = &gen_of(s, nd)->ep[nd->epoch];
    sim_slotrec_t *r = rec_at(ep, i);
    if (r->committed || r->applied) {
        if (r->term != t) {
            sim_fail(s, "state-machine-safety",
                     "n%d commits index %" PRIu64 " term %" PRIu64 " but term %" PRIu64
                     " was committed/applied there (epoch %u)",
                     slot + 1, i, t, r->term, nd->epoch);
            return;
        }
        if (r->committed)
            return;
    }
    r->committed = 1;
    r->term = t;
    r->t_obs = nd->st.term;
    if (i > ep->max_committed)
        ep->max_committed = i;
    /* every current leader of a later term must have it */
    for (int l = 0; l < s->n_slots && !s->done; l++) {
        const sim_node_t *ld = &s->n[l];
        if (ld->exists && ld->up && ld->st.role == RAFT_LEADER && ld->gen == nd->gen &&
            ld->epoch == nd->epoch && ld->st.term > r->t_obs && l != slot)
            check_leader_has(s, l, i, r);
    }
}

static bool lm_check(sim_t *s, int slot, uint64_t epoch, raft_index_t i, raft_term_t t,
                     uint64_t content, bool prev_known, raft_term_t prev)
{
    if (s->lm_n * 2 >= s->lm_cap) {
        size_t cap = s->lm_cap ? s->lm_cap * 2 : 4096;
        sim_lmkey_t *old = s->lm;
        size_t oldcap = s->lm_cap;
        s->lm = calloc(cap, sizeof *s->lm);
        if (!s->lm)
            exit(2);
        s->lm_cap = cap;
        for (size_t k = 0; k < oldcap; k++) {
            if (!old[k].used)
                continue;
            size_t h =
                sim_mix64(old[k].epoch ^ old[k].index * 31 ^ old[k].term * 1000003) & (cap - 1);
            while (s->lm[h].used)
                h = (h + 1) & (cap - 1);
            s->lm[h] = old[k];
        }
        free(old);
    }
    uint64_t pt = prev_known ? prev + 1 : 0; /* 0: unknown */
    size_t h = sim_mix64(epoch ^ i * 31 ^ t * 1000003) & (s->lm_cap - 1);
    while (s->lm[h].used) {
        sim_lmkey_t *k = &s->lm[h];
        if (k->epoch == epoch && k->index == i && k->term == t) {
            if (k->content != content) {
                sim_fail(s, "log-matching",
                         "n%d has index %" PRIu64 " term %" PRIu64
                         " with different content than another log (epoch %" PRIu64 ")",
                         slot + 1, i, t, epoch);
                return false;
            }
            if (pt && k->prev_term && pt != k->prev_term) {
                sim_fail(s, "log-matching",
                         "n%d has index %" PRIu64 " term %" PRIu64 " after term %" PRIu64
                         " at index %" PRIu64 " but another log has it after term %" PRIu64,
                         slot + 1, i, t, pt - 1, i - 1, k->prev_term - 1);
                return false;
            }
            if (!k->prev_term)
                k->prev_term = pt;
            return true;
        }
        h = (h + 1) & (s->lm_cap - 1);
    }
    s->lm[h] = (sim_lmkey_t){epoch, i, t, content, pt, true};
    s->lm_n++;
    return true;
}

/* An unknown life that holds entries belongs to the generation of its first one. */
static void bind_from_log(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    if (nd->gen >= 0 || nd->st.last_index == 0)
        return;
    raft_entry_t e;
    if (nd->st.first_index == 1 && raft_debug_entry(nd->r, 1, &e) == 0)
        gen_entry(s, slot, &e, check_entry_hash(&e));
    else
        bind_by_leader(s, slot);
}

/* Log matching: entries that appeared or changed in this server's log since the last look
 * (found by walking back from its last index to the first index whose term is unchanged). */
static void check_log(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    const raft_status_t *st = &nd->st;
    raft_index_t first = st->first_index, last = st->last_index;
    if (last + 1 > nd->shadow_cap) {
        size_t cap = nd->shadow_cap ? nd->shadow_cap : 256;
        while (cap < last + 1)
            cap *= 2;
        nd->shadow = sim_xrealloc(nd->shadow, cap * sizeof *nd->shadow);
        nd->shadow_cap = cap;
    }
    raft_index_t i = last < nd->shadow_last ? last : nd->shadow_last;
    if (i < first && first > 0)
        i = first - 1;
    while (i >= first && i > 0) {
        raft_entry_t e;
        if (raft_debug_entry(nd->r, i, &e) != 0 || e.term == nd->shadow[i])
            break;
        i--;
    }
    raft_index_t from = i + 1 > first ? i + 1 : first;
    if (from == 0)
        from = 1;
    raft_term_t prev = 0;
    bool prev_known = entry_term(nd, from - 1, &prev);
    for (raft_index_t k = from; k <= last && !s->done; k++) {
        raft_entry_t e;
        int rv = raft_debug_entry(nd->r, k, &e);
        if (rv != 0) {
            sim_fail(s, "core-error",
                     "raft_debug_entry(n%d, %" PRIu64 ") inside [%" PRIu64 ", %" PRIu64 "]: %s",
                     slot + 1, k, first, last, raft_strerror(rv));
            return;
        }
        if (e.index != k) {
            sim_fail(s, "core-error", "raft_debug_entry(n%d, %" PRIu64 ") says index %" PRIu64,
                     slot + 1, k, e.index);
            return;
        }
        maybe_rebind(s, slot, e.term);
        if (prev_known && e.term < prev) {
            sim_fail(s, "log-matching",
                     "n%d log terms decrease: index %" PRIu64 " term %" PRIu64
                     " after term %" PRIu64,
                     slot + 1, k, e.term, prev);
            return;
        }
        uint64_t dh = check_entry_hash(&e);
        if (k == 1)
            gen_entry(s, slot, &e, dh);
        if (s->hosts_mode && e.type == RAFT_ENTRY_CONFIG)
            check_config_step(s, slot, &e);
        gen_origin(s, slot, &e, dh);
        if (s->done)
            return;
        /* log matching per (generation, epoch): generation 0 keys are the epoch alone */
        lm_check(s, slot, ((uint64_t)nd->gen << 32) | nd->epoch, k, e.term, dh, prev_known, prev);
        nd->shadow[k] = e.term;
        prev = e.term;
        prev_known = true;
    }
    nd->shadow_last = last;
}

void check_after_event(sim_t *s, int slot)
{
    sim_node_t *nd = &s->n[slot];
    if (!nd->up || s->done)
        return;
    raft_status(nd->r, &nd->st);
    const raft_status_t *st = &nd->st;
    bind_from_log(s, slot);
    if (s->done)
        return;

    if (st->resets != nd->resets) {
        /* the core counted a reset that update.reset did not announce (or vice versa) */
        if (st->resets < nd->resets)
            sim_fail(s, "core-error", "n%d resets went backwards", slot + 1);
        nd->resets = st->resets;
    }

    /* election safety: at most one leader per term in one cluster lifetime */
    if (st->role == RAFT_LEADER) {
        bind_by_leader(s, slot);
        sim_gen_t *g = gen_of(s, nd);
        if (st->term >= g->term_leader_cap) {
            size_t cap = g->term_leader_cap ? g->term_leader_cap : 1024;
            while (cap <= st->term)
                cap *= 2;
            if (cap > ((size_t)1 << 26)) {
                sim_fail(s, "internal", "term %" PRIu64 " too large to track", st->term);
                return;
            }
            g->term_leader = sim_xrealloc(g->term_leader, cap * sizeof *g->term_leader);
            memset(g->term_leader + g->term_leader_cap, 0,
                   (cap - g->term_leader_cap) * sizeof *g->term_leader);
            g->term_leader_cap = cap;
        }
        raft_id_t *who = &g->term_leader[st->term];
        if (*who == 0) {
            *who = nd->id;
        } else if (*who != nd->id) {
            sim_fail(s, "election-safety", "term %" PRIu64 " has two leaders: n%" PRIu64 " and n%d",
                     st->term, *who, slot + 1);
            return;
        }
    }

    /* commit never decreases within one life */
    if (st->commit < nd->last_commit) {
        sim_fail(s, "commit-monotonic",
                 "n%d commit went from %" PRIu64 " back to %" PRIu64 " (life %" PRIu64 ")",
                 slot + 1, nd->last_commit, st->commit, nd->life);
        return;
    }
    if (st->commit > st->last_index && st->commit > st->snapshot_index) {
        sim_fail(s, "core-error", "n%d commit %" PRIu64 " beyond its last index %" PRIu64, slot + 1,
                 st->commit, st->last_index);
        return;
    }

    /* log matching on what changed */
    check_log(s, slot);
    if (s->done)
        return;

    /* record commits (and leader completeness for current leaders) */
    for (raft_index_t i = nd->last_commit + 1; i <= st->commit && !s->done; i++) {
        raft_term_t t;
        if (i < st->snapshot_index || !entry_term(nd, i, &t))
            continue; /* compacted or installed by snapshot */
        record_commit(s, slot, i, t);
    }
    nd->last_commit = st->commit;
    if (s->done)
        return;
    note_sound(s, slot);

    /* leader completeness when a leader takes office: every entry committed in an earlier term */
    if (st->role == RAFT_LEADER && nd->leader_checked_term != st->term) {
        nd->leader_checked_term = st->term;
        sim_epoch_t *ep = &gen_of(s, nd)->ep[nd->epoch];
        raft_index_t from = st->snapshot_index > 0 ? st->snapshot_index : 1;
        for (raft_index_t i = from; i <= ep->max_committed && !s->done; i++) {
            sim_slotrec_t *r = rec_at(ep, i);
            if (r->committed && r->t_obs < st->term)
                check_leader_has(s, slot, i, r);
        }
    }

    /* stability scenario: does the majority's term move? */
    if (s->flaky >= 0 && slot != s->flaky && st->term > s->maj_term) {
        sim_trace(s, "t=%" PRIu64 " STABILITY majority term %" PRIu64 " -> %" PRIu64 " (n%d)",
                  s->now, s->maj_term, st->term, slot + 1);
        s->maj_term = st->term;
        s->res.majority_term_changes++;
    }
}
