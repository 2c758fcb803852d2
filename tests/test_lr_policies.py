"""DIGITS' learning-rate policies (percent of training), checked against numbers
worked out by hand from the formulas in digits-features.md 1(b), and the model
form's checks of their parameters."""
import pytest

from digits_engine import lr_policies, model_spec
from digits_engine.fields import FormErrors
from digits_engine.job_store import JobStore

PCTS = (0, 33, 50, 85, 100)

# lr = 1 and every parameter blank: DIGITS' defaults
DIGITS_DEFAULTS = {
    "fixed": (1, 1, 1, 1, 1),
    # step 33, gamma 0.1: floor(p/33) = 0, 1, 1, 2, 3
    "step": (1, 0.1, 0.1, 0.01, 0.001),
    # values 50,85, gamma 0.5: k = 0, 0, 1, 2, 2
    "multistep": (1, 1, 0.5, 0.25, 0.25),
    # 0.95 ^ p
    "exp": (1, 0.18402591023557582, 0.07694497527671315, 0.012779281874799289, 0.0059205292203339975),
    # (1 + 0.1 p) ^ -0.5 = 1, 4.3^-0.5, 6^-0.5, 9.5^-0.5, 11^-0.5
    "inv": (1, 0.4822428221704121, 0.408248290463863, 0.3244428422615251, 0.30151134457776363),
    # (1 - p/100) ^ 3 = 1, 0.67^3, 0.5^3, 0.15^3, 0
    "poly": (1, 0.300763, 0.125, 0.003375, 0),
    # 1 / (1 + exp(0.1 (p - 50))) = 1/(1+e^-5), 1/(1+e^-1.7), 1/2, 1/(1+e^3.5), 1/(1+e^5)
    "sigmoid": (0.9933071490757153, 0.8455347349164652, 0.5, 0.02931223075135632, 0.0066928509242848554),
}

# lr = 0.2 with explicit parameters
EXPLICIT = {
    "fixed": ({}, (0.2, 0.2, 0.2, 0.2, 0.2)),
    # floor(p/25) = 0, 1, 2, 3, 4
    "step": ({"lr_step_pct": 25, "lr_gamma": 0.5}, (0.2, 0.1, 0.05, 0.025, 0.0125)),
    # k = 0, 2 (10 and 33 reached), 2, 2, 3
    "multistep": ({"lr_multistep_values": "10,33,90", "lr_gamma": 0.1}, (0.2, 0.002, 0.002, 0.002, 0.0002)),
    # 0.2 * 0.99 ^ p
    "exp": ({"lr_gamma": 0.99}, (0.2, 0.143546106519655, 0.12100121342750728, 0.08511802467773093,
                                 0.07320646825464584)),
    # 0.2 / (1 + p)
    "inv": ({"lr_gamma": 1, "lr_power": 1}, (0.2, 0.2 / 34, 0.2 / 51, 0.2 / 86, 0.2 / 101)),
    # 0.2 * (1 - p/100)
    "poly": ({"lr_power": 1}, (0.2, 0.134, 0.1, 0.03, 0)),
    # 0.2 / (1 + exp(0.2 (p - 40)))
    "sigmoid": ({"lr_step_pct": 40, "lr_gamma": 0.2}, (0.19993292997390674, 0.16043677771171638,
                                                        0.023840584404423514, 2.4678915197246346e-05,
                                                        1.2288349204429436e-06)),
}


def test_every_digits_policy_is_there():
    assert tuple(lr_policies.POLICIES) == ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")
    assert tuple(f for f in model_spec.FIELDS if f.name == "lr_policy")[0].choices == tuple(lr_policies.POLICIES)


@pytest.mark.parametrize("policy", DIGITS_DEFAULTS)
def test_digits_defaults(policy):
    params = {"lr": 1.0, "lr_policy": policy}
    for pct, expected in zip(PCTS, DIGITS_DEFAULTS[policy]):
        assert lr_policies.learning_rate(params, pct) == pytest.approx(expected, rel=1e-9, abs=1e-15), pct


