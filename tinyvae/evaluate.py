r"""``python -m tinyvae.evaluate``: how well a trained run models its test set, in nats.

    python -m tinyvae.evaluate --run runs/fashion --k 5000
    python -m tinyvae.evaluate --run runs/fashion --k 5000 --json    # one JSON object

Two numbers per image, averaged over the test set (lower is better):

* the test loss, the negative ELBO: :math:`-\mathbb E_q[\log p(x|z)] + \mathrm{KL}(q\|p)`,
  with one sampled z per image, exactly as ``tinyvae.train`` reports it;
* the importance-weighted estimate of :math:`-\log p(x)` with k samples (Burda et al. 2015),
  a tighter bound that approaches the true negative log-likelihood as k grows.

The gap between them is how much the approximate posterior q(z|x) costs. Also reported:
the number of active latent units, those whose posterior mean varies over the test set
(variance > 0.01). That is a property of the model, measured on the whole test set as
training measures it, also when ``--n`` scores fewer images: over one image nothing varies.

On a CPU the default, k = 5000 on all 10,000 test images of MNIST, takes about ten minutes
(the progress bar shows the time left); ``--n 1000`` scores the first 1,000 images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from tinyvae.tools import checkpoint
from tinyvae.tools.cli import run
from tinyvae.tools.config import from_dict
from tinyvae.tools.data import load
from tinyvae.tools.evaluation import (
    active_units_per_layer,
    check_data,
    evaluate_loss,
    layer_counts,
    mean_log_likelihood,
    prepare_test_set,
)
from tinyvae.tools.flags import Parser, add_backend_flag, bounded_int, nonnegative_int, positive_int

#: The most importance samples per image, 20 times the default. The samples are decoded in
#: chunks, so memory is bounded at any k, but time grows with it: a bound keeps a typo
#: (an extra zero or five) from running for days.
MAX_K = 100_000


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m tinyvae.evaluate",
        description="Test ELBO and importance-weighted log-likelihood of a trained run, in "
        "nats per image, and its active latent units.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="run folder (or .npz file)")
    parser.add_argument(
        "--k",
        type=bounded_int(1, MAX_K),
        default=5000,
        help=f"importance samples per image, at most {MAX_K:,} (default: 5000; on a CPU, "
        "10,000 images at k = 5000 take about ten minutes)",
    )
    parser.add_argument(
        "--n", type=positive_int, help="score only the first N test images (default: all)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seeds the z samples (default: 0)"
    )
    add_backend_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


EXAMPLES = """examples:
  python -m tinyvae.evaluate --run runs/digits --k 1000
  python -m tinyvae.evaluate --run runs/fashion --n 1000 --json    # one JSON object
  python -m tinyvae.evaluate --run runs/mnist-gpu --backend cupy"""


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    ckpt = checkpoint.load(args.run)
    config = from_dict(ckpt.meta.get("config") or {})
    model = checkpoint.build_model(ckpt, args.backend)
    dataset = load(config.dataset, config.data_dir, progress=not args.no_progress)
    all_x, all_y = prepare_test_set(dataset, config, model.backend)
    check_data(model, all_x, config, "the test images", all_y)
    x, y = all_x[: args.n], all_y[: args.n]

    with np.errstate(all="ignore"):  # a diverged model scores inf, said in the table
        return report(args, ckpt, model, dataset, all_x, all_y, x, y)


def report(args, ckpt, model, dataset, all_x, all_y, x, y) -> int:
    """Score x (and count active units on all_x), then print the table or the JSON object."""
    start = time.perf_counter()
    elbo = evaluate_loss(model, x, y, seed=args.seed)
    progress = not (args.no_progress or args.json)
    if progress and model.backend.name == "numpy" and len(x) * args.k > 10_000_000:
        print(
            f"note: {len(x):,} images at k = {args.k:,} take minutes on a CPU (the bar shows "
            "the time left); --n N scores only the first N images",
            file=sys.stderr,
        )
    per_layer = active_units_per_layer(model, all_x, all_y)
    log_px = mean_log_likelihood(model, x, y, args.k, seed=args.seed, progress=progress)
    result = {
        "run": str(ckpt.path.parent),
        "epoch": ckpt.state.get("epoch"),
        "dataset": dataset.name,
        "images": int(len(x)),
        "test_loss": elbo["loss"],  # negative ELBO, nats per image
        "recon": elbo["recon"],
        "kl": elbo["kl"],
        "k": args.k,
        "nll": -log_px,  # importance-weighted estimate of -log p(x), nats per image
        "active_units": sum(per_layer),  # on every test image
        "active_units_per_layer": per_layer,  # bottom first: [z1, z2] with two latent layers
        "active_units_images": int(len(all_x)),
        "latent_dim": model.config["latent_dim"],  # [L1, L2] with two latent layers
        "seconds": time.perf_counter() - start,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{result['run']} after epoch {result['epoch']}: {result['images']:,} "
        f"{dataset.name} test images, in nats per image"
    )
    print(
        f"  test loss (negative ELBO)  {elbo['loss']:9.2f}  "
        f"(reconstruction {elbo['recon']:.2f} + KL {elbo['kl']:.2f})"
    )
    print(f"  -log p(x), k = {args.k:<10,d} {-log_px:9.2f}  (importance weighted)")
    one = len(result["active_units_per_layer"]) == 1
    units = (
        f"{result['active_units']:>6d} of {model.latent_dim}"
        if one
        else layer_counts(result["active_units_per_layer"], model)
    )  # "12 of 20", or per layer: "z1 30/100 z2 4/50"
    print(f"  active latent units        {units}  (over all {len(all_x):,} test images)")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
