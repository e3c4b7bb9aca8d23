/* aclient_smoke.c: a command-line driver of the asynchronous client (libhacache_uv) for
 * tests/integration/test_client_async_stale.py: client_smoke's command language (smoke_cmds.h)
 * run on a libuv loop, each call started from the previous call's callback, so one client's
 * stale copy is exercised across them.
 * Usage: aclient_smoke ENDPOINTS TOKEN TIMEOUT_MS MAX_STALE_MS COMMAND...
 * (TOKEN "-" for none; MAX_STALE_MS with a trailing "i", e.g. "60000i", also calls
 * hc_aclient_set_stale_on_invalidated(c, 1)). Commands, each printing one line when it ends:
 *   put CACHE KEY VALUE ACK       -> "put rc=N ms=T" (hc_aput)
 *   get CACHE KEY                 -> "get rc=N ms=T len=L stale=S key=KEY value=V" (hc_aget)
 *   del CACHE KEY ACK             -> "del rc=N ms=T" (hc_adel)
 *   incr CACHE KEY BY ACK         -> "incr rc=N ms=T value=V" (hc_aincr)
 *   clear CACHE ACK               -> "clear rc=N ms=T" (hc_aclear)
 *   getx CACHE KEY READ           -> as client_smoke's getx (hc_aget_ex)
 *   putx CACHE KEY VALUE ACK TTL_MS COND -> "putx rc=N ms=T version=V" (hc_aput_ex)
 *   delx CACHE KEY ACK COND       -> "delx rc=N ms=T" (hc_adel_ex)
 *   consistency LEVEL             -> "consistency rc=N ms=0" (hc_aclient_set_consistency)
 *   cachestale CACHE MS           -> "cachestale rc=N ms=0" (hc_aclient_set_cache_stale)
 *   bg                            -> the next command runs in the background: the one after it
 *                                    starts at once (lines come in the order calls end)
 *   join                          -> waits for every call in flight
 *   sleep MS                      -> "sleep rc=0 ms=T": a uv timer of MS ms (bg calls go on)
 *   wait                          -> joins, then reads a line from stdin (the test acts)
 * Exit 0 when the commands ran and the loop closed with no handle left; 2 on bad usage, 3 when
 * the loop could not be closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hacache.h"
#include "smoke_cmds.h"

typedef struct {
    uv_loop_t *loop;
    hc_aclient_t *c;
    char **argv;
    int argc, i;  /* the next command */
    int inflight; /* calls started whose callback has not run */
    int fg;       /* a call the next command waits for is in flight */
    int joining;  /* join or wait: every call in flight first */
    int next_bg;  /* the next call runs in the background */
    int closed;   /* hc_aclient_close was called */
    int bad;      /* a usage error */
} run_t;

typedef struct {
    run_t *r;
    char op[16];
    char key[128]; /* get */
    long long t0;
    int bg;
    uv_timer_t timer; /* sleep */
} call_t;

static void run_commands(run_t *r);

static void finish(run_t *r)
{
    if (!r->closed) {
        r->closed = 1;
        hc_aclient_close(r->c, NULL, NULL);
    }
}

/* A call ended: its line was printed; the commands go on if nothing holds them. */
static void call_done(call_t *k)
{
    run_t *r = k->r;
    fflush(stdout);
    r->inflight--;
    if (!k->bg) {
        r->fg = 0;
    }
    free(k);
    if (r->fg || (r->joining && r->inflight > 0)) {
        return;
    }
    r->joining = 0;
    run_commands(r);
}

static void on_get(void *ud, int rv, const hc_value_t *v)
{
    call_t *k = ud;
    printf("get rc=%d ms=%lld len=%zu stale=%d key=%s value=%s\n", rv, now_ms() - k->t0,
           v ? v->len : 0, v ? v->stale : 0, k->key, v ? (const char *)v->data : "");
    call_done(k);
}

static void on_getx(void *ud, int rv, const hc_value_t *v, const hc_meta_t *m)
{
    call_t *k = ud;
    printf(GETX_FMT, rv, now_ms() - k->t0, v ? v->len : 0, v ? v->stale : 0,
           m ? (unsigned long long)m->version : 0ULL, m ? m->has_ttl : 0,
           m ? (unsigned long long)m->ttl_ms : 0ULL, v ? (const char *)v->data : "");
    call_done(k);
}

static void on_write(void *ud, int rv, int64_t value)
{
    call_t *k = ud;
    printf("%s rc=%d ms=%lld", k->op, rv, now_ms() - k->t0);
    if (strcmp(k->op, "incr") == 0) {
        printf(" value=%lld", (long long)value);
    } else if (strcmp(k->op, "putx") == 0) {
        printf(" version=%lld", (long long)value);
    }
    printf("\n");
    call_done(k);
}

static void on_sleep_closed(uv_handle_t *h)
{
    call_t *k = h->data;
    printf("sleep rc=0 ms=%lld\n", now_ms() - k->t0);
    call_done(k);
}

static void on_sleep(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, on_sleep_closed);
}

/* Starts the call of command cmd (arguments a): 0, 1 when cmd is not a call, or the error of
 * the starting function (then no callback runs). */
