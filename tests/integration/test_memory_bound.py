#!/usr/bin/env python3
"""Memory bound of a standalone hacached: with CACHE_MAX_MEMORY=64MiB, writing 192 MiB
(3072 distinct keys of 64 KiB) keeps the process small, evicts the oldest entries (LRU), keeps
the newest ones intact, and counts the evictions.

test_full_cluster_cache_takes_concurrent_writes: a 3-node cluster whose store (and one cache's
own bound) is full takes writes that arrive together (concurrent HTTP clients through the leader
and a follower, a RESP pipeline, MSETs) and evicts for each of them: none is refused with 507 /
-OOM (the leader plans room for the writes it proposed but has not applied yet), the accounted
memory stays within the bound, the replicas stay identical."""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

check, check_eq, log = H.check, H.check_eq, H.log

MIB = 1 << 20
VAL = 64 * 1024
N = 3072                      # 192 MiB in total
MAX_MEMORY = 64 * MIB
CACHE = "mem"


def value(i):
    return b"%08d" % i + random.Random(i).randbytes(VAL - 8)


def path(i):
    return "/v1/caches/%s/key-%05d" % (CACHE, i)


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def test_memory_bound_lru_eviction():
    sanitized = H.is_sanitized_build()
    rss_limit_mib = 160
    env = {"CACHE_MAX_MEMORY": "64MiB", "CACHE_MAX_VALUE_SIZE": "1MiB"}
    if sanitized:
        # ASan keeps freed blocks in a quarantine (256 MiB by default), which would be
        # measured as RSS; shrink it so the bound still says something about the server
        env["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""),
                                                    "quarantine_size_mb=16") if x)
    n = H.Node(name="mem", log_level="info", env=env)
    rss0 = proc_status(n.pid, "VmRSS")
    log("RSS at start: %.1f MiB%s" % (rss0 / 1024.0, " (sanitizer build, ASan quarantine "
                                       "16 MiB)" if sanitized else ""))
    errors = []
    t0 = time.monotonic()

    # phase 1: two keep-alive connections write keys [0, N-256) interleaved (even/odd)
    split = N - 256

    def writer(parity):
        c = n.client()
        try:
            for i in range(parity, split, 2):
                st, hd, raw = c.put(path(i), value(i))
                if st != 200:
                    errors.append("PUT %s -> %d %r" % (path(i), st, raw[:200]))
                    return
            if c.connects != 1:
                errors.append("writer %d needed %d connections" % (parity, c.connects))
        except Exception as e:
            errors.append("writer %d: %r" % (parity, e))
        finally:
            c.close()
    ts = [threading.Thread(target=writer, args=(p,)) for p in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(100)
    if any(t.is_alive() for t in ts):
        raise AssertionError("writers still running after 100 s")
    if errors:
        raise AssertionError("writes failed: %s" % errors[:5])

    # phase 2: the newest 256 keys in order over one connection
    c = n.client()
    for i in range(split, N):
        st, hd, raw = c.put(path(i), value(i))
        if st != 200:
            raise AssertionError("PUT %s -> %d %r" % (path(i), st, raw[:200]))
    dt = time.monotonic() - t0
    log("wrote %d x %d KiB = %d MiB in %.1fs (%.0f MiB/s)" % (N, VAL // 1024, N * VAL // MIB,
                                                              dt, N * VAL / MIB / dt))

    rss = proc_status(n.pid, "VmRSS")
    hwm = proc_status(n.pid, "VmHWM")
    log("RSS after writes: %.1f MiB (peak VmHWM %.1f MiB)" % (rss / 1024.0, hwm / 1024.0))
    check(rss < rss_limit_mib * 1024, "VmRSS %.1f MiB >= %d MiB after writing 192 MiB into a "
          "64 MiB cache" % (rss / 1024.0, rss_limit_mib))

    m = n.metrics()
    evictions = m.per_cache("hacache_cache_evictions_total", CACHE)
    entries = m.per_cache("hacache_cache_entries", CACHE)
    mem = m.per_cache("hacache_cache_memory_bytes", CACHE)
    log("evictions %d, entries %d, memory_bytes %d (%.2f MiB)" % (evictions, entries, mem,
                                                                 mem / MIB))
    min_evictions = N - MAX_MEMORY // VAL
    check(evictions >= min_evictions, "hacache_cache_evictions_total %d < %d" % (
        evictions, min_evictions))
    check(0 < mem <= MAX_MEMORY, "hacache_cache_memory_bytes %d not in (0, 64 MiB]" % mem)
    check_eq(entries + evictions, N, "entries + evictions (every key is either stored or "
             "was evicted)")
    check(entries >= 0.75 * (MAX_MEMORY // VAL), "only %d entries kept; approximately "
          "LRU eviction should keep close to %d" % (entries, MAX_MEMORY // VAL))
    check(entries * VAL <= MAX_MEMORY, "%d entries of 64 KiB exceed 64 MiB" % entries)

    # the newest 100 keys are readable with their exact bytes
    bad = []
    for i in range(N - 100, N):
        st, hd, raw = c.get(path(i))
        if st != 200 or raw != value(i):
            bad.append((i, st, len(raw)))
    check(not bad, "%d of the newest 100 keys not readable intact: %s" % (len(bad), bad[:5]))
    # the oldest keys are gone
    present = []
    for i in range(0, 100):
        st, hd, raw = c.get(path(i))
        if st != 404:
            present.append((i, st))
    check(not present, "%d of the oldest 100 keys still present: %s" % (len(present),
                                                                         present[:5]))
    st, obj, hd, raw = c.json("GET", "/v1/caches")
    ent = [x for x in (obj or {}).get("caches", []) if x.get("name") == CACHE]
    if check(ent, "cache %s missing from /v1/caches: %r" % (CACHE, raw[:300])):
        check(ent[0].get("memory_bytes", 0) <= MAX_MEMORY, "/v1/caches memory_bytes %r" %
              ent[0].get("memory_bytes"))
        check_eq(ent[0].get("evictions"), evictions, "/v1/caches evictions vs metrics")
    c.close()
    rss = proc_status(n.pid, "VmRSS")
    log("RSS after reads: %.1f MiB" % (rss / 1024.0))
    check(rss < rss_limit_mib * 1024, "VmRSS %.1f MiB >= %d MiB after reads" % (
        rss / 1024.0, rss_limit_mib))
    n.stop_ok()


def test_value_over_memory_bound():
    """A value that cannot fit even into an empty cache gets a clear error (507), not a crash;
    the node keeps serving."""
    n = H.Node(name="mem-small", log_level="info",
               env={"CACHE_MAX_MEMORY": "1MiB", "CACHE_MAX_VALUE_SIZE": "1MiB"})
    c = n.client()
    try:
        st, hd, raw = c.put("/v1/caches/%s/small" % CACHE, b"s" * 1000)
        check_eq(st, 200, "small PUT")
        # exactly CACHE_MAX_VALUE_SIZE: allowed by size, but key + value + overhead > 1 MiB
        st, hd, raw = c.put("/v1/caches/%s/huge" % CACHE, b"h" * MIB)
    finally:
        c.close()
    H.check_error((st, hd, raw), 507, "insufficient_memory",
                  "PUT of a 1 MiB value into a 1 MiB store")
    c = n.client()
    st, hd, raw = c.get("/v1/caches/%s/huge" % CACHE)
    check_eq(st, 404, "rejected value absent")
    st, hd, raw = c.get("/healthz")
    check_eq(st, 200, "healthz after 507")
    c.close()
    n.stop_ok()


def test_full_cluster_cache_takes_concurrent_writes():
    import test_resp as TR
    bound = MIB
    val = b"v" * 8192
    cl = TR.RespCluster(3, extra_env={"CACHE_MAX_MEMORY": "1MiB"})
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        f = [x for x in cl.live() if x is not ld][0]
        c = H.Client(ld.port, timeout=10)
        st, _, raw = c.put("/v1/caches/own?max_memory=262144", b"")
        check_eq(st, 200, "a cache with its own bound (256 KiB): %r" % raw[:200])
        for i in range(256):  # 2 MiB one at a time: full, evicting
            st, _, raw = c.put("/v1/caches/%s/s%d" % (CACHE, i), val)
            check_eq(st, 200, "serial PUT %d: %r" % (i, raw[:200]))
        c.close()
        codes = {}
        lock = threading.Lock()

        def http_writer(node, k, cache):
            cc = H.Client(node.port, timeout=10)
            try:
                for i in range(60):
                    st, _, raw = cc.put("/v1/caches/%s/h%s-%d-%d" % (cache, node.name, k, i), val)
                    with lock:
                        codes[st] = codes.get(st, 0) + 1
                        if st != 200:
                            codes.setdefault("first", raw[:200])
            finally:
                cc.close()
        ts = [threading.Thread(target=http_writer, args=(nd, k, cache))
              for nd in (ld, f) for k in range(3) for cache in (CACHE, "own")]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120.0)
        log("12 concurrent HTTP writers (leader and a follower, store bound and a cache bound): "
            "%r" % codes)
        check_eq(sorted(k for k in codes if k != "first"), [200],
                 "every concurrent write into a full cache is taken (%r)" % codes)

        r = TR.Resp(ld.resp_port)
        try:
            check_eq(r.cmd("HC.CACHE", CACHE), "OK", "HC.CACHE")
            r.send_raw(b"".join(TR.Resp.encode("SET", "p%d" % i, val) for i in range(64)))
            rep = [r.read() for _ in range(64)]
            check_eq([x for x in rep if x != "OK"][:3], [], "a pipeline of 64 SETs into a full "
                     "cache: every one OK")
            msets = []
            for j in range(8):
                args = ["MSET"]
                for i in range(8):
                    args += ["m%d-%d" % (j, i), val]
                msets.append(TR.Resp.encode(*args))
            r.send_raw(b"".join(msets))
            rep = [r.read() for _ in range(8)]
            check_eq([x for x in rep if x != "OK"][:3], [], "8 pipelined MSETs of 64 KiB: OK")
        finally:
            r.close()

        def same_everywhere():
            ds = cl.digests()
            return len(set(ds.values())) == 1 and None not in ds.values()
        H.wait_until(same_everywhere, 20.0, what="identical replicas")
        for nd in cl.live():
            m = nd.metrics()
            used = m.sum("hacache_cache_memory_bytes")
            own = m.get("hacache_cache_memory_bytes", cache="own")
            check(0 < used <= bound, "%s: %d accounted bytes within the 1 MiB bound" % (
                nd.name, used))
            check(own is not None and own <= 262144, "%s: the cache's own bound holds: %r" % (
                nd.name, own))
            check(m.get("hacache_cache_evictions_total", 0) > 0, "%s evicted" % nd.name)
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
