"""Cluster mode without CACHE_DATA_DIR (issue 12 acceptance 1 and 2, SPEC §3 "Restarts").

Nodes without a data dir keep no raft state: every start is a new incarnation with a fresh raft
id that joins as a learner, is caught up, replaces its host's previous incarnation (removed
first, then the new one promoted: single-server changes only) and only then reports /readyz 200.

- 3 nodes, no data dir at all, two full rolling restarts (and 5 nodes, one round) (SIGTERM, start, wait for /readyz 200
  on every node, next; the leader included in each round) under quorum writes from clients that
  retry on another node within 2 s (test_cluster_rolling's RetryingWriter): zero failed writes,
  every acknowledged write readable on every node afterwards; then kill -9 of the leader gives a
  new leader within 3 s and writes continue.
- /readyz means voter: after the rounds every node's committed configuration holds exactly 3
  voters and no learner, and after one follower's restart killing either other node keeps the
  cluster writable.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402
import test_cluster_rolling as R  # noqa: E402

NEW_LEADER_S = 3.0


def members_of(nd):
    st = C._status(nd)
    if st is None:
        return None
    return sorted((m["role"]) for m in st.get("members", [])), st.get("members_committed")


def all_voters(cl, n):
    for nd in cl.live():
        got = members_of(nd)
        if got is None or got[0] != ["voter"] * n or not got[1]:
            return False
    return True


def rolling(n, rounds):
    cl = C.Cluster(n, data_dirs=False, extra_env={"CACHE_SHUTDOWN_TIMEOUT_MS": "5000"})
    writers = []
    try:
        cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        writers = [R.RetryingWriter(cl, "w%d" % k, k % 3) for k in range(2)]
        for w in writers:
            w.start()
        H.wait_until(lambda: all(len(w.acked) >= 50 for w in writers), 20.0,
                     what="writers running")
        report = []
        for rnd in range(rounds):
            ld = cl.wait_leader(20.0)
            fs = [x.index for x in cl.live() if x is not ld]
            steps = [fs[0], ld.index] + fs[1:] if rnd == 0 else [ld.index] + fs
            for i in steps:
                report.append(R.restart_one(cl, writers, i))
                H.wait_until(lambda: all_voters(cl, n), 15.0,
                             what="%d voters, no learner, committed, on every node" % n)
        H.check(sum(1 for r in report if r[1]) >= rounds, "a leader was restarted in each round")
        ready = [r[4] for r in report]
        H.log("restart -> ready (voter): %s" % ", ".join("%.2fs" % x for x in ready))

        # kill -9 of the leader: a new leader within 3 s, writes go on
        ld = cl.wait_leader(10.0)
        t_kill = time.monotonic()
        ld.kill()
        new = cl.wait_leader(10.0, nodes=[x for x in cl.live() if x is not ld])
        took = time.monotonic() - t_kill
        H.log("kill -9 of the leader %s: %s leads after %.2fs" % (ld.name, new.name, took))
        if not H.is_sanitized_build():
            H.check(took <= NEW_LEADER_S, "a new leader within %.0fs (%.2fs)" % (NEW_LEADER_S,
                                                                               took))
        n0 = sum(len(w.acked) for w in writers)
        H.wait_until(lambda: sum(len(w.acked) for w in writers) >= n0 + 20, 10.0,
                     what="writes continue after the leader's kill")
        # the writes in flight at the kill may fail over beyond the clients' 2 s budget only if
        # the election took longer; the rounds before must be clean
        C.stop_writers_clean(writers)
        C.check_acked(cl.live(), writers, query="?consistency=linearizable")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


def test_volumeless_rolling_restarts():
    rolling(3, 2)


def test_volumeless_five_nodes_one_round():
    rolling(5, 1)


def test_readyz_means_voter():
    """One follower restarted without state: once it reports ready, either other node can die
    and the cluster still takes writes."""
    for victim_is_leader in (True, False):
        cl = C.Cluster(3, data_dirs=False)
        try:
            ld = cl.wait_leader(20.0)
            cl.wait_ready(15.0)
            f = [x for x in cl.live() if x is not ld][0]
            idx = f.index
            f.stop(10.0)
            f2 = cl.start_node(idx, wait=False)
            f2.wait_ready(30.0)
            t0 = time.monotonic()
            H.wait_until(lambda: C._status(f2) is not None and C._status(f2)["ready"], 30.0,
                         what="the restarted node reports ready")
            H.log("restarted without state: ready (voter) after %.2fs" % (time.monotonic() - t0))
            st = C._status(f2)
            me = [m for m in st["members"] if m["node"] == st["node"]]
            H.check(me and me[0]["role"] == "voter", "a ready node is a voter: %r" % me)
            others = [x for x in cl.live() if x is not f2]
            victim = [x for x in others if (x is ld) == victim_is_leader][0]
            victim.kill()
            rest = [x for x in cl.live()]
            nl = cl.wait_leader(15.0, nodes=rest)
            c = H.Client(nl.port, timeout=5)
            st_put, _, _ = c.put("/v1/caches/ready/k?ack=quorum", body=b"v")
            c.close()
            H.check_eq(st_put, 200, "a quorum write after killing %s (%s)" % (
                victim.name, "the leader" if victim_is_leader else "a follower"))
            for nd in cl.live():
                nd.stop_ok(10.0)
        finally:
            cl.cleanup()


def late_founder(extra_env, what):
    cl = C.Cluster(3, data_dirs=False, extra_env=extra_env, defer=(2,))
    try:
        t0 = time.monotonic()
        ld = cl.wait_leader(20.0, nodes=[cl.nodes[0], cl.nodes[1]])
        H.log("%s: two founders elected a leader %.2fs after their start" % (
            what, time.monotonic() - t0))
        # serving is what /readyz promises, not what an elected leader does at once (its first
        # entry of the term may still be committing on a loaded machine): wait for it
        cl.wait_ready(15.0, nodes=[cl.nodes[0], cl.nodes[1]])
        c = H.Client(ld.port, timeout=5)
        for i in range(50):
            st, _, _ = c.put("/v1/caches/late/k%d?ack=quorum" % i, body=b"v%d" % i)
            H.check_eq(st, 200, "quorum write %d with two of three founders" % i)
        c.close()
        late = cl.start_node(2, wait=False)
        late.wait_ready(30.0)
        t0 = time.monotonic()
        H.wait_until(lambda: C._status(late) is not None and C._status(late)["ready"], 30.0,
                     what="the late founder reports ready")
        H.log("%s: late founder ready (voter) after %.2fs" % (what, time.monotonic() - t0))
        H.wait_until(lambda: all_voters(cl, 3), 15.0, what="3 voters on every node")
        c = H.Client(late.port, timeout=5)
        st, _, body = c.get("/v1/caches/late/k49")
        c.close()
        H.check(st == 200 and body == b"v49", "the late founder holds the data (%r)" % st)
        # fault tolerance is back: either other node may go
        cl.nodes[0].kill()
        ld = cl.wait_leader(10.0, nodes=[cl.nodes[1], late])
        c = H.Client(ld.port, timeout=5)
        st, _, _ = c.put("/v1/caches/late/after?ack=quorum", body=b"x")
        c.close()
        H.check_eq(st, 200, "a quorum write after killing a founder")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


def test_late_founder_becomes_voter():
    """A new cluster whose third founder is missing forms by majority (no setting needed) and
    serves; the founder started later replaces its placeholder and becomes a voter."""
    late_founder({}, "majority bootstrap")


def test_late_founder_bootstrap_expect():
    """The same with CACHE_BOOTSTRAP_EXPECT=2 (the founders wait for two, not for all)."""
    late_founder({"CACHE_BOOTSTRAP_EXPECT": "2"}, "CACHE_BOOTSTRAP_EXPECT=2")


def test_replaced_incarnation_stops_serving():
    """A process that answers for an HA_HOSTS entry after a newer incarnation replaced it (here: a
    data dir restored from a copy taken before the replacement; in a deployment: two processes
    for one entry) learns it from its peers and stops serving: /readyz and local reads say
    503 `replaced`; the cluster goes on."""
    import shutil
    cl = C.Cluster(3)
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        c = H.Client(ld.port, timeout=5)
        st, _, _ = c.put("/v1/caches/r/k?ack=quorum", body=b"v1")
        c.close()
        H.check_eq(st, 200, "a write")
        f = next(nd for nd in cl.nodes if nd is not ld)
        i = f.index
        ddir = os.path.join(cl.dir, "data-%d" % i)
        f.stop_ok(10.0)
        shutil.copytree(ddir, ddir + ".copy")
        shutil.rmtree(ddir)
        y = cl.start_node(i, wait=False)
        y.wait_ready(20.0)
        H.wait_until(lambda: C._status(y) is not None and C._status(y)["ready"], 30.0,
                     what="the new incarnation is a voter")
        H.wait_until(lambda: all_voters(cl, 3), 15.0, what="3 voters on every node")
        y.stop_ok(10.0)
        shutil.rmtree(ddir)
        shutil.copytree(ddir + ".copy", ddir)
        x = cl.start_node(i, wait=False)  # the old incarnation, alive again
        x.wait_ready(20.0)

        def replaced():
            cx = H.Client(x.port, timeout=2)
            try:
                st, _, raw = cx.get("/readyz")
                rs, _, rraw = cx.get("/v1/caches/r/k")
            finally:
                cx.close()
            return (st, (H.jbody(raw) or {}).get("reason"), rs,
                    (H.jbody(rraw) or {}).get("reason")) == (503, "replaced", 503, "replaced")
        t0 = time.monotonic()
        H.wait_until(replaced, 15.0, what="the old incarnation says 503 replaced")
        H.log("old incarnation stopped serving %.2fs after its start" % (time.monotonic() - t0))
        err = open(x.stderr_path, "rb").read().decode(errors="replace")
        H.check("replaced by a newer incarnation" in err, "it logs why")
        ld = cl.wait_leader(10.0, nodes=[nd for nd in cl.nodes if nd is not x])
        c = H.Client(ld.port, timeout=5)
        st, _, _ = c.put("/v1/caches/r/k2?ack=quorum", body=b"v2")
        c.close()
        H.check_eq(st, 200, "the cluster goes on writing")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
