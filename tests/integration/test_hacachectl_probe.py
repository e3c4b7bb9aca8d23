#!/usr/bin/env python3
"""hacachectl config check --probe, status --watch and status's disagreement lines, against
real hacached processes (a 3-node mTLS cluster from cluster.py).

The probe dials every other HA_HOSTS entry with one node's configuration and reports TCP, TLS,
token and version per peer (exit 0 all ok, 1 any failure). It must not disturb the cluster: it
speaks for a running node, so the test checks that no term changes and no peer link of the real
nodes goes down or is replaced while probes run from every node's configuration."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402


def ctl(*args, env=None, timeout=60):
    binary = os.environ.get("HACACHECTL") or os.path.join(
        os.environ.get("HC_BUILD_DIR", "build"), "bin", "hacachectl")
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(env or {})
    p = subprocess.run([binary, *args], capture_output=True, env=e, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    H.check("Sanitizer" not in err and "runtime error" not in err,
            "no sanitizer report from hacachectl %s:\n%s" % (args, err))
    return p.returncode, out, err


def probe(env, *extra):
    return ctl("config", "check", "--probe", *extra, env=env)


def name(cl, i):
    return "127.0.0.1:%d" % cl.peer_ports[i]


def link_events(node):
    """How often the node logged a peer link going down, up or being replaced so far."""
    text = node.stderr()
    return {k: text.count('msg="%s"' % k) for k in ("peer link down", "peer link up",
                                                    "peer link replaced")}


def cluster_view(cl):
    """What must not change while probes run: every node's term, role and leader, and the
    ids of its peer links (a replaced or re-dialed link gets a new id)."""
    view = {}
    for nd, st in cl.statuses().items():
        H.check(st is not None, "%s answers /v1/status" % nd.name)
        links = sorted((pl["peer"], pl["link"]) for pl in st["tls"]["peer_links"])
        view[nd.name] = (st["term"], st["role"], st["leader"], links, link_events(nd))
    return view


def http_request_queued(port):
    """Is a request waiting, unread, in an accepted socket of 127.0.0.1:port (a stopped node)?"""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[1] == want and p[3] == "01" and int(p[4].split(":")[1], 16) > 0:
                return True
    return False


def ok_lines(out):
    return [ln for ln in out.splitlines() if ln.startswith("peer ")]


def test_probe():
    cl = C.Cluster(3)
    try:
        cl.wait_leader()
        before = cluster_view(cl)

        # (a) a healthy cluster: every node's configuration probes both of its peers
        for i in range(3):
            rc, out, err = probe(cl.env(i))
            H.log("probe from %s:\n%s%s" % (name(cl, i), out, err))
            H.check_eq(rc, 0, "probe from node %d of a healthy cluster exits 0 (%s)" % (i, err))
            lines = ok_lines(out)
            H.check_eq(len(lines), 2, "one line per peer (the node itself is skipped)")
            for j in range(3):
                if j != i:
                    ln = [x for x in lines if x.startswith("peer %s:" % name(cl, j))]
                    H.check(len(ln) == 1, "a line for peer %s" % name(cl, j))
                    for step in ("tcp ok", "tls ok", "token ok", "version ok"):
                        H.check(step in ln[0], "%s for %s: %s" % (step, name(cl, j), ln[0]))
                    H.check("/CN=node-0" in ln[0] and "expires 20" in ln[0],
                            "TLS names the peer certificate's subject and expiry")
                    H.check("protocol [1," in ln[0], "the peer's protocol range")
        rc, out, err = probe(cl.env(0), "--probe-timeout", "1500", "--log-level", "warn")
        H.check_eq(rc, 0, "hacached flags after the probe's own (%s)" % err)
        rc, out, err = ctl("-o", "json", "config", "check", "--probe", env=cl.env(1))
        H.check_eq(rc, 0, "json probe exit (%s)" % err)
        doc = json.loads(out)
        H.check_eq(doc["node"], name(cl, 1), "json names the probing node")
        H.check(doc["ok"] and len(doc["peers"]) == 2, "json: ok, two peers")
        for p in doc["peers"]:
            H.check(all(p[s]["ok"] for s in ("tcp", "tls", "token", "version")),
                    "json: every step ok for %s" % p["peer"])
            H.check(p["cert"]["subject"] == "/CN=node-0" and p["protocol_max"] >= 1,
                    "json: certificate and versions")

        # usage and configuration errors exit 2
        rc, _, err = probe({})
        H.check(rc == 2 and "HA_MODE=true" in err, "standalone: nothing to probe (%s)" % err)
        rc, _, err = probe(cl.env(0), "--probe-timeout", "soon")
        H.check(rc == 2 and "--probe-timeout" in err, "bad --probe-timeout (%s)" % err)
        bad = cl.env(0)
        bad["CACHE_TLS_CA_SERVER"] = os.path.join(cl.dir, "missing.crt")
        rc, out, err = probe(bad)
        H.check(rc == 2 and "CACHE_TLS_CA_SERVER" in err and "peer " not in out,
                "an invalid configuration is not probed (%s)" % err)

        # the probes disturbed nothing: same terms, roles, leaders and links everywhere
        after = cluster_view(cl)
        H.check_eq(after, before, "no term change and no peer link down/up/replaced")

        # (b) a peer on a wrong port and a peer that proves another token
        wrong_port = H.free_port()
        hosts = [name(cl, 0), "127.0.0.1:%d" % wrong_port, name(cl, 2)]
        other_token = os.path.join(cl.dir, "other-token")
        with open(other_token, "w") as f:
            f.write("another-token-0123456789abcdef0123456789\n")
        os.chmod(other_token, 0o600)
        env = cl.env(0)
        env["HA_HOSTS"] = ",".join("https://" + h for h in hosts)
        env["CACHE_AUTH_TOKEN_FILE"] = other_token
        rc, out, err = probe(env)
        H.log("probe with a wrong port and another token:\n%s%s" % (out, err))
        H.check_eq(rc, 1, "a failed probe exits 1")
        bad_port = [x for x in ok_lines(out) if x.startswith("peer 127.0.0.1:%d:" % wrong_port)]
        H.check(len(bad_port) == 1 and "tcp FAIL: refused" in bad_port[0],
                "the wrong port is reported as refused TCP: %s" % bad_port)
        bad_token = [x for x in ok_lines(out) if x.startswith("peer %s:" % name(cl, 2))]
        H.check(len(bad_token) == 1 and "token FAIL: wrong token" in bad_token[0]
                and "tls ok" in bad_token[0], "the other token is reported: %s" % bad_token)
        H.check("peer 127.0.0.1:%d refused TCP" % wrong_port in err
                and "is hacached running there" in err, "what to do about the port: %s" % err)
        H.check("peer %s rejected the token: CACHE_AUTH_TOKEN differs" % name(cl, 2) in err,
                "what to do about the token: %s" % err)
        rc, out, _ = ctl("-o", "json", "config", "check", "--probe", env=env)
        doc = json.loads(out)
        by = {p["peer"]: p for p in doc["peers"]}
        H.check(rc == 1 and not doc["ok"], "json: failed")
        H.check_eq(by["127.0.0.1:%d" % wrong_port]["tcp"]["result"], "refused", "json: refused")
        H.check_eq(by[name(cl, 2)]["token"]["result"], "wrong token", "json: wrong token")

        # plaintext against the TLS peer ports: the peers hang up during the handshake
        env = cl.env(0)
        env["CACHE_TLS"] = "false"
        env["HA_HOSTS"] = cl.ha_hosts.replace("https://", "http://")
        rc, out, err = probe(env)
        H.log("plaintext probe of TLS peers:\n%s%s" % (out, err))
        lines = ok_lines(out)
        H.check(rc == 1 and len(lines) == 2 and
                all("tls off" in x and "token FAIL: peer closed during handshake" in x
                    for x in lines), "plaintext: the peers close during the handshake: %s" % lines)
        H.check("does the peer expect TLS?" in err, "the hint names CACHE_TLS (%s)" % err)

        # (c) TLS failures: a CA that did not sign the peers, and a name the peers do not carry
        other = tempfile.mkdtemp(prefix="hacache-otherca-", dir=cl.dir)
        subprocess.run(["bash", os.path.join(H.REPO, "scripts", "dev-certs.sh"), other, "1"],
                       check=True, stdout=subprocess.DEVNULL)
        env = cl.env(0)
        env.update({"CACHE_TLS_SERVER_CERT": os.path.join(other, "node-0.crt"),
                    "CACHE_TLS_SERVER_KEY": os.path.join(other, "node-0.key"),
                    "CACHE_TLS_CA_SERVER": os.path.join(other, "ca.crt")})
        rc, out, err = probe(env)
        H.log("probe with another CA:\n%s%s" % (out, err))
        H.check_eq(rc, 1, "wrong CA exits 1")
        lines = ok_lines(out)
        H.check(len(lines) == 2 and all("tls FAIL" in x and "tcp ok" in x for x in lines),
                "wrong CA: a TLS failure for both peers: %s" % lines)
        H.check(all("CA" in x for x in lines), "the verification error names the CA: %s" % lines)
        H.check("failed TLS" in err and "CACHE_TLS_CA_SERVER" in err, "hint: %s" % err)

        crt, key = os.path.join(other, "wrong.crt"), os.path.join(other, "wrong.key")
        ext = os.path.join(other, "wrong.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth,clientAuth\n"
                    "basicConstraints=CA:FALSE\n")
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=wrong", "-keyout",
                        key, "-out", crt + ".csr"], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", crt + ".csr", "-CA",
                        os.path.join(cl.certs, "ca.crt"), "-CAkey",
                        os.path.join(cl.certs, "ca.key"), "-CAcreateserial", "-days", "2",
                        "-out", crt, "-extfile", ext], check=True, capture_output=True)
        env = cl.env(0)
        env.update({"CACHE_TLS_SERVER_CERT": crt, "CACHE_TLS_SERVER_KEY": key,
                    "CACHE_TLS_CLIENT_VALIDATE_DOMAIN": "wrong.example"})
        rc, out, err = probe(env)
        H.log("probe expecting another name:\n%s%s" % (out, err))
        H.check_eq(rc, 1, "name mismatch exits 1")
        lines = ok_lines(out)
        H.check(len(lines) == 2 and all("tls FAIL" in x and "wrong.example" in x
                                        for x in lines),
                "name mismatch: a TLS failure naming the expected name: %s" % lines)

        # the failed probes disturbed nothing either
        H.check_eq(cluster_view(cl), before, "still no term change, no link change")
    finally:
        cl.cleanup()


def test_status_watch_and_disagreement():
    cl = C.Cluster(3)
    try:
        leader = cl.wait_leader()
        eps = ",".join("http://127.0.0.1:%d" % n.port for n in cl.nodes)
        env = {"HACACHE_ENDPOINTS": eps}

        # (d) --watch --count 2: two rounds, each a timestamp line and a table
        rc, out, err = ctl("status", "--watch", "--count", "2", "--interval", "200", env=env)
        H.log("status --watch:\n" + out)
        H.check_eq(rc, 0, "watch exit (%s)" % err)
        lines = out.splitlines()
        H.check_eq(sum(1 for ln in lines if ln.startswith("NODE ")), 2, "two tables")
        H.check_eq(sum(1 for ln in lines if " round " in ln and ln[:4].isdigit()), 2,
                   "two timestamp lines")
        H.check_eq(sum(1 for ln in lines if " leader " in ln and not ln.startswith("NODE")), 2,
                   "one leader row per table")
        H.check(not any(ln.startswith("warning:") for ln in lines), "a healthy cluster: no warning")
        rc, out, _ = ctl("-o", "json", "status", "--watch", "--count", "2", "--interval", "100",
                         env=env)
        docs = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
        H.check(rc == 0 and len(docs) == 2 and all(len(d) == 3 for d in docs),
                "json watch: one array per round")
        H.check(all(r["problems"] == [] for d in docs for r in d), "json: no problems")

        # Ctrl-C ends an unbounded watch cleanly
        binary = os.environ.get("HACACHECTL") or os.path.join(
            os.environ.get("HC_BUILD_DIR", "build"), "bin", "hacachectl")
        penv = dict(os.environ, HACACHE_ENDPOINTS=eps)
        p = subprocess.Popen([binary, "status", "--watch", "--interval", "100"], env=penv,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = p.stdout.readline()  # the first round has begun
            H.check(b" round 1" in first, "watch prints a timestamp line first (%r)" % first)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        H.check_eq(p.returncode, 0, "SIGINT ends --watch with the last round's status (%r)" % err)
        H.check("Sanitizer" not in err.decode(errors="replace"), "no sanitizer report")

        # (e) stop the leader: the others elect a new one; status over all three highlights the
        # stopped node and the new leader's silent link to it. Once the new leader has given up
        # that link (dead timeout), a status request is queued at the stopped node and the node
        # is continued: it answers at once, before it has redialed and learned the new term, so
        # the answer shows it still leading in the older term.
        old_term = cl.statuses()[leader]["term"]
        old_name = leader.extra_env["HOSTNAME_OVERWRITE"]
        others = [n for n in cl.nodes if n is not leader]
        leader.signal(signal.SIGSTOP)
        resumed = False
        try:
            new = cl.wait_leader(nodes=others, exclude_term=old_term, timeout=20)
            shown = {}

            def highlighted():
                rc, out, err = ctl("--timeout", "800", "status", env=env)
                warn = [ln for ln in out.splitlines() if ln.startswith("warning:")]
                shown["out"] = out
                unreachable = any(ln.startswith("warning: unreachable:") and
                                  "127.0.0.1:%d" % leader.port in ln for ln in warn)
                no_link = any(ln.startswith("warning: contact: %s has no link to %s" %
                                            (new.extra_env["HOSTNAME_OVERWRITE"], old_name))
                              for ln in warn)
                return rc == 1 and unreachable and no_link
            H.wait_until(highlighted, 20, interval=0.2,
                         what="status shows the stopped leader unreachable and its link down")
            H.log("status with the old leader stopped:\n" + shown["out"])
            rc, out, _ = ctl("--timeout", "800", "-o", "json", "status", env=env)
            rows = {r["endpoint"]: r for r in json.loads(out)}
            stopped_row = rows["http://127.0.0.1:%d" % leader.port]
            H.check("error" in stopped_row and
                    any(p["kind"] == "unreachable" for p in stopped_row["problems"]),
                    "json: the stopped node's row has an unreachable problem")
            new_row = rows["http://127.0.0.1:%d" % new.port]
            H.check(new_row["role"] == "leader" and new_row["term"] > old_term and
                    any(p["kind"] == "contact" for p in new_row["problems"]),
                    "json: the new leader's row names the lost link")

            # a status whose request to the stopped node is queued in its socket, then SIGCONT
            result = {}
            old_first = "http://127.0.0.1:%d," % leader.port + ",".join(
                "http://127.0.0.1:%d" % n.port for n in others)
            t = threading.Thread(target=lambda: result.update(
                r=ctl("--timeout", "5000", "status", env={"HACACHE_ENDPOINTS": old_first})))
            t.start()
            H.wait_until(lambda: http_request_queued(leader.port), 10,
                         what="the status request waits at the stopped node")
            leader.signal(signal.SIGCONT)
            resumed = True
            t.join(30)
            H.check(not t.is_alive() and "r" in result, "the status run finished")
            rc, out, err = result.get("r", (None, "", ""))
            H.log("status right after SIGCONT:\n" + out + err)
            rows = [ln for ln in out.splitlines() if ln.startswith(old_name + " ")]
            H.check(len(rows) == 1 and rows[0].split()[1:3] == ["leader", str(old_term)],
                    "the old leader answers as leader of term %d: %s" % (old_term, rows))
            H.check("warning: leaders: 2 nodes claim to be leader: " in out and
                    "%s (term %d)" % (old_name, old_term) in out,
                    "status highlights the two leaders and names the old one's term")
            H.check("warning: terms: terms diverge: " in out and
                    "%s in %d" % (old_name, old_term) in out, "status highlights the terms")
            H.check("warning: leader_view: nodes disagree about the leader" in out,
                    "status highlights the two views of the leader")
        finally:
            if not resumed:
                leader.signal(signal.SIGCONT)

        # the old leader learns the new term and follows: the warnings go away
        def converged():
            rc, out, _ = ctl("--timeout", "2000", "status", env=env)
            return rc == 0 and "warning:" not in out
        H.wait_until(converged, 20, interval=0.1, what="no warnings once the old leader is back")
    finally:
        for nd in cl.nodes:
            if nd is not None and nd.alive():
                nd.signal(signal.SIGCONT)
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
