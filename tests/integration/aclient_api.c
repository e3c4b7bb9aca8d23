/* aclient_api.c: the asynchronous client's data-API options against a live cluster, for
 * tests/integration/test_client_async_api.py. One scenario on one loop, each step started from
 * the previous step's callback; prints one line per step ("step NAME rc=N ...") and "ok" at the
 * end when every expectation held (exit 0), else the first failed step (exit 1).
 *
 *   aclient_api ENDPOINTS KEY */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hacache.h"

typedef struct {
    hc_aclient_t *c;
    const char *key;
    int step;
    int failed;
    uint64_t version;
} run_t;

static void next(run_t *r);

static void expect(run_t *r, const char *what, int cond)
{
    if (!cond && !r->failed) {
        printf("FAILED at %s\n", what);
        r->failed = 1;
    }
}

static void on_write(void *ud, int rv, int64_t value)
{
    run_t *r = ud;
    printf("step %d write rc=%d value=%lld\n", r->step, rv, (long long)value);
    switch (r->step) {
    case 0: /* if_absent on a fresh key: written, its version comes back */
        expect(r, "if_absent put", rv == 0 && value > 0);
        r->version = (uint64_t)value;
        break;
    case 1: /* if_absent again: the key exists */
        expect(r, "second if_absent put conflicts", rv == HC_ECONFLICT);
        break;
    case 3: /* if_version with a wrong version */
        expect(r, "wrong if_version conflicts", rv == HC_ECONFLICT);
        break;
    case 4: /* if_version with the right one: a newer version */
        expect(r, "right if_version writes", rv == 0 && (uint64_t)value > r->version);
        r->version = (uint64_t)value;
        break;
    case 5: /* a condition needs quorum: refused by the call itself (not here) */
        break;
    case 6: /* delete with the right version */
        expect(r, "conditional delete", rv == 0);
        break;
    }
    r->step++;
    next(r);
}

static void on_get(void *ud, int rv, const hc_value_t *val, const hc_meta_t *meta)
{
    run_t *r = ud;
    printf("step %d get rc=%d len=%zu version=%llu has_ttl=%d ttl=%llu\n", r->step, rv,
           val ? val->len : 0, meta ? (unsigned long long)meta->version : 0ULL,
           meta ? meta->has_ttl : 0, meta ? (unsigned long long)meta->ttl_ms : 0ULL);
    if (r->step == 2) { /* linearizable read: the acknowledged value, version and TTL */
        expect(r, "linearizable read",
               rv == 0 && val->len == 2 && memcmp(val->data, "v1", 2) == 0 &&
                   meta->version == r->version && meta->has_ttl && meta->ttl_ms > 0 &&
                   meta->ttl_ms <= 60000);
    } else { /* step 7: after the delete, at the leader */
        expect(r, "read after the delete", rv == HC_ENOTFOUND && val == NULL && meta == NULL);
    }
    r->step++;
    next(r);
}

static void next(run_t *r)
{
    const char *k = r->key;
    size_t kl = strlen(k);
    int rv = 0;
    if (r->failed) {
        hc_aclient_close(r->c, NULL, NULL);
        return;
    }
    switch (r->step) {
    case 0:
    case 1: {
        hc_put_opts_t o = {.ack = HC_ACK_QUORUM, .ttl_ms = 60000, .if_absent = 1};
        rv = hc_aput_ex(r->c, "acl", k, kl, "v1", 2, &o, on_write, r, NULL);
        break;
    }
    case 2: {
        hc_read_opts_t o = {.has_consistency = 1, .consistency = HC_READ_LINEARIZABLE};
        rv = hc_aget_ex(r->c, "acl", k, kl, &o, on_get, r, NULL);
        break;
    }
    case 3:
    case 4: {
        hc_put_opts_t o = {.ack = HC_ACK_QUORUM,
                           .has_if_version = 1,
                           .if_version = r->step == 3 ? r->version + 1000 : r->version};
        rv = hc_aput_ex(r->c, "acl", k, kl, "v2", 2, &o, on_write, r, NULL);
        break;
    }
    case 5: {
        hc_put_opts_t o = {.ack = HC_ACK_ONCE, .if_absent = 1};
        rv = hc_aput_ex(r->c, "acl", k, kl, "v3", 2, &o, on_write, r, NULL);
        expect(r, "a condition with ack once is refused", rv == HC_EINVAL);
        printf("step 5 refused rc=%d\n", rv);
        r->step++;
        next(r);
        return;
    }
    case 6: {
        hc_del_opts_t o = {.ack = HC_ACK_QUORUM, .has_if_version = 1, .if_version = r->version};
        rv = hc_adel_ex(r->c, "acl", k, kl, &o, on_write, r, NULL);
        break;
    }
    case 7:
        hc_aclient_set_consistency(r->c, HC_READ_LEADER);
        rv = hc_aget_ex(r->c, "acl", k, kl, NULL, on_get, r, NULL);
        break;
    default:
        printf("ok\n");
        hc_aclient_close(r->c, NULL, NULL);
        return;
    }
    if (rv != 0) {
        printf("step %d could not start: %d\n", r->step, rv);
        r->failed = 1;
        hc_aclient_close(r->c, NULL, NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: aclient_api ENDPOINTS KEY\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_client_opts_t o = {.endpoints = argv[1], .timeout_ms = 5000};
    run_t r = {.key = argv[2]};
    if (hc_aclient_new(&loop, &o, &r.c) != 0) {
        return 2;
    }
    next(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&loop) == 0;
    return !r.failed && closed ? 0 : 1;
}
