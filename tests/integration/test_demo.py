"""test_demo.py: scripts/demo.sh --detach runs the whole cluster walk-through (build, dev
certificates, 3-node mTLS cluster, write/read, SIGKILL of the leader and failover, rejoin) on
free loopback ports, exits 0 and leaves three running hacached processes whose PIDs it printed.

The build directory of the test run is reused (HC_BUILD_DIR), so demo.sh's build step only
checks that the tree is up to date."""

import atexit
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

SCRIPT = os.path.join(H.REPO, "scripts", "demo.sh")
_leftover = []


def _ports(base):
    return [base + 1, base + 2, base + 3, base + 11, base + 12, base + 13]


def _free_base():
    """A base port whose six demo ports (base+1..3, base+11..13) are all free on loopback."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 20)
        socks = []
        try:
            for p in _ports(base):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free base port found")


def _state(pid):
    """The process state letter from /proc, or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _running(pid):
    return _state(pid) not in (None, "Z", "X")


def _stop(pids, timeout=15.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return all(not _running(p) for p in pids)


@atexit.register
def _cleanup():
    _stop([p for p in _leftover if _running(p)], timeout=5.0)


def test_demo_detach_cluster():
    base = _free_base()
    env = dict(os.environ)
    if not env.get("HC_BUILD_DIR") and env.get("HACACHED"):
        env["HC_BUILD_DIR"] = os.path.dirname(os.path.dirname(env["HACACHED"]))
    H.log("running %s --detach --base-port %d (HC_BUILD_DIR=%s)"
          % (SCRIPT, base, env.get("HC_BUILD_DIR", "<default>")))
    # its own session: on a timeout the script gets SIGTERM, which makes it stop its nodes
    p = subprocess.Popen(["bash", SCRIPT, "--detach", "--base-port", str(base)], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, cwd="/", start_new_session=True)
    try:
        out, _ = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        p.terminate()
        try:
            out, _ = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        print(out[-6000:])
        raise AssertionError("demo.sh did not finish within 180 s")
    m = re.search(r"^stop it with: kill ([0-9 ]+)$", out, re.M)
    pids = [int(x) for x in m.group(1).split()] if m else []
    _leftover.extend(pids)
    if p.returncode != 0 or not m:
        print(out[-6000:])
    H.check_eq(p.returncode, 0, "demo.sh exit status")
    H.check(m is not None, "demo.sh printed 'stop it with: kill PID...'")
    H.check_eq(len(pids), 3, "number of PIDs printed")
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode()
        except OSError:
            argv0 = ""
        H.check(_running(pid) and os.path.basename(argv0) == "hacached",
                "pid %d is a running hacached (state %s, argv0 %r)" % (pid, _state(pid), argv0))
    fo = re.search(r"^failover took (\d+) ms", out, re.M)
    H.check(fo is not None, "demo.sh reported the failover time")
    if fo:
        H.log("failover seen by demo.sh: %s ms" % fo.group(1))
    H.check(re.search(r"HTTP http://127\.0\.0\.1:%d" % (base + 11), out) is not None,
            "the nodes use the ports of --base-port")
    H.check("Killed" not in out, "no job-control noise in the output")
    # every node of the detached cluster answers, and they agree on one leader
    leaders = set()
    for port in _ports(base)[3:]:
        c = H.Client(port, timeout=5)
        try:
            st, obj, _, _ = c.json("GET", "/v1/status")
        finally:
            c.close()
        H.check_eq(st, 200, "GET /v1/status on %d" % port)
        if st == 200:
            leaders.add(obj.get("leader"))
    H.check(len(leaders) == 1 and None not in leaders, "one agreed leader: %r" % leaders)
    H.check(_stop(pids), "the demo's nodes stop after SIGTERM")


if __name__ == "__main__":
    H.run(globals())
