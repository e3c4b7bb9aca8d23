/* test_embedded.c: the embedded node API of hacache.h (libhacache_node, linked as the shared
 * library a program would use): configuration errors, a standalone node used from two
 * application threads at once (put/get/del/incr/clear, the callback variant, status), the stop,
 * calls after it, a node on the caller's own loop (calls from the loop thread, a blocking
 * caller on another thread, the stop callback, every handle closed), failed starts, listeners
 * on and off, calls given up at their deadline, and the drain of calls in flight at the stop. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "hacache.h"
#include "test.h"

static const char *const standalone_env[] = {"HA_MODE=false", "CACHE_LOG_LEVEL=info", NULL};

static atomic_int log_lines, start_lines;

static void count_log(void *ud, int level, const char *line)
{
    (void)ud;
    (void)level;
    atomic_fetch_add(&log_lines, 1);
    if (strstr(line, "embedded node starting") != NULL) {
        atomic_fetch_add(&start_lines, 1);
    }
    CHECK(strchr(line, '\n') == NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_configuration_errors(void)
{
    static const struct {
        const char *const env[4];
        const char *argv1;
        const char *err_prefix;
    } cases[] = {
        {{"HA_MODE=true", NULL}, NULL, "HA_HOSTS"},
        {{"HA_MODE=false", "CACHE_MAX_MEMORY=lots", NULL}, NULL, "CACHE_MAX_MEMORY"},
        {{"HA_MODE=false", "CACHE_HEARTBEAT_MS=5000", NULL}, NULL, "CACHE_HEARTBEAT_MS"},
        {{"HA_MODE=false", NULL}, "--no-such-flag", "--no-such-flag"},
        {{"HA_MODE=false", NULL}, "--check-config", "--help, --version and --check-config"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[] = {"test", cases[i].argv1, NULL};
        hc_embedded_opts_t o = {
            .env = cases[i].env, .argc = cases[i].argv1 ? 2 : 1, .argv = argv, .log = count_log};
        hc_embedded_t *e = (hc_embedded_t *)1;
        char err[512];
        int rv = hc_embedded_start(&o, &e, err, sizeof(err));
        CHECK_EQ_INT(rv, HC_EINVAL);
        CHECK(e == NULL);
        if (strncmp(err, cases[i].err_prefix, strlen(cases[i].err_prefix)) != 0) {
            fprintf(stderr, "  case %zu: err \"%s\" does not start with \"%s\"\n", i, err,
                    cases[i].err_prefix);
            hc_test_failures_++;
        }
        CHECK(strchr(err, '\n') == NULL);
    }
}

/* ---- a standalone node used from two threads ---- */

#define ROUNDS 300

typedef struct {
    hc_embedded_t *e;
    int id;
    int failures;
} worker_t;

#define WCHECK(w, cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  worker %d: %s:%d: %s\n", (w)->id, __FILE__, __LINE__, #cond);       \
            (w)->failures++;                                                                       \
        }                                                                                          \
    } while (0)

