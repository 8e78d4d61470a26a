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
(variance > 0.01).
"""

from __future__ import annotations

import json
import sys
import time

from tinyvae.tools import checkpoint
from tinyvae.tools.cli import Parser, add_backend_flag, nonnegative_int, positive_int, run
from tinyvae.tools.config import from_dict
from tinyvae.tools.data import load
from tinyvae.tools.evaluation import (
    active_units,
    check_data,
    evaluate_loss,
    mean_log_likelihood,
    prepare_test_set,
)


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m tinyvae.evaluate",
        description="Test ELBO and importance-weighted log-likelihood of a trained run.",
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="run folder (or .npz file)")
    parser.add_argument(
        "--k", type=positive_int, default=5000, help="importance samples per image (default: 5000)"
    )
    parser.add_argument("--n", type=positive_int, help="score only the first N test images")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seeds the z samples (default: 0)"
    )
    add_backend_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    ckpt = checkpoint.load(args.run)
    config = from_dict(ckpt.meta.get("config") or {})
    model = checkpoint.build_model(ckpt, args.backend)
    dataset = load(config.dataset, config.data_dir, progress=not args.no_progress)
    x, y = prepare_test_set(dataset, config, model.backend)
    x, y = x[: args.n], y[: args.n]
    check_data(model, x, config, "the test images", y)

    start = time.perf_counter()
    elbo = evaluate_loss(model, x, y, seed=args.seed)
    progress = not (args.no_progress or args.json)
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
        "active_units": active_units(model, x, y),
        "latent_dim": model.latent_dim,
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
    print(f"  active latent units        {result['active_units']:>6d} of {model.latent_dim}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
