/* cluster_int.h: the internal state of cluster mode, shared by the server/cluster/ modules (not
 * part of any interface). One concern per file:
 *   cluster.c     lifecycle (new, start, close, free) and the periodic tick
 *   drive.c       driving raft: feeding events, processing each update, applying the log
 *   requests.c    requests in flight: proposals, forwarding, ack levels, parked retries, reads
 *   snapshot.c    log compaction and snapshot transfers (leader side and follower side)
 *   quorum.c      quorum loss: contact, the deadline, invalidation, holds after a suspension,
 *                 local reads (the state: quorum_state.h)
 *   discovery.c   discovery, majority bootstrap, joining, starting over (no majority left)
 *   membership.c  reconciling with HA_HOSTS, transfer and handover
 *   slots.c       peer slots with their raft ids, names and peers' versions; the evidence of
 *                 who answers for a host; sending a peer message (and TimeSync) to one
 *   datadir.c     the files in CACHE_DATA_DIR (hard state, committed configuration)
 *   messages.c    peer message dispatch (links up / down, frames in)
 *   status.c      clock skew, /v1/status and metrics of the cluster
 *   io_uv.c       the one binding to libuv and the peer links (cl_io_t below)
 * Everything runs on the node's loop thread. */
#ifndef HC_CLUSTER_INT_H
#define HC_CLUSTER_INT_H

#include <stdint.h>

#include "cluster.h"
#include "codec.h"
#include "config.h"
#include "fsm.h"
#include "hacache.pb-c.h"
#include "quorum_state.h"
#include "incarnation.h"
#include "raft.h"
#include "util.h"

#define RETRY_PAUSE_MS     20     /* a parked write refused by a former leader waits this long */
#define CL_MAX_LOG_ENTRIES 65536u /* raft refuses proposals (EFULL) beyond */
#define CL_MAX_LOG_BYTES   ((uint64_t)256 << 20) /* ... or this many retained data bytes */
/* Compaction: after applying, when the retained log holds more than COMPACT_ENTRIES entries
 * the log is cut at applied - COMPACT_KEEP (the tail stays for followers that lag a little);
 * when it holds more than COMPACT_BYTES data bytes it is cut at applied. Nothing has to be
 * captured at the cut: a snapshot is always taken from the live store at the applied index,
 * which is >= every cut. HACACHE_TEST_COMPACT_ENTRIES (tests only) lowers COMPACT_ENTRIES
 * (COMPACT_KEEP becomes a fifth of it). */
#define COMPACT_ENTRIES 10000u
#define COMPACT_KEEP    2000u

typedef struct hc_cluster cluster_t;

/* Timers the binding runs for the cluster, each firing one entry point (io_uv.c on_timer). */
typedef enum {
    CL_TIMER_RAFT = 0, /* raft's next deadline (one shot) */
    CL_TIMER_SNAP,     /* snapshot pump while a transfer waits for its link (repeating) */
    CL_TIMER_HANDOVER, /* the handover's time limit (one shot) */
    CL_TIMER_QUORUM,   /* the quorum-loss check (repeating) */
    CL_TIMER_COUNT
} cl_timer_t;

/* Transport and clock: everything cluster code needs from the outside world, bound to libuv and
 * the peer links by io_uv.c (a simulator can bind it to virtual time and an in-memory network).
 * Peers are slots: my HA_HOSTS entries first, then peers that only list me. */
typedef struct snap_load snap_load_t; /* below */

