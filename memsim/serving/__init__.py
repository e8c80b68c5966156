"""Request-level serving: arrivals, schedulers, a KV block manager and an iteration loop.

>>> from memsim.serving import ServeConfig, make_requests, serve
>>> reqs = make_requests(arrival="poisson:4", requests=100, prompt_len="fixed:512",
...                      output_len="fixed:128", seed=0)
>>> # result = serve("h100_sxm", "llama2_7b", reqs, config=ServeConfig(scheduler="chunked"))
>>> # result.summary()["ttft_p99_s"]

Three roles stay apart (CONVENTIONS §13): the arrival process makes requests
(:mod:`~memsim.serving.requests`), the scheduler decides each iteration's batch
(:mod:`~memsim.serving.scheduler`), the block manager alone owns KV memory
(:mod:`~memsim.serving.kv`). Each iteration is priced by :func:`memsim.simulate`
on a graph from :func:`workloads.batch_step` (:mod:`~memsim.serving.iteration`).
See docs/serving.md.
"""

from memsim.serving.engine import KVPlan, ServeConfig, plan_kv, serve
from memsim.serving.iteration import Bucketing, IterationCost
from memsim.serving.kv import (
    BLOCK_MANAGERS,
    BlockManager,
    ContiguousBlockManager,
    KVGeometry,
    PagedBlockManager,
    make_block_manager,
)
from memsim.serving.requests import ARRIVALS, LENGTHS, Requests, make_requests, read_trace
from memsim.serving.result import SUMMARY_KEYS, ServeResult
from memsim.serving.scheduler import SCHEDULERS, Budget, Scheduler, make_scheduler

__all__ = [
    "ARRIVALS",
    "BLOCK_MANAGERS",
    "LENGTHS",
    "SCHEDULERS",
    "SUMMARY_KEYS",
    "BlockManager",
    "Bucketing",
    "Budget",
    "ContiguousBlockManager",
    "IterationCost",
    "KVGeometry",
    "KVPlan",
    "PagedBlockManager",
    "Requests",
    "Scheduler",
    "ServeConfig",
    "ServeResult",
    "make_block_manager",
    "make_requests",
    "make_scheduler",
    "plan_kv",
    "read_trace",
    "serve",
]
