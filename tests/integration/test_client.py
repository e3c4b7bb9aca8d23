"""libhacache, the remote C client (SPEC §7), driven through build/bin/client_smoke against
real hacached processes:

(a) 3 nodes: put / get / del with every ack level, incr, binary-ish keys (percent-encoded);
(b) kill -9 of the sticky node: the next calls fail over within the deadline;
(c) every node down: hc_client_new still succeeds at once; hc_get answers HC_EUNAVAILABLE or
    HC_ETIMEDOUT within the deadline, or the local copy with stale=1 when max_stale_ms allows;
    a write that could not reach any node is HC_EUNAVAILABLE;
(d) a wrong or missing token is HC_EAUTH; an https:// endpoint is HC_EINVAL (not supported);
(e) a sticky node that accepts but never answers (SIGSTOP) is failed over within the deadline;
(f) a write failed over from a stopped follower is applied once when that follower wakes up and
    forwards it too (same request id);
(g) the local stale copy never contradicts the client's own writes (max_stale_ms 60000, every
    node down): a key it deleted, overwrote, incremented or cleared is HC_ENOTFOUND or an
    error, never the old value; a key it only read comes back with stale=1; a write whose
    outcome is unknown (HC_EUNKNOWN_OUTCOME, node stopped) drops the copy too;
(h) a node that invalidated after a quorum loss (503, reason no_quorum) is an answer: no stale
    copy of an `invalidate` cache's key, unless hc_client_set_stale_on_invalidated(c, 1); a
    `serve_stale` cache is answered by the node itself, marked stale;
(i) clients start at a random endpoint and fail over to a random other one (30 clients, 3 nodes).
"""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

ENOTFOUND, EUNAVAILABLE, ETIMEDOUT, EAUTH, EINVAL = -1, -2, -3, -4, -5
EUNKNOWN_OUTCOME = -7
ETLS = -16
TIMEOUT_MS = 5000
SLACK_MS = 1500  # scheduling on a loaded 2-core machine, sanitizers
# idle keep-alive connections stay open, so a waiting client's node can be seen in its metrics
KEEP_IDLE = {"CACHE_UNAUTH_TIMEOUT_MS": "120000"}


def smoke_binary():
    bd = os.environ.get("HC_BUILD_DIR") or os.path.join(H.REPO, "build")
    return os.path.join(bd, "bin", "client_smoke")


def parse(line):
    """'get rc=0 ms=3 len=1 stale=0 value=v' -> {'op': 'get', 'rc': 0, ...}"""
    parts = line.strip().split(" ")
    out = {"op": parts[0]}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        out[k] = int(v) if k in ("rc", "ms", "len", "stale") else v
    return out


def run_smoke(endpoints, *cmds, token="-", timeout_ms=TIMEOUT_MS, max_stale_ms=0):
    """Runs the commands in one client; returns the parsed lines (the 'new' line first)."""
    args = [smoke_binary(), endpoints, token, str(timeout_ms), str(max_stale_ms)] + list(cmds)
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    H.check_eq(p.returncode, 0, "client_smoke exit (stderr %s)" % p.stderr[-2000:])
    return [parse(x) for x in p.stdout.splitlines()]


