/* config_fixtures.h: what the configuration tests (test_config_*.c) share: an injected
 * environment, loading env and flags as hacached does, and looking through the error lines.
 * Header-only (static inline); the certificate fixtures live in test_config_validate.c, the only
 * user. */
#ifndef HC_TEST_CONFIG_FIXTURES_H
#define HC_TEST_CONFIG_FIXTURES_H

#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define GOOD_TOKEN "0123456789abcdef0123456789abcdef" /* 32 bytes */

/* An injected environment: {name, value} pairs ending with {NULL, NULL}. */
typedef struct {
    const char *name, *value;
} kv_t;

static inline const char *env_get(void *ud, const char *name)
{
    for (const kv_t *kv = ud; kv != NULL && kv->name != NULL; kv++) {
        if (strcmp(kv->name, name) == 0) {
            return kv->value;
        }
    }
    return NULL;
}

/* Loads `env` and the flags (a NULL-terminated list) with system hostname "testhost". */
static inline int load(hc_config_t *c, const kv_t *env, hc_config_errors_t *errs, ...)
{
    char *argv[32] = {"hacached"};
    int argc = 1;
    va_list ap;
    va_start(ap, errs);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = a;
    }
    va_end(ap);
    hc_config_init(c);
    memset(errs, 0, sizeof(*errs));
    return hc_config_load(c, argc, argv, env_get, (void *)env, "testhost", errs);
}

/* Is there a line that starts with "var: " and contains `needle`? */
static inline int has_error(const hc_config_errors_t *e, const char *var, const char *needle)
{
    size_t vl = strlen(var);
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->line[i], var, vl) == 0 && strncmp(e->line[i] + vl, ": ", 2) == 0 &&
            strstr(e->line[i], needle) != NULL) {
            return 1;
        }
    }
    return 0;
}

static inline void dump_errors(const hc_config_errors_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        fprintf(stderr, "    | %s\n", e->line[i]);
    }
}

#endif
