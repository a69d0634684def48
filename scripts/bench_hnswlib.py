#!/usr/bin/env python3
"""Run hnswlib (and faiss, usearch) on the vectors written by `ann_bench --write DIR`, for
docs/PERFORMANCE.md.

Same data, same ground truth (gt.npy from the Rust exact scan), same M / ef_construction, and the
same ef sweep and single-thread query loop as crates/index/examples/ann_bench.rs.

    pip install 'hnswlib==0.8.0' numpy
    python3 scripts/bench_hnswlib.py DIR [--m 16] [--efc 200] [--build-threads 2]

hnswlib's space 'ip' on unit vectors is cosine (the Rust side normalises on insert; we normalise
here). Queries are timed one at a time with num_threads=1, like the Rust loop.

Filtered search (issue 16, as VectorDBBench measures it): with `--filters 50,10,1` (after
`ann_bench --write DIR --filters 50,10,1`, which writes the kept ids `filter_<pct>.npy` and the
filtered ground truth `gt_filter_<pct>.npy`), each filter is run through hnswlib's filter
callback (`knn_query(..., filter=f)`) and, with `--peers hnswlib,faiss`, faiss's HNSW flat
index with an `IDSelectorBitmap` (`pip install faiss-cpu`). `--peers` may also name
`faiss-sq8` and `usearch` / `usearch-i8` (`pip install usearch`; unfiltered only: its Python
search takes no predicate).
"""
import argparse
import json
import os
import time

import numpy as np

