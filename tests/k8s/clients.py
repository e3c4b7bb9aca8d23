"""clients.py: the load and the checks the pod scenarios run against the pods of pods.py,
from the node's namespace (the test process): the agreed leader, Service clients writing with
request ids and retries (Writer), the write pauses around a pod's replacement, reading every
acknowledged write back from every pod (linearizable), a /v1/status monitor (Monitor), the
identity and peer-link checks of a StatefulSet's pods, the application container of the sidecar
layout (tests/k8s/app_client.py) and its output, and the FIGURES: lines.

    import clients as C
    ws = C.start_writers(sts)               # two Service clients, quorum writes
    figs = C.replace_figures(ws, sts.rolling_update())
    C.stop_writers(ws)
    C.check_acked(sts.live(), [kv for w in ws for kv in w.acked])
"""

import os
import secrets as _secrets
import sys
import threading
import time

import manifests as M
import netns as N
import pods as P

H = P.H
HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------------------------
# the load

def leader(pods, timeout=20.0, exclude=()):
    """Waits until every pod in pods agrees on one leader among them; returns (Pod, term)."""
    def agreed():
        sts = {p: P.status(p) for p in pods}
        if any(s is None for s in sts.values()):
            return None
        ls = [p for p, s in sts.items() if s.get("role") == "leader"]
        if len(ls) != 1 or ls[0] in exclude:
            return None
        ld = sts[ls[0]]
        if any(s["term"] != ld["term"] or s["leader"] != ld["node"] for s in sts.values()):
            return None
        return ls[0], ld["term"]
    return H.wait_until(agreed, timeout, interval=0.05, what="one agreed leader")


class Writer(threading.Thread):
    """A client of the Service: quorum writes of distinct keys, each with a request id, sent to
    its preferred pod and on 503 / 504 / connection errors retried on the next pod (same
    request id, so a retry after an unknown outcome is applied once) for up to `budget`
    seconds. `targets()` gives the pods to use (their current IPs). Paced at `rate` writes per
    second."""

    def __init__(self, name, targets, cache="k8s", budget=5.0, rate=40.0, first=0):
        super().__init__(daemon=True)
        self.name_, self.targets, self.cache, self.budget = name, targets, cache, budget
        self.period = 1.0 / rate
        self.pref = first
        self.stop_flag = threading.Event()
        self.acked = []  # (key, value)
        self.ack_times = []
        self.failures = []
        self.retries = 0
        self.lock = threading.Lock()

    def run(self):
        clients = {}
        seq = 0
        next_t = time.monotonic()
        while not self.stop_flag.is_set():
            seq += 1
            key = "%s-%d" % (self.name_, seq)
            val = ("v-%s-%d" % (self.name_, seq)).encode()
            rid = _secrets.token_hex(16)  # 32 hex digits, kept across the retries
            t0 = time.monotonic()
            last = None
            done = False
            while time.monotonic() - t0 < self.budget:
                try:
                    pods = self.targets()
                except Exception:  # the pod set changed while it was read
                    pods = []
                if not pods:
                    time.sleep(0.05)
                    continue
                p = pods[self.pref % len(pods)]
                st = None
                try:
                    host, port = p.ip, P.http_addr(p)[1]
                    c = clients.get(p.name)
                    if c is None or c.host != host:
                        if c is not None:
                            c.close()
                        c = clients[p.name] = H.Client(port, host=host, token=P.api_token(p),
                                                       timeout=3)
                    st, _, raw = c.put("/v1/caches/%s/%s?ack=quorum" % (self.cache, key),
                                       body=val, headers={"X-Hacache-Request-Id": rid})
                except Exception as e:
                    last = ("conn", repr(e)[:100])
                    c = clients.pop(p.name, None)
                    if c is not None:
                        c.close()
                if st == 200:
                    done = True
                    break
                if st is not None:
                    last = (st, (H.jbody(raw) or {}).get("code"))
                    if st not in (503, 504):
                        break
                self.retries += 1
                self.pref += 1
                time.sleep(0.02)
            now = time.monotonic()
            with self.lock:
                if done:
                    self.acked.append((key, val))
                    self.ack_times.append(now)
                else:
                    self.failures.append((key, last))
            next_t = max(next_t + self.period, now)
            d = next_t - time.monotonic()
            if d > 0:
                self.stop_flag.wait(d)
        for c in clients.values():
            c.close()


def stop_writers(writers):
    for w in writers:
        w.stop_flag.set()
    for w in writers:
        w.join(15.0)
    fails = [f for w in writers for f in w.failures]
    H.log("writes acknowledged: %d, failed: %d, retries: %d" % (
        sum(len(w.acked) for w in writers), len(fails), sum(w.retries for w in writers)))
    H.check_eq(fails[:10], [], "failed writes")
    return sum(len(w.acked) for w in writers), len(fails)