static void *worker(void *arg)
{
    worker_t *w = arg;
    char cache[16], key[32], val[64];
    snprintf(cache, sizeof(cache), "t%d", w->id);
    for (int i = 0; i < ROUNDS; i++) {
        int kl = snprintf(key, sizeof(key), "k%d", i);
        int vl = snprintf(val, sizeof(val), "value %d of worker %d", i, w->id);
        hc_ack_t ack = (hc_ack_t)(i % 4); /* every ack level */
        WCHECK(w, hc_embedded_put(w->e, cache, key, (size_t)kl, val, (size_t)vl, ack, 0) == 0);
        hc_value_t v;
        int rv = hc_embedded_get(w->e, cache, key, (size_t)kl, (hc_consistency_t)(i % 3),
                                 &v); /* every consistency */
        WCHECK(w, rv == 0 && v.len == (size_t)vl && memcmp(v.data, val, (size_t)vl) == 0 &&
                      ((char *)v.data)[v.len] == '\0' && v.stale == 0);
        hc_value_free(&v);
        int64_t n = -1;
        WCHECK(w, hc_embedded_incr(w->e, "shared", "counter", 7, 1, HC_ACK_QUORUM, &n) == 0);
        WCHECK(w, n >= 1 && n <= 2 * ROUNDS);
        if (i % 2 == 0) {
            WCHECK(w, hc_embedded_del(w->e, cache, key, (size_t)kl, HC_ACK_QUORUM) == 0);
            WCHECK(w, hc_embedded_get(w->e, cache, key, (size_t)kl, HC_READ_LOCAL, &v) ==
                          HC_ENOTFOUND);
            WCHECK(w, v.data == NULL && v.len == 0);
            WCHECK(w, hc_embedded_del(w->e, cache, key, (size_t)kl, HC_ACK_QUORUM) == HC_ENOTFOUND);
        }
    }
    return NULL;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, status;
    size_t len;
    char data[64];
    uint64_t version;
    int has_ttl;
    uint64_t ttl_ms;
    pthread_t thread;
} answer_t;

