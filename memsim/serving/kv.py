"""KV-cache block managers: the only owners of KV memory in the serving layer.

A block manager allocates, grows, frees and swaps the KV cache of each
request, and answers "can this be admitted?" (CONVENTIONS §13); the scheduler
asks it and never counts bytes itself.

``paged``
    vLLM's PagedAttention allocator (Kwon et al., SOSP 2023, §4.2): KV lives in
    fixed-size blocks of ``block_size`` tokens; a request holds
    ``ceil(tokens / block_size)`` blocks and grows one block at a time, so at
    most ``block_size - 1`` slots per request are unused. A new prompt is
    admitted only if ``watermark`` of the blocks stay free afterwards (vLLM's
    ``watermark=0.01``), which avoids preempting right after admitting.
    With prefix sharing (``shared_prefix_tokens``), the full blocks of a
    prefix every request starts with (a system prompt) are held once for the
    whole run, already computed (as after the first request, with vLLM's
    automatic prefix caching); each request holds and computes only the rest.
``contiguous``
    The baseline PagedAttention is compared with (Orca, FasterTransformer): each
    request reserves room for ``max_seq_len`` tokens up front, in one piece,
    whatever it ends up using.

Both count capacity in the same unit (``block_size``-token blocks, ``block_bytes``
each), so their admission differs only by the reservation rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from hw_models.errors import Problem, SpecError
from memsim.registry import Registry


@dataclass(frozen=True, slots=True, kw_only=True)
class KVGeometry:
    """Sizes a block manager works with."""

    block_size: int
    """tokens per block"""
    num_blocks: int
    """blocks in the device KV pool"""
    bytes_per_token: float
    """KV bytes of one token on one device (K and V, every layer)"""
    swap_blocks: int = 0
    """blocks the swap tier can hold (0: no swapping)"""

    @property
    def block_bytes(self) -> float:
        """Bytes of one block."""
        return self.block_size * self.bytes_per_token


class BlockManager(Protocol):
    """Allocates the KV cache of requests (ids are ints) in blocks."""

    geometry: KVGeometry
    shared_tokens: int
    """tokens of the prefix every request shares, already in the cache (0: none)"""

    def fits_ever(self, tokens: int) -> bool:
        """Whether a request that grows to ``tokens`` tokens could ever be held."""
        ...

    def can_admit(self, tokens: int) -> bool:
        """Whether a new request of ``tokens`` tokens can be allocated now (keeps the watermark)."""
        ...

    def admit(self, rid: int, tokens: int) -> None:
        """Allocate a new request's first ``tokens`` tokens."""
        ...

    def try_grow(self, rid: int, tokens: int) -> bool:
        """Grow request ``rid`` to hold ``tokens`` tokens if memory allows; whether it did."""
        ...

    def free(self, rid: int) -> None:
        """Release everything request ``rid`` holds (on device or swapped)."""
        ...

    def can_swap_out(self, rid: int) -> bool:
        """Whether request ``rid``'s blocks fit in the swap tier now."""
        ...

    def swap_out(self, rid: int) -> float:
        """Move ``rid``'s blocks to the swap tier; returns the bytes moved."""
        ...

    def can_swap_in(self, rid: int) -> bool:
        """Whether ``rid``'s swapped blocks fit back on the device now."""
        ...

    def swap_in(self, rid: int) -> float:
        """Move ``rid``'s blocks back to the device; returns the bytes moved."""
        ...

    @property
    def used_blocks(self) -> int:
        """Device blocks allocated (reserved, for the contiguous manager)."""
        ...

    @property
    def used_tokens(self) -> int:
        """Tokens actually stored on the device."""
        ...


BLOCK_MANAGERS: Registry[BlockManager] = Registry("block manager")


class _Base:
    """Shared bookkeeping: device blocks and tokens per request, swapped blocks."""

    shared_tokens = 0
    """tokens of a prefix every request shares, held once (0: no sharing)"""

    def __init__(self, geometry: KVGeometry) -> None:
        self.geometry = geometry
        self._blocks: dict[int, int] = {}
        self._tokens: dict[int, int] = {}
        self._swapped: dict[int, tuple[int, int]] = {}
        self._used = 0
        self._used_tokens = 0
        self._swap_used = 0

    def _need(self, tokens: int) -> int:
        return math.ceil(tokens / self.geometry.block_size)

    @property
    def free_blocks(self) -> int:
        """Device blocks not allocated."""
        return self.geometry.num_blocks - self._used

    @property
    def used_blocks(self) -> int:
        """Device blocks allocated."""
        return self._used

    @property
    def used_tokens(self) -> int:
        """Tokens stored on the device."""
        return self._used_tokens

    @property
    def swapped_blocks(self) -> int:
        """Blocks held in the swap tier."""
        return self._swap_used

    def _take(self, rid: int, blocks: int, tokens: int) -> None:
        if blocks > self.free_blocks:  # the scheduler must ask first: never overcommit
            raise RuntimeError(f"request {rid}: {blocks} blocks asked, {self.free_blocks} free")
        self._blocks[rid] = self._blocks.get(rid, 0) + blocks
        self._used += blocks
        self._used_tokens += tokens - self._tokens.get(rid, 0)
        self._tokens[rid] = tokens

    def free(self, rid: int) -> None:
        """Release request ``rid``'s device and swap blocks."""
        self._used -= self._blocks.pop(rid, 0)
        self._used_tokens -= self._tokens.pop(rid, 0)
        blocks, _ = self._swapped.pop(rid, (0, 0))
        self._swap_used -= blocks

    def can_swap_out(self, rid: int) -> bool:
        """Whether ``rid``'s blocks fit in the swap tier."""
        return self._swap_used + self._blocks.get(rid, 0) <= self.geometry.swap_blocks

    def swap_out(self, rid: int) -> float:
        """Move ``rid``'s blocks to the swap tier; the bytes moved."""
        blocks = self._blocks.pop(rid)
        tokens = self._tokens.pop(rid)
        self._used -= blocks
        self._used_tokens -= tokens
        self._swapped[rid] = (blocks, tokens)
        self._swap_used += blocks
        return blocks * self.geometry.block_bytes

    def can_swap_in(self, rid: int) -> bool:
        """Whether ``rid``'s swapped blocks fit back on the device."""
        return self._swapped[rid][0] <= self.free_blocks

    def swap_in(self, rid: int) -> float:
        """Move ``rid``'s blocks back to the device; the bytes moved."""
        blocks, tokens = self._swapped.pop(rid)
        self._swap_used -= blocks
        self._take(rid, blocks, tokens)
        return blocks * self.geometry.block_bytes


