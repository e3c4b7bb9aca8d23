"""A rolling upgrade from protocol 1 to protocol 2 under writes (issue 12 constraint, SPEC §3
"Versions"): incarnations, majority bootstrap, starting over and cluster lifetimes run only while
every connected peer speaks protocol 2.

The old build is stood in for by HACACHE_TEST_PROTO_MAX=1 (the peer handshake then offers
protocol 1 only, and the node keeps the version 1 rules: bootstrap with every HA_HOSTS entry
under the legacy ids, no raft ids on the wire).

- 3 nodes at protocol 1 with data dirs bootstrap and serve quorum writes from retrying clients;
- every node is restarted with protocol 2 and its data dir, one at a time, the leader included
  (it hands over first): zero failed writes;
- a node an older build left with `novote` (its hard state file says so) is replaced like a node
  without state: a new incarnation that becomes a voter;
- a follower restarted without its data dir is a new incarnation that becomes a voter;
- every acknowledged write reads back on every node.
(Restarting a node without state while protocol 1 peers are connected gives the version 1
rule, a follower that never votes, with its known weakness: the next restart of a voter can
leave no majority that may vote. README, "Restarts with and without a data dir".)
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402
import test_cluster_rolling as R  # noqa: E402


def _voters(nd):
    st = C._status(nd)
    if st is None:
        return None
    return sorted(m["role"] for m in st.get("members", [])), st.get("members_committed")


def test_rolling_upgrade_from_protocol_1():
    env = {"CACHE_SHUTDOWN_TIMEOUT_MS": str(R.SHUTDOWN_TIMEOUT_MS), "HACACHE_TEST_PROTO_MAX": "1"}
    cl = C.Cluster(3, extra_env=env)
    writers = []
    try:
        cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        writers = [R.RetryingWriter(cl, "w%d" % k, k % 3) for k in range(2)]
        for w in writers:
            w.start()
        H.wait_until(lambda: all(len(w.acked) >= 30 for w in writers), 20.0,
                     what="writers running at protocol 1")

        # the rolling upgrade: every node restarted with protocol 2 and its data dir
        del cl.extra_env["HACACHE_TEST_PROTO_MAX"]
        ld = cl.wait_leader(10.0)
        order = [nd.index for nd in cl.nodes if nd is not ld] + [ld.index]
        order = [order[0], order[2], order[1]]  # the leader in the middle of the roll
        for i in order:
            R.restart_one(cl, writers, i)
        H.wait_until(lambda: all(_voters(nd) == (["voter"] * 3, True) for nd in cl.live()),
                     20.0, what="three voters, committed, on every node")

        # a node an older build left following without a vote is replaced like any other
        ld = cl.wait_leader(10.0)
        f = next(nd for nd in cl.nodes if nd is not ld)
        f.stop_ok(10.0)
        state = [os.path.join(cl.dir, "data-%d" % f.index, x)
                 for x in os.listdir(os.path.join(cl.dir, "data-%d" % f.index))
                 if x.endswith(".state")]
        H.check_eq(len(state), 1, "one hard state file")
        with open(state[0], "a") as fh:
            fh.write("novote 1\n")
        nf = cl.start_node(f.index, wait=False)
        nf.wait_ready(20.0)
        H.wait_until(lambda: C._status(nf) is not None and C._status(nf)["ready"], 30.0,
                     what="the node left with novote is a voter again")
        H.check("starting as a new incarnation" in nf.stderr(), "novote: a new incarnation")

        # and a follower restarted without its data dir
        ld = cl.wait_leader(10.0)
        f = next(nd for nd in cl.nodes if nd is not ld and nd is not nf)
        f.stop_ok(10.0)
        shutil.rmtree(os.path.join(cl.dir, "data-%d" % f.index))
        nf = cl.start_node(f.index, wait=False)
        nf.wait_ready(20.0)
        H.wait_until(lambda: C._status(nf) is not None and C._status(nf)["ready"], 30.0,
                     what="the new incarnation is a voter")
        H.wait_until(lambda: all(_voters(nd) == (["voter"] * 3, True) for nd in cl.live()),
                     20.0, what="three voters, committed, on every node")
        H.check("joining the existing cluster as a new member" in nf.stderr(),
                "with protocol 2 everywhere it joins as a new incarnation")

        C.stop_writers_clean(writers)
        C.check_acked(cl.live(), writers, query="?consistency=linearizable")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
