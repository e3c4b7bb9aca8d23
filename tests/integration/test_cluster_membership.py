"""Membership follows HA_HOSTS through committed raft changes: scale 3 -> 5 -> 3 by rolling
restarts under write load (issue 4 acceptance 8, SPEC §3 "Membership", README "Scaling").

1. Three nodes run with a 3-entry HA_HOSTS. Two new nodes start with the 5-entry list and no
   raft state: they find the established cluster (ClusterInfo) and wait to be added (JOIN;
   /readyz 503 `joining`). The three are restarted one by one with the 5-entry list; once a
   leader lists the new nodes it adds them as learners and promotes them when caught up.
   Every node then reports 5 voters, committed.
2. The three are restarted one by one with the 3-entry list again; a leader that no longer
   lists the two extra nodes removes them, one committed change at a time. Then the two are
   stopped.

Throughout, two clients write distinct keys at ack=quorum through the first three nodes,
retrying 503 and connection errors on another node for up to 2 s (as in
test_cluster_rolling.py). Checks: zero failed writes, every acknowledged write on every remaining
node at the end (digests equal), final configuration exactly the three nodes as voters, and,
from every node's log, never two leaders in one term.
"""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402
from test_cluster_rolling import RetryingWriter  # noqa: E402

LEADER_RE = re.compile(r'msg="raft state" role=leader term=(\d+) leader=(\S+)')


def _members(nd):
    m = nd.metrics()
    voters = m.get("hacache_raft_members", role="voter")
    learners = m.get("hacache_raft_members", role="learner")
    committed = m.get("hacache_raft_members_committed")
    names = sorted(lb["node"] for lb, _ in m.find("hacache_raft_member_info"))
    return voters, learners, committed, names


def _readyz(nd):
    c = H.Client(nd.port, timeout=2)
    try:
        st, _, raw = c.get("/readyz")
        return st, (H.jbody(raw) or {}).get("reason")
    finally:
        c.close()


class Logs:
    """Keeps every incarnation's stderr, to check leaders per term at the end."""

    def __init__(self):
        self.texts = []

    def keep(self, nd):
        self.texts.append((nd.name, nd.stderr()))

    def leaders_per_term(self):
        out = {}
        for name, text in self.texts:
            for m in LEADER_RE.finditer(text):
                out.setdefault(int(m.group(1)), set()).add(m.group(2))
        return out


def _restart(cl, i, logs, ready_nodes):
    nd = cl.nodes[i]
    nd.signal(signal.SIGTERM)
    rc = nd.wait_exit(10.0)
    H.check_eq(rc, 0, "%s exit status after SIGTERM" % nd.name)
    logs.keep(nd)
    cl.start_node(i, wait=False)
    cl.nodes[i].wait_ready(30.0)
    cl.wait_ready(30.0, nodes=[cl.nodes[k] for k in ready_nodes])


