"""Weighted mixing of datasets, deterministic sampling across processes, batching.

An epoch is a fixed list of (dataset, image) pairs drawn from (seed, epoch): with no weights, every
image of every dataset once, shuffled (the official concatenation, sampling proportional to size);
with weights, `epoch_size` draws of a dataset by weight, each dataset walking through its own
shuffled order. Global batch s of the epoch is items [s W B, (s + 1) W B); process r takes its
r-th slice of B. Every item carries a seed derived from (seed, epoch, position), which alone drives
that sample's augmentation: the data do not depend on the number of processes or workers, and a
run resumed at (epoch, step) sees exactly what it would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mahmr_model import ImageBatch

from ..targets import Targets
from .pipeline import Sample, SamplePipeline
from .records import DataError, RecordSource

__all__ = [
    "Batch",
    "EpochPlan",
    "MixtureDataset",
    "collate",
    "make_loader",
    "worker_init",
]

Key = tuple[int, int, int]  # (dataset, image, sample seed)
MAX_SKIPS = 10


class EpochPlan:
    """The (dataset, image, seed) items of each epoch.

    Args:
        sizes: images per dataset; weights: sampling weights (None: proportional to size).
        epoch_size: items per epoch (default: the sum of the sizes).
        seed: run seed.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float] | None,
        epoch_size: int | None,
        seed: int,
    ) -> None:
        if not sizes or min(sizes) < 1:
            raise DataError(f"every training dataset needs at least one image (sizes {sizes})")
        self.sizes = list(sizes)
        self.weights = None if weights is None else np.asarray(weights, float) / sum(weights)
        self.epoch_size = int(epoch_size) if epoch_size else int(sum(sizes))
        self.seed = seed

    def items(self, epoch: int) -> np.ndarray:
        """(E, 3) int64: dataset, image, sample seed of every item of the epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.weights is None and self.epoch_size == sum(self.sizes):
            dataset = np.repeat(np.arange(len(self.sizes)), self.sizes)
            image = np.concatenate([rng.permutation(n) for n in self.sizes])
            order = rng.permutation(len(dataset))
            dataset, image = dataset[order], image[order]
        else:
            weights = (
                self.weights if self.weights is not None else np.array(self.sizes) / sum(self.sizes)
            )
            dataset = rng.choice(len(self.sizes), size=self.epoch_size, p=weights)
            image = np.zeros(self.epoch_size, np.int64)
            for d, n in enumerate(self.sizes):
                picks = np.flatnonzero(dataset == d)
                walk = np.concatenate([rng.permutation(n) for _ in range(-(-len(picks) // n))])
                image[picks] = walk[: len(picks)]
        seeds = rng.integers(0, 2**62, self.epoch_size)
        return np.stack([dataset, image, seeds], axis=1).astype(np.int64)

    def steps_per_epoch(self, global_batch: int) -> int:
        return self.epoch_size // global_batch


class EpochBatches(Sampler[list[Key]]):
    """This process's batches of one epoch from step `start` on (the last partial global batch
    is dropped)."""

    def __init__(
        self, plan: EpochPlan, epoch: int, batch_size: int, rank: int, world: int, start: int = 0
    ) -> None:
        self.plan, self.epoch, self.batch, self.rank, self.world = (
            plan,
            epoch,
            batch_size,
            rank,
            world,
        )
        self.start = start

    def __len__(self) -> int:
        return max(0, self.plan.steps_per_epoch(self.batch * self.world) - self.start)

    def __iter__(self) -> Iterator[list[Key]]:
        items = self.plan.items(self.epoch)
        g = self.batch * self.world
        for step in range(self.start, self.plan.steps_per_epoch(g)):
            chunk = items[
                step * g + self.rank * self.batch : step * g + (self.rank + 1) * self.batch
            ]
            yield [tuple(int(v) for v in row) for row in chunk]  # type: ignore[misc]


class MixtureDataset(Dataset):
    """Samples of several record sources through one pipeline, addressed by `Key`."""

    def __init__(
        self, sources: Sequence[RecordSource], pipeline: SamplePipeline, train: bool
    ) -> None:
        self.sources = list(sources)
        self.pipeline = pipeline
        self.train = train

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key: Key) -> Sample:
        dataset, image, seed = key
        source = self.sources[dataset]
        rng = np.random.default_rng(seed)
        for skip in range(MAX_SKIPS):
            # an image whose augmentations leave nobody visible: the next one (official)
            sample = self.pipeline(source[(image + skip) % len(source)], rng, self.train)
            if sample is not None:
                return sample
        raise DataError(
            f"{source.name}: {MAX_SKIPS} images from {source[image].key!r} on have nobody visible"
        )


@dataclass(frozen=True)
class Batch:
    """A collated batch: network input, targets, and the sample keys (for logs)."""

    images: ImageBatch
    targets: Targets
    keys: tuple[str, ...]

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        images = ImageBatch(
            self.images.pixels.to(device, non_blocking=non_blocking),
            self.images.image_sizes.to(device, non_blocking=non_blocking),
            self.images.patch_size,
        )
        return Batch(images, self.targets.to(device, non_blocking), self.keys)

    def pin_memory(self) -> Batch:
        images = ImageBatch(
            self.images.pixels.pin_memory(), self.images.image_sizes.pin_memory(),
            self.images.patch_size,
        )  # fmt: skip
        return Batch(images, self.targets.pin_memory(), self.keys)


def _pad(arrays: list[np.ndarray], size: int, fill: float = 0.0) -> torch.Tensor:
    """Stack (n_b, ...) arrays into (B, size, ...) padded with `fill`."""
    tail = arrays[0].shape[1:]
    out = np.full((len(arrays), size, *tail), fill, dtype=np.result_type(arrays[0], np.float32))
    for b, a in enumerate(arrays):
        out[b, : len(a)] = a
    return torch.from_numpy(out)


def collate(samples: Sequence[Sample], canvas: int) -> Batch:
    """Pad images to the batch canvas (multiples of 56 px), people to the most of any image,
    scale maps to the canvas grid."""
    images = ImageBatch.from_tensors([s.image for s in samples], canvas)
    h1, w1 = (side // 28 for side in images.pixels.shape[2:])
    p = max(s.num_people for s in samples)
    maps = torch.zeros(len(samples), h1, w1, 2)
    for b, s in enumerate(samples):
        maps[b, : s.scale_map.shape[0], : s.scale_map.shape[1]] = torch.from_numpy(s.scale_map)
    flag = lambda name: torch.tensor([getattr(s, name) for s in samples])  # noqa: E731
    targets = Targets(
        mask=torch.arange(p)[None] < torch.tensor([s.num_people for s in samples])[:, None],
        boxes=_pad([s.boxes for s in samples], p).float(),
        joints_2d=_pad([s.joints_2d for s in samples], p).float(),
        joints_2d_mask=_pad([s.joints_2d_mask for s in samples], p).bool(),
        joints_3d=_pad([s.joints_3d for s in samples], p).float(),
        poses=_pad([s.poses for s in samples], p).float(),
        betas=_pad([s.betas for s in samples], p).float(),
        depths=_pad([s.depths for s in samples], p).float(),
        depth_layers=_pad([s.depth_layers for s in samples], p, -1).long(),
        intrinsics=torch.from_numpy(np.stack([s.intrinsics for s in samples])).float(),
        image_sizes=images.image_sizes.clone(),
        has_3d=flag("has_3d"),
        has_smpl=flag("has_smpl"),
        has_camera=flag("has_camera"),
        detect_all=flag("detect_all"),
        scale_map=maps,
    )
    return Batch(images, targets, tuple(s.key for s in samples))


class _Collate:
    def __init__(self, canvas: int) -> None:
        self.canvas = canvas

    def __call__(self, samples: Sequence[Sample]) -> Batch:
        return collate(samples, self.canvas)


class _WorkerInit:
    """Seed Python, NumPy and torch in each worker from (seed, rank, worker); one thread each."""

    def __init__(self, seed: int, rank: int) -> None:
        self.seed, self.rank = seed, rank

    def __call__(self, worker: int) -> None:
        worker_init(self.seed, self.rank, worker)


def worker_init(seed: int, rank: int, worker: int) -> None:
    """The global RNGs of a data worker, derived from (seed, rank, worker)."""
    state = np.random.SeedSequence([seed, rank, worker]).generate_state(2)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]) % 2**32)  # noqa: NPY002  (for third-party code using it)
    torch.manual_seed(int(state[0]))
    torch.set_num_threads(1)


def make_loader(
    dataset: MixtureDataset,
    batches: Sampler[list[Key]],
    canvas: int,
    *,
    num_workers: int,
    pin_memory: bool,
    seed: int,
    rank: int,
) -> DataLoader:
    """A DataLoader over the given batches (workers seeded per rank)."""
    return DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=_Collate(canvas),
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=_WorkerInit(seed, rank) if num_workers > 0 else None,
        persistent_workers=False,
    )
