/* requests.c: requests in flight: local writes proposed (leader) or forwarded (follower), their ack
 * levels, writes parked across a leader change and sent again under their request id, and reads
 * at leader / linearizable consistency (ReadIndex). */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The leader's writes by index (apply_entry answers them from the head). Proposals come in
 * index order, so an op almost always goes last. */
static void lw_insert(cluster_t *c, hc_node_op_t *op)
{
    hc_node_op_t *after = c->lw_tail;
    while (after != NULL && after->index > op->index) {
        after = after->iprev;
    }
    op->iprev = after;
    op->inext = after ? after->inext : c->lw_head;
    if (op->inext) {
        op->inext->iprev = op;
    } else {
        c->lw_tail = op;
    }
    if (after) {
        after->inext = op;
    } else {
        c->lw_head = op;
    }
    op->in_lw = 1;
}

static void lw_remove(cluster_t *c, hc_node_op_t *op)
{
    if (!op->in_lw) {
        return;
    }
    if (op->iprev) {
        op->iprev->inext = op->inext;
    } else {
        c->lw_head = op->inext;
    }
    if (op->inext) {
        op->inext->iprev = op->iprev;
    } else {
        c->lw_tail = op->iprev;
    }
    op->iprev = op->inext = NULL;
    op->in_lw = 0;
}

/* Ops are kept oldest first: answers tend to come in that order, and parked writes are sent
 * again in it. */
void cl_op_link(cluster_t *c, hc_node_op_t *op)
{
    op->next = NULL;
    op->prev = c->ops_tail;
    if (c->ops_tail) {
        c->ops_tail->next = op;
    } else {
        c->ops = op;
    }
    c->ops_tail = op;
    if (op->kind == OP_RETRY_WRITE) {
        c->parked++;
    }
    if (op->kind == OP_LEADER_WRITE) {
        lw_insert(c, op);
    }
}

void cl_op_unlink(cluster_t *c, hc_node_op_t *op)
{
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        c->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    } else {
        c->ops_tail = op->prev;
    }
    op->prev = op->next = NULL;
    if (op->kind == OP_RETRY_WRITE) {
        c->parked--;
    }
    lw_remove(c, op);
}

/* Changes the kind of a linked op (keeps the parked count and the index list; an op becoming
 * a leader write has its index set already). */
static void op_set_kind(cluster_t *c, hc_node_op_t *op, op_kind_t kind)
{
    c->parked += (kind == OP_RETRY_WRITE) - (op->kind == OP_RETRY_WRITE);
    lw_remove(c, op);
    op->kind = kind;
    if (kind == OP_LEADER_WRITE) {
        lw_insert(c, op);
    }
}

void cl_op_free(hc_node_op_t *op)
{
    hc_buf_free(&op->vals);
    free(op->enc);
    free(op->cache);
    free(op->key);
    free(op);
}

hc_node_op_t *cl_op_new(op_kind_t kind)
{
    hc_node_op_t *op = calloc(1, sizeof(*op));
    if (op) {
        hc_buf_init(&op->vals);
        op->kind = kind;
        op->remote_peer = -1;
        op->peer = -1;
    }
    return op;
}

static void send_fwd_result(cluster_t *c, int peer, const uint8_t rid[16], int status,
                            uint64_t index, const hc_apply_result_t *res)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ForwardResult fr = HACACHE__FORWARD_RESULT__INIT;
    fr.request_id.data = (uint8_t *)rid;
    fr.request_id.len = HC_REQUEST_ID_BYTES;
    fr.status = status;
    fr.index = index;
    if (res) {
        fr.version = res->version;
        fr.integer = res->integer;
        fr.existed = res->existed != 0;
        fr.removed = res->removed;
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_FWD_RESULT;
    pm.fwd_result = &fr;
    cl_send_pm(c, peer, &pm);
}

