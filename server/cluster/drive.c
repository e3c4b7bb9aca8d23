/* drive.c: driving raft: every event is fed to the core and cl_kick asks the binding to collect
 * raft_ready() once on a later loop turn, so proposals of one turn share AppendEntries; each
 * update is processed in raft/README.md's order: persist, reset, apply, answer reads, send
 * messages, start snapshot transfers. */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"

static void apply_entry(cluster_t *c, const raft_entry_t *e)
{
    int status = 0;
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    if (e->type == RAFT_ENTRY_NORMAL) {
        hc_cmd_decoded_t d;
        int rv = hc_cmd_decode(e->data, e->len, HC_CMD_MAX_ENCODED, &d);
        if (rv != 0) {
            hc_log(HC_LOG_ERROR, "undecodable log entry skipped", HC_LU("index", e->index));
            status = HC_EINTERNAL;
        } else {
            uint64_t now = d.meta.now_ms ? d.meta.now_ms : hc_wall_ms();
            hc_buf_reset(&c->apply_vals);
            status =
                hc_fsm_apply_vals(c->fsm, &d.cmd, d.meta.has_request_id ? d.meta.request_id : NULL,
                                  e->index, now, &res, &c->apply_vals);
            if (res.vals != NULL && d.meta.has_request_id) {
                cl_keep_fwd_vals(c, d.meta.request_id, res.vals);
            }
            hc_cmd_decoded_free(&d);
        }
    }
    c->applied = e->index;
    cl_ql_applied(c, e->index, e->term);
    /* waiters on this index: the leader's writes, by index */
    hc_node_op_t *op = c->lw_head, *next;
    for (; op && op->index <= e->index; op = next) {
        next = op->inext;
        if (op->index != e->index) {
            continue;
        }
        if (op->term != e->term) {
            cl_op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->ack == HC_ACK_QUORUM || op->ack == HC_ACK_ONCE) {
            cl_op_finish_write(c, op, status, &res);
        }
    }
}

static void send_raft_msg(cluster_t *c, const raft_message_t *m)
{
    int peer = cl_peer_of_id(c, m->to);
    if (peer < 0 || peer == c->self || !cl_link_up(c, peer)) {
        return;
    }
    uint8_t *buf;
    size_t len;
    if (hc_raft_msg_encode(m, c->lifetime, &buf, &len) != 0) {
        return;
    }
    c->io.send(c->io.ud, peer, buf, len); /* best effort: raft retransmits */
    free(buf);
}

