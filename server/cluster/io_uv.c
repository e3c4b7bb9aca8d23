/* io_uv.c: the one binding of cluster mode to the outside world: the libuv loop (clock, the
 * idle handle that collects raft's output once per loop turn, the timers) and the peer links
 * (peer.h, with the peer TLS context). It fills cluster_t.io (cl_io_t) and turns libuv and peer
 * events into calls of the cluster's entry points. Nothing else in server/cluster/ calls uv_* or
 * includes peer.h. */
#include "cluster_int.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "log.h"
#include "peer.h"
#include "tls.h"

/* A child process encoding a snapshot, read back through a pipe (io_encode_bg). */
typedef struct {
    struct binding *b;
    int peer;
    int active;  /* the child runs (or its pipe is being read) */
    int closing; /* the pipe handle is closing: the slot is not reusable yet */
    pid_t pid;
    uv_pipe_t pipe;
    char buf[64 * 1024];
} encoder_t;

typedef struct binding {
    cluster_t *c;
    uv_loop_t *loop;
    uv_work_t load;  /* a received snapshot loading on libuv's thread pool (io_load_bg) */
    int loading;     /* load queued or running */
    encoder_t *enc;  /* per peer slot */
    int enc_closing; /* encoder pipes still closing */
    int closing_all; /* cl_io_uv_close was called */
    hc_tls_ctx_t *tls;
    hc_peers_t *peers;
    uv_idle_t idle;
    uv_prepare_t prepare; /* notes when the loop starts waiting for events, and how long */
    uint64_t wait_from;
    int64_t wait_ms; /* uv_backend_timeout: -1 forever */
    uv_timer_t timers[CL_TIMER_COUNT];
    int handles_open;
    int idle_active;
    int closing_handles;
    void (*close_cb)(void *ud);
    void *close_ud;
} binding_t;

static void closed_one(binding_t *b);

static void on_encoder_closed(uv_handle_t *h)
{
    encoder_t *e = h->data;
    binding_t *b = e->b;
    e->closing = 0;
    b->enc_closing--;
    if (b->closing_all) {
        closed_one(b);
    }
}

/* Reaps the child and closes the pipe; 1 when the child exited with 0. */
static int encoder_finish(encoder_t *e, int kill_it)
{
    int status = 0, ok = 0;
    if (kill_it) {
        kill(e->pid, SIGKILL);
    }
    while (waitpid(e->pid, &status, 0) < 0 && errno == EINTR) {
    }
    ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    e->active = 0;
    e->closing = 1;
    e->b->enc_closing++;
    uv_close((uv_handle_t *)&e->pipe, on_encoder_closed);
    return ok;
}

static void on_encoder_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    encoder_t *e = h->data;
    (void)hint;
    *buf = uv_buf_init(e->buf, sizeof(e->buf));
}

