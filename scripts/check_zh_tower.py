#!/usr/bin/env python3
"""Check a query tower written by `glimpse_train::distill::save_tower` (e.g.
`models/glimpse-shapes-zh`) against sentence-transformers: it loads with
`sentence_transformers.SentenceTransformer(dir)`, its module chain is Transformer (a
`DistilBertModel`) → Pooling (mean) → Dense (no bias, identity), `tokenizer.json` loads in
`transformers` too, and for every text of the reference that the `train --distill` run wrote
(`zh_tower_reference.json`: texts, token ids and the burn forward's unnormalised embeddings)
sentence-transformers gives the same ids and the same embedding (cosine >= 0.99999).

Usage:
    python scripts/check_zh_tower.py models/glimpse-shapes-zh target/glimpse-shapes-data/zh_tower_reference.json

Without a reference file it only loads the tower and prints the embeddings' cosines to a few
Chinese / English pairs.

Requires: sentence-transformers 6.2.0, transformers 5.24.0, torch (CPU).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    tower_dir = Path(sys.argv[1])
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    st = SentenceTransformer(str(tower_dir), device="cpu")
    modules = [type(m).__name__ for m in st]
    assert modules == ["Transformer", "Pooling", "Dense"], modules
    transformer, pooling, dense = list(st)
    model = transformer.auto_model
    assert type(model).__name__ == "DistilBertModel", type(model).__name__
    assert pooling.pooling_mode == "mean" if hasattr(pooling, "pooling_mode") else True
    assert dense.linear.bias is None, "the Dense layer has a bias"
    assert type(dense.activation_function).__name__ == "Identity", dense.activation_function
    declared = json.loads((tower_dir / "glimpse_query_tower.json").read_text())
    dims = st.encode(["x"]).shape[1]
    assert declared["dims"] == dims, (declared, dims)
    AutoTokenizer.from_pretrained(str(tower_dir))  # transformers reads the tokenizer alone too
    print(f"{tower_dir}: {modules}, DistilBertModel {model.config.n_layers} layers × "
          f"{model.config.dim}, vocabulary {model.config.vocab_size}, max_seq_length "
          f"{st.max_seq_length}, {dims} dims, declared image model {declared['image_model']!r}")

    if len(sys.argv) == 2:
        pairs = [("一个红色圆形", "a red circle"), ("一个蓝色五角星", "a blue star")]
        for zh, en in pairs:
            a, b = st.encode([zh, en], normalize_embeddings=True)
            print(f"cos({zh}, {en}) = {float(a @ b):.4f}")
        return

    ref = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
    texts = ref["texts"]
    features = st.tokenize(texts)
    ids = [
        [int(i) for i, m in zip(row, mask) if m]
        for row, mask in zip(features["input_ids"].tolist(), features["attention_mask"].tolist())
    ]
    assert ids == ref["ids"], "token ids differ:\n" + "\n".join(
        f"  {t}: {a} vs {b}" for t, a, b in zip(texts, ids, ref["ids"]) if a != b)
    got = st.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
    want = np.asarray(ref["embeddings"], dtype=np.float32)
    assert got.shape == want.shape, (got.shape, want.shape)
    cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    worst = int(cos.argmin())
    print(f"{len(texts)} texts: token ids identical; cosine(sentence-transformers, burn) "
          f"min {cos.min():.7f} ({texts[worst]!r}), max |difference| "
          f"{np.abs(got - want).max():.2e}")
    assert cos.min() >= 0.99999, f"cosine {cos.min()} < 0.99999 for {texts[worst]!r}"
    print("OK")


if __name__ == "__main__":
    main()
