/* peer_table.c: the records of the peers table (peer_int.h): slots, one per peer known, the link
 * records around the connections of p->net, and freeing the table once its last handle closed. */
#include "peer_int.h"

#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

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

slot_t *peer__slot_find(hc_peers_t *p, const char *name)
{
    for (int i = 0; i < p->n_slots; i++) {
        if (hc_same_hostport(p->slots[i]->name, name)) {
            return p->slots[i];
        }
    }
    return NULL;
}

link_t *peer__link_new(hc_peers_t *p, int dialer, int slot)
{
    link_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    if (peer_link_init(&p->net, &l->io, dialer) != 0) {
        free(l);
        return NULL;
    }
    p->open++;
    l->p = p;
    l->slot = slot;
    l->id = ++p->next_link_id;
    l->gen = p->cred_gen;
    return l;
}

void peer__net_closed(peer_net_t *net, peer_link_t *io)
{
    if (io != NULL) {
        free(peer__link_of(io));
    }
    peer__handle_closed(net->data);
}

void peer__handle_closed(hc_peers_t *p)
{
    if (--p->open == 0 && p->net.closing) {
        void (*cb)(void *) = p->close_cb;
        void *ud = p->close_ud;
        for (int i = 0; i < p->n_slots; i++) {
            free(p->slots[i]);
        }
        free(p->slots);
        for (size_t i = 0; i < p->ident.n_hosts; i++) {
            free(p->ident.host_names[i]);
        }
        free(p->ident.host_names);
        sodium_memzero(p->ident.keys, p->ident.n_keys * HC_PEER_TOKEN_KEY);
        free(p->ident.keys);
        hc_tls_ctx_unref(p->tls);
        free(p);
        if (cb != NULL) {
            cb(ud);
        }
    }
}

const char *peer__link_peer(const link_t *l)
{
    if (l->slot >= 0) {
        return l->p->slots[l->slot]->name;
    }
    return l->hs.peer_name[0] ? l->hs.peer_name : "?";
}

int peer__link_stale(const hc_peers_t *p, const link_t *l)
{
    return l->gen < p->cred_gen || l->redial_asked || l->revoked_ms != 0;
}
