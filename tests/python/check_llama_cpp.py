"""lowbit against llama.cpp itself (llama-cpp-python) on the real SmolLM2-135M GGUF file.

Both run the same file, weights in its Q4_1 and Q8_0 blocks, on the same tokens:
1. The tokens: llama.cpp's tokenization, fed to both (tests/test_gguf_llama.cpp checks that
   lowbit's tokenizer from the same metadata gives tokenizer.json's ids, which
   check_tokenizers.py checks against Hugging Face tokenizers).
2. Greedy continuation of "The capital of France is" (no BOS, as the file says): the same tokens.
3. Logits at every position of a window of 512 held-out tokens (lowbit's forward_batch, rounding
   activations as llama.cpp does: LlamaModel::set_ggml_activation_rounding): the largest
   difference within 1.5 times the spread between llama.cpp's own batched and one-token-at-a-time
   results, and the argmax agreeing about as often. llama.cpp multiplies Q4_1 weights by
   activations rounded to 8 bits (Q8_1 blocks), so no two computations agree bit for bit.
4. Perplexity on 8 windows of 512 (each token from the logits of the position before it, in
   double), lowbit with its float activations: within 0.1% of llama.cpp's.

Needs llama-cpp-python (tests/python/requirements-llama-cpp.txt; it builds llama.cpp from
source). Registered as ctest reference.llama_cpp when LOWBIT_LLAMA_CPP_CHECKS is on.

Usage: check_llama_cpp.py LOWBIT_MODEL_LOGITS DATA_DIR [THREADS]
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import llama_cpp

PERPLEXITY = 0.001

tool, data_dir = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
model_path = os.path.join(data_dir, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
text_path = os.path.join(data_dir, "text", "pride-and-prejudice.txt")
failures = []


def check(condition, message):
    print(("ok:   " if condition else "FAIL: ") + message)
    if not condition:
        failures.append(message)


llm = llama_cpp.Llama(model_path, n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=threads,
                      n_threads_batch=threads, logits_all=True, verbose=False)
vocab = llm.n_vocab()


def llama_logits(tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def lowbit_logits(tokens, batch, ggml_activations=True):
    with tempfile.TemporaryDirectory() as tmp:
        token_file = os.path.join(tmp, "tokens.txt")
        with open(token_file, "w") as f:
            f.write(" ".join(map(str, tokens)))
        out = os.path.join(tmp, "logits.f32")
        args = [tool, model_path, out, "--threads", str(threads), "--tokens", token_file]
        if batch:
            args += ["--batch", str(batch)]
        if ggml_activations:
            args.append("--ggml-activations")
        subprocess.run(args, check=True, timeout=600)
        return np.fromfile(out, dtype=np.float32).reshape(len(tokens), vocab)


# --- 2. Greedy continuation (lowbit rounding activations as llama.cpp does) ----------------
prompt = llm.tokenize(b"The capital of France is", add_bos=False, special=False)
tokens = list(prompt)
llama_continuation, lowbit_continuation = [], []
for _ in range(8):
    logits = llama_logits(tokens)[-1]
    tokens.append(int(np.argmax(logits)))
    llama_continuation.append(tokens[-1])
tokens = list(prompt)
for _ in range(8):
    logits = lowbit_logits(tokens, batch=len(tokens))[-1]
    tokens.append(int(np.argmax(logits)))
    lowbit_continuation.append(tokens[-1])
text = llm.detokenize(llama_continuation).decode(errors="replace")
check(lowbit_continuation == llama_continuation,
      f"greedy continuation: lowbit {lowbit_continuation}, llama.cpp {llama_continuation} "
      f"({text!r})")

# --- 3. Logits at 512 positions of held-out text ------------------------------------------
# llama.cpp rounds activations to 8 bits, so a last-bit difference anywhere upstream can move a
# value to the next code: its own batch-of-one and batched paths differ by that much. lowbit (with
# llama.cpp's rounding) must stay within 1.5 times llama.cpp's own spread, measured here on the
# first 128 positions, and agree on the argmax about as often.
with open(text_path, "rb") as f:
    book = f.read()
held_out = book[int(len(book) * 0.8):]
ids = llm.tokenize(held_out[:60000], add_bos=False, special=False)
window = ids[:512]
reference = llama_logits(window)
one_by_one = llama_cpp.Llama(model_path, n_ctx=1024, n_batch=1, n_ubatch=1, n_threads=threads,
                             n_threads_batch=threads, logits_all=True, verbose=False)
one_by_one.eval(window[:128])
serial = np.array(one_by_one.scores[:128], dtype=np.float32)
scale = float(np.abs(reference).max())
spread = float(np.abs(serial - reference[:128]).max()) / scale
spread_top1 = float(np.mean(np.argmax(serial, 1) == np.argmax(reference[:128], 1)))
mine = lowbit_logits(window, batch=512)
difference = float(np.abs(mine - reference).max()) / scale
check(difference <= 1.5 * spread,
      f"logits at 512 positions: largest difference {difference:.2%} of the largest logit "
      f"{scale:.2f}; llama.cpp batched against one token at a time: {spread:.2%}")
agreement = float(np.mean(np.argmax(mine, axis=1) == np.argmax(reference, axis=1)))
check(agreement >= spread_top1 - 0.02,
      f"top-1 agreement {agreement:.4f}; llama.cpp's own {spread_top1:.4f}")

# --- 4. Perplexity on identical tokens: 8 windows of 512, no BOS ----------------------------
# (The file adds no BOS: each window's first token is context, the next 511 are scored.) lowbit in
# its own float-activation mode, as `lowbit eval` runs it.


def negative_log_likelihoods(logits, tokens):
    logits = logits.astype(np.float64)[:-1]
    targets = np.asarray(tokens[1:])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(targets)), targets]


nll_llama, nll_lowbit = [], []
for w in range(8):
    tokens = ids[w * 512:(w + 1) * 512]
    nll_llama.append(negative_log_likelihoods(llama_logits(tokens), tokens))
    nll_lowbit.append(negative_log_likelihoods(
        lowbit_logits(tokens, batch=512, ggml_activations=False), tokens))
ppl_llama = float(np.exp(np.concatenate(nll_llama).mean()))
ppl_lowbit = float(np.exp(np.concatenate(nll_lowbit).mean()))
relative = abs(ppl_lowbit - ppl_llama) / ppl_llama
check(relative < PERPLEXITY,
      f"perplexity over 8 x 511 predictions: lowbit {ppl_lowbit:.4f}, llama.cpp {ppl_llama:.4f} "
      f"({relative:.3%} apart; at most {PERPLEXITY:.1%})")
# The same logits token by token (forward) as in one batch (forward_batch), on a prefix.
# (Float activations: rounding them to 8 bits would turn the batch's last-bit differences into
# whole code steps.)
by_token = lowbit_logits(window[:64], batch=0, ggml_activations=False)
batched = lowbit_logits(window[:64], batch=64, ggml_activations=False)
check(float(np.abs(by_token - batched).max()) / scale < 1e-4,
      "lowbit token by token equals lowbit batched on the first 64 positions")

if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("check_llama_cpp: lowbit runs SmolLM2 as llama.cpp does")
