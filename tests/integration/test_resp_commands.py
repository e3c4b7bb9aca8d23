#!/usr/bin/env python3
"""Black-box tests of RESP commands beyond the basic ones: SETEX, PSETEX, MGET, UNLINK, DBSIZE,
CLIENT ID|GETNAME|SETNAME|SETINFO, HELLO, and the commands on protocol 3 log entries: SET
NX|XX / GET / KEEPTTL / EXAT / PXAT, GETDEL, EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT, PERSIST,
MSET, MULTI / EXEC / DISCARD (WATCH refused, UNWATCH a no-op).

One table of cases (run_cases, with run_proto3_cases) runs against a standalone node and through
a follower of a 3-node cluster (forwarded writes, reads at local and linearizable consistency;
entry versions over HTTP show that MSET and EXEC are one log entry and that EXPIRE / PERSIST
rewrite the entry). redis-py (Debian's python3-redis) drives the same commands, its default
(MULTI/EXEC) pipeline included, against a standalone node and through a follower of a cluster,
both with an API token, so it authenticates the way a real application does; in the cluster,
two redis-py clients write with failover-with-retry while the leadership moves twice. The
mixed-version refusals are in test_cluster_mixed_versions.py.
"""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import test_resp as TR  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log
RespError = TR.RespError


P3_CACHE = "cmds3"
UPGRADE_ERR = ("ERR not every node of the cluster runs a hacache version that knows this command "
               "yet (finish the rolling upgrade)")
NOT_IN_MULTI = "ERR '%s' is not supported inside MULTI"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."


def pipe_on(conn, *cmds):
    """Sends the commands in one write, returns their replies."""
    conn.send_raw(b"".join(TR.Resp.encode(*x) for x in cmds))
    return [conn.read() for _ in cmds]


def _version(http, key, cache=P3_CACHE):
    """The entry's version (x-hacache-version) read over HTTP, None when absent."""
    st, hd, _ = http.get("/v1/caches/%s/%s?consistency=linearizable" % (cache, key))
    return int(hd["x-hacache-version"]) if st == 200 else None


