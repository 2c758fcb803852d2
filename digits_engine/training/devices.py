"""The tf.distribute strategy a model job's worker trains with, on the devices it may use.

The scheduler sets CUDA_VISIBLE_DEVICES to the job's GPUs, so what TensorFlow sees
is what the job may use: several GPUs train mirrored (MirroredStrategy: the batch
is split across them, the gradients summed), one GPU or the CPU with the default
strategy. `DIGITS_CPU_DEVICES=N` (config.cpu_devices) splits the CPU into N logical
devices and mirrors across them, to exercise the multi-device path without GPUs.
"""
import tensorflow as tf

from .. import config
from ..errors import DigitsError


def strategy() -> tf.distribute.Strategy:
    """The strategy for this process; call it before TensorFlow runs anything (the CPU split needs that)."""
    gpus = tf.config.list_physical_devices("GPU")  # physical: listing logical devices would initialise TF
    if len(gpus) > 1:
        return _mirrored([f"/gpu:{i}" for i in range(len(gpus))])
    if not gpus and config.cpu_devices() > 1:
        return _mirrored(_split_cpu(config.cpu_devices()))
    print(f"devices: default strategy on {'/gpu:0' if gpus else '/cpu:0'}", flush=True)
    return tf.distribute.get_strategy()


def _split_cpu(count: int) -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as exc:  # TensorFlow was already initialised in this process
        raise DigitsError(f"DIGITS_CPU_DEVICES={count} could not split the CPU: {exc}") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def _mirrored(devices: list[str]) -> tf.distribute.MirroredStrategy:
    print(f"devices: MirroredStrategy over {len(devices)} devices: {', '.join(devices)}", flush=True)
    return tf.distribute.MirroredStrategy(devices=devices)
