/* peer_handshake.c: the Hello and Auth exchange (token proof, see peer.h) and bringing an
 * authenticated link up: one link per pair, the duplicate tie-break and retiring the loser. */
#include "peer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "hacache.h"
#include "log.h"

/* ---- helpers ---- */

static slot_t *slot_by_name(hc_peers_t *p, const char *name)
{
    for (int i = 0; i < p->n_slots; i++) {
        if (hc_same_hostport(p->slots[i]->name, name)) {
            return p->slots[i];
        }
    }
    return NULL;
}

/* ---- handshake ---- */

/* The token proof of the side `role` ('D' dialer, 'A' acceptor) on link l; see peer_auth.h. */
static void auth_mac(const hc_peers_t *p, const uint8_t key[TOKEN_KEY], char role, const link_t *l,
                     const uint8_t *exporter, uint8_t out[HC_MAC_BYTES])
{
    hc_peer_transcript_t t = {
        .dialer_name = l->dialer ? p->me : l->peer_name,
        .acceptor_name = l->dialer ? l->peer_name : p->me,
        .dialer_nonce = l->dialer ? l->my_nonce : l->peer_nonce,
        .acceptor_nonce = l->dialer ? l->peer_nonce : l->my_nonce,
        .dialer_hello_hash = l->dialer ? l->my_hello_hash : l->peer_hello_hash,
        .acceptor_hello_hash = l->dialer ? l->peer_hello_hash : l->my_hello_hash,
        .exporter = exporter,
    };
    hc_peer_auth_mac(key, role, &t, out);
}

/* Transport ready (TCP, or TCP+TLS): send our Hello. */
void peer__send_hello(link_t *l)
{
    hc_peers_t *p = l->p;
    hc_hello_t h;
    memset(&h, 0, sizeof(h));
    h.proto_min = p->proto_min;
    h.proto_max = p->proto_max;
    snprintf(h.node, sizeof(h.node), "%s", p->me);
    h.hosts = p->host_names;
    h.n_hosts = p->n_hosts;
    snprintf(h.version, sizeof(h.version), "%s", HC_VERSION_STRING);
    randombytes_buf(l->my_nonce, sizeof(l->my_nonce));
    memcpy(h.nonce, l->my_nonce, HC_NONCE_BYTES);
    h.incarnation = p->incarnation;
    uint8_t *buf;
    size_t len;
    if (hc_hello_encode(&h, &buf, &len) != 0) {
        peer__link_close(l, "out of memory", 0);
        return;
    }
    hc_peer_hello_hash(buf, len, l->my_hello_hash);
    int rc = peer__enqueue(l, HC_FRAME_HELLO, buf, len);
    free(buf);
    if (rc != 0) {
        peer__link_close(l, "out of memory", 0);
        return;
    }
    l->state = L_HELLO;
}

static int hello_lists(const hc_hello_t *h, const char *name)
{
    for (size_t i = 0; i < h->n_hosts; i++) {
        if (hc_same_hostport(h->hosts[i], name)) {
            return 1;
        }
    }
    return 0;
}

