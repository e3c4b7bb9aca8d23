"""test_cli_and_logs.py: --help / --version, flags winning over the environment, the one-line
fail-fast on misconfiguration, and the two log formats (every line logfmt, or every line one
JSON object)."""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

# SPEC section 2: every variable must be listed by --help.
SPEC_VARS = [
    "HA_MODE", "HA_HOSTS", "HOSTNAME_OVERWRITE", "CACHE_LISTEN_ADDR", "CACHE_AUTH_TOKEN",
    "CACHE_AUTH_TOKEN_FILE", "CACHE_TLS", "CACHE_TLS_SERVER_CERT", "CACHE_TLS_SERVER_KEY",
    "CACHE_TLS_CLIENT_CERT", "CACHE_TLS_CLIENT_KEY", "CACHE_TLS_CA_SERVER", "CACHE_TLS_CA_CLIENT",
    "CACHE_TLS_CLIENT_VALIDATE_DOMAIN", "CACHE_TLS_SNI_OVERWRITE", "CACHE_HTTP_ADDR",
    "CACHE_HTTP_TLS_CERT", "CACHE_HTTP_TLS_KEY", "CACHE_API_TOKEN", "CACHE_API_TOKEN_FILE",
    "CACHE_API_INSECURE", "CACHE_RESP_ADDR", "CACHE_MAX_MEMORY", "CACHE_MAX_KEY_SIZE",
    "CACHE_MAX_VALUE_SIZE", "CACHE_HEARTBEAT_MS", "CACHE_ELECTION_TIMEOUT_MS",
    "CACHE_QUORUM_LOSS_GRACE_MS", "CACHE_DATA_DIR", "CACHE_LOG_LEVEL", "CACHE_LOG_FORMAT",
    "CACHE_SHUTDOWN_TIMEOUT_MS",
]


def run(args, env=None, timeout=20):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(env or {})
    return subprocess.run([H.binary()] + args, env=e, capture_output=True, text=True,
                          timeout=timeout)


def test_version_and_help():
    r = run(["--version"])
    H.check_eq(r.returncode, 0, "--version exit status")
    H.check(re.match(r"^hacached \d+\.\d+\.\d+\n$", r.stdout) is not None,
            "--version prints 'hacached X.Y.Z': %r" % r.stdout)
    r = run(["--help"])
    H.check_eq(r.returncode, 0, "--help exit status")
    for v in SPEC_VARS:
        H.check(v in r.stdout, "--help lists %s" % v)
    for flag in ("--ha-hosts", "--log-level", "--max-memory", "--check-config"):
        H.check(flag in r.stdout, "--help lists the flag %s" % flag)


def test_misconfiguration_fails_fast_with_one_line():
    r = run([], env={"HA_MODE": "true", "HA_HOSTS": "a:1,,b:2", "CACHE_TLS": "false",
                     "CACHE_AUTH_TOKEN": "x" * 32, "HOSTNAME_OVERWRITE": "a:1"})
    H.check_eq(r.returncode, 2, "exit status of a misconfigured daemon")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    H.check_eq(len(lines), 1, "one line on stderr: %r" % r.stderr)
    H.check("HA_HOSTS" in r.stderr, "the line names HA_HOSTS: %r" % r.stderr)
    r = run([], env={"CACHE_MAX_MEMORY": "lots"})
    H.check_eq(r.returncode, 2, "exit status for a bad size")
    H.check("CACHE_MAX_MEMORY" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
            "one line naming CACHE_MAX_MEMORY: %r" % r.stderr)


def test_flag_wins_over_environment():
    port = H.free_port()
    # the environment names an address that is never bound here (TEST-NET-1); the flag wins
    n = H.Node(env={"CACHE_HTTP_ADDR": "192.0.2.1:1"}, args=["--http-addr=127.0.0.1:%d" % port],
               name="flagwins", start=False)
    _start_on(n, port)
    c = n.client()
    st, _, _ = c.get("/healthz")
    H.check_eq(st, 200, "node listens on the flag's address")
    c.close()
    n.stop_ok()


def _start_on(node, port):
    """Starts node with its own args, waiting on a fixed port (the harness would derive the
    port from CACHE_HTTP_ADDR, which here is deliberately wrong)."""
    import tempfile
    fd, node.stderr_path = tempfile.mkstemp(prefix="hacached-flag-", suffix=".stderr")
    node._stderr_f = os.fdopen(fd, "wb")
    node.proc = subprocess.Popen([H.binary()] + node.args, env=node._env(),
                                 stdin=subprocess.DEVNULL, stdout=node._stderr_f,
                                 stderr=node._stderr_f, start_new_session=True)
    node.port = port
    node.wait_ready(20)


def _exercise(n):
    c = n.client()
    c.put("/v1/caches/logs/k", b"v")
    c.get("/v1/caches/logs/k")
    c.get("/v1/caches/logs/absent")
    c.close()
    n.stop_ok()


def test_json_logs_are_one_object_per_line():
    n = H.Node(env={"CACHE_LOG_FORMAT": "json"}, log_level="debug", name="jsonlogs")
    _exercise(n)
    lines = [line for line in n.stderr().splitlines() if line.strip()]
    H.check(len(lines) >= 5, "some log lines were written: %d" % len(lines))
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            H.check(False, "not a JSON object: %r" % line)
            continue
        H.check(isinstance(obj, dict) and {"ts", "level", "msg"} <= set(obj),
                "JSON line has ts, level, msg: %r" % line)
        H.check(obj.get("level") in ("error", "warn", "info", "debug", "trace"),
                "level is one of the SPEC levels: %r" % line)
    H.check(any(json.loads(x).get("msg") == "shutting down" for x in lines),
            "shutdown is logged")


def test_text_logs_are_logfmt():
    n = H.Node(log_level="debug", name="textlogs")
    _exercise(n)
    lines = [line for line in n.stderr().splitlines() if line.strip()]
    pat = re.compile(r'^ts=\S+ level=(error|warn|info|debug|trace) msg=("(?:[^"\\]|\\.)*"|\S+)'
                     r'( [A-Za-z_][A-Za-z0-9_]*=("(?:[^"\\]|\\.)*"|\S*))*$')
    for line in lines:
        H.check(pat.match(line) is not None, "logfmt line: %r" % line)


def test_log_level_filters():
    n = H.Node(log_level="info", name="infolevel")
    _exercise(n)
    info = n.stderr()
    H.check("msg=\"node started\"" in info, "info lines at CACHE_LOG_LEVEL=info")
    H.check("level=debug" not in info, "no debug lines at CACHE_LOG_LEVEL=info")
    n = H.Node(log_level="warn", name="warnlevel")
    _exercise(n)
    warn = n.stderr()
    H.check(re.search(r"level=(info|debug|trace)", warn) is None,
            "only warn/error lines at CACHE_LOG_LEVEL=warn: %r" % warn[:300])


if __name__ == "__main__":
    H.run(globals())