static void on_answer(void *ud, const hc_embedded_result_t *r)
{
    answer_t *a = ud;
    pthread_mutex_lock(&a->mu);
    a->calls++;
    a->status = r->status;
    a->len = r->len;
    a->version = r->version;
    a->has_ttl = r->has_ttl;
    a->ttl_ms = r->ttl_ms;
    if (r->data != NULL && r->len < sizeof(a->data)) {
        memcpy(a->data, r->data, r->len);
    }
    a->thread = pthread_self();
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Waits (bounded) for the callback; returns its status or 1 on timeout. */
static int wait_answer(answer_t *a, int calls)
{
    uint64_t deadline = now_ms() + 5000;
    pthread_mutex_lock(&a->mu);
    while (a->calls < calls && now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    int rv = a->calls == calls ? a->status : 1;
    pthread_mutex_unlock(&a->mu);
    return rv;
}

static void test_standalone_two_threads(void)
{
    atomic_store(&start_lines, 0);
    hc_embedded_opts_t o = {.env = standalone_env, .log = count_log};
    hc_embedded_t *e = NULL;
    char err[512];
    int rv = hc_embedded_start(&o, &e, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "  start: %s (%s)\n", hc_strerror(rv), err);
    }
    REQUIRE(rv == 0 && e != NULL);
    CHECK_EQ_INT(atomic_load(&start_lines), 1); /* the log went to the callback */

    hc_embedded_status_t st;
    CHECK_EQ_INT(hc_embedded_status(e, &st), 0);
    CHECK_EQ_STR(st.role, "standalone");
    CHECK_EQ_INT(st.ready, 1);
    CHECK_EQ_STR(st.leader, "");
    CHECK_EQ_INT(hc_embedded_ready(e), 1);

    /* arguments are checked before anything is queued */
    hc_value_t v;
    CHECK_EQ_INT(hc_embedded_get(e, "bad name", "k", 1, HC_READ_LOCAL, &v), HC_EINVAL);
    CHECK_EQ_INT(hc_embedded_get(e, "c", "", 0, HC_READ_LOCAL, &v), HC_EINVAL);
    CHECK_EQ_INT(hc_embedded_put(e, "c", "k", 1, "v", 1, (hc_ack_t)9, 0), HC_EINVAL);
    static char big[300 * 1024];
    CHECK_EQ_INT(hc_embedded_put(e, "c", big, sizeof(big), "v", 1, HC_ACK_QUORUM, 0), HC_ETOOLARGE);
    CHECK_EQ_INT(hc_embedded_get(e, "c", "absent", 6, HC_READ_LOCAL, &v), HC_ENOTFOUND);
    CHECK_EQ_INT(hc_embedded_put(e, "c", "s", 1, "abc", 3, HC_ACK_QUORUM, 0), 0);
    CHECK_EQ_INT(hc_embedded_incr(e, "c", "s", 1, 1, HC_ACK_QUORUM, NULL), HC_ENOTINT);

    worker_t w[2] = {{.e = e, .id = 0}, {.e = e, .id = 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&th[i], NULL, worker, &w[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(w[i].failures, 0);
    }
    /* both threads' increments all applied, once each */
    CHECK_EQ_INT(hc_embedded_get(e, "shared", "counter", 7, HC_READ_LINEARIZABLE, &v), 0);
    CHECK_EQ_STR((const char *)v.data, "600");
    hc_value_free(&v);
    /* odd keys survived; clear removes them */
    CHECK_EQ_INT(hc_embedded_get(e, "t1", "k1", 2, HC_READ_LOCAL, &v), 0);
    hc_value_free(&v);
    CHECK_EQ_INT(hc_embedded_clear(e, "t1", HC_ACK_QUORUM), 0);
    CHECK_EQ_INT(hc_embedded_get(e, "t1", "k1", 2, HC_READ_LOCAL, &v), HC_ENOTFOUND);
    CHECK_EQ_INT(hc_embedded_get(e, "t0", "k1", 2, HC_READ_LOCAL, &v), 0);
    hc_value_free(&v);

    /* the callback variant answers on the node's thread, after submit returned */
    answer_t a = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    hc_embedded_op_t put = {.kind = HC_EMBEDDED_PUT,
                            .cache = "cb",
                            .key = "k",
                            .klen = 1,
                            .val = "from a callback",
                            .vlen = 15,
                            .ack = HC_ACK_QUORUM,
                            .ttl_ms = 60000};
    CHECK_EQ_INT(hc_embedded_submit(e, &put, on_answer, &a), 0);
    CHECK_EQ_INT(wait_answer(&a, 1), 0);
    CHECK(!pthread_equal(a.thread, pthread_self()));
    hc_embedded_op_t get = {.kind = HC_EMBEDDED_GET, .cache = "cb", .key = "k", .klen = 1};
    CHECK_EQ_INT(hc_embedded_submit(e, &get, on_answer, &a), 0);
    CHECK_EQ_INT(wait_answer(&a, 2), 0);
    CHECK(a.len == 15 && memcmp(a.data, "from a callback", 15) == 0);
    CHECK(a.version > 0 && a.has_ttl && a.ttl_ms > 0 && a.ttl_ms <= 60000);

    /* the data API's options: conditions, versions, remaining TTL */
    hc_put_opts_t po = {.ack = HC_ACK_QUORUM, .ttl_ms = 30000, .if_absent = 1};
    uint64_t v1 = 0, v2 = 0;
    CHECK_EQ_INT(hc_embedded_put_ex(e, "cas", "k", 1, "one", 3, &po, &v1), 0);
    CHECK(v1 > 0);
    CHECK_EQ_INT(hc_embedded_put_ex(e, "cas", "k", 1, "two", 3, &po, &v2), HC_ECONFLICT);
    hc_meta_t m;
    CHECK_EQ_INT(hc_embedded_get_ex(e, "cas", "k", 1, HC_READ_LINEARIZABLE, &v, &m), 0);
    CHECK(v.len == 3 && memcmp(v.data, "one", 3) == 0);
    CHECK(m.version == v1 && m.has_ttl && m.ttl_ms > 0 && m.ttl_ms <= 30000);
    hc_value_free(&v);
    po = (hc_put_opts_t){.ack = HC_ACK_QUORUM, .has_if_version = 1, .if_version = v1 + 100};
    CHECK_EQ_INT(hc_embedded_put_ex(e, "cas", "k", 1, "two", 3, &po, &v2), HC_ECONFLICT);
    po.if_version = v1;
    CHECK_EQ_INT(hc_embedded_put_ex(e, "cas", "k", 1, "two", 3, &po, &v2), 0);
    CHECK(v2 > v1);
    CHECK_EQ_INT(hc_embedded_get_ex(e, "cas", "k", 1, HC_READ_LOCAL, &v, &m), 0);
    CHECK(m.version == v2 && !m.has_ttl); /* no TTL given this time */
    hc_value_free(&v);
    po = (hc_put_opts_t){.ack = HC_ACK_ONCE, .if_absent = 1}; /* a condition needs quorum */
    CHECK_EQ_INT(hc_embedded_put_ex(e, "cas", "k", 1, "x", 1, &po, NULL), HC_EINVAL);
    hc_del_opts_t dop = {.ack = HC_ACK_QUORUM, .has_if_version = 1, .if_version = v1};
    CHECK_EQ_INT(hc_embedded_del_ex(e, "cas", "k", 1, &dop), HC_ECONFLICT);
    dop.if_version = v2;
    CHECK_EQ_INT(hc_embedded_del_ex(e, "cas", "k", 1, &dop), 0);
    CHECK_EQ_INT(hc_embedded_get_ex(e, "cas", "k", 1, HC_READ_LOCAL, &v, &m), HC_ENOTFOUND);
    CHECK_EQ_INT(m.version, 0);

    uint64_t t0 = now_ms();
    CHECK_EQ_INT(hc_embedded_stop(e), 0);
    CHECK(now_ms() - t0 < 5000);
    CHECK_EQ_INT(hc_embedded_stop(e), 0); /* idempotent */
    CHECK_EQ_INT(hc_embedded_put(e, "c", "k", 1, "v", 1, HC_ACK_QUORUM, 0), HC_ESHUTDOWN);
    CHECK_EQ_INT(hc_embedded_get(e, "c", "s", 1, HC_READ_LOCAL, &v), HC_ESHUTDOWN);
    CHECK_EQ_INT(hc_embedded_submit(e, &get, on_answer, &a), HC_ESHUTDOWN);
    CHECK_EQ_INT(hc_embedded_ready(e), 0);
    hc_embedded_free(e);
}

/* ---- a node on the caller's loop ---- */

typedef struct {
    hc_embedded_t *e;
    int step, stopped, stopped_status;
    int blocking_ok;
    uv_thread_t other;
} loop_test_t;

static void on_stopped(void *ud, int status)
{
    loop_test_t *t = ud;
    t->stopped++;
    t->stopped_status = status;
}

/* Another application thread makes blocking calls while the caller runs its loop, then stops
 * the node (waiting until the loop closed it). */
static void other_thread(void *arg)
{
    loop_test_t *t = arg;
    int ok = hc_embedded_put(t->e, "loop", "from-thread", 11, "x", 1, HC_ACK_QUORUM, 0) == 0;
    hc_value_t v;
    ok = ok && hc_embedded_get(t->e, "loop", "from-loop", 9, HC_READ_LOCAL, &v) == 0 &&
         v.len == 1 && ((char *)v.data)[0] == 'y';
    hc_value_free(&v);
    ok = ok && hc_embedded_stop(t->e) == 0;
    t->blocking_ok = ok;
}

static void on_loop_answer(void *ud, const hc_embedded_result_t *r)
{
    loop_test_t *t = ud;
    CHECK_EQ_INT(r->status, 0);
    /* on the loop thread: blocking writes are refused, local reads answer at once */
    CHECK_EQ_INT(hc_embedded_put(t->e, "loop", "k", 1, "v", 1, HC_ACK_QUORUM, 0), HC_EINVAL);
    hc_value_t v;
    CHECK_EQ_INT(hc_embedded_get(t->e, "loop", "from-loop", 9, HC_READ_LOCAL, &v), 0);
    CHECK(v.len == 1 && ((char *)v.data)[0] == 'y');
    hc_value_free(&v);
    CHECK_EQ_INT(hc_embedded_ready(t->e), 1);
    t->step++;
    CHECK(uv_thread_create(&t->other, other_thread, t) == 0);
}

static void test_caller_loop(void)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    loop_test_t t = {0};
    hc_embedded_opts_t o = {.env = standalone_env,
                            .loop = &loop,
                            .log = count_log,
                            .stopped = on_stopped,
                            .stopped_ud = &t};
    char err[512];
    int rv = hc_embedded_start(&o, &t.e, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "  start: %s (%s)\n", hc_strerror(rv), err);
    }
    REQUIRE(rv == 0);
    hc_embedded_op_t put = {.kind = HC_EMBEDDED_PUT,
                            .cache = "loop",
                            .key = "from-loop",
                            .klen = 9,
                            .val = "y",
                            .vlen = 1,
                            .ack = HC_ACK_QUORUM};
    CHECK_EQ_INT(hc_embedded_submit(t.e, &put, on_loop_answer, &t), 0);
    CHECK_EQ_INT(t.step, 0); /* never answered before submit returns */
    /* runs until the other thread's stop closed the node's handles: the loop then has none */
    uint64_t t0 = now_ms();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(now_ms() - t0 < 10000);
    CHECK_EQ_INT(t.step, 1);
    uv_thread_join(&t.other);
    CHECK_EQ_INT(t.blocking_ok, 1);
    CHECK_EQ_INT(t.stopped, 1);
    CHECK_EQ_INT(t.stopped_status, 0);
    hc_embedded_free(t.e);
    CHECK_EQ_INT(uv_loop_close(&loop), 0); /* every handle of the node closed */
}

/* hc_embedded_free without a stop first stops the node (own thread). */
static void test_free_stops(void)
{
    hc_embedded_opts_t o = {.env = standalone_env, .log = count_log};
    hc_embedded_t *e = NULL;
    REQUIRE(hc_embedded_start(&o, &e, NULL, 0) == 0);
    CHECK_EQ_INT(hc_embedded_put(e, "c", "k", 1, "v", 1, HC_ACK_NONE, 1000), 0);
    hc_embedded_free(e);
}

/* Deadlines of 1 ms race the node's answers: whichever wins, every call returns one of its
 * documented codes, and calls given up on are freed when their answer comes (ASan/LSan). */
static atomic_int gave_up;

static void *racer(void *arg)
{
    hc_embedded_t *e = arg;
    long bad = 0;
    for (int i = 0; i < 2000; i++) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "r%d", i % 50);
        int rv = hc_embedded_put(e, "race", key, (size_t)kl, "v", 1, HC_ACK_QUORUM, 0);
        bad += rv != 0 && rv != HC_ETIMEDOUT && rv != HC_EUNKNOWN_OUTCOME;
        atomic_fetch_add(&gave_up, rv == HC_ETIMEDOUT || rv == HC_EUNKNOWN_OUTCOME);
        hc_value_t v;
        rv = hc_embedded_get(e, "race", key, (size_t)kl, HC_READ_LOCAL, &v);
        bad += rv != 0 && rv != HC_ENOTFOUND && rv != HC_ETIMEDOUT;
        bad += rv != 0 && v.data != NULL;
        atomic_fetch_add(&gave_up, rv == HC_ETIMEDOUT);
        hc_value_free(&v);
    }
    return (void *)bad;
}

