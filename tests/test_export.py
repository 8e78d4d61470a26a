"""The decoder exported as JSON (tinyvae/tools/export.py) decodes like the model it came from.

The reference forward pass below reads only the JSON, as the website's explorer does in
JavaScript (docs/site/pages/explorer/explorer.js): h = z; h = h @ W + b, the activation between
layers, a sigmoid after the last one for a Bernoulli decoder.
"""

import json
import math

import numpy as np
import pytest

from tinyvae import VAE, UserError
from tinyvae.tools import checkpoint, export

ACTIVATE = {
    "relu": lambda h, d: np.maximum(h, 0),
    "leaky_relu": lambda h, d: np.where(h > 0, h, d["leaky_slope"] * h),
    "tanh": lambda h, d: np.tanh(h),
    "sigmoid": lambda h, d: 1 / (1 + np.exp(-h)),
}


def decode_from_json(exported: dict, z):
    """What explorer.js computes, in float64: z (B, L) -> (B, H*W)."""
    h = np.asarray(z, dtype=np.float64)
    layers = exported["layers"]
    for i, layer in enumerate(layers):
        h = h @ np.array(layer["W"]) + np.array(layer["b"])
        if i < len(layers) - 1:
            h = ACTIVATE[exported["activation"]](h, exported)
    return 1 / (1 + np.exp(-h)) if exported["likelihood"] == "bernoulli" else h


def trained_a_little(**kwargs):
    """A small model whose weights are not the initial ones (a few Adam steps on noise)."""
    import tinyvae

    model = VAE(64, hidden=(16, 12), latent_dim=2, seed=3, **kwargs)
    optimizer = tinyvae.Adam(model.flat, lr=1e-2)
    x = np.random.default_rng(0).random((32, 64), dtype=np.float32)
    for _ in range(5):
        model.loss_and_grads(x)
        optimizer.step()
    return model


@pytest.mark.parametrize(
    "activation, likelihood",
    [
        ("relu", "bernoulli"),
        ("leaky_relu", "bernoulli"),
        ("tanh", "gaussian"),
        ("sigmoid", "bernoulli"),
    ],
)
def test_the_json_decoder_decodes_as_the_model_does(activation, likelihood):
    model = trained_a_little(activation=activation, likelihood=likelihood)
    exported = json.loads(json.dumps(export.decoder_to_dict(model, (8, 8))))
    assert exported["format"] == "tinyvae-decoder" and exported["latent_dim"] == 2
    assert [np.shape(layer["W"]) for layer in exported["layers"]] == [(2, 12), (12, 16), (16, 64)]
    z = np.random.default_rng(1).standard_normal((50, 2)).astype(np.float32) * 2
    ours = decode_from_json(exported, z)
    theirs = model.decode(z).astype(np.float64)
    assert np.max(np.abs(ours - theirs)) < 1e-5  # float64 against the model's float32


def test_nine_digits_give_back_every_float32_weight_exactly():
    model = trained_a_little()
    exported = export.decoder_to_dict(model, (8, 8))
    for i, layer in enumerate(model.decoder.layers):
        for name in ("W", "b"):
            written = np.array(exported["layers"][i][name], dtype=np.float32)
            np.testing.assert_array_equal(written, layer.params[name])


def test_a_wrong_export_is_caught():
    """The check above is not blind: a transposed weight or a dropped bias is seen."""
    model = trained_a_little()
    exported = export.decoder_to_dict(model, (8, 8))
    z = np.zeros((1, 2), dtype=np.float32) + 0.7
    broken = json.loads(json.dumps(exported))
    broken["layers"][1]["b"] = [0.0] * 16
    assert np.max(np.abs(decode_from_json(broken, z) - model.decode(z))) > 1e-3
    with pytest.raises(ValueError):  # W (n_in, n_out) written the other way round
        broken["layers"][0]["W"] = np.array(exported["layers"][0]["W"]).T.tolist()
        decode_from_json(broken, z)


def test_codes_labels_and_refusals():
    model = trained_a_little()
    codes = np.array([[0.5, -1.25], [2.0, 0.0]], dtype=np.float32)
    exported = export.decoder_to_dict(model, (8, 8), codes, np.array([7, 1]))
    assert exported["codes"] == [[0.5, -1.25, 7], [2.0, 0.0, 1]]
    with pytest.raises(ValueError, match="8x9"):
        export.decoder_to_dict(model, (8, 9))
    conditional = VAE(64, hidden=(8,), latent_dim=2, num_classes=10)
    with pytest.raises(UserError, match="conditional"):
        export.decoder_to_dict(conditional, (8, 8))


def test_the_command_exports_a_run_with_its_test_codes(tmp_path, capsys):
    model = trained_a_little()
    checkpoint.save(
        tmp_path / "checkpoint.npz",
        model,
        state={"image_shape": [8, 8]},
        config={"dataset": "digits"},
    )
    out = tmp_path / "decoder.json"
    assert export.main(["--run", str(tmp_path), "--out", str(out), "--codes", "40"]) == 0
    assert "40 test codes" in capsys.readouterr().out
    exported = json.loads(out.read_text())
    assert out.stat().st_size < 20_000 and exported["image_shape"] == [8, 8]
    from tinyvae.tools.data import load

    test = load("digits")
    mu, _ = model.encode(test.test_x[:40])
    np.testing.assert_allclose([c[:2] for c in exported["codes"]], mu, rtol=1e-6, atol=1e-7)
    assert [c[2] for c in exported["codes"]] == test.test_y[:40].tolist()
    z = np.array([[math.pi, -1.0]], dtype=np.float32)
    assert np.max(np.abs(decode_from_json(exported, z) - model.decode(z))) < 1e-5


def test_the_command_says_what_is_wrong_in_one_line(tmp_path):
    from tinyvae.tools.cli import run

    assert (
        run(export.main, ["--run", str(tmp_path / "absent"), "--out", str(tmp_path / "d.json")])
        == 2
    )
    model = trained_a_little()
    checkpoint.save(tmp_path / "checkpoint.npz", model)
    assert run(export.main, ["--run", str(tmp_path), "--out", str(tmp_path / "no" / "d.json")]) == 2
