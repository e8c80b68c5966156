"""Pipeline schedules: which device runs each model chunk, and in which order.

A training step with ``pp`` devices cuts the layers into ``C`` contiguous model
chunks (chunk ``c`` holds layers ``[c L / C, (c + 1) L / C)``). A micro-batch's
forward runs chunks ``0 .. C-1`` in turn, its backward ``C-1 .. 0``. A *unit* of
work is ``(kind, chunk, micro-batch)``: ``F`` a chunk's forward; ``B`` its backward
(with ``split`` schedules only the input-gradient half); ``W`` the weight-gradient
half of a split backward. Every schedule gives, per device, the order of its units:

* ``1f1b`` (Narayanan et al., SC 2021; PipeDream-Flush): one chunk per device;
  device ``d`` runs ``p - d - 1`` warm-up forwards, then one forward and one
  backward in turn, then the remaining backwards. Device ``d`` holds at most
  ``p - d`` micro-batches' activations.
* ``interleaved`` (Narayanan et al., SC 2021, Sec. 2.2.2, Megatron's virtual
  stages): ``v`` chunks per device placed round-robin (chunk ``c`` on device
  ``c mod p``); forwards run in groups of ``p`` micro-batches per chunk,
  ``(p - d - 1) 2 + (v - 1) p`` warm-up forwards, then 1F1B over the chunk
  units, backwards in the mirrored order. Needs ``micro_batches`` a multiple of
  ``p``. The bubble shrinks by ``v``; device 0 holds up to ``p + (p - 1)/v``
  micro-batches' worth of its layers' activations.
* ``zb_h1`` (Qi et al., ICLR 2024, "Zero Bubble Pipeline Parallelism", ZB-H1):
  the 1F1B placement with the backward split into ``B`` (input gradients, on the
  critical path) and ``W`` (weight gradients, deferred to fill the bubbles);
  device ``d`` keeps at most ``p - d`` micro-batches in flight (not yet past
  their ``W``), the peak activation memory of 1F1B.
* ``v_min``, ``v_half``, ``v_zb`` (Qi et al., NeurIPS 2024, "Pipeline
  Parallelism with Controllable Memory", arXiv 2405.15362): two chunks per
  device in a V (chunk ``d`` and chunk ``2p - 1 - d`` on device ``d``, so the
  first and last chunks share device 0), split backward, and an activation
  budget per device of ``(p + 4) // 3``, ``(p + 2) // 2`` and ``p``
  micro-batches (the authors' table of the V-Min, V-Half and V-ZB building
  blocks: about 1/3, 1/2 and 1x of 1F1B's ``p``).

``zb_h1`` and the V family are built by one greedy list scheduler
(:func:`greedy_schedule`) over the units' relative costs: each idle device
starts the ready unit of highest priority (``B`` first, as it lies on the
critical path and frees memory, then ``F`` of the oldest micro-batch and latest
chunk, then ``W`` to fill what is left); a micro-batch may enter a device (its
first forward there) only while the device's budget has room for all its
chunks there, and a chunk's activations count against the budget until its
``W`` (or unsplit ``B``) ends. The order is all this module decides: the
activation memory and the time of the step follow from it in the simulator
(tensors live from the op that writes them to the last op that reads them).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

from hw_models.errors import Problem, SpecError

Unit = tuple[str, int, int]  # ("F" | "B" | "W", chunk, micro-batch)

#: every schedule :func:`workloads.train_step` accepts
SCHEDULES: tuple[str, ...] = ("1f1b", "interleaved", "zb_h1", "v_min", "v_half", "v_zb")
#: schedules that split the backward into B (input gradients) and W (weight gradients)
SPLIT_SCHEDULES: frozenset[str] = frozenset({"zb_h1", "v_min", "v_half", "v_zb"})
#: the V-shape schedules' activation budget per device, in micro-batches (Qi et al. 2024)
V_BUDGETS: Mapping[str, Callable[[int], int]] = {
    "v_min": lambda p: (p + 4) // 3,
    "v_half": lambda p: (p + 2) // 2,
    "v_zb": lambda p: p,
}


def check_schedule(schedule: str, *, pp: int, chunks: int | None, micro_batches: int) -> int:
    """The number of model chunks per device ``schedule`` uses; SpecError when the
    schedule is unknown or does not fit ``pp``, ``chunks`` and ``micro_batches``."""
    if schedule not in SCHEDULES:
        import difflib

        close = difflib.get_close_matches(str(schedule), SCHEDULES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(
            [
                Problem(
                    "schedule",
                    f"unknown pipeline schedule {schedule!r}{hint} (known: {', '.join(SCHEDULES)})",
                )
            ]
        )
    fixed = {"interleaved": None, "v_min": 2, "v_half": 2, "v_zb": 2}.get(schedule, 1)
    if chunks is None:
        chunks = fixed or 2
    if not isinstance(chunks, int) or chunks < 1:
        raise SpecError([Problem("chunks", f"expected an integer > 0, found {chunks!r}")])
    if fixed is not None and chunks != fixed:
        raise SpecError(
            [Problem("chunks", f"schedule {schedule!r} places {fixed} chunk(s) per device")]
        )
    if schedule == "interleaved" and micro_batches % pp:
        raise SpecError(
            [
                Problem(
                    "micro_batches",
                    f"the interleaved schedule runs micro-batches in groups of pp={pp}; "
                    f"{micro_batches} is not a multiple",
                )
            ]
        )
    return chunks


def chunk_devices(schedule: str, *, pp: int, chunks: int) -> list[int]:
    """The device of every model chunk (``pp * chunks`` of them)."""
    n = pp * chunks
    if schedule in V_BUDGETS:  # the V: down over devices 0..p-1, back up p-1..0
        return [c if c < pp else 2 * pp - 1 - c for c in range(n)]
    return [c % pp for c in range(n)]


def one_f_one_b(stages: int, micro_batches: int) -> list[list[Unit]]:
    """The 1F1B order of work on every stage: ``[[("F", s, m) | ("B", s, m), ...], ...]``."""
    order: list[list[Unit]] = []
    for s in range(stages):
        warm = min(stages - s - 1, micro_batches)
        seq: list[Unit] = [("F", s, m) for m in range(warm)]
        for i in range(micro_batches - warm):
            seq += [("F", s, warm + i), ("B", s, i)]
        seq += [("B", s, m) for m in range(micro_batches - warm, micro_batches)]
        order.append(seq)
    return order


def interleaved(stages: int, chunks: int, micro_batches: int) -> list[list[Unit]]:
    """Megatron's interleaved 1F1B order (chunk ``c`` on device ``c mod stages``)."""
    p, v, m = stages, chunks, micro_batches
    total = m * v

    def fwd(d: int, k: int) -> Unit:
        local = (k // p) % v
        return ("F", local * p + d, (k // (p * v)) * p + k % p)

    def bwd(d: int, k: int) -> Unit:
        local = v - 1 - (k // p) % v
        return ("B", local * p + d, (k // (p * v)) * p + k % p)

    order: list[list[Unit]] = []
    for d in range(p):
        warm = min((p - d - 1) * 2 + (v - 1) * p, total)
        seq = [fwd(d, k) for k in range(warm)]
        for i in range(total - warm):
            seq += [fwd(d, warm + i), bwd(d, i)]
        seq += [bwd(d, k) for k in range(total - warm, total)]
        order.append(seq)
    return order


def greedy_schedule(
    devices: list[int],
    micro_batches: int,
    *,
    budget: list[int],
    cost: Mapping[Unit, float] | None = None,
    split: bool = True,
) -> list[list[Unit]]:
    """A list schedule of the chunks' units (see the module doc).

    ``devices[c]`` is chunk ``c``'s device; ``budget[d]`` the micro-batches whose
    activations device ``d`` may hold at once (counted per chunk: a micro-batch
    with ``k`` chunks on ``d`` reserves ``k`` units when it enters); ``cost`` the
    relative time of each unit (default 1 each).
    """
    n_chunks, p = len(devices), max(devices) + 1
    per_device = [devices.count(d) for d in range(p)]
    cap = [budget[d] * per_device[d] for d in range(p)]
    entry = [min(c for c in range(n_chunks) if devices[c] == d) for d in range(p)]
    kinds = ("F", "B", "W") if split else ("F", "B")
    free_kind = "W" if split else "B"
    done: dict[Unit, float] = {}
    nxt = {(k, c): 0 for k in kinds for c in range(n_chunks)}  # FIFO per (kind, chunk)
    reserved = [0] * p
    busy_until = [0.0] * p
    order: list[list[Unit]] = [[] for _ in range(p)]
    running: list[tuple[float, int, Unit]] = []  # (end, device, unit) heap
    remaining = len(kinds) * n_chunks * micro_batches
    t = 0.0

    def deps(u: Unit) -> list[Unit]:
        k, c, m = u
        if k == "F":
            return [("F", c - 1, m)] if c else []
        if k == "B":
            return [("F", c, m)] + ([("B", c + 1, m)] if c + 1 < n_chunks else [])
        return [("B", c, m)]

    def priority(u: Unit) -> tuple[int, int, int]:
        k, c, m = u
        return ({"B": 0, "F": 1, "W": 2}[k], m, -c)

    while remaining:
        for d in range(p):
            if busy_until[d] > t:
                continue
            ready: list[Unit] = []
            for (k, c), m in nxt.items():
                if devices[c] != d or m >= micro_batches:
                    continue
                u = (k, c, m)
                if not all(done.get(x, float("inf")) <= t for x in deps(u)):
                    continue
                if k == "F" and c == entry[d] and reserved[d] + per_device[d] > cap[d]:
                    continue  # no room for another micro-batch on this device yet
                ready.append(u)
            if not ready:
                continue
            u = min(ready, key=priority)
            k, c, m = u
            if k == "F" and c == entry[d]:
                reserved[d] += per_device[d]
            nxt[k, c] += 1
            order[d].append(u)
            end = t + (cost[u] if cost is not None else 1.0)
            busy_until[d] = end
            heapq.heappush(running, (end, d, u))
            remaining -= 1
        if not running:  # pragma: no cover - a budget of one micro-batch always progresses
            raise RuntimeError("pipeline schedule deadlocked")
        t, d, u = heapq.heappop(running)
        done[u] = t
        if u[0] == free_kind:
            reserved[d] -= 1
        while running and running[0][0] <= t:
            _, d2, u2 = heapq.heappop(running)
            done[u2] = t
            if u2[0] == free_kind:
                reserved[d2] -= 1
    return order


def schedule_order(
    schedule: str,
    *,
    pp: int,
    chunks: int,
    micro_batches: int,
    cost: Mapping[Unit, float] | None = None,
) -> list[list[Unit]]:
    """Per device, the order of its units under ``schedule`` (see the module doc)."""
    if schedule == "1f1b":
        return one_f_one_b(pp, micro_batches)
    if schedule == "interleaved":
        return interleaved(pp, chunks, micro_batches)
    devices = chunk_devices(schedule, pp=pp, chunks=chunks)
    # ZB-H1 keeps 1F1B's in-flight micro-batches per device; a V its budget on every device
    v_budget = V_BUDGETS.get(schedule)
    budget = [v_budget(pp) if v_budget else pp - d for d in range(pp)]
    return greedy_schedule(devices, micro_batches, budget=budget, cost=cost, split=True)
