"""The training loop, readable top to bottom, and the measurements around it.

    model = make_model(config, input_dim=784, num_classes=10)
    optimizer = make_optimizer(model, config)
    batches = Batches(train_x, train_y, model.backend, config.batch_size, config.seed)
    for epoch in range(1, config.epochs + 1):
        stats = train_epoch(model, optimizer, batches, config, epoch)   # one pass, updates
        test = evaluate_loss(model, test_x, test_y)                      # no updates

Reproducibility: every random number of epoch ``e`` comes from generators seeded by
``(seed, e)``: the batch order and binarization (in :class:`tinyvae.tools.data.Batches`), and
here the reparameterization noise and the input corruption. So a run resumed at epoch
``e`` (or at step ``s`` of it: the first ``s`` draws are replayed) continues bit for bit.

Speed: nothing is read back from the device inside a step. The running loss, and the
sum of the squared gradient norms, are summed on the device and read, together in one
copy, every ``config.progress_every`` steps (every step on NumPy, where reading costs
nothing), which is also where a NaN or Inf loss or gradient is caught: one NaN makes its
sum NaN for good. An epoch ends with one wait for the device and one read of its sums.
"""

from __future__ import annotations

import math
import time

import numpy as np
from tqdm import tqdm

from tinyvae.core.hierarchical import HierarchicalVAE
from tinyvae.core.model import VAE
from tinyvae.core.optim import OPTIMIZERS
from tinyvae.errors import Diverged
from tinyvae.tools.data import AUGMENT_DEGREES, corrupt, seed_for

NOISE, EVAL = 1, 2  # stream numbers: (seed, epoch, stream) seeds one generator each
PARTS = ("objective", "recon", "kl", "images")  # what an epoch sums, image-weighted


def make_model(config, input_dim: int, num_classes: int = 0, backend=None, image_shape=None):
    """The VAE that ``config`` describes, for images of ``input_dim`` pixels, (H, W) =
    ``image_shape`` (default: square; the conv recipe needs it), on ``backend`` (a Backend
    already built, whose dtype the model takes, or by default the one ``config.backend``
    names, in float32)."""
    common = dict(
        hidden=config.hidden,
        latent_dim=config.latent_dim,
        likelihood=config.likelihood,
        activation=config.activation,
        backend=config.backend if backend is None else backend,
        dtype="float32" if backend is None else backend.dtype,
        seed=config.seed,
        gaussian_logvar=config.gaussian_logvar,
        init=config.init,
    )
    if isinstance(config.latent_dim, tuple):  # two layers of latent variables, z1 below z2
        return HierarchicalVAE(input_dim, upper_hidden=config.upper_hidden, **common)
    return VAE(
        input_dim,
        num_classes=num_classes if config.conditional else 0,
        arch=config.arch,
        channels=config.channels,
        image_shape=image_shape if config.arch == "conv" else None,
        **common,
    )


def augmentation(image_shape) -> dict:
    """What ``--augment`` does to images of ``image_shape`` (H, W), as :class:`Batches`
    arguments: shifts of up to 1/14 of the smaller side, rounded down (2 pixels on 28x28;
    none on the 8x8 digits, where one pixel is an eighth of the image: shifts of one pixel
    raised their test loss by more than 2 nats), and turns of up to ``AUGMENT_DEGREES``.
    Batches draws them from each epoch's generator, so a resumed run sees the same ones."""
    shift = min(image_shape) // 14
    return {"shift": shift, "rotate": AUGMENT_DEGREES, "image_shape": tuple(image_shape)}


def make_optimizer(model, config):
    """Adam or SGD (momentum 0.9) over the model's flat parameter buffer."""
    return OPTIMIZERS[config.optimizer](model.flat, lr=config.lr, clip_norm=config.clip_norm)


def stream_rng(backend, seed: int, epoch: int, stream: int):
    """A generator on ``backend``'s device that depends only on ``(seed, epoch, stream)``."""
    return backend.rng(seed_for(seed, epoch, stream))


def beta_at(config, step: int, steps_per_epoch: int) -> float:
    """The KL weight at global step ``step`` (0-based): a linear ramp over ``kl_warmup`` epochs."""
    if config.kl_warmup <= 0:
        return config.beta
    return config.beta * min(1.0, step / (config.kl_warmup * steps_per_epoch))


