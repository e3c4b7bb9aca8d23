/* json_scan.h: a bounded reader of the few JSON answers the client looks into (error codes, the
 * result of a write, GET /v1/caches): finds an object's members and an array's elements in the
 * text, without building a tree or allocating. Nesting deeper than HCC_JSON_MAX_DEPTH is
 * malformed. Pure; the text need not be NUL-terminated. */
#ifndef HCC_JSON_SCAN_H
#define HCC_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define HCC_JSON_MAX_DEPTH 16

/* The text of one JSON value (or of a whole answer body). */
typedef struct {
    const char *p;
    size_t n;
} hcc_json_t;

/* The value of member `name` (compared with the raw text of the member names, so names with
 * escapes never match) of the object v: 1 with *out, 0 when absent, -1 when v is not a
 * well-formed object. */
int hcc_json_member(hcc_json_t v, const char *name, hcc_json_t *out);
/* Walks the array v: *pos starts at 0; 1 with the next element in *elem, 0 after the last, -1
 * when v is not a well-formed array. */
int hcc_json_next(hcc_json_t v, size_t *pos, hcc_json_t *elem);
/* A non-negative integer of at most 19 digits: 0 or -1. */
int hcc_json_u64(hcc_json_t v, uint64_t *out);
/* An integer of int64_t's range: 0 or -1. */
int hcc_json_i64(hcc_json_t v, int64_t *out);
/* Is v the string `want` (written without escapes)? */
int hcc_json_str_is(hcc_json_t v, const char *want);
/* Convenience: member `name` of the object in text (p, n) is the string want / an integer. */
int hcc_json_member_is(const char *p, size_t n, const char *name, const char *want);
int hcc_json_member_u64(const char *p, size_t n, const char *name, uint64_t *out);

#endif
