"""ptxas resource use (sm_90) of the fused combine kernel's instantiations, kept as JSON.

Compiles gpucal/_cuda/cuda/combine_pixel.cuh + combine.cu (portable.cuh first, as
gpucal/_cuda/kernels.py concatenates them) with nvcc as CuPy's NVRTC would compile them for
an H100: the launcher's options (--std=c++17 --fmad=false) and CuPy 14.2's own (-ftz=true,
-arch=sm_90). One row per instantiation: registers, stack frame (local memory per thread,
which CUDA reserves at launch for every thread the device holds), spill stores and loads,
and the compile time on this machine.

    python bench/ptxas_combine.py                       # the tree's instantiations -> "after"
    python bench/ptxas_combine.py --rev 32a8892 --key before \
        --names "gpucal_combine_stack<{n}, {t}>" --depths 2,3,8,32,64,100,128,256,512

writes (or updates the key of) bench/results/combine-kernel-ptxas-sm90.json. Needs nvcc; no
GPU and no CuPy.
"""

import argparse
import concurrent.futures
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUDA = "gpucal/_cuda/cuda"
FILES = ("portable.cuh", "combine_pixel.cuh", "combine.cu")
OPTIONS = ("--std=c++17", "--fmad=false", "-ftz=true", "-arch=sm_90")
OUT = ROOT / "bench" / "results" / "combine-kernel-ptxas-sm90.json"


def source(rev):
    """The kernel source as the launcher concatenates it, from the tree or a git revision."""
    if rev is None:
        return "".join((ROOT / CUDA / f).read_text() for f in FILES)
    return "".join(subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{CUDA}/{f}"],
                                  check=True, capture_output=True, text=True).stdout
                   for f in FILES)


def ptxas(code, name):
    """dict(regs, stack, spill_stores, spill_loads, compile_s) of instantiation `name`."""
    # nvcc's own headers have __CUDACC_RTC__ branches: rename the source's uses instead
    code = code.replace("__CUDACC_RTC__", "GPUCAL_AS_NVRTC")
    code += f"\n__attribute__((used)) static auto gpucal_ptxas_probe = &{name};\n"
    with tempfile.TemporaryDirectory() as tmp:
        cu = Path(tmp) / "kernel.cu"
        cu.write_text(code)
        t0 = time.perf_counter()
        p = subprocess.run(["nvcc", "-DGPUCAL_AS_NVRTC", "-cubin", "-Xptxas", "-v",
                            "-diag-suppress", "177", *OPTIONS, str(cu), "-o", str(cu) + ".cubin"],
                           capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"nvcc failed for {name}:\n{p.stderr[-4000:]}")
    regs = re.search(r"Used (\d+) registers", p.stderr)
    frame = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill "
                      r"loads", p.stderr)
    return dict(regs=int(regs.group(1)), stack=int(frame.group(1)),
                spill_stores=int(frame.group(2)), spill_loads=int(frame.group(3)),
                compile_s=round(elapsed, 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", help="git revision of the kernel source (default: the tree)")
    ap.add_argument("--key", default="after", help="key of the JSON file to (re)write")
    ap.add_argument("--names", help="name template with {n} and {t} (default: the tree's "
                                    "instantiations, gpucal._combine_kernel.instantiations())")
    ap.add_argument("--depths", default="2,3,8,16,32,61,64,100,128,200,256,384,512")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    if shutil.which("nvcc") is None:
        sys.exit("nvcc not found")
    depths = [int(n) for n in args.depths.split(",")]
    if args.names:
        rows = [(n, args.names.format(n=n, t=t)) for t in ("float", "double") for n in depths]
    else:
        sys.path.insert(0, str(ROOT))
        from gpucal._combine_kernel import kernel_name

        rows = [(n, kernel_name(n, t)) for t in ("float", "double") for n in depths]
    code = source(args.rev)
    names = sorted({name for _, name in rows}, key=[name for _, name in rows].index)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        figures = dict(zip(names, pool.map(lambda name: ptxas(code, name), names)))
    version = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout
    result = dict(
        source=args.rev or "working tree",
        source_sha256=hashlib.sha256(code.encode()).hexdigest(),
        nvcc=next(line for line in version.splitlines() if "release" in line).strip(),
        options=list(OPTIONS),
        reserve_note="stack × 2048 threads × 132 SMs is the local memory CUDA reserves at "
                     "launch on an H100",
        depths={str(n): name for n, name in rows if name.endswith("float>")},
        kernels=[dict(name=name, **figures[name]) for name in names])
    print(f"{'kernel':44s} {'regs':>5s} {'stack(B)':>9s} {'spill st/ld':>13s} {'compile(s)':>10s}")
    for k in result["kernels"]:
        print(f"{k['name']:44s} {k['regs']:5d} {k['stack']:9d} "
              f"{k['spill_stores']:6d}/{k['spill_loads']:<6d} {k['compile_s']:10.1f}")
    table = json.loads(args.out.read_text()) if args.out.exists() else {}
    table[args.key] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
