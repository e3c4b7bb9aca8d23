/* client_smoke.c: a command-line driver of libhacache for tests/integration/test_client.py and
 * test_client_api.py.
 * Usage: client_smoke ENDPOINTS TOKEN TIMEOUT_MS MAX_STALE_MS COMMAND...
 * (TOKEN "-" for none; MAX_STALE_MS with a trailing "i", e.g. "60000i", also calls
 * hc_client_set_stale_on_invalidated(c, 1)). Commands, each printing one line:
 *   put CACHE KEY VALUE ACK       -> "put rc=N ms=T"
 *   get CACHE KEY                 -> "get rc=N ms=T len=L stale=S value=V"
 *   del CACHE KEY ACK             -> "del rc=N ms=T"
 *   incr CACHE KEY BY ACK         -> "incr rc=N ms=T value=V"
 *   clear CACHE ACK               -> "clear rc=N ms=T"
 *   getx CACHE KEY READ           -> "getx rc=N ms=T len=L stale=S version=V has_ttl=H ttl=T
 *                                     value=V"; READ: default (NULL opts), nostale (the client's
 *                                     consistency, no stale copy), local, leader, linearizable
 *   putx CACHE KEY VALUE ACK TTL_MS COND -> "putx rc=N ms=T version=V"; COND: - (none),
 *                                     absent (if_absent), vN (if_version N)
 *   putsize CACHE KEY BYTES ACK   -> "putsize rc=N ms=T" (a value of BYTES 'x')
 *   delx CACHE KEY ACK COND       -> "delx rc=N ms=T"; COND: - or vN
 *   configure CACHE MAX_MEMORY DEFAULT_TTL_MS POLICY MAX_STALE_MS -> "configure rc=N ms=T";
 *                                     POLICY: invalidate, serve_stale
 *   info CACHE                    -> "info rc=N ms=T entries=E memory=M max_memory=X
 *                                     default_ttl_ms=D policy=P max_stale_ms=S"
 *   consistency LEVEL             -> "consistency rc=N ms=0" (hc_client_set_consistency)
 *   cachestale CACHE MS           -> "cachestale rc=N ms=0"; MS "default": the client's again
 *   wait                          -> reads a line from stdin (lets the test act in between)
 * ACK is quorum, once, leader or none. One client is used for all commands, so stickiness,
 * failover and the stale copy are exercised across them. Exit 0 unless usage is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hacache.h"
#include "smoke_cmds.h"

static void run_getx(hc_client_t *c, char **a, long long t0)
{
    hc_read_opts_t ro;
    hc_value_t v;
    hc_meta_t m;
    int rv = hc_get_ex(c, a[0], a[1], strlen(a[1]), read_opts_of(a[2], &ro), &v, &m);
    printf(GETX_FMT, rv, now_ms() - t0, v.len, v.stale, (unsigned long long)m.version, m.has_ttl,
           (unsigned long long)m.ttl_ms, rv == 0 ? (const char *)v.data : "");
    hc_value_free(&v);
}

static void run_info(hc_client_t *c, char **a, long long t0)
{
    hc_cache_info_t ci;
    int rv = hc_cache_info(c, a[0], &ci);
    printf("info rc=%d ms=%lld entries=%llu memory=%llu max_memory=%llu default_ttl_ms=%llu "
           "policy=%s max_stale_ms=%llu\n",
           rv, now_ms() - t0, (unsigned long long)ci.entries, (unsigned long long)ci.memory_bytes,
           (unsigned long long)ci.settings.max_memory,
           (unsigned long long)ci.settings.default_ttl_ms,
           ci.settings.policy == HC_POLICY_SERVE_STALE ? "serve_stale" : "invalidate",
           (unsigned long long)ci.settings.max_stale_ms);
}

/* The commands of the data API beyond hc_put/get/del/incr/clear; 0, or -1 if cmd is not one. */
static int run_ex(hc_client_t *c, const char *cmd, char **a, long long t0)
{
    int rv;
    if (strcmp(cmd, "getx") == 0) {
        run_getx(c, a, t0);
    } else if (strcmp(cmd, "putx") == 0) {
        hc_put_opts_t o = {.ack = ack_of(a[3]), .ttl_ms = strtoull(a[4], NULL, 10)};
        condition_of(a[5], &o.if_absent, &o.has_if_version, &o.if_version);
        uint64_t ver = 0;
        rv = hc_put_ex(c, a[0], a[1], strlen(a[1]), a[2], strlen(a[2]), &o, &ver);
        printf("putx rc=%d ms=%lld version=%llu\n", rv, now_ms() - t0, (unsigned long long)ver);
    } else if (strcmp(cmd, "putsize") == 0) {
        size_t n = strtoull(a[2], NULL, 10);
        char *val = malloc(n ? n : 1);
        if (val == NULL) {
            return -1;
        }
        memset(val, 'x', n);
        rv = hc_put(c, a[0], a[1], strlen(a[1]), val, n, ack_of(a[3]), 0);
        free(val);
        printf("putsize rc=%d ms=%lld\n", rv, now_ms() - t0);
    } else if (strcmp(cmd, "delx") == 0) {
        hc_del_opts_t o = {.ack = ack_of(a[2])};
        int if_absent;
        condition_of(a[3], &if_absent, &o.has_if_version, &o.if_version);
        rv = hc_del_ex(c, a[0], a[1], strlen(a[1]), &o);
        printf("delx rc=%d ms=%lld\n", rv, now_ms() - t0);
    } else if (strcmp(cmd, "configure") == 0) {
        hc_cache_settings_t set = {.max_memory = strtoull(a[1], NULL, 10),
                                   .default_ttl_ms = strtoull(a[2], NULL, 10),
                                   .policy = strcmp(a[3], "serve_stale") == 0
                                                 ? HC_POLICY_SERVE_STALE
                                                 : HC_POLICY_INVALIDATE,
                                   .max_stale_ms = strtoull(a[4], NULL, 10)};
        rv = hc_cache_configure(c, a[0], &set);
        printf("configure rc=%d ms=%lld\n", rv, now_ms() - t0);
    } else if (strcmp(cmd, "info") == 0) {
        run_info(c, a, t0);
    } else if (strcmp(cmd, "consistency") == 0) {
        printf("consistency rc=%d ms=0\n", hc_client_set_consistency(c, consistency_of(a[0])));
    } else if (strcmp(cmd, "cachestale") == 0) {
        printf("cachestale rc=%d ms=0\n", hc_client_set_cache_stale(c, a[0], cache_stale_of(a[1])));
    } else {
        return -1;
    }
    return 0;
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
        int need = words_of(cmd);
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
        } else if (strcmp(cmd, "wait") == 0) {
            char line[64];
            printf("waiting\n");
            fflush(stdout);
            if (fgets(line, sizeof(line), stdin) == NULL) {
                break;
            }
        } else if (run_ex(c, cmd, a, t0) != 0) {
            fprintf(stderr, "%s failed\n", cmd);
            hc_client_free(c);
            return 2;
        }
        fflush(stdout);
        i += need;
    }
    hc_client_free(c);
    return 0;
}
