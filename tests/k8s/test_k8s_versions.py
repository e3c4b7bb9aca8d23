"""Mixed versions in pods (issue 15, scenario 5): a StatefulSet of the previous release rolled to
the current build and back under load, the way an operator does it on Kubernetes.

The previous release is hacache at the pinned ref of tests/versions/prev.py (its hacached
built once from this repository's history by tests/versions/build_ref.sh), deployed with the
manifest of that same commit (`git show REF:k8s/hacache.yaml`, its image tag mapped to that
binary). The current release is `kubectl kustomize k8s/base` with $HACACHED. Pods come from
tests/k8s/pods.py: real hostnames, headless-Service names, the manifests' env and mounts, a
volume claim per pod that follows it (a real upgrade keeps its volume: the old build needs one).

- The old StatefulSet comes up in parallel; every link reports the old protocol.
- Upgrade: the new manifests are applied (image and template change at once, as with
  `kubectl apply -k`); the RollingUpdate replaces the pods highest ordinal first, each ready
  before the next. After each pod, every pod's /v1/status reports for each peer the protocol
  its link negotiated: the lower of the two builds' maxima; once all run the current build,
  every link reports the current maximum (server/frame.h HC_PROTO_MAX), and the three are
  voters again.
- Rollback: the old manifests applied again, the same rolling update back (supported for a
  cluster the old version founded, which kept its volumes: README "Rolling upgrade and
  downgrade"; the unsupported downgrade, of a cluster the current build founded, is shown in
  tests/integration/test_mixed_versions_build.py).
- Two clients of the Service write throughout (quorum, request ids, retries on another pod):
  zero failed writes; every acknowledged write reads back from every pod (linearizable).
Prints FIGURES: lines (write pause per restarted pod, restart -> ready, protocol versions per
phase), quoted in docs/OPERATIONS.md ("Mixed versions").
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients as C  # noqa: E402
import manifests as M  # noqa: E402
import pods as P  # noqa: E402

H = P.H
sys.path.insert(0, os.path.join(P.REPO, "tests", "versions"))
import prev  # noqa: E402

OLD_MANIFEST = "k8s/hacache.yaml"  # where the manifests lived at prev.REF
OLD_IMAGE = "hacache:prev-" + prev.REF[:12]


def old_objects(tmpdir):
    """The rendered manifests of prev.REF, its hacache image tagged OLD_IMAGE."""
    r = subprocess.run(["git", "-C", P.REPO, "show", "%s:%s" % (prev.REF, OLD_MANIFEST)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise AssertionError("cannot read %s at %s: %s" % (OLD_MANIFEST, prev.REF,
                                                           r.stderr.decode(errors="replace")))
    path = os.path.join(tmpdir, "hacache-%s.yaml" % prev.REF[:12])
    with open(path, "wb") as f:
        f.write(r.stdout)
    objs = M.render(path)
    n = 0
    for c in M.one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"]:
        if M.is_hacache(c):
            c["image"] = OLD_IMAGE
            n += 1
    H.check_eq(n, 1, "one hacache container in the old manifest")
    return objs


def protocol_max(pod):
    """The protocol maximum the hacached container of pod announces in its log."""
    got = None
    for ln in pod.container().log().splitlines():
        if "peer listener started" in ln:
            m = re.search(r'protocol_max["=:\s]+(\d+)', ln)
            if m:
                got = int(m.group(1))
    return got


def link_versions(sts):
    """{pod name: {peer pod name: protocol_version}} of every connected link, or None while a
    pod does not answer."""
    out = {}
    for p in sts.live():
        st = P.status(p)
        if st is None:
            return None
        out[p.name] = {x["node"].split(".")[0]: x["protocol_version"]
                       for x in st.get("peers") or [] if x.get("connected")}
    return out


class Versions:
    def __init__(self, sts):
        self.sts, self.proto, self.seen = sts, {}, []

    def settle(self, phase):
        """Records what each live pod runs (from its log) and waits until every link reports
        the lower of its two ends' maxima."""
        for p in self.sts.live():
            self.proto[p.name] = H.wait_until(lambda: protocol_max(p), 10.0,
                                              what="%s announces its protocol" % p.name)
        names = sorted(self.proto)
        want = {a: {b: min(self.proto[a], self.proto[b]) for b in names if b != a}
                for a in names}
        got = H.wait_until(lambda: (lambda v: v if v == want else None)(link_versions(self.sts)),
                           30.0, what="peers' protocol_version %r (%s)" % (want, phase))
        s = "%s: %s" % (phase, " ".join("%s(v%d)[%s]" % (
            a, self.proto[a], ",".join("%d" % got[a][b] for b in sorted(got[a])))
            for a in names))
        self.seen.append(s)
        H.log("protocol_version per link, " + s)


