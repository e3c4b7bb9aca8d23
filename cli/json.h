/* json.h: a small, bounded JSON reader for hacachectl (answers of the HTTP API). The whole
 * document is parsed into one allocation-owning tree; untrusted input gets an error, never a
 * crash (fuzz target tests/fuzz/fuzz_json.c). */
#ifndef HC_CLI_JSON_H
#define HC_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>

#define HJ_MAX_DEPTH 32
#define HJ_MAX_INPUT ((size_t)16 * 1024 * 1024)

typedef enum { HJ_NULL = 0, HJ_BOOL, HJ_NUMBER, HJ_STRING, HJ_ARRAY, HJ_OBJECT } hj_type_t;

typedef struct hj hj_t;
struct hj {
    hj_type_t type;
    int b;       /* HJ_BOOL */
    double num;  /* HJ_NUMBER */
    char *str;   /* HJ_STRING: decoded, NUL-terminated (may hold NULs: see len) */
    size_t len;  /* HJ_STRING: bytes; HJ_ARRAY / HJ_OBJECT: number of children */
    char *key;   /* member name when this is a value inside an object, else NULL */
    hj_t *child; /* first element / member */
    hj_t *next;  /* next sibling */
};

/* Parses s[0..n). Returns the root (free with hj_free) or NULL with a short reason in err:
 * syntax error (with the byte offset), nesting deeper than HJ_MAX_DEPTH, input larger than
 * HJ_MAX_INPUT, trailing bytes, out of memory. */
hj_t *hj_parse(const char *s, size_t n, char *err, size_t errlen);
void hj_free(hj_t *v);

/* Member `key` of an object (NULL when v is not an object or has no such member). */
const hj_t *hj_get(const hj_t *v, const char *key);
/* Typed reads with a fallback when absent or of another type. */
const char *hj_str(const hj_t *v, const char *key, const char *dflt);
double hj_num(const hj_t *v, const char *key, double dflt);
int hj_bool(const hj_t *v, const char *key, int dflt);

#endif
