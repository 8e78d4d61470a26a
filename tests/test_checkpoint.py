"""Checkpoints: exact round trips, atomic writes, and one-line errors for every bad file."""

import json
import os
import pickle

import numpy as np
import pytest

from tinyvae.core.model import VAE
from tinyvae.core.optim import SGD, Adam
from tinyvae.errors import UserError
from tinyvae.tools import checkpoint
from tinyvae.tools.checkpoint import CheckpointError, atomic_write, build_model, load, restore, save


def trained(hidden=(6,), optimizer=Adam, **kwargs):
    """A small model and optimizer after two steps, so every array holds something."""
    model = VAE(10, hidden=hidden, latent_dim=3, seed=0, **kwargs)
    opt = optimizer(model.flat, lr=1e-2)
    x = model.backend.asarray(np.random.default_rng(0).random((4, 10)))
    labels = np.array([0, 1, 2, 0]) if model.num_classes else None
    for _ in range(2):
        model.loss_and_grads(x, labels=labels)
        opt.step()
    return model, opt


@pytest.fixture
def saved(tmp_path):
    model, opt = trained()
    path = tmp_path / "checkpoint.npz"
    save(path, model, opt, state={"epoch": 2, "history": [{"epoch": 1}]}, config={"lr": 0.01})
    return path, model, opt


@pytest.mark.parametrize(
    "optimizer, kwargs",
    [(Adam, {}), (SGD, {}), (Adam, {"likelihood": "gaussian"}), (Adam, {"num_classes": 3})],
)
def test_round_trip_is_exact(tmp_path, optimizer, kwargs):
    model, opt = trained(optimizer=optimizer, **kwargs)
    save(tmp_path / "c.npz", model, opt, state={"epoch": 2})
    ckpt = load(tmp_path / "c.npz")
    again = build_model(ckpt)
    assert np.array_equal(again.flat.data, model.flat.data) and again.config == model.config
    fresh = optimizer(again.flat, lr=1e-2)
    restore(ckpt, again, fresh)
    for key, value in opt.state_dict().items():
        assert np.array_equal(fresh.state_dict()[key], value), key
    assert ckpt.state == {"epoch": 2}


def test_a_run_folder_names_its_checkpoint(saved):
    path, model, _ = saved
    assert np.array_equal(load(path.parent).arrays["params"], model.flat.data)


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, params=np.zeros(3), meta=np.array([{"format": "tinyvae-checkpoint"}]))
    with pytest.raises(CheckpointError, match="pickled objects"):
        load(path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"params": 1}))
    with pytest.raises(CheckpointError, match="not an .npz"):
        load(path)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_a_truncated_file_is_a_one_line_error(saved, keep):
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError) as info:
        load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_corrupt_bytes_inside_the_archive(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[200:260] = bytes(60)  # zeros over the params data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load(path)


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"weights": np.zeros(3)}, "no JSON 'meta'"),
        ({"meta": np.asarray(json.dumps({"format": "other"}))}, "format is not"),
        ({"meta": np.asarray("{not json")}, "damaged description"),
    ],
)
def test_foreign_archives_are_refused(tmp_path, arrays, words):
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(CheckpointError, match=words):
        load(tmp_path / "x.npz")


def test_wrong_sizes_inside_are_refused(saved, tmp_path):
    path = saved[0]
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["params"] = arrays["params"][:-1]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(CheckpointError, match="'params' should be"):
        load(tmp_path / "short.npz")


def test_a_different_architecture_is_refused(saved):
    ckpt = load(saved[0])
    other = VAE(10, hidden=(7,), latent_dim=3)
    with pytest.raises(CheckpointError, match="written for a 10-6-3 relu bernoulli model"):
        restore(ckpt, other)
    with pytest.raises(CheckpointError, match="holds adam state"):
        model = build_model(ckpt)
        restore(ckpt, model, SGD(model.flat))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load(tmp_path / "nothing.npz")


def test_atomic_write_keeps_the_old_file_when_writing_fails(saved):
    path = saved[0]
    before = path.read_bytes()

    def fail(f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["checkpoint.npz"]  # no temporary file left


def test_an_unwritable_place_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write in"):
        atomic_write(blocker / "checkpoint.npz", lambda f: None)


def test_the_description_is_plain_json(saved):
    with np.load(saved[0], allow_pickle=False) as stored:
        meta = json.loads(str(stored["meta"]))
    assert meta["format"] == checkpoint.FORMAT and meta["optimizer"] == {"name": "adam", "t": 2}
    assert meta["state"]["epoch"] == 2 and meta["config"] == {"lr": 0.01}


def as_version_1(path, hidden_layers):
    """Rewrite a checkpoint as version 1 wrote it: layers numbered with the activations
    counted (encoder.0, encoder.2, ...), the arrays unchanged."""
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    meta = json.loads(str(arrays["meta"][()]))
    old = {str(i): str(2 * i) for i in range(hidden_layers + 1)}
    meta["version"] = 1
    meta["param_shapes"] = [
        [".".join([n.split(".")[0], old[n.split(".")[1]], n.split(".")[2]]) if n.count(".") == 2
         else n, shape]
        for n, shape in meta["param_shapes"]
    ]  # fmt: skip
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez(path, **arrays)
    return meta


@pytest.mark.parametrize("kwargs", [{"hidden": (6, 5)}, {"hidden": (6,), "likelihood": "gaussian"}])
def test_a_version_1_checkpoint_is_converted_and_resumes_exactly(tmp_path, kwargs):
    model, opt = trained(**kwargs)
    path = tmp_path / "v1.npz"
    save(path, model, opt)
    meta = as_version_1(path, len(kwargs["hidden"]))
    assert "encoder.2.W" in dict(meta["param_shapes"]) and "encoder.1.W" not in dict(
        meta["param_shapes"]
    )
    ckpt = load(path)
    assert ckpt.meta["version"] == checkpoint.VERSION == 2
    assert [n for n, _ in ckpt.meta["param_shapes"]] == list(model.flat.shapes)
    again, opt_again = trained(**kwargs)
    restore(ckpt, again, opt_again)
    for name, p in model.parameters().items():
        np.testing.assert_array_equal(again.parameters()[name], p)
    x = model.backend.asarray(np.random.default_rng(1).random((4, 10)))
    for m, o in ((model, opt), (again, opt_again)):
        m.rng = m.backend.rng(3)
        m.loss_and_grads(x)
        o.step()
    np.testing.assert_array_equal(again.flat.data, model.flat.data)


def test_a_version_1_name_that_is_not_a_layer_number_is_kept_and_refused(tmp_path):
    model, opt = trained()
    path = tmp_path / "v1.npz"
    save(path, model, opt)
    meta = as_version_1(path, 1)
    meta["param_shapes"][0][0] = "encoder.².W"
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="written for a"):
        restore(load(path), trained()[0])


@pytest.mark.parametrize("seed", [2**63, 2**64 + 1, 10**30])
def test_a_model_of_any_seed_that_trains_can_be_read_back(tmp_path, seed):
    model = VAE(10, hidden=(6,), latent_dim=3, seed=seed)  # --seed takes any such number
    save(tmp_path / "c.npz", model)
    again = build_model(load(tmp_path / "c.npz"))
    assert again.config["seed"] == seed
    assert np.array_equal(again.flat.data, model.flat.data)