def start_writers(sts, n=2):
    targets = lambda: [p for p in list(sts.pods.values()) if p.running()]  # noqa: E731
    ws = [Writer("w%d" % k, targets, first=k) for k in range(n)]
    for w in ws:
        w.start()
    return ws


def writes_after(ws, t, k=5):
    return all(sum(1 for x in list(w.ack_times) if x > t) >= k for w in ws)


def replace_figures(ws, figs):
    out = []
    for f in figs:
        H.wait_until(lambda: writes_after(ws, f["t_ready"]), 20.0,
                     what="writes after %s came back" % f["pod"])
        gap = max(H.max_gap(w.ack_times, f["t_stop"], f["t_ready"]) for w in ws)
        f["pause_s"] = gap
        H.log("%s (%s): SIGTERM->exit %.2fs, exit %r, new IP %s (was %s), ->ready %.2fs, "
              "longest write pause %.3fs" % (f["pod"], f["why"], f["shutdown_s"], f["exit"],
                                             f["new_ip"], f["old_ip"], f["ready_s"], gap))
        H.check(all(c == 0 for c in f["exit"].values()), "%s: every container exited 0 (%r)" % (
            f["pod"], f["exit"]))
        H.check(f["new_ip"] != f["old_ip"], "%s: a new IP" % f["pod"])
        out.append(f)
    return out


# --------------------------------------------------------------------------------------------
# checks

def check_acked(pods, acked, cache="k8s", threads=4):
    """Every acknowledged (key, value) reads back from every pod with linearizable reads.
    Returns (reads, missing or wrong)."""
    acked = list(acked)
    bad = []
    lock = threading.Lock()

    def reader(pod, part):
        host, port = P.http_addr(pod)
        c = H.Client(port, host=host, token=P.api_token(pod), timeout=10)
        try:
            for key, val in part:
                st = None
                for _ in range(3):  # a connection reset is retried (reads are idempotent)
                    try:
                        st, _, body = c.get("/v1/caches/%s/%s?consistency=linearizable" % (
                            cache, key))
                        break
                    except (OSError, Exception):
                        c.close()
                        c = H.Client(port, host=host, token=P.api_token(pod), timeout=10)
                if st != 200 or body != val:
                    with lock:
                        bad.append((pod.name, key, st))
        finally:
            c.close()

    def per_pod(pod):
        ts = []
        for k in range(threads):
            part = acked[k::threads]
            if P.host_is_loopback(pod):
                t = threading.Thread(target=lambda pt=part: N.in_netns(
                    "/run/netns/" + pod.ns, reader, pod, pt, timeout=600))
            else:
                t = threading.Thread(target=reader, args=(pod, part))
            t.start()
            ts.append(t)
        for t in ts:
            t.join(600)
    pts = [threading.Thread(target=per_pod, args=(p,)) for p in pods]
    for t in pts:
        t.start()
    for t in pts:
        t.join(900)
    H.check_eq(bad[:10], [], "acknowledged writes read back (linearizable) from every pod")
    return len(acked) * len(pods), len(bad)


def check_identity(sts):
    """Each hacached found itself by its hostname: no HOSTNAME_OVERWRITE, HOSTNAME and the
    UTS hostname are the pod name, /v1/status names the pod's HA_HOSTS entry."""
    for p in sts.live():
        ct = p.container()
        H.check("HOSTNAME_OVERWRITE" not in ct.env, "%s: HOSTNAME_OVERWRITE in the env" % p.name)
        H.check_eq(ct.env.get("HOSTNAME"), p.name, "%s: HOSTNAME" % p.name)
        un = N.run("nsenter", "-t", str(p.pause.pid), "-u", "hostname").strip()
        H.check_eq(un, p.name, "%s: the pod's UTS hostname" % p.name)
        sc = sts.template["spec"].get("securityContext") or {}
        if "runAsUser" in sc:
            uid, gid, groups = N.proc_ids(ct.proc.pid)
            H.check(uid == sc["runAsUser"] and gid == sc.get("runAsGroup", gid) and
                    sc.get("fsGroup", groups[0] if groups else None) in groups,
                    "%s: runs as uid %r gid %r groups %r (securityContext %r)" % (
                        p.name, uid, gid, groups, sc))
        st = P.status(p)
        want = sts.peer_host(p.name)
        H.check(st is not None and st.get("node", "").split(":")[0] == want,
                "%s: /v1/status node %r is its HA_HOSTS entry %s" % (
                    p.name, st and st.get("node"), want))


