"""Credential rotation without restart (issue 5), CA rotation in the three documented steps,
across a 3-node mTLS cluster under ack=quorum writes through every node (zero failed writes):

  1. every node's CA bundle becomes old CA + new CA (certificates unchanged);
  2. every node gets a leaf signed by the new CA;
  3. the old CA is removed from every bundle.

Each step is installed Kubernetes-style (..data swap) on every node; before the next step the
test waits until every node loaded it and every peer link was re-established with the current
credentials. After step 3, a node still presenting a leaf of the old CA would be refused: the
test checks that with a certificate that verifies only against the old CA.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import test_rotation as R  # noqa: E402


def _step(cl, pki, what, files_of):
    before = R.snapshot(cl)
    t0 = time.monotonic()
    for i in range(cl.n):
        pki.secrets[i].swap(files_of(i))
    H.wait_until(lambda: all(R.metric_sum(nd, "hacache_tls_reloads_total", result="success") >=
                             _step.n for nd in cl.live()), R.PICKUP_BOUND_S + 5,
                 what="%s loaded everywhere" % what)
    picked = time.monotonic() - t0
    took = R.wait_replaced(cl, before, t0, what)
    H.check(took < R.REPLACE_BOUND_S, "%s: links replaced within %.0fs (%.2fs)" % (
        what, R.REPLACE_BOUND_S, took))
    for nd in cl.live():
        H.check_eq(R.metric_sum(nd, "hacache_tls_reloads_total", result="error"), 0,
                   "%s: nothing rejected on %s" % (what, nd.name))
    H.log("%s: loaded everywhere after %.2fs" % (what, picked))
    _step.n += 1


def test_ca_rotation_three_steps_under_load():
    pki = R.Pki(3)
    cl = R.start_cluster(pki)
    try:
        ca2 = R.make_ca(pki.work, "ca2")
        bundle = R.read(pki.ca[0]) + R.read(ca2[0])
        w = R.Writers(cl.live())
        w.wait_progress()
        _step.n = 1
        _step(cl, pki, "step 1: bundle old+new CA", lambda i: {"ca.crt": bundle})
        w.wait_progress()
        leaves = [R.make_leaf(pki.work, "node%d-ca2" % i, ca2) for i in range(cl.n)]
        _step(cl, pki, "step 2: leaves of the new CA",
              lambda i: {"tls.crt": R.read(leaves[i][0]), "tls.key": R.read(leaves[i][1])})
        for i, nd in enumerate(cl.nodes):
            H.check_eq(R.tls_status(nd)["peer_server"]["serial"].lstrip("0"),
                       R.serial_of(leaves[i][0]), "%s serves the new leaf" % nd.name)
        w.wait_progress()
        _step(cl, pki, "step 3: old CA removed", lambda i: {"ca.crt": R.read(ca2[0])})
        w.wait_progress()
        w.report_and_check("CA rotation")
        for nd in cl.nodes:
            err = nd.stderr()
            H.check("peer link down" not in err, "%s: no link went down" % nd.name)
            H.check("peer link refused" not in err,
                    "%s: no link refused during the rotation" % nd.name)
        # a leaf of the old CA alone no longer validates against the new bundle: rejected
        stale = R.make_leaf(pki.work, "node0-stale", pki.ca)
        pki.secrets[0].swap({"tls.crt": R.read(stale[0]), "tls.key": R.read(stale[1])})
        nd = cl.nodes[0]
        H.wait_until(lambda: R.metric_sum(nd, "hacache_tls_reloads_total", result="error") >= 1,
                     8, what="an old-CA leaf rejected after step 3")
        H.check("does not chain" in nd.stderr(), "the rejection names the chain problem")
    finally:
        R.stop_cluster(cl, pki)


if __name__ == "__main__":
    H.run(globals())
