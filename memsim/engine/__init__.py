"""The discrete-event engine (simpy): processor-sharing channels, capacity pools,
DMA engines and the executor. One :class:`simpy.Environment` per simulation and
no module-level state, so simulations interleaved in one process do not interact.
"""

from memsim.engine.channel import Fabric, Flow, max_min_fair
from memsim.engine.executor import schedule_event
from memsim.engine.pool import Pool

__all__ = ["Fabric", "Flow", "Pool", "max_min_fair", "schedule_event"]
