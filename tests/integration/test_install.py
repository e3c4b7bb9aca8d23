"""Packaging (SPEC §1): `cmake --install` into a temporary prefix installs hacached, hacache.h,
libhacache.{a,so} and hacache.pc; a program compiled with `pkg-config --cflags --libs hacache`
against that prefix links (shared and static) and runs; the shared library exports only hc_*.
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
        for kind, cmd in (
                ("shared", ["cc", "-std=c11", "-Wall", "-Werror", src, "-o",
                            os.path.join(tmp, "p_shared")] + flags + extra),
                ("static", ["cc", "-std=c11", "-Wall", "-Werror", src, "-o",
                            os.path.join(tmp, "p_static")] + flags[:1] +
                 [os.path.join(libdir, "libhacache.a"), "-pthread"] + extra)):
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


if __name__ == "__main__":
    H.run(globals())
