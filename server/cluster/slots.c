/* slots.c: peer slots (my HA_HOSTS entries, then peers that only list me) with their raft ids
 * and names, and sending a peer message to a slot. Ids: every HA_HOSTS entry's raft id is
 * hc_node_id_of(host:port), so every node derives the same ids from the same list; each process
 * start draws a random incarnation and PRNG seed for raft (drive.c cl_raft_create). */
#include "cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"

uint64_t hc_node_id_of(const char *hostport)
{
    static const char ctx[] = "hacache-node-id-v1";
    size_t hl = strlen(hostport);
    uint8_t buf[sizeof(ctx) - 1 + HC_NODE_NAME_MAX + 16];
    if (hl > HC_NODE_NAME_MAX + 15) {
        hl = HC_NODE_NAME_MAX + 15;
    }
    memcpy(buf, ctx, sizeof(ctx) - 1);
    for (size_t i = 0; i < hl; i++) {
        char c = hostport[i];
        buf[sizeof(ctx) - 1 + i] = (uint8_t)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), buf, sizeof(ctx) - 1 + hl, NULL, 0);
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--) {
        id = (id << 8) | h[i];
    }
    return id ? id : 1;
}

int cl_peer_of_id(const cluster_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if (c->ids[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

const char *cl_name_of_id(const cluster_t *c, uint64_t id)
{
    int p = cl_peer_of_id(c, id);
    return p >= 0 ? c->names[p] : "unknown";
}

/* A peer slot: my HA_HOSTS entries have theirs from the start; a peer that only lists me (a
 * node added by a membership change that my HA_HOSTS does not name yet) gets one here, with
 * the raft id of its name. 0 when the slot cannot be used. */
int cl_peer_known(cluster_t *c, int peer)
{
    if (peer < 0 || (size_t)peer >= c->cap) {
        return 0;
    }
    if ((size_t)peer < c->npeers) {
        return 1;
    }
    const char *name = c->io.peer_name(c->io.ud, peer);
    if (name == NULL) {
        return 0;
    }
    for (size_t i = c->npeers; i <= (size_t)peer; i++) {
        const char *nm = c->io.peer_name(c->io.ud, (int)i);
        snprintf(c->names[i], sizeof(c->names[i]), "%s", nm ? nm : "");
        c->ids[i] = nm ? hc_node_id_of(nm) : 0;
    }
    c->npeers = (size_t)peer + 1;
    hc_log(HC_LOG_INFO, "peer outside my HA_HOSTS", HC_LS("peer", c->names[peer]));
    return 1;
}

int cl_send_pm(cluster_t *c, int peer, const Hacache__PeerMessage *pm)
{
    size_t len = hacache__peer_message__get_packed_size(pm);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return HC_ENOMEM;
    }
    hacache__peer_message__pack(pm, buf);
    int rv = c->io.send(c->io.ud, peer, buf, len);
    free(buf);
    return rv;
}
