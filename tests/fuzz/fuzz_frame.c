/* fuzz_frame.c: the peer frame parser and the Hello/Auth decoders never crash, leak or read out
 * of bounds, and a frame stream is parsed the same way however it is split. The first byte
 * picks the frame size limit; the rest is a byte stream as it would arrive on a link. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hacache.h"

static void decode_payload(const hc_frame_t *f)
{
    if (f->type == HC_FRAME_HELLO) {
        hc_hello_t h;
        const char *why;
        if (hc_hello_decode(f->payload, f->len, &h, &why) == 0) {
            /* a decoded Hello re-encodes and decodes to the same fields */
            uint8_t *buf;
            size_t len;
            if (hc_hello_encode(&h, &buf, &len) == 0) {
                hc_hello_t h2;
                if (hc_hello_decode(buf, len, &h2, &why) != 0 || strcmp(h.node, h2.node) != 0 ||
                    h.n_hosts != h2.n_hosts || h.proto_max != h2.proto_max ||
                    memcmp(h.nonce, h2.nonce, HC_NONCE_BYTES) != 0) {
                    abort();
                }
                hc_hello_free(&h2);
                free(buf);
            }
            hc_hello_free(&h);
        }
    } else if (f->type == HC_FRAME_AUTH) {
        uint8_t mac[HC_MAC_BYTES];
        (void)hc_auth_decode(f->payload, f->len, mac);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t max = (size_t)data[0] * 64; /* 0 .. 16 KiB */
    data++;
    size--;
    /* whole buffer at once */
    size_t off = 0, frames = 0;
    int last = 0;
    for (;;) {
        hc_frame_t f;
        last = hc_frame_parse(data + off, size - off, max, &f);
        if (last != 1) {
            if (last == 0 && f.frame_len != 0 && f.frame_len <= size - off) {
                abort(); /* said "incomplete" although the frame is there */
            }
            break;
        }
        if (f.len > max || f.frame_len != HC_FRAME_HEADER + f.len || f.frame_len > size - off) {
            abort();
        }
        decode_payload(&f);
        off += f.frame_len;
        frames++;
    }
    /* byte by byte, as a slow link would deliver it, into a buffer of exactly that size */
    size_t off2 = 0, frames2 = 0, have = 0;
    int last2 = 0;
    while (have <= size) {
        uint8_t *copy = malloc(have - off2 ? have - off2 : 1);
        if (copy == NULL) {
            return 0;
        }
        memcpy(copy, data + off2, have - off2);
        hc_frame_t f;
        last2 = hc_frame_parse(copy, have - off2, max, &f);
        free(copy);
        if (last2 < 0) {
            break;
        }
        if (last2 == 1) {
            off2 += f.frame_len;
            frames2++;
            continue;
        }
        if (have == size) {
            break;
        }
        have++;
    }
    if (frames != frames2 || (last < 0) != (last2 < 0)) {
        abort();
    }
    return 0;
}
