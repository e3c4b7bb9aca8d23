/* fuzz_pct.c: percent-decoding and integer parsing of URL input stay in bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = malloc(size + 1);
    if (out == NULL) {
        return 0;
    }
    long n = hc_pct_decode((const char *)data, size, out);
    if (n > (long)size) {
        abort();
    }
    uint64_t u;
    int64_t i;
    (void)hc_parse_u64((const char *)data, size, &u);
    (void)hc_parse_i64((const char *)data, size, &i);
    hc_buf_t b;
    hc_buf_init(&b);
    hc_buf_json_string(&b, (const char *)data, size);
    hc_buf_free(&b);
    free(out);
    return 0;
}
