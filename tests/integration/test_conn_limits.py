#!/usr/bin/env python3
"""Connection floods (issue 13, acceptance 1) and the connection limits of SPEC section 2
(CACHE_MAX_CLIENTS, CACHE_UNAUTH_MAX, CACHE_UNAUTH_TIMEOUT_MS, CACHE_RESP_IDLE_TIMEOUT_MS).

test_floods_on_a_cluster_node: a 3-node cluster (mTLS, an API token, RESP on every node) whose
processes run under `ulimit -n` FLOOD_NOFILE (512 here; hacached cannot raise its soft limit
past that hard limit). Against the leader, one after the other, FLOOD_CONNECTIONS connections
are opened and held by a separate worker process:
  (a) idle, unauthenticated RESP connections,
  (b) idle HTTP connections (not a byte sent),
  (c) slow HTTP headers (a partial request, then nothing),
  (d) unauthenticated peer handshakes (raw TCP to the peer port, no TLS hello).
During each flood: GET /healthz answers on a new connection, a new HTTP client makes a quorum
write and reads it back, a new redis-cli authenticates and does SET/GET, and every node keeps
the same term and leader. After it: the refusals are counted in
hacache_connections_refused_total{listener,reason}, the log has at most a few "connection limit
reached" lines (rate-limited, not one per connection), and the connections the pool kept are
closed once CACHE_UNAUTH_TIMEOUT_MS passes (slowloris and idle handshakes are bounded in time).

test_max_clients_standalone: a single node with CACHE_MAX_CLIENTS=40: authenticated RESP clients
beyond RESP's share get -ERR max number of clients reached, while HTTP keeps its eighth; HTTP
connections beyond the limit get 503 max_clients but /healthz is still answered on them;
CACHE_RESP_IDLE_TIMEOUT_MS closes an idle authenticated client and keeps a busy one; an
unauthenticated RESP connection is closed after CACHE_UNAUTH_TIMEOUT_MS.

The same script runs at 20,000 connections per flood as the opt-in ctest `soak_conn_limits`
(label soak): FLOOD_CONNECTIONS=20000 FLOOD_NOFILE=20000. All traffic is on loopback; every
wait is a poll with a deadline.
"""

import os
import re
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as CL  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log

TOKEN = "flood-api-token-0123456789"
N_FLOOD = int(os.environ.get("FLOOD_CONNECTIONS", "300"))
NOFILE = int(os.environ.get("FLOOD_NOFILE", "512"))
UNAUTH_TIMEOUT_MS = int(os.environ.get("FLOOD_UNAUTH_TIMEOUT_MS", "2000"))
PER_WORKER = 5000  # connections per flood worker process (its own file limit)
LIMIT_LINE = 'msg="connection limit reached'


# ---------------------------------------------------------------------------------------------
# the flood worker: a separate process holding the connections (python3 this-file --flood ...)

def _is_closed(s):
    """True when the server closed s (EOF or reset); reads and drops what it sent. Never
    waits (a socket with a timeout would wait for data even with MSG_DONTWAIT)."""
    timeout = s.gettimeout()
    s.setblocking(False)
    try:
        while True:
            try:
                d = s.recv(65536)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not d:
                return True
    finally:
        s.settimeout(timeout)


def flood_worker(port, n, mode):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
    socks, failed = [], 0
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if mode == "slow":
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: flood\r\nX-Slow: ")
            socks.append(s)
        except OSError:
            failed += 1
    print("opened %d failed %d" % (len(socks), failed), flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            closed = sum(1 for s in socks if _is_closed(s))
            print("closed %d open %d" % (closed, len(socks) - closed), flush=True)
        else:
            break
    for s in socks:
        s.close()


class Flood:
    """FLOOD_CONNECTIONS connections to port, held by worker processes until close()."""

    def __init__(self, port, n, mode):
        self.workers = []
        self.opened = self.failed = 0
        t0 = time.monotonic()
        left = n
        while left > 0:
            k = min(left, PER_WORKER)
            left -= k
            self.workers.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--flood", str(port), str(k), mode],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for w in self.workers:
            line = self._line(w, 120.0)
            self.opened += int(line.split()[1])
            self.failed += int(line.split()[3])
        self.open_s = time.monotonic() - t0

    @staticmethod
    def _line(w, timeout):
        r, _, _ = select.select([w.stdout], [], [], timeout)
        if not r:
            raise AssertionError("flood worker did not answer within %.0fs" % timeout)
        line = w.stdout.readline()
        if not line:
            raise AssertionError("flood worker exited (%r)" % w.poll())
        return line

    def still_open(self):
        n = 0
        for w in self.workers:
            w.stdin.write("count\n")
            w.stdin.flush()
            n += int(self._line(w, 60.0).split()[3])
        return n

    def close(self):
        for w in self.workers:
            try:
                w.stdin.write("close\n")
                w.stdin.close()
            except OSError:
                pass
        for w in self.workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()


# ---------------------------------------------------------------------------------------------
# nodes under a small file limit, with RESP and an API token

def _limited_binary():
    """A wrapper that starts hacached under `ulimit -n NOFILE` (soft and hard; at most the hard
    limit this process has, which only root could raise)."""
    real = H.binary()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    n = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    d = tempfile.mkdtemp(prefix="hacache-nofile-")
    path = os.path.join(d, "hacached")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nulimit -n %d || exit 111\nexec '%s' \"$@\"\n" % (n, real))
    os.chmod(path, 0o755)
    return path


