"""Lava plans in one process with every other backend: calls answer, dropped plans release
their networks, the interpreter exits by itself, and nothing outlives it (issue 13).

Each sequence runs in a fresh *driver* subprocess (this file run as a script) that
answers one JSON command per line on stdin: prepare / call / result / close / drop /
drop into a reference cycle / gc / exit. A Hypothesis ``RuleBasedStateMachine`` draws
the sequences and keeps a model of the documented lifecycle (one live network per
process, a closed, superseded or dropped plan's network stopped, a stopped plan
raising ``RuntimeError``) that every answer is checked against, with every result
checked against the oracle. At the end of a sequence the driver is told to exit with
its remaining plans still referenced -- as a script or notebook ends -- and must be
gone within ``EXIT_BOUND_S``, leaving no process of its process group behind.

The other backends drawn are those available here that run a tiny spmm (one that is
available but broken -- a PoCL that cannot build kernels, say -- fails its own tests and
is named in the summary instead). The figures (sequences, steps, longest exit, backends
left out) are printed and kept in pytest's cache (``.pytest_cache/v/sparsekit/lava_lifecycle``).

Also here: the issue's reproduction script, SIGTERM/SIGINT with live networks, and
benchmark processes run the way asv's forkserver runs them.
"""
from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

#: the interpreter must be gone this long after being told to exit
EXIT_BOUND_S = 10.0
#: and every process of its group (Lava's children, multiprocessing's resource tracker)
#: this long after that
LEFTOVER_BOUND_S = 5.0
#: one command's answer (a cold Numba cache compiles the cpu kernels on first use)
COMMAND_TIMEOUT_S = 120.0
#: sequences and steps per sequence: about a minute on the 2-core reference machine
#: (SPARSEKIT_LAVA_SEQUENCES=N for a longer local run)
SEQUENCES = int(os.environ.get("SPARSEKIT_LAVA_SEQUENCES", "20"))
STEPS = 25

LAVA = ("lava", "lava-fixed")
OTHERS = ("numpy", "cpu", "opencl", "torch")

#: small problems, by index: (kernel, make_problem keyword arguments)
PROBLEMS = (
    ("spmm", dict(m=24, k=20, n=3, sparsity=0.7, dtype="float32", seed=1)),
    ("dense_mm", dict(m=16, k=12, n=2, dtype="float64", seed=2)),
    ("sparse_sparse", dict(m=24, k=20, n=3, sparsity=0.7, dtype="float32", seed=3)),
    ("lif", dict(n_in=20, n_out=16, steps=8, sparsity=0.7, dtype="float64", seed=4)),
)


# ==== the driver (runs in the subprocess) =============================================
#: handle -> (plan, problem, backend), as a script's globals hold them
_DRIVER_PLANS: dict = {}


