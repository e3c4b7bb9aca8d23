"""Credential rotation without restart (issue 5), certificates: real hacached processes, a 3-node
mTLS cluster on loopback, certificates made here with the openssl CLI, a writer thread per node
sending ack=quorum PUTs the whole time (every non-2xx answer or connection error counts as a
failed write; the tests require zero).

(1) Kubernetes-style rotation: every node's CACHE_TLS_* point at <dir>/tls.crt, tls.key, ca.crt,
    symlinks into <dir>/..data, itself a symlink to a timestamped directory; the rotation writes
    a new timestamped directory and swaps ..data. The new certificates carry only an IP SAN.
(2) In-place copy: tls.crt is rewritten first, tls.key once the node is seen retrying (at least
    300 ms later).
After each: every node serves the new certificate (status, metrics) within the pickup bound and
every peer link that existed before is gone within the replacement bound, proven three ways:
per-link ids in /v1/status, and the TCP connections between peer ports in /proc/net/tcp.
(3) Bad material on one node (key of another pair, expired, unknown CA, deleted files) keeps the
    old credentials, logs one error line each, counts hacache_tls_reloads_total{result="error"};
    fixing the files is picked up; a certificate close to expiry is flagged.

The helpers here are shared by test_rotation_ca.py and test_rotation_tokens.py.
"""

import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

# Documented in README "Credential rotation": a change is picked up within about a second
# (fs event, or the 1 s content check), a half-written pair within the 3 s retry window, and
# every link is re-established with current credentials within 5 s of the last node's reload.
PICKUP_BOUND_S = 4.0
REPLACE_BOUND_S = 5.0

# --------------------------------------------------------------------------------------------
# certificates (openssl CLI)


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_ca(d, name):
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "30", "-subj", "/CN=" + name, "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign", "-keyout", key, "-out", crt)
    return crt, key


def make_leaf(d, name, ca, san="IP:127.0.0.1,DNS:localhost", days=30):
    """A leaf signed by ca=(crt, key); days=-1 gives an already expired certificate. Returns
    (crt, key) paths."""
    crt, key, csr = (os.path.join(d, name + x) for x in (".crt", ".key", ".csr"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n"
                "basicConstraints=CA:FALSE\n" % san)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
             "/CN=" + name, "-keyout", key, "-out", csr)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-days", str(days), "-extfile", ext, "-out", crt)
    os.unlink(csr)
    os.unlink(ext)
    return crt, key


def serial_of(crt):
    out = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-serial"], check=True,
                         capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1].upper().lstrip("0")


def read(path):
    with open(path, "rb") as f:
        return f.read()


# --------------------------------------------------------------------------------------------
# Kubernetes secret volume layout


class SecretDir:
    """<dir>/tls.crt -> ..data/tls.crt, ..data -> ..<stamp>/ (what the kubelet does)."""

    NAMES = ("tls.crt", "tls.key", "ca.crt", "token")

    def __init__(self, base, name, files):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.stamp = 0
        self.swap(files)
        for n in self.NAMES:
            os.symlink(os.path.join("..data", n), os.path.join(self.dir, n))

    def path(self, name):
        return os.path.join(self.dir, name)

    def swap(self, files):
        """files: name -> bytes (names missing here are carried over from the current dir)."""
        cur = os.path.join(self.dir, "..data")
        old = {}
        if os.path.exists(cur):
            for n in self.NAMES:
                p = os.path.join(cur, n)
                if os.path.exists(p):
                    old[n] = read(p)
        old.update(files)
        self.stamp += 1
        stamp = "..2030_01_01_00_00_%02d.%d" % (self.stamp, os.getpid())
        new = os.path.join(self.dir, stamp)
        os.mkdir(new)
        for n, data in old.items():
            with open(os.path.join(new, n), "wb") as f:
                f.write(data)
        tmp = os.path.join(self.dir, "..data_tmp")
        os.symlink(stamp, tmp)
        os.rename(tmp, cur)  # atomic swap of the ..data symlink

    def remove_data(self):
        os.unlink(os.path.join(self.dir, "..data"))

    def write_in_place(self, name, data):
        """Rewrites the file the symlink resolves to (an in-place copy, not atomic)."""
        with open(self.path(name), "wb") as f:
            f.write(data)


# --------------------------------------------------------------------------------------------
# cluster, status, links


