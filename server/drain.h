/* drain.h: the graceful drain shared by the API adapters (HTTP, RESP): a poll timer that calls
 * the adapter back once it has no connection left, or once a deadline passed. */
#ifndef HC_DRAIN_H
#define HC_DRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct {
    const char *name;             /* "http", "resp": names the log lines */
    void *owner;                  /* the adapter, passed to the hooks below */
    size_t (*count)(void *owner); /* connections still open */
    void (*poll)(void *owner);    /* optional: runs before each check */
    void (*expired)(void *owner); /* optional: runs once at the deadline, before cb */
    const char *on_expiry;        /* what happens to the rest at the deadline, for the log */
    /* internal */
    uv_timer_t timer;
    int open;
    uint64_t deadline;
    void (*cb)(void *ud);
    void *ud;
} hc_drain_t;

/* Starts polling (first check on the next loop turn): cb runs once, when count() is 0 or after
 * timeout_ms. The fields above the "internal" line must be set. */
void hc_drain_start(hc_drain_t *d, uv_loop_t *loop, uint64_t timeout_ms, void (*cb)(void *ud),
                    void *ud);
/* Closes the timer (a drain that never started is fine). */
void hc_drain_close(hc_drain_t *d);

#endif