static int start_call(run_t *r, const char *cmd, char **a, call_t *k)
{
    hc_aclient_t *c = r->c;
    size_t kl = strcmp(cmd, "clear") == 0 || strcmp(cmd, "sleep") == 0 ? 0 : strlen(a[1]);
    if (strcmp(cmd, "get") == 0) {
        snprintf(k->key, sizeof(k->key), "%s", a[1]);
        return hc_aget(c, a[0], a[1], kl, on_get, k, NULL);
    }
    if (strcmp(cmd, "getx") == 0) {
        hc_read_opts_t ro;
        return hc_aget_ex(c, a[0], a[1], kl, read_opts_of(a[2], &ro), on_getx, k, NULL);
    }
    if (strcmp(cmd, "put") == 0) {
        return hc_aput(c, a[0], a[1], kl, a[2], strlen(a[2]), ack_of(a[3]), 0, on_write, k, NULL);
    }
    if (strcmp(cmd, "putx") == 0) {
        hc_put_opts_t o = {.ack = ack_of(a[3]), .ttl_ms = strtoull(a[4], NULL, 10)};
        condition_of(a[5], &o.if_absent, &o.has_if_version, &o.if_version);
        return hc_aput_ex(c, a[0], a[1], kl, a[2], strlen(a[2]), &o, on_write, k, NULL);
    }
    if (strcmp(cmd, "del") == 0) {
        return hc_adel(c, a[0], a[1], kl, ack_of(a[2]), on_write, k, NULL);
    }
    if (strcmp(cmd, "delx") == 0) {
        hc_del_opts_t o = {.ack = ack_of(a[2])};
        int if_absent;
        condition_of(a[3], &if_absent, &o.has_if_version, &o.if_version);
        return hc_adel_ex(c, a[0], a[1], kl, &o, on_write, k, NULL);
    }
    if (strcmp(cmd, "incr") == 0) {
        return hc_aincr(c, a[0], a[1], kl, atoll(a[2]), ack_of(a[3]), on_write, k, NULL);
    }
    if (strcmp(cmd, "clear") == 0) {
        return hc_aclear(c, a[0], ack_of(a[1]), on_write, k, NULL);
    }
    if (strcmp(cmd, "sleep") == 0) {
        uv_timer_init(r->loop, &k->timer);
        k->timer.data = k;
        return uv_timer_start(&k->timer, on_sleep, strtoull(a[0], NULL, 10), 0);
    }
    return 1;
}

/* The commands that are not calls: 0 when cmd was one, 1 when not. */
static int run_setting(run_t *r, const char *cmd, char **a)
{
    if (strcmp(cmd, "consistency") == 0) {
        printf("consistency rc=%d ms=0\n", hc_aclient_set_consistency(r->c, consistency_of(a[0])));
    } else if (strcmp(cmd, "cachestale") == 0) {
        printf("cachestale rc=%d ms=0\n",
               hc_aclient_set_cache_stale(r->c, a[0], cache_stale_of(a[1])));
    } else if (strcmp(cmd, "bg") == 0) {
        r->next_bg = 1;
    } else {
        return 1;
    }
    fflush(stdout);
    return 0;
}

/* Runs commands until one has to wait for a callback, or to the end (then closes the client
 * once nothing is in flight). */
static void run_commands(run_t *r)
{
    while (r->i < r->argc && !r->closed) {
        const char *cmd = r->argv[r->i];
        int need = words_of(cmd);
        if (need == 0 || r->i + need > r->argc) {
            fprintf(stderr, "bad command at %s\n", cmd);
            r->bad = 1;
            break;
        }
        char **a = r->argv + r->i + 1;
        if (strcmp(cmd, "join") == 0 || strcmp(cmd, "wait") == 0) {
            if (r->inflight > 0) { /* again once the last call in flight ended */
                r->joining = 1;
                return;
            }
            r->i += need;
            if (strcmp(cmd, "wait") == 0) {
                char line[64];
                printf("waiting\n");
                fflush(stdout);
                if (fgets(line, sizeof(line), stdin) == NULL) {
                    r->i = r->argc; /* the test is gone: stop here */
                }
            }
            continue;
        }
        r->i += need;
        if (run_setting(r, cmd, a) == 0) {
            continue;
        }
        call_t *k = calloc(1, sizeof(*k));
        if (k == NULL) {
            r->bad = 1;
            break;
        }
        *k = (call_t){.r = r, .t0 = now_ms(), .bg = r->next_bg};
        snprintf(k->op, sizeof(k->op), "%s", cmd);
        r->next_bg = 0;
        int rv = start_call(r, cmd, a, k);
        if (rv != 0) {
            fprintf(stderr, "%s: %s\n", cmd, rv == 1 ? "not a command here" : hc_strerror(rv));
            free(k);
            r->bad = 1;
            break;
        }
        r->inflight++;
        if (!k->bg) {
            r->fg = 1;
            return;
        }
    }
    if (r->inflight == 0 || r->bad) {
        finish(r); /* cancels what is still in flight (after a usage error) */
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: aclient_smoke ENDPOINTS TOKEN TIMEOUT_MS MAX_STALE_MS CMD...\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    hc_client_opts_t opts = {.endpoints = argv[1],
                             .token = strcmp(argv[2], "-") == 0 ? NULL : argv[2],
                             .timeout_ms = (uint32_t)atoi(argv[3]),
                             .max_stale_ms = (uint32_t)atoi(argv[4])};
    run_t r = {.loop = &loop, .argv = argv, .argc = argc, .i = 5};
    long long t0 = now_ms();
    int rv = hc_aclient_new(&loop, &opts, &r.c);
    if (rv == 0 && strchr(argv[4], 'i') != NULL) {
        hc_aclient_set_stale_on_invalidated(r.c, 1);
    }
    printf("new rc=%d ms=%lld\n", rv, now_ms() - t0);
    fflush(stdout);
    if (rv == 0) {
        run_commands(&r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "handles left on the loop\n");
        return 3;
    }
    return r.bad ? 2 : 0;
}