typedef struct {
    void *ud;
    uint64_t (*now)(void *ud); /* monotonic ms (the loop's clock) */
    /* run cl_process on a later loop turn (events of one turn share one raft update) */
    void (*kick)(void *ud);
    void (*timer_start)(void *ud, cl_timer_t t, uint64_t delay_ms, uint64_t repeat_ms);
    void (*timer_stop)(void *ud, cl_timer_t t);
    int (*timer_active)(void *ud, cl_timer_t t);
    /* 0, HC_EBUSY (queue full), HC_ETOOLARGE, HC_EUNAVAILABLE (no link) */
    int (*send)(void *ud, int peer, const uint8_t *buf, size_t len);
    int (*is_up)(void *ud, int peer);             /* authenticated link up */
    size_t (*queued)(void *ud, int peer);         /* bytes waiting on the link */
    const char *(*peer_name)(void *ud, int peer); /* host:port, NULL unknown slot */
    uint32_t (*peer_version)(void *ud, int peer); /* protocol version, 0 down */
    /* ms by which the loop's current wait for events overran its timeout (the process did
     * not run: SIGSTOP, a frozen container or VM), 0 when it did not */
    uint64_t (*overslept)(void *ud);
    /* Encodes the state machine for the transfer to `peer` in a child process (fork: the store
     * as it is now, copy-on-write), so the loop never stops for it: cl_snap_bytes for every
     * piece read back, then cl_snap_encoded once. 0, or an error (the caller encodes inline). */
    int (*encode_bg)(void *ud, int peer);
    void (*encode_cancel)(void *ud, int peer); /* kills the child; no callback afterwards */
    /* Runs cl_snap_load_run(job) on a worker thread, then cl_snap_loaded on the loop (never
     * after the binding was asked to close: it waits for the worker instead). 0, or an error
     * (the caller loads inline). */
    int (*load_bg)(void *ud, snap_load_t *job);
} cl_io_t;

typedef struct {
    int active;
    int encoding;  /* a child process is still encoding it (cl_io_t.encode_bg); data grows */
    uint8_t *data; /* the node snapshot (so far), owned */
    raft_id_t to;  /* the follower's raft id (its incarnation) */
    size_t len, off, cap;
    uint64_t index, term, leader_term;
    uint8_t *members; /* raft_members_encode(), owned */
    size_t members_len;
    uint64_t started_ns;
    /* kept across transfers: compaction stays at or below hold_index until the follower
     * acknowledged it or hold_until (loop ms) passed, so the entries after a snapshot are still
     * there when the follower asks for them */
    uint64_t hold_index, hold_until;
} snap_tx_t;

/* Follower side: the snapshot being staged. */
typedef struct {
    int active;
    int peer;
    uint64_t index, term, leader_term;
    hc_buf_t buf;
    uint8_t *members;
    size_t members_len;
    uint64_t started_ns;
} snap_rx_t;

/* Follower side: a staged snapshot being loaded into a fresh state machine (cl_io_t.load_bg
 * runs hc_fsm_snapshot_load off the loop, so heartbeats, probes and clients are answered
 * meanwhile). Owned by the cluster (c->loading) from the last chunk until cl_snap_loaded. */
struct snap_load {
    const hc_fsm_t *limits; /* c->fsm: only its limits are read (they never change) */
    hc_buf_t buf;           /* the snapshot */
    uint8_t *members;
    size_t members_len;
    int peer;
    uint64_t index, term, leader_term, started_ns, load_ns;
    int stale;       /* raft was dropped meanwhile (start over): the result is discarded */
    int rv;          /* hc_fsm_snapshot_load's answer */
    hc_fsm_t *fresh; /* ... and its state machine, when 0 */
};

typedef enum {
    OP_LEADER_WRITE = 1, /* proposed here, waiting for its ack level (local or for a follower) */
    OP_FWD_WRITE,        /* forwarded to the leader, waiting for ForwardResult */
    OP_FWD_READ,         /* leader read or ReadIndex request sent to the leader */
    OP_READ_INDEX,       /* raft_read_index on this (leader) node, ctx = op->ctx */
    OP_RETRY_WRITE,      /* a local write whose fate became unknown, parked until a leader is
                            known; sent again with its request id (retry_parked_writes) */
    OP_TRANSFER,         /* admin leadership transfer: answered once this node stops leading */
} op_kind_t;

