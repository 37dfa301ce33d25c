"""Evaluation speed of lowbit and llama.cpp side by side, on the same tokens and threads, in one run.

The model: SmolLM2-135M-Instruct (../shared/data/smollm2-135m, GGUF: Q4_1 linear weights, Q8_0
embedding and classifier). The work: windows of 512 tokens of the held-out 20% of Pride and
Prejudice, no BOS (the file adds none), logits at every position: what perplexity evaluation does
(llama-perplexity feeds its windows the same way, as one batch of 512).
- lowbit: bench/bench_eval (Google Benchmark; each window one LlamaModel::forward_batch).
- llama.cpp: llama-cpp-python's Llama.eval with n_batch = n_ubatch = 512 and logits for every
  position (llama.cpp's default CPU backend, its repacked kernels where it has them).
Each thread count is measured in rounds that alternate the two, and the median of the rounds is
reported with the ratio. Also: peak memory (max RSS) of a process that loads the model and runs one
window, for each, beside the file's size.

Usage: bench_eval_vs_llama_cpp.py BENCH_EVAL [DATA_DIR] [--rounds N] [--windows N]
Needs llama-cpp-python in the Python that runs it (tests/python/requirements-llama-cpp.txt).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import llama_cpp

parser = argparse.ArgumentParser()
parser.add_argument("bench_eval")
parser.add_argument("data_dir", nargs="?",
                    default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--windows", type=int, default=4)
args = parser.parse_args()

WINDOW = 512
model_path = os.path.join(args.data_dir, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
with open(os.path.join(args.data_dir, "text", "pride-and-prejudice.txt"), "rb") as f:
    book = f.read()
tokenizer = llama_cpp.Llama(model_path, vocab_only=True, verbose=False)
ids = tokenizer.tokenize(book[int(len(book) * 0.8):], add_bos=False, special=False)
tokens = ids[: args.windows * WINDOW]
token_file = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
token_file.write(" ".join(map(str, tokens)))
token_file.close()


def lowbit_tokens_per_second(threads):
    out = subprocess.run(
        [args.bench_eval, "--tokens", token_file.name,
         f"--benchmark_filter=BM_eval_smollm2/{threads}/", "--benchmark_format=json",
         f"--benchmark_min_time={args.windows * 0.5}"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["benchmarks"][0]["items_per_second"]


def llama_cpp_tokens_per_second(llm):
    start = time.perf_counter()
    for w in range(args.windows):
        llm.reset()
        llm.eval(tokens[w * WINDOW:(w + 1) * WINDOW])
    return args.windows * WINDOW / (time.perf_counter() - start)


print(f"SmolLM2-135M Q4_1, {args.windows} windows of {WINDOW} held-out tokens, "
      f"llama-cpp-python {llama_cpp.__version__}")
print(llama_cpp.llama_print_system_info().decode().strip())
results = {}
for threads in (1, 2):
    llm = llama_cpp.Llama(model_path, n_ctx=WINDOW, n_batch=WINDOW, n_ubatch=WINDOW,
                          n_threads=threads, n_threads_batch=threads, logits_all=True,
                          verbose=False)
    llama_cpp_tokens_per_second(llm)  # warm-up
    mine, theirs = [], []
    for _ in range(args.rounds):
        mine.append(lowbit_tokens_per_second(threads))
        theirs.append(llama_cpp_tokens_per_second(llm))
    del llm
    results[threads] = (statistics.median(mine), statistics.median(theirs))
    print(f"{threads} thread(s): lowbit {results[threads][0]:.1f} tokens/s, llama.cpp "
          f"{results[threads][1]:.1f} tokens/s, lowbit / llama.cpp = "
          f"{results[threads][0] / results[threads][1]:.2f}  (rounds: lowbit "
          f"{', '.join(f'{x:.1f}' for x in mine)}; llama.cpp {', '.join(f'{x:.1f}' for x in theirs)})",
          flush=True)

# Peak memory: a fresh process each, loading the model and running one window.
load_lowbit = [args.bench_eval, "--tokens", token_file.name,
               "--benchmark_filter=BM_eval_smollm2/1/", "--benchmark_min_time=0"]
load_llama_cpp = [sys.executable, "-c", (
    "import llama_cpp,sys; m=llama_cpp.Llama(sys.argv[1], n_ctx=512, n_batch=512, n_ubatch=512, "
    "n_threads=1, logits_all=True, verbose=False); m.eval(list(range(100, 612)))"), model_path]
# Each command runs under its own wrapper process, whose RUSAGE_CHILDREN peak is that command's.
measure = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
           "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
for name, command in (("lowbit", load_lowbit), ("llama.cpp", load_llama_cpp)):
    peak_kib = int(subprocess.run([sys.executable, "-c", measure] + command, check=True,
                                  capture_output=True, text=True).stdout)
    print(f"peak RSS, load + one window, {name}: {peak_kib / 1024:.0f} MiB "
          f"(file {os.path.getsize(model_path) / 2**20:.0f} MiB)")
os.unlink(token_file.name)
