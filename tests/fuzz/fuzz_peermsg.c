/* fuzz_peermsg.c: the payload of a peer DATA frame (a PeerMessage from another node) is decoded
 * the way server/node.c does it — raft messages into raft_message_t (and re-encoded: the round
 * trip keeps every field), configurations in ClusterInfo and SnapshotChunk through
 * raft_members_decode, forwarded commands through hc_cmd_decode — and none of it crashes, leaks
 * or reads out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hacache.pb-c.h"
#include "raft.h"

static void check_raft(const Hacache__RaftMessage *pb)
{
    hc_raft_msg_decoded_t d;
    if (hc_raft_msg_from_pb(pb, &d) != 0) {
        return;
    }
    uint8_t *buf;
    size_t len;
    if (hc_raft_msg_encode(&d.msg, d.lifetime, &buf, &len) == 0) {
        hc_raft_msg_decoded_t d2;
        if (hc_raft_msg_decode(buf, len, &d2) != 0 || d2.msg.type != d.msg.type ||
            d2.msg.term != d.msg.term || d2.msg.from != d.msg.from || d2.msg.flags != d.msg.flags ||
            d2.msg.epoch != d.msg.epoch) {
            abort();
        }
        if (d.msg.type == RAFT_MSG_APPEND && d2.msg.append.n_entries != d.msg.append.n_entries) {
            abort();
        }
        hc_raft_msg_decoded_free(&d2);
        free(buf);
    }
    hc_raft_msg_decoded_free(&d);
}

static void check_members(const ProtobufCBinaryData *b)
{
    raft_members_t m;
    if (raft_members_decode(b->data, b->len, &m) != 0) {
        return;
    }
    /* what decodes re-encodes to the same bytes */
    uint8_t out[4 + RAFT_MAX_MEMBERS * 9];
    size_t n = raft_members_encoded_size(&m);
    if (n > sizeof(out)) {
        abort();
    }
    raft_members_encode(&m, out);
    raft_members_t m2;
    if (raft_members_decode(out, n, &m2) != 0 || m2.n != m.n) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Hacache__PeerMessage *pm = hacache__peer_message__unpack(NULL, size, data);
    if (pm == NULL) {
        return 0;
    }
    switch (pm->body_case) {
    case HACACHE__PEER_MESSAGE__BODY_RAFT:
        check_raft(pm->raft);
        break;
    case HACACHE__PEER_MESSAGE__BODY_INFO:
        check_members(&pm->info->members);
        break;
    case HACACHE__PEER_MESSAGE__BODY_SNAPSHOT:
        check_members(&pm->snapshot->members);
        break;
    case HACACHE__PEER_MESSAGE__BODY_FWD: {
        hc_cmd_decoded_t d;
        if (hc_cmd_decode(pm->fwd->command.data, pm->fwd->command.len, 1 << 20, &d) == 0) {
            hc_cmd_decoded_free(&d);
        }
        break;
    }
    case HACACHE__PEER_MESSAGE__BODY_JOIN:
        if (pm->join->node != NULL && strlen(pm->join->node) > size) {
            abort();
        }
        break;
    default:
        break;
    }
    hacache__peer_message__free_unpacked(pm, NULL);
    return 0;
}
