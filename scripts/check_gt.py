#!/usr/bin/env python3
"""Check the ground truth files in an ann_bench / embed_debian_minilm.py directory against an
independent numpy exact scan (float64 cosine): gt.npy and, if present, the filtered
gt_filter_<pct>.npy that `ann_bench --filters ... --write DIR` computes with our own exact scan.

    python3 scripts/check_gt.py DIR

For each file it prints the queries whose id sets differ from numpy's top-k; a difference only
counts as an error when a listed id scores below numpy's k-th score by more than 1e-5 (ties).
Exits 1 on an error.
"""
import glob, os, sys
import numpy as np

d = sys.argv[1]
base = np.load(os.path.join(d, "base.npy")).astype(np.float64)
queries = np.load(os.path.join(d, "queries.npy")).astype(np.float64)
base /= np.linalg.norm(base, axis=1, keepdims=True)
queries /= np.linalg.norm(queries, axis=1, keepdims=True)
s = queries @ base.T
bad = 0
for path in [os.path.join(d, "gt.npy")] + sorted(glob.glob(os.path.join(d, "gt_filter_*.npy"))):
    gt = np.load(path)
    k = gt.shape[1]
    sc = s
    name = os.path.basename(path)
    if name.startswith("gt_filter_"):
        pct = name[len("gt_filter_"):-len(".npy")]
        mask = np.zeros(len(base), dtype=bool)
        mask[np.load(os.path.join(d, f"filter_{pct}.npy")).ravel()] = True
        sc = np.where(mask, s, -np.inf)
    top = np.argsort(-sc, axis=1, kind="stable")[:, :k]
    kth = np.take_along_axis(sc, top[:, k - 1:k], 1)
    differ = sum(set(a.tolist()) != set(b.tolist()) for a, b in zip(gt, top))
    low = int((np.take_along_axis(sc, gt, 1) < kth - 1e-5).sum())
    bad += low
    print(f"{name}: {len(gt)} x {k}; {differ} queries' id sets differ from numpy's top-{k}; "
          f"{low} listed ids score below numpy's {k}-th by > 1e-5")
sys.exit(1 if bad else 0)
