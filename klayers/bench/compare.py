"""Side by side: klayers, tf-keras eager, tf-keras under ``tf.function``, ONNX Runtime.

For every selected workload (see :mod:`klayers.bench.workloads`) the same layer, with the same
seeded weights, runs on the same input in each installed engine. Outputs are checked to agree
before anything is timed; timing is interleaved (round-robin over engines, the starting
engine rotating each repeat) after a warm-up, and reports medians with their interquartile
range, the ratio klayers / fastest peer, and each engine's rate (GFLOP/s or GB/s) next to this
machine's own limits measured in the same run (NumPy float32 matmul, large array copy).

    python -m klayers.bench                                   # every workload, every installed engine
    python -m klayers.bench pool conv --engines klayers       # families (or the start of one's name)
    /work/venvs/tf/bin/python -m klayers.bench --workload b256 --markdown
    klayers bench dense --vs-keras --python /work/venvs/tf/bin/python   # the same, from the CLI

A name is a family (``conv``), the start of exactly one family's name (``pool``), or a pattern
on workload names; one that matches nothing exits with status 2 and lists the families.
Exit status: 0, or 1 when an engine's output disagreed with the reference (that engine is
left out of the timing and marked MISMATCH) or an engine failed on a workload.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers.bench import choose, families, select
from klayers.bench.engines import Case, available_engines, make_case
from klayers.bench.workloads import Workload, family_named

#: Relative tolerance of the output check: max |a - b| <= tol * max(1, max |reference|).
TOLERANCE = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-10}


# --------------------------------------------------------------------------------------------
# The machine's own limits
# --------------------------------------------------------------------------------------------


def _best_time(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_gflops(n: int = 4096, dtype: str = "float32", runs: int = 2) -> float:
    """GFLOP/s of NumPy's ``a @ b`` for ``n x n`` matrices (best of ``runs`` after a warm-up).

    Runs with BLAS threads as currently limited (:func:`main` limits them to ``--threads``).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    return 2.0 * n**3 / _best_time(lambda: np.matmul(a, b, out=c), runs) / 1e9


def copy_gbs(nbytes: int = 256 * 2**20, runs: int = 5) -> float:
    """GB/s of one large single-threaded ``np.copyto`` (bytes read plus bytes written)."""
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    return 2.0 * src.nbytes / _best_time(lambda: np.copyto(dst, src), runs) / 1e9


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def calibrate(fn: Callable[[], Any], min_sample_s: float) -> int:
    """How many calls make one timing sample last at least ``min_sample_s`` (after warm-up)."""
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(np.ceil(min_sample_s / one)))


@dataclasses.dataclass(frozen=True)
class TimingPlan:
    """How to time one workload.

    Attributes:
        repeats: timing samples per engine.
        rounds: visits to each engine (round-robin); each visit takes
            ``ceil(repeats / rounds)`` samples in a row.
        min_sample_s: a sample repeats the call until it lasts at least this long.
        cooldown_s: idle time before each switch to another engine, so the worker threads
            the previous engine leaves spinning (OpenBLAS's spin for about 0.1 s) have gone
            to sleep and do not slow the next engine down. Zero is fine with one thread.
    """

    repeats: int = 15
    rounds: int = 5
    min_sample_s: float = 0.005
    cooldown_s: float = 0.0


