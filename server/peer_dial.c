/* peer_dial.c: dialing the peers of my HA_HOSTS (resolve on every attempt, jittered exponential
 * backoff), and replacing links after a credential reload, make-before-break, which is dialing
 * too (see peer.h, hc_peers_reload). */
#include "peer_int.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "log.h"

/* Credential reloads (see peer.h, "Replacement"). */
#define REDIAL_ASK_MS       1000  /* how often the higher-named side repeats its request */
#define REVOKE_GRACE_MS     3000  /* a link whose peer lost its credentials closes this late */
#define REPLACE_BACKOFF_MIN 1000  /* after a failed replacement dial, doubling ... */
#define REPLACE_BACKOFF_MAX 30000 /* ... up to this */

/* ---- dialing ---- */

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
    if (p->net.closing) {
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
    s->dial_link = l;
    if (replacing) {
        l->replacement = 1;
        p->replacing = l;
    }
    peer_link_connect(&l->io, res->ai_addr, s->host);
    uv_freeaddrinfo(res);
}

static void on_dial_timer(uv_timer_t *t)
{
    slot_t *s = t->data;
    hc_peers_t *p = s->p;
    if (p->net.closing || (s->link != NULL && !s->replace_wanted) || s->dial_link != NULL ||
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
    if (!s->timer_open || p->net.closing) {
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

/* Walks the active links once: a link authenticated with credentials older than the current
 * ones is replaced make-before-break, one link at a time. The node whose name sorts first dials
 * the replacement (its dial wins the duplicate tie-break on both ends, whichever side dialed the
 * old link); the other node asks it to with a redial PING, repeated every REDIAL_ASK_MS. A link
 * whose peer credentials a reload no longer accepts is closed once its replacement failed, or
 * REVOKE_GRACE_MS after the reload at the latest. */
void peer__replace_step(hc_peers_t *p)
{
    if (p->net.closing) {
        return;
    }
    uint64_t now = uv_now(p->loop);
    int busy = p->replacing != NULL;
    for (int i = 0; i < p->n_slots; i++) {
        busy |= p->slots[i]->replace_wanted;
    }
    for (int i = 0; i < p->n_slots && !p->net.closing; i++) {
        slot_t *s = p->slots[i];
        link_t *l = s->link;
        if (l == NULL || l->io.state != L_UP || !peer__link_stale(p, l)) {
            continue;
        }
        int in_progress = s->replace_wanted || (p->replacing && p->replacing->slot == i);
        if (l->revoked_ms != 0 && !in_progress &&
            (now - l->revoked_ms >= REVOKE_GRACE_MS || s->replace_failed_ms >= l->revoked_ms)) {
            char why[300];
            snprintf(why, sizeof(why), "credentials no longer accepted after a reload: %s",
                     l->revoke_reason);
            p->revoked_total++;
            peer_link_close(&l->io, why, 0);
            continue;
        }
        int i_dial = s->in_config && strcasecmp(p->ident.me, l->hs.peer_name) < 0;
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
            peer_link_send(&l->io, HC_FRAME_PING, REDIAL_MAGIC, REDIAL_MAGIC_LEN);
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
    if (!p->net.closing) {
        uv_timer_start(&p->replace_timer, on_replace_timer, 0, 0);
    }
}
