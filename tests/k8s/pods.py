"""pods.py: Kubernetes pods simulated in network namespaces, from the rendered manifests.

    import manifests as M
    import pods as P
    objs = M.render()                       # the rendered objects (list of dicts)
    with P.Cluster("t1") as k:              # a pod network of its own
        sts = k.statefulset(M.one(objs, "StatefulSet"), objs)
        sts.create_all()                    # podManagementPolicy Parallel: every pod at once
        sts.wait_ready(60)
        sts.rolling_update()                # highest ordinal first, each ready before the next

What a pod is here
  * its own network namespace (`ip netns add`), with `eth0` (a veth) on a bridge that lives in a
    namespace of the test's own (no interface, address or route of the host is touched), one
    IP per pod from 198.18.0.0/16 (RFC 2544's benchmarking range, never routed), a new IP
    each time a pod is created (a rescheduled or drained pod gets a new one, like on a
    cluster);
  * a "pause" process (`unshare --uts --mount` inside `ip netns exec`) that holds the pod's UTS
    namespace with the real hostname (the pod name, `hacache-0`) and a mount namespace where
    /etc/hosts and /etc/resolv.conf are the pod's own files; every container of the pod joins
    its namespaces with nsenter (as a container joins the pause container's);
  * name resolution the way the headless Service does it: every pod's /etc/hosts lists
    `<pod>.<service>`, `<pod>.<service>.<ns>`, `<pod>.<service>.<ns>.svc` and
    `<pod>.<service>.<ns>.svc.cluster.local` of every pod that has an IP, ready or not
    (publishNotReadyAddresses), and its own name like kubelet's file. When a pod appears or
    goes, the test writes new files and bind-mounts each over /etc/hosts in the running pods'
    mount namespaces (a mount is atomic: a lookup sees the old or the new file, never a torn
    one). /etc/resolv.conf points at 127.0.0.1 inside the pod, where nothing listens, so a
    name that is not (yet) published fails at once and no query leaves the pod network;
  * the environment of each container as kubelet builds it: `value`, `valueFrom.fieldRef`
    (metadata.name/namespace/uid/labels/annotations, status.podIP(s), status.hostIP,
    spec.nodeName, spec.serviceAccountName), `secretKeyRef`, `configMapKeyRef`,
    `resourceFieldRef`, `envFrom`, `$(VAR)` expansion (and `$$` escapes) in env, command and
    args, HOSTNAME set to the pod name. HOSTNAME_OVERWRITE is never set: hacached finds itself
    from its hostname;
  * volumes: secret, configMap and projected (kubelet's atomic-writer layout: `..data` a symlink
    to a timestamped directory, each key a symlink through it), emptyDir (gone with the pod),
    persistentVolumeClaim and volumeClaimTemplates (a directory per claim that outlives the pod
    unless the test deletes it). Mount paths are mapped by REWRITING PATHS: a volume mounted
    at /etc/hacache/tls lives in <pod dir>/vol/<name>, and every env value, command and arg
    that is the mount path or below it is rewritten to the pod's directory (longest mount
    path first). The host's /etc and /var are never touched, so no mount point has to be
    created there;
  * securityContext runAsUser/runAsGroup/fsGroup (setpriv; fsGroup as the supplementary group
    and the group of writable volumes), allowPrivilegeEscalation: false (no_new_privs);
  * images: an image named `hacache` (any registry or tag) runs $HACACHED (its entrypoint, as in
    the Dockerfile; a `command` naming hacached or hacachectl maps to the built binaries). Any
    other image is an application container: the test supplies what runs in it (`app=`);
  * probes as kubelet runs them: httpGet to the pod IP (named ports resolved), tcpSocket, exec
    inside the pod's namespaces; a pod is ready when every container with a readinessProbe
    (restartable init containers included) passes it;
  * termination like kubelet's: SIGTERM to the application containers, then to the sidecars
    (init containers with restartPolicy Always) in reverse order, SIGKILL after
    terminationGracePeriodSeconds (a check fails then); native sidecars start first, each
    once its process runs (and its startupProbe passes, if any).

The test process itself joins a "client" namespace on the same bridge (the node's view:
kubelet's probes and the clients of the Services), so every socket it opens reaches pods by
their IPs and nothing else. Names carry a prefix with the test's pid; leftovers of an earlier
run whose process is gone (processes in them, namespaces) are removed at the start, and
everything is removed at the end, on failure too (try/finally and atexit).

Here: the pod network (Cluster), StatefulSet, Pod and Container, reaching a pod's API
(pod_request, status) and running a test file (require_namespaces, main). Beside it:
manifests.py (rendering, $(VAR) expansion, quantities, the sidecar layout), netns.py (the
namespace plumbing, no pods) and clients.py (the load and the checks against the pods).
"""

import atexit
import base64
import copy
import os
import re
import secrets as _secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness as H  # noqa: E402
import manifests as M  # noqa: E402
import netns as N  # noqa: E402

NAMESPACE = "default"
CLUSTER_DOMAIN = "cluster.local"


# --------------------------------------------------------------------------------------------
# small helpers

def hacachectl():
    b = os.environ.get("HACACHECTL")
    if not b:
        b = os.path.join(os.path.dirname(H.binary()), "hacachectl")
    return b


def _label_ref(path, what, meta):
    m = re.fullmatch(r"metadata\.%s\['([^']*)'\]" % what, path)
    return None if not m else (meta.get(what) or {}).get(m.group(1), "")


# --------------------------------------------------------------------------------------------
# the pod network