static void test_deadline_races(void)
{
    hc_embedded_opts_t o = {.env = standalone_env, .log = count_log, .timeout_ms = 1};
    hc_embedded_t *e = NULL;
    REQUIRE(hc_embedded_start(&o, &e, NULL, 0) == 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&th[i], NULL, racer, e) == 0);
    }
    for (int i = 0; i < 2; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        CHECK_EQ_INT((long)bad, 0);
    }
    fprintf(stderr, "  deadline_races: %d of 8000 calls gave up at their deadline\n",
            atomic_load(&gave_up));
    CHECK_EQ_INT(hc_embedded_stop(e), 0);
    hc_embedded_free(e);
}

/* A listener that cannot bind fails the start: on its own thread nothing is left; on the
 * caller's loop the node's handles close on the loop's next turns and it frees itself. With the
 * listener turned off the same configuration starts. */
static void test_start_failure_leaves_nothing(void)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uv_tcp_t taken;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    REQUIRE(uv_tcp_init(&loop, &taken) == 0);
    REQUIRE(uv_tcp_bind(&taken, (const struct sockaddr *)&sa, 0) == 0);
    REQUIRE(uv_listen((uv_stream_t *)&taken, 1, NULL) == 0);
    int len = sizeof(sa);
    REQUIRE(uv_tcp_getsockname(&taken, (struct sockaddr *)&sa, &len) == 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "CACHE_HTTP_ADDR=127.0.0.1:%d", ntohs(sa.sin_port));
    const char *const env[] = {"HA_MODE=false", addr, NULL};
    /* with the HTTP listener turned off the configuration starts (nothing to bind) */
    hc_embedded_opts_t off = {.env = env, .log = count_log, .http = HC_EMBEDDED_LISTEN_OFF};
    hc_embedded_t *quiet = NULL;
    CHECK_EQ_INT(hc_embedded_start(&off, &quiet, NULL, 0), 0);
    CHECK_EQ_INT(hc_embedded_put(quiet, "c", "k", 1, "v", 1, HC_ACK_QUORUM, 0), 0);
    hc_embedded_free(quiet);
    for (int on_loop = 0; on_loop < 2; on_loop++) {
        loop_test_t t = {0};
        hc_embedded_opts_t o = {.env = env,
                                .log = count_log,
                                .loop = on_loop ? &loop : NULL,
                                .stopped = on_stopped,
                                .stopped_ud = &t};
        hc_embedded_t *e = (hc_embedded_t *)1;
        char err[512];
        int rv = hc_embedded_start(&o, &e, err, sizeof(err));
        CHECK_EQ_INT(rv, HC_EUNAVAILABLE);
        CHECK(e == NULL);
        CHECK(strstr(err, "could not bind") != NULL);
        if (on_loop) {
            uv_close((uv_handle_t *)&taken, NULL);
            uv_run(&loop, UV_RUN_DEFAULT); /* until the node's handles are gone too */
        }
        CHECK_EQ_INT(t.stopped, 0); /* no stop callback for a start that failed */
    }
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* ---- a one-node cluster (writes go through raft) ---- */

