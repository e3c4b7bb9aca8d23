"""test_client_tls.py: libhacache over https (issue 14, acceptance 1).

A program against hacache.h (tests/integration/client_load.c: put then get, over and over)
talks to a 3-node cluster whose API is served over TLS (CACHE_HTTP_TLS_*), verifying the
server certificates against a CA bundle file. Under its load:
  1. the client's CA file becomes a bundle of the old and a new CA (picked up without a
     restart), then a bad update (garbage) is written (the old bundle stays);
  2. every node's API certificate is replaced by one of the new CA (the nodes reload it);
  3. the client's CA file becomes the new CA alone;
with zero failed calls. A client with a wrong CA, or expecting another name, fails with
HC_ETLS and an error naming the problem; the expected-name override (a sidecar dialling
https://127.0.0.1 whose certificate names the service) works."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

ETLS = -16


def load_binary():
    bd = os.environ.get("HC_BUILD_DIR") or os.path.join(H.REPO, "build")
    return os.path.join(bd, "bin", "client_load")


class Load:
    """client_load in the background; its lines are collected by a reader thread."""

    def __init__(self, endpoints, *args):
        self.proc = subprocess.Popen([load_binary(), endpoints] + list(args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.ok = 0
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            with self.lock:
                self.lines.append(line)
                if line.startswith("progress ") or line.startswith("done "):
                    self.ok = int(line.split("ok=")[1].split()[0])

    def failures(self):
        with self.lock:
            return [x for x in self.lines if x.startswith("fail ")]

    def wait_more(self, n, what):
        """Waits until n more calls succeeded than now."""
        with self.lock:
            target = self.ok + n
        H.wait_until(lambda: self.ok >= target or self.proc.poll() is not None, 60,
                     what="%d more successful calls %s" % (n, what))
        H.check(self.proc.poll() is None, "the load runs on %s" % what)

    def finish(self):
        self.proc.stdin.close()
        self.proc.wait(60)
        self.reader.join(10)
        with self.lock:
            done = [x for x in self.lines if x.startswith("done ")]
        H.check(done != [], "the load reports its end: %s" % self.lines[-5:])
        return done[-1] if done else ""


def replace(path, data):
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def served_by(port, cafile):
    """Does the node's API present a certificate that chains to cafile?"""
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                return True
    except (ssl.SSLError, OSError):
        return False


def run_once(endpoints, *args):
    r = subprocess.run([load_binary(), endpoints, "--once", "--timeout", "3000"] + list(args),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


def test_rotation_under_load_and_tls_errors():
    cl = C.Cluster(3, http_tls=True)
    try:
        eps = ",".join("https://127.0.0.1:%d" % p for p in cl.http_ports)
        ca1 = os.path.join(cl.certs, "ca.crt")
        new = os.path.join(cl.dir, "new-ca")
        subprocess.run(["bash", os.path.join(H.REPO, "scripts", "dev-certs.sh"), new, "1"],
                       check=True, stdout=subprocess.DEVNULL)
        ca2 = os.path.join(new, "ca.crt")

        # the expected-name override, and what a wrong CA or name says
        rc, out = run_once(eps, "--cacert", ca1, "--server-name", "node-0")
        H.check_eq(rc, 0, "the certificate's other name, dialled at 127.0.0.1: %s" % out)
        rc, out = run_once(eps, "--cacert", ca2)
        H.check(rc == 1 and "rc=%d" % ETLS in out and "certificate" in out,
                "a wrong CA fails with HC_ETLS naming the certificate problem: %s" % out)
        rc, out = run_once(eps, "--cacert", ca1, "--server-name", "wrong.example")
        H.check(rc == 1 and "rc=%d" % ETLS in out and "wrong.example" in out,
                "a wrong name fails with HC_ETLS naming the name: %s" % out)

        client_ca = os.path.join(cl.dir, "client-ca.pem")
        shutil.copy(ca1, client_ca)
        load = Load(eps, "--cacert", client_ca, "--timeout", "5000")
        load.wait_more(100, "at the start")

        # 1. the client trusts both CAs; a bad update afterwards keeps that bundle
        replace(client_ca, read(ca1) + read(ca2))
        replace(cl.http_ca, read(ca1) + read(ca2))  # the harness's own checks
        load.wait_more(50, "after the CA bundle update")
        replace(client_ca, b"-----BEGIN CERTIFICATE-----\nnot a certificate\n"
                           b"-----END CERTIFICATE-----\n")
        load.wait_more(50, "after a bad CA file update")

        # 2. every node's API certificate moves to the new CA, one node at a time
        for i in range(3):
            replace(cl.http_key(i), read(os.path.join(new, "node-0.key")))
            replace(cl.http_cert(i), read(os.path.join(new, "node-0.crt")))
            H.wait_until(lambda: served_by(cl.http_ports[i], ca2), 30,
                         what="node %d serves the new CA's certificate" % i)
            load.wait_more(50, "after node %d's rotation" % i)

        # 3. the client trusts the new CA alone
        replace(client_ca, read(ca2))
        load.wait_more(100, "with the new CA alone")
        H.check(not any(served_by(p, ca1) for p in cl.http_ports),
                "no node presents an old certificate any more")
        done = load.finish()
        fails = load.failures()
        H.log("load: %s; failures: %d" % (done, len(fails)))
        H.check_eq(fails[:5], [], "failed calls during the rotations")
        H.check(done.endswith("fail=0"), "zero failed calls: %s" % done)
        # the old CA no longer opens the API
        rc, out = run_once(eps, "--cacert", ca1)
        H.check(rc == 1 and "rc=%d" % ETLS in out, "the old CA is refused now: %s" % out)
        for nd in cl.live():
            nd.stop_ok()
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
