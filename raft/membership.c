/* membership.c: single-server configuration changes. A configuration is a log entry that takes
 * effect on a server as soon as it is in its log; only one may be uncommitted at a time. */
#include <string.h>

#include "raft_int.h"

static bool members_equal(const raft_members_t *a, const raft_members_t *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->m[i].id != b->m[i].id || a->m[i].role != b->m[i].role)
            return false;
    return true;
}

const raft_member_t *raft_member_find_(const raft_members_t *m, raft_id_t id)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (m->m[i].id == id)
            return &m->m[i];
    return NULL;
}

bool raft_is_voter_(const raft_t *r, raft_id_t id)
{
    const raft_member_t *m = raft_member_find_(&r->members, id);
    return m && m->role == RAFT_VOTER;
}

uint32_t raft_n_voters_(const raft_t *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->members.n; i++)
        n += r->members.m[i].role == RAFT_VOTER;
    return n;
}

/* Installs `m` as the effective configuration and rebuilds the peer table, keeping what we
 * know about servers that stay. */
void raft_members_set_(raft_t *r, const raft_members_t *m, raft_index_t index)
{
    raft_peer_t old[RAFT_MAX_MEMBERS];
    uint32_t n_old = r->n_peers;
    memcpy(old, r->peers, n_old * sizeof(old[0]));
    r->members = *m;
    r->members_index = index;
    r->members_dirty = true;
    r->n_peers = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].id == r->id)
            continue;
        raft_peer_t *p = &r->peers[r->n_peers++];
        bool found = false;
        for (uint32_t j = 0; j < n_old; j++) {
            if (old[j].id == m->m[i].id) {
                *p = old[j];
                found = true;
                break;
            }
        }
        if (!found) {
            memset(p, 0, sizeof(*p));
            p->id = m->m[i].id;
            if (r->role == RAFT_LEADER)
                raft_progress_init_(r, p);
        }
        p->member_role = m->m[i].role;
    }
    if (r->transferee && !raft_is_voter_(r, r->transferee))
        raft_transfer_abort_(r, "transferee left the voters");
}

/* The index at or below which the log's configuration entries are older than the one the host
 * gave at start (0: none). Valid only in the epoch the host saw it in: a log of another epoch
 * is a different history. When it lies above the log's base, the host's configuration stands
 * in for everything up to it (like a snapshot's configuration at its base). */
static raft_index_t host_floor(const raft_t *r)
{
    if (r->host_members_at == 0 || r->host_members_epoch != r->reset_term ||
        r->host_members_at <= r->log.base_index)
        return 0;
    return r->host_members_at;
}

void raft_members_recompute_(raft_t *r)
{
    raft_members_t m;
    raft_index_t floor = host_floor(r);
    raft_index_t stop = floor ? floor : r->log.base_index;
    const raft_members_t *fallback = floor ? &r->host_members : &r->base_members;
    for (raft_index_t i = raft_log_last_(&r->log); i > stop; i--) {
        const raft_lentry_t *e = raft_log_get_(&r->log, i);
        if (e->type != RAFT_ENTRY_CONFIG)
            continue;
        if (i == r->members_index)
            return;
        if (raft_members_decode(e->buf ? e->buf->data : NULL, e->buf ? e->buf->len : 0, &m) == 0) {
            raft_members_set_(r, &m, i);
            return;
        }
    }
    if (r->members_index != 0 || !members_equal(&r->members, fallback))
        raft_members_set_(r, fallback, 0);
}

int raft_members_at_(const raft_t *r, raft_index_t index, raft_members_t *out)
{
    if (index < r->log.base_index)
        return RAFT_ECOMPACTED;
    if (index > raft_log_last_(&r->log))
        return RAFT_ENOENT;
    raft_index_t floor = host_floor(r);
    bool above = floor && index >= floor;
    for (raft_index_t i = index; i > (above ? floor : r->log.base_index); i--) {
        const raft_lentry_t *e = raft_log_get_(&r->log, i);
        if (e->type == RAFT_ENTRY_CONFIG &&
            raft_members_decode(e->buf ? e->buf->data : NULL, e->buf ? e->buf->len : 0, out) == 0)
            return 0;
    }
    *out = above ? r->host_members : r->base_members;
    return 0;
}

/* A leader that is no longer a voter of a committed configuration steps down. */
void raft_check_self_removal_(raft_t *r)
{
    if (r->role == RAFT_LEADER && r->members_index <= r->commit && !raft_is_voter_(r, r->id)) {
        TRACE(r, "removed from the voters (config %llu committed): stepping down",
              (unsigned long long)r->members_index);
        raft_become_follower_(r, r->term, 0);
    }
}

