/* sim.h: the deterministic cluster simulator for the raft core (raft-sim). One process, virtual
 * time, one seeded PRNG, one event queue ordered by (time, sequence number): a run is a pure
 * function of its seed and options. See tests/sim/README.md. */
#ifndef HC_SIM_H
#define HC_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define SIM_MAX_SLOTS   255 /* server ids 1..255, slot = id - 1; ids are never reused */
#define SIM_CHURN_SLOTS 40  /* membership churn adds servers up to this many slots */
#define SIM_MAX_SERVERS 5   /* members of a configuration, never more (also: hosts) */
#define SIM_MIN_VOTERS  3   /* membership faults never go below this */
#define SIM_CLIENTS     3
#define SIM_RING        64      /* trace lines kept for failure output */
#define SIM_CONVERGE_MS 60000   /* liveness: all live voters applied everything by then */
#define SIM_MAX_QUEUE   200000  /* events pending at once: beyond, "message-storm" */
#define SIM_MAX_EVENTS  5000000 /* events in one run: beyond, "message-storm" */

/* ---- PRNG: xoshiro256** seeded through splitmix64 ---------------------------------------- */
typedef struct sim_rng {
    uint64_t s[4];
} sim_rng_t;

void sim_rng_seed(sim_rng_t *g, uint64_t seed);
uint64_t sim_rng_next(sim_rng_t *g);
uint64_t sim_rng_below(sim_rng_t *g, uint64_t n);                 /* [0, n), n > 0 */
uint64_t sim_rng_between(sim_rng_t *g, uint64_t lo, uint64_t hi); /* [lo, hi] */
bool sim_rng_ppm(sim_rng_t *g, uint32_t ppm);                     /* true with ppm / 1e6 */

uint64_t sim_mix64(uint64_t x);
uint64_t sim_fnv(uint64_t h, const void *data, size_t len);
#define SIM_FNV_INIT 0xcbf29ce484222325ull

/* ---- events ------------------------------------------------------------------------------ */
typedef enum {
    EV_DELIVER = 1, /* a message reaches node `slot` */
    EV_TICK,        /* node `slot`'s raft deadline (gen = tick generation) */
    EV_FAULT,       /* the fault injector acts */
    EV_CLIENT,      /* client `a` acts */
    EV_SNAP_ARRIVE, /* a snapshot reaches node `slot` */
    EV_SNAP_DONE,   /* the leader `slot` learns how its snapshot transfer ended */
    EV_RESUME,      /* a paused node resumes (gen = pause generation) */
    EV_HEAL,        /* end of the fault phase, start of the liveness phase */
    EV_STOP,        /* end of the run (stability scenario, fault phase without liveness) */
    EV_FLAKY,       /* stability scenario: toggle the flaky node's isolation */
    EV_STABILITY,   /* stability scenario: warm-up over, pick the flaky node */
    EV_HOSTS,       /* --incarnations: the hosts' discovery / start-over tick */
    EV_OFFER,       /* --incarnations: a bootstrap offer reaches node `slot` (a = founder host) */
} sim_ev_type_t;

typedef struct sim_event {
    uint64_t time;
    uint64_t seq;
    uint8_t type;
    uint8_t slot;
    uint8_t from;
    uint32_t a;
    uint64_t gen, gen2;
    void *ptr; /* owned by the event: a sim_msg_t or sim_snap_t */
} sim_event_t;

/* A message in flight: one block holding the message, its entries and their data. */
typedef struct sim_msg {
    raft_message_t m;
    raft_entry_t *entries;
    uint64_t lifetime; /* --incarnations: the sender's cluster lifetime when sent, 0 none */
} sim_msg_t;

/* A snapshot in flight: the leader's state machine digest at `index`. */
typedef struct sim_snap {
    raft_term_t leader_term;
    raft_index_t index;
    raft_term_t term;
    raft_members_t members;
    uint64_t chain;
    int gen; /* generation (cluster lifetime) of the leader's state machine */
    uint32_t epoch;
} sim_snap_t;

