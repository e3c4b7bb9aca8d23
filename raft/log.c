/* log.c: the in-memory log (a sliding array over a compaction base), its reference-counted
 * entry data, and the encoding of configurations carried in RAFT_ENTRY_CONFIG entries. */
#include <stddef.h>
#include <string.h>

#include "raft_int.h"

void raft_buf_ref_(raft_buf_t *b)
{
    if (b)
        b->refs++;
}

void raft_buf_unref_(raft_t *r, raft_buf_t *b)
{
    if (b && --b->refs == 0)
        raft_free_(r, b);
}

void raft_entry_release_(raft_t *r, const raft_entry_t *e)
{
    if (e->data)
        raft_buf_unref_(r, (raft_buf_t *)((unsigned char *)e->data - offsetof(raft_buf_t, data)));
}

raft_index_t raft_log_last_(const raft_log_t *l)
{
    return l->base_index + l->n;
}

raft_lentry_t *raft_log_get_(const raft_log_t *l, raft_index_t i)
{
    if (i <= l->base_index || i > l->base_index + l->n)
        return NULL;
    return &l->e[l->start + (size_t)(i - l->base_index - 1)];
}

bool raft_log_term_(const raft_log_t *l, raft_index_t i, raft_term_t *term)
{
    if (i == l->base_index) {
        *term = l->base_term;
        return true;
    }
    const raft_lentry_t *e = raft_log_get_(l, i);
    if (!e)
        return false;
    *term = e->term;
    return true;
}

raft_term_t raft_log_last_term_(const raft_log_t *l)
{
    raft_term_t t = 0;
    raft_log_term_(l, raft_log_last_(l), &t);
    return t;
}

void raft_entry_view_(const raft_log_t *l, raft_index_t i, raft_entry_t *out)
{
    const raft_lentry_t *e = raft_log_get_(l, i);
    out->term = e->term;
    out->index = i;
    out->type = e->type;
    out->data = e->buf ? e->buf->data : NULL;
    out->len = e->buf ? e->buf->len : 0;
}

int raft_log_append_(raft_t *r, raft_term_t term, uint8_t type, const void *data, size_t len)
{
    raft_log_t *l = &r->log;
    if (l->start + l->n == l->cap) {
        if (l->start > 0 && l->start >= l->cap / 2) {
            memmove(l->e, l->e + l->start, l->n * sizeof(*l->e));
            l->start = 0;
        } else {
            size_t ncap = l->cap ? l->cap * 2 : 64;
            raft_lentry_t *ne = raft_realloc_(r, l->e, ncap * sizeof(*ne));
            if (!ne)
                return RAFT_ENOMEM;
            l->e = ne;
            l->cap = ncap;
        }
    }
    raft_buf_t *b = NULL;
    if (len > 0) {
        b = raft_malloc_(r, sizeof(*b) + len);
        if (!b)
            return RAFT_ENOMEM;
        b->refs = 1;
        b->len = len;
        memcpy(b->data, data, len);
    }
    raft_lentry_t *e = &l->e[l->start + l->n];
    e->term = term;
    e->type = type;
    e->buf = b;
    l->n++;
    l->bytes += len;
    return 0;
}

void raft_log_truncate_(raft_t *r, raft_index_t from)
{
    raft_log_t *l = &r->log;
    while (raft_log_last_(l) >= from && l->n > 0) {
        raft_lentry_t *e = &l->e[l->start + l->n - 1];
        l->bytes -= e->buf ? e->buf->len : 0;
        raft_buf_unref_(r, e->buf);
        l->n--;
    }
}

void raft_log_compact_(raft_t *r, raft_index_t upto)
{
    raft_log_t *l = &r->log;
    while (l->n > 0 && l->base_index < upto) {
        raft_lentry_t *e = &l->e[l->start];
        l->bytes -= e->buf ? e->buf->len : 0;
        l->base_term = e->term;
        l->base_index++;
        raft_buf_unref_(r, e->buf);
        l->start++;
        l->n--;
    }
    if (l->n == 0)
        l->start = 0;
}

void raft_log_wipe_(raft_t *r, raft_index_t base, raft_term_t base_term)
{
    raft_log_truncate_(r, r->log.base_index + 1);
    r->log.start = 0;
    r->log.base_index = base;
    r->log.base_term = base_term;
    r->log.bytes = 0;
}

void raft_log_free_(raft_t *r)
{
    raft_log_truncate_(r, r->log.base_index + 1);
    raft_free_(r, r->log.e);
    memset(&r->log, 0, sizeof(r->log));
}

/* Largest index <= `index` (clamped to the last one) whose term is <= `term`; base_index - 1
 * (which makes the caller need a snapshot) when the log above the base has only newer terms
 * and the base term itself is newer. */
raft_index_t raft_log_find_conflict_(const raft_log_t *l, raft_index_t index, raft_term_t term)
{
    raft_index_t last = raft_log_last_(l);
    if (index > last)
        index = last;
    if (index < l->base_index)
        return index;
    for (;;) {
        raft_term_t t = 0;
        raft_log_term_(l, index, &t);
        if (t <= term)
            return index;
        if (index == l->base_index)
            return index > 0 ? index - 1 : 0;
        index--;
    }
}

/* ---- configuration encoding: u32 n, then n x (u64 id, u8 role), little-endian ---- */

size_t raft_members_encoded_size(const raft_members_t *m)
{
    return 4 + (size_t)m->n * 9;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void raft_members_encode(const raft_members_t *m, void *buf)
{
    unsigned char *p = buf;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(m->n >> (8 * i));
    p += 4;
    for (uint32_t i = 0; i < m->n; i++, p += 9) {
        put_u64(p, m->m[i].id);
        p[8] = m->m[i].role;
    }
}

int raft_members_decode(const void *buf, size_t len, raft_members_t *out)
{
    const unsigned char *p = buf;
    if (len < 4)
        return RAFT_EINVAL;
    uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (n > RAFT_MAX_MEMBERS || len != 4 + (size_t)n * 9)
        return RAFT_EINVAL;
    memset(out, 0, sizeof(*out));
    out->n = n;
    p += 4;
    for (uint32_t i = 0; i < n; i++, p += 9) {
        out->m[i].id = get_u64(p);
        out->m[i].role = p[8];
        if (out->m[i].id == 0 || (p[8] != RAFT_VOTER && p[8] != RAFT_LEARNER))
            return RAFT_EINVAL;
        for (uint32_t j = 0; j < i; j++)
            if (out->m[j].id == out->m[i].id)
                return RAFT_EINVAL;
    }
    return 0;
}
