/* net.c: raft-sim's network: every message is deep-copied into its own event, lost (globally
 * or on a flaky node's links), duplicated, delayed between min and max with an occasional long
 * tail (hence reordered), and checked against the partition matrix when it is delivered. */
#include "sim_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static sim_msg_t *msg_copy(const raft_message_t *m)
{
    size_t ne = m->type == RAFT_MSG_APPEND ? m->append.n_entries : 0;
    size_t bytes = sizeof(sim_msg_t) + ne * sizeof(raft_entry_t);
    for (size_t i = 0; i < ne; i++)
        bytes += m->append.entries[i].len;
    sim_msg_t *c = sim_xrealloc(NULL, bytes);
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

uint64_t net_delay(sim_t *s)
{
    if (sim_rng_ppm(&s->rng, s->tail_ppm))
        return sim_rng_between(&s->rng, s->delay_max, s->tail_max);
    return sim_rng_between(&s->rng, s->delay_min, s->delay_max);
}

void net_send(sim_t *s, int from, const raft_message_t *m)
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
        ((sim_msg_t *)ev.ptr)->lifetime = s->n[from].lifetime;
        sim_push(s, ev);
    }
}

static void net_trace_msg(sim_t *s, const sim_msg_t *c, const char *what)
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
void net_on_deliver(sim_t *s, sim_event_t *ev)
{
    sim_msg_t *c = ev->ptr;
    sim_node_t *to = &s->n[ev->slot];
    const char *why = NULL;
    if (!to->exists || !to->up || to->life != ev->gen2)
        why = "receiver down/restarted";
    else if (!to->r)
        why = "receiver runs no raft yet";
    else if (s->n[ev->from].life != ev->gen || !s->n[ev->from].up)
        why = "sender crashed";
    else if (s->cut[ev->from][ev->slot])
        why = "partitioned";
    if (!why && to->paused) {
        node_requeue_paused(s, ev);
        return;
    }
    if (!why && c->lifetime != 0 && to->lifetime != 0 && c->lifetime != to->lifetime) {
        /* hacached drops raft messages of another cluster lifetime; who answers for the
         * sender's host is evidence all the same */
        why = "another cluster lifetime";
        if (s->hosts_mode && to->host >= 0 && s->n[ev->from].host >= 0)
            sim_heard(to, s->n[ev->from].host, s->n[ev->from].id, c->lifetime);
    }
    if (why) {
        sim_trace(s, "t=%" PRIu64 " n%d->n%d %s dropped (%s)", s->now, ev->from + 1, ev->slot + 1,
                  raft_msg_type_name(c->m.type), why);
        free(c);
        return;
    }
    net_trace_msg(s, c, "");
    if (s->hosts_mode && to->host >= 0 && s->n[ev->from].host >= 0) {
        sim_heard(to, s->n[ev->from].host, s->n[ev->from].id, c->lifetime); /* evidence */
        to->last_frame[s->n[ev->from].host] = s->now;
        if (c->m.type == RAFT_MSG_VOTE && (c->m.flags & RAFT_MSGF_ESCAPE))
            to->escape_term = c->m.term; /* a recovering voter may grant that one */
    }
    int rv = raft_step(to->r, s->now, &c->m);
    free(c);
    if (rv != 0 && rv != RAFT_ENOMEM)
        sim_fail(s, "core-error", "raft_step(n%d): %s", ev->slot + 1, raft_strerror(rv));
    node_after(s, ev->slot);
}

/* Every link works again (the weather stays as it is). */
void net_heal_partitions(sim_t *s)
{
    memset(s->cut, 0, sizeof s->cut);
}
