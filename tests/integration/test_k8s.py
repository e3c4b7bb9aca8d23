#!/usr/bin/env python3
"""The Kubernetes manifests in k8s/ render, validate against the Kubernetes schemas, agree with
each other and with hacached; the Dockerfile agrees with them and with the build.

No cluster and no container engine here, so this checks what can be checked without them:

1. Rendering: every kustomization under k8s/ renders with `kubectl kustomize` (kustomize v5);
   `k8s/` itself renders the base.
2. Offline schema validation (tests/k8s/validate.cjs, npm packages pinned in
   tests/k8s/package-lock.json, installed with `npm ci` into the build directory): every
   rendered object validates against the Kubernetes 1.33 OpenAPI schemas (cert-manager's for
   its objects), unknown fields rejected. The committed fixture tests/k8s/fixtures/misspelled.yaml
   (`containerz`, `readinessProbee`) must fail, and so must a wrong type and an unknown kind: the
   check can fail. And it reaches everywhere: a field added to any nested object of any rendered
   object (about 500) is rejected, except inside maps (labels, annotations, selectors,
   resource quantities). Missing tools (kubectl, node, npm, the packages) FAIL the test, they never
   skip it.
3. Both layouts, the standalone StatefulSet (k8s/base) and the sidecar (k8s/sidecar), read from
   the rendered objects: non-root, read-only root filesystem, no privilege escalation, every
   capability dropped, seccomp RuntimeDefault; a NetworkPolicy that selects the pods and lets
   only members reach the peer port; pod anti-affinity; Prometheus annotations on the health
   port; probes on the health port (CACHE_HEALTH_ADDR, not loopback); memory limit =
   4 x CACHE_MAX_MEMORY + 256Mi and requests = limits; HA_HOSTS one entry per replica named
   <statefulset>-<i>.<headless service> on the peer port; a headless Service publishing
   not-ready addresses; Parallel pod management; a PDB with maxUnavailable 1; the grace period
   above CACHE_SHUTDOWN_TIMEOUT_MS; every variable a hacached knob; every *_FILE / TLS path under
   a mount of the Secret key it names; the cert-manager certificate covering every host; and
   `hacached --check-config` passing with each pod's exact environment (mounts redirected to a
   temporary directory) and refusing a pod name outside HA_HOSTS.
   Sidecar only: hacached is a native sidecar (init container, restartPolicy Always), the data
   API on 127.0.0.1, no volume claim and no CACHE_DATA_DIR, a startup probe on /readyz and no
   readiness probe (the choice k8s/sidecar/README.md explains), the application pointed at the
   sidecar's loopback address.
4. Dockerfile: Debian 12 base images, a numeric non-root USER equal to the manifests'
   runAsUser, ENTRYPOINT hacached in exec form, EXPOSE = the ports of the manifests' hacached
   containers, and the runtime packages cover what hacached links (the libraries the build's
   hacached needs, by `readelf -d` and `ldd`, each one's package by `dpkg -S`, within the Depends
   closure of the runtime stage's packages); every -dev package of the build stage has its runtime library in the runtime
   stage unless hacached does not link it (libcurl: the client libraries only).

Needs PyYAML (python3-yaml), kubectl with kustomize v5, node >= 18 and npm (scripts/deps.sh
installs nodejs and npm)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "k8s")
SCHEMA_DIR = os.path.join(ROOT, "tests", "k8s")
TIMEOUT = 60
MI = 1 << 20

# the layouts and what tells them apart
LAYOUTS = {
    "base": {"dir": "k8s/base", "cert_overlay": "k8s/overlays/cert-manager", "sidecar": False,
             "readme": "k8s/README.md"},
    "sidecar": {"dir": "k8s/sidecar", "cert_overlay": "k8s/overlays/sidecar-cert-manager",
                "sidecar": True, "readme": "k8s/sidecar/README.md"},
}
# kustomizations that must exist (others found under k8s/ are rendered too)
REQUIRED_KUSTOMIZATIONS = ["k8s", "k8s/base", "k8s/sidecar", "k8s/overlays/cert-manager",
                           "k8s/overlays/sidecar-cert-manager"]
# -dev packages of the build stage whose libraries hacached does not link, and why
NOT_LINKED_BY_HACACHED = {"libcurl4-openssl-dev": "libcurl is used by the client libraries only"}
SANITIZER_LIBS = re.compile(r"lib(asan|ubsan|lsan|tsan)\.so")

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))
    return cond


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", TIMEOUT)
    return subprocess.run(cmd, **kw)


# ------------------------------------------------------------------------------------------
# quantities

def quantity_bytes(q):
    """Kubernetes memory quantity ("448Mi", "1Gi", "1000M", "512") -> bytes."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    if not m:
        raise ValueError("unsupported quantity %r" % q)
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2)]
    return int(m.group(1)) * mult