def time_interleaved(runners: Dict[str, Callable[[], Any]], plan: TimingPlan
                     ) -> Dict[str, List[float]]:
    """Per-call seconds of each runner, ``plan.repeats`` samples each, taken round-robin.

    Each sample is ``number`` back-to-back calls (calibrated per runner so a sample lasts at
    least ``plan.min_sample_s``) divided by ``number``. Engines are visited ``plan.rounds``
    times; the engine that goes first rotates every round, so none always follows the same
    neighbour, and ``plan.cooldown_s`` of sleep precedes every visit. The garbage collector
    is off meanwhile.
    """
    names = list(runners)
    numbers = {}
    for name, fn in runners.items():
        time.sleep(plan.cooldown_s)
        numbers[name] = calibrate(fn, plan.min_sample_s)
    per_visit = max(1, -(-plan.repeats // max(1, plan.rounds)))
    samples: Dict[str, List[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        r = 0
        while any(len(v) < plan.repeats for v in samples.values()):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                fn, number = runners[name], numbers[name]
                time.sleep(plan.cooldown_s)
                for _ in range(min(per_visit, plan.repeats - len(samples[name]))):
                    t0 = time.perf_counter()
                    for _ in range(number):
                        fn()
                    samples[name].append((time.perf_counter() - t0) / number)
            r += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def median_iqr(values: Sequence[float]) -> Tuple[float, float]:
    """``(median, interquartile range)`` of ``values``."""
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return float(q2), float(q3 - q1)


# --------------------------------------------------------------------------------------------
# One workload
# --------------------------------------------------------------------------------------------


def output_error(out: np.ndarray, ref: np.ndarray) -> float:
    """``max |out - ref| / max(1, max |ref|)``; inf when shapes differ."""
    out, ref = np.asarray(out), np.asarray(ref)
    if out.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    diff = np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64)))
    return float(diff / max(1.0, float(np.max(np.abs(ref)))))


def run_workload(workload: Workload, engines: Sequence[Any], plan: TimingPlan) -> Dict[str, Any]:
    """Prepare, check and time one workload on every engine that can run it.

    Returns a dict: ``workload`` (name), ``engines`` ({name: {median_s, iqr_s, rate, unit,
    error}}) and ``problems`` ({name: why it was not timed}).
    """
    problems: Dict[str, str] = {}
    ready = []
    for engine in engines:
        reason = engine.missing_reason(workload)
        if reason is None:
            ready.append(engine)
        else:
            problems[engine.name] = "skipped: " + reason
    tf_keras = next((getattr(e, "tf_keras", None) for e in ready if hasattr(e, "tf_keras")), None)
    case: Case = make_case(workload, tf_keras, klayers_ok=any(e.name.startswith("klayers") for e in ready))

    runners: Dict[str, Callable[[], Any]] = {}
    outputs: Dict[str, np.ndarray] = {}
    for engine in ready:
        try:
            runner = engine.prepare(case)
            outputs[engine.name] = np.asarray(runner())
            runners[engine.name] = runner
        except Exception as e:
            problems[engine.name] = f"ERROR {type(e).__name__}: {e}"

    # The reference is tf-keras eager when present (it is the spec), else the first engine.
    ref_name = "keras eager" if "keras eager" in outputs else next(iter(outputs), None)
    errors: Dict[str, float] = {}
    if ref_name is not None:
        tol = TOLERANCE.get(workload.dtype, 1e-4)
        for name, out in outputs.items():
            errors[name] = output_error(out, outputs[ref_name])
            if not errors[name] <= tol:
                problems[name] = (f"MISMATCH vs {ref_name}: relative error {errors[name]:.2e} "
                                  f"> {tol:.0e}")
                runners.pop(name)

    results: Dict[str, Dict[str, Any]] = {}
    if runners:
        samples = time_interleaved(runners, plan)
        for name, values in samples.items():
            med, iqr = median_iqr(values)
            rate, unit = workload.rate(med)
            results[name] = {"median_s": med, "iqr_s": iqr, "rate": rate, "unit": unit,
                             "error": errors.get(name)}
    return {"workload": workload.name, "bound": workload.bound, "dtype": workload.dtype,
            "engines": results, "problems": problems}


def best_peer(row: Dict[str, Any]) -> Optional[str]:
    """The fastest engine other than klayers on this row (by median), or None."""
    peers = {n: r["median_s"] for n, r in row["engines"].items() if not n.startswith("klayers")}
    return min(peers, key=peers.__getitem__) if peers else None


def ratio_vs_best_peer(row: Dict[str, Any], engine: str = "klayers") -> Tuple[Optional[float], Optional[str]]:
    """``(klayers median / fastest peer's median, that peer)``; (None, peer) without klayers
    (``engine``: which klayers engine, ``"klayers"`` the layer called eagerly or ``"klayers
    model"`` the layer in a one-layer model, planned and recorded)."""
    res, best = row["engines"], best_peer(row)
    if engine not in res or best is None:
        return None, best
    return res[engine]["median_s"] / res[best]["median_s"], best


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _time_unit(seconds: float) -> Tuple[float, str]:
    for scale, unit in ((1e-6, "us"), (1e-3, "ms")):
        if seconds < 1000 * scale:
            return scale, unit
    return 1.0, "s"


def fmt_time(seconds: float, spread: Optional[float] = None) -> str:
    """``12.3 us``, ``4.56 ms``, ``1.23 s``; with ``spread``: ``4.56 ±0.12 ms`` (same unit)."""
    scale, unit = _time_unit(seconds)
    if spread is None:
        return f"{seconds / scale:.3g} {unit}"
    spread /= scale
    spread_text = f"{spread:.0f}" if spread >= 10 else f"{spread:.2g}"
    return f"{seconds / scale:.3g} ±{spread_text} {unit}"


def fraction_of_limit(r: Dict[str, Any], ceilings: Dict[str, float], dtype: str) -> Optional[float]:
    """An engine's rate (``{"rate", "unit"}`` of a row) over the machine limit of its unit (GB/s:
    the array copy; GFLOP/s: the matmul of ``dtype``, else float32's), or None when not measured."""
    if r["unit"] == "GB/s":
        limit = ceilings.get("copy_gbs")
    else:
        limit = ceilings.get(f"matmul_gflops_{dtype}", ceilings.get("matmul_gflops_float32"))
    return r["rate"] / limit if limit else None


def _rate_cell(r: Dict[str, Any], ceilings: Dict[str, float], dtype: str) -> str:
    fraction = fraction_of_limit(r, ceilings, dtype)
    pct = f" ({100 * fraction:.0f} %)" if fraction is not None else ""
    return f"{r['rate']:.3g} {r['unit']}{pct}"


def table(rows: Sequence[Dict[str, Any]], engine_names: Sequence[str],
          ceilings: Dict[str, float]) -> Tuple[List[str], List[List[str]]]:
    """The report as ``(header, cells)``: one row per workload.

    Columns: workload; per engine ``median ±IQR/2``; klayers / fastest peer; klayers's rate
    and the fastest peer's, each with its fraction of the machine limit in parentheses.
    """
    model = "klayers model" in engine_names
    header = ["workload"] + list(engine_names) + ["klayers / best peer"] + (
        ["klayers model / best peer"] if model else []) + ["klayers rate", "best peer rate"]
    cells = []
    for row in rows:
        line = [row["workload"]]
        for name in engine_names:
            r = row["engines"].get(name)
            if r is not None:
                line.append(fmt_time(r["median_s"], r["iqr_s"] / 2))
            else:
                problem = row["problems"].get(name, "")
                line.append("MISMATCH" if problem.startswith("MISMATCH") else
                            "error" if problem.startswith("ERROR") else "-")
        ratio, best = ratio_vs_best_peer(row)
        line.append(f"{ratio:.2f} ({best})" if ratio is not None else "-")
        if model:
            ratio_m, _ = ratio_vs_best_peer(row, "klayers model")
            line.append(f"{ratio_m:.2f}" if ratio_m is not None else "-")
        k = row["engines"].get("klayers")
        line.append(_rate_cell(k, ceilings, row["dtype"]) if k else "-")
        line.append(_rate_cell(row["engines"][best], ceilings, row["dtype"]) if best else "-")
        cells.append(line)
    return header, cells


def render(header: Sequence[str], cells: Sequence[Sequence[str]], markdown: bool) -> str:
    """A Markdown table, or a plain one with aligned columns."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *cells)]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])]
    lines += [fmt(c) for c in cells]
    return "\n".join(lines)


def versions(engines: Sequence[Any]) -> Dict[str, str]:
    """Python, NumPy, SciPy, the BLAS NumPy uses, and each engine's version."""
    import scipy

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "scipy": scipy.__version__, "cpus": str(os.cpu_count())}
    try:
        from threadpoolctl import threadpool_info

        out["blas"] = "; ".join(sorted({f"{i.get('internal_api')} {i.get('version')} "
                                        f"({i.get('architecture')})"
                                        for i in threadpool_info() if i.get("user_api") == "blas"}))
    except ImportError:
        pass
    out["cpu"] = cpu_description()
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OPENBLAS_", "OMP_", "GOMP_", "MKL_", "KMP_", "TF_ENABLE_ONEDNN"))}
    out["env"] = " ".join(f"{k}={v}" for k, v in sorted(env.items())) or "(no BLAS/OpenMP variables)"
    for e in engines:
        out[e.name] = e.version()
    return out