typedef struct {
    char hosts[64], me[80];
    const char *env[12];
} one_node_cluster_t;

/* The environment of a cluster of one node on a free loopback port, plus `extra` (or NULL). */
static int one_node_cluster(one_node_cluster_t *oc, const char *extra)
{
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd); /* the port is free again for the node (a race with other programs is unlikely) */
    snprintf(oc->hosts, sizeof(oc->hosts), "HA_HOSTS=127.0.0.1:%d", ntohs(sa.sin_port));
    snprintf(oc->me, sizeof(oc->me), "HOSTNAME_OVERWRITE=127.0.0.1:%d", ntohs(sa.sin_port));
    const char *env[] = {"HA_MODE=true",
                         oc->hosts,
                         oc->me,
                         "CACHE_LISTEN_ADDR=127.0.0.1",
                         "CACHE_TLS=false",
                         "CACHE_AUTH_TOKEN=0123456789abcdef0123",
                         "CACHE_ELECTION_TIMEOUT_MS=300",
                         "CACHE_HEARTBEAT_MS=50",
                         "CACHE_LOG_LEVEL=warn",
                         extra,
                         NULL};
    memcpy(oc->env, env, sizeof(env));
    return 0;
}

/* ---- the stop drains calls in flight ---- */

typedef struct {
    atomic_int calls, ok, other;
} drained_t;

