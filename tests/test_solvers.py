"""Each solver of the model form builds the Keras optimizer DIGITS' solver stood
for, with its hyperparameters, and trains."""
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from digits_engine import model_spec  # noqa: E402
from digits_engine.training import solvers  # noqa: E402

EXPECTED_CLASS = {
    "sgd": keras.optimizers.SGD, "nesterov": keras.optimizers.SGD, "momentum": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad, "rmsprop": keras.optimizers.RMSprop,
    "adadelta": keras.optimizers.Adadelta, "adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
}


def test_names_are_the_forms_choices():
    assert solvers.NAMES == model_spec.SOLVERS == tuple(EXPECTED_CLASS)
    field = next(f for f in model_spec.FIELDS if f.name == "solver")
    assert field.choices == solvers.NAMES and field.default == "sgd"
    assert set(field.choice_labels) == set(solvers.NAMES)


def test_the_form_does_not_import_keras():
    code = "import sys, digits_engine.model_spec; sys.exit('keras' in sys.modules or 'tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("name", EXPECTED_CLASS)
def test_each_solver_builds_with_defaults(name):
    opt = solvers.get(name, 0.05)
    assert type(opt) is EXPECTED_CLASS[name]
    assert float(opt.learning_rate) == pytest.approx(0.05)
    assert opt.gradient_accumulation_steps is None
    assert opt.weight_decay == (0.0 if name == "adamw" else None)


def test_solver_hyperparameters():
    for name in ("sgd", "momentum"):  # DIGITS' Caffe SGD: momentum 0.9
        opt = solvers.get(name, 0.01)
        assert opt.momentum == pytest.approx(0.9) and opt.nesterov is False
    opt = solvers.get("nesterov", 0.01)
    assert opt.momentum == pytest.approx(0.9) and opt.nesterov is True
    assert solvers.get("rmsprop", 0.01).rho == pytest.approx(0.99)  # DIGITS' rms_decay
    assert solvers.get("rmsprop", 0.01).momentum == 0.0  # no momentum, as Caffe
    assert solvers.get("adadelta", 0.01).rho == pytest.approx(0.95)


@pytest.mark.parametrize("name", EXPECTED_CLASS)
def test_weight_decay_and_accumulation(name):
    opt = solvers.get(name, 0.01, weight_decay=0.0005, accumulation=4)
    assert opt.weight_decay == pytest.approx(0.0005)
    assert opt.gradient_accumulation_steps == 4


def test_blank_weight_decay_and_accumulation_mean_none():
    # a job written before these fields existed has neither param: the trainer passes None
    opt = solvers.get("adam", 0.01, weight_decay=None, accumulation=None)
    assert opt.weight_decay is None and opt.gradient_accumulation_steps is None
    assert solvers.get("adamw", 0.01, weight_decay=None).weight_decay == 0.0
    assert type(solvers.get("ADAM", 0.01)) is keras.optimizers.Adam  # as the form's choice matching


def test_unknown_solver_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        solvers.get("lbfgs", 0.01)
    message = str(info.value)
    assert "'lbfgs'" in message and "sgd, nesterov, momentum, adagrad, rmsprop, adadelta, adam, adamw" in message


@pytest.mark.parametrize("kwargs,words", [
    ({"weight_decay": -0.1}, "Weight decay"), ({"accumulation": 0}, "Batch accumulation"),
    ({"accumulation": 1.5}, "Batch accumulation"), ({"lr": 0}, "learning rate"),
])
def test_bad_numbers_are_refused(kwargs, words):
    args = {"lr": 0.01, **kwargs}
    with pytest.raises(ValueError, match=words):
        solvers.get("sgd", args.pop("lr"), **args)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 8)).astype("float32"), rng.integers(0, 3, 16)


def _tiny_model(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("name", EXPECTED_CLASS)
def test_each_solver_trains_two_steps(name, data):
    x, y = data
    model = _tiny_model(solvers.get(name, 0.01, weight_decay=0.001, accumulation=2))
    before = [w.copy() for w in model.get_weights()]
    losses = [float(model.train_on_batch(x, y)) for _ in range(2)]
    after = model.get_weights()
    assert all(np.isfinite(loss) for loss in losses)
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))  # the accumulated update was applied
    assert int(model.optimizer.iterations) == 1  # 2 batches, 1 update: accumulation 2


def test_optimizer_survives_a_snapshot(tmp_path, data):
    # resume loads the optimizer (and its state) from a .keras snapshot
    x, y = data
    model = _tiny_model(solvers.get("nesterov", 0.02, weight_decay=0.001, accumulation=3))
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    opt = loaded.optimizer
    assert type(opt) is keras.optimizers.SGD and opt.nesterov is True and opt.momentum == pytest.approx(0.9)
    assert opt.gradient_accumulation_steps == 3 and opt.weight_decay == pytest.approx(0.001)
    assert float(opt.learning_rate) == pytest.approx(0.02)
