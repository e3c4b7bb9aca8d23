"""test_digest.py: GET /v1/caches?digest=1 exposes each cache's content digest (what replica
comparison tests use): equal for equal contents, different after any change."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def digests(client):
    st, obj, _, raw = client.json("GET", "/v1/caches?digest=1")
    H.check_eq(st, 200, "GET /v1/caches?digest=1")
    return {c["name"]: c.get("digest") for c in obj["caches"]}


def fill(client):
    for k, v in ((b"a", b"1"), (b"b\x00", b"two"), (b"c/d", b"x" * 1000)):
        st, _, _ = client.put("/v1/caches/d/" + "".join("%%%02X" % x for x in k), v)
        H.check_eq(st, 200, "PUT")


def test_digest_equal_for_equal_contents_and_changes_otherwise():
    a, b = H.Node(name="dig-a"), H.Node(name="dig-b")
    ca, cb = a.client(), b.client()
    fill(ca)
    fill(cb)
    da, db = digests(ca), digests(cb)
    H.check(isinstance(da.get("d"), str) and len(da["d"]) == 64, "hex digest: %r" % da)
    H.check_eq(da, db, "same writes in the same order give the same digest")
    H.check("digest" not in str(ca.json("GET", "/v1/caches")[1]), "no digest unless asked")
    # same value rewritten: the version moves, so the digest must too
    cb.put("/v1/caches/d/a", b"1")
    H.check(digests(cb)["d"] != da["d"], "digest changes when a version changes")
    cb.delete("/v1/caches/d")
    H.check(digests(cb)["d"] != da["d"], "digest changes when the cache is cleared")
    ca.close()
    cb.close()
    a.stop_ok()
    b.stop_ok()


if __name__ == "__main__":
    H.run(globals())
