#!/usr/bin/env python3
"""Black-box tests of SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] on the RESP
listener: a full iteration returns exactly the selected cache's keys (whatever COUNT, including
binary keys), MATCH filters with Redis globs, TYPE string is no filter and any other type finds
nothing, expired keys are not returned, and malformed arguments get Redis's errors. The same
cases run on a standalone node and through a follower of a 3-node cluster (the follower answers
from its replica); a cluster node that lost its quorum answers -UNAVAILABLE like a local GET.
redis-py's scan / scan_iter (Debian's python3-redis) iterate the same keys.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import test_resp as TR  # noqa: E402
import test_resp_commands as TC  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log

USERS = ["user:%d" % i for i in range(300)]
ITEMS = ["item:%d" % i for i in range(200)]
ODD = [b"bin\x00\xff\r\nkey", b"star*key", b"starXkey", b"[br]acket"]
ALL = set(k.encode() for k in USERS + ITEMS) | set(ODD)


def scan_all(c, *opts, count=None):
    """Iterates SCAN to the end; returns (set of keys, number of calls). Checks every reply's
    shape and, with `count`, that no call returns much more than asked."""
    keys, cursor, calls = set(), b"0", 0
    while True:
        args = ("SCAN", cursor) + opts + (("COUNT", count) if count is not None else ())
        r = c.cmd(*args)
        calls += 1
        if not (isinstance(r, list) and len(r) == 2 and isinstance(r[0], bytes) and
                r[0].isdigit() and isinstance(r[1], list)):
            check(False, "SCAN reply shape: %r" % (r,))
            return keys, calls
        if count is not None:
            check(len(r[1]) <= count + 8, "SCAN COUNT %d returned %d keys" % (count, len(r[1])))
        keys.update(r[1])
        cursor = r[0]
        if cursor == b"0":
            return keys, calls
        if calls > 100000:
            check(False, "SCAN never ends")
            return keys, calls


def fill(c):
    """Writes every key of ALL (pipelined) into the connection's cache."""
    batch = b"".join(TR.Resp.encode("SET", k, "v") for k in sorted(ALL))
    c.send_raw(batch)
    replies = [c.read() for _ in range(len(ALL))]
    check(all(r == "OK" for r in replies), "every SET answered OK")