static void send_read_resp(cluster_t *c, int peer, uint64_t id, int status, uint64_t read_index,
                           const hc_entry_view_t *v)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ReadResponse rr = HACACHE__READ_RESPONSE__INIT;
    rr.id = id;
    rr.status = status;
    rr.read_index = read_index;
    if (v) {
        rr.value.data = (uint8_t *)v->data;
        rr.value.len = v->len;
        rr.version = v->version;
        rr.expire_at_ms = v->expire_at_ms;
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_READ_RESP;
    pm.read_resp = &rr;
    cl_send_pm(c, peer, &pm);
}

/* Completes a write op: answers the local caller or the follower, then frees it. */
/* A local write whose fate is unknown (the leader changed or stepped down with it in flight), or
 * that a former leader refused: it carries a request id, so sending it again to the current
 * leader is safe (applied once: the dedupe window answers a retry of an applied write with its
 * first outcome) and gives the real outcome. Parked until a leader is known, at most until
 * retry_until; then reported as unknown_outcome. */
static int op_park_for_retry(cluster_t *c, hc_node_op_t *op, int status)
{
    if (op->enc == NULL || op->remote_peer >= 0 || c->closing || cl_now(c) >= op->retry_until ||
        !(status == HC_EUNKNOWN_OUTCOME ||
          (status == HC_EUNAVAILABLE && op->kind == OP_FWD_WRITE))) {
        return 0;
    }
    op_set_kind(c, op, OP_RETRY_WRITE);
    op->maybe_applied |= status == HC_EUNKNOWN_OUTCOME;
    op->wait_apply = 0;
    op->index = op->term = 0;
    op->peer = -1;
    op->deadline = op->retry_until;
    /* a node that said "not the leader" is not asked again at once (the next leader may not be
     * known yet); retried on a later state change or expiry tick */
    op->retry_after = cl_now(c) + (status == HC_EUNAVAILABLE ? RETRY_PAUSE_MS : 0);
    c->write_retries++;
    cl_kick(c);
    return 1;
}

void cl_op_finish_write(cluster_t *c, hc_node_op_t *op, int status, const hc_apply_result_t *res)
{
    if (op_park_for_retry(c, op, status)) {
        return;
    }
    if (op->maybe_applied && (status == HC_EUNAVAILABLE || status == HC_ETIMEDOUT)) {
        /* a refusal now says nothing of an earlier attempt whose fate was unknown */
        status = HC_EUNKNOWN_OUTCOME;
    }
    cl_op_unlink(c, op);
    hc_apply_result_t zero;
    memset(&zero, 0, sizeof(zero));
    if (res == NULL) {
        res = &zero;
    }
    hc_apply_result_t with_vals;
    if (op->have_vals) { /* a forwarded write's values, from its apply here */
        with_vals = *res;
        with_vals.vals = &op->vals;
        res = &with_vals;
    }
    if (op->remote_peer >= 0) {
        send_fwd_result(c, op->remote_peer, op->rid, status, op->index, res);
    } else if (op->wcb) {
        op->wcb(op->ud, status, res);
    }
    if (op->seq != NULL && c->parked > 0) {
        cl_kick(c); /* the next parked write of its sequence may go now */
    }
    cl_op_free(op);
}

/* Completes a read op with a local read (status 0) or an error. */
void cl_op_finish_read(cluster_t *c, hc_node_op_t *op, int status)
{
    cl_op_unlink(c, op);
    if (op->remote_peer >= 0) {
        /* ReadIndex on behalf of a follower: it reads locally once applied >= index */
        send_read_resp(c, op->remote_peer, op->remote_id, status, op->index, NULL);
    } else if (op->rcb) {
        if (status == 0) {
            hc_entry_view_t v;
            int rv = hc_store_get(hc_fsm_store(c->fsm), op->cache, op->cache_len, op->key, op->klen,
                                  hc_wall_ms(), &v);
            op->rcb(op->ud, rv, rv == 0 ? &v : NULL);
        } else {
            op->rcb(op->ud, status, NULL);
        }
    }
    cl_op_free(op);
}

void cl_op_finish(cluster_t *c, hc_node_op_t *op, int status)
{
    if (op->kind == OP_LEADER_WRITE || op->kind == OP_FWD_WRITE || op->kind == OP_RETRY_WRITE ||
        op->kind == OP_TRANSFER) {
        cl_op_finish_write(c, op, status, NULL);
    } else {
        cl_op_finish_read(c, op, status);
    }
}

