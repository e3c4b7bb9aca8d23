/* drain.c: the graceful drain timer of the API adapters. */
#include "drain.h"

#include <stdio.h>

#include "log.h"

/* How often the drain checks whether every connection is gone. */
#define DRAIN_POLL_MS 10

static void finish(hc_drain_t *d)
{
    uv_timer_stop(&d->timer);
    void (*cb)(void *) = d->cb;
    d->cb = NULL;
    if (cb) {
        cb(d->ud);
    }
}

static void on_tick(uv_timer_t *t)
{
    hc_drain_t *d = t->data;
    if (d->poll) {
        d->poll(d->owner);
    }
    size_t n = d->count(d->owner);
    char msg[96];
    if (n == 0) {
        snprintf(msg, sizeof(msg), "%s connections drained", d->name);
        hc_log(HC_LOG_DEBUG, msg);
        finish(d);
    } else if (uv_now(t->loop) >= d->deadline) {
        snprintf(msg, sizeof(msg), "%s drain timed out, %s connections", d->name, d->on_expiry);
        hc_log(HC_LOG_WARN, msg, HC_LU("connections", n));
        if (d->expired) {
            d->expired(d->owner);
        }
        finish(d);
    }
}

void hc_drain_start(hc_drain_t *d, uv_loop_t *loop, uint64_t timeout_ms, void (*cb)(void *ud),
                    void *ud)
{
    d->cb = cb;
    d->ud = ud;
    d->deadline = uv_now(loop) + timeout_ms;
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->open = 1;
    uv_timer_start(&d->timer, on_tick, 0, DRAIN_POLL_MS);
}

void hc_drain_close(hc_drain_t *d)
{
    if (d->open) {
        uv_close((uv_handle_t *)&d->timer, NULL);
        d->open = 0;
    }
}
