/* test_raft_net.h: a tiny in-test cluster for the raft core's unit tests (not the simulator):
 * a few raft_t, a FIFO of deep-copied messages delivered by hand or until quiet, cut links,
 * crash/restart with empty memory, and a readable trace (every delivery and every decision of
 * the core) printed when a test fails or when RAFT_TRACE=1. Header-only, used by
 * tests/unit/test_raft*.c. */
#ifndef HC_TEST_RAFT_NET_H
#define HC_TEST_RAFT_NET_H

#include <stdarg.h>

#include "raft.h"
#include "test.h"

#define NET_MAX 7
#define NET_T   100 /* election timeout of every test node (ms) */

typedef struct {
    raft_entry_t e; /* data owned by the test */
} applied_t;

typedef struct {
    int n;
    uint64_t now;
    raft_t *r[NET_MAX];
    raft_hard_state_t hs[NET_MAX]; /* what each node persisted */
    /* raft_start_t.members_index / members_epoch for the next start of each node */
    raft_index_t members_at[NET_MAX];
    raft_term_t members_epoch[NET_MAX];
    uint64_t inc[NET_MAX];
    bool down[NET_MAX];
    bool cut[NET_MAX][NET_MAX]; /* cut[a][b]: messages a -> b are dropped */
    raft_config_t cfg;
    /* queue */
    raft_message_t *q;
    size_t qhead, qn, qcap;
    /* what each node applied in this life */
    applied_t *applied[NET_MAX];
    size_t n_applied[NET_MAX];
    raft_read_t reads[NET_MAX][64];
    size_t n_reads[NET_MAX];
    raft_snapshot_req_t snaps[NET_MAX][16];
    size_t n_snaps[NET_MAX];
    int resets[NET_MAX];
    /* trace ring */
    char trace[512][160];
    size_t trace_n;
    uint64_t seed;
    uint64_t msgs_delivered;
} net_t;

static bool net_verbose_ = false;

static __attribute__((unused)) void net_log(net_t *net, const char *fmt, ...)
{
    char *line = net->trace[net->trace_n++ % 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, 160, fmt, ap);
    va_end(ap);
    if (net_verbose_)
        fprintf(stderr, "    %s\n", line);
}

static __attribute__((unused)) void net_trace_cb(void *ctx, raft_id_t self, uint64_t now,
                                                 const char *line)
{
    net_log(ctx, "%6llu  n%llu: %s", (unsigned long long)now, (unsigned long long)self, line);
}

static __attribute__((unused)) void net_dump(net_t *net)
{
    size_t start = net->trace_n > 512 ? net->trace_n - 512 : 0;
    fprintf(stderr, "  --- trace (last %zu lines) ---\n", net->trace_n - start);
    for (size_t i = start; i < net->trace_n; i++)
        fprintf(stderr, "    %s\n", net->trace[i % 512]);
}

static __attribute__((unused)) raft_members_t net_members(int voters, int learners)
{
    raft_members_t m = {0};
    for (int i = 0; i < voters + learners; i++)
        m.m[m.n++] = (raft_member_t){(raft_id_t)(i + 1), i < voters ? RAFT_VOTER : RAFT_LEARNER};
    return m;
}

static __attribute__((unused)) raft_config_t net_default_cfg(void)
{
    raft_config_t c = {0};
    c.election_timeout_ms = NET_T;
    c.heartbeat_ms = 10;
    return c;
}

static __attribute__((unused)) void net_start_node(net_t *net, int i, raft_start_mode_t mode,
                                                   const raft_members_t *m)
{
    raft_start_t s = {0};
    s.id = (raft_id_t)(i + 1);
    s.incarnation = net->inc[i] = (net->seed * 1000003u + (uint64_t)i * 7919u + net->inc[i] + 1);
    s.seed = net->seed + (uint64_t)i;
    s.mode = mode;
    s.hard_state = net->hs[i];
    s.members = *m;
    s.members_index = net->members_at[i];
    s.members_epoch = net->members_epoch[i];
    raft_config_t c = net->cfg;
    c.trace = net_trace_cb;
    c.trace_ctx = net;
    int rv = raft_new(&net->r[i], &c, &s, net->now);
    if (rv != 0) {
        fprintf(stderr, "raft_new: %s\n", raft_strerror(rv));
        abort();
    }
    net->down[i] = false;
}

