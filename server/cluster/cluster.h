/* cluster.h: cluster mode (HA_MODE=true) behind the node's front door (node.c): the node hands
 * it the configuration and the replicated state machine, and calls these for every request
 * while cluster mode runs. Raft (raft/) orders every write; the peer links carry raft messages,
 * forwarded writes and reads, and snapshots. Loop thread only. The calls mirror node.h's, whose
 * comments give the contracts; what differs is said here. */
#ifndef HC_CLUSTER_H
#define HC_CLUSTER_H

#include <stdint.h>

#include "config.h"
#include "fsm.h"
#include "hacache.h"
#include "request.h"
#include "util.h"

typedef struct hc_cluster hc_cluster_t;
struct uv_loop_s;
struct hc_peers;

/* Creates cluster mode on `loop` for `cfg` (borrowed) and `fsm` (borrowed: the node owns it;
 * cluster mode applies the log to it and replaces its content on snapshots). 0, HC_ENOMEM or
 * HC_EINVAL (my host not in HA_HOSTS, too many hosts). */
int hc_cluster_new(struct uv_loop_s *loop, const hc_config_t *cfg, hc_fsm_t *fsm,
                   hc_cluster_t **out);
/* Prepares CACHE_DATA_DIR, loads the raft state (or starts discovering), starts the peer links.
 * 0, HC_EINVAL (configuration problem found only now, one line printed to stderr), HC_EINTERNAL. */
int hc_cluster_start(hc_cluster_t *c);
/* The node's periodic tick (CACHE_EXPIRY_INTERVAL_MS): membership and clock steps, request
 * deadlines, parked retries, and (leader) the next batch of EXPIRE proposals. */
void hc_cluster_tick(hc_cluster_t *c);
/* Drops every request still in flight (without answers) and closes every handle; cb once
 * closed (possibly before the call returns). */
void hc_cluster_close(hc_cluster_t *c, void (*cb)(void *ud), void *ud);
void hc_cluster_free(hc_cluster_t *c);

const char *hc_cluster_name(const hc_cluster_t *c); /* my HA_HOSTS entry, host:port */
struct hc_peers *hc_cluster_peers(hc_cluster_t *c); /* NULL before start */

/* seq: see hc_node_write_seq (NULL: no order with other writes). */
hc_node_op_t *hc_cluster_write(hc_cluster_t *c, const hc_cmd_t *cmd, const uint8_t rid[16],
                               uint64_t ttl_ms, hc_ack_t ack, const void *seq, hc_write_cb cb,
                               void *ud);
/* Leader and linearizable reads (local reads: hc_cluster_local_read). */
hc_node_op_t *hc_cluster_read(hc_cluster_t *c, const char *cache, size_t cache_len, const void *key,
                              size_t klen, hc_consistency_t consistency, hc_read_cb cb, void *ud);
/* A local read; *stale = 1 when it came from a serve_stale cache kept after quorum loss.
 * HC_EUNAVAILABLE while the node is not current (hc_cluster_not_current): it would answer
 * "not found" or an old value for keys the cluster holds. */
int hc_cluster_local_read(hc_cluster_t *c, const char *cache, size_t cache_len, const void *key,
                          size_t klen, hc_entry_view_t *out, int *stale);
/* Whether a local read of `cache` may be answered now (hc_cluster_local_read's rule, for reads
 * of more than one key such as SCAN): 0, with *stale = 1 when the answer would come from a
 * serve_stale cache kept after quorum loss, or HC_EUNAVAILABLE. */
int hc_cluster_local_read_ok(hc_cluster_t *c, const char *cache, size_t cache_len, int *stale);
/* Why local reads are refused now: "discovering", "joining", "recovering" (restarted, the
 * leader has not caught it up yet) or "catching_up" (applied < commit heard, e.g. a snapshot
 * being staged); NULL when the node is current. */
const char *hc_cluster_not_current(const hc_cluster_t *c);
void hc_cluster_cancel(hc_cluster_t *c, hc_node_op_t *op);
void hc_cluster_handover(hc_cluster_t *c, void (*cb)(void *ud), void *ud);
hc_node_op_t *hc_cluster_transfer(hc_cluster_t *c, const char *to, hc_write_cb cb, void *ud);
hc_node_op_t *hc_cluster_member_change(hc_cluster_t *c, int add, const char *node, hc_write_cb cb,
                                       void *ud);

void hc_cluster_status(hc_cluster_t *c, int shutting_down, hc_node_status_t *out);
uint64_t hc_cluster_invalidations(const hc_cluster_t *c);
/* The cluster's own metric families (log, snapshots, retries, members). */
void hc_cluster_render_metrics(hc_cluster_t *c, hc_buf_t *out);

/* Raft id of an HA_HOSTS entry: the first 8 bytes (little endian) of
 * BLAKE2b("hacache-node-id-v1" || lowercase host:port); never 0. */
uint64_t hc_node_id_of(const char *hostport);

#endif
