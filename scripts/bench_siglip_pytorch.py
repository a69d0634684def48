#!/usr/bin/env python3
"""Times transformers' SiglipModel (2 threads) on the full-size random checkpoint of
`make_siglip_fixtures.py --full`: the 21 fixture images in one batch and the 6 reference texts
(padded to 64), one warm-up each. Compare with the timings `siglip_full_size` prints, run in
the same window (docs/MODELS.md).

    python3 scripts/bench_siglip_pytorch.py [DIR]
"""
import sys, time, json, torch, numpy as np
from pathlib import Path
from transformers import SiglipModel, AutoTokenizer
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
from PIL import Image
torch.set_num_threads(2)
d = Path(sys.argv[1] if len(sys.argv) > 1 else "/root/.cache/glimpse/siglip-base-random")
model = SiglipModel.from_pretrained(d).eval()
tok = AutoTokenizer.from_pretrained(d)
proc = SiglipImageProcessorPil.from_pretrained(d)
ref = json.loads((d / "reference/reference.json").read_text())
pix = torch.from_numpy(np.stack([proc(images=Image.open(i["file"]), return_tensors="np")["pixel_values"][0] for i in ref["images"]]))
ids = torch.tensor([t["ids"] for t in ref["texts"]])
with torch.no_grad():
    model.get_image_features(pixel_values=pix[:2])
    t = time.perf_counter(); model.get_image_features(pixel_values=pix); ti = time.perf_counter() - t
    model.get_text_features(input_ids=ids)
    t = time.perf_counter(); model.get_text_features(input_ids=ids); tt = time.perf_counter() - t
print(f"pytorch: {len(pix)} images in {ti:.2f} s ({ti/len(pix)*1e3:.0f} ms/img); {len(ids)} texts in {tt:.2f} s")
