/* peer.c: the peer layer's front: the listener, the dialer (jittered backoff, replacement of
 * links after credential reloads) and the public API of peer.h. */
#include "peer_int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "hacache.h"
#include "log.h"
#include "util.h"

/* Credential reloads (see peer.h, "Replacement"). */
#define REDIAL_ASK_MS       1000  /* how often the higher-named side repeats its request */
#define REVOKE_GRACE_MS     3000  /* a link whose peer lost its credentials closes this late */
#define REPLACE_BACKOFF_MIN 1000  /* after a failed replacement dial, doubling ... */
#define REPLACE_BACKOFF_MAX 30000 /* ... up to this */

/* ---- closing ---- */

void peer__handle_closed(hc_peers_t *p)
{
    if (--p->open == 0 && p->closing) {
        void (*cb)(void *) = p->close_cb;
        void *ud = p->close_ud;
        for (int i = 0; i < p->n_slots; i++) {
            free(p->slots[i]);
        }
        free(p->slots);
        for (size_t i = 0; i < p->n_hosts; i++) {
            free(p->host_names[i]);
        }
        free(p->host_names);
        sodium_memzero(p->keys, p->n_keys * TOKEN_KEY);
        free(p->keys);
        hc_tls_ctx_unref(p->tls);
        free(p);
        if (cb != NULL) {
            cb(ud);
        }
    }
}

/* Close callback of the listener, tick and flush handles (data is the hc_peers_t). */
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

/* ---- listener ---- */

void peer__format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, len, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, len, "[%s]:%d", ip, port);
    } else {
        snprintf(out, len, "?");
    }
}

static void on_accept(uv_stream_t *server, int status)
{
    hc_peers_t *p = server->data;
    if (status != 0 || p->closing) {
        if (status != 0) {
            hc_log(HC_LOG_WARN, "peer accept failed", HC_LS("error", uv_strerror(status)));
        }
        return;
    }
    link_t *l = peer__link_new(p, 0, -1);
    if (l == NULL) {
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        l->state = L_CLOSING;
        uv_close((uv_handle_t *)&l->tcp, peer__link_handle_closed);
        return;
    }
    /* unauthenticated connections hold buffers: bound how many may exist at once, closing the
     * oldest for a new one (refusing new ones would let a flood lock a restarted peer out) */
    hc_admit_conn_t *evicted = hc_admit_add_pending(&p->admit, &l->adm, uv_now(p->loop));
    if (evicted != NULL) {
        link_t *old = (link_t *)(void *)((char *)evicted - offsetof(link_t, adm));
        peer__link_close(old, "too many unauthenticated connections (CACHE_UNAUTH_MAX)", 0);
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        peer__format_addr((struct sockaddr *)&ss, l->addr, sizeof(l->addr));
    }
    peer__link_start(l);
}

/* ---- dialing ---- */

static void on_connect(uv_connect_t *req, int status)
{
    link_t *l = req->data;
    if (status == UV_ECANCELED || l->state == L_CLOSING || l->p->closing) {
        return;
    }
    if (status != 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(status));
        peer__link_close(l, reason, 0);
        return;
    }
    peer__link_start(l);
}

static void dial_failed(slot_t *s, const char *reason)
{
    if (s->replace_wanted && s->link != NULL) {
        peer__replacement_failed(s, reason);
        return;
    }
    int repeated = s->last_dial_error[0] != '\0';
    snprintf(s->last_dial_error, sizeof(s->last_dial_error), "%s", reason);
    hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_INFO, "peer unreachable, retrying",
           HC_LS("peer", s->name), HC_LS("reason", reason), HC_LU("attempt", s->attempts + 1));
    peer__schedule_dial(s, 1);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    slot_t *s = req->data;
    hc_peers_t *p = s->p;
    s->resolving = 0;
    if (p->closing) {
        uv_freeaddrinfo(res);
        peer__handle_closed(p);
        return;
    }
    p->open--; /* the request is done; p is not closing, so nothing completes here */
    if (status != 0 || res == NULL) {
        char reason[300];
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", s->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        dial_failed(s, reason);
        return;
    }
    int replacing = s->replace_wanted && s->link != NULL;
    if (s->link != NULL && !replacing) { /* came up inbound meanwhile */
        uv_freeaddrinfo(res);
        return;
    }
    link_t *l = peer__link_new(p, 1, s->index);
    if (l == NULL) {
        uv_freeaddrinfo(res);
        dial_failed(s, "out of memory");
        return;
    }
    peer__format_addr(res->ai_addr, l->addr, sizeof(l->addr));
    s->dial_link = l;
    if (replacing) {
        l->replacement = 1;
        p->replacing = l;
    }
    l->connect_req.data = l;
    int rc = uv_tcp_connect(&l->connect_req, &l->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc != 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(rc));
        peer__link_close(l, reason, 0);
    }
}