/* ---- the checker's memory ---------------------------------------------------------------- */
typedef struct sim_slotrec { /* what the checker knows about one log index in one epoch */
    raft_term_t term;        /* of the entry applied / committed there */
    uint64_t dhash;          /* hash of (type, data) */
    uint64_t chain;          /* state machine digest after applying it */
    raft_term_t t_obs;       /* term in which it was first seen committed */
    uint8_t applied, committed;
} sim_slotrec_t;

typedef struct sim_epoch {
    raft_term_t start_term; /* term of the reset that opened it (0: the first epoch) */
    bool mem_loss;          /* a majority of some configuration lost its memory in it */
    sim_slotrec_t *rec;
    size_t cap;
    raft_index_t max_committed;
    raft_index_t max_acked; /* highest index of an acknowledged proposal */
    uint64_t acked;
} sim_epoch_t;

/* One cluster lifetime: the cluster founded by one bootstrap (the first one at t=0, or a
 * re-founding by majority bootstrap after a majority of incarnations was gone). Terms, logs and
 * state machines of different lifetimes have nothing in common: every invariant holds per
 * generation, and no entry of one may ever show up in another. */
typedef struct sim_gen {
    uint64_t founding; /* hash of its first configuration entry (index 1, term 0) */
    sim_epoch_t *ep;   /* epochs (escapes from a majority memory loss) of this lifetime */
    uint32_t n_ep;
    raft_id_t *term_leader; /* election safety: term -> leader id */
    size_t term_leader_cap;
} sim_gen_t;

typedef struct sim_origin { /* a client write's content hash -> the generation it went into */
    uint64_t dhash;
    int gen;
    bool used;
} sim_origin_t;

typedef struct sim_lmkey { /* log matching: (epoch, index, term) -> (content, prev term) */
    uint64_t epoch, index, term;
    uint64_t content;
    uint64_t prev_term;
    bool used;
} sim_lmkey_t;

/* ---- nodes -------------------------------------------------------------------------------- */
typedef struct sim_node {
    bool exists;   /* slot in use (false: never used, or shut down after removal) */
    bool up;       /* process running */
    bool paused;   /* process stopped (SIGSTOP): events wait */
    bool removing; /* the host asked to remove it; shut down once that commits */
    bool amnesiac; /* running after RAFT_START_AMNESIA; the host replaces it */
    int host;      /* --incarnations: index of its host (HA_HOSTS entry), -1: none */
    bool dead_inc; /* --incarnations: a newer incarnation of its host answers; never restarts */
    /* --incarnations, what the node glue knows (raft/incarnation.h's inputs): */
    bool discovering; /* process up without raft yet: asks the hosts, joins / founds / waits */
    bool joining;     /* started JOIN, its id not yet in its configuration */
    bool has_state;   /* raft ran under this id: a restart keeps it (RAFT_START_RESTART) */
    uint64_t discover_since;
    raft_id_t heard[SIM_MAX_SERVERS];         /* incarnation last heard answering for each host */
    uint64_t heard_lifetime[SIM_MAX_SERVERS]; /* ... and the cluster lifetime it runs in */
    uint64_t last_frame[SIM_MAX_SERVERS];     /* when a raft message of that host last arrived */
    uint8_t info[SIM_MAX_SERVERS]; /* last ClusterInfo per host: 0 none, 1 fresh, 2 established */
    int found_from;                /* host whose established configuration it heard last */
    raft_members_t found;          /* ... that configuration */
    uint64_t found_lifetime;       /* ... and its cluster lifetime */
    uint64_t lifetime; /* cluster lifetime it runs raft in (inc_lifetime_id), 0: none yet */
    raft_members_t start_members; /* configuration it started raft with (founders persist it) */
    raft_id_t id;
    raft_t *r;
    uint64_t life; /* process starts of this slot */
    uint64_t incarnation;
    raft_hard_state_t disk; /* "persisted" hard state, survives crashes, not amnesia */
    /* "persisted" next to `disk`: the configuration at the commit index as last seen (what the
     * node glue keeps for a restart); survives crashes, not amnesia. n == 0: none yet */
    raft_members_t disk_members;
    raft_term_t disk_members_epoch; /* (epoch, commit index) it was persisted at: never */
    raft_index_t disk_members_at;   /* replaced by an older one while catching up */
    uint64_t pause_gen;
    uint64_t resume_at;
    uint64_t tick_gen, tick_at;
    /* state machine: a digest chain of applied entries */
    raft_index_t sm_index;
    uint64_t sm_chain;
    /* checker, per segment (process life, or since the last reset) */
    int gen;    /* cluster lifetime it belongs to (sim_gen_t), -1: not known yet (empty) */
    bool sound; /* --incarnations: holds, or held since it started, every committed entry
                   of its epoch (a life that started empty is not, until caught up) */
    raft_term_t escape_term; /* term of the last escape vote request it received */
    uint32_t epoch;          /* epoch of that generation */
    uint64_t resets;
    raft_index_t last_commit;
    raft_term_t leader_checked_term; /* leader completeness checked when it took office */
    raft_term_t *shadow;             /* term at each index as last seen (log matching) */
    size_t shadow_cap;
    raft_index_t shadow_last;
    raft_status_t st; /* after the last event */
} sim_node_t;

