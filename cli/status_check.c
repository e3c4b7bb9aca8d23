/* status_check.c: disagreement between the nodes' status answers (see status_check.h). */
#include "status_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void add(sc_findings_t *out, sc_kind_t kind, uint64_t nodes, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(sc_findings_t *out, sc_kind_t kind, uint64_t nodes, const char *fmt, ...)
{
    if (out->n == SC_MAX_FINDINGS) {
        return;
    }
    sc_finding_t *f = &out->v[out->n++];
    f->kind = kind;
    f->nodes = nodes;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    for (char *c = f->message; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = '?'; /* names come from the nodes' answers: no control bytes to the terminal */
        }
    }
}

/* Appends to a message being built, never past its end. */
static void cat(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char *buf, size_t cap, const char *fmt, ...)
{
    size_t l = strlen(buf);
    if (l + 1 >= cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, cap - l, fmt, ap);
    va_end(ap);
}

/* The node's name as it reports it, else the endpoint. */
static const char *name_of(const hj_t *s, const char *endpoint)
{
    return hj_str(s, "node", endpoint);
}

/* The node's view of the leader ("" for none). */
static const char *leader_of(const hj_t *s)
{
    return hj_str(s, "leader", "");
}

static int is_leader(const hj_t *s)
{
    return s != NULL && strcmp(hj_str(s, "role", ""), "leader") == 0;
}

/* The entry for `node` in s's peers array, or NULL. */
static const hj_t *peer_entry(const hj_t *s, const char *node)
{
    const hj_t *peers = hj_get(s, "peers");
    if (peers == NULL || peers->type != HJ_ARRAY) {
        return NULL;
    }
    for (const hj_t *p = peers->child; p != NULL; p = p->next) {
        if (strcmp(hj_str(p, "node", ""), node) == 0) {
            return p;
        }
    }
    return NULL;
}

static void check_leaders(const hj_t *const *st, const char *const *ep, size_t n,
                          sc_findings_t *out)
{
    char msg[400] = "";
    uint64_t mask = 0;
    size_t count = 0;
    double first_term = -1;
    int same_term = 1;
    for (size_t i = 0; i < n; i++) {
        if (!is_leader(st[i])) {
            continue;
        }
        double t = hj_num(st[i], "term", 0);
        same_term &= first_term < 0 || t == first_term;
        first_term = first_term < 0 ? t : first_term;
        cat(msg, sizeof(msg), "%s%s (term %.0f)", count ? ", " : "", name_of(st[i], ep[i]), t);
        mask |= (uint64_t)1 << i;
        count++;
    }
    if (count > 1) {
        add(out, SC_LEADERS, mask, "%zu nodes claim to be leader: %s%s", count, msg,
            same_term ? " -- in the same term, which raft forbids: report a bug with the logs"
                      : " -- the older term's leader has not heard of the newer one yet "
                        "(stopped, partitioned or just resumed)");
    }
}

static void check_terms(const hj_t *const *st, const char *const *ep, size_t n, sc_findings_t *out)
{
    double max_term = -1;
    int distinct = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i] == NULL) {
            continue;
        }
        double t = hj_num(st[i], "term", 0);
        if (max_term < 0) {
            distinct = 1;
        } else if (t != max_term) {
            distinct = 2;
        }
        max_term = t > max_term ? t : max_term;
    }
    if (distinct < 2) {
        return;
    }
    char msg[400] = "";
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i] == NULL) {
            continue;
        }
        double t = hj_num(st[i], "term", 0);
        cat(msg, sizeof(msg), "%s%s in %.0f", msg[0] ? ", " : "", name_of(st[i], ep[i]), t);
        if (t != max_term) {
            mask |= (uint64_t)1 << i;
        }
    }
    add(out, SC_TERMS, mask, "terms diverge: %s (the newest is %.0f)", msg, max_term);
}

static void check_leader_view(const hj_t *const *st, const char *const *ep, size_t n,
                              sc_findings_t *out)
{
    /* the reference: the view of the node in the highest term (ties: the first) */
    int ref = -1;
    for (size_t i = 0; i < n; i++) {
        if (st[i] != NULL && (ref < 0 || hj_num(st[i], "term", 0) > hj_num(st[ref], "term", 0))) {
            ref = (int)i;
        }
    }
    if (ref < 0) {
        return;
    }
    const char *want = leader_of(st[ref]);
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i] != NULL && strcmp(leader_of(st[i]), want) != 0) {
            mask |= (uint64_t)1 << i;
        }
    }
    if (mask == 0) {
        return;
    }
    char msg[400] = "";
    for (size_t i = 0; i < n; i++) {
        if (st[i] != NULL) {
            const char *l = leader_of(st[i]);
            cat(msg, sizeof(msg), "%s%s says %s", msg[0] ? ", " : "", name_of(st[i], ep[i]),
                l[0] ? l : "none");
        }
    }
    add(out, SC_LEADER_VIEW, mask, "nodes disagree about the leader: %s", msg);
}

