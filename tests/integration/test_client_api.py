"""libhacache's full data API (hacache.h, issue 14 acceptance 3 and 6), driven through
build/bin/client_smoke against live hacached processes:

(a) reads at each consistency level through a follower: linearizable and leader reads return the
    value the leader acknowledged just before; a local read returns it or the one before; with
    the leader stopped the follower still serves local reads while leader / linearizable reads
    through it get no answer, so the level (per call, and the client default of hc_get) is what
    the node was asked for;
(b) conditional puts and deletes (if_absent, if_version right and wrong, if_version 0) with the
    versions they return, equal to what reads report;
(c) version and remaining TTL in results (0 < ttl <= the TTL, decreasing, none without TTL, the
    entry gone once it ran out), at every consistency level;
(d) incr, clear, cache settings (hc_cache_configure / hc_cache_info round trip; default_ttl_ms
    applied to a put without TTL);
(e) typed errors: not_integer, overflow, too_large (value and key), insufficient_memory, auth;
(f) acceptance 3 on a 3-node cluster (max_stale_ms 60000, every node stopped): a deleted or
    overwritten key is never served from the copy, a key only read is (stale = 1, with its
    version and what is left of its TTL), a copy is never served past the TTL it was read with;
    the per-cache fail-closed switch (hc_client_set_cache_stale 0) and a per-cache limit on a
    client without max_stale_ms; no_stale per call.
(The invalidated-node part of acceptance 3 is test_client.py test_invalidated_node_is_an_answer.)
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

ENOTFOUND, EUNAVAILABLE, ETIMEDOUT, EAUTH, EINVAL, ETOOLARGE = -1, -2, -3, -4, -5, -6
ECONFLICT, ENOMEM, ENOTINT, EOVERFLOW = -8, -9, -10, -11
NO_ANSWER = (EUNAVAILABLE, ETIMEDOUT)
TIMEOUT_MS = 5000
SLACK_MS = 1500
NUMERIC = ("rc", "ms", "len", "stale", "version", "has_ttl", "ttl", "entries", "memory",
           "max_memory", "default_ttl_ms", "max_stale_ms")


# For a client without max_stale_ms: one cache gets a stale limit of its own; a key of it and one
# of another cache are read, and asked again after the 'wait' (nodes down: only the first has a
# copy to serve).
LENIENT_CMDS = ("cachestale", "jwks", "60000", "put", "jwks", "k", "key-1", "quorum",
                "getx", "jwks", "k", "default", "put", "other", "k", "o", "quorum",
                "getx", "other", "k", "default", "wait",
                "getx", "jwks", "k", "default", "getx", "other", "k", "default")


def smoke_binary():
    bd = os.environ.get("HC_BUILD_DIR") or os.path.join(H.REPO, "build")
    return os.path.join(bd, "bin", "client_smoke")


def parse(line):
    """'getx rc=0 ms=3 version=4 value=v' -> {'op': 'getx', 'rc': 0, 'version': 4, ...}"""
    parts = line.strip().split(" ")
    out = {"op": parts[0]}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        out[k] = int(v) if k in NUMERIC or (k == "value" and parts[0] == "incr") else v
    return out


def smoke_args(endpoints, cmds, token, timeout_ms, max_stale_ms, binary=None):
    return [binary or smoke_binary(), endpoints, token, str(timeout_ms),
            str(max_stale_ms)] + list(cmds)


def run_smoke(endpoints, *cmds, token="-", timeout_ms=TIMEOUT_MS, max_stale_ms=0):
    """Runs the commands in one client; returns the parsed lines after the 'new' line."""
    p = subprocess.run(smoke_args(endpoints, cmds, token, timeout_ms, max_stale_ms),
                       capture_output=True, text=True, timeout=120)
    H.check_eq(p.returncode, 0, "client_smoke exit (stderr %s)" % p.stderr[-2000:])
    res = [parse(x) for x in p.stdout.splitlines()]
    H.check_eq(res[0]["rc"], 0, "client created")
    return res[1:]


class Session:
    """A client_smoke process (or another driver of the same commands: binary) whose commands
    stop at each 'wait' until step() resumes it."""

    def __init__(self, endpoints, *cmds, token="-", timeout_ms=TIMEOUT_MS, max_stale_ms=0,
                 binary=None):
        self.p = subprocess.Popen(smoke_args(endpoints, cmds, token, timeout_ms, max_stale_ms,
                                             binary),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.started = False

    def step(self):
        """Runs up to the next 'wait' (or the end); returns those results."""
        self.go()
        return self.collect()

    def go(self):
        """Lets the process run on from its 'wait' (at the start: from the beginning)."""
        if self.started:
            self.p.stdin.write("go\n")
            self.p.stdin.flush()
        self.started = True

    def collect(self):
        """The results up to the next 'wait' (or the end)."""
        lines = []
        for line in self.p.stdout:
            if line.strip() == "waiting":
                return lines
            r = parse(line)
            if r["op"] != "new":
                lines.append(r)
        H.check_eq(self.p.wait(120), 0, "client_smoke exit")
        return lines

    def close(self):
        """Lets the process run its remaining commands (none expected) and checks its exit."""
        if not self.p.stdin.closed:
            self.p.stdin.close()
        H.check_eq(self.p.wait(120), 0, "client_smoke exit (sanitizers report leaks as 23)")


def ep(node):
    return "http://127.0.0.1:%d" % node.port


def check_rc(res, rc, what):
    H.check_eq(res["rc"], rc, "%s (%s)" % (what, res))


def check_no_answer(res, what, timeout_ms):
    H.check(res["rc"] in NO_ANSWER, "%s: no answer, no copy (%s)" % (what, res))
    H.check(res["ms"] <= timeout_ms + SLACK_MS, "%s within the deadline (%s)" % (what, res))


def leader_put(leader, path, body):
    c = H.Client(leader.port)
    try:
        st, obj, _, _ = c.json("PUT", path, body)
    finally:
        c.close()
    H.check_eq(st, 200, "PUT %s on the leader" % path)
    return obj["version"]


def test_reads_at_each_consistency():
    """(a) 3 nodes. Writes acknowledged by the leader, then read through a follower at every
    level; then the leader stopped: only local reads are answered through the follower."""
    # a long election timeout: the stopped leader stays the leader the follower knows; a long
    # grace: nobody invalidates meanwhile
    cl = C.Cluster(3, election_timeout_ms=8000,
                   extra_env={"CACHE_QUORUM_LOSS_GRACE_MS": "60000"})
    try:
        leader = cl.wait_leader(30.0)
        cl.wait_ready(20.0)
        follower = [n for n in cl.nodes if n is not leader][0]
        rounds = 10
        cmds = ["wait"]
        for _ in range(rounds):
            cmds += ["getx", "r", "k", "linearizable", "getx", "r", "k", "leader",
                     "getx", "r", "k", "local", "wait"]
        s = Session(ep(follower), *cmds)
        s.step()
        lagged = 0
        for i in range(rounds):
            version = leader_put(leader, "/v1/caches/r/k?ack=quorum", ("v%d" % i).encode())
            lin, lead, local = s.step()
            for res, what in ((lin, "linearizable"), (lead, "leader")):
                H.check_eq((res["rc"], res["value"], res["version"], res["stale"]),
                           (0, "v%d" % i, version, 0),
                           "round %d: a %s read through a follower sees the acknowledged "
                           "write (%s)" % (i, what, res))
            H.check(local["rc"] == 0 and local["value"] in ("v%d" % i, "v%d" % (i - 1)) or
                    (i == 0 and local["rc"] == ENOTFOUND),
                    "round %d: a local read is the acknowledged value or the one before (%s)"
                    % (i, local))
            lagged += local.get("value") != "v%d" % i
        s.close()
        H.log("local reads on the follower that lagged the leader's ack: %d of %d"
              % (lagged, rounds))

        # the leader stopped (SIGSTOP, well inside the election timeout): the follower answers
        # local reads itself; leader and linearizable reads wait for the leader and get no answer
        T = 1000  # four reads without an answer: well inside the election timeout
        cmds = ["getx", "r", "k", "local", "getx", "r", "k", "linearizable",
                "getx", "r", "k", "leader", "get", "r", "k",
                "consistency", "linearizable", "get", "r", "k", "getx", "r", "k", "default",
                "getx", "r", "k", "local"]
        leader.signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            res = run_smoke(ep(follower), *cmds, timeout_ms=T)
            took = time.monotonic() - t0
        finally:
            leader.signal(signal.SIGCONT)
        H.check(took < 7.0, "all the reads ran while the leader was surely still the leader "
                "(%.1fs, election timeout 8 s)" % took)
        last = "v%d" % (rounds - 1)
        H.check_eq((res[0]["rc"], res[0]["value"]), (0, last), "local read, leader stopped")
        check_no_answer(res[1], "linearizable read, leader stopped", T)
        check_no_answer(res[2], "leader read, leader stopped", T)
        H.check_eq((res[3]["rc"], res[3]["value"]), (0, last), "hc_get: local by default")
        check_rc(res[4], 0, "hc_client_set_consistency")
        check_no_answer(res[5], "hc_get at the client's consistency (linearizable)", T)
        check_no_answer(res[6], "hc_get_ex without opts: the client's consistency", T)
        H.check_eq((res[7]["rc"], res[7]["value"]), (0, last),
                   "hc_get_ex local overrides the client's consistency")
        # and once the leader runs again, the same client reads through the follower
        res = run_smoke(ep(follower), "consistency", "linearizable", "get", "r", "k")
        H.check_eq((res[1]["rc"], res[1].get("value")), (0, last), "leader back")
    finally:
        cl.cleanup()


def test_conditional_writes_versions_ttl_incr_clear_settings():
    """(b), (c), (d) on a 3-node cluster, the client talking to one follower (writes forwarded
    to the leader), reads at linearizable so what they report is the acknowledged state."""
    cl = C.Cluster(3, extra_env={"CACHE_EXPIRY_INTERVAL_MS": "100"})
    try:
        leader = cl.wait_leader(30.0)
        cl.wait_ready(20.0)
        follower = [n for n in cl.nodes if n is not leader][0]
        e = ep(follower)
        res = run_smoke(
            e, "consistency", "linearizable",
            "putx", "w", "k", "a", "quorum", "0", "absent",    # 1 created
            "putx", "w", "k", "b", "quorum", "0", "absent",    # 2 conflict
            "getx", "w", "k", "default",                       # 3 a, version of 1
            "putx", "w", "k", "c", "quorum", "0", "v0",        # 4 must be absent: conflict
            "putx", "w", "k", "d", "quorum", "0", "v999999",   # 5 wrong version: conflict
            "getx", "w", "k", "default",                       # 6 still a
            "putx", "w", "n", "x", "quorum", "0", "v0",        # 7 absent key, if_version 0: ok
            "putx", "w", "k", "f", "once", "0", "absent",      # 8 condition needs quorum
            "delx", "w", "k", "quorum", "v999999",             # 9 wrong version: conflict
            "delx", "w", "k", "once", "v1",                    # 10 condition needs quorum
            "getx", "w", "k", "default")                       # 11 still a
        check_rc(res[1], 0, "if_absent on a new key")
        v1 = res[1]["version"]
        H.check(v1 > 0, "a version is returned: %s" % res[1])
        check_rc(res[2], ECONFLICT, "if_absent on an existing key")
        H.check_eq((res[3]["value"], res[3]["version"]), ("a", v1), "value and version after")
        check_rc(res[4], ECONFLICT, "if_version 0 (must be absent) on an existing key")
        check_rc(res[5], ECONFLICT, "if_version with a wrong version")
        H.check_eq((res[6]["value"], res[6]["version"]), ("a", v1),
                   "failed conditions wrote nothing")
        check_rc(res[7], 0, "if_version 0 on an absent key")
        check_rc(res[8], EINVAL, "if_absent with ack once")
        check_rc(res[9], ECONFLICT, "delete with a wrong version")
        check_rc(res[10], EINVAL, "delete condition with ack once")
        H.check_eq((res[11]["rc"], res[11]["value"]), (0, "a"), "nothing deleted")

        # if_version with the right version: the new version is returned and read back
        res = run_smoke(
            e, "consistency", "linearizable",
            "putx", "w", "k", "b", "quorum", "0", "v%d" % v1,
            "getx", "w", "k", "default",
            "putx", "w", "k", "stale-writer", "quorum", "0", "v%d" % v1)
        check_rc(res[1], 0, "if_version with the right version")
        v2 = res[1]["version"]
        H.check(v2 > v1, "the new version is greater: %d > %d" % (v2, v1))
        H.check_eq((res[2]["value"], res[2]["version"]), ("b", v2), "read back with its version")
        check_rc(res[3], ECONFLICT, "a second writer with the old version loses")
        res = run_smoke(e, "delx", "w", "k", "quorum", "v%d" % v2,
                        "getx", "w", "k", "linearizable", "delx", "w", "k", "quorum", "-")
        check_rc(res[0], 0, "delete with the right version")
        check_rc(res[1], ENOTFOUND, "gone")
        check_rc(res[2], ENOTFOUND, "delete of an absent key")

        # (c) remaining TTL, at every level; none without TTL
        res = run_smoke(e, "putx", "t", "ttl", "x", "quorum", "60000", "-",
                        "putx", "t", "forever", "y", "quorum", "0", "-",
                        "getx", "t", "ttl", "linearizable", "getx", "t", "ttl", "leader",
                        "getx", "t", "ttl", "local", "getx", "t", "forever", "linearizable")
        for r, what in ((res[2], "linearizable"), (res[3], "leader"), (res[4], "local")):
            H.check(r["rc"] == 0 and r["has_ttl"] == 1 and 0 < r["ttl"] <= 60000,
                    "%s read: 0 < remaining TTL <= 60000 (%s)" % (what, r))
            H.check_eq(r["version"], res[0]["version"], "%s read: the put's version" % what)
        H.check_eq((res[5]["has_ttl"], res[5]["ttl"]), (0, 0), "no TTL: has_ttl 0")
        first = res[2]["ttl"]

        def decreased():
            r = run_smoke(e, "getx", "t", "ttl", "linearizable")[0]
            return r["rc"] == 0 and r["has_ttl"] == 1 and r["ttl"] < first

        H.wait_until(decreased, 10.0, interval=0.01, what="the remaining TTL decreases")
        res = run_smoke(e, "putx", "t", "short", "x", "quorum", "2000", "-",
                        "getx", "t", "short", "local")
        H.check(res[1]["rc"] == 0 and 0 < res[1]["ttl"] <= 2000, "short TTL: %s" % res[1])
        H.wait_until(lambda: run_smoke(e, "getx", "t", "short", "linearizable")[0]["rc"]
                     == ENOTFOUND, 10.0, interval=0.05, what="the entry is gone once its TTL ran out")

        # (d) incr, clear, cache settings
        res = run_smoke(
            e, "incr", "i", "n", "5", "quorum", "incr", "i", "n", "-7", "quorum",
            "getx", "i", "n", "linearizable", "put", "i", "other", "x", "quorum",
            "clear", "i", "quorum", "getx", "i", "n", "linearizable",
            "getx", "i", "other", "linearizable", "incr", "i", "n", "1", "quorum")
        H.check_eq([r["value"] for r in res[:2]], [5, -2], "incr results")
        H.check_eq((res[2]["rc"], res[2]["value"]), (0, "-2"), "the counter read back")
        check_rc(res[4], 0, "clear")
        check_rc(res[5], ENOTFOUND, "cleared")
        check_rc(res[6], ENOTFOUND, "cleared too")
        H.check_eq(res[7]["value"], 1, "a counter starts again at 0 after clear")

        res = run_smoke(
            e, "info", "cfg", "configure", "cfg", "1048576", "45000", "serve_stale", "30000",
            "info", "cfg", "putx", "cfg", "k", "v", "quorum", "0", "-",
            "putx", "cfg", "own", "v", "quorum", "5000", "-",
            "getx", "cfg", "k", "linearizable", "getx", "cfg", "own", "linearizable",
            "info", "cfg", "configure", "cfg", "0", "0", "invalidate", "0", "info", "cfg",
            "putx", "cfg", "k2", "v", "quorum", "0", "-", "getx", "cfg", "k2", "linearizable")
        check_rc(res[0], ENOTFOUND, "info of a cache that does not exist yet")
        check_rc(res[1], 0, "configure")
        # /v1/caches is the node's applied state: the follower has applied a quorum write it
        # answered, and this configure was answered by it
        H.check_eq((res[2]["rc"], res[2]["max_memory"], res[2]["default_ttl_ms"],
                    res[2]["policy"], res[2]["max_stale_ms"], res[2]["entries"]),
                   (0, 1048576, 45000, "serve_stale", 30000, 0), "info after configure")
        H.check(res[5]["has_ttl"] == 1 and 0 < res[5]["ttl"] <= 45000,
                "a put without TTL gets the cache's default_ttl_ms (%s)" % res[5])
        H.check(res[6]["has_ttl"] == 1 and 0 < res[6]["ttl"] <= 5000,
                "a put's own TTL wins over the default (%s)" % res[6])
        H.check(res[7]["entries"] == 2 and res[7]["memory"] > 0, "info counts: %s" % res[7])
        check_rc(res[8], 0, "configure with zeros")
        H.check_eq((res[9]["max_memory"], res[9]["default_ttl_ms"], res[9]["policy"],
                    res[9]["max_stale_ms"]), (0, 0, "invalidate", 0),
                   "every setting replaced (0: none)")
        H.check_eq(res[11]["has_ttl"], 0, "no default TTL any more")
    finally:
        cl.cleanup()


def test_typed_errors():
    """(e) every typed error a data call can get from a live node."""
    token = "client-api-token-0123456789"
    node = H.Node(env={"CACHE_API_TOKEN": token, "CACHE_MAX_VALUE_SIZE": "65536",
                       "CACHE_MAX_KEY_SIZE": "256"})
    e = ep(node)
    res = run_smoke(e, "put", "e", "s", "abc", "quorum", "incr", "e", "s", "1", "quorum",
                    "incr", "e", "big", "9223372036854775807", "quorum",
                    "incr", "e", "big", "1", "quorum", "incr", "e", "neg", "-9223372036854775807",
                    "quorum", "incr", "e", "neg", "-2", "quorum",
                    "putsize", "e", "huge", "100000", "quorum",
                    "getx", "e", "k" * 300, "local", "putx", "e", "k" * 300, "v", "quorum", "0", "-",
                    "configure", "tiny", "4096", "0", "invalidate", "0",
                    "putsize", "tiny", "v", "20000", "quorum",
                    "getx", "e", "s", "default", token=token)
    check_rc(res[0], 0, "put")
    check_rc(res[1], ENOTINT, "incr of a value that is not an integer")
    check_rc(res[2], 0, "incr to INT64_MAX")
    check_rc(res[3], EOVERFLOW, "incr past INT64_MAX")
    check_rc(res[5], EOVERFLOW, "incr below INT64_MIN")
    check_rc(res[6], ETOOLARGE, "a value over CACHE_MAX_VALUE_SIZE")
    check_rc(res[7], ETOOLARGE, "a key over CACHE_MAX_KEY_SIZE (read)")
    check_rc(res[8], ETOOLARGE, "a key over CACHE_MAX_KEY_SIZE (write)")
    check_rc(res[9], 0, "configure a cache smaller than a value")
    check_rc(res[10], ENOMEM, "a value that cannot fit in its cache at all")
    H.check_eq((res[11]["rc"], res[11]["value"]), (0, "abc"), "the failed writes changed nothing")
    for t in ("wrong-token", "-"):
        res = run_smoke(e, "getx", "e", "s", "linearizable", "putx", "e", "s", "x", "quorum", "0",
                        "absent", "delx", "e", "s", "quorum", "v1", "incr", "e", "n", "1",
                        "quorum", "clear", "e", "quorum", "configure", "e", "0", "0", "invalidate",
                        "0", "info", "e", token=t)
        for r in res:
            check_rc(r, EAUTH, "%s with token %r" % (r["op"], t))
    node.stop_ok()


def test_stale_copy_acceptance():
    """(f) acceptance 3 on a 3-node cluster, every node stopped (SIGTERM, exited): with
    max_stale_ms 60000 a key the client deleted (hc_del, hc_del_ex) or overwrote (hc_put,
    hc_put_ex) is never served from the copy; a key it only read is, with stale = 1, its version
    and what is left of its TTL, and no longer once that TTL ran out. A cache switched to fail
    closed (hc_client_set_cache_stale 0) is never served from the copy, nor a call with
    no_stale; a client without max_stale_ms serves the copy of a cache it gave a limit."""
    cl = C.Cluster(3)
    T = 1500
    try:
        cl.wait_leader(30.0)
        cl.wait_ready(20.0)
        eps = ",".join(ep(n) for n in cl.nodes)
        # the key with a TTL is asked first after the stop, well before its TTL runs out
        keys = ("ttl", "deleted", "deleted-ex", "overwritten", "overwritten-ex", "cond-failed",
                "only-read")
        cmds = ["cachestale", "sess", "0"]
        for k in keys:
            cmds += ["putx", "s", k, "old-" + k, "quorum", "12000" if k == "ttl" else "0", "-",
                     "getx", "s", k, "default"]
        cmds += ["put", "sess", "tok", "secret", "quorum", "getx", "sess", "tok", "default",
                 "del", "s", "deleted", "quorum", "delx", "s", "deleted-ex", "quorum", "-",
                 "put", "s", "overwritten", "new", "quorum",
                 "putx", "s", "overwritten-ex", "new", "quorum", "60000", "-",
                 "putx", "s", "cond-failed", "new", "quorum", "0", "absent",
                 "delx", "s", "cond-failed", "quorum", "v0", "wait"]
        # every node down: each key once; then, once the TTL surely ran out, the ttl key again
        for k in keys:
            cmds += ["getx", "s", k, "default"]
        cmds += ["getx", "sess", "tok", "default", "getx", "s", "only-read", "nostale", "wait",
                 "getx", "s", "ttl", "default", "getx", "s", "only-read", "default"]
        s = Session(eps, *cmds, timeout_ms=T, max_stale_ms=60000)
        lenient = Session(eps, *LENIENT_CMDS, timeout_ms=T, max_stale_ms=0)
        t_put = time.monotonic()
        before = s.step()
        H.check(all(r["rc"] == 0 for r in before[:-2]), "calls before the stop: %s" % before)
        # conditions that failed (the key exists): nothing written
        H.check_eq([r["rc"] for r in before[-2:]], [ECONFLICT, ECONFLICT],
                   "putx absent / delx if_version 0 of an existing key")
        by_key = {}
        for r in before:
            if r["op"] == "getx" and r.get("value", "").startswith("old-"):
                by_key[r["value"][4:]] = r
        first = lenient.step()
        H.check(all(r["rc"] == 0 for r in first), "lenient client before the stop: %s" % first)
        for n in cl.nodes:
            n.stop_ok()

        lines = s.step()
        after = dict(zip(keys, lines[:len(keys)]))
        for k in ("deleted", "deleted-ex", "overwritten", "overwritten-ex"):
            H.check(after[k]["rc"] in (ENOTFOUND,) + NO_ANSWER and after[k].get("value") !=
                    "old-" + k, "%s, every node stopped: not found or unavailable, never the "
                    "old value (%s)" % (k, after[k]))
        # the failed conditional writes changed nothing: the copy stays
        for k in ("cond-failed", "only-read"):
            H.check_eq((after[k]["rc"], after[k]["stale"], after[k]["value"],
                        after[k]["version"]),
                       (0, 1, "old-" + k, by_key[k]["version"]),
                       "%s, every node stopped: the copy, stale, with its version" % k)
        r = after["ttl"]
        H.check(r["rc"] == 0 and r["stale"] == 1 and r["has_ttl"] == 1 and
                0 < r["ttl"] < by_key["ttl"]["ttl"], "a copy with TTL: served with what is "
                "left of it (%s, read with %d)" % (r, by_key["ttl"]["ttl"]))
        more = lines[len(keys):]
        check_no_answer(more[0], "a cache switched to fail closed", T)
        check_no_answer(more[1], "a call with no_stale", T)

        # the time the copy's TTL runs out is known: let it pass, then ask again
        H.wait_until(lambda: time.monotonic() - t_put > 12.5, 30.0, interval=0.1,
                     what="12.5 s after the put with a 12 s TTL")
        last = s.step()
        check_no_answer(last[0], "a copy whose TTL ran out", T)
        H.check_eq((last[1]["rc"], last[1]["stale"]), (0, 1), "a key only read, still")
        s.close()

        res = lenient.step()
        H.check_eq((res[0]["rc"], res[0]["stale"], res[0]["value"]), (0, 1, "key-1"),
                   "max_stale_ms 0, but a cache with its own limit: the copy")
        check_no_answer(res[1], "max_stale_ms 0, a cache without its own limit", T)
        lenient.close()
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
