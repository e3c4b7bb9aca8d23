/* log.h: structured logging, one line per event, logfmt ("text") or JSON, to stderr or to a
 * callback (the embedded node's log sink). The settings are process-wide. */
#ifndef HC_LOG_H
#define HC_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    HC_LOG_ERROR = 0,
    HC_LOG_WARN,
    HC_LOG_INFO,
    HC_LOG_DEBUG,
    HC_LOG_TRACE
} hc_log_level_t;

typedef enum { HC_LOG_TEXT = 0, HC_LOG_JSON } hc_log_format_t;

typedef enum { HC_LF_NONE = 0, HC_LF_STR, HC_LF_INT, HC_LF_UINT, HC_LF_BOOL } hc_log_ftype_t;

/* One key=value field of a log line. Strings are borrowed for the duration of the call. */
typedef struct {
    const char *key;
    hc_log_ftype_t type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        int b;
    } v;
} hc_log_field_t;

#define HC_LS(k, s_) ((hc_log_field_t){.key = (k), .type = HC_LF_STR, .v.s = (s_)})
#define HC_LI(k, i_) ((hc_log_field_t){.key = (k), .type = HC_LF_INT, .v.i = (int64_t)(i_)})
#define HC_LU(k, u_) ((hc_log_field_t){.key = (k), .type = HC_LF_UINT, .v.u = (uint64_t)(u_)})
#define HC_LB(k, b_) ((hc_log_field_t){.key = (k), .type = HC_LF_BOOL, .v.b = !!(b_)})

/* Sets the threshold and format (defaults: info, text) and the stream (default stderr). */
void hc_log_setup(hc_log_level_t level, hc_log_format_t format, FILE *out);
int hc_log_enabled(hc_log_level_t level);
/* Sends every line to sink instead of the stream: line is NUL-terminated, without the trailing
 * newline, valid during the call. Calls are serialised (never two at once) and may come from
 * any thread that logs. sink NULL returns to the stream. */
typedef void (*hc_log_sink_fn)(void *ud, hc_log_level_t level, const char *line);
void hc_log_set_sink(hc_log_sink_fn sink, void *ud);
/* Returns to the stream only if the sink in force is still (sink, ud), so a node stopping
 * late does not take away a sink another one installed since. */
void hc_log_unset_sink(hc_log_sink_fn sink, void *ud);

/* Parses "error|warn|info|debug|trace" / "text|json"; 0 or HC_EINVAL. */
int hc_log_level_parse(const char *s, hc_log_level_t *out);
int hc_log_format_parse(const char *s, hc_log_format_t *out);

/* Writes one line: ts, level, msg, then the fields in order. Fields with key NULL are skipped. */
void hc_log_fields(hc_log_level_t level, const char *msg, const hc_log_field_t *fields, size_t n);

/* hc_log(HC_LOG_INFO, "peer connected", HC_LS("peer", name), HC_LI("attempt", n)); */
#define hc_log(level, msg, ...)                                                                    \
    do {                                                                                           \
        if (hc_log_enabled(level)) {                                                               \
            const hc_log_field_t hc_log_f_[] = {{.key = NULL}, __VA_ARGS__};                       \
            hc_log_fields((level), (msg), hc_log_f_, sizeof(hc_log_f_) / sizeof(hc_log_f_[0]));    \
        }                                                                                          \
    } while (0)

#endif
