"""The ``cpu`` backend's inspector-executor: every strategy forced and checked against the
oracle on its edge cases, the inspector's rules on machines of other shapes, the
registry, and the operand layouts. (The conformance suite checks the default choices
over Hypothesis-drawn problems; these make sure every path is reached.)"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import scipy.sparse as sp

import sparsekit as sk

pytest.importorskip("numba")
from sparsekit_cpu import _layout, _tiles, inspector, strategies  # noqa: E402
from sparsekit_cpu import backend as cb  # noqa: E402
from sparsekit_cpu.machine import Machine, cache_sizes, vector_isa  # noqa: E402


@pytest.fixture(scope="module")
def cpu():
    rec = {r.name: r for r in sk.backends()}.get("cpu")
    if rec is None or not rec.available:
        pytest.skip(f"cpu backend unavailable: {rec.reason if rec else 'not registered'}")
    return cb.CpuBackend()


@pytest.fixture(autouse=True)
def _no_wisdom(tmp_path, monkeypatch):
    # every test starts without remembered choices and without tuning
    monkeypatch.setenv("SPARSEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SPARSEKIT_CPU_TUNE", raising=False)


def _run(backend, problem, force=None):
    backend.force = force
    try:
        plan = backend.prepare(problem)
    finally:
        backend.force = None
    plan()
    c = sk.check(problem, plan.result())
    assert c.ok, f"{plan.strategy}: {c.detail}"
    return plan


def _hard_csr(m, k, density, seed):
    """Random CSR with an empty row, one very long row, an empty first row and the last column used."""
    rng = np.random.default_rng(seed)
    w = sp.random(m, k, density=density, format="lil", random_state=rng)
    w[0] = 0
    w[m // 2] = 0
    w[1, :] = rng.standard_normal(k)  # one row holding most of the work
    w[:, k - 1] = 1.5
    w[m - 1] = 0  # an empty last row
    return sp.csr_matrix(w)


def _machine(**kw):
    base = dict(cpu="test", arch="test", threads=2, vector_bytes=64, vector_registers=32,
                l1d=48 * 1024, l2=1024 * 1024, l3=32 * 2**20)
    return Machine(**{**base, **kw})


# -- every CSR strategy, forced ---------------------------------------------------------------

CSR_CASES = [
    # (strategy, n, dtype, k): n = 3 (one masked vector), 100 (full strips, a half strip, single
    # vectors and a masked one), 37 in float64 (8 lanes); k = 300: uint16 column indices,
    # 70001: uint32 (panels keep panel-local uint16 ones)
    ("spmv.rows", 1, "float32", 300), ("spmv.panels", 1, "float32", 300), ("spmv.split", 1, "float32", 300),
    ("spmm.rows", 3, "float32", 300), ("spmm.rows", 100, "float32", 300), ("spmm.rows", 37, "float64", 300),
    ("spmm.panels", 3, "float32", 300), ("spmm.panels", 100, "float32", 300), ("spmm.panels", 37, "float64", 300),
    ("spmm.split", 3, "float32", 300), ("spmm.split", 100, "float32", 300), ("spmm.split", 37, "float64", 300),
    ("spmv.bitmap", 1, "float32", 300), ("spmv.bitmap", 1, "float64", 300),
    ("spmv.rows", 1, "float32", 70001), ("spmv.panels", 1, "float32", 70001), ("spmv.split", 1, "float32", 70001),
    ("spmv.bitmap", 1, "float32", 70001),
    ("spmm.rows", 3, "float32", 70001), ("spmm.panels", 3, "float32", 70001), ("spmm.split", 3, "float32", 70001),
]


@pytest.mark.parametrize("name,n,dtype,k", CSR_CASES)
def test_every_csr_strategy_is_right(cpu, name, n, dtype, k):
    if name == "spmv.bitmap" and cpu.machine.vector_bytes < 64:
        pytest.skip("spmv.bitmap needs AVX-512, which this host lacks")
    w = _hard_csr(41, k, 0.02 if k > 1000 else 0.1, seed=3)
    plan = _run(cpu, sk.make_problem("spmm", weights=w, n=n, dtype=dtype, seed=1), force=name)
    assert plan.strategy.name == name and plan.strategy.code == strategies.code(name)


def test_column_indices_compact_up_to_65536_columns():
    idx = np.array([0, 5, 65535])
    assert _layout.column_array(idx, 2**16).dtype == np.uint16
    assert _layout.column_array(idx, 2**16 + 1).dtype == np.uint32
    assert _layout.column_array(idx, 2**33).dtype == np.int64
    np.testing.assert_array_equal(_layout.column_array(idx, 2**16), idx)


@pytest.mark.parametrize("n_cols", [2**16, 2**16 + 7])
@pytest.mark.parametrize("n", [1, 3])
def test_spmm_either_side_of_the_uint16_limit(cpu, n_cols, n):
    # nonzeros in the last columns: an index that wrapped or was truncated would read the wrong x
    rng = np.random.default_rng(3)
    m = 37
    cols = np.concatenate([rng.integers(0, n_cols, 200), np.full(m, n_cols - 1), np.full(m, 2**16 - 1)])
    rows = np.concatenate([rng.integers(0, m, 200), np.arange(m), np.arange(m)])
    w = sp.csr_matrix((rng.standard_normal(len(cols)), (rows, cols)), shape=(m, n_cols))
    _run(cpu, sk.make_problem("spmm", weights=w, n=n, dtype="float32", seed=0))


@pytest.mark.parametrize("parts", [1, 2, 3, 7, 64])
def test_merge_path_split_covers_every_row_once(parts):
    # rows of very different lengths, empty ones among them, more shares than rows
    lengths = np.array([0, 5, 0, 0, 300, 1, 0, 2, 0])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    rng = np.random.default_rng(0)
    indices = np.concatenate([np.sort(rng.choice(400, n, replace=False)) for n in lengths]).astype(np.uint16)
    data = rng.standard_normal(indptr[-1]).astype(np.float32)
    x = rng.standard_normal((400, 5)).astype(np.float32)
    w = sp.csr_matrix((data, indices, indptr), shape=(len(lengths), 400))
    rows, pos = _tiles.split_points(indptr, parts)
    assert rows[0] == 0 and rows[-1] == len(lengths) and pos[0] == 0 and pos[-1] == indptr[-1]
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(pos) >= 0)
    out = np.full((len(lengths), 5), np.nan, np.float32)
    _tiles.spmm_split(16, 4, 16)(rows, pos, indptr.astype(np.uint32), indices, data, x, out,
                                 np.zeros((parts, 2, 1, 5), np.float32))
    np.testing.assert_allclose(out, w @ x, rtol=1e-4, atol=1e-4)
    y = np.full(len(lengths), np.nan, np.float32)
    _tiles.spmv_split(rows, pos, indptr.astype(np.uint32), indices, data, x[:, 0].copy(), y, np.zeros((parts, 2), np.float32))
    np.testing.assert_allclose(y, w @ x[:, 0], rtol=1e-4, atol=1e-4)


def test_forcing_a_strategy_that_cannot_run_says_why(cpu):
    p1 = sk.make_problem("spmm", m=20, k=30, n=1, sparsity=0.5, dtype="float32", seed=0)
    p8 = sk.make_problem("spmm", m=20, k=30, n=8, sparsity=0.5, dtype="float32", seed=0)
    g8 = sk.make_problem("gather_mm", m=50, k=30, n=8, rows=5, dtype="float32", seed=0)
    for problem, name, words in [(p1, "spmm.rows", "one column"), (p8, "spmv.rows", "one column"),
                                 (p8, "gather.tiles", "runs gather_mm"), (p8, "nonsense", "unknown strategy"),
                                 (g8, "gather.dot", "one column"), (g8, "gather.strided_blas", "equally spaced")]:
        cpu.force = name
        try:
            with pytest.raises(ValueError, match=words):
                cpu.prepare(problem)
        finally:
            cpu.force = None


# -- GATHER_MM strategies ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 2, 17, 64, 100])
@pytest.mark.parametrize("rows", [1, 7, 13, 64])  # 7, 13: the four/eight-rows-per-pass kernels' tails
def test_gather_default_strategy_is_right(cpu, dtype, n, rows):
    p = sk.make_problem("gather_mm", m=300, k=45, n=n, rows=rows, dtype=dtype, seed=5)
    plan = _run(cpu, p)
    assert plan.strategy.name == ("gather.dot" if n == 1 else "gather.tiles")


@pytest.mark.parametrize("name", ["gather.tiles", "gather.copy_blas"])
@pytest.mark.parametrize("n", [2, 33])
def test_gather_strategies_forced(cpu, name, n):
    _run(cpu, sk.make_problem("gather_mm", m=300, k=45, n=n, rows=13, dtype="float32", seed=6), force=name)


@pytest.mark.parametrize("n", [33, 64])
def test_gather_tiles_sum_long_rows_in_blocks(cpu, n):
    """k = 2600: ten full k blocks of the tiles and a partial one, 67 rows (the one-row tail),
    n = 33 a masked strip. The error stays at the level of float32 BLAS on the same rows: one
    running sum over the whole row was about 4x BLAS's at k = 2048."""
    from sparsekit_cpu import _tiles

    assert 2600 > 10 * _tiles.K_BLOCK
    p = sk.make_problem("gather_mm", m=3000, k=2600, n=n, rows=67, dtype="float32", seed=7)
    plan = _run(cpu, p, force="gather.tiles")
    ref = np.asarray(sk.reference(p), dtype=np.float64)

    def err(y):
        return float(np.abs(np.asarray(y, np.float64) - ref).max() / np.abs(ref).max())

    w, rows, x = p.inputs["w"], p.inputs["rows"], p.inputs["x"]
    blas = err(np.asarray(w)[np.asarray(rows)] @ np.asarray(x))
    assert err(plan.result()) <= 2 * blas, (err(plan.result()), blas)