def _driver() -> None:
    import gc
    import multiprocessing
    import traceback

    import sparsekit

    problems = [sparsekit.make_problem(k, **kw) for k, kw in PROBLEMS]
    plans = _DRIVER_PLANS  # a module global: the plans left in it are still referenced at exit

    def state() -> dict:
        net = sys.modules.get("sparsekit_lava._network")
        return {"live": net.live_networks() if net else 0, "children": len(multiprocessing.active_children())}

    def handle(cmd: dict) -> dict:
        op = cmd["op"]
        if op == "prepare":
            be = sparsekit.backend(cmd["backend"])
            p = problems[cmd["problem"]]
            try:
                plans[cmd["handle"]] = (be.prepare(p), p, be)
            except sparsekit.Unsupported as e:
                return {"unsupported": str(e)}
            return {}
        if op == "call":
            try:
                plans[cmd["handle"]][0]()
            except RuntimeError as e:
                return {"runtime_error": str(e)}
            return {}
        if op == "result":
            plan, p, be = plans[cmd["handle"]]
            c = sparsekit.check(p, plan.result(), backend=be)
            return {"ok": bool(c.ok), "detail": c.detail}
        if op == "close":
            plans[cmd["handle"]][0].close()
            return {}
        if op == "drop":
            del plans[cmd["handle"]]
            return {}
        if op == "drop_cycle":  # only the cyclic garbage collector can free it now
            loop = [plans.pop(cmd["handle"])]
            loop.append(loop)
            del loop
            return {}
        if op == "gc":
            gc.collect()
            return {}
        raise ValueError(f"unknown op {op!r}")

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "exit":
            print(json.dumps({"exiting": True}), flush=True)
            return  # plans still referenced: the interpreter exit must stop their networks
        try:
            out = handle(cmd)
        except Exception as e:  # noqa: BLE001 - sent to the test, which fails on it
            out = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        out.update(state())
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--driver"]:
        _driver()
    elif sys.argv[1] == "--hold":
        # a live network (after another backend's plan), then idle or calling in a loop
        import sparsekit

        kernel, kw = PROBLEMS[0]
        numpy_plan = sparsekit.backend("numpy").prepare(sparsekit.make_problem(kernel, **kw))
        numpy_plan()
        plan = sparsekit.backend("lava").prepare(sparsekit.make_problem("spmm", m=64, k=64, n=20, sparsity=0.5))
        plan()
        print("ready", flush=True)
        if sys.argv[2] == "busy":
            while True:
                plan()
        time.sleep(120)
    sys.exit(0)


# ==== the tests ========================================================================
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    Bundle, RuleBasedStateMachine, consumes, initialize, rule, run_state_machine_as_test,
)

import sparsekit  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc to find leftover processes")


def _require_lava():
    rec = {r.name: r for r in sparsekit.backends()}.get("lava")
    if rec is None or not rec.available:
        pytest.skip(f"lava unavailable: {rec.reason if rec else 'not registered'}")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            out.append(int(d))
    return out


def wait_group_empty(pgid: int, bound: float) -> tuple[float, list[int]]:
    """Seconds until group ``pgid`` had no live process (or the bound), and who was left."""
    t0 = time.monotonic()
    left = group_members(pgid)
    while left and time.monotonic() - t0 < bound:
        time.sleep(0.02)
        left = group_members(pgid)
    return time.monotonic() - t0, left


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start(*args) -> tuple[subprocess.Popen, str]:
    """This file as a script, in its own session (so its process group is all of it)."""
    err = tempfile.NamedTemporaryFile("w+", prefix="lava-lifecycle-", suffix=".err", delete=False)
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=err, text=True, start_new_session=True)
    err.close()
    return proc, err.name


def run_to_end(code: str, timeout: float, cwd=None) -> tuple[int, str, str, list[int]]:
    """Run Python ``code`` in its own session until it exits by itself: (exit status, stdout,
    stderr, processes of its group still alive ``LEFTOVER_BOUND_S`` later)."""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate()
        pytest.fail(f"the script did not exit within {timeout:.0f} s")
    _, left = wait_group_empty(proc.pid, LEFTOVER_BOUND_S)
    kill_group(proc.pid)
    return proc.returncode, out, err, left


def read_line(proc: subprocess.Popen, timeout: float, what: str, err_path: str) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        kill_group(proc.pid)
        with open(err_path) as f:
            err = f.read()[-4000:]
        raise AssertionError(f"no answer to {what} within {timeout:.0f} s "
                             f"({'timed out' if not ready else 'driver died'}); stderr:\n{err}")
    return line