def size_bytes(s):
    """hacached size ("64MiB", "2GiB", "512KiB", "1000") -> bytes (the forms the manifests use)."""
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)?", s)
    if not m:
        raise ValueError("unsupported size %r" % s)
    return int(m.group(1)) * {None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]


# ------------------------------------------------------------------------------------------
# 1. rendering

def kustomizations():
    found = []
    for d, _, files in os.walk(K8S):
        if "kustomization.yaml" in files:
            found.append(os.path.relpath(d, ROOT))
    return sorted(found)


def render_all(yaml):
    kubectl = shutil.which("kubectl")
    if not check("kubectl is installed", kubectl is not None,
                 "(kubectl >= 1.29 with kustomize v5; Debian's kubernetes-client 1.20 is too old)"):
        return None
    p = run([kubectl, "version", "--client", "-o", "json"])
    kv = {}
    try:
        kv = json.loads(p.stdout)
    except ValueError:
        pass
    ver = kv.get("clientVersion", {})
    kust = kv.get("kustomizeVersion", "")
    minor = int(re.sub(r"\D.*", "", ver.get("minor", "0")) or 0)
    check("kubectl client >= 1.29 with kustomize v5",
          ver.get("major") == "1" and minor >= 29 and kust.startswith("v5"),
          "client %s.%s kustomize %s" % (ver.get("major"), ver.get("minor"), kust))
    found = kustomizations()
    for k in REQUIRED_KUSTOMIZATIONS:
        check("kustomization %s exists" % k, k in found, found)
    rendered = {}
    for k in found:
        p = run([kubectl, "kustomize", os.path.join(ROOT, k)])
        if check("kubectl kustomize %s" % k, p.returncode == 0, p.stderr.strip()[:2000]):
            rendered[k] = [d for d in yaml.safe_load_all(p.stdout) if d]
            check("%s renders objects" % k, len(rendered[k]) > 0)
    if "k8s" in rendered and "k8s/base" in rendered:
        check("k8s/ renders the base", rendered["k8s"] == rendered["k8s/base"])
    return rendered


# ------------------------------------------------------------------------------------------
# 2. schema validation

def npm_install():
    """node_modules for tests/k8s/package-lock.json in the build directory (npm ci once per
    lockfile). Returns the node_modules path, or None after a FAIL line."""
    node, npm = shutil.which("node") or shutil.which("nodejs"), shutil.which("npm")
    if not check("node and npm are installed", node is not None and npm is not None,
                 "(apt-get install nodejs npm; scripts/deps.sh does it)"):
        return None, None
    p = run([node, "--version"])
    major = int(re.sub(r"^v(\d+).*", r"\1", p.stdout.strip()) or 0) if p.returncode == 0 else 0
    if not check("node >= 18", major >= 18, p.stdout.strip()):
        return None, None
    build = os.environ.get("HC_BUILD_DIR") or os.path.join(ROOT, "build")
    dest = os.path.join(build, "k8s-schema")
    lock = os.path.join(SCHEMA_DIR, "package-lock.json")
    with open(lock, "rb") as f:
        stamp = hashlib.sha256(f.read()).hexdigest()
    stamp_path = os.path.join(dest, ".lock-sha256")
    modules = os.path.join(dest, "node_modules")
    try:
        with open(stamp_path) as f:
            current = f.read().strip() == stamp and os.path.isdir(modules)
    except OSError:
        current = False
    if not current:
        os.makedirs(dest, exist_ok=True)
        for f in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(SCHEMA_DIR, f), os.path.join(dest, f))
        p = run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=dest, timeout=600)
        if not check("npm ci (tests/k8s/package-lock.json)", p.returncode == 0,
                     (p.stdout + p.stderr).strip()[-2000:]):
            return None, None
        with open(stamp_path, "w") as f:
            f.write(stamp + "\n")
    return node, modules


