/* sim_int.h: raft-sim's private interface between the files of the simulated world (queue,
 * network, servers, clients, hosts, faults, the run loop). main.c and check.c see only sim.h. */
#ifndef HC_SIM_INT_H
#define HC_SIM_INT_H

#include "sim.h"

/* ---- queue.c: the event queue, a binary heap ordered by (time, seq) ----------------------- */
void *sim_xrealloc(void *p, size_t n); /* exits on out of memory */
void sim_push(sim_t *s, sim_event_t ev);
sim_event_t sim_pop(sim_t *s);
void sim_schedule(sim_t *s, uint64_t at, uint8_t type, int slot, uint32_t a, uint64_t gen);

/* ---- small helpers ------------------------------------------------------------------------ */
static inline uint64_t T(const sim_t *s)
{
    return s->rcfg.election_timeout_ms;
}

static inline int slot_of(raft_id_t id)
{
    return (id >= 1 && id <= SIM_MAX_SLOTS) ? (int)id - 1 : -1;
}

/* The server in `slot` runs raft and is not paused. */
static inline bool usable(const sim_t *s, int slot)
{
    return slot >= 0 && slot < SIM_MAX_SLOTS && s->n[slot].exists && s->n[slot].up &&
           !s->n[slot].paused && s->n[slot].r;
}

static inline bool is_member(const raft_members_t *m, raft_id_t id, int *role)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (m->m[i].id == id) {
            if (role)
                *role = m->m[i].role;
            return true;
        }
    return false;
}

static inline bool members_equal(const raft_members_t *a, const raft_members_t *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->m[i].id != b->m[i].id || a->m[i].role != b->m[i].role)
            return false;
    return true;
}

/* ---- net.c: messages in flight, loss, duplication, delay, partitions ---------------------- */
uint64_t net_delay(sim_t *s);
void net_send(sim_t *s, int from, const raft_message_t *m);
void net_on_deliver(sim_t *s, sim_event_t *ev);
void net_heal_partitions(sim_t *s);

/* ---- node.c: servers hosting a raft_t, their state machine, disk and snapshots ------------ */
int sim_find_leader(const sim_t *s); /* the live leader with the highest term, or -1 */
void sim_host_members(const sim_t *s, raft_members_t *out);
void node_start(sim_t *s, int slot, raft_start_mode_t mode, const raft_members_t *members);
void node_crash(sim_t *s, int slot, const char *why);
void node_after(sim_t *s, int slot);
void node_resume(sim_t *s, int slot);
void node_requeue_paused(sim_t *s, sim_event_t *ev);
void node_on_snap_arrive(sim_t *s, sim_event_t *ev);
void node_on_snap_done(sim_t *s, sim_event_t *ev);

/* ---- client.c: the clients' writes and linearizable reads --------------------------------- */
void client_next(sim_t *s, int ci, uint64_t after);
void client_act(sim_t *s, int ci);
void client_on_apply(sim_t *s, int slot, const raft_entry_t *e);
void client_on_read(sim_t *s, int slot, const raft_read_t *rd);

/* ---- hosts.c: --incarnations, hosts with one process each, discovery, the node's policy --- */
void hosts_policy_step(sim_t *s); /* every leader: one replacement step */
void hosts_tick(sim_t *s);        /* evidence, start-overs, discovery decisions (every T/4) */
void hosts_on_offer(sim_t *s, sim_event_t *ev);
/* Evidence that incarnation `id` (in cluster `lifetime`, 0 none yet) answers for host h, as
 * hacached's cl_heard_id takes it: an
 * incarnation older than the one heard before (a smaller id: new incarnations take new, larger
 * slots) is never evidence. */
static inline void sim_heard(sim_node_t *nd, int h, raft_id_t id, uint64_t lifetime)
{
    if (id > nd->heard[h]) {
        nd->heard[h] = id;
        nd->heard_lifetime[h] = 0;
    }
    if (id == nd->heard[h] && lifetime != 0)
        nd->heard_lifetime[h] = lifetime; /* the lifetime it runs raft in, once it does */
}
/* Crashed process `v` comes back: without state when it has none (or, `may_lose_state`, half of
 * the time), as a new incarnation that discovers; else RAFT_START_RESTART. */
void hosts_restart(sim_t *s, int v, bool may_lose_state);
bool hosts_fault(sim_t *s); /* this mode's own faults; true when one was injected */
bool hosts_converged(const sim_t *s, int leader);
bool hosts_refound_pending(const sim_t *s);

/* ---- faults.c: the fault injector --------------------------------------------------------- */
void fault_act(sim_t *s);
void fault_reap_removed(sim_t *s);

#endif
