/* slots.c: peer slots (my HA_HOSTS entries, then peers that only list me) with their raft ids
 * and names, and sending a peer message to a slot.
 * Ids: an HA_HOSTS entry's first raft id (its "legacy" id, the one founders bootstrap with) is
 * hc_node_id_of(host:port), so every node derives the same ids from the same list. A process
 * that joins an established cluster without raft state is a new incarnation with a fresh id,
 * inc_id_make(tag, random) (raft/incarnation.h), whose host tag is the top 16 bits of its
 * host's legacy id: the id itself names its host, for every node, including ids of
 * incarnations that are long dead. ids[slot] is the incarnation last heard on that host's link
 * (cl_heard_id), answer_id[slot] the same but 0 until one was heard: the evidence the leader's
 * replacement policy needs (an incarnation counts as gone only when another one of its host
 * answers). */
#include "cluster_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

const char *cl_id_hex(uint64_t id, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, id);
    return out;
}

uint16_t cl_tag_of_name(const char *hostport)
{
    return (uint16_t)(hc_node_id_of(hostport) >> 48);
}

int cl_peer_of_id(const cluster_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if (c->ids[i] == id) {
            return (int)i;
        }
    }
    /* an incarnation not heard yet: its host's slot (one live process per host) */
    for (size_t i = 0; c->fresh_ids && id != 0 && i < c->npeers; i++) {
        if (c->tags[i] == inc_id_tag(id)) {
            return (int)i;
        }
    }
    return -1;
}

void cl_heard_lifetime(cluster_t *c, int peer, uint64_t id, uint64_t lifetime)
{
    if (peer >= 0 && (size_t)peer < c->npeers && id != 0 && c->answer_id[peer] == id) {
        c->answer_lifetime[peer] = lifetime;
    }
}

int cl_other_lifetime_at(const cluster_t *c, int host, uint64_t lifetime)
{
    return host != c->self && lifetime != 0 && c->answer_lifetime[host] != 0 &&
           c->answer_lifetime[host] != lifetime;
}

int cl_id_older(const cluster_t *c, int peer, uint64_t a, uint64_t b)
{
    uint64_t legacy = hc_node_id_of(c->names[peer]);
    if (a == b || b == legacy) {
        return 0;
    }
    return a == legacy || inc_id_older(a, b);
}

/* An incarnation older than the one heard before answers on the link: a process that was
 * replaced and still runs (or a clock far behind). Never evidence; an established node tells
 * it the configuration (at most once a second), so that it stops (discovery.c). */
static void heard_stale(cluster_t *c, int peer, uint64_t id)
{
    uint64_t now = cl_now(c);
    if (c->stale_told_at[peer] != 0 && now - c->stale_told_at[peer] < 1000) {
        return;
    }
    c->stale_told_at[peer] = now;
    char hx[17], hn[17];
    hc_log(HC_LOG_WARN,
           "an older incarnation of a peer answers than one heard before: ignored (two "
           "processes for one HA_HOSTS entry, or its clock far behind?)",
           HC_LS("peer", c->names[peer]), HC_LS("id", cl_id_hex(id, hx)),
           HC_LS("newer", cl_id_hex(c->answer_id[peer], hn)));
    c->tell_stale[peer] = 1; /* the membership tick tells it the configuration (discovery.c) */
}