/* Does a change to `m` leave a majority of its voters that this leader counts toward commit
 * (caught up, of a known incarnation) and heard from within an election timeout? A
 * configuration takes effect when appended, so a change without such a majority can neither
 * commit nor be undone by this leader, and if the leader then loses its term nobody may be
 * able to win one: a removal of a live voter while others are down or recovering leaves a
 * configuration in which the recovering voters are an escape threshold, while they (knowing
 * only the committed configuration, in which they are not) will not escape (raft-sim seeds
 * 1321, 1414). Refusing such a change only keeps the current configuration (etcd's strict
 * reconfiguration check does the same for its servers). */
static bool change_keeps_quorum(raft_t *r, const raft_members_t *m)
{
    uint32_t voters = 0, live = 0;
    uint64_t t = r->cfg.election_timeout_ms;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].role != RAFT_VOTER)
            continue;
        voters++;
        if (m->m[i].id == r->id) {
            live++;
            continue;
        }
        const raft_peer_t *p = raft_peer_(r, m->m[i].id);
        live +=
            p && p->inc_known && !p->recovering && p->last_heard != 0 && r->now < p->last_heard + t;
    }
    return live >= voters / 2 + 1;
}

static uint32_t count_voters(const raft_members_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n; i++)
        n += m->m[i].role == RAFT_VOTER;
    return n;
}

int raft_change(raft_t *r, uint64_t now, raft_change_t kind, raft_id_t id, raft_index_t *index)
{
    if (now > r->now)
        r->now = now;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    raft_term_t ct = 0;
    raft_log_term_(&r->log, r->commit, &ct);
    /* one change at a time, and not before this leader committed an entry of its term (the
     * single-server change bug fixed in the Raft thesis errata) */
    if (r->members_index > r->commit || ct != r->term)
        return RAFT_EBUSY;
    if (id == 0)
        return RAFT_EINVAL;
    raft_members_t m = r->members;
    raft_member_t *cur = NULL;
    for (uint32_t i = 0; i < m.n; i++)
        if (m.m[i].id == id)
            cur = &m.m[i];
    switch (kind) {
    case RAFT_CHANGE_ADD_LEARNER:
        if (cur)
            return RAFT_EINVAL;
        if (m.n == RAFT_MAX_MEMBERS)
            return RAFT_ETOOMANY;
        m.m[m.n++] = (raft_member_t){id, RAFT_LEARNER};
        break;
    case RAFT_CHANGE_PROMOTE:
        if (!cur)
            return RAFT_ENOENT;
        if (cur->role != RAFT_LEARNER)
            return RAFT_EINVAL;
        cur->role = RAFT_VOTER;
        break;
    case RAFT_CHANGE_DEMOTE:
    case RAFT_CHANGE_REMOVE:
        if (!cur)
            return RAFT_ENOENT;
        if (kind == RAFT_CHANGE_DEMOTE) {
            if (cur->role != RAFT_VOTER)
                return RAFT_EINVAL;
            cur->role = RAFT_LEARNER;
        } else {
            bool was_voter = cur->role == RAFT_VOTER;
            *cur = m.m[--m.n];
            /* TEST ONLY: the one-entry swap that single-server changes forbid */
            for (uint32_t i = 0; i < m.n && was_voter && (r->cfg.debug_bugs & RAFT_BUG_SWAP_VOTERS);
                 i++)
                if (m.m[i].role == RAFT_LEARNER) {
                    m.m[i].role = RAFT_VOTER;
                    break;
                }
        }
        {
            bool voter = false;
            for (uint32_t i = 0; i < m.n; i++)
                voter |= m.m[i].role == RAFT_VOTER;
            if (!voter)
                return RAFT_EINVAL;
        }
        break;
    default:
        return RAFT_EINVAL;
    }
    /* (a single change alters the voters exactly when it changes their number) */
    if (count_voters(&m) != raft_n_voters_(r) && !change_keeps_quorum(r, &m))
        return RAFT_ENOQUORUM;
    if (r->log.n + 1 > r->cfg.max_log_entries)
        return RAFT_EFULL;
    unsigned char buf[4 + RAFT_MAX_MEMBERS * 9];
    raft_members_encode(&m, buf);
    int rv = raft_log_append_(r, r->term, RAFT_ENTRY_CONFIG, buf, raft_members_encoded_size(&m));
    if (rv)
        return rv;
    raft_index_t idx = raft_log_last_(&r->log);
    TRACE(r, "config change kind=%d id=%llu at %llu", (int)kind, (unsigned long long)id,
          (unsigned long long)idx);
    raft_members_set_(r, &m, idx);
    if (index)
        *index = idx;
    raft_maybe_commit_(r);
    return 0;
}
