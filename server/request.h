/* request.h: the request vocabulary shared by the node's front door (node.h) and cluster mode
 * (cluster/cluster.h): read consistency, answer callbacks, the handle of a request in flight,
 * and the status a node reports. */
#ifndef HC_REQUEST_H
#define HC_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "hacache.h" /* hc_consistency_t */
#include "store/store.h"

/* Outcome of a write: status 0 or HC_E*; res valid only during the callback. */
typedef void (*hc_write_cb)(void *ud, int status, const hc_apply_result_t *res);
/* Outcome of a read: 0, HC_ENOTFOUND, HC_EUNAVAILABLE, HC_ETIMEDOUT; view valid only during
 * the callback (NULL unless status is 0). */
typedef void (*hc_read_cb)(void *ud, int status, const hc_entry_view_t *view);

/* A request still in flight inside the node (a write waiting for its ack level, a read waiting
 * for the leader). Owned by the node; valid until its callback runs or hc_node_cancel. */
typedef struct hc_node_op hc_node_op_t;

#define HC_NODE_MAX_PEERS 32

typedef struct {
    const char *node;        /* host:port */
    int connected;           /* authenticated link up */
    int64_t last_contact_ms; /* ms since the last frame from it, -1: never */
    int has_match;           /* match_index known (this node leads) */
    uint64_t match_index;
    uint32_t protocol_version; /* 0 when not connected */
    int has_clock;             /* a clock comparison with it completed */
    int64_t clock_offset_ms;   /* its wall clock minus mine (NTP-style estimate) */
    uint64_t clock_rtt_ms;     /* round trip of that comparison */
} hc_node_peer_status_t;

typedef struct {
    const char *role; /* "standalone", "leader", "follower" or "candidate" */
    uint64_t term;
    int quorum;                   /* in contact with a quorum */
    int ready;                    /* can serve */
    const char *not_ready_reason; /* when !ready */
    uint64_t commit_index, applied_index;
    const char *leader; /* host:port of the leader, NULL when unknown (or standalone) */
    uint64_t leader_changes;
    size_t n_peers; /* cluster mode: every other HA_HOSTS entry */
    hc_node_peer_status_t peers[HC_NODE_MAX_PEERS];
    size_t n_members; /* cluster mode: the raft configuration this node knows */
    struct {
        const char *node; /* host:port, "unknown" for an id no link names */
        const char *role; /* "voter" / "learner" */
    } members[HC_NODE_MAX_PEERS];
    int members_committed;
} hc_node_status_t;

#endif