def check_links(sts, timeout=20.0):
    """Every pod's peers are connected: the names were resolved again after IPs changed."""
    def linked():
        for p in sts.live():
            st = P.status(p)
            if st is None or not st.get("peers") or \
                    not all(x.get("connected") for x in st["peers"]):
                return False
        return True
    H.wait_until(linked, timeout, interval=0.1, what="every peer link up on every pod")


def figures(name, **kw):
    """One FIGURES: line per scenario, for docs/OPERATIONS.md."""
    parts = []
    for k, v in kw.items():
        if isinstance(v, float):
            v = "%.2f" % v
        elif isinstance(v, (list, tuple)):
            v = "[" + ",".join(("%.2f" % x) if isinstance(x, float) else str(x) for x in v) + "]"
        parts.append("%s=%s" % (k, v))
    print("FIGURES: %s %s" % (name, " ".join(parts)), flush=True)


class Monitor(threading.Thread):
    """Polls /v1/status of `pods()` every `interval` seconds: samples (time, pod name, role,
    term, leader), for counting terms and leader changes over a window."""

    def __init__(self, pods, interval=0.1):
        super().__init__(daemon=True)
        self.pods, self.interval = pods, interval
        self.samples = []
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            for p in self.pods():
                st = P.status(p, timeout=0.5)
                if st is not None:
                    self.samples.append((time.monotonic(), p.name, st.get("role"),
                                         st.get("term"), st.get("leader")))
            self.stop_flag.wait(self.interval)

    def stop(self):
        self.stop_flag.set()
        self.join(10)

    def window(self, t_from, t_to=None, names=None):
        return [s for s in self.samples if s[0] >= t_from and (t_to is None or s[0] <= t_to)
                and (names is None or s[1] in names)]

    def terms(self, t_from, t_to=None, names=None):
        return sorted({s[3] for s in self.window(t_from, t_to, names)})

    def leader_changes(self, t_from, t_to=None, names=None):
        """Changes of the leader a node reports (None excluded), the most any node saw."""
        per = {}
        for s in self.window(t_from, t_to, names):
            if s[4]:
                seq = per.setdefault(s[1], [])
                if not seq or seq[-1] != s[4]:
                    seq.append(s[4])
        return max([len(v) - 1 for v in per.values()] or [0])

    def leaders_seen(self, t_from, t_to=None):
        """Nodes that said they lead, per term."""
        out = {}
        for s in self.window(t_from, t_to):
            if s[2] == "leader":
                out.setdefault(s[3], set()).add(s[1])
        return out


# --------------------------------------------------------------------------------------------
# the application container of the sidecar layout

APP_CLIENT = os.path.join(HERE, "app_client.py")


def app_client(pod, cspec):
    """argv of the application container: tests/k8s/app_client.py against the sidecar on
    loopback (HACACHE_ENDPOINTS / HACACHE_TOKEN of the container's env, else the sidecar's
    CACHE_HTTP_ADDR port and API token file)."""
    py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    argv = [py, "-u", APP_CLIENT, "--prefix", "%s-%s" % (pod.name, pod.uid[:6])]
    # the example image serves the port its readiness probe checks: so does the stand-in
    pr = cspec.get("readinessProbe") or {}
    probe_port = (pr.get("tcpSocket") or pr.get("httpGet") or {}).get("port")
    if probe_port is not None:
        argv += ["--listen", str(pod.port_number(cspec, probe_port))]
    names = {e["name"] for e in cspec.get("env") or []}
    if "HACACHE_ENDPOINTS" not in names or "HACACHE_TOKEN" not in names:
        side = [c for c in pod.containers if M.is_hacache(c.spec)]
        if side:
            a = side[0].env.get("CACHE_HTTP_ADDR", "127.0.0.1:8080")
            argv += ["--endpoint", "http://127.0.0.1:%s" % a.rsplit(":", 1)[1]]
            if side[0].env.get("CACHE_API_TOKEN_FILE"):
                argv += ["--token-file", side[0].env["CACHE_API_TOKEN_FILE"]]
    return argv


def app_log(ct):
    """(acked [(key, value bytes, monotonic time)], failures [(key, reason)], exited cleanly)
    of an application container's output."""
    acked, failed, clean = [], [], False
    for line in ct.log().splitlines():
        f = line.split(" ", 3)
        if f[0] == "ACK" and len(f) == 4:
            acked.append((f[1], f[2].encode(), float(f[3])))
        elif f[0] == "FAIL":
            f = line.split(" ", 2)
            failed.append((f[1] if len(f) > 1 else "", f[2] if len(f) > 2 else ""))
        elif f[0] == "EXIT":
            clean = True
    return acked, failed, clean
