#!/usr/bin/env python3
"""Cluster mode: every node keeps the raft configuration it last saw committed next to its hard
state (CACHE_DATA_DIR/raft-<host>_<port>.state.members) and restarts with it rather than with
HA_HOSTS (raft/README.md restart rule 6: a restarted node that has not heard from a leader yet
must not take a stale or changed list for the voters).

3 nodes form a cluster and commit a write; each has a members file naming the 3 voters. All
three are stopped; one restarts alone with an HA_HOSTS that lists a fourth, never-started
entry: it must report 3 voters (the committed configuration), not 4. Then the other two come
back with the original list: a leader is elected with 3 voters and takes writes (the data is
gone: every node lost its memory, so the cluster starts again empty, as documented)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402


def members_file(cl, i):
    return os.path.join(cl.dir, "data-%d" % i, "raft-127.0.0.1_%d.state.members" % cl.peer_ports[i])


def voters(node):
    try:
        return node.metrics().get("hacache_raft_members", role="voter")
    except (OSError, AssertionError):
        return None  # not listening yet


def test_restart_uses_committed_configuration():
    cl = C.Cluster(3)
    try:
        leader = cl.wait_leader()
        c = leader.client()
        st, _, _ = c.put("/v1/caches/m/k?ack=quorum", body=b"kept")
        c.close()
        H.check_eq(st, 200, "quorum write")

        def files_written():
            for i in range(3):
                try:
                    with open(members_file(cl, i)) as f:
                        text = f.read()
                except OSError:
                    return False
                if text.count("\nvoter ") != 3:
                    return False
            return True
        H.wait_until(files_written, 10.0, what="a members file with 3 voters on every node")
        with open(members_file(cl, 0)) as f:
            H.log("members file of n0:\n" + f.read())

        for nd in cl.nodes:
            nd.stop_ok()

        # node 2 alone, with a fourth entry in HA_HOSTS that never runs
        extra = "https://127.0.0.1:%d" % H.free_port()
        env = cl.env(2)
        env["HA_HOSTS"] = cl.ha_hosts + "," + extra
        n2 = H.Node(env=env, name="n2-alone", start=False)
        cl.nodes[2] = n2
        C.Cluster._spawn(n2)
        H.wait_until(lambda: n2.alive() and voters(n2) is not None, 15.0,
                     what="n2 serving metrics")
        H.check("restarting with the configuration last seen committed" in n2.stderr(),
                "n2 logs that it restarts with the committed configuration")
        H.check_eq(voters(n2), 3, "voters n2 counts while alone (HA_HOSTS lists 4)")

        for i in (0, 1):
            cl.start_node(i, wait=False)
        leader = cl.wait_leader(timeout=20.0)
        c = leader.client()
        # every node lost its memory: the cluster recovers to an empty, consistent state
        # (README, "Guarantees (cluster)"), then takes writes again
        st, _, _ = c.get("/v1/caches/m/k?consistency=linearizable")
        H.check_eq(st, 404, "the write from before a full-cluster restart (memory is not kept)")
        st, _, _ = c.put("/v1/caches/m/k2?ack=quorum", body=b"new")
        c.close()
        H.check_eq(st, 200, "quorum write after the restarts")
        for nd in cl.live():
            H.check_eq(voters(nd), 3, "voters on %s" % nd.name)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
