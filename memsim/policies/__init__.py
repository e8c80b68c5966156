"""Placement and offload policies, registered by name.

>>> from memsim.policies import make_policy, policy_names
>>> policy_names()
['activation_swap', 'explicit', 'fastest_fit', 'flash_ffn', 'flash_ffn_bundled', 'flexgen',
 'from_file', 'kv_offload', 'plan', 'stream_weights']
>>> policy = make_policy("stream_weights", prefetch_depth=2)
"""

from memsim.policies.base import (
    POLICIES,
    CapacityError,
    Placement,
    Policy,
    check_capacity,
    graph_tp,
    make_policy,
    placeable_tiers,
    policy_names,
)
from memsim.policies.builtin import (
    ActivationSwap,
    Explicit,
    FastestFit,
    FromFile,
    KVOffload,
    PlanFile,
    StreamWeights,
    read_placement_file,
)
from memsim.policies.flash_ffn import FlashFFN
from memsim.policies.flexgen import FlexGenPolicy, parse_flexgen_spec

__all__ = [
    "POLICIES",
    "ActivationSwap",
    "CapacityError",
    "Explicit",
    "FastestFit",
    "FlashFFN",
    "FlexGenPolicy",
    "FromFile",
    "KVOffload",
    "Placement",
    "PlanFile",
    "Policy",
    "StreamWeights",
    "check_capacity",
    "graph_tp",
    "make_policy",
    "parse_flexgen_spec",
    "placeable_tiers",
    "policy_names",
    "read_placement_file",
]