@pytest.mark.parametrize("n", [1, 9])
def test_gather_strided_blas_reads_equally_spaced_rows(cpu, n):
    p = sk.make_problem("gather_mm", m=300, k=45, n=n, rows=13, dtype="float32", seed=6)
    p.inputs["rows"] = np.arange(7, 7 + 13 * 11, 11)  # rows 7, 18, 29, ...: one strided view
    p._cache.clear()
    if n == 1:
        return  # one column is always gather.dot; the strided view is for products
    plan = _run(cpu, p, force="gather.strided_blas")
    assert plan.strategy.facts["stride"] == 11


# -- strategies chosen by format, and kernels with one strategy -------------------------------


@pytest.mark.parametrize("n,expect", [(1, "bsr.spmv"), (37, "bsr.tiles")])
@pytest.mark.parametrize("block", [(4, 4), (2, 8)])  # 2-row blocks: the single-row tiles
def test_bsr_strategies(cpu, n, expect, block):
    p = sk.make_problem("spmm", m=64, k=64, n=n, sparsity=0.75, format="bsr", pattern="block", blocksize=block,
                        dtype="float32", seed=2)
    assert _run(cpu, p).strategy.name == expect


@pytest.mark.parametrize("n,expect", [(1, "nm.spmv"), (37, "nm.tiles")])
def test_nm_strategies(cpu, n, expect):
    p = sk.make_problem("spmm", m=64, k=64, n=n, sparsity=0.75, format="nm", pattern="nm", dtype="float32", seed=2)
    assert _run(cpu, p).strategy.name == expect


