"""The peer's BLAS kernels. Debian's OpenBLAS (0.3.21) picks its kernels by CPU model, and on a
model newer than it knows (an Emerald Rapids Xeon, family 6 model 207) it falls back to its
generic Prescott (SSE3) kernels: PyTorch's GEMMs then ran 4x slower than with the AVX-512 ones
the CPU has (25 against 99 GFLOP/s, 128x784 by 784x400, 1 thread). A peer slowed by that would
flatter nabla, so the benchmarks name the kernels OpenBLAS should use, by the CPU's flags, when
it would fall back. A user's own OPENBLAS_CORETYPE is kept."""
import re
import subprocess

PROBE = ["/usr/bin/python3", "-c", "import torch; (torch.ones(4, 4) @ torch.ones(4, 4)).sum().item()"]
GENERIC = ("Prescott", "Core2", "Nehalem", "Unknown")
# the newest kernels first; Debian's build has no Cooperlake or SapphireRapids kernels
BY_FLAG = (("avx512f", "SkylakeX"), ("avx2", "Haswell"))


def openblas_core(env):
    """The core OpenBLAS picks under env (its OPENBLAS_VERBOSE line), or None."""
    try:
        p = subprocess.run(PROBE, env=dict(env, OPENBLAS_VERBOSE="2"), capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^Core: (\S+)", p.stdout + p.stderr, re.M)
    return m.group(1) if m else None


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def openblas_env(env):
    """(env, note): env with OPENBLAS_CORETYPE set when OpenBLAS would fall back to generic
    kernels on a CPU with AVX-512 or AVX2; note says which kernels run, for the results."""
    core = openblas_core(env)
    if core is None:
        return env, "OpenBLAS's core not reported"
    if "OPENBLAS_CORETYPE" in env:
        return env, f"OpenBLAS core {core} (OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}, the caller's)"
    if core not in GENERIC:
        return env, f"OpenBLAS core {core}, its own choice"
    flags = cpu_flags()
    for flag, name in BY_FLAG:
        if flag in flags:
            forced = dict(env, OPENBLAS_CORETYPE=name)
            if openblas_core(forced) == name:
                return forced, (f"OpenBLAS core {name}, set by OPENBLAS_CORETYPE: on its own it picks its "
                                f"generic {core} kernels on this CPU model")
    return env, f"OpenBLAS core {core}, its own choice (no faster kernels for this CPU)"
