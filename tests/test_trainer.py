"""The training loop and its helpers: the config, the KL ramp, corruption, exact resumption."""

import dataclasses

import numpy as np
import pytest
from conftest import small_config, training_parts

from tinyvae.errors import Diverged, UserError
from tinyvae.tools import checkpoint
from tinyvae.tools.config import TrainConfig, check, parse_hidden
from tinyvae.tools.data import corrupt
from tinyvae.tools.evaluation import (
    active_units,
    evaluate_loss,
    posterior_means,
    prepare_test_set,
)
from tinyvae.tools.flags import build_parser, parse_args
from tinyvae.tools.training import beta_at, train_epoch

# --- the config ----------------------------------------------------------------------------


def test_defaults_are_the_pytorch_example_recipe():
    c = parse_args([])
    assert (c.dataset, c.hidden, c.latent_dim, c.activation, c.likelihood, c.binarize) == (
        "mnist",
        (400,),
        20,
        "relu",
        "bernoulli",
        "none",
    )
    assert (c.optimizer, c.lr, c.batch_size, c.epochs, c.seed, c.init) == (
        "adam",
        1e-3,
        128,
        10,
        1,
        "pytorch",
    )


def test_every_field_has_help_and_a_flag():
    help_text = build_parser().format_help()
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"], f.name
        assert "--" + f.name.replace("_", "-") in help_text


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--epochs", "ten"], "--epochs must be a positive integer (default: 10); got 'ten'"),
        (["--batch-size", "-5"], "--batch-size must be a positive integer"),
        (["--latent-dim", "2.5"], "--latent-dim must be a positive integer"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--lr", "nan"], "--lr must be a positive number"),
        (["--hidden", "400,,x"], "--hidden must be positive layer sizes"),
        (["--hidden", "0"], "--hidden must be positive layer sizes"),
        (["--likelihood", "poisson"], "unknown --likelihood 'poisson': choose one of bernoulli"),
        (["--denoise", "1.5"], "--denoise must be a number in [0, 1)"),
        (["--gaussian-logvar", "0"], "applies only to --likelihood gaussian"),
        (["--resume"], "--resume needs --out"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_values_are_one_line_user_errors(argv, words):
    with pytest.raises(UserError, match=None) as info:
        parse_args(argv)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_hidden_accepts_commas_and_sequences():
    assert parse_hidden("512, 256") == (512, 256)
    assert parse_hidden([64]) == (64,)
    assert check(TrainConfig(epochs=3, hidden=[8, 4])).hidden == (8, 4)
    with pytest.raises(UserError, match="--epochs"):
        check(TrainConfig(epochs=2.5))


# --- helpers -------------------------------------------------------------------------------


def test_kl_warmup_ramps_linearly_per_step():
    c = small_config(beta=2.0, kl_warmup=2)
    assert [beta_at(c, s, 10) for s in (0, 5, 10, 20, 50)] == [0.0, 0.5, 1.0, 2.0, 2.0]
    assert beta_at(small_config(beta=0.5), 0, 10) == 0.5


@pytest.mark.parametrize("kind", ["mask", "salt-pepper"])
def test_corrupt_changes_about_p_of_the_pixels_and_keeps_the_input(kind):
    x = np.full((200, 50), 0.5, dtype=np.float32)
    out = corrupt(x, 0.3, kind, np.random.default_rng(0))
    changed = out != 0.5
    assert abs(changed.mean() - 0.3) < 0.02 and (x == 0.5).all()
    assert set(np.unique(out[changed])) <= {0.0, 1.0}
    if kind == "salt-pepper":
        assert abs((out[changed] == 1).mean() - 0.5) < 0.05


def test_evaluate_loss_is_reproducible_and_leaves_training_noise_alone(digits):
    model, _, _ = training_parts(small_config(), digits)
    x = model.backend.asarray(digits.test_x)
    state = dict(model.rng.bit_generator.state)
    first, again = evaluate_loss(model, x, seed=3), evaluate_loss(model, x, seed=3)
    assert first == again and model.rng.bit_generator.state == state
    assert first["loss"] == pytest.approx(first["recon"] + first["kl"])


def test_active_units_counts_dimensions_whose_mean_varies(digits):
    model, _, _ = training_parts(small_config(latent_dim=6), digits)
    last = model.parameters()["encoder.1.W"]  # (32, 2L): the first L columns give mu
    last[:, :2] = 0  # mu_0 and mu_1 no longer depend on x
    x = model.backend.asarray(digits.test_x)
    mu = model.encode(x)[0]
    assert active_units(model, x) == int((mu.var(axis=0) > 0.01).sum()) <= 4


# --- training ------------------------------------------------------------------------------


def test_two_epochs_lower_the_loss(digits):
    config = small_config()
    model, optimizer, batches = training_parts(config, digits)
    first = train_epoch(model, optimizer, batches, config, 1)
    second = train_epoch(model, optimizer, batches, config, 2)
    assert first["finished"] and first["steps"] == len(batches) == 15
    assert second["train_loss"] < first["train_loss"]
    assert first["train_loss"] == pytest.approx(first["recon"] + first["kl"])


@pytest.mark.parametrize(
    "changes",
    [
        dict(),
        dict(conditional=True, denoise=0.2, noise="salt-pepper", objective="iwae", samples=3),
        dict(likelihood="gaussian", kl_warmup=1.5, clip_norm=5.0, optimizer="sgd", lr=1e-3),
    ],
)
def test_a_run_stopped_mid_epoch_resumes_bit_for_bit(digits, tmp_path, changes):
    config = small_config(**changes)
    straight, opt, batches = training_parts(config, digits)
    for epoch in (1, 2):
        expected = train_epoch(straight, opt, batches, config, epoch)

    model, opt, batches = training_parts(config, digits)
    train_epoch(model, opt, batches, config, 1)
    calls = iter(range(100))
    stopped = train_epoch(model, opt, batches, config, 2, should_stop=lambda: next(calls) == 5)
    assert not stopped["finished"] and stopped["steps"] == 6
    checkpoint.save(tmp_path / "c.npz", model, opt, {"sums": stopped["sums"]})

    fresh, opt, batches = training_parts(config, digits)  # a new process, as far as state goes
    saved = checkpoint.load(tmp_path / "c.npz")
    checkpoint.restore(saved, fresh, opt)
    result = train_epoch(fresh, opt, batches, config, 2, 6, saved.state["sums"])
    assert np.array_equal(fresh.flat.data, straight.flat.data)
    for key in ("train_loss", "objective", "recon", "kl", "beta"):
        assert result[key] == expected[key], key


def test_divergence_names_epoch_and_step(digits):
    config = small_config(optimizer="sgd", lr=1e12)
    model, optimizer, batches = training_parts(config, digits)
    with pytest.raises(Diverged, match=r"in epoch 1 by step \d+: the learning rate"):
        train_epoch(model, optimizer, batches, config, 1)


def test_pytorch_init_draws_uniform_weights_and_biases(digits):
    model, _, _ = training_parts(small_config(), digits)
    W, b = model.parameters()["encoder.0.W"], model.parameters()["encoder.0.b"]
    bound = 1 / np.sqrt(64)
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.95 * bound
    assert np.abs(b).max() <= bound and np.abs(b).min() > 0
    he, _, _ = training_parts(small_config(init="he"), digits)
    assert (he.parameters()["encoder.0.b"] == 0).all()


def test_cupy_trains_and_its_checkpoint_loads_on_numpy(gpu_backend, digits, tmp_path):
    config = small_config(backend="cupy", progress_every=5, conditional=True, denoise=0.1)
    model, optimizer, batches = training_parts(config, digits)
    first = train_epoch(model, optimizer, batches, config, 1)
    second = train_epoch(model, optimizer, batches, config, 2)
    assert second["train_loss"] < first["train_loss"]
    x, y = prepare_test_set(digits, config, model.backend)
    assert np.isfinite(evaluate_loss(model, x, y)["loss"])
    checkpoint.save(tmp_path / "c.npz", model, optimizer)
    on_cpu = checkpoint.build_model(checkpoint.load(tmp_path / "c.npz"), "numpy")
    assert np.array_equal(on_cpu.flat.data, model.backend.to_host(model.flat.data))
    # the same weights count the same active units on either backend; after two short epochs
    # no unit passes the usual 0.01, so count against the median variance: some do, some not
    host_x, host_y = prepare_test_set(digits, config, on_cpu.backend)
    median = float(np.median(posterior_means(on_cpu, host_x, host_y).var(axis=0)))
    counts = [
        active_units(m, a, b, median) for m, a, b in ((model, x, y), (on_cpu, host_x, host_y))
    ]
    assert counts[0] == counts[1] and 0 < counts[1] < config.latent_dim
