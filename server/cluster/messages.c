/* messages.c: peer events: a link up or down and every frame in, decoded and dispatched to the
 * module that handles it. */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A protocol 1 peer (a build from before raft ids per incarnation) takes part only under its
 * host's legacy id. When the configuration holds another id for its host instead (a cluster a
 * protocol 2 or later build founded, a host that rejoined as a new incarnation: a downgrade
 * that is not supported), it links up and stays outside, unready, and its own log cannot say
 * why: this node says it, once per link. Legacy ids of other hosts that share the tag (a rare
 * collision, cluster.c) are not taken for its host. */
static void warn_if_v1_peer_left_out(cluster_t *c, int peer, uint32_t version)
{
    if (version >= 2 || c->raft == NULL || c->discovering) {
        return;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    uint64_t legacy = hc_node_id_of(c->names[peer]);
    uint64_t other = 0;
    for (uint32_t i = 0; i < st.members.n; i++) {
        uint64_t id = st.members.m[i].id;
        if (id == legacy) {
            return; /* a member under its legacy id: it takes part (a rollback) */
        }
        if ((id >> 48) != (legacy >> 48)) {
            continue;
        }
        int someone_elses = 0;
        for (size_t j = 0; j < c->npeers && !someone_elses; j++) {
            someone_elses = c->names[j][0] != '\0' && hc_node_id_of(c->names[j]) == id;
        }
        if (!someone_elses) {
            other = id;
        }
    }
    if (other != 0) {
        char hex[17];
        hc_log(HC_LOG_WARN,
               "a protocol 1 peer (an older hacache build) cannot take part in this cluster: "
               "it knows only its legacy raft id, and the configuration holds its host under "
               "a newer incarnation id; downgrading below protocol 2 is supported only for a "
               "cluster a protocol 1 build created (README: Rolling upgrade and downgrade); "
               "start the current build on that node again",
               HC_LS("peer", c->names[peer]), HC_LS("member", cl_id_hex(other, hex)));
    }
}

void cl_on_peer_up(cluster_t *c, int peer, uint32_t version)
{
    if (cl_peer_known(c, peer)) {
        c->last_frame[peer] = cl_now(c);
        c->proto_seen[peer] = version;
        warn_if_v1_peer_left_out(c, peer, version);
        if (c->discovering || c->joining) {
            cl_send_info_req(c, peer);
        }
        cl_send_time(c, peer, hc_wall_ms(), 0);
    }
    cl_kick(c);
}

void cl_on_peer_down(cluster_t *c, int peer, const char *reason)
{
    (void)reason;
    if (cl_peer_known(c, peer) && c->tx != NULL) {
        if (c->tx[peer].active) {
            cl_snap_tx_end(c, peer, 0, "link down");
        }
        c->tx[peer].hold_index = 0; /* what was queued on that link is gone */
    }
    if (c->rx.active && c->rx.peer == peer) {
        cl_snap_rx_reset(c);
    }
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->peer != peer || op->wait_apply) {
            continue;
        }
        if (op->kind == OP_FWD_WRITE) {
            cl_op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->kind == OP_FWD_READ) {
            cl_op_finish_read(c, op, HC_EUNAVAILABLE);
        }
    }
}

void cl_on_peer_frame(cluster_t *c, int peer, const uint8_t *data, size_t len)
{
    if (c->closing || !cl_peer_known(c, peer)) {
        return;
    }
    c->last_frame[peer] = cl_now(c);
    Hacache__PeerMessage *pm = hacache__peer_message__unpack(NULL, len, data);
    if (pm == NULL) {
        hc_log(HC_LOG_WARN, "undecodable peer message dropped", HC_LS("peer", c->names[peer]));
        return;
    }
    switch (pm->body_case) {
    case HACACHE__PEER_MESSAGE__BODY_RAFT: {
        hc_raft_msg_decoded_t d;
        if (hc_raft_msg_from_pb(pm->raft, &d) == 0) {
            if (d.lifetime != 0 && c->lifetime != 0 && d.lifetime != c->lifetime) {
                /* another cluster lifetime (a rival founding, a survivor of a dead one): its
                 * votes and entries must never mix with this one's */
                cl_other_lifetime(c, peer, d.msg.from, d.lifetime);
            } else if (cl_peer_of_id(c, d.msg.from) == peer) {
                cl_heard_id(c, peer, d.msg.from);
                cl_heard_lifetime(c, peer, d.msg.from, d.lifetime);
                if (c->raft != NULL) {
                    raft_step(c->raft, cl_now(c), &d.msg);
                }
                cl_kick(c);
            }
            free(d.entries);
        }
        break;
    }
    case HACACHE__PEER_MESSAGE__BODY_FWD:
        cl_on_fwd(c, peer, pm->fwd);
        break;
    case HACACHE__PEER_MESSAGE__BODY_FWD_RESULT:
        cl_on_fwd_result(c, peer, pm->fwd_result);
        break;
    case HACACHE__PEER_MESSAGE__BODY_READ_REQ:
        cl_on_read_req(c, peer, pm->read_req);
        break;
    case HACACHE__PEER_MESSAGE__BODY_READ_RESP:
        cl_on_read_resp(c, pm->read_resp);
        break;
    case HACACHE__PEER_MESSAGE__BODY_SNAPSHOT:
        cl_on_snapshot_chunk(c, peer, pm->snapshot);
        break;
    case HACACHE__PEER_MESSAGE__BODY_INFO_REQ:
        if (pm->info_req->raft_id != 0) {
            cl_heard_id(c, peer, pm->info_req->raft_id);
        }
        cl_send_cluster_info(c, peer);
        break;
    case HACACHE__PEER_MESSAGE__BODY_INFO:
        cl_on_cluster_info(c, peer, pm->info);
        break;
    case HACACHE__PEER_MESSAGE__BODY_JOIN:
        cl_on_join_request(c, peer, pm->join);
        break;
    case HACACHE__PEER_MESSAGE__BODY_NOT_LISTED:
        cl_on_not_listed(c, peer, pm->not_listed);
        break;
    case HACACHE__PEER_MESSAGE__BODY_OFFER:
        cl_on_bootstrap_offer(c, peer, pm->offer);
        break;
    case HACACHE__PEER_MESSAGE__BODY_TIME:
        cl_on_time_sync(c, peer, pm->time);
        break;
    default:
        break;
    }
    hacache__peer_message__free_unpacked(pm, NULL);
}
