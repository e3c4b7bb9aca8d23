/* dedupe.c: the apply-side request-id window (see dedupe.h). */
#include "dedupe.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hacache.h"

typedef struct {
    uint8_t id[16];
    hc_dedupe_result_t r;
    int32_t next; /* bucket chain, -1 ends */
    int used;
} dd_slot_t;

struct hc_dedupe {
    size_t cap, head, count; /* ring: slots[head] is the oldest when count == cap */
    dd_slot_t *slots;
    int32_t *buckets;
    size_t nbuckets;
    uint64_t key[2];
};

/* Keyed with a random key per window: ids are not always random (a node's own ids are a prefix
 * and a counter, a client may send sequential ones), and a client that cannot see the key cannot
 * aim its ids at one bucket. A multiply-xorshift mix of both halves: a SipHash per lookup cost a
 * fifth of a standalone pipelined SET. */
static size_t dd_hash(const hc_dedupe_t *d, const uint8_t id[16])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = (a ^ d->key[0]) * 0x9e3779b97f4a7c15ull;
    h ^= (b ^ d->key[1]) + (h >> 29);
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 29;
    return (size_t)(h % d->nbuckets);
}

hc_dedupe_t *hc_dedupe_new(size_t cap)
{
    hc_dedupe_t *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    d->cap = cap ? cap : 1;
    d->nbuckets = d->cap * 2;
    randombytes_buf(d->key, sizeof(d->key));
    d->slots = calloc(d->cap, sizeof(*d->slots));
    d->buckets = malloc(d->nbuckets * sizeof(*d->buckets));
    if (d->slots == NULL || d->buckets == NULL) {
        hc_dedupe_free(d);
        return NULL;
    }
    hc_dedupe_clear(d);
    return d;
}

void hc_dedupe_free(hc_dedupe_t *d)
{
    if (d != NULL) {
        free(d->slots);
        free(d->buckets);
        free(d);
    }
}

void hc_dedupe_clear(hc_dedupe_t *d)
{
    memset(d->slots, 0, d->cap * sizeof(*d->slots));
    for (size_t i = 0; i < d->nbuckets; i++) {
        d->buckets[i] = -1;
    }
    d->head = d->count = 0;
}

int hc_dedupe_find(const hc_dedupe_t *d, const uint8_t id[16], hc_dedupe_result_t *out)
{
    for (int32_t i = d->buckets[dd_hash(d, id)]; i >= 0; i = d->slots[i].next) {
        if (memcmp(d->slots[i].id, id, 16) == 0) {
            if (out) {
                *out = d->slots[i].r;
            }
            return 1;
        }
    }
    return 0;
}

void hc_dedupe_add(hc_dedupe_t *d, const uint8_t id[16], const hc_dedupe_result_t *r)
{
    size_t slot;
    if (d->count == d->cap) {
        slot = d->head; /* evict the oldest */
        dd_slot_t *old = &d->slots[slot];
        int32_t *pp = &d->buckets[dd_hash(d, old->id)];
        while (*pp >= 0 && *pp != (int32_t)slot) {
            pp = &d->slots[*pp].next;
        }
        if (*pp == (int32_t)slot) {
            *pp = old->next;
        }
        d->head = (d->head + 1) % d->cap;
    } else {
        slot = (d->head + d->count) % d->cap;
        d->count++;
    }
    dd_slot_t *e = &d->slots[slot];
    memcpy(e->id, id, 16);
    e->r = *r;
    e->used = 1;
    size_t b = dd_hash(d, id);
    e->next = d->buckets[b];
    d->buckets[b] = (int32_t)slot;
}

#define DD_REC_BYTES (16 + 8 + 4 + 8 + 8 + 4 + 8)

void hc_dedupe_serialize(const hc_dedupe_t *d, hc_buf_t *out)
{
    hc_buf_put_le(out, d->count, 4);
    for (size_t k = 0; k < d->count; k++) {
        const dd_slot_t *e = &d->slots[(d->head + k) % d->cap];
        hc_buf_append(out, e->id, 16);
        hc_buf_put_le(out, e->r.index, 8);
        hc_buf_put_le(out, (uint32_t)e->r.status, 4);
        hc_buf_put_le(out, e->r.res.version, 8);
        hc_buf_put_le(out, (uint64_t)e->r.res.integer, 8);
        hc_buf_put_le(out, (uint32_t)e->r.res.existed, 4);
        hc_buf_put_le(out, e->r.res.removed, 8);
    }
}

int hc_dedupe_load(hc_dedupe_t *d, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    hc_dedupe_clear(d);
    if (len < 4) {
        return HC_EINVAL;
    }
    uint64_t count = hc_get_le(p, 4);
    if (count > d->cap || (len - 4) / DD_REC_BYTES != count || (len - 4) % DD_REC_BYTES != 0) {
        return HC_EINVAL;
    }
    for (uint64_t k = 0; k < count; k++) {
        const uint8_t *q = p + 4 + k * DD_REC_BYTES;
        if (hc_dedupe_find(d, q, NULL)) {
            hc_dedupe_clear(d);
            return HC_EINVAL; /* duplicate id */
        }
        hc_dedupe_result_t r;
        memset(&r, 0, sizeof(r));
        r.index = hc_get_le(q + 16, 8);
        r.status = (int32_t)(uint32_t)hc_get_le(q + 24, 4);
        r.res.version = hc_get_le(q + 28, 8);
        r.res.integer = (int64_t)hc_get_le(q + 36, 8);
        r.res.existed = (int32_t)(uint32_t)hc_get_le(q + 44, 4);
        r.res.removed = hc_get_le(q + 48, 8);
        hc_dedupe_add(d, q, &r);
    }
    return 0;
}
