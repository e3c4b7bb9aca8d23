/* resp_parse.c: the RESP2 command parser (hc_resp_parse, resp.h): pure, bounded before
 * anything is buffered, fuzzed by tests/fuzz/fuzz_resp.c. */
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "util.h"

#define NUMBER_LINE_MAX 24 /* "*" or "$", up to 20 digits and a sign, CRLF */

void hc_resp_cmd_free(hc_resp_cmd_t *cmd)
{
    free(cmd->argv);
    cmd->argv = NULL;
    cmd->argc = cmd->cap = 0;
}

void hc_resp_default_limits(const hc_config_t *cfg, hc_resp_limits_t *out)
{
    uint64_t big =
        cfg->max_value_size > cfg->max_key_size ? cfg->max_value_size : cfg->max_key_size;
    out->max_args = 1024;
    out->max_bulk = (size_t)big + 4096;
    out->max_command = out->max_bulk + (1u << 20);
    out->max_inline = 64 * 1024;
}

static int push_arg(hc_resp_cmd_t *cmd, size_t off, size_t len, size_t max_args)
{
    if (cmd->argc >= max_args) {
        return HC_ETOOLARGE; /* callers check first; never write past a capped array */
    }
    if (cmd->argc == cmd->cap) {
        size_t ncap = cmd->cap ? cmd->cap * 2 : 8;
        if (ncap > max_args) {
            ncap = max_args;
        }
        hc_resp_arg_t *p = realloc(cmd->argv, ncap * sizeof(*p));
        if (p == NULL) {
            return HC_ENOMEM;
        }
        cmd->argv = p;
        cmd->cap = ncap;
    }
    cmd->argv[cmd->argc].off = off;
    cmd->argv[cmd->argc].len = len;
    cmd->argc++;
    return 0;
}

/* Reads "<prefix><integer>\r\n" at buf[*pos]. 1 with *val and *pos past the line, 0 incomplete,
 * HC_EINVAL malformed (with *err = bad). */
static int read_number(const char *buf, size_t len, size_t *pos, int64_t *val, const char *bad,
                       const char **err)
{
    size_t start = *pos + 1, avail = len - start;
    size_t scan = avail < NUMBER_LINE_MAX ? avail : NUMBER_LINE_MAX;
    const char *cr = memchr(buf + start, '\r', scan);
    if (cr == NULL) {
        if (avail >= NUMBER_LINE_MAX) {
            *err = bad;
            return HC_EINVAL;
        }
        return 0;
    }
    size_t digits = (size_t)(cr - (buf + start));
    if (start + digits + 1 >= len) {
        return 0; /* the \n has not arrived */
    }
    if (cr[1] != '\n' || hc_parse_i64(buf + start, digits, val) != 0) {
        *err = bad;
        return HC_EINVAL;
    }
    *pos = start + digits + 2;
    return 1;
}

static int parse_multibulk(const char *buf, size_t len, const hc_resp_limits_t *lim,
                           hc_resp_cmd_t *cmd, size_t *used, const char **err)
{
    size_t pos = 0;
    int64_t n;
    int rv = read_number(buf, len, &pos, &n, "Protocol error: invalid multibulk length", err);
    if (rv <= 0) {
        return rv;
    }
    if (n <= 0) { /* *0 and *-1 are no command (Redis skips them too) */
        *used = pos;
        return 1;
    }
    if ((uint64_t)n > lim->max_args) {
        *err = "Protocol error: too many arguments";
        return HC_ETOOLARGE;
    }
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (pos >= len) {
            return 0;
        }
        if (buf[pos] != '$') {
            *err = "Protocol error: expected '$' before each argument";
            return HC_EINVAL;
        }
        int64_t blen;
        rv = read_number(buf, len, &pos, &blen, "Protocol error: invalid bulk length", err);
        if (rv <= 0) {
            return rv;
        }
        if (blen < 0) {
            *err = "Protocol error: invalid bulk length";
            return HC_EINVAL;
        }
        if ((uint64_t)blen > lim->max_bulk) {
            *err = "Protocol error: bulk string larger than the limit";
            return HC_ETOOLARGE;
        }
        total += (size_t)blen;
        if (total > lim->max_command) {
            *err = "Protocol error: command larger than the limit";
            return HC_ETOOLARGE;
        }
        if (len - pos < (size_t)blen + 2) {
            return 0;
        }
        if (buf[pos + (size_t)blen] != '\r' || buf[pos + (size_t)blen + 1] != '\n') {
            *err = "Protocol error: bulk string not followed by CRLF";
            return HC_EINVAL;
        }
        if (push_arg(cmd, pos, (size_t)blen, lim->max_args) != 0) {
            *err = "out of memory";
            return HC_ENOMEM;
        }
        pos += (size_t)blen + 2;
    }
    *used = pos;
    return 1;
}

/* An inline command: words separated by blanks; no quoting. */
static int parse_inline(const char *buf, size_t len, const hc_resp_limits_t *lim,
                        hc_resp_cmd_t *cmd, size_t *used, const char **err)
{
    size_t scan = len < lim->max_inline + 1 ? len : lim->max_inline + 1;
    const char *nl = memchr(buf, '\n', scan);
    if (nl == NULL) {
        if (len > lim->max_inline) {
            *err = "Protocol error: too big inline request";
            return HC_ETOOLARGE;
        }
        return 0;
    }
    size_t end = (size_t)(nl - buf);
    *used = end + 1;
    if (end > 0 && buf[end - 1] == '\r') {
        end--;
    }
    size_t i = 0;
    while (i < end) {
        while (i < end && (buf[i] == ' ' || buf[i] == '\t')) {
            i++;
        }
        size_t start = i;
        while (i < end && buf[i] != ' ' && buf[i] != '\t') {
            i++;
        }
        if (i > start) {
            if (cmd->argc >= lim->max_args) {
                *err = "Protocol error: too many arguments";
                return HC_ETOOLARGE;
            }
            if (push_arg(cmd, start, i - start, lim->max_args) != 0) {
                *err = "out of memory";
                return HC_ENOMEM;
            }
        }
    }
    return 1;
}

int hc_resp_parse(const char *buf, size_t len, const hc_resp_limits_t *lim, hc_resp_cmd_t *cmd,
                  size_t *used, const char **err)
{
    cmd->argc = 0;
    *used = 0;
    *err = NULL;
    if (len == 0) {
        return 0;
    }
    if (buf[0] == '*') {
        return parse_multibulk(buf, len, lim, cmd, used, err);
    }
    return parse_inline(buf, len, lim, cmd, used, err);
}
