"""The asynchronous client's local stale copy (libhacache_uv; the rules of hacache.h's "Local
stale copy", shared with the synchronous client), driven through build/bin/aclient_smoke (the
commands of client_smoke, each call on a libuv loop) against real hacached processes:

(a) a 3-node cluster, every node stopped (SIGTERM, exited): a key the client deleted (hc_adel,
    hc_adel_ex), overwrote (hc_aput, hc_aput_ex), incremented (hc_aincr) or cleared (hc_aclear)
    is not found or unavailable, never the old value; a key it only read comes back with
    stale = 1, its version and what is left of its TTL, within the stale limit and not after it
    (the client's max_stale_ms), nor past the TTL it was read with; a failed conditional write
    leaves the copy; a cache switched to fail closed (hc_aclient_set_cache_stale 0) and a call
    with no_stale get no copy; a client without max_stale_ms serves the copy of a cache it gave
    a limit, and of no other;
(b) a node that invalidated after a quorum loss (503 no_quorum) is an answer: no copy unless
    hc_aclient_set_stale_on_invalidated; a serve_stale cache is answered by the node itself,
    stale, and that answer is not remembered;
(c) calls in flight together (one node behind a TCP proxy that holds back the answers to
    chosen requests): a get answered by the node before this client's delete of the key, whose answer
    arrives after the delete ended, is returned but not remembered; while a delete of the key is
    in flight, a get that no node answers gets no copy (another key's copy is served then).
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402
import test_client as TC  # noqa: E402
import test_client_api as A  # noqa: E402

ENOTFOUND, EUNKNOWN_OUTCOME = -1, -7
NO_ANSWER = A.NO_ANSWER


def binary():
    bd = os.environ.get("HC_BUILD_DIR") or os.path.join(H.REPO, "build")
    return os.path.join(bd, "bin", "aclient_smoke")


def session(eps, *cmds, timeout_ms, max_stale_ms=0):
    return A.Session(eps, *cmds, timeout_ms=timeout_ms, max_stale_ms=max_stale_ms,
                     binary=binary())


def check_stale(res, value, what, version=None):
    H.check_eq((res["rc"], res["stale"], res.get("value")), (0, 1, value),
               "%s: the copy, stale (%s)" % (what, res))
    if version is not None:
        H.check_eq(res["version"], version, "%s: the version it was read with" % what)


def check_never_old(res, old, what):
    H.check(res["rc"] in (ENOTFOUND,) + NO_ANSWER and res.get("value") != old,
            "%s: not found or unavailable, never the old value (%s)" % (what, res))


def test_async_stale_copy_acceptance():
    """(a) every node of a 3-node cluster stopped."""
    cl = C.Cluster(3)
    T = 1500
    LIMIT_MS = 10000  # the short-limit client's max_stale_ms
    try:
        cl.wait_leader(30.0)
        cl.wait_ready(20.0)
        eps = ",".join(A.ep(n) for n in cl.nodes)
        # every key is read once after its put; the TTL key is asked first after the stop
        keys = ("ttl", "deleted", "deleted-ex", "overwritten", "overwritten-ex", "counted",
                "cond-failed", "only-read")
        old = {k: "5" if k == "counted" else "old-" + k for k in keys}
        cmds = ["cachestale", "sess", "0"]
        for k in keys:
            cmds += ["putx", "s", k, old[k], "quorum", "12000" if k == "ttl" else "0", "-",
                     "getx", "s", k, "default"]
        cmds += ["put", "t", "cleared", "old-cleared", "quorum", "getx", "t", "cleared", "default",
                 "put", "sess", "tok", "secret", "quorum", "getx", "sess", "tok", "default",
                 "del", "s", "deleted", "quorum", "delx", "s", "deleted-ex", "quorum", "-",
                 "put", "s", "overwritten", "new", "quorum",
                 "putx", "s", "overwritten-ex", "new", "quorum", "60000", "-",
                 "incr", "s", "counted", "1", "quorum", "clear", "t", "quorum",
                 "putx", "s", "cond-failed", "new", "quorum", "0", "absent",
                 "delx", "s", "cond-failed", "quorum", "v0", "wait"]
        for k in keys:
            cmds += ["getx", "s", k, "default"]
        cmds += ["getx", "t", "cleared", "default", "getx", "sess", "tok", "default",
                 "getx", "s", "only-read", "nostale", "wait",
                 "getx", "s", "ttl", "default", "getx", "s", "only-read", "default"]
        s = session(eps, *cmds, timeout_ms=T, max_stale_ms=60000)
        lenient = session(eps, *A.LENIENT_CMDS, timeout_ms=T, max_stale_ms=0)
        t_put = time.monotonic()
        before = s.step()
        H.check(all(r["rc"] == 0 for r in before[:-2]), "calls before the stop: %s" % before)
        H.check_eq([r["rc"] for r in before[-2:]], [A.ECONFLICT, A.ECONFLICT],
                   "putx absent / delx if_version 0 of an existing key")
        reads = [r for r in before if r["op"] == "getx"]
        read = dict(zip(keys, reads))
        for k in keys:
            H.check_eq((read[k]["value"], read[k]["stale"]), (old[k], 0), "%s read" % k)
        first = lenient.step()
        H.check(all(r["rc"] == 0 for r in first), "lenient client before the stop: %s" % first)
        # the short-limit client reads its key last, just before the stop
        t_spawn = time.monotonic()
        short = session(eps, "put", "sh", "k", "v", "quorum", "getx", "sh", "k", "default",
                        "wait", "getx", "sh", "k", "default", "wait",
                        "getx", "sh", "k", "default", timeout_ms=T, max_stale_ms=LIMIT_MS)
        H.check_eq([r["rc"] for r in short.step()], [0, 0], "short-limit client before the stop")
        t_read = time.monotonic()  # its copy was read before this
        for n in cl.nodes:
            n.stop_ok()

        for x in (short, s, lenient):
            x.go()
        within = short.collect()[0]
        t_within = time.monotonic()
        H.log("short-limit copy asked %.1f s after its client started" % (t_within - t_spawn))
        if t_within - t_spawn < LIMIT_MS / 1000.0 - 0.5:
            check_stale(within, "v", "a key only read, within the client's stale limit")
        else:
            H.note(False, "stopping the cluster took too long to check the copy within its "
                   "limit (%.1f s)" % (t_within - t_spawn))

        lines = s.collect()
        after = dict(zip(keys, lines[:len(keys)]))
        for k in ("deleted", "deleted-ex", "overwritten", "overwritten-ex", "counted"):
            check_never_old(after[k], old[k], "%s by this client, every node stopped" % k)
        for k in ("cond-failed", "only-read"):
            check_stale(after[k], old[k], "%s, every node stopped" % k, read[k]["version"])
        r = after["ttl"]
        H.check(r["rc"] == 0 and r["stale"] == 1 and r["has_ttl"] == 1 and
                0 < r["ttl"] < read["ttl"]["ttl"], "a copy with TTL: served with what is "
                "left of it (%s, read with %d)" % (r, read["ttl"]["ttl"]))
        more = lines[len(keys):]
        check_never_old(more[0], "old-cleared", "a key of a cache this client cleared")
        A.check_no_answer(more[1], "a cache switched to fail closed", T)
        A.check_no_answer(more[2], "a call with no_stale", T)

        res = lenient.collect()
        check_stale(res[0], "key-1", "max_stale_ms 0, but a cache with its own limit")
        A.check_no_answer(res[1], "max_stale_ms 0, a cache without its own limit", T)
        lenient.close()

        # past the limit (read before t_read, asked after this) and past the 12 s TTL
        H.wait_until(lambda: time.monotonic() - t_put > 12.5 and
                     time.monotonic() - t_read > LIMIT_MS / 1000.0 + 0.5, 30.0, interval=0.1,
                     what="past the TTL and the short limit")
        s.go()
        short.go()
        A.check_no_answer(short.collect()[0], "a copy older than the client's stale limit", T)
        last = s.collect()
        A.check_no_answer(last[0], "a copy whose TTL ran out", T)
        check_stale(last[1], "old-only-read", "a key only read, still within the limit")
        s.close()
        short.close()
    finally:
        cl.cleanup()


def test_async_invalidated_node_is_an_answer():
    """(b) 3 nodes, two killed: the survivor invalidates after the grace time and answers 503
    no_quorum; then it is killed too."""
    cl, leader, eps = TC.invalidating_cluster()
    try:
        strict = session(eps, *TC.QLOSS_CMDS, timeout_ms=2000, max_stale_ms=60000)
        lenient = session(eps, *TC.QLOSS_CMDS, timeout_ms=2000, max_stale_ms="60000i")
        # no copy before the loss: what it gets can only come from a node
        nocopy = session(eps, "wait", "get", "ss", "k", "get", "q", "k", "wait", "get", "ss", "k",
                         timeout_ms=2000, max_stale_ms=60000)
        nocopy.step()
        for x in (strict, lenient):
            first = x.step()
            H.check_eq([(r["rc"], r.get("value")) for r in first], [(0, None), (0, "v")],
                       "before the loss")
        for nd in cl.nodes:
            if nd is not leader:
                nd.kill()
        C.wait_invalidated(leader)
        res = strict.step()[0]
        A.check_rc(res, A.EUNAVAILABLE, "invalidated answer, no opt-in")
        strict.close()
        res = lenient.step()[0]
        check_stale(res, "v", "invalidated answer, opted in")
        lenient.close()
        ss, q = nocopy.step()
        H.check_eq((ss["rc"], ss["stale"], ss.get("value")), (0, 1, "kept"),
                   "a serve_stale cache: the survivor's own stale answer")
        A.check_rc(q, A.EUNAVAILABLE, "an invalidate cache, no copy")
        leader.kill()
        A.check_no_answer(nocopy.step()[0], "the survivor killed: its stale answer was not "
                          "remembered", 2000)
        nocopy.close()
    finally:
        cl.cleanup()


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of one node: rules[(method, path)] (path without the
    query) holds the answer to such a request back for that many seconds (the request itself
    goes on at once)."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.rules = {}
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        try:
            self.lsock.close()
        except OSError:
            pass

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _shut(*socks):
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def _hold(self, data):
        """How long to hold back the answer to the request that begins data."""
        line = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(line) < 2:
            return 0
        return self.rules.get((line[0], line[1].split("?", 1)[0]), 0)

    def _serve(self, c):
        """Relays one client connection, each way on its own thread."""
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            u.settimeout(None)
        except OSError:
            self._shut(c)
            return
        hold = [0]
        threading.Thread(target=self._down, args=(u, c, hold), daemon=True).start()
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                hold[0] = self._hold(data)
                u.sendall(data)
        except OSError:
            pass
        self._shut(c, u)

    @staticmethod
    def _down(u, c, hold):
        try:
            while True:
                data = u.recv(65536)
                if not data:
                    break
                if hold[0]:
                    time.sleep(hold[0])
                    hold[0] = 0
                c.sendall(data)
        except OSError:
            pass
        Proxy._shut(c, u)


def test_async_reads_and_writes_in_flight_together():
    """(c) one node behind a proxy."""
    node = H.Node()
    proxy = Proxy(node.port)
    T = 3000  # an attempt gets 1.5 s: the held-back answer (1 s) still arrives within it
    try:
        eps = "http://127.0.0.1:%d" % proxy.port
        s = session(eps, "put", "s", "raced", "old-raced", "quorum", "get", "s", "raced",
                    "put", "s", "w", "old-w", "quorum", "get", "s", "w",
                    "put", "s", "w2", "old-w2", "quorum", "get", "s", "w2", "wait",
                    # the get reaches the node first; its answer comes after the delete's
                    "bg", "get", "s", "raced", "sleep", "300", "del", "s", "raced", "quorum",
                    "join", "wait",
                    "get", "s", "raced",
                    # gets that no node answers while a delete of one of their keys is in flight
                    "bg", "get", "s", "w", "bg", "get", "s", "w2", "sleep", "1000",
                    "del", "s", "w", "quorum", "join", "wait",
                    "get", "s", "w", "get", "s", "w2",
                    timeout_ms=T, max_stale_ms=60000)
        before = s.step()
        H.check_eq([(r["op"], r["rc"], r.get("value")) for r in before],
                   [("put", 0, None), ("get", 0, "old-raced"), ("put", 0, None),
                    ("get", 0, "old-w"), ("put", 0, None), ("get", 0, "old-w2")],
                   "reads before")
        proxy.rules[("GET", "/v1/caches/s/raced")] = 1.0
        raced = s.step()
        H.check_eq([r["op"] for r in raced], ["sleep", "del", "get"],
                   "the delete ended before the get that began first (%s)" % raced)
        H.check_eq((raced[1]["rc"], raced[2]["rc"], raced[2]["stale"], raced[2].get("value")),
                   (0, 0, 0, "old-raced"), "the get was answered before the delete")
        # no node answers these gets (held back past their deadline); the delete of w stays in
        # flight past the gets' deadline (it started 1 s after them)
        for k in ("raced", "w", "w2"):
            proxy.rules[("GET", "/v1/caches/s/" + k)] = 30.0
        proxy.rules[("DELETE", "/v1/caches/s/w")] = 30.0
        lines = s.step()
        check_never_old(lines[0], "old-raced", "a key whose delete overlapped a get answered "
                        "before it")
        order = [(r["op"], r.get("key")) for r in lines[1:]]
        H.check_eq(sorted(order[:3], key=str), [("get", "w"), ("get", "w2"), ("sleep", None)],
                   "the gets ended before the delete (%s)" % lines)
        H.check_eq(order[3], ("del", None), "the delete ended last (%s)" % lines)
        by_key = {r.get("key"): r for r in lines[1:] if r["op"] == "get"}
        check_stale(by_key["w2"], "old-w2", "a key without a write in flight, no node answering")
        H.check(by_key["w"]["rc"] in NO_ANSWER and by_key["w"].get("value") != "old-w",
                "a key whose delete is in flight, no node answering: no copy (%s)" % by_key["w"])
        H.check(lines[-1]["rc"] in (0, EUNKNOWN_OUTCOME), "the delete (%s)" % lines[-1])
        last = s.step()
        check_never_old(last[0], "old-w", "after the delete")
        check_stale(last[1], "old-w2", "a key only read")
        s.close()
    finally:
        proxy.close()
    node.stop_ok()


if __name__ == "__main__":
    H.run(globals())
