"""The sidecar layout as pods in network namespaces (issue 15, scenario 3).

An application StatefulSet `app` whose pods run hacached as a native sidecar (an init container
with restartPolicy Always: it starts before the application and stops after it) and an
application client (tests/k8s/app_client.py) that only talks to its own sidecar on 127.0.0.1
inside the pod: quorum writes with request ids, retried on the same sidecar within 10 s. The
layout comes from k8s/sidecar when it exists, else it is derived from the standalone manifest
(manifests.sidecar_objects). No volume: every new pod's sidecar starts without state.

- the StatefulSet comes up in parallel, every pod ready (the sidecars found each other by the
  application's pod names);
- a rolling update of the application StatefulSet, highest ordinal first, each pod ready before
  the next (new IPs): the application container gets SIGTERM first and exits 0, then the
  sidecar (exit 0);
- zero failed writes in every application incarnation, the other applications keep writing
  during each restart; every acknowledged write reads back from every pod with linearizable
  reads. FIGURES: the longest pause of the other pods' writes per restart, restart -> ready.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients as C  # noqa: E402
import manifests as M  # noqa: E402
import pods as P  # noqa: E402

H = P.H


def app_of(p):
    return [ct for ct in p.containers if not ct.sidecar and not M.is_hacache(ct.spec)][0]


def all_acks(sts):
    acked, failed = [], []
    for p in sts.history:
        a, f, _ = C.app_log(app_of(p))
        acked += [(p.name, k, v, t) for k, v, t in a]
        failed += [(p.name, k, why) for k, why in f]
    return acked, failed


def test_sidecar_rolling_update():
    P.require_namespaces()
    objs = M.sidecar_objects()
    with P.Cluster("sidecar") as cl:
        sts = cl.statefulset(M.one(objs, "StatefulSet"), objs, app=C.app_client)
        c, is_sidecar = sts.hacache_container()
        H.check(is_sidecar and c.get("restartPolicy") == "Always",
                "hacached is a native sidecar (init container, restartPolicy Always)")
        H.check(all(h.split(".")[0].startswith(sts.name + "-") for h in sts.ha_hosts()),
                "HA_HOSTS lists the application's pod names: %r" % sts.ha_hosts())
        try:
            t0 = time.monotonic()
            sts.create_all()
            sts.wait_ready(90.0)
            t_all = time.monotonic() - t0
            ld, term = C.leader(sts.live(), 20.0)
            H.log("parallel start: every pod ready after %.2fs; leader %s term %d" % (
                t_all, ld.name, term))
            for p in sts.live():
                side, app = p.container(), app_of(p)
                H.check("HOSTNAME_OVERWRITE" not in side.env, "no HOSTNAME_OVERWRITE")
                H.check(side.started < app.started, "%s: the sidecar started first" % p.name)
                H.check("127.0.0.1" in " ".join(app.argv) or
                        "127.0.0.1" in app.env.get("HACACHE_ENDPOINTS", ""),
                        "%s: the application talks to loopback (%r)" % (p.name, app.argv))

            def counts():
                return {p.name: len(C.app_log(app_of(p))[0]) for p in sts.live()}
            H.wait_until(lambda: all(n >= 20 for n in counts().values()), 30.0,
                         what="every application writes through its sidecar")

            figs = []
            for i in sorted(sts.pods, reverse=True):
                others = [p for p in sts.live() if p.ordinal != i]
                f = sts.replace(i, why="rolling update of the application")
                H.wait_until(lambda: all(
                    sum(1 for a in C.app_log(app_of(p))[0] if a[2] > f["t_ready"]) >= 5
                    for p in others), 20.0, what="the other applications write after it")
                gaps = [H.max_gap([a[2] for a in C.app_log(app_of(p))[0]], f["t_stop"],
                                  f["t_ready"]) for p in others]
                f["pause_s"] = max(gaps)
                H.check(all(v == 0 for v in f["exit"].values()),
                        "%s: app and sidecar exited 0 (%r)" % (f["pod"], f["exit"]))
                H.check(list(f["exit"])[-1] == c["name"],
                        "%s: the application stopped before the sidecar (%r)" % (
                            f["pod"], list(f["exit"])))
                H.log("%s: SIGTERM->exit (app, then sidecar) %.2fs, new IP %s (was %s), "
                      "->ready %.2fs, longest pause of the other applications' writes %.3fs"
                      % (f["pod"], f["shutdown_s"], f["new_ip"], f["old_ip"], f["ready_s"],
                         f["pause_s"]))
                figs.append(f)
            H.wait_until(lambda: all(n >= 20 for n in counts().values()), 30.0,
                         what="the new application incarnations write")
            C.leader(sts.live(), 20.0)
            # the applications stop (each writes its EXIT line); the sidecars stay for the check
            for p in sts.live():
                H.check_eq(p.stop_container(app_of(p).name), 0, "%s: application exit" % p.name)
            acked, failed = all_acks(sts)
            H.log("application writes acknowledged: %d, failed: %d (%d pod incarnations)" % (
                len(acked), len(failed), len(sts.history)))
            H.check_eq(failed[:10], [], "failed application writes")
            for p in sts.history:
                H.check(C.app_log(app_of(p))[2], "%s (%s): the application exited on SIGTERM"
                        % (p.name, p.uid[:6]))
            reads, lost = C.check_acked(sts.live(), [(k, v) for _, k, v, _ in acked],
                                        cache="app")
            H.log("linearizable reads of acknowledged writes: %d, missing: %d" % (reads, lost))
            for i in sorted(sts.pods):
                shut, codes = sts.delete(i)
                H.check(all(x == 0 for x in codes.values()), "%s exited 0 (%r)" % (
                    sts.pod_name(i), codes))
            C.figures("scenario3-sidecar-rolling-update", all_ready_s=t_all,
                      pauses_s=[f["pause_s"] for f in figs], ready_s=[f["ready_s"] for f in figs],
                      shutdown_s=[f["shutdown_s"] for f in figs], acked=len(acked),
                      failed=len(failed), lost=lost)
        finally:
            if H._soft_failures:
                for p in sts.history[-3:]:
                    for ct in p.containers:
                        print("---- %s/%s ----\n%s" % (p.name, ct.name, ct.log_tail(40)))


if __name__ == "__main__":
    P.main(globals())
