#!/usr/bin/env bash
# GPU check: every CUDA path of emoshare_sb, one table, under 5 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh              # on a machine with a GPU (cuda:0)
#   bash benchmarks/gpu_check.sh --cpu-smoke  # the same steps, small, on the CPU
#   bash benchmarks/gpu_check.sh --dry-run    # print the steps, run nothing
#
# Steps (any failure stops the script with exit status 1 and names the step):
#   1. RTF of HuBERT-Large- and WavLM-Large-shaped random encoders, fp32/bf16/fp16
#   2. feature-cache extraction throughput (hours of audio per minute)
#   3. one ComParE recipe epoch on a generated corpus, --device cuda:0 --precision bf16
#   4. a one-process torchrun run with nccl of an ECAPA YAML (SyncBatchNorm under
#      DDP, pinned memory, fp16 AMP) and the CUDA-only paths checked directly
#   5. emoshare-predict --device cuda:0 on the model exported from step 3
# Run from the repository root with the project's virtualenv (.venv) or PYTHON=.
set -euo pipefail

MODE=gpu
case "${1:-}" in
    --cpu-smoke) MODE=cpu ;;
    --dry-run) MODE=dry ;;
    "") ;;
    *) echo "usage: $0 [--cpu-smoke | --dry-run]" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
TORCHRUN="${TORCHRUN:-$(dirname "$PYTHON")/torchrun}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if [ "$MODE" = cpu ]; then
    DEVICE=cpu; BACKEND=gloo; PRECISION=fp32; AMP=fp32; SMOKE=--smoke; CLIPS=6
else
    DEVICE=cuda:0; BACKEND=nccl; PRECISION=bf16; AMP=fp16; SMOKE=; CLIPS=40
fi

STEP=""
on_error() {
    echo "gpu_check: FAILED at step: $STEP (logs in $WORK)" >&2
    exit 1
}
trap on_error ERR

run() {  # run STEP_NAME COMMAND...: runs (or prints) one step, timed
    STEP="$1"; shift
    if [ "$MODE" = dry ]; then
        echo "[$STEP] $*"
        return 0
    fi
    echo "== $STEP" >&2
    local start=$SECONDS
    "$@" > "$WORK/$STEP.log" 2>&1 || { tail -n 40 "$WORK/$STEP.log" >&2; false; }
    echo "   done in $((SECONDS - start)) s" >&2
}

row() {  # row NAME RESULT DETAILS: one table row as JSON
    "$PYTHON" -c 'import json, sys; json.dump([sys.argv[2:5]], open(sys.argv[1], "w"))' \
        "$RESULTS/$1.json" "$2" "$3" "$4"
}

for needed in recipes/ComParE23/train.py hparams/hubert_attn.yaml hparams/hubert_ecapa.yaml \
        benchmarks/gpu_check.py; do
    [ -f "$ROOT/$needed" ] || { echo "gpu_check: missing $needed" >&2; exit 1; }
done
if [ "$MODE" = gpu ]; then
    STEP=cuda-available
    "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
        || { echo "gpu_check: no CUDA device visible to torch" >&2; exit 1; }
fi

cd "$ROOT"
run 1-rtf "$PYTHON" benchmarks/gpu_check.py rtf --device "$DEVICE" $SMOKE \
    --out "$RESULTS/1-rtf.json"
run 2-cache "$PYTHON" benchmarks/gpu_check.py cache --device "$DEVICE" $SMOKE \
    --out "$RESULTS/2-cache.json"

run corpus "$PYTHON" -m emoshare_sb.synthetic --compare23 "$WORK/corpus" \
    --n_train "$CLIPS" --n_devel 6 --n_test 6 --ssl "$WORK/tiny_hubert"
COMMON=(--data_folder "$WORK/corpus" --ssl_source "$WORK/tiny_hubert" --encoder_dim 32
    --batch_size 4 --number_of_epochs 1 --num_averaged_checkpoints 1)
START=$SECONDS
run 3-recipe "$PYTHON" recipes/ComParE23/train.py hparams/hubert_attn.yaml "${COMMON[@]}" \
    --output_folder "$WORK/run_attn" --device "$DEVICE" --precision "$PRECISION"
[ "$MODE" = dry ] || row 3-recipe "ComParE epoch, --device $DEVICE --precision $PRECISION" \
    "ok in $((SECONDS - START)) s" "$CLIPS train clips, tiny encoder, results.json written"

START=$SECONDS
run 4-torchrun "$TORCHRUN" --nproc_per_node=1 --master_port=29517 \
    recipes/ComParE23/train.py hparams/hubert_ecapa.yaml "${COMMON[@]}" \
    --output_folder "$WORK/run_ecapa" --device "$DEVICE" --precision "$AMP" \
    --distributed_backend "$BACKEND"
[ "$MODE" = dry ] || row 4-torchrun "torchrun, 1 process, $BACKEND, ECAPA YAML, $AMP" \
    "ok in $((SECONDS - START)) s" "$([ "$MODE" = gpu ] && echo 'BatchNorm -> SyncBatchNorm under DDP' || echo 'CPU: BatchNorm kept')"
run 4-cuda-paths "$TORCHRUN" --nproc_per_node=1 --master_port=29518 \
    benchmarks/gpu_check.py cuda-paths --device "$DEVICE" --out "$RESULTS/4-cuda-paths.json"

run 5-export "$PYTHON" -m emoshare_sb.cli.export "$WORK/run_attn" "$WORK/model"
[ "$MODE" = dry ] || "$PYTHON" -c 'import numpy, soundfile, sys; soundfile.write(
    sys.argv[1], 0.1 * numpy.random.default_rng(0).standard_normal(48000), 16000)' \
    "$WORK/clip.wav"
START=$SECONDS
run 5-predict "$PYTHON" -m emoshare_sb.cli.predict "$WORK/clip.wav" -m "$WORK/model" \
    --device "$DEVICE" -o "$WORK/predictions.csv" --no_progress
[ "$MODE" = dry ] || row 5-predict "emoshare-predict --device $DEVICE" \
    "ok in $((SECONDS - START)) s" "$(wc -l < "$WORK/predictions.csv") lines written"

if [ "$MODE" = dry ]; then
    rm -rf "$WORK"
    echo "gpu_check: dry run, nothing executed"
    exit 0
fi
STEP=table
"$PYTHON" benchmarks/gpu_check.py table --results "$RESULTS"
echo "gpu_check: all steps passed (mode $MODE, logs in $WORK)"
