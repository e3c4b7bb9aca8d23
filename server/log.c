/* log.c: logfmt / JSON line writer. Each event is formatted into one buffer and written with a
 * single fwrite so concurrent writers (threads, child processes sharing stderr) never interleave
 * inside a line. */
#include "log.h"

#include "hacache.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static hc_log_level_t log_level = HC_LOG_INFO;
static hc_log_format_t log_format = HC_LOG_TEXT;
static FILE *log_out;
/* the callback sink; the mutex serialises its calls and guards (sink, ud) against a swap */
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static hc_log_sink_fn log_sink;
static void *log_sink_ud;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void hc_log_setup(hc_log_level_t level, hc_log_format_t format, FILE *out)
{
    log_level = level;
    log_format = format;
    log_out = out;
}

void hc_log_set_sink(hc_log_sink_fn sink, void *ud)
{
    pthread_mutex_lock(&sink_mu);
    log_sink = sink;
    log_sink_ud = ud;
    pthread_mutex_unlock(&sink_mu);
}

void hc_log_unset_sink(hc_log_sink_fn sink, void *ud)
{
    pthread_mutex_lock(&sink_mu);
    if (log_sink == sink && log_sink_ud == ud) {
        log_sink = NULL;
        log_sink_ud = NULL;
    }
    pthread_mutex_unlock(&sink_mu);
}

int hc_log_enabled(hc_log_level_t level)
{
    return level <= log_level;
}

int hc_log_level_parse(const char *s, hc_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (hc_log_level_t)i;
            return 0;
        }
    }
    return HC_EINVAL;
}

int hc_log_format_parse(const char *s, hc_log_format_t *out)
{
    if (strcasecmp(s, "text") == 0 || strcasecmp(s, "logfmt") == 0) {
        *out = HC_LOG_TEXT;
    } else if (strcasecmp(s, "json") == 0) {
        *out = HC_LOG_JSON;
    } else {
        return HC_EINVAL;
    }
    return 0;
}

typedef struct {
    char buf[4096];
    size_t len;
} line_t;

static void put_raw(line_t *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 2 - l->len; /* keep space for '\n' and NUL */
    if (n > room) {
        n = room;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(line_t *l, const char *s)
{
    put_raw(l, s, strlen(s));
}

static void put_json_string(line_t *l, const char *s)
{
    put_raw(l, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put_raw(l, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            put_raw(l, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put_str(l, esc);
        } else {
            put_raw(l, (const char *)&c, 1);
        }
    }
    put_raw(l, "\"", 1);
}

/* logfmt: bare value when it has no space, quote, '=' or control byte; quoted otherwise. */
static void put_logfmt_string(line_t *l, const char *s)
{
    int bare = *s != '\0';
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
            bare = 0;
            break;
        }
    }
    if (bare) {
        put_str(l, s);
        return;
    }
    put_json_string(l, s); /* JSON string escaping is a valid logfmt quoted value */
}

static void put_value(line_t *l, const hc_log_field_t *f)
{
    char num[32];
    switch (f->type) {
    case HC_LF_STR:
        if (log_format == HC_LOG_JSON) {
            put_json_string(l, f->v.s ? f->v.s : "");
        } else {
            put_logfmt_string(l, f->v.s ? f->v.s : "");
        }
        break;
    case HC_LF_INT:
        snprintf(num, sizeof(num), "%" PRId64, f->v.i);
        put_str(l, num);
        break;
    case HC_LF_UINT:
        snprintf(num, sizeof(num), "%" PRIu64, f->v.u);
        put_str(l, num);
        break;
    case HC_LF_BOOL:
        put_str(l, f->v.b ? "true" : "false");
        break;
    case HC_LF_NONE:
        put_str(l, log_format == HC_LOG_JSON ? "null" : "\"\"");
        break;
    }
}

void hc_log_fields(hc_log_level_t level, const char *msg, const hc_log_field_t *fields, size_t n)
{
    if (!hc_log_enabled(level)) {
        return;
    }
    line_t l;
    l.len = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tsbuf[96];
    snprintf(tsbuf, sizeof(tsbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));
    const char *lvl = level_names[level];

    if (log_format == HC_LOG_JSON) {
        put_str(&l, "{\"ts\":\"");
        put_str(&l, tsbuf);
        put_str(&l, "\",\"level\":\"");
        put_str(&l, lvl);
        put_str(&l, "\",\"msg\":");
        put_json_string(&l, msg);
        for (size_t i = 0; i < n; i++) {
            if (fields[i].key == NULL) {
                continue;
            }
            put_str(&l, ",");
            put_json_string(&l, fields[i].key);
            put_str(&l, ":");
            put_value(&l, &fields[i]);
        }
        put_str(&l, "}");
    } else {
        put_str(&l, "ts=");
        put_str(&l, tsbuf);
        put_str(&l, " level=");
        put_str(&l, lvl);
        put_str(&l, " msg=");
        put_logfmt_string(&l, msg);
        for (size_t i = 0; i < n; i++) {
            if (fields[i].key == NULL) {
                continue;
            }
            put_str(&l, " ");
            put_str(&l, fields[i].key);
            put_str(&l, "=");
            put_value(&l, &fields[i]);
        }
    }
    pthread_mutex_lock(&sink_mu);
    if (log_sink != NULL) {
        l.buf[l.len] = '\0';
        log_sink(log_sink_ud, level, l.buf);
        pthread_mutex_unlock(&sink_mu);
        return;
    }
    pthread_mutex_unlock(&sink_mu);
    l.buf[l.len++] = '\n';
    FILE *out = log_out ? log_out : stderr;
    fwrite(l.buf, 1, l.len, out);
    fflush(out);
}
