/* raft.h: hacache's pure Raft core. No sockets, no clock, no files, no threads, no global
 * state: the host feeds events in (a message arrived, time advanced, propose, read, transfer,
 * membership change, snapshot done) and collects one output batch (raft_update_t) that says
 * what to persist, send, apply and answer, and when to call back. See raft/README.md for how a
 * host drives it and for the safety argument across restarts with empty memory.
 *
 * Conventions
 * - Every function that can fail returns 0 or a negative RAFT_E* code (raft_strerror()).
 * - Time is an input: `now` is in milliseconds on any monotonic clock the host likes. A `now`
 *   smaller than one already seen is treated as the one already seen.
 * - Randomness (election timeout jitter) comes from a PRNG seeded by the host in raft_start_t,
 *   so a run is a deterministic function of its inputs.
 * - Memory comes from the raft_alloc_t given in raft_config_t (libc when NULL). Out of memory
 *   never corrupts the state: an incoming message that cannot be processed is dropped (as if
 *   the network lost it) and an outgoing one that cannot be queued is dropped likewise; the
 *   hard state is never dropped.
 * - Ownership: raft copies everything it keeps from the arguments of a call; the caller may
 *   free them when the call returns. Everything reachable from a raft_update_t filled by
 *   raft_ready() (messages, their entries and data, entries to apply, reads, snapshot
 *   requests) is owned by raft and stays valid until the next raft_ready() on the same raft_t
 *   or raft_free(), whatever other calls happen in between.
 * - Nothing here is thread-safe; one raft_t is used by one thread at a time.
 */
#ifndef HC_RAFT_H
#define HC_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t raft_id_t;    /* a server id chosen by the host; 0 means "none" */
typedef uint64_t raft_term_t;  /* 0 before the first election */
typedef uint64_t raft_index_t; /* log index; the first entry is 1, 0 means "none" */

/* ---------------------------------------------------------------------------------------- */
/* Errors: X(name, value, message). */
#define RAFT_ERRNO_MAP(X)                                                                          \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(ENOTLEADER, -3, "not the leader")                                                            \
    X(ETRANSFER, -4, "leadership transfer in progress")                                            \
    X(EFULL, -5, "log full: too many uncompacted entries or bytes")                                \
    X(ETOOBIG, -6, "entry larger than the maximum message size")                                   \
    X(EBUSY, -7, "a configuration change is already pending")                                      \
    X(ENOENT, -8, "no such entry or server")                                                       \
    X(ESTALE, -9, "stale: older than what raft already has")                                       \
    X(ETIMEOUT, -10, "timed out")                                                                  \
    X(ECOMPACTED, -11, "index already compacted")                                                  \
    X(ENOTREADY, -12, "leader has not yet committed an entry of its term")                         \
    X(ETOOMANY, -13, "too many pending requests or members")                                       \
    X(ESTEPPEDDOWN, -14, "leadership lost before the request completed")                           \
    X(ENOQUORUM, -15, "too few caught-up, reachable voters for the new configuration")

enum {
#define RAFT_ERR_ENUM_(name, value, msg) RAFT_##name = value,
    RAFT_ERRNO_MAP(RAFT_ERR_ENUM_)
#undef RAFT_ERR_ENUM_
};

/* The message of a RAFT_E* code ("success" for 0). Never NULL. */
const char *raft_strerror(int err);

/* ---------------------------------------------------------------------------------------- */
/* Allocator: tests inject out-of-memory through it. `ctx` is passed back unchanged. */
typedef struct raft_alloc {
    void *(*malloc)(void *ctx, size_t size);
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} raft_alloc_t;

