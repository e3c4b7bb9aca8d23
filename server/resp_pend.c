/* resp_pend.c: a connection's write commands in flight (pipelining), oldest first: each waits
 * for its node requests, builds its reply with the function its command gave, and the replies
 * leave in the order the commands came, whatever order the node answers them in. When the
 * writes ahead of held-back commands are answered, the connection loop (resp.c) is resumed
 * through c->srv->io, so this file depends on no file above it. */
#include "resp_int.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

resp_pend_t *resp_pend_new(resp_conn_t *c, op_mode_t mode, uint32_t nreq, resp_pend_reply_fn reply)
{
    resp_pend_t *p = calloc(1, sizeof(*p) + nreq * sizeof(p->req[0]));
    if (p == NULL) {
        return NULL;
    }
    p->c = c;
    p->mode = mode;
    p->reply_fn = reply;
    p->nreq = nreq;
    p->issuing = 1;
    p->mop = c->mop;
    p->mack = c->mack;
    p->mres = c->mres;
    p->start_ns = c->start_ns;
    hc_buf_init(&p->reply);
    hc_buf_init(&p->vals);
    for (uint32_t i = 0; i < nreq; i++) {
        p->req[i].p = p;
    }
    if (c->pend_tail) {
        c->pend_tail->next = p;
    } else {
        c->pend_head = p;
    }
    c->pend_tail = p;
    c->npend++;
    return p;
}

static void pend_free(resp_pend_t *p)
{
    hc_buf_free(&p->reply);
    hc_buf_free(&p->vals);
    free(p->desc);
    free(p);
}

/* Emits the replies of the completed writes at the head of the queue, in order. */
static void pend_emit(resp_conn_t *c)
{
    resp_pend_t *p;
    while ((p = c->pend_head) != NULL && p->complete) {
        hc_buf_append(&c->out, p->reply.data, p->reply.len);
        c->pend_head = p->next;
        if (c->pend_head == NULL) {
            c->pend_tail = NULL;
        }
        c->npend--;
        pend_free(p);
    }
}

/* All requests of p are answered: build its reply (straight into the output when nothing is
 * ahead of it), record its metrics, emit what can be. */
static void pend_complete(resp_pend_t *p)
{
    resp_conn_t *c = p->c;
    hc_metric_result_t saved_mres = c->mres;
    c->mres = p->mres;
    if (p == c->pend_head) {
        p->reply_fn(c, p);
    } else {
        hc_buf_t saved = c->out;
        c->out = p->reply;
        p->reply_fn(c, p);
        p->reply = c->out;
        c->out = saved;
    }
    p->mres = c->mres;
    c->mres = saved_mres;
    p->complete = 1;
    hc_metrics_record(c->srv->metrics, p->mop, p->mack, p->mres, hc_mono_ns() - p->start_ns);
    pend_emit(c);
}

void resp_pend_req_done(resp_wreq_t *w)
{
    resp_pend_t *p = w->p;
    w->done = 1;
    w->nop = NULL;
    p->ndone++;
    if (p->issuing || p->ndone < p->nreq) {
        return;
    }
    resp_conn_t *c = p->c;
    pend_complete(p);
    if (!c->processing) {
        c->srv->io.process(c); /* commands held back behind the writes */
        c->srv->io.flush(c);
    }
}

void resp_pend_issued(resp_pend_t *p)
{
    p->issuing = 0;
    if (p->ndone == p->nreq) {
        pend_complete(p);
    }
}

/* Closing: the writes in flight are no longer answered (they may still happen). */
void resp_pend_cancel_all(resp_conn_t *c)
{
    resp_pend_t *p = c->pend_head, *next;
    for (; p; p = next) {
        next = p->next;
        for (uint32_t i = 0; i < p->nreq; i++) {
            if (!p->req[i].done && p->req[i].nop != NULL) {
                hc_node_cancel(c->srv->node, p->req[i].nop);
            }
        }
        if (!p->complete) {
            hc_metrics_record(c->srv->metrics, p->mop, p->mack, HC_MRES_ERROR,
                              hc_mono_ns() - p->start_ns);
        }
        pend_free(p);
    }
    c->pend_head = c->pend_tail = NULL;
    c->npend = 0;
}
