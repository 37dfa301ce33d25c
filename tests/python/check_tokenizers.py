"""lowbit's BPE tokenizers against Hugging Face `tokenizers` (the reference implementation).

Usage: check_tokenizers.py LOWBIT_BPE_TOKENIZE DATA_DIR WORK_DIR

Tokenizers checked: SmolLM2's tokenizer.json (../shared/data), and tokenizer.json files this
script trains with `tokenizers` on Pride and Prejudice: byte-level BPE with the GPT-2 (with and
without add_prefix_space), Llama 3 (ignore_merges, a BOS template) and Qwen2 regexes, and
SentencePiece-style BPE with byte fallback in Llama 2's form (Prepend + Replace normalizer,
ByteFallback/Fuse/Strip decoder) and Mistral's (Metaspace pre-tokenizer and decoder). The GGUF
route: SmolLM2's GGUF metadata (read with `gguf`) through lowbit's BpeVocabulary, against
`tokenizers` built the way llama.cpp defines tokenizer.ggml.pre = "smollm".

Texts: the whole of Pride and Prejudice and hostile ones (CJK, emoji, combining marks, long runs
without spaces, of spaces, newlines and tabs, digits, contractions, special tokens inside text).
For each: the ids (with and without the post-processor's tokens) must equal the reference's,
decode must equal the reference's decode (keeping and skipping special tokens), and decoding the
ids of a byte-level tokenizer must give back the text. Invalid UTF-8, which the reference cannot
take, must give the ids the reference gives for bytes.decode("utf-8", "replace").
"""
import json
import struct
import subprocess
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors, trainers

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"""
          r"""[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"""
         r"""[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def hostile_texts(specials):
    s0, s1 = specials[0], specials[-1]
    texts = [
        "", " ", "a", "Hello world", " Hello  world ", "\n", "\t", "  \n\n\t \r\n  x",
        "It's, isn't: they're, we've, I'm, you'll, he'd. IT'S THEY'RE 'S 'll'",
        "don't 'tis o'clock rock'n'roll '''s", "ſ 'ſ 'S K",
        "12345 1 22 333 4444 55555 3.14159 1,000,000 ½ ² ٣٤٥ ૬ 一二三 Ⅻ",
        "a  1 b   22 c\t3 \n4",
        "日本語のテキストです。中文文本，한국어 텍스트",
        "🚀🚀🚀 👩‍👩‍👧‍👦 🇫🇷 emoji👍🏽mixed",
        "e\u0301 a\u0308\u0308\u0308 Z\u0351\u0352\u0353\u0354 \u0915\u094d\u0937",
        "x" * 5000, "ab" * 3000 + "c", "\u00e9" * 2000, "日" * 1500,
        " " * 3000, "\n" * 2000, "\t" * 1500, " \n\t\r" * 800, " " * 100 + "x",
        "9" * 3000, "a1" * 1000,
        "\u00a0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u180e\u0085\u200b x",
        "\x00 nul \x01\x02\x7f control",
        "tabs\tand\vvertical\fform",
        f"{s0}", f"text{s0}text", f"  {s0}  {s1}\n{s0}x", f"{s0}{s0}{s1}",
        f"<{s0}>", s0[:-1], s0 + s0[:-2], f"A{s1} B {s0}C",
        "mixed: naïve café Ünïcödé ÀÉÎÕÜ ß ẞ ǅ",
        "\U0010ffff\U000e0001 \ufeff bom \ufffd",
    ]
    return texts


INVALID_UTF8 = [
    b"\xff", b"abc\x80def", b"\xc3", b"\xe6\x97", b"\xf0\x9f\x9a", b"\xed\xa0\x80 surrogate",
    b"\xc0\xaf overlong", b"\xf4\x90\x80\x80 too big", b"ok \xe6\x97\xa5\xff\xfe \xf0\x9f\x9a\x80",
    b"\x80" * 100, b"\xe2\x96" + b"x",
]


def write_cases(path, texts):
    with open(path, "wb") as f:
        for text in texts:
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            f.write(struct.pack("<I", len(data)) + data)


def run_lowbit(tool, mode, file, cases_path):
    out = subprocess.run([tool, mode, str(file), str(cases_path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{tool} failed on {file}: {out.stderr}")
    return json.loads(out.stdout)


def compare(name, reference, lowbit_result, texts, round_trip):
    results = lowbit_result["results"]
    check(len(results) == len(texts), f"{name}: {len(results)} results for {len(texts)} texts")
    for text, got in zip(texts, results):
        label = repr(text[:40]) + (f"... ({len(text)} chars)" if len(text) > 40 else "")
        as_str = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        expected = reference.encode(as_str, add_special_tokens=False).ids
        if got["ids"] != expected:
            first = next((i for i, (a, b) in enumerate(zip(got["ids"], expected)) if a != b),
                         min(len(got["ids"]), len(expected)))
            check(False, f"{name}: ids of {label} differ at {first}: lowbit "
                  f"{got['ids'][max(0, first - 3):first + 4]}, tokenizers "
                  f"{expected[max(0, first - 3):first + 4]} ({len(got['ids'])} vs {len(expected)})")
            continue
        expected_special = reference.encode(as_str, add_special_tokens=True).ids
        check(got["ids_special"] == expected_special,
              f"{name}: ids with special tokens of {label}: {got['ids_special'][:8]} vs "
              f"{expected_special[:8]}")
        decoded = bytes.fromhex(got["decoded"])
        ref_decoded = reference.decode(expected, skip_special_tokens=False)
        check(decoded.decode("utf-8", "replace") == ref_decoded,
              f"{name}: decode of {label}: {decoded[:60]!r} vs {ref_decoded[:60]!r}")
        ref_skip = reference.decode(expected, skip_special_tokens=True)
        check(bytes.fromhex(got["decoded_skip"]).decode("utf-8", "replace") == ref_skip,
              f"{name}: decode skipping special tokens of {label}")
        if round_trip:
            check(decoded == as_str.encode("utf-8"), f"{name}: decode does not round-trip {label}")
        elif ref_decoded == as_str:
            check(decoded == as_str.encode("utf-8"), f"{name}: decode does not round-trip {label}")


def train_byte_level(text_path, pre_tokenizer, specials, vocab_size=3000, ignore_merges=False):
    tokenizer = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train([str(text_path)], trainer)
    return tokenizer


def train_sentencepiece_style(text_path, work, style):
    """A Llama 2 / Mistral style tokenizer.json: BPE over "▁" with <0x00>..<0xFF> at ids 3..258."""
    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=1200, limit_alphabet=80, show_progress=False)
    base.train([str(text_path)], trainer)
    trained = json.loads(base.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = 3 + b
    for token, _ in sorted(trained["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    doc = json.loads(base.to_str())
    doc["model"] = {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                    "continuing_subword_prefix": None, "end_of_word_suffix": None,
                    "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                    "vocab": vocab, "merges": trained["merges"]}
    doc["added_tokens"] = [
        {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    doc["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    if style == "llama2":
        doc["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        doc["pre_tokenizer"] = None
        doc["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    else:  # mistral
        doc["normalizer"] = None
        doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁",
                                "prepend_scheme": "first", "split": False}
        doc["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                          "split": False}
    path = work / f"{style}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    return path


def gguf_vocabulary(gguf_path, out_path):
    """SmolLM2's tokenizer.ggml.* keys, as BpeVocabulary fields."""
    import gguf
    reader = gguf.GGUFReader(str(gguf_path))

    def value(key):
        field = reader.fields.get(key)
        return None if field is None else field.contents()
    vocab = {"model": value("tokenizer.ggml.model"), "pre": value("tokenizer.ggml.pre"),
             "tokens": value("tokenizer.ggml.tokens"), "merges": value("tokenizer.ggml.merges"),
             "token_types": value("tokenizer.ggml.token_type"),
             "bos_id": value("tokenizer.ggml.bos_token_id"),
             "eos_id": value("tokenizer.ggml.eos_token_id"),
             "unk_id": value("tokenizer.ggml.unknown_token_id"),
             "pad_id": value("tokenizer.ggml.padding_token_id"),
             "add_bos": value("tokenizer.ggml.add_bos_token"),
             "add_space_prefix": value("tokenizer.ggml.add_space_prefix")}
    vocab = {k: v for k, v in vocab.items() if v is not None}
    out_path.write_text(json.dumps(vocab, ensure_ascii=False))
    return vocab


def main():
    tool, data, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    book_path = data / "text" / "pride-and-prejudice.txt"
    book = book_path.read_text(encoding="utf-8")
    smollm2 = data / "smollm2-135m" / "hf-tokenizer" / "tokenizer.json"

    cases = {}  # name -> (tokenizer.json path, reference, special tokens)
    cases["smollm2"] = (smollm2, Tokenizer.from_file(str(smollm2)), ["<|im_start|>", "<|im_end|>"])

    gpt2 = train_byte_level(book_path, pre_tokenizers.ByteLevel(add_prefix_space=False),
                            ["<|endoftext|>"])
    gpt2_prefix = train_byte_level(book_path, pre_tokenizers.ByteLevel(add_prefix_space=True),
                                   ["<|endoftext|>"])
    llama3 = train_byte_level(book_path, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        ["<|begin_of_text|>", "<|end_of_text|>"], ignore_merges=True)
    llama3.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
    qwen2 = train_byte_level(book_path, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    # An added token that is not special, and one that strips the spaces around it.
    qwen2.add_tokens(["[NOTE]"])
    from tokenizers import AddedToken
    qwen2.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False)])
    for name, tokenizer, specials in [
            ("gpt2", gpt2, ["<|endoftext|>"]), ("gpt2-prefix-space", gpt2_prefix, ["<|endoftext|>"]),
            ("llama3", llama3, ["<|begin_of_text|>", "<|end_of_text|>"]),
            ("qwen2", qwen2, ["<|im_start|>", "[NOTE]", "<mask>", "<|im_end|>"])]:
        path = work / f"{name}.json"
        tokenizer.save(str(path))
        cases[name] = (path, Tokenizer.from_file(str(path)), specials)
    for style in ["llama2", "mistral"]:
        path = train_sentencepiece_style(book_path, work, style)
        cases[style] = (path, Tokenizer.from_file(str(path)), ["<s>", "</s>", "<unk>"])

    for name, (path, reference, specials) in cases.items():
        texts = [book] + hostile_texts(specials) + INVALID_UTF8
        cases_path = work / f"{name}.cases"
        write_cases(cases_path, texts)
        result = run_lowbit(tool, "--json", path, cases_path)
        # (add_prefix_space writes a space the decoder keeps, in the reference too.)
        byte_level = name in ("smollm2", "gpt2", "llama3", "qwen2")
        before = len(failures)
        compare(name, reference, result, texts, round_trip=False)
        # Byte-level BPE without a prefix space loses nothing: decode gives back every valid text exactly.
        if byte_level:
            for text, got in zip(texts, result["results"]):
                if isinstance(text, str):
                    check(bytes.fromhex(got["decoded"]) == text.encode("utf-8"),
                          f"{name}: decode does not round-trip {text[:40]!r}")
        mb_per_s = result["encoded_bytes"] / max(result["encode_seconds"], 1e-9) / 1e6
        print(f"{name}: {len(texts)} texts, {'ok' if len(failures) == before else 'FAILED'}; "
              f"vocab {result['vocab_size']}, load {result['load_seconds']:.3f} s, "
              f"encode {mb_per_s:.1f} MB/s")

    # The GGUF route: SmolLM2's own GGUF metadata, and the reference built as llama.cpp defines
    # "smollm" (digits one by one, then GPT-2's regex).
    gguf_path = data / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    vocab_path = work / "smollm2-gguf-vocab.json"
    vocab = gguf_vocabulary(gguf_path, vocab_path)
    check(vocab["pre"] == "smollm", f"SmolLM2's GGUF names pre {vocab['pre']!r}")
    smollm_reference = Tokenizer.from_file(str(smollm2))
    smollm_reference.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    texts = [book] + hostile_texts(["<|im_start|>", "<|im_end|>"]) + INVALID_UTF8
    cases_path = work / "smollm2-gguf.cases"
    write_cases(cases_path, texts)
    result = run_lowbit(tool, "--gguf-vocab", vocab_path, cases_path)
    before = len(failures)
    compare("smollm2-gguf", smollm_reference, result, texts, round_trip=True)
    # And on the book, the GGUF route gives what SmolLM2's tokenizer.json gives.
    check(result["results"][0]["ids"] == cases["smollm2"][1].encode(book).ids,
          "smollm2-gguf: the book's ids differ from SmolLM2's tokenizer.json")
    print(f"smollm2-gguf: {len(texts)} texts, {'ok' if len(failures) == before else 'FAILED'}")

    if failures:
        print(f"{len(failures)} failures")
        return 1
    print("all tokenizers agree with tokenizers", __import__("tokenizers").__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
