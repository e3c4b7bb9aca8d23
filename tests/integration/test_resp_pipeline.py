#!/usr/bin/env python3
"""Black-box tests of RESP pipelining (commit 86f4779): consecutive writes of a connection go to
the node together, replies come back in command order, each write keeps its own outcome, a read
(or any command that is not a write) waits for every write before it; in cluster mode a
connection's writes stay in order across a leader change (a write whose outcome became unknown
is parked and sent again, under the same request id, only when no other write of the connection
is in flight, so "SET k 1; SET k 2" never ends as k=1).

1. standalone: one pipeline of ~2,000 mixed commands (writes, reads after writes, errors given
   while writes are in flight, HC.CACHE switches, SETEX, MGET, a FLUSHDB) sent with a single
   send, every reply checked in order against a model of the cache; the same pipeline sent in
   small random pieces split mid-command gives the same replies; then the state read back; a
   protocol error behind writes in flight is answered after them, then the connection closes.
2. the same pipeline through a follower and through the leader of a 3-node cluster; the values
   are then read back with HC.READ linearizable on another node.
3. ordering across leader changes: a connection on a follower (then one on the leader) sends
   rounds of 32 `SET k <seq>` (ever-increasing seq) + `INCR n` + `GET k` and reads their
   replies: for ~7 s while another thread moves leadership around (POST
   /v1/admin/leader/transfer) and once stops the leader (SIGSTOP/SIGCONT), three rounds in four
   sent in pieces a few milliseconds apart; then 12 rounds that each hand leadership over
   between their two halves (the last 16 writes arrive while the first 16 are in flight or
   parked). Every SET reply must be OK or -UNKNOWN / -UNAVAILABLE / -TIMEOUT / -TRYAGAIN, in
   order; each GET k (it waits for the writes before it) and the final linearizable read on
   another node must be >= the largest seq answered OK and be a seq answered OK or with an
   unknown outcome (OK, UNKNOWN, TIMEOUT; never UNAVAILABLE: such a write was not sent, or a
   former leader refused it); n counts each INCR at most once. The term must have moved during
   the writes (else the test fails: it would prove nothing). PIPE_SEED=<n> repeats the random
   choices (the seed is logged), PIPE_ORDER_SECONDS the length of the random part.
4. a connection closed with 500 writes in flight (on a follower, on the leader, during a leader
   transfer, and while the leader is stopped) leaves the node healthy: a new connection works,
   /healthz answers 200, no crash or sanitizer report, and every node exits cleanly (in the ASan
   build that includes LeakSanitizer's exit check).
"""

import os
import random
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import test_resp as TR  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log
RespError = TR.RespError
enc = TR.Resp.encode


# ---------------------------------------------------------------------------------------------
# helpers

class Err:
    """An expected error reply: its text starts with `prefix`."""

    def __init__(self, prefix):
        self.prefix = prefix

    def __repr__(self):
        return "Err(%r)" % self.prefix


class Range:
    """An expected integer reply within [lo, hi] (TTLs)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __repr__(self):
        return "Range(%d, %d)" % (self.lo, self.hi)


def matches(got, want):
    if isinstance(want, Err):
        return TR.err_starts(got, want.prefix)
    if isinstance(want, Range):
        return isinstance(got, int) and want.lo <= got <= want.hi
    if isinstance(got, RespError):
        return False
    return got == want and type(got) is type(want)


def exchange(c, data, n, timeout=30.0, chunks=None):
    """Sends `data` (all at once, or in the given pieces with short pauses) from a helper thread
    while this one reads `n` replies; returns the replies (a reply that cannot be read ends the
    list early with the exception)."""
    c.sock.settimeout(timeout)
    err = []

    def send():
        try:
            if chunks is None:
                c.sock.sendall(data)
            else:
                for i, piece in enumerate(chunks):
                    c.sock.sendall(piece)
                    if i % 8 == 7:
                        time.sleep(0.001)  # let the server read a partial command
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    out = []
    try:
        for _ in range(n):
            out.append(c.read())
    except (OSError, EOFError, AssertionError, ValueError) as e:
        out.append(e)
    t.join(timeout)
    if err:
        out.append(err[0])
    return out


def nodelay(c):
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def crash_lines(node):
    """Lines of a node's stderr that tell of a crash or a sanitizer report."""
    bad = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Assertion", "assertion",
           "SIGSEGV", "SIGABRT", "stack-buffer", "heap-use-after-free", "double free")
    return [ln for ln in node.stderr().splitlines() if any(b in ln for b in bad)]


# ---------------------------------------------------------------------------------------------
# the mixed pipeline and its model

