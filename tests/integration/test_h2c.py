#!/usr/bin/env python3
"""HTTP/2 cleartext (h2c, prior knowledge) against a standalone hacached: h2load load runs
(GET, PUT, 404s, and an HTTP/1.1 run for comparison) with their results parsed and checked
against /metrics, and curl --http2-prior-knowledge round trips."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

check, check_eq, jbody, log = H.check, H.check_eq, H.jbody, H.log

R = "hacache_requests_total"


def h2load(args, timeout=90):
    """Runs h2load; returns (parsed dict, full output)."""
    exe = shutil.which("h2load")
    if not exe:
        raise AssertionError("h2load not installed (Debian package nghttp2-client)")
    p = subprocess.run([exe] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    res = {"rc": p.returncode, "protocol": None}
    m = re.search(r"Application protocol:\s*(\S+)", out)
    if m:
        res["protocol"] = m.group(1)
    m = re.search(r"requests:\s*(\d+) total,\s*(\d+) started,\s*(\d+) done,\s*(\d+) succeeded,"
                  r"\s*(\d+) failed,\s*(\d+) errored,\s*(\d+) timeout", out)
    if m:
        for k, v in zip(("total", "started", "done", "succeeded", "failed", "errored",
                         "timeout"), m.groups()):
            res[k] = int(v)
    m = re.search(r"status codes:\s*(\d+) 2xx,\s*(\d+) 3xx,\s*(\d+) 4xx,\s*(\d+) 5xx", out)
    if m:
        for k, v in zip(("2xx", "3xx", "4xx", "5xx"), m.groups()):
            res[k] = int(v)
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    if m:
        res["req_per_s"] = float(m.group(3))
    return res, out


def check_run(res, out, n, what, status_class="2xx", protocol="h2c"):
    ok = check("total" in res and status_class in res,
               "%s: could not parse h2load output:\n%s" % (what, out))
    if not ok:
        return False
    ok &= check_eq(res.get("protocol"), protocol, "%s: negotiated application protocol" % what)
    ok &= check_eq(res["total"], n, "%s: total requests" % what)
    ok &= check_eq(res[status_class], n, "%s: %s responses" % (what, status_class))
    ok &= check_eq(res["succeeded"], n, "%s: succeeded" % what)
    ok &= check_eq((res["failed"], res["errored"], res["timeout"]), (0, 0, 0),
                   "%s: (failed, errored, timeout)" % what)
    if not ok:
        log("h2load output:\n" + out)
    else:
        log("%s: %d requests, %s %s, %.0f req/s" % (what, n, res[status_class], status_class,
                                                 res.get("req_per_s", 0)))
    return ok


def metric_delta(m0, m1, **labels):
    return m1.sum(R, **labels) - m0.sum(R, **labels)


def test_h2load_get():
    n = H.Node(name="h2get", log_level="info")
    c = n.client()
    val = b"h2-value-" + bytes(range(256))
    st, hd, raw = c.put("/v1/caches/c/k", val)
    check_eq(st, 200, "preload PUT over HTTP/1.1")
    c.close()
    m0 = n.metrics()
    res, out = h2load(["-n", "2000", "-c", "4", "-m", "8", n.url("/v1/caches/c/k")])
    check_run(res, out, 2000, "h2load GET")
    m1 = n.metrics()
    check_eq(m1.get(R, 0, op="get", ack="", result="ok") - m0.get(R, 0, op="get", ack="",
                                                                  result="ok"),
             2000, "delta requests_total{op=get,ack=\"\",result=ok}")
    check_eq(m1.per_cache("hacache_cache_hits_total", "c") -
             m0.per_cache("hacache_cache_hits_total", "c"), 2000, "delta cache hits")
    # traffic reported by h2load includes the body: at least 2000 * len(val) data bytes
    m = re.search(r"traffic:.*?(\d+) data", out)
    if m:
        check(int(m.group(1)) >= 2000 * len(val), "h2load data bytes %s < %d" % (
            m.group(1), 2000 * len(val)))
    n.stop_ok()


def test_h2load_get_not_found():
    n = H.Node(name="h2404", log_level="info")
    res, out = h2load(["-n", "500", "-c", "2", "-m", "8", n.url("/v1/caches/c/absent")])
    if check("4xx" in res, "could not parse h2load output:\n%s" % out):
        check_eq(res.get("protocol"), "h2c", "protocol")
        check_eq((res.get("4xx"), res.get("2xx"), res.get("5xx")), (500, 0, 0),
                 "h2load GET absent: (4xx, 2xx, 5xx)")
        check_eq((res.get("errored"), res.get("timeout")), (0, 0), "(errored, timeout)")
    n.stop_ok()


def test_h2load_put():
    n = H.Node(name="h2put", log_level="info")
    fd, path = tempfile.mkstemp(prefix="hacache-h2put-")
    data = bytes((i * 31 + 7) & 0xFF for i in range(4096))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        m0 = n.metrics()
        res, out = h2load(["-n", "1000", "-c", "2", "-m", "4", "-d", path, "-H", ":method: PUT",
                           n.url("/v1/caches/c/put-key")])
        check_run(res, out, 1000, "h2load PUT")
        m1 = n.metrics()
        check_eq(metric_delta(m0, m1, op="put", ack="quorum", result="ok"), 1000,
                 "delta requests_total{op=put,ack=quorum,result=ok} (h2load used PUT)")
        c = n.client()
        st, hd, raw = c.get("/v1/caches/c/put-key")
        check(st == 200 and raw == data, "GET after h2load PUT: %d, %d bytes, equal=%s" % (
            st, len(raw), raw == data))
        v = hd.get("x-hacache-version")
        check(v is not None and v.isdigit() and int(v) >= 1000,
              "version after 1000 PUTs: %r" % v)

        # PUT with ack=none and a TTL over h2
        res, out = h2load(["-n", "400", "-c", "2", "-m", "8", "-d", path, "-H", ":method: PUT",
                           n.url("/v1/caches/c/none-key?ack=none&ttl_ms=60000")])
        check_run(res, out, 400, "h2load PUT ack=none")
        m2 = n.metrics()
        check_eq(metric_delta(m1, m2, op="put", ack="none", result="ok"), 400,
                 "delta requests_total{op=put,ack=none,result=ok}")
        H.wait_until(lambda: c.get("/v1/caches/c/none-key")[0] == 200, 5.0,
                     what="ack=none key visible")
        c.close()
    finally:
        os.unlink(path)
    n.stop_ok()


def test_h2load_http1_keepalive():
    n = H.Node(name="h1load", log_level="info")
    c = n.client()
    c.put("/v1/caches/c/k", b"v" * 100)
    c.close()
    res, out = h2load(["--h1", "-n", "1000", "-c", "2", "-m", "1", n.url("/v1/caches/c/k")])
    check_run(res, out, 1000, "h2load --h1 GET", protocol="http/1.1")
    n.stop_ok()


def curl_has_http2():
    exe = shutil.which("curl")
    if not exe:
        return False, "curl not installed"
    out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE).stdout.decode()
    feats = [ln for ln in out.splitlines() if ln.startswith("Features:")]
    if not feats or "HTTP2" not in feats[0].split():
        return False, "curl lacks HTTP2 (Features: %s)" % (feats[0] if feats else "?")
    return True, exe


def curl(exe, args, timeout=60):
    """Runs curl with -w appending "\\n<http_version> <code>"; returns (version, code, body)."""
    fd, outp = tempfile.mkstemp(prefix="hacache-curl-")
    os.close(fd)
    try:
        p = subprocess.run([exe, "-sS", "--http2-prior-knowledge", "-o", outp, "-w",
                            "%{http_version} %{http_code}"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        with open(outp, "rb") as f:
            body = f.read()
        w = p.stdout.decode().split()
        if p.returncode != 0 or len(w) != 2:
            return None, None, p.stderr.decode()[:300]
        return w[0], int(w[1]), body
    finally:
        os.unlink(outp)


def test_curl_http2_prior_knowledge():
    ok, exe = curl_has_http2()
    if not ok:
        raise H.Skip(exe + ": curl --http2-prior-knowledge sub-checks NOT run")
    n = H.Node(name="curl", log_level="info")
    fd, path = tempfile.mkstemp(prefix="hacache-curl-data-")
    data = bytes(range(256)) * 64
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        key = "/v1/caches/c/cu%00rl%2Fkey"
        ver, code, body = curl(exe, ["-X", "PUT", "--data-binary", "@" + path, n.url(key)])
        check_eq((ver, code), ("2", 200), "curl h2 PUT (http_version, status)")
        obj = jbody(body) if isinstance(body, bytes) else None
        check(isinstance(obj, dict) and isinstance(obj.get("version"), int),
              "curl h2 PUT body %r" % (body[:200],))
        ver, code, body = curl(exe, [n.url(key)])
        check_eq((ver, code), ("2", 200), "curl h2 GET (http_version, status)")
        check(body == data, "curl h2 GET body differs (%d bytes)" % len(body or b""))
        ver, code, body = curl(exe, [n.url("/v1/caches/c/absent")])
        check_eq((ver, code), ("2", 404), "curl h2 GET absent")
        obj = jbody(body) if isinstance(body, bytes) else None
        check(isinstance(obj, dict) and obj.get("code") == "not_found",
              "curl h2 404 body %r" % (body[:200],))
        ver, code, body = curl(exe, ["-X", "POST", n.url("/v1/caches/c/ctr/incr?by=41")])
        obj = jbody(body) if isinstance(body, bytes) else None
        check((ver, code) == ("2", 200) and isinstance(obj, dict) and obj.get("value") == 41,
              "curl h2 incr: %r %r %r" % (ver, code, body[:200]))
        ver, code, body = curl(exe, ["-X", "DELETE", n.url(key)])
        obj = jbody(body) if isinstance(body, bytes) else None
        check((ver, code) == ("2", 200) and obj == {"deleted": True},
              "curl h2 DELETE: %r %r %r" % (ver, code, body[:200]))
        ver, code, body = curl(exe, [n.url("/metrics")])
        check_eq((ver, code), ("2", 200), "curl h2 GET /metrics")
        if code == 200:
            m = H.parse_prometheus(body.decode())
            check_eq(m.get("hacache_up"), 1, "hacache_up over h2")
        ver, code, body = curl(exe, [n.url("/v1/status")])
        obj = jbody(body) if isinstance(body, bytes) else None
        check((ver, code) == ("2", 200) and isinstance(obj, dict) and
              obj.get("role") == "standalone", "curl h2 /v1/status: %r %r" % (code, body[:200]))

        ver, code, body = curl(exe, ["-X", "PUT", "--data-binary", "x",
                                     n.url("/v1/caches/c/k?ack=bogus")])
        check_eq((ver, code), ("2", 400), "curl h2 PUT ack=bogus")
        ver, code, body = curl(exe, [n.url("/healthz")])
        check_eq((ver, code), ("2", 200), "curl h2 /healthz after errors")
    finally:
        os.unlink(path)
    n.stop_ok()


def test_h2_value_too_large():
    """A body over CACHE_MAX_VALUE_SIZE over HTTP/2 is refused before it is buffered and never
    stored. h2o 2.2.5 (Debian's libh2o) answers it with RST_STREAM(REFUSED_STREAM) instead of a
    413 response (HTTP/1.1 gets the 413); the README documents this. The check is that the
    request fails, nothing is stored, and the node keeps serving HTTP/2."""
    ok, exe = curl_has_http2()
    if not ok:
        raise H.Skip(exe + ": h2 oversize sub-check NOT run")
    n = H.Node(name="h2big", log_level="info")
    fd, big = tempfile.mkstemp(prefix="hacache-curl-big-")
    with os.fdopen(fd, "wb") as f:
        f.write(b"\x00" * (64 << 20))
    try:
        rss_before = n.rss_kib()
        ver, code, body = curl(exe, ["--retry", "0", "-X", "PUT", "--data-binary", "@" + big,
                                     n.url("/v1/caches/c/big")])
        check(code in (None, 413), "curl h2 PUT of 64 MiB: refused (413 or stream reset), got "
              "%r (curl said %r)" % (code, body[:200]))
        rss_after = n.rss_kib()
        # h2o reads what HTTP/2 flow control lets the client send (its 16 MiB stream window)
        # before it resets the stream; the whole 64 MiB must never be held
        check(rss_after - rss_before < 40 * 1024, "the 64 MiB body was not buffered: RSS "
              "grew by %d KiB" % (rss_after - rss_before))
    finally:
        os.unlink(big)
    c = n.client()
    st, hd, raw = c.get("/v1/caches/c/big")
    check_eq(st, 404, "rejected value absent")
    c.close()
    ver, code, body = curl(exe, [n.url("/healthz")])
    check_eq((ver, code), ("2", 200), "curl h2 /healthz after the oversized request")
    n.stop_ok()


def test_h2_auth():
    ok, exe = curl_has_http2()
    if not ok:
        raise H.Skip(exe + ": h2 auth sub-checks NOT run")
    tok = "h2-token-0123456789abcdefghij"
    n = H.Node(name="h2auth", log_level="info", env={"CACHE_API_TOKEN": tok})
    ver, code, body = curl(exe, [n.url("/v1/caches/c/k")])
    check_eq((ver, code), ("2", 401), "curl h2 GET without token")
    ver, code, body = curl(exe, ["-H", "Authorization: Bearer " + tok, "-X", "PUT",
                                 "--data-binary", "v", n.url("/v1/caches/c/k")])
    check_eq((ver, code), ("2", 200), "curl h2 PUT with token")
    res, out = h2load(["-n", "200", "-c", "2", "-m", "4", "-H", "Authorization: Bearer " + tok,
                       n.url("/v1/caches/c/k")])
    check_run(res, out, 200, "h2load GET with token")
    res, out = h2load(["-n", "100", "-c", "1", "-m", "4", n.url("/v1/caches/c/k")])
    if check("4xx" in res, "could not parse h2load output:\n%s" % out):
        check_eq(res.get("4xx"), 100, "h2load GET without token: 4xx count")
    n.stop_ok()


if __name__ == "__main__":
    H.run(globals())
