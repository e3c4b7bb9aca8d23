/* peer_session.c: what a link's events mean to the peers table (the callbacks of p->net): the
 * frames of each handshake state, a link authenticated (one link per pair: the duplicate
 * tie-break, retiring the loser, make-before-break replacement), and a link closed (the owner's
 * down, the refusal and unreachable log lines, redialing). */
#include "peer_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* ---- a link authenticated ---- */

/* Retires the duplicate `drop` in favour of `keep`: frames not yet written move to keep, our
 * write side is shut once the write in flight (if any) is done, and frames the peer still sends
 * on it are delivered until its EOF (it retires the same link on its side). No frame written
 * before the switch is lost; frames may be reordered across the two links. */
static void link_retire(link_t *drop, link_t *keep)
{
    /* DATA moves to keep; handshake frames stay, so the peer can finish authenticating this
     * link and retire it by the same rule */
    peer_link_hand_over(&drop->io, &keep->io);
    if (drop->io.peer_eof) {
        peer_link_close(&drop->io, "duplicate link retired", 0);
        return;
    }
    hc_log(HC_LOG_DEBUG, "duplicate peer link retired", HC_LS("peer", peer__link_peer(drop)),
           HC_LS("addr", drop->io.addr),
           HC_LS("direction", drop->io.dialer ? "dialed" : "accepted"));
    peer_link_retire(&drop->io);
}

/* Which of two authenticated links to the same peer incarnation to keep (see peer.h). */
static link_t *preferred(hc_peers_t *p, link_t *a, link_t *b)
{
    if (a->io.dialer == b->io.dialer) {
        return a->io.created_ms >= b->io.created_ms ? a : b; /* the older one is likely dead */
    }
    int me_first = strcasecmp(p->ident.me, a->hs.peer_name) < 0;
    link_t *mine = a->io.dialer ? a : b;
    return me_first ? mine : (mine == a ? b : a);
}

