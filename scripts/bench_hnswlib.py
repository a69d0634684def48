#!/usr/bin/env python3
"""Run hnswlib on the vectors written by `ann_bench --write DIR`, for docs/PERFORMANCE.md.

Same data, same ground truth (gt.npy from the Rust exact scan), same M / ef_construction, and the
same ef sweep and single-thread query loop as crates/index/examples/ann_bench.rs.

    pip install 'hnswlib==0.8.0' numpy
    python3 scripts/bench_hnswlib.py DIR [--m 16] [--efc 200] [--build-threads 2]

hnswlib's space 'ip' on unit vectors is cosine (the Rust side normalises on insert; we normalise
here). Queries are timed one at a time with num_threads=1, like the Rust loop.
"""
import argparse
import json
import os
import time

import numpy as np

HNSWLIB_VERSION = "0.8.0"  # pinned: pip install 'hnswlib==0.8.0'
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768]


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    import hnswlib

    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--build-threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    base = np.load(os.path.join(args.dir, "base.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.dir, "queries.npy")).astype(np.float32)
    gt = np.load(os.path.join(args.dir, "gt.npy"))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    n, dims = base.shape
    k = args.k

    rss0 = rss_mib()
    index = hnswlib.Index(space="ip", dim=dims)
    index.init_index(max_elements=n, ef_construction=args.efc, M=args.m)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=args.build_threads)
    build_s = time.perf_counter() - t
    rss1 = rss_mib()
    print(f"hnswlib {hnswlib.__version__ if hasattr(hnswlib, '__version__') else HNSWLIB_VERSION}: "
          f"build {n} x {dims}, M={args.m}, ef_construction={args.efc}: {build_s:.1f} s = "
          f"{n / build_s:.0f} vectors/s ({args.build_threads} threads); RSS +{rss1 - rss0:.0f} MiB")

    index.set_num_threads(1)
    # Brute force with numpy, one query at a time (BLAS may use several threads).
    nb = min(200, len(queries))
    secs = float("inf")
    for _ in range(args.reps):
        t = time.perf_counter()
        for q in queries[:nb]:
            s = base @ q
            np.argpartition(-s, k)[:k]
        secs = min(secs, time.perf_counter() - t)
    print(f"numpy brute force (1 query at a time): {nb / secs:.1f} QPS")

    print(f"\n{'ef':>5} {'recall@10':>9} {'QPS':>10} {'ms/query':>10}")
    sweep = []
    for ef in EFS:
        index.set_ef(max(ef, k))
        for q in queries[:50]:
            index.knn_query(q, k=k)
        secs = float("inf")
        for _ in range(args.reps):  # best of reps: the machine is shared
            t = time.perf_counter()
            labels = [index.knn_query(q, k=k)[0][0] for q in queries]
            secs = min(secs, time.perf_counter() - t)
        recall = np.mean([len(set(l.tolist()) & set(g.tolist())) / k for l, g in zip(labels, gt)])
        qps = len(queries) / secs
        print(f"{ef:>5} {recall:>9.4f} {qps:>10.1f} {1000 * secs / len(queries):>10.3f}")
        print("JSON " + json.dumps({"lib": "hnswlib", "ef": ef, "recall": round(float(recall), 5),
                                    "qps": round(qps, 1)}))
        sweep.append((ef, recall, qps))
        if recall > 0.999:
            break
    print()
    for target in (0.90, 0.95, 0.99):
        ok = [s for s in sweep if s[1] >= target]
        if ok:
            ef, r, qps = max(ok, key=lambda s: s[2])
            print(f"recall@10 >= {target}: {qps:.1f} QPS (ef={ef}, recall {r:.4f})")
        else:
            print(f"recall@10 >= {target}: not reached")


if __name__ == "__main__":
    main()
