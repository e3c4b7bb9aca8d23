"""Leadership stability under steady load (issue 4 acceptance 7, SPEC §3 "Leadership").

A healthy 3-node cluster (mTLS, default timeouts: election 1000 ms, heartbeat 100 ms) takes
steady quorum writes through every node (one paced writer per node, ~100 writes/s each, plus
local reads) for HACACHE_STABILITY_SECONDS (default 300 = the 5 minutes of the acceptance; the
ASan build of scripts/test.sh runs 60). From the metrics of every node: the term
(hacache_raft_term) and hacache_raft_leader_changes_total must not move, and no write may fail.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

DURATION_S = float(os.environ.get("HACACHE_STABILITY_SECONDS", "300"))
RATE_PER_WRITER = 100.0


class PacedWriter(threading.Thread):
    def __init__(self, node, name):
        super().__init__(daemon=True)
        self.node, self.name = node, name
        self.stop_flag = threading.Event()
        self.ok = 0
        self.failures = []
        self.max_latency = 0.0

    def run(self):
        c = H.Client(self.node.port, timeout=5)
        period = 1.0 / RATE_PER_WRITER
        nxt = time.monotonic()
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            key = "%s-%d" % (self.name, i % 1000)
            t0 = time.monotonic()
            try:
                st, _, raw = c.put("/v1/caches/steady/%s?ack=quorum" % key, body=b"v%d" % i)
                if st == 200:
                    st, _, _ = c.get("/v1/caches/steady/%s" % key)
            except Exception as e:
                st, raw = None, repr(e).encode()
                c.close()
                c = H.Client(self.node.port, timeout=5)
            dt = time.monotonic() - t0
            self.max_latency = max(self.max_latency, dt)
            if st == 200:
                self.ok += 1
            elif len(self.failures) < 20:
                self.failures.append((key, st, raw[:100]))
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop_flag.wait(delay)  # pacing, not a wait for a condition
            else:
                nxt = time.monotonic()
        c.close()


def _raft(nd):
    m = nd.metrics()
    return m.get("hacache_raft_term"), m.get("hacache_raft_leader_changes_total")


def test_no_leader_change_under_steady_load():
    cl = C.Cluster(3)
    writers = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        before = {nd.name: _raft(nd) for nd in cl.live()}
        H.log("start: leader %s, term/leader changes per node %r" % (ld.name, before))
        writers = [PacedWriter(nd, "w%d" % k) for k, nd in enumerate(cl.live())]
        for w in writers:
            w.start()
        t_end = time.monotonic() + DURATION_S
        moved = []
        # sample every 5 s so a change is caught (and reported) when it happens
        while time.monotonic() < t_end:
            time.sleep(min(5.0, max(0.0, t_end - time.monotonic())))
            for nd in cl.live():
                now = _raft(nd)
                if now != before[nd.name] and len(moved) < 10:
                    moved.append((round(DURATION_S - (t_end - time.monotonic()), 1), nd.name,
                                  before[nd.name], now))
            if moved:
                break
        for w in writers:
            w.stop_flag.set()
        for w in writers:
            w.join(10.0)
        ok = sum(w.ok for w in writers)
        fails = [f for w in writers for f in w.failures]
        H.log("%.0f s of steady load: %d writes+reads ok, %d failed, slowest %.0f ms; "
              "term/leader-change moves: %r" % (DURATION_S, ok, len(fails),
                                                max(w.max_latency for w in writers) * 1000,
                                                moved))
        H.check_eq(moved, [], "term and leader changes unchanged on every node")
        H.check_eq(fails[:5], [], "failed requests")
        H.check(ok >= DURATION_S * RATE_PER_WRITER * len(writers) * 0.5,
                "the load ran (%d ok)" % ok)
        H.check(cl.leader() is ld, "the same leader at the end")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