/* Deliberate bugs, TEST ONLY (the simulator's --bug NAME proves its checks catch them). */
enum {
    RAFT_BUG_COMMIT_WITHOUT_MAJORITY = 1u << 0, /* leader commits on its own append */
    RAFT_BUG_VOTE_TWICE = 1u << 1,              /* grant a second vote in the same term */
    RAFT_BUG_READ_WITHOUT_QUORUM = 1u << 2,     /* ReadIndex served without confirmation */
    RAFT_BUG_RECOVERING_VOTES = 1u << 3,        /* a node restarted empty votes at once */
    RAFT_BUG_COMMIT_OLD_TERM = 1u << 4,         /* count replicas of older-term entries */
    RAFT_BUG_SWAP_VOTERS = 1u << 5, /* removing a voter while a learner exists promotes that
                                       learner in the same entry (a one-entry swap) */
    RAFT_BUG_JOIN_VOTES = 1u << 6,  /* a RAFT_START_JOIN server votes before it caught up */
};

/* Tuning. A zero field means "the default" (in brackets), so `raft_config_t c = {0};` works. */
typedef struct raft_config {
    uint32_t election_timeout_ms;  /* T [1000]: timeouts are drawn from [T, 2T) */
    uint32_t heartbeat_ms;         /* leader heartbeat interval [T/10] */
    uint32_t max_entries_per_msg;  /* entries per AppendEntries [64] */
    uint32_t max_bytes_per_msg;    /* entry data bytes per AppendEntries [1 MiB]; an entry
                                      larger than this is refused by raft_propose (ETOOBIG) */
    uint32_t max_inflight;         /* AppendEntries in flight per follower [8] */
    uint32_t max_log_entries;      /* leader refuses proposals (EFULL) when the retained log
                                      (first_index..last_index) would exceed this [65536] */
    uint64_t max_log_bytes;        /* ... or this many data bytes [64 MiB] */
    uint32_t max_pending_reads;    /* ReadIndex requests waiting on the leader [1024] */
    uint32_t max_pending_messages; /* outgoing messages queued between raft_ready() [4096] */
    uint32_t recovery_timeouts;    /* N: election timeouts without a leader before a majority
                                      of recovering voters may elect among themselves [3] */
    bool disable_pre_vote;         /* switch Pre-Vote off (the simulator measures it) */
    bool disable_check_quorum;     /* switch Check-Quorum and leader stickiness off */
    uint32_t debug_bugs;           /* RAFT_BUG_* bitmask, TEST ONLY, 0 in production */
    const raft_alloc_t *alloc;     /* NULL: libc; must outlive the raft_t */
    /* Optional human-readable trace of decisions (one line, no newline). `line` is valid only
     * during the call. Must not call back into raft. */
    void (*trace)(void *trace_ctx, raft_id_t self, uint64_t now, const char *line);
    void *trace_ctx;
} raft_config_t;

/* ---------------------------------------------------------------------------------------- */
/* Membership. A configuration is a log entry (RAFT_ENTRY_CONFIG); it takes effect on a server
 * as soon as it is in its log (committed or not), as in the Raft thesis (one server at a time).
 */
#define RAFT_MAX_MEMBERS 32

typedef enum {
    RAFT_VOTER = 1,   /* votes and counts toward quorums */
    RAFT_LEARNER = 2, /* receives the log; never votes, never counted */
} raft_member_role_t;

typedef struct raft_member {
    raft_id_t id;
    uint8_t role; /* raft_member_role_t */
} raft_member_t;

typedef struct raft_members {
    uint32_t n;
    raft_member_t m[RAFT_MAX_MEMBERS];
} raft_members_t;

/* ---------------------------------------------------------------------------------------- */
/* Log entries. */
typedef enum {
    RAFT_ENTRY_NORMAL = 0, /* data from raft_propose() */
    RAFT_ENTRY_NOOP = 1,   /* appended by every new leader; data empty */
    RAFT_ENTRY_CONFIG = 2, /* a raft_members_t in raft's own encoding; the host just carries
                              the bytes (and ignores them when applying) */
} raft_entry_type_t;

typedef struct raft_entry {
    raft_term_t term;
    raft_index_t index;
    uint8_t type; /* raft_entry_type_t */
    const void *data;
    size_t len;
} raft_entry_t;

