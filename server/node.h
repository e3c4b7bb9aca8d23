/* node.h: one hacache node, the single place that owns the store and decides how a request is
 * served: ack levels, read consistency, expiry and eviction, readiness and shutdown state.
 * Adapters (HTTP, later RESP and the embedded API) talk only to this interface. Standalone
 * (HA_MODE=false) the node applies writes directly; in cluster mode it drives the raft core
 * (raft/), owns the peer links (peer.h) and replicates every write through the log. */
#ifndef HC_NODE_H
#define HC_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "hacache.h"
#include "raft.h"
#include "store.h"
#include "util.h"

typedef struct hc_node hc_node_t;

typedef enum { HC_READ_LOCAL = 0, HC_READ_LEADER, HC_READ_LINEARIZABLE } hc_consistency_t;

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
    const char *role; /* "standalone", later "leader" / "follower" / "candidate" */
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
hc_store_t *hc_node_store(hc_node_t *n);
/* Name of this node (host:port) for status and logs. */
const char *hc_node_name(hc_node_t *n);
/* Cluster mode: the peer link layer (NULL standalone or before hc_node_start), for credential
 * reloads (hc_peers_set_tls and friends). Owned by the node. */
struct hc_peers;
struct hc_peers *hc_node_peers(hc_node_t *n);

/* ---- pieces of the cluster glue, exported for unit tests ---- */

/* Raft id of an HA_HOSTS entry: the first 8 bytes (little endian) of
 * BLAKE2b("hacache-node-id-v1" || lowercase host:port); never 0. */
uint64_t hc_node_id_of(const char *hostport);

/* The hard state file: dir/raft-<host>_<port>.state (characters other than [A-Za-z0-9.-] in the
 * host become '_'). 0 or HC_ETOOLARGE. */
int hc_hardstate_path(const char *dir, const char *host, uint16_t port, char *out, size_t cap);
/* Writes (term, vote, novote) durably: temp file, fsync, rename, fsync of the directory. 0 or
 * HC_EINTERNAL (errno kept). novote (raft_hard_state_t: this id once started without its hard
 * state and never votes again) is an extra line "novote 1" that older versions ignore. */
int hc_hardstate_save(const char *path, uint64_t term, uint64_t vote, bool novote);
/* 0 with *term, *vote, *novote; HC_ENOTFOUND when the file does not exist; HC_EINVAL when it is
 * corrupt; HC_EINTERNAL when it cannot be read. */
int hc_hardstate_load(const char *path, uint64_t *term, uint64_t *vote, bool *novote);

/* The committed configuration file, next to the hard state file (path + ".members"): the raft
 * configuration this node last saw committed, the commit index it saw it in effect at and the
 * epoch of that log (raft_start_t.members, members_index, members_epoch). Text:
 *   hacache raft members v1 / index N / epoch E / one "voter <id hex>" or "learner <id hex>"
 *   line per member (at most RAFT_MAX_MEMBERS).
 * Written durably like the hard state; 0 or HC_EINTERNAL. */
int hc_members_save(const char *path, uint64_t index, uint64_t epoch, const raft_members_t *m);
/* 0 with the fields; HC_ENOTFOUND when absent; HC_EINVAL when corrupt or when it names more
 * members than a configuration holds; HC_EINTERNAL when it cannot be read. */
int hc_members_load(const char *path, uint64_t *index, uint64_t *epoch, raft_members_t *m);

/* The apply-side request-id window: the last `cap` request ids applied, with their outcome, so a
 * retried write is applied once. Deterministic: every replica applies the same log, so every
 * replica holds the same window. */
typedef struct hc_dedupe hc_dedupe_t;
typedef struct {
    uint64_t index; /* log index where the request was applied */
    int status;
    hc_apply_result_t res;
} hc_dedupe_result_t;
hc_dedupe_t *hc_dedupe_new(size_t cap);
void hc_dedupe_free(hc_dedupe_t *d);
void hc_dedupe_clear(hc_dedupe_t *d);
/* 1 with *out when id is in the window, else 0. */
int hc_dedupe_find(const hc_dedupe_t *d, const uint8_t id[16], hc_dedupe_result_t *out);
/* Records id (the oldest id leaves the window when it is full). */
void hc_dedupe_add(hc_dedupe_t *d, const uint8_t id[16], const hc_dedupe_result_t *r);

/* The window as bytes (oldest id first): count(u32) then per id: id(16) index(u64)
 * status(i32) version(u64) integer(i64) existed(i32) removed(u64), little endian. */
void hc_dedupe_serialize(const hc_dedupe_t *d, hc_buf_t *out);
/* Replaces d's content with a serialized window. 0 or HC_EINVAL (malformed, or more ids than
 * d holds); on error d is left empty. */
int hc_dedupe_load(hc_dedupe_t *d, const void *buf, size_t len);

/* A node snapshot (what the leader streams to a follower that needs one): "HCNS" version(1)
 * store_len(u64) store snapshot (hc_store_serialize) window_len(u64) hc_dedupe_serialize. */
void hc_node_snapshot_encode(hc_store_t *s, const hc_dedupe_t *d, hc_buf_t *out);
/* Loads a node snapshot into an empty store and a window. 0, HC_EINVAL or HC_ENOMEM. */
int hc_node_snapshot_decode(const void *buf, size_t len, hc_store_t *s, hc_dedupe_t *d);

/* Appends the node's metric families (hacache_up, raft, quorum, caches) in Prometheus text. */
void hc_node_render_metrics(hc_node_t *n, hc_buf_t *out);

#endif
