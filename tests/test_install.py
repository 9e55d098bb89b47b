#!/usr/bin/env python3
"""tests/test_install.py BUILD SOURCE DATA — nabla as its users get it.

Installs the build into a temporary prefix (meson install --destdir), then, with nothing but
what `pkg-config nabla` says:
  - compiles every public header alone, as C17 (-Wall -Wextra -pedantic -Werror, no feature
    macros) and as C++17;
  - builds every program of docs/examples against the shared library and runs it;
  - builds them again against the static archive alone (a copy of the prefix without the .so),
    checks they need no libnabla.so, and runs them.
The programs check their own gradients and train with a falling loss, exiting non-zero otherwise.
Prints TAP.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

BUILD, SRC, DATA = sys.argv[1:4]
EX = os.path.join(SRC, "docs", "examples")
PROGRAMS = {  # name: (sources, arguments)
    "regression": (["regression.c"], []),
    "iwae": (["iwae.c", "iwae_main.c", "example.c"], ["--check", "--train", "--data", DATA]),
    "mog_vae": (["mog_vae.c", "example.c"], ["--check", "--train", "--data", DATA]),
    "dist_mlp": (["dist_mlp.c"], []),
}
CFLAGS = ["-std=c17", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O1"]

n = 0
failed = 0


def ok(cond, what, detail=""):
    global n, failed
    n += 1
    failed += not cond
    print(("ok" if cond else "not ok") + f" {n} - {what}")
    if not cond and detail:
        for line in detail.strip().splitlines()[-25:]:
            print("# " + line)
    return cond


def run(cmd, env=None, cwd=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    return p.returncode, p.stdout


def pkg(env, *args):
    rc, out = run(["pkg-config", *args, "nabla"], env=env)
    return out.split() if rc == 0 else None


def main():
    tmp = tempfile.mkdtemp(prefix="nabla-install-")
    try:
        rc, out = run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", tmp])
        if not ok(rc == 0, "meson install into a temporary prefix", out):
            return
        pcs = glob.glob(os.path.join(tmp, "**", "nabla.pc"), recursive=True)
        headers = sorted(glob.glob(os.path.join(tmp, "**", "include", "nabla", "*.h"), recursive=True))
        if not ok(len(pcs) == 1 and headers, "nabla.pc and the headers under include/nabla are installed"):
            return
        static_root = tmp + "-static"
        shutil.copytree(tmp, static_root, symlinks=True)
        for so in glob.glob(os.path.join(static_root, "**", "libnabla.so*"), recursive=True):
            os.remove(so)
        envs = {}
        for kind, root in (("shared", tmp), ("static", static_root)):
            # the sysroot maps the .pc file's /usr/local/... into the temporary prefix
            env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=root,
                       PKG_CONFIG_PATH=os.path.dirname(pcs[0].replace(tmp, root, 1)))
            env.pop("LD_LIBRARY_PATH", None)
            envs[kind] = env
        cflags = pkg(envs["shared"], "--cflags")
        libs = {"shared": pkg(envs["shared"], "--libs"), "static": pkg(envs["static"], "--static", "--libs")}
        if not ok(cflags is not None and all(libs.values()), "pkg-config answers for nabla",
                  f"cflags {cflags} libs {libs}"):
            return

        work = tempfile.mkdtemp(prefix="nabla-examples-")
        cxx = shutil.which("g++")
        for h in headers:
            name = os.path.basename(h)
            src = os.path.join(work, "h.c")
            with open(src, "w") as f:
                f.write(f"#include <nabla/{name}>\nint main(void) {{ return 0; }}\n")
            rc, out = run(["cc", *CFLAGS, *cflags, src, "-o", os.path.join(work, "h")])
            ok(rc == 0, f"<nabla/{name}> compiles alone as C17 -pedantic -Werror", out)
            if cxx:
                rc, out = run([cxx, "-std=c++17", "-Wall", "-Wextra", "-pedantic", "-Werror",
                               "-fsyntax-only", *cflags, "-x", "c++", src])
                ok(rc == 0, f"<nabla/{name}> compiles as C++17", out)
            else:
                print(f"ok {n + 1} - # SKIP no g++ to compile <nabla/{name}> as C++")

        libdir = os.path.dirname(glob.glob(os.path.join(tmp, "**", "libnabla.so"), recursive=True)[0])
        for kind in ("shared", "static"):
            for name, (srcs, args) in PROGRAMS.items():
                exe = os.path.join(work, f"{name}-{kind}")
                rc, out = run(["cc", *CFLAGS, *cflags, *[os.path.join(EX, s) for s in srcs],
                               "-o", exe, *libs[kind]])
                if not ok(rc == 0, f"{name} builds against the {kind} library with pkg-config alone", out):
                    continue
                env = dict(os.environ)
                if kind == "shared":
                    env["LD_LIBRARY_PATH"] = libdir
                else:
                    lrc, ldd = run(["ldd", exe])
                    ok(lrc == 0 and "libnabla" not in ldd, f"{name} ({kind}) needs no libnabla.so", ldd)
                rc, out = run([exe, *args], env=env)
                ok(rc == 0, f"{name} ({kind}) runs: " + (out.strip().splitlines() or [""])[-1], out)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(static_root, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
print(f"1..{n}")
sys.exit(1 if failed else 0)
