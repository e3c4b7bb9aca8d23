/* raft_int.h: the internal state of a raft_t shared by the raft/ modules (not installed). */
#ifndef HC_RAFT_INT_H
#define HC_RAFT_INT_H

#include "raft.h"

#define RAFT_INFLIGHT_MAX 64 /* hard cap on raft_config_t.max_inflight */

/* Entry data, reference counted so an outgoing message or an entry handed out for applying
 * stays valid after the log dropped the entry (truncation, compaction, reset). */
typedef struct raft_buf {
    uint32_t refs;
    size_t len;
    unsigned char data[];
} raft_buf_t;

typedef struct raft_lentry {
    raft_term_t term;
    uint8_t type;
    raft_buf_t *buf; /* NULL when len == 0 */
} raft_lentry_t;

/* In-memory log: entries base+1 .. base+n live in e[start .. start+n). */
typedef struct raft_log {
    raft_lentry_t *e;
    size_t cap, start, n;
    raft_index_t base_index; /* compaction / snapshot base */
    raft_term_t base_term;
    uint64_t bytes;
} raft_log_t;

/* What this server knows about another member; the progress part is used by a leader. */
typedef struct raft_peer {
    raft_id_t id;
    uint8_t member_role;
    /* heard from it (every role) */
    uint64_t last_heard; /* 0: never */
    uint32_t last_flags; /* flags of its last message */
    uint64_t incarnation;
    bool inc_known; /* leader: incarnation learned in this term */
    /* leader progress */
    raft_index_t match, next;
    uint8_t state;                            /* raft_progress_state_t */
    raft_index_t inflight[RAFT_INFLIGHT_MAX]; /* last index of each message in flight */
    uint32_t inflight_head, inflight_n;
    bool probe_sent;
    uint64_t probe_sent_at;
    bool recovering;          /* leader's view: not counted toward commit */
    bool caught_up_notify;    /* send RAFT_MSGF_CAUGHT_UP until it stops reporting recovering */
    bool need_reset;          /* escape leader: send RAFT_MSGF_RESET until it acknowledges */
    uint64_t reset_seq;       /* responses echoing seq <= this predate the last progress reset */
    uint64_t acked_seq;       /* highest seq echoed in this term (ReadIndex rounds) */
    raft_index_t sent_commit; /* commit carried by the last append sent */
    uint64_t sent_seq;        /* seq carried by the last append sent */
    bool active;              /* heard from since the last check-quorum */
    uint64_t progress_at;     /* when match last advanced (or replication started) */
    raft_index_t snapshot_index;
    uint64_t lost_snap_at; /* no new snapshot for its RAFT_MSGF_STATE_LOST before this */
    /* elections */
    bool vote_responded, vote_granted;
    bool vote_recovering; /* its vote response said it is recovering (escape proof) */
    /* the last claim it sent (raft_message_t.vote.claim*), heard at claim_heard (0: none) */
    uint64_t claim_heard;
    raft_index_t claim_index;
    raft_term_t claim_epoch;
    uint32_t n_claim;
    raft_id_t claim[RAFT_MAX_MEMBERS];
} raft_peer_t;

typedef struct raft_pread {
    uint64_t ctx;
    uint64_t seq;
    uint64_t deadline;
    raft_index_t index;
    bool index_set;
} raft_pread_t;

/* One generation of output: built between two raft_ready() calls, then handed out. */
typedef struct raft_out {
    raft_message_t *msgs;
    size_t n_msgs, cap_msgs;
    raft_read_t *reads;
    size_t n_reads, cap_reads;
    raft_snapshot_req_t *snaps;
    size_t n_snaps, cap_snaps;
    raft_entry_t *apply;
    size_t n_apply;
} raft_out_t;

struct raft {
    raft_config_t cfg;
    raft_alloc_t alloc;
    raft_id_t id;
    uint64_t incarnation;
    uint64_t rng;
    uint64_t now;

    /* persistent-ish state */
    raft_role_t role;
    raft_term_t term;
    raft_id_t vote;
    raft_id_t leader;
    bool can_vote;
    bool recovering;
    bool state_lost;              /* raft_state_lost(): not applying, waiting for a snapshot */
    uint32_t leaderless_timeouts; /* election timeouts expired since we last heard a leader */
    uint64_t forfeits;            /* times this process gave its log up (raft_forfeit_) */

    raft_log_t log;
    raft_index_t commit, applied;

    /* configuration */
    raft_members_t members;      /* effective: latest in the log, else base_members */
    raft_members_t base_members; /* at log.base_index */
    raft_index_t members_index;  /* entry that gave `members`, 0: base */
    /* the host's configuration at start and where it was in effect (raft_start_t): log
     * configurations at or below host_members_at of epoch host_members_epoch are older */
    raft_members_t host_members;
    raft_index_t host_members_at;
    raft_term_t host_members_epoch;
    raft_peer_t peers[RAFT_MAX_MEMBERS];
    uint32_t n_peers;

    /* timers */
    uint64_t election_deadline;
    uint64_t last_leader_contact; /* when we last heard the leader (start time initially) */
    uint64_t heartbeat_deadline;
    uint64_t cq_deadline;