def validate(node, modules, entries):
    """Runs tests/k8s/validate.cjs over [{"source", "object"}]: (exit code, results)."""
    env = dict(os.environ, NODE_PATH=modules)
    p = run([node, os.path.join(SCHEMA_DIR, "validate.cjs")], input=json.dumps(entries), env=env)
    try:
        results = json.loads(p.stdout)
    except ValueError:
        results = None
    if results is None:
        check("validate.cjs answers", False, "exit %d: %s" % (p.returncode, p.stderr[-2000:]))
    return p.returncode, results


# maps, where any key is valid: labels, annotations, label selectors, resource quantities
MAP_FIELDS = {"labels", "annotations", "matchLabels", "limits", "requests"}


def is_map_field(kind, path):
    names = [x for x in path if not isinstance(x, int)]
    return bool(names) and (names[-1] in MAP_FIELDS or
                            (kind == "Service" and names == ["spec", "selector"]))


def object_paths(o, path=()):
    """The paths of every dict inside o (o included)."""
    if isinstance(o, dict):
        yield path
        for k, v in o.items():
            yield from object_paths(v, path + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from object_paths(v, path + (i,))


def schema_checks(yaml, rendered):
    node, modules = npm_install()
    if node is None:
        return
    entries = [{"source": k, "object": o} for k, objs in sorted(rendered.items()) for o in objs]
    rc, results = validate(node, modules, entries)
    if results is None:
        return
    check("every rendered object validated", len(results) == len(entries))
    for r in results:
        check("schema: %s %s/%s" % (r["source"], r["kind"], r["name"]),
              not r["errors"] and not r["unknown"],
              "errors %s unknown fields %s" % (r["errors"], r["unknown"]))
    check("validate.cjs exits 0 on valid objects", rc == 0, rc)

    # the check can fail: the committed misspelled fixture, a wrong type, an unknown kind
    with open(os.path.join(SCHEMA_DIR, "fixtures", "misspelled.yaml")) as f:
        fixture = [d for d in yaml.safe_load_all(f) if d]
    rc, results = validate(node, modules, [{"source": "fixture", "object": o} for o in fixture])
    if results is not None:
        unknown = sorted(u for r in results for u in r["unknown"])
        check("the misspelled fixture fails validation", rc == 1, rc)
        check("... on exactly its two misspelled fields",
              unknown == ["/spec/template/spec/containers/0/readinessProbee",
                          "/spec/template/spec/containerz"], unknown)
    # unknown-field detection reaches every object of the manifests: a field added to any
    # nested object is rejected, except in the maps (labels, selectors, quantities)
    mutated, where = [], []
    for k, objs in sorted(rendered.items()):
        for o in objs:
            for path in object_paths(o):
                m = json.loads(json.dumps(o))
                t = m
                for step in path:
                    t = t[step]
                t["zzUnknownField"] = 1
                mutated.append({"source": k, "object": m})
                where.append((o["kind"], path))
    rc, results = validate(node, modules, mutated)
    if results is not None and check("every mutation validated", len(results) == len(mutated)):
        missed = sorted({"%s %s" % (kind, "/".join("*" if isinstance(x, int) else x for x in path))
                         for (kind, path), r in zip(where, results)
                         if not any(u.endswith("/zzUnknownField") for u in r["unknown"]) and
                         not is_map_field(kind, path)})
        check("an unknown field in any of %d nested objects is rejected (maps aside)" %
              len(mutated), not missed, missed)

    sts = next(o for o in rendered.get("k8s/base", []) if o["kind"] == "StatefulSet")
    wrong_type = json.loads(json.dumps(sts))
    wrong_type["spec"]["replicas"] = "three"
    unknown_kind = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    for what, obj in (("a wrong type (replicas: \"three\")", wrong_type),
                      ("an unknown apiVersion/kind", unknown_kind)):
        rc, results = validate(node, modules, [{"source": "mutated", "object": obj}])
        check("%s fails validation" % what, rc == 1 and results and results[0]["errors"],
              results)


# ------------------------------------------------------------------------------------------
# 3. the layouts

def one(objs, kind, name=None, where=""):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError("%s: want exactly one %s %s, found %d" % (where, kind, name or "",
                                                                      len(found)))
    return found[0]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def knobs(binary):
    p = run([binary, "--help"])
    return set(re.findall(r"\(([A-Z][A-Z0-9_]+), default", p.stdout))


def env_of(container):
    """name -> literal value (valueFrom entries map to None)."""
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def port_of(container, ref):
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    return ports.get(ref, ref)


def hardening(label, pod, labels, objs):
    spec = pod["spec"]
    psc = spec.get("securityContext", {})
    check("%s: pod runAsNonRoot" % label, psc.get("runAsNonRoot") is True)
    check("%s: pod runs as a non-zero uid" % label, psc.get("runAsUser", 0) > 0)
    check("%s: seccomp RuntimeDefault" % label,
          psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    check("%s: no service account token mounted" % label,
          spec.get("automountServiceAccountToken") is False)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        n = "%s/%s" % (label, c["name"])
        check("%s: runAsNonRoot" % n, sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True)
        check("%s: readOnlyRootFilesystem" % n, sc.get("readOnlyRootFilesystem") is True)
        check("%s: allowPrivilegeEscalation false" % n, sc.get("allowPrivilegeEscalation") is False)
        caps = sc.get("capabilities", {})
        check("%s: drops ALL capabilities, adds none" % n,
              "ALL" in caps.get("drop", []) and not caps.get("add"), caps)
        check("%s: not privileged" % n, not sc.get("privileged"))
        check("%s: memory limit set" % n,
              "memory" in c.get("resources", {}).get("limits", {}), c.get("resources"))
    anti = spec.get("affinity", {}).get("podAntiAffinity", {})
    terms = [t.get("podAffinityTerm", t) for t in
             anti.get("preferredDuringSchedulingIgnoredDuringExecution", []) +
             anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])]
    check("%s: pod anti-affinity across nodes on the pods' labels" % label,
          any(t.get("topologyKey") == "kubernetes.io/hostname" and
              selects(t.get("labelSelector", {}).get("matchLabels"), labels) for t in terms), anti)