struct hc_node_op {
    struct hc_node_op *prev, *next;
    struct hc_node_op *iprev, *inext; /* OP_LEADER_WRITE: c->lw, by index */
    int in_lw;
    op_kind_t kind;
    hc_write_cb wcb; /* NULL: detached (cancelled) or remote */
    hc_read_cb rcb;
    void *ud;
    hc_ack_t ack;
    uint64_t index, term;
    int wait_apply;  /* answer once applied >= index */
    int remote_peer; /* OP_LEADER_WRITE / OP_READ_INDEX on behalf of this peer, else -1 */
    int peer;        /* OP_FWD_*: the leader we asked */
    uint8_t rid[HC_REQUEST_ID_BYTES];
    uint64_t ctx;      /* read correlation id */
    int linearizable;  /* OP_FWD_READ: ReadIndex rather than a leader read */
    uint64_t deadline; /* loop ms, 0: none */
    char *cache;
    size_t cache_len;
    void *key;
    size_t klen;
    hc_apply_result_t res; /* OP_FWD_WRITE waiting for the local apply: the leader's answer */
    int res_status;        /* ...and its status */
    uint64_t remote_id;    /* OP_READ_INDEX for a follower: its correlation id */
    /* local writes: what it takes to send the write again after a leader change */
    uint8_t *enc; /* the command as forwarded (relative TTL in ttl_ms), NULL: no retry */
    size_t enc_len;
    uint64_t ttl_ms;
    uint64_t retry_until; /* loop ms: after this, an unknown fate is reported as such */
    uint64_t retry_after; /* loop ms: not sent again before (a refusal from a former leader) */
    const void *seq;      /* local writes: the sequence they keep their order in (NULL: none) */
    int want_vals;        /* the write's results carry values (hc_fsm_apply_vals) */
    int maybe_applied;    /* an attempt ended with its fate unknown: never report "not applied" */
    hc_buf_t vals;        /* OP_FWD_WRITE with want_vals: the results of its local apply */
    int have_vals;
};

struct hc_cluster {
    const hc_config_t *cfg; /* borrowed from the node */
    hc_fsm_t *fsm;          /* borrowed from the node: the replicated state machine */
    cl_io_t io;
    void *binding; /* io_uv.c's state */
    char name[HC_NODE_NAME_MAX + 1];
    raft_t *raft;
    size_t nhosts; /* my HA_HOSTS entries: peer slots 0..nhosts-1 */
    size_t npeers; /* slots in use: HA_HOSTS, then peers that only list me (cl_peer_known) */
    size_t cap;    /* slots allocated */
    int self;
    uint64_t *ids;       /* per slot: the incarnation last heard on its link, else its legacy id */
    uint64_t *answer_id; /* per slot: the incarnation heard on its link, 0 none yet */
    uint64_t *answer_lifetime; /* per slot: the cluster lifetime that incarnation runs in, 0 */
    uint16_t *tags;            /* per slot: host tag (top 16 bits of the legacy id) */
    int fresh_ids;             /* tags are nonzero and distinct: new incarnations get fresh ids */
    char (*names)[HC_NODE_NAME_MAX + 1];
    uint64_t *last_frame; /* loop ms of the last frame from each peer, 0: never */
    uint32_t *proto_seen; /* protocol version of each peer's last link, 0: never linked */
    hc_buf_t apply_vals;  /* results with values of the entry being applied (fsm.h) */
    char state_path[4096];
    char members_path[4200];      /* state_path + ".members" (hc_members_save) */
    char id_path[4200];           /* state_path + ".id" (hc_id_save); all "" without a data dir */
    char lifetime_path[4200];     /* state_path + ".lifetime" (hc_lifetime_save) */
    raft_members_t members_saved; /* what members_path holds; n == 0: nothing yet */
    uint64_t members_saved_epoch;
    int members_check; /* the configuration or epoch changed: save once committed */
    int closing;
    raft_role_t role;
    uint64_t term;
    uint64_t leader; /* raft id, 0 unknown */
    int leader_idx;  /* host index of the leader, -1 unknown */
    uint64_t leader_changes;
    uint64_t commit_heard;
    uint64_t applied;
    int recovering; /* raft says: restarted without its log, not caught up yet (last update) */
    uint64_t next_ctx;
    uint64_t expire_barrier; /* no new EXPIRE batch until this index is applied */
    hc_node_op_t *ops;       /* doubly linked list of every op in flight, oldest first */
    hc_node_op_t *ops_tail;
    hc_node_op_t *lw_head, *lw_tail; /* the OP_LEADER_WRITE ops, by index: what apply waits on */
    size_t parked;                   /* ops of kind OP_RETRY_WRITE */
    void (*handover_cb)(void *ud);
    void *handover_ud;
    snap_tx_t *tx; /* per host index */
    snap_rx_t rx;
    snap_load_t *loading; /* a received snapshot being loaded (load_bg), NULL */
    uint64_t compact_entries, compact_keep;
    uint64_t compact_hold_max; /* never hold more than this many entries back for followers */
    uint64_t snapshots_sent, snapshots_installed, snapshots_failed, compactions;
    uint64_t last_snapshot_bytes, last_snapshot_ms;
    hc_ql_t ql;                  /* quorum loss (quorum_state.h) */
    uint64_t held_wall;          /* HELD: wall ms the hold began (questions to the leader) */
    uint64_t held_answer_at;     /* HELD: loop ms the leader answered a question since, 0 */
    uint64_t held_answer_commit; /* ... and its commit index then */
    uint64_t invalidations;
    uint64_t write_retries; /* local writes sent again after a leader change */
    /* membership (membership.c) */
    int discovering;         /* no raft yet: asking the peers whether a cluster exists */
    uint8_t *info_state;     /* per peer slot: 0 no answer, 1 not established, 2 established */
    uint64_t discover_since; /* loop ms discovery began */
    int recover_logged;      /* "waiting for the survivors to start over" was logged */
    uint64_t lifetime;       /* the cluster lifetime this node belongs to, 0 unknown/legacy */
    uint64_t found_lifetime; /* the lifetime of `found` */
    uint64_t other_lifetime_logged_at; /* loop ms, rate limit of that log line */
    raft_members_t found;              /* configuration reported by an established peer */
    int found_from;                    /* that peer's slot, -1 none */
    int found_leader;                  /* its leader's slot, -1 unknown */
    uint64_t start_overs;              /* times this process started over (discovery.c) */
    int replaced;                      /* a newer incarnation of my host replaced this process */
    uint64_t *stale_told_at;           /* per slot: loop ms a stale incarnation there was told, 0 */
    uint8_t *tell_stale;               /* per slot: tell it the configuration on the next tick */
    int joining;                       /* started RAFT_START_JOIN, not yet in the configuration */
    int voter_alone;          /* cl_self_voter_alone's verdict on the last committed config */
    uint64_t member_tick_at;  /* loop ms of the next membership step */
    uint64_t members_changes; /* configuration changes this node proposed as leader */
    uint64_t *join_id;        /* per slot: the id of its last JoinRequest, 0 none */
    uint64_t *unlisted_at;    /* leader, per slot: loop ms that voter said it does not list me */
    uint64_t *unlisted_id;    /* ... and its raft id then */
    uint64_t unlisted_transfer_at; /* no transfer for not being listed before this loop ms */
    /* clocks (status.c) */
    int64_t *clock_offset; /* per peer slot: its wall clock minus mine, ms */
    uint64_t *clock_rtt;   /* per peer slot: round trip of the last comparison, 0: none yet */
    uint8_t *clock_warned; /* per peer slot: a skew warning was logged */
    uint64_t clock_tick_at;
};

