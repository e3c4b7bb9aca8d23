"""Clock-skew reporting (issue 4: "replicas report observed clock skew"; SPEC §3 TTL).

Three nodes; the third runs with its wall clock shifted by +2 s (the test-only
HACACHE_TEST_CLOCK_OFFSET_MS, which shifts the process's idea of the wall clock, not the
system's). Every node compares clocks with every peer (TimeSync, NTP-style); the first two
must report the third's offset as about +2 s and each other's as about 0, the third must report
theirs as about -2 s, and the nodes that see a skew above 500 ms log it once per peer.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

OFFSET_MS = 2000
TOL_S = 0.2


class SkewedCluster(C.Cluster):
    def env(self, i):
        e = super().env(i)
        if i == 2:
            e["HACACHE_TEST_CLOCK_OFFSET_MS"] = str(OFFSET_MS)
        return e


def _offsets(nd):
    m = nd.metrics()
    return {lb["peer"]: v for lb, v in m.find("hacache_peer_clock_offset_seconds")}


def test_skew_is_measured_and_reported():
    cl = SkewedCluster(3)
    try:
        cl.wait_leader(20.0)
        names = ["127.0.0.1:%d" % p for p in cl.peer_ports]
        want = {
            0: {names[1]: 0.0, names[2]: OFFSET_MS / 1000.0},
            1: {names[0]: 0.0, names[2]: OFFSET_MS / 1000.0},
            2: {names[0]: -OFFSET_MS / 1000.0, names[1]: -OFFSET_MS / 1000.0},
        }

        def measured():
            for i, exp in want.items():
                got = _offsets(cl.nodes[i])
                for peer, v in exp.items():
                    if peer not in got or abs(got[peer] - v) > TOL_S:
                        return False
            return True
        H.wait_until(measured, 15.0, interval=0.1, what="clock offsets measured")
        H.log("offsets seen by each node: %r" % {i: _offsets(cl.nodes[i]) for i in want})
        for i in (0, 2):
            err = cl.nodes[i].stderr()
            H.check("clock skew with a peer" in err, "node %d logged the skew" % i)
        H.check_eq(cl.nodes[0].stderr().count("clock skew with a peer"), 1,
                   "node 0 logs it once (one skewed peer)")
        lines = [ln for ln in cl.nodes[1].stderr().splitlines() if "clock skew with a peer" in ln]
        H.check(len(lines) == 1 and names[2] in lines[0],
                "node 1 logs the skewed peer only: %r" % lines)
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