/* The node whose commit index the others are measured against: the leader in the highest term,
 * or without one the node with the highest commit index. -1 when nobody answered. */
static int reference_node(const hj_t *const *st, size_t n, int *is_a_leader)
{
    int ref = -1;
    *is_a_leader = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_leader(st[i]) &&
            (ref < 0 || hj_num(st[i], "term", 0) > hj_num(st[ref], "term", 0))) {
            ref = (int)i;
        }
    }
    if (ref >= 0) {
        *is_a_leader = 1;
        return ref;
    }
    for (size_t i = 0; i < n; i++) {
        if (st[i] != NULL &&
            (ref < 0 || hj_num(st[i], "commit_index", 0) > hj_num(st[ref], "commit_index", 0))) {
            ref = (int)i;
        }
    }
    return ref;
}

static void check_lag(const hj_t *const *st, const char *const *ep, size_t n,
                      const sc_limits_t *lim, sc_findings_t *out)
{
    int leader;
    int ref = reference_node(st, n, &leader);
    if (ref < 0) {
        return;
    }
    double commit = hj_num(st[ref], "commit_index", 0);
    for (size_t i = 0; i < n; i++) {
        if (st[i] == NULL) {
            continue;
        }
        double applied = hj_num(st[i], "applied_index", 0);
        if (commit - applied > lim->max_lag) {
            add(out, SC_LAG, (uint64_t)1 << i,
                "%s lags: applied index %.0f is %.0f entries behind %s's commit index %.0f "
                "(more than %.0f)",
                name_of(st[i], ep[i]), applied, commit - applied, name_of(st[ref], ep[ref]), commit,
                lim->max_lag);
        }
    }
}

/* Index of the endpoint whose node is `node`, or -1. */
static int index_of(const hj_t *const *st, size_t n, const char *node)
{
    for (size_t i = 0; i < n; i++) {
        if (st[i] != NULL && strcmp(hj_str(st[i], "node", ""), node) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* One link as seen from s: down, or silent for longer than the limit. */
static void check_link(const hj_t *s, size_t si, const char *sname, const char *other,
                       const hj_t *const *st, size_t n, const sc_limits_t *lim, sc_findings_t *out)
{
    const hj_t *p = peer_entry(s, other);
    if (p == NULL) {
        return;
    }
    int oi = index_of(st, n, other);
    uint64_t mask = ((uint64_t)1 << si) | (oi >= 0 ? (uint64_t)1 << oi : 0);
    const hj_t *lc = hj_get(p, "last_contact_ms");
    if (!hj_bool(p, "connected", 1)) {
        char last[64] = "never in contact";
        if (lc != NULL && lc->type == HJ_NUMBER) {
            snprintf(last, sizeof(last), "last contact %.0f ms ago", lc->num);
        }
        add(out, SC_CONTACT, mask, "%s has no link to %s (%s)", sname, other, last);
    } else if (lc != NULL && lc->type == HJ_NUMBER && lc->num > lim->max_contact_ms) {
        add(out, SC_CONTACT, mask, "%s last heard from %s %.0f ms ago (more than %.0f)", sname,
            other, lc->num, lim->max_contact_ms);
    }
}

/* Leaders about every peer, followers about their leader (followers rarely talk to each other,
 * so their mutual silence is normal). */
static void check_contact(const hj_t *const *st, const char *const *ep, size_t n,
                          const sc_limits_t *lim, sc_findings_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const hj_t *s = st[i];
        if (s == NULL) {
            continue;
        }
        const char *me = name_of(s, ep[i]);
        if (is_leader(s)) {
            const hj_t *peers = hj_get(s, "peers");
            for (const hj_t *p = peers && peers->type == HJ_ARRAY ? peers->child : NULL; p != NULL;
                 p = p->next) {
                check_link(s, i, me, hj_str(p, "node", "?"), st, n, lim, out);
            }
        } else if (leader_of(s)[0] != '\0') {
            check_link(s, i, me, leader_of(s), st, n, lim, out);
        }
    }
}

void sc_check(const hj_t *const *st, const char *const *endpoints, size_t n,
              const sc_limits_t *limits, sc_findings_t *out)
{
    out->n = 0;
    if (n > SC_MAX_NODES) {
        n = SC_MAX_NODES;
    }
    for (size_t i = 0; i < n; i++) {
        if (st[i] == NULL) {
            add(out, SC_UNREACHABLE, (uint64_t)1 << i, "%s did not answer", endpoints[i]);
        }
    }
    check_leaders(st, endpoints, n, out);
    check_terms(st, endpoints, n, out);
    check_leader_view(st, endpoints, n, out);
    check_lag(st, endpoints, n, limits, out);
    check_contact(st, endpoints, n, limits, out);
}

const char *sc_kind_name(sc_kind_t k)
{
    static const char *const names[] = {"unreachable", "leaders", "terms",
                                        "leader_view", "lag",     "contact"};
    return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}
