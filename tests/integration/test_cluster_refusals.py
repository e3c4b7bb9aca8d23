"""Cluster peer refusals (issue 4, acceptance 5): "A peer with the wrong token, a certificate
from another CA, or absent from HA_HOSTS is refused, never counted toward quorum, and the
refusal is logged with the reason; a plaintext connection to a TLS peer port is refused."

Layout: HA_HOSTS lists three peer ports A, B, C. A and B are started normally (mTLS, dev
certificates and token from scripts/dev-certs.sh) and form a quorum of 2/3. The intruder then
takes the third seat, so it *would* matter for quorum if it were admitted:

(a) C with a wrong CACHE_AUTH_TOKEN (same CA);
(b) C with a certificate, key and CA from a second dev-certs.sh run (right token);
(c) an outsider D on a 4th port that is in neither list: its HA_HOSTS names itself and A/B as
    "localhost:<port>" (localhost resolves to 127.0.0.1 only here), which is not how A/B name
    themselves, so A/B are not in its list and it is not in theirs;
(d) a raw plaintext TCP client sending HTTP and garbage to A's and B's peer ports.

For each: A's and B's stderr carry a "peer link refused" line naming the reason and the
intruder's address; A's /v1/status shows the intruder not connected and
hacache_peer_connected for it is 0 (or absent for D, which is no configured peer); and the
intruder is not counted toward quorum: with B SIGSTOPped, quorum writes on A fail (503/504,
never 200); after SIGCONT they work again. The wrong-token C never becomes ready or leader.
All traffic is on 127.0.0.1; every wait is a poll with a deadline.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

ELECTION_MS = 1000


def _certs(dirpath):
    subprocess.run(["bash", os.path.join(H.REPO, "scripts", "dev-certs.sh"), dirpath, "1"],
                   check=True, stdout=subprocess.DEVNULL)
    return dirpath


def _status(node):
    c = H.Client(node.port, timeout=3)
    try:
        st, obj, _, _ = c.json("GET", "/v1/status")
        return obj if st == 200 else None
    finally:
        c.close()


def _readyz(node):
    c = H.Client(node.port, timeout=3)
    try:
        st, _, _ = c.get("/readyz")
        return st
    finally:
        c.close()


def _put(node, path, body=b"v", timeout=10):
    c = H.Client(node.port, timeout=timeout)
    try:
        st, _, _ = c.put(path, body=body)
        return st
    finally:
        c.close()


class Setup:
    """A and B of a 3-seat HA_HOSTS (A, B, C), plus helpers to start intruders."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hacache-refusals-")
        self.certs = _certs(os.path.join(self.dir, "certs"))
        self.other = _certs(os.path.join(self.dir, "other-ca"))
        ports = C._distinct_ports(8)
        self.peer_ports, self.http_ports = ports[:4], ports[4:]
        self.ha_hosts = ",".join("https://127.0.0.1:%d" % p for p in self.peer_ports[:3])
        self.nodes = []
        self.stopped = []
        self.a = self.start(0, "A")
        self.b = self.start(1, "B")
        for nd in (self.a, self.b):
            nd.wait_ready(20.0)
        self.leader = self.wait_leader([self.a, self.b], 20.0)
        H.wait_until(lambda: all(_readyz(n) == 200 for n in (self.a, self.b)), 15.0,
                     interval=0.05, what="A and B ready")
        H.check_eq(_put(self.a, "/v1/caches/r/base?ack=quorum"), 200, "quorum write on A/B")

    def peer(self, i):
        return "127.0.0.1:%d" % self.peer_ports[i]

    def env(self, i, certs=None, **over):
        certs = certs or self.certs
        e = {
            "HA_MODE": "true",
            "HA_HOSTS": self.ha_hosts,
            "HOSTNAME_OVERWRITE": self.peer(i),
            "CACHE_LISTEN_ADDR": "127.0.0.1",
            "CACHE_AUTH_TOKEN_FILE": os.path.join(self.certs, "token"),
            "CACHE_TLS": "true",
            "CACHE_TLS_SERVER_CERT": os.path.join(certs, "node-0.crt"),
            "CACHE_TLS_SERVER_KEY": os.path.join(certs, "node-0.key"),
            "CACHE_TLS_CA_SERVER": os.path.join(certs, "ca.crt"),
            "CACHE_DATA_DIR": os.path.join(self.dir, "data-%d" % i),
            "CACHE_ELECTION_TIMEOUT_MS": str(ELECTION_MS),
            "CACHE_HEARTBEAT_MS": "100",
            "CACHE_HTTP_ADDR": "127.0.0.1:%d" % self.http_ports[i],
            # the third seat is never taken by a legitimate node: A and B bootstrap on their own
            "CACHE_BOOTSTRAP_EXPECT": "2",
        }
        e.update(over)
        return e

    def start(self, i, name, env=None):
        node = H.Node(env=env or self.env(i), name=name, log_level="info", start=False)
        C.Cluster._spawn(node)
        self.nodes.append(node)
        return node

    def wait_leader(self, nodes, timeout):
        def agreed():
            sts = {n: _status(n) for n in nodes}
            if any(s is None for s in sts.values()):
                return None
            leaders = [n for n, s in sts.items() if s["role"] == "leader"]
            if len(leaders) != 1:
                return None
            ld = sts[leaders[0]]
            if all(s["term"] == ld["term"] and s["leader"] == ld["node"] for s in sts.values()):
                return leaders[0]
            return None
        return H.wait_until(agreed, timeout, interval=0.05, what="one agreed leader of A, B")

    def sigstop(self, node):
        node.signal(signal.SIGSTOP)
        self.stopped.append(node)

    def sigcont_all(self):
        for nd in self.stopped:
            try:
                nd.signal(signal.SIGCONT)
            except Exception:
                pass
        self.stopped = []

    def cleanup(self):
        self.sigcont_all()
        for nd in self.nodes:
            if nd.alive():
                nd.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


