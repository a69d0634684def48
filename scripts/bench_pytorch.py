#!/usr/bin/env python3
"""Times the PyTorch reference (Hugging Face `transformers` CLIP) on the shapes that
`examples/encoder_bench.rs` times, and prints the same JSON rows with "impl": "pytorch".

    python3 scripts/bench_pytorch.py --model ~/.cache/glimpse/vit-b32-random [--threads 2]

Pinned versions (scripts/requirements-bench.txt): torch 2.15.0, transformers 5.24.0,
pillow 13.0.0. Other versions run too; the versions used are printed on stderr.

Rows: image batches (ms per image), texts of N tokens at batch 1 run as N tokens
("text") and padded to 77 as `CLIPProcessor(padding="max_length")` does ("text_pad77"),
the cold start of a query process (text tower load + first query, Python imports excluded),
and the decode + preprocess of one 12 MP JPEG by Pillow + CLIPImageProcessor, in full
("exact") and with Pillow's DCT scaling (`Image.draft`, "reduced").
"""

import argparse
import io
import json
import statistics
import sys
import time


LAST_CPU_MS = [0.0]


def median_ms(fn, reps, warmup):
    """Median wall milliseconds of `fn`; the median CPU milliseconds of this process (all
    threads, which load on a shared machine does not inflate) go to LAST_CPU_MS[0]."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(max(reps, 1)):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    LAST_CPU_MS[0] = statistics.median(cpu)
    return statistics.median(times)


def row(**fields):
    fields["impl"] = "pytorch"
    print(json.dumps(fields), flush=True)


def big_jpeg():
    """A 4000x3000 photo-like JPEG (quality 90), like encoder_bench's."""
    import numpy as np
    from PIL import Image

    w, h = 4000, 3000
    rng = np.random.default_rng(7)
    fx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    fy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    base = np.stack(
        [
            60 + 150 * fx + 0 * fy,
            40 + 120 * fy + 0 * fx,
            90 + 80 * np.sin(fx * 9) + 0 * fy,
        ],
        axis=-1,
    )
    noisy = base + rng.integers(-10, 11, size=(h, w, 1))
    img = Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint directory (HF layout)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--images", default="1,8,32")
    ap.add_argument("--texts", default="5,20,77")
    ap.add_argument("--cases", default="cold_text,image,text,jpeg")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    cases = set(args.cases.split(","))

    import os

    import PIL
    import torch
    import transformers
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTextModelWithProjection, CLIPTokenizerFast

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"pillow {PIL.__version__}, threads {torch.get_num_threads()}",
        file=sys.stderr,
    )

    if "cold_text" in cases:
        t = time.perf_counter()
        tok = CLIPTokenizerFast.from_pretrained(args.model)
        text_model = CLIPTextModelWithProjection.from_pretrained(args.model).eval()
        load = (time.perf_counter() - t) * 1e3
        with torch.inference_mode():
            ids = tok(["a dog on the beach at sunset"], return_tensors="pt")
            text_model(**ids).text_embeds
        total = (time.perf_counter() - t) * 1e3
        row(case="cold_text", load_ms=round(load, 1), ms_per_item=round(total, 1))
        del text_model

    if cases & {"image", "text"}:
        model = CLIPModel.from_pretrained(args.model).eval()
        size = model.config.vision_config.image_size
        with torch.inference_mode():
            if "image" in cases:
                for batch in map(int, args.images.split(",")):
                    pixels = torch.randn(batch, 3, size, size)
                    ms = median_ms(lambda: model.get_image_features(pixel_values=pixels), args.reps, args.warmup)
                    row(case="image", batch=batch, ms_per_item=round(ms / batch, 3),
                        cpu_ms_per_item=round(LAST_CPU_MS[0] / batch, 3),
                        items_per_s=round(1e3 * batch / ms, 2), runs=args.reps)
            if "text" in cases:
                for tokens in map(int, args.texts.split(",")):
                    body = [320 + i * 37 for i in range(max(tokens - 2, 0))]
                    ids = torch.tensor([[49406] + body + [49407]])
                    ms = median_ms(lambda: model.get_text_features(input_ids=ids), args.reps, args.warmup)
                    row(case="text", tokens=tokens, ms_per_item=round(ms, 3),
                        cpu_ms_per_item=round(LAST_CPU_MS[0], 3),
                        items_per_s=round(1e3 / ms, 2), runs=args.reps)
                    padded = torch.full((1, 77), 49407)
                    padded[0, : ids.shape[1]] = ids[0]
                    mask = torch.zeros(1, 77, dtype=torch.long)
                    mask[0, : ids.shape[1]] = 1
                    ms = median_ms(lambda: model.get_text_features(input_ids=padded, attention_mask=mask),
                                   args.reps, args.warmup)
                    row(case="text_pad77", tokens=tokens, ms_per_item=round(ms, 3),
                        items_per_s=round(1e3 / ms, 2), runs=args.reps)

    if "jpeg" in cases:
        from PIL import Image

        data = big_jpeg()
        proc = CLIPImageProcessor.from_pretrained(args.model)
        side = proc.size.get("shortest_edge", 224)

        def run(reduced):
            img = Image.open(io.BytesIO(data))
            if reduced:
                img.draft("RGB", (side, side))
            proc(images=img.convert("RGB"), return_tensors="pt")

        for mode in ("exact", "reduced"):
            ms = median_ms(lambda: run(mode == "reduced"), args.reps, args.warmup)
            row(case="jpeg", mode=mode, megapixels=12, ms_per_item=round(ms, 1))


if __name__ == "__main__":
    main()
