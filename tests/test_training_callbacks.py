"""The training callbacks' arithmetic: window means recovered from Keras' running epoch means."""
import pytest

from digits_engine.training.callbacks import WindowMeans


def running_means(values):
    total = 0.0
    for n, v in enumerate(values, start=1):
        total += v
        yield n, total / n


def test_window_means_recover_the_recent_batches():
    losses = [4.0, 2.0, 3.0, 1.0, 1.0, 0.5]
    means = dict(running_means(losses))
    window = WindowMeans()
    assert window.take(2, {"loss": means[2]}) == {"loss": pytest.approx(3.0)}
    assert window.take(4, {"loss": means[4]}) == {"loss": pytest.approx(2.0)}
    assert window.take(6, {"loss": means[6]}) == {"loss": pytest.approx(0.75)}


def test_window_means_restart_each_epoch():
    window = WindowMeans()
    window.take(3, {"loss": 5.0})
    window.reset()
    assert window.take(1, {"loss": 0.25}) == {"loss": pytest.approx(0.25)}
