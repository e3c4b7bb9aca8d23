/* peer.c: the peer layer's front (peer.h): creating the table, the listener and the periodic
 * tick, sending, status, credential reloads and closing. The layers below are listed in
 * peer_int.h. */
#include "peer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hacache.h"
#include "log.h"
#include "util.h"

/* Close callback of the listener, tick and replace timer handles (data is the hc_peers_t). */
static void on_handle_closed(uv_handle_t *h)
{
    peer__handle_closed(h->data);
}

/* Close callback of a slot's dial timer (data is the slot). */
static void on_slot_timer_closed(uv_handle_t *h)
{
    slot_t *s = h->data;
    peer__handle_closed(s->p);
}

static void on_accept(uv_stream_t *server, int status)
{
    hc_peers_t *p = server->data;
    if (status != 0 || p->net.closing) {
        if (status != 0) {
            hc_log(HC_LOG_WARN, "peer accept failed", HC_LS("error", uv_strerror(status)));
        }
        return;
    }
    link_t *l = peer__link_new(p, 0, -1);
    if (l == NULL) {
        return;
    }
    if (peer_link_accept(&l->io, server) != 0) {
        return;
    }
    /* unauthenticated connections hold buffers: bound how many may exist at once, closing the
     * oldest for a new one (refusing new ones would let a flood lock a restarted peer out) */
    hc_admit_conn_t *evicted = hc_admit_add_pending(&p->admit, &l->io.adm, uv_now(p->loop));
    if (evicted != NULL) {
        peer_link_t *old = (peer_link_t *)(void *)((char *)evicted - offsetof(peer_link_t, adm));
        peer_link_close(old, "too many unauthenticated connections (CACHE_UNAUTH_MAX)", 0);
    }
    peer_link_start(&l->io);
}

/* The periodic timer: link liveness, then the replacements. */
static void on_tick(uv_timer_t *t)
{
    hc_peers_t *p = t->data;
    peer_net_tick(&p->net);
    peer__replace_step(p);
}

static uint32_t env_u32(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    uint64_t x;
    if (v != NULL && hc_parse_u64(v, strlen(v), &x) == 0 && x > 0 && x < UINT32_MAX) {
        return (uint32_t)x;
    }
    return dflt;
}

/* ---- public ---- */

int hc_peers_new(uv_loop_t *loop, const hc_peers_opts_t *o, hc_peers_t **out)
{
    *out = NULL;
    const hc_config_t *cfg = o->cfg;
    if (cfg == NULL || cfg->self_index < 0 || (size_t)cfg->self_index >= cfg->hosts.n ||
        cfg->n_auth_tokens == 0 || (cfg->tls && o->tls == NULL)) {
        return HC_EINVAL;
    }
    if (sodium_init() < 0) {
        return HC_EINTERNAL;
    }
    hc_peers_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return HC_ENOMEM;
    }
    p->loop = loop;
    p->cfg = cfg;
    p->cb = o->cb;
    p->ud = o->ud;
    peer_identity_t *id = &p->ident;
    id->proto_min = o->proto_min ? o->proto_min : env_u32("HACACHE_TEST_PROTO_MIN", HC_PROTO_MIN);
    id->proto_max = o->proto_max ? o->proto_max : env_u32("HACACHE_TEST_PROTO_MAX", HC_PROTO_MAX);
    peer_net_t *net = &p->net;
    net->max_frame = o->max_frame ? o->max_frame : HC_PEER_DEFAULT_MAX_FRAME;
    if (net->max_frame > UINT32_MAX) {
        net->max_frame = UINT32_MAX;
    }
    p->max_queue = o->max_queue ? o->max_queue : HC_PEER_DEFAULT_MAX_QUEUE;
    net->keepalive_ms = o->keepalive_ms ? o->keepalive_ms : 1000;
    net->dead_timeout_ms = o->dead_timeout_ms ? o->dead_timeout_ms : 5000;
    net->handshake_timeout_ms = o->handshake_timeout_ms  ? o->handshake_timeout_ms
                                : cfg->unauth_timeout_ms ? cfg->unauth_timeout_ms
                                                         : 5000;
    hc_admit_limits_t lim = {.max_pending = cfg->unauth_max ? cfg->unauth_max : 128,
                             .pending_timeout_ms = net->handshake_timeout_ms};
    hc_admit_init(&p->admit, "peer", &lim, NULL);
    p->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 50;
    p->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 5000;
    randombytes_buf(&id->incarnation, sizeof(id->incarnation));
    hc_host_format(&cfg->hosts.v[cfg->self_index], id->me, sizeof(id->me));

    id->keys = calloc(cfg->n_auth_tokens, HC_PEER_TOKEN_KEY);
    id->host_names = calloc(cfg->hosts.n, sizeof(char *));
    if (id->keys == NULL || id->host_names == NULL) {
        goto nomem;
    }
    id->n_keys = cfg->n_auth_tokens;
    for (size_t i = 0; i < cfg->n_auth_tokens; i++) {
        hc_peer_token_key(cfg->auth_tokens[i], id->keys[i]);
    }
    id->n_hosts = cfg->hosts.n;
    for (size_t i = 0; i < cfg->hosts.n; i++) {
        char name[HC_NODE_NAME_MAX + 1];
        hc_host_format(&cfg->hosts.v[i], name, sizeof(name));
        if ((id->host_names[i] = strdup(name)) == NULL || peer__slot_add(p, name, 1) == NULL) {
            goto nomem;
        }
        p->slots[i]->self = (int)i == cfg->self_index;
        if (p->slots[i]->self) {
            p->slots[i]->in_config = 0;
        }
    }
    p->tls = hc_tls_ctx_ref(o->tls);
    net->tls = cfg->tls ? p->tls : NULL;
    net->admit = &p->admit;
    net->data = p;
    net->cb = (peer_link_cb_t){
        .frame = peer__on_frame,
        .ready = peer__on_ready,
        .closing = peer__on_closing,
        .hold_on_eof = peer__hold_on_eof,
        .closed = peer__net_closed,
    };

    uv_timer_init(loop, &p->tick);
    p->tick.data = p;
    uv_timer_init(loop, &p->replace_timer);
    p->replace_timer.data = p;
    peer_net_init(net, loop);
    p->open += 3;
    for (int i = 0; i < p->n_slots; i++) {
        slot_t *s = p->slots[i];
        if (s->in_config) {
            uv_timer_init(loop, &s->dial_timer);
            s->dial_timer.data = s;
            s->timer_open = 1;
            p->open++;
        }
    }
    *out = p;
    return 0;
