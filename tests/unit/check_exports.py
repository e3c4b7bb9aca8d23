"""check_exports.py LIB MAP: the dynamic symbols LIB defines are exactly the `global:` names of
the linker version script MAP (no server, raft, h2o or libuv internals leak out of
libhacache_node.so)."""

import re
import subprocess
import sys


def main():
    lib, mapfile = sys.argv[1], sys.argv[2]
    text = re.sub(r"/\*.*?\*/", "", open(mapfile).read(), flags=re.S)
    glob = re.search(r"global:(.*?)local:", text, flags=re.S).group(1)
    want = {s.strip() for s in glob.split(";") if s.strip()}
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    got = {ln.split()[-1] for ln in out.splitlines() if ln.strip()}
    got = {s.split("@")[0] for s in got}
    extra, missing = sorted(got - want), sorted(want - got)
    print("%s: %d symbols exported" % (lib, len(got)))
    if extra or missing:
        print("exported but not public: %s" % extra[:50])
        print("public but not exported: %s" % missing)
        return 1
    if not all(s.startswith("hc_") for s in got):
        print("a public symbol without the hc_ prefix")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
