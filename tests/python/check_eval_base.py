"""`lowbit eval --save-base` then `eval --quantized --base`: the comparison read from the saved logits
equals the one that runs the float model, to the last bit; and what does not fit is refused.

argv: the lowbit program, the float model, a scratch directory."""
import json
import pathlib
import subprocess
import sys

lowbit, model, scratch = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
scratch.mkdir(parents=True, exist_ok=True)
quantized = scratch / "eval-base-int4.safetensors"
base = scratch / "eval-base-logits.safetensors"
windows = ["--max-windows", "2"]


def run(*arguments, fails=False):
    result = subprocess.run([lowbit, *map(str, arguments)], capture_output=True, text=True)
    if (result.returncode != 0) != fails:
        sys.exit(f"{' '.join(map(str, arguments))}: exit status {result.returncode}\n"
                 f"{result.stdout}{result.stderr}")
    return result


def run_json(*arguments):
    return json.loads(run(*arguments, "--json").stdout)


run("quantize", model, quantized, "--bits", "4", "--group", "32")
saved = run_json("eval", model, "--save-base", base, *windows)
live = run_json("eval", model, "--quantized", quantized, *windows)
from_file = run_json("eval", model, "--quantized", quantized, "--base", base, *windows)
no_model = run_json("eval", "--quantized", quantized, "--base", base, *windows)

# 2 windows x 256 positions x 512 logits x 4 bytes, plus a header under 4 KB.
assert 2 * 256 * 512 * 4 < saved["saved_base"]["bytes"] < 2 * 256 * 512 * 4 + 4096, saved
assert saved["model"]["perplexity"] == live["model"]["perplexity"], (saved, live)
for result in (from_file, no_model):
    assert result["base"] == base.name, result
    assert result["tokens"] == live["tokens"] == 512, result
    assert result["model"] == live["model"], (result, live)
    assert result["quantized"] == live["quantized"], (result, live)
print("KL", live["quantized"]["kl_divergence"], "from the saved logits too")

# Refused: a saved base for other windows, from another model, or options that do not go together.
refusals = [
    (["eval", model, "--quantized", quantized, "--base", base, "--max-windows", "1"], "windows 2"),
    (["eval", model, "--quantized", quantized, "--base", base, *windows, "--window", "128"],
     "window 256; this evaluation uses 128"),
    (["eval", quantized, "--quantized", quantized, "--base", base, *windows],
     "saved from the model 'stories260K.bin'"),
    (["eval", model, "--base", base], "requires --quantized"),
    (["eval", model, "--quantized", quantized, "--save-base", base], "excludes --save-base"),
    (["eval", "--quantized", quantized], "give the float model"),
]
for arguments, expected in refusals:
    result = run(*arguments, fails=True)
    message = result.stdout + result.stderr
    assert expected in message, f"{arguments}: {expected!r} not in {message!r}"
    print("refused:", message.strip().splitlines()[-1])