_REFUSED = re.compile(r"peer link refused")


def _refusals(node, offset=0):
    return [ln for ln in node.stderr()[offset:].splitlines() if _REFUSED.search(ln)]


def _wait_refusal(node, offset, reason_re, addr_re, what, timeout=15.0, soft=False):
    """Waits for a refusal line on node's stderr (after offset) matching both the reason and
    the intruder's address; on timeout records a check failure listing what was logged."""
    def found():
        for ln in _refusals(node, offset):
            if re.search(reason_re, ln) and re.search(addr_re, ln):
                return ln
        return None
    try:
        ln = H.wait_until(found, timeout, interval=0.1, what=what)
        H.log("%s logged: %s" % (node.name, ln.strip()[:400]))
        return ln
    except AssertionError:
        (H.note if soft else H.check)(False, "%s: no refusal line on %s matching reason /%s/ and address /%s/; "
                "refusal lines seen: %r" % (what, node.name, reason_re, addr_re,
                                            _refusals(node, offset)[-6:]))
        return None


def _check_not_connected(s, node, peer_name, configured=True):
    """A's (B's) view of the intruder: peers[].connected false, hacache_peer_connected 0."""
    st = _status(node)
    H.check(st is not None, "%s /v1/status answers" % node.name)
    if st is not None:
        entries = [p for p in st.get("peers", []) if p.get("node") == peer_name]
        if configured:
            H.check(len(entries) == 1, "%s /v1/status lists peer %s once: %r" % (
                node.name, peer_name, st.get("peers")))
        for p in entries:
            H.check(p.get("connected") is False,
                    "%s /v1/status: peer %s connected=%r, expected false" % (
                        node.name, peer_name, p.get("connected")))
        # the healthy partner stays connected
        others = [p for p in st.get("peers", []) if p.get("node") in (s.peer(0), s.peer(1))]
        H.check(all(p.get("connected") is True for p in others),
                "%s still connected to its healthy partner: %r" % (node.name, others))
    m = node.metrics()
    v = m.get("hacache_peer_connected", None, peer=peer_name)
    if configured:
        H.check_eq(v, 0, "%s hacache_peer_connected{peer=%s}" % (node.name, peer_name))
    else:
        H.check(v in (None, 0), "%s hacache_peer_connected{peer=%s} = %r, expected absent or "
                "0" % (node.name, peer_name, v))


