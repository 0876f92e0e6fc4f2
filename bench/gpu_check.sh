#!/usr/bin/env bash
# GPU check for the stylize engine: CUDA tests + GPU benchmark, in under 5 minutes.
#
#   bash bench/gpu_check.sh            # on a CUDA machine: tests, then the benchmark tables
#   bash bench/gpu_check.sh --full     # also compile modes reduce-overhead, max-autotune (~10 min)
#   bash bench/gpu_check.sh --dry-run  # anywhere: checks imports and the bench command on CPU
#
# Wheels carried in .whl/ (e.g. PyAV, kornia for cp312) are installed into /tmp/castrt-site
# first. Results (JSON + log) go to $OUT if set (the device tool's folder), else bench/results/.
# Without a CUDA device the script says so and runs only the CPU-safe dry run.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
MODE=gpu
for arg in "$@"; do
    case "$arg" in
    --dry-run) MODE=dry ;;
    --full) FULL=1 ;;
    -h | --help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $arg (use --dry-run or --full)" >&2; exit 2 ;;
    esac
done
FULL=${FULL:-0}
RESULTS=${OUT:-bench/results}
mkdir -p "$RESULTS"
START=$(date +%s)
say() { echo "== [$(($(date +%s) - START))s] $*"; }

if compgen -G ".whl/*.whl" >/dev/null; then
    say "installing carried wheels from .whl/"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/castrt-site .whl/*.whl || { echo "gpu_check: wheel install failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/castrt-site${PYTHONPATH:+:$PYTHONPATH}
fi

HAS_CUDA=$($PY -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo err)
if [ "$HAS_CUDA" = err ]; then
    echo "gpu_check: $PY cannot import torch" >&2
    exit 1
fi
if [ "$MODE" = gpu ] && [ "$HAS_CUDA" != 1 ]; then
    say "no CUDA device on this machine: running the CPU-safe dry run only"
    MODE=dry
fi

if [ "$MODE" = dry ]; then
    say "dry run: python $($PY -c 'import sys; print(sys.version.split()[0])'), torch $($PY -c 'import torch; print(torch.__version__)')"
    $PY -m pytest tests/realtime/test_engine.py -q -m cuda -p no:cacheprovider || exit 1
    $PY -m realtime.cli bench --untrained --device cpu --sizes 32x24 --precision fp32 \
        --compile off --repeats 1 --json "${OUT:-$(mktemp -d)}/gpu_check_dry.json" || exit 1
    say "dry run passed (the GPU steps would be: pytest -m cuda; bench 1280x720,1920x1080,3840x2160)"
    exit 0
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name())'

say "CUDA tests (pytest -m cuda)"
timeout 150 $PY -m pytest tests -m cuda -q -p no:cacheprovider --continue-on-collection-errors \
    2>&1 | tee "$RESULTS/gpu_pytest.log" | tail -n 25
TEST_RC=${PIPESTATUS[0]}

SIZES=1280x720,1920x1080,3840x2160
say "benchmark: naive baseline and eager engine (fp32, fp16; padding module vs cat)"
timeout 60 $PY -m realtime.cli bench --untrained --device cuda --sizes "$SIZES" \
    --precision fp32,fp16 --pad-mode module,cat --repeats 20 \
    --json "$RESULTS/gpu_bench_eager.json" 2>"$RESULTS/gpu_bench_eager.err"
say "benchmark: fp16 with torch.compile (first call includes compilation)"
COMPILES=default
[ "$FULL" = 1 ] && COMPILES=$COMPILES,reduce-overhead,max-autotune
timeout "$([ "$FULL" = 1 ] && echo 480 || echo 150)" $PY -m realtime.cli bench --untrained --device cuda --sizes "$SIZES" \
    --precision fp16 --compile "$COMPILES" --no-naive --repeats 30 \
    --json "$RESULTS/gpu_bench_compile.json" 2>"$RESULTS/gpu_bench_compile.err"
say "benchmark: fp16 eager, batch 4 (stream pipeline)"
timeout 40 $PY -m realtime.cli bench --untrained --device cuda --sizes 1920x1080 \
    --precision fp16 --batch 4 --no-naive --repeats 10 \
    --json "$RESULTS/gpu_bench_batch.json" 2>"$RESULTS/gpu_bench_batch.err"
say "done (pytest exit code $TEST_RC); JSON and logs in $RESULTS"
exit "$TEST_RC"
