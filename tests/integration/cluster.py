"""cluster.py: helpers to run a hacache cluster of real hacached processes on loopback.

    import cluster as C
    cl = C.Cluster(3)            # certificates from scripts/dev-certs.sh, mTLS, token file
    leader = cl.wait_leader()    # exactly one leader, every live node agrees on term and leader
    cl.followers()               # the live nodes that are not the leader
    cl.start_node(i, binary=B)   # (re)start node i running program B (an older build, say);
                                 # later starts of node i keep B until another one is given

Every node listens for peers on 127.0.0.1:<free port> (HA_HOSTS=https://127.0.0.1:P1,...,
HOSTNAME_OVERWRITE=127.0.0.1:Pi), serves HTTP on its own free port and keeps its raft hard state
in its own CACHE_DATA_DIR under the cluster's temp dir. Nothing leaves loopback. Every wait is
a poll with a deadline.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def _distinct_ports(k):
    """k distinct free loopback ports (all sockets held open while picking, so no repeats)."""
    socks = []
    try:
        for _ in range(k):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _status(node, timeout=2.0):
    c = H.Client(node.port, timeout=timeout)
    try:
        st, obj, _, _ = c.json("GET", "/v1/status")
        return obj if st == 200 else None
    finally:
        c.close()


class Cluster:
    def __init__(self, n, election_timeout_ms=1000, heartbeat_ms=100, extra_env=None,
                 log_level="info", data_dirs=True, defer=(), http_tls=False, binary=None):
        """http_tls: the HTTP API over TLS too (CACHE_HTTP_TLS_*): node i serves
        self.dir/http-i.crt and .key (copies of the dev certificate, for a test to replace),
        and the harness verifies them with self.http_ca (a copy of the dev CA, for a test to
        extend before it rotates the servers to another CA).
        binary: the program every node runs unless start_node gives another (default: the
        harness's, $HACACHED)."""
        self.binaries = {i: binary for i in range(n)} if binary else {}
        self.data_dirs = data_dirs
        self.http_tls = http_tls
        self.n = n
        self.dir = tempfile.mkdtemp(prefix="hacache-cluster-")
        certs = os.path.join(self.dir, "certs")
        subprocess.run(["bash", os.path.join(H.REPO, "scripts", "dev-certs.sh"), certs, "1"],
                       check=True, stdout=subprocess.DEVNULL)
        self.certs = certs
        ports = _distinct_ports(2 * n)
        self.peer_ports, self.http_ports = ports[:n], ports[n:]
        self.http_ca = os.path.join(self.dir, "http-ca.pem")
        if http_tls:
            shutil.copy(os.path.join(certs, "ca.crt"), self.http_ca)
            for i in range(n):
                shutil.copy(os.path.join(certs, "node-0.crt"), self.http_cert(i))
                shutil.copy(os.path.join(certs, "node-0.key"), self.http_key(i))
                H.TLS_PORTS[self.http_ports[i]] = self.http_ca
        self.ha_hosts = ",".join("https://127.0.0.1:%d" % p for p in self.peer_ports)
        self.election_timeout_ms = election_timeout_ms
        self.heartbeat_ms = heartbeat_ms
        self.extra_env = dict(extra_env or {})
        self.log_level = log_level
        self.nodes = [None] * n
        for i in range(n):
            if i not in defer:  # deferred nodes are started later by the test (start_node)
                self.start_node(i, wait=False)
        for node in self.nodes:
            if node is not None:
                node.wait_ready(20.0)

    def http_cert(self, i):
        return os.path.join(self.dir, "http-%d.crt" % i)

    def http_key(self, i):
        return os.path.join(self.dir, "http-%d.key" % i)

    def env(self, i):
        crt = os.path.join(self.certs, "node-0.crt")
        key = os.path.join(self.certs, "node-0.key")
        e = {
            "HA_MODE": "true",
            "HA_HOSTS": self.ha_hosts,
            "HOSTNAME_OVERWRITE": "127.0.0.1:%d" % self.peer_ports[i],
            "CACHE_LISTEN_ADDR": "127.0.0.1",
            "CACHE_AUTH_TOKEN_FILE": os.path.join(self.certs, "token"),
            "CACHE_TLS": "true",
            "CACHE_TLS_SERVER_CERT": crt,
            "CACHE_TLS_SERVER_KEY": key,
            "CACHE_TLS_CA_SERVER": os.path.join(self.certs, "ca.crt"),
            "CACHE_DATA_DIR": os.path.join(self.dir, "data-%d" % i),
            "CACHE_ELECTION_TIMEOUT_MS": str(self.election_timeout_ms),
            "CACHE_HEARTBEAT_MS": str(self.heartbeat_ms),
            "CACHE_HTTP_ADDR": "127.0.0.1:%d" % self.http_ports[i],
        }
        if self.http_tls:
            e["CACHE_HTTP_TLS_CERT"] = self.http_cert(i)
            e["CACHE_HTTP_TLS_KEY"] = self.http_key(i)
        if not self.data_dirs:
            del e["CACHE_DATA_DIR"]  # volume-less: every start is a new incarnation
        e.update(self.extra_env)
        return e

    def binary(self, i):
        """The program node i runs (the harness's hacached unless start_node chose another)."""
        return self.binaries.get(i) or H.binary()

    def start_node(self, i, wait=True, binary=None):
        """Starts node i (again) with its environment, running `binary` when given (kept for
        its later starts), else the program it ran before."""
        if binary is not None:
            self.binaries[i] = binary
        node = H.Node(env=self.env(i), name="n%d" % i, log_level=self.log_level, start=False,
                      binary_path=self.binaries.get(i))
        node.index = i
        self.nodes[i] = node
        node.start() if wait else self._spawn(node)
        return node

    @staticmethod
    def _spawn(node):
        # like Node.start() without waiting, so all nodes boot in parallel
        node.port = int(node.extra_env["CACHE_HTTP_ADDR"].rsplit(":", 1)[1])
        fd, node.stderr_path = tempfile.mkstemp(prefix="hacached-%s-" % node.name,
                                                suffix=".stderr")
        node._stderr_f = os.fdopen(fd, "wb")
        node.proc = subprocess.Popen([node.binary_path or H.binary()] + node.args,
                                     env=node._env(),
                                     stdin=subprocess.DEVNULL, stdout=node._stderr_f,
                                     stderr=node._stderr_f, cwd=tempfile.gettempdir(),
                                     start_new_session=True)
        node.exit_code = None

    def live(self):
        return [x for x in self.nodes if x is not None and x.alive()]

    def statuses(self, nodes=None):
        out = {}
        for node in nodes or self.live():
            try:
                out[node] = _status(node)
            except Exception:
                out[node] = None
        return out

    def wait_leader(self, timeout=15.0, nodes=None, exclude_term=None):
        """Waits until exactly one of `nodes` (default: live ones) is leader and every one of
        them reports the same term and leader. Returns the leader's Node."""
        def agreed():
            sts = self.statuses(nodes)
            if any(s is None for s in sts.values()):
                return None
            leaders = [nd for nd, s in sts.items() if s["role"] == "leader"]
            if len(leaders) != 1:
                return None
            ld = sts[leaders[0]]
            if exclude_term is not None and ld["term"] <= exclude_term:
                return None
            for s in sts.values():
                if s["term"] != ld["term"] or s["leader"] != ld["node"]:
                    return None
            return leaders[0]
        return H.wait_until(agreed, timeout, interval=0.05, what="one agreed leader")

    def leader(self):
        for nd, s in self.statuses().items():
            if s and s["role"] == "leader":
                return nd
        return None

    def followers(self):
        ld = self.leader()
        return [x for x in self.live() if x is not ld]

    def wait_ready(self, timeout=15.0, nodes=None):
        def ready():
            for nd in nodes or self.live():
                c = H.Client(nd.port, timeout=2)
                try:
                    st, _, _ = c.get("/readyz")
                finally:
                    c.close()
                if st != 200:
                    return False
            return True
        return H.wait_until(ready, timeout, interval=0.05, what="every node ready")

    def digests(self, nodes=None):
        out = {}
        for nd in nodes or self.live():
            c = H.Client(nd.port, timeout=5)
            try:
                st, obj, _, _ = c.json("GET", "/v1/caches?digest=1")
            finally:
                c.close()
            out[nd] = json.dumps(sorted((x["name"], x.get("digest"), x.get("entries"))
                                        for x in obj["caches"])) if st == 200 else None
        return out

    def cleanup(self):
        for nd in self.nodes:
            if nd is not None and nd.alive():
                nd.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class IdWriter(threading.Thread):
    """Quorum writes through the nodes over HTTP, alternating a put of a fresh key (cache
    `roll`) and an increment of the writer's counter (cache `count`, key counter-<name>); each
    write keeps one request id (X-Hacache-Request-Id) across its retries: 503, 504 unknown
    outcome and connection errors move to the next node, within budget_s seconds. Check with
    check_acked and check_counters."""

    def __init__(self, cl, name, first, budget_s=3.0):
        super().__init__(daemon=True)
        self.budget_s = budget_s
        self.cl, self.name, self.pref = cl, name, first
        self.stop_flag = threading.Event()
        self.acked = []  # (key, value) of acknowledged puts
        self.incrs = 0  # acknowledged increments of counter-<name>
        self.last_incr = 0
        self.failures = []
        self.ack_times = []
        self.retries = 0
        self.lock = threading.Lock()

    def _write(self, clients, method, path, body):
        rid = uuid.uuid4().hex
        t0 = time.monotonic()
        i, last = self.pref, None
        while time.monotonic() - t0 < self.budget_s:
            nd = self.cl.nodes[i]
            st = None
            try:
                c = clients.get(i)
                if c is None or c.port != nd.port:
                    c = clients[i] = H.Client(nd.port, timeout=3)
                st, _, raw = c.request(method, path, body=body,
                                       headers={"X-Hacache-Request-Id": rid})
            except Exception as e:  # connection refused / reset: the node is restarting
                last = ("conn", repr(e)[:80])
                c = clients.pop(i, None)
                if c is not None:
                    c.close()
            if st == 200:
                self.pref = i
                return raw, None
            if st is not None:
                last = (st, (H.jbody(raw) or {}).get("code"))
                if st not in (503, 504):
                    break  # not retryable
            self.retries += 1
            i = (i + 1) % self.cl.n
            time.sleep(0.02)  # pacing between attempts of one write
        return None, last

    def run(self):
        clients = {}
        seq = 0
        while not self.stop_flag.is_set():
            seq += 1
            if seq % 2:
                key = "%s-%d" % (self.name, seq)
                val = ("val-%s-%d" % (self.name, seq)).encode()
                raw, err = self._write(clients, "PUT", "/v1/caches/roll/%s?ack=quorum" % key, val)
            else:
                raw, err = self._write(clients, "POST",
                                       "/v1/caches/count/counter-%s/incr?ack=quorum" % self.name,
                                       b"")
            with self.lock:
                if err is None:
                    self.ack_times.append(time.monotonic())
                    if seq % 2:
                        self.acked.append((key, val))
                    else:
                        self.incrs += 1
                        self.last_incr = (H.jbody(raw) or {}).get("value")
                else:
                    self.failures.append((seq, err))
        for c in clients.values():
            c.close()


def stop_writers_clean(writers):
    """Stops the writer threads, logs what they did and checks that no write failed."""
    for w in writers:
        w.stop_flag.set()
    for w in writers:
        w.join(10.0)
    fails = [f for w in writers for f in w.failures]
    H.log("writes acknowledged: %d, failed: %d" % (sum(len(w.acked) for w in writers),
                                                  len(fails)))
    H.check_eq(fails[:10], [], "failed writes")


def check_acked(nodes, writers, cache="roll", query=""):
    """Every (key, value) a writer had acknowledged (writer.acked) reads back on each node."""
    for nd in nodes:
        c = H.Client(nd.port, timeout=5)
        missing = []
        try:
            for w in writers:
                for key, val in w.acked:
                    st, _, body = c.get("/v1/caches/%s/%s%s" % (cache, key, query))
                    if st != 200 or body != val:
                        missing.append((key, st))
        finally:
            c.close()
        H.check_eq(missing[:10], [], "acknowledged writes present on %s" % nd.name)


def check_counters(nodes, writers, query="?consistency=linearizable"):
    """Every IdWriter's counter reads, on each node, as the number of increments it had
    acknowledged: each one applied exactly once, retries included."""
    for nd in nodes:
        c = H.Client(nd.port, timeout=5)
        try:
            for w in writers:
                st, _, body = c.get("/v1/caches/count/counter-%s%s" % (w.name, query))
                H.check_eq((st, body), (200, str(w.incrs).encode()),
                           "%s: counter of %s = acknowledged increments (each applied once)"
                           % (nd.name, w.name))
        finally:
            c.close()


def wait_invalidated(node, timeout=20.0):
    """Waits until node, cut off from its quorum, has invalidated: /readyz answers 503 with
    reason no_quorum and hacache_invalidations_total counts it."""
    def invalidated():
        c = H.Client(node.port, timeout=2)
        try:
            st, _, raw = c.request("GET", "/readyz")
        finally:
            c.close()
        return st == 503 and (H.jbody(raw) or {}).get("reason") == "no_quorum" and \
            (node.metrics().get("hacache_invalidations_total") or 0) >= 1

    H.wait_until(invalidated, timeout, interval=0.05, what="%s invalidates" % node.name)


def wait_all(pred, timeout, what):
    return H.wait_until(pred, timeout, interval=0.05, what=what)


def now():
    return time.monotonic()
