/* status_check.h: what `hacachectl status` highlights after asking every node for /v1/status:
 * nodes that did not answer, more than one node claiming leadership, diverging terms, nodes
 * that disagree about the leader, a node whose applied index lags the leader's commit, and
 * links with no recent contact. Pure: parsed answers in, findings out. */
#ifndef HC_CLI_STATUS_CHECK_H
#define HC_CLI_STATUS_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define SC_MAX_NODES    64 /* node masks are 64-bit */
#define SC_MAX_FINDINGS 64

typedef enum {
    SC_UNREACHABLE = 0, /* no status answer from an endpoint */
    SC_LEADERS,         /* more than one node says it is the leader */
    SC_TERMS,           /* the nodes are in different terms */
    SC_LEADER_VIEW,     /* the nodes name different leaders (or none) */
    SC_LAG,             /* applied index behind the leader's commit index */
    SC_CONTACT,         /* a leader link is down or silent for too long */
} sc_kind_t;

typedef struct {
    sc_kind_t kind;
    uint64_t nodes; /* bit i: endpoint i is concerned (for the per-node JSON "problems") */
    char message[512];
} sc_finding_t;

typedef struct {
    sc_finding_t v[SC_MAX_FINDINGS];
    size_t n;
} sc_findings_t;

typedef struct {
    double max_lag;        /* entries: applied_index this far behind the leader's commit is lag */
    double max_contact_ms; /* last_contact_ms above this on a leader link is a finding */
} sc_limits_t;

#define SC_DEFAULT_MAX_LAG        100
#define SC_DEFAULT_MAX_CONTACT_MS 3000

/* Looks at n answers (st[i] NULL when endpoint i did not answer; endpoints[i] names it) and
 * fills out, in the order of the kinds above. n is at most SC_MAX_NODES. */
void sc_check(const hj_t *const *st, const char *const *endpoints, size_t n,
              const sc_limits_t *limits, sc_findings_t *out);

/* A stable word for scripts: "unreachable", "leaders", "terms", "leader_view", "lag",
 * "contact". */
const char *sc_kind_name(sc_kind_t k);

#endif
