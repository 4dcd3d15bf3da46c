#!/usr/bin/env bash
# GPU check for the in-process Stable Diffusion backend (IMAGE_BACKEND=onnx), in one go.
#
#   bash bench/gpu-check.sh              # on the GPU machine, from the repository root
#   bash bench/gpu-check.sh --make-kit   # on a machine with node_modules: build .tmp/gpu-kit.tgz
#
# What it does on the GPU machine:
#   1. records the GPU, driver and the CUDA/cuDNN/Vulkan libraries the loader can see;
#   2. makes sure onnxruntime-node's CUDA provider is installed: already there, or
#      `npm run install:cuda` (needs NuGet),
#      or copied from a local onnxruntime-gpu 1.30 Python wheel; else it says why not;
#   3. runs bench/onnx.ts with ORT_EXECUTION_PROVIDERS=cuda, =webgpu and =cpu (each must
#      really run on that provider), on the tiny model and on a heavier one;
#   4. writes everything to $OUT/gpu-check.md (or ./gpu-check.md) and stdout.
#
# A machine without network and without node_modules runs from the kit instead: build it
# with --make-kit where node_modules exists and carry .tmp/gpu-kit.tgz (about 30 MB: the
# bundled bench and worker, onnxruntime-node's linux-x64 binaries, sharp).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KIT_TGZ="$ROOT/.tmp/gpu-kit.tgz"

make_kit() {
  local kit="$ROOT/.tmp/gpu-kit"
  rm -rf "$kit" && mkdir -p "$kit/node_modules/onnxruntime-node/bin/napi-v6/linux" "$kit/node_modules/@img"
  local banner="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
  node_modules/.bin/esbuild bench/onnx.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --external:onnxruntime-node --external:sharp --banner:js="$banner" --outfile="$kit/bench.mjs" || return 1
  # The bundled bench starts its worker thread from ./worker-thread.js beside it (DiffusionWorker resolves its own file).
  node_modules/.bin/esbuild packages/onnx-diffusion/src/worker-thread.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --external:onnxruntime-node --banner:js="$banner" --outfile="$kit/worker-thread.js" || return 1
  cp -r node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist "$kit/node_modules/onnxruntime-node/"
  cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 "$kit/node_modules/onnxruntime-node/bin/napi-v6/linux/"
  cp -r node_modules/onnxruntime-common node_modules/sharp node_modules/detect-libc node_modules/semver "$kit/node_modules/"
  cp -r node_modules/@img/colour node_modules/@img/sharp-linux-x64 node_modules/@img/sharp-libvips-linux-x64 "$kit/node_modules/@img/"
  tar -C "$ROOT/.tmp" -czf "$KIT_TGZ" gpu-kit && rm -rf "$kit"
  echo "built $KIT_TGZ ($(du -h "$KIT_TGZ" | cut -f1)); carry it to the GPU machine and run: bash bench/gpu-check.sh"
}

if [ "${1:-}" = "--make-kit" ]; then make_kit; exit $?; fi

OUT_DIR="${OUT:-$ROOT}"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/gpu-check.md"
: >"$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }
block() { echo '```' >>"$REPORT"; tee -a "$REPORT"; echo '```' >>"$REPORT"; }

say "# GPU check: in-process Stable Diffusion (onnxruntime-node)"
say ""
say "Date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -srm); node: $(node --version 2>/dev/null || echo missing)"
say ""
say "## Machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi not available"; } | block
{ ldconfig -p 2>/dev/null | grep -E 'libcudart\.so|libcublas\.so|libcublasLt\.so|libcudnn\.so|libcufft\.so|libcurand\.so|libvulkan\.so' || echo "no CUDA/cuDNN/Vulkan libraries in the ldconfig cache"; } | block
{ ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null || echo "no Vulkan ICD files (WebGPU/Dawn needs one for the GPU)"; } | block

# --- which node_modules to run from -----------------------------------------------------------
if [ -d node_modules/onnxruntime-node ] && [ -x node_modules/.bin/tsx ]; then
  MODE=repo
  ORT_DIR="$ROOT/node_modules/onnxruntime-node"
  RUN_BENCH=("$ROOT/node_modules/.bin/tsx" "$ROOT/bench/onnx.ts")
elif [ -f "$KIT_TGZ" ]; then
  MODE=kit
  tar -C "$ROOT/.tmp" -xzf "$KIT_TGZ"
  ORT_DIR="$ROOT/.tmp/gpu-kit/node_modules/onnxruntime-node"
  RUN_BENCH=(node "$ROOT/.tmp/gpu-kit/bench.mjs")