/* ---- clients ------------------------------------------------------------------------------ */
typedef enum { OP_NONE = 0, OP_WRITE, OP_READ } sim_op_kind_t;

typedef struct sim_client {
    raft_id_t leader_guess;
    uint32_t seq;
    uint8_t op;     /* sim_op_kind_t of the outstanding op */
    bool submitted; /* accepted by a leader (waiting for the outcome) */
    uint8_t slot;   /* where it was submitted */
    uint64_t life;  /* that node's life at submission */
    raft_index_t index;
    raft_term_t term;
    uint64_t uid;
    uint64_t invoked, deadline;
    raft_index_t need_index; /* read: max acked index when invoked */
    int need_gen;            /* ... in this generation and epoch */
    uint32_t need_epoch;
    uint64_t op_gen;    /* stale client events are ignored */
    bool ok_after_heal; /* liveness: one write invoked after healing was acknowledged */
} sim_client_t;

/* ---- options and results ------------------------------------------------------------------ */
typedef struct sim_opts {
    uint64_t seed;
    int nodes;            /* 0: chosen by seed */
    uint64_t duration_ms; /* fault phase, 0: chosen by seed */
    bool verbose;
    bool no_prevote, no_checkquorum;
    uint32_t bugs;
    bool no_faults;   /* stability scenario */
    bool no_liveness; /* stop after the fault phase */
    int flaky_mode;   /* stability: 0 none, 1 lossy node, 2 isolated on and off */
    uint64_t stability_warmup_ms;
    bool quiet_failure; /* do not print the trace tail (expected failures) */
    bool incarnations;  /* hosts: a restart without state is a new incarnation (new id) */
} sim_opts_t;

typedef struct sim_result {
    bool failed;
    char invariant[48];
    char what[1200];
    uint64_t trace_hash;
    uint64_t vtime;
    uint64_t events;
    uint64_t leader_changes;
    uint64_t committed;
    uint64_t acked, reads_checked;
    uint64_t majority_term_changes; /* stability */
    uint64_t resets;
    uint64_t forfeits;         /* voters that gave up a kept log (raft_status_t.forfeits) */
    uint64_t new_incarnations; /* --incarnations: restarts without state (fresh id) */
    uint64_t replacements;     /* ... dead incarnations removed by the policy */
    /* --incarnations faults (the note's figures) */
    uint64_t restart_empty;          /* a process restarted without state (any cause) */
    uint64_t replace_during_replace; /* ... while another host's replacement was running */
    uint64_t majority_lost;          /* a majority of the hosts restarted without state at once */
    uint64_t bootstrap_with_placeholder; /* a founding with a placeholder voter */
    uint64_t start_overs; /* members that found their configuration dead and started over */
    uint64_t start_overs_postponed; /* ... not yet: out of ids in the fault phase */
    uint64_t refounds;              /* clusters founded by majority bootstrap */
    uint64_t offers_adopted;        /* bootstrap offers adopted (inc_accept_bootstrap) */
    int nodes;
} sim_result_t;

