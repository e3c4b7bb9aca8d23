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

Protocol 2 to 3 (the RESP commands on protocol 3 log entries), one node at
HACACHE_TEST_PROTO_MAX=2: MSET, MULTI/EXEC, GETDEL, SET XX|GET|KEEPTTL|EXAT, EXPIRE, PERSIST
are refused with the rolling-upgrade error and change nothing, under a protocol 3 leader (on it,
on a protocol 3 follower, on the old node) and under the old node as leader; plain SET / GET /
INCR / DEL / SETEX / MGET work and replicate; once the old node restarts as the new build, the
commands work through every node and replicate everywhere (equal digests).
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402
import test_cluster_rolling as R  # noqa: E402
import test_resp as TR  # noqa: E402
import test_resp_commands as RC  # noqa: E402


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


class _MixedRespCluster(TR.RespCluster):
    """RespCluster where the nodes whose index is in `old` speak at most protocol 2 (the build
    before the protocol 3 RESP commands)."""

    def __init__(self, n, old, **kw):
        self.old = set(old)
        TR.RespCluster.__init__(self, n, **kw)

    def env(self, i):
        e = TR.RespCluster.env(self, i)
        if i in self.old:
            e["HACACHE_TEST_PROTO_MAX"] = "2"
        return e


def _refused_unchanged(c, where):
    """The protocol 3 commands on connection c are refused with the rolling-upgrade error and
    change nothing; the plain ones work. `where` names the connection."""
    up = RC.UPGRADE_ERR
    p = "%s:" % where
    H.check_eq(c.cmd("SET", p + "k", "v"), "OK", "%s plain SET" % where)
    H.check_eq(c.cmd("MSET", p + "a", "1", p + "b", "2"), TR.RespError(up), "%s MSET" % where)
    H.check_eq(RC.pipe_on(c, ("MULTI",), ("SET", p + "mx", "1"), ("INCR", p + "mn"), ("EXEC",)),
               ["OK", "QUEUED", "QUEUED", TR.RespError(up)], "%s MULTI/EXEC" % where)
    H.check_eq(RC.pipe_on(c, ("MULTI",), ("GET", p + "k"), ("EXEC",)),
               ["OK", "QUEUED", TR.RespError(up)], "%s MULTI/EXEC of a read" % where)
    H.check_eq(RC.pipe_on(c, ("MULTI",), ("EXEC",)), ["OK", []],
               "%s an empty MULTI/EXEC (no log entry)" % where)
    for args in (("GETDEL", p + "k"), ("SET", p + "k", "w", "XX"), ("SET", p + "k", "w", "GET"),
                 ("SET", p + "k", "w", "KEEPTTL"), ("SET", p + "k", "w", "NX", "GET"),
                 ("SET", p + "k", "w", "EXAT", str(int(time.time()) + 100)),
                 ("EXPIRE", p + "k", "100"), ("PEXPIREAT", p + "k", "4102444800000"),
                 ("PERSIST", p + "k")):
        H.check_eq(c.cmd(*args), TR.RespError(up), "%s %s" % (where, " ".join(args)))
    H.check_eq(c.cmd("MGET", p + "k", p + "a", p + "b", p + "mx", p + "mn"),
               [b"v", None, None, None, None], "%s: the refused commands changed nothing" % where)
    H.check_eq(c.cmd("TTL", p + "k"), -1, "%s: no expiry was set" % where)
    # the plain commands
    H.check_eq(c.cmd("INCRBY", p + "n", "5"), 5, "%s INCRBY" % where)
    H.check_eq(c.cmd("INCR", p + "n"), 6, "%s INCR" % where)
    H.check_eq(c.cmd("SET", p + "e", "x", "EX", "100", "NX"), "OK", "%s SET EX NX" % where)
    H.check_eq(c.cmd("SETEX", p + "s", "100", "y"), "OK", "%s SETEX" % where)
    H.check_eq(c.cmd("SET", p + "gone", "z"), "OK", "%s SET" % where)
    H.check_eq(c.cmd("DEL", p + "gone", p + "nothing"), 1, "%s DEL" % where)
    H.check_eq(c.cmd("MGET", p + "k", p + "n", p + "e", p + "s", p + "gone"),
               [b"v", b"6", b"x", b"y", None], "%s MGET" % where)
    # not pinned: a one-pair MSET is a plain PUT and EXPIRE 0 a plain DEL, which every version
    # applies; either accepted (and then replicated, checked below) or refused
    r = c.cmd("MSET", p + "one", "1")
    H.check(r in ("OK", TR.RespError(up)), "%s MSET of one pair: %r" % (where, r))
    H.log("%s: MSET of one pair in a mixed cluster: %r" % (where, r))
    return {p + "k": b"v", p + "n": b"6", p + "e": b"x", p + "s": b"y", p + "gone": None,
            p + "a": None, p + "mx": None, p + "mn": None,
            p + "one": b"1" if r == "OK" else None}