/* n nodes: the first `voters` are voters, the rest learners; all bootstrap. */
static __attribute__((unused)) void net_init_cfg(net_t *net, int voters, int learners,
                                                 const raft_config_t *cfg)
{
    memset(net, 0, sizeof(*net));
    net_verbose_ = getenv("RAFT_TRACE") != NULL;
    net->n = voters + learners;
    net->now = 1000;
    net->seed = 42;
    net->cfg = cfg ? *cfg : net_default_cfg();
    raft_members_t m = net_members(voters, learners);
    for (int i = 0; i < net->n; i++)
        net_start_node(net, i, RAFT_START_BOOTSTRAP, &m);
}

static __attribute__((unused)) void net_init(net_t *net, int voters)
{
    net_init_cfg(net, voters, 0, NULL);
}

static __attribute__((unused)) void net_clear_applied(net_t *net, int i)
{
    for (size_t k = 0; k < net->n_applied[i]; k++)
        free((void *)net->applied[i][k].e.data);
    free(net->applied[i]);
    net->applied[i] = NULL;
    net->n_applied[i] = 0;
}

static __attribute__((unused)) void msg_free(raft_message_t *m)
{
    if (m->type == RAFT_MSG_APPEND) {
        for (size_t k = 0; k < m->append.n_entries; k++)
            free((void *)m->append.entries[k].data);
        free((void *)m->append.entries);
    }
}

static __attribute__((unused)) void net_free(net_t *net)
{
    if (hc_test_failures_ && !net_verbose_)
        net_dump(net);
    for (int i = 0; i < net->n; i++) {
        raft_free(net->r[i]);
        net_clear_applied(net, i);
    }
    for (size_t k = net->qhead; k < net->qn; k++)
        msg_free(&net->q[k]);
    free(net->q);
}

static __attribute__((unused)) void msg_describe(const raft_message_t *m, char *buf, size_t len)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
        snprintf(buf, len, "prev=%llu/%llu n=%zu commit=%llu seq=%llu flags=%x",
                 (unsigned long long)m->append.prev_index, (unsigned long long)m->append.prev_term,
                 m->append.n_entries, (unsigned long long)m->append.commit,
                 (unsigned long long)m->append.seq, m->flags);
        break;
    case RAFT_MSG_APPEND_RESP:
        snprintf(buf, len, "%s index=%llu hint=%llu/%llu last=%llu flags=%x",
                 m->append_resp.success ? "ok" : "reject", (unsigned long long)m->append_resp.index,
                 (unsigned long long)m->append_resp.hint_index,
                 (unsigned long long)m->append_resp.hint_term,
                 (unsigned long long)m->append_resp.last_index, m->flags);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        snprintf(buf, len, "last=%llu/%llu flags=%x", (unsigned long long)m->vote.last_index,
                 (unsigned long long)m->vote.last_term, m->flags);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        snprintf(buf, len, "%s flags=%x", m->vote_resp.granted ? "granted" : "rejected", m->flags);
        break;
    default:
        snprintf(buf, len, "flags=%x", m->flags);
    }
}

static __attribute__((unused)) void net_enqueue(net_t *net, const raft_message_t *m)
{
    if (net->qn == net->qcap) {
        if (net->qhead > 0) {
            memmove(net->q, net->q + net->qhead, (net->qn - net->qhead) * sizeof(*net->q));
            net->qn -= net->qhead;
            net->qhead = 0;
        }
        if (net->qn == net->qcap) {
            net->qcap = net->qcap ? net->qcap * 2 : 64;
            net->q = realloc(net->q, net->qcap * sizeof(*net->q));
        }
    }
    raft_message_t *c = &net->q[net->qn++];
    *c = *m;
    if (m->type == RAFT_MSG_APPEND) {
        raft_entry_t *e = NULL;
        if (m->append.n_entries) {
            e = calloc(m->append.n_entries, sizeof(*e));
            for (size_t k = 0; k < m->append.n_entries; k++) {
                e[k] = m->append.entries[k];
                if (e[k].len) {
                    void *d = malloc(e[k].len);
                    memcpy(d, e[k].data, e[k].len);
                    e[k].data = d;
                }
            }
        }
        c->append.entries = e;
    }
}