/* A write with values was applied here: the forwarded write of this node waiting for it keeps
 * them (the leader's answer carries none; the state machine gives every replica the same). */
void cl_keep_fwd_vals(cluster_t *c, const uint8_t rid[16], const hc_buf_t *vals)
{
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->want_vals && op->kind == OP_FWD_WRITE &&
            memcmp(op->rid, rid, HC_REQUEST_ID_BYTES) == 0) {
            hc_buf_reset(&op->vals);
            hc_buf_append(&op->vals, vals->data, vals->len);
            op->have_vals = !op->vals.failed;
            return;
        }
    }
}

void cl_check_applied_waiters(cluster_t *c)
{
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (!op->wait_apply || c->applied < op->index) {
            continue;
        }
        if (op->kind == OP_FWD_WRITE) {
            hc_apply_result_t r = op->res;
            cl_op_finish_write(c, op, op->res_status, &r);
        } else {
            cl_op_finish_read(c, op, 0);
        }
    }
}

/* `once`: stored on the leader and at least one follower. */
void cl_check_once_waiters(cluster_t *c)
{
    int any = 0;
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->kind == OP_LEADER_WRITE && op->ack == HC_ACK_ONCE) {
            any = 1;
            break;
        }
    }
    if (!any) {
        return;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->kind != OP_LEADER_WRITE || op->ack != HC_ACK_ONCE || op->term != st.term) {
            continue;
        }
        for (uint32_t i = 0; i < st.n_peers; i++) {
            if (st.peers[i].match >= op->index) {
                hc_apply_result_t r;
                memset(&r, 0, sizeof(r));
                r.version = op->index;
                cl_op_finish_write(c, op, 0, &r);
                break;
            }
        }
    }
}

void cl_on_leader_lost(cluster_t *c)
{
    /* Proposals of a term that is over (or that this node no longer leads) may or may not
     * commit under the next leader: their fate is unknown. */
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->kind == OP_LEADER_WRITE && (c->role != RAFT_LEADER || op->term != c->term)) {
            cl_op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->kind == OP_TRANSFER && c->role != RAFT_LEADER && c->leader_idx >= 0 &&
                   c->leader_idx != c->self) {
            cl_op_finish_write(c, op, 0, NULL); /* leadership moved, and we know where */
        }
    }
}

void cl_on_leader_changed(cluster_t *c)
{
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->wait_apply) {
            continue; /* the leader answered; only the local apply is missing */
        }
        if (op->kind == OP_FWD_WRITE) {
            cl_op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->kind == OP_FWD_READ) {
            cl_op_finish_read(c, op, HC_EUNAVAILABLE);
        }
    }
}

static int map_raft_err(int rv)
{
    switch (rv) {
    case RAFT_ETOOBIG:
        return HC_ETOOLARGE;
    case RAFT_ENOMEM:
        return HC_EINTERNAL;
    default: /* not leader, transfer in progress, log full: retry later / elsewhere */
        return HC_EUNAVAILABLE;
    }
}

int cl_propose_cmd(cluster_t *c, const hc_cmd_t *cmd, const hc_cmd_meta_t *meta, uint64_t *index,
                   uint64_t *term)
{
    uint8_t *buf;
    size_t len;
    if (hc_cmd_encode_meta(cmd, meta, &buf, &len) != 0) {
        return HC_EINTERNAL;
    }
    raft_index_t i = 0;
    raft_term_t t = 0;
    int rv = raft_propose(c->raft, cl_now(c), buf, len, &i, &t);
    free(buf);
    if (rv != 0) {
        return map_raft_err(rv);
    }
    cl_kick(c);
    if (index) {
        *index = i;
    }
    if (term) {
        *term = t;
    }
    return 0;
}

/* Leader: proposes the EVICT/EXPIRE entries that make room for a PUT/INCR, then the write.
 * `cmd` has its absolute expiry already. */
