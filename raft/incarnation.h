/* incarnation.h: identity per incarnation — the pure policy that decides, from what one node
 * knows, whether it joins an established cluster, founds a new one (majority bootstrap), and
 * (on the leader) which single-server membership change replaces a dead incarnation of a
 * listed host by the new one. Both the node glue (hacached) and raft-sim call it, so the
 * simulator proves the node's policy, not a copy of it. The argument is in raft/README.md,
 * "Identity per incarnation".
 *
 * Contract
 * - Pure: no I/O, no clock, no allocation, no global state. Every function is a deterministic
 *   function of its arguments; the caller gathers the inputs and carries the decision out.
 * - Hosts: the caller's HA_HOSTS list, n_hosts <= INC_MAX_HOSTS entries, index = position in
 *   the list. At most one live process per host is ASSUMED (the deployment guarantees it: a
 *   StatefulSet pod name, one address). Each process start without raft state is a new
 *   INCARNATION with a fresh raft id (inc_id_make: host tag in the top 16 bits, random below),
 *   started with RAFT_START_JOIN (or RAFT_START_BOOTSTRAP as a founder); a process that kept
 *   its raft state (CACHE_DATA_DIR) restarts as RAFT_START_RESTART under its old id and is not
 *   a new incarnation.
 * - Evidence: inc_view_t.hosts[h].id is the incarnation that currently ANSWERS for host h (the
 *   caller learns it from connections to h and from peers' reports; 0: nobody heard). An
 *   incarnation X of host h counts as gone only when another incarnation of h answers; silence
 *   never makes anything gone. A stale report can only delay a decision (it names an older
 *   incarnation that is then still considered alive), never make a live one gone, because
 *   under the one-process-per-host assumption a newer incarnation answering means every
 *   older one is dead.
 * - Members and hosts: members/member_host describe the configuration the caller acts on (the
 *   leader: its latest configuration; a starting node: the configuration it heard of, n == 0
 *   none); member_host[i] is the host of members.m[i] (glue: from the id's host tag;
 *   -1: not a listed host).
 * - Outputs: a decision (inc_decide_start), an acceptance (inc_accept_bootstrap), or the next
 *   single-server change for raft_change() (inc_next_change). The policy never asks for two
 *   changes at once; the caller issues one raft_change() and calls again once it committed.
 */
#ifndef HC_RAFT_INCARNATION_H
#define HC_RAFT_INCARNATION_H

#include <stdbool.h>
#include <stdint.h>

#include "raft.h"