def network_policy(label, objs, labels, peer_port, open_ports):
    pols = [o for o in objs if o["kind"] == "NetworkPolicy" and
            selects(o["spec"].get("podSelector", {}).get("matchLabels"), labels)]
    if not check("%s: a NetworkPolicy selects the pods" % label, len(pols) == 1, len(pols)):
        return
    spec = pols[0]["spec"]
    check("%s: the policy restricts ingress" % label, "Ingress" in spec.get("policyTypes", []))
    peer_rules = []
    for rule in spec.get("ingress", []):
        ports = [p.get("port") for p in rule.get("ports", [])]
        check("%s: every ingress rule names its ports" % label, bool(ports), rule)
        if peer_port in ports or "peer" in ports:
            peer_rules.append(rule)
    check("%s: one rule opens the peer port" % label, len(peer_rules) == 1, peer_rules)
    for rule in peer_rules:
        srcs = rule.get("from", [])
        check("%s: the peer port only from member pods" % label,
              bool(srcs) and all(set(s) == {"podSelector"} and
                                 selects(s["podSelector"].get("matchLabels"), labels)
                                 for s in srcs), srcs)
        check("%s: the peer rule opens nothing else" % label,
              [p.get("port") for p in rule.get("ports", [])] in ([peer_port], ["peer"]), rule)
    opened = {p.get("port") for r in spec.get("ingress", []) for p in r.get("ports", [])}
    for port in open_ports:
        check("%s: port %s is reachable" % (label, port), port in opened, opened)


def secret_keys_from_readme(readme_path):
    """{secret: keys} from the `kubectl create secret generic` commands of a README."""
    with open(os.path.join(ROOT, readme_path)) as f:
        readme = f.read()
    out = {}
    for m in re.finditer(r"kubectl create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)", readme):
        out[m.group(1)] = set(re.findall(r"--from-(?:file|literal)=([\w.-]+)=", m.group(2)))
    return out


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT)


