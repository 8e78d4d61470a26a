"""The fast paths: the same numbers as the plain formulas of ``tinyvae.core``, sooner.

A learner reads ``core/``; its code calls these where speed matters, and a comment there
points here. Each file computes what a plain formula computes, and ``tests/test_perf_paths.py``
checks that the two give the same bits (the fused Bernoulli, which takes another route to
the same formula, agrees to rounding). How much time each saves, and how that was measured,
is in ``benchmarks/README.md``.

* ``activations.py``: the activations writing their output over their input, as the
  networks use them (``core/layers.py`` holds the plain ones);
* ``bernoulli.py``: the Bernoulli log-likelihood and its gradient from one tanh per pixel
  (``core/distributions.py`` holds the two plain functions);
* ``adam.py``: Adam's update as one GPU kernel, one compiled CPU loop (``adam_loop.py``) or
  a few NumPy passes over cache-sized blocks (``core/optim.py`` holds the maths);
* ``conv.py``: im2col and col2im as compiled loops that visit each entry once
  (``core/conv.py`` holds the NumPy passes);
* ``numba_jit.py``: whether the compiled loops are there and wanted (Numba is optional,
  ``pip install "tinyvae[fast]"``; ``TINYVAE_KERNELS=numpy`` turns them off).
"""
