/* fuzz_cmd.c: decoding a replicated command from untrusted bytes, then applying it to a store,
 * never crashes or leaks. */
#include <stdint.h>
#include <stdlib.h>

#include "codec.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hc_cmd_decoded_t d;
    if (hc_cmd_decode(data, size, 1 << 20, &d) != 0) {
        return 0;
    }
    hc_store_t *s = hc_store_new(1 << 20);
    if (s != NULL) {
        hc_apply_result_t r;
        (void)hc_store_apply(s, &d.cmd, 1, 1000, &r);
        (void)hc_store_apply(s, &d.cmd, 2, 2000, &r);
        hc_store_free(s);
    }
    hc_cmd_decoded_free(&d);
    return 0;
}
