/* codec.h: hc_cmd_t <-> protobuf (proto/hacache.proto Command), the form a write takes in the
 * replicated log and on peer links. */
#ifndef HC_CODEC_H
#define HC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "hacache.h"
#include "raft.h"
#include "store/store.h"

/* Largest encoded command accepted by hc_cmd_decode: a maximal value plus headroom. */
#define HC_CMD_MAX_ENCODED ((size_t)512 * 1024 * 1024 + 64 * 1024)

/* What a log entry carries besides the store command: the request id that makes a retried
 * write apply once (has_request_id = 0: none) and the leader's wall clock at proposal, which
 * every replica uses as `now` when applying (0: unknown, the applier uses its own clock). */
typedef struct {
    int has_request_id;
    uint8_t request_id[HC_REQUEST_ID_BYTES];
    uint64_t now_ms;
} hc_cmd_meta_t;

/* Encodes cmd into a new malloc'd buffer (*out, *outlen; caller frees). 0 or HC_ENOMEM. */
int hc_cmd_encode(const hc_cmd_t *cmd, uint8_t **out, size_t *outlen);
/* The same with the log metadata (meta may be NULL). */
int hc_cmd_encode_meta(const hc_cmd_t *cmd, const hc_cmd_meta_t *meta, uint8_t **out,
                       size_t *outlen);

/* A decoded command: `cmd` points into `msg`, released by hc_cmd_decoded_free. `meta` is
 * filled from the optional fields (a request_id that is not 16 bytes is ignored). */
typedef struct {
    hc_cmd_t cmd;
    hc_cmd_meta_t meta;
    void *msg;
    hc_cmd_t *subs; /* BATCH: cmd.sub (owned) */
} hc_cmd_decoded_t;

/* The peer protocol version a command needs every member to speak before it may enter the log:
 * 3 for the ops and fields protocol 3 added (BATCH, GET, SET_TTL, XX, KEEPTTL, values as
 * results, relative TTLs), else 2. */
int hc_cmd_proto(const hc_cmd_t *cmd);
/* 1 when the command's results carry values (hc_fsm_apply_vals records). */
int hc_cmd_has_vals(const hc_cmd_t *cmd);

/* Decodes len bytes (bounded by max_len before any allocation). 0, HC_ETOOLARGE or HC_EINVAL
 * (not a Command, unknown op, cache name empty or longer than 255 bytes). */
int hc_cmd_decode(const uint8_t *buf, size_t len, size_t max_len, hc_cmd_decoded_t *out);
void hc_cmd_decoded_free(hc_cmd_decoded_t *d);

/* raft_message_t <-> protobuf RaftMessage, wrapped in a PeerMessage (the DATA frame payload),
 * with the sender's cluster lifetime (0: unknown). Encode: a new malloc'd buffer (caller
 * frees); 0 or HC_ENOMEM. */
int hc_raft_msg_encode(const raft_message_t *m, uint64_t lifetime, uint8_t **out, size_t *outlen);

/* A decoded raft message: msg.append.entries points into `entries`, their data into `pb`;
 * release with hc_raft_msg_decoded_free. */
typedef struct {
    raft_message_t msg;
    uint64_t lifetime; /* the sender's cluster lifetime, 0 unknown */
    raft_entry_t *entries;
    void *pb;
} hc_raft_msg_decoded_t;

/* Decodes a RaftMessage from an already unpacked PeerMessage body (`pb_raft` is a
 * Hacache__RaftMessage *; ownership stays with the caller, which must keep it alive while the
 * decoded message is used). 0, HC_EINVAL (unknown type) or HC_ENOMEM. */
int hc_raft_msg_from_pb(const void *pb_raft, hc_raft_msg_decoded_t *out);
/* Decodes a whole PeerMessage payload holding a raft message (tests and tools). 0 or HC_EINVAL. */
int hc_raft_msg_decode(const uint8_t *buf, size_t len, hc_raft_msg_decoded_t *out);
void hc_raft_msg_decoded_free(hc_raft_msg_decoded_t *d);

#endif
