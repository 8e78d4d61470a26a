"""``python -m tinyvae.train``: train a VAE and fill a run folder (``--help`` lists the flags).

    python -m tinyvae.train --dataset digits --epochs 20 --out runs/digits

The run folder::

    config.json                  the recipe: every field of TrainConfig
    metrics.jsonl                one JSON object per epoch (losses in nats per image)
    checkpoint.npz               weights, optimizer state and position (tools/checkpoint.py)
    samples_epochNN.png          the same 64 prior draws, decoded after every epoch (see --pictures-every)
    reconstructions_epochNN.png  test images above their reconstructions
    loss.png                     loss curves
    latent.png                   posterior means of the test set on the two most active units,
                                 coloured by label (at the end)
    manifold.png                 decoded grid over a 2-D latent space (2-D latents only)
    interpolation.png            test images, and the decoded straight lines between their codes

A checkpoint is written at the end of every epoch (and every N steps with
``--checkpoint-every N``), atomically, so that a crash or ``kill -9`` at any moment leaves
the previous one readable. The first Ctrl-C (or SIGTERM, as ``kill`` and job schedulers send;
exit status 143) finishes the current step, saves a checkpoint of that exact point
(mid-epoch) and exits; ``--resume`` then continues bit for bit, as if
nothing had happened. A checkpoint is never written from weights that are NaN or Inf, and
an epoch's checkpoint is written after its metrics and pictures. A resume only trains
further: a finished run is never changed. The BLAS thread count is chosen when a run starts
(``tinyvae/tools/threads.py``) and kept when it is resumed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from tinyvae.core.backend import get_backend
from tinyvae.tools import checkpoint
from tinyvae.tools.checkpoint import describe
from tinyvae.tools.cli import INTERRUPTED, ctrl_c_stops_gently, run
from tinyvae.tools.config import (
    TrainConfig,
    check,
    check_arch_flags,
    check_batch_size,
    check_upper_hidden,
    to_dict,
)
from tinyvae.tools.data import Batches, load, seed_for
from tinyvae.tools.evaluation import (
    active_units_per_layer,
    check_data,
    evaluate_loss,
    layer_counts,
    posterior_means,
    prepare_test_set,
)
from tinyvae.tools.files import atomic_write
from tinyvae.tools.flags import given_args
from tinyvae.tools.halves import HalfBatches
from tinyvae.tools.run_folder import (
    already_trained,
    claimed,
    default_folder,
    resumed_checkpoint,
    resumed_config,
    resumed_state,
    write_metrics,
)
from tinyvae.tools.threads import blas_threads, choose_threads
from tinyvae.tools.training import (
    EVAL,
    augmentation,
    check_parameters,
    make_model,
    make_optimizer,
    train_epoch,
)


def main(argv=None) -> int:
    given = given_args(argv)
    config = check(TrainConfig(**given))
    folder = Path(config.out) if config.out else default_folder(config)
    # Made (for a new run) and locked before any download, so that an unwritable --out or a
    # second training into the same folder is reported at once.
    with claimed(folder, new=not config.resume):
        saved = resumed_checkpoint(folder) if config.resume else None
        if saved is not None:
            config = resumed_config(saved, given)
        check_arch_flags(config, given)  # the saved architecture's, when resumed
        check_upper_hidden(config, given)
        if saved is not None:
            before = (saved.meta.get("config") or {}).get("backend", config.backend)
            if before != config.backend:  # allowed, but the bits differ from here on
                print(f"note: this run trained on {before} and continues on {config.backend}: "
                      "it resumes, but not bit for bit (each backend has its own random "
                      "numbers and rounding); keep one backend for an exact resume",
                      file=sys.stderr)  # fmt: skip
            if already_trained(folder, saved, config):
                print(
                    f"{folder} has trained its {config.epochs} epochs already, so there is "
                    f"nothing to do: give --epochs N above {config.epochs} to train further"
                )
                return 0
        return train(config, folder, saved, given)


def train(config, folder: Path, saved=None, given=()) -> int:
    """Train the run ``config`` describes in ``folder``, continuing ``saved`` if given.
    ``given``: the flags the command line gave (a --batch-size larger than the data is
    refused; the default 128 on a smaller data set makes one batch of all of it)."""
    backend = get_backend(config.backend)  # a missing CuPy or GPU is said before loading data
    from tinyvae.tools import plots  # matplotlib (slow to import) and its settings, checked early

    dataset = load(config.dataset, config.data_dir, progress=not config.no_progress)
    if saved is None and "batch_size" in given:
        data = f"--data-dir {config.data_dir}" if config.data_dir else dataset.name
        check_batch_size(config, len(dataset.train_x), data)
    D, shape = dataset.train_x.shape[1], dataset.image_shape
    model = make_model(config, D, dataset.num_classes, backend, shape)
    optimizer = make_optimizer(model, config)
    batches = Batches(
        dataset.train_x,
        dataset.train_y,
        model.backend,
        config.batch_size,
        config.seed,
        binarize=config.binarize,
        **(augmentation(shape) if config.augment else {}),  # shifts and turns, per epoch
    )
    test_x, test_y = prepare_test_set(dataset, config, model.backend)
    check_data(model, batches.x, config, "the training images", batches.y)
    check_data(model, test_x, config, "the test images", test_y)
    state = {"epoch": 0, "step": 0, "sums": None, "history": []}
    if saved is not None:
        checkpoint.restore(saved, model, optimizer)
        state = resumed_state(saved, len(batches))
    threads, why = None, "not used on a GPU"
    if backend.name == "numpy":
        kept = saved.state.get("threads") if saved is not None else None
        threads, why = choose_threads(config.threads, model, config.batch_size, kept)

    def save(state, where):
        check_parameters(model, config, where)  # never replace a good checkpoint by NaNs
        extra = {"image_shape": list(dataset.image_shape), "threads": threads}
        checkpoint.save(folder / "checkpoint.npz", model, optimizer, state | extra, to_dict(config))

    def write_config():
        text = json.dumps(to_dict(config), indent=2) + "\n"
        atomic_write(folder / "config.json", lambda f: f.write(text), mode="w")

    if saved is None:
        save(state, "before training")  # epoch 0: there is always a checkpoint to go back to
    else:  # the files agree with the checkpoint again, if a kill left them ahead of it
        write_metrics(folder / "metrics.jsonl", state["history"])
    write_config()
    H, W = dataset.image_shape
    print(
        f"{dataset.name}: {len(dataset.train_x):,} training and {len(test_x):,} test images "
        f"of {H}x{W} ({dataset.source})"
    )
    print(
        f"model {describe(model.config)}, {model.flat.size:,} parameters, "
        f"{model.backend.name}; run folder {folder}"
    )

    z, z_labels = prior_draws(model, config.seed)

    def pictures(epoch, history):
        shape = dataset.image_shape
        plots.save_epoch_pictures(folder, model, epoch, z, z_labels, test_x, test_y, shape, history)
        if epoch == config.epochs:  # the last epoch: the latent space too
            to_host = model.backend.to_host
            mu = to_host(posterior_means(model, test_x, test_y))  # (n, L)
            plots.save_final_pictures(folder, model, mu, to_host(test_x[:8]), dataset.test_y,
                                      shape, dataset.class_names)  # fmt: skip

    # A conv VAE on more than one CPU thread: each thread runs its share of the batch,
    # products included, with one BLAS thread (tinyvae/tools/halves.py), rather than BLAS
    # splitting each product alone; measured faster for the conv recipe, not for the MLP
    # (benchmarks/README.md). With Adam only (it steps the buffer by parts).
    split = (threads or 1) > 1 and config.arch == "conv" and hasattr(optimizer, "step_part")
    halves = HalfBatches(model, optimizer, threads) if split else None
    each = f"; each thread runs 1/{threads} of every batch, with one BLAS thread" if halves else ""
    print(f"BLAS threads: {threads or '-'} ({why}){each}", flush=True)
    with ctrl_c_stops_gently() as stop, blas_threads(1 if halves else threads):
        for epoch in range(state["epoch"] + 1, config.epochs + 1):

            def mid_epoch(step, sums, epoch=epoch, state=state):  # --checkpoint-every
                save(state | {"step": step, "sums": sums}, f"in epoch {epoch} by step {step}")

            result = train_epoch(
                model,
                optimizer,
                batches,
                config,
                epoch,
                state["step"],
                state["sums"],
                should_stop=stop,
                on_checkpoint=mid_epoch,
                halves=halves,
            )
            where = f"in epoch {epoch} by step {result['steps']}"
            if not result["finished"]:  # Ctrl-C or SIGTERM: save this exact point of the epoch
                state = state | {"step": result["steps"], "sums": result["sums"]}
                save(state, where)
                steps = f"in epoch {epoch} after step {result['steps']} of {len(batches)}"
                return stopped(folder, steps, stop() or INTERRUPTED)  # 143 for SIGTERM
            check_parameters(model, config, where)
            record = finish_epoch(model, config, epoch, result, test_x, test_y) | {
                "threads": threads
            }
            history = state["history"] + [record]
            print(log_line(record, config, model), flush=True)
            # The epoch's files first, its checkpoint last: a run killed in between redoes
            # the epoch (bit for bit) and rewrites them, and a checkpoint never describes
            # files that are not there.
            write_metrics(folder / "metrics.jsonl", history)
            if epoch == config.epochs or epoch % pictures_every(config) == 0:
                pictures(epoch, history)
            state = {"epoch": epoch, "step": 0, "sums": None, "history": history}
            save(state, where)
            if status := stop():
                return stopped(folder, f"after epoch {epoch}", status)
    print(f"done: pictures, metrics and checkpoint in {folder}")
    return 0


def finish_epoch(model, config, epoch, result, test_x, test_y) -> dict:
    """Score the test set and build the epoch's metrics record (losses in nats per image)."""
    start = time.perf_counter()
    test = evaluate_loss(model, test_x, test_y, seed=seed_for(config.seed, epoch, EVAL))
    per_layer = active_units_per_layer(model, test_x, test_y)
    return {
        "epoch": epoch,
        "train_loss": result["train_loss"],  # negative ELBO, mean over the epoch's steps
        "test_loss": test["loss"],
        "recon": result["recon"],
        "kl": result["kl"],
        "test_recon": test["recon"],
        "test_kl": test["kl"],
        "objective": result["objective"],  # what was minimised (differs with beta or iwae)
        "beta": result["beta"],
        "active_units": sum(per_layer),
        "active_units_per_layer": per_layer,  # bottom first: [z1, z2] with two latent layers
        "seconds": result["train_seconds"] + time.perf_counter() - start,
        "train_seconds": result["train_seconds"],
        "images_per_s": result["images_per_s"],
    }


