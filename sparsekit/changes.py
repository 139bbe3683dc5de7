"""Across commits: what changed between two result files of one machine, and whether it is real.

``compare(old, new)`` lists, per benchmark and parameter combination, what asv's own
``asv compare`` would flag, classified:

* ``slower`` / ``faster``: time ratio beyond the project's factor (``FACTOR``) *and* a
  statistically significant difference by asv's test (Mann-Whitney U on the recorded
  samples where asv kept them, else non-overlapping 99% confidence intervals);
* ``noise``: beyond the factor, but not significant (asv prints it as ``~ratio``);
* ``accuracy loss`` / ``accuracy gain``: ``track_error`` grew (fell) by more than
  ``ERROR_FACTOR`` and by more than ``ERROR_FLOOR`` (smaller moves are rounding-order
  noise: a different summation order changes a float32 error by a few ulps);
* ``new failure`` (a number before, a failure now), ``fixed``, ``vanished`` (measured
  before, absent now), ``new`` (absent before).

A change flagged from stored results is then *confirmed* or called *noise* by measuring
both commits again side by side in one session (``confirm``: ``asv run`` over the two
commits with ``--interleave-rounds``, only the flagged benchmarks, into a scratch results
folder), and the report shows both figures. ``gate`` is what ``make compare`` exits with.

Why 1.3: on the 2-core reference hosts, repeated ``make bench`` runs of one commit moved
single benchmarks by up to ~25% (other jobs on the host, thread pools' spin-waits), so
asv's default 1.1 flags noise on every run; 1.3 with the statistical test and the
side-by-side re-measurement keeps what is reported real.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import results as _r

FACTOR = 1.3
ERROR_FACTOR = 2.0
ERROR_FLOOR = 1e-6
#: asv's p-value threshold for the Mann-Whitney test (as ``asv compare``)
P_THRESHOLD = 0.002
#: flagged benchmarks re-measured at most, biggest changes first (each costs both commits' runs)
CONFIRM_MAX = 8
CONFIRMATIONS = "confirmations.json"


@dataclass
class Change:
    benchmark: str
    params: dict
    kind: str
    before: float | None
    after: float | None
    ratio: float | None = None
    significant: bool | None = None
    #: after ``confirm``: "confirmed", "noise", or why it was not re-measured
    confirmation: str | None = None
    remeasured: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """asv's name of this combination: ``bench_x.Class.method('cpu', 0.5)``."""
        return param_key(self.benchmark, self.params)

    def as_dict(self) -> dict:
        return asdict(self)


def param_key(benchmark: str, params: dict) -> str:
    if not params:
        return benchmark
    return f"{benchmark}({', '.join(repr(v) for v in params.values())})"


def _entries(data: dict, benchmarks: dict) -> dict[str, dict]:
    """key -> {"benchmark", "params", "value", "stats", "samples", "version"} of every result."""
    columns = data.get("result_columns") or ["result", "params"]
    out = {}
    for name, row in (data.get("results") or {}).items():
        if not isinstance(row, list):
            continue
        combos = _r.combinations(row, columns)
        raw = _r.column(row, columns, "result")
        raw = raw if isinstance(raw, list) else [raw]
        if not combos:
            continue
        names = _r.param_names(benchmarks, name, len(combos[0][0])) or [f"p{i}" for i in range(len(combos[0][0]))]
        stats = {c: _r.column(row, columns, f"stats_{c}") for c in ("ci_99_a", "ci_99_b", "q_25", "q_75", "repeat")}
        samples = _r.column(row, columns, "samples")
        for i, (values, value) in enumerate(combos):
            params = dict(zip(names, values))
            st = {k: (v[i] if isinstance(v, list) and i < len(v) else None) for k, v in stats.items()}
            smp = samples[i] if isinstance(samples, list) and i < len(samples) else None
            out[param_key(name, params)] = {"benchmark": name, "params": params, "value": value,
                                            "failed": i < len(raw) and raw[i] is None, "stats": st,
                                            "samples": smp, "version": _r.column(row, columns, "version")}
    return out