@pytest.mark.parametrize("policy", DIGITS_DEFAULTS)
def test_blank_params_are_the_policy_defaults(policy):
    # what the form stores when every box is left blank
    params = {"lr": 1.0, "lr_policy": policy, "lr_step_pct": None, "lr_gamma": None, "lr_power": None,
              "lr_multistep_values": ""}
    assert [lr_policies.learning_rate(params, p) for p in PCTS] == pytest.approx(DIGITS_DEFAULTS[policy])


@pytest.mark.parametrize("policy", EXPLICIT)
def test_explicit_params(policy):
    extra, expected = EXPLICIT[policy]
    params = {"lr": 0.2, "lr_policy": policy, **extra}
    for pct, value in zip(PCTS, expected):
        assert lr_policies.learning_rate(params, pct) == pytest.approx(value, rel=1e-9, abs=1e-15), pct


def test_blank_gamma_uses_each_policys_own_default():
    # the same blank gamma means 0.1 for step, 0.5 for multistep, 0.95 for exp
    assert lr_policies.learning_rate({"lr": 1, "lr_policy": "step", "lr_gamma": None}, 40) == pytest.approx(0.1)
    assert lr_policies.learning_rate({"lr": 1, "lr_policy": "multistep", "lr_gamma": None}, 60) == pytest.approx(0.5)
    assert lr_policies.learning_rate({"lr": 1, "lr_policy": "exp", "lr_gamma": None}, 1) == pytest.approx(0.95)
    assert lr_policies.settings({"lr_policy": "inv"}) == {"gamma": 0.1, "power": 0.5}
    assert lr_policies.settings({"lr_policy": "sigmoid", "lr_gamma": 0.3}) == {"step_pct": 50.0, "gamma": 0.3}


def test_multistep_counter_advances_when_progress_reaches_a_value():
    params = {"lr": 1.0, "lr_policy": "multistep", "lr_multistep_values": "20,60", "lr_gamma": 0.1}
    rate = lambda p: lr_policies.learning_rate(params, p)  # noqa: E731
    assert rate(19.999) == 1.0
    assert rate(20) == pytest.approx(0.1)  # p >= step value: advanced
    assert rate(59.9) == pytest.approx(0.1)
    assert rate(60) == pytest.approx(0.01)
    assert rate(100) == pytest.approx(0.01)
    # a value of 0 applies from the start; 100 only at the very end
    params["lr_multistep_values"] = "0,100"
    assert rate(0) == pytest.approx(0.1) and rate(99.99) == pytest.approx(0.1) and rate(100) == pytest.approx(0.01)
    # the policy function takes a list too
    assert lr_policies.multistep(1.0, 50, values=[25, 50], gamma=0.5) == pytest.approx(0.25)


def test_progress_outside_0_100_is_clamped():
    params = {"lr": 1.0, "lr_policy": "poly"}
    assert lr_policies.learning_rate(params, 120) == 0.0
    assert lr_policies.learning_rate(params, -5) == 1.0


def test_sigmoid_does_not_overflow():
    assert lr_policies.sigmoid(1.0, 100, step_pct=0, gamma=1000) == 0.0
    assert lr_policies.sigmoid(1.0, 0, step_pct=100, gamma=1000) == 1.0


def test_curve_for_the_preview_chart():
    points = lr_policies.curve({"lr": 0.1, "lr_policy": "step"})
    assert len(points) == 101
    assert points[0] == (0.0, pytest.approx(0.1)) and points[-1] == (100.0, pytest.approx(0.0001))
    assert points[33] == (33.0, pytest.approx(0.01)) and points[50][0] == 50.0
    few = lr_policies.curve({"lr": 2.0, "lr_policy": "poly", "lr_power": 2}, points=5)
    assert few == [(0.0, 2.0), (25.0, pytest.approx(1.125)), (50.0, pytest.approx(0.5)),
                   (75.0, pytest.approx(0.125)), (100.0, 0.0)]
    with pytest.raises(ValueError, match="at least 2 points"):
        lr_policies.curve({"lr": 1.0}, points=1)


@pytest.mark.parametrize("text,words", [
    ("85,50", "50 comes after 85"),  # wrong order
    ("50,50", "50 comes after 50"),  # twice
    ("50,abc", "'abc' is not a number"),
    ("50,101", "101 is not between 0 and 100"),
    ("-5", "-5 is not between 0 and 100"),
    (",", "got nothing"),
])
def test_parse_multistep_rejects_bad_text(text, words):
    with pytest.raises(ValueError, match="Multistep values") as info:
        lr_policies.parse_multistep(text)
    assert words in str(info.value) and "like 50,85" in str(info.value)


