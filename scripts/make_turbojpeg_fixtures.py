#!/usr/bin/env python3
"""Pillow's decoded pixels of JPEGs, for the `turbojpeg` decoding feature's parity test
(crates/encoder/tests/turbojpeg_parity.rs, issue 15 item 6).

For each JPEG below, writes what Pillow (which links libjpeg-turbo) decodes, losslessly as PNG:

* `<name>.full.png`: `Image.open(p).convert("RGB")` (greyscale JPEGs: `.convert("L")`, the
  same bytes replicated by `convert("RGB")`): what `CLIPImageProcessor` works on;
* `<name>.draft<k>.png` for k in 2, 4, 8: `im.draft(mode, (ceil(w/k), ceil(h/k)))` then the same
  conversion: libjpeg's DCT scaling by 1/k, which the reduced-scale decode asks for.

The JPEGs are the preprocessing fixtures of `scripts/make_fixtures.py` (made by Pillow from
synthetic pictures) plus three written here from a real photo (scikit-learn's `china.jpg`,
shipped with the package): an odd-sized 4:2:0 baseline, a progressive one and one with restart
markers, so the DCT scaling sees partial blocks and every scan type.

    python3 scripts/make_turbojpeg_fixtures.py   # rewrites crates/encoder/tests/fixtures/turbojpeg
"""
import json
import math
import os

import PIL
from PIL import Image, features

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "encoder", "tests", "fixtures")
OUT = os.path.join(ROOT, "turbojpeg")
IMAGES = os.path.join(ROOT, "images")


def make_photos():
    from sklearn.datasets import load_sample_images

    china = Image.fromarray(load_sample_images().images[0])  # 640x427
    odd = china.resize((501, 377), Image.Resampling.BICUBIC)
    odd.save(os.path.join(OUT, "china_501x377_q90.jpg"), quality=90, subsampling=2)
    china.crop((120, 60, 420, 285)).save(
        os.path.join(OUT, "china_progressive_q85.jpg"), quality=85, progressive=True
    )
    # restart markers every row of MCUs (Pillow's `restart_marker_rows`)
    china.crop((200, 100, 461, 299)).save(
        os.path.join(OUT, "china_restart_q92_444.jpg"), quality=92, subsampling=0,
        restart_marker_rows=1,
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    make_photos()
    sources = [os.path.join(IMAGES, n) for n in ("photo_q90_420.jpg", "photo_q95_444.jpg", "gray_q90.jpg")]
    sources += sorted(os.path.join(OUT, n) for n in os.listdir(OUT) if n.endswith(".jpg"))
    meta = {"pillow": PIL.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"), "images": []}
    for path in sources:
        name = os.path.basename(path)[: -len(".jpg")]
        im = Image.open(path)
        mode = "L" if im.mode == "L" else "RGB"
        w, h = im.size
        im.convert(mode).save(os.path.join(OUT, name + ".full.png"))
        entry = {"file": os.path.relpath(path, ROOT), "name": name, "width": w, "height": h,
                 "mode": mode, "drafts": {}}
        for k in (2, 4, 8):
            im = Image.open(path)
            im.draft(mode, (w // k, h // k))  # Pillow picks scale min(w // (w // k), ...) = k
            d = im.convert(mode)
            assert d.size == (math.ceil(w / k), math.ceil(h / k)), (name, k, d.size)
            d.save(os.path.join(OUT, "%s.draft%d.png" % (name, k)))
            entry["drafts"][str(k)] = list(d.size)
        meta["images"].append(entry)
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("wrote", OUT, len(meta["images"]), "images")


if __name__ == "__main__":
    main()