def is_different(a: dict, b: dict) -> bool:
    """asv's significance test of two results (``asv._stats.is_different`` where asv is installed;
    else its fallback, re-implemented: the 99% confidence intervals do not overlap)."""
    try:
        from asv._stats import is_different as asv_is_different
    except ImportError:
        asv_is_different = None
    sa, sb = a["stats"], b["stats"]
    if asv_is_different is not None and all(s.get(k) is not None for s in (sa, sb) for k in ("ci_99_a", "ci_99_b")):
        return bool(asv_is_different(a.get("samples"), b.get("samples"), sa, sb, P_THRESHOLD))
    ca, cb = (sa.get("ci_99_a"), sa.get("ci_99_b")), (sb.get("ci_99_a"), sb.get("ci_99_b"))
    if None in ca or None in cb:
        return True  # no statistics recorded (one sample): the factor alone decides, as in asv
    return not (ca[1] >= cb[0] and ca[0] <= cb[1])


def compare(old: dict, new: dict, benchmarks: dict | None = None, factor: float = FACTOR) -> list[Change]:
    """The changes from result file ``old`` to ``new`` (both asv result dicts of one machine)."""
    benchmarks = benchmarks or {}
    a, b = _entries(old, benchmarks), _entries(new, benchmarks)
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        ref = x or y
        method = ref["benchmark"].split(".")[-1]
        if x is None:
            if y["value"] is not None:
                out.append(Change(y["benchmark"], y["params"], "new", None, y["value"]))
            continue
        if y is None:
            if x["value"] is not None:
                out.append(Change(x["benchmark"], x["params"], "vanished", x["value"], None))
            continue
        if x.get("version") != y.get("version") and x.get("version") and y.get("version"):
            continue  # the benchmark's meaning changed (its version was bumped): not comparable
        va, vb = x["value"], y["value"]
        if va is not None and y["failed"]:
            out.append(Change(x["benchmark"], x["params"], "new failure", va, None))
            continue
        if x["failed"] and vb is not None:
            out.append(Change(x["benchmark"], x["params"], "fixed", None, vb))
            continue
        if va is None or vb is None or va <= 0:
            continue
        ratio = vb / va
        if method.startswith("track_error"):
            if vb > va * ERROR_FACTOR and vb - va > ERROR_FLOOR:
                out.append(Change(x["benchmark"], x["params"], "accuracy loss", va, vb, ratio, True))
            elif va > vb * ERROR_FACTOR and va - vb > ERROR_FLOOR:
                out.append(Change(x["benchmark"], x["params"], "accuracy gain", va, vb, ratio, True))
            continue
        if not (method.startswith("time_") or method.startswith("peakmem_")):
            continue  # other tracks (GB/s, synops, MSE) are figures, not regressions of code
        if ratio > factor or ratio < 1 / factor:
            significant = is_different(x, y)
            kind = ("slower" if ratio > 1 else "faster") if significant else "noise"
            out.append(Change(x["benchmark"], x["params"], kind, va, vb, ratio, significant))
    return out


REGRESSIONS = ("slower", "accuracy loss", "new failure")


def flagged(changes: list[Change]) -> list[Change]:
    """Changes that accuse the new commit (what ``confirm`` re-measures)."""
    return [c for c in changes if c.kind in REGRESSIONS or c.kind == "noise" and (c.ratio or 0) > 1]


