"""A compact index of outcome labels by prediction-row id: 9 bytes a label, whatever the id.

Ids are hashed to 64 bits with a keyed BLAKE2b whose key is drawn afresh in every process, so
nobody can choose an id that collides with another's on purpose; by chance, with 10 million
labels and 10 million window rows, the odds of any collision are about 5 in a million. Keys are
kept sorted in one ``uint64`` array beside an ``int8`` array of labels and looked up a chunk at a
time (``np.searchsorted``), so 10,000,000 labels take about 90 MB instead of gigabytes of dicts.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["IndexCounts", "LabelIndex", "id_key"]

_KEY = os.urandom(16)


def id_key(row_id: str) -> int:
    """The 64-bit keyed hash of a prediction-row id (stable within this process only)."""
    digest = hashlib.blake2b(row_id.encode(), digest_size=8, key=_KEY).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class IndexCounts:
    labels: int  # distinct ids kept
    duplicates: int  # repeated (id, same label): kept once
    conflicting_ids: int  # ids given different labels: left out altogether


class LabelIndex:
    """Sorted hashed ids and their 0/1 labels."""

    def __init__(self, keys: np.ndarray, labels: np.ndarray) -> None:
        self.keys, self.labels = keys, labels

    def __len__(self) -> int:
        return int(self.keys.size)

    @classmethod
    def empty(cls) -> LabelIndex:
        return cls(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int8))

    @classmethod
    def build(cls, keys: array, labels: array) -> tuple[LabelIndex, IndexCounts]:
        """From parallel arrays (``array('Q')`` of :func:`id_key`, ``array('b')`` of 0/1)."""
        key_array = np.frombuffer(keys, dtype=np.uint64) if len(keys) else np.zeros(0, np.uint64)
        label_array = np.frombuffer(labels, dtype=np.int8) if len(labels) else np.zeros(0, np.int8)
        order = np.argsort(key_array, kind="stable")
        key_array, label_array = key_array[order], label_array[order]
        del order
        if key_array.size == 0:
            return cls.empty(), IndexCounts(0, 0, 0)
        first = np.ones(key_array.size, dtype=bool)
        first[1:] = key_array[1:] != key_array[:-1]
        group = np.cumsum(first) - 1
        low = np.minimum.reduceat(label_array, np.flatnonzero(first))
        high = np.maximum.reduceat(label_array, np.flatnonzero(first))
        agreed = low == high
        unique_keys = key_array[first]
        duplicates = int(key_array.size - unique_keys.size)
        conflicting = int((~agreed).sum())
        del group
        index = cls(unique_keys[agreed].copy(), low[agreed].astype(np.int8))
        return index, IndexCounts(len(index), duplicates, conflicting)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The label of each key, or -1 where there is none."""
        result = np.full(keys.size, -1, dtype=np.int8)
        if self.keys.size == 0 or keys.size == 0:
            return result
        position = np.searchsorted(self.keys, keys)
        position[position == self.keys.size] = 0
        found = self.keys[position] == keys
        result[found] = self.labels[position[found]]
        return result

    def contains(self, keys: Iterable[int]) -> np.ndarray:
        wanted = np.fromiter(keys, dtype=np.uint64)
        return self.lookup(wanted) >= 0
