/* codec.c: mapping between hc_cmd_t and the generated protobuf-c Command. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

#include "hacache.h"
#include "hacache.pb-c.h"

int hc_cmd_encode(const hc_cmd_t *cmd, uint8_t **out, size_t *outlen)
{
    return hc_cmd_encode_meta(cmd, NULL, out, outlen);
}

int hc_cmd_proto(const hc_cmd_t *cmd)
{
    return cmd->op == HC_OP_BATCH || cmd->op == HC_OP_GET || cmd->op == HC_OP_SET_TTL ||
                   cmd->if_present || cmd->keep_ttl || cmd->no_default_ttl || cmd->want_old ||
                   cmd->ttl_ms != 0
               ? 3
               : 2;
}

int hc_cmd_has_vals(const hc_cmd_t *cmd)
{
    return cmd->op == HC_OP_BATCH || cmd->op == HC_OP_GET || cmd->op == HC_OP_SET_TTL ||
           cmd->want_old;
}

/* The fields of a command without its batch, settings and metadata. */
static void cmd_fields(const hc_cmd_t *cmd, Hacache__Command *m)
{
    m->op = (Hacache__Command__Op)cmd->op;
    m->cache.data = (uint8_t *)cmd->cache;
    m->cache.len = cmd->cache_len;
    m->key.data = (uint8_t *)cmd->key;
    m->key.len = cmd->klen;
    m->value.data = (uint8_t *)cmd->val;
    m->value.len = cmd->vlen;
    m->expire_at_ms = cmd->expire_at_ms;
    m->if_absent = cmd->if_absent != 0;
    m->has_if_version = cmd->has_if_version != 0;
    m->if_version = cmd->if_version;
    m->incr_by = cmd->incr_by;
    m->if_present = cmd->if_present != 0;
    m->keep_ttl = cmd->keep_ttl != 0;
    m->no_default_ttl = cmd->no_default_ttl != 0;
    m->want_old = cmd->want_old != 0;
    m->ttl_ms = cmd->ttl_ms;
}

int hc_cmd_encode_meta(const hc_cmd_t *cmd, const hc_cmd_meta_t *meta, uint8_t **out,
                       size_t *outlen)
{
    Hacache__Command m = HACACHE__COMMAND__INIT;
    Hacache__CacheSettings s = HACACHE__CACHE_SETTINGS__INIT;
    Hacache__Command *subs = NULL, **subp = NULL;
    if (cmd->op == HC_OP_BATCH && cmd->nsub > 0) {
        subs = calloc(cmd->nsub, sizeof(*subs));
        subp = calloc(cmd->nsub, sizeof(*subp));
        if (subs == NULL || subp == NULL) {
            free(subs);
            free(subp);
            return HC_ENOMEM;
        }
        for (size_t i = 0; i < cmd->nsub; i++) {
            hacache__command__init(&subs[i]);
            cmd_fields(&cmd->sub[i], &subs[i]);
            subp[i] = &subs[i];
        }
        m.n_batch = cmd->nsub;
        m.batch = subp;
    }
    cmd_fields(cmd, &m);
    m.cache.data = (uint8_t *)cmd->cache;
    m.cache.len = cmd->cache_len;
    m.key.data = (uint8_t *)cmd->key;
    m.key.len = cmd->klen;
    m.value.data = (uint8_t *)cmd->val;
    m.value.len = cmd->vlen;
    m.expire_at_ms = cmd->expire_at_ms;
    m.if_absent = cmd->if_absent != 0;
    m.has_if_version = cmd->has_if_version != 0;
    m.if_version = cmd->if_version;
    m.incr_by = cmd->incr_by;
    if (meta != NULL) {
        if (meta->has_request_id) {
            m.request_id.data = (uint8_t *)meta->request_id;
            m.request_id.len = HC_REQUEST_ID_BYTES;
        }
        m.now_ms = meta->now_ms;
    }
    if (cmd->op == HC_OP_CACHE_CONFIG) {
        s.max_memory = cmd->settings.max_memory;
        s.default_ttl_ms = cmd->settings.default_ttl_ms;
        s.policy = (Hacache__CacheSettings__Policy)cmd->settings.policy;
        s.max_stale_ms = cmd->settings.max_stale_ms;
        m.settings = &s;
    }
    size_t n = hacache__command__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf != NULL) {
        *outlen = hacache__command__pack(&m, buf);
        *out = buf;
    }
    free(subs);
    free(subp);
    return buf != NULL ? 0 : HC_ENOMEM;
}

/* The fields of a decoded command (its batch aside); HC_EINVAL for an op this version does not
 * know or a missing cache name. */
