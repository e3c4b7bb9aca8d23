/* test_admit.c: admission control (server/admit.c): sizing from the file limit, the pending
 * pool (eviction of the oldest, deadlines), the shared cap of admitted connections, idle
 * deadlines, the rate-limited log line and the metrics. Virtual time throughout. */
#include "admit.h"

#include "hacache.h"
#include "log.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------- */
/* sizing */

static void test_plan(void)
{
    static const struct {
        const char *what;
        hc_admit_plan_in_t in;
        hc_admit_plan_t want;
    } cases[] = {
        {"a large limit changes nothing",
         {.nofile = 1048576, .max_clients = 10000, .unauth_max = 128, .resp = 1, .peers = 2},
         {.max_clients = 10000,
          .unauth_max = 128,
          .http_max = 8750,
          .resp_max = 8750,
          .reserve = 38}},
        {"ulimit -n 512, a 3-node cluster with RESP",
         {.nofile = 512, .max_clients = 10000, .unauth_max = 128, .resp = 1, .peers = 2},
         {.max_clients = 357, .unauth_max = 39, .http_max = 313, .resp_max = 313, .reserve = 38}},
        {"ulimit -n 512, standalone with RESP",
         {.nofile = 512, .max_clients = 10000, .unauth_max = 128, .resp = 1},
         {.max_clients = 360, .unauth_max = 60, .http_max = 315, .resp_max = 315, .reserve = 32}},
        {"ulimit -n 512, standalone HTTP only: all of it",
         {.nofile = 512, .max_clients = 10000, .unauth_max = 128},
         {.max_clients = 360, .unauth_max = 120, .http_max = 360, .resp_max = 0, .reserve = 32}},
        {"a knob below what fits is kept",
         {.nofile = 4096, .max_clients = 100, .unauth_max = 16, .resp = 1},
         {.max_clients = 100, .unauth_max = 16, .http_max = 88, .resp_max = 88, .reserve = 32}},
        {"a limit too small for anything still admits one",
         {.nofile = 20, .max_clients = 10000, .unauth_max = 128, .resp = 1},
         {.max_clients = 1, .unauth_max = 1, .http_max = 1, .resp_max = 1, .reserve = 32}},
        {"ulimit -n 512, standalone HTTP with the health listener: its cap in the reserve",
         {.nofile = 512, .max_clients = 10000, .unauth_max = 128, .health = 1},
         {.max_clients = 348,
          .unauth_max = 58,
          .http_max = 348,
          .resp_max = 0,
          .health_max = HC_ADMIT_HEALTH_MAX,
          .reserve = 48}},
        {"two clients: one kept for each listener",
         {.nofile = 4096, .max_clients = 2, .unauth_max = 4, .resp = 1},
         {.max_clients = 2, .unauth_max = 4, .http_max = 1, .resp_max = 1, .reserve = 32}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hc_admit_plan_t got;
        hc_admit_plan(&cases[i].in, &got);
        const hc_admit_plan_t *w = &cases[i].want;
        if (got.max_clients != w->max_clients || got.unauth_max != w->unauth_max ||
            got.http_max != w->http_max || got.resp_max != w->resp_max ||
            got.reserve != w->reserve || got.health_max != w->health_max) {
            fprintf(stderr,
                    "  %s: got max %u unauth %u http %u resp %u reserve %u, want %u %u %u %u %u\n",
                    cases[i].what, got.max_clients, got.unauth_max, got.http_max, got.resp_max,
                    got.reserve, w->max_clients, w->unauth_max, w->http_max, w->resp_max,
                    w->reserve);
            hc_test_failures_++;
        }
        /* whatever the limit, the plan never promises more descriptors than there are */
        uint64_t listeners =
            1 + (cases[i].in.resp != 0) + (cases[i].in.peers > 0) + (cases[i].in.health != 0);
        if (cases[i].in.nofile >= 64) {
            CHECK(got.reserve + got.max_clients + got.unauth_max * listeners <= cases[i].in.nofile);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the gate */

static void test_pending_evicts_oldest(void)
{
    hc_admit_t a;
    hc_admit_limits_t lim = {.max_admitted = 10, .max_pending = 3, .pending_timeout_ms = 1000};
    hc_admit_init(&a, "resp", &lim, NULL);
    hc_admit_conn_t c[5] = {0};
    for (int i = 0; i < 3; i++) {
        CHECK(hc_admit_add_pending(&a, &c[i], 100 + (uint64_t)i) == NULL);
    }
    CHECK_EQ_INT(a.n_pending, 3);
    /* full: the oldest makes room, then the next oldest */
    CHECK(hc_admit_add_pending(&a, &c[3], 200) == &c[0]);
    CHECK_EQ_INT(c[0].state, HC_ADMIT_NONE);
    CHECK(hc_admit_add_pending(&a, &c[4], 201) == &c[1]);
    CHECK_EQ_INT(a.n_pending, 3);
    CHECK_EQ_INT(a.refused[HC_ADMIT_UNAUTH_FULL], 2);
    /* a pending connection that authenticates leaves the pool: no eviction for the next one */
    CHECK_EQ_INT(hc_admit_admit(&a, &c[2], 300), 0);
    CHECK_EQ_INT(a.n_pending, 2);
    CHECK_EQ_INT(a.n_admitted, 1);
    hc_admit_conn_t d = {0};
    CHECK(hc_admit_add_pending(&a, &d, 301) == NULL);
    /* release is idempotent and ignores untracked connections */
    hc_admit_release(&a, &d);
    hc_admit_release(&a, &d);
    hc_admit_release(&a, &c[0]);
    CHECK_EQ_INT(a.n_pending, 2);
}

static void test_pending_deadlines(void)
{
    hc_admit_t a;
    hc_admit_limits_t lim = {.max_admitted = 10, .max_pending = 8, .pending_timeout_ms = 500};
    hc_admit_init(&a, "http", &lim, NULL);
    hc_admit_conn_t c[3] = {0};
    CHECK_EQ_INT(hc_admit_next_deadline(&a), 0);
    hc_admit_add_pending(&a, &c[0], 1000);
    hc_admit_add_pending(&a, &c[1], 1100);
    hc_admit_add_pending(&a, &c[2], 1200);
    CHECK_EQ_INT(hc_admit_next_deadline(&a), 1500);
    CHECK(hc_admit_expired(&a, 1499) == NULL);
    CHECK(hc_admit_expired(&a, 1500) == &c[0]);
    hc_admit_timed_out(&a, &c[0], 1500);
    CHECK_EQ_INT(a.refused[HC_ADMIT_UNAUTH_TIMEOUT], 1);
    /* admitted before its deadline: no longer due */
    CHECK_EQ_INT(hc_admit_admit(&a, &c[1], 1550), 0);
    CHECK_EQ_INT(hc_admit_next_deadline(&a), 1700);
    CHECK(hc_admit_expired(&a, 1650) == NULL); /* admitted ones have no deadline: idle off */
    CHECK(hc_admit_expired(&a, 1700) == &c[2]);
    /* touching a pending connection does not extend its deadline */
    hc_admit_touch(&a, &c[2], 1650);
    CHECK_EQ_INT(c[2].deadline_ms, 1700);
}

static void test_shared_pool(void)
{
    hc_admit_pool_t pool = {.cap = 3};
    hc_admit_t http, resp;
    hc_admit_limits_t lim = {.max_admitted = 2, .max_pending = 4, .pending_timeout_ms = 100};
    hc_admit_init(&http, "http", &lim, &pool);
    hc_admit_init(&resp, "resp", &lim, &pool);
    hc_admit_conn_t h[3] = {0}, r[2] = {0};
    CHECK_EQ_INT(hc_admit_admit(&http, &h[0], 0), 0);
    CHECK_EQ_INT(hc_admit_admit(&http, &h[1], 0), 0);
    CHECK(!hc_admit_has_room(&http));                        /* its own share */
    CHECK_EQ_INT(hc_admit_admit(&http, &h[2], 0), HC_EBUSY); /* nothing counted by admit */
    CHECK_EQ_INT(http.refused[HC_ADMIT_MAX_CLIENTS], 0);
    CHECK_EQ_INT(hc_admit_admit(&resp, &r[0], 0), 0);
    CHECK(!hc_admit_has_room(&resp)); /* the pool */
    hc_admit_add_pending(&resp, &r[1], 0);
    CHECK_EQ_INT(hc_admit_admit(&resp, &r[1], 0), HC_EBUSY);
    CHECK_EQ_INT(r[1].state, HC_ADMIT_PENDING); /* stays pending: its deadline still bounds it */
    hc_admit_release(&http, &h[0]);
    CHECK_EQ_INT(pool.used, 2);
    CHECK_EQ_INT(hc_admit_admit(&resp, &r[1], 0), 0);
    CHECK_EQ_INT(pool.used, 3);
    CHECK_EQ_INT(resp.n_pending, 0);
    CHECK_EQ_INT(hc_admit_admit(&resp, &r[1], 0), 0); /* admitted again: nothing changes */
    CHECK_EQ_INT(pool.used, 3);
}

static void test_idle(void)
{
    hc_admit_t a;
    hc_admit_limits_t lim = {
        .max_admitted = 10, .max_pending = 4, .pending_timeout_ms = 100, .idle_timeout_ms = 1000};
    hc_admit_init(&a, "resp", &lim, NULL);
    hc_admit_conn_t c[2] = {0};
    hc_admit_admit(&a, &c[0], 0);
    hc_admit_admit(&a, &c[1], 10);
    CHECK_EQ_INT(hc_admit_next_deadline(&a), 1000);
    hc_admit_touch(&a, &c[0], 500); /* activity: c[1] is now the first to go */
    CHECK_EQ_INT(hc_admit_next_deadline(&a), 1010);
    CHECK(hc_admit_expired(&a, 1009) == NULL);
    CHECK(hc_admit_expired(&a, 1010) == &c[1]);
    hc_admit_timed_out(&a, &c[1], 1010);
    CHECK_EQ_INT(a.idle_closed, 1);
    CHECK_EQ_INT(a.refused[HC_ADMIT_UNAUTH_TIMEOUT], 0);
    /* a pending connection due earlier comes first */
    hc_admit_conn_t p = {0};
    hc_admit_add_pending(&a, &p, 1200);
    CHECK_EQ_INT(hc_admit_next_deadline(&a), 1300);
    CHECK(hc_admit_expired(&a, 1500) == &p);
    hc_admit_timed_out(&a, &p, 1500);
    CHECK(hc_admit_expired(&a, 1500) == &c[0]);
}

static void test_log_rate_limited(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f != NULL);
    hc_log_setup(HC_LOG_INFO, HC_LOG_TEXT, f);
    hc_admit_t a;
    hc_admit_limits_t lim = {.max_admitted = 1, .max_pending = 1, .pending_timeout_ms = 100};
    hc_admit_init(&a, "resp", &lim, NULL);
    for (uint64_t t = 0; t < 25000; t += 10) { /* 2500 refusals over 25 s: 3 lines */
        hc_admit_refuse(&a, HC_ADMIT_MAX_CLIENTS, 1000 + t);
    }
    hc_log_setup(HC_LOG_INFO, HC_LOG_TEXT, stderr);
    fclose(f);
    int lines = 0;
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    CHECK_EQ_INT(lines, 3);
    CHECK(strstr(text, "listener=resp reason=max_clients") != NULL);
    CHECK(strstr(text, "not_logged_since_last_line=999") != NULL);
    CHECK_EQ_INT(a.refused[HC_ADMIT_MAX_CLIENTS], 2500);
    free(text);
}

static void test_metrics(void)
{
    hc_admit_t a, peer;
    hc_admit_limits_t lim = {.max_admitted = 5, .max_pending = 2, .pending_timeout_ms = 100};
    hc_admit_limits_t plim = {.max_pending = 3, .pending_timeout_ms = 100};
    hc_admit_init(&a, "http", &lim, NULL);
    hc_admit_init(&peer, "peer", &plim, NULL);
    hc_admit_conn_t c = {0}, p = {0};
    hc_admit_admit(&a, &c, 0);
    hc_admit_add_pending(&peer, &p, 0);
    hc_admit_refuse(&a, HC_ADMIT_MAX_CLIENTS, 0);
    const hc_admit_t *gates[] = {&a, NULL, &peer};
    hc_buf_t b;
    hc_buf_init(&b);
    hc_admit_render_metrics(gates, 3, &b);
    REQUIRE(!b.failed);
    static const char *const want[] = {
        "hacache_connections{listener=\"http\",state=\"admitted\"} 1\n",
        "hacache_connections{listener=\"http\",state=\"pending\"} 0\n",
        "hacache_connections{listener=\"peer\",state=\"pending\"} 1\n",
        "hacache_connections_limit{listener=\"http\",state=\"admitted\"} 5\n",
        "hacache_connections_limit{listener=\"peer\",state=\"pending\"} 3\n",
        "hacache_connections_refused_total{listener=\"http\",reason=\"max_clients\"} 1\n",
        "hacache_connections_refused_total{listener=\"peer\",reason=\"unauth_timeout\"} 0\n",
        "hacache_connections_idle_closed_total{listener=\"peer\"} 0\n",
        "# TYPE hacache_connections_refused_total counter\n",
    };
    char *text = strndup(b.data, b.len);
    REQUIRE(text != NULL);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(text, want[i]) == NULL) {
            fprintf(stderr, "  metrics lack %s", want[i]);
            hc_test_failures_++;
        }
    }
    /* the peer port has no cap of admitted connections: no such series */
    CHECK(strstr(text, "listener=\"peer\",state=\"admitted\"") == NULL);
    free(text);
    hc_buf_free(&b);
}

static const hc_test_t tests[] = {
    {"plan", test_plan},
    {"pending_evicts_oldest", test_pending_evicts_oldest},
    {"pending_deadlines", test_pending_deadlines},
    {"shared_pool", test_shared_pool},
    {"idle", test_idle},
    {"log_rate_limited", test_log_rate_limited},
    {"metrics", test_metrics},
};

HC_TEST_MAIN(tests)
