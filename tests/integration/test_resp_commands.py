#!/usr/bin/env python3
"""Black-box tests of the RESP commands that map onto existing node operations (no new log-entry
kind): SETEX, PSETEX, MGET, UNLINK, DBSIZE, CLIENT ID|GETNAME|SETNAME|SETINFO, HELLO, and the
clear refusal of SET XX (and the other SET options that need a protocol bump).

One table of cases runs against a standalone node and through a follower of a 3-node cluster
(forwarded writes, reads at local and linearizable consistency). redis-py (Debian's
python3-redis) drives the same commands against a standalone node with an API token, so it
authenticates the way a real application does.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import test_resp as TR  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log
RespError = TR.RespError


def run_cases(c, where, expect_role):
    """The command cases on one RESP connection; `where` names the node in messages."""
    def eq(got, want, what):
        check_eq(got, want, "%s: %s" % (where, what))

    def err(got, prefix, what):
        TR.check_err(got, prefix, "%s: %s" % (where, what))

    c.cmd("HC.CACHE", "cmds")
    eq(c.cmd("FLUSHDB"), "OK", "FLUSHDB of a fresh cache")
    # SETEX / PSETEX: a put with a TTL
    eq(c.cmd("SETEX", "sx", "100", "v1"), "OK", "SETEX")
    eq(c.cmd("GET", "sx"), b"v1", "SETEX value")
    ttl = c.cmd("TTL", "sx")
    check(isinstance(ttl, int) and 98 <= ttl <= 100, "%s: SETEX TTL %r" % (where, ttl))
    eq(c.cmd("PSETEX", "psx", "1500", "v2"), "OK", "PSETEX")
    pttl = c.cmd("PTTL", "psx")
    check(isinstance(pttl, int) and 0 < pttl <= 1500, "%s: PSETEX PTTL %r" % (where, pttl))
    err(c.cmd("SETEX", "sx", "0", "v"), "ERR invalid expire time in 'setex'", "SETEX 0")
    err(c.cmd("PSETEX", "sx", "-5", "v"), "ERR invalid expire time in 'psetex'", "PSETEX -5")
    err(c.cmd("SETEX", "sx", "ten", "v"), "ERR value is not an integer", "SETEX ten")
    err(c.cmd("SETEX", "sx", "10"), "ERR wrong number of arguments", "SETEX arity")
    err(c.cmd("SETEX", "", "10", "v"), "ERR empty keys", "SETEX empty key")
    err(c.cmd("SETEX", "big", "10", b"x" * (TR.MAX_VALUE + 1)), "ERR value too large",
        "SETEX value over CACHE_MAX_VALUE_SIZE")
    eq(c.cmd("GET", "sx"), b"v1", "a refused SETEX leaves the key")
    H.wait_until(lambda: c.cmd("GET", "psx") is None, 10.0,
                 what="%s: the PSETEX key expires" % where)

    # MGET: values in order, nil for missing keys, the connection's read consistency
    eq(c.cmd("SET", "m1", "a"), "OK", "SET m1")
    eq(c.cmd("SET", "m2", b"\x00bin\r\n"), "OK", "SET m2 (binary)")
    eq(c.cmd("MGET", "m1", "nope", "m2", "m1"), [b"a", None, b"\x00bin\r\n", b"a"], "MGET")
    eq(c.cmd("MGET", "nope"), [None], "MGET of one missing key")
    err(c.cmd("MGET"), "ERR wrong number of arguments", "MGET arity")
    err(c.cmd("MGET", "m1", ""), "ERR empty keys", "MGET with an empty key")
    for cons in ("linearizable", "leader", "local"):
        eq(c.cmd("HC.READ", cons), "OK", "HC.READ %s" % cons)
        eq(c.cmd("MGET", "m2", "m1", "nope"), [b"\x00bin\r\n", b"a", None], "MGET %s" % cons)
    # pipelined: MGET sees the SET before it, replies stay in order
    c.send_raw(TR.Resp.encode("SET", "m3", "c") + TR.Resp.encode("MGET", "m3", "m1") +
               TR.Resp.encode("PING"))
    eq([c.read() for _ in range(3)], ["OK", [b"c", b"a"], "PONG"], "pipelined SET MGET PING")

    # UNLINK: DEL's count
    eq(c.cmd("UNLINK", "m1", "m2", "nope"), 2, "UNLINK count")
    eq(c.cmd("MGET", "m1", "m2", "m3"), [None, None, b"c"], "after UNLINK")

    # DBSIZE: entries of the selected cache only
    eq(c.cmd("FLUSHDB"), "OK", "FLUSHDB")
    eq(c.cmd("DBSIZE"), 0, "DBSIZE empty")
    for k in ("d1", "d2", "d3"):
        c.cmd("SET", k, "x")
    H.wait_until(lambda: c.cmd("DBSIZE") == 3, 5.0, what="%s: DBSIZE 3" % where)
    eq(c.cmd("HC.CACHE", "other-cmds"), "OK", "select another cache")
    eq(c.cmd("DBSIZE"), 0, "DBSIZE of another cache")
    eq(c.cmd("HC.CACHE", "cmds"), "OK", "back")
    err(c.cmd("DBSIZE", "x"), "ERR wrong number of arguments", "DBSIZE arity")

    # SET XX and the options that need a log-entry kind the node does not have yet
    for opt in ("XX", "GET", "KEEPTTL"):
        err(c.cmd("SET", "d1", "y", opt), "ERR SET option", "SET %s refused" % opt)
    err(c.cmd("SET", "d1", "y", "EXAT", "1"), "ERR SET option", "SET EXAT refused")
    eq(c.cmd("GET", "d1"), b"x", "a refused SET leaves the key")

    # CLIENT
    cid = c.cmd("CLIENT", "ID")
    check(isinstance(cid, int) and cid > 0, "%s: CLIENT ID %r" % (where, cid))
    eq(c.cmd("CLIENT", "GETNAME"), None, "no name yet")
    eq(c.cmd("CLIENT", "SETNAME", "worker-1"), "OK", "CLIENT SETNAME")
    eq(c.cmd("CLIENT", "GETNAME"), b"worker-1", "CLIENT GETNAME")
    err(c.cmd("CLIENT", "SETNAME", "has space"), "ERR Client names cannot contain",
        "a name with a space")
    err(c.cmd("CLIENT", "SETNAME", "x" * 300), "ERR client name longer", "a long name")
    eq(c.cmd("CLIENT", "SETNAME", ""), "OK", "an empty name clears it")
    eq(c.cmd("CLIENT", "GETNAME"), None, "cleared")
    eq(c.cmd("CLIENT", "SETINFO", "LIB-NAME", "redis-py"), "OK", "CLIENT SETINFO LIB-NAME")
    eq(c.cmd("CLIENT", "SETINFO", "lib-ver", "4.3.4"), "OK", "CLIENT SETINFO lib-ver")
    err(c.cmd("CLIENT", "SETINFO", "colour", "blue"), "ERR Unrecognized option",
        "CLIENT SETINFO of an unknown attribute")
    err(c.cmd("CLIENT", "KILL", "x"), "ERR unknown subcommand", "CLIENT KILL")
    err(c.cmd("CLIENT"), "ERR wrong number of arguments", "CLIENT arity")

    # HELLO: RESP2 only, Redis's map as a flat array
    for args in (("HELLO",), ("HELLO", "2"), ("HELLO", "2", "SETNAME", "via-hello")):
        h = c.cmd(*args)
        check(isinstance(h, list) and len(h) == 14, "%s: %s reply %r" % (where, args, h))
        d = dict(zip(h[0::2], h[1::2]))
        eq(d.get(b"proto"), 2, "%s proto" % (args,))
        eq(d.get(b"id"), cid, "%s id is the CLIENT ID" % (args,))
        eq(d.get(b"role"), expect_role, "%s role" % (args,))
        eq(d.get(b"server"), b"redis", "%s server" % (args,))
        eq(d.get(b"modules"), [], "%s modules" % (args,))
    eq(c.cmd("CLIENT", "GETNAME"), b"via-hello", "HELLO SETNAME names the connection")
    err(c.cmd("HELLO", "3"), "NOPROTO", "HELLO 3")
    err(c.cmd("HELLO", "1"), "NOPROTO", "HELLO 1")
    err(c.cmd("HELLO", "two"), "ERR Protocol version is not an integer", "HELLO two")
    err(c.cmd("HELLO", "2", "BOGUS"), "ERR Syntax error in HELLO option", "HELLO 2 BOGUS")
    err(c.cmd("HELLO", "2", "AUTH", "default"), "ERR Syntax error", "HELLO AUTH without a pass")
    eq(c.cmd("PING"), "PONG", "the connection survives every error above")


def test_commands_standalone():
    n = TR.resp_node(name="resp-cmds")
    try:
        c = TR.client(n)
        try:
            run_cases(c, "standalone", b"master")
            # HELLO AUTH on a node without a token: Redis's answer
            TR.check_err(c.cmd("HELLO", "2", "AUTH", "default", "x"), "ERR AUTH",
                         "HELLO AUTH without a token configured")
        finally:
            c.close()
        n.stop_ok()
    finally:
        n.kill()


def test_hello_auth_with_token():
    n = TR.resp_node(name="resp-cmds-auth", env={"CACHE_API_TOKEN": TR.TOKEN})
    try:
        c = TR.client(n)
        try:
            TR.check_err(c.cmd("HELLO"), "NOAUTH", "HELLO before AUTH")
            TR.check_err(c.cmd("CLIENT", "ID"), "NOAUTH", "CLIENT before AUTH")
            TR.check_err(c.cmd("HELLO", "2", "AUTH", "default", "wrong"), "WRONGPASS",
                         "HELLO AUTH with a wrong token")
            TR.check_err(c.cmd("HELLO", "2", "AUTH", "someone", TR.TOKEN), "WRONGPASS",
                         "HELLO AUTH as another user")
            h = c.cmd("HELLO", "2", "AUTH", "default", TR.TOKEN, "SETNAME", "app")
            check(isinstance(h, list) and h[4:6] == [b"proto", 2], "HELLO AUTH reply %r" % (h,))
            check_eq(c.cmd("CLIENT", "GETNAME"), b"app", "name set by HELLO AUTH SETNAME")
            check_eq(c.cmd("SETEX", "k", "10", "v"), "OK", "authenticated by HELLO")
            check_eq(c.cmd("HELLO", "2", "AUTH", "default", TR.TOKEN)[5], 2, "HELLO AUTH again")
        finally:
            c.close()
        n.stop_ok()
    finally:
        n.kill()


def redis_py_script(port, token):
    """The redis-py part, run by an interpreter that has redis-py (see test_redis_py_standalone):
    raises AssertionError on the first mismatch."""
    import redis

    def eq(got, want, what):
        if got != want:
            raise AssertionError("%s: got %r, want %r" % (what, got, want))

    r = redis.Redis(host="127.0.0.1", port=port, password=token, client_name="pyclient",
                    socket_timeout=10)
    eq(r.ping(), True, "redis-py PING")
    eq(r.client_getname(), "pyclient", "redis-py client_name= (CLIENT SETNAME)")
    eq(r.client_id() > 0, True, "redis-py CLIENT ID")
    eq(r.setex("a", 60, "1"), True, "redis-py setex")
    eq(55 <= r.ttl("a") <= 60, True, "redis-py ttl after setex")
    eq(r.psetex("b", 60000, "2"), True, "redis-py psetex")
    eq(r.mget(["a", "missing", "b"]), [b"1", None, b"2"], "redis-py mget")
    eq(r.mget("a", "b"), [b"1", b"2"], "redis-py mget *args")
    eq(r.dbsize(), 2, "redis-py dbsize")
    eq(r.unlink("a", "missing"), 1, "redis-py unlink")
    eq(r.dbsize(), 1, "redis-py dbsize after unlink")
    eq(r.set("c", "3", nx=True), True, "redis-py set nx")
    eq(r.set("c", "4", nx=True), None, "redis-py set nx on an existing key")
    try:
        r.set("c", "5", xx=True)
        raise AssertionError("redis-py set xx must be refused")
    except redis.ResponseError as e:
        eq("not supported" in str(e), True, "set xx refusal says why: %s" % e)
    eq(r.get("c"), b"3", "the refused XX changed nothing")
    eq(r.incr("n", 5), 5, "redis-py incr")
    # a non-transactional pipeline (MULTI/EXEC needs a new log-entry kind: later)
    p = r.pipeline(transaction=False)
    p.setex("p1", 30, "x").mget("p1", "c").dbsize()
    eq(p.execute(), [True, [b"x", b"3"], 4], "redis-py non-transactional pipeline")
    r.close()


def python_with_redis_py():
    """An interpreter that can import redis-py: this one, else Debian's (python3-redis)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import redis"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            return exe
    return None