static int leader_propose_write(cluster_t *c, const hc_cmd_t *cmd, const uint8_t rid[16],
                                uint64_t *index, uint64_t *term)
{
    uint64_t now = hc_wall_ms();
    hc_cmd_meta_t meta = {.has_request_id = 1, .now_ms = now};
    memcpy(meta.request_id, rid, HC_REQUEST_ID_BYTES);
    hc_cmd_list_t room = {0};
    int rv = hc_fsm_plan_put(c->fsm, cmd, now, &room);
    hc_cmd_meta_t vmeta = {.has_request_id = 0, .now_ms = now};
    for (size_t i = 0; rv == 0 && i < room.n; i++) {
        rv = cl_propose_cmd(c, &room.v[i], &vmeta, NULL, NULL);
    }
    uint64_t at = 0;
    if (rv == 0) {
        rv = cl_propose_cmd(c, cmd, &meta, &at, term);
    }
    if (rv == 0) {
        /* the next writes are planned before these are applied: they must not pick the same
         * victims or count the same room (store_plan.c) */
        hc_fsm_plan_proposed(c->fsm, &room, cmd, at, now);
        if (index != NULL) {
            *index = at;
        }
    }
    hc_cmd_list_free(&room);
    return rv;
}

/* Leader: a write (local when remote_peer < 0). Returns the op still waiting, or NULL when it
 * was answered already. */
static hc_node_op_t *leader_write(cluster_t *c, const hc_cmd_t *cmd, const uint8_t rid[16],
                                  hc_ack_t ack, int remote_peer, const void *seq, hc_write_cb cb,
                                  void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    hc_dedupe_result_t prev;
    if (hc_fsm_find_request(c->fsm, rid, &prev)) {
        /* a retry of a write already applied */
        if (remote_peer >= 0) {
            send_fwd_result(c, remote_peer, rid, prev.status, prev.index, &prev.res);
        } else {
            cb(ud, prev.status, &prev.res);
        }
        return NULL;
    }
    uint64_t index = 0, term = 0;
    int rv = leader_propose_write(c, cmd, rid, &index, &term);
    if (rv == 0 && (ack == HC_ACK_LEADER || ack == HC_ACK_NONE)) {
        res.version = (cmd->op == HC_OP_PUT || cmd->op == HC_OP_INCR) ? index : 0;
    }
    if (rv != 0 || ack == HC_ACK_LEADER || ack == HC_ACK_NONE) {
        if (remote_peer >= 0) {
            if (ack != HC_ACK_NONE) {
                send_fwd_result(c, remote_peer, rid, rv, index, &res);
            }
        } else {
            cb(ud, rv, &res);
        }
        return NULL;
    }
    hc_node_op_t *op = cl_op_new(OP_LEADER_WRITE);
    if (op == NULL) {
        /* proposed, but nobody can wait for it */
        if (remote_peer >= 0) {
            send_fwd_result(c, remote_peer, rid, HC_EUNKNOWN_OUTCOME, index, NULL);
        } else {
            cb(ud, HC_EUNKNOWN_OUTCOME, &res);
        }
        return NULL;
    }
    op->ack = ack;
    op->index = index;
    op->term = term;
    op->remote_peer = remote_peer;
    op->seq = seq;
    memcpy(op->rid, rid, HC_REQUEST_ID_BYTES);
    op->wcb = cb;
    op->ud = ud;
    cl_op_link(c, op);
    return remote_peer >= 0 ? NULL : op;
}

static int send_fwd(cluster_t *c, int leader, const uint8_t rid[16], hc_ack_t ack, uint64_t ttl_ms,
                    uint8_t *enc, size_t enclen)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ForwardWrite fw = HACACHE__FORWARD_WRITE__INIT;
    fw.request_id.data = (uint8_t *)rid;
    fw.request_id.len = HC_REQUEST_ID_BYTES;
    fw.ack = ack;
    fw.ttl_ms = ttl_ms;
    fw.command.data = enc;
    fw.command.len = enclen;
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_FWD;
    pm.fwd = &fw;
    int rv = cl_send_pm(c, leader, &pm);
    return rv == 0 ? 0 : rv == HC_ETOOLARGE ? HC_ETOOLARGE : HC_EUNAVAILABLE;
}

