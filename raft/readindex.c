/* readindex.c: linearizable reads (ReadIndex). A read waits until the leader has committed an
 * entry of its term, a quorum of voters acknowledged a round of AppendEntries sent after the
 * read arrived (no newer leader can exist at that point), and the state machine was applied up
 * to the commit index recorded for the read. */
#include "raft_int.h"

static bool committed_in_term(const raft_t *r)
{
    raft_term_t t = 0;
    raft_log_term_(&r->log, r->commit, &t);
    return t == r->term;
}

int raft_read_index(raft_t *r, uint64_t now, uint64_t ctx)
{
    if (now > r->now)
        r->now = now;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->n_reads >= r->cfg.max_pending_reads)
        return RAFT_ETOOMANY;
    if (r->n_reads == r->cap_reads) {
        size_t ncap = r->cap_reads ? r->cap_reads * 2 : 16;
        raft_pread_t *nr = raft_realloc_(r, r->reads, ncap * sizeof(*nr));
        if (!nr)
            return RAFT_ENOMEM;
        r->reads = nr;
        r->cap_reads = ncap;
    }
    /* a new round: every AppendEntries sent from now on carries a seq >= this one */
    r->seq++;
    raft_pread_t *rd = &r->reads[r->n_reads++];
    rd->ctx = ctx;
    rd->seq = r->seq;
    rd->deadline = r->now + r->cfg.election_timeout_ms;
    rd->index_set = committed_in_term(r);
    rd->index = r->commit;
    if (r->cfg.debug_bugs & RAFT_BUG_READ_WITHOUT_QUORUM) {
        rd->seq = 0;
        rd->index_set = true;
    }
    return 0;
}

static bool confirmed(const raft_t *r, const raft_pread_t *rd)
{
    uint32_t n = raft_is_voter_(r, r->id) ? 1 : 0, voters = raft_n_voters_(r);
    for (uint32_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].member_role == RAFT_VOTER && r->peers[i].acked_seq >= rd->seq)
            n++;
    return n >= voters / 2 + 1;
}

void raft_reads_on_commit_(raft_t *r)
{
    if (!committed_in_term(r))
        return;
    for (size_t i = 0; i < r->n_reads; i++) {
        if (!r->reads[i].index_set) {
            r->reads[i].index = r->commit;
            r->reads[i].index_set = true;
        }
    }
}

/* Moves the reads for which `done` holds to the output `o` with `status`. */
static void release(raft_t *r, raft_out_t *o, int status, bool (*done)(raft_t *, raft_pread_t *))
{
    size_t k = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        raft_pread_t *rd = &r->reads[i];
        if (done(r, rd) && raft_out_read_(r, o, rd->ctx, rd->index, status))
            continue;
        r->reads[k++] = *rd;
    }
    r->n_reads = k;
}

static bool ready_to_serve(raft_t *r, raft_pread_t *rd)
{
    return rd->index_set && r->applied >= rd->index && confirmed(r, rd);
}

static bool timed_out(raft_t *r, raft_pread_t *rd)
{
    return r->now >= rd->deadline;
}

static bool always(raft_t *r, raft_pread_t *rd)
{
    (void)r;
    (void)rd;
    return true;
}

void raft_reads_release_(raft_t *r, raft_out_t *o)
{
    if (r->role == RAFT_LEADER)
        release(r, o, 0, ready_to_serve);
}

void raft_reads_tick_(raft_t *r)
{
    release(r, &r->pending, RAFT_ETIMEOUT, timed_out);
}

void raft_reads_fail_all_(raft_t *r, int status)
{
    release(r, &r->pending, status, always);
}

void raft_reads_free_(raft_t *r)
{
    raft_free_(r, r->reads);
    r->reads = NULL;
    r->n_reads = r->cap_reads = 0;
}