/* ---------------------------------------------------------------------------------------- */
/* Messages. The host serialises every field it is given (entry index may be omitted on the
 * wire: entries of an AppendEntries are consecutive from prev_index + 1) and must deliver
 * messages to the server `to`; loss, duplication, delay and reordering are all tolerated. */
typedef enum {
    RAFT_MSG_APPEND = 1,      /* AppendEntries, also the heartbeat (no entries) */
    RAFT_MSG_APPEND_RESP = 2, /* its answer */
    RAFT_MSG_VOTE = 3,        /* RequestVote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5, /* Pre-Vote: "would you vote for me in term `term`?" no state change;
                             recovering nodes also send it as a probe (see README) */
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_TIMEOUT_NOW = 7, /* leadership transfer: "campaign now" */
} raft_msg_type_t;

/* Message flags. */
enum {
    RAFT_MSGF_RECOVERING = 1u << 0, /* sender restarted with an empty log and has not caught up */
    RAFT_MSGF_NOVOTE = 1u << 1,     /* sender lost its hard state: it never votes */
    RAFT_MSGF_CAUGHT_UP = 1u << 2,  /* APPEND: recipient (of incarnation to_incarnation) has
                                       caught up and is a full voter again */
    RAFT_MSGF_TRANSFER = 1u << 3,   /* VOTE: campaign caused by TimeoutNow, bypasses stickiness */
    RAFT_MSGF_ESCAPE = 1u << 4,     /* VOTE: majority-recovering escape election (README) */
    RAFT_MSGF_RESET = 1u << 5,      /* APPEND from an escape leader: discard all state first */
    RAFT_MSGF_STATE_LOST = 1u << 6, /* sender's host dropped its state machine (raft_state_lost)
                                       and waits for a snapshot */
};

typedef struct raft_message {
    uint8_t type; /* raft_msg_type_t */
    raft_id_t from;
    raft_id_t to;
    raft_term_t term;     /* sender's term (PREVOTE: the term it would campaign in;
                             PREVOTE_RESP: that term if granted, else the voter's term) */
    uint64_t incarnation; /* sender's process incarnation (raft_start_t.incarnation) */
    uint32_t flags;       /* RAFT_MSGF_* */
    raft_term_t epoch;    /* term of the escape election that started the sender's log (0: the
                             bootstrap history); a follower whose state is from an older epoch
                             discards it on an AppendEntries of a newer one (README) */
    union {
        struct {
            raft_index_t prev_index;
            raft_term_t prev_term;
            raft_index_t commit;
            uint64_t seq;            /* leader's round number, echoed in the response */
            uint64_t to_incarnation; /* incarnation the leader believes `to` has */
            const raft_entry_t *entries;
            size_t n_entries;
        } append;
        struct {
            bool success;
            raft_index_t index;      /* success: last index known to match the leader;
                                        failure: the rejected prev_index */
            raft_index_t hint_index; /* failure: largest index <= prev_index whose term is
                                        <= prev_term in the follower's log ... */
            raft_term_t hint_term;   /* ... and that term (fast backtracking) */
            raft_index_t last_index; /* follower's last log index */
            uint64_t seq;            /* echo of append.seq */
        } append_resp;
        struct {
            raft_index_t last_index; /* candidate's last log index and term */
            raft_term_t last_term;
            /* A recovering sender's claim: the voters of the configuration its host saw
             * committed (raft_start_t.members, or what it kept on a forfeit), at claim_index
             * of epoch claim_epoch; n_claim 0: none. A server whose own configuration is older
             * uses it to see that no normal election can succeed (README, rule 5). */
            raft_index_t claim_index;
            raft_term_t claim_epoch;
            uint32_t n_claim;
            raft_id_t claim[RAFT_MAX_MEMBERS];
        } vote; /* VOTE and PREVOTE */
        struct {
            bool granted;
        } vote_resp; /* VOTE_RESP and PREVOTE_RESP */
    };
} raft_message_t;

