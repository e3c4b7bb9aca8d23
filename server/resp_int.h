/* resp_int.h: what the RESP adapter's files share (not part of the adapter's interface).
 *
 *   resp_parse.c  the pure parser (hc_resp_parse)
 *   resp.c        the listener and the connections: reading, the command loop, the queue of
 *                 writes in flight (pipelining) and their replies in order, writing, limits
 *   resp_cmds.c   the commands: the table, dispatch, replies, the node requests of a command
 */
#ifndef HC_RESP_INT_H
#define HC_RESP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "drain.h"
#include "resp.h"
#include "util.h"

#define CACHE_NAME_MAX  128
#define CLIENT_NAME_MAX 256 /* CLIENT SETNAME: longer names are refused */

/* What the node requests of a command are for, and how their answers are combined. */
typedef enum {
    M_GET,
    M_MGET,
    M_TTL,
    M_PTTL,
    M_EXISTS,
    M_DEL,
    M_SET,
    M_INCR,
    M_FLUSH,
} op_mode_t;

struct resp_conn;
struct resp_pend;

/* One node request of a pending write command. */
typedef struct {
    struct resp_pend *p;
    hc_node_op_t *nop; /* NULL once answered (or answered before the call returned) */
    int done;
} resp_wreq_t;

/* A write command whose node requests are in flight (pipelining): consecutive writes of a
 * connection are sent to the node together and answered in order. */
typedef struct resp_pend {
    struct resp_pend *next;
    struct resp_conn *c;
    op_mode_t mode;
    int issuing;  /* its requests are being sent: completion is reported after */
    int complete; /* every request answered, reply built */
    int err;      /* first error answered (0: none) */
    int status;   /* single-request commands: the answer */
    hc_apply_result_t res;
    int64_t count;  /* DEL: keys removed */
    hc_buf_t reply; /* the reply, when it was built before the commands ahead of it were answered */
    hc_metric_op_t mop;
    hc_metric_ack_t mack;
    hc_metric_result_t mres;
    uint64_t start_ns;
    uint32_t nreq, ndone;
    resp_wreq_t req[];
} resp_pend_t;

typedef struct resp_conn {
    uv_tcp_t tcp; /* first: the handle is the connection */
    struct hc_resp *srv;
    struct resp_conn *prev, *next;
    hc_buf_t in;   /* bytes read; [in_pos, in.len) not yet parsed */
    size_t in_pos; /* the current command starts at cmd_base */
    hc_buf_t out;  /* replies not yet handed to the socket */
    hc_buf_t wbuf; /* replies being written */
    uv_write_t wreq;
    int writing, reading, closing;
    int close_after; /* QUIT, protocol error, shutdown: close once the answer is written */
    int processing;  /* inside resp_conn_process */

    /* the command being served; its arguments are offsets from in.data + cmd_base */
    hc_resp_cmd_t cmd;
    size_t cmd_base;
    int busy;    /* a read (or another non-pipelined command) waits for the node */
    int issuing; /* inside hc_node_write/read: an answer now is synchronous */
    hc_node_op_t *nop;
    op_mode_t mode;
    size_t op_next, op_end; /* arguments still to send to the node, one request each */
    int op_stop;            /* an error was answered: no further requests */
    int used_ops;           /* the command went through start_ops (which records metrics) */
    int64_t count;          /* DEL, EXISTS, MGET */
    hc_buf_t gather;        /* MGET: the values answered so far, as bulk strings (owned) */
    int w_op;               /* write template: hc_op_t */
    size_t w_val_arg;       /* argument holding the value (0: none) */
    uint64_t w_ttl_ms;
    int w_if_absent;
    int64_t w_incr_by;

    /* writes in flight, oldest first (pipelining) */
    resp_pend_t *pend_head, *pend_tail;
    uint32_t npend;

    /* metrics of the current command */
    hc_metric_op_t mop;
    hc_metric_ack_t mack;
    hc_metric_result_t mres;
    uint64_t start_ns;

    hc_admit_conn_t adm; /* pending until AUTH (with a token), then admitted */

    /* per-connection settings */
    uint64_t id; /* CLIENT ID, HELLO: unique per listener, from 1 */
    int authed;
    char name[CLIENT_NAME_MAX + 1]; /* CLIENT SETNAME; "" = none */
    size_t name_len;
    char cache[CACHE_NAME_MAX + 1];
    size_t cache_len;
    hc_ack_t ack;
    hc_consistency_t cons;
} resp_conn_t;

#define READ_CHUNK (64 * 1024)

struct hc_resp {
    uv_loop_t *loop;
    const hc_config_t *cfg;
    hc_node_t *node;
    hc_auth_t *auth;       /* borrowed: the API tokens (shared with HTTP) */
    hc_metrics_t *metrics; /* borrowed: request counters (shared with HTTP) */
    hc_admit_t *admit;     /* borrowed: connection limits */
    hc_admit_timer_t admit_timer;
    int admit_timer_open;
    hc_resp_limits_t lim;
    size_t in_high; /* stop reading while this much input waits */
    uv_tcp_t listener;
    int listener_open;
    resp_conn_t *conns;
    size_t nconns;
    uint64_t last_id; /* of the connections accepted so far */
    int shutting_down;
    hc_drain_t drain;
    char rbuf[READ_CHUNK]; /* one read at a time on one loop: shared by every connection */
};

/* ---- resp_cmds.c ---- */

/* 1 when the parsed command c->cmd is a write that may join the writes in flight (pipelining). */
int resp_cmd_pipelines(resp_conn_t *c);
/* Serves the parsed command c->cmd: answers at once, queues a pending write, or leaves c->busy
 * set (a read waiting on the node; resp_conn_process is called again once it is answered). */
void resp_dispatch(resp_conn_t *c);
/* Builds the reply of a pending write whose requests are all answered, into c->out. */
void resp_pend_reply(resp_conn_t *c, resp_pend_t *p);
/* Records the metrics of the current (non-queued) command. */
void resp_command_done(resp_conn_t *c);

/* ---- resp.c ---- */

/* Serves the complete commands buffered, in order, until one waits. */
void resp_conn_process(resp_conn_t *c);
/* Hands the replies to the socket and closes when asked to. */
void resp_conn_flush(resp_conn_t *c);
/* Queues a pending write of `nreq` node requests (the caller sends them); NULL on OOM. */
resp_pend_t *resp_pend_new(resp_conn_t *c, op_mode_t mode, uint32_t nreq);
/* One request of a pending write was answered (the caller recorded the answer in w->p). */
void resp_pend_req_done(resp_wreq_t *w);
/* Every request of p has been sent (some may be answered already). */
void resp_pend_issued(resp_pend_t *p);

#endif