HNSWLIB_VERSION = "0.8.0"  # pinned: pip install 'hnswlib==0.8.0'
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768]
FILTER_EFS = [16, 32, 64, 128, 256]


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
    ap.add_argument("--filters", default="", help="e.g. 50,10,1 (files from ann_bench --filters)")
    ap.add_argument("--peers", default="hnswlib", help="hnswlib,faiss,faiss-sq8,usearch,usearch-i8")
    ap.add_argument("--efs", default="", help="ef sweep, e.g. 10,16,24,32,48,64,96")
    args = ap.parse_args()

    base = np.load(os.path.join(args.dir, "base.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.dir, "queries.npy")).astype(np.float32)
    gt = np.load(os.path.join(args.dir, "gt.npy"))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    n, dims = base.shape
    k = args.k
    if args.efs:
        EFS[:] = [int(e) for e in args.efs.split(",")]

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

    def hnswlib_search(ef, flt=None):
        index.set_ef(max(ef, k))

        def search(q):
            try:
                return index.knn_query(q, k=k, filter=flt)[0][0]
            except RuntimeError:  # fewer than k passed the filter within ef: counted as missed
                return []
        return search

    filters = load_filters(args, n, k)
    report("hnswlib", hnswlib_search, queries, gt, EFS, args.reps, k, filters)

    peers = [p for p in args.peers.split(",") if p and p != "hnswlib"]
    for peer in peers:
        del index
        index = None
        if peer in ("faiss", "faiss-sq8"):
            run_faiss(peer, base, queries, gt, args, filters)
        elif peer in ("usearch", "usearch-i8"):
            run_usearch(peer, base, queries, gt, args)
        else:
            raise SystemExit(f"unknown peer {peer}")


def load_filters(args, n, k):
    """[(pct, kept ids as a bool list, filtered ground truth)] for --filters."""
    out = []
    for pct in [p for p in args.filters.split(",") if p]:
        ids = np.load(os.path.join(args.dir, f"filter_{pct}.npy")).ravel()
        mask = np.zeros(n, dtype=bool)
        mask[ids] = True
        gt = np.load(os.path.join(args.dir, f"gt_filter_{pct}.npy")).reshape(-1, k)
        out.append((pct, mask, gt))
    return out


def sweep(name, make_search, queries, gt, efs, reps, k, flt=None, pct=None):
    """ef sweep: best-of-reps single-thread QPS and mean recall@k; stops past recall 0.999."""
    print(f"\n{name}" + (f", filter keeping {pct} %" if pct else ""))
    print(f"{'ef':>5} {'recall@10':>9} {'QPS':>10} {'ms/query':>10}")
    out = []
    for ef in efs:
        search = make_search(ef, flt) if flt is not None else make_search(ef)
        for q in queries[:50]:
            search(q)
        secs = float("inf")
        for _ in range(reps):  # best of reps: the machine is shared
            t = time.perf_counter()
            labels = [search(q) for q in queries]
            secs = min(secs, time.perf_counter() - t)
        recall = np.mean([len(set(np.asarray(l).tolist()) & set(g.tolist()) - {-1}) / k
                          for l, g in zip(labels, gt)])
        qps = len(queries) / secs
        print(f"{ef:>5} {recall:>9.4f} {qps:>10.1f} {1000 * secs / len(queries):>10.3f}")
        rec = {"lib": name, "ef": ef, "recall": round(float(recall), 5), "qps": round(qps, 1)}
        if pct:
            rec["filter_pct"] = float(pct)
        print("JSON " + json.dumps(rec))
        out.append((ef, recall, qps))
        if recall > 0.999:
            break
    for target in (0.90, 0.95, 0.99):
        ok = [s for s in out if s[1] >= target]
        if ok:
            ef, r, qps = max(ok, key=lambda s: s[2])
            print(f"recall@10 >= {target}: {qps:.1f} QPS (ef={ef}, recall {r:.4f})")
        else:
            print(f"recall@10 >= {target}: not reached")
    return out


def report(name, make_search, queries, gt, efs, reps, k, filters, make_filter=None):
    sweep(name, make_search, queries, gt, efs, reps, k)
    for pct, mask, fgt in filters:
        flt = make_filter(mask) if make_filter else mask_callback(mask)
        sweep(name, make_search, queries, fgt, FILTER_EFS, reps, k, flt, pct)


def mask_callback(mask):
    allowed = mask.tolist()
    return lambda label: allowed[label]


def run_faiss(peer, base, queries, gt, args, filters):
    import faiss

    n, dims = base.shape
    k = args.k
    faiss.omp_set_num_threads(args.build_threads)
    rss0 = rss_mib()
    if peer == "faiss":
        index = faiss.IndexHNSWFlat(dims, args.m, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexHNSWSQ(dims, faiss.ScalarQuantizer.QT_8bit, args.m,
                                  faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.efc
    t = time.perf_counter()
    if not index.is_trained:
        index.train(base)
    index.add(base)
    build_s = time.perf_counter() - t
    rss1 = rss_mib()
    print(f"\n{peer} {faiss.__version__}: build {n} x {dims}, M={args.m}, "
          f"efConstruction={args.efc}: {build_s:.1f} s = {n / build_s:.0f} vectors/s "
          f"({args.build_threads} threads); RSS +{rss1 - rss0:.0f} MiB")
    faiss.omp_set_num_threads(1)

    def make_search(ef, sel=None):
        params = faiss.SearchParametersHNSW(efSearch=max(ef, k))
        if sel is not None:
            params.sel = sel
        return lambda q: index.search(q[None, :], k, params=params)[1][0]

    def make_filter(mask):
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        sel.bits_ref = bits  # keep the bitmap alive
        return sel

    report(peer, make_search, queries, gt, EFS, args.reps, k, filters, make_filter)


def run_usearch(peer, base, queries, gt, args):
    from usearch.index import Index

    n, dims = base.shape
    k = args.k
    rss0 = rss_mib()
    dtype = "i8" if peer == "usearch-i8" else "f32"
    index = Index(ndim=dims, metric="ip", dtype=dtype, connectivity=args.m,
                  expansion_add=args.efc)
    t = time.perf_counter()
    index.add(np.arange(n), base, threads=args.build_threads)
    build_s = time.perf_counter() - t
    rss1 = rss_mib()
    print(f"\n{peer}: build {n} x {dims}, connectivity={args.m}, expansion_add={args.efc}: "
          f"{build_s:.1f} s = {n / build_s:.0f} vectors/s ({args.build_threads} threads); "
          f"RSS +{rss1 - rss0:.0f} MiB")

    def make_search(ef):
        index.expansion_search = max(ef, k)
        return lambda q: index.search(q, k, threads=1).keys

    sweep(peer, make_search, queries, gt, EFS, args.reps, k)


if __name__ == "__main__":
    main()