class Model:
    """What a cache holds after a sequence of commands: per (cache, key) the value and whether a
    TTL was set (SETEX/PSETEX/SET EX, cleared by a plain SET)."""

    def __init__(self):
        self.v = {}
        self.ttl = {}

    def set(self, cache, k, val, ttl=False):
        self.v[(cache, k)] = val
        self.ttl[(cache, k)] = ttl

    def get(self, cache, k):
        return self.v.get((cache, k))

    def delete(self, cache, k):
        self.ttl.pop((cache, k), None)
        return self.v.pop((cache, k), None) is not None

    def flush(self, cache):
        for ck in [ck for ck in self.v if ck[0] == cache]:
            self.delete(*ck)

    def keys(self, cache):
        return sorted(k for (c, k) in self.v if c == cache)


def gen_pipeline(seed, main, other, n=2000):
    """A pipeline of about n mixed commands on caches `main` and `other` (both fresh). Returns
    (commands as argument tuples, expected replies, the model after them, every key touched
    per cache). The same seed gives the same commands and replies whatever the cache names."""
    rng = random.Random(seed)
    m = Model()
    cmds, want = [], []
    touched = {main: set(), other: set()}
    cache = main
    pool = ["k%d" % i for i in range(250)]
    counters = ["c%d" % i for i in range(5)]

    def add(args, reply):
        cmds.append(tuple(args))
        want.append(reply)

    add(("HC.CACHE", main), "OK")
    add(("FLUSHDB",), "OK")
    serial = 0
    while len(cmds) < n:
        serial += 1
        r = rng.random()
        k = rng.choice(pool)
        if r < 0.30:  # SET, often read back at once (the read waits for the write)
            val = b"v%d-%d" % (serial, rng.randrange(10 ** 6))
            add(("SET", k, val), "OK")
            m.set(cache, k, val)
            touched[cache].add(k)
            if rng.random() < 0.4:
                add(("GET", k), val)
        elif r < 0.36:  # SET NX
            val = b"nx%d" % serial
            if m.get(cache, k) is None:
                add(("SET", k, val, "NX"), "OK")
                m.set(cache, k, val)
            else:
                add(("SET", k, val, "NX"), None)
            touched[cache].add(k)
        elif r < 0.48:  # counters
            ck = rng.choice(counters)
            op = rng.choice(("INCR", "DECR", "INCRBY", "DECRBY"))
            by = rng.randrange(-50, 100) if op in ("INCRBY", "DECRBY") else 1
            cur = int(m.get(cache, ck) or b"0")
            new = cur + (by if op in ("INCR", "INCRBY") else -by)
            add((op, ck) + ((str(by),) if op in ("INCRBY", "DECRBY") else ()), new)
            m.set(cache, ck, str(new).encode(), ttl=m.ttl.get((cache, ck), False))
            touched[cache].add(ck)
        elif r < 0.54:  # DEL / UNLINK of 1-3 keys (a key twice counts once)
            ks = [rng.choice(pool) for _ in range(rng.randrange(1, 4))]
            count = 0
            for x in ks:
                count += m.delete(cache, x)
                touched[cache].add(x)
            add((rng.choice(("DEL", "UNLINK")),) + tuple(ks), count)
        elif r < 0.60:  # GET of any key
            add(("GET", k), m.get(cache, k))
            touched[cache].add(k)
        elif r < 0.65:  # MGET
            ks = [rng.choice(pool + counters) for _ in range(rng.randrange(1, 6))]
            add(("MGET",) + tuple(ks), [m.get(cache, x) for x in ks])
        elif r < 0.68:  # EXISTS
            ks = [rng.choice(pool) for _ in range(rng.randrange(1, 4))]
            add(("EXISTS",) + tuple(ks), sum(m.get(cache, x) is not None for x in ks))
        elif r < 0.74:  # SETEX / PSETEX / SET EX, a TTL read back sometimes
            val = b"ttl%d" % serial
            form = rng.randrange(3)
            if form == 0:
                add(("SETEX", k, "100", val), "OK")
            elif form == 1:
                add(("PSETEX", k, "100000", val), "OK")
            else:
                add(("SET", k, val, "EX", "100"), "OK")
            m.set(cache, k, val, ttl=True)
            touched[cache].add(k)
            if rng.random() < 0.3:
                add(("TTL", k), Range(95, 100))
        elif r < 0.77:  # PING, PING msg, ECHO
            x = rng.randrange(3)
            if x == 0:
                add(("PING",), "PONG")
            elif x == 1:
                add(("PING", "p%d" % serial), b"p%d" % serial)
            else:
                add(("ECHO", "e%d" % serial), b"e%d" % serial)
        elif r < 0.87:  # refusals answered at once, queued behind the writes in flight
            val = b"refused%d" % serial
            x = rng.randrange(8)
            if x == 0:
                add(("NOSUCHCMD", k), Err("ERR unknown command 'NOSUCHCMD'"))
            elif x == 1:
                add(("SET", k), Err("ERR wrong number of arguments for 'set' command"))
            elif x == 2:
                add(("SETEX", k, "0", val), Err("ERR invalid expire time in 'setex'"))
            elif x == 3:
                add(("SET", "", val), Err("ERR empty keys"))
            elif x == 4:
                add(("SET", k, val, "NX", "XX"), Err("ERR syntax error"))
            elif x == 5:
                add(("INCRBY", rng.choice(counters), "lots"),
                    Err("ERR value is not an integer or out of range"))
            elif x == 6:
                add(("SET", k, val, "PX", "-1"), Err("ERR invalid expire time in 'set'"))
            else:  # INCR of a value that is no integer: the node's error, in its place
                sk = "str%d" % serial
                add(("SET", sk, b"abc"), "OK")
                m.set(cache, sk, b"abc")
                touched[cache].add(sk)
                add(("INCR", sk), Err("ERR value is not an integer or out of range"))
        elif r < 0.90:  # switch caches in the middle: writes before go to the old one
            cache = other if cache == main else main
            add(("HC.CACHE", cache), "OK")
            if cache == other and rng.random() < 0.3:
                add(("FLUSHDB",), "OK")
                m.flush(other)
        else:  # write then read the same key twice in a row (last write wins)
            v1, v2 = b"a%d" % serial, b"b%d" % serial
            add(("SET", k, v1), "OK")
            add(("SET", k, v2), "OK")
            add(("GET", k), v2)
            m.set(cache, k, v2)
            touched[cache].add(k)
    if cache != main:
        add(("HC.CACHE", main), "OK")
    return cmds, want, m, touched


