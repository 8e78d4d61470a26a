"""IWAE against ELBO training at small scale, as in Burda, Grosse & Salakhutdinov (2015).

Two VAEs with the same architecture, the same initial weights, the same minibatches and
the same budget (epochs, K samples per example) are trained, one on the multi-sample ELBO
(``objective="elbo"``) and one on the importance-weighted bound (``objective="iwae"``).
Both are then scored by the importance-weighted estimate of log p(x) with k = 5000 samples
on the same N test images, binarized once with a fixed seed. The paper's claim: the IWAE
model has the higher (better) log-likelihood.

Data: dynamically binarized Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
(/usr/share/datasets/fashion-mnist); MNIST cannot be downloaded on an offline machine. When
that folder is missing the script falls back to the bundled 8x8 digits and says so.

The default budget fits in about 15 minutes on 2 CPU cores: a 784-200-50-200-784 ReLU
model (the size of the paper's one-stochastic-layer model, with one deterministic layer
per side instead of two), Adam lr 1e-3, batch 100, 40 epochs, K = 5 for both objectives,
log p(x) with k = 5000 on the first 1,000 test images. Run it from the repository root:

    python -m benchmarks.iwae_vs_elbo                  # about 15 minutes on 2 CPU cores
    python -m benchmarks.iwae_vs_elbo --epochs 2 --n-test 100 --k 500    # a smoke run

Prints a table and one JSON line (``--json-only`` prints just the JSON line). The measured
result is in docs/extensions.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

import tinyvae
from tinyvae.tools.data import SYSTEM_DIRS, Batches, load
from tinyvae.tools.threads import automatic_threads, product_shapes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist or digits")
    p.add_argument("--epochs", type=int, default=40, help="training epochs for each model")
    p.add_argument("--samples", type=int, default=5, help="K, samples per example in training")
    p.add_argument("--hidden", type=int, nargs="+", default=[200], help="encoder hidden sizes")
    p.add_argument("--latent", type=int, default=50, help="latent dimensions")
    p.add_argument("--activation", default="relu")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--n-test", type=int, default=1000, help="test images scored")
    p.add_argument("--k", type=int, default=5000, help="importance samples for log p(x)")
    p.add_argument("--seed", type=int, default=0, help="weights, batches and noise")
    p.add_argument("--test-seed", type=int, default=12345, help="binarizes the test images")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS threads (default: tinyvae's automatic choice, as the lessons and "
        "python -m tinyvae.train make it; on a busy machine it picks fewer)",
    )
    p.add_argument("--json-only", action="store_true")
    return p.parse_args(argv)


def load_data(name):
    """The data set, and a note when Fashion-MNIST is missing and digits stand in."""
    if name == "fashion-mnist" and not SYSTEM_DIRS["fashion-mnist"].is_dir():
        note = (
            f"{SYSTEM_DIRS['fashion-mnist']} is missing (install Debian's dataset-fashion-mnist):"
            " falling back to the 8x8 digits, whose numbers are not comparable"
        )
        return load("digits"), note
    return load(name, progress=False), ""


def train(objective, ds, args, backend):
    """One model trained on ``objective``; returns it, its last-epoch loss and seconds."""
    model = tinyvae.VAE(
        ds.train_x.shape[1],
        hidden=args.hidden,
        latent_dim=args.latent,
        activation=args.activation,
        seed=args.seed,  # the same initial weights for both objectives
        init="he",  # He/Glorot, as in the run recorded in docs/extensions.md
    )
    opt = tinyvae.Adam(model.flat, lr=args.lr)
    batches = Batches(  # the same batches and binarizations for both objectives
        ds.train_x, ds.train_y, backend, args.batch_size, seed=args.seed, binarize="dynamic"
    )
    start = time.perf_counter()
    for epoch in range(args.epochs):
        total = 0.0
        for x, _ in batches.epoch(epoch):
            loss, _, _ = model.loss_and_grads(
                x, samples=args.samples, objective=objective, validate=False
            )
            opt.step()
            total += float(loss) * len(x)
        last = total / len(ds.train_x)
        if not args.json_only:
            print(f"  {objective} epoch {epoch + 1:3d}: training loss {last:8.3f}", flush=True)
    return model, last, time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    backend = tinyvae.get_backend("numpy")
    ds, note = load_data(args.data)
    if note and not args.json_only:
        print("note:", note)
    why = "--threads"
    if args.threads is None:  # chosen for the products of the models trained below
        shaped = tinyvae.VAE(ds.train_x.shape[1], hidden=args.hidden, latent_dim=args.latent)
        args.threads, why = automatic_threads(product_shapes(shaped, args.batch_size))
    threadpool_limits(args.threads, user_api="blas")  # for the rest of this run
    if not args.json_only:
        print(f"BLAS threads: {args.threads} ({why})")
    # The test images, binarized once: the same 0/1 images score both models.
    rng = np.random.default_rng(args.test_seed)
    test = ds.test_x[: args.n_test]
    test_bin = backend.asarray((rng.random(test.shape) < test).astype(np.float32))  # (N, D)

    rows, lls = {}, {}
    for objective in ("elbo", "iwae"):
        model, train_loss, seconds = train(objective, ds, args, backend)
        start = time.perf_counter()
        ll = lls[objective] = backend.to_host(model.log_likelihood(test_bin, k=args.k))  # (N,)
        rows[objective] = dict(
            train_loss=round(train_loss, 3),
            log_likelihood=round(float(ll.mean()), 3),
            stderr=round(float(ll.std(ddof=1) / np.sqrt(len(ll))), 3),
            train_s=round(seconds, 1),
            eval_s=round(time.perf_counter() - start, 1),
        )
    # The same images score both models, so the difference's standard error is taken over
    # the per-image differences (much smaller than either model's spread over images).
    diff = lls["iwae"].astype(np.float64) - lls["elbo"]  # (N,)
    gain, gain_se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
    result = dict(
        benchmark="iwae_vs_elbo",
        data=ds.name,
        note=note,
        architecture=f"{ds.train_x.shape[1]}-{'-'.join(map(str, args.hidden))}-{args.latent}",
        activation=args.activation,
        epochs=args.epochs,
        samples=args.samples,
        batch_size=args.batch_size,
        lr=args.lr,
        n_test=len(test),
        k=args.k,
        seed=args.seed,
        threads=args.threads,
        elbo=rows["elbo"],
        iwae=rows["iwae"],
        iwae_minus_elbo=round(gain, 3),
        iwae_minus_elbo_stderr=round(gain_se, 3),
    )
    if not args.json_only:
        print()
        print(
            f"{result['architecture']} {args.activation}, {args.epochs} epochs, K={args.samples}, "
            f"log p(x) with k={args.k} on {len(test)} test images of {ds.name} (nats)"
        )
        print(
            f"{'objective':>9} | {'train loss':>10} | {'log p(x)':>9} | {'± s.e.':>6} | "
            f"{'train s':>7}   (train loss: each model's own bound, last epoch)"
        )
        for objective, r in rows.items():
            print(
                f"{objective:>9} | {r['train_loss']:10.3f} | {r['log_likelihood']:9.3f} | "
                f"{r['stderr']:6.3f} | {r['train_s']:7.1f}"
            )
        print(
            f"IWAE - ELBO: {gain:+.3f} ± {gain_se:.3f} nats (paired over images; "
            "positive: IWAE is better)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