/* Short name of a message type ("append", "vote", ...); never NULL. */
const char *raft_msg_type_name(int type);

/* ---------------------------------------------------------------------------------------- */
/* Roles and state. */
typedef enum {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
} raft_role_t;

const char *raft_role_name(int role);

/* What the host persists (CACHE_DATA_DIR) and gives back to raft_new() after a restart. */
typedef struct raft_hard_state {
    raft_term_t term;
    raft_id_t vote; /* 0: no vote in `term` */
    /* This id once started without its hard state (RAFT_START_AMNESIA): the terms and votes it
     * persisted since do not cover what it forgot, so it never votes again, across restarts.
     * Set by raft from that start on (persisted before anything is sent, like term and vote);
     * a RAFT_START_RESTART that passes it back starts without voting rights. */
    bool novote;
} raft_hard_state_t;

/* How this process starts. Raft never keeps the log across processes: a restarted node always
 * starts with an empty log. */
typedef enum {
    /* A founding member of a brand-new cluster: `members` is the initial configuration, which
     * raft places at index 1 (term 0) as committed. Every founder must get the same members. */
    RAFT_START_BOOTSTRAP = 1,
    /* A brand-new id (never used before) joining an existing cluster, normally as a learner.
     * No hard state; it may vote once promoted and caught up. */
    RAFT_START_JOIN = 2,
    /* Restart of an existing id whose hard state was persisted (`hard_state` required). Starts
     * "recovering": it neither votes nor counts toward commit until a leader has caught it up. */
    RAFT_START_RESTART = 3,
    /* Restart of an existing id whose hard state was lost. It never votes (it may already have
     * voted in any term): the host must replace it with a fresh id via membership changes. */
    RAFT_START_AMNESIA = 4,
} raft_start_mode_t;

typedef struct raft_start {
    raft_id_t id;         /* this server, != 0 */
    uint64_t incarnation; /* random per process start, different from every previous one */
    uint64_t seed;        /* PRNG seed (election jitter) */
    raft_start_mode_t mode;
    raft_hard_state_t hard_state; /* used by RAFT_START_RESTART (and BOOTSTRAP if non-zero) */
    /* BOOTSTRAP: the initial configuration. Other modes: the membership as the host believes it
     * (e.g. from HA_HOSTS), used only until the log or a snapshot says otherwise. */
    raft_members_t members;
    /* RESTART, optional (0 and 0: unknown): where `members` comes from when the host persisted
     * the configuration it last saw committed: the commit index it saw it in effect at, and
     * the epoch of that log (raft_status_t.epoch). Raft then takes `members` as the
     * configuration at that index of that epoch: while a leader of the same epoch replays the
     * log to this server from the start, the configuration entries below that index (older
     * ones) do not replace it (raft-sim seed 1649: a restarted server that had received the
     * first entries only went back to the bootstrap configuration and, in an escape, wrote it
     * into the new log, naming a server removed long before). */
    raft_index_t members_index;
    raft_term_t members_epoch;
} raft_start_t;

/* ---------------------------------------------------------------------------------------- */
/* The output batch. Process in this order:
 *   1. if hard_state_changed: persist hard_state durably (fsync) BEFORE sending any message of
 *      this batch;
 *   2. if reset: discard the whole state machine (escape from a majority memory loss: the
 *      cluster restarts from an empty log), before applying `entries`;
 *   3. apply `entries` in order (committed; index strictly increasing, no gaps);
 *   4. answer `reads` (after step 3: each read's index is <= the last applied index);
 *   5. send `messages` (any order, best effort);
 *   6. start the `snapshots` transfers;
 *   7. call raft_tick() at or after `deadline` (and feed any event earlier as it happens).
 * Everything pointed to is owned by raft, valid until the next raft_ready() or raft_free(). */
