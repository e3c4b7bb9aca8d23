"""A majority of a cluster loses its memory at once (issue 12 acceptance 3, SPEC §3 "Restarts").

3 nodes without a data dir. The survivor-to-be (a follower) is SIGSTOPped while deletes and
overwrites commit on the two others; those two are then killed (-9) and restarted empty at the
same instant, and the survivor is resumed (after a second: a frozen process, not replication
lag). Its configuration has lost a majority of its voters
(two newer incarnations answer for their hosts): no leader can be elected in it, so it starts
over as a new incarnation (empty) and the three found a new cluster.

Checked: within 10 s of the resume there is one leader that all three agree on; every node
converges (equal digests, also after a new write); and from the moment of the resume, a reader
polling every node at every consistency level never sees a deleted key or an overwritten key
with its older value (an empty answer, 404 or 503, is fine: the cache may come back empty).
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import cluster as C  # noqa: E402

RECOVER_S = 10.0
KEYS = 150


class StaleReader(threading.Thread):
    """Polls every node for every key at every consistency level; records old values seen."""

    def __init__(self, cl, old):
        super().__init__(daemon=True)
        self.cl, self.old = cl, old
        self.stop_flag = threading.Event()
        self.bad, self.reads, self.answers = [], 0, {}

    def run(self):
        levels = ("local", "leader", "linearizable")
        deadline = time.monotonic() + 60.0  # bounded even if the test forgets to stop it
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            for nd in list(self.cl.nodes):
                if nd is None or not nd.alive():
                    continue
                c = H.Client(nd.port, timeout=1)
                try:
                    for i in range(0, KEYS, 3):
                        key = "k%d" % i
                        lvl = levels[(self.reads // KEYS) % 3]
                        st, _, body = c.get("/v1/caches/sess/%s?consistency=%s" % (key, lvl))
                        self.reads += 1
                        self.answers[st] = self.answers.get(st, 0) + 1
                        if st == 200 and body == self.old[key]:
                            self.bad.append((nd.name, key, lvl, body))
                except Exception:
                    pass
                finally:
                    c.close()


def test_majority_lost_with_stale_survivor():
    cl = C.Cluster(3, data_dirs=False)
    reader = None
    try:
        ld = cl.wait_leader(20.0)
        cl.wait_ready(20.0)
        c = H.Client(ld.port, timeout=5)
        old = {}
        for i in range(KEYS):
            old["k%d" % i] = b"old-%d" % i
            st, _, _ = c.put("/v1/caches/sess/k%d?ack=quorum" % i, body=old["k%d" % i])
            H.check_eq(st, 200, "write k%d" % i)
        c.close()
        survivor = next(nd for nd in cl.nodes if nd is not ld)
        others = [nd for nd in cl.nodes if nd is not survivor]
        H.wait_until(lambda: len(set(cl.digests().values())) == 1, 10.0,
                     what="the survivor-to-be holds every write")

        survivor.signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        H.log("survivor %s stopped" % survivor.name)
        c = H.Client(ld.port, timeout=5)
        for i in range(KEYS):
            if i % 2 == 0:
                st, _, _ = c.delete("/v1/caches/sess/k%d?ack=quorum" % i)
            else:
                st, _, _ = c.put("/v1/caches/sess/k%d?ack=quorum" % i, body=b"new-%d" % i)
            H.check_eq(st, 200, "delete or overwrite k%d with the survivor stopped" % i)
        c.close()

        for nd in others:
            nd.kill()
        others = [cl.start_node(nd.index, wait=False) for nd in others]
        for nd in others:
            nd.wait_ready(20.0)  # /healthz: the new incarnations run (and discover)
        # A pause of a second or more, as a frozen VM or SIGSTOP gives; a pause shorter than a
        # few heartbeats is ordinary replication lag for `local` reads (README, "Guarantees").
        H.wait_until(lambda: time.monotonic() - t_stop >= 1.0, 5.0, interval=0.05,
                     what="the survivor stopped for a second")
        reader = StaleReader(cl, old)
        survivor.signal(signal.SIGCONT)
        t0 = time.monotonic()
        reader.start()
        H.log("two nodes restarted empty, survivor resumed")

        new = cl.wait_leader(RECOVER_S + 10.0)
        took = time.monotonic() - t0
        H.log("one agreed leader %s %.2fs after the resume" % (new.name, took))
        if not H.is_sanitized_build():
            H.check(took <= RECOVER_S, "a leader within %.0fs (%.2fs)" % (RECOVER_S, took))
        cl.wait_ready(20.0)
        c = H.Client(new.port, timeout=5)
        st, _, _ = c.put("/v1/caches/after/x?ack=quorum", body=b"1")
        c.close()
        H.check_eq(st, 200, "a quorum write after the recovery")
        C.wait_all(lambda: len(set(cl.digests().values())) == 1 and None not in
                   cl.digests().values(), 15.0, "replicas converge")
        H.wait_until(lambda: reader.reads >= 300, 20.0, what="the reader polled enough")
        reader.stop_flag.set()
        reader.join(10.0)
        H.log("reads after the resume: %d, answers %r" % (reader.reads,
                                                          sorted(reader.answers.items())))
        H.check_eq(reader.bad[:5], [], "old values of deleted or overwritten keys read back")
        err = open(survivor.stderr_path, "rb").read().decode(errors="replace")
        H.check("starting over as a new incarnation" in err, "the survivor started over")
        for nd in cl.live():
            nd.stop_ok(10.0)
    finally:
        if reader is not None:
            reader.stop_flag.set()
        cl.cleanup()


if __name__ == "__main__":
    H.run(globals())
