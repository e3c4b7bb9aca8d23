/* fuzz_http1.c: the libhacache HTTP/1.1 response parser stays in bounds, and what it reports
 * is consistent: a complete response lies within the input, its body within the response, and
 * every prefix of a complete response asks for more bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hc_http1_resp_t r;
    long n = hc_http1_parse((const char *)data, size, 1u << 16, &r);
    if (n > 0) {
        if ((size_t)n > size || r.body_off + r.body_len != (size_t)n || r.status < 100 ||
            r.status > 599 || r.head_len > HC_HTTP1_MAX_HEAD) {
            abort();
        }
        hc_http1_resp_t p;
        if (hc_http1_parse((const char *)data, (size_t)n - 1, 1u << 16, &p) != 0) {
            abort();
        }
    }
    return 0;
}