typedef struct raft_read {
    uint64_t ctx;       /* the host's id from raft_read_index() */
    raft_index_t index; /* read may be served from a state machine applied up to >= index */
    int status;         /* 0, or RAFT_ESTEPPEDDOWN / RAFT_ETIMEOUT: retry elsewhere */
} raft_read_t;

typedef struct raft_snapshot_req {
    raft_id_t to;       /* stream the state machine to this follower ... */
    raft_index_t index; /* ... captured at an applied index >= this one (see README) */
} raft_snapshot_req_t;

typedef struct raft_update {
    bool hard_state_changed;
    raft_hard_state_t hard_state;

    bool reset;

    const raft_entry_t *entries;
    size_t n_entries;

    const raft_read_t *reads;
    size_t n_reads;

    const raft_message_t *messages;
    size_t n_messages;

    const raft_snapshot_req_t *snapshots;
    size_t n_snapshots;

    /* Role, term or leader changed since the previous raft_ready() (current values below). */
    bool state_changed;
    raft_role_t role;
    raft_term_t term;
    raft_id_t leader; /* 0 when unknown */

    bool members_changed; /* configuration changed: see raft_members() */
    raft_index_t commit;  /* current commit index */
    uint64_t deadline;    /* absolute ms for the next raft_tick() */
} raft_update_t;

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle. */

typedef struct raft raft_t;

/* Creates a server. `cfg` may be NULL (all defaults); it is copied. Returns 0, RAFT_EINVAL
 * (id 0, no voter in BOOTSTRAP members, duplicate ids, mode unknown) or RAFT_ENOMEM. */
int raft_new(raft_t **out, const raft_config_t *cfg, const raft_start_t *start, uint64_t now);

/* Frees the server and everything any raft_update_t of it pointed to. NULL is a no-op. */
void raft_free(raft_t *r);

/* Collects the output accumulated since the previous raft_ready() (see raft_update_t). Always
 * fills *out (possibly with nothing to do); returns 0 or RAFT_ENOMEM (then the committed
 * entries were not handed out this time, and will be next time). */
int raft_ready(raft_t *r, raft_update_t *out);

/* ---------------------------------------------------------------------------------------- */
/* Events. Each returns 0 or an error and appends its effects to the pending output. */

/* A message arrived from the network. RAFT_EINVAL for malformed input (to != self, unknown
 * type), RAFT_ENOMEM when it had to be dropped. */
int raft_step(raft_t *r, uint64_t now, const raft_message_t *m);

/* Time advanced to `now`: elections, heartbeats, check-quorum, timeouts. */
int raft_tick(raft_t *r, uint64_t now);

/* Leader only: appends `data` as a new entry. On success *index and *term (either may be NULL)
 * identify it: it is committed when the host applies an entry with that index AND term; if an
 * entry with that index but another term is applied, or the term moves on before it commits,
 * the proposal was lost. Errors: RAFT_ENOTLEADER, RAFT_ETRANSFER, RAFT_EFULL, RAFT_ETOOBIG,
 * RAFT_ENOMEM. */
int raft_propose(raft_t *r, uint64_t now, const void *data, size_t len, raft_index_t *index,
                 raft_term_t *term);

/* Leader only: linearizable read. The answer arrives in a later update's `reads` with the same
 * `ctx`, once (a) the leader has committed an entry of its term, (b) a quorum of voters
 * acknowledged a heartbeat round sent after this call, and (c) the state machine was applied up
 * to the read index. Fails with RAFT_ESTEPPEDDOWN if leadership is lost, RAFT_ETIMEOUT after an
 * election timeout. Immediate errors: RAFT_ENOTLEADER (forward to the leader), RAFT_ETOOMANY. */
int raft_read_index(raft_t *r, uint64_t now, uint64_t ctx);

/* Leader only: hand leadership to voter `to` (0: the most up-to-date voter). Proposals are
 * refused (RAFT_ETRANSFER) until the transfer completes or aborts after an election timeout.
 * Errors: RAFT_ENOTLEADER, RAFT_ENOENT (not a voter / none suitable), RAFT_EINVAL (self). */