static void link_up(link_t *l)
{
    hc_peers_t *p = l->p;
    slot_t *s = p->slots[l->slot];
    l->io.state = L_UP;
    hc_admit_release(&p->admit, &l->io.adm);
    if (s->dial_link == l) {
        s->dial_link = NULL;
    }
    l->up_ms = uv_now(p->loop);
    int was_replacement = l->replacement;
    if (p->replacing == l) {
        p->replacing = NULL;
    }
    link_t *old = s->link;
    if (old != NULL && old->hs.peer_incarnation == l->hs.peer_incarnation) {
        link_t *keep = preferred(p, l, old);
        link_t *drop = keep == l ? old : l;
        int stale = peer__link_stale(p, old);
        if (keep == l) {
            s->link = l; /* the peer stays up for the owner */
            s->version = l->hs.version;
        }
        if (keep == l && (was_replacement || stale)) {
            /* make-before-break: the new link carries the traffic from now on, the old one
             * is retired below (its last writes still arrive, the owner sees no down/up) */
            p->replaced_total++;
            s->replace_wanted = 0;
            s->replace_failures = 0;
            s->last_replace_error[0] = '\0';
            hc_log(HC_LOG_INFO, "peer link replaced", HC_LS("peer", s->name),
                   HC_LU("old_link", old->id), HC_LU("new_link", l->id), HC_LS("addr", l->io.addr),
                   HC_LS("direction", l->io.dialer ? "dialed" : "accepted"),
                   HC_LU("generation", l->gen),
                   HC_LS("tls_subject",
                         l->io.tls ? hc_tls_conn_peer_subject(l->io.tls) : "(plaintext)"));
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
        peer_link_close(&old->io, "replaced by a new connection from the restarted peer", 0);
        if (p->net.closing || l->io.state != L_UP) {
            return; /* the owner closed everything in its down callback */
        }
    }
    s->link = l;
    s->version = l->hs.version;
    if (s->timer_open) {
        uv_timer_stop(&s->dial_timer);
    }
    hc_log(HC_LOG_INFO, "peer link up", HC_LS("peer", s->name), HC_LS("addr", l->io.addr),
           HC_LS("direction", l->io.dialer ? "dialed" : "accepted"),
           HC_LU("version", l->hs.version), HC_LU("failed_attempts", s->attempts),
           HC_LU("link", l->id),
           HC_LS("tls_subject", l->io.tls ? hc_tls_conn_peer_subject(l->io.tls) : "(plaintext)"));
    s->attempts = 0;
    s->last_refusal[0] = '\0';
    s->last_dial_error[0] = '\0';
    if (p->cb.up != NULL) {
        p->cb.up(p->ud, s->index, l->hs.version);
    }
}

/* ---- frames in ---- */

static void on_hello(link_t *l, const uint8_t *payload, size_t len)
{
    hc_peers_t *p = l->p;
    const char *dialed = l->io.dialer ? p->slots[l->slot]->name : NULL;
    if (peer_hs_check_hello(&p->ident, &l->io, &l->hs, payload, len, dialed) != 0) {
        return;
    }
    if (!l->io.dialer) {
        slot_t *s = peer__slot_find(p, l->hs.peer_name);
        if (s != NULL) {
            l->slot = s->index; /* a peer only in its own list gets a slot once authenticated */
        }
    }
    peer_hs_send_auth(&p->ident, &l->io, &l->hs);
}

static void on_auth(link_t *l, const uint8_t *payload, size_t len)
{
    hc_peers_t *p = l->p;
    if (peer_hs_check_auth(&p->ident, &l->io, &l->hs, payload, len) != 0) {
        return;
    }
    if (l->slot < 0) {
        slot_t *s = peer__slot_find(p, l->hs.peer_name);
        if (s == NULL && (s = peer__slot_add(p, l->hs.peer_name, 0)) == NULL) {
            peer_link_close(&l->io, "out of memory", 0);
            return;
        }
        l->slot = s->index;
    }
    link_up(l);
}

void peer__on_frame(peer_link_t *io, const hc_frame_t *f)
{
    link_t *l = peer__link_of(io);
    hc_peers_t *p = l->p;
    char reason[128];
    switch (io->state) {
    case L_HELLO:
        if (f->type == HC_FRAME_HELLO) {
            on_hello(l, f->payload, f->len);
            return;
        }
        break;
    case L_AUTH:
        if (f->type == HC_FRAME_AUTH) {
            on_auth(l, f->payload, f->len);
            return;
        }
        break;
    case L_UP:
    case L_RETIRING:
        switch (f->type) {
        case HC_FRAME_DATA:
            if (p->cb.frame != NULL) {
                p->cb.frame(p->ud, l->slot, f->payload, f->len);
            }
            return;
        case HC_FRAME_PING:
            if (f->len <= HC_FRAME_PING_MAX) {
                if (f->len >= REDIAL_MAGIC_LEN &&
                    memcmp(f->payload, REDIAL_MAGIC, REDIAL_MAGIC_LEN) == 0 && io->state == L_UP &&
                    !l->redial_asked) {
                    hc_log(HC_LOG_DEBUG, "peer asks for a fresh link (its credentials changed)",
                           HC_LS("peer", peer__link_peer(l)), HC_LU("link", l->id));
                    l->redial_asked = 1;
                    peer__replace_soon(p);
                }
                if (io->state == L_UP) {
                    peer_link_send(io, HC_FRAME_PONG, f->payload, f->len);
                }
                return;
            }
            peer_link_close(io, "malformed frame: PING payload too large", 0);
            return;
        case HC_FRAME_PONG:
            return;
        default:
            break;
        }
        break;
    default:
        break;
    }
    snprintf(reason, sizeof(reason), "unexpected frame type %u %s", f->type,
             io->state == L_UP ? "after the handshake" : "during the handshake");
    peer_link_close(io, reason, io->state != L_UP && io->state != L_RETIRING);
}

void peer__on_ready(peer_link_t *io)
{
    link_t *l = peer__link_of(io);
    peer_hs_send_hello(&l->p->ident, io, &l->hs);
}

/* The peer closed l, our active link, while another link to the same peer incarnation is past
 * its Hello: the peer retired l as a duplicate and the other link is about to authenticate on
 * our side. The owner sees no down/up: l stays the active link (its queue waits) until the
 * replacement comes up (link_up retires l) or fails (peer__on_closing reports l down). */
int peer__hold_on_eof(peer_link_t *io)
{
    link_t *l = peer__link_of(io);
    for (peer_link_t *c = l->p->net.links; c != NULL; c = c->next) {
        link_t *o = peer__link_of(c);
        if (o != l && o->slot == l->slot && c->state == L_AUTH &&
            o->hs.peer_incarnation == l->hs.peer_incarnation) {
            return 1;
        }
    }
    return 0;
}

/* ---- a link closed ---- */

static void log_refusal(link_t *l, const char *reason)
{
    hc_peers_t *p = l->p;
    const char *dir = l->io.dialer ? "dialed" : "accepted";
    int repeated;
    if (l->slot >= 0) {
        slot_t *s = p->slots[l->slot];
        repeated = strcmp(s->last_refusal, reason) == 0;
        snprintf(s->last_refusal, sizeof(s->last_refusal), "%s", reason);
    } else {
        char key[sizeof(p->last_anon_refusal)];
        char host[64];
        snprintf(host, sizeof(host), "%s", l->io.addr);
        char *colon = strrchr(host, ':');
        if (colon != NULL) {
            *colon = '\0'; /* the source port changes on every attempt */
        }
        snprintf(key, sizeof(key), "%s|%s", host, reason);
        repeated = strcmp(p->last_anon_refusal, key) == 0;
        snprintf(p->last_anon_refusal, sizeof(p->last_anon_refusal), "%s", key);
    }
    hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_WARN, "peer link refused",
           HC_LS("peer", peer__link_peer(l)), HC_LS("addr", l->io.addr), HC_LS("direction", dir),
           HC_LS("reason", reason));
}