class RotCluster(C.Cluster):
    """A Cluster whose node i takes its TLS files (and token file, when tokens=True) from
    secrets[i]."""

    def __init__(self, n, secrets, tokens=False, **kw):
        self.secrets = secrets
        self.tokens = tokens
        super().__init__(n, **kw)

    def env(self, i):
        e = super().env(i)
        s = self.secrets[i]
        e.update({"CACHE_TLS_SERVER_CERT": s.path("tls.crt"),
                  "CACHE_TLS_SERVER_KEY": s.path("tls.key"),
                  "CACHE_TLS_CA_SERVER": s.path("ca.crt")})
        if self.tokens:
            e["CACHE_AUTH_TOKEN_FILE"] = s.path("token")
        return e


def status(node):
    c = H.Client(node.port, timeout=5)
    try:
        st, obj, _, _ = c.json("GET", "/v1/status")
        return obj if st == 200 else None
    finally:
        c.close()


def tls_status(node):
    s = status(node)
    return s["tls"] if s else None


def link_ids(node):
    """{peer: (link id, local addr, remote addr, current)} of the node's connected links."""
    t = tls_status(node)
    return {p["peer"]: (p["link"], p["local"], p["remote"], p["current"])
            for p in t["peer_links"] if p.get("connected")}


def peer_tcp(peer_ports):
    """ESTABLISHED loopback TCP connections that have a peer port at one end, as
    (local port, remote port) pairs from /proc/net/tcp (each connection shows up twice)."""
    ports = set(peer_ports)
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[3] != "01":
                continue
            la, lp = p[1].split(":")
            ra, rp = p[2].split(":")
            lp, rp = int(lp, 16), int(rp, 16)
            if la == "0100007F" and ra == "0100007F" and (lp in ports or rp in ports):
                out.add((lp, rp))
    return out


def snapshot(cl):
    return {"links": {nd: link_ids(nd) for nd in cl.live()}, "tcp": peer_tcp(cl.peer_ports)}


def _port(addr):
    return int(addr.rsplit(":", 1)[1])


def all_replaced(cl, before, nodes=None):
    """True when every link that touches one of `nodes` (default: all) is up, current and not
    one of the links (ids) that existed before on either end, and none of the TCP connections
    of those links (their local/remote addresses before) is still established."""
    names = {"127.0.0.1:%d" % cl.peer_ports[nd.index] for nd in (nodes or cl.live())}
    n = len(cl.live())
    tcp_now = peer_tcp(cl.peer_ports)
    for nd in cl.live():
        me = "127.0.0.1:%d" % cl.peer_ports[nd.index]
        now = link_ids(nd)
        if len(now) != n - 1:
            return False
        old = before["links"].get(nd, {})
        for peer, (lid, _, _, current) in now.items():
            if me not in names and peer not in names:
                continue
            if not current or (peer in old and old[peer][0] == lid):
                return False
        for peer, (_, local, remote, _) in old.items():
            if (me in names or peer in names) and (_port(local), _port(remote)) in tcp_now:
                return False
    return True


def wait_replaced(cl, before, t0, what, nodes=None):
    H.wait_until(lambda: all_replaced(cl, before, nodes), REPLACE_BOUND_S + 5, interval=0.05,
                 what="every peer link replaced (%s)" % what)
    took = time.monotonic() - t0
    failed = {nd.name: metric_sum(nd, "hacache_peer_link_replacement_failures_total")
              for nd in cl.live()}
    H.log("%s: every pre-existing peer link replaced %.2fs after the files changed "
          "(failed replacement dials so far: %s)" % (what, took, failed))
    for nd in cl.live():
        for ln in nd.stderr().splitlines():
            if "replacement failed" in ln:
                H.log("  %s: %s" % (nd.name, ln[:300]))
    return took


def wait_serial(nodes, serial, t0, what, cert="peer_server"):
    """Waits until every node reports `serial` for `cert`; returns {node name: pickup s}."""
    seen = {}

    def check():
        for nd in nodes:
            if nd.name in seen:
                continue
            t = tls_status(nd)
            if t and t[cert] and t[cert]["serial"].lstrip("0") == serial:
                seen[nd.name] = time.monotonic() - t0
        return len(seen) == len(nodes)
    H.wait_until(check, PICKUP_BOUND_S + 5, interval=0.02, what="%s picked up" % what)
    H.log("%s: picked up after %s" % (what, ", ".join("%s %.2fs" % (k, v)
                                                      for k, v in sorted(seen.items()))))
    return seen


def metric_sum(node, name, **labels):
    return node.metrics().sum(name, **labels)


def log_count(node, needle):
    return node.stderr().count(needle)


# --------------------------------------------------------------------------------------------
# writers


