/* client_smoke.c: a command-line driver of libhacache for tests/integration/test_client.py.
 * Usage: client_smoke ENDPOINTS TOKEN TIMEOUT_MS MAX_STALE_MS COMMAND...
 * (TOKEN "-" for none; MAX_STALE_MS with a trailing "i", e.g. "60000i", also calls
 * hc_client_set_stale_on_invalidated(c, 1)). Commands, each printing one line:
 *   put CACHE KEY VALUE ACK       -> "rc=N ms=T"
 *   get CACHE KEY                 -> "rc=N ms=T len=L stale=S value=V"
 *   del CACHE KEY ACK             -> "rc=N ms=T"
 *   incr CACHE KEY BY ACK         -> "rc=N ms=T value=V"
 *   clear CACHE ACK               -> "rc=N ms=T"
 *   wait                          -> reads a line from stdin (lets the test act in between)
 * ACK is quorum, once, leader or none. One client is used for all commands, so stickiness,
 * failover and the stale copy are exercised across them. Exit 0 unless usage is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hacache.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static hc_ack_t ack_of(const char *s)
{
    if (strcmp(s, "once") == 0) {
        return HC_ACK_ONCE;
    }
    if (strcmp(s, "leader") == 0) {
        return HC_ACK_LEADER;
    }
    return strcmp(s, "none") == 0 ? HC_ACK_NONE : HC_ACK_QUORUM;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: client_smoke ENDPOINTS TOKEN TIMEOUT_MS MAX_STALE_MS CMD...\n");
        return 2;
    }
    hc_client_opts_t opts = {.endpoints = argv[1],
                             .token = strcmp(argv[2], "-") == 0 ? NULL : argv[2],
                             .timeout_ms = (uint32_t)atoi(argv[3]),
                             .max_stale_ms = (uint32_t)atoi(argv[4])};
    hc_client_t *c = NULL;
    long long t0 = now_ms();
    int rv = hc_client_new(&opts, &c);
    if (rv == 0 && strchr(argv[4], 'i') != NULL) {
        hc_client_set_stale_on_invalidated(c, 1);
    }
    printf("new rc=%d ms=%lld\n", rv, now_ms() - t0);
    fflush(stdout);
    if (rv != 0) {
        return 0;
    }
    int i = 5;
    while (i < argc) {
        const char *cmd = argv[i];
        int need = strcmp(cmd, "put") == 0     ? 5
                   : strcmp(cmd, "get") == 0   ? 3
                   : strcmp(cmd, "del") == 0   ? 4
                   : strcmp(cmd, "incr") == 0  ? 5
                   : strcmp(cmd, "clear") == 0 ? 3
                   : strcmp(cmd, "wait") == 0  ? 1
                                               : 0;
        if (need == 0 || i + need > argc) {
            fprintf(stderr, "bad command at %s\n", cmd);
            hc_client_free(c);
            return 2;
        }
        char **a = argv + i + 1;
        t0 = now_ms();
        if (strcmp(cmd, "put") == 0) {
            rv = hc_put(c, a[0], a[1], strlen(a[1]), a[2], strlen(a[2]), ack_of(a[3]), 0);
            printf("put rc=%d ms=%lld\n", rv, now_ms() - t0);
        } else if (strcmp(cmd, "get") == 0) {
            hc_value_t v;
            rv = hc_get(c, a[0], a[1], strlen(a[1]), &v);
            printf("get rc=%d ms=%lld len=%zu stale=%d value=%s\n", rv, now_ms() - t0, v.len,
                   v.stale, rv == 0 ? (const char *)v.data : "");
            hc_value_free(&v);
        } else if (strcmp(cmd, "del") == 0) {
            rv = hc_del(c, a[0], a[1], strlen(a[1]), ack_of(a[2]));
            printf("del rc=%d ms=%lld\n", rv, now_ms() - t0);
        } else if (strcmp(cmd, "incr") == 0) {
            int64_t val = 0;
            rv = hc_incr(c, a[0], a[1], strlen(a[1]), atoll(a[2]), ack_of(a[3]), &val);
            printf("incr rc=%d ms=%lld value=%lld\n", rv, now_ms() - t0, (long long)val);
        } else if (strcmp(cmd, "clear") == 0) {
            rv = hc_clear(c, a[0], ack_of(a[1]));
            printf("clear rc=%d ms=%lld\n", rv, now_ms() - t0);
        } else {
            char line[64];
            printf("waiting\n");
            fflush(stdout);
            if (fgets(line, sizeof(line), stdin) == NULL) {
                break;
            }
        }
        fflush(stdout);
        i += need;
    }
    hc_client_free(c);
    return 0;
}