void peer__on_hello(link_t *l, const uint8_t *payload, size_t len)
{
    hc_peers_t *p = l->p;
    hc_hello_t h;
    const char *why;
    char reason[1024];
    hc_peer_hello_hash(payload, len, l->peer_hello_hash);
    if (hc_hello_decode(payload, len, &h, &why) != 0) {
        snprintf(reason, sizeof(reason), "malformed Hello: %s", why);
        peer__link_close(l, reason, 1);
        return;
    }
    snprintf(l->peer_name, sizeof(l->peer_name), "%s", h.node);
    memcpy(l->peer_nonce, h.nonce, HC_NONCE_BYTES);
    l->peer_incarnation = h.incarnation;
    uint32_t lo = h.proto_min > p->proto_min ? h.proto_min : p->proto_min;
    uint32_t hi = h.proto_max < p->proto_max ? h.proto_max : p->proto_max;
    slot_t *s = slot_by_name(p, h.node);
    int in_mine = s != NULL && s->in_config;
    int in_theirs = hello_lists(&h, p->me);
    reason[0] = '\0';
    if (lo > hi) {
        snprintf(reason, sizeof(reason),
                 "protocol versions do not overlap: mine [%u,%u], peer's [%u,%u]", p->proto_min,
                 p->proto_max, h.proto_min, h.proto_max);
    } else if (hc_same_hostport(h.node, p->me)) {
        snprintf(reason, sizeof(reason), "peer claims my own name %s", p->me);
    } else if (!in_mine && !in_theirs) {
        snprintf(reason, sizeof(reason),
                 "peer %s is not in my HA_HOSTS and I (%s) am not in its HA_HOSTS", h.node, p->me);
    } else if (l->dialer && !hc_same_hostport(h.node, p->slots[l->slot]->name)) {
        snprintf(reason, sizeof(reason), "dialed %s but the peer says it is %s",
                 p->slots[l->slot]->name, h.node);
    }
    hc_hello_free(&h);
    if (reason[0] != '\0') {
        peer__link_close(l, reason, 1);
        return;
    }
    if (l->tls != NULL && !l->dialer) {
        /* the client certificate must name the node the Hello claims to be */
        char host[256];
        uint16_t port;
        if (hc_parse_hostport(l->peer_name, host, sizeof(host), &port) != 0 ||
            hc_tls_conn_check_name(l->tls, host) != 0) {
            snprintf(reason, sizeof(reason), "TLS: %s",
                     l->tls ? hc_tls_conn_error(l->tls) : "bad peer name");
            peer__link_close(l, reason, 1);
            return;
        }
    }
    if (!l->dialer && s != NULL) {
        l->slot = s->index; /* a peer only in its own list gets a slot once authenticated */
    }
    l->version = hi;

    uint8_t exporter[HC_TLS_EXPORTER_BYTES], mac[HC_MAC_BYTES], *buf;
    size_t blen;
    if (l->tls != NULL && hc_tls_conn_exporter(l->tls, exporter) != 0) {
        peer__link_close(l, "TLS exporter unavailable", 0);
        return;
    }
    auth_mac(p, p->keys[0], l->dialer ? 'D' : 'A', l, l->tls ? exporter : NULL, mac);
    if (hc_auth_encode(mac, &buf, &blen) != 0) {
        peer__link_close(l, "out of memory", 0);
        return;
    }
    int rc = peer__enqueue(l, HC_FRAME_AUTH, buf, blen);
    free(buf);
    if (rc != 0) {
        peer__link_close(l, "out of memory", 0);
        return;
    }
    l->state = L_AUTH;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    link_t *l = req->data;
    if (status < 0 && status != UV_ECANCELED && l->state == L_RETIRING) {
        peer__link_close(l, "duplicate link retired", 0);
    }
}

/* Retiring link, no write in flight: write what is left (handshake frames), then shut down our
 * write side (uv_shutdown waits for that write). */
void peer__retire_flush(link_t *l)
{
    l->shutdown_pending = 0;
    if (l->q_head != NULL || (l->tls != NULL && hc_tls_conn_pending(l->tls) > 0)) {
        peer__link_write(l);
        if (l->state != L_RETIRING) {
            return;
        }
    }
    if (uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, on_shutdown) != 0) {
        peer__link_close(l, "duplicate link retired", 0);
    }
}

/* Retires the duplicate `drop` in favour of `keep`: frames not yet written move to keep, our
 * write side is shut once the write in flight (if any) is done, and frames the peer still sends
 * on it are delivered until its EOF (it retires the same link on its side). No frame written
 * before the switch is lost; frames may be reordered across the two links. */
static void link_retire(link_t *drop, link_t *keep)
{
    hc_peers_t *p = drop->p;
    /* DATA moves to keep; handshake frames stay, so the peer can finish authenticating this
     * link and retire it by the same rule */
    txframe_t *f = drop->q_head, *next;
    drop->q_head = drop->q_tail = NULL;
    drop->q_bytes = 0;
    for (; f != NULL; f = next) {
        next = f->next;
        f->next = NULL;
        peer__queue_push(f->data[4] == HC_FRAME_DATA ? keep : drop, f);
    }
    if (keep->q_head != NULL) {
        peer__want_flush(p);
    }
    if (drop->peer_eof) {
        peer__link_close(drop, "duplicate link retired", 0);
        return;
    }
    drop->state = L_RETIRING;
    drop->retired_ms = uv_now(p->loop);
    drop->shutdown_req.data = drop;
    hc_log(HC_LOG_DEBUG, "duplicate peer link retired", HC_LS("peer", peer__link_peer(drop)),
           HC_LS("addr", drop->addr), HC_LS("direction", drop->dialer ? "dialed" : "accepted"));
    if (drop->writing) {
        drop->shutdown_pending = 1; /* on_write continues */
    } else {
        peer__retire_flush(drop);
    }
}

/* Which of two authenticated links to the same peer incarnation to keep (see peer.h). */
static link_t *preferred(hc_peers_t *p, link_t *a, link_t *b)
{
    if (a->dialer == b->dialer) {
        return a->created_ms >= b->created_ms ? a : b; /* the older one is likely dead */
    }
    int me_first = strcasecmp(p->me, a->peer_name) < 0;
    link_t *mine = a->dialer ? a : b;
    return me_first ? mine : (mine == a ? b : a);
}

