"""``python -m tinyvae.sample``: decode draws from the prior of a trained run into a picture.

    python -m tinyvae.sample --run runs/digits --n 64 --out samples.png
    python -m tinyvae.sample --run runs/cvae --label 7 --out sevens.png   # conditional runs
    python -m tinyvae.sample --run runs/cvae --label all --out classes.png  # a row per class
    python -m tinyvae.sample --pretrained fashion-conv --out s.png        # a shipped model
    python -m tinyvae.sample --pretrained fashion-conv --walk --out walk.gif  # an animation

Each image is the decoder's mean for one z ~ N(0, I): pixel probabilities for a Bernoulli
decoder, means for a Gaussian one. ``--seed`` picks the draws, so a picture can be remade.
``--walk`` writes a latent walk as an animation instead (``tinyvae/tools/walk.py``);
``--pretrained NAME`` uses a model shipped with tinyvae (``tinyvae/tools/pretrained.py``).
A run with two latent layers samples from the top: z2 ~ N(0, I), then z1 ~ p(z1|z2), then
the decoder's mean; ``--per-z2 N`` makes rows of N images that share one z2 and redraw z1,
which shows what each layer holds.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from tinyvae.errors import UserError
from tinyvae.tools import checkpoint, pretrained
from tinyvae.tools.cli import run
from tinyvae.tools.flags import (
    MAX_IMAGES,
    Parser,
    add_backend_flag,
    bounded_float,
    bounded_int,
    nonnegative_int,
)
from tinyvae.tools.run_folder import image_shape, refuse_run_file

EXAMPLES = """examples:
  python -m tinyvae.sample --run runs/digits --n 64 --out samples.png
  python -m tinyvae.sample --run runs/digits --n 100 --seed 7 --out more.png
  python -m tinyvae.sample --run runs/cvae --label 7 --out sevens.png     # conditional runs
  python -m tinyvae.sample --run runs/cvae --label all --n 8 --out classes.png
  python -m tinyvae.sample --pretrained fashion-conv --out samples.png
  python -m tinyvae.sample --pretrained fashion-conv --walk --frames 60 --out walk.gif
  python -m tinyvae.sample --run runs/cvae --walk --label all --out classes.gif
  python -m tinyvae.sample --list-pretrained
  python -m tinyvae.sample --run runs/two --n 64 --per-z2 8 --out levels.png  # two layers"""


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m tinyvae.sample",
        description="Decode draws from the prior of a trained run, or of a model shipped "
        "with tinyvae, into one picture (PNG, or another format matplotlib writes, by the "
        "name's ending), or a walk through the latent space into an animation (--walk).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="run folder (or .npz file)")
    source.add_argument("--pretrained", metavar="NAME", help="a model shipped with tinyvae")
    source.add_argument(
        "--list-pretrained", action="store_true", help="list the shipped models and stop"
    )
    parser.add_argument(
        "--n",
        type=bounded_int(1, MAX_IMAGES),
        help=f"images, at most {MAX_IMAGES:,} (default: 64; with --walk, 16 tiles)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE.png",
        help="picture to write (default: DIR/samples.png, or DIR/walk.gif with --walk; "
        "with --pretrained, in the current folder)",
    )
    parser.add_argument(
        "--label",
        metavar="K|all",
        help="conditional runs: draw class K, or 'all' for one row of --n per class",
    )
    parser.add_argument(
        "--ncols", type=bounded_int(1, MAX_IMAGES), help="images per row (default: about √n)"
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seeds the draws (default: 0)"
    )
    walk = parser.add_argument_group("latent walk (an animation: --out NAME.gif or .mp4)")
    walk.add_argument(
        "--walk",
        action="store_true",
        help="animate a walk round a great circle of z (with --label all: through the classes)",
    )
    walk.add_argument(
        "--frames", type=bounded_int(2, 1000), help="frames, 2 to 1,000 (default: 60)"
    )
    walk.add_argument(
        "--duration",
        type=bounded_float(0, 600),
        metavar="SECONDS",
        help="length of one loop in seconds (default: 4)",
    )
    parser.add_argument(
        "--per-z2",
        type=bounded_int(1, MAX_IMAGES),
        metavar="N",
        help="two latent layers: rows of N images that share one z2 ~ p(z2) and each redraw "
        "z1 ~ p(z1|z2)",
    )
    add_backend_flag(parser)
    return parser


def shared_top(z, per_row: int, model):
    """z (n, L1 + L2) = [eps1 | z2] with z2 repeated along each row of ``per_row`` images."""
    if not hasattr(model, "latent_dims"):
        raise UserError(
            "--per-z2 needs a run with two latent layers (--latent-dim L1,L2): leave it out "
            "for this run"
        )
    L1, first = model.latent_dims[0], np.arange(len(z)) // per_row * per_row
    z[:, L1:] = z[first, L1:]
    return z