def cpu_description() -> str:
    """The CPU model and its widest vector extension, from /proc/cpuinfo (Linux); else platform."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    isa = next((f for f in ("avx512f", "avx2", "avx", "sse4_2", "asimd") if f in flags), "?")
    return f"{fields.get('model name', platform.machine())}, widest SIMD: {isa}"


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(prog="python -m klayers.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*",
                   help="families (dense, conv, pool ...) or workload name patterns (default: all)")
    p.add_argument("--workload", default=None,
                   help="keep workloads whose name contains this string or matches it as a "
                        "regular expression (default: all)")
    p.add_argument("--family", default=None,
                   help="keep one layer family (dense, conv, pool ...: the start of its name will do)")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for every engine and for the machine limits (default 2)")
    p.add_argument("--repeats", type=int, default=15,
                   help="timing samples per engine and workload (default 15)")
    p.add_argument("--rounds", type=int, default=5,
                   help="round-robin visits per engine; each takes repeats/rounds samples "
                        "(default 5)")
    p.add_argument("--cooldown-ms", type=float, default=None,
                   help="sleep before each switch of engine so the last one's spinning "
                        "threads go idle (default: 150 with --threads > 1, else 0)")
    p.add_argument("--min-sample-ms", type=float, default=5.0,
                   help="each sample repeats the call until it lasts this long (default 5)")
    p.add_argument("--engines", default=None,
                   help="comma-separated subset: klayers,'keras eager','keras tf.function',"
                        "onnxruntime (default: every installed one)")
    p.add_argument("--no-ceilings", action="store_true",
                   help="skip measuring the machine limits (saves about 10 s)")
    p.add_argument("--ceiling-n", type=int, default=4096,
                   help="matrix size of the float32 matmul limit (default 4096)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", metavar="PATH", default=None, help="also write all results as JSON")
    p.add_argument("--list", action="store_true", help="list the selected workloads and exit")
    return p.parse_args(argv)


def selected(names: Sequence[str], pattern: Optional[str] = None, family: Optional[str] = None
             ) -> List[Workload]:
    """The workloads the command line names (:func:`klayers.bench.choose`), narrowed by
    ``--workload`` and ``--family``.

    Raises:
        LookupError: nothing matches; the message lists the families.
    """
    if family is not None:
        if family_named(family) is None:
            raise LookupError(f"no family {family!r}; the families are {', '.join(families())}")
        family = family_named(family)
    keep = {w.name for w in select(pattern, family)}
    workloads = [w for w in choose(names) if w.name in keep]
    if not workloads:
        what = " and ".join(f"{k} {v!r}" for k, v in
                            (("names", " ".join(names)), ("--workload", pattern), ("--family", family)) if v)
        raise LookupError(f"no workload matches {what}; the families are {', '.join(families())}")
    return workloads


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; returns the exit status."""
    args = parse_args(argv)
    try:
        workloads = selected(args.names, args.workload, args.family)
    except LookupError as e:
        print(f"python -m klayers.bench: error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for w in workloads:
            print(w.name)
        return 0
    if min(args.threads, args.repeats, args.rounds) < 1:
        print("--threads, --repeats and --rounds must be at least 1", file=sys.stderr)
        return 2
    only = [s.strip() for s in args.engines.split(",")] if args.engines else None
    engines, skipped = available_engines(args.threads, only)
    if not engines:
        print(f"no engine could start: {skipped}", file=sys.stderr)
        return 2

    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=args.threads, user_api="blas")
    info = versions(engines)
    cooldown_ms = args.cooldown_ms if args.cooldown_ms is not None else (
        150.0 if args.threads > 1 else 0.0)
    plan = TimingPlan(args.repeats, args.rounds, args.min_sample_ms / 1e3, cooldown_ms / 1e3)
    print(f"# threads={args.threads}, repeats={plan.repeats} in {plan.rounds} rounds, "
          f"min sample {args.min_sample_ms:g} ms, cooldown {cooldown_ms:g} ms, "
          f"{len(workloads)} workloads")
    for k, v in info.items():
        print(f"#   {k}: {v}")
    for name, why in skipped.items():
        print(f"#   {name}: not run ({why})")

    ceilings: Dict[str, float] = {}
    if not args.no_ceilings:
        ceilings["matmul_gflops_float32"] = matmul_gflops(args.ceiling_n, "float32")
        if any(w.dtype == "float64" for w in workloads):
            ceilings["matmul_gflops_float64"] = matmul_gflops(args.ceiling_n // 2, "float64")
        ceilings["copy_gbs"] = copy_gbs()
        print(f"# machine limits ({args.threads} BLAS threads): NumPy float32 matmul "
              f"n={args.ceiling_n}: {ceilings['matmul_gflops_float32']:.1f} GFLOP/s"
              + (f"; float64 n={args.ceiling_n // 2}: {ceilings['matmul_gflops_float64']:.1f} "
                 "GFLOP/s" if "matmul_gflops_float64" in ceilings else "")
              + f"; array copy (1 thread, read+write): {ceilings['copy_gbs']:.1f} GB/s")
    sys.stdout.flush()

    rows = []
    status = 0
    for w in workloads:
        t0 = time.perf_counter()
        time.sleep(plan.cooldown_s)
        row = run_workload(w, engines, plan)
        rows.append(row)
        for name, why in row["problems"].items():
            if not why.startswith("skipped"):
                status = 1
            print(f"# {w.name}: {name}: {why}", file=sys.stderr)
        print(f"# {w.name}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    limiter.restore_original_limits()

    names = [e.name for e in engines]
    header, cells = table(rows, names, ceilings)
    print()
    print(render(header, cells, args.markdown))
    print()
    print("Cells: median per call ±half the interquartile range, NumPy in and NumPy out. "
          "Ratio > 1: klayers is slower than the fastest peer. Rates in parentheses are a "
          "fraction of the machine limit above (GFLOP/s: matmul of the same dtype; "
          "GB/s: array copy).")
    ratios = [r for r in (ratio_vs_best_peer(row)[0] for row in rows) if r is not None]
    if ratios:
        print(f"Geometric mean of klayers / best peer over {len(ratios)} workloads: "
              f"{float(np.exp(np.mean(np.log(ratios)))):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "plan": dataclasses.asdict(plan), "versions": info,
                       "ceilings": ceilings, "skipped": skipped, "rows": rows}, f, indent=1)
    return status


