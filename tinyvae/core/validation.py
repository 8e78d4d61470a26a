"""Checks on what users pass to a model's methods: each failure names the argument and the fix.

(What builds a model is checked once, by ``networks.check_architecture``.)
"""

from __future__ import annotations


def check_noise(eps, shape):
    """eps of shape (K, B, L) = ``shape``, or (B, L) for K = 1 (returned as (1, B, L))."""
    if eps.shape == shape[1:]:
        eps = eps[None]
    if eps.shape != shape:
        raise ValueError(f"eps must have shape {shape} (samples, batch, latent), got {eps.shape}")
    return eps


def check_call(model, x, labels, x_input=None, objective="elbo", objectives=("elbo",)):
    """Everything a model's method is given, checked in one place; returns the labels on
    the model's backend (None for a model that is not conditional)."""
    if objective not in objectives:
        raise ValueError(f"unknown objective {objective!r}: choose one of {', '.join(objectives)}")
    check_input(model, x, "x")
    if x_input is not None:
        check_input(model, x_input, "x_input")
    return check_labels(model, labels, len(x))


def check_latent(model, z, labels):
    """z (B, L) for the decoder, as an array of the model's dtype, and its labels."""
    z = model.xp.asarray(z, dtype=model.dtype)
    if z.ndim != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"z must have shape (batch, {model.latent_dim}), got {z.shape}")
    return z, check_labels(model, labels, len(z))


def check_input(model, x, name: str = "x") -> None:
    """x must be a (B, D) floating array on the model's backend, finite, and in [0, 1]
    for a Bernoulli likelihood. Raises TypeError or ValueError naming ``name``."""
    if not model.backend.owns(x):
        raise TypeError(
            f"{name} must be a {model.backend.name} array (this model's backend); "
            f"got {type(x).__module__}.{type(x).__name__}: convert it with model.backend.asarray({name})"
        )
    if x.dtype != model.dtype:
        scale = " / 255 (grey levels 0..255 become [0, 1])" if x.dtype.kind in "iu" else ""
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model uses {model.dtype}: "
            f"convert it with {name}.astype('{model.dtype}'){scale}"
        )
    if x.ndim != 2 or x.shape[1] != model.input_dim:
        hint = (
            f": one image? use {name}.reshape(1, -1)"
            if x.size == model.input_dim
            else f": flatten the images with {name}.reshape(len({name}), -1)"
            if x.ndim > 2 and x.size == len(x) * model.input_dim
            else f"; this model takes {model.input_dim} pixels per image"
        )
        raise ValueError(
            f"{name} must have shape (batch, {model.input_dim}), got {tuple(x.shape)}{hint}"
        )
    xp = model.xp
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values: clean or drop those examples")
    if model.likelihood == "bernoulli" and x.size and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(
            f"{name} has values outside [0, 1], which a Bernoulli likelihood cannot "
            f"score: scale the data to [0, 1] or use likelihood='gaussian'"
        )


def check_labels(model, labels, n: int):
    """Labels are required (n ints in [0, num_classes)) for a conditional model, else ignored."""
    if not model.num_classes:
        return None
    if labels is None:
        raise ValueError(
            f"labels is required: this model is conditional on {model.num_classes} classes"
        )
    labels = model.xp.asarray(labels)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be {n} integers, one per example; got shape {labels.shape}, "
            f"dtype {labels.dtype}"
        )
    if n and (int(labels.min()) < 0 or int(labels.max()) >= model.num_classes):
        raise ValueError(f"labels must lie in [0, {model.num_classes}); got values outside it")
    return labels