/* 1 when a write of sequence `seq` is parked (a new one must not overtake it). */
static int seq_parked(const cluster_t *c, const void *seq)
{
    if (seq == NULL || c->parked == 0) {
        return 0;
    }
    for (const hc_node_op_t *o = c->ops; o; o = o->next) {
        if (o->kind == OP_RETRY_WRITE && o->seq == seq) {
            return 1;
        }
    }
    return 0;
}

hc_node_op_t *hc_cluster_write(hc_cluster_t *c, const hc_cmd_t *cmd, const uint8_t rid[16],
                               uint64_t ttl_ms, hc_ack_t ack, const void *seq, hc_write_cb cb,
                               void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    if (!hc_ql_serving(&c->ql)) {
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    int need = hc_cmd_proto(cmd);
    if (need > 2 && !(c->role == RAFT_LEADER
                          ? cl_members_speak(c, (uint32_t)need)
                          : c->leader_idx >= 0 && c->leader_idx != c->self &&
                                c->io.peer_version(c->io.ud, c->leader_idx) >= (uint32_t)need)) {
        /* a member that does not know the entry would skip it and diverge */
        cb(ud, c->leader_idx < 0 ? HC_EUNAVAILABLE : HC_EUPGRADE, &res);
        return NULL;
    }
    int want_vals = hc_cmd_has_vals(cmd);
    if (want_vals) {
        ack = HC_ACK_QUORUM; /* the values come from the apply on this node */
    }
    hc_cmd_t w = *cmd;
    w.expire_at_ms = 0;
    uint8_t *enc;
    size_t enclen;
    if (hc_cmd_encode(&w, &enc, &enclen) != 0) {
        cb(ud, HC_EINTERNAL, &res);
        return NULL;
    }
    hc_node_op_t *op = NULL;
    if (seq_parked(c, seq)) {
        /* an earlier write of its sequence waits to be sent again: this one goes after it */
        op = cl_op_new(OP_RETRY_WRITE);
        if (op == NULL) {
            free(enc);
            cb(ud, HC_EUNAVAILABLE, &res);
            return NULL;
        }
        op->ack = ack;
        op->seq = seq;
        memcpy(op->rid, rid, HC_REQUEST_ID_BYTES);
        op->wcb = cb;
        op->ud = ud;
        op->enc = enc;
        op->enc_len = enclen;
        op->ttl_ms = ttl_ms;
        op->want_vals = want_vals;
        op->retry_until = cl_now(c) + 2 * (uint64_t)c->cfg->election_timeout_ms;
        op->deadline = op->retry_until;
        cl_op_link(c, op);
        cl_kick(c);
        return op;
    }
    if (c->role == RAFT_LEADER) {
        w.expire_at_ms = ttl_ms ? hc_wall_ms() + ttl_ms : 0;
        op = leader_write(c, &w, rid, ack, -1, seq, cb, ud);
    } else {
        int leader = c->leader_idx;
        int rv = leader < 0 || leader == c->self || !cl_link_up(c, leader)
                     ? HC_EUNAVAILABLE
                     : send_fwd(c, leader, rid, ack, ttl_ms, enc, enclen);
        if (rv != 0 || ack == HC_ACK_NONE) {
            free(enc);
            cb(ud, rv, &res);
            return NULL;
        }
        op = cl_op_new(OP_FWD_WRITE);
        if (op == NULL) {
            free(enc);
            cb(ud, HC_EUNKNOWN_OUTCOME, &res);
            return NULL;
        }
        op->ack = ack;
        op->peer = leader;
        op->seq = seq;
        memcpy(op->rid, rid, HC_REQUEST_ID_BYTES);
        op->deadline = cl_now(c) + 2 * (uint64_t)c->cfg->election_timeout_ms;
        op->wcb = cb;
        op->ud = ud;
        cl_op_link(c, op);
    }
    if (op == NULL) {
        free(enc); /* answered already */
        return NULL;
    }
    op->enc = enc;
    op->enc_len = enclen;
    op->ttl_ms = ttl_ms;
    op->want_vals = want_vals;
    op->retry_until = cl_now(c) + 2 * (uint64_t)c->cfg->election_timeout_ms;
    return op;
}

/* The sequences (hc_node_write_seq) that may not send a parked write now: those with a write
 * still in flight (grown as needed). */
typedef struct {
    const void **v;
    size_t n, cap;
} seq_set_t;

static int seq_in(const seq_set_t *s, const void *seq)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] == seq) {
            return 1;
        }
    }
    return 0;
}

