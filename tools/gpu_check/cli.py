"""The orchestrator of ``python3 tools/gpu_check``: the phases, the summary, the verdict.

It imports neither CuPy nor torch: each phase is a child process (``workers`` or
pytest, see ``runner``), so a CUDA crash, a hang or an out-of-memory costs one phase.
SIGTERM or SIGINT to the kit stop the running phase, skip the rest, and still write
the summary and the asv files from every point measured so far.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from gpu_check import environment as envmod
from gpu_check import results
from gpu_check.runner import (  # noqa: F401  (LOG_FILE, SUMMARY_FILE: the output's names, read by the tests)
    BUDGET_S, ENV_NAME, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_NO_GPU, EXIT_OK, LOG_FILE, SUMMARY_FILE, Phase, Run,
    plan_phases, pytest_counts)


# -- the phases ---------------------------------------------------------------------------------------

def _worker(name: str, *args) -> list[str]:
    return [sys.executable, "-m", "gpu_check.workers", name, *args]


def _run_info(run: Run, args, gpu: dict | None) -> dict:
    commit, date_ms, source = envmod.commit_and_date(args.commit, args.commit_date)
    machine = args.machine or (envmod.machine_slug(gpu["name"]) if gpu else "unknown-gpu")
    info = {"machine": machine, "cpu": envmod.cpu_model(), "commit": commit or "0" * 40, "commit_source": source,
            "date_ms": date_ms, "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    info["env_name"] = ENV_NAME.format(python=info["python"])
    return info


def phase_setup(run: Run, phase: Phase, env: dict, args, deadline: float) -> None:
    if shutil.which("nvidia-smi"):
        run.run_child(["nvidia-smi"], env, min(deadline, time.time() + 20))
    rc, ended, text = run.run_child(_worker("describe", "--json", str(run.scratch / "describe.json")), env, deadline)
    if rc != 0:
        phase.status, phase.detail = ended if ended != "ok" else "failed", "describe failed: see the log"
        return
    desc = json.loads((run.scratch / "describe.json").read_text())
    gpu = desc.get("gpu") if (desc.get("gpu") or {}).get("ok") else None
    info = _run_info(run, args, gpu)
    results.write_json_atomic(run.scratch / "run.json", info)
    cupy = desc["backends"].get("cupy", {})
    run.summary.update(backends=desc["backends"], gpu=gpu, run=info)
    import sparsekit_cupy  # its import-light info module: the label, no CuPy

    label = sparsekit_cupy.device_label(gpu) if gpu else None
    if gpu:
        run.say(f"GPU: {label}, {gpu.get('sms')} SMs; CuPy {gpu.get('cupy')}")
    else:
        run.say(f"GPU: none usable -- cupy unavailable: {cupy.get('reason') or 'not registered'}")
    for name in ("torch",):
        rec = desc["backends"].get(name)
        if rec:
            run.say(f"{name}: {'available' if rec['available'] else 'unavailable: ' + rec['reason']} [{rec['device']}]")
    if os.environ.get("CUPY_TF32", "0").strip() not in ("", "0") and os.environ.get("NVIDIA_TF32_OVERRIDE") != "0":
        run.say("warning: CUPY_TF32 is set: cupy's float32 dense_mm and moe will be n/a (TF32 breaks the float32 bound)")
    if info["commit_source"] == "unknown":
        run.say("commit: unknown (no --commit and no git here): the result file is named 00000000-...; "
                "rerun with --commit, or rename it and set its commit_hash before committing")
    mdir = run.out / "results" / info["machine"]
    mdir.mkdir(parents=True, exist_ok=True)
    device = [f"# device {label}"] if gpu else ["# device: no usable CUDA device"]
    (mdir / "versions.txt").write_text("\n".join(desc["versions"] + device) + "\n", encoding="utf-8")
    results.write_asv(run.out / "results", info, [], {})
    phase.status = "ok"


def phase_conformance(run: Run, phase: Phase, env: dict, backend: str, args, deadline: float) -> None:
    extra = ("tests/test_cupy.py",) if backend == "cupy" else ()
    timeout = 120 if _have("pytest_timeout") else None
    child_env = {**env, "HYPOTHESIS_PROFILE": env.get("HYPOTHESIS_PROFILE", "ci")}  # 50 drawn cases per test
    rc, ended, text = run.run_child(envmod.conformance_command(backend, extra, timeout), child_env, deadline)
    counts = pytest_counts(text)
    phase.facts = counts
    run.summary.setdefault("conformance", {})[backend] = counts
    shown = ", ".join(f"{v} {k}" for k, v in counts.items() if k != "failures") or "no summary (see the log)"
    run.say(f"  {backend}: {shown}")
    for line in counts["failures"][:15]:
        run.say(f"    {line}")
    phase.status = ended
    if ended == "ok" and counts.get("failed", 0) + counts.get("error", 0) == 0 and counts.get("passed", 0) == 0:
        phase.detail = "nothing passed: every test skipped (backend unavailable?)"


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def phase_grid(run: Run, phase: Phase, env: dict, backend: str, args, deadline: float) -> None:
    rc, ended, text = run.run_child(_worker("grid", "--backend", backend, "--out", str(run.out), "--run",
                                            str(run.scratch / "run.json"), "--deadline", str(deadline - 2)),
                                    env, deadline)
    mine = [p for p in results.read_points(run.out / results.POINTS_FILE) if p.get("params", [None])[0] == backend
            and "method" in p]
    states = {}
    for p in mine:
        states[p["status"]] = states.get(p["status"], 0) + 1
    phase.facts = states
    phase.status = "deadline" if ended == "ok" and states.get("deadline") else ended
    wrong = [p for p in mine if p.get("status") == "ok" and not p.get("check_ok", True)]
    if wrong:
        phase.status, phase.detail = "failed", f"{len(wrong)} point(s) fail the oracle check"
    run.say(f"  {backend}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))


def phase_worker(run: Run, phase: Phase, env: dict, name: str, args, deadline: float, *extra) -> None:
    rc, ended, text = run.run_child(_worker(name, "--out", str(run.out), "--run", str(run.scratch / "run.json"),
                                            "--scratch", str(run.scratch), "--repo", str(envmod.ROOT),
                                            "--deadline", str(deadline - 2), *extra), env, deadline)
    phase.status = ended
    for line in text.splitlines():
        if not line.startswith("$ "):
            print("  " + line, flush=True)


# -- the tables at the end ------------------------------------------------------------------------

def cusparse_vs_own(points: list[dict]) -> list[dict]:
    """Per SpMM point on cupy: cuSPARSE (the automatic path) against our forced CSR kernel."""
    rows: dict = {}
    for p in points:
        if p.get("benchmark") != "bench_spmm.SpMM" or p.get("params", [None])[0] != "cupy" or p.get("status") != "ok":
            continue
        key = tuple(p["params"][1:])
        slot = "own" if p.get("force") else "cusparse"
        rows.setdefault(key, {"pattern": key[0], "shape": key[1], "sparsity": key[2]})[slot] = p["seconds"]
        rows[key][slot + "_path"] = p.get("path")
    out = []
    for row in rows.values():
        if "own" in row and "cusparse" in row:
            row["own_over_cusparse"] = row["own"] / row["cusparse"]
        out.append(row)
    return out


def print_tables(run: Run) -> None:
    points = results.read_points(run.out / results.POINTS_FILE)
    table = cusparse_vs_own(points)
    run.summary["cusparse_vs_own"] = table
    if table:
        run.say("cuSPARSE SpMM (bound once) vs our CSR kernels, float32, seconds per call:")
        for r in table:
            ratio = f"{r['own_over_cusparse']:.2f}x" if "own_over_cusparse" in r else "n/a"
            run.say(f"  {r['shape']:>13} s={r['sparsity']:<5} cuSPARSE {r.get('cusparse', float('nan')) * 1e6:9.1f} us"
                    f"  {r.get('own_path') or 'own'} {r.get('own', float('nan')) * 1e6:9.1f} us  own/cuSPARSE {ratio}")
    bw = [p for p in points if p.get("kind") in ("stream", "gather_fraction")]
    run.summary["bandwidth"] = bw
    frac = [p for p in bw if p["kind"] == "gather_fraction"]
    if frac:
        best = max(frac, key=lambda p: p["fraction_of_copy"])
        run.say(f"gather_mm reaches up to {best['fraction_of_copy']:.0%} of the D2D copy bandwidth "
                f"({best['m']}x{best['k']}x{best['n']}, {best['rows']} rows)")


# -- main -------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python3 tools/gpu_check", description=(
        "Verify the cupy backend on this GPU and measure the break-even grid, offline, in one budget. "
        "Writes gpu_check.log, summary.json, points.jsonl and results/<machine>/ under --out."))
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out",
                    help="output folder (default: $OUT, else ./gpu-check-out)")
    ap.add_argument("--commit", help="the commit of this tree (the GPU host has no git); default: git rev-parse HEAD")
    ap.add_argument("--commit-date", help="its date, seconds since the epoch (default: from git, else now)")
    ap.add_argument("--machine", help="results folder name (default: the GPU's name, e.g. nvidia-h200)")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds for the whole run (default {BUDGET_S:g})")
    ap.add_argument("--phase-seconds", default="", help="caps per phase, e.g. grid=20,conformance:cupy=100")
    ap.add_argument("--conformance-backends", default="cupy,torch")
    ap.add_argument("--grid-backends", default="cupy,torch")
    ap.add_argument("--torch-device", default="cuda", help="SPARSEKIT_TORCH_DEVICE for the torch peer (default cuda)")
    ap.add_argument("--keep-scratch", action="store_true", help="keep the scratch folder (shim, caches)")
    ap.add_argument("--print-command", action="store_true",
                    help="print the command to run on the GPU host for this checkout's commit, and exit")
    args = ap.parse_args(argv)
    overrides = {}
    for item in filter(None, (s.strip() for s in args.phase_seconds.split(","))):
        name, _, value = item.partition("=")
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            ap.error(f"--phase-seconds: {item!r} is not NAME=SECONDS")
    args.overrides = overrides
    if args.budget <= 0:
        ap.error("--budget must be positive")
    return args


def print_command() -> int:
    commit, date_ms, source = envmod.commit_and_date(None, None)
    if commit is None:
        print("no git here: pass --commit HASH on the GPU host", file=sys.stderr)
        return 1
    dirty = envmod._git("status", "--porcelain", "--untracked-files=no")
    if dirty:
        print(f"warning: the working tree differs from {commit[:8]}; commit first so the results name the code that ran",
              file=sys.stderr)
    print(f'python3 tools/gpu_check --out "$OUT" --commit {commit} --commit-date {date_ms // 1000}')
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.print_command:
        return print_command()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in (LOG_FILE, SUMMARY_FILE, results.POINTS_FILE):
        (out / stale).unlink(missing_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    try:
        phases = plan_phases(_names(args.conformance_backends), _names(args.grid_backends), args.budget, args.overrides)
    except ValueError as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 2
    run = Run(out, scratch, args.budget)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, run.on_signal)
    run.summary = {"kit": "tools/gpu_check", "argv": sys.argv[1:] if argv is None else list(argv),
                   "python": sys.version.split()[0], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "budget_s": args.budget, "phases": []}
    try:
        return _run_phases(run, phases, args)
    finally:
        if not args.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _run_phases(run: Run, phases: list[Phase], args) -> int:
    run.say(f"gpu_check: Python {sys.version.split()[0]} ({sys.executable}), budget {args.budget:g} s, output {run.out}")
    env = envmod.prepare(run.scratch)
    env.setdefault("SPARSEKIT_TORCH_DEVICE", args.torch_device)  # the torch peer on the GPU, in every phase
    for i, phase in enumerate(phases):
        now = time.time()
        reserve = sum(p.floor for p in phases[i + 1:])
        deadline = min(now + phase.cap, run.end - reserve)
        if run.stop_signal is not None:
            phase.status, phase.detail = "interrupted", "stopped before it started"
        elif deadline - now < 2.0:
            phase.status, phase.detail = "skipped", "no time left in the budget"
        elif phase.name != "setup" and "run" not in run.summary:
            phase.status, phase.detail = "skipped", "setup did not finish"
        elif phase.name in ("bandwidth", "calibrate") and not run.summary.get("gpu"):
            phase.status, phase.detail = "skipped", "no usable GPU (cupy unavailable)"
        else:
            run.say(f"== {phase.name} (up to {deadline - now:.0f} s)")
            kind, _, backend = phase.name.partition(":")
            if kind == "setup":
                phase_setup(run, phase, env, args, deadline)
            elif kind == "conformance":
                phase_conformance(run, phase, env, backend, args, deadline)
            elif kind == "grid":
                phase_grid(run, phase, env, backend, args, deadline)
            elif kind == "bandwidth":
                phase_worker(run, phase, env, "bandwidth", args, deadline, "--backend", "cupy")
            elif kind == "calibrate":
                backends = ",".join(b for b in ("cupy", "torch") if b in _names(args.grid_backends)) or "cupy"
                phase_worker(run, phase, env, "calibrate", args, deadline, "--backends", backends)
            elif kind == "report":
                phase_worker(run, phase, env, "report", args, deadline, "--json", str(run.scratch / "report.json"))
                rows = run.scratch / "report.json"
                if rows.is_file():
                    run.summary["break_even"] = json.loads(rows.read_text())
            phase.seconds = round(time.time() - now, 1)
        run.summary["phases"] = [_phase_dict(p) for p in phases]
        run.write_summary()
    return _finish(run, phases)


def _phase_dict(p: Phase) -> dict:
    return {"name": p.name, "status": p.status, "seconds": p.seconds, "cap_s": round(p.cap, 1), "detail": p.detail,
            **({"facts": p.facts} if p.facts else {})}


def _finish(run: Run, phases: list[Phase]) -> int:
    if "run" in run.summary:  # the asv files once more, from every point (a killed worker may have missed one)
        from gpu_check import grid as grid_mod

        results.write_asv(run.out / "results", run.summary["run"], results.read_points(run.out / results.POINTS_FILE),
                          grid_mod.full_params())
    print_tables(run)
    run.say("phases:")
    for p in phases:
        run.say(f"  {p.name:20} {p.status:11} {p.seconds:6.1f} s (cap {p.cap:.0f} s)  {p.detail}")
    failed = [p.name for p in phases if p.status == "failed"] + [
        f"{b}: {c.get('failed', 0) + c.get('error', 0)} failed" for b, c in run.summary.get("conformance", {}).items()
        if c.get("failed", 0) + c.get("error", 0)]
    if run.stop_signal is not None:
        status, verdict = 128 + run.stop_signal, f"stopped by signal {run.stop_signal}; everything measured is kept"
    elif failed:
        status, verdict = EXIT_FAILED, "failures: " + "; ".join(failed)
    elif not run.summary.get("gpu"):
        status, verdict = EXIT_NO_GPU, "no usable GPU: everything up to the GPU ran"
    elif any(p.status in ("deadline", "skipped") for p in phases):
        cut = [p.name for p in phases if p.status in ("deadline", "skipped")]
        status, verdict = EXIT_INCOMPLETE, f"what ran passed, but {', '.join(cut)} did not finish in the budget"
    else:
        status, verdict = EXIT_OK, "all phases ran and passed"
    run.summary.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(time.time() - run.start, 1),
                       exit_status=status, verdict=verdict, files=sorted(
                           str(p.relative_to(run.out)) for p in run.out.rglob("*") if p.is_file()))
    run.write_summary()
    machine = run.summary.get("run", {}).get("machine", "?")
    run.say(f"gpu_check: {verdict} (exit {status}, {run.summary['seconds']:.0f} s). To commit: "
            f"cp -r {run.out / 'results' / machine} results/")
    return status