def two_newest(machine_dir: Path, head: str | None = None, base: str | None = None):
    """((base path, data), (head path, data)) of one machine: the newest file of ``head`` (default: the
    newest commit) and of ``base`` (default: the newest older commit); None when there is no pair."""
    files = _r.result_files(machine_dir)
    by_commit: dict[str, tuple] = {}
    for _, path, data in files:  # oldest first: the newest file of each commit wins
        by_commit[str(data.get("commit_hash") or "")] = (path, data)
    order = [str(d.get("commit_hash") or "") for _, _, d in files]
    commits = list(dict.fromkeys(reversed(order)))  # newest first, each once

    def find(prefix):
        return next((c for c in commits if c.startswith(prefix)), None)

    h = find(head) if head else (commits[0] if commits else None)
    if h is None:
        return None
    rest = [c for c in commits if c != h]
    bcommit = find(base) if base else (rest[0] if rest else None)
    if bcommit is None or bcommit == h:
        return None
    return by_commit[bcommit], by_commit[h]


def changes_since(results_dir, machine: str, head: str | None = None, base: str | None = None,
                  factor: float = FACTOR) -> dict | None:
    """``{"machine", "base", "head", "factor", "changes": [Change...]}`` between the two newest commits of a
    machine (or the ones named), with confirmations stored earlier (``confirmations.json``) applied."""
    root = Path(results_dir)
    pair = two_newest(root / machine, head, base)
    if pair is None:
        return None
    (_, old), (_, new) = pair
    benchmarks = _r.load_json(root / "benchmarks.json") or {}
    found = compare(old, new, benchmarks, factor)
    base_c, head_c = str(old.get("commit_hash")), str(new.get("commit_hash"))
    stored = load_confirmations(root / machine).get(f"{base_c}..{head_c}", {})
    for c in found:
        if c.key in stored:
            c.confirmation = stored[c.key].get("confirmation")
            c.remeasured = stored[c.key].get("remeasured", {})
    return {"machine": machine, "base": base_c, "head": head_c, "factor": factor, "changes": found}


def load_confirmations(machine_dir: Path) -> dict:
    data = _r.load_json(Path(machine_dir) / CONFIRMATIONS)
    return data if isinstance(data, dict) else {}


def save_confirmations(machine_dir: Path, base: str, head: str, changes: list[Change]) -> Path:
    from .runfile import clean, write_atomic

    path = Path(machine_dir) / CONFIRMATIONS
    data = load_confirmations(machine_dir)
    data[f"{base}..{head}"] = {c.key: {"confirmation": c.confirmation, "remeasured": c.remeasured}
                               for c in changes if c.confirmation}
    write_atomic(path, clean(data))
    return path


# -- re-measuring side by side ------------------------------------------------------------------


