"""The training recipe: one commented dataclass, every field one command-line flag.

Every field of :class:`TrainConfig` is one flag (``latent_dim`` is ``--latent-dim``) and its
help text is the comment beside it (``tinyvae/tools/flags.py`` builds the parser from them).
The defaults are the PyTorch VAE example's recipe, so results compare directly: MNIST,
784-400-20-400-784, ReLU, a Bernoulli decoder on grey levels, Adam with lr 1e-3, batch 128,
10 epochs, seed 1.

    >>> config = check(TrainConfig(dataset="digits", hidden="64,32"))
    >>> config.hidden, config.lr
    ((64, 32), 0.001)

Every bad value raises a :class:`UserError` whose one-line message names the flag. The
choices of each flag are defined once, where their meaning lives, and imported here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from tinyvae.core.backend import BACKENDS
from tinyvae.core.distributions import LIKELIHOODS
from tinyvae.core.layers import ACTIVATIONS
from tinyvae.core.model import OBJECTIVES
from tinyvae.core.networks import ARCHS, INITS
from tinyvae.core.optim import OPTIMIZERS
from tinyvae.errors import UserError
from tinyvae.tools.data import AUGMENT_DEGREES, BINARIZE, NAMES, NOISES
from tinyvae.tools.sizes import parse_hidden, parse_latent, parse_sizes


def arg(default, help, choices=None, check=None, metavar=None, kind=None):
    """A dataclass field carrying its flag's help text, choices, range check and metavar.

    ``kind``: what the flag's text becomes (int, float or str); by default the type of
    ``default``, so only a field whose default is None needs to say it."""
    kind = kind or (str if default is None or isinstance(default, tuple) else type(default))
    meta = {"help": help, "choices": choices, "check": check, "metavar": metavar, "kind": kind}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # --- data ---
    dataset: str = arg("mnist", "data set to train on", NAMES)
    data_dir: str | None = arg(
        None, "folder of MNIST-format IDX files to use instead", metavar="DIR"
    )
    binarize: str = arg(
        "none",
        "none: grey levels; dynamic: fresh 0/1 pixels each epoch; threshold: pixel > 0.5",
        BINARIZE,
    )
    augment: bool = arg(
        False,
        "move each training image by up to 1/14 of its side, rounded down (2 pixels on "
        f"28x28, none on 8x8), and turn it by up to {AUGMENT_DEGREES:g} degrees, drawn afresh "
        "each epoch",
    )
    # --- model ---
    arch: str = arg(
        "mlp",
        "mlp: fully connected encoder and decoder; conv: convolutions (4x4, stride 2) that "
        "halve the image each, a linear layer to the code, and the mirror image to decode",
        ARCHS,
    )
    hidden: tuple = arg(
        (400,),
        "--arch mlp: hidden layer sizes, comma separated (400, or 512,256 for a "
        "deeper net); the decoder mirrors them",
        check="sizes",
        metavar="SIZES",
    )
    channels: tuple = arg(
        (32, 64),
        "--arch conv: channels of each convolution, comma separated (32,64: 28x28 images "
        "become 32 of 14x14, then 64 of 7x7); the decoder mirrors them",
        check="sizes",
        metavar="SIZES",
    )
    latent_dim: int | tuple = arg(
        20,
        "size of the latent code z; two sizes, bottom first (100,50), make two layers of "
        "latent variables, z1 below z2 (--arch mlp only)",
        check="latent",
        metavar="L or L1,L2",
        kind=str,
    )
    upper_hidden: tuple = arg(
        (100, 100),
        "two latent layers: hidden layer sizes between z1 and z2, comma separated; q(z2|z1) "
        "has them and p(z1|z2) mirrors them (--hidden is between x and z1)",
        check="sizes",
        metavar="SIZES",
    )
    activation: str = arg("relu", "nonlinearity between layers", tuple(ACTIVATIONS))
    likelihood: str = arg("bernoulli", "decoder distribution p(x|z)", LIKELIHOODS)
    gaussian_logvar: float | None = arg(
        None,
        "gaussian decoder: fixed log-variance of every pixel (omit to learn one per pixel)",
        check="finite",
        kind=float,
    )
    conditional: bool = arg(False, "condition encoder and decoder on the label (a CVAE)")
    init: str = arg(
        "pytorch",
        "initial weights: pytorch: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as "
        "torch.nn.Linear and so the example; he: He for hidden layers, Glorot for the last, zero biases",
        INITS,
    )
    # --- training ---
    epochs: int = arg(10, "passes over the training set", check="positive")
    batch_size: int = arg(128, "images per gradient step", check="positive")
    optimizer: str = arg("adam", "update rule", tuple(OPTIMIZERS))
    lr: float = arg(1e-3, "learning rate", check="positive")
    clip_norm: float | None = arg(
        None, "scale gradients down to at most this norm", check="positive", kind=float
    )
    beta: float = arg(1.0, "weight of the KL term (beta-VAE when > 1)", check="nonnegative")
    kl_warmup: float = arg(
        0.0, "epochs over which beta ramps linearly from 0 (per step)", check="nonnegative"
    )
    objective: str = arg("elbo", "elbo, or iwae: the importance-weighted bound", OBJECTIVES)
    samples: int = arg(
        1, "z samples per image in each step (K of the IWAE bound)", check="positive"
    )
    denoise: float = arg(
        0.0, "probability of corrupting each input pixel (denoising VAE)", check="probability"
    )
    noise: str = arg(
        "mask",
        "corruption for --denoise: mask (pixel -> 0) or salt-pepper (pixel -> 0 or 1)",
        NOISES,
    )
    # --- run ---
    backend: str = arg("numpy", "array library: numpy (CPU) or cupy (GPU)", BACKENDS)
    threads: int | None = arg(
        None,
        "threads for the matrix products (default: chosen when the run starts, from the "
        "CPUs free and the model's size; a resumed run keeps its count; more than the "
        "CPUs allowed are lowered to them)",
        check="threads",
        metavar="N",
        kind=int,
    )
    seed: int = arg(
        1, "seeds the weights, the batch order and every noise draw", check="nonnegative"
    )
    out: str | None = arg(None, "run folder (default: runs/<dataset>-<date>-<time>)", metavar="DIR")
    resume: bool = arg(False, "continue the run in --out from its checkpoint")
    no_progress: bool = arg(False, "hide the progress bar (the per-epoch lines stay)")
    progress_every: int = arg(
        20,
        "steps between progress-bar updates (each one reads the loss back from the GPU)",
        check="positive",
    )
    pictures_every: int = arg(
        0,
        "epochs between the samples/reconstructions pictures; 0: about ten per run "
        "(every epoch for up to 10 epochs). The last epoch always gets them",
        check="nonnegative",
        metavar="N",
    )
    checkpoint_every: int | None = arg(
        None,
        "also save the checkpoint every N steps within an epoch, so that a crash loses "
        "at most N steps (default: only at the end of each epoch)",
        check="positive",
        metavar="N",
        kind=int,
    )


# --- checks --------------------------------------------------------------------------------

MAX_THREADS = 4096  # beyond any machine's CPUs; a count above this process's CPUs is lowered
CHECKS = {  # name -> (test, what the message asks for; {} is "integer" or "number")
    "positive": (lambda v: v > 0, "a positive {}"),
    "nonnegative": (lambda v: v >= 0, "a non-negative {}"),
    "probability": (lambda v: 0 <= v < 1, "a {} in [0, 1)"),
    "finite": (lambda v: True, "a finite {}"),
    "threads": (lambda v: 0 < v <= MAX_THREADS, f"a positive {{}} of at most {MAX_THREADS}"),
}


def wanted(f) -> str:
    """What a numeric field accepts, in words: "a positive integer (default: 10)"."""
    kind = f.metadata["kind"]
    text = CHECKS[f.metadata["check"]][1].format("integer" if kind is int else "number")
    return text if f.default is None else f"{text} (default: {f.default})"


def flag(name: str) -> str:
    """``latent_dim`` -> ``--latent-dim``."""
    return "--" + name.replace("_", "-")


def check(config: TrainConfig) -> TrainConfig:
    """Raise a one-line :class:`UserError` for the first bad value in ``config``; return it."""
    for f in fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if value is None and f.default is None:
            continue
        kind = meta["kind"]
        if meta["check"] == "sizes":
            parse_sizes(value, flag(f.name))
        elif meta["check"] == "latent":
            config.latent_dim = parse_latent(value)
        elif isinstance(f.default, bool):
            if not isinstance(value, bool):
                raise UserError(f"{flag(f.name)} is a switch (True or False), got {value!r}")
        elif meta["choices"] is not None and value not in meta["choices"]:
            raise UserError(unknown_choice(flag(f.name), value, meta["choices"]))
        elif meta["check"] is not None:
            ok = CHECKS[meta["check"]][0]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            whole = kind is not int or isinstance(value, int)
            if not (number and whole and math.isfinite(value) and ok(value)):
                raise UserError(f"{flag(f.name)} must be {wanted(f)}; got {value!r}")
    config.hidden, config.channels = (
        parse_hidden(config.hidden),
        parse_sizes(config.channels, "--channels"),
    )
    config.upper_hidden = parse_sizes(config.upper_hidden, "--upper-hidden")
    if two_layers(config) and (config.arch != "mlp" or config.conditional):
        other = "--arch conv" if config.arch != "mlp" else "--conditional"
        raise UserError(
            f"--latent-dim {','.join(map(str, config.latent_dim))} (two latent layers) works "
            f"with --arch mlp only and without --conditional, and this run has {other}: give "
            "one latent size, or leave it out"
        )
    if config.gaussian_logvar is not None and config.likelihood != "gaussian":
        raise UserError("--gaussian-logvar applies only to --likelihood gaussian")
    if config.resume and not config.out:
        raise UserError("--resume needs --out DIR, the run folder to continue")
    return config


def check_arch_flags(config: TrainConfig, given) -> None:
    """``--channels`` shapes only a conv model and ``--hidden`` only an MLP: given for the
    other architecture, either would be ignored yet recorded, so it is refused."""
    for name, arch in (("channels", "conv"), ("hidden", "mlp")):
        if name in given and config.arch != arch:
            other = "hidden" if name == "channels" else "channels"
            raise UserError(
                f"--{name} applies only to --arch {arch}, and this run is --arch {config.arch}: "
                f"leave --{name} out (its layer sizes are --{other}), or add --arch {arch}"
            )


def two_layers(config) -> bool:
    """Whether ``config`` asks for two layers of latent variables (--latent-dim L1,L2)."""
    return isinstance(config.latent_dim, tuple)


def check_upper_hidden(config: TrainConfig, given) -> None:
    """``--upper-hidden`` shapes only a model with two latent layers: refused otherwise."""
    if "upper_hidden" in given and not two_layers(config):
        raise UserError(
            "--upper-hidden applies only to two latent layers (--latent-dim L1,L2, like "
            f"100,50), and this run has one, --latent-dim {config.latent_dim}: leave it out"
        )


def check_batch_size(config: TrainConfig, images: int, data: str) -> None:
    """A batch larger than the training set would make every epoch one step: refuse it."""
    if config.batch_size > images:
        raise UserError(
            f"--batch-size {config.batch_size} is more than the {images:,} training images of "
            f"{data}: an epoch would be one step; choose at most {images} (the default is 128)"
        )


def unknown_choice(name: str, value, choices) -> str:
    return f"unknown {name} {value!r}: choose one of {', '.join(choices)}"


def to_dict(config: TrainConfig) -> dict:
    """A JSON-able dict (what ``config.json`` holds)."""
    out = asdict(config)
    out["hidden"], out["channels"] = list(config.hidden), list(config.channels)
    out["upper_hidden"] = list(config.upper_hidden)
    if two_layers(config):
        out["latent_dim"] = list(config.latent_dim)
    return out


def from_dict(values: dict) -> TrainConfig:
    """The inverse of :func:`to_dict`; unknown keys are a UserError, missing ones take defaults."""
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(
            f"the saved recipe has unknown fields {', '.join(unknown)}: it was written by "
            "another version of tinyvae; use that version, or start a new run"
        )
    return check(TrainConfig(**values))
