"""The embedded node (issue 14 acceptance 4, SPEC section 7 "embedded node").

Three processes of examples/embedded.c (build/bin/example_embedded: a program linked with
libhacache_node that becomes a cluster member in-process, configured from the environment like
hacached, HTTP listener on) form a volume-less cluster (no CACHE_DATA_DIR, mTLS between peers)
with the cluster.py helpers, which start the example in place of hacached.

- Local reads: a value written through one node shows up in every process's own local reads
  (the example prints each change of `example/greeting` it reads through hc_embedded_get).
- Rolling restart of all three (the leader included) while two remote clients write through
  the nodes over HTTP: quorum puts and increments, each write with a request id that stays the
  same across its retries (503, 504 unknown outcome, connection errors: failover to the next
  node within 3 s). Each process gets SIGTERM (the example calls hc_embedded_stop: handover,
  drain, close), must exit 0 within CACHE_SHUTDOWN_TIMEOUT_MS, is started again without state
  and must be ready as a voter before the next one goes.
- Zero failed writes; every acknowledged put reads back on every node (linearizable); every
  acknowledged increment was applied exactly once (the counters equal the acknowledged counts);
  each restarted process serves the greeting from its own copy again; at the end every process
  stops within the bound and exits 0 after printing "stopped (success)".
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402
import test_cluster_rolling as R  # noqa: E402
import test_cluster_volumeless as V  # noqa: E402

SHUTDOWN_TIMEOUT_MS = 5000
RETRY_BUDGET_S = 3.0


def example_binary():
    bd = os.environ.get("HC_BUILD_DIR") or os.path.join(H.REPO, "build")
    return os.path.join(bd, "bin", "example_embedded")


# cluster.py and harness.py start this program in place of hacached
os.environ["HACACHED"] = example_binary()


def output_has(nd, text):
    return text in nd.stderr()  # the example's stdout and stderr share one file


def test_three_embedded_members_rolling_restart():
    exe = example_binary()
    if not os.access(exe, os.X_OK):
        raise AssertionError("example_embedded not built: %s" % exe)
    cl = C.Cluster(3, data_dirs=False, log_level="info",
                   extra_env={"CACHE_SHUTDOWN_TIMEOUT_MS": str(SHUTDOWN_TIMEOUT_MS)})
    writers = []
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(15.0)
        for nd in cl.nodes:
            H.check(output_has(nd, "embedded node starting"), "%s is the embedded example"
                    % nd.name)
        # local reads: a write through the leader is seen by every process's own reads
        c = H.Client(ld.port, timeout=5)
        st, _, _ = c.put("/v1/caches/example/greeting?ack=quorum", body=b"hello-1")
        c.close()
        H.check_eq(st, 200, "greeting written")
        C.wait_all(lambda: all(output_has(nd, "local read example/greeting: hello-1")
                               for nd in cl.nodes), 10.0, "every member reads the greeting locally")

        writers = [C.IdWriter(cl, "w%d" % k, k % 3, budget_s=RETRY_BUDGET_S)
                   for k in range(2)]
        for w in writers:
            w.start()
        H.wait_until(lambda: all(len(w.acked) >= 30 for w in writers), 20.0,
                     what="writers running")
        ld = cl.wait_leader(20.0)
        fs = [x.index for x in cl.live() if x is not ld]
        report = []
        for i in [fs[0], ld.index, fs[1]]:  # every member, the leader in the middle
            report.append(R.restart_one(cl, writers, i))
            nd = cl.nodes[i]
            H.wait_until(lambda: V.all_voters(cl, 3), 15.0,
                         what="3 voters, no learner, committed, on every node")
            H.wait_until(lambda: output_has(nd, "local read example/greeting: hello-1"), 10.0,
                         what="the restarted %s reads the greeting from its own copy" % nd.name)
        H.check(any(r[1] for r in report), "the leader was among the restarted")
        for name, was_leader, _, shut, ready, gap in report:
            H.log("%s%s: SIGTERM -> exit 0 in %.3fs, ready (voter) %.2fs later, longest write "
                  "pause %.3fs" % (name, " (leader)" if was_leader else "", shut, ready, gap))

        C.stop_writers_clean(writers)
        H.log("increments acknowledged: %s; retried attempts: %d" % (
            [w.incrs for w in writers], sum(w.retries for w in writers)))
        C.check_acked(cl.live(), writers, query="?consistency=linearizable")
        C.check_counters(cl.live(), writers)

        for nd in cl.live():
            t0 = time.monotonic()
            nd.signal(signal.SIGTERM)
            rc = nd.wait_exit(SHUTDOWN_TIMEOUT_MS / 1000.0 + 2.0)
            took = time.monotonic() - t0
            H.check_eq(rc, 0, "%s exit status after SIGTERM" % nd.name)
            H.check(took < SHUTDOWN_TIMEOUT_MS / 1000.0, "%s stopped within the bound (%.3fs)"
                    % (nd.name, took))
            H.check(output_has(nd, "embedded: stopped (success)"), "%s stopped in order"
                    % nd.name)
            H.check("AddressSanitizer" not in nd.stderr() and "runtime error:" not in nd.stderr(),
                    "no sanitizer report from %s" % nd.name)
    finally:
        for w in writers:
            w.stop_flag.set()
        cl.cleanup()


def test_configuration_error_exits_2():
    """A misconfigured embedded program gets hacached's one line (into its err buffer)."""
    import subprocess
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HA_MODE": "true"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    p = subprocess.run([example_binary()], env=env, capture_output=True, timeout=20)
    H.check_eq(p.returncode, 2, "exit status")
    H.check(p.stderr.decode().startswith("embedded: HA_HOSTS"), "one line naming HA_HOSTS: %r"
            % p.stderr[:300])


if __name__ == "__main__":
    H.run(globals())