def test_every_plan_says_what_it_runs(cpu):
    problems = {
        "dense.blas": sk.make_problem("dense_mm", m=20, k=20, n=4, dtype="float32", seed=0),
        "kwta.select": sk.make_problem("kwta", m=40, n=8, sparsity=0.8, dtype="float32", seed=0),
        "sparse_sparse.scatter": sk.make_problem("sparse_sparse", m=20, k=20, n=8, sparsity=0.8, dtype="float32", seed=0),
    }
    for name, p in problems.items():
        st = _run(cpu, p).strategy
        assert st.name == name and st.code == strategies.code(name) and name in str(st)
        cpu.force = "spmm.rows"
        try:
            with pytest.raises(ValueError, match="cannot force"):
                cpu.prepare(p)
        finally:
            cpu.force = None


@pytest.mark.parametrize("name", ["sddmm.dots", "sddmm.tiles", "sddmm.panels"])
@pytest.mark.parametrize("k,dtype", [(5, "float32"), (37, "float32"), (128, "float32"), (37, "float64")])
def test_every_sddmm_strategy_is_right(cpu, name, k, dtype):
    # k = 5: shorter than a vector; 37: registers, single vectors and a masked tail
    p = sk.make_problem("sddmm", m=60, k=k, n=3000, sparsity=0.9, dtype=dtype, seed=4)
    p.inputs["mask"] = _hard_csr(60, 3000, 0.1, seed=5)  # empty rows and one full row in the mask
    p._cache.clear()
    _run(cpu, p, force=name)