def run_proto3_cases(c, where, http=None):
    """SET NX|XX / GET / KEEPTTL / EXAT / PXAT, GETDEL, EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT,
    PERSIST, MSET, MULTI / EXEC / DISCARD / WATCH / UNWATCH (protocol 3 log entries) on one RESP
    connection, in cache P3_CACHE; `http` (optional): an HTTP client of the same node, for the
    entry versions."""
    def eq(got, want, what):
        check_eq(got, want, "%s: %s" % (where, what))

    def err(got, prefix, what):
        TR.check_err(got, prefix, "%s: %s" % (where, what))

    def within(got, lo, hi, what):
        check(isinstance(got, int) and lo <= got <= hi,
              "%s: %s: %r not in [%d, %d]" % (where, what, got, lo, hi))

    def pipe(*cmds):
        return pipe_on(c, *cmds)

    port = c.sock.getpeername()[1]
    eq(c.cmd("HC.CACHE", P3_CACHE), "OK", "select %s" % P3_CACHE)
    eq(c.cmd("HC.READ", "linearizable"), "OK", "linearizable reads")
    eq(c.cmd("FLUSHDB"), "OK", "FLUSHDB %s" % P3_CACHE)

    # ---- SET NX | XX, GET, KEEPTTL, EXAT, PXAT ----
    eq(c.cmd("SET", "x0", "v", "XX"), None, "SET XX of an absent key: nil")
    eq(c.cmd("EXISTS", "x0"), 0, "SET XX did not create the key")
    eq(c.cmd("SET", "x0", "v", "XX", "GET"), None, "SET XX GET of an absent key: nil")
    eq(c.cmd("EXISTS", "x0"), 0, "SET XX GET did not create the key")
    eq(c.cmd("SET", "x1", "v1"), "OK", "SET x1")
    eq(c.cmd("SET", "x1", "v2", "XX"), "OK", "SET XX of a present key")
    eq(c.cmd("GET", "x1"), b"v2", "SET XX wrote")
    eq(c.cmd("SET", "x1", b"v\x003\r\n", "XX", "GET"), b"v2", "SET XX GET: the old value")
    eq(c.cmd("GET", "x1"), b"v\x003\r\n", "SET XX GET wrote (binary value)")
    eq(c.cmd("SET", "x1", "v4", "GET"), b"v\x003\r\n", "SET GET: the old binary value")
    eq(c.cmd("SET", "x1", "v5", "NX", "GET"), b"v4",
       "SET NX GET of a present key: the old value, whatever the condition")
    eq(c.cmd("GET", "x1"), b"v4", "SET NX GET of a present key wrote nothing")
    eq(c.cmd("SET", "x2", "new", "NX", "GET"), None, "SET NX GET of an absent key: nil")
    eq(c.cmd("GET", "x2"), b"new", "SET NX GET of an absent key wrote")
    eq(c.cmd("SET", "x3", "fresh", "GET"), None, "SET GET of an absent key: nil")
    eq(c.cmd("GET", "x3"), b"fresh", "and wrote")
    eq(c.cmd("SET", "x1", "v6", "GET", "GET", "XX"), b"v4", "GET given twice")
    # KEEPTTL
    eq(c.cmd("SET", "kt", "a", "EX", "100"), "OK", "SET EX 100")
    eq(c.cmd("SET", "kt", "b", "KEEPTTL"), "OK", "SET KEEPTTL")
    eq(c.cmd("GET", "kt"), b"b", "SET KEEPTTL wrote")
    within(c.cmd("TTL", "kt"), 95, 100, "KEEPTTL kept the expiry")
    eq(c.cmd("SET", "kt", "c", "XX", "KEEPTTL", "GET"), b"b", "SET XX KEEPTTL GET")
    within(c.cmd("TTL", "kt"), 95, 100, "XX KEEPTTL GET kept the expiry")
    eq(c.cmd("SET", "kt", "d", "XX"), "OK", "SET XX without KEEPTTL")
    eq(c.cmd("TTL", "kt"), -1, "a SET without KEEPTTL drops the expiry")
    eq(c.cmd("SET", "kt2", "a", "KEEPTTL"), "OK", "SET KEEPTTL of an absent key")
    eq(c.cmd("TTL", "kt2"), -1, "KEEPTTL of an absent key: no expiry")
    # EXAT / PXAT: absolute unix times
    now = int(time.time())
    eq(c.cmd("SET", "at", "v", "EXAT", str(now + 1000)), "OK", "SET EXAT in the future")
    within(c.cmd("TTL", "at"), 994, 1001, "TTL after EXAT now+1000")
    eq(c.cmd("SET", "at", "w", "PXAT", str(int(time.time() * 1000) + 50000), "GET"), b"v",
       "SET PXAT GET")
    within(c.cmd("PTTL", "at"), 45000, 50000, "PTTL after PXAT now+50s")
    eq(c.cmd("SET", "at", "x", "XX", "EXAT", "1", "GET"), b"w",
       "SET XX EXAT <past> GET: the old value")
    eq(c.cmd("GET", "at"), None, "EXAT in the past: expired at once")
    eq(c.cmd("SET", "at2", "x", "PXAT", "1"), "OK", "SET PXAT <past>")
    eq(pipe(("SET", "at2", "y", "EXAT", str(now - 10)), ("GET", "at2"), ("EXISTS", "at2")),
       ["OK", None, 0], "a pipelined GET right after SET EXAT <past> does not see it")
    eq(c.cmd("SET", "at2", "z", "NX", "PXAT", "1"), "OK", "SET NX PXAT <past> of an absent key")
    eq(c.cmd("EXISTS", "at2"), 0, "...leaves no key")
    # syntax and argument errors: nothing written
    eq(c.cmd("SET", "x1", "w", "NX", "XX"), TR.RespError("ERR syntax error"), "NX and XX")
    eq(c.cmd("SET", "x1", "w", "XX", "NX"), TR.RespError("ERR syntax error"), "XX and NX")
    eq(c.cmd("SET", "x1", "w", "KEEPTTL", "EX", "10"), TR.RespError("ERR syntax error"),
       "KEEPTTL and EX")
    eq(c.cmd("SET", "x1", "w", "PX", "10", "KEEPTTL"), TR.RespError("ERR syntax error"),
       "PX and KEEPTTL")
    eq(c.cmd("SET", "x1", "w", "EXAT", "10", "PXAT", "10000", "XX"),
       TR.RespError("ERR syntax error"), "EXAT and PXAT")
    eq(c.cmd("SET", "x1", "w", "XX", "EXAT"), TR.RespError("ERR syntax error"),
       "EXAT without a time")
    eq(c.cmd("SET", "x1", "w", "XX", "BOGUS"), TR.RespError("ERR syntax error"),
       "unknown option with XX")
    err(c.cmd("SET", "x1", "w", "XX", "EXAT", "0"), "ERR invalid expire time in 'set' command",
        "EXAT 0")
    err(c.cmd("SET", "x1", "w", "GET", "PXAT", "-1"), "ERR invalid expire time in 'set'",
        "PXAT -1")
    err(c.cmd("SET", "x1", "w", "XX", "EXAT", "soon"), "ERR value is not an integer",
        "EXAT soon")
    err(c.cmd("SET", "x1", "w", "XX", "EX", "0"), "ERR invalid expire time", "XX EX 0")
    err(c.cmd("SET", "", "w", "XX"), "ERR empty keys", "SET XX of an empty key")
    err(c.cmd("SET", "x1", b"w" * (TR.MAX_VALUE + 1), "XX"), "ERR value too large",
        "SET XX of a value over CACHE_MAX_VALUE_SIZE")
    eq(c.cmd("GET", "x1"), b"v6", "refused SETs left the key")

    # ---- GETDEL ----
    eq(c.cmd("GETDEL", "x1"), b"v6", "GETDEL: the value")
    eq(c.cmd("EXISTS", "x1"), 0, "GETDEL deleted")
    eq(c.cmd("GETDEL", "x1"), None, "GETDEL of an absent key: nil")
    eq(c.cmd("INCRBY", "gd", "7"), 7, "a counter")
    eq(c.cmd("GETDEL", "gd"), b"7", "GETDEL of a counter")
    eq(c.cmd("INCR", "gd"), 1, "the counter starts over")
    err(c.cmd("GETDEL"), "ERR wrong number of arguments for 'getdel' command", "GETDEL arity")
    err(c.cmd("GETDEL", "a", "b"), "ERR wrong number of arguments for 'getdel'", "GETDEL 2 keys")
    err(c.cmd("GETDEL", ""), "ERR empty keys", "GETDEL of an empty key")

    # ---- EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT / PERSIST ----
    v0 = None
    eq(c.cmd("SET", "e", "v"), "OK", "SET e")
    if http is not None:
        v0 = _version(http, "e")
    eq(c.cmd("EXPIRE", "e", "100"), 1, "EXPIRE of a present key")
    within(c.cmd("TTL", "e"), 95, 100, "TTL after EXPIRE 100")
    eq(c.cmd("GET", "e"), b"v", "EXPIRE kept the value")
    if http is not None:
        v1 = _version(http, "e")
        check(v0 is not None and v1 is not None and v1 > v0,
              "%s: EXPIRE rewrote the entry: version %r -> %r" % (where, v0, v1))
        v0 = v1
    eq(c.cmd("PEXPIRE", "e", "50000"), 1, "PEXPIRE")
    within(c.cmd("PTTL", "e"), 45000, 50000, "PTTL after PEXPIRE 50000")
    eq(c.cmd("EXPIREAT", "e", str(int(time.time()) + 2000)), 1, "EXPIREAT in the future")
    within(c.cmd("TTL", "e"), 1994, 2001, "TTL after EXPIREAT now+2000")
    eq(c.cmd("PEXPIREAT", "e", str(int(time.time() * 1000) + 30000)), 1, "PEXPIREAT")
    within(c.cmd("PTTL", "e"), 25000, 30000, "PTTL after PEXPIREAT now+30s")
    eq(c.cmd("PERSIST", "e"), 1, "PERSIST of a key with an expiry")
    eq(c.cmd("TTL", "e"), -1, "PERSIST removed the expiry")
    if http is not None:
        v1 = _version(http, "e")
        check(v1 is not None and v0 is not None and v1 > v0,
              "%s: PERSIST rewrote the entry: version %r -> %r" % (where, v0, v1))
        v0 = v1
    eq(c.cmd("PERSIST", "e"), 0, "PERSIST of a key without expiry")
    if http is not None:
        eq(_version(http, "e"), v0, "a PERSIST that removed nothing did not rewrite the entry")
    eq(c.cmd("GET", "e"), b"v", "the value survived EXPIRE / PERSIST")
    for cmd in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
        eq(c.cmd(cmd, "absent", "100000000000000"), 0, "%s of an absent key" % cmd)
    eq(c.cmd("PERSIST", "absent"), 0, "PERSIST of an absent key")
    eq(c.cmd("EXISTS", "absent"), 0, "none of them created the key")
    # options refused, bad arguments
    for opt in ("NX", "XX", "GT", "LT"):
        err(c.cmd("EXPIRE", "e", "10", opt),
            "ERR expire options NX, XX, GT and LT are not supported by hacache",
            "EXPIRE %s refused" % opt)
    err(c.cmd("PEXPIREAT", "e", "10", "nx"), "ERR pexpireat options NX, XX, GT and LT",
        "PEXPIREAT nx refused")
    err(c.cmd("EXPIRE", "e", "ten"), "ERR value is not an integer or out of range", "EXPIRE ten")
    err(c.cmd("EXPIRE", "e", "9223372036854775807"), "ERR invalid expire time in 'expire'",
        "EXPIRE overflowing to ms")
    err(c.cmd("EXPIRE", "e"), "ERR wrong number of arguments for 'expire' command",
        "EXPIRE arity")
    err(c.cmd("PERSIST"), "ERR wrong number of arguments for 'persist'", "PERSIST arity")
    err(c.cmd("PERSIST", "e", "f"), "ERR wrong number of arguments for 'persist'",
        "PERSIST two keys")
    err(c.cmd("EXPIRE", "", "10"), "ERR empty keys", "EXPIRE of an empty key")
    eq(c.cmd("TTL", "e"), -1, "the refused EXPIREs changed nothing")
    # a TTL that is not positive, or an instant already past, deletes the key: 1 if it existed
    for args in (("EXPIRE", "0"), ("EXPIRE", "-5"), ("PEXPIRE", "0"), ("EXPIREAT", "1"),
                 ("PEXPIREAT", str(int(time.time() * 1000) - 1000)), ("EXPIREAT", "-3")):
        eq(c.cmd("SET", "d", "v", "EX", "100"), "OK", "SET d")
        eq(c.cmd(args[0], "d", args[1]), 1, "%s d %s of a present key" % args)
        eq(c.cmd("EXISTS", "d"), 0, "%s d %s deleted it" % args)
        eq(c.cmd(args[0], "d", args[1]), 0, "%s d %s of an absent key" % args)
    # EXPIRE then the key really expires; an expired key is absent for EXPIRE / PERSIST
    eq(c.cmd("SET", "short", "v"), "OK", "SET short")
    eq(c.cmd("PEXPIRE", "short", "300"), 1, "PEXPIRE 300")
    H.wait_until(lambda: c.cmd("GET", "short") is None, 10.0,
                 what="%s: the PEXPIRE 300 key expires" % where)
    eq(c.cmd("EXPIRE", "short", "100"), 0, "EXPIRE of an expired key")
    eq(c.cmd("PERSIST", "short"), 0, "PERSIST of an expired key")

    # ---- MSET ----
    eq(c.cmd("MSET", "m1", "a", "m2", b"\x00b\r\n", "m3", "c"), "OK", "MSET of three keys")
    eq(c.cmd("MGET", "m1", "m2", "m3", "m4"), [b"a", b"\x00b\r\n", b"c", None], "MSET wrote")
    eq(c.cmd("MSET", "m1", "x", "m1", "y"), "OK", "MSET of one key twice")
    eq(c.cmd("GET", "m1"), b"y", "the last value of a key given twice wins")
    eq(c.cmd("MSET", "m9", "single"), "OK", "MSET of one pair")
    eq(c.cmd("GET", "m9"), b"single", "MSET of one pair wrote")
    eq(c.cmd("SETEX", "m3", "100", "c2"), "OK", "a key with an expiry")
    eq(c.cmd("MSET", "m3", "c3", "m4", "d"), "OK", "MSET over it")
    eq(c.cmd("TTL", "m3"), -1, "MSET drops the expiry, like SET")
    for args in (("MSET", "m1", "z", "m2"), ("MSET", "m1"), ("MSET",)):
        eq(c.cmd(*args), TR.RespError("ERR wrong number of arguments for 'mset' command"),
           "%d arguments" % len(args))
    err(c.cmd("MSET", "m1", "z", "", "v"), "ERR empty keys", "MSET with an empty key")
    err(c.cmd("MSET", "m1", "z", "m2", b"w" * (TR.MAX_VALUE + 1)), "ERR value too large",
        "MSET with a value over CACHE_MAX_VALUE_SIZE")
    eq(c.cmd("MGET", "m1", "m2", "m3", "m4"), [b"y", b"\x00b\r\n", b"c3", b"d"],
       "a refused MSET wrote none of its keys")
    if http is not None:
        eq(c.cmd("MSET", "va", "1", "vb", "2", "vc", "3"), "OK", "MSET va vb vc")
        vs = [_version(http, k) for k in ("va", "vb", "vc")]
        check(vs[0] is not None and vs.count(vs[0]) == 3,
              "%s: MSET is one log entry: one version for its keys %r" % (where, vs))

    # ---- MULTI / EXEC ----
    eq(c.cmd("MULTI"), "OK", "MULTI")
    queued = [
        (("SET", "t1", "1"), "OK"),
        (("INCR", "t1"), 2),
        (("GET", "t1"), b"2"),
        (("MSET", "t2", "b", "t3", "c"), "OK"),
        (("MGET", "t1", "t2", "t3", "nope"), [b"2", b"b", b"c", None]),
        (("EXISTS", "t1", "t2", "nope", "t1"), 3),
        (("EXPIRE", "t1", "100"), 1),
        (("INCRBY", "t1", "10"), 12),
        (("TTL", "t1"), 100),  # INCR keeps the expiry
        (("PTTL", "nope"), -2),
        (("TTL", "t2"), -1),
        (("GETDEL", "t2"), b"b"),
        (("DEL", "t3", "nope"), 1),
        (("SET", "t4", "x", "GET"), None),
        (("SET", "t4", "y", "XX", "GET"), b"x"),
        (("SET", "t5", "z", "XX"), None),
        (("SET", "t4", "w", "NX"), None),
        (("SETEX", "t6", "100", "v"), "OK"),
        (("PSETEX", "t7", "100000", "v"), "OK"),
        (("UNLINK", "t7"), 1),
        (("DECR", "t1"), 11),
        (("DECRBY", "t1", "2"), 9),
        (("PERSIST", "t1"), 1),
        (("PERSIST", "t1"), 0),
        (("PEXPIRE", "t1", "0"), 1),
        (("EXPIREAT", "t4", "4102444800"), 1),
        (("PEXPIREAT", "t4", "4102444800000"), 1),
        (("SET", "t8", "v", "PXAT", "1"), "OK"),
        (("GET", "t8"), None),
        (("SET", "t9", "v", "KEEPTTL"), "OK"),
        (("GET", "nope"), None),
    ]
    for args, _ in queued:
        eq(c.cmd(*args), "QUEUED", "%s queued" % (args,))
    got = c.cmd("EXEC")
    check(isinstance(got, list) and len(got) == len(queued),
          "%s: EXEC answers one reply per command: %r" % (where, got))
    for (args, want), g in zip(queued, got if isinstance(got, list) else []):
        if args[0] == "TTL" and want == 100:
            within(g, 97, 100, "EXEC reply of %s" % (args,))
        else:
            eq(g, want, "EXEC reply of %s" % (args,))
    eq(c.cmd("MGET", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"),
       [None, None, None, b"y", None, b"v", None, None, b"v"], "after EXEC")
    left = 4102444800 - int(time.time())
    within(c.cmd("TTL", "t4"), left - 5, left + 1, "PEXPIREAT in EXEC")
    within(c.cmd("TTL", "t6"), 95, 100, "SETEX in EXEC")
    eq(c.cmd("SET", "after", "1"), "OK", "out of MULTI after EXEC: answered, not queued")
    # one log entry: every key an EXEC wrote has the entry's version
    if http is not None:
        eq(pipe(("MULTI",), ("SET", "va", "x"), ("INCR", "vn"), ("MSET", "vb", "y", "vc", "z"),
                ("EXEC",)), ["OK", "QUEUED", "QUEUED", "QUEUED", ["OK", 1, "OK"]],
           "MULTI writing four keys")
        vs = [_version(http, k) for k in ("va", "vn", "vb", "vc")]
        check(vs[0] is not None and vs.count(vs[0]) == 4,
              "%s: EXEC is one log entry: one version for its keys %r" % (where, vs))
    # empty, DISCARD, and the errors outside MULTI
    eq(pipe(("MULTI",), ("EXEC",)), ["OK", []], "EXEC with nothing queued: empty array")
    eq(c.cmd("EXEC"), TR.RespError("ERR EXEC without MULTI"), "EXEC without MULTI")
    eq(c.cmd("DISCARD"), TR.RespError("ERR DISCARD without MULTI"), "DISCARD without MULTI")
    eq(pipe(("MULTI",), ("SET", "dq", "1"), ("INCR", "dn"), ("DISCARD",), ("GET", "dq"),
            ("EXISTS", "dn")), ["OK", "QUEUED", "QUEUED", "OK", None, 0],
       "DISCARD drops the queue, nothing applied")
    r = pipe(("MULTI",), ("MULTI",), ("SET", "nest", "1"), ("EXEC",))
    eq(r[:2], ["OK", TR.RespError("ERR MULTI calls can not be nested")], "nested MULTI")
    eq(r[2:], ["QUEUED", ["OK"]], "a nested MULTI does not abort the transaction (as Redis)")
    # WATCH / UNWATCH
    err(c.cmd("WATCH", "x"), "ERR WATCH is not supported by hacache", "WATCH refused")
    eq(c.cmd("UNWATCH"), "OK", "UNWATCH: nothing is ever watched")
    r = pipe(("MULTI",), ("WATCH", "x"), ("SET", "w1", "1"), ("EXEC",))
    eq(r, ["OK", TR.RespError("ERR WATCH inside MULTI is not allowed"), "QUEUED", ["OK"]],
       "WATCH inside MULTI: an error that does not abort the transaction (as Redis)")
    # errors while queuing: EXECABORT, nothing applied, out of MULTI after it
    bad = [
        (("PING",), NOT_IN_MULTI % "PING"),
        (("FLUSHDB",), NOT_IN_MULTI % "FLUSHDB"),
        (("SELECT", "0"), NOT_IN_MULTI % "SELECT"),
        (("HC.CACHE", "other"), NOT_IN_MULTI % "HC.CACHE"),
        (("UNWATCH",), NOT_IN_MULTI % "UNWATCH"),
        (("DBSIZE",), NOT_IN_MULTI % "DBSIZE"),
        (("NOSUCH", "x"), "ERR unknown command 'NOSUCH'"),
        (("GET",), "ERR wrong number of arguments for 'get' command"),
        (("SET", "k"), "ERR wrong number of arguments for 'set' command"),
        (("MSET", "ab", "1", "b"), "ERR wrong number of arguments for 'mset' command"),
        (("SET", "ab", "1", "NX", "XX"), "ERR syntax error"),
        (("SET", "ab", "1", "EX", "0"), "ERR invalid expire time in 'set' command"),
        (("INCRBY", "ab", "x"), "ERR value is not an integer or out of range"),
        (("EXPIRE", "ab", "10", "NX"), "ERR expire options NX, XX, GT and LT"),
        (("SET", "", "1"), "ERR empty keys"),
        (("SET", "ab", b"v" * (TR.MAX_VALUE + 1)), "ERR value too large"),
    ]
    for args, prefix in bad:
        r = pipe(("MULTI",), ("SET", "ab", "1"), args, ("INCR", "abn"), ("EXEC",),
                 ("EXISTS", "ab", "abn"))
        eq(r[:2], ["OK", "QUEUED"], "MULTI before %s" % (args,))
        err(r[2], prefix, "%s inside MULTI" % (args,))
        eq(r[3:], ["QUEUED", TR.RespError(EXECABORT), 0],
           "%s inside MULTI: EXECABORT, nothing applied, out of MULTI" % (args,))
    # DISCARD after a queuing error: the next MULTI starts clean
    eq(pipe(("MULTI",), ("PING",))[0], "OK", "MULTI then PING")
    eq(pipe(("DISCARD",), ("MULTI",), ("SET", "clean", "1"), ("EXEC",)),
       ["OK", "OK", "QUEUED", ["OK"]], "DISCARD forgets the failed transaction")
    # a runtime error is that command's reply; the others apply
    eq(c.cmd("SET", "str", "abc"), "OK", "SET str")
    eq(pipe(("MULTI",), ("SET", "r1", "1"), ("INCR", "str"), ("SET", "r2", "2"),
            ("INCRBY", "r1", "5"), ("EXEC",)),
       ["OK", "QUEUED", "QUEUED", "QUEUED", "QUEUED",
        ["OK", TR.RespError("ERR value is not an integer or out of range"), "OK", 6]],
       "EXEC with INCR of a non-integer")
    eq(c.cmd("MGET", "r1", "r2", "str"), [b"6", b"2", b"abc"], "the others applied")
    # a transaction of 300 commands, pipelined
    big = [("SET", "b%d" % i, "v%d" % i) for i in range(150)] + \
        [("GET", "b%d" % i) for i in range(150)]
    r = pipe(*([("MULTI",)] + big + [("EXEC",)]))
    eq(r[-1], ["OK"] * 150 + [b"v%d" % i for i in range(150)], "a 300-command EXEC")
    # QUIT inside MULTI: the connection closes, the queue is dropped
    q = TR.Resp(port)
    try:
        q.cmd("HC.CACHE", P3_CACHE)
        eq([q.cmd("MULTI"), q.cmd("SET", "quit", "1"), q.cmd("QUIT")], ["OK", "QUEUED", "OK"],
           "MULTI SET QUIT")
        check(q.closed_by_server(), "%s: QUIT inside MULTI closes the connection" % where)
    finally:
        q.close()
    eq(c.cmd("EXISTS", "quit"), 0, "the queue of a connection that quit was not applied")

    # ---- atomicity: a transaction reading two keys never sees half an MSET ----
    # (MGET reads key by key; a MULTI of GETs is one log entry, so it reads one state)
    eq(c.cmd("MSET", "pa", "0", "pb", "0"), "OK", "MSET pa pb")
    rounds, writer_out = 150, []

    def writer():
        w = TR.Resp(port)
        try:
            w.cmd("HC.CACHE", P3_CACHE)
            for i in range(1, rounds + 1):
                r = w.cmd("MSET", "pa", str(i), "pb", str(i))
                if r != "OK":
                    writer_out.append(r)
                    return
        finally:
            w.close()
    t = threading.Thread(target=writer, daemon=True)
    rd = TR.Resp(port)
    seen = []
    try:
        rd.cmd("HC.CACHE", P3_CACHE)
        t.start()
        while t.is_alive() and len(seen) < 5000:
            r = pipe_on(rd, ("MULTI",), ("GET", "pa"), ("GET", "pb"), ("EXEC",))
            seen.append(tuple(r[3]) if isinstance(r[3], list) else ("bad", repr(r)))
        t.join(30.0)
    finally:
        rd.close()
    eq(writer_out, [], "the MSET writer's errors")
    torn = [x for x in seen if len(x) != 2 or x[0] != x[1]]
    eq(torn[:5], [], "no transaction saw one key of an MSET without the other")
    log("%s: atomicity: %d transactions read %d distinct MSETs" % (where, len(seen),
                                                                   len(set(seen))))
    eq(c.cmd("MGET", "pa", "pb"), [str(rounds).encode()] * 2, "the last MSET")
    eq(c.cmd("PING"), "PONG", "the connection survives every case above")


def run_cases(c, where, expect_role, http=None):
    """The command cases on one RESP connection; `where` names the node in messages; `http`, an
    HTTP client of the same node, lets the protocol 3 cases check entry versions."""
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

    # the protocol 3 commands (their own cache, so the keys above stay as they are)
    run_proto3_cases(c, where, http)
    eq(c.cmd("HC.CACHE", "cmds"), "OK", "back to the cmds cache")
    eq(c.cmd("GET", "d1"), b"x", "the protocol 3 cases left the other cache alone")

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
        http = n.client()
        try:
            run_cases(c, "standalone", b"master", http)
            # HELLO AUTH on a node without a token: Redis's answer
            TR.check_err(c.cmd("HELLO", "2", "AUTH", "default", "x"), "ERR AUTH",
                         "HELLO AUTH without a token configured")
        finally:
            c.close()
            http.close()
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
    raises AssertionError on the first mismatch. Works on the default cache, which it empties
    first, so it can run again on the same node or cluster."""
    import redis

    def eq(got, want, what):
        if got != want:
            raise AssertionError("%s: got %r, want %r" % (what, got, want))

    def within(got, lo, hi, what):
        if not (isinstance(got, int) and lo <= got <= hi):
            raise AssertionError("%s: %r not in [%d, %d]" % (what, got, lo, hi))

    def refused(fn, text, what):
        try:
            got = fn()
        except redis.ResponseError as e:
            if text not in str(e):
                raise AssertionError("%s: error %r does not say %r" % (what, str(e), text))
            return
        raise AssertionError("%s: not refused (got %r)" % (what, got))

    r = redis.Redis(host="127.0.0.1", port=port, password=token or None,
                    client_name="pyclient", socket_timeout=10)
    eq(r.ping(), True, "redis-py PING")
    eq(r.flushdb(), True, "redis-py flushdb")
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
    eq(r.incr("n", 5), 5, "redis-py incr")
    p = r.pipeline(transaction=False)
    p.setex("p1", 30, "x").mget("p1", "c").dbsize()
    eq(p.execute(), [True, [b"x", b"3"], 4], "redis-py non-transactional pipeline")

    # SET XX / GET / KEEPTTL / EXAT / PXAT
    eq(r.set("c", "5", xx=True), True, "redis-py set xx of an existing key")
    eq(r.get("c"), b"5", "set xx wrote")
    eq(r.set("nokey", "v", xx=True), None, "redis-py set xx of an absent key")
    eq(r.exists("nokey"), 0, "set xx of an absent key wrote nothing")
    eq(r.expire("c", 100), True, "redis-py expire")
    eq(r.set("c", "6", xx=True, get=True, keepttl=True), b"5", "set(xx, get, keepttl)")
    within(r.ttl("c"), 95, 100, "keepttl kept the expiry")
    eq(r.get("c"), b"6", "set(xx, get, keepttl) wrote")
    eq(r.set("c", "7", get=True), b"6", "set(get)")
    eq(r.ttl("c"), -1, "a set without keepttl drops the expiry")
    eq(r.set("c", "8", nx=True, get=True), b"7", "set(nx, get) of an existing key: old value")
    eq(r.set("nokey", "v", xx=True, get=True), None, "set(xx, get) of an absent key")
    at = int(time.time()) + 100
    eq(r.set("x", "v", exat=at), True, "set(exat)")
    within(r.ttl("x"), 95, 100, "ttl after set(exat)")
    eq(r.set("x", "w", pxat=int(time.time() * 1000) + 20000), True, "set(pxat)")
    within(r.pttl("x"), 15000, 20000, "pttl after set(pxat)")
    eq(r.set("x", "y", xx=True, exat=1), True, "set(xx, exat=<past>)")
    eq(r.get("x"), None, "set(exat=<past>) expired the key at once")
    refused(lambda: r.set("c", "9", nx=True, xx=True), "syntax error", "set(nx, xx)")
    refused(lambda: r.execute_command("SET", "c", "9", "KEEPTTL", "EX", "5"), "syntax error",
            "SET KEEPTTL EX")

    # MSET, GETDEL, EXPIRE family, PERSIST
    eq(r.mset({"m1": "1", "m2": "2", "m3": b"\x00\r\n"}), True, "redis-py mset")
    eq(r.mget("m1", "m2", "m3"), [b"1", b"2", b"\x00\r\n"], "mset wrote")
    refused(lambda: r.execute_command("MSET", "m1", "x", "m2"),
            "wrong number of arguments for 'mset' command", "MSET with an odd count")
    eq(r.get("m1"), b"1", "a refused MSET wrote nothing")
    eq(r.getdel("m1"), b"1", "redis-py getdel")
    eq(r.getdel("m1"), None, "redis-py getdel of an absent key")
    eq(r.exists("m1"), 0, "getdel deleted")
    eq(r.expire("m2", 100), True, "redis-py expire")
    within(r.ttl("m2"), 95, 100, "ttl after expire")
    eq(r.expire("missing", 100), False, "expire of an absent key")
    eq(r.pexpire("m2", 50000), True, "redis-py pexpire")
    within(r.pttl("m2"), 45000, 50000, "pttl after pexpire")
    eq(r.expireat("m2", int(time.time()) + 1000), True, "redis-py expireat")
    within(r.ttl("m2"), 994, 1000, "ttl after expireat")
    eq(r.pexpireat("m2", int(time.time() * 1000) + 30000), True, "redis-py pexpireat")
    within(r.pttl("m2"), 25000, 30000, "pttl after pexpireat")
    eq(r.persist("m2"), True, "redis-py persist")
    eq(r.ttl("m2"), -1, "persist removed the expiry")
    eq(r.persist("m2"), False, "persist of a key without expiry")
    eq(r.persist("missing"), False, "persist of an absent key")
    refused(lambda: r.expire("m2", 10, nx=True), "not supported by hacache", "expire(nx=True)")
    refused(lambda: r.expire("m2", 10, gt=True), "not supported by hacache", "expire(gt=True)")
    eq(r.expire("m2", 0), True, "expire 0 of an existing key")
    eq(r.exists("m2"), 0, "expire 0 deleted the key")

    # the default pipeline: MULTI / EXEC, one atomic write
    p = r.pipeline()
    (p.set("t1", "1").get("t1").incr("t1").mset({"t2": "a", "t3": "b"})
     .mget("t1", "t2", "t3", "nope").expire("t1", 100).ttl("t1").getdel("t2")
     .delete("t3", "nope").get("t2").exists("t1", "t2", "t3").set("t4", "x", get=True)
     .set("t4", "y", xx=True, get=True).persist("t1").incrby("t1", 10))
    res = p.execute()
    eq(len(res), 15, "one result per queued command")
    within(res[6], 97, 100, "ttl inside the transaction")
    res[6] = 100
    eq(res, [True, b"1", 2, True, [b"2", b"a", b"b", None], True, 100, b"a", 1, None, 1, None,
             b"x", True, 12], "redis-py transactional pipeline")
    eq(r.mget("t1", "t2", "t3", "t4"), [b"12", None, None, b"y"], "after the transaction")
    eq(r.ttl("t1"), -1, "persisted inside the transaction")
    # a runtime error inside the transaction is that command's result; the others apply
    eq(r.set("str", "abc"), True, "a non-integer")
    p = r.pipeline()
    p.set("e1", "1").incr("str").set("e2", "2").incrby("e1", 4)
    res = p.execute(raise_on_error=False)
    eq(len(res), 4, "4 results")
    eq(isinstance(res[1], redis.ResponseError) and "not an integer" in str(res[1]), True,
       "incr of a non-integer is that command's error: %r" % (res[1],))
    eq([res[0], res[2], res[3]], [True, True, 5], "the other commands' results")
    eq(r.mget("e1", "e2", "str"), [b"5", b"2", b"abc"], "the other commands applied")
    p = r.pipeline()
    p.set("e3", "3").incr("str")
    refused(p.execute, "not an integer", "raise_on_error=True raises the runtime error")
    eq(r.get("e3"), b"3", "and the rest of that transaction applied")
    # a command hacache does not queue: the transaction is refused, nothing applied
    p = r.pipeline()
    p.set("e4", "4").ping()
    refused(p.execute, "not supported inside MULTI", "PING inside a transaction")
    eq(r.exists("e4"), 0, "a refused transaction applied nothing")
    refused(lambda: r.pipeline().watch("e4"), "WATCH is not supported", "pipeline.watch")
    # a bigger transaction, and the non-transactional pipeline still works
    p = r.pipeline()
    for i in range(100):
        p.set("big%d" % i, i)
    p.mget(["big%d" % i for i in range(100)])
    res = p.execute()
    eq(res[:100], [True] * 100, "100 sets in one transaction")
    eq(res[100], [str(i).encode() for i in range(100)], "their values read in it")
    p = r.pipeline(transaction=False)
    p.mset({"nt1": "a", "nt2": "b"}).getdel("nt1").expire("nt2", 50).ttl("nt2").get("nt1")
    res = p.execute()
    within(res[3], 45, 50, "ttl in a non-transactional pipeline")
    res[3] = 50
    eq(res, [True, b"a", True, 50, None], "non-transactional pipeline of the new commands")
    r.close()


def redis_py_failover_script(port, token, seconds, stop_file):
    """Writes in rounds for at most `seconds` (or until stop_file exists) while the test moves
    the leadership: a client's failover-with-retry. redis-py retries connection errors itself
    (Retry); a reply -UNKNOWN / -UNAVAILABLE / -TRYAGAIN / -TIMEOUT makes the script send the
    command (or the whole transaction) again. Every round's writes are idempotent, so a write
    applied twice leaves the same state; each round reads its keys back and checks them.
    Prints one JSON line of counts; raises AssertionError on a wrong value."""
    import json
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    retryable = ("UNKNOWN", "UNAVAILABLE", "TRYAGAIN", "TIMEOUT")
    stats = {"rounds": 0, "retried": {}, "replies_checked": 0, "replies_after_retry": 0}

    def call(fn, what):
        """fn() with retries; (result, retried)."""
        for attempt in range(100):
            try:
                return fn(), attempt > 0
            except redis.ResponseError as e:
                kind = str(e).split(" ", 1)[0]
                if kind not in retryable:
                    raise AssertionError("%s: %s" % (what, e))
            except (redis.ConnectionError, redis.TimeoutError) as e:
                kind = type(e).__name__
            stats["retried"][kind] = stats["retried"].get(kind, 0) + 1
            time.sleep(0.05)
        raise AssertionError("%s: gave up after 100 attempts" % what)

    def expect(got, retried, want, what, after_retry=None):
        """A reply: `want` on a first attempt; after a retry the write may have been applied
        by the attempt that failed, so `after_retry` (a set of answers) is accepted too."""
        if retried:
            stats["replies_after_retry"] += 1
            ok = got == want or (after_retry is not None and got in after_retry)
        else:
            stats["replies_checked"] += 1
            ok = got == want
        if not ok:
            raise AssertionError("%s: got %r, want %r (retried: %s)" % (what, got, want, retried))

    r = redis.Redis(host="127.0.0.1", port=port, password=token or None, socket_timeout=10,
                    retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 20),
                    retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    tag = "fo%d" % port
    t_end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < t_end and not os.path.exists(stop_file) and i < 100000:
        i += 1
        k = lambda s: "%s:%d:%s" % (tag, i, s)  # noqa: E731
        v = str(i).encode()
        got, rt = call(lambda: r.set(k("a"), v), "set a")
        expect(got, rt, True, "set a")
        got, rt = call(lambda: r.mset({k("b"): v, k("c"): v}), "mset b c")
        expect(got, rt, True, "mset b c")

        def txn():
            p = r.pipeline()
            p.set(k("d"), v).get(k("a")).mset({k("e"): v}).expire(k("d"), 300).mget(k("b"),
                                                                                   k("e"))
            return p.execute()
        got, rt = call(txn, "transaction")
        expect(got, rt, [True, v, True, True, [v, v]], "transaction")
        got, rt = call(lambda: r.getdel(k("a")), "getdel a")
        expect(got, rt, v, "getdel a", after_retry={None})
        got, rt = call(lambda: r.set(k("c"), "x", xx=True, get=True), "set c xx get")
        expect(got, rt, v, "set c xx get", after_retry={b"x"})
        got, rt = call(lambda: r.expire(k("b"), 300), "expire b")
        expect(got, rt, True, "expire b")
        got, rt = call(lambda: r.persist(k("b")), "persist b")
        expect(got, rt, True, "persist b", after_retry={False})

        def check():
            p = r.pipeline()
            p.mget(k("a"), k("b"), k("c"), k("d"), k("e")).ttl(k("b")).ttl(k("d"))
            return p.execute()
        got, _ = call(check, "read back")
        if got[0] != [None, v, b"x", v, v] or got[1] != -1 or not 290 <= got[2] <= 300:
            raise AssertionError("round %d: state %r" % (i, got))
        stats["rounds"] = i
    r.close()
    print(json.dumps(stats))


def python_with_redis_py():
    """An interpreter that can import redis-py: this one, else Debian's (python3-redis)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import redis"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            return exe
    return None


def run_redis_py_standalone(script, name, what):
    """Runs `script --redis-py PORT TOKEN` (a test file whose redis-py part needs an interpreter
    with redis-py) against a fresh standalone node with an API token; checks it passes."""
    exe = python_with_redis_py()
    # scripts/test.sh installs python3-redis: its absence is a failure, never a skip
    check(exe is not None, "redis-py is importable (apt-get install python3-redis)")
    if exe is None:
        return
    n = TR.resp_node(name=name, env={"CACHE_API_TOKEN": TR.TOKEN})
    try:
        p = subprocess.run([exe, os.path.abspath(script), "--redis-py", str(n.resp_port),
                            TR.TOKEN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        out = p.stdout.decode(errors="replace")
        log("redis-py (%s): exit %d %s" % (exe, p.returncode, out.strip()[-2000:]))
        check_eq(p.returncode, 0, what)
        n.stop_ok()
    finally:
        n.kill()


def test_redis_py_standalone():
    run_redis_py_standalone(__file__, "resp-redis-py", "the redis-py script passes")


class TokenRespCluster(TR.RespCluster):
    """RespCluster with an API token (CACHE_API_TOKEN) on every node; the helpers that read
    /v1/status (wait_leader, leader) send it."""

    def __init__(self, n, token, **kw):
        self.token = token
        env = dict(kw.pop("extra_env", None) or {})
        env["CACHE_API_TOKEN"] = token
        TR.RespCluster.__init__(self, n, extra_env=env, **kw)

    def statuses(self, nodes=None):
        out = {}
        for node in nodes or self.live():
            c = H.Client(node.port, token=self.token, timeout=2.0)
            try:
                st, obj, _, _ = c.json("GET", "/v1/status")
                out[node] = obj if st == 200 else None
            except Exception:
                out[node] = None
            finally:
                c.close()
        return out

    def digests(self, nodes=None):
        out = {}
        for nd in nodes or self.live():
            c = H.Client(nd.port, token=self.token, timeout=5)
            try:
                st, obj, _, _ = c.json("GET", "/v1/caches?digest=1")
            finally:
                c.close()
            out[nd.name] = sorted((x["name"], x.get("digest"), x.get("entries"))
                                  for x in obj["caches"]) if st == 200 else None
        return out


def transfer_leadership(cl, token=None):
    """POST /v1/admin/leader/transfer on the leader (to the most up-to-date follower); returns
    the new leader once every node agrees on it."""
    ld = cl.wait_leader(10.0)
    term = cl.statuses()[ld]["term"]
    c = H.Client(ld.port, token=token, timeout=10)
    try:
        st, _, body = c.post("/v1/admin/leader/transfer")
    finally:
        c.close()
    check_eq(st, 200, "leader transfer on %s (%r)" % (ld.name, body[:200]))
    nl = cl.wait_leader(10.0, exclude_term=term)
    log("leadership moved from %s to %s" % (ld.name, nl.name))
    return nl


def _run_redis_py(exe, *args, timeout=120):
    p = subprocess.run([exe, os.path.abspath(__file__)] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def test_redis_py_through_a_follower_with_leader_moves():
    """The redis-py script through a follower of a 3-node cluster with an API token; then
    two clients (one on a follower, one on the leader) write in rounds with failover-with-retry
    while the leadership moves twice; then the script again, through a node that led before
    and follows now; every node ends with the same digest."""
    exe = python_with_redis_py()
    check(exe is not None, "redis-py is importable (apt-get install python3-redis)")
    if exe is None:
        return
    cl = TokenRespCluster(3, TR.TOKEN, extra_env={"CACHE_MAX_VALUE_SIZE": str(TR.MAX_VALUE)})
    stop_file = os.path.join(cl.dir, "stop-writers")
    procs = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        f = [x for x in cl.live() if x is not ld][0]
        t0 = time.monotonic()
        rc, out = _run_redis_py(exe, "--redis-py", f.resp_port, TR.TOKEN)
        log("redis-py through follower %s (%.1fs): exit %d %s" % (
            f.name, time.monotonic() - t0, rc, out.strip()[-2000:]))
        check_eq(rc, 0, "the redis-py script passes through a follower")

        # failover-with-retry while the leadership moves
        for nd in (f, ld):
            procs.append((nd, subprocess.Popen(
                [exe, os.path.abspath(__file__), "--redis-py-failover", str(nd.resp_port),
                 TR.TOKEN, "30", stop_file], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        time.sleep(1.0)
        nl = transfer_leadership(cl, TR.TOKEN)
        time.sleep(1.0)
        transfer_leadership(cl, TR.TOKEN)
        time.sleep(1.0)
        with open(stop_file, "w"):
            pass
        retried = 0
        for nd, p in procs:
            try:
                out = p.communicate(timeout=40)[0].decode(errors="replace")
            except subprocess.TimeoutExpired:
                p.kill()
                out = p.communicate()[0].decode(errors="replace")
            log("failover writer on %s: exit %s %s" % (nd.name, p.returncode,
                                                       out.strip()[-1500:]))
            check_eq(p.returncode, 0, "the failover writer on %s passes" % nd.name)
            try:
                stats = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                stats = {}
            check(stats.get("rounds", 0) >= 5, "writer on %s did rounds: %r" % (nd.name, stats))
            retried += sum(stats.get("retried", {}).values())
        procs = []
        H.note(retried > 0, "no write needed a retry while the leadership moved (the nodes "
                            "hid both leader changes from the clients)")

        # and the whole script again, through a node that led during the test and follows now
        cur = cl.wait_leader(10.0)
        again = nl if nl is not cur else ld
        check(again is not cur, "a node that led before follows now")
        rc, out = _run_redis_py(exe, "--redis-py", again.resp_port, TR.TOKEN)
        log("redis-py through %s (led before, follows now): exit %d %s" % (
            again.name, rc, out.strip()[-2000:]))
        check_eq(rc, 0, "the redis-py script passes after the leadership moved")
        H.wait_until(lambda: len({json.dumps(v) for v in cl.digests().values()}) == 1, 10.0,
                     what="equal digests on every node")
        for x in cl.live():
            x.stop_ok(15.0)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        cl.cleanup()


def test_commands_through_a_follower():
    cl = TR.RespCluster(3, extra_env={"CACHE_MAX_VALUE_SIZE": str(TR.MAX_VALUE)})
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        follower = [x for x in cl.live() if x is not ld][0]
        c = TR.client(follower)
        lc = TR.client(ld)
        http = follower.client()
        try:
            run_cases(c, "follower", b"replica", http)
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
            http.close()
        for x in cl.live():
            x.stop_ok(15.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--redis-py":
        redis_py_script(int(sys.argv[2]), sys.argv[3])
        print("redis-py script passed")
    elif len(sys.argv) == 6 and sys.argv[1] == "--redis-py-failover":
        redis_py_failover_script(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5])
    else:
        H.run(globals())
