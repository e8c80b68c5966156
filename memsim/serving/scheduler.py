"""Schedulers: per iteration, which requests run and how many tokens each.

A scheduler owns the queues (waiting, running, swapped) and decides; the block
manager (:mod:`memsim.serving.kv`) alone says whether memory allows it and
does the allocating (CONVENTIONS §13). Registered by name:

``static``
    Today's ``memsim run``: take up to ``max_num_seqs`` waiting requests whose
    whole final length fits, prefill them together, decode until the longest
    finishes (finished ones keep their slot and their KV: padding), then the next
    batch.
``continuous``
    Iteration-level (continuous, in-flight) batching as in Orca (Yu et al., OSDI
    2022) and vLLM (Kwon et al., SOSP 2023): a new request joins as soon as
    memory and the budgets allow; an iteration either prefills newly admitted
    prompts (up to ``max_num_batched_tokens`` tokens) or decodes every running
    request; when a decode cannot grow, the latest-arrived running request is
    preempted (by recompute, or by swapping its blocks to the swap tier).
``chunked``
    Chunked prefill with a token budget per iteration (Sarathi-Serve, Agrawal et
    al., OSDI 2024): every iteration decodes all running requests first, then
    fills the rest of ``max_num_batched_tokens`` with prompt chunks, so decodes
    never stall behind a long prompt.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from memsim.registry import Registry
from memsim.serving.kv import BlockManager


class Seq:
    """One request's progress, owned by the engine of one :func:`serve` call."""

    __slots__ = (
        "arrival_s",
        "cached",
        "done",
        "finish_s",
        "first_token_s",
        "generated",
        "last_token_s",
        "output_len",
        "preemptions",
        "prompt_len",
        "rid",
        "scheduled_s",
        "swapped_bytes",
        "target",
    )

    def __init__(self, rid: int, arrival_s: float, prompt_len: int, output_len: int) -> None:
        self.rid = rid
        self.arrival_s = arrival_s
        self.prompt_len = prompt_len
        self.output_len = output_len
        self.cached = 0  # tokens whose KV is in the cache
        self.target = prompt_len  # tokens the (re)prefill must feed
        self.generated = 0
        self.first_token_s = -1.0
        self.last_token_s = -1.0
        self.finish_s = -1.0
        self.scheduled_s = -1.0  # first time it ran
        self.preemptions = 0
        self.swapped_bytes = 0.0
        self.done = False

    @property
    def final_len(self) -> int:
        """Tokens in its cache when it finishes (prompt + all but the last output token)."""
        return self.prompt_len + self.output_len - 1

    @property
    def prefilling(self) -> bool:
        """Still feeding its prompt (or its recompute)."""
        return self.cached < self.target


