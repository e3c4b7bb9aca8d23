/* embedded.c: a program that is a hacache cluster member (libhacache_node, own-thread mode).
 *
 * Configured exactly like hacached, from the environment (HA_MODE, HA_HOSTS,
 * HOSTNAME_OVERWRITE, CACHE_*) and the same flags; the HTTP API runs when CACHE_HTTP_ADDR is
 * given. Its workload: every 100 ms it reads the key "greeting" of the cache "example" from its
 * own copy (a local read, no network) and prints the value whenever it changed. SIGTERM or
 * SIGINT stop it in order (leadership handover, drain, close) and it exits 0.
 *
 *   cc embedded.c $(pkg-config --cflags --libs hacache-node) -o embedded
 *   HA_MODE=false CACHE_HTTP_ADDR=127.0.0.1:8080 ./embedded
 *   curl -X PUT --data-binary hello 127.0.0.1:8080/v1/caches/example/greeting
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hacache.h>

/* Log lines go where hacached puts them (stderr); a program would hand them to its logger. */
static void log_line(void *ud, int level, const char *line)
{
    (void)ud;
    (void)level;
    fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv)
{
    /* SIGTERM and SIGINT are taken with sigtimedwait below: block them before any thread
     * starts, so every thread inherits the mask */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    hc_embedded_opts_t opts = {
        .argc = argc, .argv = (const char *const *)argv, .log = log_line, .timeout_ms = 2000};
    hc_embedded_t *node;
    char err[512];
    int rv = hc_embedded_start(&opts, &node, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "embedded: %s\n", err);
        return rv == HC_EINVAL ? 2 : 1;
    }

    char last[256] = "";
    int was_ready = 0;
    for (;;) {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        int sig = sigtimedwait(&stop_signals, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            printf("embedded: %s, stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            fflush(stdout);
            break;
        }
        int ready = hc_embedded_ready(node);
        if (ready != was_ready) {
            printf("embedded: %s\n", ready ? "ready" : "not ready");
            was_ready = ready;
        }
        hc_value_t v;
        rv = hc_embedded_get(node, "example", "greeting", 8, HC_READ_LOCAL, &v);
        char now[256];
        if (rv == 0) {
            snprintf(now, sizeof(now), "%.*s", (int)(v.len < 200 ? v.len : 200), (char *)v.data);
            hc_value_free(&v);
        } else {
            snprintf(now, sizeof(now), "(%s)", hc_strerror(rv));
        }
        if (strcmp(now, last) != 0) {
            printf("embedded: local read example/greeting: %s\n", now);
            fflush(stdout);
            snprintf(last, sizeof(last), "%s", now);
        }
    }

    rv = hc_embedded_stop(node);
    hc_embedded_free(node);
    printf("embedded: stopped (%s)\n", hc_strerror(rv));
    fflush(stdout);
    return rv == 0 ? 0 : 1;
}
