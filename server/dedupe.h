/* dedupe.h: the apply-side request-id window: the last `cap` request ids applied, with their
 * outcome, so a retried write is applied once. Deterministic: every replica applies the same
 * log, so every replica holds the same window. Part of the replicated state machine (fsm.h). */
#ifndef HC_DEDUPE_H
#define HC_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util.h"

typedef struct hc_dedupe hc_dedupe_t;
typedef struct {
    uint64_t index; /* log index where the request was applied */
    int status;
    hc_apply_result_t res;
} hc_dedupe_result_t;

hc_dedupe_t *hc_dedupe_new(size_t cap);
void hc_dedupe_free(hc_dedupe_t *d);
void hc_dedupe_clear(hc_dedupe_t *d);
/* 1 with *out (may be NULL) when id is in the window, else 0. */
int hc_dedupe_find(const hc_dedupe_t *d, const uint8_t id[16], hc_dedupe_result_t *out);
/* Records id (the oldest id leaves the window when it is full). */
void hc_dedupe_add(hc_dedupe_t *d, const uint8_t id[16], const hc_dedupe_result_t *r);

/* The window as bytes (oldest id first): count(u32) then per id: id(16) index(u64)
 * status(i32) version(u64) integer(i64) existed(i32) removed(u64), little endian. */
void hc_dedupe_serialize(const hc_dedupe_t *d, hc_buf_t *out);
/* Replaces d's content with a serialized window. 0 or HC_EINVAL (malformed, or more ids than
 * d holds); on error d is left empty. */
int hc_dedupe_load(hc_dedupe_t *d, const void *buf, size_t len);

#endif
