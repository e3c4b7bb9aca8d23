"""test_dev_certs.py: scripts/dev-certs.sh makes credentials that pass every cluster check of
hacached --check-config (chain, key match, SAN, token length), and a certificate from another
run's CA is refused."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

SCRIPT = os.path.join(H.REPO, "scripts", "dev-certs.sh")
HOSTS = "https://127.0.0.1:7001,https://127.0.0.1:7002,https://127.0.0.1:7003"


def check_config(d, i, ca=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HA_MODE": "true",
           "HA_HOSTS": HOSTS, "HOSTNAME_OVERWRITE": "127.0.0.1:%d" % (7001 + i),
           "CACHE_AUTH_TOKEN_FILE": os.path.join(d, "token"),
           "CACHE_TLS_SERVER_CERT": os.path.join(d, "node-%d.crt" % i),
           "CACHE_TLS_SERVER_KEY": os.path.join(d, "node-%d.key" % i),
           "CACHE_TLS_CA_SERVER": ca or os.path.join(d, "ca.crt")}
    return subprocess.run([H.binary(), "--check-config"], env=env, capture_output=True,
                          text=True, timeout=20)


def test_dev_certs_pass_check_config():
    d1, d2 = tempfile.mkdtemp(prefix="hc-dev1-"), tempfile.mkdtemp(prefix="hc-dev2-")
    try:
        for d in (d1, d2):
            r = subprocess.run(["bash", SCRIPT, d, "3"], capture_output=True, text=True,
                               timeout=60)
            H.check_eq(r.returncode, 0, "dev-certs.sh exit status (%s)" % r.stderr)
        with open(os.path.join(d1, "token")) as f:
            toks = [t for t in f.read().split("\n") if t]
        H.check(len(toks) == 2 and all(len(t) >= 16 for t in toks), "two long tokens")
        for i in range(3):
            r = check_config(d1, i)
            H.check_eq(r.returncode, 0, "node %d --check-config (%s)" % (i, r.stderr.strip()))
        r = check_config(d1, 0, ca=os.path.join(d2, "ca.crt"))
        H.check_eq(r.returncode, 2, "a certificate from another CA is refused")
        H.check("CACHE_TLS" in r.stderr, "the error names the TLS variable: %r" % r.stderr)
    finally:
        shutil.rmtree(d1, ignore_errors=True)
        shutil.rmtree(d2, ignore_errors=True)


if __name__ == "__main__":
    H.run(globals())