void cl_heard_id(cluster_t *c, int peer, uint64_t id)
{
    if (peer < 0 || (size_t)peer >= c->npeers || peer == c->self || id == 0 ||
        c->answer_id[peer] == id) {
        return;
    }
    if (c->answer_id[peer] != 0 && inc_id_tag(id) == c->tags[peer] &&
        cl_id_older(c, peer, id, c->answer_id[peer])) {
        heard_stale(c, peer, id);
        return;
    }
    if (inc_id_tag(id) != c->tags[peer]) {
        char hx[17];
        hc_log(HC_LOG_WARN, "peer claims a raft id of another host, ignored",
               HC_LS("peer", c->names[peer]), HC_LS("id", cl_id_hex(id, hx)));
        return;
    }
    uint64_t before = c->answer_id[peer];
    c->answer_id[peer] = id;
    c->answer_lifetime[peer] = 0; /* not known for this incarnation yet */
    c->ids[peer] = id;
    char hx[17], hb[17];
    hc_log(before != 0 ? HC_LOG_INFO : HC_LOG_DEBUG, "peer incarnation",
           HC_LS("peer", c->names[peer]), HC_LS("id", cl_id_hex(id, hx)),
           HC_LS("before", cl_id_hex(before, hb)));
    cl_kick(c);
}

int cl_host_of_member(const cluster_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->nhosts; i++) {
        if (c->ids[i] == id || hc_node_id_of(c->names[i]) == id ||
            (c->fresh_ids && c->tags[i] == inc_id_tag(id))) {
            return (int)i;
        }
    }
    return -1;
}

int cl_slot_of_name(const cluster_t *c, const char *name)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if (strcasecmp(c->names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

uint64_t cl_last_frame_of(const cluster_t *c, int peer, uint64_t id)
{
    if (peer < 0 || (size_t)peer >= c->npeers) {
        return 0;
    }
    if (c->answer_id[peer] != 0 && id != 0 && c->answer_id[peer] != id) {
        return 0; /* another incarnation answers on that link: nothing heard from this one */
    }
    return c->last_frame[peer];
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
        c->tags[i] = nm ? cl_tag_of_name(nm) : 0;
        c->answer_id[i] = 0;
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

/* 1 when every connected peer speaks protocol 2 or later (raft ids on the wire): new
 * incarnations, majority bootstrap and starting over are then in use. */
int cl_peers_know_incarnations(const cluster_t *c)
{
    if (!c->fresh_ids) {
        return 0;
    }
    for (size_t i = 0; i < c->npeers; i++) {
        if ((int)i != c->self && cl_link_up(c, (int)i) &&
            c->io.peer_version(c->io.ud, (int)i) < 2) {
            return 0;
        }
    }
    return 1;
}

/* A fresh id orders after every earlier incarnation of this host (inc_id_older): the random
 * part is the wall clock in 4 ms units (40 bits, until the year 2109), then 8 random bits. */
uint64_t cl_announced_id(const cluster_t *c)
{
    if (c->raft != NULL) {
        return c->ids[c->self];
    }
    /* discovering: the fresh id only if it will be used (every connected peer speaks 2); with a
     * version 1 peer the node takes its legacy id, and an announced fresh id would make peers
     * refuse the legacy one as an older incarnation */
    return c->fresh_ids && cl_peers_know_incarnations(c) ? c->ids[c->self] : 0;
}

/* A TimeSync question (t1 == 0) or answer: the clock comparison (status.c), and while held a
 * follower's question to its leader (quorum.c). Answers carry the commit index. */
void cl_send_time(cluster_t *c, int peer, uint64_t t0, uint64_t t1)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__TimeSync ts = HACACHE__TIME_SYNC__INIT;
    ts.t0 = t0;
    ts.t1 = t1;
    ts.raft_id = cl_announced_id(c);
    ts.commit = t1 != 0 ? c->commit_heard : 0;
    ts.lifetime = c->lifetime;
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_TIME;
    pm.time = &ts;
    cl_send_pm(c, peer, &pm);
}

/* 1 when every other member of the configuration last linked with protocol >= v (a member not
 * linked since this process started counts as not speaking it). */
int cl_members_speak(cluster_t *c, uint32_t v)
{
    if (c->raft == NULL) {
        return 0;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    for (uint32_t i = 0; i < st.n_peers; i++) {
        int peer = cl_peer_of_id(c, st.peers[i].id);
        if (peer < 0 || c->proto_seen[peer] < v) {
            return 0;
        }
    }
    return 1;
}
