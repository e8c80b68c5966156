"""Pipeline schedules' activation memory (Qi et al., NeurIPS 2024).

"Pipeline Parallelism with Controllable Memory" (arXiv 2405.15362), Abstract: V-shape
building blocks "reduce the peak activation memory to 1/2 of 1F1B without
sacrificing efficiency, and even to 1/3 with comparable throughput". The case's
figure is the V-Half schedule's peak activation memory over 1F1B's, 0.5.

memsim cannot express it yet: :func:`workloads.train_step` orders pipeline work
only by 1F1B (:func:`workloads.training.one_f_one_b`), with one contiguous stage per
device; a V-shape schedule needs two model chunks per device (chunk ``d`` and chunk
``2p - 1 - d``) and the paper's building-block order. The row stays in the table,
failing, until the schedule option exists.
"""

from __future__ import annotations

import math

from validation.core import Outcome, case


@case(
    "pipeline_vhalf_activation_memory",
    title="V-Half pipeline schedule holds half of 1F1B's peak activation memory",
    source='Qi et al., "Pipeline Parallelism with Controllable Memory", NeurIPS 2024 '
    "(arXiv 2405.15362), Abstract",
    quantity="peak activation memory, V-Half / 1F1B",
    unit="x",
    paper=0.5,
    tolerance="exact",
    fitted="not run: memsim has no V-shape schedule",
)
def vhalf() -> Outcome:
    return Outcome(
        memsim=math.nan,
        note="not expressible: train_step builds only 1F1B with one contiguous stage per "
        "device; V-shape placement (two chunks per device) and the building-block order "
        "are missing",
    )
