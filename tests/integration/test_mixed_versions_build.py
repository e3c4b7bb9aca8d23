"""Two real builds side by side (issue 15, scenario 5 "mixed versions"; SPEC section 3
"Versions"; README "Rolling upgrade and downgrade").

The older build is hacached of PREV_REF (tests/versions/prev.py: which commit and why), built
from this repository's history by tests/versions/build_ref.sh into build/prev-<sha> (reused
when present; 20-60 s once); HACACHED_PREV names a prebuilt binary of PREV_REF instead. The
current build is $HACACHED. (test_cluster_mixed_versions.py imitates older protocols inside one
build; this one runs the old code.)

- Upgrade: 3 nodes of the old build (mTLS, token file, data dirs: the old build needs one and
  a real upgrade keeps its volume) take quorum writes from two clients that retry with one
  request id per write on the next node (puts of fresh keys and increments of a counter).
  Node by node (a follower, the leader, the other follower): SIGTERM, clean exit, start of the
  current build on the same data dir, every node ready, next. After each step every node's
  /v1/status reports for each peer the protocol its link negotiated: the lower of the two
  builds' maxima (an old node reports PREV_PROTOCOL for every peer); once all run the current
  build every link reports its maximum (server/frame.h HC_PROTO_MAX).
- Rollback: the same roll back to the old build (supported for a cluster that the old version
  created and that kept its data dirs: its raft ids are the old kind), under the same writes.
- Zero failed writes through both rolls; every acknowledged put reads back on every node
  (linearizable reads), every counter equals its acknowledged increments (applied once).
- Downgrade not supported: in a cluster the current build founded (raft ids per incarnation),
  a follower restarted as the old build never becomes ready and never answers a read with data
  (503), the other two keep taking writes with no failure, keep their configuration and log
  why, naming it (never during the supported rollback); the node restarted as the current
  build again is a voter and holds every write.

Prints "FIGURES: ..." (write pause per restarted node, failed writes, protocol versions seen),
quoted in docs/OPERATIONS.md ("Mixed versions").

PREV_REF must be in the clone (or HACACHED_PREV given): in a shallow clone that lacks it the
test fails with build_ref.sh's message (clone with history, or git fetch --unshallow); it
never skips, so a CI that lost the history notices.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402
import test_cluster_rolling as R  # noqa: E402
sys.path.insert(0, os.path.join(H.REPO, "tests", "versions"))
import prev  # noqa: E402

PREV_REF = prev.REF
PREV_PROTOCOL = prev.PROTOCOL
SHUTDOWN_TIMEOUT_MS = R.SHUTDOWN_TIMEOUT_MS
# what a current node logs when a protocol 1 peer links up that cannot take part
LEFT_OUT = "a protocol 1 peer (an older hacache build) cannot take part in this cluster"
RETRY_BUDGET_S = 3.0


def prev_binary():
    return prev.binary(log=H.log)


def current_protocol():
    return prev.current_protocol()


def start_cluster(binary=None):
    """3 nodes (mTLS, token file, data dirs) running `binary` (default the current build).
    Ports are picked free and bound later by the nodes: on a machine where other tests run,
    one may be taken in between, so a start that fails with "address already in use" is
    tried again on new ports."""
    env = {"CACHE_SHUTDOWN_TIMEOUT_MS": str(SHUTDOWN_TIMEOUT_MS)}
    for attempt in range(3):
        cl = C.Cluster(3, binary=binary, extra_env=env, defer=(0, 1, 2))
        try:
            for i in range(3):
                cl.start_node(i, wait=False)
            for nd in cl.nodes:
                nd.wait_ready(20.0)
            return cl
        except H.NodeStartError as e:
            cl.cleanup()
            if attempt == 2 or "address already in use" not in str(e):
                raise
            H.log("a port was taken by another process before a node bound it: new ports")


def protocol_max(nd):
    """The protocol maximum a node's own log announces (peer listener started ...)."""
    m = re.findall(r"peer listener started.*protocol_max=(\d+)", nd.stderr())
    return int(m[-1]) if m else None


def link_versions(cl):
    """{node index: {peer index: protocol_version}} of every live node's connected links, from
    /v1/status."""
    by_port = {p: j for j, p in enumerate(cl.peer_ports)}
    out = {}
    for nd, st in cl.statuses().items():
        if st is None:
            return None
        out[nd.index] = {by_port[int(p["node"].rsplit(":", 1)[1])]: p["protocol_version"]
                         for p in st["peers"] if p["connected"]}
    return out