def check_replies(got, want, where):
    """Every reply against the model, in order; returns the number of mismatches."""
    bad = []
    for i, w in enumerate(want):
        g = got[i] if i < len(got) else "<missing>"
        if not matches(g, w):
            bad.append((i, g, w))
    check(len(got) == len(want), "%s: %d replies for %d commands (last: %r)" % (
        where, len(got), len(want), got[-1:] if got else None))
    check(not bad, "%s: %d of %d replies differ from the model, first: %s" % (
        where, len(bad), len(want), "; ".join("#%d got %r want %r" % x for x in bad[:5])))
    return len(bad)


def check_state(c, m, touched, where):
    """Reads every touched key of both caches back (MGET in batches) and the TTLs of a few."""
    for cache, keys in touched.items():
        keys = sorted(keys)
        check_eq(c.cmd("HC.CACHE", cache), "OK", "%s: select %s" % (where, cache))
        got = []
        for i in range(0, len(keys), 100):
            r = c.cmd("MGET", *keys[i:i + 100])
            if not isinstance(r, list):
                check(False, "%s: MGET in %s answered %r" % (where, cache, r))
                return
            got.extend(r)
        wrong = [(k, g, m.get(cache, k)) for k, g in zip(keys, got) if g != m.get(cache, k)]
        check(not wrong, "%s: %d of %d keys of %s differ from the model, first: %r" % (
            where, len(wrong), len(keys), cache, wrong[:5]))
        with_ttl = [k for k in keys if m.get(cache, k) is not None and m.ttl.get((cache, k))]
        without = [k for k in keys if m.get(cache, k) is not None and not m.ttl.get((cache, k))]
        for k in with_ttl[:5]:
            t = c.cmd("TTL", k)
            check(isinstance(t, int) and 80 <= t <= 100, "%s: TTL of %s/%s %r" % (
                where, cache, k, t))
        for k in without[:5]:
            check_eq(c.cmd("TTL", k), -1, "%s: no TTL on %s/%s" % (where, cache, k))
        check_eq(c.cmd("DBSIZE"), sum(m.get(cache, k) is not None for k in m.keys(cache)),
                 "%s: DBSIZE of %s" % (where, cache))
    c.cmd("HC.CACHE", "default")


def random_pieces(data, rng, lo=1, hi=120):
    out, i = [], 0
    while i < len(data):
        k = rng.randrange(lo, hi + 1)
        out.append(data[i:i + k])
        i += k
    return out


def run_mixed(node, where, seed, main, other, pieces=False, verify_node=None):
    """The mixed pipeline on a fresh connection to node (one send, or random pieces); replies
    checked against the model, then the state read back (on verify_node, linearizable, when
    given). Returns the replies."""
    cmds, want, m, touched = gen_pipeline(seed, main, other)
    data = b"".join(enc(*x) for x in cmds)
    c = nodelay(TR.client(node))
    try:
        t0 = time.monotonic()
        chunks = random_pieces(data, random.Random(seed + 1)) if pieces else None
        got = exchange(c, data, len(cmds), chunks=chunks)
        dt = time.monotonic() - t0
        log("%s: %d commands (%d bytes%s) answered in %.3fs" % (
            where, len(cmds), len(data), ", %d pieces" % len(chunks) if chunks else "", dt))
        check_replies(got, want, where)
        check_eq(c.cmd("PING"), "PONG", "%s: the connection still works" % where)
    finally:
        c.close()
    v = TR.client(verify_node or node)
    try:
        if verify_node is not None:
            check_eq(v.cmd("HC.READ", "linearizable"), "OK", "HC.READ linearizable")
        check_state(v, m, touched, where + " (read back%s)" % (
            " on " + verify_node.name if verify_node is not None else ""))
    finally:
        v.close()
    return got, want


