#!/usr/bin/env python3
"""Black-box tests of the Redis-protocol listener (CACHE_RESP_ADDR, SPEC sections 2, 3, 4) on
real hacached processes, with a tiny RESP2 client over plain sockets.

Standalone: commands and their replies, SET NX / PX / EX and expiry, the HC.* extensions and
their agreement with the HTTP API, pipelining, bounds (oversized bulk and argument count: an
error and a closed connection before the body is sent; a value just over the limit: an error,
the connection stays), malformed input, AUTH / NOAUTH / WRONGPASS and token rotation, metrics,
redis-cli and redis-benchmark as clients, configuration checks, and a prompt clean exit on
SIGTERM with connections open. Cluster (3 nodes): a write on a follower is forwarded, reads at
every consistency, quorum loss answers -UNAVAILABLE, and a client that disconnects while its
write waits does not disturb the node.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as CL  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log

MAX_VALUE = 64 * 1024
TOKEN = "resp-token-0123456789abcdef"


class RespError(Exception):
    """An error reply (-CODE message); str() is the whole line."""

    def __eq__(self, other):
        return isinstance(other, RespError) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


class Resp:
    """A RESP2 client over one TCP connection. cmd() sends one command and returns its reply:
    str (simple string), RespError, int, bytes (bulk), None (nil), list (array)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(*args))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed by the server")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise AssertionError("unexpected reply line %r" % line)

    def cmd(self, *args):
        self.send(*args)
        return self.read()

    def closed_by_server(self, timeout=5.0):
        """True when the server closes the connection within timeout (after any pending
        replies, which are discarded)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def err_starts(reply, prefix):
    return isinstance(reply, RespError) and str(reply).startswith(prefix)


def check_err(reply, prefix, what):
    return check(err_starts(reply, prefix), "%s: expected an error starting %r, got %r" % (
        what, prefix, reply))


def resp_node(name="resp", env=None, **kw):
    port = H.free_port()
    e = {"CACHE_RESP_ADDR": "127.0.0.1:%d" % port, "CACHE_MAX_VALUE_SIZE": str(MAX_VALUE)}
    e.update(env or {})
    n = H.Node(name=name, env=e, **kw)
    n.resp_port = port
    return n


_S = {}


def shared():
    if "node" not in _S:
        _S["node"] = resp_node(persistent=True)
    return _S["node"]


def client(node=None):
    return Resp((node or shared()).resp_port)


# ---------------------------------------------------------------------------------------------
# standalone

def test_commands():
    c = client()
    try:
        check_eq(c.cmd("PING"), "PONG", "PING")
        check_eq(c.cmd("ping", "hello"), b"hello", "PING msg")
        check_eq(c.cmd("ECHO", b"a\r\nb\x00"), b"a\r\nb\x00", "ECHO binary")
        check_eq(c.cmd("SELECT", "0"), "OK", "SELECT 0")
        check_err(c.cmd("SELECT", "1"), "ERR DB index is out of range", "SELECT 1")
        check_eq(c.cmd("SET", "k1", b"v\x00\r\n1"), "OK", "SET")
        check_eq(c.cmd("GET", "k1"), b"v\x00\r\n1", "GET binary value")
        check_eq(c.cmd("GET", "absent"), None, "GET absent")
        check_eq(c.cmd("SET", "k2", "x"), "OK", "SET k2")
        check_eq(c.cmd("EXISTS", "k1", "k2", "absent", "k1"), 3, "EXISTS counts every key given")
        check_eq(c.cmd("DEL", "k1", "absent", "k2"), 2, "DEL counts removed keys")
        check_eq(c.cmd("EXISTS", "k1"), 0, "EXISTS after DEL")
        check_eq(c.cmd("INCR", "n"), 1, "INCR of an absent key")
        check_eq(c.cmd("INCRBY", "n", "41"), 42, "INCRBY")
        check_eq(c.cmd("DECR", "n"), 41, "DECR")
        check_eq(c.cmd("DECRBY", "n", "-9"), 50, "DECRBY negative")
        check_eq(c.cmd("GET", "n"), b"50", "counter as a value")
        check_eq(c.cmd("SET", "s", "abc"), "OK", "SET s")
        check_err(c.cmd("INCR", "s"), "ERR value is not an integer or out of range",
                  "INCR of a non-integer")
        check_err(c.cmd("INCRBY", "n", "x"), "ERR value is not an integer or out of range",
                  "INCRBY by a non-integer")
        check_eq(c.cmd("SET", "big", str(2 ** 63 - 1)), "OK", "SET max int")
        check_err(c.cmd("INCR", "big"), "ERR value is not an integer or out of range",
                  "INCR overflow")
        check_err(c.cmd("NOSUCH", "x"), "ERR unknown command 'NOSUCH'", "unknown command")
        check_err(c.cmd("GET"), "ERR wrong number of arguments for 'get'", "GET arity")
        check_err(c.cmd("GET", "a", "b"), "ERR wrong number of arguments", "GET arity 2")
        check_eq(c.cmd("SET", "k", "v", "XX"), None, "SET XX of an absent key: nil, no write")
        check_eq(c.cmd("EXISTS", "k"), 0, "SET XX did not create the key")
        check_eq(c.cmd("SET", "k", "v", "NX", "XX"), RespError("ERR syntax error"),
                 "SET NX XX is a syntax error")
        check_err(c.cmd("SET", "", "v"), "ERR empty keys", "empty key")
        check_err(c.cmd("GET", "k" * 2000), "ERR key larger than CACHE_MAX_KEY_SIZE", "long key")
        check(isinstance(c.cmd("COMMAND", "DOCS"), list), "COMMAND DOCS is an array")
        check(isinstance(c.cmd("COMMAND", "COUNT"), int), "COMMAND COUNT is an integer")
        info = c.cmd("INFO")
        check(isinstance(info, bytes) and b"# Replication" in info and
              b"hacache_role:standalone" in info, "INFO sections: %r" % (info,))
        check_eq(c.cmd("CONFIG", "GET", "appendonly"), [b"appendonly", b"no"], "CONFIG GET")
        check_eq(c.cmd("FLUSHDB"), "OK", "FLUSHDB")
        check_eq(c.cmd("EXISTS", "n", "s", "big"), 0, "FLUSHDB emptied the cache")
        check_eq(c.cmd("QUIT"), "OK", "QUIT")
        check(c.closed_by_server(), "QUIT closes the connection")
    finally:
        c.close()


def test_set_options_and_expiry():
    c = client()
    try:
        check_eq(c.cmd("SET", "nx", "1", "NX"), "OK", "SET NX of an absent key")
        check_eq(c.cmd("SET", "nx", "2", "nx"), None, "SET NX of a present key: nil")
        check_eq(c.cmd("GET", "nx"), b"1", "SET NX kept the first value")
        check_eq(c.cmd("TTL", "nx"), -1, "TTL without expiry")
        check_eq(c.cmd("TTL", "absent"), -2, "TTL of an absent key")
        check_eq(c.cmd("SET", "px", "v", "PX", "400"), "OK", "SET PX")
        pttl = c.cmd("PTTL", "px")
        check(isinstance(pttl, int) and 0 < pttl <= 400, "PTTL in (0, 400]: %r" % (pttl,))
        check_eq(c.cmd("SET", "ex", "v", "EX", "100", "NX"), "OK", "SET EX NX")
        ttl = c.cmd("TTL", "ex")
        check(isinstance(ttl, int) and 99 <= ttl <= 100, "TTL about 100: %r" % (ttl,))
        check_err(c.cmd("SET", "e", "v", "EX", "0"), "ERR invalid expire time", "EX 0")
        check_err(c.cmd("SET", "e", "v", "PX", "-5"), "ERR invalid expire time", "PX -5")
        check_err(c.cmd("SET", "e", "v", "PX", "x"), "ERR value is not an integer", "PX x")
        check_err(c.cmd("SET", "e", "v", "EX", "1", "PX", "1"), "ERR syntax error", "EX and PX")
        t0 = time.monotonic()
        H.wait_until(lambda: c.cmd("GET", "px") is None, 5.0, what="the PX key expires")
        log("PX 400 key gone %.2fs after the check" % (time.monotonic() - t0))
        check_eq(c.cmd("PTTL", "px"), -2, "PTTL after expiry")
    finally:
        c.close()


def test_hc_extensions_and_http_agree():
    n = shared()
    c = client()
    h = n.client()
    try:
        check_eq(c.cmd("HC.CACHE"), b"default", "default cache")
        check_eq(c.cmd("HC.CACHE", "sessions"), "OK", "select a cache")
        check_err(c.cmd("HC.CACHE", "bad/name"), "ERR cache name", "bad cache name")
        check_eq(c.cmd("SET", "u1", "alice"), "OK", "SET in sessions")
        st, _, body = h.get("/v1/caches/sessions/u1")
        check_eq((st, body), (200, b"alice"), "HTTP sees the RESP write in the selected cache")
        st, _, _ = h.put("/v1/caches/sessions/u2", b"bob")
        check_eq(st, 200, "HTTP PUT")
        check_eq(c.cmd("GET", "u2"), b"bob", "RESP sees the HTTP write")
        check_eq(c.cmd("HC.CACHE", "default"), "OK", "back to default")
        check_eq(c.cmd("GET", "u1"), None, "caches are separate")
        for a in ("once", "leader", "none", "quorum"):
            check_eq(c.cmd("HC.ACK", a), "OK", "HC.ACK %s" % a)
        check_eq(c.cmd("HC.ACK"), b"quorum", "HC.ACK shows the setting")
        check_err(c.cmd("HC.ACK", "all"), "ERR ack must be", "bad ack")
        for r in ("leader", "linearizable", "local"):
            check_eq(c.cmd("HC.READ", r), "OK", "HC.READ %s" % r)
        check_err(c.cmd("HC.READ", "stale"), "ERR read must be", "bad read")
        check_eq(c.cmd("HC.ACK", "none"), "OK", "ack none")
        check_eq(c.cmd("SET", "fire", "forget"), "OK", "SET with ack none")
        check_eq(c.cmd("HC.CACHE", "sessions"), "OK", "select sessions")
        check_eq(c.cmd("FLUSHDB"), "OK", "FLUSHDB of sessions")
        st, _, _ = h.get("/v1/caches/sessions/u2")
        check_eq(st, 404, "FLUSHDB cleared only the selected cache (sessions)")
        st, _, body = h.get("/v1/caches/default/fire")
        check_eq((st, body), (200, b"forget"), "default cache untouched")
    finally:
        c.close()
        h.close()


def test_pipelining_in_order():
    c = client()
    try:
        cmds, want = [], []
        for i in range(300):
            cmds.append(("SET", "p%d" % i, "v%d" % i))
            want.append("OK")
            cmds.append(("GET", "p%d" % i))
            want.append(b"v%d" % i)
            if i % 10 == 0:
                cmds.append(("INCR", "pc"))
                want.append(i // 10 + 1)
        # one write for the whole batch, and also the same bytes split in small pieces
        c.send_raw(b"".join(Resp.encode(*x) for x in cmds))
        got = [c.read() for _ in cmds]
        check_eq(got, want, "pipelined replies in order")
        data = b"PING\r\n" + b"".join(Resp.encode(*x) for x in cmds[:60])
        for i in range(0, len(data), 7):
            c.send_raw(data[i:i + 7])
        got = [c.read() for _ in range(61)]
        check_eq(got[0], "PONG", "inline PING in a pipeline")
        check_eq(got[1:], [w if not isinstance(w, int) else w + 30 for w in want[:60]],
                 "pipeline sent in 7-byte pieces")
    finally:
        c.close()


def test_bounds_close_before_buffering():
    n = shared()
    # a bulk header above the limit: error and close without sending the body
    c = client()
    try:
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (MAX_VALUE + 100000))
        r = c.read()
        check_err(r, "ERR Protocol error: bulk string larger", "oversized bulk header")
        check(c.closed_by_server(), "connection closed after an oversized bulk")
    finally:
        c.close()
    c = client()
    try:
        c.send_raw(b"*1000000\r\n")
        check_err(c.read(), "ERR Protocol error: too many arguments", "argument count")
        check(c.closed_by_server(), "connection closed after too many arguments")
    finally:
        c.close()
    c = client()
    try:
        c.send_raw(b"x" * (70 * 1024))
        check_err(c.read(), "ERR Protocol error: too big inline", "inline without newline")
        check(c.closed_by_server(), "connection closed after a huge inline line")
    finally:
        c.close()
    # a value just over CACHE_MAX_VALUE_SIZE: an answer, and the connection stays
    c = client()
    try:
        check_err(c.cmd("SET", "k", b"v" * (MAX_VALUE + 1)), "ERR value too large",
                  "value over the limit")
        check_eq(c.cmd("SET", "k", b"v" * MAX_VALUE), "OK", "value at the limit")
        check_eq(len(c.cmd("GET", "k") or b""), MAX_VALUE, "value at the limit read back")
    finally:
        c.close()
    check(n.alive(), "node alive")


def test_malformed_input():
    cases = [
        (b"*1\r\n:5\r\n", "ERR Protocol error: expected '$'"),
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$-3\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$3\r\nabcXY", "ERR Protocol error: bulk string not followed by CRLF"),
        (b"*2\r\n$3\r\nGET\r\n$1\r\n" + b"9" * 40, "ERR Protocol error"),
    ]
    for data, prefix in cases:
        c = client()
        try:
            c.send_raw(b"PING\r\n" + data)
            check_eq(c.read(), "PONG", "the command before the bad bytes is answered")
            check_err(c.read(), prefix, "malformed %r" % data[:30])
            check(c.closed_by_server(), "closed after malformed %r" % data[:30])
        finally:
            c.close()
    c = client()
    try:
        check_eq(c.cmd("PING"), "PONG", "node serves after malformed input")
    finally:
        c.close()


def test_metrics_count_resp_commands():
    n = shared()
    before = n.metrics()
    c = client()
    try:
        for i in range(5):
            c.cmd("SET", "m%d" % i, "x")
        c.cmd("GET", "m0")
        c.cmd("GET", "nothing-here")
    finally:
        c.close()
    after = n.metrics()

    def d(**lb):
        return (after.get("hacache_requests_total", 0, **lb) or 0) - (
            before.get("hacache_requests_total", 0, **lb) or 0)
    check_eq(d(op="put", ack="quorum", result="ok"), 5, "RESP SETs counted")
    check_eq(d(op="get", ack="", result="ok"), 1, "RESP GET hit counted")
    check_eq(d(op="get", ack="", result="not_found"), 1, "RESP GET miss counted")


def test_redis_cli_and_benchmark():
    n = shared()
    cli = shutil.which("redis-cli")
    if cli is None:
        raise H.Skip("redis-cli not installed (Debian package redis-tools)")
    p = str(n.resp_port)

    def run(*args):
        r = subprocess.run([cli, "-p", p] + list(args), capture_output=True, timeout=20)
        return r.returncode, r.stdout.decode().strip()
    check_eq(run("set", "cli-key", "cli-value"), (0, "OK"), "redis-cli set")
    check_eq(run("get", "cli-key"), (0, "cli-value"), "redis-cli get")
    check_eq(run("incr", "cli-n"), (0, "1"), "redis-cli incr")
    check_eq(run("ping"), (0, "PONG"), "redis-cli ping")
    bench = shutil.which("redis-benchmark")
    if bench is None:
        return
    r = subprocess.run([bench, "-p", p, "-n", "2000", "-c", "4", "-P", "8", "-t", "set,get",
                        "-q"], capture_output=True, timeout=60)
    out = r.stdout.decode() + r.stderr.decode()
    log("redis-benchmark: %s" % " | ".join(x.strip() for x in out.splitlines()[-4:]
                                           if x.strip()))
    check_eq(r.returncode, 0, "redis-benchmark exit status")
    check("SET:" in out and "GET:" in out, "redis-benchmark ran SET and GET: %r" % out[-300:])


def test_check_config():
    def run(env):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CACHE_HTTP_ADDR": "127.0.0.1:1"}
        e.update(env)
        r = subprocess.run([H.binary(), "--check-config"], env=e, capture_output=True,
                           timeout=20)
        return r.returncode, r.stderr.decode()
    rc, err = run({"CACHE_RESP_ADDR": "no-port-here"})
    check_eq(rc, 2, "unparsable CACHE_RESP_ADDR exit status")
    check("CACHE_RESP_ADDR" in err, "the line names CACHE_RESP_ADDR: %r" % err)
    rc, err = run({"CACHE_RESP_ADDR": "0.0.0.0:6379"})
    check_eq(rc, 2, "RESP off loopback without a token")
    check("CACHE_API_TOKEN" in err and "CACHE_RESP_ADDR" in err, "says why: %r" % err)
    rc, _ = run({"CACHE_RESP_ADDR": "0.0.0.0:6379", "CACHE_API_INSECURE": "true"})
    check_eq(rc, 0, "CACHE_API_INSECURE=true allows it")
    rc, _ = run({"CACHE_RESP_ADDR": "0.0.0.0:6379", "CACHE_API_TOKEN": TOKEN})
    check_eq(rc, 0, "a token allows it")
    rc, _ = run({"CACHE_RESP_ADDR": "off"})
    check_eq(rc, 0, "off")
    help_text = subprocess.run([H.binary(), "--help"], capture_output=True, timeout=20)
    check(b"--resp-addr" in help_text.stdout and b"CACHE_RESP_ADDR" in help_text.stdout,
          "--help lists the RESP knob")


def test_auth_and_token_rotation():
    d = tempfile.mkdtemp(prefix="hacache-resp-auth-")
    try:
        a, b = "resp-token-aaaaaaaaaaaaaaaaaa", "resp-token-bbbbbbbbbbbbbbbbbb"
        path = os.path.join(d, "api-tokens")
        with open(path, "w") as f:
            f.write(a + "\n")
        n = resp_node(name="auth", env={"CACHE_API_TOKEN_FILE": path})
        c = client(n)
        try:
            check_err(c.cmd("GET", "k"), "NOAUTH Authentication required", "GET before AUTH")
            check_err(c.cmd("PING"), "NOAUTH", "PING needs AUTH too (as in Redis)")
            check_err(c.cmd("AUTH", "wrong-token-xxxxxxxxxxxx"),
                      "WRONGPASS invalid username-password pair", "wrong token")
            check_err(c.cmd("AUTH", "admin", a), "WRONGPASS", "another user name")
            check_err(c.cmd("SET", "k", "v"), "NOAUTH", "still not authenticated")
            check_eq(c.cmd("AUTH", a), "OK", "right token")
            check_eq(c.cmd("SET", "k", "v"), "OK", "SET after AUTH")
        finally:
            c.close()
        c = client(n)
        try:
            check_eq(c.cmd("AUTH", "default", a), "OK", "AUTH default <token>")
            check_eq(c.cmd("GET", "k"), b"v", "GET after AUTH default")
            check_eq(c.cmd("QUIT"), "OK", "QUIT")
        finally:
            c.close()
        c = client(n)
        try:
            check_eq(c.cmd("QUIT"), "OK", "QUIT is allowed before AUTH")
        finally:
            c.close()
        kept = client(n)
        check_eq(kept.cmd("AUTH", a), "OK", "a connection authenticated with the old token")
        with open(path + ".new", "w") as f:
            f.write(b + "\n")
        os.rename(path + ".new", path)

        def auth_with(tok):
            x = client(n)
            try:
                return x.cmd("AUTH", tok)
            finally:
                x.close()
        H.wait_until(lambda: auth_with(b) == "OK", 10.0, what="the rotated token is accepted")
        check_err(auth_with(a), "WRONGPASS", "the old token is refused for new AUTHs")
        check_eq(kept.cmd("GET", "k"), b"v", "an authenticated connection keeps working")
        kept.close()
        # no token configured: AUTH is an error, everything else is open
        c = client()
        try:
            check_err(c.cmd("AUTH", "x"), "ERR AUTH <password> called without any password",
                      "AUTH without a configured token")
        finally:
            c.close()
        n.stop_ok()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sigterm_with_connections_open():
    n = resp_node(name="term")
    idle = client(n)
    busy = client(n)
    try:
        check_eq(idle.cmd("PING"), "PONG", "idle connection works")
        busy.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n01234")  # half a command
        t0 = time.monotonic()
        n.signal(signal.SIGTERM)
        rc = n.wait_exit(10.0)
        dt = time.monotonic() - t0
        check_eq(rc, 0, "exit status after SIGTERM")
        check(dt < 3.0, "prompt exit with RESP connections open (%.2fs)" % dt)
        check(idle.closed_by_server(2.0), "idle connection closed")
        check(busy.closed_by_server(2.0), "connection with half a command closed")
        n.stop_ok()  # no sanitizer report
    finally:
        idle.close()
        busy.close()


# ---------------------------------------------------------------------------------------------
# cluster

class RespCluster(CL.Cluster):
    """The cluster helper with a RESP listener on every node (node.resp_port)."""

    def __init__(self, n, **kw):
        self.resp_ports = [H.free_port() for _ in range(n)]
        CL.Cluster.__init__(self, n, **kw)

    def env(self, i):
        e = CL.Cluster.env(self, i)
        e["CACHE_RESP_ADDR"] = "127.0.0.1:%d" % self.resp_ports[i]
        return e

    def start_node(self, i, wait=True):
        node = CL.Cluster.start_node(self, i, wait)
        node.resp_port = self.resp_ports[i]
        return node


def test_cluster_forwarding_and_quorum_loss():
    grace_ms = 1000
    cl = RespCluster(3, extra_env={"CACHE_QUORUM_LOSS_GRACE_MS": str(grace_ms)})
    stopped = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        fs = [x for x in cl.live() if x is not ld]

        fc = client(fs[0])
        lc = client(ld)
        try:
            check_eq(fc.cmd("SET", "fk", "through-a-follower"), "OK",
                     "write on a follower is forwarded (ack quorum)")
            check_eq(fc.cmd("GET", "fk"), b"through-a-follower", "read-your-writes there")
            check_eq(fc.cmd("INCRBY", "fn", "5"), 5, "INCRBY on a follower")
            check_eq(fc.cmd("DEL", "fk", "none"), 1, "DEL on a follower")
            check_eq(fc.cmd("HC.ACK", "leader"), "OK", "ack leader")
            check_eq(fc.cmd("SET", "fl", "x"), "OK", "forwarded write with ack leader")
            for r in ("leader", "linearizable"):
                check_eq(fc.cmd("HC.READ", r), "OK", "HC.READ %s" % r)
                check_eq(fc.cmd("GET", "fn"), b"5", "%s read on a follower" % r)
                check_eq(fc.cmd("EXISTS", "fn", "fl", "fk"), 2, "%s EXISTS" % r)
            H.wait_until(lambda: lc.cmd("GET", "fl") == b"x", 5.0,
                         what="the ack-leader write reaches the leader's store")
            info = lc.cmd("INFO", "replication")
            check(b"hacache_role:leader" in info and b"role:master" in info, "leader INFO")
            info = fc.cmd("INFO")
            check(b"hacache_role:follower" in info and b"role:slave" in info and
                  b"leader:127.0.0.1:" in info, "follower INFO names the leader: %r" % info)
        finally:
            fc.close()

        for f in fs:
            f.signal(signal.SIGSTOP)
            stopped.append(f)
        # a write that waits for a quorum, and its client goes away: the node cancels it
        gone = client(ld)
        gone.send("SET", "orphan", "x")
        time.sleep(0.05)
        gone.close()

        def unavailable():
            r = lc.cmd("GET", "fn")
            return r if err_starts(r, "UNAVAILABLE") else None
        r = H.wait_until(unavailable, 2.0 * grace_ms / 1000.0 + 1.0,
                         what="the cut-off leader answers -UNAVAILABLE")
        log("read on the cut-off leader: %s" % r)
        check_err(lc.cmd("SET", "late", "x"), "UNAVAILABLE", "write on the cut-off leader")
        check_eq(lc.cmd("PING"), "PONG", "PING still answers")
        check(ld.alive(), "leader alive")
        for f in stopped:
            f.signal(signal.SIGCONT)
        stopped = []
        cl.wait_ready(20.0)
        H.wait_until(lambda: lc.cmd("SET", "after", "y") == "OK", 10.0,
                     what="writes work again after recovery")
        lc.close()
        # SIGTERM of the leader while a RESP write waits for a quorum that cannot answer: the
        # node still exits cleanly (the write is answered or cancelled by the drain) in time
        ld = cl.wait_leader(15.0)
        fs = [x for x in cl.live() if x is not ld]
        pend = client(ld)
        try:
            check_eq(pend.cmd("PING"), "PONG", "connection to the leader")
            for f in fs:
                f.signal(signal.SIGSTOP)
                stopped.append(f)
            pend.send("SET", "pending", "x")
            time.sleep(0.1)
            t0 = time.monotonic()
            ld.signal(signal.SIGTERM)
            rc = ld.wait_exit(15.0)
            log("leader exited %.2fs after SIGTERM with a RESP write pending" % (
                time.monotonic() - t0))
            check_eq(rc, 0, "exit status with a pending RESP write")
            pend.sock.settimeout(2.0)
            try:
                r = pend.read()
                check(err_starts(r, "UNAVAILABLE") or err_starts(r, "UNKNOWN") or
                      err_starts(r, "TIMEOUT"), "the pending write fails: %r" % (r,))
            except (EOFError, OSError):
                pass  # closed by the drain without an answer
            ld.stop_ok(1.0)
        finally:
            pend.close()
        for f in stopped:
            f.signal(signal.SIGCONT)
        stopped = []
        for x in cl.live():
            x.stop_ok(15.0)
    finally:
        for f in stopped:
            f.signal(signal.SIGCONT)
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
