#!/usr/bin/env bash
# GPU check for the stylize engine: CUDA tests + GPU benchmark, in under 5 minutes.
#
#   bash bench/gpu_check.sh            # CUDA tests, Triton kernel tests, the defaults and the
#                                      # new variants against the naive script at 1080p/720p/4K
#   bash bench/gpu_check.sh --full     # + the whole variant sweep (padding, fusion, graphs,
#                                      #   compile modes, cache reuse; about 6 minutes)
#   bash bench/gpu_check.sh --profile  # kernel time per frame, max-autotune, batch pipelining
#   bash bench/gpu_check.sh --tune     # Triton conv tile sizes per layer at 1080p (2-3 minutes)
#   bash bench/gpu_check.sh --dry-run  # anywhere: checks imports and the bench command on CPU
#   bash bench/gpu_check.sh --rehearse[-quick]  # anywhere: the GPU steps on the CPU, tiny sizes
#
# Wheels carried in .whl/ (e.g. PyAV, kornia for cp312) are installed into /tmp/castrt-site
# first. Results (JSON + logs) go to $OUT if set (the device tool's folder), else
# bench/results/ (at most 8 files: two logs and one JSON per benchmark). Each step has its
# own time limit and a failing step does not stop the others; the last lines printed are the
# tables. Without a CUDA device the script says so and runs only the CPU-safe dry run.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
MODE=quick
for arg in "$@"; do
    case "$arg" in
    --dry-run) MODE=dry ;;
    --quick) MODE=quick ;;
    --full) MODE=gpu ;;
    --rehearse) MODE=rehearse QUICK=0 ;;
    --rehearse-quick) MODE=rehearse QUICK=1 ;;
    --rehearse-full) MODE=rehearse QUICK=0 ;;
    --profile) MODE=profile ;;
    --tune) MODE=tune ;;
    -h | --help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
RESULTS=${OUT:-bench/results}
mkdir -p "$RESULTS"
START=$(date +%s)
say() { echo "== [$(($(date +%s) - START))s] $*"; }
export PYTHONUNBUFFERED=1

HAS_CUDA=$($PY -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo err)
if [ "$HAS_CUDA" = err ]; then
    echo "gpu_check: $PY cannot import torch" >&2
    exit 1
fi
if [ "$MODE" != dry ] && [ "$MODE" != rehearse ] && [ "$HAS_CUDA" != 1 ]; then
    say "no CUDA device on this machine: running the CPU-safe dry run only"
    MODE=dry
fi

