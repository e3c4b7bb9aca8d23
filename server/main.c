/* main.c: hacached — the process around one cluster member (member.h): configuration (--help,
 * --version, --check-config and their exit codes), the file descriptor limit, SIGPIPE, the
 * signals (SIGTERM/SIGINT: orderly stop, a second one exits; SIGHUP: credential reload), and
 * the loop. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include <sodium.h>

#include "config.h"
#include "hacache.h"
#include "log.h"
#include "member.h"

typedef struct {
    uv_loop_t loop;
    hc_config_t cfg;
    hc_member_t *member;
    uv_signal_t sigterm, sigint, sighup;
    int signals_started;
} daemon_t;

static void print_errors(const hc_config_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        fprintf(stderr, "hacached: %s\n", errs->line[i]);
    }
}

static void close_signal(uv_signal_t *s)
{
    if (!uv_is_closing((uv_handle_t *)s)) {
        uv_close((uv_handle_t *)s, NULL);
    }
}

/* The member closed everything it had: the signal handles are the last ones on the loop. */
static void on_member_closed(void *ud)
{
    daemon_t *d = ud;
    if (d->signals_started) {
        close_signal(&d->sigterm);
        close_signal(&d->sigint);
        close_signal(&d->sighup);
    }
    if (hc_member_abandoned(d->member)) {
        uv_stop(&d->loop); /* connections left open: exit as is */
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    if (signum == SIGHUP) {
        if (!hc_member_stopping(d->member)) {
            hc_member_reload_creds(d->member, "SIGHUP");
        }
        return;
    }
    if (hc_member_stopping(d->member)) {
        hc_log(HC_LOG_WARN, "second signal during shutdown, exiting now");
        exit(1);
    }
    hc_member_stop(d->member, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Raises the soft file limit to the hard one (hacached only: an embedded node leaves its
 * process's limits alone) and returns the soft limit in force. */
static uint64_t raise_file_limit(void)
{
    const uint64_t infinite = 1u << 20; /* what Linux allows at most by default (nr_open) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        hc_log(HC_LOG_WARN, "cannot read the file descriptor limit, assuming 1024");
        return 1024;
    }
    uint64_t was = rl.rlim_cur == RLIM_INFINITY ? infinite : (uint64_t)rl.rlim_cur;
    uint64_t hard = rl.rlim_max == RLIM_INFINITY ? infinite : (uint64_t)rl.rlim_max;
    uint64_t now = was;
    if (was < hard) {
        struct rlimit want = rl;
        want.rlim_cur = (rlim_t)hard;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            now = hard;
        } else {
            hc_log(HC_LOG_WARN, "cannot raise the file descriptor limit", HC_LU("soft", was),
                   HC_LU("hard", hard));
        }
    }
    hc_log(HC_LOG_INFO, "file descriptor limit", HC_LU("soft", now), HC_LU("hard", hard),
           HC_LU("soft_at_start", was));
    return now;
}

static void start_signal(daemon_t *d, uv_signal_t *s, int signum)
{
    uv_signal_init(&d->loop, s);
    s->data = d;
    uv_signal_start(s, on_signal, signum);
}

/* Loads and checks the configuration. -1 to go on and start; otherwise the exit status. */
static int configure(daemon_t *d, int argc, char **argv)
{
    hc_config_errors_t errs;
    memset(&errs, 0, sizeof(errs));
    hc_config_init(&d->cfg);
    int load_rv = hc_config_load(&d->cfg, argc, argv, NULL, NULL, NULL, &errs);
    if (d->cfg.cmd_help) {
        hc_config_print_help(stdout);
        return 0;
    }
    if (d->cfg.cmd_version) {
        printf("hacached %s\n", HC_VERSION_STRING);
        return 0;
    }
    /* --check-config reports every problem (syntax and semantics) at once; the daemon fails
     * fast on the first. */
    if (load_rv != 0 && !d->cfg.cmd_check_config) {
        errs.n = 1;
        print_errors(&errs);
        return 2;
    }
    if (hc_config_validate(&d->cfg, (int64_t)time(NULL), &errs) != 0 || load_rv != 0) {
        if (!d->cfg.cmd_check_config) {
            errs.n = errs.n > 0 ? 1 : 0;
        }
        print_errors(&errs);
        return 2;
    }
    if (d->cfg.cmd_check_config) {
        printf("configuration OK\n");
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static daemon_t d; /* static: reachable from the signal handlers' handles until exit */
    int exit_code = configure(&d, argc, argv);
    if (exit_code >= 0) {
        hc_config_free(&d.cfg);
        return exit_code;
    }
    exit_code = 0;
    hc_log_setup(d.cfg.log_level, d.cfg.log_format, stderr);
    if (sodium_init() < 0) {
        fprintf(stderr, "hacached: libsodium failed to initialise\n");
        hc_config_free(&d.cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* One malloc arena for the loop and one for libuv's workers (a snapshot being loaded):
     * a store built on a worker thread and freed on the loop otherwise leaves its pages in
     * arenas the next load may not reuse, and the process grows with every catch-up. */
    mallopt(M_ARENA_MAX, 2);

    uv_loop_init(&d.loop);
    hc_member_opts_t mo = {.http = 1,
                           .resp = 1,
                           .nofile = raise_file_limit(),
                           .banner = "hacached starting",
                           .closed = on_member_closed,
                           .ud = &d};
    int rv = hc_member_new(&d.loop, &d.cfg, &mo, &d.member);
    if (rv == 0) {
        rv = hc_member_start(d.member);
        if (rv == 0) {
            start_signal(&d, &d.sigterm, SIGTERM);
            start_signal(&d, &d.sigint, SIGINT);
            start_signal(&d, &d.sighup, SIGHUP);
            d.signals_started = 1;
        } else {
            /* a configuration problem found only now (CACHE_DATA_DIR, TLS files) exits 2 */
            exit_code = hc_member_config_error(d.member) ? 2 : 1;
        }
    } else {
        hc_log(HC_LOG_ERROR, "cannot start node", HC_LS("error", hc_strerror(rv)));
        exit_code = 1;
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);

    if (d.member != NULL && hc_member_abandoned(d.member)) {
        /* h2o still references the loop and its config from those connections: exit as is */
        return exit_code;
    }
    hc_member_free(d.member);
    if (uv_loop_close(&d.loop) != 0) {
        hc_log(HC_LOG_ERROR, "handles still open at exit");
        uv_print_all_handles(&d.loop, stderr);
        exit_code = exit_code ? exit_code : 1;
    }
    hc_config_free(&d.cfg);
    return exit_code;
}