def run_cases(c, where, settle=lambda: None):
    """The SCAN cases on one connection; settle() waits until this node holds the writes."""
    def eq(got, want, what):
        check_eq(got, want, "%s: %s" % (where, what))

    def err(got, prefix, what):
        TR.check_err(got, prefix, "%s: %s" % (where, what))

    c.cmd("HC.CACHE", "scan-never-used")
    eq(c.cmd("SCAN", "0"), [b"0", []], "SCAN of a cache that does not exist")
    eq(c.cmd("SCAN", "12345"), [b"0", []], "any cursor of a cache that does not exist")
    c.cmd("HC.CACHE", "scan-t")
    eq(c.cmd("FLUSHDB"), "OK", "FLUSHDB")
    eq(c.cmd("SET", "solo", "1"), "OK", "one key")
    settle()
    eq(scan_all(c, count=1)[0], {b"solo"}, "a one-key cache, COUNT 1")
    eq(c.cmd("DEL", "solo"), 1, "DEL solo")
    settle()
    eq(scan_all(c)[0], set(), "an emptied cache")

    fill(c)
    settle()
    eq(c.cmd("DBSIZE"), len(ALL), "DBSIZE")
    keys, calls = scan_all(c)
    eq(keys, ALL, "full iteration, default COUNT")
    check(calls >= len(ALL) // 20, "%s: default COUNT 10 takes many calls (%d)" % (where, calls))
    for count in (1, 7, 100, 5000):
        eq(scan_all(c, count=count)[0], ALL, "full iteration, COUNT %d" % count)
    eq(scan_all(c, "COUNT", str(10 ** 12))[0], ALL, "full iteration, COUNT 10^12 (capped)")
    r = c.cmd("SCAN", "0", "COUNT", "100000")
    eq((r[0], set(r[1])), (b"0", ALL), "a COUNT above the key count takes all in one call")

    # MATCH: Redis globs
    eq(scan_all(c, "MATCH", "user:*")[0], set(k.encode() for k in USERS), "MATCH user:*")
    eq(scan_all(c, "MATCH", "item:1?", count=50)[0],
       set(b"item:1%d" % i for i in range(10)), "MATCH item:1? COUNT 50")
    eq(scan_all(c, "MATCH", "item:[0-2]")[0], {b"item:0", b"item:1", b"item:2"},
       "MATCH with a range")
    eq(scan_all(c, "MATCH", "item:[^0-8]")[0], {b"item:9"}, "MATCH with a negated class")
    eq(scan_all(c, "MATCH", "star\\*key")[0], {b"star*key"}, "MATCH with an escaped star")
    eq(scan_all(c, "MATCH", "star?key")[0], {b"star*key", b"starXkey"}, "MATCH with ?")
    eq(scan_all(c, "MATCH", "\\[br]*")[0], {b"[br]acket"}, "MATCH with an escaped [")
    eq(scan_all(c, "MATCH", b"bin\x00*")[0], {ODD[0]}, "MATCH of a binary key")
    eq(scan_all(c, "MATCH", "*")[0], ALL, "MATCH *")
    eq(scan_all(c, "MATCH", "nothing-like-this*")[0], set(), "MATCH of nothing")
    eq(scan_all(c, "match", "user:2*", "count", "30", "type", "string")[0],
       set(k.encode() for k in USERS if k.startswith("user:2")), "options combined, any case")
    eq(scan_all(c, "MATCH", "nothing", "MATCH", "item:19*")[0],
       {b"item:19"} | set(b"item:19%d" % i for i in range(10)), "the last MATCH wins")

    # TYPE: every value is a string
    eq(scan_all(c, "TYPE", "string")[0], ALL, "TYPE string")
    eq(scan_all(c, "TYPE", "STRING")[0], ALL, "TYPE STRING")
    for t in ("hash", "list", "set", "zset", "stream", "nosuchtype"):
        eq(c.cmd("SCAN", "0", "TYPE", t), [b"0", []], "TYPE %s finds nothing" % t)

    # expired keys are not returned
    eq(c.cmd("SET", "short", "x", "PX", "100"), "OK", "a key that expires")
    settle()
    H.wait_until(lambda: c.cmd("GET", "short") is None, 5.0, what="%s: short expires" % where)
    check(b"short" not in scan_all(c, "MATCH", "sh*")[0], "%s: an expired key" % where)

    # another cache is another key space
    eq(c.cmd("HC.CACHE", "scan-other"), "OK", "select another cache")
    eq(c.cmd("SET", "elsewhere", "1"), "OK", "SET in the other cache")
    settle()
    eq(scan_all(c)[0], {b"elsewhere"}, "only the selected cache's keys")
    eq(c.cmd("HC.CACHE", "scan-t"), "OK", "back")

    # errors
    err(c.cmd("SCAN"), "ERR wrong number of arguments for 'scan'", "SCAN arity")
    for bad in ("abc", "-1", "1.5", "", " 1", "18446744073709551616"):
        err(c.cmd("SCAN", bad), "ERR invalid cursor", "cursor %r" % bad)
    r = c.cmd("SCAN", "18446744073709551615")
    check(isinstance(r, list) and len(r) == 2, "%s: the largest cursor is valid: %r" % (where, r))
    err(c.cmd("SCAN", "0", "COUNT", "0"), "ERR syntax error", "COUNT 0")
    err(c.cmd("SCAN", "0", "COUNT", "-3"), "ERR syntax error", "COUNT -3")
    err(c.cmd("SCAN", "0", "COUNT", "ten"), "ERR value is not an integer or out of range",
        "COUNT ten")
    err(c.cmd("SCAN", "0", "COUNT", "99999999999999999999"),
        "ERR value is not an integer or out of range", "COUNT beyond 64 bits")
    err(c.cmd("SCAN", "0", "COUNT"), "ERR syntax error", "COUNT without a value")
    err(c.cmd("SCAN", "0", "MATCH"), "ERR syntax error", "MATCH without a pattern")
    err(c.cmd("SCAN", "0", "TYPE"), "ERR syntax error", "TYPE without a type")
    err(c.cmd("SCAN", "0", "NOVALUES", "1"), "ERR syntax error", "an unknown option")
    err(c.cmd("SCAN", "0", "MATCH", "x" * 4097), "ERR MATCH pattern longer than 4096 bytes",
        "a pattern over 4096 bytes")
    for pat in ("x" * 4096, "*" * 4096, "*a" * 2048):
        r = c.cmd("SCAN", "0", "MATCH", pat)
        check(isinstance(r, list) and len(r) == 2,
              "%s: a 4096-byte pattern %r... is accepted: %r" % (where, pat[:4], r))
    eq(c.cmd("MULTI"), "OK", "MULTI")
    err(c.cmd("SCAN", "0"), "ERR 'SCAN' is not supported inside MULTI", "SCAN in MULTI")
    eq(c.cmd("DISCARD"), "OK", "DISCARD")

    # pipelined after a write: SCAN waits for the write before it
    c.send_raw(TR.Resp.encode("SET", "piped", "1") +
               TR.Resp.encode("SCAN", "0", "MATCH", "piped", "COUNT", "100000"))
    eq([c.read() for _ in range(2)], ["OK", [b"0", [b"piped"]]], "SET then SCAN pipelined")
    eq(c.cmd("PING"), "PONG", "the connection survives every error above")


def test_scan_standalone():
    n = TR.resp_node(name="resp-scan")
    try:
        c = TR.client(n)
        try:
            run_cases(c, "standalone")
        finally:
            c.close()
        n.stop_ok()
    finally:
        n.kill()


def redis_py_script(port, token):
    """The redis-py part (run by an interpreter that has redis-py): AssertionError on the first
    mismatch."""
    import redis

    def eq(got, want, what):
        if got != want:
            raise AssertionError("%s: got %r, want %r" % (what, got, want))

    r = redis.Redis(host="127.0.0.1", port=port, password=token, socket_timeout=10)
    keys = set(b"k:%d" % i for i in range(250)) | {b"other"}
    p = r.pipeline(transaction=False)
    for k in sorted(keys):
        p.set(k, "v")
    p.execute()
    eq(set(r.scan_iter()), keys, "scan_iter()")
    eq(set(r.scan_iter(count=3)), keys, "scan_iter(count=3)")
    eq(set(r.scan_iter(match="k:1*", count=50)),
       set(k for k in keys if k.startswith(b"k:1")), "scan_iter(match=k:1*)")
    eq(set(r.scan_iter(_type="string")), keys, "scan_iter(_type=string)")
    eq(list(r.scan_iter(_type="hash")), [], "scan_iter(_type=hash)")
    cursor, first = r.scan(0, count=5)
    eq(isinstance(cursor, int) and cursor > 0 and len(first) >= 1, True,
       "scan(0, count=5) -> (%r, %d keys)" % (cursor, len(first)))
    seen = set(first)
    while cursor != 0:
        cursor, more = r.scan(cursor, count=5)
        seen.update(more)
    eq(seen, keys, "scan() by hand")
    try:
        r.scan(0, count=0)
        raise AssertionError("scan(count=0) must be refused")
    except redis.ResponseError as e:
        eq("syntax error" in str(e), True, "scan(count=0): %s" % e)
    r.close()


def test_redis_py_scan_iter():
    TC.run_redis_py_standalone(__file__, "resp-scan-redis-py", "the redis-py SCAN script passes")


def test_scan_through_a_follower_and_quorum_loss():
    grace_ms = 1000
    cl = TR.RespCluster(3, extra_env={"CACHE_QUORUM_LOSS_GRACE_MS": str(grace_ms)})
    stopped = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        follower = [x for x in cl.live() if x is not ld][0]
        c = TR.client(follower)
        lc = TR.client(ld)
        lc.cmd("HC.CACHE", "scan-t")

        def settle():
            # writes through the follower are applied there before their OK (ack quorum);
            # DEL / expiry reach the leader's replica a little later
            lc.cmd("HC.CACHE", c.cmd("HC.CACHE"))
            want = c.cmd("DBSIZE")
            H.wait_until(lambda: lc.cmd("DBSIZE") == want, 5.0, what="leader catches up")

        try:
            run_cases(c, "follower", settle)
            lc.cmd("HC.CACHE", "scan-t")
            keys, _ = scan_all(lc)
            check_eq(keys, ALL | {b"piped"}, "the leader's replica scans the same keys")
            # quorum lost: a local read is refused, and so is SCAN
            for x in cl.live():
                if x is not ld:
                    x.signal(signal.SIGSTOP)
                    stopped.append(x)

            def unavailable():
                r = lc.cmd("GET", "user:1")
                return r if TR.err_starts(r, "UNAVAILABLE") else None
            H.wait_until(unavailable, 2.0 * grace_ms / 1000.0 + 2.0,
                         what="the cut-off leader refuses local reads")
            TR.check_err(lc.cmd("SCAN", "0"), "UNAVAILABLE", "SCAN on the cut-off leader")
            for x in stopped:
                x.signal(signal.SIGCONT)
            stopped = []
            cl.wait_ready(20.0)
            H.wait_until(lambda: isinstance(lc.cmd("SCAN", "0"), list), 10.0,
                         what="SCAN answers again after recovery")
        finally:
            c.close()
            lc.close()
        for x in cl.live():
            x.stop_ok(15.0)
    finally:
        for x in stopped:
            x.signal(signal.SIGCONT)
        cl.cleanup()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--redis-py":
        redis_py_script(int(sys.argv[2]), sys.argv[3])
        print("redis-py SCAN script passed")
    else:
        H.run(globals())
