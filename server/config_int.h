/* config_int.h: what the configuration files (config.c, config_hosts.c, config_validate.c)
 * share: error lines, the knob descriptor and the internal parsers; not part of the interface,
 * which is config.h. */
#ifndef HC_CONFIG_INT_H
#define HC_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

/* error lines (config.c) */

typedef struct {
    hc_config_errors_t *errs; /* may be NULL: count only */
    int n;                    /* problems found by this run, including dropped duplicates */
} report_t;

/* Appends one line. Identical lines are kept once, so main may run load and validate and print
 * the union; lines past HC_CONFIG_MAX_ERRORS are counted but dropped. */
void config__report(report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* the knob table (config.c) */

typedef enum {
    K_BOOL,       /* int */
    K_STR,        /* char *, owned */
    K_HOSTS,      /* char *ha_hosts_raw plus the parsed c->hosts */
    K_TOKENS,     /* char ** plus size_t count at off_n: one token given inline */
    K_SIZE,       /* uint64_t bytes */
    K_MS,         /* uint32_t milliseconds */
    K_COUNT,      /* uint32_t whole number (days, nodes, ...) */
    K_LOG_LEVEL,  /* hc_log_level_t */
    K_LOG_FORMAT, /* hc_log_format_t */
} knob_type_t;

typedef struct {
    const char *env;  /* environment variable */
    const char *flag; /* long flag without the leading "--" */
    knob_type_t type;
    size_t off;           /* the field in hc_config_t */
    size_t off_n;         /* K_TOKENS: the count field */
    uint64_t min, max;    /* K_SIZE, K_MS, K_COUNT: accepted range, checked by validate */
    int flags;            /* KF_* */
    const char *def;      /* default applied by hc_config_init (NULL: unset) */
    const char *def_text; /* default as --help shows it when it is not `def` */
    const char *metavar;  /* placeholder of the value in --help */
    const char *help;
} knob_t;

#define F(field)       offsetof(hc_config_t, field)
#define FIELD(c, k, T) ((T *)(void *)((char *)(c) + (k)->off))

/* The knob whose value lives at offset `off` of hc_config_t (NULL: none). */
const knob_t *config__knob_by_field(size_t off);
/* Every size, millisecond and count knob within its table range, and the cross-knob bounds. */
void config__check_ranges(const hc_config_t *c, report_t *r);
/* Frees a token list and sets it to empty. */
void config__tokens_free(char ***v, size_t *n);

#endif
