#!/usr/bin/env bash
# The GPU check of lstmtui (about 4 minutes on one GPU): training throughput of 2x512 and 3x1024 at
# batch 256 in fp32 and bf16 against a bare nn.LSTM loop at the same shapes, the time to 1.40 nats on
# tinyshakespeare under --time-budget, generation chars/s and first-character latency, and a one-GPU
# DDP run under torchrun; one table at the end (lstmtui.bench.gpu measures).
#
#   scripts/gpu_check.sh --corpus PATH [--wheels DIR] [--json FILE]   on a machine with a GPU
#   scripts/gpu_check.sh --cpu-smoke                                  the same, tiny, on the CPU (CI)
#
# It runs from this checkout with the machine's own Python and torch (python3, or $PYTHON): nothing
# is installed into that Python. What lstmtui needs besides torch (numpy, safetensors, rich,
# threadpoolctl) is checked first; wheels for what is missing can be given with --wheels DIR and
# are unpacked into a private folder. The corpus comes on the command line, so a copy of it can
# travel with the checkout without being committed. Profiles, caches and run records go to a
# temporary folder that is removed at the end.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
case "$python" in */*) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;; esac
wheels=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) wheels="$2"; shift 2 ;;
        --corpus|--json) args+=("$1" "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
        --cpu-smoke) args+=("$1"); shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

work="$(mktemp -d "${TMPDIR:-/tmp}/lstmtui-gpu-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [ -n "$wheels" ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --target "$work/site" "$wheels"/*.whl
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export LSTMTUI_HOME="$work/home" LSTMTUI_CACHE="$work/cache" LSTMTUI_RUNS="$work/runs"
export GLOO_SOCKET_IFNAME="${GLOO_SOCKET_IFNAME:-lo}" PYTHONUNBUFFERED=1

missing="$("$python" - <<'EOF'
import importlib.util
need = ("torch", "numpy", "safetensors", "rich", "threadpoolctl")
print(" ".join(name for name in need if importlib.util.find_spec(name) is None))
EOF
)"
if [ -n "$missing" ]; then
    echo "gpu_check: $python lacks: $missing (give wheels for them with --wheels DIR)" >&2
    exit 2
fi

cd "$work"
"$python" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, devices: {torch.cuda.device_count()}")'
exec "$python" -m lstmtui.bench.gpu "${args[@]}"