def test_scale_3_to_5_to_3():
    cl = C.Cluster(3)
    logs = Logs()
    writers = []
    try:
        cl.wait_leader(20.0)
        hosts3 = cl.ha_hosts
        extra_peer = C._distinct_ports(4)
        cl.peer_ports += extra_peer[:2]
        cl.http_ports += extra_peer[2:]
        cl.nodes += [None, None]
        hosts5 = ",".join("https://127.0.0.1:%d" % p for p in cl.peer_ports)
        writers = [RetryingWriter(cl, "w%d" % k, k % 3) for k in range(2)]
        for w in writers:
            w.start()
        H.wait_until(lambda: all(len(w.acked) >= 20 for w in writers), 20.0,
                     what="writers running")

        # ---- scale up: new nodes first, then roll the 5-entry list over the old ones ----
        cl.ha_hosts = hosts5
        for i in (3, 4):
            cl.start_node(i, wait=False)
        for i in (3, 4):
            cl.nodes[i].wait_ready(30.0)  # /healthz
        H.wait_until(lambda: all(_readyz(cl.nodes[i]) == (503, "joining") for i in (3, 4)),
                     20.0, what="new nodes found the cluster and wait to be added")
        H.check_eq(_members(cl.nodes[0])[:2], (3, 0), "configuration before the roll")
        t0 = time.monotonic()
        for i in (0, 1, 2):
            _restart(cl, i, logs, ready_nodes=[0, 1, 2])
        H.wait_until(lambda: all(_members(cl.nodes[i])[:3] == (5, 0, 1) for i in range(5)),
                     60.0, what="five voters, committed, on every node")
        cl.wait_ready(30.0)
        H.log("scale up: 5 voters %.2fs after the roll started; members %r" % (
            time.monotonic() - t0, _members(cl.nodes[0])[3]))

        # ---- scale down: roll the 3-entry list, then stop the two extra nodes ----
        # The hard case on purpose: a leaving node leads during the whole roll. It lists all five
        # and would never remove the leaving ones; once a majority of the voters (the three
        # restarted with the 3-entry list) tell it they do not list it, it hands leadership to
        # one of them by itself, which removes the two.
        leaving = "127.0.0.1:%d" % cl.peer_ports[4]

        def leaving_leads():
            cur = cl.wait_leader(15.0)
            if cur is cl.nodes[4]:
                return True
            c = cur.client()
            try:
                c.post("/v1/admin/leader/transfer?to=" + leaving)
            except Exception:
                pass
            c.close()
            return False
        H.wait_until(leaving_leads, 20.0, interval=0.2, what="a leaving node leads")
        cl.ha_hosts = hosts3
        t0 = time.monotonic()
        for i in (0, 1, 2):
            _restart(cl, i, logs, ready_nodes=[0, 1, 2])
        want = sorted("127.0.0.1:%d" % p for p in cl.peer_ports[:3])
        H.wait_until(lambda: all(_members(cl.nodes[i]) == (3, 0, 1, want) for i in (0, 1, 2)),
                     60.0, what="three voters, committed, on the remaining nodes")
        H.log("scale down: 3 voters %.2fs after the roll started" % (time.monotonic() - t0))
        err = open(cl.nodes[4].stderr_path, "rb").read().decode(errors="replace")
        H.check("most voters do not list this leader" in err,
                "the leaving leader handed leadership over by itself")
        H.check(leaving not in _members(cl.nodes[0])[3], "the leaving leader was removed")
        for i in (3, 4):
            nd = cl.nodes[i]
            nd.stop_ok(10.0)
            logs.keep(nd)
        cl.wait_ready(20.0, nodes=cl.nodes[:3])
        H.wait_until(lambda: all(sum(1 for t in w.ack_times if t > time.monotonic() - 1.0) > 0
                                 for w in writers), 10.0, what="writes go on with 3 nodes")

        for w in writers:
            w.stop_flag.set()
        for w in writers:
            w.join(10.0)
        total = sum(len(w.acked) for w in writers)
        fails = [f for w in writers for f in w.failures]
        H.log("writes acknowledged: %d, failed: %d, client retries: %d" % (
            total, len(fails), sum(w.retries for w in writers)))
        H.check_eq(fails[:10], [], "failed writes")

        def converged():
            d = cl.digests(nodes=cl.nodes[:3])
            return len(set(d.values())) == 1 and None not in d.values()
        C.wait_all(converged, 20.0, "replicas converge")
        C.check_acked(cl.nodes[:3], writers)
        for nd in cl.nodes[:3]:
            nd.stop_ok(10.0)
            logs.keep(nd)
        alltext = "".join(t for _, t in logs.texts)
        counts = {k: alltext.count(k) for k in (
            "joining the existing cluster", "membership: adding a learner",
            "membership: promoting a caught-up learner",
            "membership: removing a member not in HA_HOSTS", "lost its raft state")}
        H.log("membership log lines: %r" % counts)
        H.check_eq(counts["joining the existing cluster"], 2, "both new nodes joined")
        H.check_eq(counts["membership: adding a learner"], 2, "two learners added")
        H.check_eq(counts["membership: promoting a caught-up learner"], 2, "two promotions")
        H.check_eq(counts["membership: removing a member not in HA_HOSTS"], 2, "two removals")
        H.check_eq(counts["lost its raft state"], 0, "no node mistaken for one that lost its state")
        per_term = logs.leaders_per_term()
        two = {t: sorted(v) for t, v in per_term.items() if len(v) > 1}
        H.log("terms with a leader: %d, terms with two leaders: %r" % (len(per_term), two))
        H.check_eq(two, {}, "never two leaders in one term")
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
