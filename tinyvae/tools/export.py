"""A trained decoder as a small JSON file that any program can run, such as a web page.

    python -m tinyvae.tools.export --run runs/digits2d --out decoder.json

The website's latent explorer (``docs/site/pages/explorer/explorer.js``) reads such a file and runs
the decoder in the reader's browser. The file holds everything the forward pass needs::

    {"format": "tinyvae-decoder", "version": 1,
     "latent_dim": 2, "image_shape": [8, 8], "activation": "relu",  # (+ "leaky_slope")
     "likelihood": "bernoulli",             # sigmoid of the last layer: pixel probabilities
     "layers": [{"W": [[...], ...], "b": [...]}, ...],   # W (n_in, n_out): h = x @ W + b
     "codes": [[mu_1, mu_2, label], ...]}   # where test images land (optional)

so that ``decode(z)`` is: ``h = z``; for each layer ``h = h @ W + b``, with the activation
after every layer but the last; then ``sigmoid(h)`` for a Bernoulli decoder (a Gaussian
decoder's ``h`` is already the mean). Numbers are written with 9 significant digits, which
give back every float32 weight exactly.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from tinyvae.errors import UserError
from tinyvae.tools import checkpoint
from tinyvae.tools.cli import run
from tinyvae.tools.files import atomic_write, refuse_link
from tinyvae.tools.flags import Parser, nonnegative_int
from tinyvae.tools.run_folder import image_shape

FORMAT, VERSION = "tinyvae-decoder", 1


def _numbers(array) -> list:
    """float32 values -> nested lists of Python floats that print with 9 significant digits."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        return float(f"{float(array):.9g}")
    return [_numbers(row) for row in array]


def decoder_to_dict(model, image_shape, codes=None, labels=None) -> dict:
    """The decoder of ``model`` (a VAE) as plain JSON-ready data (see the module docstring).

    image_shape : (H, W) with H * W = model.input_dim.
    codes, labels : optional (N, L) latent codes (usually the means mu of test images) and
        their (N,) labels, so that a viewer can show where the data lie.
    """
    if model.num_classes:
        raise UserError(
            "this run is conditional: its decoder also needs a label, which the export "
            "does not hold; export a run trained without --conditional"
        )
    if model.config.get("arch", "mlp") != "mlp":
        raise UserError(
            f"this run is convolutional (--arch {model.config['arch']}): the export holds "
            "linear layers only (h = h @ W + b), which cannot decode it; export a run trained "
            "with --arch mlp"
        )
    if hasattr(model, "latent_dims"):
        raise UserError(
            "this run has two latent layers (--latent-dim L1,L2): the export holds one "
            "decoder from z to x, which cannot sample it; export a run with one latent size"
        )
    H, W = (int(n) for n in image_shape)
    if H * W != model.input_dim:
        raise ValueError(f"image_shape {H}x{W} does not hold the model's {model.input_dim} pixels")
    to_host = model.backend.to_host
    layers = [
        {"W": _numbers(to_host(layer.params["W"])), "b": _numbers(to_host(layer.params["b"]))}
        for layer in model.decoder.layers
    ]
    config = model.config
    exported = {
        "format": FORMAT,
        "version": VERSION,
        "latent_dim": model.latent_dim,
        "image_shape": [H, W],
        "activation": config["activation"],
        "likelihood": model.likelihood,
        "layers": layers,
    }
    if config["activation"] == "leaky_relu":  # the slope for x < 0, as the MLP's layers have it
        exported["leaky_slope"] = float(model.decoder.steps[1].alpha)
    if codes is not None:
        codes = np.asarray(to_host(codes), dtype=np.float64)
        labels = np.full(len(codes), -1) if labels is None else np.asarray(labels)
        exported["codes"] = [[*_numbers(c), int(k)] for c, k in zip(codes, labels)]
    return exported


def write_decoder_json(path, model, image_shape, codes=None, labels=None) -> int:
    """Write :func:`decoder_to_dict` to ``path`` (atomically); returns the file's size in bytes."""
    text = json.dumps(decoder_to_dict(model, image_shape, codes, labels), separators=(",", ":"))
    atomic_write(path, lambda f: f.write(text), mode="w")
    return len(text.encode())


def codes_of_test_images(ckpt, model, n: int):
    """The means mu (n, L) of the first n test images of the run's data set, and their labels."""
    from tinyvae.tools.data import load  # only when codes are asked for

    config = ckpt.meta.get("config") or {}
    data = load(config.get("dataset", "mnist"), data_dir=config.get("data_dir"), progress=False)
    x = model.backend.asarray(data.test_x[:n])
    mu, _ = model.encode(x)
    return model.backend.to_host(mu), data.test_y[:n]


def check_out(out: Path) -> Path:
    """``out`` if a decoder file may be written there: a name ending in .json, in a folder
    that exists, and not a file that holds something else (a run's config.json, say), which
    replacing would lose."""
    if out.suffix.lower() != ".json":
        raise UserError(f"--out {out}: a decoder file is JSON; choose a name ending in .json")
    if not out.parent.is_dir():
        raise UserError(
            f"cannot write {out} (there is no folder {out.parent}): choose another --out"
        )
    refuse_link(out)  # a link's target may belong to another run
    if out.is_file():
        try:
            with open(out, "rb") as f:
                head = f.read(100)
        except OSError:
            head = b""
        if not re.match(rb'\s*\{\s*"format"\s*:\s*"' + FORMAT.encode() + b'"', head):
            raise UserError(
                f"{out} exists and is not a decoder file that this tool wrote: choose another "
                "--out, or remove that file first if you no longer need it"
            )
    return out


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m tinyvae.tools.export",
        description="Write the decoder of a trained run as a small JSON file (weights, "
        "activation, likelihood, image shape) and, optionally, where test images land.",
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="run folder (or .npz file)")
    parser.add_argument("--out", required=True, metavar="FILE.json", help="file to write")
    parser.add_argument(
        "--codes",
        type=nonnegative_int,
        default=0,
        metavar="N",
        help="also store the codes (means) of the first N test images (default: 0)",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    ckpt = checkpoint.load(args.run)
    out = check_out(Path(args.out))
    model = checkpoint.build_model(ckpt)
    shape = image_shape(ckpt, model.input_dim)
    codes, labels = codes_of_test_images(ckpt, model, args.codes) if args.codes else (None, None)
    size = write_decoder_json(out, model, shape, codes, labels)
    what = f" and {len(codes)} test codes" if codes is not None else ""
    print(f"wrote the decoder{what} to {out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
