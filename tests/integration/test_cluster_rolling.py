"""Rolling restart under write load (issue 4 acceptance 6, SPEC §3 "Leadership", README
"Rolling restart").

3 nodes (mTLS, default timeouts). Two client threads write continuously at ack=quorum, each a
distinct key per write (so every acknowledged write can be checked at the end). A client behaves
like the one the README describes: it sends to its preferred node and, on 503 or a connection
error, moves to the next node and retries, giving up on a write after 2 s; 504 unknown_outcome
and every other answer count as failures. Every node in turn gets SIGTERM (the leader hands
over first), must exit 0 within CACHE_SHUTDOWN_TIMEOUT_MS, is started again with the same data
dir and must report /readyz 200 before the next one goes. The leader is restarted last but
one, so two handovers happen (the first node, if it leads, and the one that leads then).

Checks: zero failed writes; every acknowledged key readable with its value on every node at the
end (digests equal); each SIGTERM exits 0 in under a second typically and always under the
shutdown timeout. Reported: shutdown times, the longest pause between two acknowledged writes
around each restart (the handover pause when it was the leader), and write counts.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

RETRY_BUDGET_S = 2.0
SHUTDOWN_TIMEOUT_MS = 5000


class RetryingWriter(threading.Thread):
    """Quorum writes of distinct keys; fails over between nodes on 503 / connection errors."""

    def __init__(self, cl, name, first):
        super().__init__(daemon=True)
        self.cl, self.name, self.pref = cl, name, first
        self.stop_flag = threading.Event()
        self.acked = []  # (key, value)
        self.failures = []  # (key, last status, detail)
        self.ack_times = []
        self.retries = 0
        self.lock = threading.Lock()

    def _client(self, i):
        nd = self.cl.nodes[i]
        return H.Client(nd.port, timeout=3) if nd is not None else None

    def run(self):
        n = self.cl.n
        clients = {}
        seq = 0
        while not self.stop_flag.is_set():
            seq += 1
            key = "%s-%d" % (self.name, seq)
            val = ("val-%s-%d" % (self.name, seq)).encode()
            t0 = time.monotonic()
            i = self.pref
            last = None
            done = False
            while time.monotonic() - t0 < RETRY_BUDGET_S:
                nd = self.cl.nodes[i]
                st = None
                try:
                    c = clients.get(i)
                    if c is None or c.port != nd.port:
                        c = clients[i] = H.Client(nd.port, timeout=3)
                    st, _, raw = c.put("/v1/caches/roll/%s?ack=quorum" % key, body=val)
                except Exception as e:  # connection refused / reset: the node is restarting
                    last = ("conn", repr(e)[:80])
                    c = clients.pop(i, None)
                    if c is not None:
                        c.close()
                if st == 200:
                    done = True
                    break
                if st is not None:
                    last = (st, (H.jbody(raw) or {}).get("code"))
                    if st != 503:
                        break  # not retryable for this client
                self.retries += 1
                i = (i + 1) % n
                time.sleep(0.02)  # pacing between attempts of one write
            now = time.monotonic()
            with self.lock:
                if done:
                    self.acked.append((key, val))
                    self.ack_times.append(now)
                    self.pref = i
                else:
                    self.failures.append((key, last))
        for c in clients.values():
            c.close()


def restart_one(cl, writers, i):
    """SIGTERM node i, wait for a clean exit, start it again, wait until every node is ready."""
    nd = cl.nodes[i]
    was_leader = (cl.leader() is nd)
    t_stop = time.monotonic()
    nd.signal(signal.SIGTERM)
    rc = nd.wait_exit(SHUTDOWN_TIMEOUT_MS / 1000.0 + 2.0)
    t_exit = time.monotonic()
    H.check(rc is not None, "%s exited after SIGTERM" % nd.name)
    H.check_eq(rc, 0, "%s exit status" % nd.name)
    H.check("AddressSanitizer" not in nd.stderr(), "no sanitizer report on %s" % nd.name)
    shut = t_exit - t_stop
    H.check(shut < SHUTDOWN_TIMEOUT_MS / 1000.0,
            "%s stopped within the shutdown timeout (%.3fs)" % (nd.name, shut))
    handed = "handing leadership over" in nd.stderr()
    cl.start_node(i, wait=False)
    cl.nodes[i].wait_ready(30.0)  # the process is up (/healthz)
    cl.wait_ready(30.0)  # /readyz 200 on every node: the restarted one caught up
    t_ready = time.monotonic()
    # a few writes after the restart, so the pause that spans it is measured in full
    H.wait_until(lambda: all(sum(1 for t in w.ack_times if t > t_ready) >= 5
                             for w in writers), 10.0, what="writes after the restart")
    gap = max(H.max_gap(w.ack_times, t_stop, t_ready) for w in writers)
    H.log("%s (%s): SIGTERM->exit %.3fs, restart->ready %.2fs, longest write pause "
          "%.3fs" % (nd.name, "leader, handover" if was_leader else "follower", shut,
                     t_ready - t_exit, gap))
    if was_leader:
        H.check(handed, "the stopping leader %s handed leadership over" % nd.name)
    return (nd.name, was_leader, handed, shut, t_ready - t_exit, gap)


def test_rolling_restart_under_load():
    env = {"CACHE_SHUTDOWN_TIMEOUT_MS": str(SHUTDOWN_TIMEOUT_MS)}
    cl = C.Cluster(3, extra_env=env)
    writers = []
    try:
        cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        writers = [RetryingWriter(cl, "w%d" % k, k % 3) for k in range(2)]
        for w in writers:
            w.start()
        H.wait_until(lambda: all(len(w.acked) >= 50 for w in writers), 20.0,
                     what="writers running")
        report = []
        # two rolling restarts: first a follower, the leader, the other node; then the current
        # leader first (so several handovers are measured)
        for rnd in range(2):
            ld = cl.wait_leader(20.0)
            fs = [x.index for x in cl.live() if x is not ld]
            steps = [fs[0], ld.index, fs[1]] if rnd == 0 else [ld.index] + fs
            for i in steps:
                report.append(restart_one(cl, writers, i))
        for w in writers:
            w.stop_flag.set()
        for w in writers:
            w.join(10.0)
        total = sum(len(w.acked) for w in writers)
        fails = [f for w in writers for f in w.failures]
        retries = sum(w.retries for w in writers)
        H.log("writes acknowledged: %d, failed: %d, retries after 503/connection errors: %d" % (
            total, len(fails), retries))
        node_retries = sum(nd.metrics().get("hacache_write_retries_total") or 0
                           for nd in cl.live())
        H.log("writes the nodes sent again after a leader change (hacache_write_retries_total, "
              "nodes alive at the end): %d" % node_retries)
        H.check_eq(fails[:10], [], "failed writes")
        hand = [r for r in report if r[1]]
        H.check(len(hand) >= 2, "at least two leaders were restarted (%d)" % len(hand))
        H.log("handover pauses (longest gap between two acknowledged writes): %s; follower "
              "restarts: %s" % (", ".join("%.0f ms" % (r[5] * 1000) for r in hand),
                                ", ".join("%.0f ms" % (r[5] * 1000) for r in report
                                          if not r[1])))
        # every acknowledged write is on every node
        def converged():
            d = cl.digests()
            return len(set(d.values())) == 1 and None not in d.values()
        C.wait_all(converged, 20.0, "replicas converge")
        C.check_acked(cl.live(), writers)
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