static inline uint64_t cl_now(const cluster_t *c)
{
    return c->io.now(c->io.ud);
}

/* Something was fed to raft: collect its output on a later loop turn (events of one turn share
 * one raft_ready, hence one batch of AppendEntries). */
static inline void cl_kick(cluster_t *c)
{
    if (!c->closing) {
        c->io.kick(c->io.ud);
    }
}

static inline int cl_link_up(const cluster_t *c, int peer)
{
    return peer >= 0 && c->io.is_up(c->io.ud, peer);
}

/* membership.c */
/* My incarnation is a voter of the committed configuration, and no other incarnation of my
 * host is a member (what /readyz waits for after a restart without state). */
int cl_self_voter_alone(cluster_t *c, const raft_status_t *st);

/* slots.c */
/* slot of a raft id (heard on a link, or the slot of its host tag), -1 none */
int cl_peer_of_id(const cluster_t *c, uint64_t id);
/* Evidence: incarnation `id` answers on the link of slot `peer` (a JoinRequest, ClusterInfo or
 * raft message from it); ignored when the id's host tag is not the slot's. */
void cl_heard_id(cluster_t *c, int peer, uint64_t id);
/* The cluster lifetime incarnation `id` runs in, heard from it (raft messages, TimeSync,
 * ClusterInfo); kept only while `id` is the one answering on that slot. */
void cl_heard_lifetime(cluster_t *c, int peer, uint64_t id, uint64_t lifetime);
/* The incarnation answering for `host` runs raft in another lifetime than `lifetime` (it will
 * never vote in a configuration of that one: inc_host_t.other_lifetime). */
