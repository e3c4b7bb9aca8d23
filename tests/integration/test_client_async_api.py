"""test_client_async_api.py: the asynchronous client's data-API options (hc_aget_ex,
hc_aput_ex, hc_adel_ex, hc_aclient_set_consistency) against a live 3-node cluster, through
each node as the first endpoint: conditional puts (if_absent, if_version) with the new
version in the callback, a linearizable read with version and remaining TTL, a condition
refused without quorum, a conditional delete, a leader read after it (not found)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402


def binary():
    bd = os.environ.get("HC_BUILD_DIR") or os.path.join(H.REPO, "build")
    return os.path.join(bd, "bin", "aclient_api")


def test_async_data_api_options():
    cl = C.Cluster(3, data_dirs=False)
    try:
        for i, port in enumerate(cl.http_ports):
            # one endpoint only: every call goes through that node (leader or follower)
            r = subprocess.run([binary(), "http://127.0.0.1:%d" % port, "key-%d" % i],
                               capture_output=True, text=True, timeout=120)
            H.log("through node %d: %s" % (i, r.stdout.strip().replace("\n", " | ")))
            H.check(r.returncode == 0 and r.stdout.strip().endswith("ok"),
                    "scenario through node %d: %s %s" % (i, r.stdout, r.stderr))
        for nd in cl.live():
            nd.stop_ok()
    finally:
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
