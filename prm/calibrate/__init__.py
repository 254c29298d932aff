"""`prm calibrate`: Platt scaling of a PRM's step probabilities on a calibration set (`core`), saved into a copy of
the checkpoint so every scorer reads calibrated scores (`command`)."""

from prm.calibrate.command import run
from prm.calibrate.config import CalibrateConfig

__all__ = ["CalibrateConfig", "run"]
