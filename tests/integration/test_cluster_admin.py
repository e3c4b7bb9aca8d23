"""Cluster admin calls and cache settings over HTTP (issue 4; SPEC §5).

- POST /v1/admin/leader/transfer on the leader with ?to=<follower>: 200 once leadership moved,
  every node agrees on the new leader in a higher term; without ?to: the most up-to-date
  follower; on a follower: 409 not_leader naming the leader; ?to=<unknown node>: 400.
- PUT /v1/caches/{cache}?policy=serve_stale&max_stale_ms=..&default_ttl_ms=..&max_memory=..:
  replicated like a write, so every node lists the same settings; bad values get 400.
- /v1/status peers carry clock_offset_ms once clocks were compared.
- POST /v1/admin/members/remove?node= takes a follower out (200 once committed; /v1/status
  members shows two voters, committed), POST /v1/admin/members/add?node= puts it back as a
  learner that the leader promotes once caught up (three voters again); errors: on a follower
  409 not_leader, remove of a non-member 404, add of a node not in HA_HOSTS 400.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402


def _req(node, method, path, body=None):
    c = H.Client(node.port, timeout=10)
    try:
        st, _, raw = c.request(method, path, body=body)
        return st, H.jbody(raw) if raw else None
    finally:
        c.close()


def test_leader_transfer():
    cl = C.Cluster(3)
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        term0 = cl.statuses()[ld]["term"]
        fs = [x for x in cl.live() if x is not ld]
        target = "127.0.0.1:%d" % cl.peer_ports[fs[0].index]
        st, obj = _req(fs[1], "POST", "/v1/admin/leader/transfer")
        H.check_eq(st, 409, "transfer asked on a follower")
        H.check_eq(obj.get("code"), "not_leader", "error code")
        H.check("127.0.0.1:%d" % cl.peer_ports[ld.index] in obj.get("error", ""),
                "the answer names the leader: %r" % obj)
        st, obj = _req(ld, "POST", "/v1/admin/leader/transfer?to=127.0.0.1:1")
        H.check_eq(st, 400, "transfer to a node that is no member")
        t0 = time.monotonic()
        st, obj = _req(ld, "POST", "/v1/admin/leader/transfer?to=%s" % target)
        dt = time.monotonic() - t0
        H.check_eq(st, 200, "transfer to %s" % target)
        H.check_eq(obj.get("leader"), target, "the answer names the new leader")
        H.log("leadership moved to the chosen follower in %.0f ms" % (dt * 1000))
        nl = cl.wait_leader(10.0, exclude_term=term0)
        H.check(nl is fs[0], "every node agrees on the new leader")
        # without a target: the most up-to-date follower
        term1 = cl.statuses()[nl]["term"]
        st, obj = _req(nl, "POST", "/v1/admin/leader/transfer")
        H.check_eq(st, 200, "transfer to any follower")
        nl2 = cl.wait_leader(10.0, exclude_term=term1)
        H.check(nl2 is not nl, "leadership moved again")
        st, _ = _req(nl2, "PUT", "/v1/caches/a/k?ack=quorum", body=b"v")
        H.check_eq(st, 200, "writes work after the transfers")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


def test_cache_settings_replicated_and_clock_in_status():
    cl = C.Cluster(3)
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        f = [x for x in cl.live() if x is not ld][0]
        for bad in ("policy=sometimes", "max_stale_ms=x", "max_memory=lots", "default_ttl=-1"):
            st, obj = _req(f, "PUT", "/v1/caches/jwks?%s" % bad)
            H.check_eq(st, 400, "bad setting %s" % bad)
        st, obj = _req(f, "PUT", "/v1/caches/jwks?policy=serve_stale&max_stale_ms=30000"
                                 "&default_ttl_ms=600000&max_memory=1MiB&ack=quorum")
        H.check_eq(st, 200, "declare jwks through a follower")
        H.check_eq(obj, {"configured": True}, "answer")
        want = {"max_memory": 1 << 20, "default_ttl_ms": 600000,
                "quorum_loss_policy": "serve_stale", "max_stale_ms": 30000}

        def everywhere():
            for nd in cl.live():
                st, obj = _req(nd, "GET", "/v1/caches")
                got = [x for x in (obj or {}).get("caches", []) if x["name"] == "jwks"]
                if st != 200 or not got or got[0]["settings"] != want:
                    return False
            return True
        C.wait_all(everywhere, 10.0, "settings on every node")
        # the default TTL applies to a write without ttl
        st, _ = _req(ld, "PUT", "/v1/caches/jwks/key1?ack=quorum", body=b"x")
        H.check_eq(st, 200, "write into the declared cache")

        def clocks():
            st, obj = _req(f, "GET", "/v1/status")
            return st == 200 and all(isinstance(p.get("clock_offset_ms"), int) and
                                     abs(p["clock_offset_ms"]) < 200 for p in obj["peers"])
        C.wait_all(clocks, 10.0, "clock offsets in /v1/status")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


def _members(nd):
    st, obj = _req(nd, "GET", "/v1/status")
    if st != 200:
        return None
    return (sorted((m["node"], m["role"]) for m in obj["members"]), obj["members_committed"])


def test_member_remove_and_add():
    cl = C.Cluster(3)
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        names = ["127.0.0.1:%d" % p for p in cl.peer_ports]
        f = [x for x in cl.live() if x is not ld][0]
        fname = names[f.index]
        H.check_eq(_members(ld), (sorted((n, "voter") for n in names), True), "three voters")
        st, obj = _req(f, "POST", "/v1/admin/members/remove?node=%s" % fname)
        H.check_eq((st, obj.get("code")), (409, "not_leader"), "remove asked on a follower")
        st, obj = _req(ld, "POST", "/v1/admin/members/remove?node=127.0.0.1:1")
        H.check_eq(st, 404, "remove of a non-member")
        st, obj = _req(ld, "POST", "/v1/admin/members/add?node=127.0.0.1:1")
        H.check_eq(st, 400, "add of a node not in HA_HOSTS")
        st, obj = _req(ld, "POST", "/v1/admin/members/remove?node=%s" % fname)
        H.check_eq((st, obj), (200, {"changed": True}), "remove a follower")
        two = (sorted((n, "voter") for n in names if n != fname), True)
        H.check_eq(_members(ld), two, "two voters on the leader")
        st, _ = _req(ld, "PUT", "/v1/caches/a/k1?ack=quorum", body=b"v")
        H.check_eq(st, 200, "writes with two voters")
        st, obj = _req(ld, "POST", "/v1/admin/members/add?node=%s" % fname)
        H.check_eq((st, obj), (200, {"changed": True}), "add it back")
        three = (sorted((n, "voter") for n in names), True)
        C.wait_all(lambda: _members(ld) == three, 10.0, "promoted again")
        C.wait_all(lambda: _members(f) == three, 10.0, "the re-added node knows it")
        st, _ = _req(ld, "PUT", "/v1/caches/a/k2?ack=quorum", body=b"w")
        H.check_eq(st, 200, "writes after the re-add")
        C.wait_all(lambda: _req(f, "GET", "/v1/caches/a/k2")[0] == 200, 10.0,
                   "the re-added node replicates")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