static void on_drained(void *ud, const hc_embedded_result_t *r)
{
    drained_t *d = ud;
    atomic_fetch_add(&d->calls, 1);
    atomic_fetch_add(r->status == 0 ? &d->ok : &d->other, 1);
}

/* Writes submitted right before the stop are in flight in raft when it begins: the stop lets
 * them finish (every callback before hc_embedded_stop returns, all applied); later ones are
 * refused. */
static void test_stop_drains_calls(void)
{
    one_node_cluster_t oc;
    REQUIRE(one_node_cluster(&oc, NULL) == 0);
    hc_embedded_opts_t o = {.env = oc.env, .log = count_log};
    hc_embedded_t *e = NULL;
    char err[512];
    int rv = hc_embedded_start(&o, &e, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "  start: %s (%s)\n", hc_strerror(rv), err);
    }
    REQUIRE(rv == 0);
    uint64_t deadline = now_ms() + 15000;
    while (!hc_embedded_ready(e) && now_ms() < deadline) {
        usleep(20 * 1000);
    }
    REQUIRE(hc_embedded_ready(e));
    drained_t d = {0};
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "d%d", i);
        hc_embedded_op_t op = {.kind = HC_EMBEDDED_PUT,
                               .cache = "drain",
                               .key = key,
                               .klen = (size_t)kl,
                               .val = "v",
                               .vlen = 1,
                               .ack = HC_ACK_QUORUM};
        CHECK_EQ_INT(hc_embedded_submit(e, &op, on_drained, &d), 0);
    }
    CHECK_EQ_INT(hc_embedded_stop(e), 0);
    CHECK_EQ_INT(atomic_load(&d.calls), N);
    CHECK_EQ_INT(atomic_load(&d.ok), N);
    hc_embedded_op_t late = {.kind = HC_EMBEDDED_GET, .cache = "drain", .key = "d0", .klen = 2};
    CHECK_EQ_INT(hc_embedded_submit(e, &late, on_drained, &d), HC_ESHUTDOWN);
    hc_embedded_free(e);
}

