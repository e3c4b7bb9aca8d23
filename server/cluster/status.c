/* status.c: clock skew with each peer, the cluster part of /v1/status and of /metrics. */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "log.h"

#define CLOCK_PERIOD_MS 5000 /* clock comparison with each peer */
#define CLOCK_WARN_MS   500  /* offsets above this are logged */

/* ---- clock skew ----
 * Every CLOCK_PERIOD_MS each node asks every linked peer for its wall clock (TimeSync) and
 * estimates the peer's offset as t1 - (t0 + t2) / 2, good to about half the round trip. TTL
 * instants are fixed by the leader's clock and checked by each node's own, so an offset is how
 * early (negative) or late an entry expires on that node compared with the leader. Shown per
 * peer in /v1/status (clock_offset_ms) and hacache_peer_clock_offset_seconds; an offset above
 * CLOCK_WARN_MS logs one warning per peer (and one line when it is back under). */

void cl_clock_tick(cluster_t *c)
{
    uint64_t now = cl_now(c);
    if (now < c->clock_tick_at) {
        return;
    }
    c->clock_tick_at = now + CLOCK_PERIOD_MS;
    uint64_t wall = hc_wall_ms();
    for (size_t i = 0; i < c->npeers; i++) {
        if ((int)i != c->self && cl_link_up(c, (int)i)) {
            cl_send_time(c, (int)i, wall, 0);
        }
    }
}

void cl_on_time_sync(cluster_t *c, int peer, const Hacache__TimeSync *ts)
{
    uint64_t t2 = hc_wall_ms();
    if (ts->raft_id != 0) {
        cl_heard_id(c, peer, ts->raft_id);
        cl_heard_lifetime(c, peer, ts->raft_id, ts->lifetime);
    }
    if (ts->t1 == 0) {
        cl_send_time(c, peer, ts->t0, t2 ? t2 : 1); /* a question: answer with my clock */
        return;
    }
    if (ts->t0 > t2 || t2 - ts->t0 > 60000) {
        return; /* not an answer to a recent question of mine (or my clock stepped back) */
    }
    cl_ql_on_answer(c, peer, ts->t0, ts->raft_id, ts->commit);
    int64_t offset = (int64_t)ts->t1 - (int64_t)(ts->t0 + (t2 - ts->t0) / 2);
    c->clock_offset[peer] = offset;
    c->clock_rtt[peer] = t2 - ts->t0 ? t2 - ts->t0 : 1;
    int64_t mag = offset < 0 ? -offset : offset;
    if (mag > CLOCK_WARN_MS && !c->clock_warned[peer]) {
        c->clock_warned[peer] = 1;
        hc_log(HC_LOG_WARN, "clock skew with a peer: TTLs expire at different instants",
               HC_LS("peer", c->names[peer]), HC_LI("offset_ms", offset),
               HC_LU("rtt_ms", c->clock_rtt[peer]));
    } else if (mag <= CLOCK_WARN_MS / 2 && c->clock_warned[peer]) {
        c->clock_warned[peer] = 0;
        hc_log(HC_LOG_INFO, "clock skew with a peer back to normal", HC_LS("peer", c->names[peer]),
               HC_LI("offset_ms", offset));
    }
}

void hc_cluster_status(hc_cluster_t *c, int shutting_down, hc_node_status_t *out)
{
    uint64_t now = cl_now(c);
    raft_status_t st;
    memset(&st, 0, sizeof(st));
    if (c->raft) {
        raft_status(c->raft, &st);
    }
    switch (c->role) {
    case RAFT_LEADER:
        out->role = "leader";
        break;
    case RAFT_FOLLOWER:
        out->role = "follower";
        break;
    default:
        out->role = "candidate";
        break;
    }
    out->term = c->term;
    out->commit_index = st.commit;
    out->applied_index = c->applied;
    out->leader = c->leader_idx >= 0 ? c->names[c->leader_idx] : NULL;
    out->leader_changes = c->leader_changes;
    int quorum = cl_quorum_st(c, now, &st, c->ql.state == HC_QL_HELD ? c->ql.held_since : 0);
    out->quorum = quorum;
    int serving = hc_ql_serving(&c->ql);
    const char *why = NULL;
    if (shutting_down) {
        why = "shutting_down";
    } else if (c->replaced) {
        why = "replaced";
    } else if (!serving && !quorum) {
        why = "no_quorum";
    } else if (c->discovering) {
        why = "discovering";
    } else if (c->joining || (c->raft != NULL && !cl_self_voter_alone(c, &st))) {
        why = "joining";
    } else if (c->leader_idx < 0) {
        why = "no_leader";
    } else if (st.recovering) {
        why = "recovering";
    } else if (cl_catching_up(c) || !serving) {
        why = "catching_up";
    }
    out->ready = why == NULL;
    out->not_ready_reason = why;
    size_t k = 0;
    for (size_t i = 0; i < c->npeers && k < HC_NODE_MAX_PEERS; i++) {
        if ((int)i == c->self) {
            continue;
        }
        hc_node_peer_status_t *p = &out->peers[k++];
        p->node = c->names[i];
        p->connected = cl_link_up(c, (int)i);
        p->last_contact_ms = c->last_frame[i] ? (int64_t)(now - c->last_frame[i]) : -1;
        p->protocol_version = c->io.peer_version(c->io.ud, (int)i);
        p->has_clock = c->clock_rtt[i] != 0;
        p->clock_offset_ms = c->clock_offset[i];
        p->clock_rtt_ms = c->clock_rtt[i];
        if (c->role == RAFT_LEADER) {
            for (uint32_t j = 0; j < st.n_peers; j++) {
                if (st.peers[j].id == c->ids[i]) {
                    p->has_match = 1;
                    p->match_index = st.peers[j].match;
                }
            }
        }
    }
    out->n_peers = k;
    out->n_members = 0;
    out->members_committed = st.members_committed;
    for (uint32_t i = 0; i < st.members.n && out->n_members < HC_NODE_MAX_PEERS; i++) {
        size_t j = out->n_members++;
        out->members[j].node = st.members.m[i].id == c->ids[c->self]
                                   ? c->names[c->self]
                                   : cl_name_of_id(c, st.members.m[i].id);
        out->members[j].role = st.members.m[i].role == RAFT_VOTER ? "voter" : "learner";
    }
}