/* l was taken out of service (peer_link_close): reports and logs as its state `was` requires,
 * lets a failed replacement or a revoked link's end go on, and redials the slot. */
void peer__on_closing(peer_link_t *io, lstate_t was, const char *reason, int refused)
{
    link_t *l = peer__link_of(io);
    hc_peers_t *p = l->p;
    slot_t *s = l->slot >= 0 ? p->slots[l->slot] : NULL;

    if (p->replacing == l) {
        p->replacing = NULL;
    }
    if (!p->net.closing) {
        if (l->replacement && s != NULL && s->link != NULL && s->link != l && was != L_UP &&
            was != L_RETIRING) {
            peer__replacement_failed(s, reason);
        } else if (s != NULL && s->link == l) {
            s->link = NULL;
            s->version = 0;
            s->replace_wanted = 0;
            hc_log(HC_LOG_WARN, "peer link down", HC_LS("peer", s->name), HC_LS("addr", io->addr),
                   HC_LS("reason", reason));
            if (p->cb.down != NULL) {
                p->cb.down(p->ud, s->index, reason);
            }
        } else if (was == L_UP || was == L_RETIRING) {
            hc_log(HC_LOG_DEBUG, "duplicate peer link closed", HC_LS("peer", peer__link_peer(l)),
                   HC_LS("addr", io->addr), HC_LS("reason", reason));
        } else if (refused) {
            log_refusal(l, reason);
        } else if (io->dialer && s != NULL) {
            /* a failed dial: one line when a peer becomes unreachable, not one per retry */
            int repeated = s->last_dial_error[0] != '\0';
            snprintf(s->last_dial_error, sizeof(s->last_dial_error), "%s", reason);
            hc_log(repeated ? HC_LOG_DEBUG : HC_LOG_INFO, "peer unreachable, retrying",
                   HC_LS("peer", s->name), HC_LS("addr", io->addr), HC_LS("reason", reason),
                   HC_LU("attempt", s->attempts + 1));
        } else {
            hc_log(HC_LOG_DEBUG, "inbound peer connection closed before authentication",
                   HC_LS("addr", io->addr), HC_LS("reason", reason));
        }
    }
    if (!p->net.closing && s != NULL && s->link != NULL && s->link != l &&
        s->link->revoked_ms != 0 && was != L_UP && was != L_RETIRING && !io->dialer) {
        /* the peer's attempt to replace a revoked link failed: close that link now */
        s->replace_failed_ms = uv_now(p->loop);
        peer__replace_soon(p);
    }
    if (!p->net.closing && s != NULL && s->link != NULL && s->link->io.peer_eof && was != L_UP &&
        was != L_RETIRING) {
        int others = 0;
        for (peer_link_t *c = p->net.links; c != NULL; c = c->next) {
            link_t *o = peer__link_of(c);
            others |= o != l && o != s->link && o->slot == s->index && c->state == L_AUTH;
        }
        if (!others) {
            peer_link_close(&s->link->io, "connection closed by the peer", 0);
        }
    }
    /* p->net.closing must not schedule anything; a slot whose link (or attempt) ended redials */
    if (s != NULL && io->dialer && s->dial_link == l) {
        s->dial_link = NULL;
    }
    if (!p->net.closing && s != NULL && s->in_config && s->link == NULL && s->dial_link == NULL) {
        peer__schedule_dial(s, was != L_UP && was != L_RETIRING);
    }
}
