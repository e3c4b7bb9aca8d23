"""test_client_token_file.py: a client's API token from a file, rotated without a restart and
without a failed call (hc_client_set_token_file). Under steady load (client_load):
  1. the node accepts the old and the new token (CACHE_API_TOKEN_FILE, both lines);
  2. the client's token file switches to the new token (picked up by its next call);
  3. a bad update of the client's file (empty) keeps the new token;
  4. the node accepts the new token alone.
Zero failed calls; afterwards a client with the old token gets HC_EAUTH."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from test_client_tls import Load, replace, run_once  # noqa: E402

EAUTH = -4
OLD, NEW = "old-token-0123456789abcdef", "new-token-fedcba9876543210"


def test_token_file_rotation_under_load():
    d = tempfile.mkdtemp(prefix="hacache-token-")
    server_tokens = os.path.join(d, "api-tokens")
    client_token = os.path.join(d, "client-token")
    replace(server_tokens, (OLD + "\n").encode())
    replace(client_token, (OLD + "\n").encode())
    node = H.Node(env={"CACHE_API_TOKEN_FILE": server_tokens})
    ep = "http://127.0.0.1:%d" % node.port
    load = Load(ep, "--token-file", client_token, "--timeout", "3000")
    load.wait_more(200, "at the start")
    # 1. the node takes both (its credential watcher sees the change)
    replace(server_tokens, (OLD + "\n" + NEW + "\n").encode())
    H.wait_until(lambda: run_once(ep, "--token", NEW)[0] == 0, 20,
                 what="the node accepts the new token")
    # 2. the client moves to the new token
    replace(client_token, ("\n  " + NEW + "  \n").encode())
    load.wait_more(200, "after the client's token file changed")
    # 3. a bad update keeps it
    replace(client_token, b"\n\n")
    load.wait_more(200, "after an empty token file")
    # 4. the old token is retired on the node: the client, on the new one, does not notice
    replace(server_tokens, (NEW + "\n").encode())
    H.wait_until(lambda: run_once(ep, "--token", OLD)[0] == 1, 20,
                 what="the node refuses the old token")
    load.wait_more(200, "with the old token retired")
    done = load.finish()
    H.check_eq(load.failures()[:5], [], "failed calls during the rotation")
    H.check(done.endswith("fail=0"), "zero failed calls: %s" % done)
    rc, out = run_once(ep, "--token", OLD)
    H.check(rc == 1 and "rc=%d" % EAUTH in out, "the old token is refused: %s" % out)
    node.stop_ok()


if __name__ == "__main__":
    H.run(globals())
