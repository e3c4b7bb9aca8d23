#!/usr/bin/env python3
"""time_to_voter.py — how long a node restarted WITHOUT a data dir takes to be a voter again,
per GiB of cached data.

A node without CACHE_DATA_DIR is a new incarnation on every start: it joins as a learner, the
leader streams it a snapshot of the whole data set, removes the host's old incarnation and
promotes the new one; /readyz turns 200 and /v1/status "ready" true only once it is a voter.
This script measures that path against the amount of data (not part of ctest: minutes per GiB,
and several GiB of memory):

  for each --gib value:
    a fresh cluster of --nodes on 127.0.0.1 (tests/integration/cluster.py: real hacached
    processes, mTLS between peers, no data dirs), CACHE_MAX_MEMORY large enough for the data;
    fill it through the leader with values of --value-bytes (ack=quorum, --writers parallel
    HTTP/1.1 clients, 503/504 retried with the same request id) until --gib GiB of values are
    stored; wait until every node holds them (entry counts, then one /v1/caches?digest=1 per
    node, all equal, no eviction) and the cluster is quiet again (see below);
    --rounds times: restart a FOLLOWER without state (SIGTERM, start again at once), then the
    LEADER (SIGTERM hands leadership over first); after each one wait until every node sees
    the committed voters, then check the restarted node's digest against the data set's.

Per restart: SIGTERM -> exit (stop_s), process start -> GET /healthz 200 (healthz_s),
-> GET /readyz 200 and /v1/status "ready" (ready_s: a voter), -> every node sees the voters
(voters_s). The snapshot figures come from the nodes' logs, /metrics has only counters and the
last size (hacache_snapshots_{sent,failed,installed}_total, hacache_snapshot_last_bytes):
snap_s = sender "snapshot transfer started" (minus its serialize_ms) -> receiver "snapshot
installed" (log timestamps, ms), snap_MiB = its bytes; tries = serializations started for the
new node (more than 1: transfers were aborted, the line below the table says why). Peak RSS
of the restarted process (VmHWM) and the RSS growth of the sender (sampled each poll). During
each restart a probe writes 64-byte values with ack=quorum (--probe-rate per second) through
a node that keeps running: wr_max_s is the longest write (retries included), wr_fail the writes
that did not succeed within 30 s.

Measurement hygiene: a digest runs on the node's event loop and stalls it for a time
proportional to the data (the leader serializes a snapshot in a forked child and a new node
loads one on a worker thread, so those no longer stall a loop); a stalled leader can lose its
leadership. So digests are taken outside the measured windows, and every
restart starts from a quiet cluster (one leader, every node ready, no term change for --quiet
seconds).

Why --value-bytes defaults to 1 MiB - 1 KiB: in cluster mode a write is one raft entry and
raft refuses entries above 1 MiB (max_bytes_per_msg), so a value of exactly CACHE_MAX_VALUE_SIZE
(1MiB) is answered 413 there.

usage: bench/time_to_voter.py [--gib 0.25,1.0] [--rounds N] [--kinds follower,leader]
                              [--nodes N] [--value-bytes N] [--writers N] [--max-memory SIZE]
                              [--timeout S] [--fill-timeout S] [--quiet S] [--probe-rate R]
                              [--env NAME=VALUE ...]
env:   HACACHED (binary) or HC_BUILD_DIR (build directory holding bin/hacached; default:
       build-rel, then build). Build it Release: the figures are about the release binary.
output: a table on stdout, also bench/out/time_to_voter.txt; every node's log of the run in
        bench/out/raw/ttv-<gib>-<node>.log (n1.2 = node 1's second restart). Every wait has a
        deadline; every process started is stopped and every temporary file and directory
        (one root under TMPDIR) removed on exit, also on failure and on SIGINT/SIGTERM.
        Exit 1 when a measurement failed: the message says what the logs show meanwhile
        (snapshot attempts and why they were aborted, candidacies, stalls, probe writes).
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "bench", "out")

if not os.environ.get("HACACHED") and not os.environ.get("HC_BUILD_DIR"):
    for _bd in ("build-rel", "build"):
        if os.access(os.path.join(REPO, _bd, "bin", "hacached"), os.X_OK):
            os.environ["HC_BUILD_DIR"] = os.path.join(REPO, _bd)
            break

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20
CACHE = "bulk"
POLL_S = 0.05


def note(msg):
    print("time_to_voter: " + msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# ------------------------------------------------------------------------------------------
# small helpers

def parse_size(s):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\s*", s, re.I)
    if not m:
        raise argparse.ArgumentTypeError("bad size %r (e.g. 3GiB, 2560MiB)" % s)
    mult = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[
        (m.group(2) or "").lower()[:1]]
    return int(float(m.group(1)) * mult)


def http(port, method, path, body=None, timeout=5.0):
    c = H.Client(port, timeout=timeout)
    try:
        return c.request(method, path, body=body)
    finally:
        c.close()


def get_json(port, path, timeout=5.0):
    st, _, raw = http(port, "GET", path, timeout=timeout)
    return st, (H.jbody(raw) if st == 200 else None)


def proc_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def metric(node, name):
    try:
        return node.metrics().get(name)
    except Exception:
        return None


def bounded(pred, timeout, what, interval=POLL_S):
    """wait_until with a Failure naming what was awaited (never unbounded)."""
    try:
        return H.wait_until(pred, timeout, interval=interval, what=what)
    except AssertionError as e:
        raise Failure(str(e))


# ------------------------------------------------------------------------------------------
# logs

_LINE_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_log(text):
    """logfmt lines -> list of dicts (ts converted to epoch seconds as `t`)."""
    out = []
    for line in text.splitlines():
        d = {}
        for k, v in _LINE_RE.findall(line):
            d[k] = v[1:-1] if v.startswith('"') else v
        ts = d.get("ts")
        if ts:
            try:
                d["t"] = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=timezone.utc).timestamp()
            except ValueError:
                d["t"] = None
        out.append(d)
    return out


def events(nd, msg, since=None, **match):
    """Log events of node nd with this msg (at or after `since`, epoch s) whose fields match."""
    res = []
    for d in parse_log(nd.stderr()):
        if d.get("msg") != msg:
            continue
        if since is not None and (d.get("t") is None or d["t"] < since - 0.002):
            continue
        if all(d.get(k) == v for k, v in match.items()):
            res.append(d)
    return res


# ------------------------------------------------------------------------------------------
# cluster state

def self_role(st):
    if not st:
        return None
    for m in st.get("members", []):
        if m.get("node") == st.get("node"):
            return m.get("role")
    return None


def all_voters(cl, n):
    for nd in cl.live():
        st = C._status(nd)
        if st is None or not st.get("members_committed"):
            return False
        if sorted(m["role"] for m in st.get("members", [])) != ["voter"] * n:
            return False
    return True


def cache_info(node, digest=False):
    st, obj = get_json(node.port, "/v1/caches" + ("?digest=1" if digest else ""), timeout=60.0)
    if obj is None:
        return None
    for x in obj.get("caches", []):
        if x.get("name") == CACHE:
            return x
    return {}


def wait_quiet(cl, quiet_s, timeout, what):
    """Waits until one agreed leader, every node ready and no term change for quiet_s seconds:
    the state a measurement starts from (a stalled node may have caused an election)."""
    t_end = time.monotonic() + timeout
    while True:
        left = t_end - time.monotonic()
        if left <= 0:
            raise Failure("no quiet cluster within %.0fs (%s)" % (timeout, what))
        try:
            ld = cl.wait_leader(max(1.0, min(20.0, left)))
            cl.wait_ready(max(1.0, min(20.0, left)))
        except AssertionError:
            continue
        term = C._status(ld)["term"]
        t_q = time.monotonic()
        stable = True
        while time.monotonic() - t_q < quiet_s:
            time.sleep(0.2)
            sts = cl.statuses()
            if any(x is None or x["term"] != term or not x["ready"] for x in sts.values()):
                stable = False
                break
        if stable:
            return ld, term


def check_data(cl, nvals, quiet_s, gib):
    """Every node holds nvals entries, no eviction, then one digest per node (equal). A digest
    is computed on the node's event loop (about as long as hashing the whole data set), so a
    node is asked once its entry count is right, one node at a time, and the cluster is left
    to calm down afterwards. Returns (digest, {node name: seconds the digest call took})."""
    def counts():
        for nd in cl.live():
            ci = cache_info(nd)
            if ci is None or ci.get("entries") != nvals:
                return False
            if ci.get("evictions"):
                raise Failure("%s evicted %r entries: raise --max-memory" % (
                    nd.name, ci.get("evictions")))
        return True
    bounded(counts, 60 + 60 * gib, "%d entries on every node" % nvals, interval=0.2)
    digests, took = {}, {}
    for nd in sorted(cl.live(), key=lambda x: x.index):
        t = time.monotonic()
        ci = cache_info(nd, digest=True)
        took[nd.name] = time.monotonic() - t
        digests[nd.name] = ci.get("digest") if ci else None
    if len(set(digests.values())) != 1 or None in digests.values():
        raise Failure("digests differ: %r" % digests)
    wait_quiet(cl, quiet_s, 60.0, "after the digests")
    return list(digests.values())[0], took


# ------------------------------------------------------------------------------------------
# write probe

class Probe(threading.Thread):
    """Small quorum writes (64 bytes, --probe-rate per second) through one node that keeps
    running, during a restart: what a client sees while the new incarnation is caught up. A
    503/504 or a timeout is retried with the same request id; latency = first attempt ->
    success. A write that does not succeed within 30 s counts as failed."""

    def __init__(self, node, rate):
        super().__init__(daemon=True)
        self.node, self.period = node, 1.0 / rate
        self.lat = []      # (seconds after start, latency)
        self.failed = 0
        self.stop_flag = threading.Event()

    def run(self):
        t0 = time.monotonic()
        c = H.Client(self.node.port, timeout=10.0)
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            rid = os.urandom(16).hex()
            ts = time.monotonic()
            ok = False
            while not self.stop_flag.is_set() and time.monotonic() - ts < 30.0:
                try:
                    st, _, _ = c.put("/v1/caches/probe/k%d?ack=quorum" % (i % 64),
                                     body=b"p" * 64, headers={"X-Hacache-Request-Id": rid})
                except Exception:
                    st = None
                    c.close()
                    c = H.Client(self.node.port, timeout=10.0)
                if st == 200:
                    ok = True
                    break
                time.sleep(0.05)
            if ok:
                self.lat.append((ts - t0, time.monotonic() - ts))
            elif not self.stop_flag.is_set():
                self.failed += 1
            time.sleep(max(0.0, self.period - (time.monotonic() - ts)))
        c.close()

    def finish(self):
        self.stop_flag.set()
        self.join(timeout=40.0)
        lats = [x[1] for x in self.lat]
        return {"writes": len(lats), "failed": self.failed,
                "max_s": max(lats) if lats else None,
                "over_1s": sum(1 for x in lats if x > 1.0)}


# ------------------------------------------------------------------------------------------
# fill

class Writer(threading.Thread):
    """PUTs keys i = k, k+W, k+2W, ... < n with ack=quorum to the leader; on 503/504 or a
    connection error it finds the leader again and retries the same key (the same request id,
    so a retried write applies once), until the deadline."""

    def __init__(self, cl, k, nwriters, n, block, deadline, errors):
        super().__init__(daemon=True)
        self.cl, self.k, self.w, self.n = cl, k, nwriters, n
        self.block, self.deadline, self.errors = block, deadline, errors
        self.done = 0
        self.retries = 0
        self.stop_flag = threading.Event()

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the caller
            self.errors.append("writer %d: %r" % (self.k, e))

    def _run(self):
        port = None
        c = None
        val = bytearray(self.block)
        for i in range(self.k, self.n, self.w):
            val[:16] = b"%016d" % i  # every value distinct
            rid = os.urandom(16).hex()
            while True:
                if self.stop_flag.is_set():
                    return
                if time.monotonic() > self.deadline:
                    raise Failure("fill deadline passed at key %d" % i)
                if port is None:
                    ld = self.cl.leader()
                    if ld is None:
                        time.sleep(0.1)
                        continue
                    port = ld.port
                    c = H.Client(port, timeout=60.0)
                try:
                    st, _, body = c.put("/v1/caches/%s/k%07d?ack=quorum" % (CACHE, i),
                                        body=bytes(val),
                                        headers={"X-Hacache-Request-Id": rid})
                except Exception:
                    st, body = None, b""
                if st == 200:
                    self.done += 1
                    break
                if st not in (None, 503, 504):
                    raise Failure("PUT k%07d -> %r %r" % (i, st, body[:200]))
                self.retries += 1
                if c is not None:
                    c.close()
                port = c = None
                time.sleep(0.1)
        if c is not None:
            c.close()


def fill(cl, gib, value_bytes, nwriters, deadline_s):
    n = int(math.ceil(gib * GiB / value_bytes))
    block = os.urandom(value_bytes)
    errors = []
    t0 = time.monotonic()
    ws = [Writer(cl, k, nwriters, n, block, t0 + deadline_s, errors) for k in range(nwriters)]
    for w in ws:
        w.start()
    last = t0
    while any(w.is_alive() for w in ws):
        for w in ws:
            w.join(timeout=1.0)
        if errors:
            break
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            done = sum(w.done for w in ws)
            note("  filling: %d/%d values (%.0f MiB) after %.0fs" % (
                done, n, done * value_bytes / MiB, last - t0))
        if time.monotonic() > t0 + deadline_s + 70:  # a PUT is bounded by its 60 s timeout
            errors.append("writers still running after the fill deadline")
            break
    for w in ws:
        w.stop_flag.set()
    for w in ws:
        w.join(timeout=70.0)
    if errors:
        raise Failure("fill failed: " + "; ".join(errors[:4]))
    took = time.monotonic() - t0
    return n, took, sum(w.retries for w in ws)


# ------------------------------------------------------------------------------------------
# one restart

def restart(cl, kind, all_nodes, timeout_s, gib, ref_digest, quiet_s, probe_rate):
    """Restarts the leader or a follower without state and measures. Returns a dict."""
    n = cl.n
    ld, term0 = wait_quiet(cl, quiet_s, 60.0, "before the %s restart" % kind)
    if kind == "leader":
        victim = ld
    else:
        victim = sorted((x for x in cl.live() if x is not ld), key=lambda x: x.index)[0]
    idx = victim.index
    others = [x for x in cl.live() if x is not victim]
    base_rss = {x: proc_kib(x.pid, "VmRSS") for x in others}
    sent0 = {x: metric(x, "hacache_snapshots_sent_total") or 0 for x in others}
    failed0 = {x: metric(x, "hacache_snapshots_failed_total") or 0 for x in others}
    r = {"kind": kind, "victim": victim.name, "gib": gib}

    probe = None
    if probe_rate > 0:
        probe = Probe(sorted(others, key=lambda x: x.index)[0], probe_rate)
        r["probe_via"] = probe.node.name
        probe.start()
    try:
        new, seen, t0, wall0, new_peak, peak_rss = _restart_window(
            cl, victim, idx, kind, others, all_nodes, timeout_s, base_rss)
    except Failure as e:
        if probe is not None:
            raise Failure("%s; probe writes through %s: %s" % (e, probe.node.name,
                                                               json.dumps(probe.finish())))
        raise
    finally:
        if probe is not None and probe.is_alive():
            r["probe"] = probe.finish()
    r["stop_s"], r["stop_rc"] = seen.pop("stop_s"), seen.pop("stop_rc")
    r.update(healthz_s=seen["healthz"], readyz_s=seen["readyz"],
             ready_s=seen["status_ready"], role_at_ready=seen["role_at_ready"],
             phases={k: round(v, 3) for k, v in seen.items()
                     if k not in ("healthz", "readyz", "status_ready", "role_at_ready")})
    return _after_ready(cl, r, new, seen, t0, wall0, new_peak, peak_rss, base_rss, others,
                        term0, sent0, failed0, ref_digest)


def window_summary(others, new, since, until):
    """What the logs say happened between since and until (epoch s): snapshot attempts and
    aborts per sender, candidacies, stalls, dead links."""
    peer = new.extra_env["HOSTNAME_OVERWRITE"]

    def ev(x, msg, **kw):
        return [e for e in events(x, msg, since=since, **kw)
                if e.get("t") and e["t"] <= until]
    out = []
    for x in others:
        st = ev(x, "snapshot transfer started", peer=peer)
        ab = ev(x, "snapshot transfer aborted", peer=peer)
        ns = ev(x, "snapshot not sent", peer=peer)
        ok = ev(x, "snapshot sent", peer=peer)
        ld = ev(x, "raft state", role="leader")
        if st or ab or ns or ok or ld:
            reasons = {}
            for e in ab + ns:
                reasons[e.get("reason")] = reasons.get(e.get("reason"), 0) + 1
            out.append("%s: %d serializations (%s ms), %d sent, aborted %s, led %d times" % (
                x.name, len(st), "/".join(e.get("serialize_ms", "?") for e in st), len(ok),
                json.dumps(reasons), len(ld)))
    cand = sum(len(ev(x, "raft state", role="candidate")) for x in others)
    stalls = ["%s %sms" % (x.name, e.get("stalled_ms")) for x in others + [new]
              for e in ev(x, "process was suspended, waiting for a quorum before serving")]
    dead = sum(len([e for e in ev(x, "peer link down") if "dead link" in e.get("reason", "")])
               for x in others + [new])
    out.append("%d candidacies, %d dead-link closes, stalls: %s" % (cand, dead,
                                                                    ", ".join(stalls) or "none"))
    return "; ".join(out)


def _restart_window(cl, victim, idx, kind, others, all_nodes, timeout_s, base_rss):
    """SIGTERM, start again, poll until ready as a voter. Returns what was seen."""
    peak_rss = dict(base_rss)
    t_term = time.monotonic()
    rc = victim.stop(timeout=30.0)
    stop_s = time.monotonic() - t_term
    if rc != 0:
        raise Failure("%s exited with %r after SIGTERM" % (victim.name, rc))

    wall0 = time.time()
    t0 = time.monotonic()
    new = cl.start_node(idx, wait=False)
    new.name = "n%d.%d" % (idx, sum(1 for x in all_nodes if x.index == idx))
    all_nodes.append(new)
    new_peak = 0
    seen = {}
    last_reason = None
    deadline = t0 + timeout_s
    while True:
        now = time.monotonic()
        if new.proc.poll() is not None:
            raise Failure("restarted node exited with %r; log tail:\n%s" % (
                new.proc.returncode, new.stderr_tail(40)))
        rss = proc_kib(new.pid, "VmRSS") or 0
        new_peak = max(new_peak, rss)
        for x in others:
            v = proc_kib(x.pid, "VmRSS")
            if v is not None:
                peak_rss[x] = max(peak_rss[x] or 0, v)
        try:
            if "healthz" not in seen and http(new.port, "GET", "/healthz", timeout=2.0)[0] == 200:
                seen["healthz"] = now - t0
            if "healthz" in seen:
                st, _, raw = http(new.port, "GET", "/readyz", timeout=2.0)
                if st == 200:
                    seen.setdefault("readyz", now - t0)
                else:
                    last_reason = (H.jbody(raw) or {}).get("reason")
                    if last_reason and last_reason not in seen:
                        seen[last_reason] = now - t0  # first time seen in this state
                s = C._status(new)
                if s and s.get("ready"):
                    seen.setdefault("status_ready", now - t0)
                    seen.setdefault("role_at_ready", self_role(s))
        except Exception:
            pass
        if "readyz" in seen and "status_ready" in seen:
            break
        if now > deadline:
            raise Failure("restart of the %s (%s): not ready as a voter within %.0fs (seen: %s, "
                          "last /readyz reason %r); meanwhile: %s" % (
                              kind, new.name, timeout_s, json.dumps(seen), last_reason,
                              window_summary(others, new, wall0, time.time())))
        time.sleep(POLL_S)
    seen["stop_s"], seen["stop_rc"] = stop_s, rc
    return new, seen, t0, wall0, new_peak, peak_rss


def _after_ready(cl, r, new, seen, t0, wall0, new_peak, peak_rss, base_rss, others, term0,
                 sent0, failed0, ref_digest):
    n = cl.n
    wall_ready = wall0 + seen["status_ready"]
    if r["role_at_ready"] != "voter":
        raise Failure("ready but not a voter: %r" % r["role_at_ready"])
    bounded(lambda: all_voters(cl, n), 30.0, "%d committed voters on every node" % n)
    r["voters_s"] = time.monotonic() - t0
    r["new_peak_rss_mib"] = max(new_peak, proc_kib(new.pid, "VmHWM") or 0) / 1024.0
    ld2 = cl.wait_leader(20.0)
    # elections on the nodes that kept running, process start -> ready (a leader restart
    # hands leadership over once: term +1)
    r["term_delta"] = C._status(ld2)["term"] - term0
    r["elections"] = sum(1 for x in others for e in events(x, "raft state", since=wall0,
                                                             role="candidate")
                         if e.get("t") and e["t"] <= wall_ready)
    r["prevotes"] = sum(1 for x in others for e in events(x, "raft state", since=wall0,
                                                            role="precandidate")
                        if e.get("t") and e["t"] <= wall_ready)

    # snapshot: sender = whoever logged a transfer to the new node since its start
    peer = new.extra_env["HOSTNAME_OVERWRITE"]
    inst = events(new, "snapshot installed")
    r["snapshots_installed"] = len(inst)
    r["snap_bytes"] = metric(new, "hacache_snapshot_last_bytes")
    senders = [x for x in others if events(x, "snapshot transfer started", since=wall0,
                                            peer=peer)]
    sender = senders[-1] if senders else ld2
    r["sender"] = sender.name
    started = events(sender, "snapshot transfer started", since=wall0, peer=peer)
    sent = events(sender, "snapshot sent", since=wall0, peer=peer)
    # every attempt on every node that kept running (a leader change moves the sender)
    attempts = sorted(((e["t"], x.name, int(e.get("serialize_ms", 0)))
                       for x in others
                       for e in events(x, "snapshot transfer started", since=wall0, peer=peer)
                       if e.get("t") and e["t"] <= wall_ready))
    r["snap_started"] = len(attempts)
    r["serialize_total_s"] = sum(a[2] for a in attempts) / 1000.0
    r["snap_aborted"] = ["%s: %s" % (x.name, d.get("reason"))
                         for x in others
                         for d in events(x, "snapshot transfer aborted", since=wall0, peer=peer)
                         if d.get("t") and d["t"] <= wall_ready] + \
        ["%s: not sent: %s" % (x.name, d.get("reason"))
         for x in others for d in events(x, "snapshot not sent", since=wall0, peer=peer)
         if d.get("t") and d["t"] <= wall_ready]
    r["snap_sent_delta"] = sum((metric(x, "hacache_snapshots_sent_total") or 0) - sent0[x]
                               for x in others)
    r["snap_failed_delta"] = sum((metric(x, "hacache_snapshots_failed_total") or 0) - failed0[x]
                                 for x in others)
    r["sender_rss_growth_mib"] = ((peak_rss[sender] or 0) - (base_rss[sender] or 0)) / 1024.0
    r["snap_s"] = r["serialize_s"] = r["install_s"] = r["send_s"] = None
    if started and inst and inst[-1].get("t") and started[-1].get("t"):
        s = started[-1]
        ser = int(s.get("serialize_ms", 0)) / 1000.0
        r["serialize_s"] = ser
        r["snap_s"] = inst[-1]["t"] - (s["t"] - ser)
        r["install_s"] = int(inst[-1].get("ms", 0)) / 1000.0  # first chunk -> installed
        r["snap_bytes"] = int(inst[-1].get("bytes", r["snap_bytes"] or 0))
        r["snap_start_at_s"] = (s["t"] - ser) - wall0  # after the process start
    if sent:
        r["send_s"] = int(sent[-1].get("ms", 0)) / 1000.0  # last chunk queued on the link
    mem = {}
    for msg, key in (("membership: adding a learner", "learner_at_s"),
                     ("membership: removing a replaced incarnation", "old_removed_at_s"),
                     ("membership: promoting a caught-up learner", "promoted_at_s")):
        ev = events(ld2, msg, since=wall0, node=peer) or \
            [e for x in others for e in events(x, msg, since=wall0, node=peer)]
        if ev and ev[-1].get("t"):
            mem[key] = round(ev[-1]["t"] - wall0, 3)
    if started and started[-1].get("t"):
        mem["snap_serialized_at_s"] = round(started[-1]["t"] - wall0, 3)
    if inst and inst[-1].get("t"):
        mem["snap_installed_at_s"] = round(inst[-1]["t"] - wall0, 3)
    r["membership"] = mem
    r["stalls"] = [(x.name, int(e.get("stalled_ms", 0))) for x in others + [new]
                   for e in events(x, "process was suspended, waiting for a quorum before "
                                   "serving", since=wall0) if e.get("t") and e["t"] <= wall_ready]

    # data check (after the measured window: a digest stalls the node while it hashes)
    ci = cache_info(new, digest=True)
    if ci is None or ci.get("digest") != ref_digest:
        raise Failure("the restarted node's digest %r differs from the data set's %r" % (
            ci and ci.get("digest"), ref_digest))
    r["entries"] = ci.get("entries")
    return r


# ------------------------------------------------------------------------------------------
# one data size

def run_size(args, gib, results, logs_prefix):
    value_bytes = args.value_bytes
    n = args.nodes
    max_mem = args.max_memory or max(2 * GiB, int((2 * gib + 0.5) * GiB) // MiB * MiB)
    need_kib = int((n * gib * 1.3 + 3 * gib) * GiB / 1024) + (1 << 20)
    avail = mem_available_kib()
    if avail and avail < need_kib:
        raise Failure("%.2f GiB needs about %.1f GiB of free memory (%d copies of the data, the "
                      "sender's serialized snapshot, the receiver's staging and fresh store); "
                      "MemAvailable is %.1f GiB" % (gib, need_kib / 1048576.0, n,
                                                    avail / 1048576.0))
    env = {"CACHE_MAX_MEMORY": "%dMiB" % (max_mem // MiB),
           "CACHE_SHUTDOWN_TIMEOUT_MS": "10000"}
    env.update(args.env)
    note("%.2f GiB: %d nodes, no data dirs, CACHE_MAX_MEMORY=%s, values of %d bytes%s" % (
        gib, n, env["CACHE_MAX_MEMORY"], value_bytes,
        "".join(" %s=%s" % kv for kv in sorted(args.env.items()))))
    all_nodes = []
    cl = None
    try:
        cl = C.Cluster(n, data_dirs=False, extra_env=env)  # a half-started one: killed at exit
        all_nodes.extend(x for x in cl.nodes)
        cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        nvals, fill_s, retries = fill(cl, gib, value_bytes, args.writers,
                                      args.fill_timeout or 120 + 300 * gib)
        note("  filled %d values (%.0f MiB) in %.1fs: %.0f MiB/s (%d retries)" % (
            nvals, nvals * value_bytes / MiB, fill_s, nvals * value_bytes / MiB / fill_s,
            retries))
        t = time.monotonic()
        term_before = C._status(cl.wait_leader(20.0))["term"]
        ref, dig_s = check_data(cl, nvals, args.quiet, gib)
        term_after = C._status(cl.wait_leader(20.0))["term"]
        mem = (cache_info(cl.live()[0]) or {}).get("memory_bytes") or 0
        note("  every node holds the data, digests equal (%.1fs; one digest call took %s; "
             "term %d -> %d meanwhile); store %.0f MiB per node" % (
                 time.monotonic() - t, ", ".join("%s %.2fs" % kv for kv in sorted(dig_s.items())),
                 term_before, term_after, mem / MiB))
        for rnd in range(args.rounds):
            for kind in args.kinds:
                r = restart(cl, kind, all_nodes, args.timeout or 60 + 120 * gib, gib, ref,
                            args.quiet, args.probe_rate)
                r["round"] = rnd + 1
                r["nodes"] = n
                r["fill_mib_s"] = nvals * value_bytes / MiB / fill_s
                r["data_mib"] = nvals * value_bytes / MiB
                r["digest_s"] = max(dig_s.values())
                results.append(r)
                note("  %s restart (%s): healthz %.2fs, ready as voter %.2fs, snapshot %s "
                     "(%d serializations), elections %d, probe writes %s, timeline %s" % (
                         kind, r["victim"], r["healthz_s"], r["ready_s"],
                         fmt(r["snap_s"], "%.2fs"), r["snap_started"], r["elections"],
                         r.get("probe"), r["membership"]))
        for nd in cl.live():
            nd.stop(30.0)
    finally:
        os.makedirs(os.path.join(OUT, "raw"), exist_ok=True)
        for nd in all_nodes:
            if nd is None:
                continue
            try:
                nd.kill()
                shutil.copyfile(nd.stderr_path, os.path.join(
                    OUT, "raw", "%s-%s.log" % (logs_prefix, nd.name)))
            except Exception:
                pass
            nd.cleanup_files()
        if cl is not None:
            cl.cleanup()


# ------------------------------------------------------------------------------------------
# report

def fmt(v, f="%.2f"):
    return "-" if v is None else f % v


def table(results):
    hdr = ("GiB", "data_MiB", "nodes", "restart", "rnd", "stop_s", "healthz_s", "ready_s",
           "voters_s", "snap_s", "serial_s", "install_s", "snap_MiB", "ready_s/GiB", "tries",
           "elect", "wr_max_s", "wr_fail", "newRSS_MiB", "sndRSS+MiB")
    rows = [hdr]
    for r in results:
        gib_real = r["data_mib"] / 1024.0
        rows.append((
            "%.2f" % r["gib"], "%.0f" % r["data_mib"], str(r["nodes"]), r["kind"],
            str(r["round"]), fmt(r["stop_s"]), fmt(r["healthz_s"], "%.3f"), fmt(r["ready_s"]),
            fmt(r["voters_s"]), fmt(r["snap_s"]), fmt(r["serialize_s"]), fmt(r["install_s"]),
            fmt(r["snap_bytes"] / MiB if r.get("snap_bytes") else None, "%.0f"),
            fmt(r["ready_s"] / gib_real if gib_real else None), str(r["snap_started"]),
            str(r["elections"]),
            fmt((r.get("probe") or {}).get("max_s")),
            str((r.get("probe") or {}).get("failed", "-")),
            fmt(r["new_peak_rss_mib"], "%.0f"), fmt(r["sender_rss_growth_mib"], "%.0f")))
    w = [max(len(row[i]) for row in rows) for i in range(len(hdr))]
    return "\n".join("  ".join(c.rjust(w[i]) for i, c in enumerate(row)) for row in rows)


LEGEND = """\
stop_s: SIGTERM -> exit; healthz_s, ready_s: process start -> /healthz 200, -> /readyz 200 and
/v1/status ready (a voter); voters_s: -> every node sees the committed voters; snap_s: sender
starts serializing -> receiver installed (log timestamps); serial_s: serialization on the
sender; install_s: first chunk received -> installed (transfer + load), all three of the
attempt that succeeded; tries: snapshot serializations started (all senders); elect:
candidacies on the nodes that kept running, start -> ready (a leader restart hands over
without one); wr_max_s, wr_fail: longest and failed (30 s) probe writes, SIGTERM -> ready;
newRSS_MiB: peak RSS of the restarted process; sndRSS+MiB: RSS growth of the sender (sampled)."""


def main():
    ap = argparse.ArgumentParser(
        description="time to voter per GiB for a node restarted without a data dir",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[-1])
    ap.add_argument("--gib", default="1.0",
                    help="GiB of values to store, a comma list runs each size on a fresh "
                         "cluster (default 1.0)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="follower+leader restarts per size (default 1)")
    ap.add_argument("--kinds", default="follower,leader",
                    help="which restarts, in order (default follower,leader)")
    ap.add_argument("--value-bytes", type=int, default=MiB - 1024,
                    help="size of each value (default 1 MiB - 1 KiB, see above)")
    ap.add_argument("--writers", type=int, default=4, help="parallel writers (default 4)")
    ap.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    ap.add_argument("--probe-rate", type=float, default=10.0,
                    help="small quorum writes per second during each restart, through a node "
                         "that keeps running (default 10; 0 = none)")
    ap.add_argument("--quiet", type=float, default=3.0,
                    help="seconds without a term change before a restart (default 3)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for every node (repeatable), e.g. "
                         "GLIBC_TUNABLES=glibc.malloc.hugetlb=1")
    ap.add_argument("--max-memory", type=parse_size, default=None,
                    help="CACHE_MAX_MEMORY (default max(2GiB, 2 x data + 512MiB))")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds a restart may take to be ready (default 60 + 120 per GiB)")
    ap.add_argument("--fill-timeout", type=float, default=None,
                    help="seconds the fill may take (default 120 + 300 per GiB)")
    args = ap.parse_args()
    try:
        sizes = [float(x) for x in args.gib.split(",") if x.strip()]
    except ValueError:
        ap.error("--gib: a comma list of numbers")
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    try:
        args.env = dict(kv.split("=", 1) for kv in args.env)
    except ValueError:
        ap.error("--env: NAME=VALUE")
    if not sizes or any(s <= 0 for s in sizes) or args.rounds < 1 or args.writers < 1 or \
            args.value_bytes < 64 or args.nodes < 3 or \
            any(k not in ("follower", "leader") for k in args.kinds):
        ap.error("sizes, --rounds, --writers must be positive, --value-bytes >= 64, --nodes >= 3, "
                 "--kinds follower and/or leader")
    if not os.access(H.binary(), os.X_OK):
        ap.error("no hacached binary at %s (set HACACHED or HC_BUILD_DIR)" % H.binary())

    # every temporary file and directory (cluster dirs, certificates, node logs) under one root
    root = tempfile.mkdtemp(prefix="hacache-ttv-")
    tempfile.tempdir = root
    os.makedirs(OUT, exist_ok=True)
    results, failures = [], []
    t_all = time.monotonic()
    load0 = os.getloadavg()[0]
    try:
        note("binary %s" % H.binary())
        for gib in sizes:
            try:
                run_size(args, gib, results, "ttv-%g" % gib)
            except (Failure, AssertionError) as e:
                failures.append("%.2f GiB: %s" % (gib, e))
                note("FAILED %.2f GiB: %s" % (gib, e))
            except Exception:
                failures.append("%.2f GiB: %s" % (gib, traceback.format_exc()))
                note("FAILED %.2f GiB:\n%s" % (gib, traceback.format_exc()))
    finally:
        H._kill_all()
        tempfile.tempdir = None
        shutil.rmtree(root, ignore_errors=True)

    lines = ["time_to_voter.py: %d nodes on loopback without data dirs, mTLS peers, %s; "
             "binary %s; %d cores, load average %.2f at the start, %.2f at the end (other "
             "processes compete for the cores); values of %d bytes%s" % (
                 args.nodes, time.strftime("%Y-%m-%d %H:%M:%S"), H.binary(),
                 os.cpu_count() or 0, load0, os.getloadavg()[0], args.value_bytes,
                 "".join("; %s=%s" % kv for kv in sorted(args.env.items()))),
             "", table(results) if results else "(no restart measured)", "", LEGEND, ""]
    for r in results:
        lines.append("%.2f GiB %s rnd %d: victim %s, sender %s, fill %.0f MiB/s, "
                     "phases %s, membership %s, snapshots started %d / installed %d, "
                     "sent+%d failed+%d%s, ready role %s, send %s s, term +%d, candidacies %d, "
                     "pre-votes %d, stalls (node, ms) %s, digest call %.2f s, "
                     "serializations %d (%.2f s in all), probe %s" % (
                         r["gib"], r["kind"], r["round"], r["victim"], r["sender"],
                         r["fill_mib_s"], json.dumps(r["phases"]), json.dumps(r["membership"]),
                         r["snap_started"], r["snapshots_installed"], r["snap_sent_delta"],
                         r["snap_failed_delta"],
                         (", aborted: %s" % r["snap_aborted"]) if r["snap_aborted"] else "",
                         r["role_at_ready"], fmt(r["send_s"]), r["term_delta"],
                         r["elections"], r["prevotes"], r["stalls"], r["digest_s"],
                         r["snap_started"], r["serialize_total_s"], json.dumps(r.get("probe"))))
    for f in failures:
        lines.append("FAILED " + f)
    lines.append("total %.0fs; node logs in bench/out/raw/ttv-*.log" % (
        time.monotonic() - t_all))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(OUT, "time_to_voter.txt"), "w") as f:
        f.write(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