def train_epoch(
    model,
    optimizer,
    batches,
    config,
    epoch: int,
    start_step=0,
    sums=None,
    should_stop=None,
    on_checkpoint=None,
    halves=None,
) -> dict:
    """One pass over ``batches`` (epoch numbers start at 1), updating the model in place.

    start_step, sums : continue an epoch that was stopped after ``start_step`` steps, whose
        running sums (``result["sums"]``) were saved.
    should_stop : called after every step; when it returns True the epoch ends early with
        ``finished`` False, at a step boundary, so the state is consistent and can be saved.
    on_checkpoint : called as ``on_checkpoint(step, sums)`` every ``config.checkpoint_every``
        steps within the epoch (not after its last step), once the loss and gradients so far
        are known to be finite: the caller saves a checkpoint there.
    halves : a ``tinyvae.tools.halves.HalfBatches`` of this model and optimizer, to run each
        step as two halves of the batch on two threads (None: one thread's loss_and_grads,
        then the optimizer's step).

    Returns the epoch's mean ``train_loss`` (negative ELBO = recon + kl), ``objective``
    (what was minimised: with beta or IWAE it differs), ``recon``, ``kl`` in nats per image,
    plus ``beta``, ``steps``, ``finished``, ``train_seconds``, ``images_per_s`` and ``sums``.
    """
    backend, steps = model.backend, len(batches)
    xp, L = backend.xp, model.latent_dim
    rng = stream_rng(backend, config.seed, epoch, NOISE)
    sums = {**dict.fromkeys(PARTS, 0.0), "seconds": 0.0, **(sums or {})}
    acc = {k: xp.asarray(sums[k], dtype=xp.float64) for k in PARTS}  # 0-d, on the device
    grad_sq = xp.zeros((), dtype=xp.float64)  # sum of |g|^2 over the steps: NaN once one is
    read_every = 1 if backend.name == "numpy" else config.progress_every
    every = getattr(config, "checkpoint_every", None) if on_checkpoint is not None else None
    start, step, beta = time.perf_counter(), start_step, beta_at(config, 0, steps)

    def read_back(*values):  # 0-d device arrays -> floats, in one copy: on a GPU, one wait
        return [float(v) for v in backend.to_host(xp.stack(values))]

    def sums_now():  # the running sums, read back to the host (to save or to return)
        seconds = sums["seconds"] + time.perf_counter() - start
        return dict(zip(PARTS, read_back(*(acc[k] for k in PARTS)))) | {"seconds": seconds}

    bar = tqdm(
        total=steps,
        initial=start_step,
        desc=f"epoch {epoch}",
        unit="batch",
        leave=False,
        disable=config.no_progress,
    )
    # NumPy would warn about overflow on the way to a NaN; the check below says it better.
    with bar, np.errstate(over="ignore", invalid="ignore"):
        for step, (x, y) in enumerate(batches.epoch(epoch), start=1):  # step: steps done
            B = x.shape[0]
            eps = rng.standard_normal((config.samples, B, L), dtype=model.dtype)  # (K, B, L)
            x_in = corrupt(x, config.denoise, config.noise, rng) if config.denoise else None
            if step <= start_step:
                continue  # done before a stop: only its random draws are replayed
            beta = beta_at(config, (epoch - 1) * steps + step - 1, steps)
            labels = y if model.num_classes else None
            if halves is None:
                loss, parts, _ = model.loss_and_grads(
                    x, eps, beta, labels, config.samples, config.objective, validate=False,
                    x_input=x_in,
                )  # fmt: skip
                grad_sq = grad_sq + model.flat.grad @ model.flat.grad  # one dot product, no sync
                optimizer.step()
            else:  # the same step, each half of the batch on its own core
                loss, parts = halves(x, eps, beta, labels, config.samples, config.objective, x_in)
                grad_sq = grad_sq + model.flat.grad @ model.flat.grad
            acc["objective"] = acc["objective"] + loss * B
            acc["recon"] = acc["recon"] + parts["recon"] * B
            acc["kl"] = acc["kl"] + parts["kl"] * B
            acc["images"] = acc["images"] + B
            save_now = every is not None and step % every == 0 and step < steps
            if step % read_every == 0 or step == steps or save_now:
                running, grad_total = read_back(acc["objective"] / acc["images"], grad_sq)
                check_finite(running, config, epoch, step, grad_total)
                bar.update(step - bar.n)
                bar.set_postfix(loss=f"{running:.2f}", refresh=False)
            if save_now:
                on_checkpoint(step, sums_now())
            if should_stop is not None and should_stop():
                break
    backend.synchronize()
    sums = sums_now()
    n = max(sums["images"], 1.0)
    return {
        "train_loss": (sums["recon"] + sums["kl"]) / n,
        "objective": sums["objective"] / n,
        "recon": sums["recon"] / n,
        "kl": sums["kl"] / n,
        "beta": beta,
        "steps": step,
        "finished": step == steps,
        "train_seconds": sums["seconds"],
        "images_per_s": sums["images"] / max(sums["seconds"], 1e-9),
        "sums": sums,
    }


def check_finite(running_loss: float, config, epoch: int, step: int, grad_sq=0.0) -> None:
    """Stop with one line when the loss or a gradient is NaN or Inf (step counts from 1).

    ``grad_sq``: the sum of the squared gradient norms so far (NaN or Inf once one was)."""
    if not math.isfinite(running_loss):
        what = f"the loss became {running_loss}"
    elif not math.isfinite(grad_sq):
        what = f"a gradient became NaN or Inf (the loss was still {running_loss:.4g})"
    else:
        return
    kept_in = f" in {config.out}" if getattr(config, "out", None) else ""
    raise Diverged(
        f"{what} in epoch {epoch} by step {step}: the learning rate ({config.lr:g}) is "
        f"probably too high (lower --lr, or add --clip-norm), or --likelihood "
        f"{config.likelihood} does not suit the data; the last good checkpoint is kept"
        f"{kept_in}, and a resumed run keeps its recipe: to try other settings, train again "
        "with another --out"
    )


def check_parameters(model, config, where: str) -> None:
    """Stop with one line when a weight is NaN or Inf: never save such a model."""
    if not bool(model.xp.isfinite(model.flat.data).all()):
        raise Diverged(
            f"the weights became NaN or Inf {where}: the learning rate ({config.lr:g}) is "
            "probably too high (lower --lr, or add --clip-norm); the last good checkpoint "
            "is kept"
        )