int cl_other_lifetime_at(const cluster_t *c, int host, uint64_t lifetime);
/* a is an older incarnation than b of slot `peer`'s host (its legacy id is the oldest) */
int cl_id_older(const cluster_t *c, int peer, uint64_t a, uint64_t b);
uint16_t cl_tag_of_name(const char *hostport); /* top 16 bits of hc_node_id_of(host:port) */
const char *cl_id_hex(uint64_t id, char out[17]);
/* 1 when `peer` names a usable slot; a peer that only lists me gets one here, with the raft id
 * of its name. */
int cl_peer_known(cluster_t *c, int peer);
const char *cl_name_of_id(const cluster_t *c, uint64_t id); /* "unknown" when no slot has it */
/* The HA_HOSTS entry (host index) an incarnation belongs to, -1 when none: its legacy id, the
 * incarnation heard on the host's link, or (fresh ids) its host tag. */
int cl_host_of_member(const cluster_t *c, uint64_t id);
int cl_slot_of_name(const cluster_t *c, const char *name); /* slot of host:port, -1 none */
/* Loop ms of the last frame from incarnation `id` on the link of slot `peer`: 0 when another
 * incarnation answers there (quorum contact counts incarnations, not links to hosts). */
uint64_t cl_last_frame_of(const cluster_t *c, int peer, uint64_t id);
/* Packs and sends one peer message: 0, HC_EBUSY, HC_ETOOLARGE, HC_EUNAVAILABLE, HC_ENOMEM. */
int cl_send_pm(cluster_t *c, int peer, const Hacache__PeerMessage *pm);
/* 1 when every connected peer speaks protocol 2 (raft ids): the incarnation rules apply. */
int cl_peers_know_incarnations(const cluster_t *c);
/* The raft id this node tells its peers (0: none yet). */
uint64_t cl_announced_id(const cluster_t *c);
int cl_members_speak(cluster_t *c, uint32_t v);
void cl_keep_fwd_vals(cluster_t *c, const uint8_t rid[16], const hc_buf_t *vals);
/* A TimeSync question (t1 == 0) or answer, with my announced id, lifetime and commit index. */
void cl_send_time(cluster_t *c, int peer, uint64_t t0, uint64_t t1);

/* datadir.c */
int cl_prepare_data_dir(const char *dir);
void cl_persist_or_die(cluster_t *c, const raft_hard_state_t *hs);
void cl_save_committed_members(cluster_t *c);

/* drive.c */
void cl_process(cluster_t *c);
void cl_on_raft_timer(cluster_t *c);
int cl_raft_create(cluster_t *c, raft_start_mode_t mode, const raft_hard_state_t *hs,
                   const raft_members_t *members, uint64_t members_index, uint64_t members_epoch);

/* discovery.c */
/* Forget what discovery heard and, with fresh ids, take a new incarnation's id. */
void cl_discovery_begin(cluster_t *c);
void cl_send_info_req(cluster_t *c, int peer);
void cl_send_cluster_info(cluster_t *c, int peer);
void cl_on_cluster_info(cluster_t *c, int peer, const Hacache__ClusterInfo *ci);
void cl_on_bootstrap_offer(cluster_t *c, int peer, const Hacache__BootstrapOffer *bo);
/* A raft message of another cluster lifetime from `peer`: dropped (its sender still counts as
 * evidence of who answers for its host). */
void cl_other_lifetime(cluster_t *c, int peer, uint64_t from_id, uint64_t lifetime);
/* The membership tick's part for nodes that are not plain members: starting over, discovery,
 * joining. 1 when it handled the tick (discovering or joining). */
int cl_discovery_tick(cluster_t *c);

/* membership.c */
void cl_on_not_listed(cluster_t *c, int peer, const Hacache__NotListed *nl);
void cl_on_join_request(cluster_t *c, int peer, const Hacache__JoinRequest *jr);
void cl_membership_tick(cluster_t *c);
void cl_on_handover_timeout(cluster_t *c);

/* messages.c */
void cl_on_peer_up(cluster_t *c, int peer, uint32_t version);
void cl_on_peer_down(cluster_t *c, int peer, const char *reason);
void cl_on_peer_frame(cluster_t *c, int peer, const uint8_t *data, size_t len);

/* quorum.c */
/* In contact with a quorum now (within an election timeout), counting only contact heard
 * after `after` (ms; 0: any). */
int cl_quorum_st(cluster_t *c, uint64_t now, const raft_status_t *st, uint64_t after);
/* Before a local read: if the loop overslept (the process was suspended), hold serving until a
 * quorum is heard again (hc_ql_stall). */