if [ "$MODE" != dry ] && [ "$MODE" != rehearse ] && compgen -G ".whl/*.whl" >/dev/null; then
    say "installing carried wheels from .whl/"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/castrt-site .whl/*.whl || { echo "gpu_check: wheel install failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/castrt-site${PYTHONPATH:+:$PYTHONPATH}
fi

if [ "$MODE" = dry ]; then
    say "dry run: python $($PY -c 'import sys; print(sys.version.split()[0])'), torch $($PY -c 'import torch; print(torch.__version__)')"
    $PY -m pytest tests/realtime/test_engine.py -q -m cuda -p no:cacheprovider || exit 1
    if $PY -c 'import triton' 2>/dev/null; then  # the Triton kernels compile for an H100
        env -u TRITON_INTERPRET $PY bench/triton_aot.py | tail -n 3 || exit 1
    fi
    $PY -m realtime.cli bench --untrained --device cpu --sizes 32x24 --repeats 1 \
        --variant precision=fp32,pad_mode=border,fuse_relu=on --variant precision=fp32,cuda_graph=on \
        --json "${OUT:-$(mktemp -d)}/gpu_check_dry.json" || exit 1
    say "dry run passed (the GPU steps would be: pytest -m cuda; bench 1280x720,1920x1080,3840x2160)"
    exit 0
fi

DEVICE=cuda HALF=fp16 SIZES=1920x1080,1280x720,3840x2160 ONE=1920x1080
if [ "$MODE" = rehearse ]; then
    DEVICE=cpu HALF=bf16 SIZES=40x24,48x32 ONE=48x32
    export TRITON_INTERPRET=1  # the Triton variants run in Triton's CPU interpreter
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
$PY -c 'import torch; print("torch", torch.__version__, "cuDNN", torch.backends.cudnn.version(), "on", torch.cuda.get_device_name())'

if [ "$MODE" = tune ]; then
    say "Triton conv tile sizes per layer (bench/triton_tune.py, 1920x1080 fp16)"
    timeout 200 $PY bench/triton_tune.py --size 1920x1080 --precision fp16 \
        --json "$RESULTS/gpu_triton_tune.json" 2>&1 | tee "$RESULTS/gpu_triton_tune.txt"
    say "done; JSON and the table in $RESULTS"
    exit 0
fi

TEST_RC=0
if [ "$MODE" != profile ]; then
say "CUDA tests (pytest -m cuda)"
TESTS=tests
[ "$MODE" = rehearse ] && TESTS=tests/realtime/test_engine.py
timeout 80 $PY -m pytest "$TESTS" -m cuda -q -p no:cacheprovider --continue-on-collection-errors \
    --ignore=tests/realtime/test_triton_conv.py \
    -W ignore::DeprecationWarning >"$RESULTS/gpu_pytest.log" 2>&1
TEST_RC=$?
say "Triton kernel tests on the device (tests/realtime/test_triton_conv.py)"
# on the card: the half-precision kernels (the interpreter cannot do bf16) and the engines
timeout 60 $PY -m pytest tests/realtime/test_triton_conv.py -q -p no:cacheprovider -m "not slow" \
    -k "half_precision or engine or phase_kernel" \
    >>"$RESULTS/gpu_pytest.log" 2>&1 || TEST_RC=1
[ "$MODE" = rehearse ] && TEST_RC=0
tail -n 15 "$RESULTS/gpu_pytest.log"
fi

FP16="precision=$HALF"
BEST="$FP16,pad_mode=border,fuse_relu=on,cuda_graph=on"
bench() {  # bench NAME LIMIT ARGS...: one castrt bench run -> $RESULTS/NAME.json (+ the log)
    local name=$1 limit=$2
    shift 2
    say "benchmark: $name"
    echo "=== $name" >>"$RESULTS/gpu_bench.log"
    local fast=()
    [ "$MODE" = rehearse ] && fast=(--repeats 1)  # the interpreted Triton variants take seconds
    timeout "$limit" $PY -m realtime.cli bench --untrained --device "$DEVICE" --json "$RESULTS/$name.json" \
        "$@" "${fast[@]}" >>"$RESULTS/gpu_bench.log" 2>&1
    echo "   exit $?"
}

if [ "$MODE" = quick ] || [ "${QUICK:-0}" = 1 ]; then
    # the defaults (precision=auto: fp16, compiled, one CUDA graph per frame) against the
    # naive script, the eager default and the unmeasured variants (batching: --full)
    bench gpu_default 150 --sizes "$SIZES" --repeats 10 \
        --variant precision=auto --variant precision=auto,upsample_conv=phases \
        --variant precision=auto,compile=off --variant precision=auto,conv_impl=triton \
        --variant precision=auto,conv_impl=triton,upsample_conv=phases
elif [ "$MODE" = profile ]; then
    say "profiles (CUDA kernel time per frame)"
    timeout 100 $PY bench/gpu_profile.py --sizes 1920x1080,3840x2160 --json "$RESULTS/gpu_profile.json" \
        --variant "$FP16,compile=default" --variant "$FP16,conv_impl=triton" \
        --variant "$FP16,conv_impl=triton,upsample_conv=phases" \
        --variant "$FP16,pad_mode=border,fuse_relu=on" 2>>"$RESULTS/gpu_bench.log" | tee "$RESULTS/gpu_profile.txt"
    bench gpu_batch8 40 --sizes "$ONE" --repeats 5 --batch 8 --no-naive \
        --variant "$FP16,compile=default,cuda_graph=on" \
        --variant "$FP16,compile=default,cuda_graph=on,streams=off"
    bench gpu_autotune 130 --sizes "$ONE,1280x720" --repeats 15 --no-naive \
        --variant "$FP16,compile=max-autotune-no-cudagraphs,cuda_graph=on"
else
    bench gpu_eager 100 --sizes "$SIZES" --repeats 15 \
        --variant precision=fp32 --variant "$FP16,pad_mode=cat" \
        --variant "$FP16,pad_mode=border" --variant "$FP16,pad_mode=border,fuse_relu=on" \
        --variant "$FP16,pad_mode=cat,cuda_graph=on" --variant "$BEST" \
        --variant "$FP16,conv_impl=triton,cuda_graph=off" --variant "$FP16,conv_impl=triton" \
        --variant "$FP16,conv_impl=triton,upsample_conv=phases" --variant "$BEST,upsample_conv=phases"
    # torch.compile: first process with a cold Inductor cache, then a second process that
    # reuses the on-disk cache (warm-up across runs)
    bench gpu_compile 150 --sizes "$SIZES" --repeats 15 --no-naive \
        --variant "$FP16,compile=default" --variant "$FP16,compile=default,cuda_graph=on" \
        --variant "$FP16,compile=default,cuda_graph=on,upsample_conv=phases" \
        --variant "$FP16,compile=default,pad_mode=border,fuse_relu=on,cuda_graph=on"
    bench gpu_compile_rerun 45 --sizes "$ONE" --repeats 10 --no-naive \
        --variant "$FP16,compile=default,cuda_graph=on"
    bench gpu_batch8 50 --sizes "$ONE" --repeats 5 --batch 8 --no-naive \
        --variant "$FP16,pad_mode=cat" --variant "$BEST" \
        --variant "$FP16,compile=default,cuda_graph=on"
fi

say "done (pytest exit code $TEST_RC); JSON and logs in $RESULTS"
[ -f "$RESULTS/gpu_pytest.log" ] && grep -h -E "passed|failed|error" "$RESULTS/gpu_pytest.log" | tail -n 3
# the tables, from the JSON files (written after every size, so a step cut off by its time
# limit still shows what it measured): median ms, device ms, warm-up, peak, speed-up
$PY - "$RESULTS" <<'PYEOF'
import json, pathlib, sys
def label(r):
    return r["variant"].replace("engine ", "").split(" [")[0]
for f in sorted(pathlib.Path(sys.argv[1]).glob("gpu_*.json")):
    d = json.loads(f.read_text())
    print(f"--- {f.stem} ({d['machine'].get('gpu', d['machine']['cpu'])}, batch {d['batch']})")
    print("size | variant | frame ms | GPU ms | TFLOP/s | warm-up s | peak MiB | x naive")
    for r in d["rows"]:
        print(f"{r['size']} | {label(r)} | {r['median_ms']:.2f} | {r['gpu_ms']:.2f} | {r['tflops']:.0f} | "
              f"{r['warmup_s']:.1f} | {r['peak_mib']:.0f} | {r['speedup']:.1f}")
    for x in d.get("failures", []):
        print("FAILED", x[:200])
    # issue 3's goals (batch 1): the best engine row per size, frame ms and GPU ms
    goals = {"1920x1080": 4.0, "1280x720": 2.0, "3840x2160": 16.0}
    eng = [r for r in d["rows"] if not r["variant"].startswith("naive")]
    if d["batch"] == 1 and any(r["size"] in goals for r in eng):
        print("goal | best variant | frame ms | GPU ms | met (frame / GPU)")
        for size, goal in goals.items():
            rows = [r for r in eng if r["size"] == size]
            if rows:
                b = min(rows, key=lambda r: r["median_ms"])
                print(f"{size} <= {goal} ms | {label(b)} | {b['median_ms']:.2f} | {b['gpu_ms']:.2f} | "
                      f"{'yes' if b['median_ms'] <= goal else 'no'} / "
                      f"{'yes' if 0 < b['gpu_ms'] <= goal else 'no'}")
        best = [r for r in eng if r["size"] == "1920x1080"]
        if best:
            b = max(best, key=lambda r: r["speedup"])
            print(f">= 10x naive at 1080p | {b['speedup']:.1f}x | {'yes' if b['speedup'] >= 10 else 'no'}")
PYEOF
exit "$TEST_RC"