static int cmd_from(const Hacache__Command *m, hc_cmd_t *c)
{
    if (m->op < HACACHE__COMMAND__OP__PUT || m->op > HACACHE__COMMAND__OP__SET_TTL ||
        (m->cache.len == 0 && m->op != HACACHE__COMMAND__OP__INVALIDATE &&
         m->op != HACACHE__COMMAND__OP__BATCH) ||
        m->cache.len > 255) {
        return HC_EINVAL;
    }
    c->op = (hc_op_t)m->op;
    c->cache = (const char *)m->cache.data;
    c->cache_len = m->cache.len;
    c->key = m->key.data;
    c->klen = m->key.len;
    c->val = m->value.data;
    c->vlen = m->value.len;
    c->expire_at_ms = m->expire_at_ms;
    c->if_absent = m->if_absent;
    c->has_if_version = m->has_if_version;
    c->if_version = m->if_version;
    c->incr_by = m->incr_by;
    c->if_present = m->if_present;
    c->keep_ttl = m->keep_ttl;
    c->no_default_ttl = m->no_default_ttl;
    c->want_old = m->want_old;
    c->ttl_ms = m->ttl_ms;
    return 0;
}

int hc_cmd_decode(const uint8_t *buf, size_t len, size_t max_len, hc_cmd_decoded_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > max_len) {
        return HC_ETOOLARGE;
    }
    Hacache__Command *m = hacache__command__unpack(NULL, len, buf);
    if (m == NULL) {
        return HC_EINVAL;
    }
    hc_cmd_t *c = &out->cmd;
    out->msg = m;
    if (cmd_from(m, c) != 0 || (c->op == HC_OP_BATCH) != (m->n_batch > 0)) {
        hc_cmd_decoded_free(out);
        return HC_EINVAL;
    }
    if (m->n_batch > 0) {
        hc_cmd_t *subs = calloc(m->n_batch, sizeof(*subs));
        if (subs == NULL) {
            hc_cmd_decoded_free(out);
            return HC_ENOMEM;
        }
        out->subs = subs;
        for (size_t i = 0; i < m->n_batch; i++) {
            const Hacache__Command *b = m->batch[i];
            if (cmd_from(b, &subs[i]) != 0 || b->n_batch > 0 ||
                (subs[i].op != HC_OP_PUT && subs[i].op != HC_OP_DEL && subs[i].op != HC_OP_INCR &&
                 subs[i].op != HC_OP_GET && subs[i].op != HC_OP_SET_TTL)) {
                hc_cmd_decoded_free(out);
                return HC_EINVAL;
            }
        }
        c->sub = subs;
        c->nsub = m->n_batch;
    }
    if (m->settings) {
        c->settings.max_memory = m->settings->max_memory;
        c->settings.default_ttl_ms = m->settings->default_ttl_ms;
        c->settings.policy = m->settings->policy == HACACHE__CACHE_SETTINGS__POLICY__SERVE_STALE
                                 ? HC_POLICY_SERVE_STALE
                                 : HC_POLICY_INVALIDATE;
        c->settings.max_stale_ms = m->settings->max_stale_ms;
    }
    if (m->request_id.len == HC_REQUEST_ID_BYTES) {
        out->meta.has_request_id = 1;
        memcpy(out->meta.request_id, m->request_id.data, HC_REQUEST_ID_BYTES);
    }
    out->meta.now_ms = m->now_ms;
    return 0;
}

void hc_cmd_decoded_free(hc_cmd_decoded_t *d)
{
    free(d->subs);
    d->subs = NULL;
    if (d->msg) {
        hacache__command__free_unpacked(d->msg, NULL);
        d->msg = NULL;
    }
}

int hc_raft_msg_encode(const raft_message_t *m, uint64_t lifetime, uint8_t **out, size_t *outlen)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__RaftMessage r = HACACHE__RAFT_MESSAGE__INIT;
    Hacache__RaftEntry *ents = NULL;
    Hacache__RaftEntry **ptrs = NULL;
    r.type = m->type;
    r.from = m->from;
    r.to = m->to;
    r.term = m->term;
    r.incarnation = m->incarnation;
    r.epoch = m->epoch;
    r.flags = m->flags;
    r.lifetime = lifetime;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        r.prev_index = m->append.prev_index;
        r.prev_term = m->append.prev_term;
        r.commit = m->append.commit;
        r.seq = m->append.seq;
        r.to_incarnation = m->append.to_incarnation;
        if (m->append.n_entries > 0) {
            ents = calloc(m->append.n_entries, sizeof(*ents));
            ptrs = calloc(m->append.n_entries, sizeof(*ptrs));
            if (ents == NULL || ptrs == NULL) {
                free(ents);
                free(ptrs);
                return HC_ENOMEM;
            }
            for (size_t i = 0; i < m->append.n_entries; i++) {
                const raft_entry_t *e = &m->append.entries[i];
                hacache__raft_entry__init(&ents[i]);
                ents[i].term = e->term;
                ents[i].index = e->index;
                ents[i].type = e->type;
                ents[i].data.data = (uint8_t *)e->data;
                ents[i].data.len = e->len;
                ptrs[i] = &ents[i];
            }
            r.n_entries = m->append.n_entries;
            r.entries = ptrs;
        }
        break;
    case RAFT_MSG_APPEND_RESP:
        r.success = m->append_resp.success;
        r.index = m->append_resp.index;
        r.hint_index = m->append_resp.hint_index;
        r.hint_term = m->append_resp.hint_term;
        r.last_index = m->append_resp.last_index;
        r.seq = m->append_resp.seq;
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        r.vote_last_index = m->vote.last_index;
        r.vote_last_term = m->vote.last_term;
        r.claim_index = m->vote.claim_index;
        r.claim_epoch = m->vote.claim_epoch;
        r.n_claim = m->vote.n_claim;
        r.claim = (uint64_t *)m->vote.claim; /* borrowed for the encode */
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        r.granted = m->vote_resp.granted;
        break;
    default:
        break;
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_RAFT;
    pm.raft = &r;
    size_t n = hacache__peer_message__get_packed_size(&pm);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        free(ents);
        free(ptrs);
        return HC_ENOMEM;
    }
    *outlen = hacache__peer_message__pack(&pm, buf);
    *out = buf;
    free(ents);
    free(ptrs);
    return 0;
}