/* Collects node i's output: persists hard state, queues messages, records applied entries. */
static __attribute__((unused)) void net_ready(net_t *net, int i)
{
    if (net->down[i])
        return;
    raft_update_t u;
    int rv = raft_ready(net->r[i], &u);
    (void)rv;
    if (u.hard_state_changed)
        net->hs[i] = u.hard_state;
    if (u.reset) {
        net_clear_applied(net, i);
        net->resets[i]++;
    }
    for (size_t k = 0; k < u.n_entries; k++) {
        net->applied[i] = realloc(net->applied[i], (net->n_applied[i] + 1) * sizeof(applied_t));
        raft_entry_t e = u.entries[k];
        if (e.len) {
            void *d = malloc(e.len);
            memcpy(d, e.data, e.len);
            e.data = d;
        }
        net->applied[i][net->n_applied[i]++].e = e;
    }
    for (size_t k = 0; k < u.n_reads && net->n_reads[i] < 64; k++)
        net->reads[i][net->n_reads[i]++] = u.reads[k];
    for (size_t k = 0; k < u.n_snapshots && net->n_snaps[i] < 16; k++)
        net->snaps[i][net->n_snaps[i]++] = u.snapshots[k];
    for (size_t k = 0; k < u.n_messages; k++)
        net_enqueue(net, &u.messages[k]);
}

static __attribute__((unused)) void net_ready_all(net_t *net)
{
    for (int i = 0; i < net->n; i++)
        net_ready(net, i);
}

/* Delivers one queued message (or drops it on a cut link / down node); false when empty. */
static __attribute__((unused)) bool net_deliver_one(net_t *net)
{
    if (net->qhead == net->qn)
        return false;
    raft_message_t m = net->q[net->qhead++];
    int from = (int)m.from - 1, to = (int)m.to - 1;
    char d[128];
    msg_describe(&m, d, sizeof(d));
    bool drop = to < 0 || to >= net->n || net->down[to] || net->cut[from][to];
    net_log(net, "%6llu  n%d -> n%d %s t%llu %s%s", (unsigned long long)net->now, from + 1, to + 1,
            raft_msg_type_name(m.type), (unsigned long long)m.term, d, drop ? " DROPPED" : "");
    if (!drop) {
        raft_step(net->r[to], net->now, &m);
        net->msgs_delivered++;
        net_ready(net, to);
    }
    msg_free(&m);
    return true;
}

static __attribute__((unused)) void net_deliver_all(net_t *net)
{
    for (int k = 0; k < 100000 && net_deliver_one(net); k++)
        ;
}

/* Advances virtual time by `ms` in 1 ms steps, ticking everyone and delivering instantly. */
static __attribute__((unused)) void net_run(net_t *net, uint64_t ms)
{
    net_ready_all(net);
    net_deliver_all(net);
    for (uint64_t t = 0; t < ms; t++) {
        net->now++;
        for (int i = 0; i < net->n; i++) {
            if (net->down[i])
                continue;
            raft_tick(net->r[i], net->now);
            net_ready(net, i);
        }
        net_deliver_all(net);
    }
}

static __attribute__((unused)) int net_leader(net_t *net)
{
    int leader = -1;
    for (int i = 0; i < net->n; i++) {
        if (net->down[i])
            continue;
        raft_status_t s;
        raft_status(net->r[i], &s);
        if (s.role == RAFT_LEADER) {
            /* the one with the highest term */
            if (leader < 0) {
                leader = i;
            } else {
                raft_status_t o;
                raft_status(net->r[leader], &o);
                if (s.term > o.term)
                    leader = i;
            }
        }
    }
    return leader;
}

static __attribute__((unused)) raft_status_t net_status(net_t *net, int i)
{
    raft_status_t s;
    raft_status(net->r[i], &s);
    return s;
}

static __attribute__((unused)) void net_isolate(net_t *net, int i, bool cut)
{
    for (int j = 0; j < net->n; j++) {
        if (j == i)
            continue;
        net->cut[i][j] = net->cut[j][i] = cut;
    }
}

static __attribute__((unused)) void net_heal(net_t *net)
{
    memset(net->cut, 0, sizeof(net->cut));
}

/* Crash node i; it comes back with an empty log (and its persisted hard state for RESTART). */
static __attribute__((unused)) void net_restart(net_t *net, int i, raft_start_mode_t mode)
{
    raft_members_t m = *raft_members(net->r[i]);
    raft_free(net->r[i]);
    net->r[i] = NULL;
    net_clear_applied(net, i);
    if (mode == RAFT_START_AMNESIA)
        memset(&net->hs[i], 0, sizeof(net->hs[i]));
    net_start_node(net, i, mode, &m);
}

static __attribute__((unused)) int net_propose(net_t *net, int i, const char *s,
                                               raft_index_t *index)
{
    int rv = raft_propose(net->r[i], net->now, s, strlen(s), index, NULL);
    net_ready(net, i);
    return rv;
}