class FloodCluster(CL.Cluster):
    """The cluster helper with RESP on every node, an API token, and status calls that send
    it."""

    def __init__(self, n, **kw):
        self.resp_ports = CL._distinct_ports(n)
        CL.Cluster.__init__(self, n, **kw)
        for i, nd in enumerate(self.nodes):
            nd.resp_port = self.resp_ports[i]

    def env(self, i):
        e = CL.Cluster.env(self, i)
        e["CACHE_RESP_ADDR"] = "127.0.0.1:%d" % self.resp_ports[i]
        e["CACHE_API_TOKEN"] = TOKEN
        e["CACHE_UNAUTH_TIMEOUT_MS"] = str(UNAUTH_TIMEOUT_MS)
        return e

    def statuses(self, nodes=None):
        out = {}
        for nd in nodes or self.live():
            c = H.Client(nd.port, token=TOKEN, timeout=3)
            try:
                st, obj, _, _ = c.json("GET", "/v1/status")
                out[nd] = obj if st == 200 else None
            except Exception:
                out[nd] = None
            finally:
                c.close()
        return out


def _redis_cli(port, *args, auth=True):
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    if auth:
        cmd += ["-a", TOKEN, "--no-auth-warning"]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=15)
    return r.stdout.strip()


def _refused(node):
    m = node.metrics(token=TOKEN)
    out = {}
    for name, labels, value in m.samples:
        if name == "hacache_connections_refused_total":
            out[(labels["listener"], labels["reason"])] = value
    return out, m


def _service_works(cl, target, ld_term, ld_name, what, key):
    """The checks made during a flood; returns the slowest of them in ms."""
    times = []
    t0 = time.monotonic()
    c = H.Client(target.port, timeout=10)
    try:
        st, _, _ = c.get("/healthz")
    finally:
        c.close()
    times.append(time.monotonic() - t0)
    check_eq(st, 200, "%s: /healthz on a new connection" % what)

    t0 = time.monotonic()
    c = H.Client(target.port, token=TOKEN, timeout=10)
    try:
        st, _, body = c.put("/v1/caches/flood/%s?ack=quorum" % key, b"v-" + key.encode())
        check_eq(st, 200, "%s: a new HTTP client's quorum write (%r)" % (what, body[:200]))
        st, _, body = c.get("/v1/caches/flood/%s" % key)
        check_eq((st, body), (200, b"v-" + key.encode()), "%s: ... and its read" % what)
    finally:
        c.close()
    times.append(time.monotonic() - t0)

    t0 = time.monotonic()
    check_eq(_redis_cli(target.resp_port, "SET", "r-" + key, "ok"), "OK",
             "%s: a new authenticated redis-cli SET" % what)
    check_eq(_redis_cli(target.resp_port, "GET", "r-" + key), "ok",
             "%s: ... and GET" % what)
    times.append(time.monotonic() - t0)

    sts = cl.statuses()
    for nd, s in sts.items():
        check(s is not None and s["term"] == ld_term and s["leader"] == ld_name,
              "%s: %s still in term %d under leader %s (%r)" % (
                  what, nd.name, ld_term, ld_name,
                  s and (s["term"], s["leader"], s["role"])))
    return int(max(times) * 1000)