nomem:
    for (int i = 0; i < p->n_slots; i++) {
        free(p->slots[i]);
    }
    free(p->slots);
    for (size_t i = 0; id->host_names != NULL && i < id->n_hosts; i++) {
        free(id->host_names[i]);
    }
    free(id->host_names);
    free(id->keys);
    free(p);
    return HC_ENOMEM;
}

int hc_peers_start(hc_peers_t *p)
{
    const hc_host_t *me = &p->cfg->hosts.v[p->cfg->self_index];
    const char *addr = p->cfg->listen_addr ? p->cfg->listen_addr : "0.0.0.0";
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(addr, me->port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        rc = uv_ip6_addr(addr, me->port, (struct sockaddr_in6 *)&ss);
    }
    if (rc == 0) {
        rc = uv_tcp_init(p->loop, &p->listener);
        if (rc == 0) {
            p->listener.data = p;
            p->listener_open = 1;
            p->open++;
            rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&ss, 0);
            if (rc == 0) {
                rc = uv_listen((uv_stream_t *)&p->listener, 511, on_accept);
            }
        }
    }
    if (rc != 0) {
        hc_log(HC_LOG_ERROR, "cannot listen on the peer port", HC_LS("addr", addr),
               HC_LU("port", me->port), HC_LS("error", uv_strerror(rc)));
        return rc;
    }
    hc_log(HC_LOG_INFO, "peer listener started", HC_LS("node", p->ident.me), HC_LS("addr", addr),
           HC_LU("port", me->port), HC_LB("tls", p->cfg->tls),
           HC_LU("protocol_min", p->ident.proto_min), HC_LU("protocol_max", p->ident.proto_max));
    uint32_t period = p->net.keepalive_ms / 2;
    period = period < 10 ? 10 : period > 250 ? 250 : period;
    uv_timer_start(&p->tick, on_tick, period, period);
    for (int i = 0; i < p->n_slots; i++) {
        peer__schedule_dial(p->slots[i], 0);
    }
    return 0;
}

int hc_peers_send(hc_peers_t *p, int peer, const void *data, size_t len)
{
    if (peer < 0 || peer >= p->n_slots || p->net.closing) {
        return HC_EINVAL;
    }
    if (len > p->net.max_frame) {
        return HC_ETOOLARGE;
    }
    link_t *l = p->slots[peer]->link;
    if (l == NULL) {
        return HC_EUNAVAILABLE;
    }
    if (peer_link_queued(&l->io) + HC_FRAME_HEADER + len > p->max_queue) {
        return HC_EBUSY;
    }
    return peer_link_send(&l->io, HC_FRAME_DATA, data, len);
}

int hc_peers_count(const hc_peers_t *p)
{
    return p->n_slots;
}

const char *hc_peers_name(const hc_peers_t *p, int peer)
{
    return peer >= 0 && peer < p->n_slots ? p->slots[peer]->name : NULL;
}

int hc_peers_is_up(const hc_peers_t *p, int peer)
{
    return peer >= 0 && peer < p->n_slots && p->slots[peer]->link != NULL;
}

uint32_t hc_peers_version(const hc_peers_t *p, int peer)
{
    return hc_peers_is_up(p, peer) ? p->slots[peer]->version : 0;
}

size_t hc_peers_queued(const hc_peers_t *p, int peer)
{
    if (!hc_peers_is_up(p, peer)) {
        return 0;
    }
    return peer_link_queued(&p->slots[peer]->link->io);
}

int hc_peers_self(const hc_peers_t *p)
{
    return p->cfg->self_index;
}