static void link_up(link_t *l)
{
    hc_peers_t *p = l->p;
    slot_t *s = p->slots[l->slot];
    l->state = L_UP;
    hc_admit_release(&p->admit, &l->adm);
    if (s->dial_link == l) {
        s->dial_link = NULL;
    }
    l->up_ms = uv_now(p->loop);
    int was_replacement = l->replacement;
    if (p->replacing == l) {
        p->replacing = NULL;
    }
    link_t *old = s->link;
    if (old != NULL && old->peer_incarnation == l->peer_incarnation) {
        link_t *keep = preferred(p, l, old);
        link_t *drop = keep == l ? old : l;
        int stale = old->gen < p->cred_gen || old->redial_asked || old->revoked_ms != 0;
        if (keep == l) {
            s->link = l; /* the peer stays up for the owner */
            s->version = l->version;
        }
        if (keep == l && (was_replacement || stale)) {
            /* make-before-break: the new link carries the traffic from now on, the old one
             * is retired below (its last writes still arrive, the owner sees no down/up) */
            p->replaced_total++;
            s->replace_wanted = 0;
            s->replace_failures = 0;
            s->last_replace_error[0] = '\0';
            hc_log(HC_LOG_INFO, "peer link replaced", HC_LS("peer", s->name),
                   HC_LU("old_link", old->id), HC_LU("new_link", l->id), HC_LS("addr", l->addr),
                   HC_LS("direction", l->dialer ? "dialed" : "accepted"),
                   HC_LU("generation", l->gen),
                   HC_LS("tls_subject", l->tls ? hc_tls_conn_peer_subject(l->tls) : "(plaintext)"));
        } else if (was_replacement) {
            s->replace_wanted = 0;
            peer__replacement_failed(s, "the peer kept the old link (tie-break)");
        }
        if (keep == l) {
            s->redial_ask_next_ms = 0; /* a new link that is stale already is asked for at once */
        }
        link_retire(drop, keep);
        peer__replace_soon(p); /* the next stale link, one at a time */
        return;
    }
    s->replace_wanted = 0;
    if (was_replacement) {
        peer__replace_soon(p);
    }
    if (old != NULL) {
        peer__link_close(old, "replaced by a new connection from the restarted peer", 0);
        if (p->closing || l->state != L_UP) {
            return; /* the owner closed everything in its down callback */
        }
    }
    s->link = l;
    s->version = l->version;
    if (s->timer_open) {
        uv_timer_stop(&s->dial_timer);
    }
    hc_log(HC_LOG_INFO, "peer link up", HC_LS("peer", s->name), HC_LS("addr", l->addr),
           HC_LS("direction", l->dialer ? "dialed" : "accepted"), HC_LU("version", l->version),
           HC_LU("failed_attempts", s->attempts), HC_LU("link", l->id),
           HC_LS("tls_subject", l->tls ? hc_tls_conn_peer_subject(l->tls) : "(plaintext)"));
    s->attempts = 0;
    s->last_refusal[0] = '\0';
    s->last_dial_error[0] = '\0';
    if (p->cb.up != NULL) {
        p->cb.up(p->ud, s->index, l->version);
    }
}

void peer__on_auth(link_t *l, const uint8_t *payload, size_t len)
{
    hc_peers_t *p = l->p;
    uint8_t got[HC_MAC_BYTES], want[HC_MAC_BYTES], exporter[HC_TLS_EXPORTER_BYTES];
    if (hc_auth_decode(payload, len, got) != 0) {
        peer__link_close(l, "malformed Auth", 1);
        return;
    }
    if (l->tls != NULL && hc_tls_conn_exporter(l->tls, exporter) != 0) {
        peer__link_close(l, "TLS exporter unavailable", 0);
        return;
    }
    int ok = 0;
    for (size_t i = 0; i < p->n_keys; i++) {
        auth_mac(p, p->keys[i], l->dialer ? 'A' : 'D', l, l->tls ? exporter : NULL, want);
        if (sodium_memcmp(got, want, HC_MAC_BYTES) == 0) {
            ok = 1;
            memcpy(l->peer_key, p->keys[i], TOKEN_KEY); /* rechecked when tokens reload */
        }
    }
    if (!ok) {
        peer__link_close(l, "wrong token: its proof matches none of my CACHE_AUTH_TOKEN values", 1);
        return;
    }
    if (l->slot < 0) {
        slot_t *s = slot_by_name(p, l->peer_name);
        if (s == NULL && (s = peer__slot_add(p, l->peer_name, 0)) == NULL) {
            peer__link_close(l, "out of memory", 0);
            return;
        }
        l->slot = s->index;
    }
    link_up(l);
}