typedef struct sim sim_t;

struct sim {
    sim_opts_t o;
    sim_rng_t rng;
    uint64_t now, seq, events;
    sim_event_t *q; /* binary min-heap by (time, seq) */
    size_t qn, qcap;

    raft_config_t rcfg;
    sim_node_t n[SIM_MAX_SLOTS];
    int n_slots; /* slots ever used */
    int n_initial;

    /* network */
    bool cut[SIM_MAX_SLOTS][SIM_MAX_SLOTS]; /* cut[a][b]: a's messages do not reach b */
    uint32_t loss_ppm, dup_ppm, tail_ppm;
    uint32_t node_loss_ppm[SIM_MAX_SLOTS];
    uint64_t delay_min, delay_max, tail_max;

    /* fault phase / liveness */
    bool faults_on;
    bool allow_mem_loss;
    bool allow_amnesia;
    bool hosts_mode;             /* --incarnations (or a bug switch that needs it) */
    int answer[SIM_MAX_SERVERS]; /* slot of each host's current incarnation */
    bool allow_majority_loss;    /* --incarnations: this run may lose a majority of incarnations */
    uint32_t inc_bugs;           /* INC_BUG_* */
    uint32_t compact_every;      /* compact when this many entries are applied past the base */
    bool healed;
    uint64_t heal_at, live_deadline;
    bool done;

    sim_client_t c[SIM_CLIENTS];
    uint64_t next_uid, next_ctx;

    /* checker */
    sim_gen_t *gen; /* cluster lifetimes, in founding order */
    int n_gen;
    sim_origin_t *origin; /* --incarnations: client writes -> generation */
    size_t origin_cap, origin_n;
    sim_lmkey_t *lm;
    size_t lm_cap, lm_n;
    raft_term_t maj_term; /* stability: highest term among the healthy majority */
    int flaky;            /* stability: flaky slot */
    bool flaky_cut;

    /* trace */
    uint64_t trace_hash;
    char ring[SIM_RING][256];
    unsigned ring_next;
    bool in_check;

    sim_result_t res;
};

/* sim.c */
int sim_run(const sim_opts_t *o, sim_result_t *out);
void sim_trace(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_fail(sim_t *s, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
extern const char *const sim_bug_names[];
uint32_t sim_bug_flag(const char *name);

/* check.c */
void check_init(sim_t *s);
void check_free(sim_t *s);
/* The generation founded with configuration `m` (its index-1 entry): a new one the first time. */
int check_found(sim_t *s, const raft_members_t *m);
/* The newest generation and its latest epoch (clients measure their reads against it). */
sim_epoch_t *check_current(sim_t *s, int *gen, uint32_t *epoch);
/* The epoch of slot's life, NULL while its generation is not known. */
sim_epoch_t *check_node_epoch(sim_t *s, int slot);
void check_after_event(sim_t *s, int slot);
void check_apply(sim_t *s, int slot, const raft_entry_t *e);
void check_snapshot_install(sim_t *s, int slot, const sim_snap_t *sn);
void check_reset(sim_t *s, int slot, raft_term_t term);
void check_segment_start(sim_t *s, int slot);
void check_read(sim_t *s, int slot, sim_client_t *c, const raft_read_t *rd);
void check_ack(sim_t *s, sim_client_t *c);
void check_message(sim_t *s, int slot, const raft_message_t *m); /* one `slot` sends */
bool check_memory_majority(sim_t *s, int victim);
bool check_memory_majority_of(const sim_t *s, const raft_members_t *m, int victim);
void check_note_memory(sim_t *s);
uint64_t check_entry_hash(const raft_entry_t *e);
uint64_t check_chain(uint64_t chain, const raft_entry_t *e, uint64_t dhash);

#endif
