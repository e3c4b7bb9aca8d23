/* fuzz_answer.c: what libhacache's client makes of a node's answer (client/wire.c): header lines
 * as libcurl hands them over, then the body, then the mapping to an HC_E* code, stay in bounds
 * and consistent: the body is kept whole and NUL-terminated, the status stays in range, the
 * error code is one the header declares, and reading the body as GET /v1/caches ends in one of
 * its three results. The input is split into lines; the first blank line ends
 * the headers and the rest is the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hcc_answer_t a;
    memset(&a, 0, sizeof(a));
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (n <= 2 && (p[0] == '\n' || (p[0] == '\r' && n == 2))) {
            p += n;
            break; /* the blank line */
        }
        hcc_answer_header(&a, p, n);
        p += n;
    }
    if (a.status != 0 && (a.status < 100 || a.status > 599)) {
        abort();
    }
    size_t body = (size_t)(end - p);
    if (hcc_answer_body(&a, p, body) != 0 || hcc_answer_finish(&a) != 0) {
        abort(); /* small inputs always fit */
    }
    if (a.body_len != body || memcmp(a.body, p, body) != 0 || a.body[body] != '\0') {
        abort();
    }
    int err = hcc_answer_err(&a);
    if (err > 0 || strcmp(hc_strerror(err), "unknown error") == 0) {
        abort();
    }
    (void)hcc_answer_invalidated(&a);
    hc_cache_info_t ci;
    int ci_rv = hcc_parse_cache_info(a.body, a.body_len, "c", &ci);
    if (ci_rv != 0 && ci_rv != HC_ENOTFOUND && ci_rv != HC_EINTERNAL) {
        abort();
    }
    (void)hcc_answer_retryable(a.status);
    hcc_answer_reset(&a);
    return 0;
}
