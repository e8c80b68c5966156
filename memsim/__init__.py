"""memsim: simulate memory hierarchies and the accelerators that run LLM workloads.

>>> import memsim
>>> # result = memsim.simulate("h100_sxm", graph, fidelity="analytic")
>>> # result.summary()["tpot_s"]

``import memsim`` is light: no torch, stable-baselines3 or matplotlib, and
pandas only when a result is turned into a table. The simulator's modules load
on first use of :func:`simulate` and friends.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "simulate": "memsim.simulate",
    "make_plan": "memsim.simulate",
    "SimCache": "memsim.memo",
    "SimResult": "memsim.result",
    "Placement": "memsim.policies",
    "CapacityError": "memsim.policies",
    "make_policy": "memsim.policies",
    "policy_names": "memsim.policies",
    "POLICIES": "memsim.policies",
    "FastestFit": "memsim.policies",
    "StreamWeights": "memsim.policies",
    "KVOffload": "memsim.policies",
    "ActivationSwap": "memsim.policies",
    "Explicit": "memsim.policies",
    "FromFile": "memsim.policies",
}

if TYPE_CHECKING:
    from memsim.memo import SimCache
    from memsim.policies import (
        POLICIES,
        ActivationSwap,
        CapacityError,
        Explicit,
        FastestFit,
        FromFile,
        KVOffload,
        Placement,
        StreamWeights,
        make_policy,
        policy_names,
    )
    from memsim.result import SimResult
    from memsim.simulate import make_plan, simulate


class _Package(types.ModuleType):
    """``memsim`` itself: the function ``simulate`` keeps its name when the submodule
    ``memsim.simulate`` is imported (the import system would otherwise set the package
    attribute to the module). The submodule stays importable by its dotted name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "simulate" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memsim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "POLICIES",
    "ActivationSwap",
    "CapacityError",
    "Explicit",
    "FastestFit",
    "FromFile",
    "KVOffload",
    "Placement",
    "SimCache",
    "SimResult",
    "StreamWeights",
    "__version__",
    "make_plan",
    "make_policy",
    "policy_names",
    "simulate",
]