/* ---- the RESP listener of an embedded node ---- */

/* Sends req and reads until `want` came (SO_RCVTIMEO bounds each read); 1 when it did. */
static int resp_exchange(int fd, const char *req, const char *want)
{
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        return 0;
    }
    char buf[256];
    size_t n = 0;
    while (n < strlen(want)) {
        ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (r <= 0) {
            return 0;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    return strcmp(buf, want) == 0;
}

/* With CACHE_RESP_ADDR set (and no HTTP address) the node serves RESP only; a write made
 * through it is in the process's local reads. */
static void test_resp_listener(void)
{
    one_node_cluster_t oc; /* only for its free port */
    REQUIRE(one_node_cluster(&oc, NULL) == 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "CACHE_RESP_ADDR=%s", strchr(oc.hosts, '=') + 1);
    const char *const env[] = {"HA_MODE=false", addr, "CACHE_LOG_LEVEL=warn", NULL};
    hc_embedded_opts_t o = {.env = env, .log = count_log};
    hc_embedded_t *e = NULL;
    char err[512];
    int rv = hc_embedded_start(&o, &e, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "  start: %s (%s)\n", hc_strerror(rv), err);
    }
    REQUIRE(rv == 0);
    struct sockaddr_in sa;
    REQUIRE(uv_ip4_addr("127.0.0.1", atoi(strrchr(addr, ':') + 1), &sa) == 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    CHECK(ok);
    CHECK(ok && resp_exchange(fd, "*2\r\n$8\r\nHC.CACHE\r\n$4\r\nresp\r\n", "+OK\r\n"));
    CHECK(ok && resp_exchange(fd, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8\r\nfromresp\r\n", "+OK\r\n"));
    if (fd >= 0) {
        close(fd);
    }
    hc_value_t v;
    CHECK_EQ_INT(hc_embedded_get(e, "resp", "k", 1, HC_READ_LOCAL, &v), 0);
    CHECK(v.len == 8 && memcmp(v.data, "fromresp", 8) == 0);
    hc_value_free(&v);
    CHECK_EQ_INT(hc_embedded_stop(e), 0);
    hc_embedded_free(e);
}

/* ---- calls given up on: never started, and in flight ---- */

typedef struct {
    hc_embedded_t *e;
    int early_rv;  /* a get while the caller's loop is not running */
    int put_rv[6]; /* puts the loop holds in flight past their deadline */
    int get_rv[6]; /* reading them back afterwards */
    int ready, stop_rv;
} abandon_t;

static void abandon_early(void *arg)
{
    abandon_t *a = arg;
    hc_value_t v;
    a->early_rv = hc_embedded_get(a->e, "c", "k", 1, HC_READ_LOCAL, &v);
}

static void abandon_late(void *arg)
{
    abandon_t *a = arg;
    uint64_t deadline = now_ms() + 15000;
    while (!(a->ready = hc_embedded_ready(a->e)) && now_ms() < deadline) {
        usleep(20 * 1000);
    }
    for (int i = 0; a->ready && i < 6; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        a->put_rv[i] = hc_embedded_put(a->e, "c", key, 2, "v", 1, HC_ACK_QUORUM, 0);
        usleep(400 * 1000); /* the loop's stall is over, the write was applied */
        hc_value_t v;
        a->get_rv[i] = hc_embedded_get(a->e, "c", key, 2, HC_READ_LOCAL, &v);
        hc_value_free(&v);
    }
    a->stop_rv = hc_embedded_stop(a->e);
}

static void test_abandoned_calls(void)
{
    /* a one-node cluster: writes commit through raft on a later loop turn */
    one_node_cluster_t oc;
    REQUIRE(one_node_cluster(&oc, "HACACHE_TEST_EMBED_STALL_MS=300") == 0);
    /* (the loop sleeps 300 ms after starting a call that is still in flight: longer than the
     * callers' deadline of 100 ms) */
    const char *const *env = oc.env;
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    abandon_t a = {0};
    hc_embedded_opts_t o = {.env = env, .loop = &loop, .log = count_log, .timeout_ms = 100};
    char err[512];
    int rv = hc_embedded_start(&o, &a.e, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "  start: %s (%s)\n", hc_strerror(rv), err);
    }
    REQUIRE(rv == 0);

    /* the loop does not run: the call is never started, gives up and is taken off the queue */
    uv_thread_t t;
    REQUIRE(uv_thread_create(&t, abandon_early, &a) == 0);
    uv_thread_join(&t);
    CHECK_EQ_INT(a.early_rv, HC_ETIMEDOUT);

    REQUIRE(uv_thread_create(&t, abandon_late, &a) == 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* until the other thread's stop closed the node */
    uv_thread_join(&t);
    CHECK_EQ_INT(a.ready, 1);
    CHECK_EQ_INT(a.stop_rv, 0);
    for (int i = 0; i < 6; i++) {
        /* started, then given up: the outcome is unknown to the caller, and it was applied */
        CHECK_EQ_INT(a.put_rv[i], HC_EUNKNOWN_OUTCOME);
        CHECK_EQ_INT(a.get_rv[i], 0);
    }
    hc_embedded_free(a.e);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static const hc_test_t tests[] = {
    {"configuration_errors", test_configuration_errors},
    {"standalone_two_threads", test_standalone_two_threads},
    {"caller_loop", test_caller_loop},
    {"free_stops", test_free_stops},
    {"deadline_races", test_deadline_races},
    {"start_failure_leaves_nothing", test_start_failure_leaves_nothing},
    {"abandoned_calls", test_abandoned_calls},
    {"stop_drains_calls", test_stop_drains_calls},
    {"resp_listener", test_resp_listener},
};

HC_TEST_MAIN(tests)
