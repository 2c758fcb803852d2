"""Settings from the environment: GPU ids, slots."""

import pytest
from conftest import fake_nvidia_smi

from digits_engine import config


@pytest.fixture(autouse=True)
def fresh_detection():
    config._detected_gpus.cache_clear()
    yield
    config._detected_gpus.cache_clear()


def test_gpus_named_in_the_environment(monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", " 0, 2 ,")
    assert config.gpu_ids() == ["0", "2"]
    assert config.train_slots() == 2
    monkeypatch.setenv("DIGITS_GPUS", "none")
    assert config.gpu_ids() == []


def test_gpus_detected_with_nvidia_smi(monkeypatch, tmp_path):
    fake_nvidia_smi(tmp_path, monkeypatch, "0\\n1\\n")
    assert config.gpu_ids() == ["0", "1"]


def test_no_nvidia_smi_means_cpu_training(monkeypatch, tmp_path):
    monkeypatch.delenv("DIGITS_GPUS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here
    monkeypatch.setenv("DIGITS_TRAIN_SLOTS", "3")
    assert config.gpu_ids() == []
    assert config.train_slots() == 3


def test_bad_slot_count_says_what_to_do(monkeypatch):
    monkeypatch.delenv("DIGITS_GPUS", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("DIGITS_TRAIN_SLOTS", "two")
    with pytest.raises(ValueError, match="DIGITS_TRAIN_SLOTS='two' is not a whole number"):
        config.train_slots()
