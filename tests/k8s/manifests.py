"""manifests.py: the rendered Kubernetes manifests and the Kubernetes rules the pod simulation
applies to them, with no namespaces and no pods: rendering (`kubectl kustomize` of a directory
or a YAML file), picking one object, $(VAR) expansion with $$ escapes, resource quantities,
whether a container runs the hacache image, and the sidecar layout.

    import manifests as M
    objs = M.render()                       # the rendered objects of SOURCE (list of dicts)
    sts = M.one(objs, "StatefulSet")
"""

import os
import re
import sys

import netns as N

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The manifests the pods are built from (render(): a kustomize directory, rendered with
# `kubectl kustomize`, or a YAML file): the standalone StatefulSet ...
SOURCE = os.path.join(REPO, "k8s", "base")
# ... and the sidecar layout (an application StatefulSet with hacached as a native sidecar)
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

def sidecar_objects():
    """The rendered sidecar layout (SIDECAR_SOURCE): an application StatefulSet with hacached
    as a native sidecar."""
    return render(SIDECAR_SOURCE)
