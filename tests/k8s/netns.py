"""netns.py: network-namespace plumbing for the pod simulation, with no knowledge of pods:
running a command, moving a thread into a namespace (setns), running a function inside one,
whether the kernel lets this process make namespaces, removing the leftovers of an earlier run,
and the ids a process runs with. Used by pods.py (and the checks in clients.py).

Names of namespaces and directories carry PREFIX and the creating test's pid, so
cleanup_leftovers() can tell an earlier run's (its process gone) from a live one.
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading

PREFIX = "hcpods"
NET = "198.18"  # /16 of the pod network (RFC 2544 benchmarking range)
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def run(*args, check=True, timeout=30, input=None):
    """Runs a command, returns its stdout (text). Raises with stderr on failure when check."""
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, input=input, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                                p.stderr.strip()[-500:]))
    return p.stdout


def setns_net(path):
    """Moves the calling thread into the network namespace at path (/run/netns/NAME)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns(%s): %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def in_netns(path, fn, *args, timeout=120.0):
    """Runs fn(*args) on a thread inside the network namespace at path; returns its result
    (or raises its exception). For sockets that must be opened inside a pod (loopback)."""
    out = {}

    def body():
        try:
            setns_net(path)
            out["v"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["e"] = e
    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("in_netns(%s): %r did not return within %.0fs" % (path, fn,
                                                                              timeout))
    if "e" in out:
        raise out["e"]
    return out.get("v")


def namespaces_refused():
    """None when this process may create network, UTS and mount namespaces; else the reason
    the kernel (or the lack of privileges) gives."""
    if os.geteuid() != 0:
        return "not running as root (uid %d)" % os.geteuid()
    for tool in ("ip", "unshare", "nsenter", "setpriv"):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    name = "%s-%d-probe" % (PREFIX, os.getpid())
    try:
        run("ip", "netns", "add", name)
    except Exception as e:
        return "ip netns add refused: %s" % e
    try:
        run("ip", "netns", "exec", name, "unshare", "--uts", "--mount", "--propagation",
            "private", "--", "sh", "-c", "hostname probe-host && ip link set lo up")
    except Exception as e:
        return "unshare --uts --mount in a network namespace refused: %s" % e
    finally:
        run("ip", "netns", "del", name, check=False)
    return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cleanup_leftovers():
    """Removes namespaces with our prefix whose creating process is gone (an earlier run that
    was killed; CI reuses machines), killing what still runs inside them (processes an
    earlier run of this harness started). Returns the names removed."""
    removed = []
    for line in run("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"%s-(\d+)-" % PREFIX, name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        for pid in run("ip", "netns", "pids", name, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        run("ip", "netns", "del", name, check=False)
        removed.append(name)
    tmp = tempfile.gettempdir()
    for e in os.listdir(tmp):
        m = re.match(r"%s-(\d+)-" % PREFIX, e)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(tmp, e), ignore_errors=True)
    return removed


def proc_ids(pid):
    """(real uid, real gid, supplementary groups) of a process."""
    uid = gid = None
    groups = []
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
            elif line.startswith("Groups:"):
                groups = [int(x) for x in line.split()[1:]]
    return uid, gid, groups