class Session:
    """A client_smoke process whose commands stop at 'wait' until resume() is called."""

    def __init__(self, endpoints, *cmds, token="-", timeout_ms=TIMEOUT_MS, max_stale_ms=0):
        args = [smoke_binary(), endpoints, token, str(timeout_ms), str(max_stale_ms)] + list(cmds)
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)

    def until_wait(self):
        lines = []
        for line in self.p.stdout:
            if line.strip() == "waiting":
                return lines
            lines.append(parse(line))
        return lines

    def resume(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def finish_while_stopped(self, node):
        """Runs the remaining commands with node stopped (SIGSTOP), then lets it go on."""
        node.signal(signal.SIGSTOP)
        try:
            self.resume()
            return self.finish()
        finally:
            node.signal(signal.SIGCONT)

    def finish(self):
        self.p.stdin.close()
        out = [parse(x) for x in self.p.stdout.read().splitlines()]
        H.check_eq(self.p.wait(120), 0, "client_smoke exit")
        return out


def endpoints_of(nodes):
    return ",".join("http://127.0.0.1:%d" % n.port for n in nodes)


def clients_connected(node):
    """Keep-alive HTTP connections open on node, not counting the scrape itself (a client at
    'wait' holds one to its sticky node; nodes close idle ones after CACHE_UNAUTH_TIMEOUT_MS)."""
    return int(node.metrics().get("hacache_http_connections") or 1) - 1


def sticky_node(nodes):
    """The one node a single waiting client is connected to."""
    on = [n for n in nodes if n.alive() and clients_connected(n) > 0]
    H.check_eq(len(on), 1, "exactly one node holds the client's connection")
    return on[0]


def check_rc(res, rc, what):
    H.check_eq(res["rc"], rc, "%s (%s)" % (what, res))


def test_cluster_ops_failover_and_stale():
    cl = C.Cluster(3, extra_env=KEEP_IDLE)
    try:
        cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        eps = endpoints_of(cl.nodes)
        acks = ("quorum", "once", "leader", "none")
        cmds = []
        for ack in acks:
            cmds += ["put", "c", "k-%s/with space%%" % ack, "v-" + ack, ack]
        # read-your-writes holds for quorum writes on the node that answered; the earlier writes
        # of other ack levels are ordered before it, so they are visible there too
        cmds += ["del", "c", "k-quorum/with space%", "quorum"]
        for ack in acks:
            cmds += ["get", "c", "k-%s/with space%%" % ack]
        cmds += ["del", "c", "k-quorum/with space%", "quorum",
                 "incr", "c", "ctr", "5", "quorum", "incr", "c", "ctr", "2", "quorum",
                 "del", "c", "k-once/with space%", "leader",
                 "del", "c", "k-leader/with space%", "once",
                 "del", "c", "k-none/with space%", "none",
                 "put", "c", "raw/key %~", "raw", "quorum"]
        res = run_smoke(eps, *cmds)
        check_rc(res[0], 0, "client created")
        for i, ack in enumerate(acks):
            check_rc(res[1 + i], 0, "put ack=%s" % ack)
        check_rc(res[5], 0, "del")
        check_rc(res[6], ENOTFOUND, "get after del")
        for i, ack in enumerate(acks[1:]):
            check_rc(res[7 + i], 0, "get after put ack=%s" % ack)
            H.check_eq(res[7 + i].get("value"), "v-" + ack, "value after put ack=%s" % ack)
        check_rc(res[10], ENOTFOUND, "del of an absent key")
        H.check_eq(res[11].get("value"), "5", "incr 5")
        H.check_eq(res[12].get("value"), "7", "incr 2 more")
        for i, ack in enumerate(("leader", "once", "none")):
            check_rc(res[13 + i], 0, "del ack=%s" % ack)
        # the key reached the server percent-encoded and decoded right
        c = H.Client(cl.nodes[1].port)
        st, _, body = c.get("/v1/caches/c/raw%2Fkey%20%25~?consistency=linearizable")
        c.close()
        H.check_eq((st, body), (200, b"raw"), "key bytes as given")

        # (b) the sticky node dies between two calls; (c) then every node
        s = Session(eps, "put", "s", "a", "1", "quorum", "get", "s", "a", "wait",
                    "put", "s", "b", "2", "quorum", "get", "s", "b", "get", "s", "a", "wait",
                    "get", "s", "a", "get", "s", "never", "put", "s", "x", "1", "quorum",
                    max_stale_ms=60000)
        first = s.until_wait()
        check_rc(first[1], 0, "put before the kill")
        check_rc(first[2], 0, "get before the kill")
        sticky_node(cl.nodes).kill()  # the node the client started at (a random one)
        s.resume()
        second = s.until_wait()
        check_rc(second[0], 0, "put after the sticky node died")
        H.check(second[0]["ms"] <= TIMEOUT_MS + SLACK_MS, "failover within the deadline: %s"
                % second[0])
        check_rc(second[1], 0, "get after the sticky node died")
        H.check_eq(second[1].get("value"), "2", "value after failover")
        check_rc(second[2], 0, "get of a value remembered before")
        for nd in cl.nodes:
            if nd.alive():
                nd.kill()
        s.resume()
        third = s.finish()
        check_rc(third[0], 0, "all down: the remembered copy")
        H.check_eq((third[0].get("stale"), third[0].get("value")), (1, "1"), "stale copy")
        H.check(third[0]["ms"] <= TIMEOUT_MS + SLACK_MS, "stale copy within the deadline")
        H.check(third[1]["rc"] in (EUNAVAILABLE, ETIMEDOUT), "all down, nothing remembered: %s"
                % third[1])
        H.check(third[1]["ms"] <= TIMEOUT_MS + SLACK_MS, "error within the deadline")
        check_rc(third[2], EUNAVAILABLE, "a write that reached no node")

        # a new client with every node down: created at once, errors within its deadline
        res = run_smoke(eps, "get", "s", "a", timeout_ms=1000)
        check_rc(res[0], 0, "client created with every node down")
        H.check(res[0]["ms"] < 100, "hc_client_new does not block")
        H.check(res[1]["rc"] in (EUNAVAILABLE, ETIMEDOUT), "get, all down: %s" % res[1])
        H.check(900 <= res[1]["ms"] <= 1000 + SLACK_MS, "retried until the deadline: %s"
                % res[1])
    finally:
        cl.cleanup()


def test_stopped_node_fails_over():
    """A sticky node that accepts but never answers (SIGSTOP) gets half the deadline, then the
    call moves on: two standalone nodes, the other one answers."""
    nodes = [H.Node(), H.Node()]
    s = Session(endpoints_of(nodes), "put", "s", "k", "on-a", "quorum", "wait",
                "put", "s", "k2", "on-b", "quorum", "get", "s", "k2")
    first = s.until_wait()
    check_rc(first[1], 0, "put on the node the client started at")
    # standalone nodes share nothing: the one holding k is the sticky one
    a = [n for n in nodes if _holds(n, "/v1/caches/s/k")]
    H.check_eq(len(a), 1, "one node got the first put")
    a = a[0]
    b = [n for n in nodes if n is not a][0]
    rest = s.finish_while_stopped(a)
    check_rc(rest[0], 0, "put while the sticky node is stopped")
    H.check(TIMEOUT_MS // 2 - 100 <= rest[0]["ms"] <= TIMEOUT_MS + SLACK_MS,
            "gave the stopped node about half the deadline: %s" % rest[0])
    check_rc(rest[1], 0, "get from the node that answered")
    H.check_eq(rest[1].get("value"), "on-b", "the write went to the second node")
    # (the request sent to the stopped node waits in its socket and is applied after SIGCONT:
    # two standalone nodes share no request-id window; a cluster's leader applies it once)
    a.stop_ok()
    b.stop_ok()


def test_failover_write_applied_once():
    """The sticky node (a follower) is stopped with an incr in its socket; the client retries on
    another node with the same request id; when the stopped node wakes up it forwards the same
    write, and the leader answers it from its request-id window: the counter moved once."""
    # The follower must wake up still knowing its leader: it is stopped for about one attempt
    # budget (1 s with a 2 s deadline), well inside its election timeout.
    cl = C.Cluster(3, election_timeout_ms=4000, extra_env=KEEP_IDLE)
    try:
        leader = cl.wait_leader(30.0)
        cl.wait_ready(15.0)
        fs = [x for x in cl.nodes if x is not leader]
        # only the followers: the client starts at a random one of them, fails over to the other
        s = Session(endpoints_of(fs), "incr", "o", "warm", "1", "quorum", "wait",
                    "incr", "o", "ctr", "1", "quorum", timeout_ms=2000)
        check_rc(s.until_wait()[1], 0, "incr through a follower")
        f1 = sticky_node(fs)
        res = s.finish_while_stopped(f1)
        check_rc(res[0], 0, "incr after failover")
        H.check_eq(res[0].get("value"), "1", "incr value")
        # the woken node reads the incr still in its socket and forwards it (same request id)
        # before it can answer a request that arrives later; the peer link keeps the order
        c = H.Client(f1.port)
        st, obj, _, _ = c.json("POST", "/v1/caches/o/ctr/incr?by=10")
        c.close()
        H.check_eq((st, obj and obj.get("value")), (200, 11), "a later incr of 10 through the "
                   "woken node: the retried write was applied once (12 if twice)")
        H.check_eq(_linearizable(leader, "/v1/caches/o/ctr"), b"11", "the counter on the leader")
    finally:
        cl.cleanup()


def test_stale_copy_follows_own_writes():
    """(g) on a standalone node: the client reads every key once, then writes some of them; with
    the node killed, only what it merely read (or read after its last write) is served stale."""
    node = H.Node()
    T = 1500  # every down call retries until its deadline
    eps = endpoints_of([node])
    keys = ("deleted", "overwritten", "reread", "counted", "only-read", "cleared")
    cmds = []
    for k in keys:
        cache = "t" if k == "cleared" else "s"
        cmds += ["put", cache, k, "old-" + k, "quorum", "get", cache, k]
    cmds += ["put", "s", "counted", "5", "quorum", "get", "s", "counted",
             "del", "s", "deleted", "quorum",
             "put", "s", "overwritten", "new", "quorum",
             "put", "s", "reread", "new", "quorum", "get", "s", "reread",
             "incr", "s", "counted", "1", "quorum",
             "clear", "t", "quorum", "wait"]
    for k in keys:
        cmds += ["get", "t" if k == "cleared" else "s", k]
    s = Session(eps, *cmds, timeout_ms=T, max_stale_ms=60000)
    before = s.until_wait()
    H.check(all(r["rc"] == 0 for r in before[1:]), "every call before the kill: %s" % before)
    node.kill()
    s.resume()
    after = {k: r for k, r in zip(keys, s.finish())}
    for k in ("deleted", "overwritten", "counted", "cleared"):
        H.check(after[k]["rc"] in (ENOTFOUND, EUNAVAILABLE, ETIMEDOUT),
                "%s, node down: no stale copy (%s)" % (k, after[k]))
    H.check_eq((after["only-read"]["rc"], after["only-read"]["stale"],
                after["only-read"].get("value")), (0, 1, "old-only-read"),
               "a key only read: the stale copy")
    H.check_eq((after["reread"]["rc"], after["reread"]["stale"], after["reread"].get("value")),
               (0, 1, "new"), "a key read after the client overwrote it: the newer copy")
    for k in keys:
        H.check(after[k]["ms"] <= T + SLACK_MS, "within the deadline: %s" % after[k])


def test_stale_copy_dropped_on_unknown_outcome():
    """(g) a put to a stopped node (it accepts, never answers) ends HC_EUNKNOWN_OUTCOME; the
    following get, still unanswered, must not serve the value read before that put."""
    node = H.Node()
    T = 1500
    s = Session(endpoints_of([node]), "put", "u", "k", "old", "quorum", "get", "u", "k",
                "put", "u", "ctl", "c", "quorum", "get", "u", "ctl", "wait",
                "put", "u", "k", "new", "quorum", "get", "u", "k", "get", "u", "ctl",
                timeout_ms=T, max_stale_ms=60000)
    before = s.until_wait()
    H.check(all(r["rc"] == 0 for r in before[1:]), "calls before the stop: %s" % before)
    rest = s.finish_while_stopped(node)
    check_rc(rest[0], EUNKNOWN_OUTCOME, "put to a stopped node")
    H.check(rest[1]["rc"] in (EUNAVAILABLE, ETIMEDOUT),
            "get after a write of unknown outcome: no stale copy (%s)" % rest[1])
    H.check_eq((rest[2]["rc"], rest[2]["stale"], rest[2].get("value")), (0, 1, "c"),
               "a key only read, node stopped: the stale copy")
    node.stop_ok()


# a client that writes and reads q/k before the quorum loss, and reads it again after 'wait'
QLOSS_CMDS = ("put", "q", "k", "v", "quorum", "get", "q", "k", "wait", "get", "q", "k")


def invalidating_cluster():
    """3 nodes that invalidate 1 s after losing their quorum, with an `invalidate` cache q and a
    `serve_stale` cache ss holding k = "kept" (declared through hc_cache_configure): (cluster,
    its leader, endpoints with the leader first)."""
    cl = C.Cluster(3, extra_env={"CACHE_QUORUM_LOSS_GRACE_MS": "1000"})
    try:
        leader = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        eps = endpoints_of([leader] + [x for x in cl.nodes if x is not leader])
        res = run_smoke(eps, "configure", "q", "0", "0", "invalidate", "0",
                        "configure", "ss", "0", "0", "serve_stale", "600000",
                        "put", "ss", "k", "kept", "quorum")
        H.check(all(r["rc"] == 0 for r in res), "caches declared: %s" % res)
    except BaseException:
        cl.cleanup()
        raise
    return cl, leader, eps


def test_invalidated_node_is_an_answer():
    """(h) 3 nodes, two killed: the survivor invalidates after the grace time and answers 503
    no_quorum. A client that read a key of an `invalidate` cache (declared so with
    hc_cache_configure) before gets HC_EUNAVAILABLE, not its stale copy; one that opted in
    (hc_client_set_stale_on_invalidated) gets the copy with stale=1. A `serve_stale` cache is
    answered by the survivor itself, marked stale, also to a client without a copy."""
    cl, leader, eps = invalidating_cluster()
    try:
        strict = Session(eps, *QLOSS_CMDS, timeout_ms=2000, max_stale_ms=60000)
        lenient = Session(eps, *QLOSS_CMDS, timeout_ms=2000, max_stale_ms="60000i")
        # no copy at all: what it gets can only come from a node
        nocopy = Session(eps, "wait", "get", "ss", "k", "get", "q", "k", timeout_ms=2000)
        nocopy.until_wait()
        for sess in (strict, lenient):
            first = sess.until_wait()
            H.check(all(r["rc"] == 0 for r in first[1:]), "before the loss: %s" % first)
        for nd in cl.nodes:
            if nd is not leader:
                nd.kill()
        C.wait_invalidated(leader)
        strict.resume()
        res = strict.finish()[0]
        check_rc(res, EUNAVAILABLE, "invalidated answer, no opt-in")
        lenient.resume()
        res = lenient.finish()[0]
        H.check_eq((res["rc"], res["stale"], res.get("value")), (0, 1, "v"),
                   "invalidated answer, opted in: the stale copy")
        nocopy.resume()
        ss, q = nocopy.finish()
        H.check_eq((ss["rc"], ss["stale"], ss.get("value")), (0, 1, "kept"),
                   "a serve_stale cache: the survivor's own stale answer")
        check_rc(q, EUNAVAILABLE, "an invalidate cache, no copy")
    finally:
        cl.cleanup()


def _holds(node, path):
    c = H.Client(node.port)
    try:
        return c.get(path)[0] == 200
    finally:
        c.close()


N_SPREAD = 30


def test_clients_spread_over_nodes():
    """(i) 30 client processes started together against 3 standalone nodes (which share
    nothing, so the node holding a client's key is the node it talks to): each starts at a
    random endpoint, so no node gets more than 20; after the most loaded node is killed, its
    clients move to random other nodes (both survivors get some: in list order they would all
    land on the next one) and the others stay where they were."""
    nodes = [H.Node(), H.Node(), H.Node()]
    eps = endpoints_of(nodes)
    sessions = [Session(eps, "put", "sp", "a%d" % i, "x", "quorum", "wait",
                        "put", "sp", "b%d" % i, "x", "quorum") for i in range(N_SPREAD)]
    for i, sess in enumerate(sessions):
        check_rc(sess.until_wait()[1], 0, "client %d: first put" % i)

    def owners(prefix):
        out = []
        for i in range(N_SPREAD):
            on = [k for k, n in enumerate(nodes) if n.alive() and
                  _holds(n, "/v1/caches/sp/%s%d" % (prefix, i))]
            H.check_eq(len(on), 1, "client %d's key %s%d on exactly one node" % (i, prefix, i))
            out.append(on[0])
        return out

    first = owners("a")
    load = [first.count(k) for k in range(3)]
    H.log("clients per node at the start: %s" % load)
    H.check(max(load) <= 20, "no node has more than 20 of 30 clients: %s" % load)
    busiest = load.index(max(load))
    nodes[busiest].kill()
    for sess in sessions:
        sess.resume()
    for i, sess in enumerate(sessions):
        check_rc(sess.finish()[0], 0, "client %d: put after the kill" % i)
    second = owners("b")
    moved = [second[i] for i in range(N_SPREAD) if first[i] == busiest]
    H.log("clients per node after killing node %d: %s; its %d clients went to %s" %
          (busiest, [second.count(k) for k in range(3)], len(moved),
           [moved.count(k) for k in range(3)]))
    for k in range(3):
        if k != busiest:
            H.check(moved.count(k) >= 1, "node %d got some of the moved clients: %s" % (k, moved))
    stayed = [i for i in range(N_SPREAD) if first[i] != busiest and second[i] != first[i]]
    H.check_eq(stayed, [], "clients of the surviving nodes stayed (sticky)")


def _linearizable(node, path):
    c = H.Client(node.port)
    try:
        st, _, body = c.get(path + "?consistency=linearizable")
        return body if st == 200 else None
    finally:
        c.close()


def test_token_and_endpoints():
    token = "client-test-token-0123456789"
    node = H.Node(env={"CACHE_API_TOKEN": token})
    ep = "http://127.0.0.1:%d" % node.port
    res = run_smoke(ep, "put", "t", "k", "v", "quorum", "get", "t", "k", token=token)
    check_rc(res[1], 0, "put with the token")
    H.check_eq(res[2].get("value"), "v", "get with the token")
    res = run_smoke(ep, "put", "t", "k", "v", "quorum", "get", "t", "k", token="wrong-token")
    check_rc(res[1], EAUTH, "put with a wrong token")
    check_rc(res[2], EAUTH, "get with a wrong token")
    res = run_smoke(ep, "get", "t", "k")
    check_rc(res[1], EAUTH, "get without a token")
    # endpoint lists: spaces, a trailing slash, no scheme
    res = run_smoke(" 127.0.0.1:1 , %s/ " % ep, "get", "t", "k", token=token)
    check_rc(res[1], 0, "the second endpoint answers")
    res = run_smoke("http://%s:1,%s" % ("h" * 3000, ep), "get", "t", "k", token=token)
    check_rc(res[1], 0, "a very long host name before a good endpoint")
    for bad in ("", "http://nohost", "http://h:0", "http://h:99999", "ftp://h:1"):
        check_rc(run_smoke(bad)[0], EINVAL, "endpoint list %r" % bad)
    # https:// to a node that serves plain HTTP: the handshake fails, and the call says so
    res = run_smoke("https://127.0.0.1:%d" % node.port, "get", "t", "k", token=token)
    check_rc(res[1], ETLS, "https to a plain HTTP node")
    node.stop_ok()


if __name__ == "__main__":
    H.run(globals())