else
  say "No node_modules and no $KIT_TGZ: run \`npm ci\` (needs the npm registry) or build the kit with \`bash bench/gpu-check.sh --make-kit\` elsewhere and carry it."
  exit 2
fi
BIN="$ORT_DIR/bin/napi-v6/linux/x64"
say "Running from: $MODE ($ORT_DIR)"

# --- CUDA provider -------------------------------------------------------------------------------
say ""
say "## CUDA execution provider"
if [ -f "$BIN/libonnxruntime_providers_cuda.so" ]; then
  say "Already installed in $BIN."
else
  if [ "$MODE" = repo ]; then
    say "Trying: npm run install:cuda (downloads Microsoft.ML.OnnxRuntime.Gpu.Linux 1.30.0 from NuGet)"
    { timeout 600 npm run install:cuda 2>&1 | tail -n 15; } | block
  fi
  if [ ! -f "$BIN/libonnxruntime_providers_cuda.so" ]; then
    # Offline: the same release's provider libraries from a Python onnxruntime-gpu wheel, if one is installed.
    WHEEL=$(python3 - 2>/dev/null <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("onnxruntime")
if spec and spec.origin:
    capi = os.path.join(os.path.dirname(spec.origin), "capi")
    import onnxruntime
    if onnxruntime.__version__.startswith("1.30") and os.path.exists(os.path.join(capi, "libonnxruntime_providers_cuda.so")):
        print(capi)
PY
)
    if [ -n "$WHEEL" ]; then
      cp "$WHEEL/libonnxruntime_providers_cuda.so" "$WHEEL/libonnxruntime_providers_shared.so" "$BIN/" && say "Copied the CUDA provider from the onnxruntime-gpu 1.30 wheel at $WHEEL."
    fi
  fi
  [ -f "$BIN/libonnxruntime_providers_cuda.so" ] || say "**Not installed**: no network to NuGet and no local onnxruntime-gpu 1.30 libraries; the cuda run below will report the fallback."
fi
# cuDNN/cuBLAS from pip's nvidia-* wheels, when the system has none on its path.
NVLIBS=$(python3 -c 'import nvidia, os; root = os.path.dirname(nvidia.__path__[0] + "/"); print(":".join(os.path.join(root, d, "lib") for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, "lib"))))' 2>/dev/null || true)
if [ -n "$NVLIBS" ]; then export LD_LIBRARY_PATH="$NVLIBS:${LD_LIBRARY_PATH:-}"; say "Added pip nvidia-* libraries to LD_LIBRARY_PATH."; fi
{ ldd "$BIN/libonnxruntime_providers_cuda.so" 2>&1 | grep -E 'not found|cudnn|cublas|cudart' || echo "(provider library absent)"; } | block

# --- benches -------------------------------------------------------------------------------------
STATUS=0
bench() { # label, provider list, extra env…
  local label=$1 providers=$2; shift 2
  say ""
  say "## bench: $label (ORT_EXECUTION_PROVIDERS=$providers)"
  if env "$@" ORT_EXECUTION_PROVIDERS="$providers" BENCH_REQUIRE_PROVIDER=1 BENCH_WRITE=0 BENCH_OUT="$REPORT" LOG_LEVEL=info timeout 300 "${RUN_BENCH[@]}" >"$OUT_DIR/bench-$label.log" 2>&1; then
    say "ok (full output: bench-$label.log)"
  else
    local code=$?
    STATUS=1
    say "**failed** (exit $code); last lines:"
    tail -n 12 "$OUT_DIR/bench-$label.log" | block
  fi
}
bench cuda-tiny cuda BENCH_RUNS=5 BENCH_STEPS=20
bench cuda-heavy cuda BENCH_RUNS=3 BENCH_STEPS=20 BENCH_UNET_CHANNELS=320 BENCH_UNET_LAYERS=8
bench webgpu-tiny webgpu BENCH_RUNS=5 BENCH_STEPS=20
bench webgpu-heavy webgpu BENCH_RUNS=3 BENCH_STEPS=20 BENCH_UNET_CHANNELS=320 BENCH_UNET_LAYERS=8
bench cpu-tiny cpu BENCH_RUNS=3 BENCH_STEPS=10
say ""
say "Done; report: $REPORT"
exit $STATUS
