"""The command-line flags: a parser whose errors are one line, and the flag types.

    parser = Parser(prog="python -m tinyvae.sample")
    parser.add_argument("--n", type=bounded_int(1, MAX_IMAGES), default=64)

``build_parser`` makes ``tinyvae.train``'s parser from :class:`TrainConfig`'s fields, one
flag each, with their help, defaults and checks; :func:`given_args` returns only the flags
a command line gave.
"""

from __future__ import annotations

import argparse
import difflib
import re
from dataclasses import fields

from tinyvae.core.backend import BACKENDS
from tinyvae.errors import UserError
from tinyvae.tools.config import CHECKS, TrainConfig, check, flag, unknown_choice, wanted

#: The most images one call of sample makes, and so what a picture can hold: a size that
#: cannot work is refused before anything is allocated.
MAX_IMAGES = 10_000


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UserErrors: one line, status 2, no usage dump.

    A flag's own converter (see :func:`converter`) explains a bad value in full, as
    ``--epochs must be ...``; argparse would prefix it with "argument --epochs: ".
    A shortened flag is not taken for the whole one (``--epoch`` is a typo: "did you mean
    --epochs?"), so that a flag added later cannot change what an old command line meant.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        own = re.fullmatch(r"argument (--[\w-]+)(?:/\S+)?: (.*)", message, re.DOTALL)
        if own:  # "argument --n: must be ..." -> "--n must be ...", complete as it is
            name, rest = own.groups()
            if rest.startswith((name + " ", f"unknown {name} ")):
                raise UserError(rest)
            if rest.startswith("must be"):
                raise UserError(f"{name} {rest}")
        missing = re.fullmatch(r"argument (--[\w-]+)(?:/\S+)?: expected one argument", message)
        if missing:  # "--gaussian-logvar -1e3": argparse took the value for a flag
            name = missing.group(1)
            message += f"; a value that starts with '-' is written {name}=VALUE"
        unknown = re.fullmatch(r"unrecognized arguments: (.*)", message, re.DOTALL)
        if unknown:  # a typo? "--epocs" -> "did you mean --epochs?"
            options = [o for o in self._option_string_actions if o.startswith("--")]
            typed = [w.split("=")[0] for w in unknown.group(1).split() if w.startswith("--")]
            close = [m for w in typed for m in difflib.get_close_matches(w, options, 1, 0.75)]
            if close:
                message += f": did you mean {' or '.join(close)}?"
        raise UserError(f"{message} (see --help)")


def add_backend_flag(parser) -> None:
    """``--backend numpy|cupy`` for the tools that read a run (sample, evaluate)."""
    parser.add_argument(
        "--backend",
        type=converter("--backend", choices=BACKENDS),
        default="numpy",
        metavar="{" + ",".join(BACKENDS) + "}",
        help="array library: numpy (CPU) or cupy (a GPU; needs CuPy) (default: numpy)",
    )


def converter(name: str, kind=str, choices=None, wanted=None):
    """An argparse ``type`` for flag ``name``: text -> ``kind``, or a message naming the flag."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be {wanted or 'a ' + kind.__name__}; got {text!r}"
            ) from None
        if choices is not None and value not in choices:
            raise argparse.ArgumentTypeError(unknown_choice(name, value, choices))
        return value

    convert.__name__ = kind.__name__  # what argparse calls the type in its own messages
    return convert


DESCRIPTION = """Train a variational autoencoder and write its run folder: config.json,
metrics.jsonl, checkpoint.npz and pictures. The defaults are the PyTorch VAE example's
recipe (MNIST, 784-400-20-400-784, ReLU, Bernoulli decoder, Adam 1e-3, batch 128, 10 epochs).
Losses are the negative ELBO in nats per image."""
EXAMPLES = """examples:
  python -m tinyvae.train --dataset digits --epochs 20 --out runs/digits
  python -m tinyvae.train --dataset fashion-mnist --latent-dim 2 --out runs/fm2d
  python -m tinyvae.train --dataset fashion-mnist --arch conv --out runs/fm-conv
  python -m tinyvae.train --out runs/digits --resume --epochs 40"""


def positive_int(text: str) -> int:
    """An argparse type for the other tools' flags: a whole number >= 1."""
    return _whole(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """An argparse type for the other tools' flags: a whole number >= 0 (a seed)."""
    return _whole(text, 0, "a non-negative integer")


def bounded_int(least: int, most: int):
    """An argparse type: a whole number from ``least`` to ``most``, as ``--n`` (1 to 10,000)."""
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
        least, f"an integer of at least {least}"
    )
    wanted = f"{kind}, at most {most:,}"

    def convert(text: str) -> int:
        value = _whole(text, least, wanted)
        if value > most:
            raise argparse.ArgumentTypeError(f"must be {wanted}; got {text!r}")
        return value

    convert.__name__ = "int"
    return convert


def bounded_float(least: float, most: float):
    """An argparse type: a number above ``least`` and at most ``most`` (``--duration``)."""
    wanted = f"a number above {least:g} and at most {most:g}"

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = least
        if not least < value <= most:  # NaN fails too
            raise argparse.ArgumentTypeError(f"must be {wanted}; got {text!r}")
        return value

    convert.__name__ = "float"
    return convert


def _whole(text: str, least: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {wanted}; got {text!r}")
    return value


SECTIONS = {"dataset": "data", "arch": "model", "epochs": "training", "backend": "run"}


def build_parser(prog="python -m tinyvae.train") -> Parser:
    """The ``tinyvae.train`` parser: one flag per field, grouped as the dataclass is."""
    parser = Parser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    group = parser
    for f in fields(TrainConfig):
        if f.name in SECTIONS:
            group = parser.add_argument_group(SECTIONS[f.name])
        meta, default = f.metadata, f.default
        if isinstance(default, bool):
            group.add_argument(flag(f.name), action="store_true", help=meta["help"])
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        kind, choices = meta["kind"], meta["choices"]
        help_text = meta["help"] + ("" if default is None else f" (default: {shown})")
        metavar = meta["metavar"] or (
            "{" + ",".join(choices) + "}" if choices else "N" if kind is int else "X"
        )
        needs = wanted(f) if meta["check"] in CHECKS else None
        convert = converter(flag(f.name), kind, choices, needs)
        group.add_argument(flag(f.name), type=convert, help=help_text, metavar=metavar)
    return parser


def parse_args(argv=None) -> TrainConfig:
    """Command-line arguments -> a checked :class:`TrainConfig`."""
    return check(TrainConfig(**given_args(argv)))


def given_args(argv=None) -> dict:
    """Only the flags present on the command line, as ``{field name: value}``."""
    return vars(build_parser().parse_args(argv))
