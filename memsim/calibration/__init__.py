"""Fitting a system's efficiency parameters to microbenchmarks (``memsim calibrate``).

At the edge of the engine: reads measurements, fits with scipy least squares using
the cost functions of :mod:`memsim.cost`, and writes a system spec with an
``efficiency`` block (:mod:`hw_models.efficiency`). The engine never imports it.
"""

from memsim.calibration.fit import CalibrationFit, SectionFit, fit, predict
from memsim.calibration.measurements import Measurement, read_measurements
from memsim.calibration.model import Hardware, hardware_of
from memsim.calibration.preset import calibrate_system

__all__ = [
    "CalibrationFit",
    "Hardware",
    "Measurement",
    "SectionFit",
    "calibrate_system",
    "fit",
    "hardware_of",
    "predict",
    "read_measurements",
]