def protocol_error_behind_writes(node, where, cache):
    """200 SETs then malformed input: the writes are answered first, then the protocol error,
    then the connection closes; the writes took effect."""
    c = nodelay(TR.client(node))
    try:
        cmds = [("HC.CACHE", cache)] + [("SET", "pe%d" % i, "x%d" % i) for i in range(200)]
        data = b"".join(enc(*x) for x in cmds) + b"*1\r\n:5\r\n" + enc("SET", "after", "x")
        got = exchange(c, data, len(cmds) + 1)
        check_eq(got[:len(cmds)], ["OK"] * len(cmds), "%s: writes before a protocol error" %
                 where)
        check(len(got) > len(cmds) and TR.err_starts(got[len(cmds)], "ERR Protocol error"),
              "%s: the protocol error is answered after the writes: %r" % (where, got[-1:]))
        check(c.closed_by_server(), "%s: closed after the protocol error" % where)
    finally:
        c.close()
    c = TR.client(node)
    try:
        c.cmd("HC.CACHE", cache)
        c.cmd("HC.READ", "linearizable")
        check_eq(c.cmd("MGET", "pe0", "pe199", "after"), [b"x0", b"x199", None],
                 "%s: the writes before the protocol error took effect, the one after not" %
                 where)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# 1. standalone

def test_mixed_pipeline_standalone():
    n = TR.resp_node(name="pipe-standalone")
    try:
        one, want = run_mixed(n, "standalone, one send", 1001, "pa", "pa-other")
        pieces, _ = run_mixed(n, "standalone, random pieces", 1001, "pb", "pb-other",
                              pieces=True)
        # the same commands on fresh caches: the same replies (a TTL may differ by a second)
        diff = [i for i, (a, b, w) in enumerate(zip(one, pieces, want))
                if a != b and not isinstance(w, Range)]
        check(len(one) == len(pieces) and not diff,
              "one send and pieces give the same replies (first differences at %r)" % diff[:5])
        protocol_error_behind_writes(n, "standalone", "pe")
        check(not crash_lines(n), "no crash report: %r" % crash_lines(n)[:3])
        n.stop_ok()
    finally:
        n.kill()


# ---------------------------------------------------------------------------------------------
# cluster helpers

def transfer(cl, to_node=None, timeout=5.0):
    """Asks the current leader to hand leadership to to_node (any up-to-date follower when None)
    and waits until every live node agrees on a leader in a higher term. Returns the new leader,
    or None when the transfer was refused or did not complete in time."""
    sts = cl.statuses()
    ld = [nd for nd, s in sts.items() if s and s["role"] == "leader"]
    if len(ld) != 1:
        return None
    ld = ld[0]
    term = sts[ld]["term"]
    path = "/v1/admin/leader/transfer"
    if to_node is not None:
        if to_node is ld:
            return ld
        path += "?to=127.0.0.1:%d" % cl.peer_ports[to_node.index]
    c = H.Client(ld.port, timeout=timeout)
    try:
        st, _, _ = c.request("POST", path)
    except OSError:
        return None
    finally:
        c.close()
    if st != 200:
        return None
    try:
        return cl.wait_leader(timeout, exclude_term=term)
    except AssertionError:
        return None


def term_of(cl):
    return max((s or {}).get("term", 0) for s in cl.statuses().values())


def new_cluster():
    return TR.RespCluster(3, extra_env={"CACHE_MAX_VALUE_SIZE": str(TR.MAX_VALUE)})


# ---------------------------------------------------------------------------------------------
# 2. cluster: the mixed pipeline through a follower and through the leader

def test_mixed_pipeline_cluster():
    cl = new_cluster()
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        fs = [x for x in cl.live() if x is not ld]
        run_mixed(fs[0], "follower", 2002, "cf", "cf-other", verify_node=ld)
        run_mixed(fs[0], "follower, random pieces", 2002, "cfp", "cfp-other", pieces=True,
                  verify_node=fs[1])
        run_mixed(ld, "leader", 2002, "cl", "cl-other", verify_node=fs[1])
        protocol_error_behind_writes(fs[1], "follower", "pe")
        for x in cl.live():
            check(not crash_lines(x), "%s: no crash report: %r" % (x.name, crash_lines(x)[:3]))
        for x in cl.live():
            x.stop_ok(15.0)
    finally:
        cl.cleanup()


# ---------------------------------------------------------------------------------------------
# 3. a connection's writes stay in order across leader changes

OK, UNKNOWN, UNAVAILABLE, TIMEOUT, TRYAGAIN, OTHER = (
    "ok", "unknown", "unavailable", "timeout", "tryagain", "other")