def make_secret_files(d, dns_names):
    """What cert-manager would put in the TLS Secret: tls.crt, tls.key, ca.crt."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
            "-subj", "/CN=hacache-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-new", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=hacache",
            cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
                "subjectAltName=%s\n" % ",".join("DNS:" + n for n in dns_names))
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", "7", "-days", "30", "-extfile", "ext.cnf", "-out", "tls.crt", cwd=d)


def layout_checks(name, lay, rendered, binary, known):
    objs = rendered.get(lay["dir"])
    certs = rendered.get(lay["cert_overlay"])
    if objs is None or certs is None:
        check("%s: rendered" % name, False)
        return None
    label = name
    sts = one(objs, "StatefulSet", where=label)
    svc = one(objs, "Service", sts["spec"]["serviceName"], where=label)
    pdb = one(objs, "PodDisruptionBudget", where=label)
    pod = sts["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    inits = [c for c in spec.get("initContainers", []) if c["name"] == "hacached"]
    mains = [c for c in spec.get("containers", []) if c["name"] == "hacached"]
    if lay["sidecar"]:
        check("%s: hacached is an init container, not a main one" % label,
              len(inits) == 1 and not mains)
        if not inits:
            return None
        c = inits[0]
        check("%s: native sidecar (restartPolicy Always)" % label, c.get("restartPolicy") == "Always")
        check("%s: an application container next to it" % label, len(spec["containers"]) >= 1)
    else:
        check("%s: hacached is the container" % label, len(mains) == 1 and not inits)
        if not mains:
            return None
        c = mains[0]
    env = env_of(c)
    replicas = sts["spec"]["replicas"]

    hardening(label, pod, labels, objs)
    unknown = sorted(set(env) - known)
    check("%s: every env var is a hacached knob" % label, not unknown, "unknown: %s" % unknown)
    check("%s: no HOSTNAME_OVERWRITE (pods find themselves by HOSTNAME)" % label,
          "HOSTNAME_OVERWRITE" not in env)

    peer = port_of(c, "peer")
    hosts = [h.strip() for h in env["HA_HOSTS"].split(",")]
    want = ["https://%s-%d.%s:%d" % (sts["metadata"]["name"], i, svc["metadata"]["name"], peer)
            for i in range(replicas)]
    check("%s: HA_HOSTS is one entry per replica on the peer port" % label, hosts == want,
          "%s != %s" % (hosts, want))
    check("%s: headless service" % label, svc["spec"].get("clusterIP") == "None")
    check("%s: headless service publishes not-ready pods" % label,
          svc["spec"].get("publishNotReadyAddresses") is True)
    check("%s: headless service selects the pods" % label, selects(svc["spec"]["selector"], labels))
    check("%s: PDB maxUnavailable 1" % label, pdb["spec"].get("maxUnavailable") == 1)
    check("%s: PDB selects the pods" % label,
          selects(pdb["spec"]["selector"]["matchLabels"], labels))
    check("%s: Parallel pod management" % label, sts["spec"].get("podManagementPolicy") == "Parallel")
    grace = spec["terminationGracePeriodSeconds"] * 1000
    check("%s: grace period above CACHE_SHUTDOWN_TIMEOUT_MS" % label,
          grace > int(env.get("CACHE_SHUTDOWN_TIMEOUT_MS") or "5000"))

    # the health listener: probes and Prometheus on the pod IP
    health_addr = env.get("CACHE_HEALTH_ADDR") or ""
    check("%s: CACHE_HEALTH_ADDR on every interface" % label, health_addr.startswith("0.0.0.0:"),
          health_addr)
    health = int(health_addr.rsplit(":", 1)[1]) if ":" in health_addr else None
    check("%s: the container exposes the health port" % label, port_of(c, "health") == health)
    probes = {"livenessProbe": "/healthz",
              "startupProbe" if lay["sidecar"] else "readinessProbe": "/readyz"}
    for probe, path in probes.items():
        g = c.get(probe, {}).get("httpGet", {})
        check("%s: %s on %s at the health port" % (label, probe, path),
              g.get("path") == path and port_of(c, g.get("port")) == health, c.get(probe))
    ann = pod["metadata"].get("annotations", {})
    check("%s: Prometheus scrape annotations on the health port" % label,
          ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(health)
          and ann.get("prometheus.io/path") == "/metrics", ann)

    # memory: the rule of k8s/README.md
    res = c.get("resources", {})
    max_mem = size_bytes(env["CACHE_MAX_MEMORY"])
    limit = quantity_bytes(res.get("limits", {}).get("memory", "0"))
    check("%s: memory limit = 4 x CACHE_MAX_MEMORY + 256Mi" % label,
          limit == 4 * max_mem + 256 * MI, "%d MiB for CACHE_MAX_MEMORY=%s" % (limit // MI,
                                                                                env["CACHE_MAX_MEMORY"]))
    check("%s: memory request = limit" % label,
          quantity_bytes(res.get("requests", {}).get("memory", "0")) == limit, res)
    check("%s: no CPU limit (throttling delays heartbeats)" % label,
          "cpu" not in res.get("limits", {}), res)

    http_addr = env.get("CACHE_HTTP_ADDR", "")
    http_port = int(http_addr.rsplit(":", 1)[1])
    if lay["sidecar"]:
        check("%s: the data API on loopback" % label, http_addr.startswith("127.0.0.1:"), http_addr)
        check("%s: no volume claim" % label, not sts["spec"].get("volumeClaimTemplates"))
        check("%s: no CACHE_DATA_DIR" % label, "CACHE_DATA_DIR" not in env)
        check("%s: no readiness probe on the sidecar (k8s/sidecar/README.md)" % label,
              "readinessProbe" not in c)
        check("%s: the peer and health ports are the only ones hacached exposes" % label,
              sorted(p["containerPort"] for p in c["ports"]) == sorted([peer, health]))
        for app in spec["containers"]:
            aenv = env_of(app)
            check("%s/%s: talks to its sidecar on loopback" % (label, app["name"]),
                  aenv.get("HACACHE_ENDPOINTS") == "http://%s" % http_addr, aenv)
            check("%s/%s: exposes neither the peer nor the API port" % (label, app["name"]),
                  not {p["containerPort"] for p in app.get("ports", [])} & {peer, http_port})
        network_policy(label, objs, labels, peer, [health] + [
            p["containerPort"] for a in spec["containers"] for p in a.get("ports", [])])
    else:
        check("%s: the API on every interface (with a token)" % label,
              http_addr.startswith("0.0.0.0:") and "CACHE_API_TOKEN_FILE" in env, http_addr)
        check("%s: http port matches CACHE_HTTP_ADDR" % label, port_of(c, "http") == http_port)
        network_policy(label, objs, labels, peer, [http_port, health])

    cert = next((o for o in certs if o["kind"] == "Certificate" and
                 o["spec"].get("secretName") in
                 [v.get("secret", {}).get("secretName") for v in spec.get("volumes", [])] and
                 not o["spec"].get("isCA")), None)
    if not check("%s: %s issues the TLS Secret the pods mount" % (label, lay["cert_overlay"]),
                 cert is not None):
        return None
    names = cert["spec"]["dnsNames"]
    host_names = [re.match(r"https://([^:]+):", h).group(1) for h in hosts]
    check("%s: certificate covers every HA_HOSTS host" % label, set(host_names) <= set(names),
          "%s not in %s" % (host_names, names))
    check("%s: certificate usable both ways" % label,
          {"server auth", "client auth"} <= set(cert["spec"].get("usages", [])))

    # paths: which volume each file comes from, and which Secret key
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    secret_keys = secret_keys_from_readme(lay["readme"])
    secret_keys[cert["spec"]["secretName"]] = {"tls.crt", "tls.key", "ca.crt"}
    path_vars = [k for k in env if env[k] and (k.endswith("_FILE") or k.startswith("CACHE_TLS_")
                                               and env[k].startswith("/"))]
    if "CACHE_DATA_DIR" in env:
        path_vars.append("CACHE_DATA_DIR")
    for k in path_vars:
        path = env[k]
        mount = next((mp for mp in mounts if path == mp or path.startswith(mp + "/")), None)
        if not check("%s: %s under a volume mount" % (label, k), mount is not None, path):
            continue
        vname = mounts[mount]
        if k == "CACHE_DATA_DIR":
            check("%s: CACHE_DATA_DIR on a volume claim" % label, vname in claims and path == mount)
            continue
        secret = vols[vname]["secret"]["secretName"]
        key = os.path.relpath(path, mount)
        check("%s: %s is key %s of Secret %s" % (label, k, key, secret),
              key in secret_keys.get(secret, set()), "keys: %s" % secret_keys.get(secret))
    for app in spec["containers"]:
        for e in app.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                check("%s/%s: %s is key %s of Secret %s" % (label, app["name"], e["name"],
                                                            ref["key"], ref["name"]),
                      ref["key"] in secret_keys.get(ref["name"], set()),
                      "keys: %s" % secret_keys.get(ref["name"]))

    # hacached --check-config with each pod's environment, mounts redirected to a temp dir
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        for mp in mounts:
            os.makedirs(root + mp, exist_ok=True)
        tls_mount = next(mp for mp, v in mounts.items() if vols.get(v, {}).get("secret", {}).get(
            "secretName") == cert["spec"]["secretName"])
        make_secret_files(root + tls_mount, names)
        for k in path_vars:
            if k.endswith("_FILE"):
                with open(root + env[k], "w") as f:
                    f.write(os.urandom(32).hex() + "\n")
        base = {k: (root + v if k in path_vars else v) for k, v in env.items() if v is not None}
        base["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        for i in range(replicas + 1):
            podname = "%s-%d" % (sts["metadata"]["name"], i)
            p = run([binary, "--check-config"], env=dict(base, HOSTNAME=podname))
            if i < replicas:
                check("%s: --check-config as %s" % (label, podname), p.returncode == 0,
                      p.stderr.strip())
            else:  # one past the replicas: not in HA_HOSTS, must be refused
                check("%s: --check-config refuses %s (not in HA_HOSTS)" % (label, podname),
                      p.returncode == 2 and "HA_HOSTS" in p.stderr, p.stderr.strip())
    return {"ports": {p["containerPort"] for p in c["ports"]},
            "uid": spec["securityContext"].get("runAsUser")}


# ------------------------------------------------------------------------------------------
# 4. Dockerfile

def dockerfile_stages():
    """[(FROM line, [instructions])] with continuation lines joined."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split()[0].upper()
        if word == "FROM":
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def apt_packages(instructions):
    pkgs = []
    for ins in instructions:
        for m in re.finditer(r"apt-get install ([^&;]+)", ins):
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def package_of(path):
    for cand in (path, os.path.realpath(path), "/usr" + path if not path.startswith("/usr") else
                 path):
        p = run(["dpkg", "-S", cand])
        if p.returncode == 0:
            return p.stdout.split(":")[0].strip()
    return None


