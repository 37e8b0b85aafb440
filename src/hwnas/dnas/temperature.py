"""The Gumbel-softmax temperature schedule of FBNet: exponential decay per epoch.

    tau(epoch) = tau_0 * decay ** epoch,    tau_0 = 5.0,  decay = exp(-0.045) ~= 0.956

The values are the ``init_temperature 5.0`` / ``exp_anneal_rate np.exp(-0.045)`` of the public
FBNet reimplementations (the paper states the schedule, not every constant); after 90 epochs
tau ~= 0.087. A pure function of the epoch, so a resumed search needs no scheduler state.
"""

from __future__ import annotations

import math

from hwnas.errors import HwnasError

INITIAL_TEMPERATURE = 5.0
TEMPERATURE_DECAY = math.exp(-0.045)


def check_schedule(initial_temperature: float, temperature_decay: float) -> None:
    """Raise :class:`HwnasError` unless ``tau_0 > 0`` and ``0 < decay <= 1`` (both finite)."""
    if not _finite_number(initial_temperature) or initial_temperature <= 0:
        raise HwnasError(
            f"initial_temperature must be a positive number, got {initial_temperature!r}"
        )
    if not _finite_number(temperature_decay) or not 0 < temperature_decay <= 1:
        raise HwnasError(f"temperature_decay must be in (0, 1], got {temperature_decay!r}")


def temperature_at(
    epoch: int,
    *,
    initial_temperature: float = INITIAL_TEMPERATURE,
    temperature_decay: float = TEMPERATURE_DECAY,
) -> float:
    """The temperature used throughout epoch ``epoch`` (0-based): ``tau_0 * decay ** epoch``."""
    check_schedule(initial_temperature, temperature_decay)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise HwnasError(f"epoch must be a non-negative integer, got {epoch!r}")
    return initial_temperature * temperature_decay**epoch


def _finite_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
    )