LETTER = {OK: "o", UNKNOWN: "?", UNAVAILABLE: "u", TIMEOUT: "t", TRYAGAIN: "r", OTHER: "x"}


def kind_of(r):
    if r == "OK":
        return OK
    for prefix, kind in (("UNKNOWN", UNKNOWN), ("UNAVAILABLE", UNAVAILABLE),
                         ("TIMEOUT", TIMEOUT), ("TRYAGAIN", TRYAGAIN)):
        if TR.err_starts(r, prefix):
            return kind
    return OTHER


class Changer(threading.Thread):
    """Moves leadership around while the writer runs: a transfer every 100-300 ms (in mode
    "follower" between the two nodes other than the writer's, in mode "leader" alternately away
    from and back to the writer's node), and once a SIGSTOP of the leader for 1.5 s (with
    SIGCONT)."""

    def __init__(self, cl, conn_node, mode, rng):
        threading.Thread.__init__(self, daemon=True)
        self.cl, self.conn_node, self.mode, self.rng = cl, conn_node, mode, rng
        self.stop_flag = threading.Event()
        self.transfers = self.refused = self.stops = 0
        self.errors = []
        self.stopped = None

    def run(self):
        try:
            i = 0
            while not self.stop_flag.wait(self.rng.uniform(0.1, 0.3)):
                i += 1
                if i == 8 and self.stops == 0:
                    self.stop_leader()
                    continue
                ld, to = transfer_target(self.cl, self.conn_node, self.mode, self.rng)
                if ld is None:
                    continue
                if transfer(self.cl, to) is not None:
                    self.transfers += 1
                else:
                    self.refused += 1
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))
        finally:
            if self.stopped is not None:
                self.stopped.signal(signal.SIGCONT)
                self.stopped = None

    def stop_leader(self):
        ld = self.cl.leader()
        if ld is None:
            return
        if self.mode == "follower" and ld is self.conn_node:
            return
        self.stopped = ld
        ld.signal(signal.SIGSTOP)
        self.stops += 1
        self.stop_flag.wait(1.5)
        ld.signal(signal.SIGCONT)
        self.stopped = None
        try:
            self.cl.wait_leader(10.0)
        except AssertionError:
            pass


def lin_get(node, cache, key):
    """key read with HC.READ linearizable on a new connection to node (an error reply as is)."""
    c = TR.client(node)
    try:
        c.cmd("HC.CACHE", cache)
        c.cmd("HC.READ", "linearizable")
        return c.cmd("GET", key)
    except (OSError, EOFError) as e:
        return e
    finally:
        c.close()


TARGETED_ROUNDS = 12


def transfer_post(cl, ld, to):
    """POST /v1/admin/leader/transfer?to=<to> on ld; the HTTP status (0 when unreachable)."""
    c = H.Client(ld.port, timeout=10)
    try:
        return c.request("POST", "/v1/admin/leader/transfer?to=127.0.0.1:%d" %
                         cl.peer_ports[to.index])[0]
    except OSError:
        return 0
    finally:
        c.close()


def transfer_target(cl, conn_node, mode, rng):
    """(leader, the node to hand leadership to) for a transfer in `mode`: "follower" keeps
    conn_node a follower (leadership moves between the two others), "leader" moves it away
    from conn_node when it leads and back to it otherwise."""
    ld = cl.leader()
    if ld is None:
        return None, None
    others = [x for x in cl.live() if x is not ld]
    if mode == "follower":
        cand = [x for x in others if x is not conn_node]
        return ld, (cand[0] if cand else rng.choice(others))
    if ld is conn_node:
        return ld, rng.choice(others)
    return ld, conn_node


