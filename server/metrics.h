/* metrics.h: request counters and latency histograms of the API adapters, and the Prometheus
 * text rendering of everything a node exports (SPEC section 8). */
#ifndef HC_METRICS_H
#define HC_METRICS_H

#include <stdint.h>

#include "util.h"

/* Operation label of hacache_requests_total / hacache_request_duration_seconds. */
#define HC_METRIC_OPS(X)                                                                           \
    X(GET, "get")                                                                                  \
    X(PUT, "put")                                                                                  \
    X(DEL, "del")                                                                                  \
    X(INCR, "incr")                                                                                \
    X(CLEAR, "clear")                                                                              \
    X(CONFIG, "config")                                                                            \
    X(CACHES, "caches")                                                                            \
    X(STATUS, "status")                                                                            \
    X(ADMIN, "admin")                                                                              \
    X(OTHER, "other")

typedef enum {
#define HC_M_OP_ENUM_(name, label) HC_MOP_##name,
    HC_METRIC_OPS(HC_M_OP_ENUM_)
#undef HC_M_OP_ENUM_
        HC_MOP__COUNT
} hc_metric_op_t;

/* The ack label: the four ack levels, or HC_MACK_NA ("") for reads and other requests. */
typedef enum {
    HC_MACK_QUORUM = 0,
    HC_MACK_ONCE,
    HC_MACK_LEADER,
    HC_MACK_NONE,
    HC_MACK_NA,
    HC_MACK__COUNT
} hc_metric_ack_t;

/* The result label. */
#define HC_METRIC_RESULTS(X)                                                                       \
    X(OK, "ok")                                                                                    \
    X(NOT_FOUND, "not_found")                                                                      \
    X(CONFLICT, "conflict")                                                                        \
    X(BAD_REQUEST, "bad_request")                                                                  \
    X(UNAUTHORIZED, "unauthorized")                                                                \
    X(TOO_LARGE, "too_large")                                                                      \
    X(UNAVAILABLE, "unavailable")                                                                  \
    X(NO_MEMORY, "insufficient_memory")                                                            \
    X(TIMEOUT, "timeout")                                                                          \
    X(ERROR, "error")

typedef enum {
#define HC_M_RES_ENUM_(name, label) HC_MRES_##name,
    HC_METRIC_RESULTS(HC_M_RES_ENUM_)
#undef HC_M_RES_ENUM_
        HC_MRES__COUNT
} hc_metric_result_t;

#define HC_METRICS_BUCKETS 14

typedef struct {
    uint64_t requests[HC_MOP__COUNT][HC_MACK__COUNT][HC_MRES__COUNT];
    uint64_t dur_buckets[HC_MOP__COUNT][HC_MACK__COUNT][HC_METRICS_BUCKETS];
    uint64_t dur_count[HC_MOP__COUNT][HC_MACK__COUNT];
    double dur_sum[HC_MOP__COUNT][HC_MACK__COUNT];
} hc_metrics_t;

/* Upper bounds (seconds) of the latency buckets; +Inf is implied. */
extern const double hc_metrics_bucket_bounds[HC_METRICS_BUCKETS];

void hc_metrics_init(hc_metrics_t *m);
/* Records one finished request that took `ns` nanoseconds. */
void hc_metrics_record(hc_metrics_t *m, hc_metric_op_t op, hc_metric_ack_t ack,
                       hc_metric_result_t result, uint64_t ns);
/* Appends the request families (counters and histograms) in Prometheus text format. */
void hc_metrics_render_requests(const hc_metrics_t *m, hc_buf_t *out);

#endif
