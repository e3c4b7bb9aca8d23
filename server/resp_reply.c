/* resp_reply.c: how a RESP command answers: the replies (simple, integer, bulk, errors, a node
 * error as its Redis-style code), the arguments of the command being served, key checks, and
 * the metrics of a command. Used by the commands (resp_cmds.c, resp_txn.c) and the connection
 * loop (resp.c). */
#include "resp_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics.h"

/* ---- replies ---- */

void resp_reply_raw(resp_conn_t *c, const char *s)
{
    hc_buf_puts(&c->out, s);
}

void resp_reply_int(resp_conn_t *c, int64_t v)
{
    hc_buf_printf(&c->out, ":%" PRId64 "\r\n", v);
}

void resp_reply_bulk(resp_conn_t *c, const void *p, size_t n)
{
    hc_buf_printf(&c->out, "$%zu\r\n", n);
    hc_buf_append(&c->out, p, n);
    hc_buf_puts(&c->out, "\r\n");
}

void resp_reply_bulk_str(resp_conn_t *c, const char *s)
{
    resp_reply_bulk(c, s, strlen(s));
}

/* "-<text>\r\n"; text starts with the error code (ERR, NOAUTH, ...). Control bytes (which could
 * end the line early) become spaces. */
void resp_reply_error(resp_conn_t *c, hc_metric_result_t mres, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++) {
        if ((unsigned char)*p < 0x20) {
            *p = ' ';
        }
    }
    hc_buf_printf(&c->out, "-%s\r\n", line);
    c->mres = mres;
}

/* An argument of the current command (valid until the input buffer changes). */
const char *resp_arg(resp_conn_t *c, size_t i, size_t *len)
{
    *len = c->cmd.argv[i].len;
    return c->in.data + c->cmd_base + c->cmd.argv[i].off;
}

int resp_arg_is(resp_conn_t *c, size_t i, const char *word)
{
    size_t n;
    const char *s = resp_arg(c, i, &n);
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

int resp_arg_i64(resp_conn_t *c, size_t i, int64_t *out)
{
    size_t n;
    const char *s = resp_arg(c, i, &n);
    return hc_parse_i64(s, n, out);
}

/* The command name, printable and short, for error messages. */
void resp_arg_text(resp_conn_t *c, size_t i, char *out, size_t cap)
{
    size_t n;
    const char *s = resp_arg(c, i, &n);
    if (n > cap - 1) {
        n = cap - 1;
    }
    for (size_t k = 0; k < n; k++) {
        out[k] = (s[k] >= 0x20 && s[k] < 0x7f) ? s[k] : '?';
    }
    out[n] = '\0';
}

void resp_reply_node_error(resp_conn_t *c, int err)
{
    switch (err) {
    case HC_EUNAVAILABLE: {
        hc_node_status_t st;
        hc_node_status(c->srv->node, &st);
        resp_reply_error(c, HC_MRES_UNAVAILABLE, "UNAVAILABLE %s",
                         !st.ready && st.not_ready_reason ? st.not_ready_reason
                                                          : "no leader reachable or no quorum");
        break;
    }
    case HC_ESHUTDOWN:
        resp_reply_error(c, HC_MRES_UNAVAILABLE, "UNAVAILABLE shutting down");
        break;
    case HC_ETOOLARGE:
        resp_reply_error(c, HC_MRES_TOO_LARGE, "ERR value too large");
        break;
    case HC_ENOMEM:
        resp_reply_error(c, HC_MRES_NO_MEMORY,
                         "OOM the write does not fit within CACHE_MAX_MEMORY");
        break;
    case HC_ETIMEDOUT:
        resp_reply_error(c, HC_MRES_TIMEOUT, "TIMEOUT deadline exceeded");
        break;
    case HC_EUNKNOWN_OUTCOME:
        resp_reply_error(c, HC_MRES_TIMEOUT,
                         "UNKNOWN outcome of the write is unknown (the leader changed or the link "
                         "dropped)");
        break;
    case HC_ENOTINT:
    case HC_EOVERFLOW:
        resp_reply_error(c, HC_MRES_CONFLICT, "ERR value is not an integer or out of range");
        break;
    case HC_EUPGRADE:
        resp_reply_error(c, HC_MRES_UNAVAILABLE,
                         "ERR not every node of the cluster runs a hacache version that knows this "
                         "command yet (finish the rolling upgrade)");
        break;
    case HC_EBUSY:
        resp_reply_error(c, HC_MRES_UNAVAILABLE, "TRYAGAIN %s", hc_strerror(err));
        break;
    case HC_EINVAL:
        resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR %s", hc_strerror(err));
        break;
    default:
        resp_reply_error(c, HC_MRES_ERROR, "ERR %s", hc_strerror(err));
        break;
    }
}

void resp_command_done(resp_conn_t *c)
{
    hc_metrics_record(c->srv->metrics, c->mop, c->mack, c->mres, hc_mono_ns() - c->start_ns);
}

int resp_keys_ok(resp_conn_t *c, size_t first, size_t end)
{
    for (size_t i = first; i < end; i++) {
        if (c->cmd.argv[i].len == 0) {
            resp_reply_error(c, HC_MRES_BAD_REQUEST, "ERR empty keys are not supported");
            return 0;
        }
        if (c->cmd.argv[i].len > c->srv->cfg->max_key_size) {
            resp_reply_error(c, HC_MRES_TOO_LARGE, "ERR key larger than CACHE_MAX_KEY_SIZE");
            return 0;
        }
    }
    return 1;
}