class Writers:
    """One thread per node writing distinct keys with ack=quorum until stop(). Every answer
    other than 200, and every connection error, counts as a failed write."""

    def __init__(self, nodes, tag="w"):
        self.stop_ev = threading.Event()
        self.stats = {}
        self.threads = []
        self.lock = threading.Lock()
        for nd in nodes:
            self.add(nd, tag)

    def add(self, nd, tag="w"):
        st = {"ok": 0, "fail": 0, "max_s": 0.0, "errors": [], "stop": threading.Event()}
        self.stats[nd.name] = st
        t = threading.Thread(target=self._run, args=(nd, tag, st), daemon=True)
        self.threads.append((nd.name, t))
        t.start()

    def _run(self, nd, tag, st):
        conn = None
        i = 0
        while not self.stop_ev.is_set() and not st["stop"].is_set():
            i += 1
            path = "/v1/caches/rot/%s-%s-%d?ack=quorum" % (tag, nd.name, i)
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", nd.port, timeout=10)
                conn.request("PUT", path, body=b"v%d" % i)
                r = conn.getresponse()
                body = r.read()
                ok = r.status == 200
                err = None if ok else "%d %s" % (r.status, body[:200])
            except (OSError, http.client.HTTPException) as e:
                ok, err = False, repr(e)
                conn = None
            dt = time.monotonic() - t0
            with self.lock:
                st["max_s"] = max(st["max_s"], dt)
                if ok:
                    st["ok"] += 1
                else:
                    st["fail"] += 1
                    if len(st["errors"]) < 5:
                        st["errors"].append(err)
            self.stop_ev.wait(0.003)  # pacing: leave CPU to the three nodes
        if conn is not None:
            conn.close()

    def stop_one(self, name):
        self.stats[name]["stop"].set()
        for n, t in self.threads:
            if n == name:
                t.join(15)

    def wait_progress(self, n=20, timeout=20):
        start = {k: v["ok"] for k, v in self.stats.items() if not v["stop"].is_set()}
        H.wait_until(lambda: all(self.stats[k]["ok"] >= start[k] + n for k in start), timeout,
                     what="every writer made %d more writes" % n)

    def stop(self):
        self.stop_ev.set()
        for _, t in self.threads:
            t.join(15)
        return self.stats

    def report_and_check(self, what):
        stats = self.stop()
        total_ok = sum(s["ok"] for s in stats.values())
        total_fail = sum(s["fail"] for s in stats.values())
        worst = max(s["max_s"] for s in stats.values())
        H.log("%s: %d quorum writes ok, %d failed, slowest %.3fs (%s)" % (
            what, total_ok, total_fail, worst,
            ", ".join("%s %d/%d" % (k, v["ok"], v["fail"]) for k, v in sorted(stats.items()))))
        for k, v in stats.items():
            H.check(v["fail"] == 0, "%s: writer via %s had %d failed writes: %s" % (
                what, k, v["fail"], v["errors"]))
        H.check(total_ok > 0, "%s: writes went through" % what)
        return total_ok, total_fail, worst


# --------------------------------------------------------------------------------------------
# fixtures


class Pki:
    """A CA, and per node a secret dir with a leaf of it."""

    def __init__(self, n, san="IP:127.0.0.1,DNS:localhost", tokens=None):
        self.base = tempfile.mkdtemp(prefix="hacache-rot-")
        self.work = os.path.join(self.base, "work")
        os.makedirs(self.work)
        self.ca = make_ca(self.work, "ca1")
        self.secrets = []
        self.leaves = []
        for i in range(n):
            leaf = make_leaf(self.work, "node%d-g0" % i, self.ca, san=san)
            self.leaves.append(leaf)
            files = {"tls.crt": read(leaf[0]), "tls.key": read(leaf[1]),
                     "ca.crt": read(self.ca[0])}
            if tokens is not None:
                files["token"] = tokens
            self.secrets.append(SecretDir(self.base, "node%d" % i, files))

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


def start_cluster(pki, n=3, tokens=False):
    cl = RotCluster(n, pki.secrets, tokens=tokens)
    cl.wait_leader(20.0)
    cl.wait_ready(20.0)
    H.wait_until(lambda: all(len(link_ids(nd)) == n - 1 for nd in cl.live()), 10,
                 what="every link up")
    return cl


def stop_cluster(cl, pki):
    try:
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()
        pki.cleanup()