@dataclass(slots=True)
class Step:
    """What one iteration runs: prompt chunks ``(seq, tokens)``, decodes, and KV moves."""

    prefill: list[tuple[Seq, int]] = field(default_factory=list)
    decode: list[Seq] = field(default_factory=list)
    padding: list[int] = field(default_factory=list)  # contexts of finished slots (static)
    swap_out_bytes: float = 0.0
    swap_in_bytes: float = 0.0
    preempted: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Per-iteration limits (vLLM's ``max_num_seqs`` and ``max_num_batched_tokens``)."""

    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    preemption: str = "recompute"  # or "swap"


class Scheduler(Protocol):
    """Decides each iteration's batch; holds the queues."""

    waiting: deque[Seq]
    running: list[Seq]
    swapped: deque[Seq]

    def add(self, seq: Seq) -> None:
        """A request arrived."""
        ...

    def schedule(self) -> Step:
        """The next iteration's batch (allocating through the block manager)."""
        ...

    def finished(self, seq: Seq) -> None:
        """``seq`` produced its last token."""
        ...


SCHEDULERS: Registry[Scheduler] = Registry("scheduler")


class _Queues:
    def __init__(self, blocks: BlockManager, budget: Budget) -> None:
        self.blocks = blocks
        self.budget = budget
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.swapped: deque[Seq] = deque()
        self._pruned = True

    def add(self, seq: Seq) -> None:
        """Queue a new request (FCFS)."""
        self.waiting.append(seq)

    def finished(self, seq: Seq) -> None:
        """Free its KV; it leaves the running set before the next iteration."""
        self.blocks.free(seq.rid)
        self._pruned = False

    def _prune(self) -> None:
        if not self._pruned:
            self.running = [s for s in self.running if not s.done]
            self._pruned = True

    # ----- shared steps ------------------------------------------------------------------
    def _preempt(self, victim: Seq, step: Step) -> None:
        """Preempt ``victim`` (already out of ``running``): swap it out or drop its KV."""
        victim.preemptions += 1
        step.preempted += 1
        if self.budget.preemption == "swap" and self.blocks.can_swap_out(victim.rid):
            moved = self.blocks.swap_out(victim.rid)
            step.swap_out_bytes += moved
            victim.swapped_bytes += moved
            self.swapped.append(victim)
            return
        self.blocks.free(victim.rid)
        victim.cached = self.blocks.shared_tokens
        victim.target = victim.prompt_len + victim.generated  # vLLM's recompute
        self.waiting.appendleft(victim)

    def _grow_decodes(self, step: Step, *, tokens_left: int) -> int:
        """Every running request past its prefill decodes one token, preempting if needed.

        Requests are served in arrival order; the latest-arrived running request is
        preempted first (vLLM's policy). Returns the token budget left.
        """
        running = self.running
        if any(a.arrival_s > b.arrival_s for a, b in itertools.pairwise(running)):
            running.sort(key=lambda s: s.arrival_s)
        try_grow = self.blocks.try_grow
        decode = step.decode
        i = 0
        while i < len(running):
            seq = running[i]
            if seq.cached < seq.target:  # still prefilling (chunked)
                i += 1
                continue
            if tokens_left < 1:
                break
            while not try_grow(seq.rid, seq.cached + 1):
                victim = running.pop()
                self._preempt(victim, step)
                if victim is seq:
                    break
            else:
                decode.append(seq)
                tokens_left -= 1
                i += 1
                continue
            break
        return tokens_left

    def _swap_in(self, step: Step) -> None:
        while self.swapped and len(self.running) < self.budget.max_num_seqs:
            seq = self.swapped[0]
            if not self.blocks.can_swap_in(seq.rid):
                break
            self.swapped.popleft()
            moved = self.blocks.swap_in(seq.rid)
            step.swap_in_bytes += moved
            seq.swapped_bytes += moved
            self.running.append(seq)
            if not seq.prefilling and self.blocks.try_grow(seq.rid, seq.cached + 1):
                step.decode.append(seq)  # joins this iteration's decodes

    def _admit(self, step: Step, *, tokens_left: int, chunked: bool) -> int:
        """Admit waiting requests FCFS while budgets and the block manager allow."""
        while self.waiting:
            seq = self.waiting[0]
            if len(self.running) >= self.budget.max_num_seqs:
                break
            need = seq.target - seq.cached
            if need == 0:  # arrives with its KV (a disaggregated decode pool): decodes now
                if not self.blocks.can_admit(seq.target):
                    break
                self.waiting.popleft()
                self.blocks.admit(seq.rid, seq.target)
                self.running.append(seq)
                continue
            chunk = min(need, tokens_left) if chunked else need
            # a recompute longer than the budget runs alone rather than never
            alone = not step.prefill and seq.generated > 0
            if chunk < 1 or (not chunked and need > tokens_left and not alone):
                break
            if not self.blocks.can_admit(seq.target):
                break
            self.waiting.popleft()
            self.blocks.admit(seq.rid, seq.target)
            self.running.append(seq)
            step.prefill.append((seq, chunk))
            tokens_left -= chunk
        return tokens_left


@SCHEDULERS.register("continuous")
class ContinuousBatching(_Queues):
    """vLLM's default policy: prefill-first iterations, then decode all running."""

    def schedule(self) -> Step:
        """Prefill newly admitted prompts if any fit, else decode every running request."""
        self._prune()
        step = Step()
        if not self.swapped:
            self._admit(step, tokens_left=self.budget.max_num_batched_tokens, chunked=False)
            if step.prefill:
                return step
        self._grow_decodes(step, tokens_left=self.budget.max_num_seqs)
        if not step.preempted:
            self._swap_in(step)
        return step


@SCHEDULERS.register("chunked")
class ChunkedPrefill(_Queues):
    """Sarathi-Serve: decodes first, then prompt chunks up to the token budget."""

    def schedule(self) -> Step:
        """Decode all running requests, continue partial prefills, then admit new ones."""
        self._prune()
        step = Step()
        self._grow_decodes(step, tokens_left=self.budget.max_num_batched_tokens)
        if not step.preempted:
            self._swap_in(step)
        left = self.budget.max_num_batched_tokens - len(step.decode)
        for seq in sorted(self.running, key=lambda s: s.arrival_s):
            if left < 1:
                break
            if seq.prefilling:
                chunk = min(seq.target - seq.cached, left)
                step.prefill.append((seq, chunk))
                left -= chunk
        if not self.swapped:
            self._admit(step, tokens_left=left, chunked=True)
        return step


@SCHEDULERS.register("static")
class StaticBatching(_Queues):
    """One batch at a time, decoded until its longest request finishes."""

    def finished(self, seq: Seq) -> None:
        """Keep its slot and KV until the whole batch is done."""
        if all(s.done for s in self.running):
            for s in self.running:
                self.blocks.free(s.rid)
            self.running = []

    def schedule(self) -> Step:
        """Form a batch when none runs; else decode it (finished slots as padding)."""
        step = Step()
        if not self.running:
            tokens_left = self.budget.max_num_batched_tokens
            while self.waiting and len(self.running) < self.budget.max_num_seqs:
                seq = self.waiting[0]
                if seq.prompt_len > tokens_left or not self.blocks.can_admit(seq.final_len):
                    break
                self.waiting.popleft()
                self.blocks.admit(seq.rid, seq.final_len)  # its whole length: never preempted
                self.running.append(seq)
                step.prefill.append((seq, seq.prompt_len))
                tokens_left -= seq.prompt_len
            return step
        for seq in self.running:
            if seq.done:
                step.padding.append(seq.cached)
            elif self.blocks.try_grow(seq.rid, seq.cached + 1):  # within its reservation
                step.decode.append(seq)
        return step


def make_scheduler(name: str, blocks: BlockManager, budget: Budget) -> Scheduler:
    """A registered scheduler by name."""
    return SCHEDULERS.create(name, blocks, budget, error_path="scheduler")
