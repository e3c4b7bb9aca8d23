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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients as C  # noqa: E402
import manifests as M  # noqa: E402
import pods as P  # noqa: E402

H = P.H


def scenario(objs, label, first_start):
    with P.Cluster(label) as cl:
        sts = cl.statefulset(M.one(objs, "StatefulSet"), objs)
        H.check_eq(sts.spec.get("podManagementPolicy"), "Parallel", "podManagementPolicy")
        ws = []
        try:
            t0 = time.monotonic()
            sts.create_all()
            # the Service sends clients to ready pods: the clients start with the first one
            H.wait_until(lambda: any(p.ready() for p in sts.pods.values()), 60.0, interval=0.1,
                         what="a first ready pod")
            t_first = time.monotonic() - t0
            ws = C.start_writers(sts)
            sts.wait_ready(60.0)
            t_all = time.monotonic() - t0
            ld, term = C.leader(sts.live(), 20.0)
            H.log("parallel start: first pod ready after %.2fs, all %d after %.2fs; leader %s "
                  "term %d" % (t_first, sts.replicas, t_all, ld.name, term))
            C.check_identity(sts)
            H.wait_until(lambda: all(len(w.acked) >= 20 for w in ws), 30.0, what="writers run")
            if first_start:
                C.figures("scenario1-parallel-start", pods=sts.replicas,
                          first_ready_s=t_first, all_ready_s=t_all)

            figs = sts.rolling_update()
            figs = C.replace_figures(ws, figs)
            H.check_eq([f["pod"] for f in figs],
                       [sts.pod_name(i) for i in reversed(range(sts.replicas))],
                       "rolling update order (highest ordinal first)")
            C.check_identity(sts)
            # a pod deleted and rescheduled empty: a follower, then the drain moves the leader
            ld, _ = C.leader(sts.live(), 20.0)
            victim = [p.ordinal for p in sts.live() if p is not ld][0]
            empty = C.replace_figures(ws, [sts.replace(victim, delete_pvc=True,
                                                       why="deleted, rescheduled empty")])
            ld, _ = C.leader(sts.live(), 20.0)
            drained = C.replace_figures(ws, [sts.drain(ld.ordinal)])
            C.check_identity(sts)
            C.check_links(sts)
            C.leader(sts.live(), 20.0)

            acked, failed = C.stop_writers(ws)
            reads, lost = C.check_acked(sts.live(), [kv for w in ws for kv in w.acked])
            H.log("linearizable reads of acknowledged writes: %d, missing: %d" % (reads, lost))
            C.figures("scenario2-rolling-update-%s" % label,
                      pauses_s=[f["pause_s"] for f in figs],
                      ready_s=[f["ready_s"] for f in figs],
                      shutdown_s=[f["shutdown_s"] for f in figs],
                      empty_pause_s=empty[0]["pause_s"], empty_ready_s=empty[0]["ready_s"],
                      drain_pause_s=drained[0]["pause_s"], drain_ready_s=drained[0]["ready_s"],
                      acked=acked, failed=failed, lost=lost)
            sts.delete_all()
        finally:
            for w in ws:
                w.stop_flag.set()
            sts.print_logs_if_failed()


def without_volume(objs):
    """The claim template replaced by an emptyDir of the same name: no state survives a pod."""
    out = copy.deepcopy(objs)
    sts = M.one(out, "StatefulSet")
    claims = [t["metadata"]["name"] for t in sts["spec"].pop("volumeClaimTemplates", [])]
    vols = sts["spec"]["template"]["spec"].setdefault("volumes", [])
    for c in claims:
        vols.append({"name": c, "emptyDir": {}})
    return out


def test_statefulset_with_volume():
    P.require_namespaces()
    scenario(M.render(), "volume", True)


def test_statefulset_without_volume():
    P.require_namespaces()
    scenario(without_volume(M.render()), "novolume", False)


if __name__ == "__main__":
    P.main(globals())
