/* resp.c: the Redis-protocol (RESP2) adapter: the listener and its connections.
 *
 * A connection serves the commands in its input buffer in order, in one loop turn, and writes
 * their replies together. Writes pipeline: consecutive write commands are sent to the node
 * without waiting for each other (in cluster mode they are proposed or forwarded together, one
 * replication round trip for the batch) and their replies are queued in order (resp_pend_t). Any
 * other command (a read, a connection setting) waits until every write before it is answered,
 * so "SET k v" followed by "GET k" always sees the write. The node keeps the writes of one
 * connection in order across a leader change (hc_node_write_seq), so a retried write is never
 * applied after a later one. Commands themselves are in resp_cmds.c (and resp_txn.c), the queue
 * of writes in flight in resp_pend.c, replies in resp_reply.c, the parser in resp_parse.c.
 *
 * Connection limits (admit.h, the gate main.c hands over): see hc_resp_start. An admitted
 * connection's idle deadline (CACHE_RESP_IDLE_TIMEOUT_MS, off by default) moves on every read;
 * one that waits on the node or on a write is not idle. */
#include "resp_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define OUT_HIGH (1u << 20) /* stop serving commands while this much output is unwritten */
#define BUF_KEEP (1u << 20) /* larger idle buffers are released */
#define PEND_MAX 1024       /* write commands in flight per connection */

static void resp_conn_process(resp_conn_t *c);
static void resp_conn_flush(resp_conn_t *c);

/* ---- connections ---- */

static void on_closed(uv_handle_t *handle)
{
    resp_conn_t *c = (resp_conn_t *)handle;
    hc_resp_t *r = c->srv;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        r->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    r->nconns--;
    hc_buf_free(&c->in);
    hc_buf_free(&c->out);
    hc_buf_free(&c->wbuf);
    hc_buf_free(&c->gather);
    hc_resp_cmd_free(&c->cmd);
    resp_txn_free(&c->txn);
    free(c);
}

static void conn_close(resp_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    hc_admit_release(c->srv->admit, &c->adm);
    if (c->busy && c->nop != NULL) {
        hc_node_cancel(c->srv->node, c->nop);
        c->mres = HC_MRES_ERROR; /* the client left before the answer */
        resp_command_done(c);
    }
    c->busy = 0;
    c->nop = NULL;
    resp_pend_cancel_all(c);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    resp_conn_t *c = (resp_conn_t *)handle;
    (void)suggested;
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    resp_conn_t *c = (resp_conn_t *)stream;
    (void)buf;
    if (nread < 0) {
        conn_close(c); /* EOF or error: a command still waiting is cancelled */
        return;
    }
    if (nread == 0 || c->closing) {
        return;
    }
    hc_admit_touch(c->srv->admit, &c->adm, uv_now(c->srv->loop));
    hc_buf_append(&c->in, c->srv->rbuf, (size_t)nread);
    if (c->in.failed) {
        conn_close(c);
        return;
    }
    resp_conn_process(c);
    resp_conn_flush(c);
}

