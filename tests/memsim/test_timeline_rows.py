"""The timeline shows the tier ports and links each op uses, over the op's own span."""

from __future__ import annotations

import numpy as np

import workloads
from hw_models import load_system
from memsim import simulate


def test_timeline_has_a_channel_row_per_op_and_resource_it_moves_data_through() -> None:
    # KV cache in host DDR: decode's attention reads it over PCIe, so those ops must appear
    # on tier:ddr and link:pcie rows, and every op that touches HBM on the tier:hbm row.
    graph = workloads.generate(workloads.load_model("llama2_7b"), batch=1, prompt_len=32, gen_len=2)
    res = simulate(load_system("h100_sxm"), graph, policy="kv_offload", fidelity="analytic")
    tl = res.timeline_frame()
    ops = res.ops_frame()
    traffic = res.traffic_frame()
    for resource in ("tier:hbm", "tier:ddr", "link:pcie"):
        used = traffic[(traffic["resource"] == resource) & (traffic["op"] >= 0)]
        used = used[(used["bytes_read"] + used["bytes_written"]) > 0]
        assert len(used), resource
        rows = tl[(tl["resource"] == resource) & (tl["resource_kind"] == "channel")]
        want = ops.set_index("op").loc[used["op"], ["start_s", "end_s"]].to_numpy()
        got = rows[["start_s", "end_s"]].to_numpy()
        assert np.array_equal(np.sort(got, axis=0), np.sort(want, axis=0))