/* Has node i applied an entry with this data? */
static __attribute__((unused)) bool net_has_applied(net_t *net, int i, const char *s)
{
    for (size_t k = 0; k < net->n_applied[i]; k++) {
        const raft_entry_t *e = &net->applied[i][k].e;
        if (e->type == RAFT_ENTRY_NORMAL && e->len == strlen(s) && memcmp(e->data, s, e->len) == 0)
            return true;
    }
    return false;
}

/* Checks log matching and that applied sequences agree (state-machine safety) across nodes. */
static __attribute__((unused)) bool net_consistent(net_t *net)
{
    for (int a = 0; a < net->n; a++) {
        for (int b = a + 1; b < net->n; b++) {
            if (net->down[a] || net->down[b])
                continue;
            /* a node not yet reset by an escape leader still holds the previous log: the
             * first entry's term names the log's generation; compare only within one */
            if (net->n_applied[a] && net->n_applied[b] && net->applied[a][0].e.index == 1 &&
                net->applied[b][0].e.index == 1 &&
                net->applied[a][0].e.term != net->applied[b][0].e.term)
                continue;
            /* applied sequences: one is a prefix of the other, compared by (index, term) */
            size_t n =
                net->n_applied[a] < net->n_applied[b] ? net->n_applied[a] : net->n_applied[b];
            for (size_t k = 0; k < n; k++) {
                const raft_entry_t *x = &net->applied[a][k].e, *y = &net->applied[b][k].e;
                if (x->index != y->index || x->term != y->term || x->len != y->len) {
                    fprintf(stderr, "  applied mismatch n%d/n%d at %zu\n", a + 1, b + 1, k);
                    return false;
                }
            }
            /* log matching: same index and term => same prefix */
            raft_status_t sa = net_status(net, a), sb = net_status(net, b);
            raft_index_t lo = sa.first_index > sb.first_index ? sa.first_index : sb.first_index;
            raft_index_t hi = sa.last_index < sb.last_index ? sa.last_index : sb.last_index;
            bool matched = false;
            for (raft_index_t i = hi; i >= lo && i > 0; i--) {
                raft_entry_t x, y;
                raft_debug_entry(net->r[a], i, &x);
                raft_debug_entry(net->r[b], i, &y);
                if (matched && x.term != y.term) {
                    fprintf(stderr, "  log matching broken n%d/n%d at %llu\n", a + 1, b + 1,
                            (unsigned long long)i);
                    return false;
                }
                if (x.term == y.term)
                    matched = true;
            }
        }
    }
    return true;
}

/* Plays the host's part of snapshot transfers: the leader's state machine "captured" at its
 * applied index is installed on the follower, then the leader is told it was sent. */
static __attribute__((unused)) void net_do_snapshots(net_t *net)
{
    for (int i = 0; i < net->n; i++) {
        for (size_t k = 0; k < net->n_snaps[i]; k++) {
            raft_snapshot_req_t q = net->snaps[i][k];
            raft_status_t ls = net_status(net, i);
            raft_index_t idx = ls.applied;
            raft_term_t term;
            raft_members_t m;
            if (raft_snapshot_meta(net->r[i], idx, &term, &m) != 0) {
                raft_snapshot_sent(net->r[i], net->now, q.to, idx, false);
                continue;
            }
            int to = (int)q.to - 1;
            bool ok = !net->down[to] && !net->cut[i][to];
            if (ok) {
                int rv = raft_snapshot_installed(net->r[to], net->now, ls.term, idx, term, &m);
                if (rv == 0) {
                    /* the follower's state machine is now the leader's */
                    net_clear_applied(net, to);
                    for (size_t e = 0; e < net->n_applied[i]; e++) {
                        raft_entry_t x = net->applied[i][e].e;
                        if (x.index > idx)
                            break;
                        if (x.len) {
                            void *d = malloc(x.len);
                            memcpy(d, x.data, x.len);
                            x.data = d;
                        }
                        net->applied[to] =
                            realloc(net->applied[to], (net->n_applied[to] + 1) * sizeof(applied_t));
                        net->applied[to][net->n_applied[to]++].e = x;
                    }
                }
                net_ready(net, to);
            }
            raft_snapshot_sent(net->r[i], net->now, q.to, idx, ok);
            net_ready(net, i);
        }
        net->n_snaps[i] = 0;
    }
}

static __attribute__((unused)) void net_run_snap(net_t *net, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t++) {
        net_run(net, 1);
        net_do_snapshots(net);
    }
}

#endif