    /* elections */
    bool escape_campaign;
    bool transfer_campaign;

    /* leader */
    uint64_t seq;
    raft_index_t term_start; /* index of the leader's first entry of its term */
    raft_id_t transferee;
    uint64_t transfer_deadline;
    raft_pread_t *reads;
    size_t n_reads, cap_reads;

    /* follower */
    uint64_t leader_seq;    /* last seq seen from the leader */
    raft_term_t reset_term; /* epoch: term of the escape election that started our log */
    raft_term_t snap_term;  /* leader term of the last snapshot installed */
    uint64_t resets;

    /* output */
    raft_out_t pending, handed;
    bool hard_dirty, members_dirty, reset_pending;
    raft_role_t rep_role;
    raft_term_t rep_term;
    raft_id_t rep_leader;
};

/* raft.c */
void raft_trace_(raft_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define TRACE(r, ...)                                                                              \
    do {                                                                                           \
        if ((r)->cfg.trace)                                                                        \
            raft_trace_((r), __VA_ARGS__);                                                         \
    } while (0)
void *raft_malloc_(raft_t *r, size_t n);
void *raft_realloc_(raft_t *r, void *p, size_t n);
void raft_free_(raft_t *r, void *p);
raft_message_t *raft_msg_new_(raft_t *r, uint8_t type, raft_id_t to); /* NULL when dropped */
void raft_become_follower_(raft_t *r, raft_term_t term, raft_id_t leader);
void raft_reset_election_timer_(raft_t *r);
void raft_forfeit_(raft_t *r);
raft_peer_t *raft_peer_(raft_t *r, raft_id_t id);
const raft_peer_t *raft_peer_c_(const raft_t *r, raft_id_t id);
bool raft_in_lease_(const raft_t *r);
bool raft_out_read_(raft_t *r, raft_out_t *o, uint64_t ctx, raft_index_t index, int status);
bool raft_out_snapshot_(raft_t *r, raft_id_t to, raft_index_t index);

/* log.c */
raft_index_t raft_log_last_(const raft_log_t *l);
raft_lentry_t *raft_log_get_(const raft_log_t *l, raft_index_t i); /* NULL outside */
bool raft_log_term_(const raft_log_t *l, raft_index_t i, raft_term_t *term);
raft_term_t raft_log_last_term_(const raft_log_t *l);
int raft_log_append_(raft_t *r, raft_term_t term, uint8_t type, const void *data, size_t len);
void raft_log_truncate_(raft_t *r, raft_index_t from); /* drop entries >= from */
void raft_log_compact_(raft_t *r, raft_index_t upto);  /* drop entries <= upto */
void raft_log_wipe_(raft_t *r, raft_index_t base, raft_term_t base_term);
void raft_log_free_(raft_t *r);
void raft_buf_ref_(raft_buf_t *b);
void raft_buf_unref_(raft_t *r, raft_buf_t *b);
void raft_entry_release_(raft_t *r, const raft_entry_t *e); /* unref through data pointer */
void raft_entry_view_(const raft_log_t *l, raft_index_t i, raft_entry_t *out);
raft_index_t raft_log_find_conflict_(const raft_log_t *l, raft_index_t index, raft_term_t term);

/* membership.c */
void raft_members_recompute_(raft_t *r); /* after the log changed */
void raft_members_set_(raft_t *r, const raft_members_t *m, raft_index_t index);
const raft_member_t *raft_member_find_(const raft_members_t *m, raft_id_t id);
bool raft_is_voter_(const raft_t *r, raft_id_t id);
uint32_t raft_n_voters_(const raft_t *r);
int raft_members_at_(const raft_t *r, raft_index_t index, raft_members_t *out);
void raft_check_self_removal_(raft_t *r);

/* election.c */
void raft_tick_election_(raft_t *r);
void raft_campaign_(raft_t *r, bool pre, bool transfer, bool escape);
void raft_recv_vote_(raft_t *r, const raft_message_t *m);
void raft_recv_vote_resp_(raft_t *r, const raft_message_t *m);
void raft_recv_timeout_now_(raft_t *r, const raft_message_t *m);

/* replication.c */
void raft_become_leader_(raft_t *r);
void raft_tick_leader_(raft_t *r);
void raft_send_append_(raft_t *r, raft_peer_t *p, bool allow_empty);
void raft_send_heartbeat_(raft_t *r, raft_peer_t *p);
void raft_flush_leader_(raft_t *r);
void raft_recv_append_(raft_t *r, const raft_message_t *m);
void raft_recv_append_resp_(raft_t *r, const raft_message_t *m);
void raft_maybe_commit_(raft_t *r);
void raft_progress_init_(raft_t *r, raft_peer_t *p);
void raft_transfer_abort_(raft_t *r, const char *why);

/* readindex.c */
void raft_reads_fail_all_(raft_t *r, int status);
void raft_reads_on_commit_(raft_t *r);
void raft_reads_release_(raft_t *r, raft_out_t *o);
void raft_reads_tick_(raft_t *r);
void raft_reads_free_(raft_t *r);

#endif