def test_sddmm_panels_follow_the_l2():
    mach = _machine()
    indptr = np.arange(4097) * 410
    big = inspector.sddmm_facts(indptr, (4096, 4096), 128, 4, mach)  # B^T: 2 MiB
    assert inspector.choose_sddmm(big, mach).name == "sddmm.panels"
    assert inspector.choose_sddmm(big, _machine(l2=16 * 2**20)).name == "sddmm.tiles"
    assert inspector.choose_sddmm(inspector.sddmm_facts(indptr, (4096, 512), 128, 4, mach), mach).name == "sddmm.tiles"


def test_registry_is_stable_and_complete():
    assert len(set(strategies.NAMES)) == len(strategies.NAMES)
    # numbers are stored in results: the first entries never move
    assert strategies.NAMES[:5] == ("dense.blas", "spmv.rows", "spmv.panels", "spmv.split", "spmm.rows")
    assert set(strategies.BUILDERS) <= set(strategies.NAMES)
    assert set(strategies.KERNEL) == set(strategies.NAMES)
    assert set(strategies.KERNEL.values()) <= set(sk.kernels())
    with pytest.raises(ValueError, match="unknown cpu strategy"):
        strategies.code("nope")


def test_streamed_bytes_counts_what_the_layout_stores():
    facts = dict(m=100, k=1000, nnz=5000, itemsize=4, panel_width=256)
    rows = sk.Strategy("spmv.rows", facts=facts)
    panels = sk.Strategy("spmv.panels", facts=facts)
    assert strategies.streamed_bytes(rows) == 5000 * 6 + 101 * 4 + 1100 * 4
    assert strategies.streamed_bytes(panels) == 5000 * 6 + 4 * 101 * 4 + 1100 * 4
    assert strategies.streamed_bytes(sk.Strategy("spmm.rows", facts=facts)) is None
    bitmap = sk.Strategy("spmv.bitmap", facts={**facts, "L": 16})
    assert strategies.streamed_bytes(bitmap) == 5000 * 4 + 100 * 63 * 2 + 101 * 4 + 1100 * 4


# -- the inspector's rules, on machines of other shapes ------------------------------------------


def _facts(w, n, mach, itemsize=4):
    w = sp.csr_matrix(w)
    return inspector.csr_facts(w.indptr, w.indices, w.shape, n, itemsize, mach)


