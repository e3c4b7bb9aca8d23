"""Packaging (SPEC §1): `cmake --install` into a temporary prefix installs hacached, hacache.h,
libhacache.{a,so} and hacache.pc; a program compiled with `pkg-config --cflags --libs hacache`
against that prefix links (shared and static) and runs; the shared library exports only hc_*.
The same for the embedded node: libhacache_node.{a,so} and hacache-node.pc (`--static` for the
archive), a program that starts a standalone node in-process, writes, reads, stops.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

PROGRAM = r"""
#include <hacache.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    hc_client_opts_t o = {.endpoints = "http://127.0.0.1:1", .token = NULL, .timeout_ms = 200,
                          .max_stale_ms = 0};
    hc_client_t *c;
    if (hc_client_new(&o, &c) != 0) {
        return 1;
    }
    hc_value_t v;
    int rv = hc_get(c, "cache", "k", 1, &v);
    hc_client_free(c);
    printf("%s\n", hc_strerror(rv));
    return rv == HC_EUNAVAILABLE || rv == HC_ETIMEDOUT ? 0 : 1;
}
"""

NODE_PROGRAM = r"""
#include <hacache.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    static const char *const env[] = {"HA_MODE=false", "CACHE_LOG_LEVEL=warn", NULL};
    hc_embedded_opts_t o = {.env = env};
    hc_embedded_t *e;
    char err[512];
    int rv = hc_embedded_start(&o, &e, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "start: %s\n", err);
        return 1;
    }
    rv = hc_embedded_put(e, "c", "k", 1, "v1", 2, HC_ACK_QUORUM, 0);
    hc_value_t v;
    if (rv == 0) {
        rv = hc_embedded_get(e, "c", "k", 1, HC_READ_LOCAL, &v);
    }
    int ok = rv == 0 && v.len == 2 && memcmp(v.data, "v1", 2) == 0;
    if (rv == 0) {
        hc_value_free(&v);
    }
    ok = ok && hc_embedded_stop(e) == 0;
    hc_embedded_free(e);
    printf("%s\n", ok ? "ok" : hc_strerror(rv));
    return ok ? 0 : 1;
}
"""


def build_dir():
    return os.environ.get("HC_BUILD_DIR") or os.path.join(H.REPO, "build")


def test_install_and_pkg_config():
    if shutil.which("pkg-config") is None or shutil.which("cc") is None:
        raise H.Skip("pkg-config or cc missing")
    tmp = tempfile.mkdtemp(prefix="hacache-install-")
    try:
        prefix = os.path.join(tmp, "prefix")
        p = subprocess.run(["cmake", "--install", build_dir(), "--prefix", prefix],
                           capture_output=True, text=True, timeout=120)
        H.check_eq(p.returncode, 0, "cmake --install (%s)" % p.stderr[-2000:])
        for f in ("bin/hacached", "include/hacache.h", "lib/libhacache.a", "lib/libhacache.so",
                  "lib/pkgconfig/hacache.pc"):
            H.check(os.path.exists(os.path.join(prefix, f)), "installed %s" % f)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "hacache"], env=env,
                               capture_output=True, text=True).stdout.split()
        H.check(any(f.startswith("-I") and f.endswith("/include") for f in flags),
                "pkg-config cflags: %s" % flags)
        src = os.path.join(tmp, "p.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        extra = ["-fsanitize=address,undefined"] if H.is_sanitized_build() else []
        libdir = os.path.join(prefix, "lib")
        # the archive instead of -lhacache, and what it needs (Requires.private: libcurl,
        # libcrypto; Libs.private: -pthread) from pkg-config --static
        static_flags = [os.path.join(libdir, "libhacache.a") if f == "-lhacache" else f
                        for f in subprocess.run(["pkg-config", "--static", "--cflags", "--libs",
                                                 "hacache"], env=env, capture_output=True,
                                                text=True).stdout.split()]
        for kind, cmd in (
                ("shared", ["cc", "-std=c11", "-Wall", "-Werror", src, "-o",
                            os.path.join(tmp, "p_shared")] + flags + extra),
                ("static", ["cc", "-std=c11", "-Wall", "-Werror", src, "-o",
                            os.path.join(tmp, "p_static")] + static_flags + extra)):
            b = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            if not H.check_eq(b.returncode, 0, "%s build: %s" % (kind, b.stderr[-2000:])):
                continue
            r = subprocess.run([os.path.join(tmp, "p_" + kind)], capture_output=True, text=True,
                               timeout=30, env=dict(env, LD_LIBRARY_PATH=libdir))
            H.check_eq(r.returncode, 0, "%s program runs (%s %s)" % (kind, r.stdout, r.stderr))
        nm = subprocess.run(["nm", "-D", "--defined-only", os.path.join(libdir, "libhacache.so")],
                            capture_output=True, text=True)
        syms = [ln.split()[-1] for ln in nm.stdout.splitlines() if " T " in ln]
        H.check(syms and all(s.startswith("hc_") for s in syms),
                "the .so exports only hc_* functions: %s" % syms)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_install_embedded_node_pkg_config():
    if shutil.which("pkg-config") is None or shutil.which("cc") is None:
        raise H.Skip("pkg-config or cc missing")
    tmp = tempfile.mkdtemp(prefix="hacache-install-node-")
    try:
        prefix = os.path.join(tmp, "prefix")
        p = subprocess.run(["cmake", "--install", build_dir(), "--prefix", prefix],
                           capture_output=True, text=True, timeout=120)
        H.check_eq(p.returncode, 0, "cmake --install (%s)" % p.stderr[-2000:])
        for f in ("lib/libhacache_node.a", "lib/libhacache_node.so",
                  "lib/pkgconfig/hacache-node.pc"):
            H.check(os.path.exists(os.path.join(prefix, f)), "installed %s" % f)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        src = os.path.join(tmp, "n.c")
        with open(src, "w") as f:
            f.write(NODE_PROGRAM)
        extra = ["-fsanitize=address,undefined"] if H.is_sanitized_build() else []
        libdir = os.path.join(prefix, "lib")
        for kind, pc_args, lib in (("shared", [], []),
                                   ("static", ["--static"],
                                    [os.path.join(libdir, "libhacache_node.a")])):
            pc = subprocess.run(["pkg-config"] + pc_args + ["--cflags", "--libs", "hacache-node"],
                                env=env, capture_output=True, text=True)
            if not H.check_eq(pc.returncode, 0, "pkg-config %s hacache-node (%s)" % (
                    kind, pc.stderr[-500:])):
                continue
            flags = pc.stdout.split()
            if lib:  # the archive itself, so the linker cannot pick the .so next to it
                flags = [x for x in flags if x != "-lhacache_node"]
            out = os.path.join(tmp, "n_" + kind)
            b = subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", src, "-o", out] + lib +
                               flags + extra, env=env, capture_output=True, text=True,
                               timeout=300)
            if not H.check_eq(b.returncode, 0, "%s build: %s" % (kind, b.stderr[-2000:])):
                continue
            r = subprocess.run([out], capture_output=True, text=True, timeout=60,
                               env=dict(env, LD_LIBRARY_PATH=libdir))
            H.check_eq((r.returncode, r.stdout.strip()), (0, "ok"),
                       "%s embedded program runs (%s)" % (kind, r.stderr[-1000:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    H.run(globals())
