/* queue.c: raft-sim's event queue, a binary min-heap ordered by (virtual time, sequence number)
 * so that events at the same time keep the order in which they were scheduled. */
#include "sim_int.h"

#include <stdio.h>
#include <stdlib.h>

static bool ev_before(const sim_event_t *a, const sim_event_t *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

void *sim_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "raft-sim: out of memory\n");
        exit(2);
    }
    return q;
}

void sim_push(sim_t *s, sim_event_t ev)
{
    if (s->qn == s->qcap) {
        s->qcap = s->qcap ? s->qcap * 2 : 1024;
        s->q = sim_xrealloc(s->q, s->qcap * sizeof *s->q);
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

sim_event_t sim_pop(sim_t *s)
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

void sim_schedule(sim_t *s, uint64_t at, uint8_t type, int slot, uint32_t a, uint64_t gen)
{
    sim_event_t ev = {.time = at, .type = type, .slot = (uint8_t)slot, .a = a, .gen = gen};
    sim_push(s, ev);
}
