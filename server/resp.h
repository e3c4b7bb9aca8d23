/* resp.h: the optional Redis-protocol (RESP2) adapter: a bounded, pure command parser (fuzzed on
 * its own) and a libuv listener that maps Redis commands onto the node (CACHE_RESP_ADDR). */
#ifndef HC_RESP_H
#define HC_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "admit.h"
#include "auth.h"
#include "config.h"
#include "metrics.h"
#include "node.h"

/* ---- the parser: no I/O, no allocation beyond the argument array ---- */

/* Bounds applied before anything is buffered: a header announcing more is refused at once. */
typedef struct {
    size_t max_args;    /* arguments of one command (multibulk count, inline words) */
    size_t max_bulk;    /* bytes of one bulk string */
    size_t max_command; /* sum of the bulk lengths of one command */
    size_t max_inline;  /* bytes of one inline command line */
} hc_resp_limits_t;

/* One argument: `len` bytes at offset `off` from the start of the parsed input. Offsets, not
 * pointers, so the caller may move its input buffer while a command is being served. */
typedef struct {
    size_t off, len;
} hc_resp_arg_t;

/* A parsed command. Owns argv (grown up to max_args entries); release with hc_resp_cmd_free. */
typedef struct {
    hc_resp_arg_t *argv;
    size_t argc, cap;
} hc_resp_cmd_t;

void hc_resp_cmd_free(hc_resp_cmd_t *cmd);

/* The limits for a configuration: bulk strings up to the larger of CACHE_MAX_KEY_SIZE and
 * CACHE_MAX_VALUE_SIZE plus 4 KiB (so "value too large" is an answer, not a closed connection,
 * just above the limit), 1024 arguments, commands up to that bulk bound plus 1 MiB, inline lines
 * up to 64 KiB. */
void hc_resp_default_limits(const hc_config_t *cfg, hc_resp_limits_t *out);

/* Parses the first command of buf (len bytes): a multibulk array (*N\r\n$L\r\n...\r\n) or an
 * inline line (words separated by spaces or tabs, ended by \n or \r\n).
 *   1: one command in *cmd (argc may be 0 for an empty line or *0, which callers skip);
 *      *used = its length in bytes;
 *   0: incomplete, call again with more bytes (nothing in buf exceeds a limit so far);
 *   HC_EINVAL: malformed (*err names the problem, "Protocol error: ...");
 *   HC_ETOOLARGE: a limit is exceeded (*err says which);
 *   HC_ENOMEM: the argument array could not grow.
 * On an error the connection cannot be resynchronised: answer -ERR *err and close. */
int hc_resp_parse(const char *buf, size_t len, const hc_resp_limits_t *lim, hc_resp_cmd_t *cmd,
                  size_t *used, const char **err);

/* ---- the listener ---- */

typedef struct hc_resp hc_resp_t;

/* Binds CACHE_RESP_ADDR and serves on `loop`. cfg, node, auth, metrics and admit are borrowed and
 * outlive the server; auth holds the API tokens (shared with HTTP, swapped by credential reloads),
 * each command is counted in metrics (shared with HTTP, whose /metrics renders them), and admit
 * holds the connection limits: with a token a connection is pending until AUTH succeeds (the
 * oldest pending one is closed for a new one, and one pending longer than its timeout is
 * closed), then admitted if there is room; without a token it is admitted at once. No room
 * answers -ERR max number of clients reached and closes. 0, or
 * HC_EINVAL (unresolvable address) / HC_EUNAVAILABLE (bind or listen failed) after one log
 * line; on error *out is still set when handles were opened (close and free it as usual). */
int hc_resp_start(uv_loop_t *loop, const hc_config_t *cfg, hc_node_t *node, hc_auth_t *auth,
                  hc_metrics_t *metrics, hc_admit_t *admit, hc_resp_t **out);

/* Stops accepting; idle connections close at once, a connection serving a command closes once
 * its answer is written. cb runs when every connection is gone, or after timeout_ms, when the
 * remaining ones are closed (their pending node requests cancelled). */
void hc_resp_shutdown(hc_resp_t *r, uint64_t timeout_ms, void (*cb)(void *ud), void *ud);

/* Closes every remaining handle (listener, timer, connections). Run the loop, then free. */
void hc_resp_close(hc_resp_t *r);
void hc_resp_free(hc_resp_t *r);

/* Number of open RESP connections. */
size_t hc_resp_open_connections(const hc_resp_t *r);

#endif
