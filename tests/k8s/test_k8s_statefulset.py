"""The hacache StatefulSet as pods in network namespaces (issue 15, scenarios 1 and 2).

Pods are built from the rendered manifests (tests/k8s/pods.py: real hostnames, headless-Service
names in each pod's /etc/hosts, the manifests' env, secrets and mounts, no HOSTNAME_OVERWRITE).
Two clients of the Service write continuously (quorum, distinct keys, request ids, retries on
another pod within 5 s) from the node's namespace, reaching pods by their IPs.

- test_statefulset_with_volume: scenario 1, the StatefulSet comes up in parallel and every pod
  becomes ready (each node found itself by its hostname); scenario 2 with the manifest's volume
  claim: a rolling update in StatefulSet order (highest ordinal first, SIGTERM, exit 0 within
  terminationGracePeriodSeconds, a new pod with a new IP, ready before the next), a pod deleted
  and rescheduled empty (its claim deleted too: new IP, no state), a node drain that moves one
  pod (PodDisruptionBudget respected, new IP, the claim follows).
- test_statefulset_without_volume: the same rolling update, delete and drain with the claim
  replaced by an emptyDir (every new pod starts without state).
Checks: zero failed writes; every acknowledged write reads back from every pod with
linearizable reads; every container exits 0 on SIGTERM within the grace period. A FIGURES: line
per scenario (write pause per restart, restart -> ready).
"""

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pods as P  # noqa: E402

H = P.H


def check_identity(sts):
    """Each hacached found itself by its hostname: no HOSTNAME_OVERWRITE, HOSTNAME and the
    UTS hostname are the pod name, /v1/status names the pod's HA_HOSTS entry."""
    for p in sts.live():
        ct = p.container()
        H.check("HOSTNAME_OVERWRITE" not in ct.env, "%s: HOSTNAME_OVERWRITE in the env" % p.name)
        H.check_eq(ct.env.get("HOSTNAME"), p.name, "%s: HOSTNAME" % p.name)
        un = P.run("nsenter", "-t", str(p.pause.pid), "-u", "hostname").strip()
        H.check_eq(un, p.name, "%s: the pod's UTS hostname" % p.name)
        sc = sts.template["spec"].get("securityContext") or {}
        if "runAsUser" in sc:
            uid, gid, groups = P.proc_ids(ct.proc.pid)
            H.check(uid == sc["runAsUser"] and gid == sc.get("runAsGroup", gid) and
                    sc.get("fsGroup", groups[0] if groups else None) in groups,
                    "%s: runs as uid %r gid %r groups %r (securityContext %r)" % (
                        p.name, uid, gid, groups, sc))
        st = P.status(p)
        want = sts.peer_host(p.name)
        H.check(st is not None and st.get("node", "").split(":")[0] == want,
                "%s: /v1/status node %r is its HA_HOSTS entry %s" % (
                    p.name, st and st.get("node"), want))


def check_links(sts, timeout=20.0):
    """Every pod's peers are connected: the names were resolved again after IPs changed."""
    def linked():
        for p in sts.live():
            st = P.status(p)
            if st is None or not st.get("peers") or \
                    not all(x.get("connected") for x in st["peers"]):
                return False
        return True
    H.wait_until(linked, timeout, interval=0.1, what="every peer link up on every pod")


def start_writers(sts, n=2):
    targets = lambda: [p for p in list(sts.pods.values()) if p.running()]  # noqa: E731
    ws = [P.Writer("w%d" % k, targets, first=k) for k in range(n)]
    for w in ws:
        w.start()
    return ws


def writes_after(ws, t, k=5):
    return all(sum(1 for x in list(w.ack_times) if x > t) >= k for w in ws)


def replace_figures(ws, figs):
    out = []
    for f in figs:
        H.wait_until(lambda: writes_after(ws, f["t_ready"]), 20.0,
                     what="writes after %s came back" % f["pod"])
        gap = max(P.max_gap(w.ack_times, f["t_stop"], f["t_ready"]) for w in ws)
        f["pause_s"] = gap
        H.log("%s (%s): SIGTERM->exit %.2fs, exit %r, new IP %s (was %s), ->ready %.2fs, "
              "longest write pause %.3fs" % (f["pod"], f["why"], f["shutdown_s"], f["exit"],
                                             f["new_ip"], f["old_ip"], f["ready_s"], gap))
        H.check(all(c == 0 for c in f["exit"].values()), "%s: every container exited 0 (%r)" % (
            f["pod"], f["exit"]))
        H.check(f["new_ip"] != f["old_ip"], "%s: a new IP" % f["pod"])
        out.append(f)
    return out


