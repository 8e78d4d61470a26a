r"""A training step on two CPU cores: each half of the batch on its own Python thread.

With two cores, the usual way to use both is to let BLAS split each matrix product between
two threads. Then only the products run on both cores: the activations, the likelihood,
the KL and Adam, about a quarter of a step, run on one. Here the *batch* is split instead:

.. math:: \nabla \mathcal L = \frac1B \sum_{b=1}^{B} \nabla \ell_b
          = \frac{B_1}{B} \nabla \mathcal L_1 + \frac{B_2}{B} \nabla \mathcal L_2

where :math:`\mathcal L_1` and :math:`\mathcal L_2` are the mean losses of the first
:math:`B_1` rows and of the other :math:`B_2`. Each half runs the model's own
``loss_and_grads``, unchanged: the first on the model, the second on a *twin*, a model that
shares the parameters (the same ``flat.data``) but has its own gradient buffer and its own
layer caches. The two halves run
at once on two threads, each with one BLAS thread; NumPy lets go of Python's lock inside
matrix products and large elementwise operations, so both cores do every part of the step.
Then the two gradients are weighed and summed into ``model.flat.grad``, half of the buffer
on each thread, and Adam updates each half of the buffer on its own thread (Adam works
element by element, so that gives the same bits as one pass).

The noise is drawn once for the whole batch from ``model.rng``, as ``loss_and_grads``
draws it, and each half takes its rows: the two ways see the same eps. They differ only in
rounding: a weight gradient :math:`X^\top \delta` is a sum over the batch, and here it is
two sums added, in a fixed order. So a run is the same from one time to the next, and
within rounding of the one-thread run (``tests/test_perf_paths.py`` measures how close;
``benchmarks/README.md`` records the speed).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tinyvae.core.optim import clip_grad_norm


def shared_twin(model):
    """A model built like ``model`` whose parameters are ``model``'s own arrays (a write to
    one is a write to both), with a gradient buffer and layer caches of its own."""
    twin = type(model)(**{**model.config, "backend": model.backend})
    twin.flat.data = model.flat.data
    twin.flat.params = dict(model.flat.params)  # the same views, so the same numbers
    twin.encoder.bind("encoder", twin.flat)
    twin.decoder.bind("decoder", twin.flat)
    return twin


def halves(n: int, parts: int) -> list:
    """``parts`` consecutive slices that cover range(n), as equal as can be."""
    cuts = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


class HalfBatches:
    """``loss_and_grads`` and Adam's step of ``model``, each split over ``parts`` threads.

    ``step = HalfBatches(model, opt)``; then ``loss, parts = step(x)`` computes the loss
    and its gradient into ``model.flat.grad`` and updates the parameters, as
    ``model.loss_and_grads(x, validate=False)`` then ``opt.step()`` would, up to rounding
    (``tinyvae.train`` does so for a conv model it gives more than one thread).
    Only for the CPU (NumPy) backend; the caller sets BLAS to one thread (each thread then
    runs its own products)."""

    def __init__(self, model, opt, parts: int = 2):
        if model.backend.name != "numpy":
            raise ValueError("HalfBatches runs on the CPU: use it with the NumPy backend")
        if not hasattr(opt, "step_part"):
            raise ValueError("HalfBatches steps Adam by parts of the buffer: give it an Adam")
        self.model, self.opt, self.parts = model, opt, int(parts)
        # The model runs the first share itself; a twin of it runs each other share.
        self.twins = [model] + [shared_twin(model) for _ in range(self.parts - 1)]
        # The calling thread runs the first share itself; the pool runs the others.
        self.pool = ThreadPoolExecutor(self.parts - 1, thread_name_prefix="tinyvae-half")
        self.buffer_parts = halves(model.flat.size, self.parts)

    def _all(self, function, *arguments):
        """``[function(*a) for a in zip(*arguments)]``, the first here, the rest at once on
        the pool's threads; the results in order."""
        calls = list(zip(*arguments))
        jobs = [self.pool.submit(function, *a) for a in calls[1:]]
        return [function(*calls[0]), *(job.result() for job in jobs)]

    def __call__(self, x, eps=None, beta=1.0, labels=None, samples=1, objective="elbo",
                 x_input=None):  # fmt: skip
        """One step: what ``model.loss_and_grads(x, eps, ..., validate=False)`` then
        ``opt.step()`` do; returns ``(loss, parts)`` as floats."""
        model, B, n = self.model, x.shape[0], self.parts
        eps = model._noise(eps, (int(samples), B, model.latent_dim))  # drawn as loss_and_grads would
        rows = halves(B, n)

        def share(twin, r):  # the model's own loss_and_grads on rows r of the batch
            return twin.loss_and_grads(
                x[r], eps[:, r], beta, None if labels is None else labels[r], samples, objective,
                validate=False, x_input=None if x_input is None else x_input[r],
            )  # fmt: skip

        results = self._all(share, self.twins, rows)
        weights = [(r.stop - r.start) / B for r in rows]  # B_i / B
        loss = sum(w * float(result[0]) for w, result in zip(weights, results))
        parts = {k: sum(w * float(res[1][k]) for w, res in zip(weights, results)) for k in results[0][1]}
        opt = self.opt
        if opt.clip_norm is None:  # weigh and step each part of the buffer on its thread
            self._all(self._weigh, self.buffer_parts, [weights] * n, [opt.t + 1] * n)
        else:  # clipping needs the whole gradient's norm first
            self._all(self._weigh, self.buffer_parts, [weights] * n, [None] * n)
            clip_grad_norm(self.model.flat.grad, opt.clip_norm)
            self._all(opt.step_part, self.buffer_parts, [opt.t + 1] * n)
        opt.t += 1  # one step, for every part of the buffer
        return loss, parts

    def _weigh(self, part, weights, t):
        """grad = sum_i (B_i / B) grad_i over one part of the buffer; then, if ``t``, Adam's
        update ``t`` of that part."""
        grad = self.model.flat.grad[part]  # the first share's gradient, weighed in place
        grad *= weights[0]
        for twin, w in zip(self.twins[1:], weights[1:]):
            g = twin.flat.grad[part]
            g *= w  # the twin's buffer is scratch until its next loss_and_grads
            grad += g
        if t is not None:
            self.opt.step_part(part, t)