class Versions:
    """What each node runs (index -> protocol maximum) and the link versions seen per phase."""

    def __init__(self, cl, proto):
        self.cl, self.proto, self.seen = cl, dict(proto), []

    def expected(self):
        n = self.cl.n
        return {i: {j: min(self.proto[i], self.proto[j]) for j in range(n) if j != i}
                for i in range(n)}

    def settle(self, phase):
        """Waits until every node reports every peer connected at the expected version; records
        the versions seen."""
        want = self.expected()
        got = H.wait_until(lambda: (lambda v: v if v == want else None)(link_versions(self.cl)),
                           20.0, what="peers' protocol_version %r (%s)" % (want, phase))
        olds = [i for i in got if self.proto[i] == PREV_PROTOCOL]
        for i in olds:
            H.check(set(got[i].values()) == {PREV_PROTOCOL},
                    "an old node reports protocol %d for every peer: %r" % (PREV_PROTOCOL,
                                                                           got[i]))
        summary = "%s: %s" % (phase, " ".join(
            "n%d[%s]" % (i, ",".join("%d" % got[i][j] for j in sorted(got[i])))
            for i in sorted(got)))
        self.seen.append(summary)
        H.log("protocol_version per link, " + summary)


def roll(cl, writers, versions, binary, proto, what):
    """Restarts every node as `binary` (protocol maximum `proto`), one at a time: a follower,
    the leader (it hands over first), the other follower; each must be ready, with the links
    at the expected versions, before the next goes. Returns restart_one's reports."""
    ld = cl.wait_leader(20.0)
    fs = [x.index for x in cl.live() if x is not ld]
    report = []
    for i in (fs[0], ld.index, fs[1]):
        cl.binaries[i] = binary
        report.append(R.restart_one(cl, writers, i))
        H.check_eq(protocol_max(cl.nodes[i]), proto, "%s: %s runs the expected build" % (
            what, cl.nodes[i].name))
        versions.proto[i] = proto
        versions.settle("%s, %s restarted" % (what, cl.nodes[i].name))
        for nd in cl.live():
            H.check(LEFT_OUT not in nd.stderr(), "%s: %s does not call an old peer left out"
                    % (what, nd.name))
    return report


def voters(nd):
    st = C._status(nd)
    if st is None or "members" not in st:
        return None
    return sorted(m["role"] for m in st["members"]), st.get("members_committed")


def converged(cl):
    d = cl.digests()
    return len(set(d.values())) == 1 and None not in d.values()


def figures(report):
    return ", ".join("%s%s %.0f ms" % (r[0], " (leader)" if r[1] else "", r[5] * 1000)
                     for r in report)


def test_rolling_upgrade_and_rollback_under_writes():
    old, new = prev_binary(), H.binary()
    new_proto = current_protocol()
    H.check(new_proto > PREV_PROTOCOL, "the current build speaks a newer protocol (%d)"
            % new_proto)
    cl = start_cluster(binary=old)
    writers = []
    try:
        cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        for nd in cl.nodes:
            H.check_eq(protocol_max(nd), PREV_PROTOCOL, "%s runs the old build" % nd.name)
        versions = Versions(cl, {i: PREV_PROTOCOL for i in range(3)})
        versions.settle("all old")
        writers = [C.IdWriter(cl, "w%d" % k, k % 3, budget_s=RETRY_BUDGET_S) for k in range(2)]
        for w in writers:
            w.start()
        H.wait_until(lambda: all(len(w.acked) >= 30 for w in writers), 20.0,
                     what="writers running on the old build")

        up = roll(cl, writers, versions, new, new_proto, "upgrade")
        H.wait_until(lambda: all(voters(nd) == (["voter"] * 3, True) for nd in cl.live()),
                     20.0, what="three voters, committed, on every node after the upgrade")
        n_up = sum(len(w.acked) + w.incrs for w in writers)
        H.check(all(not w.failures for w in writers), "no failed write during the upgrade: %r"
                % [w.failures[:3] for w in writers])

        down = roll(cl, writers, versions, old, PREV_PROTOCOL, "rollback")
        H.wait_until(lambda: sum(len(w.acked) + w.incrs for w in writers) >= n_up + 50, 20.0,
                     what="writes go on after the rollback")

        C.stop_writers_clean(writers)
        total = sum(len(w.acked) + w.incrs for w in writers)
        fails = sum(len(w.failures) for w in writers)
        retries = sum(w.retries for w in writers)
        C.wait_all(lambda: converged(cl), 20.0, "replicas converge")
        C.check_acked(cl.live(), writers, query="?consistency=linearizable")
        C.check_counters(cl.live(), writers)
        H.check(any(r[1] for r in up) and any(r[1] for r in down),
                "a leader was restarted in each roll")
        H.log("FIGURES: mixed versions %s (protocol %d) -> current (protocol %d) -> back, 3 "
              "nodes with data dirs, 2 retrying clients: %d writes acknowledged, %d failed, %d "
              "attempts retried on another node" % (PREV_REF[:7], PREV_PROTOCOL, new_proto,
                                                    total, fails, retries))
        H.log("FIGURES: write pause per restarted node, upgrade: %s" % figures(up))
        H.log("FIGURES: write pause per restarted node, rollback: %s" % figures(down))
        H.log("FIGURES: SIGTERM -> ready again: %s" % ", ".join(
            "%.2fs" % (r[3] + r[4]) for r in up + down))
        H.log("FIGURES: protocol versions seen (n<i>[its links to the other nodes, in order]): "
              + "; ".join(versions.seen))
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