class Driver:
    def __init__(self):
        self.proc, self.err_path = start("--driver")

    def send(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        out = json.loads(read_line(self.proc, COMMAND_TIMEOUT_S, cmd, self.err_path))
        assert "error" not in out, f"{cmd} raised {out['error']}\n{out.get('traceback', '')}"
        return out

    def exit(self) -> tuple[float, float, list[int]]:
        """Tell it to exit; (seconds until it exited, seconds until its group was empty, leftovers)."""
        t0 = time.monotonic()
        self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
        self.proc.stdin.flush()
        read_line(self.proc, COMMAND_TIMEOUT_S, "exit", self.err_path)
        try:
            rc = self.proc.wait(EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            rc = None
        exit_s = time.monotonic() - t0
        extra_s, left = wait_group_empty(self.proc.pid, LEFTOVER_BOUND_S)
        kill_group(self.proc.pid)
        with open(self.err_path) as f:
            err = f.read()[-4000:]
        os.unlink(self.err_path)
        assert rc is not None, f"the driver did not exit within {EXIT_BOUND_S} s of being told to; stderr:\n{err}"
        assert rc == 0, f"the driver exited with {rc}; stderr:\n{err}"
        return exit_s, exit_s + extra_s, left

    def kill(self):
        kill_group(self.proc.pid)
        self.proc.wait()
        if os.path.exists(self.err_path):
            os.unlink(self.err_path)


def working_backends() -> tuple[list[str], dict]:
    """The available non-Lava backends that run a tiny spmm here, and why the others were left out.

    A backend that is available but broken on this machine (a PoCL that cannot build
    kernels, say) has its own failing tests; it is named, not drawn."""
    recs = {r.name: r for r in sparsekit.backends()}
    left_out = {n: f"not available: {recs[n].reason}" for n in OTHERS if n in recs and not recs[n].available}
    left_out.update({n: "not registered" for n in OTHERS if n not in recs})
    candidates = [n for n in OTHERS if n not in left_out]
    code = ("import json, sys, sparsekit\n"
            "p = sparsekit.make_problem('spmm', m=8, k=8, n=2, sparsity=0.5, seed=0)\n"
            "out = {}\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n"
            "        plan = sparsekit.backend(name).prepare(p); plan(); plan.close(); out[name] = None\n"
            "    except Exception as e:\n"
            "        out[name] = f'{type(e).__name__}: {str(e).splitlines()[0]}'\n"
            "print(json.dumps(out))\n")
    res = subprocess.run([sys.executable, "-c", code, *candidates], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    probe = json.loads(res.stdout.strip().splitlines()[-1])
    left_out.update({n: f"fails a tiny spmm here: {why}" for n, why in probe.items() if why})
    return [n for n in candidates if not probe[n]], left_out


def _step(rule_body):
    """Marks the machine failed until the rule's checks have passed, so that teardown then
    only kills the driver instead of timing an exit that would hide the first failure."""
    @functools.wraps(rule_body)
    def step(self, *args, **kwargs):
        self.failed = True
        out = rule_body(self, *args, **kwargs)
        self.failed = False
        return out

    return step


class _Stats:
    sequences = 0
    steps = 0
    longest_exit_s = 0.0
    longest_group_s = 0.0


def make_machine(others: list[str], stats: _Stats):
    backends = list(LAVA) + others
    recs = {r.name: r for r in sparsekit.backends()}
    supports = {name: (dict(recs[name].kernels), tuple(recs[name].dtypes)) for name in backends}

    class LavaLifecycle(RuleBasedStateMachine):
        """Model: ``plans`` handle -> {backend, lava, stopped, called}; ``live``: the handle whose
        network runs (at most one); ``limbo``: a live plan dropped into a reference cycle, whose
        network stops whenever the cyclic GC finds it (or the next Lava prepare, at the latest)."""

        handles = Bundle("handles")

        @initialize()
        def start_driver(self):
            self.driver = Driver()
            self.plans, self.live, self.limbo, self.next_handle = {}, None, False, 0
            self.failed = False
            stats.sequences += 1

        def teardown(self):
            driver = getattr(self, "driver", None)
            if driver is None:
                return
            if driver.proc.poll() is None and not getattr(self, "failed", False):
                try:
                    exit_s, group_s, left = driver.exit()
                finally:
                    driver.kill()
                stats.longest_exit_s = max(stats.longest_exit_s, exit_s)
                stats.longest_group_s = max(stats.longest_group_s, group_s)
                assert not left, f"processes left behind after the driver exited: {left}"
            else:
                driver.kill()

        def send(self, **cmd) -> dict:
            stats.steps += 1
            out = self.driver.send(**cmd)
            # the one-live-network rule, and a stopped network leaves no child behind
            live_now = self.live is not None
            if self.limbo:
                assert out["live"] in (0, 1), out
            else:
                assert out["live"] == int(live_now), (cmd, out, self.live)
            assert (out["children"] > 0) == (out["live"] > 0), (cmd, out)
            return out

        def _stop_live(self):
            if self.live is not None:
                self.plans[self.live]["stopped"] = True
            self.live = None

        @rule(target=handles, backend=st.sampled_from(backends), problem=st.integers(0, len(PROBLEMS) - 1))
        @_step
        def prepare(self, backend, problem):
            h = self.next_handle
            self.next_handle += 1
            kernel, kw = PROBLEMS[problem]
            listed = kernel in supports[backend][0] and kw["dtype"] in supports[backend][1]
            lava = backend in LAVA
            if listed:
                self.plans[h] = {"backend": backend, "lava": lava, "stopped": False, "called": False}
                if lava:  # compiling a new network stops every other one, the one in limbo too
                    self._stop_live()
                    self.live, self.limbo = h, False
            out = self.send(op="prepare", backend=backend, problem=problem, handle=h)
            if listed:
                assert "unsupported" not in out, f"{backend} refused {kernel} it lists: {out['unsupported']}"
            else:
                assert "unsupported" in out, f"{backend} prepared {kernel} ({kw['dtype']}) it does not list"
            return h  # an unsupported one is never used: every rule below checks the handle is known

        def _known(self, h, *, open_only=False):
            plan = self.plans.get(h)
            # a closed non-Lava plan is not called again: its device buffers may be gone
            return plan is not None and not (open_only and not plan["lava"] and plan["stopped"])

        @rule(h=handles)
        @_step
        def call(self, h):
            if not self._known(h, open_only=True):
                return
            plan = self.plans[h]
            out = self.send(op="call", handle=h)
            if plan["lava"] and plan["stopped"]:
                assert "stopped" in out.get("runtime_error", ""), f"a stopped Lava plan ran: {out}"
            else:
                assert "runtime_error" not in out, out
                plan["called"] = True

        @rule(h=handles)
        @_step
        def result(self, h):
            if not self._known(h, open_only=True) or not self.plans[h]["called"]:
                return
            out = self.send(op="result", handle=h)
            assert out["ok"], f"{self.plans[h]['backend']} result fails the oracle check: {out['detail']}"

        @rule(h=handles)
        @_step
        def close(self, h):
            if not self._known(h):
                return
            self.plans[h]["stopped"] = True
            if self.live == h:
                self.live = None
            self.send(op="close", handle=h)

        @rule(h=consumes(handles), cyclic=st.booleans())
        @_step
        def drop(self, h, cyclic):
            """Drop the plan: its network stops now, or -- dropped into a reference cycle, which
            only the cyclic GC frees -- whenever the GC finalises it."""
            if not self._known(h):
                return
            self.plans.pop(h)
            if self.live == h:
                self.live, self.limbo = None, cyclic
            self.send(op="drop_cycle" if cyclic else "drop", handle=h)

        @rule()
        @_step
        def collect(self):
            self.limbo = False  # the cyclic GC finalises the plan: its network stops
            self.send(op="gc")

    return LavaLifecycle


def test_random_sequences_across_backends_exit_cleanly(request):
    _require_lava()
    others, left_out = working_backends()
    stats = _Stats()
    t0 = time.monotonic()
    run_state_machine_as_test(
        make_machine(others, stats),
        settings=settings(max_examples=SEQUENCES, stateful_step_count=STEPS, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck)),
    )
    summary = {"sequences": stats.sequences, "steps": stats.steps, "longest_exit_s": round(stats.longest_exit_s, 3),
               "longest_until_no_process_s": round(stats.longest_group_s, 3), "backends": list(LAVA) + others,
               "left_out": left_out, "wall_s": round(time.monotonic() - t0, 1)}
    if getattr(request.config, "cache", None) is not None:  # absent under -p no:cacheprovider
        request.config.cache.set("sparsekit/lava_lifecycle", summary)
    print("lava lifecycle:", json.dumps(summary))
    assert stats.sequences >= SEQUENCES // 2, summary  # Hypothesis really ran sequences


def test_issue_reproduction_exits_and_leaves_nothing():
    """The issue's script: Lava plans interleaved with numpy's, never closed."""
    _require_lava()
    code = ("import sparsekit as sk\n"
            "for m, k in [(256, 2304), (512, 4608), (256, 1024), (512, 512), (2048, 512), (512, 2048)]:\n"
            "    p = sk.make_problem('spmm', m=m, k=k, n=32, sparsity=0.9, seed=3)\n"
            "    for b in ('numpy', 'lava'):\n"
            "        plan = sk.backend(b).prepare(p); plan(); plan.result()\n"
            "print('done', flush=True)\n")
    rc, out, err, left = run_to_end(code, timeout=120)
    assert rc == 0 and "done" in out, err[-3000:]
    assert not left, f"left behind: {left}"


@pytest.mark.parametrize("sig, whom, activity", [
    (signal.SIGTERM, "process", "idle"),
    (signal.SIGTERM, "process", "busy"),
    (signal.SIGINT, "process", "idle"),
    (signal.SIGINT, "group", "busy"),  # Ctrl-C at a terminal, mid-call
])
def test_signal_with_live_network_leaves_nothing(sig, whom, activity):
    _require_lava()
    proc, err_path = start("--hold", activity)
    try:
        assert read_line(proc, COMMAND_TIMEOUT_S, "--hold", err_path).strip() == "ready"
        time.sleep(0.2)
        assert len(group_members(proc.pid)) > 2, "no Lava children to leave behind: the test would prove nothing"
        (os.kill if whom == "process" else os.killpg)(proc.pid, sig)
        try:
            rc = proc.wait(EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            rc = None
        _, left = wait_group_empty(proc.pid, LEFTOVER_BOUND_S)
    finally:
        kill_group(proc.pid)
        proc.wait()
        with open(err_path) as f:
            err = f.read()[-3000:]
        os.unlink(err_path)
    assert rc is not None, f"{sig.name} to the {whom}: still running after {EXIT_BOUND_S} s; stderr:\n{err}"
    assert rc == -sig, f"{sig.name} to the {whom}: exit status {rc}; stderr:\n{err}"
    assert not left, f"{sig.name} to the {whom} ({activity}): processes left behind: {left}; stderr:\n{err}"


_ASV_STYLE = r"""
import os, signal, sys, time
sys.path.insert(0, os.getcwd())
from benchmarks import bench_lava

params = ("lava", bench_lava.SPMM_SHAPES[0], 0.99)


def child(teardown, forever=False):
    # what asv's forkserver does per benchmark: fork, setup, run, teardown, os._exit
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        b = bench_lava.LavaSpMM()
        b.setup(*params)
        b.time_spmm(*params)
        b.track_error(*params)
        while forever:  # a benchmark past asv's timeout
            b.time_spmm(*params)
        if teardown:
            b.teardown(*params)
        code = 0
    finally:
        os._exit(code)


for teardown in (True, False):  # asv always tears down; os._exit runs no exit hook either way
    pid = child(teardown)
    assert os.waitpid(pid, 0)[1] == 0, teardown
pid = child(False, forever=True)
time.sleep(3)
os.kill(pid, signal.SIGTERM)  # asv on timeout: SIGTERM, then SIGKILL
os.waitpid(pid, 0)
print("ok", flush=True)
"""


def test_asv_style_benchmark_processes_leave_nothing():
    """A benchmark process as asv's forkserver runs it (forked, ended by ``os._exit`` with no
    exit hook, or killed on timeout) leaves no Lava process behind."""
    _require_lava()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rc, out, err, left = run_to_end(_ASV_STYLE, timeout=180, cwd=root)
    assert rc == 0 and "ok" in out, err[-3000:]
    assert not left, f"left behind: {left}"