class OrderWriter:
    """One RESP connection writing rounds of 32 `SET k <seq>` (ever-increasing seq) followed by
    `INCR n` and `GET k` in cache "order-<mode>", and what its replies allow to check: every
    reply is OK or an error of the kinds a leader change gives, in order; GET k (it waits for
    the writes before it) is >= the largest seq answered OK and is a seq that may have taken
    effect (answered OK, UNKNOWN or TIMEOUT); INCR n answers increase."""

    def __init__(self, conn_node, verify_node, mode):
        self.cache = "order-" + mode
        self.mode, self.verify_node = mode, verify_node
        self.c = nodelay(TR.client(conn_node))
        check_eq(self.c.cmd("HC.CACHE", self.cache), "OK", "select %s" % self.cache)
        self.kinds = {}      # seq -> reply kind
        self.counts = dict.fromkeys(LETTER, 0)
        self.incr = dict.fromkeys(LETTER, 0)
        self.incr_last = 0   # the last value an INCR answered (they must increase)
        self.max_ok = 0      # the largest seq answered OK so far
        self.may_be = set()  # seqs that may have taken effect (OK, or outcome unknown)
        self.problems = []   # (round, what)
        self.get_checked = self.get_err = 0
        self.seq = 0
        self.rounds = self.split_rounds = 0
        self.broken = False

    def round(self, rng, cuts=None, hooks=None):
        """One round: the 34 commands sent at once, or cut before the given command positions
        (random pauses of 0.5-4 ms between the pieces; hooks[i](), when given, runs instead
        just before piece i is sent)."""
        self.rounds += 1
        first = self.seq + 1
        cmds = []
        for _ in range(32):
            self.seq += 1
            cmds.append(enc("SET", "k", self.seq))
        cmds.append(enc("INCR", "n"))
        cmds.append(enc("GET", "k"))
        cuts = sorted(cuts or [])
        parts = [b"".join(cmds[a:b]) for a, b in zip([0] + cuts, cuts + [len(cmds)])]
        self.split_rounds += len(parts) > 1
        self.c.sock.settimeout(30.0)
        for i, p in enumerate(parts):
            if hooks and i in hooks:
                hooks[i]()
            elif i:
                time.sleep(rng.uniform(0.0005, 0.004))
            self.c.sock.sendall(p)
        replies = []
        try:
            for _ in range(len(cmds)):
                replies.append(self.c.read())
        except (OSError, EOFError, AssertionError, ValueError) as e:
            self.problems.append((self.rounds, "reply %d unreadable: %r" % (len(replies), e)))
            self.broken = True
            return
        for i, r in enumerate(replies[:32]):
            sq = first + i
            k = kind_of(r)
            self.kinds[sq] = k
            self.counts[k] += 1
            if k == OTHER:
                self.problems.append((self.rounds, "SET k %d answered %r" % (sq, r)))
            if k == OK:
                self.max_ok = max(self.max_ok, sq)
            if k in (OK, UNKNOWN, TIMEOUT):
                self.may_be.add(sq)
        ri = replies[32]
        ki = OK if isinstance(ri, int) else kind_of(ri)
        self.incr[ki] += 1
        if isinstance(ri, int):
            if ri <= self.incr_last:
                self.problems.append((self.rounds, "INCR n answered %d after %d" % (
                    ri, self.incr_last)))
            self.incr_last = ri
        elif ki == OTHER:
            self.problems.append((self.rounds, "INCR n answered %r" % (ri,)))
        g = replies[33]
        if isinstance(g, bytes) and g.isdigit():
            v = int(g)
            self.get_checked += 1
            if v < self.max_ok:
                # what the cluster holds (linearizable, on another node) before going on
                lin = lin_get(self.verify_node, self.cache, "k")
                self.problems.append((self.rounds, (
                    "GET k = %d after SET k %d was answered OK, linearizable read on %s: %r "
                    "(seqs %d..%d answered %s, sent in %d pieces)") % (
                        v, self.max_ok, self.verify_node.name, lin, first, self.seq,
                        "".join(LETTER[self.kinds[x]] for x in range(first, self.seq + 1)),
                        len(parts))))
            elif v not in self.may_be:
                self.problems.append((self.rounds, "GET k = %d, a write answered %s" % (
                    v, self.kinds.get(v))))
        elif g is None:
            if self.max_ok > 0:
                self.problems.append((self.rounds, "GET k = nil after writes answered OK"))
        elif kind_of(g) in (UNAVAILABLE, TIMEOUT, TRYAGAIN):
            self.get_err += 1
        else:
            self.problems.append((self.rounds, "GET k answered %r (replies out of order?)" % (
                g,)))

    def summary(self):
        return "%d rounds (%d in pieces), %d SETs: %s; INCR: %s; GET k checked %d times " \
               "(%d errors)" % (self.rounds, self.split_rounds, self.seq, self.counts,
                                self.incr, self.get_checked, self.get_err)

    def close(self):
        self.c.close()


