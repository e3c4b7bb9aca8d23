/* node.h: one hacache node, the single place that owns the store and decides how a request is
 * served: ack levels, read consistency, expiry and eviction, readiness and shutdown state.
 * Adapters (HTTP, later RESP and the embedded API) talk only to this interface. This version is
 * the standalone node; the cluster issue plugs raft and peers in behind the same calls. */
#ifndef HC_NODE_H
#define HC_NODE_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "hacache.h"
#include "store.h"
#include "util.h"

typedef struct hc_node hc_node_t;

typedef enum { HC_READ_LOCAL = 0, HC_READ_LEADER, HC_READ_LINEARIZABLE } hc_consistency_t;

/* Outcome of a write: status 0 or HC_E*; res valid only during the callback. */
typedef void (*hc_write_cb)(void *ud, int status, const hc_apply_result_t *res);

typedef struct {
    const char *role; /* "standalone", later "leader" / "follower" / "candidate" */
    uint64_t term;
    int quorum;                   /* in contact with a quorum */
    int ready;                    /* can serve */
    const char *not_ready_reason; /* when !ready */
    uint64_t commit_index, applied_index;
} hc_node_status_t;

/* Creates the node on `loop`. cfg is borrowed and must outlive the node. NULL on OOM. */
hc_node_t *hc_node_new(uv_loop_t *loop, const hc_config_t *cfg);
/* Starts the node's timers (active expiry). 0 or HC_E*. */
int hc_node_start(hc_node_t *n);
/* Marks the node as stopping: /readyz turns 503. Requests in flight still complete. */
void hc_node_begin_shutdown(hc_node_t *n);
/* Closes every handle of the node; cb runs once they are all closed (on a later loop turn). */
void hc_node_close(hc_node_t *n, void (*cb)(void *ud), void *ud);
/* Frees a closed node (or one that was never started). */
void hc_node_free(hc_node_t *n);

/* Submits a write (PUT, DEL, INCR, CLEAR, CACHE_CONFIG). cmd is borrowed for the call;
 * cmd->expire_at_ms is ignored: ttl_ms (0 = none / the cache default) is turned into an
 * absolute instant by the node that orders the write. cb is called exactly once, possibly
 * before hc_node_write returns. */
void hc_node_write(hc_node_t *n, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb,
                   void *ud);

/* Reads one key at the given consistency. The view is valid until control returns to the loop
 * (copy it before). 0, HC_ENOTFOUND or HC_EUNAVAILABLE. */
int hc_node_read(hc_node_t *n, const char *cache, size_t cache_len, const void *key, size_t klen,
                 hc_consistency_t consistency, hc_entry_view_t *out);

void hc_node_status(hc_node_t *n, hc_node_status_t *out);
hc_store_t *hc_node_store(hc_node_t *n);
/* Name of this node (host:port) for status and logs. */
const char *hc_node_name(hc_node_t *n);

/* Appends the node's metric families (hacache_up, raft, quorum, caches) in Prometheus text. */
void hc_node_render_metrics(hc_node_t *n, hc_buf_t *out);

#endif
