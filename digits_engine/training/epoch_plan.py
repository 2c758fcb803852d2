"""How a training run's epochs map onto Keras epochs, so that validation and
snapshots can happen at fractions of an epoch (validation every 0.5 epochs).

Keras validates and calls on_epoch_end only at the end of its epochs, so when
an interval is a fraction, each real epoch (one pass over the training split,
`steps` batches) is cut into equal "sub-epochs" of `chunk` batches, a divisor
of `steps`, and fit() runs with steps_per_epoch=chunk on the repeated data.
Whole-epoch intervals keep chunk == steps: fit() runs exactly as without this.

Everything a person sees stays in real epochs: progress "epoch" values
(0.5, 1.0, ...), snapshot names (epoch_2.keras, epoch_2.5.keras), resume points.
"""
import math
from dataclasses import dataclass
from fractions import Fraction

MAX_PARTS = 64  # finest division of an epoch that an interval may ask for


@dataclass(frozen=True)
class EpochPlan:
    steps: int  # batches in one real epoch
    epochs: int  # real epochs asked for
    chunk: int  # batches in one Keras epoch; divides steps
    validation_interval: float = 1.0
    snapshot_interval: float = 1.0

    @classmethod
    def for_job(cls, params: dict, steps: int) -> "EpochPlan":
        steps = max(int(steps), 1)
        validation = float(params.get("validation_interval") or 1.0)
        snapshot = float(params.get("snapshot_interval") or 1.0)
        parts = math.lcm(_parts(validation), _parts(snapshot))
        return cls(steps, int(params["epochs"]), _chunk(steps, parts), validation, snapshot)

    @property
    def sub_epochs(self) -> bool:
        """Whether Keras epochs are shorter than real ones (fit needs steps_per_epoch and repeated data)."""
        return self.chunk < self.steps

    @property
    def keras_epochs(self) -> int:
        return self.epochs * self.steps // self.chunk

    def first_step(self, keras_epoch: int) -> int:
        return keras_epoch * self.chunk

    def end_step(self, keras_epoch: int) -> int:
        return (keras_epoch + 1) * self.chunk

    def epoch_at(self, step: int) -> float | int:
        """The real epoch reached after `step` batches: an int when whole, else rounded to 4 decimals."""
        return epoch_label(step / self.steps)

    def end_epoch(self, keras_epoch: int) -> float | int:
        return self.epoch_at(self.end_step(keras_epoch))

    def ends_real_epoch(self, keras_epoch: int) -> bool:
        return self.end_step(keras_epoch) % self.steps == 0

    def validates(self, keras_epoch: int) -> bool:
        """Validation at the first Keras epoch end at or past each multiple of the interval, and at the end."""
        return self._crosses(keras_epoch, self.validation_interval) or keras_epoch == self.keras_epochs - 1

    def snapshots(self, keras_epoch: int) -> bool:
        """A snapshot likewise: every interval, and always after the last epoch (the final model)."""
        return self._crosses(keras_epoch, self.snapshot_interval) or keras_epoch == self.keras_epochs - 1

    def validation_freq(self) -> int | list[int]:
        """fit()'s validation_freq: the 1-based Keras epochs that validate."""
        every = [k + 1 for k in range(self.keras_epochs) if self.validates(k)]
        return 1 if len(every) == self.keras_epochs else every

    def keras_epoch_of(self, epoch: float) -> int:
        """The Keras epoch a run resumed after real epoch `epoch` (a snapshot's) starts at."""
        return round(epoch * self.steps / self.chunk)

    def validations_in(self, epochs: float) -> int:
        """About how many validations happen in `epochs` real epochs (early stopping's patience)."""
        return max(1, math.ceil(epochs / self.validation_interval - 1e-9))

    def _crosses(self, keras_epoch: int, interval: float) -> bool:
        start, end = self.first_step(keras_epoch) / self.steps, self.end_step(keras_epoch) / self.steps
        return math.floor(end / interval + 1e-9) > math.floor(start / interval + 1e-9)


def epoch_label(epoch: float) -> float | int:
    """2.0 -> 2, 2.50001 -> 2.5: how epochs are written in progress.jsonl and snapshot names."""
    rounded = round(epoch, 4)
    return int(rounded) if rounded == int(rounded) else rounded


def _parts(interval: float) -> int:
    """Into how many equal parts an epoch must be cut for `interval` to fall on part ends (0.5 -> 2)."""
    return Fraction(interval).limit_denominator(MAX_PARTS).denominator


def _chunk(steps: int, parts: int) -> int:
    """The largest divisor of `steps` no longer than steps / parts (every part ends on a batch)."""
    if parts <= 1:
        return steps
    longest = max(steps // parts, 1)
    return max(d for d in range(1, longest + 1) if steps % d == 0)
