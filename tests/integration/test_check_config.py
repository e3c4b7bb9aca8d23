#!/usr/bin/env python3
"""hacached --check-config end to end (SPEC section 2): exit 0 and "configuration OK" for a
valid configuration; exit 2 with one "hacached: VARIABLE: ..." line per problem otherwise.

Runs $HACACHED with a clean environment (PATH plus what each case sets). Certificates are made
with the openssl CLI in a temporary directory. Python 3 standard library only."""

import os
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 20
TOKEN = "0123456789abcdef0123456789abcdef"  # 32 bytes
HOSTS_TLS = "https://127.0.0.1:7001, https://127.0.0.1:7002, https://127.0.0.1:7003"
HOSTS_PLAIN = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

passed = 0
failed = 0


def run(binary, env, args=("--check-config",)):
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    clean.update(env)
    return subprocess.run([binary, *args], env=clean, capture_output=True, text=True,
                          timeout=TIMEOUT)


def check(name, binary, env, want_rc, stderr_has=(), stdout_has=(), args=()):
    """One case: exit status, and substrings that must appear in stderr/stdout."""
    global passed, failed
    problems = []
    try:
        p = run(binary, env, ("--check-config", *args))
    except subprocess.TimeoutExpired:
        problems.append("timed out after %ds" % TIMEOUT)
        p = None
    if p is not None:
        if p.returncode != want_rc:
            problems.append("exit status %d, want %d" % (p.returncode, want_rc))
        for s in stderr_has:
            if s not in p.stderr:
                problems.append("stderr lacks %r" % s)
        for s in stdout_has:
            if s not in p.stdout:
                problems.append("stdout lacks %r" % s)
        if want_rc == 2:
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            if not lines:
                problems.append("no error line on stderr")
            for l in lines:
                # sanitizer reports are not error lines of ours; let them fail via the status
                if not l.startswith("hacached: ") and "Sanitizer" not in l:
                    problems.append("stderr line not 'hacached: ...': %r" % l)
    if problems:
        failed += 1
        print("FAIL %s" % name)
        for pr in problems:
            print("  " + pr)
        if p is not None:
            print("  stdout: " + p.stdout.replace("\n", "\n          "))
            print("  stderr: " + p.stderr.replace("\n", "\n          "))
    else:
        passed += 1
        print("ok   %s" % name)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   timeout=TIMEOUT)


def make_certs(d):
    """CA, a valid leaf, an expired leaf (same key), and an unrelated key."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=hacache test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-new", *ec, "-keyout", "leaf.key", "-out", "leaf.csr",
            "-subj", "/CN=node", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "2", "-days", "30", "-extfile", "ext.cnf", "-out", "leaf.pem",
            cwd=d)
    # `openssl ca` is the CLI that takes explicit dates (req/x509 only take -days > 0)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
                "serial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
                "[p]\ncommonName = supplied\n")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("03\n")
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
            "-in", "leaf.csr", "-out", "expired.pem", "-notext", "-extfile", "ext.cnf",
            "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", cwd=d)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "other.key", cwd=d)


def main():
    global failed
    binary = os.environ.get("HACACHED", "")
    if not binary or not os.access(binary, os.X_OK):
        print("HACACHED=%r is not an executable hacached binary" % binary)
        print("0 passed, 1 failed")
        return 1

    cluster_plain = {
        "HA_MODE": "true",
        "HA_HOSTS": HOSTS_PLAIN,
        "HOSTNAME_OVERWRITE": "127.0.0.1:7001",
        "CACHE_TLS": "false",
    }

    # (a) standalone defaults
    check("standalone default", binary, {}, 0, stdout_has=["configuration OK"])
    # (b) this node is not in HA_HOSTS
    check("node not in HA_HOSTS", binary,
          {"HA_MODE": "true", "HA_HOSTS": HOSTS_PLAIN, "HOSTNAME_OVERWRITE": "nothere"}, 2,
          stderr_has=["hacached: HA_HOSTS: ", "\"nothere\"", "127.0.0.1:7001, 127.0.0.1:7002"])
    # (c) short token
    check("short token", binary, dict(cluster_plain, CACHE_AUTH_TOKEN="short"), 2,
          stderr_has=["hacached: CACHE_AUTH_TOKEN: ", "at least 16"])
    # (d) a 32-byte token makes it valid
    check("cluster without TLS", binary, dict(cluster_plain, CACHE_AUTH_TOKEN=TOKEN), 0,
          stdout_has=["configuration OK"])
    # flags win over the environment
    check("flag overrides env", binary, dict(cluster_plain, CACHE_AUTH_TOKEN="short"), 0,
          stdout_has=["configuration OK"], args=["--auth-token=" + TOKEN])

    d = tempfile.mkdtemp(prefix="hc-check-config-")
    try:
        cluster_tls = {
            "HA_MODE": "true",
            "HA_HOSTS": HOSTS_TLS,
            "HOSTNAME_OVERWRITE": "127.0.0.1:7002",
            "CACHE_AUTH_TOKEN": TOKEN,
            "CACHE_TLS_SERVER_CERT": os.path.join(d, "leaf.pem"),
            "CACHE_TLS_SERVER_KEY": os.path.join(d, "leaf.key"),
            "CACHE_TLS_CA_SERVER": os.path.join(d, "ca.pem"),
        }
        # (e) TLS on, certificate files missing (before they exist)
        check("missing cert files", binary, cluster_tls, 2,
              stderr_has=["hacached: CACHE_TLS_SERVER_CERT: ", "leaf.pem"])
        try:
            make_certs(d)
        except (OSError, subprocess.SubprocessError) as e:
            failed += 1
            print("FAIL openssl CLI could not make certificates: %s" % e)
        else:
            check("valid mTLS cluster", binary, cluster_tls, 0, stdout_has=["configuration OK"])
            # (f) expired certificate, key of another certificate
            check("expired cert", binary,
                  dict(cluster_tls, CACHE_TLS_SERVER_CERT=os.path.join(d, "expired.pem")), 2,
                  stderr_has=["hacached: CACHE_TLS_SERVER_CERT: ", "expired on 2020-02-01"])
            check("mismatched key", binary,
                  dict(cluster_tls, CACHE_TLS_SERVER_KEY=os.path.join(d, "other.key")), 2,
                  stderr_has=["hacached: CACHE_TLS_SERVER_KEY: ", "does not match"])
            check("https without CACHE_TLS", binary, dict(cluster_tls, CACHE_TLS="false"), 2,
                  stderr_has=["hacached: HA_HOSTS: ", "CACHE_TLS=true"])
    finally:
        shutil.rmtree(d, ignore_errors=True)

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