static void on_encoder_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    encoder_t *e = s->data;
    cluster_t *c = e->b->c;
    if (n > 0) {
        cl_snap_bytes(c, e->peer, (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    if (n == 0 || !e->active) {
        return; /* EAGAIN, or cancelled by cl_snap_bytes */
    }
    int ok = encoder_finish(e, n != UV_EOF) && n == UV_EOF;
    cl_snap_encoded(c, e->peer, ok);
}

/* The child: the store as it was at fork(), encoded and written to the pipe; nothing else of
 * the process is touched (no loop, no sockets), and _exit skips every exit handler. */
static void encoder_child(cluster_t *c, int fd)
{
    hc_buf_t out;
    hc_buf_init(&out);
    hc_fsm_snapshot_encode(c->fsm, &out);
    int ok = !out.failed;
    size_t off = 0;
    while (ok && off < out.len) {
        ssize_t w = write(fd, (const char *)out.data + off, out.len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    _exit(ok ? 0 : 1);
}

static int io_encode_bg(void *ud, int peer)
{
    binding_t *b = ud;
    if (!b->handles_open || b->enc == NULL || peer < 0 || (size_t)peer >= b->c->cap) {
        return HC_EINVAL;
    }
    encoder_t *e = &b->enc[peer];
    if (e->active || e->closing) {
        return HC_EBUSY;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return HC_EINTERNAL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return HC_EINTERNAL;
    }
    if (pid == 0) {
        /* the child keeps only the pipe: no listening socket or peer connection outlives the
         * parent because of it (a restarted node must be able to bind its ports at once) */
        int w = fds[1] > 3 ? fds[1] : 3;
        if (w != fds[1] && dup2(fds[1], w) < 0) {
            _exit(1);
        }
        close_range(3, (unsigned)w - 1, 0);
        close_range((unsigned)w + 1, ~0u, 0);
        encoder_child(b->c, w);
    }
    close(fds[1]);
    e->b = b;
    e->peer = peer;
    e->pid = pid;
    uv_pipe_init(b->loop, &e->pipe, 0);
    e->pipe.data = e;
    if (uv_pipe_open(&e->pipe, fds[0]) != 0 ||
        uv_read_start((uv_stream_t *)&e->pipe, on_encoder_alloc, on_encoder_read) != 0) {
        e->active = 1;
        encoder_finish(e, 1);
        return HC_EINTERNAL;
    }
    e->active = 1;
    return 0;
}

static void io_encode_cancel(void *ud, int peer)
{
    binding_t *b = ud;
    if (b->enc != NULL && peer >= 0 && (size_t)peer < b->c->cap && b->enc[peer].active) {
        uv_read_stop((uv_stream_t *)&b->enc[peer].pipe);
        encoder_finish(&b->enc[peer], 1);
    }
}

static void load_work(uv_work_t *w)
{
    cl_snap_load_run(w->data);
}

static void load_done(uv_work_t *w, int status)
{
    binding_t *b = (binding_t *)((char *)w - offsetof(binding_t, load));
    if (status != 0) { /* UV_ECANCELED: it never ran */
        ((snap_load_t *)w->data)->rv = HC_EINTERNAL;
    }
    b->loading = 0;
    if (b->closing_all) {
        closed_one(b); /* the cluster frees the job */
        return;
    }
    cl_snap_loaded(b->c);
}

static int io_load_bg(void *ud, snap_load_t *job)
{
    binding_t *b = ud;
    if (!b->handles_open || b->loading) {
        return HC_EBUSY;
    }
    b->load.data = job;
    if (uv_queue_work(b->loop, &b->load, load_work, load_done) != 0) {
        return HC_EINTERNAL;
    }
    b->loading = 1;
    return 0;
}

static uint64_t io_now(void *ud)
{
    binding_t *b = ud;
    return uv_now(b->loop);
}

static void on_idle(uv_idle_t *h)
{
    binding_t *b = h->data;
    uv_idle_stop(h);
    b->idle_active = 0;
    if (!b->c->closing) {
        cl_process(b->c);
    }
}

static void on_prepare(uv_prepare_t *h)
{
    binding_t *b = h->data;
    b->wait_from = uv_now(b->loop);
    b->wait_ms = uv_backend_timeout(b->loop);
}

static uint64_t io_overslept(void *ud)
{
    binding_t *b = ud;
    if (!b->handles_open || b->wait_ms < 0) {
        return 0;
    }
    /* uv_now is the instant the wait returned (libuv updates it then) */
    uint64_t due = b->wait_from + (uint64_t)b->wait_ms, now = uv_now(b->loop);
    return now > due ? now - due : 0;
}

static void io_kick(void *ud)
{
    binding_t *b = ud;
    if (b->handles_open && !b->idle_active) {
        b->idle_active = 1;
        uv_idle_start(&b->idle, on_idle);
    }
}

static void on_timer(uv_timer_t *t)
{
    binding_t *b = t->data;
    cluster_t *c = b->c;
    if (c->closing) {
        return;
    }
    switch ((cl_timer_t)(t - b->timers)) {
    case CL_TIMER_RAFT:
        cl_on_raft_timer(c);
        break;
    case CL_TIMER_SNAP:
        cl_on_snap_timer(c);
        break;
    case CL_TIMER_HANDOVER:
        cl_on_handover_timeout(c);
        break;
    case CL_TIMER_QUORUM:
        cl_ql_check(c);
        break;
    default:
        break;
    }
}

static void io_timer_start(void *ud, cl_timer_t t, uint64_t delay_ms, uint64_t repeat_ms)
{
    binding_t *b = ud;
    if (b->handles_open) {
        uv_timer_start(&b->timers[t], on_timer, delay_ms, repeat_ms);
    }
}

static void io_timer_stop(void *ud, cl_timer_t t)
{
    binding_t *b = ud;
    if (b->handles_open) {
        uv_timer_stop(&b->timers[t]);
    }
}

static int io_timer_active(void *ud, cl_timer_t t)
{
    binding_t *b = ud;
    return b->handles_open && uv_is_active((uv_handle_t *)&b->timers[t]);
}

static int io_send(void *ud, int peer, const uint8_t *buf, size_t len)
{
    binding_t *b = ud;
    return b->peers ? hc_peers_send(b->peers, peer, buf, len) : HC_EUNAVAILABLE;
}

static int io_is_up(void *ud, int peer)
{
    binding_t *b = ud;
    return b->peers ? hc_peers_is_up(b->peers, peer) : 0;
}

static size_t io_queued(void *ud, int peer)
{
    binding_t *b = ud;
    return b->peers ? hc_peers_queued(b->peers, peer) : 0;
}

static const char *io_peer_name(void *ud, int peer)
{
    binding_t *b = ud;
    return b->peers ? hc_peers_name(b->peers, peer) : NULL;
}

static uint32_t io_peer_version(void *ud, int peer)
{
    binding_t *b = ud;
    return b->peers ? hc_peers_version(b->peers, peer) : 0;
}

int cl_io_uv_new(cluster_t *c, uv_loop_t *loop)
{
    binding_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return HC_ENOMEM;
    }
    b->c = c;
    b->loop = loop;
    b->enc = calloc(c->cap, sizeof(*b->enc));
    if (b->enc == NULL) {
        free(b);
        return HC_ENOMEM;
    }
    c->binding = b;
    c->io = (cl_io_t){.ud = b,
                      .now = io_now,
                      .kick = io_kick,
                      .timer_start = io_timer_start,
                      .timer_stop = io_timer_stop,
                      .timer_active = io_timer_active,
                      .send = io_send,
                      .is_up = io_is_up,
                      .queued = io_queued,
                      .peer_name = io_peer_name,
                      .peer_version = io_peer_version,
                      .overslept = io_overslept,
                      .encode_bg = io_encode_bg,
                      .encode_cancel = io_encode_cancel,
                      .load_bg = io_load_bg};
    return 0;
}

static void on_peer_up(void *ud, int peer, uint32_t version)
{
    binding_t *b = ud;
    cl_on_peer_up(b->c, peer, version);
}

static void on_peer_down(void *ud, int peer, const char *reason)
{
    binding_t *b = ud;
    cl_on_peer_down(b->c, peer, reason);
}

static void on_peer_frame(void *ud, int peer, const uint8_t *data, size_t len)
{
    binding_t *b = ud;
    cl_on_peer_frame(b->c, peer, data, len);
}

int cl_io_uv_start(cluster_t *c)
{
    binding_t *b = c->binding;
    const hc_config_t *cfg = c->cfg;
    if (cfg->tls) {
        char err[512];
        if (hc_tls_ctx_new(cfg, &b->tls, err, sizeof(err)) != 0) {
            fprintf(stderr, "hacached: %s\n", err);
            return HC_EINVAL;
        }
    }
    hc_peers_opts_t po;
    memset(&po, 0, sizeof(po));
    po.cfg = cfg;
    po.tls = b->tls;
    po.cb.up = on_peer_up;
    po.cb.down = on_peer_down;
    po.cb.frame = on_peer_frame;
    po.ud = b;
    int rv = hc_peers_new(b->loop, &po, &b->peers);
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "cannot create the peer layer", HC_LS("error", hc_strerror(rv)));
        return HC_EINTERNAL;
    }
    uv_idle_init(b->loop, &b->idle);
    b->idle.data = b;
    uv_prepare_init(b->loop, &b->prepare);
    b->prepare.data = b;
    b->wait_ms = -1;
    uv_prepare_start(&b->prepare, on_prepare);
    uv_unref((uv_handle_t *)&b->prepare);
    for (int i = 0; i < CL_TIMER_COUNT; i++) {
        uv_timer_init(b->loop, &b->timers[i]);
        b->timers[i].data = b;
    }
    b->handles_open = 1;
    return hc_peers_start(b->peers) == 0 ? 0 : HC_EINTERNAL;
}

static void closed_one(binding_t *b)
{
    if (--b->closing_handles == 0 && b->close_cb) {
        b->close_cb(b->close_ud);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void on_peers_closed(void *ud)
{
    binding_t *b = ud;
    b->peers = NULL;
    closed_one(b);
}

void cl_io_uv_close(cluster_t *c, void (*cb)(void *ud), void *ud)
{
    binding_t *b = c->binding;
    b->close_cb = cb;
    b->close_ud = ud;
    b->closing_handles++; /* held until every handle below was asked to close */
    if (b->handles_open) {
        b->handles_open = 0;
        b->closing_handles++;
        uv_close((uv_handle_t *)&b->idle, on_handle_closed);
        b->closing_handles++;
        uv_close((uv_handle_t *)&b->prepare, on_handle_closed);
        for (int i = 0; i < CL_TIMER_COUNT; i++) {
            b->closing_handles++;
            uv_close((uv_handle_t *)&b->timers[i], on_handle_closed);
        }
    }
    b->closing_all = 1;
    for (size_t i = 0; b->enc != NULL && i < c->cap; i++) {
        if (b->enc[i].active) {
            uv_read_stop((uv_stream_t *)&b->enc[i].pipe);
            encoder_finish(&b->enc[i], 1);
        }
    }
    b->closing_handles += b->enc_closing; /* each one calls closed_one when closed */
    if (b->loading) {
        /* a worker may be loading: its end (load_done) is awaited; not yet started, it is
         * cancelled and load_done comes with UV_ECANCELED */
        b->closing_handles++;
        uv_cancel((uv_req_t *)&b->load);
    }
    if (b->peers) {
        b->closing_handles++;
        hc_peers_close(b->peers, on_peers_closed, b);
    }
    closed_one(b);
}

void cl_io_uv_free(cluster_t *c)
{
    binding_t *b = c->binding;
    if (b != NULL) {
        hc_tls_ctx_unref(b->tls);
        free(b->enc);
        free(b);
        c->binding = NULL;
    }
}

struct hc_peers *cl_io_uv_peers(cluster_t *c)
{
    binding_t *b = c->binding;
    return b ? b->peers : NULL;
}
