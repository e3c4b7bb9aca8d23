"""prev.py: the older hacached that mixed-version tests run next to the current build.

    sys.path.insert(0, os.path.join(REPO, "tests", "versions"))
    import prev
    path = prev.binary()          # hacached of prev.REF, built once (build_ref.sh) and reused
    prev.PROTOCOL                 # the peer protocol it speaks (its maximum)
    prev.current_protocol()       # HC_PROTO_MAX of the tree under test (server/frame.h)

Any harness that can "start node i with binary B" can use it (tests/integration/cluster.py:
Cluster.start_node(i, binary=B)). Standard library only.
"""

import os
import re
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The older build: the last commit before peer protocol 2 (4a976ba "a node that starts without
# raft state is a new incarnation": raft ids per incarnation, which let nodes without state
# rejoin as voters). It speaks protocol 1 only and builds with Debian 12's packages like the
# current tree. Move it forward deliberately, to the last commit before the next change of the
# wire or on-disk format, once protocol 1 peers are no longer supported (HC_PROTO_MIN raised)
# or the supported upgrade path starts elsewhere; then update PROTOCOL and the README's
# "Rolling upgrade and downgrade" (what downgrades are supported).
REF = "572dcb0987b67600973f08879b74d57b50d32c2e"
PROTOCOL = 1

BUILD_TIMEOUT_S = 480


def current_protocol():
    """HC_PROTO_MAX of the tree under test (server/frame.h)."""
    with open(os.path.join(REPO, "server", "frame.h")) as f:
        m = re.search(r"#define HC_PROTO_MAX[\s\\]*(\d+)", f.read())
    if m is None:
        raise AssertionError("no HC_PROTO_MAX in server/frame.h")
    return int(m.group(1))


def binary(log=print):
    """Path of hacached of REF: $HACACHED_PREV when set (a prebuilt binary of REF), else built
    once by build_ref.sh into $HC_PREV_DIR, default build/prev-<sha> of this checkout (shared
    by the normal and the ASan suite; the old build is never sanitized). Raises
    AssertionError with build_ref.sh's message when it cannot be had (a shallow clone, a
    failed build): a mixed-version test fails then, it does not skip."""
    given = os.environ.get("HACACHED_PREV")
    if given:
        if not os.access(given, os.X_OK):
            raise AssertionError("HACACHED_PREV=%s is not an executable" % given)
        return given
    out = os.environ.get("HC_PREV_DIR") or os.path.join(REPO, "build", "prev-" + REF[:12])
    t0 = time.monotonic()
    r = subprocess.run(["bash", os.path.join(REPO, "tests", "versions", "build_ref.sh"), REF,
                        out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=BUILD_TIMEOUT_S)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0:
        raise AssertionError("cannot build hacached of %s (exit %d):\n%s" % (
            REF, r.returncode, err))
    log("%s (%.1fs)" % (err.strip().splitlines()[-1], time.monotonic() - t0))
    return r.stdout.decode().strip().splitlines()[-1]