int raft_transfer(raft_t *r, uint64_t now, raft_id_t to);

/* Membership change, leader only, one at a time. */
typedef enum {
    RAFT_CHANGE_ADD_LEARNER = 1, /* add `id` as a learner (must not be a member) */
    RAFT_CHANGE_PROMOTE = 2,     /* learner -> voter */
    RAFT_CHANGE_DEMOTE = 3,      /* voter -> learner */
    RAFT_CHANGE_REMOVE = 4,      /* remove a member (a leader removing itself steps down once
                                    the change commits) */
} raft_change_t;

/* Appends a configuration entry; *index (may be NULL) is its index. Errors: RAFT_ENOTLEADER,
 * RAFT_ETRANSFER, RAFT_EBUSY (a change is pending, or the leader has not yet committed an entry
 * of its term), RAFT_ENOENT / RAFT_EINVAL (change does not fit the current members, or would
 * leave no voter), RAFT_ENOQUORUM (the change alters the voters, and the new voters that the
 * leader counts toward commit and heard from within an election timeout, itself included,
 * are not a majority of them: retry once more voters caught up), RAFT_ETOOMANY, RAFT_EFULL,
 * RAFT_ENOMEM. */
int raft_change(raft_t *r, uint64_t now, raft_change_t kind, raft_id_t id, raft_index_t *index);

/* Snapshots / compaction. The core never sees the state machine. */

/* The state machine was captured up to `index` (<= last applied): raft discards entries
 * <= index, keeping index's term and the configuration at index. RAFT_EINVAL if index is
 * beyond the applied index; compacting to an index already compacted is a no-op (0). */
int raft_snapshot_taken(raft_t *r, raft_index_t index);

/* Term and configuration at `index` (first_index - 1 <= index <= last_index), for the host to
 * ship with a snapshot captured at that index. RAFT_ECOMPACTED / RAFT_ENOENT otherwise. */
int raft_snapshot_meta(const raft_t *r, raft_index_t index, raft_term_t *term,
                       raft_members_t *members);

/* Leader side: the transfer requested by a raft_snapshot_req_t finished. `index` is the index
 * the streamed state was captured at; ok=false retries after a heartbeat interval. */
int raft_snapshot_sent(raft_t *r, uint64_t now, raft_id_t to, raft_index_t index, bool ok);

/* Follower side: the host received a snapshot (index, term, members) from the leader of
 * `leader_term` and staged it. Returns 0: raft reset its log to it (the host now swaps the
 * staged data in; nothing <= index will be handed out for applying); RAFT_ESTALE: raft already
 * has this (commit >= index or leader_term < current term): discard the staged data. */
int raft_snapshot_installed(raft_t *r, uint64_t now, raft_term_t leader_term, raft_index_t index,
                            raft_term_t term, const raft_members_t *members);

/* The host dropped its state machine while keeping this raft_t (hacache: quorum-loss
 * invalidation). The log, term, vote and voting rights stay; raft stops handing out entries to
 * apply (the last applied index stays where it was) and flags its messages
 * RAFT_MSGF_STATE_LOST, which makes a leader stream it a snapshot captured at the leader's
 * commit index or later. raft_snapshot_installed then accepts any snapshot at or after the
 * applied index (keeping the log after it when it matches) and applying resumes after it.
 * Until then, voters that still have their state refuse this server's (pre)votes for
 * recovery_timeouts election timeouts without a leader (a leader without its state would make
 * every replica drop the same data). If it becomes leader anyway, the wait ends there:
 * applying resumes after the applied index on whatever the host kept, and the host must make
 * the replicas converge (hacache replicates a clear of the dropped caches). A reset
 * (RAFT_MSGF_RESET, escape) also ends it. A leader steps down first (same term). Returns 0. */
int raft_state_lost(raft_t *r, uint64_t now);