void cl_ql_notice_stall(cluster_t *c);
/* A TimeSync answer from `peer` to a question asked at wall ms t0 (status.c). */
void cl_ql_on_answer(cluster_t *c, int peer, uint64_t t0, uint64_t raft_id, uint64_t commit);
uint64_t cl_ql_grace(const cluster_t *c);
void cl_ql_observe(cluster_t *c, int lost_leadership);
void cl_ql_check(cluster_t *c);
void cl_ql_applied(cluster_t *c, uint64_t index, uint64_t term);

/* requests.c */
void cl_op_link(cluster_t *c, hc_node_op_t *op);
void cl_op_unlink(cluster_t *c, hc_node_op_t *op);
void cl_op_free(hc_node_op_t *op);
hc_node_op_t *cl_op_new(op_kind_t kind);
void cl_op_finish_write(cluster_t *c, hc_node_op_t *op, int status, const hc_apply_result_t *res);
void cl_op_finish_read(cluster_t *c, hc_node_op_t *op, int status);
void cl_op_finish(cluster_t *c, hc_node_op_t *op, int status);
void cl_check_applied_waiters(cluster_t *c);
void cl_check_once_waiters(cluster_t *c);
void cl_on_leader_lost(cluster_t *c);
void cl_on_leader_changed(cluster_t *c);
int cl_propose_cmd(cluster_t *c, const hc_cmd_t *cmd, const hc_cmd_meta_t *meta, uint64_t *index,
                   uint64_t *term);
void cl_retry_parked_writes(cluster_t *c);
void cl_on_fwd(cluster_t *c, int peer, const Hacache__ForwardWrite *fw);
void cl_on_fwd_result(cluster_t *c, int peer, const Hacache__ForwardResult *fr);
void cl_on_read_req(cluster_t *c, int peer, const Hacache__ReadRequest *rq);
void cl_on_read_resp(cluster_t *c, const Hacache__ReadResponse *rr);

/* snapshot.c */
/* Behind the cluster: entries committed but not applied here, or a snapshot being received or
 * loaded (readiness and local reads say "catching_up"). */
static inline int cl_catching_up(const cluster_t *c)
{
    return c->applied < c->commit_heard || c->rx.active || c->loading != NULL;
}
void cl_maybe_compact(cluster_t *c);
void cl_snap_tx_free(snap_tx_t *t);
void cl_snap_tx_end(cluster_t *c, int peer, int ok, const char *why);
void cl_snap_tx_drop_all(cluster_t *c);
void cl_on_snap_timer(cluster_t *c);
void cl_snap_start(cluster_t *c, const raft_snapshot_req_t *req);
/* The binding's background encoder (cl_io_t.encode_bg): bytes of the snapshot for `peer`, in
 * order; then the end (ok: complete). */
void cl_snap_bytes(cluster_t *c, int peer, const uint8_t *data, size_t len);
void cl_snap_encoded(cluster_t *c, int peer, int ok);
void cl_snap_rx_reset(cluster_t *c);
/* The load of a received snapshot: run anywhere (it touches nothing but the job), then
 * finished on the loop; cl_snap_load_free also frees an unused result. */
void cl_snap_load_run(snap_load_t *job);
void cl_snap_loaded(cluster_t *c);
void cl_snap_load_free(snap_load_t *job);
void cl_on_snapshot_chunk(cluster_t *c, int peer, const Hacache__SnapshotChunk *sc);

/* status.c */
void cl_clock_tick(cluster_t *c);
void cl_on_time_sync(cluster_t *c, int peer, const Hacache__TimeSync *ts);

/* io_uv.c: the binding. cl_io_uv_new fills c->io for `loop` (the peer links are not there yet:
 * nothing is up); cl_io_uv_start creates the peer TLS context, the peer links and the timers:
 * 0, HC_EINVAL (TLS material; one line printed to stderr) or HC_EINTERNAL. */
int cl_io_uv_new(cluster_t *c, struct uv_loop_s *loop);
int cl_io_uv_start(cluster_t *c);
/* Closes the timers and the peer links; cb once everything is closed. */
void cl_io_uv_close(cluster_t *c, void (*cb)(void *ud), void *ud);
void cl_io_uv_free(cluster_t *c);
struct hc_peers *cl_io_uv_peers(cluster_t *c);

#endif