def test_floods_on_a_cluster_node():
    saved = os.environ.get("HACACHED")
    os.environ["HACACHED"] = _limited_binary()
    cl = FloodCluster(3)
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        st = cl.statuses()[ld]
        term, leader = st["term"], st["leader"]
        err = ld.stderr()
        check(re.search(r'msg="file descriptor limit" soft=(\d+) hard=\1 ', err) is not None,
              "the leader logs the file limit it got")
        _, m = _refused(ld)
        pend = m.get("hacache_connections_limit", listener="resp", state="pending")
        log("limits on the leader: admitted http %s resp %s, pending per listener %s" % (
            m.get("hacache_connections_limit", listener="http", state="admitted"),
            m.get("hacache_connections_limit", listener="resp", state="admitted"), pend))
        if NOFILE <= 1024:
            check(pend is not None and pend < 128, "CACHE_UNAUTH_MAX lowered to fit the limit")

        floods = [
            ("a: idle unauthenticated RESP", ld.resp_port, "idle", "resp"),
            ("b: idle HTTP", ld.port, "idle", "http"),
            ("c: slow HTTP headers", ld.port, "slow", "http"),
            ("d: unauthenticated peer handshakes", cl.peer_ports[ld.index], "idle", "peer"),
        ]
        for i, (what, port, mode, listener) in enumerate(floods):
            before, _ = _refused(ld)
            log_mark = len(ld.stderr())
            fl = Flood(port, N_FLOOD, mode)
            try:
                slowest = _service_works(cl, ld, term, leader, what, "k%d" % i)
                held = fl.still_open()
                # the pool keeps at most its limit; every other connection was closed for a
                # newer one (or timed out already)
                check(held <= pend + 8, "%s: the node holds at most its pending pool (%d held, "
                      "limit %d)" % (what, held, pend))
                t0 = time.monotonic()
                H.wait_until(lambda: fl.still_open() == 0, UNAUTH_TIMEOUT_MS / 1000.0 + 10.0,
                             interval=0.2, what="%s: every flood connection closed" % what)
                gone_s = time.monotonic() - t0
            finally:
                fl.close()
            after, _ = _refused(ld)
            full = after.get((listener, "unauth_full"), 0) - before.get((listener, "unauth_full"), 0)
            tout = after.get((listener, "unauth_timeout"), 0) - \
                before.get((listener, "unauth_timeout"), 0)
            new_log = ld.stderr()[log_mark:]
            limit_lines = new_log.count(LIMIT_LINE)
            log("%s: %d opened (%d failed) in %.2fs; slowest check %d ms; %d held after the "
                "burst, all closed %.1fs later; refused unauth_full %d, unauth_timeout %d; %d "
                "limit log lines, %d log lines in all" % (
                    what, fl.opened, fl.failed, fl.open_s, slowest, held, gone_s, full, tout,
                    limit_lines, new_log.count("\n")))
            check_eq(fl.failed, 0, "%s: every flood connection was accepted" % what)
            check(full >= fl.opened - pend - 8, "%s: refusals counted (%d unauth_full for %d "
                  "connections)" % (what, full, fl.opened))
            if listener != "http":
                # HTTP's survivors may go by h2o's own request timeout (same deadline) instead
                check(tout >= 1, "%s: the connections the pool kept timed out" % what)
            check(limit_lines <= 2, "%s: rate-limited log (%d lines)" % (what, limit_lines))
            check(new_log.count("\n") <= 40, "%s: no log line per connection (%d lines)" % (
                what, new_log.count("\n")))
        err = ld.stderr()
        for listener in ("resp", "http", "peer"):
            n = err.count('closing connections" listener=%s ' % listener)
            check(1 <= n <= 4, "%d limit lines for listener %s" % (n, listener))

        sts = cl.statuses()
        check(all(s is not None and s["term"] == term for s in sts.values()),
              "no term change through the floods")
        cl.wait_ready(10.0)
        for nd in cl.live():
            nd.stop_ok(15.0)
    finally:
        cl.cleanup()
        if saved is None:
            os.environ.pop("HACACHED", None)
        else:
            os.environ["HACACHED"] = saved


# ---------------------------------------------------------------------------------------------
# a standalone node with a small CACHE_MAX_CLIENTS

