"""app_client.py: the application container of the sidecar layout (tests/k8s/pods.py runs it in
place of the example application's image, with the argv of clients.app_client). It talks only
to its own hacached sidecar on loopback: quorum writes of distinct keys with a request id each,
retried on the same endpoint on 503, 504 and connection errors for up to --budget seconds.
Standard library only; run with Debian's /usr/bin/python3 (the pod's user cannot read a python
under /root).

    app_client.py --endpoint http://127.0.0.1:8080 [--token-file F] --prefix app-0-ab12

Environment: HACACHE_ENDPOINTS and HACACHE_TOKEN (as hacachectl reads them) when no flag says
otherwise. Prints one line per write, flushed: `ACK <key> <value> <CLOCK_MONOTONIC seconds>`
or `FAIL <key> <reason>`; on SIGTERM it finishes the write in flight and exits 0
(`EXIT <acked> <failed>`).
"""

import argparse
import http.client
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def serve_probe_port(port):
    """What the example application's image would do for its readiness probe: accept on port
    and answer any request with 200 (a tcpSocket probe only needs the accept)."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(16)

    def loop():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                c.settimeout(1.0)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            finally:
                c.close()
    threading.Thread(target=loop, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=(os.environ.get("HACACHE_ENDPOINTS") or
                                           "http://127.0.0.1:8080").split(",")[0])
    ap.add_argument("--token-file")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--cache", default="app")
    ap.add_argument("--budget", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--listen", type=int, default=0,
                    help="serve this TCP port (the container's readiness probe points at it)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    if a.listen:
        serve_probe_port(a.listen)
    token = os.environ.get("HACACHE_TOKEN", "").strip()
    if a.token_file:
        with open(a.token_file) as f:
            token = f.readline().strip()
    u = urllib.parse.urlsplit(a.endpoint)
    host, port = u.hostname, u.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("FAIL config the sidecar must be on loopback, not %s" % host, flush=True)
        return 2
    hdr = {"Authorization": "Bearer " + token} if token else {}
    conn = None
    seq = acked = failed = 0
    period = 1.0 / a.rate
    next_t = time.monotonic()
    while not stop:
        seq += 1
        key = "%s-%d" % (a.prefix, seq)
        val = "v-" + key
        h = dict(hdr, **{"X-Hacache-Request-Id": secrets.token_hex(16)})
        t0 = time.monotonic()
        last = "none"
        ok = False
        while time.monotonic() - t0 < a.budget:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=3)
                conn.request("PUT", "/v1/caches/%s/%s?ack=quorum" % (a.cache, key),
                             body=val.encode(), headers=h)
                r = conn.getresponse()
                r.read()
                if r.will_close:
                    conn.close()
                    conn = None
                if r.status == 200:
                    ok = True
                    break
                last = "status-%d" % r.status
                if r.status not in (503, 504):
                    break
            except (OSError, http.client.HTTPException) as e:
                last = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.05)
        if ok:
            acked += 1
            print("ACK %s %s %.6f" % (key, val, time.monotonic()), flush=True)
        else:
            failed += 1
            print("FAIL %s %s" % (key, last), flush=True)
        next_t = max(next_t + period, time.monotonic())
        while not stop and time.monotonic() < next_t:
            time.sleep(min(0.05, max(0.0, next_t - time.monotonic())))
    print("EXIT %d %d" % (acked, failed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
