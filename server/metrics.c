/* metrics.c: fixed-size counter tables (no allocation on the request path) and their rendering.
 * Only series that were touched are printed, plus the families' HELP/TYPE lines. */
#include "metrics.h"

#include <inttypes.h>
#include <string.h>

const double hc_metrics_bucket_bounds[HC_METRICS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

static const char *const op_labels[HC_MOP__COUNT] = {
#define HC_M_OP_LABEL_(name, label) label,
    HC_METRIC_OPS(HC_M_OP_LABEL_)
#undef HC_M_OP_LABEL_
};

static const char *const ack_labels[HC_MACK__COUNT] = {"quorum", "once", "leader", "none", ""};

static const char *const result_labels[HC_MRES__COUNT] = {
#define HC_M_RES_LABEL_(name, label) label,
    HC_METRIC_RESULTS(HC_M_RES_LABEL_)
#undef HC_M_RES_LABEL_
};

void hc_metrics_init(hc_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
}

void hc_metrics_record(hc_metrics_t *m, hc_metric_op_t op, hc_metric_ack_t ack,
                       hc_metric_result_t result, uint64_t ns)
{
    m->requests[op][ack][result]++;
    double s = (double)ns / 1e9;
    for (int b = 0; b < HC_METRICS_BUCKETS; b++) {
        if (s <= hc_metrics_bucket_bounds[b]) {
            m->dur_buckets[op][ack][b]++;
            break;
        }
    }
    m->dur_count[op][ack]++;
    m->dur_sum[op][ack] += s;
}

void hc_metrics_render_requests(const hc_metrics_t *m, hc_buf_t *out)
{
    hc_buf_puts(out, "# HELP hacache_requests_total API requests by operation, ack level and "
                     "result.\n# TYPE hacache_requests_total counter\n");
    for (int o = 0; o < HC_MOP__COUNT; o++) {
        for (int a = 0; a < HC_MACK__COUNT; a++) {
            for (int r = 0; r < HC_MRES__COUNT; r++) {
                if (m->requests[o][a][r] == 0) {
                    continue;
                }
                hc_buf_printf(
                    out, "hacache_requests_total{op=\"%s\",ack=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                    op_labels[o], ack_labels[a], result_labels[r], m->requests[o][a][r]);
            }
        }
    }
    hc_buf_puts(out, "# HELP hacache_request_duration_seconds API request latency.\n"
                     "# TYPE hacache_request_duration_seconds histogram\n");
    for (int o = 0; o < HC_MOP__COUNT; o++) {
        for (int a = 0; a < HC_MACK__COUNT; a++) {
            if (m->dur_count[o][a] == 0) {
                continue;
            }
            uint64_t cum = 0;
            for (int b = 0; b < HC_METRICS_BUCKETS; b++) {
                cum += m->dur_buckets[o][a][b];
                hc_buf_printf(
                    out,
                    "hacache_request_duration_seconds_bucket{op=\"%s\",ack=\"%s\",le=\"%g\"}"
                    " %" PRIu64 "\n",
                    op_labels[o], ack_labels[a], hc_metrics_bucket_bounds[b], cum);
            }
            hc_buf_printf(
                out,
                "hacache_request_duration_seconds_bucket{op=\"%s\",ack=\"%s\",le=\"+Inf\"} "
                "%" PRIu64 "\n",
                op_labels[o], ack_labels[a], m->dur_count[o][a]);
            hc_buf_printf(out, "hacache_request_duration_seconds_sum{op=\"%s\",ack=\"%s\"} %.9f\n",
                          op_labels[o], ack_labels[a], m->dur_sum[o][a]);
            hc_buf_printf(
                out, "hacache_request_duration_seconds_count{op=\"%s\",ack=\"%s\"} %" PRIu64 "\n",
                op_labels[o], ack_labels[a], m->dur_count[o][a]);
        }
    }
}
