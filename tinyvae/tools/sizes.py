"""Layer sizes as the command line gives them: ``--hidden 512,256``, ``--channels 32,64``,
``--upper-hidden 100,100``, and ``--latent-dim 20`` (one latent layer) or ``100,50`` (two).

Each parser takes the flag's text (or the list a saved ``config.json`` holds) and returns
a tuple of positive ints, or raises a one-line :class:`UserError` naming the flag.
"""

from __future__ import annotations

from tinyvae.errors import UserError


def parse_hidden(text) -> tuple:
    """``"512,256"`` (or ``(512, 256)``) -> ``(512, 256)``; anything else is a UserError."""
    return parse_sizes(text, "--hidden")


def parse_latent(text):
    """``"20"`` or ``20`` -> 20 (one latent layer); ``"100,50"`` or ``[100, 50]`` -> (100, 50)
    (two, bottom first); anything else is a UserError."""
    parts = text.split(",") if isinstance(text, str) else [text] if isinstance(text, int) else text
    try:
        sizes = tuple(int(p.strip()) if isinstance(p, str) else p for p in parts)
    except (ValueError, TypeError):
        sizes = ()
    if not 1 <= len(sizes) <= 2 or any(type(s) is not int or s < 1 for s in sizes):
        raise UserError(
            "--latent-dim must be a positive integer, or two separated by a comma for two "
            f"layers of latent variables (like 100,50); got {text!r}"
        )
    return sizes[0] if len(sizes) == 1 else sizes


def parse_sizes(text, name: str) -> tuple:
    """``"32,64"`` (or ``(32, 64)``) -> ``(32, 64)`` for flag ``name``; else a UserError."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        sizes = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        example = {"--channels": "32 or 32,64", "--upper-hidden": "100 or 100,100"}.get(
            name, "400 or 512,256"
        )
        raise UserError(
            f"{name} must be positive layer sizes separated by commas, like {example}; got {text!r}"
        )
    return sizes
