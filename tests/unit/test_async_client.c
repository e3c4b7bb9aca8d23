/* test_async_client.c: the asynchronous client's contract on a real libuv loop, without a
 * server: deadlines against a refused port and against a port that accepts and never answers
 * (a write then ends HC_EUNKNOWN_OUTCOME), callbacks never inside the starting call, exactly one
 * callback per call, cancellation, closing with calls in flight and from inside a callback, and
 * a loop that closes with no handle left. */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "hacache.h"

typedef struct {
    int calls;                   /* callbacks so far */
    int rv;                      /* the last one's code */
    int inside;                  /* set while the starting call runs */
    int early;                   /* a callback ran inside the starting call */
    uint64_t at;                 /* loop time of the last callback */
    int closed;                  /* closed_cb ran */
    hc_aclient_t *close_from_cb; /* close this client from the callback */
} seen_t;

static void on_get(void *ud, int rv, const hc_value_t *val)
{
    seen_t *s = ud;
    s->calls++;
    s->rv = rv;
    s->early |= s->inside;
    CHECK(rv == 0 ? val != NULL : val == NULL);
    if (s->close_from_cb != NULL) {
        hc_aclient_t *c = s->close_from_cb;
        s->close_from_cb = NULL;
        hc_aclient_close(c, NULL, NULL);
    }
}

static void on_write(void *ud, int rv, int64_t value)
{
    seen_t *s = ud;
    s->calls++;
    s->rv = rv;
    s->early |= s->inside;
    CHECK_EQ_INT(value, 0);
}

static void on_closed(void *ud)
{
    ((seen_t *)ud)->closed++;
}

static hc_aclient_t *new_client(uv_loop_t *loop, const char *eps, uint32_t timeout_ms)
{
    hc_client_opts_t o = {.endpoints = eps, .timeout_ms = timeout_ms};
    hc_aclient_t *c = NULL;
    CHECK_EQ_INT(hc_aclient_new(loop, &o, &c), 0);
    return c;
}

/* A port nothing listens on: every attempt is refused, the call ends at its deadline with
 * HC_EUNAVAILABLE, never inside hc_aget. */
