#!/usr/bin/env python3
"""The Kubernetes manifests in k8s/ agree with each other and with hacached.

There is no cluster here, so this checks what can be checked without one:
- every environment variable the StatefulSet sets is a knob `hacached --help` lists;
- HA_HOSTS has one entry per replica, named <statefulset>-<i>.<headless service>, on the
  container's peer port; the headless service publishes not-ready addresses and selects the pods;
- the certificate's dnsNames cover every HA_HOSTS host;
- probes hit /readyz and /healthz on the port of CACHE_HTTP_ADDR; the grace period exceeds
  CACHE_SHUTDOWN_TIMEOUT_MS; Parallel pod management; a PDB with maxUnavailable 1;
- every *_FILE / certificate / data path lies under a volume mount, and the file names are the
  keys the mounted Secret has (cert-manager's tls.crt/tls.key/ca.crt; the token keys from the
  kubectl command in k8s/README.md);
- then, for each pod, `hacached --check-config` with exactly that environment, the mounts
  replaced by a temporary directory holding a certificate made with the Certificate's
  dnsNames: must exit 0. A pod name outside HA_HOSTS must exit 2 (the check can fail).

Needs PyYAML (Debian: python3-yaml)."""

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "k8s")
TIMEOUT = 20

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


def load_docs(yaml):
    docs = []
    for f in sorted(os.listdir(K8S)):
        if f.endswith(".yaml"):
            with open(os.path.join(K8S, f)) as fh:
                docs.extend(d for d in yaml.safe_load_all(fh) if d)
    return docs


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise SystemExit("FAIL want exactly one %s %s, found %d" % (kind, name or "", len(found)))
    return found[0]


def knobs(binary):
    p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    return set(re.findall(r"\(([A-Z][A-Z0-9_]+), default", p.stdout))


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT)


def make_secret_files(d, dns_names):
    """What cert-manager would put in the hacache-tls Secret: tls.crt, tls.key, ca.crt."""
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

    docs = load_docs(yaml)
    sts = one(docs, "StatefulSet")
    svc = one(docs, "Service", sts["spec"]["serviceName"])
    pdb = one(docs, "PodDisruptionBudget")
    cert = one(docs, "Certificate", "hacache-tls")
    pod = sts["spec"]["template"]
    labels = pod["metadata"]["labels"]
    c = one([dict(x, kind="c", metadata={"name": x["name"]}) for x in pod["spec"]["containers"]], "c")
    env = {e["name"]: e["value"] for e in c["env"]}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    replicas = sts["spec"]["replicas"]

    known = knobs(binary)
    check("hacached --help lists knobs", len(known) > 20, "%d knobs" % len(known))
    unknown = sorted(set(env) - known)
    check("every env var is a hacached knob", not unknown, "unknown: %s" % unknown)

    hosts = [h.strip() for h in env["HA_HOSTS"].split(",")]
    want = ["https://%s-%d.%s:%d" % (sts["metadata"]["name"], i, svc["metadata"]["name"], ports["peer"])
            for i in range(replicas)]
    check("HA_HOSTS is one entry per replica on the peer port", hosts == want,
          "%s != %s" % (hosts, want))
    check("headless service", svc["spec"].get("clusterIP") == "None", svc["spec"])
    check("headless service publishes not-ready pods", svc["spec"].get("publishNotReadyAddresses") is True)
    check("service selects the pods", all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()))
    check("PDB maxUnavailable 1", pdb["spec"].get("maxUnavailable") == 1)
    check("PDB selects the pods",
          all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()))
    check("Parallel pod management", sts["spec"].get("podManagementPolicy") == "Parallel")

    names = cert["spec"]["dnsNames"]
    host_names = [re.match(r"https://([^:]+):", h).group(1) for h in hosts]
    check("certificate covers every HA_HOSTS host", set(host_names) <= set(names),
          "%s not in %s" % (host_names, names))
    check("certificate usable both ways",
          {"server auth", "client auth"} <= set(cert["spec"].get("usages", [])))

    http_port = int(env["CACHE_HTTP_ADDR"].rsplit(":", 1)[1])
    check("http port matches CACHE_HTTP_ADDR", ports["http"] == http_port)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = c[probe]["httpGet"]
        port = ports.get(g["port"], g["port"])
        check("%s on %s" % (probe, path), g["path"] == path and port == http_port, g)
    grace = pod["spec"]["terminationGracePeriodSeconds"] * 1000
    check("grace period above CACHE_SHUTDOWN_TIMEOUT_MS",
          grace > int(env.get("CACHE_SHUTDOWN_TIMEOUT_MS", "5000")))

    # paths: which volume each file comes from, and which Secret key
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c["volumeMounts"]}
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    readme = open(os.path.join(K8S, "README.md")).read()
    secret_keys = {"hacache-tls": {"tls.crt", "tls.key", "ca.crt"}}
    # the command, with its backslash-continued lines
    m = re.search(r"kubectl create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)", readme)
    check("k8s/README.md creates the token Secret", m is not None)
    if m:
        secret_keys[m.group(1)] = set(re.findall(r"--from-(?:file|literal)=([\w.-]+)=", m.group(2)))
    path_vars = [k for k in env if k.endswith("_FILE") or k.startswith("CACHE_TLS_") and
                 env[k].startswith("/")] + ["CACHE_DATA_DIR"]
    for k in path_vars:
        path = env[k]
        mount = next((mp for mp in mounts if path == mp or path.startswith(mp + "/")), None)
        if mount is None:
            check("%s under a volume mount" % k, False, path)
            continue
        vname = mounts[mount]
        if k == "CACHE_DATA_DIR":
            check("CACHE_DATA_DIR on a volume claim", vname in claims and path == mount)
            continue
        secret = vols[vname]["secret"]["secretName"]
        key = os.path.relpath(path, mount)
        check("%s is key %s of Secret %s" % (k, key, secret), key in secret_keys.get(secret, set()),
              "keys: %s" % secret_keys.get(secret))

    # hacached --check-config with each pod's environment, mounts redirected to a temp dir
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        for mp in mounts:
            os.makedirs(root + mp, exist_ok=True)
        tls_mount = next(mp for mp, v in mounts.items() if vols.get(v, {}).get("secret", {}).get(
            "secretName") == "hacache-tls")
        make_secret_files(root + tls_mount, names)
        for k in path_vars:
            if k.endswith("_FILE"):
                with open(root + env[k], "w") as f:
                    f.write(os.urandom(32).hex() + "\n")
        base = {k: (root + v if k in path_vars else v) for k, v in env.items()}
        base["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        for i in range(replicas + 1):
            podname = "%s-%d" % (sts["metadata"]["name"], i)
            p = subprocess.run([binary, "--check-config"], env=dict(base, HOSTNAME=podname),
                               capture_output=True, text=True, timeout=TIMEOUT)
            if i < replicas:
                check("--check-config as %s" % podname, p.returncode == 0, p.stderr.strip())
            else:  # one past the replicas: not in HA_HOSTS, must be refused
                check("--check-config refuses %s (not in HA_HOSTS)" % podname,
                      p.returncode == 2 and "HA_HOSTS" in p.stderr, p.stderr.strip())

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