def depends_closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        pk = todo.pop()
        if pk in seen:
            continue
        seen.add(pk)
        p = run(["dpkg-query", "-W", "-f", "${Depends},${Pre-Depends}", pk])
        for alt in p.stdout.split(","):
            name = alt.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name:
                todo.append(name)
    return seen


def dockerfile_checks(binary, layouts):
    stages = dockerfile_stages()
    if not check("Dockerfile: a build and a runtime stage", len(stages) == 2, len(stages)):
        return
    (build_from, build), (run_from, runtime) = stages
    check("Dockerfile: build stage on Debian 12", re.match(r"FROM debian:12(\S*)? AS \w+",
                                                           build_from, re.I) is not None, build_from)
    check("Dockerfile: runtime stage on Debian 12 slim",
          re.fullmatch(r"FROM debian:12-slim", run_from) is not None, run_from)
    users = [i.split()[1] for i in runtime if i.upper().startswith("USER ")]
    uid = users[-1].split(":")[0] if users else "root"
    check("Dockerfile: numeric non-root USER", uid.isdigit() and int(uid) > 0, users)
    for name, lay in layouts.items():
        if lay:
            check("Dockerfile: USER is the runAsUser of %s" % name,
                  uid.isdigit() and int(uid) == lay["uid"], (uid, lay["uid"]))
    entry = [i for i in runtime if i.upper().startswith("ENTRYPOINT ")]
    check("Dockerfile: ENTRYPOINT hacached (exec form)",
          len(entry) == 1 and json.loads(entry[0].split(None, 1)[1]) == ["/usr/bin/hacached"],
          entry)
    exposed = {int(p.split("/")[0]) for i in runtime if i.upper().startswith("EXPOSE ")
               for p in i.split()[1:]}
    want = set().union(*(lay["ports"] for lay in layouts.values() if lay))
    check("Dockerfile: EXPOSE = the ports of the manifests' hacached", exposed == want,
          "%s != %s" % (sorted(exposed), sorted(want)))

    build_pkgs, run_pkgs = apt_packages(build), apt_packages(runtime)
    check("Dockerfile: apt packages found", build_pkgs and run_pkgs)
    if not all(shutil.which(t) for t in ("dpkg-query", "ldd", "readelf")):
        check("dpkg, ldd and readelf available (Debian, binutils)", False)
        return
    # the libraries hacached needs itself (readelf), found where ldd resolves them; what they
    # need in turn comes with their packages' Depends. The sanitizer runtimes of the ASan build
    # (and what they pull in) are not the image's business.
    p = run(["readelf", "-d", binary])
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", p.stdout))
    check("readelf lists hacached's libraries", needed, p.stderr.strip())
    p = run(["ldd", binary])
    linked = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m and m.group(1) in needed and not SANITIZER_LIBS.search(m.group(1)):
            linked[m.group(1)] = package_of(m.group(2))
    check("ldd hacached: every library's package is known", linked and all(linked.values()),
          linked)
    closure = depends_closure(run_pkgs)
    for lib, pkg in sorted(linked.items()):
        check("Dockerfile: runtime stage provides %s (%s)" % (lib, pkg), pkg in closure,
              "not in the Depends closure of %s" % run_pkgs)
    linked_pkgs = set(linked.values())
    for dev in (d for d in build_pkgs if d.endswith("-dev")):
        p = run(["dpkg", "-L", dev])
        if not check("build package %s is installed here" % dev, p.returncode == 0):
            continue
        sos = [f for f in p.stdout.splitlines() if re.search(r"/lib/.*\.so$", f)]
        runtime_of = {package_of(os.path.realpath(f)) for f in sos} - {None}
        used = runtime_of & linked_pkgs
        if used:
            check("Dockerfile: %s's runtime library %s in the runtime stage" % (dev, sorted(used)),
                  used <= set(run_pkgs), run_pkgs)
        else:
            check("Dockerfile: %s is not linked by hacached and says why" % dev,
                  dev in NOT_LINKED_BY_HACACHED, "runtime packages %s, hacached links %s" % (
                      sorted(runtime_of), sorted(linked_pkgs)))


# ------------------------------------------------------------------------------------------

def main():
    binary = os.environ.get("HACACHED", "")
    if not binary or not os.access(binary, os.X_OK):
        print("FAIL HACACHED=%r is not an executable hacached binary" % binary)
        return 1
    try:
        import yaml
    except ImportError:
        # the python3 on PATH may not be Debian's (pyenv); Debian's has python3-yaml
        if sys.executable != "/usr/bin/python3" and os.access("/usr/bin/python3", os.X_OK):
            os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)])
        print("FAIL PyYAML is not installed for %s (apt-get install python3-yaml)" % sys.executable)
        return 1

    rendered = render_all(yaml) or {}
    if rendered:
        schema_checks(yaml, rendered)
    known = knobs(binary)
    check("hacached --help lists knobs", len(known) > 20, "%d knobs" % len(known))
    layouts = {}
    for name, lay in LAYOUTS.items():
        try:
            layouts[name] = layout_checks(name, lay, rendered, binary, known)
        except (AssertionError, KeyError, ValueError, OSError) as e:
            check("%s: layout readable" % name, False, repr(e))
            layouts[name] = None
    dockerfile_checks(binary, layouts)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
