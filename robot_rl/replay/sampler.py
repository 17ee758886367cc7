"""Draw each batch from several replay buffers at exact fractions (RLPD's symmetric sampling: 50/50 online/demos)."""

from __future__ import annotations

import math
from typing import Protocol

import torch

from robot_rl.replay.batch import Batch


class Sampler(Protocol):
    def sample(self, batch_size: int) -> Batch: ...

    def __len__(self) -> int: ...


class MixedSampler:
    """MixedSampler([(online, 0.5), (demos, 0.5)]).sample(256) -> 128 online + 128 demo transitions, concatenated in order.

    Counts per source are floor(fraction * B) with the remainder given to the largest fractional parts, so
    they always sum to B and never drift between batches. Rows from the sources listed in `demo_sources`
    (indices into `sources`) are marked in the batch's `is_demo` (what the actor's optional BC term imitates).
    """

    def __init__(self, sources: list[tuple[Sampler, float]], demo_sources: tuple[int, ...] = ()):
        if not sources:
            raise ValueError("MixedSampler needs at least one (buffer, fraction) pair")
        fractions = [f for _, f in sources]
        if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
            raise ValueError(f"fractions must be >= 0 and sum to 1, got {fractions}")
        if any(not 0 <= i < len(sources) for i in demo_sources):
            raise ValueError(f"demo_sources {demo_sources} must index the {len(sources)} sources")
        self.sources = sources
        self.demo_sources = tuple(demo_sources)

    def counts(self, batch_size: int) -> list[int]:
        """How many of `batch_size` transitions each source gives."""
        exact = [f * batch_size for _, f in self.sources]
        counts = [math.floor(x) for x in exact]
        by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
        for i in by_remainder[: batch_size - sum(counts)]:
            counts[i] += 1
        return counts

    def sample(self, batch_size: int) -> Batch:
        parts, demo = [], []
        for i, ((source, _), n) in enumerate(zip(self.sources, self.counts(batch_size))):
            if n == 0:
                continue
            if len(source) == 0:
                raise ValueError(
                    f"a source with a non-zero share ({n} of {batch_size}) is empty; fill it before sampling"
                )
            parts.append(source.sample(n))
            demo.append(torch.full((n,), i in self.demo_sources, dtype=torch.bool, device=parts[-1].action.device))
        batch = parts[0] if len(parts) == 1 else Batch.cat(parts)
        if self.demo_sources:
            batch.is_demo = torch.cat(demo)
        return batch

    def __len__(self) -> int:
        return sum(len(s) for s, _ in self.sources)
