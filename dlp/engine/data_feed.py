"""Lock-step reading of a net's Data layers with a background prefetch thread.

DIGITS stores features and labels in two LMDBs with the same keys; Caffe reads
them with two independent Data layers.  Here every Data layer of a net joins one
:class:`DataFeed`, which walks the keys once (optionally shuffled per epoch with
the net's seed), decodes each member's record for the same key, draws the random
transform once per sample, and fills a queue of ready batches from a worker thread
so that decoding and augmentation overlap the training step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dlp.data.lmdb_io import DatumDB
from dlp.engine.augment import CaffeTransform, SampleDraw, augment_geometry, augment_intensity
from dlp.errors import DLPError, InputError


class DataFeedError(InputError):
    """The Data layers' databases cannot be read together."""


@dataclass
class FeedMember:
    """One Data layer's share of the feed."""

    layer: str
    db: DatumDB
    transform: CaffeTransform
    augmentation: Any | None  # AugmentationParameter or None
    with_label: bool
    device: torch.device
    channels_last: bool = False


_STOP = object()


class DataFeed:
    """Batches for every member, produced together in a worker thread."""

    def __init__(self, batch_size: int, seed: int | None, shuffle: bool, prefetch: int,
                 rand_skip: int = 0) -> None:
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.prefetch = max(1, prefetch)
        self.rand_skip = rand_skip
        self.rng = np.random.default_rng(seed)
        self.members: list[FeedMember] = []
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._round: list[tuple[torch.Tensor, ...]] | None = None
        self._taken: set[int] = set()

    def add(self, member: FeedMember, batch_size: int) -> int:
        if batch_size != self.batch_size:
            raise DataFeedError(
                f"layer {member.layer!r}: batch_size {batch_size} differs from the net's other "
                f"Data layers ({self.batch_size}); lock-step reading needs one batch size"
            )
        self.members.append(member)
        return len(self.members) - 1

    # -- consumer side -----------------------------------------------------------------
    def fetch(self, index: int) -> tuple[torch.Tensor, ...]:
        """Member ``index``'s tensors of the current round (a new round once taken)."""
        if self._round is None or index in self._taken:
            self._round = self._next_round()
            self._taken = set()
        self._taken.add(index)
        return self._round[index]

    def _next_round(self) -> list[tuple[torch.Tensor, ...]]:
        if self._thread is None:
            self._start()
        assert self._queue is not None
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            if isinstance(item, DLPError):
                raise item
            raise DataFeedError(f"reading the training data failed: {item}") from item
        return [
            tuple(t.to(m.device, non_blocking=True) if t.device != m.device else t for t in ts)
            for m, ts in zip(self.members, item, strict=False)
        ]

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._queue is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(timeout=0.05)
        self._thread = None

    # -- producer side -----------------------------------------------------------------
    def _start(self) -> None:
        keys = self.members[0].db.keys()
        for member in self.members[1:]:
            if len(member.db) != len(keys):
                raise DataFeedError(
                    f"Data layers read in lock-step need databases of equal length: "
                    f"{self.members[0].db.path} has {len(keys)} records, {member.db.path} has "
                    f"{len(member.db)}"
                )
        if not keys:
            raise DataFeedError(f"{self.members[0].db.path}: the database is empty")
        self._queue = queue.Queue(maxsize=self.prefetch)
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, args=(keys,), daemon=True,
                                        name="dlp-data-prefetch")
        self._thread.start()

    def _order(self, keys: list[str]) -> Callable[[], str]:
        position = int(self.rng.integers(0, self.rand_skip)) if self.rand_skip else 0
        order = list(range(len(keys)))
        if self.shuffle:
            self.rng.shuffle(order)

        def next_key() -> str:
            nonlocal position, order
            if position >= len(order):
                position = 0
                if self.shuffle:
                    self.rng.shuffle(order)
            key = keys[order[position]]
            position += 1
            return key

        return next_key

    def _elastic_shape(self) -> tuple[int, int] | None:
        for member in self.members:
            aug = member.augmentation
            if aug is not None and aug.elastic_alpha > 0:
                return tuple(member.db.first()[1].shape[1:])  # type: ignore[return-value]
        return None

    def _work(self, keys: list[str]) -> None:
        try:
            next_key = self._order(keys)
            elastic_shape = self._elastic_shape()
            while not self._stop.is_set():
                batch = self._make_batch(next_key, elastic_shape)
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)  # type: ignore[union-attr]
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the consumer, which raises it
            if self._queue is not None:
                self._queue.put(exc)

    def _make_batch(self, next_key: Callable[[], str],
                    elastic_shape: tuple[int, int] | None) -> list[tuple[torch.Tensor, ...]]:
        datas = [np.empty((self.batch_size, *m.transform.out_shape), np.float32)
                 for m in self.members]
        labels = [np.empty(self.batch_size, np.float32) for _ in self.members]
        for i in range(self.batch_size):
            key = next_key()
            draw = SampleDraw.draw(self.rng, elastic_shape)
            for j, member in enumerate(self.members):
                array, label = member.db.get_with_label(key)
                sample = array.astype(np.float32, copy=False)
                if member.augmentation is not None:
                    sample = augment_geometry(sample, member.augmentation, draw)
                sample = member.transform(sample, draw)
                if member.augmentation is not None:
                    sample = augment_intensity(sample, member.augmentation, draw)
                if sample.shape != datas[j].shape[1:]:
                    raise DataFeedError(
                        f"{member.db.path}: record {key!r} has shape {array.shape}, expected "
                        f"the shape of the first record"
                    )
                datas[j][i] = sample
                labels[j][i] = label
        out = []
        for member, data, label in zip(self.members, datas, labels, strict=False):
            tensor = torch.from_numpy(data)
            if member.channels_last:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            out.append((tensor, torch.from_numpy(label)) if member.with_label else (tensor,))
        return out
