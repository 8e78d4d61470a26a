"""What every command-line tool shares: one-line errors, exit codes, Ctrl-C, and the parsers.

    if __name__ == "__main__":
        sys.exit(run(main))

A :class:`UserError` (bad flag, missing file, diverged training ...) prints
``error: <message>`` as one line on stderr and exits with status 2, without a traceback.
So does running out of memory, which a size that is too large for this machine causes
(``--hidden 100000``, ``--n 10000000000``), and a size no array can have at all. Ctrl-C
exits with status 130. Any other exception is a bug and keeps its traceback.

When the program reading a tool's output goes away (``python -m tinyvae.train ... | head -3``),
the tool carries on with its work and writes nothing more to that stream: a training run
still finishes its epochs and its run folder, and exits as it would have.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import signal
import sys
import threading
from dataclasses import fields

from tinyvae.core.backend import BACKENDS
from tinyvae.errors import UserError
from tinyvae.tools.config import CHECKS, TrainConfig, check, flag, unknown_choice, wanted

USER_ERROR, INTERRUPTED = 2, 130
#: What NumPy says of a size no array can have (--hidden 9223372036854775808): too big, too.
TOO_BIG = re.compile(r"Maximum allowed (dimension|size) exceeded|array is too big")


def run(main, argv=None) -> int:
    """Call ``main(argv)`` and turn its outcome into an exit status."""
    with output_may_close():
        try:
            return int(main(argv) or 0)
        except UserError as error:
            return report(str(error))
        except (MemoryError, ValueError) as error:
            if isinstance(error, ValueError) and not TOO_BIG.search(str(error)):
                raise  # any other ValueError is a bug
            return report(
                f"out of memory ({error or 'no detail'}): ask for less, such as a smaller "
                "--hidden, --latent-dim, --batch-size, --samples, --n or --k"
            )
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return INTERRUPTED


class Closable:
    """A text stream (stdout, stderr) that, once its reader has gone, drops what it is given.

    Writing into a pipe whose reader has exited raises BrokenPipeError. From then on the
    stream's file descriptor points at os.devnull (so that Python's own flush at exit
    succeeds too) and every later write is dropped."""

    def __init__(self, stream):
        self.stream, self.closed_by_reader = stream, False

    def _reader_gone(self):
        self.closed_by_reader = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def write(self, text):
        if not self.closed_by_reader:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self):
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def __getattr__(self, name):  # isatty, encoding, fileno ...: the stream's own
        return getattr(self.stream, name)


@contextlib.contextmanager
def output_may_close():
    """Within this block, stdout and stderr survive their reader going away (see Closable)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (s if s is None else Closable(s) for s in saved)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        sys.stdout, sys.stderr = saved


def report(message: str) -> int:
    """Print ``error: message`` as one line on stderr; return the user-error status."""
    message = " ".join(message.split())  # one line, whatever the message held
    print(f"error: {message}", file=sys.stderr)
    return USER_ERROR


@contextlib.contextmanager
def ctrl_c_stops_gently(notice="stopping after this step (press Ctrl-C again to quit at once)"):
    """Within this block, the first Ctrl-C only sets a flag; yields ``stop() -> bool``.

    The training loop checks ``stop()`` after every step and then saves a consistent
    checkpoint. A second Ctrl-C raises KeyboardInterrupt as usual. (Signals can only be
    caught in the main thread; elsewhere ``stop()`` is always False.)
    """
    requested = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        requested.append(signum)
        signal.signal(signal.SIGINT, previous)  # the next Ctrl-C interrupts at once
        print(f"\n{notice}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UserErrors: one line, status 2, no usage dump.

    A flag's own converter (see :func:`converter`) explains a bad value in full, as
    ``--epochs must be ...``; argparse would prefix it with "argument --epochs: ".
    """

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