static void seq_add(seq_set_t *s, const void *seq)
{
    if (seq_in(s, seq)) {
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        const void **v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            return; /* then it is not held back: order as good as before sequences existed */
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = seq;
}

/* Sends the parked writes again once a leader is known (see op_park_for_retry), oldest first.
 * A write of a sequence goes only when no other write of it is in flight, one at a time: its
 * outcome is known before the next one is sent, so a retry never overtakes a later write. */
void cl_retry_parked_writes(cluster_t *c)
{
    if (c->parked == 0) {
        return;
    }
    int leader = c->leader_idx;
    seq_set_t busy = {0};
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->seq != NULL && (op->kind == OP_LEADER_WRITE || op->kind == OP_FWD_WRITE)) {
            seq_add(&busy, op->seq);
        }
    }
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->kind != OP_RETRY_WRITE) {
            continue;
        }
        if (op->seq != NULL && seq_in(&busy, op->seq)) {
            continue;
        }
        if (op->seq != NULL) {
            seq_add(&busy, op->seq); /* the later ones of its sequence wait for its outcome */
        }
        if (cl_now(c) < op->retry_after) {
            continue;
        }
        if (c->role == RAFT_LEADER) {
            hc_dedupe_result_t prev;
            if (hc_fsm_find_request(c->fsm, op->rid, &prev)) {
                cl_op_finish_write(c, op, prev.status, &prev.res);
                continue;
            }
            hc_cmd_decoded_t d;
            if (hc_cmd_decode(op->enc, op->enc_len, HC_CMD_MAX_ENCODED, &d) != 0) {
                cl_op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
                continue;
            }
            d.cmd.expire_at_ms = op->ttl_ms ? hc_wall_ms() + op->ttl_ms : 0;
            uint64_t index = 0, term = 0;
            int rv = leader_propose_write(c, &d.cmd, op->rid, &index, &term);
            int versioned = d.cmd.op == HC_OP_PUT || d.cmd.op == HC_OP_INCR;
            hc_cmd_decoded_free(&d);
            if (rv == HC_EUNAVAILABLE) {
                continue; /* e.g. a transfer under way: stays parked until retry_until */
            }
            if (rv != 0 || op->ack == HC_ACK_LEADER || op->ack == HC_ACK_NONE) {
                hc_apply_result_t r;
                memset(&r, 0, sizeof(r));
                r.version = rv == 0 && versioned ? index : 0;
                op->retry_until = 0; /* answered for real */
                cl_op_finish_write(c, op, rv, &r);
                continue;
            }
            op->index = index;
            op->term = term;
            op->deadline = 0;
            op_set_kind(c, op, OP_LEADER_WRITE);
        } else if (leader >= 0 && leader != c->self && cl_link_up(c, leader)) {
            if (send_fwd(c, leader, op->rid, op->ack, op->ttl_ms, op->enc, op->enc_len) == 0) {
                op_set_kind(c, op, OP_FWD_WRITE);
                op->peer = leader;
            }
        }
    }
    free(busy.v);
}