def test_redis_py_standalone():
    exe = python_with_redis_py()
    # scripts/test.sh installs python3-redis: its absence is a failure, never a skip
    check(exe is not None, "redis-py is importable (apt-get install python3-redis)")
    if exe is None:
        return
    n = TR.resp_node(name="resp-redis-py", env={"CACHE_API_TOKEN": TR.TOKEN})
    try:
        p = subprocess.run([exe, os.path.abspath(__file__), "--redis-py", str(n.resp_port),
                            TR.TOKEN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        out = p.stdout.decode(errors="replace")
        log("redis-py (%s): exit %d %s" % (exe, p.returncode, out.strip()[-2000:]))
        check_eq(p.returncode, 0, "the redis-py script passes")
        n.stop_ok()
    finally:
        n.kill()


def test_commands_through_a_follower():
    cl = TR.RespCluster(3, extra_env={"CACHE_MAX_VALUE_SIZE": str(TR.MAX_VALUE)})
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        follower = [x for x in cl.live() if x is not ld][0]
        c = TR.client(follower)
        lc = TR.client(ld)
        try:
            run_cases(c, "follower", b"replica")
            # the follower's forwarded writes are on the leader too
            lc.cmd("HC.CACHE", "cmds")
            lc.cmd("HC.READ", "linearizable")
            check_eq(lc.cmd("MGET", "d1", "d2", "d3", "nope"), [b"x", b"x", b"x", None],
                     "the leader sees the follower's writes")
            H.wait_until(lambda: lc.cmd("DBSIZE") == 3, 5.0, what="leader DBSIZE")
            h = lc.cmd("HELLO")
            check_eq(dict(zip(h[0::2], h[1::2])).get(b"role"), b"master", "leader HELLO role")
        finally:
            c.close()
            lc.close()
        for x in cl.live():
            x.stop_ok(15.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--redis-py":
        redis_py_script(int(sys.argv[2]), sys.argv[3])
        print("redis-py script passed")
    else:
        H.run(globals())