static void test_deadline_refused(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_aclient_t *c = new_client(&loop, "http://127.0.0.1:1", 300);
    REQUIRE(c != NULL);
    seen_t s = {0};
    uint64_t t0 = uv_now(&loop);
    s.inside = 1;
    CHECK_EQ_INT(hc_aget(c, "c", "k", 1, on_get, &s, NULL), 0);
    s.inside = 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t took = uv_now(&loop) - t0;
    CHECK_EQ_INT(s.calls, 1);
    CHECK_EQ_INT(s.rv, HC_EUNAVAILABLE);
    CHECK_EQ_INT(s.early, 0);
    CHECK(took >= 250 && took < 2000);
    char why[256];
    CHECK_EQ_INT(hc_aclient_last_error(c, why, sizeof(why)), 0);
    CHECK(strstr(why, "127.0.0.1:1") != NULL);
    hc_aclient_close(c, on_closed, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(s.closed, 1);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* A listener that never accepts: the kernel completes the handshake, the request is sent, no
 * answer comes. A write's outcome is then unknown; a read times out. */
static void test_no_answer_write_is_unknown(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 16) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    char eps[64];
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d", ntohs(a.sin_port));
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_aclient_t *c = new_client(&loop, eps, 1200);
    REQUIRE(c != NULL);
    seen_t w = {0}, g = {0};
    CHECK_EQ_INT(hc_aput(c, "c", "k", 1, "v", 1, HC_ACK_QUORUM, 0, on_write, &w, NULL), 0);
    CHECK_EQ_INT(hc_aget(c, "c", "k", 1, on_get, &g, NULL), 0);
    uint64_t t0 = uv_now(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t took = uv_now(&loop) - t0;
    CHECK_EQ_INT(w.calls, 1);
    CHECK_EQ_INT(w.rv, HC_EUNKNOWN_OUTCOME);
    CHECK_EQ_INT(g.calls, 1);
    CHECK_EQ_INT(g.rv, HC_ETIMEDOUT);
    CHECK(took >= 1000 && took < 3000);
    hc_aclient_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    close(fd);
}

/* hc_acancel runs the callback at once with HC_ECANCELED, and never again. */
static void test_cancel(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_aclient_t *c = new_client(&loop, "http://127.0.0.1:1", 5000);
    REQUIRE(c != NULL);
    seen_t s = {0};
    hc_aop_t *op = NULL;
    CHECK_EQ_INT(hc_aput(c, "c", "k", 1, "v", 1, HC_ACK_QUORUM, 0, on_write, &s, &op), 0);
    REQUIRE(op != NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* the first attempt starts */
    hc_acancel(op);
    CHECK_EQ_INT(s.calls, 1);
    CHECK_EQ_INT(s.rv, HC_ECANCELED);
    hc_aclient_close(c, on_closed, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(s.calls, 1);
    CHECK_EQ_INT(s.closed, 1);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* Closing with calls in flight ends each with HC_ECANCELED before hc_aclient_close returns. */
static void test_close_with_calls_in_flight(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_aclient_t *c = new_client(&loop, "http://127.0.0.1:1,http://127.0.0.1:2", 5000);
    REQUIRE(c != NULL);
    seen_t s[5];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 5; i++) {
        int rv = i % 2 ? hc_aget(c, "c", "k", 1, on_get, &s[i], NULL)
                       : hc_aincr(c, "c", "n", 1, 1, HC_ACK_QUORUM, on_write, &s[i], NULL);
        CHECK_EQ_INT(rv, 0);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    seen_t closed = {0};
    hc_aclient_close(c, on_closed, &closed);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(s[i].calls, 1);
        CHECK_EQ_INT(s[i].rv, HC_ECANCELED);
    }
    CHECK_EQ_INT(closed.closed, 0); /* from the loop */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(closed.closed, 1);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* A callback may close its own client; the calls still in flight are cancelled. */
static void test_close_from_a_callback(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_aclient_t *c = new_client(&loop, "http://127.0.0.1:1", 200);
    REQUIRE(c != NULL);
    seen_t first = {.close_from_cb = c}, other = {0};
    CHECK_EQ_INT(hc_aget(c, "c", "k", 1, on_get, &first, NULL), 0);
    /* a longer call: still in flight when the first one's callback closes the client */
    CHECK_EQ_INT(hc_adel(c, "c", "k", 1, HC_ACK_QUORUM, on_write, &other, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(first.calls, 1);
    CHECK_EQ_INT(other.calls, 1);
    CHECK(other.rv == HC_ECANCELED || other.rv == HC_EUNAVAILABLE);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* Bad arguments are refused by the call itself; the callback does not run. */
static void test_invalid_arguments(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_client_opts_t bad = {.endpoints = "ftp://x:1"};
    hc_aclient_t *c = NULL;
    CHECK_EQ_INT(hc_aclient_new(&loop, &bad, &c), HC_EINVAL);
    c = new_client(&loop, "http://127.0.0.1:1", 100);
    REQUIRE(c != NULL);
    seen_t s = {0};
    CHECK_EQ_INT(hc_aget(c, "bad/name", "k", 1, on_get, &s, NULL), HC_EINVAL);
    CHECK_EQ_INT(hc_aget(c, "c", "", 0, on_get, &s, NULL), HC_EINVAL);
    CHECK_EQ_INT(hc_aput(c, "c", "k", 1, NULL, 3, HC_ACK_QUORUM, 0, on_write, &s, NULL), HC_EINVAL);
    hc_client_tls_t t = {.ca_file = "/nonexistent.pem"};
    CHECK_EQ_INT(hc_aclient_set_tls(c, &t), HC_EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(s.calls, 0);
    hc_aclient_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static const hc_test_t tests[] = {
    {"deadline_refused", test_deadline_refused},
    {"no_answer_write_is_unknown", test_no_answer_write_is_unknown},
    {"cancel", test_cancel},
    {"close_with_calls_in_flight", test_close_with_calls_in_flight},
    {"close_from_a_callback", test_close_from_a_callback},
    {"invalid_arguments", test_invalid_arguments},
};
HC_TEST_MAIN(tests)
