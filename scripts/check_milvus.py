#!/usr/bin/env python3
"""Milvus Lite loads a Glimpse export and finds what Glimpse's exact search finds.

Milvus Lite (PyPI `milvus-lite`) is Milvus embedded in a Python process, with the API of
Milvus standalone and distributed (`pymilvus.MilvusClient`): what works here works against a
cluster by changing the URI. The check:

1. reads the export (`Library::export`, one Parquet file) with pyarrow: ids and embeddings
   (a list<float> column), and checks the model fingerprint is in the file's metadata;
2. inserts every row into a Milvus collection (COSINE metric, the export's `id` as primary
   key, `path_display` as a field);
3. searches the query embeddings of `--queries` (JSON written by the Rust test
   `milvus_finds_what_glimpse_finds` in tests/export.rs: each query's embedding and
   Glimpse's exact top-k ids) and compares: mean top-k overlap >= --min-overlap (0.95).
   It also computes the exact top-k with NumPy, to tell an engine's disagreement from a tie.

Usage:
    python3 scripts/check_milvus.py --export photos.parquet --queries queries.json

Needs `milvus-lite pymilvus pyarrow numpy`. When they are not importable, they are installed
into a virtual environment ($GLIMPSE_MILVUS_VENV, else $CARGO_TARGET_DIR/milvus-venv, else
target/milvus-venv) and the script reruns there; when that fails (no network, no wheel for
this platform), it prints "skipped: <why>" and exits 0. Exit 1 when the check fails.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ["milvus-lite", "pymilvus", "pyarrow", "numpy"]
ROOT = Path(__file__).resolve().parent.parent


def venv_dir() -> Path:
    if os.environ.get("GLIMPSE_MILVUS_VENV"):
        return Path(os.environ["GLIMPSE_MILVUS_VENV"])
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return Path(target) / "milvus-venv"


def ensure_packages() -> None:
    """Imports the packages, or installs them into the venv and re-executes there."""
    try:
        import milvus_lite  # noqa: F401
        import numpy  # noqa: F401
        import pyarrow  # noqa: F401
        import pymilvus  # noqa: F401

        return
    except ImportError as e:
        missing = str(e)
    if os.environ.get("GLIMPSE_MILVUS_REEXEC"):
        print(f"skipped: packages not importable after install ({missing})")
        sys.exit(0)
    venv = venv_dir()
    python = venv / "bin" / "python"
    start = time.time()
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--timeout", "30", "--retries", "1", *PACKAGES], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        tail = detail.decode(errors="replace").strip().splitlines()[-1:] if detail else []
        print(f"skipped: cannot install {' '.join(PACKAGES)} into {venv}: {e} {' '.join(tail)}")
        sys.exit(0)
    print(f"installed {' '.join(PACKAGES)} into {venv} in {time.time() - start:.0f} s",
          file=sys.stderr)
    env = dict(os.environ, GLIMPSE_MILVUS_REEXEC="1")
    os.execve(str(python), [str(python), *sys.argv], env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export", required=True, type=Path, help="a Library::export Parquet file")
    ap.add_argument("--queries", required=True, type=Path, help="queries and Glimpse's top-k")
    ap.add_argument("--min-overlap", type=float, default=0.95)
    args = ap.parse_args()
    ensure_packages()

    import numpy as np
    import pyarrow.parquet as pq
    from pymilvus import DataType, MilvusClient

    table = pq.read_table(args.export)
    meta = table.schema.metadata or {}
    model = json.loads(meta[b"glimpse.model"])
    ids = table.column("id").to_numpy()
    emb = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    paths = table.column("path_display").to_pylist()
    dims = model["dims"]
    assert emb.shape == (len(ids), dims), (emb.shape, dims)
    # The Arrow schema in the file makes the embedding a fixed-size list of f32.
    import pyarrow as pa
    etype = table.schema.field("embedding").type
    assert (pa.types.is_fixed_size_list(etype) and etype.list_size == dims
            and pa.types.is_float32(etype.value_type)), f"embedding is {etype}"
    assert pa.types.is_binary(table.schema.field("path").type), table.schema.field("path").type
    print(f"pyarrow reads the embedding as {etype}")
    queries = json.loads(args.queries.read_text())
    k = queries["k"]

    with tempfile.TemporaryDirectory() as tmp:
        client = MilvusClient(str(Path(tmp) / "milvus.db"))
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dims)
        schema.add_field("path", DataType.VARCHAR, max_length=4096)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="COSINE")
        client.create_collection("photos", schema=schema, index_params=index)
        start = time.time()
        for lo in range(0, len(ids), 1000):
            rows = [{"id": int(ids[i]), "vector": emb[i].tolist(), "path": paths[i]}
                    for i in range(lo, min(lo + 1000, len(ids)))]
            client.insert("photos", rows)
        client.load_collection("photos")
        loaded = time.time() - start
        vectors = [q["embedding"] for q in queries["queries"]]
        start = time.time()
        found = client.search("photos", data=vectors, limit=k, output_fields=["id"],
                              search_params={"metric_type": "COSINE"})
        searched = time.time() - start
        client.close()

    # Exact top-k by NumPy, the reference for both engines.
    q = np.array(vectors, dtype=np.float32)
    scores = q @ emb.T
    overlap_milvus, overlap_numpy, milvus_numpy = [], [], []
    for qi, (query, hits) in enumerate(zip(queries["queries"], found)):
        glimpse = set(query["ids"])
        milvus = {int(h["id"]) for h in hits}
        exact = {int(ids[j]) for j in np.argsort(-scores[qi], kind="stable")[:k]}
        n = max(len(glimpse), 1)
        overlap_milvus.append(len(glimpse & milvus) / n)
        overlap_numpy.append(len(glimpse & exact) / n)
        milvus_numpy.append(len(milvus & exact) / max(len(exact), 1))
    mean = float(np.mean(overlap_milvus))
    print(f"milvus-lite: {len(ids)} rows of {dims}-d loaded in {loaded:.2f} s, "
          f"{len(vectors)} searches in {searched:.3f} s")
    print(f"top-{k} overlap with Glimpse: milvus {mean:.4f} (min {min(overlap_milvus):.2f}), "
          f"numpy exact {np.mean(overlap_numpy):.4f}; milvus vs numpy {np.mean(milvus_numpy):.4f}")
    print(f"overlap={mean:.4f}")
    if mean < args.min_overlap:
        print(f"FAIL: mean overlap {mean:.4f} < {args.min_overlap}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
