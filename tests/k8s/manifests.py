"""manifests.py: the rendered Kubernetes manifests and the Kubernetes rules the pod simulation
applies to them, with no namespaces and no pods: rendering (`kubectl kustomize` of a directory
or a YAML file), picking one object, $(VAR) expansion with $$ escapes, resource quantities,
whether a container runs the hacache image, and the sidecar layout.

    import manifests as M
    objs = M.render()                       # the rendered objects of SOURCE (list of dicts)
    sts = M.one(objs, "StatefulSet")
"""

import copy
import os
import re
import sys

import netns as N

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The manifests the pods are built from: a YAML file, or a kustomize directory (rendered with
# `kubectl kustomize`). Switch to the kustomize base here once k8s/ is laid out that way.
SOURCE = os.path.join(REPO, "k8s", "base")
# The sidecar layout (an application StatefulSet with hacached as a native sidecar). Until it
# exists, sidecar_objects() derives one from SOURCE.
SIDECAR_SOURCE = os.path.join(REPO, "k8s", "sidecar")


# --------------------------------------------------------------------------------------------
# rendering

def load_yaml_docs(text):
    try:
        import yaml
    except ImportError:
        raise AssertionError("PyYAML is missing for %s (apt-get install python3-yaml)" %
                             sys.executable)
    return [d for d in yaml.safe_load_all(text) if d]


def render(source=None):
    """The rendered objects of `source` (default SOURCE): `kubectl kustomize DIR` for a
    directory, the YAML documents of a file otherwise. A List's items are flattened."""
    source = source or SOURCE
    if os.path.isdir(source):
        text = N.run("kubectl", "kustomize", source, timeout=60)
    else:
        with open(source) as f:
            text = f.read()
    out = []
    for d in load_yaml_docs(text):
        if d.get("kind") == "List":
            out.extend(d.get("items") or [])
        else:
            out.append(d)
    return out


def one(objs, kind, name=None):
    got = [o for o in objs if o.get("kind") == kind and
           (name is None or o.get("metadata", {}).get("name") == name)]
    if len(got) != 1:
        raise AssertionError("expected one %s%s in the rendered objects, found %d" % (
            kind, " " + name if name else "", len(got)))
    return got[0]


# --------------------------------------------------------------------------------------------
# Kubernetes rules: $(VAR) expansion, quantities, images

def expand(s, env):
    """Kubernetes' $(VAR) expansion: $(NAME) of a defined variable is replaced, an undefined one
    stays as written, $$ is an escaped $, anything else is kept."""
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "$" or i + 1 >= len(s):
            out.append(c)
            i += 1
            continue
        nx = s[i + 1]
        if nx == "$":
            out.append("$")
            i += 2
        elif nx == "(":
            j = s.find(")", i + 2)
            if j < 0:
                out.append(s[i:])
                break
            name = s[i + 2:j]
            out.append(env[name] if name in env else "$(" + name + ")")
            i = j + 1
        else:
            out.append(s[i:i + 2])
            i += 2
    return "".join(out)


_SUFFIX = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50,
           "Ei": 2 ** 60, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "K": 1e3,
           "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(q):
    """A resource quantity ("768Mi", "100m", "1.5G", 3) as a number."""
    m = re.fullmatch(r"\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(q))
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError("bad quantity %r" % q)
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def is_hacache(c):
    img = (c.get("image") or "").split("@")[0]
    base = img.rsplit("/", 1)[-1].split(":")[0]
    return base == "hacache"


# --------------------------------------------------------------------------------------------
# the sidecar layout

def sidecar_objects(app="app", replicas=3):
    """The rendered sidecar layout: SIDECAR_SOURCE when it exists, else one derived from the
    standalone StatefulSet by the rules of issue 15: an application StatefulSet `app` (an
    example image, replaced by the test's application client) with the hacached container as a
    native sidecar (an init container with restartPolicy Always), HA_HOSTS of the
    application's own pod names (`app-N.app`), no volume claim and no CACHE_DATA_DIR, the
    Secrets and the PodDisruptionBudget of the base. This stand-in keeps the base's HTTP
    address (every address, with the API token) because its readiness probe is kubelet's
    httpGet to the pod IP; the application itself only talks to 127.0.0.1."""
    if os.path.isdir(SIDECAR_SOURCE):
        return render(SIDECAR_SOURCE)
    objs = render()
    base = one(objs, "StatefulSet")
    sts = copy.deepcopy(base)
    sts["metadata"] = {"name": app, "labels": {"app.kubernetes.io/name": app}}
    spec = sts["spec"]
    spec["serviceName"] = app
    spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": {"app.kubernetes.io/name": app}}
    spec["template"]["metadata"] = {"labels": {"app.kubernetes.io/name": app}}
    claims = [t["metadata"]["name"] for t in spec.pop("volumeClaimTemplates", [])]
    pod = spec["template"]["spec"]
    hc = [c for c in pod["containers"] if is_hacache(c)][0]
    side = copy.deepcopy(hc)
    side["restartPolicy"] = "Always"
    env = []
    data_paths = [m["mountPath"] for m in side.get("volumeMounts") or [] if m["name"] in claims]
    peer = [p["containerPort"] for p in side.get("ports") or [] if p.get("name") == "peer"]
    for e in side.get("env") or []:
        if e["name"] == "HA_HOSTS":
            scheme = "https://" if "https://" in e.get("value", "") else ""
            e = {"name": "HA_HOSTS", "value": ",".join(
                "%s%s-%d.%s:%d" % (scheme, app, i, app, peer[0] if peer else 7100)
                for i in range(replicas))}
        elif any((e.get("value") or "").startswith(dp) for dp in data_paths):
            continue
        env.append(e)
    side["env"] = env
    side["volumeMounts"] = [m for m in side.get("volumeMounts") or [] if m["name"] not in claims]
    token_mounts = [m for m in side["volumeMounts"] if "token" in m["name"]]
    api_file = [e.get("value") for e in env if e["name"] == "CACHE_API_TOKEN_FILE"]
    http = [e.get("value") for e in env if e["name"] == "CACHE_HTTP_ADDR"]
    port = int((http[0] if http else "127.0.0.1:8080").rsplit(":", 1)[1])
    app_env = [{"name": "HACACHE_ENDPOINTS", "value": "http://127.0.0.1:%d" % port}]
    if api_file and token_mounts:
        mp = token_mounts[0]["mountPath"].rstrip("/")
        vol = [v for v in pod.get("volumes") or [] if v["name"] == token_mounts[0]["name"]][0]
        key = api_file[0][len(mp) + 1:]
        app_env.append({"name": "HACACHE_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": vol["secret"]["secretName"], "key": key}}})
    pod["initContainers"] = [side]
    pod["containers"] = [{"name": "app", "image": "busybox:1.36",
                          "command": ["sh", "-c", "echo the application; sleep infinity"],
                          "env": app_env}]
    out = [sts, {"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": app, "labels": {"app.kubernetes.io/name": app}},
                 "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                          "selector": {"app.kubernetes.io/name": app}}}]
    for o in objs:
        if o.get("kind") == "PodDisruptionBudget":
            o = copy.deepcopy(o)
            o["metadata"]["name"] = app
            o["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": app}}
            out.append(o)
        elif o.get("kind") in ("Secret", "ConfigMap"):
            out.append(o)
    return out