def test_parse_multistep_accepts_spaces_and_percent_signs():
    assert lr_policies.parse_multistep(" 10, 33.5 ,90% ") == (10.0, 33.5, 90.0)
    assert lr_policies.format_multistep("10 ,  33.50") == "10,33.5"


def test_unknown_policy():
    with pytest.raises(ValueError, match="fixed, step, multistep, exp, inv, poly, sigmoid"):
        lr_policies.get("cosine")


# ------------------------------------------------------------------ the model form

@pytest.fixture
def dataset_id(jobs_dir):
    return JobStore().create("dataset", "d", {}).id


def _check(dataset_id, **extra):
    return model_spec.check({"dataset": dataset_id, "name": "m", **extra}, JobStore())


def test_form_defaults_leave_each_policy_its_own(dataset_id):
    params = _check(dataset_id)
    assert params["lr_policy"] == "fixed"
    assert params["lr_gamma"] is None and params["lr_step_pct"] is None and params["lr_power"] is None
    assert params["lr_multistep_values"] == "50,85"
    params = _check(dataset_id, lr_policy="exp", lr_gamma="")
    assert params["lr_gamma"] is None
    assert lr_policies.learning_rate({**params, "lr": 1.0}, 1) == pytest.approx(0.95)


def test_form_normalizes_multistep_values(dataset_id):
    params = _check(dataset_id, lr_policy="Multistep", lr_multistep_values=" 10, 60.0 ")
    assert params["lr_policy"] == "multistep" and params["lr_multistep_values"] == "10,60"


@pytest.mark.parametrize("policy", ["multistep", "fixed"])  # bad text is refused whatever the policy
def test_form_rejects_bad_multistep_text(dataset_id, policy):
    with pytest.raises(FormErrors) as info:
        _check(dataset_id, lr_policy=policy, lr_multistep_values="85,50")
    assert set(info.value.errors) == {"lr_multistep_values"}
    assert "Multistep values" in info.value.errors["lr_multistep_values"]
    assert "increasing" in info.value.errors["lr_multistep_values"]


def test_form_checks_gamma_and_power_per_policy(dataset_id):
    with pytest.raises(FormErrors) as info:
        _check(dataset_id, lr_policy="step", lr_gamma="1.5", lr_step_pct="0")
    assert "between 0 and 1" in info.value.errors["lr_gamma"] and "step policy" in info.value.errors["lr_gamma"]
    assert "more than 0" in info.value.errors["lr_step_pct"]
    with pytest.raises(FormErrors) as info:
        _check(dataset_id, lr_policy="poly", lr_power="-1", lr_multistep_values="x")
    assert set(info.value.errors) == {"lr_power", "lr_multistep_values"}
    # a negative sigmoid gamma (a rising rate) and an inv gamma above 1 are fine
    assert _check(dataset_id, lr_policy="sigmoid", lr_gamma="-0.2")["lr_gamma"] == -0.2
    assert _check(dataset_id, lr_policy="inv", lr_gamma="2")["lr_gamma"] == 2.0


def test_form_solver_and_new_training_fields(dataset_id):
    params = _check(dataset_id)
    assert params["solver"] == "sgd" and params["weight_decay"] == 0.0 and params["batch_accumulation"] == 1
    params = _check(dataset_id, solver="AdamW", weight_decay="0.004", batch_accumulation="4")
    assert params["solver"] == "adamw" and params["weight_decay"] == 0.004 and params["batch_accumulation"] == 4
    with pytest.raises(FormErrors) as info:
        _check(dataset_id, solver="lbfgs", weight_decay="-1", batch_accumulation="0")
    errors = info.value.errors
    assert set(errors) == {"solver", "weight_decay", "batch_accumulation"}
    assert "sgd, nesterov, momentum, adagrad, rmsprop, adadelta, adam, adamw" in errors["solver"]
    new = {f.name: f for f in model_spec.FIELDS}
    assert all(new[name].advanced for name in ("weight_decay", "batch_accumulation", "lr_power",
                                                "lr_multistep_values", "lr_gamma", "lr_step_pct"))
