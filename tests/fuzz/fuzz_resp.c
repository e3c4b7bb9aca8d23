/* fuzz_resp.c: the RESP parser stays within its input and its bounds, and consumes every byte of
 * a valid pipeline exactly once, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* small bounds so the fuzzer reaches every limit */
    const hc_resp_limits_t lim = {
        .max_args = 16, .max_bulk = 64, .max_command = 256, .max_inline = 128};
    hc_resp_cmd_t cmd = {0};
    const char *buf = (const char *)data;
    size_t pos = 0;
    while (pos < size) {
        size_t used;
        const char *err;
        int rv = hc_resp_parse(buf + pos, size - pos, &lim, &cmd, &used, &err);
        if (rv <= 0) {
            if (rv < 0 && err == NULL) {
                abort(); /* every error names its cause */
            }
            break;
        }
        if (used == 0 || used > size - pos || cmd.argc > lim.max_args) {
            abort();
        }
        size_t total = 0;
        for (size_t i = 0; i < cmd.argc; i++) {
            const hc_resp_arg_t *a = &cmd.argv[i];
            if (a->off > used || a->len > used - a->off) {
                abort(); /* an argument outside the command */
            }
            total += a->len;
        }
        if (buf[pos] == '*' && total > lim.max_command) {
            abort();
        }
        /* the same command parsed again from a copy that ends where it ends: identical result */
        size_t used2;
        hc_resp_cmd_t again = {0};
        if (hc_resp_parse(buf + pos, used, &lim, &again, &used2, &err) != 1 || used2 != used ||
            again.argc != cmd.argc) {
            abort();
        }
        hc_resp_cmd_free(&again);
        pos += used;
    }
    hc_resp_cmd_free(&cmd);
    return 0;
}
