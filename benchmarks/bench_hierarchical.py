"""Epoch time of two latent layers against one, with about the same number of parameters.

    two layers  784-200-200-z1(100)-100-100-z2(50)   (--latent-dim 100,50, the IWAE paper's)
    one layer   784-240-240-z(50)                     (--hidden 240,240 --latent-dim 50)

Both train the way ``tinyvae.train`` does (``train_epoch``: ``loss_and_grads`` then Adam,
batch 128, Fashion-MNIST from Debian's package, or uniform noise with ``--synthetic``), in one
process, taking turns one epoch each after a warm-up epoch each, so that load from other
programs hits both alike. Prints the median seconds per epoch, wall-clock and CPU (this
process's user + system time: on a machine other programs keep busy, the wall-clock time
mostly measures them, the CPU time still the work), and their ratios.

    python benchmarks/bench_hierarchical.py                 # 3 timed epochs each, 1 thread
    python benchmarks/bench_hierarchical.py --epochs 5 --objective iwae --samples 5 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinyvae

import numpy as np  # noqa: E402

from tinyvae.tools.config import TrainConfig, check  # noqa: E402
from tinyvae.tools.data import Batches, load  # noqa: E402
from tinyvae.tools.threads import blas_threads  # noqa: E402
from tinyvae.tools.training import make_model, make_optimizer, train_epoch  # noqa: E402

RECIPES = {
    "two layers": dict(hidden=(200, 200), latent_dim=(100, 50), upper_hidden=(100, 100)),
    "one layer": dict(hidden=(240, 240), latent_dim=50),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs of each")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument("--objective", default="elbo", choices=["elbo", "iwae"])
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true", help="uniform noise, for timing only")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)

    if args.synthetic:
        rng = np.random.default_rng(0)
        train_x, name = rng.random((60000, 784), dtype=np.float32), "synthetic"
    else:
        data = load("fashion-mnist", progress=False)
        train_x, name = data.train_x, data.name
    runs = {}
    for label, sizes in RECIPES.items():
        config = check(TrainConfig(dataset="fashion-mnist", objective=args.objective,
                                   samples=args.samples, no_progress=True, **sizes))  # fmt: skip
        model = make_model(config, 784)
        labels = np.zeros(len(train_x), dtype=np.int64)  # unused: the model is not conditional
        batches = Batches(train_x, labels, model.backend, config.batch_size, config.seed)
        runs[label] = (model, make_optimizer(model, config), batches, config)
    seconds, cpu = {label: [] for label in runs}, {label: [] for label in runs}
    with blas_threads(args.threads):
        for epoch in range(1, args.epochs + 2):  # epoch 1 warms up, untimed
            for label, (model, optimizer, batches, config) in runs.items():
                start = time.process_time()
                result = train_epoch(model, optimizer, batches, config, epoch)
                if epoch > 1:
                    seconds[label].append(result["train_seconds"])
                    cpu[label].append(time.process_time() - start)
    median = {label: statistics.median(s) for label, s in seconds.items()}
    median_cpu = {label: statistics.median(s) for label, s in cpu.items()}
    ratio = median["two layers"] / median["one layer"]
    ratio_cpu = median_cpu["two layers"] / median_cpu["one layer"]
    print(f"{name}, batch 128, {args.objective} K = {args.samples}, {args.threads} thread(s), "
          f"median of {args.epochs} epochs each")  # fmt: skip
    for label, (model, *_rest) in runs.items():
        print(f"  {label:10s} {model.flat.size:9,d} parameters  {median[label]:7.2f} s per epoch, "
              f"{median_cpu[label]:7.2f} s of CPU")  # fmt: skip
    print(f"  ratio two / one: {ratio:.2f} wall-clock, {ratio_cpu:.2f} CPU")
    if args.json:
        params = {label: run[0].flat.size for label, run in runs.items()}
        print(json.dumps(dict(data=name, threads=args.threads, objective=args.objective,
                              samples=args.samples, seconds=seconds, cpu=cpu, median=median,
                              median_cpu=median_cpu, parameters=params, ratio=ratio,
                              ratio_cpu=ratio_cpu)))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
