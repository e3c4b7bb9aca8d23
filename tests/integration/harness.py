"""harness.py: shared helpers for the black-box integration tests of hacached.

Standard library only. Test scripts import it with:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness as H

What it provides:
  * free_port()                      a free TCP port on 127.0.0.1
  * DeadPort()                       a loopback port that stays refused while held
  * Node(env={...})                  starts $HACACHED (fallback build/bin/hacached) with a clean
                                     environment, stderr to a temp file, waits for GET /healthz
  * Client(port, token=None)         HTTP/1.1 keep-alive client (one connection reused) returning
                                     (status, headers, body); counts the TCP connections it made
  * raw_request(...)                 one request over a raw socket (for what http.client refuses)
  * parse_prometheus(text)           a small Prometheus text-format parser -> Metrics
  * wait_until(cond, deadline, ...)  every wait is a poll loop on a condition with a deadline
  * check(cond, msg)                 soft assertion: recorded, the test goes on, then fails
  * note(cond, msg)                  observation on behaviour the contract leaves open; never
                                     fails
  * run(globals())                   runs every test_* function, prints "N passed, N failed"
                                     last, exits 1 if any failed; leftover nodes are killed.
"""

import atexit
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Sanitizer knobs from the test environment (ctest sets them) are passed to the node.
_PASSTHROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")


# --------------------------------------------------------------------------------------------
# soft assertions and test outcome bookkeeping

class Skip(Exception):
    """Raised by a test that cannot run here; reported as SKIPPED, never as passed."""


_soft_failures = []
_nodes_in_test = []
_all_nodes = []
_persistent_nodes = []


def check(cond, msg):
    """Soft assertion: records msg when cond is false and lets the test continue; the test
    fails at its end. Returns cond so callers can branch on it."""
    if not cond:
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_code.co_filename == __file__:
            frame = frame.f_back  # report the test's line, not a helper's
        where = "%s:%d" % (os.path.basename(frame.f_code.co_filename), frame.f_lineno)
        _soft_failures.append("%s: %s" % (where, msg))
        print("    CHECK FAILED %s: %s" % (where, msg), flush=True)
    return cond


_notes = []


def note(cond, msg):
    """Observation about behaviour the contract leaves open: printed (and listed again before
    the summary) when cond is false, never fails the test. Returns cond."""
    if not cond:
        _notes.append(msg)
        print("    NOTE: %s" % msg, flush=True)
    return cond


def check_eq(got, expected, what):
    return check(got == expected, "%s: expected %r, got %r" % (what, expected, got))


def log(msg):
    print("    " + msg, flush=True)


def max_gap(times, t_from, t_to):
    """Longest interval between consecutive instants of `times` (ascending) that overlaps
    [t_from, t_to]: the longest write pause around a restart, from acknowledgement times."""
    best = 0.0
    prev = None
    for t in times:
        if prev is not None and t >= t_from and prev <= t_to:
            best = max(best, t - prev)
        prev = t
    return best


def wait_until(cond, timeout, interval=0.02, what="condition"):
    """Polls cond() until it returns a truthy value or `timeout` seconds pass. Returns the value;
    raises AssertionError naming `what` on timeout. Other exceptions raised by cond count as
    "not yet" (e.g. connection refused) except AssertionError, which cond raises to give up
    at once (e.g. the process exited)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last_exc = None
        except AssertionError:
            raise
        except Exception as e:  # condition may fail transiently (e.g. connection refused)
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, (" (last error: %r)" % last_exc) if last_exc else ""))
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# binary, ports, nodes

def binary():
    b = os.environ.get("HACACHED")
    if not b:
        bd = os.environ.get("HC_BUILD_DIR")
        b = os.path.join(bd, "bin", "hacached") if bd else os.path.join(REPO, "build", "bin",
                                                                          "hacached")
    return b


def is_sanitized_build(path=None):
    """True when the binary was built with AddressSanitizer (RSS bounds differ)."""
    path = path or binary()
    try:
        with open(path, "rb") as f:
            data = f.read()
        return b"__asan_init" in data or b"libasan.so" in data
    except OSError:
        return False


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class DeadPort:
    """A loopback port where nothing listens and nothing can start listening while it is held:
    a socket bound to it that never listens (a connect is refused at once). free_port() gives a
    port that another test running at the same time may take before it is dialed; this one
    stays dead. Use as a context manager, or close()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NodeStartError(AssertionError):
    pass