def voters(sts):
    for p in sts.live():
        st = P.status(p)
        if st is None or sorted(m["role"] for m in st.get("members") or []) != ["voter"] * 3 \
                or st.get("members_committed") is not True:
            return False
    return True


def roll(sts, ws, versions, what, want_proto):
    """The rolling update to the applied template; returns (figures per pod, the pod that led
    before it)."""
    ld, term = C.leader(sts.live(), 20.0)
    H.log("%s: %s leads (term %d)" % (what, ld.name, term))

    def after(i, fig):
        p = sts.pods[i]
        H.check_eq(protocol_max(p), want_proto, "%s: %s runs the expected build" % (what,
                                                                                   p.name))
        versions.settle("%s, %s replaced" % (what, p.name))
    figs = sts.rolling_update(after_each=after)
    return C.replace_figures(ws, figs), ld.name


def test_rolling_upgrade_and_rollback_between_releases():
    P.require_namespaces()
    old_bin = prev.binary(log=H.log)
    new_proto = prev.current_protocol()
    H.check(new_proto > prev.PROTOCOL, "the current build speaks a newer protocol (%d)" %
            new_proto)
    tmp = tempfile.mkdtemp(prefix="hc-k8s-versions-")
    old = old_objects(tmp)
    new = M.render()
    with P.Cluster("versions") as cl:
        cl.images[OLD_IMAGE] = old_bin
        sts = cl.statefulset(M.one(old, "StatefulSet"), old)
        H.check(sts.spec.get("volumeClaimTemplates"), "the old release keeps a volume claim")
        ws = []
        try:
            sts.create_all()
            H.wait_until(lambda: any(p.ready() for p in sts.pods.values()), 60.0,
                         interval=0.1, what="a first ready pod of the old release")
            ws = C.start_writers(sts)
            sts.wait_ready(60.0)
            C.check_identity(sts)
            versions = Versions(sts)
            versions.settle("old release")
            H.check(set(versions.proto.values()) == {prev.PROTOCOL},
                    "the old release runs protocol %d: %r" % (prev.PROTOCOL, versions.proto))
            H.wait_until(lambda: all(len(w.acked) >= 20 for w in ws), 30.0,
                         what="writers run on the old release")

            sts.apply(M.one(new, "StatefulSet"), new)
            up, up_ld = roll(sts, ws, versions, "upgrade", new_proto)
            H.wait_until(lambda: voters(sts), 30.0,
                         what="three voters, committed, on every pod after the upgrade")
            C.check_identity(sts)
            n_up = sum(len(w.acked) for w in ws)
            H.check(all(not w.failures for w in ws), "no failed write during the upgrade: %r"
                    % [w.failures[:3] for w in ws])

            sts.apply(M.one(old, "StatefulSet"), old)
            down, down_ld = roll(sts, ws, versions, "rollback", prev.PROTOCOL)
            H.wait_until(lambda: sum(len(w.acked) for w in ws) >= n_up + 50, 30.0,
                         what="writes go on after the rollback")
            C.leader(sts.live(), 20.0)

            acked, failed = C.stop_writers(ws)
            reads, lost = C.check_acked(sts.live(), [kv for w in ws for kv in w.acked])
            H.log("linearizable reads of acknowledged writes: %d, missing: %d" % (reads, lost))
            C.figures("scenario5-mixed-versions", prev=prev.REF[:7], prev_protocol=prev.PROTOCOL,
                      protocol=new_proto, acked=acked, failed=failed, lost=lost,
                      retries=sum(w.retries for w in ws),
                      upgrade_leader=up_ld, rollback_leader=down_ld,
                      upgrade_pauses_s=[f["pause_s"] for f in up],
                      upgrade_ready_s=[f["ready_s"] for f in up],
                      rollback_pauses_s=[f["pause_s"] for f in down],
                      rollback_ready_s=[f["ready_s"] for f in down])
            print("FIGURES: scenario5 protocol versions (pod(its build)[its links, in pod "
                  "order]): " + "; ".join(versions.seen), flush=True)
            sts.delete_all()
        finally:
            for w in ws:
                w.stop_flag.set()
            sts.print_logs_if_failed()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    P.main(globals())