def _resp_auth(port):
    """A raw RESP connection that sent AUTH; returns (socket, first reply line)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(TOKEN), TOKEN.encode()))
    buf = b""
    while b"\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return s, buf.split(b"\r\n", 1)[0]


def _wait_closed(s, timeout, what):
    H.wait_until(lambda: _is_closed(s), timeout, interval=0.05, what=what)


def test_max_clients_standalone():
    if NOFILE > 1024:
        raise H.Skip("the flood floods only in the soak run")
    resp_port = H.free_port()
    nd = H.Node(env={"CACHE_RESP_ADDR": "127.0.0.1:%d" % resp_port, "CACHE_API_TOKEN": TOKEN,
                     "CACHE_MAX_CLIENTS": "40", "CACHE_UNAUTH_TIMEOUT_MS": "1000",
                     "CACHE_RESP_IDLE_TIMEOUT_MS": "1000"},
                name="limits", log_level="info")
    held = []
    try:
        m = nd.metrics(token=TOKEN)
        share = int(m.get("hacache_connections_limit", listener="resp", state="admitted"))
        check_eq(share, 35, "RESP's share of CACHE_MAX_CLIENTS=40 (an eighth kept for HTTP)")
        replies = []
        for _ in range(share + 5):
            s, first = _resp_auth(resp_port)
            held.append(s)
            replies.append(first)
        check_eq(replies.count(b"+OK"), share, "authenticated RESP clients up to the share")
        refused = [r for r in replies if r != b"+OK"]
        check(len(refused) == 5 and all(r == b"-ERR max number of clients reached"
                                        for r in refused), "the rest refused: %r" % refused)
        for s, r in zip(held, replies):
            if r != b"+OK":
                _wait_closed(s, 5.0, "a refused RESP client is closed")

        # HTTP keeps its own eighth: a new client and /healthz work
        c = H.Client(nd.port, token=TOKEN)
        try:
            check_eq(c.put("/v1/caches/x/k", b"v")[0], 200, "HTTP works with RESP full")
            # fill what is left of the limit with keep-alive HTTP clients
            clients = []
            statuses = []
            for _ in range(6):
                k = H.Client(nd.port, token=TOKEN)
                statuses.append(k.get("/v1/status")[0])
                clients.append(k)
            check_eq(statuses.count(200), 4, "HTTP clients up to CACHE_MAX_CLIENTS")
            over = H.Client(nd.port, token=TOKEN)
            st, hd, body = over.get("/v1/caches/x/k")
            check_eq(st, 503, "over the limit: 503")
            check(b'"code":"max_clients"' in body, "with code max_clients: %r" % body)
            check(over.server_closed >= 1 or hd.get("connection") == "close",
                  "and the connection closes")
            over.close()
            probe = H.Client(nd.port)
            check_eq(probe.get("/healthz")[0], 200, "/healthz answered over the limit")
            check_eq(probe.get("/readyz")[0], 200, "/readyz answered over the limit")
            probe.close()
            for k in clients:
                k.close()
        finally:
            c.close()
        for s in held:
            s.close()
        m = nd.metrics(token=TOKEN)
        check(m.get("hacache_connections_refused_total", listener="resp",
                    reason="max_clients") >= 5, "RESP refusals counted")
        check(m.get("hacache_connections_refused_total", listener="http",
                    reason="max_clients") >= 1, "HTTP refusals counted")

        # timeouts: an idle authenticated client goes after CACHE_RESP_IDLE_TIMEOUT_MS, a busy
        # one stays; an unauthenticated one goes after CACHE_UNAUTH_TIMEOUT_MS
        H.wait_until(lambda: nd.metrics(token=TOKEN).get(
            "hacache_connections", listener="resp", state="admitted") == 0, 10.0,
            what="the RESP clients are gone")
        idle, first = _resp_auth(resp_port)
        check_eq(first, b"+OK", "AUTH")
        busy, first = _resp_auth(resp_port)
        pending = socket.create_connection(("127.0.0.1", resp_port), timeout=5)
        pongs = []

        def idle_ones_gone():
            busy.sendall(b"PING\r\n")  # every poll, well within the idle timeout
            pongs.append(busy.recv(100))
            return _is_closed(idle) and _is_closed(pending)
        H.wait_until(idle_ones_gone, 5.0, interval=0.2,
                     what="the idle and the unauthenticated client closed")
        check(all(p == b"+PONG\r\n" for p in pongs), "the busy client is served: %r" % pongs)
        check(not _is_closed(busy), "the busy client stays")
        for s in (idle, busy, pending):
            s.close()
        m = nd.metrics(token=TOKEN)
        check(m.get("hacache_connections_idle_closed_total", listener="resp") >= 1,
              "idle close counted")
        check(m.get("hacache_connections_refused_total", listener="resp",
                    reason="unauth_timeout") >= 1, "unauthenticated timeout counted")
        nd.stop_ok()
    finally:
        for s in held:
            s.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--flood":
        flood_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    H.run(globals())
