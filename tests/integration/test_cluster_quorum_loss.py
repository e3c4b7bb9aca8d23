"""Quorum loss (SPEC §3, issue 4 acceptance 4): real hacached processes with mTLS on loopback,
CACHE_QUORUM_LOSS_GRACE_MS=1000, default election timeout.

(a) SIGSTOP of both followers of a 3-node cluster: within 2x the grace time the leader, cut off,
    answers 503 to a local GET of a written key and to a PUT, /readyz is 503 `no_quorum`,
    hacache_invalidations_total >= 1 and the cache holds no entry; a cache declared
    `serve_stale` (max_stale_ms 3000) keeps its entries and answers local reads marked
    `X-Hacache-Stale: 1` until 3 s after the quorum was lost, then 503; after SIGCONT the node
    catches up and serves the data written before (fresh, unmarked) plus a write made after
    recovery through another node;
(b) a leader change alone (SIGTERM of the leader, with handover) invalidates nothing.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

GRACE_MS = 1000
ENV = {"CACHE_QUORUM_LOSS_GRACE_MS": str(GRACE_MS)}
N_KEYS = 50
MAX_STALE_MS = 3000


def _req(node, method, path, body=None, timeout=5):
    c = H.Client(node.port, timeout=timeout)
    try:
        return c.request(method, path, body=body)  # (status, headers, body)
    finally:
        c.close()


def _readyz(node):
    st, _, raw = _req(node, "GET", "/readyz")
    return st, H.jbody(raw) if raw else None


def _entries(node, cache):
    m = node.metrics()
    v = m.get("hacache_cache_entries", cache=cache)
    return 0 if v is None else v


def test_sigstop_two_followers_invalidates_then_recovers():
    cl = C.Cluster(3, extra_env=ENV)
    stopped = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        fs = [x for x in cl.live() if x is not ld]
        for i in range(N_KEYS):
            st, _, _ = _req(ld, "PUT", "/v1/caches/q/k%d?ack=quorum" % i, body=b"v%d" % i)
            H.check_eq(st, 200, "quorum write k%d" % i)
        H.check_eq(_entries(ld, "q"), N_KEYS, "entries before the loss")
        st, _, _ = _req(ld, "PUT", "/v1/caches/s?policy=serve_stale&max_stale_ms=%d" % MAX_STALE_MS)
        H.check_eq(st, 200, "declare a serve_stale cache")
        for i in range(5):
            st, _, _ = _req(ld, "PUT", "/v1/caches/s/k%d?ack=quorum" % i, body=b"s%d" % i)
            H.check_eq(st, 200, "serve_stale write k%d" % i)
        H.check_eq(ld.metrics().get("hacache_invalidations_total"), 0, "no invalidation yet")

        for f in fs:
            f.signal(signal.SIGSTOP)
            stopped.append(f)
        t0 = time.monotonic()

        def invalidated():
            # (a PUT is tried after: before the trip it would wait for its ack)
            st_get, _, _ = _req(ld, "GET", "/v1/caches/q/k0")
            rz, obj = _readyz(ld)
            m = ld.metrics()
            inv = m.get("hacache_invalidations_total") or 0
            ent = m.get("hacache_cache_entries", cache="q") or 0
            return (st_get == 503 and rz == 503 and obj and
                    obj.get("reason") == "no_quorum" and inv >= 1 and ent == 0)

        H.wait_until(invalidated, 2.0 * GRACE_MS / 1000.0 + 0.5, interval=0.05,
                     what="the cut-off leader invalidates")
        dt = time.monotonic() - t0
        H.log("cut-off node invalidated %.2fs after SIGSTOP of the two others" % dt)
        H.check(dt <= 2.0 * GRACE_MS / 1000.0, "invalidation within 2x grace (%.2fs)" % dt)
        st, _, raw = _req(ld, "PUT", "/v1/caches/q/new?ack=quorum", body=b"x")
        H.check_eq(st, 503, "write while cut off")
        H.check_eq((H.jbody(raw) or {}).get("code"), "unavailable", "write error code")
        st, _, raw = _req(ld, "GET", "/v1/caches/q/k1")
        H.check_eq(st, 503, "local read while cut off")
        H.check_eq((H.jbody(raw) or {}).get("code"), "unavailable", "error code")
        st, hd, body = _req(ld, "GET", "/v1/caches/s/k1")
        H.check_eq((st, body, hd.get("x-hacache-stale")), (200, b"s1", "1"),
                   "serve_stale cache answers, marked stale")
        H.check_eq(_entries(ld, "s"), 5, "serve_stale entries kept")
        H.wait_until(lambda: _req(ld, "GET", "/v1/caches/s/k1")[0] == 503,
                     MAX_STALE_MS / 1000.0 + 2.0, interval=0.05,
                     what="stale reads stop after max_stale_ms")
        ds = time.monotonic() - t0
        H.log("serve_stale reads stopped %.2fs after the quorum was lost (max_stale 3 s)" % ds)
        H.check(MAX_STALE_MS / 1000.0 - 0.3 <= ds <= MAX_STALE_MS / 1000.0 + 1.0,
                "stale reads for about max_stale_ms (%.2fs)" % ds)
        H.check("quorum lost, invalidating" in ld.stderr(), "one warn line logged")
        H.check_eq(ld.stderr().count("quorum lost, invalidating"), 1, "logged once")

        for f in stopped:
            f.signal(signal.SIGCONT)
        stopped = []
        t1 = time.monotonic()
        cl.wait_ready(20.0)
        H.log("whole cluster ready again %.2fs after SIGCONT" % (time.monotonic() - t1))
        for f in fs:
            H.check_eq(f.metrics().get("hacache_invalidations_total"), 0,
                       "resumed node %s invalidated nothing" % f.name)
        # a write after recovery through another node
        def write_after():
            st, _, _ = _req(fs[0], "PUT", "/v1/caches/q/after?ack=quorum", body=b"late")
            return st == 200
        C.wait_all(write_after, 10.0, "a quorum write after recovery")

        def serves_current():
            st, _, body = _req(ld, "GET", "/v1/caches/q/after")
            return st == 200 and body == b"late"
        C.wait_all(serves_current, 10.0, "the recovered node sees the new write")
        bad = []
        for i in range(N_KEYS):
            st, _, body = _req(ld, "GET", "/v1/caches/q/k%d" % i)
            if st != 200 or body != b"v%d" % i:
                bad.append((i, st))
        H.check(not bad, "data written before served again: %r" % bad[:10])
        st, hd, body = _req(ld, "GET", "/v1/caches/s/k1")
        H.check_eq((st, body, hd.get("x-hacache-stale")), (200, b"s1", None),
                   "serve_stale cache fresh again after catch-up")
        H.check_eq(_entries(ld, "q"), N_KEYS + 1, "entries after catch-up")
        rz, _ = _readyz(ld)
        H.check_eq(rz, 200, "ready again")
        d = cl.digests()
        H.check_eq(len(set(d.values())), 1, "replicas converge")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        for f in stopped:
            try:
                f.signal(signal.SIGCONT)
            except Exception:
                pass
        cl.cleanup()


def test_leader_change_invalidates_nothing():
    cl = C.Cluster(3, extra_env=ENV)
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        term0 = cl.statuses()[ld]["term"]
        for i in range(10):
            st, _, _ = _req(ld, "PUT", "/v1/caches/h/k%d?ack=quorum" % i, body=b"v")
            H.check_eq(st, 200, "write k%d" % i)
        ld.signal(signal.SIGTERM)
        H.check_eq(ld.wait_exit(10.0), 0, "old leader exit status")
        rest = cl.live()
        cl.wait_leader(10.0, nodes=rest, exclude_term=term0 - 1)
        # well past the grace time
        time.sleep(3.0 * GRACE_MS / 1000.0)
        for nd in rest:
            m = nd.metrics()
            H.check_eq(m.get("hacache_invalidations_total"), 0, "no invalidation on %s" % nd.name)
            H.check_eq(_entries(nd, "h"), 10, "data kept on %s" % nd.name)
            H.check("quorum lost" not in nd.stderr(), "no quorum loss logged on %s" % nd.name)
            st, _, _ = _req(nd, "GET", "/v1/caches/h/k0")
            H.check_eq(st, 200, "local read on %s" % nd.name)
        for nd in rest:
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
