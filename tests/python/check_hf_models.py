"""lowbit's forward pass of the Llama family against a numpy implementation of transformers' modeling
code (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM).

For each architecture a small checkpoint with random weights is written as transformers would
save it (config.json and model.safetensors, the `safetensors` package), lowbit's logits for a
token sequence are computed by the lowbit_model_logits tool, and compared with the reference below,
which follows transformers' modeling files step by step in float64 (RMSNorm, q/k/v projections
with their biases, Qwen3's per-head q/k RMSNorm, rotate-half RoPE with the inverse frequencies of
modeling_rope_utils, llama3 scaling included, grouped-query attention with the causal and sliding
window masks, SwiGLU). Each case also checks that leaving out its architecture's feature (biases,
q/k norm, rope scaling, the window, rotate-half) moves the reference far past the tolerance, so
the comparison would catch lowbit ignoring it.

Usage: check_hf_models.py LOWBIT_HF_LOGITS WORK_DIR
"""

import json
import math
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

TOLERANCE = 2e-4  # lowbit computes in float32; logits here are of magnitude ~1..10


def inverse_frequencies(config, head_dim):
    """modeling_rope_utils: _compute_default_rope_parameters, then _compute_llama3_parameters,
    in float32 as torch computes them."""
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = config.get("rope_parameters", {}).get("rope_theta", config.get("rope_theta", 10000.0))
    exponents = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
    inv_freq = (np.float32(1.0) / (np.float32(theta) ** exponents)).astype(np.float32)
    if rope.get("rope_type", rope.get("type")) != "llama3":
        return inv_freq
    f32 = np.float32
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old_context = rope["original_max_position_embeddings"]
    low_wavelen, high_wavelen = f32(old_context / low), f32(old_context / high)
    wavelen = f32(2 * math.pi) / inv_freq
    scaled = np.where(wavelen > low_wavelen, inv_freq / f32(factor), inv_freq)
    smooth = (f32(old_context) / wavelen - f32(low)) / f32(high - low)
    smoothed = (f32(1) - smooth) * scaled / f32(factor) + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def rms_norm(x, weight, eps):
    return weight * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def reference_logits(config, weights, tokens, arch, drop=None):
    """transformers' forward pass for the whole sequence at once (float64). `drop` names a feature
    to leave out, for the sensitivity checks."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    eps = config["rms_norm_eps"]
    n = len(tokens)
    inv_freq = inverse_frequencies(config, head_dim)
    if drop == "rope_scaling":
        inv_freq = inverse_frequencies({"rope_theta": config.get("rope_parameters", {}).get(
            "rope_theta", config.get("rope_theta", 10000.0))}, head_dim)
    freqs = np.arange(n, dtype=np.float32)[:, None] * inv_freq[None, :]  # float32, as torch
    emb = np.concatenate([freqs, freqs], axis=-1).astype(np.float64)
    cos, sin = np.cos(emb), np.sin(emb)

    def rope(x):  # x: [heads, n, head_dim]
        if drop == "rotate_half":  # the adjacent pairing instead
            out = x.copy()
            c, s = cos[:, : head_dim // 2], sin[:, : head_dim // 2]
            a, b = x[..., 0::2], x[..., 1::2]
            out[..., 0::2], out[..., 1::2] = a * c - b * s, a * s + b * c
            return out
        return x * cos + rotate_half(x) * sin

    window = config.get("sliding_window") if arch == "MistralForCausalLM" else None
    mask = np.tril(np.ones((n, n), dtype=bool))
    if window and drop != "sliding_window":
        idx = np.arange(n)
        mask &= idx[None, :] > idx[:, None] - window
    x = w["model.embed_tokens.weight"][tokens]
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."

        def proj(name, inp):
            y = inp @ w[p + name + ".weight"].T
            bias = w.get(p + name + ".bias")
            return y if bias is None or drop == "bias" else y + bias

        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = proj("self_attn.q_proj", h).reshape(n, heads, head_dim).transpose(1, 0, 2)
        k = proj("self_attn.k_proj", h).reshape(n, kv_heads, head_dim).transpose(1, 0, 2)
        v = proj("self_attn.v_proj", h).reshape(n, kv_heads, head_dim).transpose(1, 0, 2)
        if arch == "Qwen3ForCausalLM" and drop != "qk_norm":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q), rope(k)
        k = np.repeat(k, heads // kv_heads, axis=0)  # repeat_kv
        v = np.repeat(v, heads // kv_heads, axis=0)
        scores = q @ k.transpose(0, 2, 1) * head_dim**-0.5
        scores = np.where(mask[None], scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attention = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        x = x + proj("self_attn.o_proj", attention.transpose(1, 0, 2).reshape(n, heads * head_dim))
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if config.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def make_weights(config, arch, rng):
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    inter, vocab = config["intermediate_size"], config["vocab_size"]
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    qkv_bias = arch == "Qwen2ForCausalLM" or config.get("attention_bias", False)
    o_bias = arch != "Qwen2ForCausalLM" and config.get("attention_bias", False)

    def normal(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(size):
        return (1.0 + rng.standard_normal(size) * 0.2).astype(np.float32)

    w = {"model.embed_tokens.weight": normal(vocab, hidden, scale=1.0),
         "model.norm.weight": norm(hidden)}
    if not config.get("tie_word_embeddings"):
        w["lm_head.weight"] = normal(vocab, hidden)
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        w[p + "input_layernorm.weight"] = norm(hidden)
        w[p + "post_attention_layernorm.weight"] = norm(hidden)
        w[p + "self_attn.q_proj.weight"] = normal(q_dim, hidden)
        w[p + "self_attn.k_proj.weight"] = normal(kv_dim, hidden)
        w[p + "self_attn.v_proj.weight"] = normal(kv_dim, hidden)
        w[p + "self_attn.o_proj.weight"] = normal(hidden, q_dim)
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = normal(q_dim, scale=1.0)
            w[p + "self_attn.k_proj.bias"] = normal(kv_dim, scale=1.0)
            w[p + "self_attn.v_proj.bias"] = normal(kv_dim, scale=1.0)
        if o_bias:
            w[p + "self_attn.o_proj.bias"] = normal(hidden, scale=1.0)
        if arch == "Qwen3ForCausalLM":
            w[p + "self_attn.q_norm.weight"] = norm(head_dim)
            w[p + "self_attn.k_norm.weight"] = norm(head_dim)
        w[p + "mlp.gate_proj.weight"] = normal(inter, hidden)
        w[p + "mlp.up_proj.weight"] = normal(inter, hidden)
        w[p + "mlp.down_proj.weight"] = normal(hidden, inter)
    return w


BASE = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 40,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "hidden_act": "silu",
        "bos_token_id": 1, "eos_token_id": 2}

CASES = [
    # (name, architecture, config fields, dtype, features whose removal must show)
    ("llama-llama3-rope", "LlamaForCausalLM",
     {"model_type": "llama", "tie_word_embeddings": False, "attention_bias": True,
      "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 16}},
     "F32", ["rope_scaling", "bias", "rotate_half"]),
    ("llama-transformers4", "LlamaForCausalLM",
     {"model_type": "llama", "tie_word_embeddings": True, "rope_theta": 10000.0,
      "rope_scaling": {"type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 2.0, "original_max_position_embeddings": 32}},
     "F32", ["rope_scaling", "rotate_half"]),
    ("mistral-window", "MistralForCausalLM",
     {"model_type": "mistral", "tie_word_embeddings": False, "rope_theta": 10000.0,
      "sliding_window": 4},
     "F32", ["sliding_window", "rotate_half"]),
    ("qwen2-bias", "Qwen2ForCausalLM",
     {"model_type": "qwen2", "tie_word_embeddings": True, "rope_theta": 1000000.0,
      "use_sliding_window": False, "sliding_window": 4},
     "F32", ["bias", "rotate_half"]),
    ("qwen3-qk-norm", "Qwen3ForCausalLM",
     {"model_type": "qwen3", "tie_word_embeddings": False, "head_dim": 12,
      "rope_theta": 1000000.0, "attention_bias": False},
     "F32", ["qk_norm", "rotate_half"]),
    ("qwen3-bf16", "Qwen3ForCausalLM",
     {"model_type": "qwen3", "tie_word_embeddings": True, "head_dim": 12,
      "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
      "attention_bias": True},
     "BF16", ["qk_norm", "bias"]),
]


def main():
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(2024)
    tokens = [1, 5, 17, 3, 39, 8, 8, 22, 11, 30, 0, 2]  # longer than the Mistral window
    failures = 0
    for name, arch, fields, dtype, features in CASES:
        config = dict(BASE, architectures=[arch], **fields)
        weights = make_weights(config, arch, rng)
        if dtype == "BF16":  # stored as BF16; the reference reads the same rounded values
            weights = {k: v.astype(ml_dtypes.bfloat16) for k, v in weights.items()}
        directory = os.path.join(work, name)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        save_file(weights, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
        out = os.path.join(directory, "logits.f32")
        subprocess.run([tool, directory, out] + [str(t) for t in tokens], check=True)
        got = np.fromfile(out, dtype="<f4").reshape(len(tokens), config["vocab_size"])
        as_float = {k: v.astype(np.float32) for k, v in weights.items()}
        expected = reference_logits(config, as_float, tokens, arch)
        difference = float(np.abs(got - expected).max())
        scale = float(np.abs(expected).max())
        ok = difference <= TOLERANCE * max(1.0, scale)
        print(f"{name:22} {arch:20} {dtype:5} max |logit| {scale:8.4f}  max |difference| "
              f"{difference:.3e}  {'ok' if ok else 'FAIL'}")
        failures += not ok
        for feature in features:
            without = reference_logits(config, as_float, tokens, arch, drop=feature)
            moved = float(np.abs(without - expected).max())
            sensitive = moved > 100 * TOLERANCE * max(1.0, scale)
            print(f"    without {feature:15} the reference moves by {moved:.3e}"
                  f"{'' if sensitive else '  (too little: the check could not see it) FAIL'}")
            failures += not sensitive
    if failures:
        print(f"{failures} failures")
        sys.exit(1)
    print("lowbit's forward pass matches the reference for every architecture")


if __name__ == "__main__":
    main()
