"""test_http_tls.py: the API over TLS: h2 via ALPN (h2load), HTTP/1.1 over TLS, and reloading
the certificate with POST /v1/admin/tls/reload and SIGHUP (a bad pair keeps the old one)."""

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def make_cert(dirpath, name, cn="localhost"):
    """A self-signed EC certificate for 127.0.0.1/localhost; returns (cert, key) paths."""
    cert = os.path.join(dirpath, name + ".crt")
    key = os.path.join(dirpath, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def served_cert_subject(port):
    """Subject CN of the certificate the server presents on a new connection."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                         input=der, capture_output=True, check=True).stdout.decode()
    m = re.search(r"CN\s*=\s*(\S+)", out)
    return m.group(1) if m else out


def tls_request(port, cafile, method, path, body=None):
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class TlsNode:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hacache-tls-")
        self.cert = os.path.join(self.dir, "api.crt")
        self.key = os.path.join(self.dir, "api.key")
        c, k = make_cert(self.dir, "first", cn="first")
        shutil.copy(c, self.cert)
        shutil.copy(k, self.key)
        self.first_cert = c
        port = H.free_port()
        env = {"CACHE_HTTP_TLS_CERT": self.cert, "CACHE_HTTP_TLS_KEY": self.key,
               "CACHE_HTTP_ADDR": "127.0.0.1:%d" % port}
        # the harness polls /healthz over plain HTTP: start without waiting, poll over TLS
        self.node = H.Node(env=env, start=False, name="tls")
        self.node.port = port
        self.node.extra_env = env
        fd, self.node.stderr_path = tempfile.mkstemp(prefix="hacached-tls-", suffix=".stderr")
        self.node._stderr_f = os.fdopen(fd, "wb")
        self.node.proc = subprocess.Popen([H.binary()], env=self.node._env(),
                                          stdin=subprocess.DEVNULL, stdout=self.node._stderr_f,
                                          stderr=self.node._stderr_f, start_new_session=True)
        H.wait_until(lambda: self._healthy(), 20, what="TLS node answers /healthz")

    def _healthy(self):
        if self.node.proc.poll() is not None:
            raise AssertionError("hacached exited: %s" % self.node.stderr_tail(40))
        try:
            return tls_request(self.node.port, self.first_cert, "GET", "/healthz")[0] == 200
        except (OSError, ssl.SSLError):
            return False

    def install(self, cert, key):
        # write to temp names and rename, as a careful operator (or kubelet) would
        shutil.copy(cert, self.cert + ".new")
        shutil.copy(key, self.key + ".new")
        os.replace(self.key + ".new", self.key)
        os.replace(self.cert + ".new", self.cert)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def test_h2_over_tls_with_h2load():
    t = TlsNode()
    try:
        port = t.node.port
        st, _ = tls_request(port, t.first_cert, "PUT", "/v1/caches/c/k", body=b"tls-value")
        H.check_eq(st, 200, "PUT over TLS")
        st, body = tls_request(port, t.first_cert, "GET", "/v1/caches/c/k")
        H.check_eq((st, body), (200, b"tls-value"), "GET over TLS (HTTP/1.1)")
        out = subprocess.run(["h2load", "-n", "400", "-c", "2", "-m", "4",
                              "https://127.0.0.1:%d/v1/caches/c/k" % port],
                             capture_output=True, text=True, timeout=60).stdout
        H.check(re.search(r"Application protocol:\s*h2\b", out) is not None,
                "h2load negotiated h2 over TLS:\n" + out)
        m = re.search(r"status codes: (\d+) 2xx", out)
        H.check(m is not None and int(m.group(1)) == 400, "all 400 requests 2xx:\n" + out)
    finally:
        t.node.stop_ok()
        t.cleanup()


def test_reload_by_admin_call_and_sighup():
    t = TlsNode()
    try:
        port = t.node.port
        H.check_eq(served_cert_subject(port), "first", "initial certificate")

        c2, k2 = make_cert(t.dir, "second", cn="second")
        t.install(c2, k2)
        st, body = tls_request(port, t.first_cert, "POST", "/v1/admin/tls/reload")
        H.check_eq(st, 200, "reload call status")
        H.check(b'"reloaded":true' in body, "reload reports success: %r" % body)
        H.check_eq(served_cert_subject(port), "second", "certificate after the admin reload")

        # a key that does not match the certificate is rejected; the old pair stays
        c3, _ = make_cert(t.dir, "third", cn="third")
        _, k4 = make_cert(t.dir, "fourth", cn="fourth")
        t.install(c3, k4)
        st, body = tls_request(port, c2, "POST", "/v1/admin/tls/reload")
        H.check_eq(st, 400, "bad pair rejected")
        H.check(b"tls_reload_failed" in body, "error code names the failure: %r" % body)
        H.check_eq(served_cert_subject(port), "second", "old certificate kept after a bad pair")
        H.check("does not match" in t.node.stderr(), "the log says why the pair was rejected")

        # SIGHUP picks up a fixed pair
        c5, k5 = make_cert(t.dir, "fifth", cn="fifth")
        t.install(c5, k5)
        t.node.signal(signal.SIGHUP)
        H.wait_until(lambda: served_cert_subject(port) == "fifth", 10,
                     what="SIGHUP reload serves the new certificate")
        st, _ = tls_request(port, c5, "GET", "/healthz")
        H.check_eq(st, 200, "requests work with the reloaded certificate")
    finally:
        t.node.stop_ok()
        t.cleanup()


def test_handshake_after_a_reload():
    """A connection accepted before a reload whose client speaks only afterwards: h2o creates
    the connection's SSL when the first bytes arrive, from the context it was accepted with.
    That context must still be alive (the node holds a reference per connection): under ASan
    a use-after-free here aborts the node; in any build the handshake must complete."""
    t = TlsNode()
    try:
        port = t.node.port
        idle = []
        for _ in range(5):  # accepted now, silent until after the reloads
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        # wait until the node accepted them: a request on a fresh connection is served after
        H.check_eq(tls_request(port, t.first_cert, "GET", "/healthz")[0], 200, "healthz")
        for i in range(2):
            c, k = make_cert(t.dir, "r%d" % i, cn="r%d" % i)
            t.install(c, k)
            st, _ = tls_request(port, t.first_cert if i == 0 else last, "POST",
                                "/v1/admin/tls/reload")
            H.check_eq(st, 200, "reload %d" % i)
            last = c
        for n, raw in enumerate(idle):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                der = s.getpeercert(binary_form=True)
                H.check(der is not None and len(der) > 0, "handshake %d completed" % n)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                H.check(s.recv(64).startswith(b"HTTP/1.1 200"), "request %d answered" % n)
        H.check(t.node.alive(), "the node is alive after the late handshakes")
    finally:
        t.node.stop_ok()
        t.cleanup()


if __name__ == "__main__":
    H.run(globals())
