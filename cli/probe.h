/* probe.h: `hacachectl config check --probe`: dials every other HA_HOSTS entry of a validated
 * configuration and runs the peer handshake of server/peer.h with this node's credentials up
 * to the peer's token proof, reporting per peer TCP, TLS, token and version. */
#ifndef HC_CLI_PROBE_H
#define HC_CLI_PROBE_H

#include <stdint.h>

#include "config.h"

/* Probes every peer of cfg (HA_MODE=true, validated: cfg->self_index set) one after the other,
 * each within timeout_ms (TCP, TLS and handshake together; name resolution is not bounded).
 * Prints one line per peer (or a JSON object with `json`) to stdout and, for each failed step,
 * what to do next to stderr. The probe never sends its own token proof, so a peer never brings
 * up a link for it: the probe cannot replace the link of the node it speaks for (see
 * docs/ARCHITECTURE.md "Peer links"). Returns 0 when every peer passed every step, 1 when any
 * failed, 2 when the TLS material cannot be loaded. */
int ctl_probe(const hc_config_t *cfg, uint32_t timeout_ms, int json);

#endif
