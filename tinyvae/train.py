"""``python -m tinyvae.train``: train a VAE and fill a run folder (``--help`` lists the flags).

    python -m tinyvae.train --dataset digits --epochs 20 --out runs/digits

The run folder::

    config.json                  the recipe: every field of TrainConfig
    metrics.jsonl                one JSON object per epoch (losses in nats per image)
    checkpoint.npz               weights, optimizer state and position (tools/checkpoint.py)
    samples_epochNN.png          the same 64 prior draws, decoded after every epoch (see --pictures-every)
    reconstructions_epochNN.png  test images above their reconstructions
    loss.png                     loss curves
    latent.png                   posterior means of the test set, coloured by label (at the end)
    manifold.png                 decoded grid over a 2-D latent space (2-D latents only)
    interpolation.png            decoded straight lines between test images' codes

A checkpoint is written at the end of every epoch (and every N steps with
``--checkpoint-every N``), atomically, so that a crash or ``kill -9`` at any moment leaves
the previous one readable. The first Ctrl-C finishes the current step, saves a checkpoint
of that exact point (mid-epoch) and exits; ``--resume`` then continues bit for bit, as if
nothing had happened. A checkpoint is never written from weights that are NaN or Inf.
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
from tinyvae.tools.cli import INTERRUPTED, ctrl_c_stops_gently, given_args, run
from tinyvae.tools.config import TrainConfig, check, to_dict
from tinyvae.tools.data import Batches, load, seed_for
from tinyvae.tools.evaluation import (
    active_units,
    check_data,
    evaluate_loss,
    posterior_means,
    prepare_test_set,
)
from tinyvae.tools.files import atomic_write
from tinyvae.tools.run_folder import (
    default_folder,
    new_folder,
    resumed_checkpoint,
    resumed_config,
    resumed_state,
    write_metrics,
)
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
    saved = resumed_checkpoint(folder) if config.resume else None
    if saved is not None:
        config = resumed_config(saved, given)
    backend = get_backend(config.backend)  # a missing CuPy or GPU is said before loading data
    if saved is None:
        new_folder(folder)  # before any download, so an unwritable --out is reported at once

    dataset = load(config.dataset, config.data_dir, progress=not config.no_progress)
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
    check_data(model, batches.x, config, "the training images")
    state = {"epoch": 0, "step": 0, "sums": None, "history": []}
    if saved is not None:
        checkpoint.restore(saved, model, optimizer)
        state = resumed_state(saved, len(batches))

    def save(state, where):
        check_parameters(model, config, where)  # never replace a good checkpoint by NaNs
        extra = {"image_shape": list(dataset.image_shape)}
        checkpoint.save(folder / "checkpoint.npz", model, optimizer, state | extra, to_dict(config))

    text = json.dumps(to_dict(config), indent=2) + "\n"
    atomic_write(folder / "config.json", lambda f: f.write(text), mode="w")
    if saved is None:
        save(state, "before training")  # epoch 0: there is always a checkpoint to go back to
    if state["epoch"] >= config.epochs:
        print(f"{folder} already has {state['epoch']} epochs: give --epochs N to train further")
    H, W = dataset.image_shape
    print(
        f"{dataset.name}: {len(dataset.train_x):,} training and {len(test_x):,} test images "
        f"of {H}x{W} ({dataset.source})"
    )
    print(
        f"model {describe(model.config)}, {model.flat.size:,} parameters, "
        f"{model.backend.name}; run folder {folder}",
        flush=True,
    )

    z, z_labels = prior_draws(model, config.seed)

    from tinyvae.tools import plots  # matplotlib takes a while to import: only once it is needed

    def pictures(epoch):
        shape, history = dataset.image_shape, state["history"]
        plots.save_epoch_pictures(folder, model, epoch, z, z_labels, test_x, test_y, shape, history)

    if saved is not None:  # a run killed at the end of an epoch may have missed these
        write_metrics(folder / "metrics.jsonl", state["history"])
        if state["epoch"] >= 1 and state["step"] == 0:
            pictures(state["epoch"])
    with ctrl_c_stops_gently() as stop:
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
            )
            where = f"in epoch {epoch} by step {result['steps']}"
            if not result["finished"]:  # Ctrl-C: save this exact point of the epoch
                state = state | {"step": result["steps"], "sums": result["sums"]}
                save(state, where)
                return stopped(
                    folder, f"in epoch {epoch} after step {result['steps']} of {len(batches)}"
                )
            check_parameters(model, config, where)
            record = finish_epoch(model, config, epoch, result, test_x, test_y)
            state = {
                "epoch": epoch,
                "step": 0,
                "sums": None,
                "history": state["history"] + [record],
            }
            save(state, where)
            write_metrics(folder / "metrics.jsonl", state["history"])
            print(log_line(record, config, model.latent_dim), flush=True)
            if epoch == config.epochs or epoch % pictures_every(config) == 0:
                pictures(epoch)
            if stop():
                return stopped(folder, f"after epoch {epoch}")
    mu = model.backend.to_host(posterior_means(model, test_x, test_y))  # (n, L)
    plots.save_final_pictures(folder, model, mu, dataset.test_y, dataset.image_shape)
    print(f"done: pictures, metrics and checkpoint in {folder}")
    return 0


def finish_epoch(model, config, epoch, result, test_x, test_y) -> dict:
    """Score the test set and build the epoch's metrics record (losses in nats per image)."""
    start = time.perf_counter()
    test = evaluate_loss(model, test_x, test_y, seed=seed_for(config.seed, epoch, EVAL))
    active = active_units(model, test_x, test_y)
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
        "active_units": active,
        "seconds": result["train_seconds"] + time.perf_counter() - start,
        "train_seconds": result["train_seconds"],
        "images_per_s": result["images_per_s"],
    }


def pictures_every(config) -> int:
    """Epochs between two sets of epoch pictures: --pictures-every, or when that is 0,
    about ten sets per run (every epoch for runs of up to 10 epochs)."""
    return config.pictures_every or -(-config.epochs // 10)  # ceil(epochs / 10)


def stopped(folder, where: str) -> int:
    print(
        f"stopped {where}; checkpoint saved. Continue with: python -m tinyvae.train "
        f"--out {folder} --resume",
        file=sys.stderr,
    )
    return INTERRUPTED


def log_line(r: dict, config, latent_dim: int) -> str:
    """One line per epoch: the losses in nats per image, then how long it took."""
    return (
        f"epoch {r['epoch']:{len(str(config.epochs))}d}/{config.epochs}  "
        f"train {r['train_loss']:.2f} (recon {r['recon']:.2f} + KL {r['kl']:.2f})  "
        f"test {r['test_loss']:.2f}  active {r['active_units']}/{latent_dim}  "
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
