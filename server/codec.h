/* codec.h: hc_cmd_t <-> protobuf (proto/hacache.proto Command), the form a write takes in the
 * replicated log and on peer links. */
#ifndef HC_CODEC_H
#define HC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Largest encoded command accepted by hc_cmd_decode: a maximal value plus headroom. */
#define HC_CMD_MAX_ENCODED ((size_t)512 * 1024 * 1024 + 64 * 1024)

/* Encodes cmd into a new malloc'd buffer (*out, *outlen; caller frees). 0 or HC_ENOMEM. */
int hc_cmd_encode(const hc_cmd_t *cmd, uint8_t **out, size_t *outlen);

/* A decoded command: `cmd` points into `msg`, released by hc_cmd_decoded_free. */
typedef struct {
    hc_cmd_t cmd;
    void *msg;
} hc_cmd_decoded_t;

/* Decodes len bytes (bounded by max_len before any allocation). 0, HC_ETOOLARGE or HC_EINVAL
 * (not a Command, unknown op, cache name empty or longer than 255 bytes). */
int hc_cmd_decode(const uint8_t *buf, size_t len, size_t max_len, hc_cmd_decoded_t *out);
void hc_cmd_decoded_free(hc_cmd_decoded_t *d);

#endif