static void on_dial_timer(uv_timer_t *t)
{
    slot_t *s = t->data;
    hc_peers_t *p = s->p;
    if (p->closing || (s->link != NULL && !s->replace_wanted) || s->dial_link != NULL ||
        s->resolving) {
        return;
    }
    char port[8];
    snprintf(port, sizeof(port), "%u", s->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->gai.data = s;
    int rc = uv_getaddrinfo(p->loop, &s->gai, on_resolved, s->host, port, &hints);
    if (rc != 0) {
        char reason[300];
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", s->host, uv_strerror(rc));
        dial_failed(s, reason);
        return;
    }
    s->resolving = 1;
    p->open++;
}

/* Arms the dial timer: at once for a first dial, after a jittered exponential delay once a
 * dial failed (backoff_min doubling to backoff_max, +-25 %). */
void peer__schedule_dial(slot_t *s, int after_failure)
{
    hc_peers_t *p = s->p;
    if (!s->timer_open || p->closing) {
        return;
    }
    uint64_t delay = 0;
    if (after_failure) {
        uint32_t shift = s->attempts < 16 ? s->attempts : 16;
        uint64_t base = (uint64_t)p->backoff_min_ms << shift;
        if (base > p->backoff_max_ms) {
            base = p->backoff_max_ms;
        }
        /* [0.75, 1.25] * base */
        delay = base * 3 / 4 + (base / 2) * randombytes_uniform(1001) / 1000;
        s->attempts++;
    } else {
        delay = p->backoff_min_ms / 2; /* a link just dropped: let the peer notice it too */
    }
    uv_timer_start(&s->dial_timer, on_dial_timer, delay, 0);
}

/* ---- replacement after credential reloads ---- */

void peer__replacement_failed(slot_t *s, const char *reason)
{
    hc_peers_t *p = s->p;
    uint64_t now = uv_now(p->loop);
    s->replace_wanted = 0;
    s->replace_failures++;
    s->replace_failed_ms = now;
    p->replace_failed_total++;
    uint32_t shift = s->replace_failures - 1 < 5 ? s->replace_failures - 1 : 5;
    uint64_t backoff = (uint64_t)REPLACE_BACKOFF_MIN << shift;
    backoff = backoff > REPLACE_BACKOFF_MAX ? REPLACE_BACKOFF_MAX : backoff;
    s->replace_next_ms = now + backoff;
    int repeated = strcmp(s->last_replace_error, reason) == 0;
    snprintf(s->last_replace_error, sizeof(s->last_replace_error), "%s", reason);
    int revoked = s->link != NULL && s->link->revoked_ms != 0;
    hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_WARN,
           revoked ? "peer link replacement failed, the revoked link closes"
                   : "peer link replacement failed, the current link stays",
           HC_LS("peer", s->name), HC_LU("link", s->link ? s->link->id : 0),
           HC_LS("reason", reason), HC_LU("retry_in_ms", backoff), HC_LB("revoked", revoked));
    peer__replace_soon(p);
}

static int link_stale(const hc_peers_t *p, const link_t *l)
{
    return l->gen < p->cred_gen || l->redial_asked || l->revoked_ms != 0;
}

/* Walks the active links once: a link authenticated with credentials older than the current
 * ones is replaced make-before-break, one link at a time. The node whose name sorts first dials
 * the replacement (its dial wins the duplicate tie-break on both ends, whichever side dialed the
 * old link); the other node asks it to with a redial PING, repeated every REDIAL_ASK_MS. A link
 * whose peer credentials a reload no longer accepts is closed once its replacement failed, or
 * REVOKE_GRACE_MS after the reload at the latest. */
void peer__replace_step(hc_peers_t *p)
{
    if (p->closing) {
        return;
    }
    uint64_t now = uv_now(p->loop);
    int busy = p->replacing != NULL;
    for (int i = 0; i < p->n_slots; i++) {
        busy |= p->slots[i]->replace_wanted;
    }
    for (int i = 0; i < p->n_slots && !p->closing; i++) {
        slot_t *s = p->slots[i];
        link_t *l = s->link;
        if (l == NULL || l->state != L_UP || !link_stale(p, l)) {
            continue;
        }
        int in_progress = s->replace_wanted || (p->replacing && p->replacing->slot == i);
        if (l->revoked_ms != 0 && !in_progress &&
            (now - l->revoked_ms >= REVOKE_GRACE_MS || s->replace_failed_ms >= l->revoked_ms)) {
            char why[300];
            snprintf(why, sizeof(why), "credentials no longer accepted after a reload: %s",
                     l->revoke_reason);
            p->revoked_total++;
            peer__link_close(l, why, 0);
            continue;
        }
        int i_dial = s->in_config && strcasecmp(p->me, l->peer_name) < 0;
        if (i_dial) {
            if (!busy && s->dial_link == NULL && !s->resolving && now >= s->replace_next_ms &&
                s->timer_open) {
                s->replace_wanted = 1;
                busy = 1;
                hc_log(HC_LOG_DEBUG, "replacing peer link", HC_LS("peer", s->name),
                       HC_LU("link", l->id), HC_LU("generation", l->gen),
                       HC_LU("current_generation", p->cred_gen));
                uv_timer_start(&s->dial_timer, on_dial_timer, 0, 0);
            }
        } else if (now >= s->redial_ask_next_ms) {
            peer__enqueue(l, HC_FRAME_PING, REDIAL_MAGIC, REDIAL_MAGIC_LEN);
            s->redial_ask_next_ms = now + REDIAL_ASK_MS;
        }
    }
}

