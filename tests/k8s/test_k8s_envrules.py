"""The Kubernetes rules tests/k8s/pods.py (with manifests.py) applies when it builds a
container's environment from the rendered manifests (no namespaces needed): $(VAR) expansion
with $$ escapes, env order, fieldRef, secretKeyRef, configMapKeyRef, resourceFieldRef,
envFrom, HOSTNAME like kubelet, mount path rewriting, secret volumes in kubelet's atomic-writer
layout; and that the rendered standalone StatefulSet gives every pod an environment without
HOSTNAME_OVERWRITE."""

import os
import shutil
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients as C  # noqa: E402
import manifests as M  # noqa: E402
import pods as P  # noqa: E402

H = P.H


def test_expansion():
    env = {"A": "1", "EMPTY": ""}
    for s, want in [("$(A)-x", "1-x"), ("$(B)", "$(B)"), ("$$(A)", "$(A)"), ("$A", "$A"),
                    ("$(A", "$(A"), ("a$", "a$"), ("$(EMPTY)z", "z"), ("$$$(A)", "$1"),
                    ("x$(A)$(A)", "x11"), ("$()", "$()")]:
        H.check_eq(M.expand(s, env), want, "expand(%r)" % s)


def test_quantities():
    for q, want in [("768Mi", 768 * 2 ** 20), ("100m", 0.1), ("1G", 1e9), (3, 3), ("2Ki", 2048)]:
        H.check_eq(M.quantity(q), want, "quantity(%r)" % q)


class _StubCluster:
    def __init__(self, d):
        self.dir, self.id, self.lock = d, "hcpods-stub", threading.RLock()
        self.secrets = {}
        self.configmaps = {"cfg": {"LEVEL": "debug", "OTHER": "x"}}
        self.client_ip = "198.18.0.1"
        self.pods = {}

    secret_value = P.Cluster.secret_value
    secret_keys = P.Cluster.secret_keys


def test_container_env():
    d = tempfile.mkdtemp(prefix="hcpods-envrules-")
    try:
        cl = _StubCluster(d)
        cl.secrets["tok"] = {"api": b"s3cret"}
        obj = {"metadata": {"name": "web"}, "spec": {
            "serviceName": "web", "replicas": 2,
            "template": {"metadata": {"labels": {"tier": "db"},
                                      "annotations": {"note": "hi"}},
                         "spec": {"containers": [{
                             "name": "c", "image": "registry.example/hacache:1",
                             "resources": {"limits": {"memory": "768Mi"}},
                             "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}],
                             "env": [
                                 {"name": "POD", "valueFrom": {"fieldRef": {
                                     "fieldPath": "metadata.name"}}},
                                 {"name": "NS", "valueFrom": {"fieldRef": {
                                     "fieldPath": "metadata.namespace"}}},
                                 {"name": "TIER", "valueFrom": {"fieldRef": {
                                     "fieldPath": "metadata.labels['tier']"}}},
                                 {"name": "EARLY", "value": "$(LATE)"},
                                 {"name": "SELF", "value": "$(POD).web.$(NS):7100"},
                                 {"name": "LATE", "value": "x"},
                                 {"name": "TOKEN", "valueFrom": {"secretKeyRef": {
                                     "name": "tok", "key": "api"}}},
                                 {"name": "LVL", "valueFrom": {"configMapKeyRef": {
                                     "name": "cfg", "key": "LEVEL"}}},
                                 {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {
                                     "resource": "limits.memory", "divisor": "1Mi"}}},
                                 {"name": "ESC", "value": "$$(POD)"},
                                 {"name": "CRT", "value": "/etc/x/tls/api"},
                             ],
                             "args": ["--name=$(POD)"],
                             "volumeMounts": [{"name": "tls", "mountPath": "/etc/x/tls"}]}],
                             "volumes": [{"name": "tls", "secret": {"secretName": "tok"}}]}}}}
        sts = P.StatefulSet(cl, obj, [])
        pod = P.Pod(sts, 1)
        env = pod.container_env(obj["spec"]["template"]["spec"]["containers"][0])
        want = {"HOSTNAME": "web-1", "POD": "web-1", "NS": "default", "TIER": "db",
                "EARLY": "$(LATE)", "SELF": "web-1.web.default:7100", "LATE": "x",
                "TOKEN": "s3cret", "LVL": "debug", "MEM_MI": "768", "ESC": "$(POD)",
                "CM_LEVEL": "debug", "CM_OTHER": "x", "CRT": "/etc/x/tls/api"}
        H.check_eq(env, want, "container env")
        H.check_eq(pod._rewrite("/etc/x/tls/tls.crt", [("/etc/x/tls", "/p/vol/tls")]),
                   "/p/vol/tls/tls.crt", "a path under a mount path is rewritten")
        H.check_eq(pod._rewrite("/etc/x/tlsother", [("/etc/x/tls", "/p/vol/tls")]),
                   "/etc/x/tlsother", "a sibling path is not")
        pod._volumes()
        vd = pod.mounts["tls"]
        H.check(os.path.islink(os.path.join(vd, "..data")) and
                os.path.islink(os.path.join(vd, "api")), "atomic-writer layout: %r" % (
                    os.listdir(vd),))
        H.check_eq(open(os.path.join(vd, "api"), "rb").read(), b"s3cret", "secret file")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_rendered_statefulset_env():
    """Every pod of the rendered StatefulSet: HOSTNAME is the pod name, no
    HOSTNAME_OVERWRITE, HA_HOSTS holds the pod's own entry (found by its first DNS label)."""
    objs = M.render()
    d = tempfile.mkdtemp(prefix="hcpods-envrules-")
    try:
        cl = _StubCluster(d)
        sts = P.StatefulSet(cl, M.one(objs, "StatefulSet"), objs)
        c, _ = sts.hacache_container()
        for i in range(sts.replicas):
            pod = P.Pod(sts, i)
            env = pod.container_env(c)
            H.check_eq(env.get("HOSTNAME"), pod.name, "HOSTNAME of %s" % pod.name)
            H.check("HOSTNAME_OVERWRITE" not in env, "%s: no HOSTNAME_OVERWRITE" % pod.name)
            H.check_eq(sts.peer_host(pod.name).split(".")[0], pod.name,
                       "%s finds itself in HA_HOSTS" % pod.name)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_app_log():
    """The application container's output as the sidecar test reads it."""
    d = tempfile.mkdtemp(prefix="hcpods-envrules-")
    try:
        ct = P.Container(None, {"name": "app"}, False)
        ct.log_path = os.path.join(d, "log")
        with open(ct.log_path, "w") as f:
            f.write("ACK app-0-1 v-app-0-1 12.5\nFAIL app-0-2 status-503\nTraceback x\n"
                    "EXIT 1 1\n")
        H.check_eq(C.app_log(ct), ([("app-0-1", b"v-app-0-1", 12.5)],
                                   [("app-0-2", "status-503")], True), "app_log")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        import yaml  # noqa: F401
    except ImportError:  # Debian's python3 has python3-yaml (the one on PATH may be pyenv's)
        if sys.executable != "/usr/bin/python3" and os.access("/usr/bin/python3", os.X_OK):
            os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)])
    H.run(globals())