def test_spmv_panels_follow_the_l1d():
    w = sp.random(64, 16384, density=0.1, format="csr", random_state=0)  # ~820 nonzeros per row and 32 KiB panel
    big, small = _machine(l1d=48 * 1024), _machine(l1d=256 * 1024)
    assert _facts(w, 1, big)["panel_width"] == 8192  # 32 KiB: a power of two within 2/3 of 48 KiB
    assert _facts(w, 1, _machine(l1d=32 * 1024))["panel_width"] == 4096
    assert inspector.choose_csr(_facts(w, 1, big), big).name == "spmv.panels"
    # x (64 KiB) within half a 256 KiB L1d: no panels
    assert inspector.choose_csr(_facts(w, 1, small), small).name == "spmv.rows"
    short = sp.random(64, 16384, density=0.003, format="csr", random_state=0)  # ~25 per row and panel
    assert inspector.choose_csr(_facts(short, 1, big), big).name == "spmv.rows"


def test_dense_enough_spmv_is_a_bitmap_where_avx512_is():
    w = sp.random(256, 1000, density=0.4, format="csr", random_state=0)
    avx512, avx2 = _machine(), _machine(vector_bytes=32, vector_registers=16)
    assert inspector.choose_csr(_facts(w, 1, avx512), avx512).name == "spmv.bitmap"
    assert inspector.choose_csr(_facts(w, 1, avx2), avx2).name == "spmv.rows"
    sparse = sp.random(256, 1000, density=0.05, format="csr", random_state=0)
    assert inspector.choose_csr(_facts(sparse, 1, avx512), avx512).name == "spmv.rows"
    data = w.data.copy()
    data[3] = np.inf  # the bitmap multiplies zeros by neighbouring values: never with an inf among them
    f = inspector.csr_facts(w.indptr, w.indices, w.shape, 1, 4, avx512, data)
    assert inspector.choose_csr(f, avx512).name == "spmv.rows"
    assert "finite" in inspector.applicable("spmv.bitmap", f, avx512)
    assert "AVX-512" in inspector.applicable("spmv.bitmap", _facts(w, 1, avx2), avx2)


def test_bitmap_layout():
    w = sp.csr_matrix(np.array([[0, 1.0, 0, 0, 0, 0, 0, 0, 0, 2.0], [0] * 10, [3.0] + [0] * 9]))
    masks, rowptr, values = _layout.bitmap(w, 8, np.float32)
    assert masks.dtype == np.uint8 and masks.shape == (3, 2)
    assert masks.tolist() == [[0b10, 0b10], [0, 0], [1, 0]]
    assert values.tolist() == [1, 2, 3] + [0] * 8 and rowptr.tolist() == [0, 2, 2, 3]


def test_spmm_panels_follow_the_l2():
    w = sp.random(256, 4096, density=0.3, format="csr", random_state=0)
    mach, huge_l2 = _machine(), _machine(l2=64 * 2**20)
    assert inspector.choose_csr(_facts(w, 128, mach), mach).name == "spmm.panels"  # X: 2 MiB > L2 / 2
    assert inspector.choose_csr(_facts(w, 128, huge_l2), huge_l2).name == "spmm.rows"
    assert inspector.choose_csr(_facts(w, 16, mach), mach).name == "spmm.rows"  # X: 256 KiB


def test_skewed_rows_are_split_by_nonzeros_on_several_threads():
    w = _hard_csr(2000, 3000, 0.001, seed=1)  # row 1 holds most of the nonzeros
    two, one = _machine(threads=2), _machine(threads=1)
    f2 = _facts(w, 64, two)
    assert f2["imbalance"] > inspector.SPLIT_IMBALANCE
    assert inspector.choose_csr(f2, two).name == "spmm.split"
    assert inspector.choose_csr(_facts(w, 1, two), two).name == "spmv.split"
    assert inspector.choose_csr(_facts(w, 64, one), one).name == "spmm.rows"  # one thread: nothing to balance


def test_local_columns_need_no_panels():
    # a band: each row's nonzeros within 200 columns of the diagonal, x and X far beyond the caches
    m = k = 16384
    band = sp.diags([np.ones(k)] * 9, offsets=list(range(-200, 201, 50)), shape=(m, k), format="csr")
    mach = _machine()
    f1 = _facts(band, 1, mach)
    assert f1["col_span"] < 0.05
    assert "local" in inspector.choose_csr(f1, mach).reason
    assert inspector.choose_csr(_facts(band, 256, mach), mach).name == "spmm.rows"


