#!/usr/bin/env python3
"""hacachectl end to end (SPEC section 6) against real hacached processes: a 3-node mTLS
cluster and a standalone node with an API token. Exit status 0 success, 1 failed operation,
2 usage error; data commands fail over past endpoints that are down."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

TOKEN = "api-token-0123456789abcdef"


def ctl(*args, endpoints=None, stdin=None, token=None, env_extra=None):
    binary = os.environ.get("HACACHECTL") or os.path.join(
        os.environ.get("HC_BUILD_DIR", "build"), "bin", "hacachectl")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    if endpoints:
        env["HACACHE_ENDPOINTS"] = endpoints
    if token:
        env["HACACHE_TOKEN"] = token
    env.update(env_extra or {})
    p = subprocess.run([binary, *args], input=stdin, capture_output=True, env=env, timeout=60)
    H.check("Sanitizer" not in p.stderr.decode(errors="replace"),
                "no sanitizer report from hacachectl %s" % (args,))
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def urls(nodes):
    return ",".join("http://127.0.0.1:%d" % n.port for n in nodes)


def test_cluster_commands():
    cl = C.Cluster(3)
    try:
        leader = cl.wait_leader()
        eps = urls(cl.nodes)
        rc, out, err = ctl("status", endpoints=eps)
        H.check_eq(rc, 0, "status exit (%s)" % err)
        rows = out.decode().splitlines()
        H.log("status:\n" + out.decode())
        H.check_eq(len(rows), 4, "header + one row per node")
        H.check_eq(sum(1 for r in rows[1:] if " leader " in r), 1, "exactly one leader row")
        H.check(all(leader.extra_env["HOSTNAME_OVERWRITE"] in r for r in rows[1:]),
                "every row names the leader")
        H.check(all("ready" in r and " yes " in r for r in rows[1:]), "all ready with quorum")
        rc, out, _ = ctl("-o", "json", "status", endpoints=eps)
        st = json.loads(out)
        H.check_eq(rc, 0, "status -o json exit")
        H.check_eq(sorted(s["role"] for s in st), ["follower", "follower", "leader"], "roles")
        H.check_eq(len({s["term"] for s in st}), 1, "one term")

        # writes through any endpoint, reads through another, binary-unsafe key in the path
        follower = [n for n in cl.nodes if n is not leader][0]
        rc, out, err = ctl("put", "sessions", "user/1 ä", "v1", "--ack", "quorum",
                           endpoints=urls([follower]))
        H.check_eq(rc, 0, "put via a follower (%s)" % err)
        H.check("version" in json.loads(out), "put answers the version")
        rc, out, _ = ctl("get", "sessions", "user/1 ä", "--consistency", "linearizable",
                         endpoints=urls([leader]))
        H.check_eq((rc, out), (0, b"v1"), "get via the leader")
        rc, out, _ = ctl("put", "sessions", "blob", "-", stdin=b"\x00\x01binary\xff",
                         endpoints=eps)
        H.check_eq(rc, 0, "put from stdin")
        rc, out, _ = ctl("get", "sessions", "blob", endpoints=eps)
        H.check_eq(out, b"\x00\x01binary\xff", "binary value round trip")
        rc, out, _ = ctl("incr", "counters", "c", "--by", "5", endpoints=eps)
        H.check_eq((rc, json.loads(out)["value"]), (0, 5), "incr")
        rc, out, _ = ctl("caches", endpoints=eps)
        H.check(rc == 0 and b"sessions" in out and b"counters" in out, "caches lists both")
        rc, _, err = ctl("get", "sessions", "absent", endpoints=eps)
        H.check(rc == 1 and "not found" in err, "get of a missing key exits 1 (%r)" % err)
        rc, out, _ = ctl("del", "sessions", "blob", endpoints=eps)
        H.check_eq(rc, 0, "del")
        rc, out, _ = ctl("clear", "counters", endpoints=eps)
        H.check_eq(rc, 0, "clear")

        # failover: the first endpoint is down
        with H.DeadPort() as dp:  # stays dead: no other test's node can take it meanwhile
            dead = "http://127.0.0.1:%d" % dp.port
            rc, out, err = ctl("get", "sessions", "user/1 ä", endpoints=dead + "," + eps)
            H.check_eq((rc, out), (0, b"v1"), "get fails over past a dead endpoint")
            rc, out, err = ctl("status", endpoints=dead + "," + eps)
            H.check(rc == 1 and "unreachable" in out.decode(), "status marks it, exits 1 (%d, "
                    "%r)" % (rc, out[-300:]))
            rc, _, err = ctl("get", "sessions", "x", endpoints=dead)
            H.check(rc == 1 and "no endpoint could serve" in err, "nothing reachable: exit 1 "
                    "(%d, %r)" % (rc, err[-300:]))

        # a write that timed out on a stopped node and went to another endpoint is applied
        # once: hacachectl sends the same request id to both (the stopped node still reads
        # and forwards the request when it wakes). The client starts at a random endpoint, so
        # repeat (bounded) until one incr took the path through the stopped node: it is the one
        # that took about half of --timeout before failing over.
        import signal
        import time as _time
        stopped = [n for n in cl.nodes if n is not leader][1]
        calls = via_stopped = 0
        while via_stopped == 0 and calls < 20:
            before = stopped.metrics().sum("hacache_requests_total", op="incr")
            stopped.signal(signal.SIGSTOP)
            t0 = _time.monotonic()
            try:
                rc, out, err = ctl("--timeout", "1500", "incr", "once", "n",
                                   endpoints=urls([stopped, leader]))
                took = _time.monotonic() - t0
                H.check_eq(rc, 0, "incr with a stopped node among the endpoints (%s)" % err)
            finally:
                stopped.signal(signal.SIGCONT)
            calls += 1
            if took >= 0.5:
                via_stopped += 1
                # the woken node handles the request it had buffered (and answers into a
                # closed connection): wait until it has counted it, then look at the value
                H.wait_until(lambda: stopped.metrics().sum("hacache_requests_total",
                                                           op="incr") >= before + 1,
                             15.0, what="the stopped node handled the buffered incr")
        H.check(via_stopped == 1, "one incr went through the stopped node (%d calls)" % calls)
        rc, out, _ = ctl("get", "once", "n", "--consistency", "linearizable",
                         endpoints=urls([leader]))
        H.check_eq((rc, out), (0, b"%d" % calls), "every incr, the retried one too, applied once")

        # admin
        rc, out, err = ctl("tls", "reload", endpoints=eps)
        H.check_eq(rc, 0, "tls reload on every node (%s)" % err)
        H.check_eq(sum(1 for l in out.decode().splitlines() if l.startswith("http://")), 3,
                   "one answer per node")
        target = follower.extra_env["HOSTNAME_OVERWRITE"]
        # sent to every endpoint in turn: the followers answer not_leader and are skipped
        rc, out, err = ctl("leader", "transfer", "--to", target,
                           endpoints=urls([follower, leader]))
        H.check_eq(rc, 0, "leader transfer (%s)" % err)
        new = cl.wait_leader(timeout=15.0)
        H.check(new is follower, "the named follower leads after the transfer")

        # usage errors
        for args in (("put", "c"), ("bogus",), ("put", "c", "k", "v", "--ack", "maybe"),
                     ("--endpoints", "ftp://x:1", "status"), ("-o", "yaml", "status"),
                     ("--cacert", "/nonexistent/ca.pem", "--endpoints", "https://x:1", "status")):
            rc, _, err = ctl(*args, endpoints=eps)
            H.check(rc == 2 and err.startswith("hacachectl: "),
                    "usage error %r exits 2 with a message (%d %r)" % (args, rc, err))
    finally:
        cl.cleanup()


def test_token_and_config_check():
    node = H.Node(env={"CACHE_API_TOKEN": TOKEN})
    try:
        ep = "http://127.0.0.1:%d" % node.port
        rc, _, err = ctl("put", "c", "k", "v", endpoints=ep)
        H.check(rc == 1 and "401" in err and "--token" in err, "no token: 401 and a hint (%r)" % err)
        rc, _, _ = ctl("put", "c", "k", "v", endpoints=ep, token=TOKEN)
        H.check_eq(rc, 0, "with HACACHE_TOKEN")
        rc, out, _ = ctl("--token", TOKEN, "get", "c", "k", endpoints=ep)
        H.check_eq((rc, out), (0, b"v"), "with --token")
    finally:
        node.stop_ok()
    # config check runs hacached's checks on this environment
    rc, out, _ = ctl("config", "check")
    H.check_eq((rc, out.strip()), (0, b"configuration OK"), "standalone defaults are valid")
    bad = {"HA_MODE": "true", "HA_HOSTS": "a:1,b:2", "HOSTNAME_OVERWRITE": "c:3",
           "CACHE_TLS": "false", "CACHE_AUTH_TOKEN": "short"}
    rc, _, err = ctl("config", "check", env_extra=bad)
    hd = subprocess.run([H.binary(), "--check-config"], capture_output=True, text=True,
                        env=dict(bad, PATH=os.environ.get("PATH", "")), timeout=30)
    H.check_eq(rc, 2, "invalid configuration exits 2")
    H.check_eq(hd.returncode, 2, "hacached --check-config agrees")
    ours = sorted(l.split(": ", 1)[1] for l in err.splitlines() if ": " in l)
    theirs = sorted(l.split(": ", 1)[1] for l in hd.stderr.splitlines() if ": " in l)
    H.check_eq(ours, theirs, "the same problems as hacached --check-config")
    H.check(any("HA_HOSTS" in l for l in ours) and any("CACHE_AUTH_TOKEN" in l for l in ours),
            "both problems named: %r" % ours)


if __name__ == "__main__":
    H.run(globals())