def asv_config(repo: Path, results_dir: Path, html_dir: Path) -> dict:
    """The project's asv.conf.json (``//`` comments allowed) with the results folder replaced."""
    text = (Path(repo) / "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))
    conf.update(repo=str(repo), results_dir=str(results_dir), html_dir=str(html_dir),
                benchmark_dir=str(Path(repo) / conf.get("benchmark_dir", "benchmarks")),
                env_dir=str(Path(repo) / conf.get("env_dir", ".asv/env")))
    return conf


def run_side_by_side(repo: Path, machine: str, commits: list[str], bench: list[str], results_dir: Path,
                     rounds: int = 2, launch: str | None = None, progress: bool = True) -> int:
    """``asv run`` of ``bench`` (regexes) on ``commits`` in one session, rounds interleaved across the
    commits, into ``results_dir`` (a scratch folder: committed results are not touched). Returns asv's status."""
    asv = shutil.which("asv") or str(Path(sys.executable).with_name("asv"))
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    conf_path = results_dir.parent / "asv.compare.conf.json"
    conf_path.write_text(json.dumps(asv_config(repo, results_dir, results_dir.parent / "html")))
    hashes = results_dir.parent / "commits.txt"
    hashes.write_text("\n".join(commits) + "\n")
    cmd = [asv, "run", "--config", str(conf_path), "--machine", machine, "--interleave-rounds",
           "-a", f"rounds={max(2, rounds)}", "--record-samples", f"HASHFILE:{hashes}"]
    if launch:
        cmd += ["--launch-method", launch]
    for b in bench:
        cmd += ["-b", b]
    proc = subprocess.run(cmd, cwd=repo, stdout=None if progress else subprocess.DEVNULL,
                          stderr=None if progress else subprocess.DEVNULL)
    return proc.returncode


def confirm(changes: list[Change], repo: Path, machine: str, base: str, head: str, *, factor: float = FACTOR,
            limit: int = CONFIRM_MAX, launch: str | None = None, progress: bool = True, scratch=None) -> list[Change]:
    """Re-measure the flagged changes' benchmarks on both commits side by side and mark each
    ``confirmed`` (the re-measurement shows the regression: the same one, or a significant one where
    the stored samples said noise) or ``noise`` (it does not)."""
    todo = sorted(flagged(changes), key=lambda c: -(c.ratio or 0))
    for c in todo[limit:]:
        c.confirmation = f"not re-measured (only the {limit} largest changes are)"
    todo = todo[:limit]
    if not todo:
        return changes
    scratch = Path(scratch or tempfile.mkdtemp(prefix="sparsekit-confirm-"))
    rc = run_side_by_side(Path(repo), machine, [base, head], ["^" + re.escape(c.key) + "$" for c in todo],
                          scratch / "results", launch=launch, progress=progress)
    pair = two_newest(scratch / "results" / machine, head=head[:8], base=base[:8])
    if pair is None:
        for c in todo:
            c.confirmation = f"could not be re-measured (asv exited with {rc})"
        return changes
    (_, old), (_, new) = pair
    again = {c.key: c for c in compare(old, new, factor=factor)}
    fresh_old, fresh_new = _entries(old, {}), _entries(new, {})
    for c in todo:
        r = again.get(c.key)
        c.remeasured = {"before": (fresh_old.get(c.key) or {}).get("value"), "after": (fresh_new.get(c.key) or {}).get("value")}
        if r is not None and r.kind in REGRESSIONS and c.kind in (r.kind, "noise"):
            # a stored slowdown seen again, or one the stored samples could not decide ("noise"
            # beyond the factor) that the side-by-side run shows significant: a regression
            c.kind, c.confirmation = r.kind, "confirmed"
        else:
            c.confirmation = "noise"
    return changes


def gate(changes: list[Change]) -> bool:
    """True (the change may land) unless a confirmed slowdown, a confirmed accuracy loss or a new failure."""
    return not any(c.kind in REGRESSIONS and c.confirmation in ("confirmed", None) for c in changes)


def summary_lines(found: dict | None, limit: int = 12) -> list[str]:
    """A few terminal lines: ``changed since <commit>``, the regressions first."""
    if not found:
        return []
    order = {"new failure": 0, "accuracy loss": 1, "slower": 2, "noise": 3, "vanished": 4, "faster": 5,
             "accuracy gain": 6, "fixed": 7, "new": 8}
    shown = sorted((c for c in found["changes"] if c.kind != "new"), key=lambda c: (order.get(c.kind, 9), -(c.ratio or 0)))
    head = (f"== {found['machine']}: changed since {found['base'][:8]} (at {found['head'][:8]}; factor {found['factor']:g}, "
            "asv's statistical test)")
    if not shown:
        return [head, "no change beyond the factor"]
    lines = [head]
    unconfirmed = 0
    for c in shown[:limit]:
        ratio = "" if c.ratio is None else f" {c.ratio:.2f}x"
        v = _v if ".time_" in c.benchmark else _n
        if c.confirmation:
            conf = f" [{c.confirmation}" + (f": re-measured {v(c.remeasured.get('before'))} -> "
                                           f"{v(c.remeasured.get('after'))}" if c.remeasured else "") + "]"
        elif c.kind in REGRESSIONS:
            # two result files from different sessions disagree more often than code does: say so
            conf, unconfirmed = " [not re-measured]", unconfirmed + 1
        else:
            conf = ""
        lines.append(f"{c.kind:>13}{ratio}  {c.key}: {v(c.before)} -> {v(c.after)}{conf}")
    if len(shown) > limit:
        lines.append(f"... and {len(shown) - limit} more (sparsekit compare --machine {found['machine']})")
    if unconfirmed:
        lines.append(f"not re-measured: stored results only; `sparsekit compare --machine {found['machine']} --confirm` "
                     "measures both commits side by side")
    return lines


def _v(x) -> str:
    from .fmt import fmt_time

    return "failed/absent" if x is None else fmt_time(x)


def _n(x) -> str:
    return "failed/absent" if x is None else f"{x:.3g}"


def main(results_dir="results", machine=None, base=None, head=None, *, factor=FACTOR, do_confirm=False,
         as_json=False, gate_exit=False, repo=None, launch=None, progress=True) -> int:
    """``sparsekit compare``: print the changes between two result files of a machine (and confirm them)."""
    from . import host

    machine = machine or host.machine_name()
    found = changes_since(results_dir, machine, head, base, factor)
    if found is None:
        print(f"sparsekit compare: machine {machine!r} has no two commits to compare in {os.fspath(results_dir)}",
              file=sys.stderr)
        return 1 if gate_exit else 0
    if do_confirm:
        repo = Path(repo or Path(results_dir).absolute().parent)
        confirm(found["changes"], repo, machine, found["base"], found["head"], factor=factor, launch=launch,
                progress=progress)
        save_confirmations(Path(results_dir) / machine, found["base"], found["head"], found["changes"])
    if as_json:
        print(json.dumps({**found, "changes": [c.as_dict() for c in found["changes"]]}, indent=2, default=str))
    else:
        print("\n".join(summary_lines(found, limit=10_000)))
    if gate_exit and not gate(found["changes"]):
        print("sparsekit compare: a confirmed regression (see above)", file=sys.stderr)
        return 1
    return 0


#: what ``make compare`` measures unless told otherwise: every kernel's default grid and the
#: Peers view (the workloads, Lava and calibration are left to ``make bench``: they take long and
#: are figures of whole pipelines, not of one kernel's code)
GATE_BENCH = [r"^bench_(dense_mm|spmm|sddmm|gather_mm|kwta|sparse_sparse|lif|moe|peers|registered)\."]


def _git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def run_gate(base_rev: str, *, bench=None, factor: float = FACTOR, machine=None, launch=None, as_json=False,
             gate_exit=True, repo=None, progress=True) -> int:
    """``make compare``: BASE and HEAD measured side by side (rounds interleaved) into ``.asv/compare/``,
    compared, flagged changes re-measured once more side by side, exit 1 on a confirmed regression."""
    from . import host

    repo = Path(repo or Path.cwd())
    machine = machine or host.machine_name()
    base, head = _git(repo, "rev-parse", base_rev), _git(repo, "rev-parse", "HEAD")
    scratch = repo / ".asv" / "compare"
    if scratch.exists():
        shutil.rmtree(scratch)
    results = scratch / "results"
    if progress:
        print(f"compare: measuring {base[:8]} ({base_rev}) and {head[:8]} (HEAD) side by side", file=sys.stderr)
    rc = run_side_by_side(repo, machine, [base, head], bench or GATE_BENCH, results, launch=launch, progress=progress)
    if base == head:
        print(f"sparsekit compare: {base_rev} is HEAD: nothing to compare (on main, try BASE=HEAD~1)", file=sys.stderr)
        return 0
    if rc != 0 and progress:
        print(f"compare: asv exited with {rc} (failed benchmarks show as new failures below)", file=sys.stderr)
    return main(results, machine, base, head, factor=factor, do_confirm=True, as_json=as_json, gate_exit=gate_exit,
                repo=repo, launch=launch, progress=progress)