def order_run(cl, conn_node, verify_node, mode, seconds, rng):
    """A writer on conn_node: first for `seconds` while a Changer moves leadership at random
    moments (three rounds in four sent in pieces), then TARGETED_ROUNDS rounds that each hand
    leadership over between their two halves (the first 16 writes are in flight or parked when
    the last 16 arrive); then the checks, and the final values read linearizably on
    verify_node."""
    w = OrderWriter(conn_node, verify_node, mode)
    term0 = term_of(cl)
    changer = Changer(cl, conn_node, mode, rng)
    t_end = time.monotonic() + seconds
    changer.start()
    try:
        while time.monotonic() < t_end and w.rounds < 4000 and not changer.errors and \
                not w.broken and len(w.problems) < 20:
            cuts = None
            if w.rounds % 4 != 3:
                cuts = rng.sample(range(1, 34), rng.randrange(1, 4))
            w.round(rng, cuts)
    finally:
        changer.stop_flag.set()
        changer.join(20.0)
    random_rounds, random_problems = w.rounds, len(w.problems)
    term1 = term_of(cl)
    # leadership handed over between the two halves of a round: the transfer asked right
    # after the first 16 writes (they are in flight when the leader changes), or just before
    # them (the leader refuses them while it transfers: parked, sent again later); the last 16
    # are sent once the transfer answered. A GET k below the last OK here means a parked write
    # of the first half was sent again after writes of the second half had been applied.
    moved = 0
    for i in range(TARGETED_ROUNDS):
        if w.broken:
            break
        ld, to = transfer_target(cl, conn_node, mode, rng)
        if ld is None:
            cl.wait_leader(10.0)
            continue
        term = cl.statuses([ld])[ld]["term"]
        res = {}

        def post(ld=ld, to=to):
            res["st"] = transfer_post(cl, ld, to)
        if (i // 2) % 2 == 0:  # both orders with the writer's node leading and following
            hooks = {1: post}
        else:
            t = threading.Thread(target=post, daemon=True)
            hooks = {0: lambda t=t: (t.start(), time.sleep(0.001)),
                     1: lambda t=t: t.join(15.0)}
        w.round(rng, [16], hooks)
        moved += res.get("st") == 200
        try:
            cl.wait_leader(10.0, exclude_term=term)
        except AssertionError:
            cl.wait_leader(10.0)
    term2 = term_of(cl)
    w.close()
    log("%s run: %s; %d transfers (%d refused), %d leader stop during %d rounds (%d ordering "
        "problems), then %d of %d rounds with a transfer between their halves; term %d -> "
        "%d -> %d" % (mode, w.summary(), changer.transfers, changer.refused, changer.stops,
                      random_rounds, random_problems, moved, TARGETED_ROUNDS, term0, term1,
                      term2))
    check(not changer.errors, "%s: the leadership changer failed: %r" % (mode, changer.errors))
    check(term1 > term0 and changer.transfers + changer.stops > 0,
          "%s: leadership changed during the writes (term %d -> %d, %d transfers, %d stops)" %
          (mode, term0, term1, changer.transfers, changer.stops))
    check(moved >= TARGETED_ROUNDS // 2 and term2 > term1,
          "%s: leadership moved in the middle of rounds (%d of %d transfers, term %d -> %d)" % (
              mode, moved, TARGETED_ROUNDS, term1, term2))
    check(not w.problems, "%s: %d ordering problems, first: %s" % (
        mode, len(w.problems), "; ".join("round %d: %s" % p for p in w.problems[:4])))
    H.note(w.counts[UNKNOWN] + w.counts[TIMEOUT] > 0 or w.counts[OK] < w.seq,
           "%s: every write answered OK despite the leader changes" % mode)

    # once a leader is stable: the values read linearizably on another node
    cl.wait_leader(20.0)
    cl.wait_ready(20.0)
    v = TR.client(verify_node)
    try:
        v.cmd("HC.CACHE", w.cache)
        v.cmd("HC.READ", "linearizable")
        got = H.wait_until(lambda: (lambda r: r if isinstance(r, list) else None)(
            v.cmd("MGET", "k", "n")), 15.0, what="a linearizable read of k and n")
    finally:
        v.close()
    final = int(got[0]) if got[0] is not None else None
    n_val = int(got[1]) if got[1] is not None else 0
    unknown_incr = w.incr[UNKNOWN] + w.incr[TIMEOUT]
    log("%s run: k = %r (largest OK %d, answered %s), n = %d (INCR answered OK %d, unknown %d)"
        % (mode, final, w.max_ok, w.kinds.get(final), n_val, w.incr[OK], unknown_incr))
    if w.max_ok > 0:
        check(final is not None and final >= w.max_ok,
              "%s: final k = %r must be >= the largest seq answered OK (%d)" % (
                  mode, final, w.max_ok))
    check(final is None or final in w.may_be,
          "%s: final k = %r must be a seq answered OK or with an unknown outcome (it was "
          "answered %s)" % (mode, final, w.kinds.get(final)))
    check(w.incr[OK] <= n_val <= w.incr[OK] + unknown_incr,
          "%s: n = %d must count each INCR at most once (%d answered OK, %d unknown)" % (
              mode, n_val, w.incr[OK], unknown_incr))
    return w.counts


def test_order_across_leader_changes():
    cl = new_cluster()
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        seed = int(os.environ.get("PIPE_SEED", str(int(time.time()))))
        log("seed %d (PIPE_SEED=%d reproduces the random choices)" % (seed, seed))
        rng = random.Random(seed)
        seconds = float(os.environ.get("PIPE_ORDER_SECONDS", "7"))
        f = [x for x in cl.live() if x is not ld][0]
        order_run(cl, f, [x for x in cl.live() if x is not f][0], "follower", seconds, rng)
        ld = cl.wait_leader(20.0)
        order_run(cl, ld, [x for x in cl.live() if x is not ld][0], "leader", seconds, rng)
        for x in cl.live():
            check(not crash_lines(x), "%s: no crash report: %r" % (x.name, crash_lines(x)[:3]))
        for x in cl.live():
            x.stop_ok(15.0)
    finally:
        for x in cl.nodes:
            if x is not None and x.alive():
                x.signal(signal.SIGCONT)
        cl.cleanup()


# ---------------------------------------------------------------------------------------------
# 4. a connection closed with writes in flight

def cancelled_puts(node):
    """RESP/HTTP puts counted with result "error": a write the client left before its answer
    (resp.c pend_cancel_all) is counted so."""
    return node.metrics().sum("hacache_requests_total", op="put", result="error")


def close_with_writes(node, tag, count=500, during=None):
    """Sends `count` SETs on a new connection to node and closes it at once (`during`, when
    given, runs between the send and the close). Returns how many writes the node counted as
    left unanswered (cancelled) within a second."""
    before = cancelled_puts(node)
    c = nodelay(TR.client(node))
    c.send_raw(b"".join(enc("SET", "%s-%d" % (tag, i), "v%d" % i) for i in range(count)))
    if during is not None:
        during()
    c.close()
    if getattr(during, "thread", None) is not None:
        during.thread.join(15.0)
    try:
        return H.wait_until(lambda: cancelled_puts(node) - before, 1.0, interval=0.05,
                            what="cancelled writes counted")
    except AssertionError:
        return 0


def transfer_soon(cl):
    """A `during` for close_with_writes: a leader transfer starts (in the background) and the
    connection closes a few milliseconds later, while its writes are in flight or parked."""
    def during():
        t = threading.Thread(target=transfer, args=(cl,), daemon=True)
        t.start()
        time.sleep(0.004)
        during.thread = t
    return during


def node_healthy(node, what):
    check(node.alive(), "%s: %s is alive" % (what, node.name))
    c = H.Client(node.port, timeout=5)
    try:
        st, _, _ = c.get("/healthz")
    finally:
        c.close()
    check_eq(st, 200, "%s: /healthz of %s" % (what, node.name))
    r = TR.client(node)
    try:
        check_eq(r.cmd("PING"), "PONG", "%s: a new connection to %s works" % (what, node.name))
        ok = H.wait_until(lambda: r.cmd("SET", "probe", what) == "OK", 15.0,
                          what="%s: a write through %s" % (what, node.name))
        check(ok, "%s: write" % what)
        check_eq(r.cmd("GET", "probe"), what.encode(), "%s: read back on %s" % (what, node.name))
    finally:
        r.close()
    check(not crash_lines(node), "%s: no crash report on %s: %r" % (
        what, node.name, crash_lines(node)[:3]))


def test_close_with_writes_in_flight():
    cl = new_cluster()
    stopped = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        f = [x for x in cl.live() if x is not ld][0]
        # plain: on a follower (forwarded) and on the leader (proposed)
        cancelled = {}
        cancelled["follower"] = close_with_writes(f, "fclose")
        node_healthy(f, "closed with 500 writes in flight on a follower")
        cancelled["leader"] = close_with_writes(ld, "lclose")
        node_healthy(ld, "closed with 500 writes in flight on the leader")
        # closed while a leader transfer parks the writes of the connection
        ld = cl.wait_leader(10.0)
        f = [x for x in cl.live() if x is not ld][0]
        cancelled["follower, transfer"] = close_with_writes(f, "tclose",
                                                            during=transfer_soon(cl))
        node_healthy(f, "closed during a leader transfer (follower)")
        ld = cl.wait_leader(15.0)
        cancelled["leader, transfer"] = close_with_writes(ld, "tlclose",
                                                          during=transfer_soon(cl))
        cl.wait_leader(15.0)
        node_healthy(ld, "closed during a leader transfer (former leader)")
        # closed while the leader is stopped: the forwarded writes wait, then time out unanswered
        ld = cl.wait_leader(10.0)
        f = [x for x in cl.live() if x is not ld][0]
        ld.signal(signal.SIGSTOP)
        stopped.append(ld)
        cancelled["follower, leader stopped"] = close_with_writes(f, "sclose")
        time.sleep(0.3)
        close_with_writes(f, "sclose2", count=50)
        log("writes left unanswered by the closed connections: %r" % cancelled)
        check(cancelled["follower, leader stopped"] > 0,
              "the connection closed while the leader is stopped had writes in flight")
        time.sleep(0.7)
        ld.signal(signal.SIGCONT)
        stopped.remove(ld)
        cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        time.sleep(2.5)  # past the parked writes' retry window (2 election timeouts)
        for x in cl.live():
            node_healthy(x, "after connections closed with writes in flight")
        for x in cl.live():
            x.stop_ok(15.0)  # exit 0, no sanitizer report (ASan: no leak)
    finally:
        for x in stopped:
            x.signal(signal.SIGCONT)
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