void cl_on_fwd(cluster_t *c, int peer, const Hacache__ForwardWrite *fw)
{
    if (fw->request_id.len != HC_REQUEST_ID_BYTES) {
        return;
    }
    hc_ack_t ack = fw->ack <= HC_ACK_NONE ? (hc_ack_t)fw->ack : HC_ACK_QUORUM;
    if (c->role != RAFT_LEADER) {
        if (ack != HC_ACK_NONE) {
            send_fwd_result(c, peer, fw->request_id.data, HC_EUNAVAILABLE, 0, NULL);
        }
        return;
    }
    hc_cmd_decoded_t d;
    int rv = hc_cmd_decode(fw->command.data, fw->command.len, HC_CMD_MAX_ENCODED, &d);
    if (rv != 0) {
        if (ack != HC_ACK_NONE) {
            send_fwd_result(c, peer, fw->request_id.data, HC_EINVAL, 0, NULL);
        }
        return;
    }
    if (hc_cmd_proto(&d.cmd) > 2 && !cl_members_speak(c, (uint32_t)hc_cmd_proto(&d.cmd))) {
        if (ack != HC_ACK_NONE) {
            send_fwd_result(c, peer, fw->request_id.data, HC_EUPGRADE, 0, NULL);
        }
        hc_cmd_decoded_free(&d);
        return;
    }
    d.cmd.expire_at_ms = fw->ttl_ms ? hc_wall_ms() + fw->ttl_ms : 0;
    leader_write(c, &d.cmd, fw->request_id.data, ack, peer, NULL, NULL, NULL);
    hc_cmd_decoded_free(&d);
}

void cl_on_fwd_result(cluster_t *c, int peer, const Hacache__ForwardResult *fr)
{
    if (fr->request_id.len != HC_REQUEST_ID_BYTES) {
        return;
    }
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->kind != OP_FWD_WRITE || op->wait_apply ||
            memcmp(op->rid, fr->request_id.data, HC_REQUEST_ID_BYTES) != 0) {
            continue;
        }
        hc_apply_result_t r = {.version = fr->version,
                               .integer = fr->integer,
                               .existed = fr->existed,
                               .removed = fr->removed};
        /* a write with values waits for its own apply whatever its status: the records come
         * from there (a failed condition still has its old value) */
        int applied_there = fr->status == 0 || (op->want_vals && fr->index != 0);
        if (applied_there && op->ack == HC_ACK_QUORUM && c->applied < fr->index) {
            /* read-your-writes on the answering node: wait for the local apply */
            op->wait_apply = 1;
            op->index = fr->index;
            op->res = r;
            op->res_status = fr->status;
            return;
        }
        cl_op_finish_write(c, op, fr->status, &r);
        return;
    }
}

/* ---- reads ---- */