static void update_reading(resp_conn_t *c)
{
    int want = !c->closing && !c->close_after && c->in.len - c->in_pos < c->srv->in_high;
    if (want && !c->reading) {
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    } else if (!want && c->reading && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void release_if_big(hc_buf_t *b)
{
    if (b->len == 0 && b->cap > BUF_KEEP) {
        hc_buf_free(b);
        hc_buf_init(b);
    }
}

/* Serves the complete commands buffered, in order, until one waits: a read (or any command
 * that does not pipeline) waits for the writes in flight before it, then for its own answer. */
static void resp_conn_process(resp_conn_t *c)
{
    hc_resp_t *r = c->srv;
    c->processing = 1;
    while (!c->closing && !c->busy && !c->close_after && c->out.len + c->wbuf.len < OUT_HIGH &&
           c->npend < PEND_MAX) {
        size_t avail = c->in.len - c->in_pos, used;
        if (avail == 0) {
            break;
        }
        const char *err;
        int rv = hc_resp_parse(c->in.data + c->in_pos, avail, &r->lim, &c->cmd, &used, &err);
        if (rv == 0 && avail >= r->in_high) {
            rv = HC_ETOOLARGE; /* cannot happen within the parser's bounds; never stall */
            err = "Protocol error: request too large";
        }
        if (rv == 0) {
            break;
        }
        if (rv < 0) {
            if (c->npend > 0) {
                break; /* answered in order, once the writes before it are */
            }
            c->mop = HC_MOP_OTHER;
            c->mack = HC_MACK_NA;
            c->start_ns = hc_mono_ns();
            hc_buf_printf(&c->out, "-ERR %s\r\n", err);
            c->mres = rv == HC_ETOOLARGE ? HC_MRES_TOO_LARGE : HC_MRES_BAD_REQUEST;
            resp_command_done(c);
            c->close_after = 1;
            break;
        }
        c->cmd_base = c->in_pos;
        if (c->cmd.argc > 0 && c->npend > 0 && !resp_cmd_pipelines(c)) {
            break; /* parsed again once the writes before it are answered */
        }
        c->in_pos += used;
        if (c->cmd.argc > 0) {
            resp_dispatch(c);
        }
    }
    c->processing = 0;
    if (!c->busy && c->in_pos > 0) {
        /* nothing refers to the consumed bytes any more (writes in flight own their copies) */
        memmove(c->in.data, c->in.data + c->in_pos, c->in.len - c->in_pos);
        c->in.len -= c->in_pos;
        c->in_pos = 0;
        release_if_big(&c->in);
    }
}

static void on_write(uv_write_t *req, int status)
{
    resp_conn_t *c = req->data;
    c->writing = 0;
    hc_buf_reset(&c->wbuf);
    release_if_big(&c->wbuf);
    if (c->closing) {
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    resp_conn_process(c);
    resp_conn_flush(c);
}

/* Hands the replies to the socket (one write at a time) and closes when asked to. */
static void resp_conn_flush(resp_conn_t *c)
{
    if (c->closing) {
        return;
    }
    if (c->out.failed) {
        conn_close(c);
        return;
    }
    if (!c->writing && c->out.len > 0) {
        hc_buf_t t = c->wbuf;
        c->wbuf = c->out;
        c->out = t;
        hc_buf_reset(&c->out);
        uv_buf_t b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            conn_close(c);
            return;
        }
        c->writing = 1;
    }
    if (!c->writing && !c->busy && c->npend == 0 && c->close_after) {
        conn_close(c);
        return;
    }
    update_reading(c);
}

static resp_conn_t *conn_of_admit(hc_admit_conn_t *a)
{
    return (resp_conn_t *)(void *)((char *)a - offsetof(resp_conn_t, adm));
}

static void on_accept(uv_stream_t *listener, int status)
{
    hc_resp_t *r = listener->data;
    if (status != 0) {
        hc_log(HC_LOG_WARN, "resp accept failed", HC_LS("error", uv_strerror(status)));
        return;
    }
    resp_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->srv = r;
    hc_buf_init(&c->in);
    hc_buf_init(&c->out);
    hc_buf_init(&c->wbuf);
    hc_buf_init(&c->gather);
    hc_buf_init(&c->txn.arena);
    c->id = ++r->last_id;
    memcpy(c->cache, "default", 7);
    c->cache_len = 7;
    c->ack = HC_ACK_QUORUM;
    c->cons = HC_READ_LOCAL;
    c->next = r->conns;
    if (r->conns) {
        r->conns->prev = c;
    }
    r->conns = c;
    r->nconns++;
    uv_tcp_init(r->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uint64_t now = uv_now(r->loop);
    if (!hc_admit_has_room(r->admit)) {
        hc_admit_refuse(r->admit, HC_ADMIT_MAX_CLIENTS, now);
        hc_buf_puts(&c->out, "-ERR max number of clients reached\r\n");
        c->close_after = 1;
        resp_conn_flush(c);
        return;
    }
    if (hc_auth_required(r->auth)) {
        hc_admit_conn_t *evicted = hc_admit_add_pending(r->admit, &c->adm, now);
        if (evicted != NULL) {
            conn_close(conn_of_admit(evicted));
        }
    } else {
        hc_admit_admit(r->admit, &c->adm, now);
    }
    hc_admit_timer_arm(&r->admit_timer);
    update_reading(c);
}

/* A connection past its deadline: not authenticated in time, or admitted and idle. */
static void on_admit_expired(void *ud, hc_admit_conn_t *a)
{
    hc_resp_t *r = ud;
    resp_conn_t *c = conn_of_admit(a);
    uint64_t now = uv_now(r->loop);
    if (a->state == HC_ADMIT_ADMITTED && (c->busy || c->npend > 0 || c->writing)) {
        hc_admit_touch(r->admit, a, now); /* waiting on the node or the client: not idle */
        return;
    }
    hc_admit_timed_out(r->admit, a, now);
    conn_close(c);
}

int hc_resp_start(uv_loop_t *loop, const hc_config_t *cfg, hc_node_t *node, hc_auth_t *auth,
                  hc_metrics_t *metrics, hc_admit_t *admit, hc_resp_t **out)
{
    *out = NULL;
    hc_resp_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return HC_ENOMEM;
    }
    r->loop = loop;
    r->io.process = resp_conn_process;
    r->io.flush = resp_conn_flush;
    r->cfg = cfg;
    r->node = node;
    r->auth = auth;
    r->metrics = metrics;
    r->admit = admit;
    hc_resp_default_limits(cfg, &r->lim);
    r->in_high = r->lim.max_command + 128 * 1024;
    struct sockaddr_storage ss;
    if (hc_resolve_listen(cfg->resp_addr, &ss) != 0) {
        hc_log(HC_LOG_ERROR, "cannot resolve CACHE_RESP_ADDR", HC_LS("addr", cfg->resp_addr));
        free(r);
        return HC_EINVAL;
    }
    *out = r;
    hc_admit_timer_init(&r->admit_timer, loop, admit, on_admit_expired, r);
    r->admit_timer_open = 1;
    uv_tcp_init(loop, &r->listener);
    r->listener.data = r;
    r->listener_open = 1;
    int uvrv = uv_tcp_bind(&r->listener, (const struct sockaddr *)&ss, 0);
    if (uvrv == 0) {
        uvrv = uv_listen((uv_stream_t *)&r->listener, 511, on_accept);
    }
    if (uvrv != 0) {
        hc_log(HC_LOG_ERROR, "cannot listen on CACHE_RESP_ADDR", HC_LS("addr", cfg->resp_addr),
               HC_LS("error", uv_strerror(uvrv)));
        return HC_EUNAVAILABLE;
    }
    hc_log(HC_LOG_INFO, "resp api listening", HC_LS("addr", cfg->resp_addr),
           HC_LB("auth", hc_auth_required(auth)));
    return 0;
}

static void close_all(hc_resp_t *r)
{
    for (resp_conn_t *c = r->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
}

static size_t drain_count(void *owner)
{
    return ((hc_resp_t *)owner)->nconns;
}

static void drain_expired(void *owner)
{
    close_all(owner); /* their pending node requests are cancelled */
}

void hc_resp_shutdown(hc_resp_t *r, uint64_t timeout_ms, void (*cb)(void *ud), void *ud)
{
    r->shutting_down = 1;
    if (r->listener_open) {
        uv_close((uv_handle_t *)&r->listener, NULL);
        r->listener_open = 0;
    }
    for (resp_conn_t *c = r->conns; c != NULL; c = c->next) {
        c->close_after = 1;
        resp_conn_flush(c); /* closes it unless a command or a write is still in progress */
    }
    r->drain.name = "resp";
    r->drain.owner = r;
    r->drain.count = drain_count;
    r->drain.expired = drain_expired;
    r->drain.on_expiry = "closing";
    hc_drain_start(&r->drain, r->loop, timeout_ms, cb, ud);
}

void hc_resp_close(hc_resp_t *r)
{
    if (r == NULL) {
        return;
    }
    if (r->listener_open) {
        uv_close((uv_handle_t *)&r->listener, NULL);
        r->listener_open = 0;
    }
    hc_drain_close(&r->drain);
    if (r->admit_timer_open) {
        hc_admit_timer_close(&r->admit_timer);
        r->admit_timer_open = 0;
    }
    close_all(r);
}

void hc_resp_free(hc_resp_t *r)
{
    free(r); /* every connection freed itself in its close callback */
}

size_t hc_resp_open_connections(const hc_resp_t *r)
{
    return r->nconns;
}