class Cluster:
    """A pod network: a bridge in a namespace of its own, a client namespace the test process
    joins, secrets, and the DNS records of the pods. Use as a context manager."""

    def __init__(self, tag="k8s"):
        self.tag = re.sub(r"[^a-z0-9]", "", tag.lower())[:8] or "k8s"
        self.id = "%s-%d-%s" % (N.PREFIX, os.getpid(), _secrets.token_hex(2))
        self.dir = tempfile.mkdtemp(prefix=self.id + "-")
        os.chmod(self.dir, 0o755)
        self.net_ns = self.id + "-net"
        self.client_ns = self.id + "-client"
        self.namespaces = []
        self.pods = {}  # name -> Pod (live ones)
        self.secrets = {}  # name -> {key: bytes}
        self.configmaps = {}  # name -> {key: str}
        self.ip_seq = 10
        self.veth_seq = 0
        self.lock = threading.RLock()
        self.hosts_gen = 0
        self.closed = False
        self.certs_dir = None
        self.statefulsets = []
        # image -> the hacached binary that "image" runs; any other hacache image runs
        # $HACACHED (the build under test). A test that runs an older version maps its tag here.
        self.images = {}
        atexit.register(self.close)
        try:
            self._up()
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _add_ns(self, name):
        N.run("ip", "netns", "add", name)
        self.namespaces.append(name)
        N.run("ip", "-n", name, "link", "set", "lo", "up")

    def _up(self):
        N.cleanup_leftovers()
        self._add_ns(self.net_ns)
        N.run("ip", "-n", self.net_ns, "link", "add", "br0", "type", "bridge")
        N.run("ip", "-n", self.net_ns, "link", "set", "br0", "up")
        self._add_ns(self.client_ns)
        self.client_ip = "%s.0.1" % N.NET
        self._plug(self.client_ns, self.client_ip)
        # the test process is the node: kubelet's probes and the Service clients
        N.setns_net("/run/netns/" + self.client_ns)

    def _plug(self, ns, ip):
        """A veth pair: eth0 in ns with ip/16, the other end on the bridge. Returns the bridge
        side's name."""
        with self.lock:
            self.veth_seq += 1
            v = "v%d" % self.veth_seq
        N.run("ip", "-n", self.net_ns, "link", "add", v, "type", "veth", "peer", "name", "eth0",
            "netns", ns)
        N.run("ip", "-n", self.net_ns, "link", "set", v, "master", "br0", "up")
        N.run("ip", "-n", ns, "addr", "add", ip + "/16", "dev", "eth0")
        N.run("ip", "-n", ns, "link", "set", "eth0", "up")
        return v

    def new_ip(self):
        with self.lock:
            self.ip_seq += 1
            n = self.ip_seq
        return "%s.%d.%d" % (N.NET, n // 250, n % 250 + 2)

    # -- secrets

    def dev_certs(self, hosts):
        """Certificates from scripts/dev-certs.sh --hosts (one per host, one CA); made once per
        cluster. Returns the directory."""
        if self.certs_dir is None:
            d = os.path.join(self.dir, "certs")
            N.run("bash", os.path.join(REPO, "scripts", "dev-certs.sh"), d, "--hosts",
                ",".join(hosts), timeout=60)
            self.certs_dir = d
        return self.certs_dir

    def secret_value(self, secret, key, pod):
        """The value of a Secret's key for `pod`, created on first use the way the README tells
        an operator to: `ca.crt` is the dev CA, `tls.crt` / `tls.key` (and any *.crt / *.key)
        the pod's certificate and key from dev-certs.sh (one certificate per peer name, the
        one whose first DNS label is the pod's name: a cert-manager CSI-style per-pod
        secret), anything else a random 32-byte hex token shared by every pod."""
        with self.lock:
            data = self.secrets.setdefault(secret, {})
            if key in data:
                return data[key]
            if key == "ca.crt" or key.endswith(".crt") or key.endswith(".key"):
                d = pod.sts.certs()
                if key == "ca.crt":
                    return open(os.path.join(d, "ca.crt"), "rb").read()
                host = pod.sts.peer_host(pod.name)
                ext = ".key" if key.endswith(".key") else ".crt"
                return open(os.path.join(d, host + ext), "rb").read()
            data[key] = _secrets.token_hex(32).encode()  # like kubectl --from-literal
            return data[key]

    def secret_keys(self, secret):
        with self.lock:
            return list(self.secrets.get(secret, {}).keys())

    # -- DNS

    def publish(self):
        """Writes every live pod's /etc/hosts anew and mounts it over the old one."""
        with self.lock:
            self.hosts_gen += 1
            gen = self.hosts_gen
            recs = []
            for p in self.pods.values():
                if p.ip and p.subdomain:
                    base = "%s.%s" % (p.hostname, p.subdomain)
                    names = ["%s.%s.svc.%s" % (base, p.namespace, CLUSTER_DOMAIN),
                             "%s.%s.svc" % (base, p.namespace), "%s.%s" % (base, p.namespace),
                             base]
                    recs.append((p.ip, names))
            for p in list(self.pods.values()):
                if p.pause is not None and p.pause.poll() is None:
                    p.write_hosts(recs, gen, remount=True)
            self.records = recs

    def records_now(self):
        with self.lock:
            return list(getattr(self, "records", []))

    # -- objects

    def statefulset(self, obj, objs=(), app=None, name=None):
        """A StatefulSet simulated from its rendered object. objs: the other rendered objects
        (Secrets, ConfigMaps, the PodDisruptionBudget). app(pod, container) -> argv for an
        application container (an image other than hacache)."""
        sts = StatefulSet(self, obj, objs, app=app)
        self.statefulsets.append(sts)
        return sts

    def close(self):
        if self.closed:
            return
        self.closed = True
        for sts in self.statefulsets:
            for p in list(sts.pods.values()):
                try:
                    p.destroy(kill=True)
                except Exception as e:
                    print("    cleanup of pod %s: %s" % (p.name, e), flush=True)
        for ns in reversed(self.namespaces):
            for pid in N.run("ip", "netns", "pids", ns, check=False).split():
                if pid == str(os.getpid()):
                    continue  # the test process itself sits in the client namespace
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            N.run("ip", "netns", "del", ns, check=False)
        self.namespaces = []
        if os.environ.get("HC_K8S_KEEP"):
            print("    kept %s" % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# a StatefulSet and its pods

class StatefulSet:
    def __init__(self, cl, obj, objs, app=None):
        self.cl = cl
        self.obj = copy.deepcopy(obj)
        self.name = obj["metadata"]["name"]
        self.spec = self.obj["spec"]
        self.template = self.spec["template"]
        self.replicas = int(self.spec.get("replicas", 1))
        self.service = self.spec.get("serviceName")
        self.namespace = obj["metadata"].get("namespace", NAMESPACE)
        self.app = app
        self.pods = {}  # ordinal -> Pod
        self.pvc = {}  # (claim, ordinal) -> dir
        self.pdb = None
        self.restarts = []  # figures of every pod replacement
        self.history = []  # every pod ever created, in order
        self._take_objects(objs)

    def apply(self, obj, objs=()):
        """`kubectl apply` of a new version of this StatefulSet (and its Secrets, ConfigMaps,
        PodDisruptionBudget): the template changes, the running pods keep the spec they were
        created from, and every pod created afterwards (rolling_update, replace) gets the new
        one. Name, serviceName and selector must stay (Kubernetes refuses to change them)."""
        for k in ("serviceName", "selector"):
            if obj["spec"].get(k) != self.spec.get(k):
                raise AssertionError("StatefulSet %s: spec.%s cannot change (%r -> %r)" % (
                    self.name, k, self.spec.get(k), obj["spec"].get(k)))
        if obj["metadata"]["name"] != self.name:
            raise AssertionError("apply of StatefulSet %s to %s" % (obj["metadata"]["name"],
                                                                   self.name))
        self.obj = copy.deepcopy(obj)
        self.spec = self.obj["spec"]
        self.template = self.spec["template"]
        self.replicas = int(self.spec.get("replicas", 1))
        self._take_objects(objs)

    def _take_objects(self, objs):
        sel = (self.spec.get("selector") or {}).get("matchLabels") or {}
        cl = self.cl
        for o in objs:
            k = o.get("kind")
            if k == "Secret":
                d = {kk: base64.b64decode(v) for kk, v in (o.get("data") or {}).items()}
                d.update({kk: v.encode() for kk, v in (o.get("stringData") or {}).items()})
                cl.secrets.setdefault(o["metadata"]["name"], {}).update(d)
            elif k == "ConfigMap":
                cl.configmaps.setdefault(o["metadata"]["name"], {}).update(o.get("data") or {})
            elif k == "PodDisruptionBudget":
                ml = (o["spec"].get("selector") or {}).get("matchLabels") or {}
                if ml and all(sel.get(a) == b for a, b in ml.items()):
                    self.pdb = o

    # -- names

    def pod_name(self, i):
        return "%s-%d" % (self.name, i)

    def hacache_container(self):
        """The hacached container (a sidecar or a container): (spec, is_sidecar)."""
        for c in self.template["spec"].get("initContainers") or []:
            if M.is_hacache(c):
                return c, True
        for c in self.template["spec"]["containers"]:
            if M.is_hacache(c):
                return c, False
        raise AssertionError("no hacache container in StatefulSet %s" % self.name)

    def ha_hosts(self):
        c, _ = self.hacache_container()
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        v = env.get("HA_HOSTS") or ""
        out = []
        for ent in v.split(","):
            ent = ent.strip()
            ent = re.sub(r"^[a-z]+://", "", ent)
            if ent:
                out.append(ent.rsplit(":", 1)[0])
        return out

    def peer_host(self, pod_name):
        for h in self.ha_hosts():
            if h.split(".")[0] == pod_name:
                return h
        raise AssertionError("no HA_HOSTS entry for pod %s in %r" % (pod_name, self.ha_hosts()))

    def certs(self):
        return self.cl.dev_certs(self.ha_hosts())

    # -- lifecycle

    def create(self, i, wait=False):
        p = Pod(self, i)
        self.pods[i] = p
        self.history.append(p)
        p.start()
        if wait:
            p.wait_ready()
        return p

    def create_all(self):
        """podManagementPolicy Parallel: every pod at once (OrderedReady: one by one, each
        ready before the next)."""
        parallel = self.spec.get("podManagementPolicy", "OrderedReady") == "Parallel"
        for i in range(self.replicas):
            self.create(i, wait=not parallel)

    def live(self):
        return [p for p in self.pods.values() if p.running()]

    def ready_pods(self):
        return [p for p in self.live() if p.ready()]

    def wait_ready(self, timeout=60.0):
        """Every replica exists and passes its readiness probes; returns seconds waited."""
        t0 = time.monotonic()

        def ok():
            for p in self.pods.values():
                for ct in p.containers:
                    if not ct.alive():
                        raise AssertionError("%s: container %s exited with %r:\n%s" % (
                            p.name, ct.name, ct.proc.poll(), ct.log_tail()))
            return len(self.pods) == self.replicas and all(p.ready() for p in self.pods.values())
        H.wait_until(ok, timeout, interval=0.1, what="every pod of %s ready" % self.name)
        return time.monotonic() - t0

    def delete(self, i, delete_pvc=False):
        """Deletes pod i (graceful termination); delete_pvc also deletes its claims, so the
        next pod starts empty. Returns (seconds to exit, exit codes)."""
        p = self.pods[i]
        p.terminating = True  # clients still reach it until it exits, as through a Service
        r = p.terminate()
        del self.pods[i]
        p.destroy()
        if delete_pvc:
            for (claim, o), d in list(self.pvc.items()):
                if o == i:
                    shutil.rmtree(d, ignore_errors=True)
                    del self.pvc[(claim, o)]
        return r

    def replace(self, i, delete_pvc=False, ready_timeout=90.0, why="update"):
        """Deletes pod i and creates it again (new IP), waits until it is ready. Returns a dict
        of figures."""
        old_ip = self.pods[i].ip
        t0 = time.monotonic()
        shut, codes = self.delete(i, delete_pvc)
        t1 = time.monotonic()
        p = self.create(i)
        p.wait_ready(ready_timeout)
        t2 = time.monotonic()
        fig = {"pod": p.name, "why": why, "t_stop": t0, "t_ready": t2, "shutdown_s": shut,
               "ready_s": t2 - t1, "old_ip": old_ip, "new_ip": p.ip, "exit": codes}
        self.restarts.append(fig)
        return fig

    def rolling_update(self, before_each=None, after_each=None):
        """RollingUpdate in StatefulSet order: highest ordinal first, each pod deleted, created
        again and ready before the next. Returns the figures per pod."""
        out = []
        for i in sorted(self.pods, reverse=True):
            if before_each:
                before_each(i)
            out.append(self.replace(i, why="rolling update"))
            if after_each:
                after_each(i, out[-1])
        return out

    def delete_all(self):
        """Deletes every pod (graceful termination); each container must exit 0."""
        for i in sorted(self.pods):
            shut, codes = self.delete(i)
            H.check(all(c == 0 for c in codes.values()), "%s exited 0 (%r)" % (
                self.pod_name(i), codes))

    def print_logs_if_failed(self):
        """After a failed check: the tail of every live container's log."""
        if H._soft_failures:
            for p in list(self.pods.values()):
                for ct in p.containers:
                    print("---- %s/%s ----\n%s" % (p.name, ct.name, ct.log_tail(60)))

    def pdb_allows_eviction(self):
        """The PodDisruptionBudget (maxUnavailable / minAvailable) allows one more
        disruption."""
        if self.pdb is None:
            return True
        sp = self.pdb["spec"]
        healthy = len(self.ready_pods())
        unavailable = self.replicas - healthy
        if "maxUnavailable" in sp:
            mu = sp["maxUnavailable"]
            mu = int(self.replicas * int(str(mu).rstrip("%")) / 100) if "%" in str(mu) else mu
            return unavailable + 1 <= int(mu)
        if "minAvailable" in sp:
            ma = sp["minAvailable"]
            ma = -(-self.replicas * int(str(ma).rstrip("%")) // 100) if "%" in str(ma) else ma
            return healthy - 1 >= int(ma)
        return True

    def drain(self, i, ready_timeout=90.0, wait_budget=60.0):
        """A node drain that moves pod i: eviction waits until the PodDisruptionBudget allows
        it, then the pod is deleted and rescheduled elsewhere (a new IP; its claim follows it,
        as a network volume would)."""
        H.wait_until(self.pdb_allows_eviction, wait_budget, interval=0.1,
                     what="the PodDisruptionBudget allows evicting %s" % self.pod_name(i))
        return self.replace(i, ready_timeout=ready_timeout, why="drain")

    def pvc_dir(self, claim, i):
        d = self.pvc.get((claim, i))
        if d is None:
            d = os.path.join(self.cl.dir, "pvc", "%s-%s" % (claim, self.pod_name(i)))
            os.makedirs(d, exist_ok=True)
            self.pvc[(claim, i)] = d
        return d


class Container:
    def __init__(self, pod, spec, sidecar):
        self.pod, self.spec, self.sidecar = pod, spec, sidecar
        self.name = spec["name"]
        self.proc = None
        self.log_path = None
        self._log = None
        self.env = {}
        self.argv = []
        self.exit_code = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def log_tail(self, n=80):
        t = self.log().splitlines()
        return "\n".join(t[-n:])


class Pod:
    def __init__(self, sts, ordinal):
        self.sts = sts
        self.cl = sts.cl
        self.ordinal = ordinal
        self.name = sts.pod_name(ordinal)
        self.hostname = self.name
        self.subdomain = sts.service
        self.namespace = sts.namespace
        self.spec = copy.deepcopy(sts.template["spec"])
        self.meta = copy.deepcopy(sts.template.get("metadata") or {})
        self.meta.setdefault("labels", {})["statefulset.kubernetes.io/pod-name"] = self.name
        self.meta["labels"]["apps.kubernetes.io/pod-index"] = str(ordinal)
        self.uid = _secrets.token_hex(8)
        self.ns = "%s-p%s" % (self.cl.id, _secrets.token_hex(3))
        self.dir = os.path.join(self.cl.dir, "pods", "%s-%s" % (self.name, self.uid[:6]))
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.ip = None
        self.pause = None
        self.containers = []
        self.mounts = {}  # volume name -> host dir
        self.terminating = False

    # -- setup

    def _volumes(self):
        sc = self.spec.get("securityContext") or {}
        fsgroup = sc.get("fsGroup")
        vols = {v["name"]: v for v in self.spec.get("volumes") or []}
        claims = {t["metadata"]["name"] for t in self.sts.spec.get("volumeClaimTemplates") or []}
        names = set()
        for c in (self.spec.get("initContainers") or []) + self.spec["containers"]:
            for m in c.get("volumeMounts") or []:
                names.add(m["name"])
        for name in sorted(names):
            v = vols.get(name)
            if v is None and name in claims:
                d = self.sts.pvc_dir(name, self.ordinal)
                self._writable(d, fsgroup)
            elif v is None:
                raise AssertionError("%s: volumeMount %s has no volume" % (self.name, name))
            elif "persistentVolumeClaim" in v:
                d = self.sts.pvc_dir(v["persistentVolumeClaim"]["claimName"], self.ordinal)
                self._writable(d, fsgroup)
            elif "emptyDir" in v:
                d = os.path.join(self.dir, "vol", name)
                os.makedirs(d)
                self._writable(d, fsgroup)
            elif "secret" in v or "configMap" in v or "projected" in v:
                d = os.path.join(self.dir, "vol", name)
                self._atomic_writer(d, self._projection(v), fsgroup)
            else:
                raise AssertionError("%s: volume kind of %s not simulated: %r" % (
                    self.name, name, sorted(v)))
            self.mounts[name] = d

    @staticmethod
    def _writable(d, fsgroup):
        os.makedirs(d, exist_ok=True)
        if fsgroup is not None:
            os.chown(d, 0, int(fsgroup))
            os.chmod(d, 0o2775)
        else:
            os.chmod(d, 0o777)

    def _keys_wanted(self, mount_path):
        """Keys of a secret mounted without items: the file names the containers' env and
        args refer to under its mount path (a real Secret simply has them)."""
        keys = set()
        for c in (self.spec.get("initContainers") or []) + self.spec["containers"]:
            texts = [e.get("value") or "" for e in c.get("env") or []]
            texts += list(c.get("command") or []) + list(c.get("args") or [])
            for t in texts:
                for m in re.finditer(re.escape(mount_path.rstrip("/")) + r"/([A-Za-z0-9._-]+)", t):
                    keys.add(m.group(1))
        return keys

    def _projection(self, v):
        """{path: (bytes, mode)} of a secret / configMap / projected volume."""
        files = {}
        mount_paths = [m["mountPath"] for c in (self.spec.get("initContainers") or []) +
                       self.spec["containers"] for m in c.get("volumeMounts") or []
                       if m["name"] == v["name"]]
        srcs = []
        if "projected" in v:
            dm = v["projected"].get("defaultMode", 0o644)
            for s in v["projected"].get("sources") or []:
                srcs.append((s, dm))
        else:
            srcs.append((v, (v.get("secret") or v.get("configMap")).get("defaultMode", 0o644)))
        for s, dm in srcs:
            if "secret" in s:
                ref = s["secret"]
                name = ref.get("secretName") or ref.get("name")
                keys = ([it["key"] for it in ref.get("items") or []] or
                        sorted(set().union(*[self._keys_wanted(mp) for mp in mount_paths]) |
                               set(self.cl.secret_keys(name))))
                get = lambda k, n=name: self.cl.secret_value(n, k, self)  # noqa: E731
            elif "configMap" in s:
                ref = s["configMap"]
                name = ref["name"]
                cm = self.cl.configmaps.get(name)
                if cm is None:
                    raise AssertionError("ConfigMap %s not in the rendered objects" % name)
                keys = [it["key"] for it in ref.get("items") or []] or sorted(cm)
                get = lambda k, cm=cm: cm[k].encode()  # noqa: E731
            else:
                raise AssertionError("projected source not simulated: %r" % sorted(s))
            paths = {it["key"]: (it.get("path", it["key"]), it.get("mode")) for it in
                     ref.get("items") or []}
            for k in keys:
                path, mode = paths.get(k, (k, None))
                files[path] = (get(k), mode if mode is not None else dm)
        return files

    @staticmethod
    def _atomic_writer(d, files, fsgroup):
        """kubelet's layout: d/..<ts>/files, d/..data -> ..<ts>, d/<file> -> ..data/<file>."""
        os.makedirs(d)
        ts = "..%s" % time.strftime("%Y_%m_%d_%H_%M_%S.") + _secrets.token_hex(4)
        os.makedirs(os.path.join(d, ts))
        for path, (data, mode) in files.items():
            fp = os.path.join(d, ts, path)
            os.makedirs(os.path.dirname(fp), exist_ok=True)
            with open(fp, "wb") as f:
                f.write(data)
            if fsgroup is not None:
                os.chown(fp, 0, int(fsgroup))
                mode = mode | 0o040  # kubelet makes fsGroup able to read
            os.chmod(fp, mode)
        os.symlink(ts, os.path.join(d, "..data"))
        for path in {p.split("/")[0] for p in files}:
            os.symlink(os.path.join("..data", path), os.path.join(d, path))

    def _rewrite(self, s, mounts):
        """A path under a mount path -> the same path under the volume's directory."""
        for mp, d in mounts:
            mp = mp.rstrip("/")
            if s == mp:
                return d
            if s.startswith(mp + "/"):
                return d + s[len(mp):]
        return s

    def _fieldref(self, path):
        if path == "metadata.name":
            return self.name
        if path == "metadata.namespace":
            return self.namespace
        if path == "metadata.uid":
            return self.uid
        if path in ("status.podIP", "status.podIPs"):
            return self.ip
        if path == "status.hostIP":
            return self.cl.client_ip
        if path == "spec.nodeName":
            return "node-%s" % self.cl.id
        if path == "spec.serviceAccountName":
            return self.spec.get("serviceAccountName", "default")
        for what in ("labels", "annotations"):
            v = _label_ref(path, what, self.meta)
            if v is not None:
                return v
        raise AssertionError("fieldRef %s not simulated" % path)

    def _resource(self, ref, cspec):
        cname = ref.get("containerName") or cspec["name"]
        tgt = [c for c in (self.spec.get("initContainers") or []) + self.spec["containers"]
               if c["name"] == cname][0]
        kind, res = ref["resource"].split(".", 1)
        q = ((tgt.get("resources") or {}).get(kind) or {}).get(res)
        if q is None:
            raise AssertionError("resourceFieldRef %s unset on %s (the node's allocatable "
                                 "would be used: not simulated)" % (ref["resource"], cname))
        div = M.quantity(ref.get("divisor", "1"))
        v = M.quantity(q) / div
        return str(int(-(-v // 1)))

    def container_env(self, cspec):
        """The container's environment as kubelet builds it, before path rewriting."""
        env = {"HOSTNAME": self.hostname}
        for ef in cspec.get("envFrom") or []:
            pre = ef.get("prefix", "")
            if "configMapRef" in ef:
                for k, v in (self.cl.configmaps.get(ef["configMapRef"]["name"]) or {}).items():
                    env[pre + k] = v
            elif "secretRef" in ef:
                n = ef["secretRef"]["name"]
                for k in self.cl.secret_keys(n):
                    env[pre + k] = self.cl.secret_value(n, k, self).decode()
        for e in cspec.get("env") or []:
            name = e["name"]
            if "value" in e or "valueFrom" not in e:
                env[name] = M.expand(str(e.get("value", "")), env)
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[name] = self._fieldref(vf["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in vf:
                r = vf["secretKeyRef"]
                env[name] = self.cl.secret_value(r["name"], r["key"], self).decode()
            elif "configMapKeyRef" in vf:
                r = vf["configMapKeyRef"]
                cm = self.cl.configmaps.get(r["name"]) or {}
                if r["key"] not in cm:
                    if r.get("optional"):
                        continue
                    raise AssertionError("ConfigMap %s has no key %s" % (r["name"], r["key"]))
                env[name] = cm[r["key"]]
            elif "resourceFieldRef" in vf:
                env[name] = self._resource(vf["resourceFieldRef"], cspec)
            else:
                raise AssertionError("valueFrom %r not simulated" % sorted(vf))
        return env

    def _container_argv(self, cspec, env, mounts):
        cmd = [M.expand(str(x), env) for x in cspec.get("command") or []]
        args = [M.expand(str(x), env) for x in cspec.get("args") or []]
        if M.is_hacache(cspec):
            hacached = self.cl.images.get(cspec.get("image")) or H.binary()
            if not cmd:
                cmd = [hacached]  # the image's ENTRYPOINT (Dockerfile)
            elif os.path.basename(cmd[0]) == "hacached":
                cmd[0] = hacached
            elif os.path.basename(cmd[0]) == "hacachectl":
                cmd[0] = hacachectl()
            argv = cmd + args
        else:
            if self.sts.app is None:
                raise AssertionError("%s: application container %s (%s) needs app=" % (
                    self.name, cspec["name"], cspec.get("image")))
            argv = self.sts.app(self, cspec)
        return [self._rewrite(a, mounts) for a in argv]

    def _security(self, cspec):
        psc = self.spec.get("securityContext") or {}
        csc = cspec.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        fsg = psc.get("fsGroup")
        pre = []
        if uid is not None or gid is not None or fsg is not None:
            pre = ["setpriv"]
            if uid is not None:
                pre += ["--reuid", str(uid)]
            if gid is not None:
                pre += ["--regid", str(gid)]
            if fsg is not None:
                pre += ["--groups", str(fsg)]
            else:
                pre += ["--clear-groups"]
            if csc.get("allowPrivilegeEscalation") is False:
                pre += ["--no-new-privs"]
            pre += ["--"]
        return pre

    def write_hosts(self, recs, gen, remount):
        own = ["%s.%s.%s.svc.%s" % (self.hostname, self.subdomain, self.namespace,
                                    CLUSTER_DOMAIN), self.hostname] if self.subdomain else \
            [self.hostname]
        lines = ["# Kubernetes-managed hosts file (simulated by tests/k8s/pods.py)",
                 "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 "%s\t%s" % (self.ip, " ".join(own)),
                 "# headless Service records (publishNotReadyAddresses)"]
        for ip, names in recs:
            if ip != self.ip:
                lines.append("%s\t%s" % (ip, " ".join(names)))
        path = os.path.join(self.dir, "hosts.%d" % gen)
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path + ".tmp", 0o644)
        os.rename(path + ".tmp", path)
        self.hosts_path = path
        if remount:
            N.run("nsenter", "-t", str(self.pause.pid), "-m", "--", "mount", "--bind", path,
                "/etc/hosts")

    def start(self):
        """Creates the pod: namespace, IP, DNS record, volumes, pause process, sidecars, then
        containers."""
        self.cl.pods[self.name] = self
        self.cl._add_ns(self.ns)
        self.ip = self.cl.new_ip()
        self.veth = self.cl._plug(self.ns, self.ip)
        resolv = os.path.join(self.dir, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("# nothing listens here: names not in /etc/hosts fail at once\n"
                    "nameserver 127.0.0.1\nsearch %s.svc.%s svc.%s %s\noptions ndots:5 "
                    "timeout:1 attempts:1\n" % (self.namespace, CLUSTER_DOMAIN, CLUSTER_DOMAIN,
                                               CLUSTER_DOMAIN))
        os.chmod(resolv, 0o644)
        self.write_hosts(self.cl.records_now(), 0, remount=False)
        script = ('hostname "$1" && mount --bind "$2" /etc/hosts && '
                  'mount --bind "$3" /etc/resolv.conf && echo pause-ready && exec sleep infinity')
        self.pause = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "unshare", "--uts", "--mount", "--propagation",
             "private", "--", "sh", "-c", script, "pause", self.hostname, self.hosts_path,
             resolv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        line = _readline(self.pause.stdout, 10.0)
        if line.strip() != b"pause-ready":
            raise AssertionError("pod %s: the pause process did not start: %r" % (self.name,
                                                                                   line))
        self.cl.publish()  # every pod resolves the new name, ready or not
        self._volumes()
        self.mount_map = []
        for c in (self.spec.get("initContainers") or []) + self.spec["containers"]:
            for m in c.get("volumeMounts") or []:
                d = self.mounts[m["name"]]
                if m.get("subPath"):
                    d = os.path.join(d, m["subPath"])
                self.mount_map.append((m["mountPath"], d, c["name"]))
        # kubelet starts each pod on its own: a native sidecar with a startupProbe (e.g. /readyz,
        # which needs a quorum of the other pods' sidecars) must not hold up the creation of the
        # next pod, so the rest of the start-up (probe, then the app containers) runs in a thread
        self.starting = True
        self.start_error = None
        self.starter = threading.Thread(target=self._start_containers, daemon=True)
        self.starter.start()
        if not any(c.get("restartPolicy") == "Always" and c.get("startupProbe")
                   for c in self.spec.get("initContainers") or []):
            self.starter.join()  # nothing to wait for: as before, done when start returns
            if self.start_error is not None:
                raise self.start_error

    def _start_containers(self):
        try:
            for c in self.spec.get("initContainers") or []:
                if c.get("restartPolicy") == "Always":
                    ct = self._run(c, sidecar=True)
                    self._wait_started(ct, timeout=90.0)
                else:
                    ct = self._run(c, sidecar=False)
                    rc = ct.proc.wait(60)
                    H.check_eq(rc, 0, "%s: init container %s" % (self.name, c["name"]))
            for c in self.spec["containers"]:
                self._run(c, sidecar=False)
        except Exception as e:  # reported by ready() / wait_ready()
            self.start_error = e
        finally:
            self.starting = False

    def _run(self, cspec, sidecar):
        ct = Container(self, cspec, sidecar)
        mounts = sorted(((mp, d) for mp, d, cn in self.mount_map if cn == cspec["name"]),
                        key=lambda x: -len(x[0]))
        env = self.container_env(cspec)
        env = {k: self._rewrite(v, mounts) for k, v in env.items()}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        for k in H._PASSTHROUGH_ENV:  # sanitizer knobs of the test run, not of the manifest
            if k in os.environ:
                env[k] = os.environ[k]
        ct.env = env
        ct.argv = self._container_argv(cspec, env, mounts)
        fd, ct.log_path = tempfile.mkstemp(prefix="%s-%s-" % (self.name, cspec["name"]),
                                           suffix=".log", dir=self.dir)
        ct._log = os.fdopen(fd, "wb")
        ct.mounts = mounts
        ct.proc = subprocess.Popen(
            ["nsenter", "-t", str(self.pause.pid), "--net", "--uts", "--mount", "--wd=/", "--"] +
            self._security(cspec) + ct.argv, env=env, stdin=subprocess.DEVNULL, stdout=ct._log,
            stderr=ct._log, start_new_session=True)
        ct.started = time.monotonic()
        self.containers.append(ct)
        return ct

    def _wait_started(self, ct, timeout=30.0):
        probe = ct.spec.get("startupProbe")

        def started():
            if not ct.alive():
                raise AssertionError("%s: sidecar %s exited (%r):\n%s" % (
                    self.name, ct.name, ct.proc.poll(), ct.log_tail()))
            if probe is None:
                # a native sidecar counts as started once its process runs; give it the
                # moment to listen that kubelet's container start takes anyway
                return time.monotonic() - ct.started > 0.2
            return self.probe(ct, probe)
        H.wait_until(started, timeout, interval=0.05, what="sidecar %s of %s started" % (
            ct.name, self.name))

    # -- probes

    def port_number(self, cspec, port):
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for c in (self.spec.get("initContainers") or []) + self.spec["containers"]:
            for p in c.get("ports") or []:
                if p.get("name") == port:
                    return int(p["containerPort"])
        raise AssertionError("%s: no port named %s" % (self.name, port))

    def probe(self, ct, probe, timeout=None):
        """One probe attempt as kubelet makes it (from the node: the test's namespace)."""
        to = timeout or float(probe.get("timeoutSeconds", 1)) + 1.0
        if "httpGet" in probe:
            g = probe["httpGet"]
            port = self.port_number(ct.spec, g["port"])
            host = g.get("host") or self.ip
            if g.get("scheme", "HTTP").upper() == "HTTPS":
                import http.client
                import ssl
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE  # kubelet does not verify probe certificates
                c = http.client.HTTPSConnection(host, port, timeout=to, context=ctx)
            else:
                import http.client
                c = http.client.HTTPConnection(host, port, timeout=to)
            try:
                hdr = {h["name"]: h["value"] for h in g.get("httpHeaders") or []}
                c.request("GET", g.get("path", "/"), headers=hdr)
                r = c.getresponse()
                r.read()
                return 200 <= r.status < 400
            except (OSError, ValueError):
                return False
            finally:
                c.close()
        if "tcpSocket" in probe:
            port = self.port_number(ct.spec, probe["tcpSocket"]["port"])
            try:
                socket.create_connection((self.ip, port), timeout=to).close()
                return True
            except OSError:
                return False
        if "exec" in probe:
            argv = self._container_argv_exec(ct, probe["exec"]["command"])
            try:
                p = subprocess.run(["nsenter", "-t", str(self.pause.pid), "--net", "--uts",
                                    "--mount", "--wd=/", "--"] + self._security(ct.spec) + argv,
                                   env=ct.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=to)
                return p.returncode == 0
            except subprocess.TimeoutExpired:
                return False
        raise AssertionError("probe kind not simulated: %r" % sorted(probe))

    def _container_argv_exec(self, ct, command):
        argv = [self._rewrite(M.expand(str(x), ct.env), ct.mounts) for x in command]
        if argv and os.path.basename(argv[0]) == "hacachectl":
            argv[0] = hacachectl()
        elif argv and os.path.basename(argv[0]) == "hacached":
            argv[0] = H.binary()
        return argv

    def ready(self):
        """Every running container with a readinessProbe passes it (one attempt each), and
        every container runs."""
        if getattr(self, "start_error", None) is not None:
            raise self.start_error
        if self.pause is None or not self.containers or getattr(self, "starting", False):
            return False
        for ct in self.containers:
            if not ct.alive():
                return False
            pr = ct.spec.get("readinessProbe")
            if pr is not None and not self.probe(ct, pr):
                return False
        return True

    def wait_ready(self, timeout=90.0):
        def ok():
            for ct in self.containers:
                if not ct.alive():
                    raise AssertionError("%s: container %s exited with %r:\n%s" % (
                        self.name, ct.name, ct.proc.poll(), ct.log_tail()))
            return self.ready()
        H.wait_until(ok, timeout, interval=0.1, what="pod %s ready" % self.name)

    def running(self):
        return self.pause is not None and any(ct.alive() for ct in self.containers)

    def stop_container(self, name):
        """SIGTERM to one container; waits up to the grace period; returns its exit code."""
        ct = self.container(name)
        ct.proc.send_signal(signal.SIGTERM)
        try:
            ct.exit_code = ct.proc.wait(float(self.spec.get("terminationGracePeriodSeconds",
                                                            30)))
        except subprocess.TimeoutExpired:
            os.killpg(ct.proc.pid, signal.SIGKILL)
            ct.exit_code = ct.proc.wait(10)
            H.check(False, "%s: container %s ignored SIGTERM: killed" % (self.name, name))
        return ct.exit_code

    def container(self, name=None):
        """The named container, or the hacached one."""
        for ct in self.containers:
            if (name is None and M.is_hacache(ct.spec)) or ct.name == name:
                return ct
        raise KeyError(name)

    # -- termination

    def terminate(self):
        """Graceful termination: SIGTERM to the application containers, wait, then to the
        sidecars in reverse order; SIGKILL at terminationGracePeriodSeconds. Returns (seconds
        until every container exited, {container: exit code}); a container that had to be
        killed fails a check."""
        grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        t0 = time.monotonic()
        deadline = t0 + grace
        apps = [c for c in self.containers if not c.sidecar]
        sides = [c for c in self.containers if c.sidecar][::-1]
        codes = {}
        for group in [apps] + [[s] for s in sides]:
            for ct in group:
                if ct.alive():
                    ct.proc.send_signal(signal.SIGTERM)
            for ct in group:
                try:
                    ct.exit_code = ct.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(ct.proc.pid, signal.SIGKILL)
                    ct.exit_code = ct.proc.wait(10)
                    H.check(False, "%s: container %s did not exit within "
                                   "terminationGracePeriodSeconds (%.0fs): killed" % (
                                       self.name, ct.name, grace))
                codes[ct.name] = ct.exit_code
        return time.monotonic() - t0, codes

    def destroy(self, kill=False):
        """Removes the pod's processes, namespace, veth and DNS record."""
        for ct in self.containers:
            if ct.alive():
                try:
                    os.killpg(ct.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    ct.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            if ct._log is not None:
                ct._log.close()
                ct._log = None
        if self.pause is not None and self.pause.poll() is None:
            os.killpg(self.pause.pid, signal.SIGKILL)
            self.pause.wait(5)
        if self.pause is not None and self.pause.stdout is not None:
            self.pause.stdout.close()
        with self.cl.lock:
            if self.cl.pods.get(self.name) is self:
                del self.cl.pods[self.name]
        N.run("ip", "-n", self.cl.net_ns, "link", "del", self.veth, check=False)
        for pid in N.run("ip", "netns", "pids", self.ns, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        N.run("ip", "netns", "del", self.ns, check=False)
        if self.ns in self.cl.namespaces:
            self.cl.namespaces.remove(self.ns)
        if not kill and not self.cl.closed:
            self.cl.publish()

    # -- faults (scenario 4): nftables inside the pod's network namespace

    def cut(self, others, inbound=True, outbound=True, loss_pct=None):
        """Drops packets between this pod and the pods `others` (their current IPs): both
        ways, one way (inbound / outbound only), or a share of them (loss_pct, nft numgen).
        The node's namespace (the test's clients) stays reachable. Replaces an earlier cut."""
        ips = ", ".join(o.ip for o in others)
        verdict = "numgen random mod 100 < %d drop" % loss_pct if loss_pct else "drop"
        rules = ["table inet hcpart {"]
        if inbound:
            rules.append("  chain input { type filter hook input priority 0; policy accept; "
                         "ip saddr { %s } %s; }" % (ips, verdict))
        if outbound:
            rules.append("  chain output { type filter hook output priority 0; policy accept; "
                         "ip daddr { %s } %s; }" % (ips, verdict))
        rules.append("}")
        self.heal()
        N.run("ip", "netns", "exec", self.ns, "nft", "-f", "-", input="\n".join(rules) + "\n")

    def heal(self):
        N.run("ip", "netns", "exec", self.ns, "nft", "delete", "table", "inet", "hcpart",
            check=False)


def _readline(f, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    fd = f.fileno()
    while not buf.endswith(b"\n") and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        c = os.read(fd, 1)
        if not c:
            break
        buf += c
    return buf


# --------------------------------------------------------------------------------------------
# reaching a pod's API

def api_token(pod):
    """The API bearer token the hacached container of pod uses (CACHE_API_TOKEN or the first
    line of CACHE_API_TOKEN_FILE), or None."""
    env = pod.container().env
    if env.get("CACHE_API_TOKEN"):
        return env["CACHE_API_TOKEN"]
    f = env.get("CACHE_API_TOKEN_FILE")
    if f:
        with open(f) as fh:
            return fh.readline().strip()
    return None


def http_addr(pod):
    """(host, port) where the test reaches pod's HTTP API: the pod IP when the API listens on
    every address or on the pod IP; 127.0.0.1 (reach it with in_netns) when it is bound to
    loopback."""
    a = pod.container().env.get("CACHE_HTTP_ADDR", "127.0.0.1:8080")
    host, port = a.rsplit(":", 1)
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", "", pod.ip):
        return pod.ip, int(port)
    return host, int(port)


def pod_request(pod, method, path, body=None, timeout=5.0, headers=None):
    """One API request to pod (inside its network namespace when the API is on loopback).
    Returns (status, headers, body)."""
    host, port = http_addr(pod)
    tok = api_token(pod)

    def go():
        c = H.Client(port, host=host, token=tok, timeout=timeout)
        try:
            return c.request(method, path, body=body, headers=headers)
        finally:
            c.close()
    if host == pod.ip:
        return go()
    return N.in_netns("/run/netns/" + pod.ns, go, timeout=timeout + 5)


def status(pod, timeout=2.0):
    try:
        st, _, raw = pod_request(pod, "GET", "/v1/status", timeout=timeout)
    except Exception:
        return None
    return H.jbody(raw) if st == 200 else None


def host_is_loopback(pod):
    return http_addr(pod)[0] != pod.ip


# --------------------------------------------------------------------------------------------
# running a test file

def require_namespaces():
    """Skips (exit 77 through the runner) where the kernel refuses namespaces; as root a refusal
    is a failure, never a skip (the k8s label must not pass by skipping)."""
    why = N.namespaces_refused()
    if why is None:
        return
    if os.geteuid() == 0:
        raise AssertionError("running as root but namespaces are refused: %s" % why)
    raise H.Skip("pods in network namespaces need root and a kernel that allows them: %s" % why)


SKIP_RC = 77  # ctest SKIP_RETURN_CODE of the k8s tests


def main(module_globals):
    """Runs the test file's tests (harness.run). Where namespaces cannot be made: exit 77 (a
    skip for ctest) when not root, a failure as root (a k8s test never passes by skipping
    there)."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        # the python3 on PATH may not be Debian's (pyenv); Debian's has python3-yaml
        if sys.executable != "/usr/bin/python3" and os.access("/usr/bin/python3", os.X_OK):
            os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(sys.argv[0])] +
                     sys.argv[1:])
    why = N.namespaces_refused()
    if why is not None:
        if os.geteuid() == 0:
            print("FAIL running as root, but namespaces are refused: %s" % why, flush=True)
            print("0 passed, 1 failed", flush=True)
            sys.exit(1)
        print("SKIP pods in network namespaces need root and a kernel that allows them: %s"
              % why, flush=True)
        sys.exit(SKIP_RC)
    # ctest's timeout sends SIGTERM: unwind, so every finally and atexit cleanup runs
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    H.run(module_globals)
