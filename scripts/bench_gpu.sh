#!/usr/bin/env bash
# Glimpse's encoder on an NVIDIA GPU through wgpu (Vulkan), ViT-B/32 at batch 64/128/256 with
# random weights made in memory (no checkpoint to carry), then PyTorch on the same GPU.
#
#   bash scripts/bench_gpu.sh                # builds encoder_bench (feature wgpu) if cargo is here
#   BIN=path/to/encoder_bench bash scripts/bench_gpu.sh     # a binary built elsewhere
#
# On a machine without the Vulkan loader, put the .deb files of libvulkan1 (and libegl1
# libglvnd0 libopengl0 libgl1 libglx0 libgles2) in .gl/ and they are unpacked first. Results
# go to stdout and, when $OUT is set, to $OUT/wgpu.jsonl and $OUT/torch.jsonl.
set -u
cd "$(dirname "$0")/.."
exec 2>&1
OUT="${OUT:-$(mktemp -d)}"
if ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && [ ! -f /usr/share/vulkan/icd.d/nvidia_icd.json ] && [ ! -f /etc/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=/tmp
if [ -n "${BIN:-}" ]; then
  case "$BIN" in
    *.xz) python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open('/tmp/eb','wb'))" "$BIN"; chmod +x /tmp/eb; BIN=/tmp/eb ;;
  esac
else
  cargo build --release --features wgpu --example encoder_bench || exit 1
  BIN="${CARGO_TARGET_DIR:-target}/release/examples/encoder_bench"
fi
nproc; date -u
timeout 330 "$BIN" --device wgpu --random vit-b32 --images 64,128,256 --texts 10,77 --cases image,text --warmup 2 --reps 5 | tee $OUT/wgpu.jsonl
echo "wgpu exit $?"; date -u
# PyTorch reference on the same GPU (transformers' default CLIPConfig is ViT-B/32), random weights.
timeout 120 python3 - <<'PY' | tee $OUT/torch.jsonl
import json, time, torch, transformers
from transformers import CLIPConfig, CLIPModel
torch.backends.cuda.matmul.allow_tf32 = False
m = CLIPModel(CLIPConfig()).cuda().eval()
for dtype in (torch.float32, torch.float16):
    mm = m.to(dtype)
    for b in (64, 128, 256):
        x = torch.randn(b, 3, 224, 224, device="cuda", dtype=dtype)
        with torch.inference_mode():
            for _ in range(3): mm.get_image_features(pixel_values=x)
            torch.cuda.synchronize(); t = time.perf_counter()
            for _ in range(10): mm.get_image_features(pixel_values=x)
            torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 10
        print(json.dumps({"impl": "pytorch-cuda", "dtype": str(dtype), "batch": b, "items_per_s": round(b / dt, 1), "torch": torch.__version__}), flush=True)
PY
date -u
