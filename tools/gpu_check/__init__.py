"""``python3 tools/gpu_check``: verify the ``cupy`` backend on a GPU and measure it, offline, in one command.

Run from the repository root with the GPU host's own ``python3`` (no virtualenv, no
pip install, no network, no git, no asv). In about 7.5 minutes (``--budget``) it

1. registers the in-repo backends without installing them (``environment``), prints
   the device (cupy's probe) and the library versions;
2. runs the conformance suite and ``tests/test_cupy.py`` on ``cupy``, and the
   conformance suite on ``torch`` on CUDA (the GPU peer);
3. measures a short break-even grid (``grid``): spmm csr/bsr/nm, gather_mm, sddmm,
   kwta and sparse_sparse at three sparsities against cuBLAS ``dense_mm``, with
   cuSPARSE against our own CSR kernels;
4. measures device-to-device bandwidth and the gather kernel's fraction of it, and a
   quick calibration (roofline limits);
5. prints the break-even table (``sparsekit report``).

Everything goes to ``--out`` (default ``$OUT``), at most seven files, none deeper than
two folders::

    gpu_check.log          every phase's output, appended as it runs
    summary.json           device, phases (status, seconds), test counts, break-even rows,
                           cuSPARSE vs own kernels, bandwidth; rewritten after every phase
    points.jsonl           one line per measured point, appended as measured
    results/<machine>/     machine.json, <commit>-gpu_check-py3.12.json (asv), versions.txt,
                           calibration.json: copy the folder into the repository's results/

Exit status: 0 all ran and passed, 1 something failed, 3 no usable GPU (what a host
without one gets, having run everything up to the GPU), 4 what ran passed but a
phase was cut by its deadline, 128 + N when stopped by signal N (everything
measured so far is kept).
"""
