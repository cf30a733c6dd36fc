"""Summarise pytest-benchmark JSON files: median times and speed-ups over the peer.

    python bench/report.py bench/results/combine-*.json

Prints one markdown table per file: each benchmark group (one task on one data
set) with every implementation's median time and its speed-up over the peer
("ccdproc" or "astroscrappy"; other configurations of the peer, such as
"ccdproc-defaults", are compared in the notes), plus GPU kernel bandwidth and,
for whole nights, the time of each stage.
"""

import json
import sys

PEERS = ("ccdproc", "astroscrappy")


def _impl(bench):
    return bench.get("extra_info", {}).get("impl") or bench["name"]


def _stages(seconds):
    return ", ".join(f"{stage} {s:.1f} s" for stage, s in seconds.items())


def _host_work(info):
    """bench_products: per-product host stages (wall ms, CPU ms) and the nights' overlap."""
    stages = ", ".join(f"{stage} {info[f'{stage}_ms']:.1f} ({info[f'{stage}_cpu_ms']:.1f} CPU)"
                       for stage in ("read", "stamp", "write", "write_astropy", "hash",
                                     "reread_hash"))
    nights = ", ".join(
        f"{name} {info[f'{name}_wall_s']:.1f} s wall for {info[f'{name}_stages_s']:.1f} s of "
        f"stages (read {info[f'{name}_read_s']:.1f}, compute {info[f'{name}_compute_s']:.1f}, "
        f"write {info[f'{name}_write_s']:.1f}): overlap {info[f'{name}_overlap']:.2f}"
        for name in ("one-by-one", "serial", "threads") if f"{name}_wall_s" in info)
    return (f"per {info['product_mb']:.1f} MB product, ms: {stages}, fsync "
            f"{info['sync_ms']:.1f}; host {info['host_ms_per_product']:.1f} ms (before "
            f"{info['host_ms_per_product_before']:.1f}), "
            f"{info['host_busy_ms_per_product']:.1f} ms without the fsync, CPU "
            f"{info['host_cpu_ms_per_product']:.1f} ms; nights: {nights}")


def table(path):
    with open(path) as f:
        report = json.load(f)
    machine = report["machine_info"]
    cpu = machine.get("cpu", {}).get("brand_raw", machine.get("processor", "?"))
    lines = [f"### {path}", "",
             f"CPU: {cpu} ({machine.get('cpu', {}).get('count', '?')} threads); "
             f"GPU: {machine.get('gpu', '?')}; gpucal {machine.get('gpucal', '?')}; "
             f"{report['datetime'][:10]}", "",
             "| task | implementation | median s | speed-up over peer | notes |",
             "|---|---|---:|---:|---|"]
    groups = {}
    for bench in report["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench)
    for group, benches in groups.items():
        peer = next((b for b in benches if _impl(b) in PEERS), None)
        variants = [b for b in benches if _impl(b).startswith(PEERS) and b is not peer]
        for bench in sorted(benches, key=lambda b: -b["stats"]["median"]):
            median = bench["stats"]["median"]
            is_peer = _impl(bench).startswith(PEERS)
            speedup = f"{peer['stats']['median'] / median:.1f}×" if peer and not is_peer else "-"
            info = bench.get("extra_info", {})
            notes = [] if is_peer else [f"{v['stats']['median'] / median:.1f}× over {_impl(v)}"
                                        for v in variants]
            if "first_call_s" in info:
                notes.append(f"first call {info['first_call_s']:.2f} s")
            if "bandwidth_Bps" in info:
                notes.append(f"kernel {info['device_s'] * 1e3:.2f} ms, "
                             f"{info['bandwidth_Bps'] / 1e9:.0f} GB/s")
                if info.get("hbm_share") is not None:
                    notes.append(f"{100 * info['hbm_share']:.0f}% of HBM")
            if "device_s" in info and "bandwidth_Bps" not in info:
                notes.append(f"device time {info['device_s'] * 1e3:.1f} ms")
            if "recall" in info:
                notes.append(f"recall {info['recall']:.3f}, "
                             f"{info['false_positives']} false positives")
            if "identical_to_astroscrappy" in info:
                notes.append("identical to astroscrappy" if info["identical_to_astroscrappy"]
                             else "differs from astroscrappy")
            for name in PEERS + ("serial",):  # the peer (or serial executor) in the same test
                if f"speedup_over_{name}" in info:
                    notes.append(f"{info[f'speedup_over_{name}']:.1f}× {name} "
                                 f"({info[f'{name}_s']:.1f} s on this host's CPUs)")
            if "mask_diff_fraction" in info:
                notes.append(f"{info['mask_diff_fraction']:.1e} of mask pixels differ from CPU")
            if "frames_per_s" in info:
                notes.append(f"{info['frames_per_s']:.1f} frames/s"
                             + (" with upload and download" if info.get("upload") else ""))
            if "stage_seconds" in info:
                notes.append(f"{info['frames']} frames, {info['products']} products, "
                             f"{info['failed']} failed; stages {_stages(info['stage_seconds'])}")
            for name in ("ccdproc", "serial"):
                if f"{name}_stage_seconds" in info:
                    notes.append(f"{name} stages {_stages(info[f'{name}_stage_seconds'])}")
            if "host_ms_per_product" in info:
                notes.append(_host_work(info))
            if "median_rel_diff" in info:
                notes.append(f"{info['compared']}: median |Δ| from ccdproc "
                             f"{info['median_rel_diff']:.1e} of the sky")
            lines.append(f"| {group} | {_impl(bench)} | {median:.4f} | {speedup} | "
                         f"{'; '.join(notes)} |")
    return "\n".join(lines)


def main(paths):
    print("\n\n".join(table(p) for p in paths))


if __name__ == "__main__":
    main(sys.argv[1:])
