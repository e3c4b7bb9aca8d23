"""Cluster mode: no wrong answers while a node is not current (SPEC §3, issue 12 acceptance 5).

3 nodes; 20,000 keys are written (quorum), then a writer keeps rewriting 200 of them through the
leader with increasing counters. A follower is stopped (SIGTERM) and started again, once with
its data dir and once with the data dir emptied, and polled from the moment its HTTP port
opens. A node that is starting, joining, recovering or catching up answers local reads with
503 and a reason (JSON "reason"), never with 404 or an old value:
  - a key that exists is never answered 404;
  - a rewritten key is never answered with a counter older than one the writer had acknowledged
    ACK_SLACK_S before the read began (a caught-up follower applies a commit one append after
    the leader, so local reads on any follower are that fresh; a node that serves from a store
    it has not caught up would be seconds or the whole data set behind);
  - cold keys read back exactly the value written;
  - answers are correct (200) within 5 s of the port opening (normal build only; the sanitizer
    build is slower).
"""

import os
import random
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

N_KEYS = 20000
HOT = 200          # keys rewritten all along
ACK_SLACK_S = 0.3  # how much older than the read's start an acknowledged write may be and still
                   # not be visible on a caught-up follower
READY_S = 5.0      # correct answers within this long after the HTTP port opens


def cold_value(i):
    return ("cold-%d" % i).encode()


def preload(node):
    """20,000 keys, two connections in parallel, every write acknowledged."""
    def part(lo, hi, out):
        c = H.Client(node.port, timeout=10)
        for i in range(lo, hi):
            st, _, _ = c.put("/v1/caches/s/k%d?ack=quorum" % i, body=cold_value(i))
            if st != 200:
                out.append((i, st))
        c.close()
    errs = []
    ts = [threading.Thread(target=part, args=(a, a + N_KEYS // 2, errs))
          for a in (0, N_KEYS // 2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    H.check(not errs, "preload: every write acknowledged (failures: %r)" % errs[:5])


class HotWriter(threading.Thread):
    """Rewrites k0..k(HOT-1) with counters through the leader; remembers, per key, the
    acknowledged counters with the instant each acknowledgement arrived."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}  # key index -> list of (monotonic ack time, counter)
        self.ok = 0

    def run(self):
        c = H.Client(self.node.port, timeout=5)
        n = 0
        while not self.stop_flag.is_set():
            k = n % HOT
            n += 1
            try:
                st, _, _ = c.put("/v1/caches/s/k%d?ack=quorum" % k, body=b"hot-%d" % n)
            except Exception:
                st = None
                c.close()
                c = H.Client(self.node.port, timeout=5)
            if st == 200:
                with self.lock:
                    self.acked.setdefault(k, []).append((time.monotonic(), n))
                    self.ok += 1
            else:
                time.sleep(0.01)
        c.close()

    def floor(self, k, before):
        """The newest counter of key k acknowledged at or before `before`, 0 if none."""
        with self.lock:
            best = 0
            for t, v in self.acked.get(k, ()):
                if t <= before and v > best:
                    best = v
            return best


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def poll_restarted(node, w, seconds):
    """Reads random hot and cold keys from `node` as fast as one connection allows, from the
    moment its port opens, for `seconds`. Returns counts and the first instant after which every
    answer was 200."""
    t_open = None
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if port_open(node.port):
            t_open = time.monotonic()
            break
        time.sleep(0.002)
    H.check(t_open is not None, "the restarted node opened its HTTP port")
    stats = {"200": 0, "503": 0, "other": 0, "wrong": [], "reasons": {}}
    last_not_ok = t_open
    c = H.Client(node.port, timeout=5)
    rnd = random.Random(7)
    end = t_open + seconds
    while time.monotonic() < end:
        hot = rnd.random() < 0.5
        k = rnd.randrange(HOT) if hot else rnd.randrange(HOT, N_KEYS)
        t_read = time.monotonic()
        floor = w.floor(k, t_read - ACK_SLACK_S) if hot else 0
        try:
            st, _, body = c.get("/v1/caches/s/k%d" % k)
        except Exception:
            c.close()
            c = H.Client(node.port, timeout=5)
            last_not_ok = time.monotonic()
            continue
        if st == 200:
            stats["200"] += 1
            if hot:
                got = int(body.split(b"-", 1)[1]) if body.startswith(b"hot-") else 0
                if got < floor:
                    stats["wrong"].append(("old value", k, got, floor))
            elif body != cold_value(k):
                stats["wrong"].append(("cold value", k, body[:40]))
        elif st == 503:
            stats["503"] += 1
            last_not_ok = time.monotonic()
            try:
                import json
                reason = json.loads(body).get("reason", "?")
            except Exception:
                reason = "?"
            stats["reasons"][reason] = stats["reasons"].get(reason, 0) + 1
        else:
            stats["other"] += 1
            last_not_ok = time.monotonic()
            stats["wrong"].append(("status", k, st))
    c.close()
    return stats, last_not_ok - t_open


def restart_and_poll(cl, w, wipe):
    ld = cl.wait_leader(15.0)
    f = [x for x in cl.live() if x is not ld][0]
    idx = f.index
    f.stop(10.0)
    if wipe:
        d = cl.env(idx)["CACHE_DATA_DIR"]
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    w0 = w.ok
    C.wait_all(lambda: w.ok >= w0 + 300, 30.0, "300 more writes while the follower is down")
    f2 = cl.start_node(idx, wait=False)
    stats, settle = poll_restarted(f2, w, 8.0)
    what = "emptied data dir" if wipe else "data dir kept"
    H.log("%s: %d answers 200, %d answers 503 %r, %d other; correct after %.2fs" % (
        what, stats["200"], stats["503"], stats["reasons"], stats["other"], settle))
    H.check(not stats["wrong"], "%s: no 404, no old value (first: %r)" % (
        what, stats["wrong"][:5]))
    H.check(stats["200"] > 0, "%s: the restarted node answered reads" % what)
    if not H.is_sanitized_build():
        H.check(settle <= READY_S, "%s: correct answers within %.0fs of the port opening "
                "(%.2fs)" % (what, READY_S, settle))
    return f2


def test_no_wrong_answers_while_catching_up():
    cl = C.Cluster(3)
    w = None
    try:
        ld = cl.wait_leader(20.0)
        t0 = time.monotonic()
        preload(ld)
        H.log("preloaded %d keys in %.1fs" % (N_KEYS, time.monotonic() - t0))
        w = HotWriter(ld)
        w.start()
        C.wait_all(lambda: w.ok >= 200, 30.0, "hot writes under way")
        restart_and_poll(cl, w, wipe=False)
        restart_and_poll(cl, w, wipe=True)
        w.stop_flag.set()
        w.join(10.0)
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        if w is not None:
            w.stop_flag.set()
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