def _check_everywhere(cl, want, what):
    """Every node has the keys in `want` (cache default): a linearizable read through its RESP
    listener, then its local store (which may lag: waited for)."""
    for nd in cl.live():
        c = TR.client(nd)
        try:
            keys = sorted(want)
            vals = [want[k] for k in keys]
            H.check_eq(c.cmd("HC.READ", "linearizable"), "OK", "linearizable reads")
            H.check_eq(c.cmd("MGET", *keys), vals, "%s: linearizable MGET on %s" % (what, nd.name))
            H.check_eq(c.cmd("HC.READ", "local"), "OK", "local reads")
            H.wait_until(lambda: c.cmd("MGET", *keys) == vals, 10.0,
                         what="%s: local MGET on %s" % (what, nd.name))
        finally:
            c.close()
    digests = {nd.name: d for nd, d in cl.digests().items()}
    H.check(len(set(digests.values())) == 1, "%s: equal digests %r" % (what, digests))


def test_resp_protocol_3_commands_wait_for_the_rolling_upgrade():
    """One node speaks protocol 2 (HACACHE_TEST_PROTO_MAX=2): through the leader, a protocol 3
    follower and that node, MSET / MULTI-EXEC / GETDEL / SET XX|GET|KEEPTTL|EXAT / EXPIRE /
    PERSIST are refused with the rolling-upgrade error and change nothing, while plain SET /
    GET / INCR / DEL / SETEX / MGET work and replicate. Then that node is restarted without the
    variable (the rolling upgrade finished): the commands work and replicate to every node."""
    old = 2
    cl = _MixedRespCluster(3, [old], extra_env={
        "CACHE_SHUTDOWN_TIMEOUT_MS": str(R.SHUTDOWN_TIMEOUT_MS)})
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        H.check("protocol_max=2" in cl.nodes[old].stderr(), "the old node offers protocol 2")
        if ld is cl.nodes[old]:
            # the old build leading is covered by its followers' link check; here a protocol 3
            # leader must refuse on its own
            term = cl.statuses()[ld]["term"]
            c = H.Client(ld.port, timeout=10)
            try:
                st, _, body = c.post("/v1/admin/leader/transfer?to=127.0.0.1:%d" %
                                     cl.peer_ports[0])
            finally:
                c.close()
            H.check_eq(st, 200, "leadership moved off the old node (%r)" % body[:200])
            ld = cl.wait_leader(10.0, exclude_term=term)
            H.check(ld is cl.nodes[0], "node 0 leads")
            H.log("the old node led first: leadership moved to node 0")
        new_f = next(x for x in cl.live() if x is not ld and x.index != old)
        want = {}
        for nd, where in ((ld, "leader"), (new_f, "protocol 3 follower"),
                          (cl.nodes[old], "protocol 2 follower")):
            c = TR.client(nd)
            try:
                want.update(_refused_unchanged(c, where))
            finally:
                c.close()
        _check_everywhere(cl, want, "mixed versions")

        # the old build leading: the new nodes refuse too (their link to it speaks 2)
        term = cl.statuses()[ld]["term"]
        c = H.Client(ld.port, timeout=10)
        try:
            st, _, body = c.post("/v1/admin/leader/transfer?to=127.0.0.1:%d" %
                                 cl.peer_ports[old])
        finally:
            c.close()
        H.check_eq(st, 200, "leadership moved to the old node (%r)" % body[:200])
        ld = cl.wait_leader(10.0, exclude_term=term)
        H.check(ld is cl.nodes[old], "the old node leads")
        for x in cl.live():
            if x is ld:
                continue
            p = "ol%d:" % x.index
            c = TR.client(x)
            try:
                H.check_eq(c.cmd("MSET", p + "a", "1", p + "b", "2"), TR.RespError(RC.UPGRADE_ERR),
                           "%s under the old leader: MSET" % x.name)
                H.check_eq(RC.pipe_on(c, ("MULTI",), ("SET", p + "t", "1"), ("EXEC",)),
                           ["OK", "QUEUED", TR.RespError(RC.UPGRADE_ERR)],
                           "%s under the old leader: MULTI/EXEC" % x.name)
                H.check_eq(c.cmd("SET", p + "k", "v"), "OK", "%s under the old leader: SET"
                           % x.name)
                H.check_eq(c.cmd("GETDEL", p + "k"), TR.RespError(RC.UPGRADE_ERR),
                           "%s under the old leader: GETDEL" % x.name)
            finally:
                c.close()
            want.update({p + "a": None, p + "b": None, p + "t": None, p + "k": b"v"})
        _check_everywhere(cl, want, "under the old leader")
        H.log("mixed versions: refusals and plain commands checked under a protocol 3 leader "
              "and under the protocol 2 one")

        # the rolling upgrade finishes: the old node (leading) hands over and restarts as the
        # new build, same data dir
        cl.nodes[old].stop_ok(10.0)
        cl.old.discard(old)
        nd = cl.start_node(old, wait=False)
        nd.wait_ready(20.0)
        cl.wait_ready(20.0)
        ld = cl.wait_leader(15.0)
        H.check("protocol_max=3" in nd.stderr(), "the restarted node offers protocol 3")
        c = TR.client(ld)
        try:
            H.wait_until(lambda: c.cmd("MSET", "probe", "1", "probe2", "2") == "OK", 15.0,
                         what="the leader accepts MSET once every link speaks protocol 3")
        finally:
            c.close()
        want.update({"probe": b"1", "probe2": b"2"})
        for i, x in enumerate(cl.live()):
            role = "leader" if x is ld else "follower"
            where = "%s %s after the upgrade" % (role, x.name)
            p = "up%d:" % i
            c = TR.client(x)
            try:
                H.check_eq(c.cmd("MSET", p + "a", "1", p + "b", "2"), "OK", "%s MSET" % where)
                H.check_eq(RC.pipe_on(c, ("MULTI",), ("SET", p + "t", "x"), ("INCR", p + "n"),
                                      ("GETDEL", p + "a"), ("SET", p + "b", "3", "XX", "GET"),
                                      ("EXPIRE", p + "t", "100"), ("EXEC",)),
                           ["OK"] + ["QUEUED"] * 5 + [["OK", 1, b"1", b"2", 1]],
                           "%s MULTI/EXEC" % where)
                H.check_eq(c.cmd("SET", p + "c", "y", "XX"), None, "%s SET XX of an absent key"
                           % where)
                H.check_eq(c.cmd("SET", p + "t", "z", "XX", "KEEPTTL", "GET"), b"x",
                           "%s SET XX KEEPTTL GET" % where)
                ttl = c.cmd("TTL", p + "t")
                H.check(isinstance(ttl, int) and 95 <= ttl <= 100, "%s TTL %r" % (where, ttl))
                H.check_eq(c.cmd("GETDEL", p + "n"), b"1", "%s GETDEL" % where)
            finally:
                c.close()
            want.update({p + "a": None, p + "b": b"3", p + "t": b"z", p + "n": None,
                         p + "c": None})
        _check_everywhere(cl, want, "after the upgrade")
        H.log("after the upgrade: MSET, MULTI/EXEC, GETDEL, SET XX through %s, replicated to "
              "every node" % ", ".join(x.name for x in cl.live()))
        for x in cl.live():
            x.stop_ok(10.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