#ifdef __cplusplus
extern "C" {
#endif

#define INC_MAX_HOSTS RAFT_MAX_MEMBERS

/* Deliberate policy bugs, TEST ONLY (raft-sim --bug). */
enum {
    /* replace a voter by removing it while its successor is an uncaught-up learner (with
     * RAFT_BUG_SWAP_VOTERS the core turns that removal into one entry that swaps the two) */
    INC_BUG_SWAP_TWO_VOTERS = 1u << 0,
    /* promote a new incarnation before it caught up (with RAFT_BUG_JOIN_VOTES the core lets a
     * RAFT_START_JOIN server vote at once) */
    INC_BUG_VOTE_BEFORE_CAUGHT_UP = 1u << 1,
};

typedef struct inc_host {
    raft_id_t id;        /* incarnation answering for this host now; 0: none heard */
    bool established;    /* that incarnation belongs to an established cluster: it holds a
                            configuration from a log, a snapshot or its persisted state */
    bool other_lifetime; /* that incarnation runs raft in another cluster lifetime than the
                            configuration of this view (inc_lifetime_id; a rival founding, or
                            a cluster founded after this one died): it will never vote in this
                            configuration, so a member it is counts as gone (evidence) */
    bool joining;        /* inc_next_change: that incarnation asked THIS cluster to add it (a
                            JoinRequest). Only such an incarnation is added as a learner: one that
                            merely answers may belong to another cluster lifetime (a survivor of a
                            dead configuration that has not started over yet), whose log must never
                            mix with this one's. Evidence that older incarnations are gone needs
                            no request. */
} inc_host_t;

typedef struct inc_view {
    uint32_t n_hosts; /* HA_HOSTS entries, 1..INC_MAX_HOSTS */
    uint32_t self;    /* this node's host index */
    inc_host_t hosts[INC_MAX_HOSTS];
    raft_members_t members;
    int32_t member_host[RAFT_MAX_MEMBERS];
    /* Leader only (inc_next_change): members.m[i] caught up — a voter counts toward commit, a
     * learner is not recovering and its match covers the commit index (raft_peer_status_t). */
    bool caught_up[RAFT_MAX_MEMBERS];
    bool committed; /* `members` is committed (no change pending) */
    /* inc_decide_start: answering hosts needed to found a cluster; 0 or anything below a
     * majority of the hosts means a majority (the glue asks for all of them for a while
     * first, so that a cluster whose founders start together has no placeholder) */
    uint32_t founders;
    uint32_t bugs; /* INC_BUG_*, TEST ONLY */
} inc_view_t;

/* Ids: host tag (1..65535, distinct per HA_HOSTS entry, chosen by the glue) in the top 16
 * bits, 48 random bits below (never all zero). */
raft_id_t inc_id_make(uint16_t host_tag, uint64_t random);
uint16_t inc_id_tag(raft_id_t id);
/* The id that stands for a listed host none of whose incarnations was present at a majority
 * bootstrap: an incarnation that never lived (random bits 0), replaced like a dead one. */
raft_id_t inc_placeholder_id(uint16_t host_tag);

/* Incarnations of one host in start order: the glue fills the random part of a fresh id with
 * a coarse timestamp in its top bits (the node: 4 ms units of the wall clock, then 8 random
 * bits), so a later start has a larger id; a placeholder (random part 0) is older than every
 * incarnation. True when a is an older incarnation of the same host than b. */
bool inc_id_older(raft_id_t a, raft_id_t b);

/* A process that is still alive after its host got a newer incarnation (which the one-process-
 * per-host assumption excludes; it happens when that assumption is broken, e.g. a partitioned
 * pod force-replaced): `members` (a configuration it heard of) does not hold self_id and holds
 * a newer incarnation of self_id's host. It stops serving for good. */
bool inc_replaced(const raft_members_t *members, raft_id_t self_id);

/* The id of a cluster lifetime: a function of its first configuration (ids and roles, in
 * order), never 0. Every founder of one bootstrap computes the same; two foundings with
 * different first configurations (rival foundings after a partial partition, a re-founding
 * after a majority was lost) get different ones. The glue carries it on every raft message and
 * drops messages of another lifetime: a voter named by two foundings then votes in only one,
 * and no entry of one lifetime reaches another's log (raft/README.md). */
uint64_t inc_lifetime_id(const raft_members_t *first);

/* Quorum of n voters. */
uint32_t inc_quorum(uint32_t n);

typedef enum {
    INC_WAIT = 0,      /* nothing to decide yet: keep asking the other hosts */
    INC_JOIN = 1,      /* an established cluster exists: start RAFT_START_JOIN, wait to be added */
    INC_BOOTSTRAP = 2, /* this node founds the cluster: *out is the initial configuration; start
                          RAFT_START_BOOTSTRAP with it and offer it to the other founders */
    INC_RECOVER = 3,   /* a majority of the voters of the configuration heard of is gone on
                          evidence: no election can ever succeed in it (see inc_majority_gone) */
    INC_ADOPT = 4,     /* the established configuration heard of names this node's incarnation
                          as a voter: a founder that missed the offer. The id never existed before
                          that configuration named it, so it forgot nothing: start
                          RAFT_START_BOOTSTRAP with *out (= v->members), as an accepted offer */
} inc_decision_t;

/* A node WITHOUT raft state (a new incarnation) before it runs raft, or a stuck member:
 * - some host answers with an established incarnation and its configuration is not gone by a
 *   majority: INC_JOIN (a node that heard of an established cluster never bootstraps), or
 *   INC_ADOPT when that configuration names this node's incarnation as a voter;
 * - v->members names a configuration a majority of whose voters is gone: INC_RECOVER;
 * - a majority of the hosts (at least v->founders) answer, none established, and this host
 *   is the lowest-indexed of them: INC_BOOTSTRAP, *out = one voter per listed host: the answering
 * incarnation, or inc_placeholder_id(tags[h]) for a host that did not answer (so that every quorum
 * of the initial configuration is a majority of the HOSTS: two rival bootstraps cannot both elect);
 * - otherwise INC_WAIT (too few hosts, or another host coordinates). `tags` are the host tags
 *   (NULL: tag = index + 1, raft-sim). */
inc_decision_t inc_decide_start(const inc_view_t *v, const uint16_t *tags, raft_members_t *out);

/* A founder offered `offer` by host `from`: adopt it (start RAFT_START_BOOTSTRAP with it) iff
 * this node heard of no established cluster, `from` is the lowest-indexed answering host of
 * this node's view, the offer names this node's current incarnation as a voter, and it has
 * one voter per listed host. The caller adopts at most one offer per incarnation (it is then
 * established and answers so). */
bool inc_accept_bootstrap(const inc_view_t *v, uint32_t from, const raft_members_t *offer);

/* Voters of v->members that are gone on evidence: their host answers with another
 * incarnation (a placeholder: anyone answers for its host). A voter whose host is not listed
 * here is not gone (no evidence: another node may list it). */
uint32_t inc_voters_gone(const inc_view_t *v);
/* True when so many voters are gone that the others cannot form a quorum: no normal election
 * can ever succeed in that configuration. A member (or a joining node) that sees this of its
 * own configuration starts over as a new incarnation without state (the glue: clear the
 * store, drop raft, fresh id, discover), so that the hosts can found a new cluster; no value
 * of the dead configuration is served again (raft/README.md, "A majority of incarnations
 * gone"). */
bool inc_majority_gone(const inc_view_t *v);

/* Leader only: the next single-server change (1, *kind and *id set) or nothing (0). Order:
 * 1. remove a member whose host is not listed (never the leader itself, hosts[self]);
 * 2. per host h with an answering incarnation Y, and X any other member of h (gone):
 *    Y not a member -> add Y as learner if Y is joining (else wait); Y a learner not caught up ->
 * remove an old LEARNER of h if any, else wait; Y a caught-up learner -> remove X (learners first)
 * while one exists, then promote Y; Y a voter -> remove any X left (two incarnations after a leader
 * change). Nothing while the configuration is uncommitted. Remove-before-promote keeps at most one
 * voter per host in every configuration: a second crash of the same host during the swap
 * leaves one dead voter, never two (README). */
int inc_next_change(const inc_view_t *v, raft_change_t *kind, raft_id_t *id);

/* Host-facing summary for /readyz: this node's incarnation is a voter of a committed
 * configuration that holds no other incarnation of its host. */
bool inc_self_ready(const inc_view_t *v, raft_id_t self_id);

#ifdef __cplusplus
}
#endif

#endif
