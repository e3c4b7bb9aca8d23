/* node.h: one hacache node, the front door every adapter talks to (HTTP, RESP, and later the
 * embedded API): it owns the replicated state machine (fsm.h) and decides how a request is
 * served: ack levels, read consistency, expiry and eviction, readiness and shutdown state.
 * Standalone (HA_MODE=false) the node applies writes itself; in cluster mode
 * (cluster/cluster.h) it drives the raft core (raft/) over the peer links and replicates every
 * write through the log. Adapters never reach the store, raft or the peer links directly.
 * Threads: a node and everything it owns live on the loop thread that created it; call it only
 * from that thread. */
#ifndef HC_NODE_H
#define HC_NODE_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "request.h"
#include "hacache.h"
#include "store/store.h"
#include "util.h"

typedef struct hc_node hc_node_t;

/* Creates the node on `loop`. cfg is borrowed and must outlive the node. NULL on OOM. */
hc_node_t *hc_node_new(uv_loop_t *loop, const hc_config_t *cfg);
/* Starts the node's timers (active expiry); in cluster mode also prepares CACHE_DATA_DIR, loads
 * the raft hard state, creates raft and starts the peer links. 0; HC_EINVAL for a configuration
 * problem found only now (CACHE_DATA_DIR not writable, TLS material), after printing one line
 * naming the variable to stderr (the caller exits 2); other HC_E* for runtime failures. */
int hc_node_start(hc_node_t *n);
/* Marks the node as stopping: /readyz turns 503. Requests in flight still complete. */
void hc_node_begin_shutdown(hc_node_t *n);
/* Cluster mode: if this node leads, hands leadership to the most up-to-date follower and calls
 * cb once leadership moved or about one election timeout passed; otherwise (and standalone)
 * cb runs on the next loop turn. */
void hc_node_handover(hc_node_t *n, void (*cb)(void *ud), void *ud);
/* Closes every handle of the node; cb runs once they are all closed (on a later loop turn). */
void hc_node_close(hc_node_t *n, void (*cb)(void *ud), void *ud);
/* Frees a closed node (or one that was never started). */
void hc_node_free(hc_node_t *n);

/* Submits a write (PUT, DEL, INCR, CLEAR, CACHE_CONFIG). cmd is borrowed for the call;
 * cmd->expire_at_ms is ignored: ttl_ms (0 = none / the cache default) is turned into an
 * absolute instant by the node that orders the write. cb is called exactly once (unless the op
 * is cancelled), possibly before hc_node_write returns: then NULL is returned; otherwise the
 * returned op may be passed to hc_node_cancel until cb runs.
 * Cluster mode: the leader proposes; a follower forwards to the leader. Ack levels (SPEC §3):
 * quorum = committed and applied on this node; once = on the leader and one follower;
 * leader = appended on the leader; none = accepted. HC_EUNAVAILABLE when no leader is known,
 * HC_EUNKNOWN_OUTCOME when the leader changed or the link dropped with the write in flight,
 * HC_ETIMEDOUT after two election timeouts without an answer. Versions reported for `leader`
 * and `once` are the log index of the write; INCR's value is only known with `quorum`. */
hc_node_op_t *hc_node_write(hc_node_t *n, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack,
                            hc_write_cb cb, void *ud);
/* hc_node_write for a sequence of writes that must take effect in the order they are submitted
 * (a RESP connection's pipeline): writes with the same non-NULL `seq` are proposed or forwarded
 * in submission order, and after a leader change one is sent again only once every earlier
 * write of its sequence has its outcome, so a retried "SET k 1" never lands after a later
 * "SET k 2". */
hc_node_op_t *hc_node_write_seq(hc_node_t *n, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack,
                                const void *seq, hc_write_cb cb, void *ud);
/* hc_node_write with the caller's request id (hc_node_write draws a random one). The id travels
 * with the write (forwarding, the log) and the node that orders it remembers the last ids it
 * applied with their outcome: a write whose id was applied already is not applied again, cb gets
 * the first outcome (SPEC §3 "Retried writes carrying the same request id are applied once"). */
hc_node_op_t *hc_node_write_rid(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud);

/* Reads one key at the given consistency: local reads answer before returning (NULL), leader
 * and linearizable reads may wait for the leader (returns the op, see hc_node_write). */
hc_node_op_t *hc_node_read_async(hc_node_t *n, const char *cache, size_t cache_len, const void *key,
                                 size_t klen, hc_consistency_t consistency, hc_read_cb cb,
                                 void *ud);