def scenario(objs, label, first_start):
    with P.Cluster(label) as cl:
        sts = cl.statefulset(P.one(objs, "StatefulSet"), objs)
        H.check_eq(sts.spec.get("podManagementPolicy"), "Parallel", "podManagementPolicy")
        ws = []
        try:
            t0 = P.time.monotonic()
            sts.create_all()
            # the Service sends clients to ready pods: the clients start with the first one
            H.wait_until(lambda: any(p.ready() for p in sts.pods.values()), 60.0, interval=0.1,
                         what="a first ready pod")
            t_first = P.time.monotonic() - t0
            ws = start_writers(sts)
            sts.wait_ready(60.0)
            t_all = P.time.monotonic() - t0
            ld, term = P.leader(sts.live(), 20.0)
            H.log("parallel start: first pod ready after %.2fs, all %d after %.2fs; leader %s "
                  "term %d" % (t_first, sts.replicas, t_all, ld.name, term))
            check_identity(sts)
            H.wait_until(lambda: all(len(w.acked) >= 20 for w in ws), 30.0, what="writers run")
            if first_start:
                P.figures("scenario1-parallel-start", pods=sts.replicas,
                          first_ready_s=t_first, all_ready_s=t_all)

            figs = sts.rolling_update()
            figs = replace_figures(ws, figs)
            H.check_eq([f["pod"] for f in figs],
                       [sts.pod_name(i) for i in reversed(range(sts.replicas))],
                       "rolling update order (highest ordinal first)")
            check_identity(sts)
            # a pod deleted and rescheduled empty: a follower, then the drain moves the leader
            ld, _ = P.leader(sts.live(), 20.0)
            victim = [p.ordinal for p in sts.live() if p is not ld][0]
            empty = replace_figures(ws, [sts.replace(victim, delete_pvc=True,
                                                     why="deleted, rescheduled empty")])
            ld, _ = P.leader(sts.live(), 20.0)
            drained = replace_figures(ws, [sts.drain(ld.ordinal)])
            check_identity(sts)
            check_links(sts)
            P.leader(sts.live(), 20.0)

            acked, failed = P.stop_writers(ws)
            reads, lost = P.check_acked(sts.live(), [kv for w in ws for kv in w.acked])
            H.log("linearizable reads of acknowledged writes: %d, missing: %d" % (reads, lost))
            P.figures("scenario2-rolling-update-%s" % label,
                      pauses_s=[f["pause_s"] for f in figs],
                      ready_s=[f["ready_s"] for f in figs],
                      shutdown_s=[f["shutdown_s"] for f in figs],
                      empty_pause_s=empty[0]["pause_s"], empty_ready_s=empty[0]["ready_s"],
                      drain_pause_s=drained[0]["pause_s"], drain_ready_s=drained[0]["ready_s"],
                      acked=acked, failed=failed, lost=lost)
            for i in sorted(sts.pods):
                shut, codes = sts.delete(i)
                H.check(all(c == 0 for c in codes.values()), "%s exited 0 (%r)" % (
                    sts.pod_name(i), codes))
        finally:
            for w in ws:
                w.stop_flag.set()
            if H._soft_failures:
                for p in list(sts.pods.values()):
                    for ct in p.containers:
                        print("---- %s/%s ----\n%s" % (p.name, ct.name, ct.log_tail(60)))


def without_volume(objs):
    """The claim template replaced by an emptyDir of the same name: no state survives a pod."""
    out = copy.deepcopy(objs)
    sts = P.one(out, "StatefulSet")
    claims = [t["metadata"]["name"] for t in sts["spec"].pop("volumeClaimTemplates", [])]
    vols = sts["spec"]["template"]["spec"].setdefault("volumes", [])
    for c in claims:
        vols.append({"name": c, "emptyDir": {}})
    return out


def test_statefulset_with_volume():
    P.require_namespaces()
    scenario(P.render(), "volume", True)


def test_statefulset_without_volume():
    P.require_namespaces()
    scenario(without_volume(P.render()), "novolume", False)


if __name__ == "__main__":
    P.main(globals())
