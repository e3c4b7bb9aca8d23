/* fsm.h: the replicated state machine: the store, the request-id window and the snapshot format.
 * The only code that changes the store: standalone writes and the cluster's committed log both
 * go through hc_fsm_apply (applied once per request id), and room for a write is planned once,
 * by hc_fsm_plan_put, into the EVICT / EXPIRE commands that a standalone node applies and a
 * leader proposes. Deterministic: the same commands at the same indexes give byte-identical
 * replicas (hc_store_digest). */
#ifndef HC_FSM_H
#define HC_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "dedupe.h"
#include "store/store.h"
#include "util.h"

typedef struct hc_fsm hc_fsm_t;

/* Request ids a state machine remembers with their outcome (standalone and cluster alike). */
#define HC_FSM_WINDOW 8192
/* Expired entries reclaimed per expiry tick at most, so a mass expiry never stalls the loop. */
#define HC_FSM_EXPIRE_BATCH 1024

/* Commands planned by the state machine; each command's cache and key are owned copies. */
typedef struct {
    hc_cmd_t *v;
    size_t n, cap;
    int failed; /* an allocation failed: the list is incomplete */
} hc_cmd_list_t;
void hc_cmd_list_free(hc_cmd_list_t *l);

/* A state machine with an empty store bounded by max_memory and a window of `window` request
 * ids. NULL on OOM. */
hc_fsm_t *hc_fsm_new(uint64_t max_memory, size_t window);
void hc_fsm_free(hc_fsm_t *f);

/* The store, for reads and statistics only (hc_store_get, hc_store_cache_info, totals,
 * digests): never write through it. Valid until the next hc_fsm_reset / snapshot install. */
hc_store_t *hc_fsm_store(hc_fsm_t *f);

/* Room for a PUT/INCR at `now`: appends to `out` the EVICT/EXPIRE commands (expired entries
 * first, then least recently used) to apply or propose before the write. An EXPIRE carries
 * expire_at_ms = now, so it never removes an entry rewritten with a later expiry. 0 (also for
 * ops that need no room), HC_ENOMEM when the write alone cannot fit or the list could not be
 * built, or another store error. */
int hc_fsm_plan_put(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t now, hc_cmd_list_t *out);
/* EXPIRE commands for at most `max` entries expired at `now`, earliest first. */
void hc_fsm_plan_expiry(hc_fsm_t *f, uint64_t now, size_t max, hc_cmd_list_t *out);
/* Leader: what it proposed after planning (hc_store_plan_doom / hc_store_plan_reserve): the
 * victims it proposed (may be NULL), then the write `cmd` (NULL for none) at `index`, so the
 * next plans count them before they are applied. hc_fsm_plan_clear: forget every plan (the
 * leadership changed). */
void hc_fsm_plan_proposed(hc_fsm_t *f, const hc_cmd_list_t *victims, const hc_cmd_t *cmd,
                          uint64_t index, uint64_t now);
void hc_fsm_plan_clear(hc_fsm_t *f);

/* 1 with *out when the request id was applied already (its first outcome), else 0. */
int hc_fsm_find_request(const hc_fsm_t *f, const uint8_t rid[16], hc_dedupe_result_t *out);
/* Applies cmd at log index `index` (the entries' version) with `now` as the instant that
 * decides what already expired. With a request id (rid non-NULL) already in the window, nothing
 * is applied and the first outcome is returned; otherwise the outcome is recorded under rid.
 * Returns the status (0 or HC_E*), *res filled either way. */
int hc_fsm_apply(hc_fsm_t *f, const hc_cmd_t *cmd, const uint8_t *rid, uint64_t index, uint64_t now,
                 hc_apply_result_t *res);
/* hc_fsm_apply that also appends the results carrying values to `vals` (may be NULL: not
 * wanted) and points res->vals at it: one record per command for a BATCH, one for a command
 * with want_old, a GET or a SET_TTL. Read them with hc_vals_next. */
int hc_fsm_apply_vals(hc_fsm_t *f, const hc_cmd_t *cmd, const uint8_t *rid, uint64_t index,
                      uint64_t now, hc_apply_result_t *res, hc_buf_t *vals);

/* One result record: the command's status (0 or HC_E*), its integer (INCR: the new value; DEL,
 * SET_TTL: 1 when a live entry was removed / changed; GET: the entry's expire_at_ms) and, when
 * has_value, the value before the command (want_old) or the value read (GET), pointing into the
 * buffer. */
typedef struct {
    int status;
    int64_t integer;
    int has_value;
    const void *value;
    size_t len;
} hc_val_t;
/* Reads the record at *pos and moves *pos past it: 1, or 0 at the end (or a short buffer). */
int hc_vals_next(const hc_buf_t *vals, size_t *pos, hc_val_t *out);

/* Drops every `invalidate` cache locally (quorum loss; never proposed from here) at `index`. */
void hc_fsm_invalidate_local(hc_fsm_t *f, uint64_t index, uint64_t now);
/* Empties the store and the window (a cluster that restarted from an empty log). */
void hc_fsm_reset(hc_fsm_t *f);

/* A snapshot (what a leader streams to a follower that needs one): "HCNS" version(1)
 * store_len(u64) store snapshot (hc_store_serialize) window_len(u64) hc_dedupe_serialize. */
void hc_fsm_snapshot_encode(hc_fsm_t *f, hc_buf_t *out);
/* A new state machine with f's limits holding a snapshot (*out, owned by the caller): 0, or
 * HC_EINVAL / HC_ENOMEM. */
int hc_fsm_snapshot_load(const hc_fsm_t *f, const void *buf, size_t len, hc_fsm_t **out);
/* Moves the state of `with` into f (whose old state is dropped) and frees `with`: f keeps its
 * address, so whoever holds it sees the new state. */
void hc_fsm_replace(hc_fsm_t *f, hc_fsm_t *with);
/* The format's two halves, for tests and the fuzz target: encode a store and a window; decode
 * into an empty store and a window (0, HC_EINVAL or HC_ENOMEM). */
void hc_fsm_snapshot_write(hc_store_t *s, const hc_dedupe_t *d, hc_buf_t *out);
int hc_fsm_snapshot_read(const void *buf, size_t len, hc_store_t *s, hc_dedupe_t *d);

#endif
