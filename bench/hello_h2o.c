/* hello_h2o: the trivial h2o 2.2.5 (libuv) server that bench.sh measures hacached against.
 *
 * Every request, whatever its method or path, gets 200 with a fixed body, so the ratio
 * hacached/hello_h2o is hacached's own overhead on top of the HTTP stack it is built on.
 * Like hacached it speaks HTTP/1.1 and h2c with prior knowledge on one plain socket (h2o's
 * HTTP/1 parser recognises the HTTP/2 connection preface and hands the connection over).
 *
 * usage: hello_h2o PORT [BODY_BYTES]   (listens on 127.0.0.1:PORT; BODY_BYTES defaults to 64)
 * SIGINT/SIGTERM: stop accepting, send GOAWAY to open connections, exit 0 shortly after. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <h2o.h>

enum { DEFAULT_BODY_BYTES = 64, MAX_BODY_BYTES = 16 * 1024 * 1024, SHUTDOWN_GRACE_MS = 200 };

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static uv_tcp_t listener;
static uv_signal_t sigint_watcher, sigterm_watcher;
static uv_timer_t stop_timer;
static int shutting_down;

/* The response body; allocated once in main, never freed before exit. */
static char *body;
static size_t body_len;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain"));
    /* h2o_send_inline leaves content_length unset (HTTP/1.1 would fall back to chunked). */
    req->res.content_length = body_len;
    h2o_send_inline(req, body, body_len);
    return 0;
}

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status != 0)
        return;
    uv_tcp_t *conn = malloc(sizeof(*conn));
    if (conn == NULL)
        return;
    uv_tcp_init(server->loop, conn);
    if (uv_accept(server, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, free_handle);
        return;
    }
    /* Request/response traffic: never wait for Nagle. */
    uv_tcp_nodelay(conn, 1);
    /* h2o owns the socket from here and frees the uv_tcp_t through free_handle on close. */
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, free_handle);
    h2o_accept(&accept_ctx, sock);
}

static void on_stop_timer(uv_timer_t *timer)
{
    uv_stop(timer->loop);
}

static void on_signal(uv_signal_t *watcher, int signum)
{
    (void)signum;
    if (shutting_down) { /* second signal: do not wait for the grace period */
        uv_stop(watcher->loop);
        return;
    }
    shutting_down = 1;
    uv_close((uv_handle_t *)&listener, NULL);
    h2o_context_request_shutdown(&ctx);
    /* Give GOAWAY frames and in-flight responses a moment to be written. */
    uv_timer_start(&stop_timer, on_stop_timer, SHUTDOWN_GRACE_MS, 0);
}

/* Parses a decimal in [min, max]; returns 0 on success, -1 otherwise. */
static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long port, size = DEFAULT_BODY_BYTES;
    if (argc < 2 || argc > 3 || parse_ulong(argv[1], 1, 65535, &port) != 0 ||
        (argc == 3 && parse_ulong(argv[2], 0, MAX_BODY_BYTES, &size) != 0)) {
        fprintf(stderr,
                "usage: %s PORT [BODY_BYTES]  (127.0.0.1 only; BODY_BYTES 0..%d, default %d)\n",
                argv[0], MAX_BODY_BYTES, DEFAULT_BODY_BYTES);
        return 2;
    }
    body_len = size;
    body = malloc(body_len + 1);
    if (body == NULL) {
        fprintf(stderr, "hello_h2o: out of memory\n");
        return 1;
    }
    memset(body, 'x', body_len);

    /* A peer closing mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&config);
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;

    uv_loop_t *loop = uv_default_loop();
    h2o_context_init(&ctx, loop, &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;

    struct sockaddr_in addr;
    int r = uv_ip4_addr("127.0.0.1", (int)port, &addr);
    if (r == 0)
        r = uv_tcp_init(loop, &listener);
    if (r == 0)
        r = uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&listener, SOMAXCONN, on_connection);
    if (r != 0) {
        fprintf(stderr, "hello_h2o: cannot listen on 127.0.0.1:%lu: %s\n", port, uv_strerror(r));
        return 1;
    }

    uv_timer_init(loop, &stop_timer);
    uv_signal_init(loop, &sigint_watcher);
    uv_signal_init(loop, &sigterm_watcher);
    uv_signal_start(&sigint_watcher, on_signal, SIGINT);
    uv_signal_start(&sigterm_watcher, on_signal, SIGTERM);

    fprintf(stderr, "hello_h2o: listening on 127.0.0.1:%lu, body %zu bytes\n", port, body_len);
    uv_run(loop, UV_RUN_DEFAULT);

    /* Connections still open are abandoned with the process; the loop never runs again. */
    free(body);
    return 0;
}