def pictures_every(config) -> int:
    """Epochs between two sets of epoch pictures: --pictures-every, or when that is 0,
    about ten sets per run (every epoch for runs of up to 10 epochs)."""
    return config.pictures_every or -(-config.epochs // 10)  # ceil(epochs / 10)


def stopped(folder, where: str, status: int = INTERRUPTED) -> int:
    """Say where a run stopped (Ctrl-C: status 130; SIGTERM: 143) and how to continue it."""
    print(
        f"stopped {where}; checkpoint saved. Continue with: python -m tinyvae.train "
        f"--out {folder} --resume",
        file=sys.stderr,
    )
    return status


def log_line(r: dict, config, model) -> str:
    """One line per epoch: the losses in nats per image, active units (per latent layer),
    then how long it took."""
    per_layer = r.get("active_units_per_layer", [r["active_units"]])
    return (
        f"epoch {r['epoch']:{len(str(config.epochs))}d}/{config.epochs}  "
        f"train {r['train_loss']:.2f} (recon {r['recon']:.2f} + KL {r['kl']:.2f})  "
        f"test {r['test_loss']:.2f}  active {layer_counts(per_layer, model)}  "
        f"{r['seconds']:.2f} s  {r['images_per_s']:,.0f} img/s"
    )


def prior_draws(model, seed, per_class=8):
    """The fixed z of the samples pictures: 64 draws, or ``per_class`` for every class."""
    n = model.num_classes * per_class if model.num_classes else 64
    z = np.random.default_rng(seed).standard_normal((n, model.latent_dim))  # (n, L)
    labels = np.repeat(np.arange(model.num_classes), per_class) if model.num_classes else None
    return model.backend.asarray(z), labels


if __name__ == "__main__":
    sys.exit(run(main))
