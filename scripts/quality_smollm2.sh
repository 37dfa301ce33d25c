#!/usr/bin/env bash
# The SmolLM2 tables of docs/quality.md: every method at 4, 3 and 2 bits on SmolLM2-135M-Instruct
# (../shared/data/smollm2-135m, GGUF), against the file's own weights (dequantized as ggml does) as
# the reference. The reference's logits are saved once (lowbit eval --save-base); each method is
# quantized with `lowbit quantize` and compared with them (`lowbit eval --base`): perplexity on the
# held-out 20% of Pride and Prejudice, KL divergence and top-1 agreement, windows of 512 tokens
# without BOS (the file adds none).
#
# Usage: scripts/quality_smollm2.sh [LOWBIT] [WINDOWS] [CALIBRATION_WINDOWS]
#   LOWBIT: the lowbit program (default build/tools/lowbit/lowbit); WINDOWS: evaluation windows of
#   512 (default 16); CALIBRATION_WINDOWS: gptq and awq's windows of 256 tokens (default 64).
# Prints a Markdown table; the quantized files go to a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
lowbit=${1:-build/tools/lowbit/lowbit}
windows=${2:-16}
calibration=${3:-64}
model=../shared/data/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$lowbit" eval "$model" --window 512 --max-windows "$windows" --save-base "$work/base.safetensors" \
  --json > "$work/reference.json"
python3 - "$work/reference.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"reference: {r['model']['file']} (its own Q4_1/Q8_0 weights), {r['tokens']} tokens, "
      f"perplexity {r['model']['perplexity']:.3f}\n")
print("| method | bits/weight | perplexity | KL (nats) | top-1 |")
print("|---|---:|---:|---:|---:|")
EOF

# name | quantize options
configurations=(
  "rtn 4-bit g32 (the source's group)|--method rtn --bits 4 --group 32"
  "rtn 4-bit g128|--method rtn --bits 4 --group 128"
  "rtn 4-bit per channel|--method rtn --bits 4 --group 0"
  "rtn 4-bit g128 mse-clip|--method rtn --bits 4 --group 128 --mse-clip"
  "hadamard-rtn 4-bit g128|--method hadamard-rtn --bits 4 --group 128"
  "hqq 4-bit g128|--method hqq --bits 4 --group 128"
  "nf4 g64|--method nf4"
  "mxfp4|--method mxfp4"
  "nvfp4|--method nvfp4"
  "kmeans 4-bit (codebook per channel)|--method kmeans --bits 4"
  "higgs 4-bit p=2|--method higgs --bits 4"
  "gptq 4-bit g128|--method gptq --bits 4 --group 128 --calibration-windows $calibration"
  "awq 4-bit g128|--method awq --bits 4 --group 128 --calibration-windows $calibration"
  "fp8 e4m3 per channel|--method fp8"
  "rtn 3-bit g128|--method rtn --bits 3 --group 128"
  "hqq 3-bit g128|--method hqq --bits 3 --group 128"
  "kmeans 3-bit|--method kmeans --bits 3"
  "higgs 3-bit p=2|--method higgs --bits 3"
  "gptq 3-bit g128|--method gptq --bits 3 --group 128 --calibration-windows $calibration"
  "awq 3-bit g128|--method awq --bits 3 --group 128 --calibration-windows $calibration"
  "rtn 2-bit g64|--method rtn --bits 2 --group 64"
  "hqq 2-bit g64|--method hqq --bits 2 --group 64"
  "kmeans 2-bit|--method kmeans --bits 2"
  "higgs 2-bit p=2|--method higgs --bits 2"
  "gptq 2-bit g64|--method gptq --bits 2 --group 64 --calibration-windows $calibration"
)
for entry in "${configurations[@]}"; do
  name=${entry%%|*}
  read -r -a options <<< "${entry#*|}"
  file="$work/q.safetensors"
  if ! "$lowbit" quantize "$model" "$file" "${options[@]}" --json > "$work/quantize.json" \
       2> "$work/quantize.err"; then
    echo "| $name | failed: $(tail -n 1 "$work/quantize.err") | | | |"
    continue
  fi
  "$lowbit" eval --quantized "$file" --base "$work/base.safetensors" --window 512 \
    --max-windows "$windows" --tokenizer "$model" --json > "$work/eval.json"
  python3 - "$name" "$work/quantize.json" "$work/eval.json" <<'EOF'
import json, sys
name, quantize, evaluation = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
q = evaluation["quantized"]
print(f"| {name} | {quantize['bits_per_weight']:.3f} | {q['perplexity']:.3f} | "
      f"{q['kl_divergence']:.4f} | {q['top1_agreement']:.4f} |", flush=True)
EOF
done