/* ---------------------------------------------------------------------------------------- */
/* Introspection (read-only, never allocates). */

/* The latest configuration in the log (effective), valid until the next mutating call. */
const raft_members_t *raft_members(const raft_t *r);

typedef enum {
    RAFT_PROGRESS_PROBE = 0,     /* one message at a time until the match point is found */
    RAFT_PROGRESS_REPLICATE = 1, /* pipelining up to max_inflight */
    RAFT_PROGRESS_SNAPSHOT = 2,  /* waiting for the host to stream a snapshot */
} raft_progress_state_t;

typedef struct raft_peer_status {
    raft_id_t id;
    uint8_t member_role;    /* raft_member_role_t, 0 if not in the configuration */
    bool recovering;        /* last known: restarted empty and not yet caught up */
    bool novote;            /* last known: lost its hard state */
    uint64_t incarnation;   /* last seen (0 if never heard) */
    uint64_t last_heard_ms; /* `now` of its last message (0: never) */
    /* Leader only (zero otherwise): */
    raft_index_t match;     /* highest index known replicated (reset on a new incarnation) */
    raft_index_t next;      /* next index to send */
    uint32_t inflight;      /* AppendEntries in flight */
    uint8_t progress_state; /* raft_progress_state_t */
    bool counted;           /* counts toward commit (voter, caught up) */
} raft_peer_status_t;

typedef struct raft_status {
    raft_id_t id;
    uint64_t incarnation;
    raft_role_t role;
    raft_term_t term;
    raft_id_t vote;
    raft_id_t leader; /* 0 when unknown */
    raft_index_t commit;
    raft_index_t applied;     /* last index handed out for applying */
    raft_index_t first_index; /* first retained entry (snapshot_index + 1) */
    raft_index_t last_index;
    raft_index_t snapshot_index; /* compaction base and its term */
    raft_term_t snapshot_term;
    uint64_t log_bytes;   /* data bytes retained */
    bool recovering;      /* restarted empty, not yet caught up: neither votes nor counts */
    bool can_vote;        /* false after RAFT_START_AMNESIA */
    bool state_lost;      /* raft_state_lost() and no snapshot installed since */
    raft_id_t transferee; /* leadership transfer target in progress, 0 if none */
    uint64_t resets;      /* times this process discarded its state (RAFT_MSGF_RESET / escape):
                             a checker treats each as the start of a new life */
    raft_term_t epoch;    /* term of the escape election that started this server's log (0: the
                             bootstrap history); a reset joins the epoch named here */
    uint64_t forfeits;    /* of those resets, times this voter gave up a log it had kept because
                             the voters it hears from could not elect a leader (README.md) */
    uint32_t pending_reads;
    raft_members_t members;     /* effective configuration */
    raft_index_t members_index; /* index of its entry (0: from start/snapshot) */
    bool members_committed;
    uint32_t n_peers; /* every other member of the configuration */
    raft_peer_status_t peers[RAFT_MAX_MEMBERS];
} raft_status_t;

void raft_status(const raft_t *r, raft_status_t *out);
/* raft_status_t.recovering alone, without building the whole status (hosts ask it per update). */
bool raft_is_recovering(const raft_t *r);

/* The entry at `index` (its data pointer valid until the next mutating call on r). Returns
 * RAFT_ECOMPACTED below first_index, RAFT_ENOENT above last_index. For invariant checkers. */
int raft_debug_entry(const raft_t *r, raft_index_t index, raft_entry_t *out);

/* Encoding of a configuration as carried in RAFT_ENTRY_CONFIG data, for hosts that want to
 * decode config entries themselves. raft_members_decode returns 0 or RAFT_EINVAL. */
size_t raft_members_encoded_size(const raft_members_t *m);
void raft_members_encode(const raft_members_t *m, void *buf);
int raft_members_decode(const void *buf, size_t len, raft_members_t *out);

#ifdef __cplusplus
}
#endif

#endif