def rotate_all(cl, pki, gen, how, san="IP:127.0.0.1,DNS:localhost"):
    """New leaves (same CA) for every node, installed by `how` ("k8s" or "copy"). Returns
    (serials, pickup times, replacement time)."""
    leaves = [make_leaf(pki.work, "node%d-g%d" % (i, gen), pki.ca, san=san)
              for i in range(cl.n)]
    serials = [serial_of(c) for c, _ in leaves]
    before = snapshot(cl)
    t0 = time.monotonic()
    if how == "k8s":
        for i, (c, k) in enumerate(leaves):
            pki.secrets[i].swap({"tls.crt": read(c), "tls.key": read(k)})
    else:
        for i, (c, _) in enumerate(leaves):
            pki.secrets[i].write_in_place("tls.crt", read(c))
        # the key lands later: once every node has seen the half-written pair and is retrying,
        # and at least 300 ms after the certificates

        def retrying():
            return time.monotonic() - t0 >= 0.3 and all(
                tls_status(nd)["sets"]["peer_tls"]["pending"] for nd in cl.live())
        H.wait_until(retrying, 5, what="every node retrying the half-written pair")
        H.log("copy: keys written %.2fs after the certificates" % (time.monotonic() - t0))
        for i, (_, k) in enumerate(leaves):
            pki.secrets[i].write_in_place("tls.key", read(k))
    picked = {}
    for i, nd in enumerate(cl.nodes):
        picked.update(wait_serial([nd], serials[i], t0, "%s %s" % (how, nd.name)))
    took = wait_replaced(cl, before, t0, how)
    return serials, picked, took


# --------------------------------------------------------------------------------------------
# tests


def test_kubernetes_swap_and_in_place_copy():
    pki = Pki(3)
    cl = start_cluster(pki)
    try:
        w = Writers(cl.live())
        w.wait_progress()
        # (1) Kubernetes: ..data swap; the new certificates have only an IP SAN (acceptance 6)
        serials, picked, took = rotate_all(cl, pki, 1, "k8s", san="IP:127.0.0.1")
        H.check(max(picked.values()) < PICKUP_BOUND_S, "k8s: pickup within %.0fs: %r" % (
            PICKUP_BOUND_S, picked))
        H.check(took < REPLACE_BOUND_S, "k8s: links replaced within %.0fs (%.2fs)" % (
            REPLACE_BOUND_S, took))
        w.wait_progress()
        # (2) in-place copy, certificate first, key later
        serials, picked, took = rotate_all(cl, pki, 2, "copy")
        H.check(max(picked.values()) < PICKUP_BOUND_S, "copy: pickup within %.0fs: %r" % (
            PICKUP_BOUND_S, picked))
        H.check(took < REPLACE_BOUND_S, "copy: links replaced within %.0fs (%.2fs)" % (
            REPLACE_BOUND_S, took))
        w.wait_progress()
        w.report_and_check("k8s swap + in-place copy")
        for i, nd in enumerate(cl.nodes):
            err = nd.stderr()
            H.check_eq(err.count("peer tls reloaded"), 2, "%s: one info line per reload" % nd.name)
            H.check("credentials reload rejected" not in err, "%s: nothing rejected" % nd.name)
            H.check(re.search(r"peer tls reloaded.*serial=0*%s" % serials[i], err) is not None,
                    "%s: the reload line names the serial" % nd.name)
            H.check("peer link down" not in err, "%s: no link went down" % nd.name)
            m = nd.metrics()
            H.check_eq(m.get("hacache_tls_reloads_total", result="success"), 2,
                       "%s: success counter" % nd.name)
            H.check_eq(m.get("hacache_tls_reloads_total", result="error"), 0,
                       "%s: error counter" % nd.name)
            t = tls_status(nd)
            H.check(m.get("hacache_tls_cert_expiry_timestamp_seconds", cert="peer_server") ==
                    t["peer_server"]["not_after_unix"], "%s: expiry metric" % nd.name)
    finally:
        stop_cluster(cl, pki)


