/* codec.c: mapping between hc_cmd_t and the generated protobuf-c Command. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

#include "hacache.h"
#include "hacache.pb-c.h"

int hc_cmd_encode(const hc_cmd_t *cmd, uint8_t **out, size_t *outlen)
{
    Hacache__Command m = HACACHE__COMMAND__INIT;
    Hacache__CacheSettings s = HACACHE__CACHE_SETTINGS__INIT;
    m.op = (Hacache__Command__Op)cmd->op;
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
    if (cmd->op == HC_OP_CACHE_CONFIG) {
        s.max_memory = cmd->settings.max_memory;
        s.default_ttl_ms = cmd->settings.default_ttl_ms;
        s.policy = (Hacache__CacheSettings__Policy)cmd->settings.policy;
        s.max_stale_ms = cmd->settings.max_stale_ms;
        m.settings = &s;
    }
    size_t n = hacache__command__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        return HC_ENOMEM;
    }
    *outlen = hacache__command__pack(&m, buf);
    *out = buf;
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
    if (m->op < HACACHE__COMMAND__OP__PUT || m->op > HACACHE__COMMAND__OP__CACHE_CONFIG ||
        m->cache.len == 0 || m->cache.len > 255) {
        hacache__command__free_unpacked(m, NULL);
        return HC_EINVAL;
    }
    hc_cmd_t *c = &out->cmd;
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
    if (m->settings) {
        c->settings.max_memory = m->settings->max_memory;
        c->settings.default_ttl_ms = m->settings->default_ttl_ms;
        c->settings.policy = m->settings->policy == HACACHE__CACHE_SETTINGS__POLICY__SERVE_STALE
                                 ? HC_POLICY_SERVE_STALE
                                 : HC_POLICY_INVALIDATE;
        c->settings.max_stale_ms = m->settings->max_stale_ms;
    }
    out->msg = m;
    return 0;
}

void hc_cmd_decoded_free(hc_cmd_decoded_t *d)
{
    if (d->msg) {
        hacache__command__free_unpacked(d->msg, NULL);
        d->msg = NULL;
    }
}