def _check_not_counted(s, intruder=None, what=""):
    """With B stopped, A alone (plus the refused intruder) has no quorum: quorum writes on A
    fail for a few seconds (503/504, never 200). SIGCONT B: writes work again."""
    s.sigstop(s.b)
    try:
        codes = []
        t_end = time.monotonic() + 3 * ELECTION_MS / 1000.0 + 1.0
        i = 0
        while time.monotonic() < t_end:
            try:
                st = _put(s.a, "/v1/caches/r/nq-%d?ack=quorum" % i, timeout=10)
            except OSError as e:
                st = "error %r" % e
            codes.append(st)
            i += 1
            if intruder is not None and intruder.alive():
                ist = _status(intruder)
                if ist is not None:
                    H.check(ist.get("role") != "leader", "%s: intruder became leader: %r" % (
                        what, ist))
            time.sleep(0.1)
        H.log("%s: quorum writes on A with B stopped: %r" % (what, codes))
        H.check(200 not in codes,
                "%s: A acknowledged a quorum write while B was stopped (the refused intruder "
                "was counted toward quorum?): %r" % (what, codes))
        H.check(all(c in (503, 504) for c in codes),
                "%s: quorum writes without quorum answer 503/504: %r" % (what, codes))
    finally:
        s.sigcont_all()

    def write_ok():
        return _put(s.a, "/v1/caches/r/after?ack=quorum", timeout=10) == 200
    H.wait_until(write_ok, 15.0, interval=0.1, what="%s: quorum writes work after SIGCONT of B"
                 % what)
    s.wait_leader([s.a, s.b], 15.0)


def _run_intruder_c(env_over, certs, reason_a, reason_c, what, never_ready=False):
    s = Setup()
    try:
        off_a, off_b = len(s.a.stderr()), len(s.b.stderr())
        c_env = s.env(2, certs=certs, **env_over)
        c = s.start(2, "C", env=c_env)
        c.wait_ready(20.0)  # healthz: the process is up and listening
        addr_c = re.escape(s.peer(2))
        for nd, off in ((s.a, off_a), (s.b, off_b)):
            # generous: the inbound attempts of C may be closed by C first (C refuses too);
            # the refusal on A/B's side can then come from their own redial, after backoff
            _wait_refusal(nd, off, reason_a, addr_c, "%s refused by %s" % (what, nd.name),
                          timeout=45.0)
        _wait_refusal(c, 0, reason_c, r"127\.0\.0\.1:(%d|%d)" % tuple(s.peer_ports[:2]),
                      "%s: the intruder's own refusal" % what, timeout=5.0, soft=True)
        for nd in (s.a, s.b):
            _check_not_connected(s, nd, s.peer(2))
        cst = _status(c)
        if cst is not None:
            H.check(not any(p.get("connected") for p in cst.get("peers", [])),
                    "%s: intruder sees no connected peer: %r" % (what, cst.get("peers")))
        _check_not_counted(s, intruder=c, what=what)
        # the intruder kept trying all along; still not connected, still not ready/leader
        for nd in (s.a, s.b):
            _check_not_connected(s, nd, s.peer(2))
        if never_ready:
            cst = _status(c)
            H.check(cst is not None and cst.get("role") != "leader",
                    "%s: intruder is not leader: %r" % (what, cst))
            H.check(cst is not None and cst.get("ready") is not True,
                    "%s: intruder /v1/status not ready: %r" % (what, cst))
            H.check(_readyz(c) != 200, "%s: intruder /readyz is not 200" % what)
            H.check(c.metrics().get("hacache_raft_is_leader") in (0, None),
                    "%s: intruder hacache_raft_is_leader 0" % what)
        H.check(c.alive(), "%s: intruder process still running (refusal is not a crash)" % what)
        for nd in (s.a, s.b):
            H.check(nd.alive(), "%s: %s still running" % (what, nd.name))
    finally:
        s.cleanup()


def test_wrong_token_refused_not_counted():
    tokdir = tempfile.mkdtemp(prefix="hacache-wrongtok-")
    try:
        tok = os.path.join(tokdir, "token")
        with open(tok, "w") as f:
            f.write("ab" * 32 + "\n")
        os.chmod(tok, 0o600)
        _run_intruder_c({"CACHE_AUTH_TOKEN_FILE": tok}, None, r"(?i)wrong token",
                        r"(?i)wrong token", "wrong token", never_ready=True)
    finally:
        shutil.rmtree(tokdir, ignore_errors=True)