def test_bad_material_keeps_old_credentials():
    pki = Pki(3)
    cl = start_cluster(pki)
    try:
        w = Writers(cl.live())
        w.wait_progress()
        nd = cl.nodes[0]
        sec = pki.secrets[0]
        serial0 = serial_of(pki.leaves[0][0])
        other_ca = make_ca(pki.work, "ca-other")
        good = make_leaf(pki.work, "node0-good", pki.ca)
        other = make_leaf(pki.work, "node0-other", pki.ca)
        expired = make_leaf(pki.work, "node0-expired", pki.ca, days=-1)
        foreign = make_leaf(pki.work, "node0-foreign", other_ca)
        cases = [
            ("key of another pair", {"tls.crt": read(good[0]), "tls.key": read(other[1])},
             "does not match"),
            ("expired certificate", {"tls.crt": read(expired[0]), "tls.key": read(expired[1])},
             "expired"),
            ("certificate of an unknown CA", {"tls.crt": read(foreign[0]),
                                              "tls.key": read(foreign[1])},
             "does not chain"),
            ("deleted files", None, "cannot load"),
        ]
        for n, (what, files, reason) in enumerate(cases, 1):
            links = link_ids(nd)
            t0 = time.monotonic()
            if files is None:
                sec.remove_data()
            else:
                sec.swap(files)
            H.wait_until(lambda: metric_sum(nd, "hacache_tls_reloads_total", result="error") >= n,
                         8, what="%s rejected" % what)
            H.log("%s: rejected after %.2fs" % (what, time.monotonic() - t0))
            err = nd.stderr()
            lines = [ln for ln in err.splitlines() if "credentials reload rejected" in ln]
            H.check_eq(len(lines), n, "%s: one error line per rejected change" % what)
            H.check(reason in lines[-1], "%s: the line says why (%r): %s" % (
                what, reason, lines[-1]))
            t = tls_status(nd)
            H.check_eq(t["peer_server"]["serial"].lstrip("0"), serial0,
                       "%s: old certificate still in use" % what)
            H.check(t["sets"]["peer_tls"]["last_error"] is not None, "%s: status says why" % what)
            H.check_eq({k: v[0] for k, v in link_ids(nd).items()},
                       {k: v[0] for k, v in links.items()}, "%s: links untouched" % what)
            H.check_eq(metric_sum(nd, "hacache_tls_reloads_total", result="success"), 0,
                       "%s: nothing loaded" % what)
        # the error is not repeated while the files stay bad
        w.wait_progress()
        H.check_eq(log_count(nd, "credentials reload rejected"), len(cases),
                   "no error line per retry")
        # fixing the files is picked up; the fixed certificate expires in 3 days (< 7)
        fixed = make_leaf(pki.work, "node0-fixed", pki.ca, days=3)
        before = snapshot(cl)
        t0 = time.monotonic()
        sec.swap({"tls.crt": read(fixed[0]), "tls.key": read(fixed[1]),
                  "ca.crt": read(pki.ca[0])})
        wait_serial([nd], serial_of(fixed[0]), t0, "fixed files")
        took = wait_replaced(cl, before, t0, "fixed files", nodes=[nd])
        H.check(took < REPLACE_BOUND_S, "links replaced within %.0fs after the fix (%.2fs)" % (
            REPLACE_BOUND_S, took))
        t = tls_status(nd)
        H.check(t["peer_server"]["expires_soon"] is True, "expires_soon in status: %r" % t)
        H.check("certificate expires soon" in nd.stderr(), "expiry warning logged")
        H.check(t["sets"]["peer_tls"]["last_error"] is None, "status error cleared")
        for other_nd in cl.nodes[1:]:
            H.check(tls_status(other_nd)["peer_server"]["expires_soon"] is False,
                    "%s: 30-day certificate not flagged" % other_nd.name)
        w.report_and_check("bad material on one node")
    finally:
        stop_cluster(cl, pki)


def test_api_token_file_rotation_standalone():
    """CACHE_API_TOKEN_FILE goes through the same reload path: add, then drop a token."""
    d = tempfile.mkdtemp(prefix="hacache-rot-api-")
    try:
        a, b = "api-token-aaaaaaaaaaaaaaaaaaaa", "api-token-bbbbbbbbbbbbbbbbbbbb"
        path = os.path.join(d, "api-tokens")
        with open(path, "w") as f:
            f.write(a + "\n")
        nd = H.Node(env={"CACHE_API_TOKEN_FILE": path}, name="api", log_level="info")

        def status_with(tok):
            c = H.Client(nd.port, token=tok, timeout=5)
            try:
                return c.get("/v1/status")[0]
            finally:
                c.close()
        H.check_eq((status_with(a), status_with(b)), (200, 401), "before: only the first token")
        with open(path, "w") as f:
            f.write(a + "\n" + b + "\n")
        H.wait_until(lambda: status_with(b) == 200, PICKUP_BOUND_S, what="second token accepted")
        H.check_eq(status_with(a), 200, "first token still accepted")
        with open(path, "w") as f:
            f.write(b + "\n")
        H.wait_until(lambda: status_with(a) == 401, PICKUP_BOUND_S, what="first token dropped")
        H.check_eq(status_with(b), 200, "second token works")
        H.check_eq(nd.stderr().count("api tokens reloaded"), 2, "one line per change")
        m = nd.metrics(token=b)
        H.check_eq(m.get("hacache_tls_reloads_total", result="success"), 2, "success counter")
        nd.stop_ok()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    H.run(globals())
