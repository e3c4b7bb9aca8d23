/* client_load.c: steady load through libhacache for fault tests (test_client_tls.py): put then
 * get of a fresh key, over and over, until standard input reaches its end or --seconds pass.
 * Prints "progress ok=N fail=M" after every 50 operations, one "fail op=... rc=... err=..." line
 * per failed call (with hc_client_last_error), and "done ok=N fail=M" at the end; a get that
 * returns another value than the one just put counts as a failure ("mismatch").
 *
 *   client_load ENDPOINTS [--token T] [--token-file F] [--cacert FILE] [--server-name NAME]
 *               [--timeout MS] [--seconds S] [--once]
 *
 * --once: one put and one get, then exit (exit status 1 when either failed; the failure line
 * says why). Otherwise the exit status is 0 unless usage is wrong. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hacache.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Has standard input reached its end (the test closed it)? */
static int stdin_closed(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) {
        return 0;
    }
    char buf[256];
    return read(0, buf, sizeof(buf)) <= 0;
}

static void report_fail(hc_client_t *c, const char *op, const char *key, int rv)
{
    char why[512];
    hc_client_last_error(c, why, sizeof(why));
    printf("fail op=%s key=%s rc=%d (%s) err=%s\n", op, key, rv, hc_strerror(rv), why);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: client_load ENDPOINTS [--token T] [--token-file F] [--cacert FILE] "
                        "[--server-name NAME] [--timeout MS] [--seconds S] [--once]\n");
        return 2;
    }
    hc_client_opts_t o = {.endpoints = argv[1]};
    hc_client_tls_t tls = {0};
    const char *token_file = NULL;
    double seconds = 600;
    int once = 0;
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--once") == 0) {
            once = 1;
        } else if (v == NULL) {
            fprintf(stderr, "client_load: %s needs a value\n", argv[i]);
            return 2;
        } else if (strcmp(argv[i], "--token") == 0) {
            o.token = v, i++;
        } else if (strcmp(argv[i], "--token-file") == 0) {
            token_file = v, i++;
        } else if (strcmp(argv[i], "--cacert") == 0) {
            tls.ca_file = v, i++;
        } else if (strcmp(argv[i], "--server-name") == 0) {
            tls.server_name = v, i++;
        } else if (strcmp(argv[i], "--timeout") == 0) {
            o.timeout_ms = (uint32_t)atoi(v), i++;
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(v), i++;
        } else {
            fprintf(stderr, "client_load: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    hc_client_t *c = NULL;
    int rv = hc_client_new(&o, &c);
    if (rv == 0 && (tls.ca_file || tls.server_name)) {
        rv = hc_client_set_tls(c, &tls);
        if (rv != 0) {
            report_fail(c, "set_tls", "-", rv);
            hc_client_free(c);
            return 1;
        }
    }
    if (rv == 0 && token_file != NULL && (rv = hc_client_set_token_file(c, token_file)) != 0) {
        report_fail(c, "set_token_file", "-", rv);
        hc_client_free(c);
        return 1;
    }
    if (rv != 0) {
        printf("fail op=new key=- rc=%d (%s) err=\n", rv, hc_strerror(rv));
        return 1;
    }
    unsigned long ok = 0, fail = 0;
    double end = now_s() + seconds;
    char key[64], val[64];
    for (unsigned long n = 0; now_s() < end; n++) {
        snprintf(key, sizeof(key), "k%lu-%ld", n, (long)getpid());
        snprintf(val, sizeof(val), "v%lu", n);
        rv = hc_put(c, "load", key, strlen(key), val, strlen(val), HC_ACK_QUORUM, 0);
        if (rv != 0) {
            report_fail(c, "put", key, rv);
            fail++;
        } else {
            ok++;
            hc_value_t v;
            rv = hc_get(c, "load", key, strlen(key), &v);
            if (rv != 0) {
                report_fail(c, "get", key, rv);
                fail++;
            } else if (v.len != strlen(val) || memcmp(v.data, val, v.len) != 0) {
                printf("fail op=get key=%s rc=0 mismatch value=%.*s\n", key, (int)v.len,
                       (const char *)v.data);
                fail++;
            } else {
                ok++;
            }
            hc_value_free(&v);
        }
        if (once) {
            break;
        }
        if (n % 25 == 24) {
            printf("progress ok=%lu fail=%lu\n", ok, fail);
            fflush(stdout);
            if (stdin_closed()) {
                break;
            }
        }
        fflush(stdout);
    }
    printf("done ok=%lu fail=%lu\n", ok, fail);
    hc_client_free(c);
    return once && fail > 0 ? 1 : 0;
}