hc_node_op_t *hc_cluster_read(hc_cluster_t *c, const char *cache, size_t cache_len, const void *key,
                              size_t klen, hc_consistency_t consistency, hc_read_cb cb, void *ud)
{
    if (!hc_ql_serving(&c->ql)) {
        cb(ud, HC_EUNAVAILABLE, NULL);
        return NULL;
    }
    if (c->role == RAFT_LEADER && consistency == HC_READ_LEADER) {
        hc_entry_view_t v;
        int rv = hc_store_get(hc_fsm_store(c->fsm), cache, cache_len, key, klen, hc_wall_ms(), &v);
        cb(ud, rv, rv == 0 ? &v : NULL);
        return NULL;
    }
    hc_node_op_t *op = cl_op_new(c->role == RAFT_LEADER ? OP_READ_INDEX : OP_FWD_READ);
    if (op != NULL) {
        op->cache = malloc(cache_len ? cache_len : 1);
        op->key = malloc(klen ? klen : 1);
    }
    if (op == NULL || op->cache == NULL || op->key == NULL) {
        if (op) {
            cl_op_free(op);
        }
        cb(ud, HC_EINTERNAL, NULL);
        return NULL;
    }
    memcpy(op->cache, cache, cache_len);
    op->cache_len = cache_len;
    memcpy(op->key, key, klen);
    op->klen = klen;
    op->rcb = cb;
    op->ud = ud;
    op->ctx = ++c->next_ctx;
    op->linearizable = consistency == HC_READ_LINEARIZABLE;
    op->deadline = cl_now(c) + 2 * (uint64_t)c->cfg->election_timeout_ms;
    if (c->role == RAFT_LEADER) {
        int rv = raft_read_index(c->raft, cl_now(c), op->ctx);
        if (rv != 0) {
            cl_op_free(op);
            cb(ud, HC_EUNAVAILABLE, NULL);
            return NULL;
        }
        cl_kick(c);
        cl_op_link(c, op);
        return op;
    }
    int leader = c->leader_idx;
    if (leader < 0 || leader == c->self || !cl_link_up(c, leader)) {
        cl_op_free(op);
        cb(ud, HC_EUNAVAILABLE, NULL);
        return NULL;
    }
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ReadRequest rq = HACACHE__READ_REQUEST__INIT;
    rq.id = op->ctx;
    rq.read_index = op->linearizable;
    if (!op->linearizable) {
        rq.cache.data = (uint8_t *)op->cache;
        rq.cache.len = cache_len;
        rq.key.data = op->key;
        rq.key.len = klen;
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_READ_REQ;
    pm.read_req = &rq;
    if (cl_send_pm(c, leader, &pm) != 0) {
        cl_op_free(op);
        cb(ud, HC_EUNAVAILABLE, NULL);
        return NULL;
    }
    op->peer = leader;
    cl_op_link(c, op);
    return op;
}

void cl_on_read_req(cluster_t *c, int peer, const Hacache__ReadRequest *rq)
{
    if (c->role != RAFT_LEADER) {
        send_read_resp(c, peer, rq->id, HC_EUNAVAILABLE, 0, NULL);
        return;
    }
    if (!rq->read_index) {
        hc_entry_view_t v;
        int rv = hc_store_get(hc_fsm_store(c->fsm), (const char *)rq->cache.data, rq->cache.len,
                              rq->key.data, rq->key.len, hc_wall_ms(), &v);
        send_read_resp(c, peer, rq->id, rv, 0, rv == 0 ? &v : NULL);
        return;
    }
    hc_node_op_t *op = cl_op_new(OP_READ_INDEX);
    uint64_t ctx = ++c->next_ctx;
    if (op == NULL || raft_read_index(c->raft, cl_now(c), ctx) != 0) {
        free(op);
        send_read_resp(c, peer, rq->id, HC_EUNAVAILABLE, 0, NULL);
        return;
    }
    cl_kick(c);
    /* op->ctx is matched against raft's read ctx; the follower's id goes back in the answer */
    op->ctx = ctx;
    op->remote_peer = peer;
    op->remote_id = rq->id;
    cl_op_link(c, op);
}

void cl_on_read_resp(cluster_t *c, const Hacache__ReadResponse *rr)
{
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->kind != OP_FWD_READ || op->wait_apply || op->ctx != rr->id) {
            continue;
        }
        if (rr->status != 0 && rr->status != HC_ENOTFOUND) {
            cl_op_finish_read(c, op, HC_EUNAVAILABLE);
        } else if (op->linearizable) {
            op->index = rr->read_index;
            if (c->applied >= op->index) {
                cl_op_finish_read(c, op, 0);
            } else {
                op->wait_apply = 1;
            }
        } else {
            cl_op_unlink(c, op);
            if (op->rcb) {
                hc_entry_view_t v = {.data = rr->value.data,
                                     .len = rr->value.len,
                                     .version = rr->version,
                                     .expire_at_ms = rr->expire_at_ms};
                op->rcb(op->ud, rr->status, rr->status == 0 ? &v : NULL);
            }
            cl_op_free(op);
        }
        return;
    }
}

const char *hc_cluster_not_current(const hc_cluster_t *c)
{
    if (c->replaced) {
        return "replaced";
    }
    if (c->raft == NULL || c->discovering) {
        return "discovering";
    }
    if (c->joining) {
        return "joining";
    }
    if (c->recovering) {
        return "recovering";
    }
    if (cl_catching_up(c)) {
        return "catching_up";
    }
    return NULL;
}

void hc_cluster_cancel(hc_cluster_t *c, hc_node_op_t *op)
{
    (void)c;
    op->wcb = NULL;
    op->rcb = NULL;
}