def test_register_tiles_follow_the_vector_registers():
    w = sp.random(64, 64, density=0.2, format="csr", random_state=0)
    avx512, avx2 = _machine(), _machine(vector_bytes=32, vector_registers=16)
    p512 = inspector.choose_csr(_facts(w, 256, avx512), avx512).params
    p2 = inspector.choose_csr(_facts(w, 256, avx2), avx2).params
    assert (p512["S"], p512["L"]) == (256, 16)  # 16 of 32 zmm
    assert (p2["S"], p2["L"]) == (64, 8)  # 8 of 16 ymm
    assert inspector.choose_csr(_facts(w, 3, avx512), avx512).params["U"] == 4  # one vector: four partial tiles


def test_gather_rule_follows_the_vector_width():
    rows = np.array([3, 9, 4, 100])
    avx512, avx2 = _machine(), _machine(vector_bytes=32, vector_registers=16)
    f = inspector.gather_facts(rows, (200, 50), 64, 4, avx512)
    assert inspector.choose_gather(f, avx512).name == "gather.tiles"
    assert inspector.choose_gather(f, avx2).name == "gather.copy_blas"
    strided = inspector.gather_facts(np.arange(5, 105, 10), (200, 50), 64, 4, avx2)
    assert inspector.choose_gather(strided, avx2).name == "gather.strided_blas"
    assert inspector.choose_gather(inspector.gather_facts(rows, (200, 50), 1, 4, avx2), avx2).name == "gather.dot"
    assert len(inspector.choose_gather(f, avx512).candidates) > 1  # BLAS vs tiles: a measurement decides


def test_uncertain_cases_have_a_shortlist():
    w = sp.random(512, 16384, density=0.005, format="csr", random_state=0)  # ~41 nonzeros per row and panel
    mach = _machine()
    c = inspector.choose_csr(_facts(w, 1, mach), mach)
    assert {"spmv.panels", "spmv.rows"} <= set(c.candidates) and c.candidates[0] == c.name


# -- the machine ------------------------------------------------------------------------------


def test_cache_sizes_from_sysfs(tmp_path):
    for i, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                             ("2", "Unified", "1024K"), ("3", "Unified", "32768K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    sizes, notes = cache_sizes(tmp_path)
    assert sizes == {"l1d": 48 * 1024, "l2": 2**20, "l3": 32 * 2**20} and not notes
    sizes, notes = cache_sizes(tmp_path / "absent")
    assert sizes["l1d"] > 0 and len(notes) == 3


def test_vector_isa_from_llvm_features():
    assert vector_isa("+avx2,+avx512f,+fma") == (64, 32)
    assert vector_isa("+avx2,-avx512f,+fma") == (32, 16)
    assert vector_isa("+sse4.2") == (16, 16)


def test_machine_key_changes_with_what_decides():
    m = _machine()
    assert m.key() == _machine().key()
    assert m.key() != dataclasses.replace(m, l2=2 * 2**20).key()
    assert m.key() != dataclasses.replace(m, threads=1).key()
    assert m.key() == dataclasses.replace(m, calibrated={"read_gbps": 50.0}).key()  # measured figures vary


def test_threading_layer_is_chosen_deliberately(cpu):
    import numba

    # the module sets the priority unless the user named a layer (see backend's "Threads")
    if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ):
        assert numba.config.THREADING_LAYER_PRIORITY[0] == "omp"
    p = sk.make_problem("gather_mm", m=100, k=20, n=1, rows=10, dtype="float32", seed=0)
    cpu.prepare(p)()
    v = cpu.versions()
    assert v["threads"] == cb.thread_count()
    assert v["threading_layer"] in ("omp", "workqueue", "tbb")