@BLOCK_MANAGERS.register("paged")
class PagedBlockManager(_Base):
    """vLLM-style paged KV: a request holds ``ceil(tokens / block_size)`` blocks."""

    def __init__(
        self, geometry: KVGeometry, *, watermark: float = 0.01, shared_prefix_tokens: int = 0
    ) -> None:
        super().__init__(geometry)
        if not 0.0 <= watermark < 1.0:
            raise SpecError(
                [Problem("watermark", f"expected a fraction in [0, 1), found {watermark}")]
            )
        self.watermark_blocks = int(watermark * geometry.num_blocks)
        # prefix sharing: the full blocks of the common prefix are held once, for the run
        bs = geometry.block_size
        self.shared_blocks = max(shared_prefix_tokens, 0) // bs
        self.shared_tokens = self.shared_blocks * bs
        if self.shared_blocks >= geometry.num_blocks:
            raise SpecError(
                [
                    Problem(
                        "shared_prefix",
                        f"the shared prefix needs {self.shared_blocks} blocks, the pool has "
                        f"{geometry.num_blocks}",
                    )
                ]
            )
        self._used = self.shared_blocks
        self._used_tokens = self.shared_tokens

    def _need(self, tokens: int) -> int:
        return -(-(tokens - self.shared_tokens) // self.geometry.block_size)

    def fits_ever(self, tokens: int) -> bool:
        """A request fits if its final size fits in the whole pool."""
        room = self.geometry.num_blocks - self.shared_blocks - self.watermark_blocks
        return self._need(tokens) <= room

    def can_admit(self, tokens: int) -> bool:
        """Free blocks after admitting stay at or above the watermark."""
        return self.free_blocks - self._need(tokens) >= self.watermark_blocks

    def admit(self, rid: int, tokens: int) -> None:
        """Allocate the blocks of ``tokens`` tokens (beyond the shared prefix)."""
        self._take(rid, self._need(tokens), tokens - self.shared_tokens)

    def try_grow(self, rid: int, tokens: int) -> bool:
        """Add a block when the request crosses a block boundary, if one is free."""
        held = self._blocks[rid]
        private = tokens - self.shared_tokens
        extra = -(-private // self.geometry.block_size) - held
        if extra > 0:
            if extra > self.geometry.num_blocks - self._used:
                return False
            self._blocks[rid] = held + extra
            self._used += extra
        self._used_tokens += private - self._tokens[rid]
        self._tokens[rid] = private
        return True


@BLOCK_MANAGERS.register("contiguous")
class ContiguousBlockManager(_Base):
    """Each request reserves ``max_seq_len`` tokens at admission (no paging)."""

    def __init__(self, geometry: KVGeometry, *, max_seq_len: int) -> None:
        super().__init__(geometry)
        if max_seq_len < 1:
            raise SpecError([Problem("max_seq_len", f"expected >= 1, found {max_seq_len}")])
        self.max_seq_len = max_seq_len
        self.reserve_blocks = self._need(max_seq_len)

    def fits_ever(self, tokens: int) -> bool:
        """A request fits if it is no longer than ``max_seq_len`` and one reservation fits."""
        return tokens <= self.max_seq_len and self.reserve_blocks <= self.geometry.num_blocks

    def can_admit(self, tokens: int) -> bool:
        """One whole reservation must be free."""
        return tokens <= self.max_seq_len and self.reserve_blocks <= self.free_blocks

    def admit(self, rid: int, tokens: int) -> None:
        """Reserve ``max_seq_len`` tokens' worth of blocks."""
        self._take(rid, self.reserve_blocks, tokens)

    def try_grow(self, rid: int, tokens: int) -> bool:
        """Growth is free within the reservation."""
        if tokens > self.max_seq_len:
            return False
        self._take(rid, 0, tokens)
        return True


def make_block_manager(
    name: str,
    geometry: KVGeometry,
    *,
    watermark: float = 0.01,
    max_seq_len: int | None = None,
    shared_prefix_tokens: int = 0,
) -> BlockManager:
    """A registered block manager by name, given what it needs.

    ``shared_prefix_tokens``: a prefix every request shares (a system prompt),
    held once by the ``paged`` manager (prefix sharing); the ``contiguous``
    baseline cannot share.
    """
    factory = BLOCK_MANAGERS.get(name, error_path="block_manager")
    if factory is ContiguousBlockManager:
        if shared_prefix_tokens:
            raise SpecError(
                [Problem("prefix_sharing", "the contiguous manager cannot share a prefix")]
            )
        if max_seq_len is None:
            raise SpecError([Problem("max_seq_len", "the contiguous manager needs max_seq_len")])
        return ContiguousBlockManager(geometry, max_seq_len=max_seq_len)
    if shared_prefix_tokens:
        return factory(geometry, watermark=watermark, shared_prefix_tokens=shared_prefix_tokens)
    return factory(geometry, watermark=watermark)
