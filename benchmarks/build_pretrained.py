"""Train the models tinyvae ships, and write them into tinyvae/tools/weights/.

    python benchmarks/build_pretrained.py                      # every model
    python benchmarks/build_pretrained.py --only digits-2d     # one of them
    python benchmarks/build_pretrained.py --runs runs/pretrained --images docs/images

Each model is trained by ``python -m tinyvae.train`` with the command it records (the
recipe's flags, ``--seed 1 --threads 1``), into a run folder under ``--runs``; a run folder
that has finished already is used as it is (``--resume`` finds nothing to do), so remove it
to train again. Its checkpoint is then stored with float16 parameters and no optimizer
state (``tinyvae/tools/pretrained.py``), its test loss measured again with the stored
weights, and the first frame of its latent walk written as ``--images/walk-NAME.png``.
MNIST is included only when its files are in tinyvae's download cache: this script
downloads nothing.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from tinyvae.tools import checkpoint, pretrained, walk
from tinyvae.tools.config import from_dict
from tinyvae.tools.data import load, seed_for
from tinyvae.tools.download import FILES, cache_dir
from tinyvae.tools.evaluation import evaluate_loss, prepare_test_set
from tinyvae.tools.training import EVAL

SEED = ["--seed", "1", "--threads", "1"]  # one thread: the same bits on any machine's BLAS
MODELS = {  # name -> (what it is, the recipe's flags)
    "digits-2d": (
        "8x8 digits, MLP 64-400-2: a 2-D latent",
        ["--dataset", "digits", "--epochs", "30", "--latent-dim", "2"],
    ),
    "fashion-mlp": ("Fashion-MNIST, MLP 784-400-20", ["--dataset", "fashion-mnist"]),
    "fashion-conv": (
        "Fashion-MNIST, conv 28x28-32-64-20",
        ["--dataset", "fashion-mnist", "--arch", "conv"],
    ),
    "mnist-mlp": ("MNIST, MLP 784-400-20", ["--dataset", "mnist"]),
}


def command(name: str, out) -> list:
    """The training command of model ``name``, its run folder ``out``."""
    return ["python", "-m", "tinyvae.train", *MODELS[name][1], *SEED, "--out", str(out)]


def available(name: str) -> bool:
    """MNIST only when its four files are in the download cache; the rest always."""
    if not name.startswith("mnist"):
        return True
    return all((cache_dir() / "mnist" / f).is_file() for f in FILES)


def build(name: str, runs: Path, images: Path | None) -> dict:
    folder = runs / name
    argv = command(name, folder)
    resume = ["--resume"] if (folder / "checkpoint.npz").exists() else []
    subprocess.run([sys.executable, *argv[1:], "--no-progress", *resume], check=True)
    run = checkpoint.load(folder)
    config, last = from_dict(run.meta["config"]), run.state["history"][-1]
    seconds = sum(h["seconds"] for h in run.state["history"])  # its epochs, as they ran
    shown = command(name, f"runs/pretrained/{name}")  # the same, with a folder of its own
    about = {
        "name": name,
        "description": MODELS[name][0],
        "dataset": config.dataset,
        "command": shlex.join(shown),
        "seed": config.seed,
        "epochs": last["epoch"],
        "test_loss": last["test_loss"],  # float32 weights, as trained
    }
    out = pretrained.WEIGHTS / f"{name}.npz"
    pretrained.WEIGHTS.mkdir(exist_ok=True)
    pretrained.write(run, out, about)
    # The test loss again, with the stored float16 weights and the same noise as the last epoch
    model = pretrained.pretrained(name)
    data = load(config.dataset, progress=False)
    test_x, test_y = prepare_test_set(data, config, model.backend)
    seed = seed_for(config.seed, last["epoch"], EVAL)
    stored_loss = evaluate_loss(model, test_x, test_y, seed=seed)["loss"]
    about["test_loss_stored"] = stored_loss
    pretrained.write(run, out, about)
    if images is not None:  # the first frame of a 16-tile walk, as sample --walk draws it
        frames = walk.walk_images(model, 16, 2, seed=0)
        walk.save_frame(images / f"walk-{name}.png", walk.canvases(frames, data.image_shape, 4)[0])
    size = out.stat().st_size
    print(
        f"{name}: {size / 1e6:.2f} MB, {model.flat.size:,} parameters, test loss "
        f"{last['test_loss']:.3f} (float32) {stored_loss:.3f} (stored float16), "
        f"{seconds:.0f} s of training epochs"
    )
    return about | {"bytes": size}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(MODELS), action="append")
    parser.add_argument("--runs", type=Path, default=Path("runs/pretrained"))
    parser.add_argument("--images", type=Path, help="write walk-NAME.png frames here")
    args = parser.parse_args(argv)
    names = args.only or [name for name in MODELS if available(name)]
    skipped = sorted(set(MODELS) - set(names) - set(args.only or []))
    if skipped:
        print(f"left out (its data files are not here): {', '.join(skipped)}")
    args.runs.mkdir(parents=True, exist_ok=True)
    built = [build(name, args.runs, args.images) for name in names]
    total = sum(b["bytes"] for b in built)
    print(f"{len(built)} models, {total / 1e6:.2f} MB in {pretrained.WEIGHTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