def test_downgrade_of_a_cluster_the_current_build_founded_fails_safely():
    old = prev_binary()
    cl = start_cluster()
    writers = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        c = H.Client(ld.port, timeout=5)
        st, _, _ = c.put("/v1/caches/keep/k?ack=quorum", body=b"v")
        c.close()
        H.check_eq(st, 200, "a write before the downgrade")
        members = C._status(ld)["members"]
        writers = [C.IdWriter(cl, "w%d" % k, k % 3, budget_s=RETRY_BUDGET_S) for k in range(2)]
        for w in writers:
            w.start()
        H.wait_until(lambda: all(len(w.acked) >= 20 for w in writers), 20.0,
                     what="writers running")

        f = next(nd for nd in cl.live() if nd is not ld)
        i = f.index
        f.stop_ok(10.0)
        x = cl.start_node(i, wait=False, binary=old)
        x.wait_ready(20.0)
        H.check_eq(protocol_max(x), PREV_PROTOCOL, "%s runs the old build" % x.name)
        # it links up with both (protocol 1) ...
        versions = Versions(cl, {j: current_protocol() for j in range(3)})
        versions.proto[i] = PREV_PROTOCOL
        versions.settle("downgraded %s in a cluster the current build founded" % x.name)
        # ... but never takes part: for a few seconds (several election timeouts and many
        # heartbeats) it is not ready and answers reads with 503, never with data or 404
        t_end = time.monotonic() + 5.0
        n0 = sum(len(w.acked) for w in writers)
        seen = set()
        while time.monotonic() < t_end:
            cx = H.Client(x.port, timeout=2)
            try:
                rs, _, raw = cx.get("/readyz")
                gs, _, graw = cx.get("/v1/caches/keep/k")
            finally:
                cx.close()
            reason = (H.jbody(raw) or {}).get("reason")
            seen.add((rs, reason, gs))
            H.check(rs == 503 and gs == 503, "the old node stays out: /readyz %d %r, read %d %r"
                    % (rs, raw[:100], gs, graw[:100]))
            time.sleep(0.1)  # sampling interval of the observation window
        H.log("the old build in a cluster of the current build: (readyz, reason, read) seen %r"
              % sorted(seen))
        # the current nodes say why, naming it
        for nd in cl.live():
            if nd is not x:
                line = H.wait_until(lambda: next((ln for ln in nd.stderr().splitlines()
                                                  if LEFT_OUT in ln), None), 10.0,
                                    what="%s logs that the old peer is left out" % nd.name)
                H.check("peer=127.0.0.1:%d" % cl.peer_ports[i] in line,
                        "%s names the old peer: %s" % (nd.name, line))
        H.log("a current node's log: %s" % line)
        n_out = sum(len(w.acked) for w in writers) - n0
        H.check(n_out > 20, "the two current nodes kept taking writes (%d puts)" % n_out)
        H.check(all(not w.failures for w in writers), "no failed write: %r"
                % [w.failures[:3] for w in writers])
        for nd in cl.live():
            if nd is not x:
                H.check_eq(C._status(nd)["members"], members,
                           "%s: the configuration did not change" % nd.name)

        # rolled forward again: the current build on the same data dir is a voter again
        x.stop_ok(10.0)
        t0 = time.monotonic()
        y = cl.start_node(i, wait=False, binary=H.binary())
        y.wait_ready(20.0)
        cl.wait_ready(30.0)
        H.wait_until(lambda: all(voters(nd) == (["voter"] * 3, True) for nd in cl.live()),
                     20.0, what="three voters again")
        H.log("FIGURES: unsupported downgrade: the old node stayed out (%s) for the 5 s "
              "watched, %d puts acknowledged meanwhile, %d writes failed in all; rolled "
              "forward it was a voter again after %.2fs" % (
                  ", ".join("%d %s" % (r, why) for r, why, _ in sorted(seen)), n_out,
                  sum(len(w.failures) for w in writers), time.monotonic() - t0))
        C.stop_writers_clean(writers)
        C.check_acked(cl.live(), writers, query="?consistency=linearizable")
        C.check_counters(cl.live(), writers)
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