def labels_for(label, n: int, num_classes: int):
    """``--label`` -> (labels for the n images or None, images per row or None)."""
    if label is None:
        if num_classes:
            raise UserError(
                f"this run is conditional: give --label K (0 to {num_classes - 1}) or --label all"
            )
        return None, None
    if not num_classes:
        raise UserError(
            "--label needs a conditional run (one trained with --conditional): leave it out "
            "for this run"
        )
    if label == "all":
        return np.repeat(np.arange(num_classes), n), n
    try:
        k = int(label)
    except ValueError:
        k = -1
    if not 0 <= k < num_classes:
        raise UserError(f"--label must be 0 to {num_classes - 1} or 'all', got {label!r}")
    return np.full(n, k), None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_pretrained:
        print(pretrained.listing())
        return 0
    if not args.walk and (args.frames or args.duration):  # would be ignored: say so
        raise UserError("--frames and --duration shape a walk: add --walk, or leave them out")
    ckpt = (
        pretrained.load_checkpoint(args.pretrained)
        if args.pretrained
        else checkpoint.load(args.run)
    )
    source = args.pretrained or ckpt.path.parent.name
    name = "walk.gif" if args.walk else "samples.png"
    out = Path(args.out) if args.out else Path(name) if args.pretrained else ckpt.path.parent / name
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name, such as {out / 'samples.png'}")
    if not out.parent.is_dir():  # said before any sampling is done
        raise UserError(
            f"cannot write {out} (there is no folder {out.parent}): choose an --out in a "
            "folder that exists and that you can write to"
        )
    refuse_run_file(out)  # a run's own pictures and files stay its own
    from tinyvae.tools import plots  # matplotlib takes a while to import: only once it is needed

    if args.walk:
        from tinyvae.tools import walk

        walk.check_output(out)  # .gif, or .mp4 with ffmpeg: said before any decoding
    else:
        plots.picture_format(out)  # a name matplotlib cannot write is said before any sampling
    model = checkpoint.build_model(ckpt, args.backend)
    if args.walk:
        return write_walk(args, model, image_shape(ckpt, model.input_dim), out, source)
    args.n = args.n or 64
    labels, per_row = labels_for(args.label, args.n, model.num_classes)
    count = args.n if labels is None else len(labels)
    if count > MAX_IMAGES:  # --label all: --n of each class
        raise UserError(
            f"--label all with --n {args.n} asks for {count:,} images ({model.num_classes} "
            f"classes), more than the {MAX_IMAGES:,} a picture may hold: give --n "
            f"{MAX_IMAGES // model.num_classes} or less"
        )
    z = np.random.default_rng(args.seed).standard_normal((count, model.latent_dim))  # (n, L)
    if args.per_z2:
        z, per_row = shared_top(z, args.per_z2, model), args.per_z2
    images = model.backend.to_host(model.decode(model.backend.asarray(z), labels))  # (n, D)

    shape = image_shape(ckpt, model.input_dim)
    ncols = min(args.ncols or per_row or math.ceil(math.sqrt(count)), count)
    what = (
        ""
        if labels is None
        else f", {args.n} of each class"
        if per_row
        else f" of class {labels[0]}"
    )
    if args.per_z2:
        what = f", each row one z2 and {args.per_z2} draws of z1"
    plots.save_grid(  # written atomically; a folder it cannot write in is a UserError
        out,
        images,
        shape,
        ncols=ncols,
        title=f"{count} samples{what} from {source}",
        row_labels=None if per_row is None or labels is None else list(range(model.num_classes)),
    )
    print(f"wrote {count} samples to {out}")
    return 0


def write_walk(args, model, shape, out, source) -> int:
    """``--walk``: decode the walk, write the animation, say how smooth it is."""
    from tinyvae.tools import walk

    n, frames, seconds = args.n or 16, args.frames or 60, args.duration or 4.0
    labels, per_row = labels_for(args.label, 1, model.num_classes)  # checks --label
    label = None if labels is None else "all" if per_row else int(labels[0])
    walk.check_size(frames, n)
    images = walk.walk_images(model, n, frames, args.seed, label)  # (F, n, D)
    pictures = walk.canvases(images, shape, min(args.ncols or math.ceil(math.sqrt(n)), n))
    walk.save_animation(out, pictures, seconds)
    largest, average = walk.smoothness(images)
    path = "through the classes" if label == "all" else "round a great circle"
    print(
        f"wrote a walk {path} from {source} to {out}: {frames} frames of {n} images, "
        f"{seconds:g} s, {out.stat().st_size / 1e6:.2f} MB"
    )
    print(
        f"smoothness: consecutive frames differ by {average:.4f} on average and at most "
        f"{largest:.4f} (mean |change| of a pixel in [0, 1])"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
