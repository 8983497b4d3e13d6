#!/usr/bin/python3
"""The zarr-python 2.13 side of bench/file-sync.ts: the same workloads through zarr's ProcessSynchronizer.

Run by bench/file-sync.ts, one process per worker:

    /usr/bin/python3 bench/zarr_python_sync.py <role> '<json config>'

Roles: create, diagonal-writer, diagonal-reader, counter, final. Workers print {"event": "ready"}, wait
for a line "go" on stdin, work, and print one JSON result line. The array is a v2 DirectoryStore array
(no compressor), and every worker opens it with zarr.ProcessSynchronizer(<sync dir>), which locks one
chunk at a time (fasteners lock files) while that chunk is written; reads take no lock.
"""
import json
import random
import sys
import time

import numpy as np
import zarr


def anti_diagonal(shape, d):
    rows = [i for i in range(shape[0]) if 0 <= d - i < shape[1]]
    return rows, [d - i for i in rows]


def torn_diagonals(a):
    flipped = np.fliplr(a)
    n = a.shape[1] - 1
    torn = 0
    for d in range(a.shape[0] + a.shape[1] - 1):
        values = np.diagonal(flipped, offset=n - d)
        if values.size and (values != values[0]).any():
            torn += 1
    return torn


def emit(message):
    print(json.dumps(message), flush=True)


def main():
    role = sys.argv[1]
    cfg = json.loads(sys.argv[2])
    if role == "create":
        zarr.open_array(
            cfg["path"], mode="w", shape=tuple(cfg["shape"]), chunks=tuple(cfg["chunks"]),
            dtype="i4", fill_value=0, compressor=None,
        )
        emit({"event": "result"})
        return
    if role == "final":
        a = zarr.open_array(cfg["path"], mode="r")[...]
        emit({"event": "result", "cells": a.ravel().tolist(), "torn": torn_diagonals(a)})
        return

    synchronizer = zarr.ProcessSynchronizer(cfg["sync"])
    z = zarr.open_array(cfg["path"], mode="r+", synchronizer=synchronizer)
    emit({"event": "ready"})
    sys.stdin.readline()
    started = time.perf_counter()

    if role == "diagonal-writer":
        writes = 0
        value = (cfg["writer"] + 1) * 1_000_000
        diagonals = z.shape[0] + z.shape[1] - 1
        mine = list(range(cfg["writer"], diagonals, cfg["writers"]))
        while time.perf_counter() - started < cfg["seconds"]:
            for d in mine:
                value += 1
                rows, cols = anti_diagonal(z.shape, d)
                # One call that rewrites the whole diagonal; zarr locks each chunk only while writing it.
                z.vindex[rows, cols] = value
                writes += 1
        emit({"event": "result", "writes": writes, "seconds": time.perf_counter() - started})
    elif role == "diagonal-reader":
        reads = torn_reads = torn = 0
        while time.perf_counter() - started < cfg["seconds"]:
            t = torn_diagonals(z[...])
            reads += 1
            torn += t
            torn_reads += 1 if t else 0
        emit({"event": "result", "reads": reads, "tornReads": torn_reads, "tornDiagonals": torn})
    elif role == "counter":
        rng = random.Random(cfg["seed"])
        expected = np.zeros(z.shape, dtype=np.int64)
        for _ in range(cfg["rounds"]):
            r0, c0 = rng.randrange(z.shape[0]), rng.randrange(z.shape[1])
            r1 = min(z.shape[0], r0 + 1 + rng.randrange(5))
            c1 = min(z.shape[1], c0 + 1 + rng.randrange(5))
            expected[r0:r1, c0:c1] += 1
            # Read-modify-write as zarr-python users write it: the read takes no lock, the write locks
            # each chunk while it is written.
            z[r0:r1, c0:c1] = z[r0:r1, c0:c1] + 1
        emit({
            "event": "result",
            "rounds": cfg["rounds"],
            "expected": expected.ravel().tolist(),
            "seconds": time.perf_counter() - started,
        })
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
