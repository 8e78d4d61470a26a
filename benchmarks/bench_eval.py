"""Time and memory of ``model.log_likelihood(x, k=5000)``: the importance-weighted estimate.

The model is the default recipe (784-400-20-400-784, ReLU, Bernoulli), trained for
``--train-epochs`` epochs first so that its outputs look like a real model's. Each
measurement runs in a fresh process whose peak resident memory is reset just before the
call, so the reported peak is what the estimate itself needed (model and images included).

    python benchmarks/bench_eval.py                        # 1,000 test images, k = 5000
    python benchmarks/bench_eval.py --images 100 --images 1000 --json

Peak memory should not grow with the number of images: the k samples are decoded in
chunks of at most ``max_rows`` rows (see ``VAE.log_likelihood``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_train import (  # noqa: E402
    checked_data_dir,
    load_images,
    load_train_images,
    reset_peak_rss,
    status_bytes,
    thread_env,
)

from tinyvae.errors import UserError  # noqa: E402  (bench_train put this checkout on the path)
from tinyvae.evaluate import MAX_K  # noqa: E402
from tinyvae.tools.cli import run  # noqa: E402
from tinyvae.tools.flags import Parser, bounded_int, nonnegative_int  # noqa: E402


def load_test_images(data_dir, synthetic, n, seed):
    path = Path(data_dir) / "t10k-images-idx3-ubyte.gz"
    if synthetic or not path.is_file():
        return np.random.default_rng(seed + 1).random((n, 784), dtype=np.float32), "synthetic"
    return load_images(path)[:n], "fashion-mnist"  # NumPy alone: no PyTorch in this process


def worker(args):
    import tinyvae

    model = tinyvae.VAE(784, hidden=(400,), latent_dim=20, backend=args.backend, seed=args.seed)
    be = model.backend
    if args.train_epochs:
        train, _ = load_train_images(args.data_dir, args.synthetic, args.seed)
        data, opt = be.asarray(train), tinyvae.Adam(model.flat, lr=1e-3)
        order_rng = np.random.default_rng(args.seed)
        for _ in range(args.train_epochs):
            order = be.asarray(order_rng.permutation(len(data)), dtype=np.int64)
            for start in range(0, len(data), 128):
                xb = data[order[start : start + 128]]  # a gathered copy, not a view into data
                model.loss_and_grads(xb, validate=False)
                opt.step()
        del train, data, opt  # the training set is gone before the measurement starts
    test, source = load_test_images(args.data_dir, args.synthetic, args.images, args.seed)
    x = be.asarray(test)
    # Warm-up, untimed: on a GPU the first call compiles every kernel the estimate uses
    # (NVRTC), which would otherwise be timed as part of it. One image covers them all.
    model.log_likelihood(x[:1], k=args.k)
    be.synchronize()
    before = status_bytes("VmRSS")
    exact = reset_peak_rss()
    if be.name == "cupy":
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()
    t0 = time.perf_counter()
    log_px = model.log_likelihood(x, k=args.k)
    be.synchronize()
    seconds = time.perf_counter() - t0
    result = dict(
        images=len(x),
        k=args.k,
        data=source,
        seconds=seconds,
        rss_before_bytes=before,
        peak_rss_bytes=status_bytes("VmHWM") if exact else None,
        mean_log_px=float(be.to_host(log_px).mean()),
    )
    if be.name == "cupy":
        result["device_pool_bytes"] = int(cupy.get_default_memory_pool().total_bytes())
    print(json.dumps(result))
    return 0


def main(argv=None):
    parser = Parser(prog="python benchmarks/bench_eval.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images",
        type=bounded_int(1, 10_000),
        action="append",
        help="test images, at most 10,000; repeatable; default 1000",
    )
    parser.add_argument("--k", type=bounded_int(1, MAX_K), default=5000)
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    parser.add_argument("--train-epochs", type=bounded_int(0, 100), default=1)
    parser.add_argument("--threads", type=bounded_int(1, 1024), default=2)
    parser.add_argument("--seed", type=nonnegative_int, default=1)
    parser.add_argument("--data-dir", help="Fashion-MNIST's gzip files")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_dir = checked_data_dir(args.data_dir)
    if args.worker:
        args.images = args.images[0]
        return worker(args)

    results = []
    for n in args.images or [1000]:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--images", str(n)]
        for flag in ("k", "backend", "train_epochs", "seed", "data_dir"):
            command += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
        command += ["--synthetic"] if args.synthetic else []
        load = os.getloadavg()[0]
        done = subprocess.run(
            command, env=thread_env(args.threads), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(
                f"the measurement of {n} images failed (status {done.returncode}): {last}"
            )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]) | {"load_before": load})

    print(
        f"{'backend':7} {'images':>6} {'k':>5} {'seconds':>8} {'peak RSS MiB':>12} {'log p(x)':>9}"
    )
    for r in results:
        peak = f"{r['peak_rss_bytes'] / 2**20:12.0f}" if r["peak_rss_bytes"] else f"{'-':>12}"
        print(
            f"{args.backend:7} {r['images']:6d} {r['k']:5d} {r['seconds']:8.2f} {peak} "
            f"{r['mean_log_px']:9.2f}"
        )
    if args.json:
        print(json.dumps(dict(backend=args.backend, threads=args.threads, runs=results)))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