/* Cluster mode, POST /v1/admin/leader/transfer: this node, if it leads, hands leadership to the
 * voter named `to` (host:port; NULL or "": the most up-to-date one) and cb runs once it no
 * longer leads and knows the new leader (0), or with HC_ETIMEDOUT after about one election
 * timeout. Immediate answers
 * (cb before the call returns, NULL returned): HC_EUNAVAILABLE when this node is not the leader
 * (or standalone), HC_ENOTFOUND when `to` is not an up-to-date voter, HC_EINVAL when `to` is
 * this node, HC_EBUSY while another transfer runs. The op can be cancelled like a write. */
hc_node_op_t *hc_node_transfer(hc_node_t *n, const char *to, hc_write_cb cb, void *ud);

/* Cluster mode, POST /v1/admin/members/{add,remove}?node=host:port: on the leader, proposes one
 * membership change and cb runs once it is committed and applied here (0). add puts a node of
 * my HA_HOSTS in as a learner (promoted automatically once caught up); remove takes any member
 * out (the leader itself: it steps down once the change commits). Immediate answers:
 * HC_EUNAVAILABLE not the leader (or standalone), or the leader but the new configuration would
 * not have a majority of caught-up voters it hears from (raft's RAFT_ENOQUORUM: retry later),
 * HC_EINVAL add of a node not in my HA_HOSTS
 * (the leader would remove it again) or a change that does not fit the configuration,
 * HC_EBUSY another change is pending, HC_ENOTFOUND remove of a non-member. */
hc_node_op_t *hc_node_member_change(hc_node_t *n, int add, const char *node, hc_write_cb cb,
                                    void *ud);

/* Detaches the callback of an op still in flight: it will never be called. The write itself
 * may still happen. */
void hc_node_cancel(hc_node_t *n, hc_node_op_t *op);

/* Reads one key from this node's store (consistency local; other consistencies are served
 * locally only standalone, HC_EUNAVAILABLE in cluster mode: use hc_node_read_async). The view
 * is valid until control returns to the loop (copy it before). 0, HC_ENOTFOUND or
 * HC_EUNAVAILABLE. */
int hc_node_read(hc_node_t *n, const char *cache, size_t cache_len, const void *key, size_t klen,
                 hc_consistency_t consistency, hc_entry_view_t *out);

/* SCAN: one step of a cursor iteration over the keys of one cache in this node's store
 * (hc_store_scan: cursor 0 starts, *next 0 ends; up to about `count` entries examined), read
 * locally whatever consistency the caller uses otherwise; expiry is judged by this node's clock.
 * In cluster mode the rule of local reads applies (hc_cluster_local_read_ok): HC_EUNAVAILABLE
 * while the node is not current, or after quorum loss for caches that do not serve stale data.
 * Returns 0 (cb called for each key) or HC_EUNAVAILABLE (*next = 0, cb not called). */
int hc_node_scan(hc_node_t *n, const char *cache, size_t cache_len, uint64_t cursor, size_t count,
                 hc_scan_cb cb, void *ud, uint64_t *next);

/* 1 when the local read being answered (inside its hc_read_cb, or right after hc_node_read)
 * came from data this node kept after losing quorum (a serve_stale cache, SPEC §3). */
int hc_node_read_stale(hc_node_t *n);

void hc_node_status(hc_node_t *n, hc_node_status_t *out);

/* Per-cache numbers for /v1/caches: cb runs once per cache (the store's order); digest is the
 * cache's content digest (HC_DIGEST_BYTES, valid during cb) when want_digest, else NULL
 * (computing it is O(entries)). */
typedef void (*hc_node_cache_cb)(void *ud, const char *name, size_t name_len,
                                 const hc_cache_settings_t *settings, const hc_cache_stats_t *stats,
                                 const uint8_t *digest);
void hc_node_foreach_cache(hc_node_t *n, int want_digest, hc_node_cache_cb cb, void *ud);
/* Accounted bytes of all caches, and CACHE_MAX_MEMORY. */
void hc_node_memory(hc_node_t *n, uint64_t *used, uint64_t *max);
/* Name of this node (host:port) for status and logs. */
const char *hc_node_name(hc_node_t *n);
/* Cluster mode: the peer link layer (NULL standalone or before hc_node_start), for credential
 * reloads (hc_peers_set_tls and friends). Owned by the node. */
struct hc_peers;
struct hc_peers *hc_node_peers(hc_node_t *n);

/* Appends the node's metric families (hacache_up, raft, quorum, caches) in Prometheus text. */
void hc_node_render_metrics(hc_node_t *n, hc_buf_t *out);

#endif