class Node:
    """One hacached process. env: extra variables (CACHE_HTTP_ADDR is set from the port unless
    given). The environment is clean: PATH, the sanitizer options, and these variables."""

    def __init__(self, env=None, args=None, log_level="debug", start=True, ready_timeout=20.0,
                 name="node", persistent=False, ready_check=None, binary_path=None):
        """persistent=True: the node outlives the test that started it (shared by several
        tests); the runner stops it at the end and requires a clean exit then.
        ready_check: optional function(node) -> bool used instead of plain-HTTP GET /healthz
        to decide readiness (e.g. a probe over TLS); exceptions count as "not yet".
        binary_path: the program to run instead of binary() (e.g. an older build of hacached,
        tests/versions/build_ref.sh)."""
        self.ready_check = ready_check
        self.binary_path = binary_path
        self.extra_env = dict(env or {})
        self.args = list(args or [])
        self.log_level = log_level
        self.name = name
        self.proc = None
        self.port = None
        self.stderr_path = None
        self._stderr_f = None
        self.exit_code = None
        _all_nodes.append(self)
        (_persistent_nodes if persistent else _nodes_in_test).append(self)
        if start:
            self.start(ready_timeout)

    # -- lifecycle

    def _env(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k in _PASSTHROUGH_ENV:
            if k in os.environ:
                env[k] = os.environ[k]
        if self.log_level:
            env["CACHE_LOG_LEVEL"] = self.log_level
        env.update(self.extra_env)
        if "CACHE_HTTP_ADDR" not in self.extra_env:
            env["CACHE_HTTP_ADDR"] = "127.0.0.1:%d" % self.port
        return env

    def start(self, ready_timeout=20.0):
        b = self.binary_path or binary()
        if not os.access(b, os.X_OK):
            raise NodeStartError("hacached binary not found or not executable: %s "
                                 "(set HACACHED)" % b)
        # A port picked by free_port() may be taken by someone else before we bind it: retry
        # a few times with a fresh port when the process dies during startup.
        for attempt in range(3):
            if "CACHE_HTTP_ADDR" in self.extra_env:
                self.port = int(self.extra_env["CACHE_HTTP_ADDR"].rsplit(":", 1)[1])
            else:
                self.port = free_port()
            fd, self.stderr_path = tempfile.mkstemp(prefix="hacached-%s-" % self.name,
                                                    suffix=".stderr")
            self._stderr_f = os.fdopen(fd, "wb")
            self.proc = subprocess.Popen([b] + self.args, env=self._env(),
                                         stdin=subprocess.DEVNULL, stdout=self._stderr_f,
                                         stderr=self._stderr_f, cwd=tempfile.gettempdir(),
                                         start_new_session=True)
            self.exit_code = None
            try:
                self.wait_ready(ready_timeout)
                return self
            except NodeStartError:
                if self.proc.poll() is not None and attempt < 2 and \
                        "CACHE_HTTP_ADDR" not in self.extra_env and \
                        re.search(r"(?i)address already in use|EADDRINUSE|bind", self.stderr()):
                    log("node %s: port %d taken, retrying" % (self.name, self.port))
                    continue
                raise

    def wait_ready(self, timeout=20.0):
        """Polls GET /healthz until 200, the process exits, or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.exit_code = rc
                raise NodeStartError("hacached exited with %d during startup; stderr:\n%s" % (
                    rc, self.stderr_tail()))
            if self.ready_check is not None:
                try:
                    if self.ready_check(self):
                        return
                except Exception:
                    pass
            else:
                try:
                    c = _http_connection("127.0.0.1", self.port, 2)
                    c.request("GET", "/healthz")
                    r = c.getresponse()
                    r.read()
                    c.close()
                    if r.status == 200:
                        return
                except (OSError, http.client.HTTPException):
                    pass
            if time.monotonic() >= deadline:
                raise NodeStartError("hacached not healthy after %.1fs; stderr:\n%s" % (
                    timeout, self.stderr_tail()))
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Waits up to timeout seconds; returns the exit code or None if still running."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to timeout seconds; returns the exit code. If the process does not
        exit in time it is killed and an AssertionError is raised."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait_exit(timeout)
            if rc is None:
                self.kill()
                raise AssertionError("node %s did not exit within %.1fs of SIGTERM" % (
                    self.name, timeout))
        self.exit_code = self.proc.returncode
        self._close_stderr()
        return self.exit_code

    def stop_ok(self, timeout=10.0):
        """stop() and assert a clean exit: code 0 and no sanitizer report on stderr."""
        rc = self.stop(timeout)
        err = self.stderr()
        if re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", err):
            raise AssertionError("node %s: sanitizer report on stderr:\n%s" % (
                self.name, self.stderr_tail(200)))
        if rc != 0:
            raise AssertionError("node %s exited with %r after SIGTERM (expected 0); "
                                 "stderr:\n%s" % (self.name, rc, self.stderr_tail(200)))
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._close_stderr()

    def _close_stderr(self):
        if self._stderr_f is not None:
            try:
                self._stderr_f.close()
            except OSError:
                pass
            self._stderr_f = None

    # -- introspection

    def stderr(self):
        if not self.stderr_path:
            return ""
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, lines=120):
        t = self.stderr().splitlines()
        if len(t) > lines:
            return "[... %d lines omitted ...]\n" % (len(t) - lines) + "\n".join(t[-lines:])
        return "\n".join(t)

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/%d/status" % self.pid)

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def client(self, token=None, timeout=30.0):
        return Client(self.port, token=token, timeout=timeout)

    def metrics(self, token=None):
        c = Client(self.port, token=token)
        try:
            st, hd, body = c.request("GET", "/metrics")
        finally:
            c.close()
        if st != 200:
            raise AssertionError("GET /metrics -> %d %r" % (st, body[:300]))
        return parse_prometheus(body.decode("utf-8"))

    def cleanup_files(self):
        if self.stderr_path:
            try:
                os.unlink(self.stderr_path)
            except OSError:
                pass


def _kill_all():
    for n in _all_nodes:
        try:
            n.kill()
        except Exception:
            pass


atexit.register(_kill_all)


def _on_signal(signum, frame):
    _kill_all()
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_s, _on_signal)
    except (ValueError, OSError):
        pass


# --------------------------------------------------------------------------------------------
# HTTP

# HTTP API ports served over TLS (CACHE_HTTP_TLS_*), with the CA bundle file to verify them:
# every Client of such a port, and Node.wait_ready, speak HTTPS (the file is read per connection,
# so a test rotating the servers' CA can extend it first)
TLS_PORTS = {}


def _http_connection(host, port, timeout):
    ca = TLS_PORTS.get(port)
    if ca is None:
        return http.client.HTTPConnection(host, port, timeout=timeout)
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    return http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)


class Client:
    """HTTP/1.1 client over one keep-alive connection (HTTPS for a port in TLS_PORTS). request() returns
    (status, headers, body) with headers a dict of lower-cased names (last value wins; all
    values in .all_headers). `connects` counts TCP connections opened; a server that closes
    the connection makes the next request open a new one (and the count grows)."""

    def __init__(self, port, host="127.0.0.1", token=None, timeout=30.0):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.conn = _http_connection(host, port, timeout)
        self.connects = 0
        self.server_closed = 0  # responses after which the server closed the connection
        self.closed_after = []  # (method, path, status) of those responses, the first 20
        self.last_local_addr = None
        self.all_headers = []

    def request(self, method, path, body=None, headers=None, token=None):
        h = {}
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        if headers:
            h.update(headers)
        if self.conn.sock is None:
            self.conn.connect()
            self.connects += 1
            self.last_local_addr = self.conn.sock.getsockname()
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        self.all_headers = r.getheaders()
        hd = {k.lower(): v for k, v in self.all_headers}
        if r.will_close:
            self.server_closed += 1
            if len(self.closed_after) < 20:
                self.closed_after.append((method, path[:100], r.status))
            self.conn.close()
        return r.status, hd, data

    # convenience wrappers
    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body=b"", **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def post(self, path, body=b"", **kw):
        return self.request("POST", path, body=body, **kw)

    def json(self, method, path, body=None, **kw):
        """Request and decode the JSON body; returns (status, obj or None, headers, raw)."""
        st, hd, raw = self.request(method, path, body=body, **kw)
        try:
            obj = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            obj = None
        return st, obj, hd, raw

    def close(self):
        self.conn.close()


def raw_request(port, data, timeout=10.0, host="127.0.0.1"):
    """Sends raw bytes, reads until the server closes or one full response is in (by
    Content-Length). Returns (status, headers dict, body)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        return read_response(s, timeout)
    finally:
        s.close()


def read_response(sock, timeout=10.0):
    """Reads one HTTP/1.1 response (Content-Length or until close) from sock."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() >= deadline:
            raise AssertionError("no complete response head within %.1fs: %r" % (timeout,
                                                                                buf[:300]))
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            break
        buf += chunk
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("connection closed before a response head: %r" % buf[:300])
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    clen = headers.get("content-length")
    if clen is not None:
        need = int(clen)
        while len(body) < need and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                break
            if not chunk:
                break
            body += chunk
        body = body[:need]
    return int(m.group(1)), headers, body


def put_streaming(port, path, total_len, chunk=65536, timeout=60.0, headers=None,
                  host="127.0.0.1", chunked=False):
    """PUT a body of total_len bytes, streamed in chunks: with Content-Length total_len, or
    with Transfer-Encoding: chunked when chunked=True. The server may answer (e.g. 413) and
    close before the body is sent: that is detected (the socket turns readable, or sending
    fails with EPIPE/ECONNRESET) and the response is read anyway.
    Returns (status, headers, body, body bytes sent)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        h = "PUT %s HTTP/1.1\r\nHost: %s:%d\r\n" % (path, host, port)
        h += "Transfer-Encoding: chunked\r\n" if chunked else "Content-Length: %d\r\n" % total_len
        for k, v in (headers or {}).items():
            h += "%s: %s\r\n" % (k, v)
        s.sendall((h + "\r\n").encode("latin-1"))
        block = b"\xab" * chunk
        sent = 0
        pending = b""  # bytes of the current piece not yet accepted by the kernel
        deadline = time.monotonic() + timeout
        s.setblocking(False)
        finished = False
        while not finished:
            if time.monotonic() >= deadline:
                raise AssertionError("could not stream %d bytes within %.0fs (sent %d) and "
                                     "no response" % (total_len, timeout, sent))
            r, w, _ = select.select([s], [s], [], 1.0)
            if r:
                break  # the server answered early
            if not w:
                continue
            if not pending:
                n = min(chunk, total_len - sent)
                if chunked:
                    pending = (b"%x\r\n" % n + block[:n] + b"\r\n") if n else b"0\r\n\r\n"
                else:
                    pending = block[:n]
                sent += n
            try:
                k = s.send(pending)
                pending = pending[k:]
            except (BlockingIOError, InterruptedError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not pending and sent >= total_len and (not chunked or n == 0):
                finished = True
        s.setblocking(True)
        st, hd, body = read_response(s, timeout=max(1.0, deadline - time.monotonic()))
        return st, hd, body, sent
    finally:
        s.close()


def jbody(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None


def check_error(resp, status, code, what):
    """Soft-checks an error response: status and JSON {"error": str, "code": code}."""
    st, hd, raw = resp
    ok = check(st == status, "%s: expected status %d, got %d body=%r" % (what, status, st,
                                                                        raw[:200]))
    obj = jbody(raw)
    if check(isinstance(obj, dict), "%s: error body is not a JSON object: %r" % (what,
                                                                               raw[:200])):
        ok &= check(isinstance(obj.get("error"), str) and obj.get("error") != "",
                    "%s: error body lacks a non-empty \"error\" string: %r" % (what, obj))
        if code is not None:
            ok &= check(obj.get("code") == code, "%s: expected code %r, got %r" % (
                what, code, obj.get("code")))
        ok &= check("json" in hd.get("content-type", ""),
                    "%s: error Content-Type %r is not JSON" % (what, hd.get("content-type")))
    else:
        ok = False
    return ok


# --------------------------------------------------------------------------------------------
# Prometheus text format

class Metrics:
    """Parsed samples: list of (name, labels dict, value). `types` maps family -> type."""

    def __init__(self, samples, types, helps):
        self.samples, self.types, self.helps = samples, types, helps

    def find(self, name, **labels):
        """Samples of `name` whose labels include every given label (subset match)."""
        out = []
        for n, lb, v in self.samples:
            if n == name and all(lb.get(k) == str(val) for k, val in labels.items()):
                out.append((lb, v))
        return out

    def get(self, name, default=None, **labels):
        """Value of the single sample of `name` with exactly these labels, else default."""
        want = {k: str(v) for k, v in labels.items()}
        for n, lb, v in self.samples:
            if n == name and lb == want:
                return v
        return default

    def sum(self, name, **labels):
        return sum(v for _, v in self.find(name, **labels))

    def has(self, name):
        return any(n == name for n, _, _ in self.samples)

    def per_cache(self, name, cache):
        """Value for one cache whether the family is labelled by cache or is a plain total
        (then the total is returned)."""
        labelled = [(lb, v) for lb, v in self.find(name) if "cache" in lb]
        if labelled:
            return sum(v for lb, v in labelled if lb["cache"] == cache)
        return self.sum(name)

    def histogram(self, base, **labels):
        """Returns (buckets [(le float, count)], sum, count) for one label set."""
        want = {k: str(v) for k, v in labels.items()}
        buckets = []
        for n, lb, v in self.samples:
            if n == base + "_bucket":
                rest = {k: x for k, x in lb.items() if k != "le"}
                if rest == want and "le" in lb:
                    buckets.append((float(lb["le"].replace("+Inf", "inf")), v))
        buckets.sort()
        return buckets, self.get(base + "_sum", **labels), self.get(base + "_count", **labels)


_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*\"")


def _parse_value(s):
    s = s.strip()
    if s in ("+Inf", "Inf"):
        return float("inf")
    if s == "-Inf":
        return float("-inf")
    if s == "NaN":
        return float("nan")
    return float(s)


def parse_prometheus(text):
    """Parses the Prometheus text exposition format (0.0.4). Raises ValueError on malformed
    lines, so a broken /metrics fails the test that reads it."""
    samples, types, helps = [], {}, {}
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
            elif len(parts) >= 3 and parts[1] == "HELP":
                helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _NAME_RE.match(line)
        if not m:
            raise ValueError("metrics line %d: bad metric name: %r" % (lineno, line))
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            i += 1
            while True:
                while i < len(line) and line[i] in " \t":
                    i += 1
                if i < len(line) and line[i] == "}":
                    i += 1
                    break
                lm = _LABEL_RE.match(line, i)
                if not lm:
                    raise ValueError("metrics line %d: bad label at col %d: %r" % (lineno, i,
                                                                                  line))
                key = lm.group(1)
                i = lm.end()
                val = []
                while True:
                    if i >= len(line):
                        raise ValueError("metrics line %d: unterminated label value: %r" % (
                            lineno, line))
                    ch = line[i]
                    if ch == "\\":
                        nx = line[i + 1:i + 2]
                        val.append({"n": "\n", "\\": "\\", "\"": "\""}.get(nx, "\\" + nx))
                        i += 2
                        continue
                    if ch == "\"":
                        i += 1
                        break
                    val.append(ch)
                    i += 1
                if key in labels:
                    raise ValueError("metrics line %d: duplicate label %s" % (lineno, key))
                labels[key] = "".join(val)
                while i < len(line) and line[i] in " \t":
                    i += 1
                if i < len(line) and line[i] == ",":
                    i += 1
                    continue
                if i < len(line) and line[i] == "}":
                    i += 1
                    break
                raise ValueError("metrics line %d: expected , or } at col %d: %r" % (
                    lineno, i, line))
        rest = line[i:].split()
        if not rest or len(rest) > 2 or line[i:i + 1] not in (" ", "\t"):
            raise ValueError("metrics line %d: expected value [timestamp]: %r" % (lineno, line))
        samples.append((name, labels, _parse_value(rest[0])))
    return Metrics(samples, types, helps)


# --------------------------------------------------------------------------------------------
# runner

def run(module_globals, argv=None):
    """Runs every function named test_* in module_globals in definition order (or those named
    on the command line). Prints one PASS/FAIL/SKIP line per test and `N passed, N failed`
    as the final line; exits 1 if any failed (or nothing passed)."""
    argv = sys.argv[1:] if argv is None else argv
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    if argv:
        tests = [(n, f) for n, f in tests if n in argv]
    passed = failed = skipped = 0
    failed_names, skipped_names = [], []
    print("hacached binary: %s" % binary(), flush=True)
    for name, fn in tests:
        del _soft_failures[:]
        del _nodes_in_test[:]
        t0 = time.monotonic()
        print("RUN  %s" % name, flush=True)
        err = None
        try:
            fn()
        except Skip as e:
            skipped += 1
            skipped_names.append(name)
            print("SKIP %s: %s" % (name, e), flush=True)
            _finish_nodes(ok=True)
            continue
        except Exception:
            err = traceback.format_exc()
        dt = time.monotonic() - t0
        if err is None and not _soft_failures:
            # a test that left a node running still has to stop it cleanly
            try:
                _finish_nodes(ok=True)
            except Exception:
                err = traceback.format_exc()
        if err is None and not _soft_failures:
            passed += 1
            print("PASS %s (%.2fs)" % (name, dt), flush=True)
        else:
            failed += 1
            failed_names.append(name)
            if err:
                print(err.rstrip(), flush=True)
            for s in _soft_failures:
                print("  - " + s, flush=True)
            print("FAIL %s (%.2fs)" % (name, dt), flush=True)
            _finish_nodes(ok=False)
    for n in _persistent_nodes:
        if n.alive():
            try:
                n.stop_ok()
            except Exception as e:
                failed += 1
                failed_names.append("teardown of node %s" % n.name)
                print("FAIL teardown of node %s: %s" % (n.name, e), flush=True)
    for msg in _notes:
        print("note (not a failure): %s" % msg, flush=True)
    if skipped_names:
        print("skipped (NOT passed): %s" % ", ".join(skipped_names), flush=True)
    if failed_names:
        print("failed: %s" % ", ".join(failed_names), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    _kill_all()
    sys.exit(1 if failed or (passed == 0 and not skipped) else 0)


def _finish_nodes(ok):
    """After a test: nodes still running are stopped (clean exit required when the test
    passed); on failure every node's stderr is dumped."""
    problems = []
    for n in list(_nodes_in_test):
        if n.alive():
            if ok:
                try:
                    n.stop_ok()
                except Exception as e:
                    problems.append(str(e))
            else:
                n.kill()
        if not ok:
            print("---- stderr of node %s (port %s, exit %r, %s) ----" % (
                n.name, n.port, n.proc.returncode if n.proc else None, n.stderr_path),
                flush=True)
            print(n.stderr_tail(150), flush=True)
            print("---- end of stderr of node %s ----" % n.name, flush=True)
        elif not problems:
            n.cleanup_files()
    if not ok:
        for n in _persistent_nodes:
            print("---- last stderr lines of shared node %s (port %s, %s) ----" % (
                n.name, n.port, "running" if n.alive() else "exit %r" % n.exit_code), flush=True)
            print(n.stderr_tail(60), flush=True)
            print("---- end ----", flush=True)
    if problems:
        raise AssertionError("; ".join(problems))  # the caller dumps stderr of these nodes
    del _nodes_in_test[:]


def tcp_rx_queue(local_port, remote_port):
    """Bytes waiting in the receive queue of the 127.0.0.1 TCP socket local_port<-remote_port
    (from /proc/net/tcp), or None when there is no such socket. Lets a test observe that the
    server has read what was sent."""
    want_l = "0100007F:%04X" % local_port
    want_r = "0100007F:%04X" % remote_port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[1] == want_l and p[2] == want_r:
                return int(p[4].split(":")[1], 16)
    return None