void hc_peers_set_tls(hc_peers_t *p, hc_tls_ctx_t *tls)
{
    hc_tls_ctx_t *old = p->tls;
    p->tls = hc_tls_ctx_ref(tls);
    p->net.tls = p->cfg->tls ? p->tls : NULL;
    hc_tls_ctx_unref(old);
}

hc_tls_ctx_t *hc_peers_tls(const hc_peers_t *p)
{
    return p->tls;
}

int hc_peers_reload(hc_peers_t *p, hc_tls_ctx_t *tls, char *const *tokens, size_t n_tokens)
{
    if (p->net.closing || (tokens != NULL && n_tokens == 0)) {
        return HC_EINVAL;
    }
    if (tokens != NULL) {
        uint8_t(*keys)[HC_PEER_TOKEN_KEY] = calloc(n_tokens, HC_PEER_TOKEN_KEY);
        if (keys == NULL) {
            return HC_ENOMEM;
        }
        for (size_t i = 0; i < n_tokens; i++) {
            hc_peer_token_key(tokens[i], keys[i]);
        }
        sodium_memzero(p->ident.keys, p->ident.n_keys * HC_PEER_TOKEN_KEY);
        free(p->ident.keys);
        p->ident.keys = keys;
        p->ident.n_keys = n_tokens;
    }
    if (tls != NULL) {
        hc_peers_set_tls(p, tls);
    }
    p->cred_gen++;
    uint64_t now = uv_now(p->loop);
    int stale = 0;
    for (peer_link_t *io = p->net.links; io != NULL; io = io->next) {
        if (io->state != L_UP) {
            continue;
        }
        link_t *l = peer__link_of(io);
        stale++;
        char why[200] = "";
        if (tokens != NULL) {
            int ok = 0;
            for (size_t i = 0; i < p->ident.n_keys; i++) {
                ok |= sodium_memcmp(l->hs.peer_key, p->ident.keys[i], HC_PEER_TOKEN_KEY) == 0;
            }
            if (!ok) {
                snprintf(why, sizeof(why), "the token the peer proved is no longer accepted");
            }
        }
        if (why[0] == '\0' && tls != NULL && io->tls != NULL) {
            hc_tls_conn_recheck(io->tls, tls, why, sizeof(why));
        }
        if (why[0] != '\0' && l->revoked_ms == 0) {
            l->revoked_ms = now ? now : 1;
            snprintf(l->revoke_reason, sizeof(l->revoke_reason), "%s", why);
            hc_log(HC_LOG_WARN, "peer link no longer authorized, replacing or closing it",
                   HC_LS("peer", peer__link_peer(l)), HC_LU("link", l->id), HC_LS("reason", why));
        }
    }
    for (int i = 0; i < p->n_slots; i++) {
        slot_t *s = p->slots[i];
        s->replace_failures = 0;
        s->replace_next_ms = 0;
        s->redial_ask_next_ms = 0;
        s->last_replace_error[0] = '\0';
    }
    peer__replace_soon(p);
    return stale;
}

uint64_t hc_peers_generation(const hc_peers_t *p)
{
    return p->cred_gen;
}

int hc_peers_link_info(const hc_peers_t *p, int peer, hc_peer_link_info_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!hc_peers_is_up(p, peer)) {
        return HC_EUNAVAILABLE;
    }
    const link_t *l = p->slots[peer]->link;
    out->id = l->id;
    out->generation = l->gen;
    out->current = !peer__link_stale(p, l);
    out->dialed = l->io.dialer;
    out->local = l->io.local;
    out->remote = l->io.addr;
    out->age_ms = uv_now(p->loop) - l->up_ms;
    return 0;
}

void hc_peers_reload_stats(const hc_peers_t *p, hc_peers_reload_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->generation = p->cred_gen;
    out->replaced = p->replaced_total;
    out->replace_failed = p->replace_failed_total;
    out->revoked = p->revoked_total;
    for (int i = 0; i < p->n_slots; i++) {
        const link_t *l = p->slots[i]->link;
        out->stale += l != NULL && l->io.state == L_UP && peer__link_stale(p, l);
    }
}

void hc_peers_close(hc_peers_t *p, void (*cb)(void *ud), void *ud)
{
    if (p->net.closing) {
        return;
    }
    p->close_cb = cb;
    p->close_ud = ud;
    peer_net_close(&p->net); /* every link, and the flush handle */
    for (int i = 0; i < p->n_slots; i++) {
        slot_t *s = p->slots[i];
        s->link = NULL;
        if (s->resolving) {
            uv_cancel((uv_req_t *)&s->gai); /* its callback still runs and counts down */
        }
        if (s->timer_open) {
            s->timer_open = 0;
            uv_close((uv_handle_t *)&s->dial_timer, on_slot_timer_closed);
        }
    }
    if (p->listener_open) {
        p->listener_open = 0;
        uv_close((uv_handle_t *)&p->listener, on_handle_closed);
    }
    uv_close((uv_handle_t *)&p->tick, on_handle_closed);
    uv_close((uv_handle_t *)&p->replace_timer, on_handle_closed);
}

const hc_admit_t *hc_peers_admit(const hc_peers_t *p)
{
    return &p->admit;
}
