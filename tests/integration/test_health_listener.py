#!/usr/bin/env python3
"""The health listener (CACHE_HEALTH_ADDR): a second, plain-HTTP listener that serves only
GET /healthz, /readyz and /metrics, without a token, so that a sidecar keeps its data API on
loopback while the kubelet and Prometheus reach the pod IP (k8s/sidecar).

test_routes: the three paths answer on the health address without a token (HEAD too, other
methods 405), every other path is 404 there even with the token, a body over 1 KiB is refused;
the API on CACHE_HTTP_ADDR still wants its token for /metrics and /v1/*; /metrics on the health
address shows the health listener's gate (its fixed cap, outside CACHE_MAX_CLIENTS).

test_survives_api_floods: with CACHE_MAX_CLIENTS full of keep-alive API clients (new API
clients get 503 max_clients) and a flood of idle connections to the API port, the health
listener answers all three paths at once on new connections; a flood of idle connections and
more keep-alive clients than its cap on the health port itself still lets a new probe through.

test_shutdown: SIGTERM with idle keep-alive connections open on both listeners: exit 0 within
CACHE_SHUTDOWN_TIMEOUT_MS, the health port closed afterwards (no sanitizer report in the ASan
build). test_off_by_default and test_bad_addresses: no health gate without the knob; a bad
or clashing address fails fast with one line naming CACHE_HEALTH_ADDR, exit 2; a port taken by
another process stops the start with a line naming it.

Loopback only; every wait is a poll with a deadline."""

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log

TOKEN = "health-api-token-0123456789"
MAX_CLIENTS = 8
UNAUTH_MAX = 8
IDLE_FLOOD = 300
PROBE_BUDGET_S = 1.0  # a probe on a new connection during a flood answers within this


def start_node(name, extra=None):
    hp = H.free_port()
    env = {"CACHE_API_TOKEN": TOKEN, "CACHE_HEALTH_ADDR": "127.0.0.1:%d" % hp,
           "CACHE_MAX_CLIENTS": str(MAX_CLIENTS), "CACHE_UNAUTH_MAX": str(UNAUTH_MAX),
           "CACHE_UNAUTH_TIMEOUT_MS": "3000", "CACHE_SHUTDOWN_TIMEOUT_MS": "3000"}
    env.update(extra or {})
    nd = H.Node(env=env, name=name, log_level="info")
    nd.health_port = hp
    H.wait_until(lambda: probe(hp, "/healthz")[0] == 200, 10.0, what="the health listener")
    return nd


def probe(port, path, method="GET", token=None, body=None):
    """One request on a new connection: (status, headers, body, seconds)."""
    t0 = time.monotonic()
    c = H.Client(port, token=token, timeout=5)
    try:
        st, hd, b = c.request(method, path, body=body)
    finally:
        c.close()
    return st, hd, b, time.monotonic() - t0


def metrics_at(port, token=None):
    st, _, body, _ = probe(port, "/metrics", token=token)
    if st != 200:
        raise AssertionError("GET /metrics on port %d -> %d %r" % (port, st, body[:200]))
    return H.parse_prometheus(body.decode("utf-8"))