void hc_cluster_render_metrics(hc_cluster_t *c, hc_buf_t *out)
{
    raft_status_t st;
    memset(&st, 0, sizeof(st));
    if (c->raft) {
        raft_status(c->raft, &st);
    }
    uint64_t retained = st.last_index >= st.first_index ? st.last_index - st.first_index + 1 : 0;
    hc_buf_printf(
        out,
        "# HELP hacache_raft_log_entries Retained raft log entries.\n"
        "# TYPE hacache_raft_log_entries gauge\nhacache_raft_log_entries %" PRIu64 "\n"
        "# HELP hacache_raft_log_bytes Retained raft log data bytes.\n"
        "# TYPE hacache_raft_log_bytes gauge\nhacache_raft_log_bytes %" PRIu64 "\n"
        "# HELP hacache_raft_snapshot_index Index the log was last compacted at.\n"
        "# TYPE hacache_raft_snapshot_index gauge\nhacache_raft_snapshot_index %" PRIu64 "\n"
        "# HELP hacache_raft_compactions_total Log compactions.\n"
        "# TYPE hacache_raft_compactions_total counter\n"
        "hacache_raft_compactions_total %" PRIu64 "\n"
        "# HELP hacache_snapshots_sent_total Snapshots streamed to followers.\n"
        "# TYPE hacache_snapshots_sent_total counter\nhacache_snapshots_sent_total %" PRIu64 "\n"
        "# HELP hacache_snapshots_failed_total Snapshot transfers aborted.\n"
        "# TYPE hacache_snapshots_failed_total counter\n"
        "hacache_snapshots_failed_total %" PRIu64 "\n"
        "# HELP hacache_snapshots_installed_total Snapshots installed from the leader.\n"
        "# TYPE hacache_snapshots_installed_total counter\n"
        "hacache_snapshots_installed_total %" PRIu64 "\n"
        "# HELP hacache_snapshot_last_bytes Size of the last snapshot sent or installed.\n"
        "# TYPE hacache_snapshot_last_bytes gauge\nhacache_snapshot_last_bytes %" PRIu64 "\n"
        "# HELP hacache_write_retries_total Writes sent again to a new leader after a leader "
        "change left their outcome unknown.\n"
        "# TYPE hacache_write_retries_total counter\nhacache_write_retries_total %" PRIu64 "\n",
        retained, st.log_bytes, st.snapshot_index, c->compactions, c->snapshots_sent,
        c->snapshots_failed, c->snapshots_installed, c->last_snapshot_bytes, c->write_retries);
    uint64_t voters = 0, learners = 0;
    for (uint32_t i = 0; i < st.members.n; i++) {
        voters += st.members.m[i].role == RAFT_VOTER;
        learners += st.members.m[i].role == RAFT_LEARNER;
    }
    hc_buf_printf(out,
                  "# HELP hacache_raft_members Members of the raft configuration this node "
                  "knows, by role.\n"
                  "# TYPE hacache_raft_members gauge\n"
                  "hacache_raft_members{role=\"voter\"} %" PRIu64 "\n"
                  "hacache_raft_members{role=\"learner\"} %" PRIu64 "\n"
                  "# HELP hacache_raft_members_committed 1 when that configuration is committed.\n"
                  "# TYPE hacache_raft_members_committed gauge\n"
                  "hacache_raft_members_committed %d\n"
                  "# HELP hacache_raft_member_info One series per member of the configuration.\n"
                  "# TYPE hacache_raft_member_info gauge\n",
                  voters, learners, st.members_committed ? 1 : 0);
    for (uint32_t i = 0; i < st.members.n; i++) {
        hc_buf_printf(out, "hacache_raft_member_info{node=\"%s\",role=\"%s\"} 1\n",
                      cl_name_of_id(c, st.members.m[i].id),
                      st.members.m[i].role == RAFT_VOTER ? "voter" : "learner");
    }
}
