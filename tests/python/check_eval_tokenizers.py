"""`lowbit eval` and `lowbit quantize --method gptq` find a Hugging Face model's own tokenizer.json
and follow the evaluation protocol without BOS; a tokenizer that does not fit the model, or none
beside it, is a clear error.

The model is stories260K as a Hugging Face checkpoint (vocabulary 512), copied into a scratch
directory beside a byte-level tokenizer.json built here: GPT-2's 256 byte characters and BPE merges
learned from the evaluation text, 512 tokens in all. stories260K was trained on other ids, so its
perplexity here means nothing; what is checked is which tokenizer and protocol the program used.

argv: the lowbit program, the data directory (../shared/data), a scratch directory."""
import collections
import json
import pathlib
import re
import shutil
import subprocess
import sys

lowbit, data, scratch = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
shutil.rmtree(scratch, ignore_errors=True)
scratch.mkdir(parents=True)
text_file = data / "text" / "pride-and-prejudice.txt"


def run(*arguments, fails=False, json_output=False):
    result = subprocess.run([lowbit, *map(str, arguments)], capture_output=True, text=True)
    if (result.returncode != 0) != fails:
        sys.exit(f"{' '.join(map(str, arguments))}: exit status {result.returncode}\n"
                 f"{result.stdout}{result.stderr}")
    # With --json, stdout is the JSON alone (a slow run also reports progress on stderr).
    return result.stdout if json_output else result.stdout + result.stderr


def bytes_to_unicode():
    """GPT-2's map of bytes to printable characters (tokenizers' ByteLevel)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    chars, n = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def byte_level_tokenizer(vocab_size):
    """A byte-level BPE tokenizer.json of `vocab_size` tokens, merges learned from the text."""
    byte_chars = bytes_to_unicode()
    words = collections.Counter(
        "".join(byte_chars[b] for b in word.encode())
        for word in re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text_file.read_text()))
    splits = {word: list(word) for word in words}
    vocab = {c: i for i, c in enumerate(byte_chars[b] for b in range(256))}
    merges = []
    while len(vocab) < vocab_size:
        pairs = collections.Counter()
        for word, count in words.items():
            for pair in zip(splits[word], splits[word][1:]):
                pairs[pair] += count
        (left, right), _ = pairs.most_common(1)[0]
        merges.append([left, right])
        vocab[left + right] = len(vocab)
        for word, parts in splits.items():
            i, merged = 0, []
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == left and parts[i + 1] == right:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            splits[word] = merged
    return {"version": "1.0", "added_tokens": [], "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
            "post_processor": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": merges}}


model = scratch / "model"
model.mkdir()
for name in ("config.json", "model.safetensors"):
    shutil.copy(data / "stories260K-hf" / "f32" / name, model / name)

# No tokenizer beside the model: the error says what was looked for.
message = run("eval", model, "--max-windows", "1", fails=True)
assert "looked for tokenizer.json, then llama2.c's tokenizer.bin" in message, message
print("refused:", message.strip())

# tokenizer.json beside it: picked up, no BOS (its post-processor adds none), windows of 65.
(model / "tokenizer.json").write_text(json.dumps(byte_level_tokenizer(512)))
windows = ["--max-windows", "2", "--window", "64"]
message = run("eval", model, *windows)
assert "tokenizer tokenizer.json (tokenizer.json)" in message, message
assert "no BOS (the tokenizer adds none): 65 text tokens per window" in message, message
result = json.loads(run("eval", model, *windows, "--json", json_output=True))
assert result["tokenizer"] == "tokenizer.json (tokenizer.json)", result
assert result["bos"] is None and result["tokens"] == 128, result
print("tokenizer.json, no BOS: perplexity", result["model"]["perplexity"])

# The same directory's index path finds it too; an explicit --tokenizer wins.
message = run("eval", model / "model.safetensors", *windows, "--tokenizer",
              data / "stories260K" / "tok512.bin")
assert "tokenizer tok512.bin (llama2.c)" in message and "BOS (token 1) then 64" in message, message

# Calibration uses it as well (GPTQ), then a saved base without BOS compares as the live run does.
quantized = scratch / "gptq.safetensors"
run("quantize", model, quantized, "--method", "gptq", "--bits", "4", "--group", "32",
    "--calibration-windows", "1")
base = scratch / "base.safetensors"
run("eval", model, "--save-base", base, *windows)
live = json.loads(run("eval", model, "--quantized", quantized, *windows, "--json",
                      json_output=True))
from_file = json.loads(run("eval", model, "--quantized", quantized, "--base", base, *windows,
                           "--json", json_output=True))
assert live["quantized"] == from_file["quantized"] and live["bos"] is None, (live, from_file)
assert live["quantized"]["kl_divergence"] > 0, live
print("gptq, KL", live["quantized"]["kl_divergence"], "live and from the saved base")

# A tokenizer with more tokens than the model has rows: refused, naming both.
shutil.copy(data / "smollm2-135m" / "hf-tokenizer" / "tokenizer.json", model / "tokenizer.json")
message = run("eval", model, "--max-windows", "1", fails=True)
assert "49152 tokens, more than the 512 rows" in message and "'model'" in message, message
print("refused:", message.strip())