int hc_raft_msg_from_pb(const void *pb_raft, hc_raft_msg_decoded_t *out)
{
    const Hacache__RaftMessage *r = pb_raft;
    memset(out, 0, sizeof(*out));
    if (r->type < RAFT_MSG_APPEND || r->type > RAFT_MSG_TIMEOUT_NOW) {
        return HC_EINVAL;
    }
    raft_message_t *m = &out->msg;
    m->type = (uint8_t)r->type;
    m->from = r->from;
    m->to = r->to;
    m->term = r->term;
    m->incarnation = r->incarnation;
    m->epoch = r->epoch;
    m->flags = r->flags;
    out->lifetime = r->lifetime;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        m->append.prev_index = r->prev_index;
        m->append.prev_term = r->prev_term;
        m->append.commit = r->commit;
        m->append.seq = r->seq;
        m->append.to_incarnation = r->to_incarnation;
        if (r->n_entries > 0) {
            out->entries = calloc(r->n_entries, sizeof(*out->entries));
            if (out->entries == NULL) {
                return HC_ENOMEM;
            }
            for (size_t i = 0; i < r->n_entries; i++) {
                const Hacache__RaftEntry *e = r->entries[i];
                out->entries[i].term = e->term;
                /* entries of an AppendEntries are consecutive from prev_index + 1 */
                out->entries[i].index = e->index ? e->index : r->prev_index + 1 + i;
                out->entries[i].type = (uint8_t)e->type;
                out->entries[i].data = e->data.data;
                out->entries[i].len = e->data.len;
            }
            m->append.entries = out->entries;
            m->append.n_entries = r->n_entries;
        }
        break;
    case RAFT_MSG_APPEND_RESP:
        m->append_resp.success = r->success;
        m->append_resp.index = r->index;
        m->append_resp.hint_index = r->hint_index;
        m->append_resp.hint_term = r->hint_term;
        m->append_resp.last_index = r->last_index;
        m->append_resp.seq = r->seq;
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        m->vote.last_index = r->vote_last_index;
        m->vote.last_term = r->vote_last_term;
        if (r->n_claim > RAFT_MAX_MEMBERS) {
            return HC_EINVAL; /* more voters than a configuration can hold */
        }
        m->vote.claim_index = r->claim_index;
        m->vote.claim_epoch = r->claim_epoch;
        m->vote.n_claim = (uint32_t)r->n_claim;
        if (r->n_claim > 0) {
            memcpy(m->vote.claim, r->claim, r->n_claim * sizeof(raft_id_t));
        }
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        m->vote_resp.granted = r->granted;
        break;
    default:
        break;
    }
    return 0;
}

int hc_raft_msg_decode(const uint8_t *buf, size_t len, hc_raft_msg_decoded_t *out)
{
    memset(out, 0, sizeof(*out));
    Hacache__PeerMessage *pm = hacache__peer_message__unpack(NULL, len, buf);
    if (pm == NULL) {
        return HC_EINVAL;
    }
    if (pm->body_case != HACACHE__PEER_MESSAGE__BODY_RAFT) {
        hacache__peer_message__free_unpacked(pm, NULL);
        return HC_EINVAL;
    }
    int rv = hc_raft_msg_from_pb(pm->raft, out);
    if (rv != 0) {
        hacache__peer_message__free_unpacked(pm, NULL);
        free(out->entries);
        memset(out, 0, sizeof(*out));
        return rv;
    }
    out->pb = pm;
    return 0;
}

void hc_raft_msg_decoded_free(hc_raft_msg_decoded_t *d)
{
    free(d->entries);
    if (d->pb) {
        hacache__peer_message__free_unpacked(d->pb, NULL);
    }
    memset(d, 0, sizeof(*d));
}