static void on_replace_timer(uv_timer_t *t)
{
    peer__replace_step(t->data);
}

void peer__replace_soon(hc_peers_t *p)
{
    if (!p->closing) {
        uv_timer_start(&p->replace_timer, on_replace_timer, 0, 0);
    }
}

/* ---- public ---- */

slot_t *peer__slot_add(hc_peers_t *p, const char *name, int in_config)
{
    if (p->n_slots == p->cap_slots) {
        int cap = p->cap_slots ? p->cap_slots * 2 : 8;
        slot_t **n = realloc(p->slots, (size_t)cap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        p->slots = n;
        p->cap_slots = cap;
    }
    slot_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->p = p;
    s->index = p->n_slots;
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (hc_parse_hostport(name, s->host, sizeof(s->host), &s->port) != 0) {
        snprintf(s->host, sizeof(s->host), "%s", name);
    }
    s->in_config = in_config;
    p->slots[p->n_slots++] = s;
    return s;
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

/* key_i of peer.h: BLAKE2b-256("hacache peer token v1" || token). */
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
    p->proto_min = o->proto_min ? o->proto_min : env_u32("HACACHE_TEST_PROTO_MIN", HC_PROTO_MIN);
    p->proto_max = o->proto_max ? o->proto_max : env_u32("HACACHE_TEST_PROTO_MAX", HC_PROTO_MAX);
    p->max_frame = o->max_frame ? o->max_frame : HC_PEER_DEFAULT_MAX_FRAME;
    if (p->max_frame > UINT32_MAX) {
        p->max_frame = UINT32_MAX;
    }
    p->max_queue = o->max_queue ? o->max_queue : HC_PEER_DEFAULT_MAX_QUEUE;
    p->keepalive_ms = o->keepalive_ms ? o->keepalive_ms : 1000;
    p->dead_timeout_ms = o->dead_timeout_ms ? o->dead_timeout_ms : 5000;
    p->handshake_timeout_ms = o->handshake_timeout_ms  ? o->handshake_timeout_ms
                              : cfg->unauth_timeout_ms ? cfg->unauth_timeout_ms
                                                       : 5000;
    hc_admit_limits_t lim = {.max_pending = cfg->unauth_max ? cfg->unauth_max : 128,
                             .pending_timeout_ms = p->handshake_timeout_ms};
    hc_admit_init(&p->admit, "peer", &lim, NULL);
    p->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 50;
    p->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 5000;
    randombytes_buf(&p->incarnation, sizeof(p->incarnation));
    hc_host_format(&cfg->hosts.v[cfg->self_index], p->me, sizeof(p->me));

    p->keys = calloc(cfg->n_auth_tokens, TOKEN_KEY);
    p->host_names = calloc(cfg->hosts.n, sizeof(char *));
    if (p->keys == NULL || p->host_names == NULL) {
        goto nomem;
    }
    p->n_keys = cfg->n_auth_tokens;
    for (size_t i = 0; i < cfg->n_auth_tokens; i++) {
        hc_peer_token_key(cfg->auth_tokens[i], p->keys[i]);
    }
    p->n_hosts = cfg->hosts.n;
    for (size_t i = 0; i < cfg->hosts.n; i++) {
        char name[HC_NODE_NAME_MAX + 1];
        hc_host_format(&cfg->hosts.v[i], name, sizeof(name));
        if ((p->host_names[i] = strdup(name)) == NULL || peer__slot_add(p, name, 1) == NULL) {
            goto nomem;
        }
        p->slots[i]->self = (int)i == cfg->self_index;
        if (p->slots[i]->self) {
            p->slots[i]->in_config = 0;
        }
    }
    p->tls = hc_tls_ctx_ref(o->tls);

    uv_timer_init(loop, &p->tick);
    p->tick.data = p;
    uv_timer_init(loop, &p->replace_timer);
    p->replace_timer.data = p;
    uv_prepare_init(loop, &p->flush);
    p->flush.data = p;
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
    for (size_t i = 0; p->host_names != NULL && i < p->n_hosts; i++) {
        free(p->host_names[i]);
    }
    free(p->host_names);
    free(p->keys);
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
    hc_log(HC_LOG_INFO, "peer listener started", HC_LS("node", p->me), HC_LS("addr", addr),
           HC_LU("port", me->port), HC_LB("tls", p->cfg->tls), HC_LU("protocol_min", p->proto_min),
           HC_LU("protocol_max", p->proto_max));
    uint32_t period = p->keepalive_ms / 2;
    period = period < 10 ? 10 : period > 250 ? 250 : period;
    uv_timer_start(&p->tick, peer__on_tick, period, period);
    for (int i = 0; i < p->n_slots; i++) {
        peer__schedule_dial(p->slots[i], 0);
    }
    return 0;
}

int hc_peers_send(hc_peers_t *p, int peer, const void *data, size_t len)
{
    if (peer < 0 || peer >= p->n_slots || p->closing) {
        return HC_EINVAL;
    }
    if (len > p->max_frame) {
        return HC_ETOOLARGE;
    }
    link_t *l = p->slots[peer]->link;
    if (l == NULL) {
        return HC_EUNAVAILABLE;
    }
    if (l->q_bytes + l->w_bytes + HC_FRAME_HEADER + len > p->max_queue) {
        return HC_EBUSY;
    }
    return peer__enqueue(l, HC_FRAME_DATA, data, len);
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
    const link_t *l = p->slots[peer]->link;
    return l->q_bytes + l->w_bytes;
}

int hc_peers_self(const hc_peers_t *p)
{
    return p->cfg->self_index;
}

void hc_peers_set_tls(hc_peers_t *p, hc_tls_ctx_t *tls)
{
    hc_tls_ctx_t *old = p->tls;
    p->tls = hc_tls_ctx_ref(tls);
    hc_tls_ctx_unref(old);
}

hc_tls_ctx_t *hc_peers_tls(const hc_peers_t *p)
{
    return p->tls;
}

int hc_peers_reload(hc_peers_t *p, hc_tls_ctx_t *tls, char *const *tokens, size_t n_tokens)
{
    if (p->closing || (tokens != NULL && n_tokens == 0)) {
        return HC_EINVAL;
    }
    if (tokens != NULL) {
        uint8_t(*keys)[TOKEN_KEY] = calloc(n_tokens, TOKEN_KEY);
        if (keys == NULL) {
            return HC_ENOMEM;
        }
        for (size_t i = 0; i < n_tokens; i++) {
            hc_peer_token_key(tokens[i], keys[i]);
        }
        sodium_memzero(p->keys, p->n_keys * TOKEN_KEY);
        free(p->keys);
        p->keys = keys;
        p->n_keys = n_tokens;
    }
    if (tls != NULL) {
        hc_peers_set_tls(p, tls);
    }
    p->cred_gen++;
    uint64_t now = uv_now(p->loop);
    int stale = 0;
    for (link_t *l = p->links; l != NULL; l = l->next) {
        if (l->state != L_UP) {
            continue;
        }
        stale++;
        char why[200] = "";
        if (tokens != NULL) {
            int ok = 0;
            for (size_t i = 0; i < p->n_keys; i++) {
                ok |= sodium_memcmp(l->peer_key, p->keys[i], TOKEN_KEY) == 0;
            }
            if (!ok) {
                snprintf(why, sizeof(why), "the token the peer proved is no longer accepted");
            }
        }
        if (why[0] == '\0' && tls != NULL && l->tls != NULL) {
            hc_tls_conn_recheck(l->tls, tls, why, sizeof(why));
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
    out->current = !link_stale(p, l);
    out->dialed = l->dialer;
    out->local = l->local;
    out->remote = l->addr;
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
        out->stale += l != NULL && l->state == L_UP && link_stale(p, l);
    }
}

void hc_peers_close(hc_peers_t *p, void (*cb)(void *ud), void *ud)
{
    if (p->closing) {
        return;
    }
    p->closing = 1;
    p->close_cb = cb;
    p->close_ud = ud;
    uv_prepare_stop(&p->flush);
    for (link_t *l = p->links; l != NULL; l = l->next) {
        l->state = L_CLOSING;
        if (!uv_is_closing((uv_handle_t *)&l->tcp)) {
            uv_close((uv_handle_t *)&l->tcp, peer__link_handle_closed);
        }
    }
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
    uv_close((uv_handle_t *)&p->flush, on_handle_closed);
}

const hc_admit_t *hc_peers_admit(const hc_peers_t *p)
{
    return &p->admit;
}