void cl_process(cluster_t *c)
{
    if (c->raft == NULL) {
        return; /* discovering: nothing to drive yet */
    }
    raft_update_t u;
    if (raft_ready(c->raft, &u) != 0) {
        cl_kick(c);
        return;
    }
    if (u.hard_state_changed) {
        cl_persist_or_die(c, &u.hard_state);
    }
    if (u.reset) {
        hc_log(HC_LOG_WARN, "raft reset: the cluster restarted from an empty log, store cleared");
        hc_fsm_reset(c->fsm);
        c->applied = 0;
        c->expire_barrier = 0;
    }
    for (size_t i = 0; i < u.n_entries; i++) {
        apply_entry(c, &u.entries[i]);
    }
    if (u.n_entries > 0) {
        cl_maybe_compact(c);
    }
    if (u.members_changed || u.reset) {
        c->members_check = 1;
    }
    if (c->members_check) {
        cl_save_committed_members(c);
    }
    if (u.commit > c->commit_heard) {
        c->commit_heard = u.commit;
    }
    for (size_t i = 0; i < u.n_reads; i++) {
        const raft_read_t *rd = &u.reads[i];
        for (hc_node_op_t *op = c->ops; op; op = op->next) {
            if (op->kind == OP_READ_INDEX && op->ctx == rd->ctx) {
                op->index = rd->index;
                cl_op_finish_read(c, op, rd->status == 0 ? 0 : HC_EUNAVAILABLE);
                break;
            }
        }
    }
    for (size_t i = 0; i < u.n_messages; i++) {
        send_raft_msg(c, &u.messages[i]);
    }
    int was_leader = c->role == RAFT_LEADER;
    if (u.state_changed) {
        int term_moved = u.term != c->term;
        int role_moved = u.role != c->role;
        uint64_t old_leader = c->leader;
        c->role = u.role;
        c->term = u.term;
        c->leader = u.leader;
        c->leader_idx = u.leader ? cl_peer_of_id(c, u.leader) : -1;
        if (u.leader != 0 && u.leader != old_leader) {
            c->leader_changes++;
        }
        if (term_moved || role_moved || u.leader != old_leader) {
            hc_log(HC_LOG_INFO, "raft state", HC_LS("role", raft_role_name(u.role)),
                   HC_LU("term", u.term),
                   HC_LS("leader", c->leader_idx >= 0 ? c->names[c->leader_idx] : "unknown"));
        }
        cl_on_leader_lost(c);
        if (role_moved) {
            hc_fsm_plan_clear(c->fsm); /* a new leader plans from the store as applied */
        }
        if (c->role != RAFT_LEADER || term_moved) {
            cl_snap_tx_drop_all(c);
        }
        if (u.leader != old_leader) {
            cl_on_leader_changed(c);
        }
    }
    c->recovering = raft_is_recovering(c->raft); /* for local reads (hc_cluster_not_current) */
    cl_ql_observe(c, was_leader && c->role != RAFT_LEADER);
    /* after the state update: a leadership won in this very update is already known */
    for (size_t i = 0; i < u.n_snapshots; i++) {
        cl_snap_start(c, &u.snapshots[i]);
    }
    cl_check_applied_waiters(c);
    if (c->role == RAFT_LEADER) {
        cl_check_once_waiters(c);
    }
    cl_retry_parked_writes(c);
    if (c->handover_cb && c->role != RAFT_LEADER) {
        void (*cb)(void *) = c->handover_cb;
        c->handover_cb = NULL;
        c->io.timer_stop(c->io.ud, CL_TIMER_HANDOVER);
        cb(c->handover_ud);
    }
    if (!c->closing) {
        uint64_t now = cl_now(c);
        uint64_t delay = u.deadline > now ? u.deadline - now : 0;
        c->io.timer_start(c->io.ud, CL_TIMER_RAFT, delay, 0);
    }
}

void cl_on_raft_timer(cluster_t *c)
{
    if (c->closing || c->raft == NULL) {
        return;
    }
    raft_tick(c->raft, cl_now(c));
    cl_process(c);
}

int cl_raft_create(cluster_t *c, raft_start_mode_t mode, const raft_hard_state_t *hs,
                   const raft_members_t *members, uint64_t members_index, uint64_t members_epoch)
{
    const hc_config_t *cfg = c->cfg;
    raft_start_t start;
    memset(&start, 0, sizeof(start));
    start.id = c->ids[c->self];
    randombytes_buf(&start.incarnation, sizeof(start.incarnation));
    randombytes_buf(&start.seed, sizeof(start.seed));
    if (start.incarnation == 0) {
        start.incarnation = 1;
    }
    start.mode = mode;
    if (mode == RAFT_START_RESTART && hs != NULL) {
        start.hard_state = *hs;
    }
    c->members_check = 1;                         /* save the first configuration seen committed */
    c->recovering = mode != RAFT_START_BOOTSTRAP; /* as raft_new decides; then every update */
    if (members != NULL) {
        start.members = *members;
        start.members_index = members_index;
        start.members_epoch = members_epoch;
    } else {
        start.members.n = (uint32_t)c->nhosts;
        for (size_t i = 0; i < c->nhosts; i++) {
            start.members.m[i].id = c->ids[i];
            start.members.m[i].role = RAFT_VOTER;
        }
    }
    raft_config_t rc;
    memset(&rc, 0, sizeof(rc));
    rc.election_timeout_ms = cfg->election_timeout_ms;
    rc.heartbeat_ms = cfg->heartbeat_ms;
    /* an entry holds a whole value: CACHE_MAX_VALUE_SIZE plus room for the key and the command
     * (keys are bounded far below that), within what one peer frame carries */
    uint64_t entry = cfg->max_value_size + ((uint64_t)256 << 10);
    rc.max_bytes_per_msg = (uint32_t)(entry < ((uint64_t)1 << 20)    ? (uint64_t)1 << 20
                                      : entry > ((uint64_t)48 << 20) ? (uint64_t)48 << 20
                                                                     : entry);
    rc.max_log_entries = CL_MAX_LOG_ENTRIES;
    rc.max_log_bytes = CL_MAX_LOG_BYTES;
    return raft_new(&c->raft, &rc, &start, cl_now(c));
}