def is_closed(s):
    """True once the server closed s (EOF or reset)."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def open_idle(port, n):
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def test_routes():
    nd = start_node("routes")
    hp = nd.health_port
    try:
        for path in ("/healthz", "/readyz", "/metrics"):
            st, hd, body, _ = probe(hp, path)
            check_eq(st, 200, "GET %s on the health listener without a token" % path)
            st, _, _, _ = probe(hp, path, method="HEAD")
            check_eq(st, 200, "HEAD %s on the health listener" % path)
            st, hd, _, _ = probe(hp, path, method="POST")
            check_eq(st, 405, "POST %s on the health listener" % path)
        st, _, body, _ = probe(hp, "/metrics")
        check(b"hacache_up 1" in body, "metrics on the health listener: %r" % body[:200])
        for method, path in (("GET", "/v1/status"), ("GET", "/v1/caches"),
                             ("GET", "/v1/caches/c/k"), ("PUT", "/v1/caches/c/k"),
                             ("POST", "/v1/admin/tls/reload"), ("GET", "/"),
                             ("GET", "/healthz/x"), ("GET", "/metricsz")):
            st, hd, body, _ = probe(hp, path, method=method, token=TOKEN,
                                    body=b"v" if method == "PUT" else None)
            H.check_error((st, hd, body), 404, "not_found",
                          "%s %s on the health listener (token sent)" % (method, path))
        st, _, _, _ = probe(hp, "/v1/caches/c/k", method="PUT", body=b"x" * 4096)
        check_eq(st, 413, "a 4 KiB body on the health listener is refused before it is read")

        # the API keeps its token and its routes
        check_eq(probe(nd.port, "/metrics")[0], 401, "API /metrics without a token")
        check_eq(probe(nd.port, "/v1/status")[0], 401, "API /v1/status without a token")
        check_eq(probe(nd.port, "/v1/status", token=TOKEN)[0], 200, "API /v1/status with it")
        check_eq(probe(nd.port, "/v1/caches/c/k", method="PUT", token=TOKEN, body=b"v")[0], 200,
                 "API write with the token")
        check_eq(probe(nd.port, "/healthz")[0], 200, "API /healthz as before")

        m = metrics_at(hp)
        check_eq(m.get("hacache_connections_limit", listener="health", state="admitted"), 16,
                 "the health listener's fixed cap")
        check_eq(m.get("hacache_connections_limit", listener="health", state="pending"),
                 UNAUTH_MAX, "its pending pool is CACHE_UNAUTH_MAX")
        check_eq(m.get("hacache_connections_limit", listener="http", state="admitted"),
                 MAX_CLIENTS, "HTTP keeps all of CACHE_MAX_CLIENTS")
        check(m.get("hacache_requests_total", op="put", ack="quorum", result="ok", default=0) >= 1,
              "request counters are the API's")
        check("health listener listening" in nd.stderr() and
              "127.0.0.1:%d" % hp in nd.stderr(), "start logged with the address")
        nd.stop_ok(10.0)
    finally:
        nd.kill()


def test_survives_api_floods():
    nd = start_node("flood")
    hp = nd.health_port
    keep, idle, hidle, hkeep = [], [], [], []
    try:
        # CACHE_MAX_CLIENTS keep-alive API clients, each admitted by a request
        for _ in range(MAX_CLIENTS):
            c = H.Client(nd.port, token=TOKEN, timeout=5)
            check_eq(c.get("/v1/status")[0], 200, "an API client within CACHE_MAX_CLIENTS")
            keep.append(c)
        st, _, body, _ = probe(nd.port, "/metrics", token=TOKEN)
        check_eq(st, 503, "the API is full: /metrics there is refused")
        check(b"max_clients" in body, "with max_clients: %r" % body[:200])
        idle = open_idle(nd.port, IDLE_FLOOD)
        check_eq(len(idle), IDLE_FLOOD, "idle connections opened to the API port")
        worst = 0.0
        for round_ in range(3):
            for path in ("/healthz", "/readyz", "/metrics"):
                st, _, body, dt = probe(hp, path)
                worst = max(worst, dt)
                check_eq(st, 200, "%s on the health listener during the API flood" % path)
        check(worst < PROBE_BUDGET_S, "health probes during the flood took up to %.3fs" % worst)
        log("API flood (%d admitted, %d idle): slowest health probe %.1f ms" % (
            len(keep), len(idle), worst * 1000))
        m = metrics_at(hp)
        check(m.get("hacache_connections_refused_total", listener="http",
                    reason="unauth_full") >= IDLE_FLOOD - UNAUTH_MAX - 5,
              "the API's pending pool turned over")
        check_eq(m.get("hacache_connections_refused_total", listener="health",
                       reason="unauth_full"), 0, "nothing of that reached the health listener")

        # the health port itself: idle connections, and more keep-alive clients than its cap
        hidle = open_idle(hp, 100)
        for _ in range(20):
            c = H.Client(hp, timeout=5)
            st, hd, _ = c.get("/readyz")
            check_eq(st, 200, "keep-alive probe clients on the health port")
            hkeep.append((c, hd))
        closing = [hd for _, hd in hkeep if hd.get("connection") == "close"]
        check_eq(len(closing), 20 - 16, "past the cap of 16 a probe is answered, then closed")
        worst = 0.0
        for path in ("/healthz", "/readyz", "/metrics"):
            st, _, _, dt = probe(hp, path)
            worst = max(worst, dt)
            check_eq(st, 200, "%s on a new connection with the health port flooded" % path)
        check(worst < PROBE_BUDGET_S, "took up to %.3fs" % worst)
        H.wait_until(lambda: sum(1 for s in hidle if is_closed(s)) >= len(hidle) - UNAUTH_MAX,
                     10.0, what="idle health connections beyond CACHE_UNAUTH_MAX closed")
        close_all(idle)
        close_all(hidle)
        idle, hidle = [], []
        for c, _ in hkeep:
            c.close()
        hkeep = []
        for c in keep:
            c.close()
        keep = []
        # the API takes new clients again once the flood is gone
        H.wait_until(lambda: probe(nd.port, "/v1/status", token=TOKEN)[0] == 200, 10.0,
                      what="the API admits new clients after the flood")
        nd.stop_ok(10.0)
    finally:
        close_all(idle)
        close_all(hidle)
        for c, _ in hkeep:
            c.close()
        for c in keep:
            c.close()
        nd.kill()


def test_shutdown():
    nd = start_node("shutdown")
    hp = nd.health_port
    h = H.Client(hp, timeout=5)
    a = H.Client(nd.port, token=TOKEN, timeout=5)
    try:
        check_eq(h.get("/healthz")[0], 200, "a keep-alive probe client on the health port")
        check_eq(a.get("/v1/status")[0], 200, "a keep-alive API client")
        t0 = time.monotonic()
        nd.signal(signal.SIGTERM)
        rc = nd.wait_exit(10.0)
        dt = time.monotonic() - t0
        check_eq(rc, 0, "exit status after SIGTERM")
        check(dt < 3.0 + 1.0, "stopped in %.2fs (CACHE_SHUTDOWN_TIMEOUT_MS=3000)" % dt)
        log("SIGTERM with open connections on both listeners: exited in %.0f ms" % (dt * 1000))
        try:
            socket.create_connection(("127.0.0.1", hp), timeout=2).close()
            check(False, "the health port still accepts after exit")
        except OSError:
            pass
        nd.stop_ok(5.0)  # already exited: checks the sanitizer output and the exit code
        check("abandoning" not in nd.stderr(), "no connection abandoned by the drain")
    finally:
        h.close()
        a.close()
        nd.kill()


def test_off_by_default():
    nd = H.Node(env={"CACHE_API_TOKEN": TOKEN}, name="nohealth", log_level="info")
    try:
        m = nd.metrics(token=TOKEN)
        check(m.get("hacache_connections_limit", listener="health", state="admitted") is None,
              "no health gate without CACHE_HEALTH_ADDR")
        check("health=off" in nd.stderr(), "the start line says health=off")
        nd.stop_ok(10.0)
    finally:
        nd.kill()


def run_check(env):
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            full[k] = os.environ[k]
    full.update(env)
    return subprocess.run([H.binary(), "--check-config"], env=full, capture_output=True,
                          text=True, timeout=30)


def test_bad_addresses():
    for value, want in (("nonsense", "has no port"), ("127.0.0.1:0", "range"),
                        ("127.0.0.1:8080", "also CACHE_HTTP_ADDR's")):
        p = run_check({"CACHE_HEALTH_ADDR": value})
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        check_eq(p.returncode, 2, "--check-config with CACHE_HEALTH_ADDR=%s" % value)
        check(len(lines) == 1 and "CACHE_HEALTH_ADDR" in lines[0] and want in lines[0],
              "one line naming the variable (%s): %r" % (want, lines))
    p = run_check({"CACHE_HEALTH_ADDR": "0.0.0.0:8081"})
    check_eq(p.returncode, 0, "a wildcard health address needs no API token: %s" % p.stderr)

    # a port someone else holds: the start stops with a line naming the knob
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    try:
        nd = H.Node(env={"CACHE_HEALTH_ADDR": "127.0.0.1:%d" % taken}, name="taken",
                    log_level="info", start=False)
        nd.port = H.free_port()
        nd.extra_env["CACHE_HTTP_ADDR"] = "127.0.0.1:%d" % nd.port
        try:
            nd.start(10.0)
            check(False, "started although the health port is taken")
        except H.NodeStartError:
            pass
        check(nd.exit_code not in (None, 0), "exit status %r" % nd.exit_code)
        check("cannot listen on CACHE_HEALTH_ADDR" in nd.stderr(),
              "the log names the knob: %s" % nd.stderr_tail(5))
        check(not any(s in nd.stderr() for s in ("AddressSanitizer", "runtime error:")),
              "no sanitizer report")
    finally:
        holder.close()


if __name__ == "__main__":
    H.run(globals())