def test_other_ca_refused_not_counted():
    # right token; certificate, key and trusted CA from another dev-certs.sh run
    s = Setup()
    try:
        off_a, off_b = len(s.a.stderr()), len(s.b.stderr())
        c = s.start(2, "C", env=s.env(2, certs=s.other))
        c.wait_ready(20.0)
        what = "certificate from another CA"
        addr_c = re.escape(s.peer(2))
        ca_re = r"(?i)TLS.*\b(unknown CA|trusted CA)\b"
        for nd, off in ((s.a, off_a), (s.b, off_b)):
            # a TLS refusal naming the intruder's address ...
            _wait_refusal(nd, off, r'reason="TLS: .*certificate', addr_c,
                          "%s refused by %s (TLS refusal naming C)" % (what, nd.name))
            # ... whose reason says the certificate is from an untrusted CA (acceptance 5:
            # "the refusal is logged with the reason"); tls.c's verify_reason() has exactly
            # that text ("not signed by a trusted CA (unknown CA: ...)")
            _wait_refusal(nd, off, ca_re, addr_c,
                          "%s refused by %s: reason names the CA" % (what, nd.name), timeout=5.0)
        _wait_refusal(c, 0, ca_re, r"127\.0\.0\.1:(%d|%d)" % tuple(s.peer_ports[:2]),
                      "%s: the intruder's own refusal" % what, timeout=5.0, soft=True)
        for nd in (s.a, s.b):
            _check_not_connected(s, nd, s.peer(2))
        _check_not_counted(s, intruder=c, what=what)
        for nd in (s.a, s.b):
            _check_not_connected(s, nd, s.peer(2))
        cst = _status(c)
        H.check(cst is not None and cst.get("role") != "leader",
                "%s: intruder is not leader: %r" % (what, cst))
        H.check(_readyz(c) != 200, "%s: intruder /readyz is not 200" % what)
    finally:
        s.cleanup()


def test_outsider_not_in_ha_hosts_refused():
    s = Setup()
    try:
        what = "outsider in neither HA_HOSTS"
        off_a, off_b = len(s.a.stderr()), len(s.b.stderr())
        me = s.peer(3)
        # names A and B as localhost:<port>: same sockets, but not the names A and B go by,
        # so A/B are not in its list; and it is not in theirs
        hosts = "https://%s,https://localhost:%d,https://localhost:%d" % (
            me, s.peer_ports[0], s.peer_ports[1])
        H.check(me not in s.ha_hosts, "the outsider's port is not in A/B's HA_HOSTS")
        d = s.start(3, "D", env=s.env(3, HA_HOSTS=hosts))
        d.wait_ready(20.0)
        for nd, off in ((s.a, off_a), (s.b, off_b)):
            _wait_refusal(nd, off, r"(?i)not in my HA_HOSTS", re.escape(me),
                          "%s refused by %s" % (what, nd.name))
        _wait_refusal(d, 0, r"(?i)not in my HA_HOSTS|dialed .* but the peer says",
                      r"127\.0\.0\.1:(%d|%d)|localhost:(%d|%d)" % (
                          tuple(s.peer_ports[:2]) * 2),
                      "%s: the outsider's own refusal" % what, timeout=5.0, soft=True)
        for nd in (s.a, s.b):
            _check_not_connected(s, nd, me, configured=False)
        _check_not_counted(s, intruder=d, what=what)
        for nd in (s.a, s.b):
            _check_not_connected(s, nd, me, configured=False)
    finally:
        s.cleanup()


def test_plaintext_to_tls_peer_port_refused():
    s = Setup()
    try:
        what = "plaintext client"
        for nd, i, payload in ((s.a, 0, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
                               (s.b, 1, b"\x00\x00\x00\x05hello garbage " * 8)):
            off = len(nd.stderr())
            sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sk.bind(("127.0.0.1", 0))
            local = sk.getsockname()[1]
            sk.close()
            # connect from a known local port so the log line can be matched to this client
            sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sk.bind(("127.0.0.1", local))
            sk.settimeout(10)
            sk.connect(("127.0.0.1", s.peer_ports[i]))
            got, closed = b"", False
            try:
                sk.sendall(payload)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        chunk = sk.recv(4096)
                    except socket.timeout:
                        break
                    except ConnectionResetError:
                        closed = True
                        break
                    if not chunk:
                        closed = True
                        break
                    got += chunk
            finally:
                sk.close()
            H.check(closed, "%s: %s closed the plaintext connection (got %r)" % (
                what, nd.name, got[:200]))
            H.check(b"HTTP/" not in got, "%s: %s's peer port did not answer HTTP: %r" % (
                what, nd.name, got[:200]))
            _wait_refusal(nd, off, r"(?i)plaintext", r"127\.0\.0\.1:%d\b" % local,
                          "%s refused by %s" % (what, nd.name))
        for nd in (s.a, s.b):
            _check_not_connected(s, nd, s.peer(2))
        H.check_eq(_put(s.a, "/v1/caches/r/after-plain?ack=quorum"), 200,
                   "quorum write after the plaintext probes")
        _check_not_counted(s, what=what)
    finally:
        s.cleanup()


if __name__ == "__main__":
    H.run(globals())
