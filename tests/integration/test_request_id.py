"""Idempotent retries over HTTP (SPEC §3 "Retried writes carrying the same request id are
applied once"): a write carrying X-Hacache-Request-Id that is sent again with the same id gets
the first answer and is applied once, standalone and in a 3-node cluster (through the leader and
through a follower, which forwards the id to the leader). A malformed id is a 400.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402



def _new_rid():
    return os.urandom(16).hex()


def _req(node, method, path, rid=None, body=b""):
    c = H.Client(node.port, timeout=10)
    try:
        hdr = {"X-Hacache-Request-Id": rid} if rid else {}
        return c.request(method, path, body=body, headers=hdr)
    finally:
        c.close()


def _incr_value(resp):
    status, _, body = resp
    H.check_eq(status, 200, "incr status (body %r)" % body)
    return H.jbody(body).get("value") if status == 200 else None


def _retried_incr(first, second, reader, cache):
    """INCR through `first` with id A, retried through `second` with id A: same answer, applied
    once; a new id B increments again."""
    path = "/v1/caches/%s/ctr/incr?by=5" % cache
    rid_a, rid_b = _new_rid(), _new_rid().upper()  # hex digits in either case
    v1 = _incr_value(_req(first, "POST", path, rid_a))
    v2 = _incr_value(_req(second, "POST", path, rid_a))
    H.check_eq(v1, 5, "first incr")
    H.check_eq(v2, 5, "retried incr answers the first result")
    st, _, body = _req(reader, "GET", "/v1/caches/%s/ctr?consistency=linearizable" % cache)
    H.check_eq((st, body), (200, b"5"), "counter incremented once")
    v3 = _incr_value(_req(second, "POST", path, rid_b))
    H.check_eq(v3, 10, "a new request id is a new write")


def _retried_put_and_del(node, cache):
    rid = _new_rid()
    st, _, b1 = _req(node, "PUT", "/v1/caches/%s/k" % cache, rid, b"one")
    H.check_eq(st, 200, "put")
    # the same id with another body is the same request: the first outcome, nothing applied
    st, _, b2 = _req(node, "PUT", "/v1/caches/%s/k" % cache, rid, b"two")
    H.check_eq((st, b2), (200, b1), "retried put answers the first version")
    st, _, body = _req(node, "GET", "/v1/caches/%s/k" % cache)
    H.check_eq(body, b"one", "retried put not applied again")
    rid = _new_rid()
    H.check_eq(_req(node, "DELETE", "/v1/caches/%s/k" % cache, rid)[0], 200, "delete")
    H.check_eq(_req(node, "DELETE", "/v1/caches/%s/k" % cache, rid)[0], 200,
               "retried delete answers the first outcome (not 404)")


def test_standalone():
    node = H.Node()
    _retried_incr(node, node, node, "s")
    _retried_put_and_del(node, "s")
    rid = _new_rid()
    for bad in ("xyz", rid[:-1], rid + "0", "g" * 32, "0x" + rid[2:], ""):
        resp = _req(node, "POST", "/v1/caches/s/ctr/incr", bad or " ")
        H.check_error(resp, 400, "bad_request", "malformed request id %r" % bad)
    H.check_eq(_req(node, "GET", "/v1/caches/s/ctr")[2], b"10", "bad ids applied nothing")
    node.stop_ok()


def test_cluster():
    cl = C.Cluster(3)
    try:
        leader = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        f1, f2 = [x for x in cl.nodes if x is not leader]
        # via a follower first, retried via the leader, and the other way round
        _retried_incr(f1, leader, f2, "c1")
        _retried_incr(leader, f2, f1, "c2")
        _retried_incr(f1, f1, leader, "c3")
        _retried_put_and_del(f2, "c4")
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
