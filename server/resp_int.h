/* resp_int.h: what the RESP adapter's files share (not part of the adapter's interface).
 *
 *   resp.c        the listener and the connections: reading, the command loop, writing, limits
 *   resp_cmds.c   the commands: the table, dispatch, the node requests of a command
 *   resp_txn.c    the commands gathered into one write (MULTI/EXEC, SET ... GET, MSET, ...)
 *   resp_pend.c   the writes in flight (pipelining) and their replies in order
 *   resp_reply.c  replies, arguments, key checks, a command's metrics
 *   resp_parse.c  the pure parser (hc_resp_parse)
 * Arrows run down that list; the two upward needs (a pending write's reply, resuming the
 * connection loop once held-back commands may run) go through function pointers: a pending
 * write's reply_fn and hc_resp.io. */
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
    M_TXN, /* a write whose reply is built from value records (resp_txn.c) */
} op_mode_t;

/* How the reply of one command of a transaction is built from its value records. */
typedef enum {
    D_SET,     /* +OK, nil when a condition failed */
    D_SET_GET, /* the old value or nil */
    D_GET,     /* the value or nil */
    D_MGET,    /* an array of values */
    D_EXISTS,  /* the number of keys found */
    D_DEL,     /* the number of keys removed */
    D_GETDEL,  /* the old value or nil */
    D_INCR,    /* the new value */
    D_EXPIRE,  /* 1 changed, 0 absent (or no expiry to remove) */
    D_MSET,    /* +OK */
    D_TTL,     /* seconds left, -1 no expiry, -2 absent */
    D_PTTL,    /* milliseconds left */
} resp_desc_kind_t;

typedef struct {
    resp_desc_kind_t kind;
    uint32_t nsub; /* its sub-commands (value records) */
} resp_desc_t;

/* Commands being gathered into one write: MULTI's queue, or one command that needs value
 * records (SET ... GET, GETDEL, EXPIRE, MSET). Keys and values are copied into `arena`. */
typedef struct {
    hc_buf_t arena;
    struct resp_sub {
        hc_cmd_t cmd; /* key and val point nowhere until submitted: see key_off, val_off */
        size_t key_off, val_off;
    } * subs;
    size_t nsub, scap;
    resp_desc_t *desc;
    size_t ndesc, dcap;
    int failed; /* a command was refused while queued: EXEC answers EXECABORT */
} resp_txn_t;

struct resp_conn;
struct resp_pend;

/* Builds the reply of a pending write whose requests are all answered, into c->out. */
typedef void (*resp_pend_reply_fn)(struct resp_conn *c, struct resp_pend *p);

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
    resp_pend_reply_fn reply_fn;
    int issuing;  /* its requests are being sent: completion is reported after */
    int complete; /* every request answered, reply built */
    int err;      /* first error answered (0: none) */
    int status;   /* single-request commands: the answer */
    hc_apply_result_t res;
    int64_t count;  /* DEL: keys removed */
    hc_buf_t reply; /* the reply, when it was built before the commands ahead of it were answered */
    /* M_TXN */
    hc_buf_t vals; /* the value records (owned copy) */
    int have_vals;
    resp_desc_t *desc; /* owned */
    size_t ndesc;
    int multi; /* EXEC: an array of the replies */
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
    int in_multi;   /* between MULTI and EXEC / DISCARD */
    resp_txn_t txn; /* MULTI's queue */
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
    /* the connection loop of resp.c, for the files below it: serve the commands buffered (until
     * one waits), hand the replies to the socket */
    struct {
        void (*process)(struct resp_conn *c);
        void (*flush)(struct resp_conn *c);
    } io;
    char rbuf[READ_CHUNK]; /* one read at a time on one loop: shared by every connection */
};

/* ---- resp_reply.c ---- */

void resp_reply_raw(resp_conn_t *c, const char *s);
void resp_reply_int(resp_conn_t *c, int64_t v);
void resp_reply_bulk(resp_conn_t *c, const void *p, size_t n);
void resp_reply_bulk_str(resp_conn_t *c, const char *s);
/* "-<text>\r\n"; text starts with the error code (ERR, NOAUTH, ...). */
__attribute__((format(printf, 3, 4))) void resp_reply_error(resp_conn_t *c, hc_metric_result_t mres,
                                                            const char *fmt, ...);
void resp_reply_node_error(resp_conn_t *c, int err);
/* Argument i of the current command (valid until the input buffer changes). */
const char *resp_arg(resp_conn_t *c, size_t i, size_t *len);
int resp_arg_is(resp_conn_t *c, size_t i, const char *word);
int resp_arg_i64(resp_conn_t *c, size_t i, int64_t *out);
void resp_arg_text(resp_conn_t *c, size_t i, char *out, size_t cap);
/* Checks every key argument in [first, end): 1, or 0 after an error reply. */
int resp_keys_ok(resp_conn_t *c, size_t first, size_t end);
/* Records the metrics of the current (non-queued) command. */
void resp_command_done(resp_conn_t *c);

/* ---- resp_cmds.c ---- */

/* 1 when the parsed command c->cmd is a write that may join the writes in flight (pipelining). */
int resp_cmd_pipelines(resp_conn_t *c);
/* Serves the parsed command c->cmd: answers at once, queues a pending write, or leaves c->busy
 * set (a read waiting on the node; resp_conn_process is called again once it is answered). */
void resp_dispatch(resp_conn_t *c);
/* The reply_fn of the commands' pending writes. */
void resp_pend_reply(resp_conn_t *c, resp_pend_t *p);

/* ---- resp_txn.c ---- */

/* The commands that gather into a transaction. Each parses the current command: inside MULTI
 * it queues (+QUEUED), otherwise it is sent at once as one write; an error is answered (and
 * inside MULTI fails the transaction). */
void resp_cmd_set_ext(resp_conn_t *c); /* SET with XX / GET / KEEPTTL / EXAT / PXAT */
void resp_cmd_getdel(resp_conn_t *c);
void resp_cmd_expire(resp_conn_t *c); /* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT */
void resp_cmd_persist(resp_conn_t *c);
void resp_cmd_mset(resp_conn_t *c);
void resp_cmd_multi(resp_conn_t *c);
void resp_cmd_exec(resp_conn_t *c);
void resp_cmd_discard(resp_conn_t *c);
void resp_cmd_watch(resp_conn_t *c);
void resp_cmd_unwatch(resp_conn_t *c);
/* Inside MULTI: queues the current command (GET, SET, SETEX, PSETEX, DEL, UNLINK, INCR...,
 * MGET, EXISTS, GETDEL, EXPIRE..., PERSIST, MSET, TTL, PTTL) or refuses it. */
void resp_txn_queue(resp_conn_t *c);
/* The reply of a M_TXN pending write. */
void resp_txn_reply(resp_conn_t *c, resp_pend_t *p);
void resp_txn_free(resp_txn_t *t);

/* ---- resp_pend.c ---- */

/* Queues a pending write of `nreq` node requests (the caller sends them), whose reply `reply`
 * builds once all are answered; NULL on OOM. */
resp_pend_t *resp_pend_new(resp_conn_t *c, op_mode_t mode, uint32_t nreq, resp_pend_reply_fn reply);
/* One request of a pending write was answered (the caller recorded the answer in w->p). */
void resp_pend_req_done(resp_wreq_t *w);
/* Every request of p has been sent (some may be answered already). */
void resp_pend_issued(resp_pend_t *p);
/* Closing: the writes in flight are no longer answered (they may still happen). */
void resp_pend_cancel_all(resp_conn_t *c);

#endif
