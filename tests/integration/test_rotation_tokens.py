"""Credential rotation without restart (issue 5), peer tokens (CACHE_AUTH_TOKEN_FILE: the first
line is sent, every line is accepted), on a 3-node mTLS cluster under ack=quorum writes through
every node (zero failed writes):

  1. every node's file becomes "old, new" (the new token is accepted everywhere);
  2. every node's file becomes "new, old" (every node proves the new token);
  3. every node's file becomes "new" (the old token is no longer accepted).

After each step every node reloaded (one info line, hacache_tls_reloads_total{result="success"})
and every peer link was re-established, within the documented bound. Then one follower is left
with only the old token: the others no longer accept it, so its links are closed and its new
attempts refused, with log lines that say so; writes through the other two keep working.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import test_rotation as R  # noqa: E402

OLD = b"old-token-0123456789abcdef0123456789"
NEW = b"new-token-fedcba9876543210fedcba9876"


def test_token_rotation_two_steps_and_refusal():
    pki = R.Pki(3, tokens=OLD + b"\n")
    cl = R.start_cluster(pki, tokens=True)
    try:
        w = R.Writers(cl.live())
        w.wait_progress()
        steps = [("accept old+new", OLD + b"\n" + NEW + b"\n"),
                 ("send new, accept old", NEW + b"\n" + OLD + b"\n"),
                 ("new only", NEW + b"\n")]
        for n, (what, content) in enumerate(steps, 1):
            before = R.snapshot(cl)
            t0 = time.monotonic()
            for i in range(cl.n):
                pki.secrets[i].swap({"token": content})
            H.wait_until(lambda: all(
                R.metric_sum(nd, "hacache_tls_reloads_total", result="success") >= n
                for nd in cl.live()), R.PICKUP_BOUND_S + 5, what="%s loaded everywhere" % what)
            H.log("%s: loaded everywhere after %.2fs" % (what, time.monotonic() - t0))
            took = R.wait_replaced(cl, before, t0, what)
            H.check(took < R.REPLACE_BOUND_S, "%s: links replaced within %.0fs (%.2fs)" % (
                what, R.REPLACE_BOUND_S, took))
            w.wait_progress()
        for nd in cl.nodes:
            err = nd.stderr()
            H.check_eq(err.count("peer tokens reloaded"), 3, "%s: one line per step" % nd.name)
            H.check("peer link down" not in err, "%s: no link went down" % nd.name)
            H.check_eq(R.metric_sum(nd, "hacache_tls_reloads_total", result="error"), 0,
                       "%s: nothing rejected" % nd.name)

        # a node left with only the old token is refused
        leader = cl.leader()
        lone = [nd for nd in cl.nodes if nd is not leader][-1]
        others = [nd for nd in cl.nodes if nd is not lone]
        lone_name = "127.0.0.1:%d" % cl.peer_ports[lone.index]
        w.stop_one(lone.name)
        t0 = time.monotonic()
        pki.secrets[lone.index].swap({"token": OLD + b"\n"})

        def isolated():
            for nd in others:
                st = R.status(nd)
                if any(p["node"] == lone_name and p["connected"] for p in st["peers"]):
                    return False
            return "wrong token" in "".join(nd.stderr() for nd in others)
        H.wait_until(isolated, 15, what="the node with only the old token is refused")
        H.log("old-token-only node cut off and refused after %.2fs" % (time.monotonic() - t0))
        H.check("no longer authorized" in lone.stderr(),
                "the lone node logs that its links are no longer authorized")
        H.wait_until(lambda: any("peer link refused" in ln and "wrong token" in ln
                                 for nd in others for ln in nd.stderr().splitlines()),
                     10, what="the others log the refusal with its reason")
        for nd in cl.nodes:
            for ln in nd.stderr().splitlines():
                if "peer link refused" in ln or "no longer" in ln:
                    H.log("  %s: %s" % (nd.name, ln[ln.find("msg="):][:200]))
                    break
        w.wait_progress()
        w.report_and_check("token rotation")
    finally:
        R.stop_cluster(cl, pki)


if __name__ == "__main__":
    H.run(globals())
