/* remote_async.c: the asynchronous client on a libuv loop. Runs N operations (two puts for every
 * get of a key written earlier), IN_FLIGHT at a time, against the nodes named by ENDPOINTS, each
 * with a deadline of TIMEOUT_MS. Prints one line per failed operation, a progress line every 500
 * operations, and a summary:
 *   fail op=put n=123 rc=-7 (outcome of the write is unknown) ms=812
 *   progress done=500 ok=500 fail=0
 *   done ok=9990 fail=10 max_ms=2987 late=0
 * (late: operations whose callback came later than their deadline + 1 s). A get answered "not
 * found" is an answer, not a failure. Exit status 0 unless usage is wrong.
 *
 *   remote_async ENDPOINTS [N=10000] [IN_FLIGHT=32] [TIMEOUT_MS=3000]
 *   cc remote_async.c $(pkg-config --cflags --libs hacache-uv) -o remote_async */
#include <hacache.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
    uv_loop_t *loop;
    hc_aclient_t *c;
    long n, width; /* operations in all, at most this many in flight */
    long started, in_flight, done, ok, fail, late;
    uint64_t timeout_ms, max_ms;
} run_t;

typedef struct {
    run_t *r;
    long n;
    int is_get;
    uint64_t t0;
} op_t;

static void start_more(run_t *r);

static void on_closed(void *ud)
{
    run_t *r = ud;
    r->c = NULL;
}

static void finish(op_t *o, int rv)
{
    run_t *r = o->r;
    uv_update_time(r->loop);
    uint64_t ms = uv_now(r->loop) - o->t0;
    r->max_ms = ms > r->max_ms ? ms : r->max_ms;
    r->late += ms > r->timeout_ms + 1000;
    r->done++;
    r->in_flight--;
    if (rv == 0 || (o->is_get && rv == HC_ENOTFOUND)) {
        r->ok++;
    } else {
        r->fail++;
        printf("fail op=%s n=%ld rc=%d (%s) ms=%llu\n", o->is_get ? "get" : "put", o->n, rv,
               hc_strerror(rv), (unsigned long long)ms);
    }
    if (r->done % 500 == 0) {
        printf("progress done=%ld ok=%ld fail=%ld\n", r->done, r->ok, r->fail);
        fflush(stdout);
    }
    free(o);
    if (r->done == r->n) {
        hc_aclient_close(r->c, on_closed, r); /* the loop ends once the client has closed */
    } else {
        start_more(r);
    }
}

static void on_get(void *ud, int rv, const hc_value_t *val)
{
    (void)val; /* borrowed for this callback only: copy what you keep */
    finish(ud, rv);
}

static void on_write(void *ud, int rv, int64_t value)
{
    (void)value;
    finish(ud, rv);
}

static void start_more(run_t *r)
{
    while (r->started < r->n && r->in_flight < r->width) {
        op_t *o = malloc(sizeof(*o));
        if (o == NULL) {
            return;
        }
        o->r = r;
        o->n = r->started++;
        o->is_get = o->n % 3 == 2;
        uv_update_time(r->loop);
        o->t0 = uv_now(r->loop);
        char key[32];
        /* a get reads a key written a while ago (or not yet: "not found" is an answer) */
        long k = o->is_get ? (o->n - r->width > 0 ? o->n - r->width : 0) : o->n;
        int klen = snprintf(key, sizeof(key), "k%ld", k);
        int rv = o->is_get ? hc_aget(r->c, "async", key, (size_t)klen, on_get, o, NULL)
                           : hc_aput(r->c, "async", key, (size_t)klen, key, (size_t)klen,
                                     HC_ACK_QUORUM, 0, on_write, o, NULL);
        if (rv != 0) { /* not started: the callback will not run */
            fprintf(stderr, "cannot start an operation: %s\n", hc_strerror(rv));
            free(o);
            r->n = r->started - 1;
            return;
        }
        r->in_flight++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: remote_async ENDPOINTS [N=10000] [IN_FLIGHT=32] [TIMEOUT_MS=3000]\n");
        return 2;
    }
    run_t r = {.n = argc > 2 ? atol(argv[2]) : 10000,
               .width = argc > 3 ? atol(argv[3]) : 32,
               .timeout_ms = argc > 4 ? (uint64_t)atol(argv[4]) : 3000};
    if (r.n <= 0 || r.width <= 0 || r.timeout_ms == 0) {
        fprintf(stderr, "remote_async: N, IN_FLIGHT and TIMEOUT_MS must be positive\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    r.loop = &loop;
    hc_client_opts_t opts = {.endpoints = argv[1],
                             .token = getenv("HACACHE_TOKEN"),
                             .timeout_ms = (uint32_t)r.timeout_ms};
    int rv = hc_aclient_new(&loop, &opts, &r.c);
    const char *ca = getenv("HACACHE_CACERT");
    if (rv == 0 && ca != NULL && *ca) {
        hc_client_tls_t tls = {.ca_file = ca};
        rv = hc_aclient_set_tls(r.c, &tls);
    }
    if (rv != 0) {
        fprintf(stderr, "remote_async: %s\n", hc_strerror(rv));
        if (r.c != NULL) {
            hc_aclient_close(r.c, on_closed, &r);
            uv_run(&loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&loop);
        return 2;
    }
    start_more(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("done ok=%ld fail=%ld max_ms=%llu late=%ld\n", r.ok, r.fail,
           (unsigned long long)r.max_ms, r.late);
    int closed = uv_loop_close(&loop) == 0;
    if (!closed) {
        fprintf(stderr, "remote_async: handles left open on the loop\n");
    }
    return closed ? 0 : 1;
}
