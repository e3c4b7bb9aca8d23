/* fuzz_snapshot.c: loading a store snapshot or a node snapshot (store + request-id window) from
 * untrusted bytes never crashes or leaks; a store snapshot that loads serializes back to the
 * same bytes (the format is canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hacache.h"
#include "fsm.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hc_store_t *s = hc_store_new(1 << 20);
    if (s == NULL) {
        return 0;
    }
    if (hc_store_load(s, data, size) == 0) {
        hc_buf_t b;
        hc_buf_init(&b);
        hc_store_serialize(s, &b);
        if (!b.failed && (b.len != size || memcmp(b.data, data, size) != 0)) {
            abort(); /* a loaded snapshot must serialize back to itself */
        }
        hc_buf_free(&b);
    }
    hc_store_free(s);

    s = hc_store_new(1 << 20);
    hc_dedupe_t *d = hc_dedupe_new(64);
    if (s != NULL && d != NULL) {
        (void)hc_fsm_snapshot_read(data, size, s, d);
    }
    hc_store_free(s);
    hc_dedupe_free(d);
    return 0;
}
