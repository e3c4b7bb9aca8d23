"""Network partitions between pods, with nftables inside the pods' namespaces (issue 15,
scenario 4). The standalone StatefulSet (tests/k8s/pods.py), default timeouts (election 1 s,
quorum-loss grace = one election timeout), two clients of the Service writing continuously
(quorum, request ids, retries on another pod within 5 s), a monitor polling every pod's
/v1/status. Each cut is healed and every pod is ready again before the next.

- the leader isolated from its peers (the node's namespace still reaches it): it stops serving
  (local reads and /readyz 503, writes not acknowledged) within 2x the grace; the majority
  elects a leader; a key overwritten through the majority is never read back old from the
  isolated node after the grace, nor with a linearizable read at any time (stale reads = 0);
  healed, it catches up and serves the new value;
- one follower isolated, then healed: the majority's term and leader never change;
- a bridge partition (the leader and one follower cut from each other, both reach the third):
  one stable leader within 5 s, at most one leader change per minute afterwards; the follower
  cut from the leader stops serving its old copy within election timeout + heartbeat + grace
  (+ a check period and 1 s of slack) and serves no stale read after;
- a one-way cut (the leader's packets to one follower dropped): one leader, the majority keeps
  acknowledging writes;
- 5% packet loss on one link (the leader to one follower) for HC_K8S_LOSS_SECONDS (10 s in the
  default suite, 60 s under the k8s-soak label): no term change.
Zero failed writes overall; every acknowledged write reads back from every pod (linearizable).
FIGURES: per cut.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients as C  # noqa: E402
import manifests as M  # noqa: E402
import pods as P  # noqa: E402

H = P.H
GRACE_S = 1.0  # CACHE_QUORUM_LOSS_GRACE_MS default: one election timeout (1000 ms)
ELECTION_S, HEARTBEAT_S = 1.0, 0.1
# A follower that stops hearing its leader keeps serving until last frame + election timeout +
# one heartbeat + grace (it cannot tell a dead leader from an election under way; server/cluster/
# quorum.c), checked every grace/4: 2.35 s with the defaults, plus 1 s for a loaded machine.
# Under ASan+UBSan, on a machine running the rest of the suite, timers fire late: the bounds on
# when a cut-off node stops serving are doubled there (measured: 4.2 s for the follower once).
SLOW = 2.0 if H.is_sanitized_build() else 1.0
FOLLOWER_BOUND_S = (ELECTION_S + HEARTBEAT_S + GRACE_S + GRACE_S / 4 + 1.0) * SLOW
LEADER_BOUND_S = 2 * GRACE_S * SLOW
LOSS_S = float(os.environ.get("HC_K8S_LOSS_SECONDS", "10"))
BRIDGE_S = float(os.environ.get("HC_K8S_BRIDGE_SECONDS", "10"))


def heal_all(sts, timeout=30.0):
    for p in sts.live():
        p.heal()
    t0 = time.monotonic()
    sts.wait_ready(timeout)
    return time.monotonic() - t0


def acks_since(ws, t):
    return sum(1 for w in ws for x in list(w.ack_times) if x > t)


def leader_isolated(sts, ws, mon):
    ld, term = C.leader(sts.live(), 20.0)
    rest = [p for p in sts.live() if p is not ld]
    st, _, _ = P.pod_request(ld, "PUT", "/v1/caches/part/k?ack=quorum", body=b"old")
    H.check_eq(st, 200, "write of the old value")
    for p in sts.live():  # every pod holds the old value before the cut
        H.wait_until(lambda p=p: P.pod_request(p, "GET", "/v1/caches/part/k")[2] == b"old",
                     10.0, what="the old value on %s" % p.name)
    reads = []  # (t_sent, consistency, status, body)
    stop = threading.Event()

    def reader(consistency):
        while not stop.is_set():
            t = time.monotonic()
            try:
                st, _, body = P.pod_request(ld, "GET", "/v1/caches/part/k?consistency=%s" %
                                            consistency, timeout=2.0)
            except Exception:
                st, body = None, None
            reads.append((t, consistency, st, body))
            stop.wait(0.02)
    rts = [threading.Thread(target=reader, args=(c,), daemon=True)
           for c in ("local", "linearizable")]
    t_cut = time.monotonic()
    ld.cut(rest)
    for t in rts:
        t.start()

    def stopped_serving():
        st_get = P.pod_request(ld, "GET", "/v1/caches/part/k", timeout=1.0)[0]
        st_rz = P.pod_request(ld, "GET", "/readyz", timeout=1.0)[0]
        return st_get == 503 and st_rz == 503
    H.wait_until(stopped_serving, 10.0, interval=0.02, what="the isolated leader stops serving")
    t_stop_serving = time.monotonic() - t_cut
    new, nterm = C.leader(rest, 20.0)
    t_new_leader = time.monotonic() - t_cut
    st, _, _ = P.pod_request(new, "PUT", "/v1/caches/part/k?ack=quorum", body=b"new")
    H.check_eq(st, 200, "overwrite through the majority")
    t_new = time.monotonic()
    st, _, raw = P.pod_request(ld, "PUT", "/v1/caches/part/other?ack=quorum", body=b"x",
                               timeout=10.0)
    H.check(st != 200, "the isolated node acknowledges no write (%r %r)" % (st, raw[:100]))
    # reads go on for a while after the overwrite
    H.wait_until(lambda: sum(1 for r in list(reads) if r[0] > t_new) >= 20, 10.0,
                 what="reads of the isolated node after the overwrite")
    stop.set()
    for t in rts:
        t.join(5)
    stale = [r for r in reads if r[3] == b"old" and
             (r[1] == "linearizable" and r[0] >= t_new or r[0] >= t_cut + LEADER_BOUND_S)]
    served_after_bound = [r for r in reads if r[2] == 200 and r[0] >= t_cut + LEADER_BOUND_S]
    H.log("leader %s isolated: stopped serving after %.2fs, new leader %s (term %d) after "
          "%.2fs; %d reads of the isolated node, stale %d" % (
              ld.name, t_stop_serving, new.name, nterm, t_new_leader, len(reads), len(stale)))
    H.check(t_stop_serving <= LEADER_BOUND_S, "the isolated leader stops serving within %.1fs "
            "(2x the grace%s): %.2fs" % (LEADER_BOUND_S, ", x2 under ASan" if SLOW > 1 else "",
                                         t_stop_serving))
    H.check_eq(stale[:5], [], "stale reads from the isolated leader")
    H.check_eq(served_after_bound[:5], [], "reads served by the isolated node after the bound")
    ready_s = heal_all(sts)
    st, _, body = P.pod_request(ld, "GET", "/v1/caches/part/k")
    H.check_eq((st, body), (200, b"new"), "the healed node serves the new value")
    C.figures("scenario4-leader-isolated", stop_serving_s=t_stop_serving,
              new_leader_s=t_new_leader, heal_to_ready_s=ready_s, stale_reads=len(stale),
              reads=len(reads))


def follower_isolated(sts, ws, mon):
    ld, term = C.leader(sts.live(), 20.0)
    f = [p for p in sts.live() if p is not ld][0]
    majority = [p.name for p in sts.live() if p is not f]
    t0 = time.monotonic()
    n0 = acks_since(ws, 0)
    f.cut([p for p in sts.live() if p is not f])
    H.wait_until(lambda: P.pod_request(f, "GET", "/readyz", timeout=1.0)[0] == 503, 10.0,
                 interval=0.05, what="the isolated follower reports not ready")
    t_unready = time.monotonic() - t0
    H.wait_until(lambda: acks_since(ws, time.monotonic() - 0.5) > 0 and
                 time.monotonic() - t0 > 3 * GRACE_S, 20.0, what="writes through the majority")
    ready_s = heal_all(sts)
    H.wait_until(lambda: mon.samples and mon.samples[-1][0] > time.monotonic() - 0.3, 5.0,
                 what="a fresh status sample")
    t_end = time.monotonic() + 2.0
    H.wait_until(lambda: time.monotonic() >= t_end, 5.0, what="2 s of watching after the heal")
    terms = mon.terms(t0, names=majority)
    ld2, term2 = C.leader(sts.live(), 10.0)
    H.log("follower %s isolated: not ready after %.2fs; healed, ready after %.2fs; majority "
          "terms seen %r, leader %s term %d (before: %s term %d)" % (
              f.name, t_unready, ready_s, terms, ld2.name, term2, ld.name, term))
    H.check_eq(terms, [term], "the majority's term did not change")
    H.check(ld2 is ld and term2 == term, "the leader did not change")
    C.figures("scenario4-follower-isolated", unready_s=t_unready, heal_to_ready_s=ready_s,
              term_changes=len(terms) - 1, writes=acks_since(ws, 0) - n0)


def bridge(sts, ws, mon):
    ld, term = C.leader(sts.live(), 20.0)
    a = ld
    b, c = [p for p in sts.live() if p is not ld][:2]
    st, _, _ = P.pod_request(a, "PUT", "/v1/caches/part/bridge?ack=quorum", body=b"old")
    H.check_eq(st, 200, "write of the old value")
    H.wait_until(lambda: P.pod_request(b, "GET", "/v1/caches/part/bridge")[2] == b"old", 10.0,
                 what="the old value on %s" % b.name)
    t0 = time.monotonic()
    a.cut([b])  # A-B cut both ways; both reach C
    st, _, _ = P.pod_request(a, "PUT", "/v1/caches/part/bridge?ack=quorum", body=b"new")
    H.check_eq(st, 200, "overwrite through the leader and C")
    # B no longer hears the leader: how long does it serve its (now old) local copy? (polled
    # on a thread while the leader's stability is watched)
    b_serves = {}

    def poll_b():
        try:
            H.wait_until(lambda: P.pod_request(b, "GET", "/v1/caches/part/bridge",
                                               timeout=1.0)[0] == 503, 10.0, interval=0.02,
                         what="%s, cut from the leader, stops serving" % b.name)
            b_serves["s"] = time.monotonic() - t0
        except AssertionError:
            b_serves["s"] = float("inf")
    tb = threading.Thread(target=poll_b, daemon=True)
    tb.start()

    def one_leader():
        sts_ = {p: P.status(p, 0.5) for p in sts.live()}
        ls = [p for p, s in sts_.items() if s and s.get("role") == "leader"]
        return ls[0] if len(ls) == 1 else None
    # stable: the same single leader for 1 s
    state = {"l": None, "since": None}

    def stable():
        l1 = one_leader()
        now = time.monotonic()
        if l1 is None or l1 is not state["l"]:
            state["l"], state["since"] = l1, now
            return False
        return now - state["since"] >= 1.0
    H.wait_until(stable, 15.0, interval=0.05, what="one stable leader under the bridge cut")
    t_stable = state["since"] - t0
    tb.join(15.0)
    t_b_serves = b_serves.get("s", float("inf"))
    t_w = time.monotonic()
    H.wait_until(lambda: time.monotonic() - t_w >= BRIDGE_S, BRIDGE_S + 5,
                 interval=0.2, what="the observation window")
    changes = mon.leader_changes(state["since"], names=[a.name, c.name])
    leaders = mon.leaders_seen(state["since"])
    writes = acks_since(ws, t_w)
    H.log("bridge partition %s-%s (both reach %s): one stable leader (%s) %.2fs after the cut; "
          "over %.0fs: %d leader changes, leaders per term %r, %d writes" % (
              a.name, b.name, c.name, state["l"].name, t_stable, BRIDGE_S, changes,
              {k: sorted(v) for k, v in leaders.items()}, writes))
    H.log("%s (cut from the leader, reaches %s) served local reads of its old copy for "
          "%.2fs after the cut" % (b.name, c.name, t_b_serves))
    H.check(t_b_serves <= FOLLOWER_BOUND_S, "the follower cut from the leader stops serving "
            "within %.2fs (%.2fs)" % (FOLLOWER_BOUND_S, t_b_serves))
    st, _, body = P.pod_request(b, "GET", "/v1/caches/part/bridge", timeout=2.0)
    H.check(st == 503 and body != b"old", "no stale read from %s during the cut (%r)" % (
        b.name, st))
    H.check(t_stable <= 5.0, "one stable leader within 5 s (%.2fs)" % t_stable)
    H.check(changes <= max(1, int(BRIDGE_S // 60)), "at most one leader change per minute "
            "(%d in %.0fs)" % (changes, BRIDGE_S))
    H.check(all(len(v) == 1 for v in leaders.values()), "one leader per term")
    H.check(writes > 0, "writes acknowledged during the bridge partition")
    ready_s = heal_all(sts)
    C.figures("scenario4-bridge-partition", stable_leader_s=t_stable,
              cut_follower_serves_s=t_b_serves, window_s=BRIDGE_S,
              leader_changes=changes, heal_to_ready_s=ready_s, writes=writes)


def one_way(sts, ws, mon):
    ld, term = C.leader(sts.live(), 20.0)
    b = [p for p in sts.live() if p is not ld][0]
    t0 = time.monotonic()
    ld.cut([b], inbound=False, outbound=True)  # the leader's packets to B are dropped
    window = 5.0
    H.wait_until(lambda: time.monotonic() - t0 >= window, window + 5, interval=0.2,
                 what="the observation window")
    leaders = mon.leaders_seen(t0)
    ld2, term2 = C.leader([p for p in sts.live() if p is not b], 10.0)
    writes = acks_since(ws, t0 + 2.0)
    H.log("one-way cut %s -> %s: leaders per term %r, leader now %s term %d, %d writes in the "
          "last %.0fs" % (ld.name, b.name, {k: sorted(v) for k, v in leaders.items()},
                          ld2.name, term2, writes, window - 2.0))
    H.check(all(len(v) == 1 for v in leaders.values()), "one leader per term")
    H.check(writes > 0, "the majority acknowledges writes during the one-way cut")
    ready_s = heal_all(sts)
    C.figures("scenario4-one-way-cut", terms=len(leaders), leader_changes=mon.leader_changes(
        t0, names=[p.name for p in sts.live() if p is not b]), heal_to_ready_s=ready_s,
        writes=writes)


def packet_loss(sts, ws, mon):
    ld, term = C.leader(sts.live(), 20.0)
    b = [p for p in sts.live() if p is not ld][0]
    t0 = time.monotonic()
    ld.cut([b], loss_pct=5)
    H.wait_until(lambda: time.monotonic() - t0 >= LOSS_S, LOSS_S + 5, interval=0.2,
                 what="%.0fs of 5%% loss" % LOSS_S)
    terms = mon.terms(t0)
    writes = acks_since(ws, t0)
    for p in sts.live():
        p.heal()
    H.log("5%% loss %s <-> %s for %.0fs: terms seen %r, %d writes" % (ld.name, b.name, LOSS_S,
                                                                     terms, writes))
    H.check_eq(terms, [term], "no term change under 5% loss on one link")
    C.figures("scenario4-packet-loss", loss_pct=5, seconds=LOSS_S, term_changes=len(terms) - 1,
              writes=writes)


def test_partitions():
    P.require_namespaces()
    objs = M.render()
    with P.Cluster("part") as cl:
        sts = cl.statefulset(M.one(objs, "StatefulSet"), objs)
        ws = []
        mon = C.Monitor(lambda: sts.live())
        try:
            sts.create_all()
            sts.wait_ready(60.0)
            C.leader(sts.live(), 20.0)
            targets = lambda: [p for p in list(sts.pods.values()) if p.running()]  # noqa: E731
            ws = [C.Writer("w%d" % k, targets, first=k) for k in range(2)]
            for w in ws:
                w.start()
            mon.start()
            H.wait_until(lambda: all(len(w.acked) >= 20 for w in ws), 30.0, what="writers run")
            for step in (leader_isolated, follower_isolated, bridge, one_way, packet_loss):
                H.log("-- %s" % step.__name__)
                step(sts, ws, mon)
                sts.wait_ready(30.0)
            mon.stop()
            acked, failed = C.stop_writers(ws)
            reads, lost = C.check_acked(sts.live(), [kv for w in ws for kv in w.acked])
            H.log("linearizable reads of acknowledged writes: %d, missing: %d" % (reads, lost))
            C.figures("scenario4-writes", acked=acked, failed=failed, lost=lost)
            sts.delete_all()
        finally:
            mon.stop_flag.set()
            for w in ws:
                w.stop_flag.set()
            sts.print_logs_if_failed()


if __name__ == "__main__":
    P.main(globals())
