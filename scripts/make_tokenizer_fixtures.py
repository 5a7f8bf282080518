#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/{spiece.model,expected.json} for tests/unit/tokenizer_test.cpp
(with transformers 4), or tests/fixtures/tokenizer/expected_hf5.json (--hf5, transformers 5).

spiece.model: a tiny T5-style unigram vocabulary (pad=0, eos=1, unk=2, no bos, nmt_nfkc,
no byte fallback) trained with the sentencepiece Python package on WordNet glosses
(Debian's wordnet-base, /usr/share/wordnet). Most of its bytes are nmt_nfkc's precompiled
character map (~240 KB), which every model with T5's normalisation carries.

expected.json: for a list of tricky strings, the ids from
  * "sp":       plain SentencePiece (no sentinels) + </s>,
  * "seqio":    SentencePiece with the pieces "▁<extra_id_N>" added as USER_DEFINED, as
                seqio.SentencePieceVocabulary(extra_ids=100) does, + </s>,
  * "hf_strip": transformers' slow T5Tokenizer(legacy=False, extra_ids=100) as constructed
                from a vocab file: its <extra_id_N> AddedTokens strip whitespace on both sides
                (also what t5-base from the hub does),
  * "hf":       the same tokenizer with lstrip=rstrip=False sentinels,
and "expected", what sp::T5Tokenizer must return by default: "seqio" wherever seqio
recognises every sentinel (seqio matches the piece "▁<extra_id_N>", so only a sentinel at the
start of the text or after whitespace), otherwise "hf" (transformers finds sentinels anywhere);
and "sp" for texts that spell "</s>", "<pad>" or "<unk>" literally, which transformers turns
into special ids but seqio and we leave as text. The script asserts that "hf" equals "seqio"
wherever seqio recognises every sentinel, except after a sentinel followed by a tab or newline:
transformers only keeps a following " " as "▁" (its check is startswith(" ")), seqio and we
keep any whitespace (the normaliser turns it into "▁"). "expected_strip" is what the tokenizer
returns with SentinelSpacing::strip, i.e. "hf_strip". Decoding expectations are transformers'
decode() (skip_special_tokens False and True; "decode_sentinels": with pad/eos/unk dropped
first and skip_special_tokens False).

expected_hf5.json (written with --hf5, which needs transformers 5 and leaves spiece.model and
expected.json alone): the same cases (texts, decode ids, batch texts and configs, read from
expected.json) plus cases of its own (sentinels followed by text that is not whitespace,
U+0085, ...), encoded and decoded by transformers 5's T5Tokenizer (the tokenizers library:
Metaspace(prepend_scheme="always") on each text segment between added tokens, sentinels with
lstrip=rstrip=False) loaded from spiece.model: what SentinelSpacing::word_start must return.
"hf5" is transformers 5's ids, "expected" the same except for texts that spell "</s>",
"<pad>" or "<unk>" literally, where it is expected.json's "sp" (we keep them as text;
transformers 5 turns them into special ids, and its Unigram model would match "</s>" as a
piece if told not to). Decodes as in expected.json: "decode", "decode_skip",
"decode_sentinels". tokenizers' Unigram breaks Viterbi ties as the sentencepiece 0.2 wheels do
("000" is "0" + "00" there, "00" + "0" in libsentencepiece 0.1.97 and so in word_start mode):
the cases avoid such ties.
  python3 scripts/make_tokenizer_fixtures.py --hf5 [fixture dir]

Without --hf5 the script needs sentencepiece's Python package built against Debian's libsentencepiece 0.1.97 (the
library sp::T5Tokenizer uses: Viterbi ties such as "0" + "00" versus "00" + "0" are broken
differently by the 0.2 wheels), transformers 4 and protobuf; no torch:
  python3 -m venv /tmp/tokvenv
  /tmp/tokvenv/bin/pip install --no-binary=:all: sentencepiece==0.1.97
  /tmp/tokvenv/bin/pip install "transformers<5" protobuf
The sdist finds the system library with pkg-config and links it (check with ldd).
Usage: /tmp/tokvenv/bin/python scripts/make_tokenizer_fixtures.py [output dir]
"""
import json
import os
import re
import shutil
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
# Set by import_v4() (expected.json) or main_hf5() (expected_hf5.json).
spm = T5Tokenizer = import_protobuf = AddedToken = None


def encode_batches(tokenizer, texts, configs):
  """Each batch config ({padding, truncation, max_length, add_eos, pad_to_multiple_of}) applied
  to texts by a transformers tokenizer: [{config, input_ids, attention_mask}]."""
  batches = []
  for cfg in configs:
    kwargs = {"padding": cfg["padding"], "truncation": cfg["truncation"],
              "add_special_tokens": cfg["add_eos"]}
    if cfg["max_length"] is not None:
      kwargs["max_length"] = cfg["max_length"]
    if cfg["pad_to_multiple_of"] is not None:
      kwargs["pad_to_multiple_of"] = cfg["pad_to_multiple_of"]
    enc = tokenizer(texts, **kwargs)
    batches.append({"config": cfg, "input_ids": enc["input_ids"],
                    "attention_mask": enc["attention_mask"]})
  return batches


def import_v4():
  global spm, T5Tokenizer, import_protobuf, AddedToken
  # sentencepiece 0.1.97's generated sentencepiece_model_pb2 predates protobuf 4's C++ runtime.
  os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
  import sentencepiece as spm  # noqa: E402
  from transformers import T5Tokenizer  # noqa: E402
  from transformers.convert_slow_tokenizer import import_protobuf  # noqa: E402
  from transformers.tokenization_utils_base import AddedToken  # noqa: E402


EXTRA_IDS = 100
VOCAB_SIZE = 1000
SPECIAL_LITERALS = ("</s>", "<pad>", "<unk>")


def wordnet_glosses():
  out = []
  for part in ("noun", "verb", "adj", "adv"):
    with open(f"/usr/share/wordnet/data.{part}", encoding="utf-8") as f:
      for line in f:
        if line.startswith("  ") or "|" not in line:
          continue  # the licence header
        out.append(line.split("|", 1)[1].strip())
  return out


def train_model(out_dir):
  glosses = wordnet_glosses()
  corpus = glosses[::8]
  # A few accented words so that the vocabulary knows some non-ASCII characters.
  corpus += ["café naïve résumé façade Zürich Ångström señor"] * 20
  corpus_path = os.path.join(out_dir, "corpus.tmp.txt")
  with open(corpus_path, "w", encoding="utf-8") as f:
    f.write("\n".join(corpus) + "\n")
  prefix = os.path.join(out_dir, "spiece")
  spm.SentencePieceTrainer.train(
      input=corpus_path, model_prefix=prefix, vocab_size=VOCAB_SIZE, model_type="unigram",
      pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=0.9995,
      normalization_rule_name="nmt_nfkc", byte_fallback=False, num_threads=1,
      shuffle_input_sentence=False, minloglevel=2)
  os.remove(corpus_path)
  os.remove(prefix + ".vocab")
  return prefix + ".model", glosses


def seqio_processor(model_path):
  pb = import_protobuf()
  model = pb.ModelProto.FromString(open(model_path, "rb").read())
  for i in reversed(range(EXTRA_IDS)):
    model.pieces.add(piece=f"▁<extra_id_{i}>", score=0.0,
                     type=pb.ModelProto.SentencePiece.USER_DEFINED)
  return spm.SentencePieceProcessor(model_proto=model.SerializeToString())


def hf_tokenizers(model_path, spm_size):
  strip = T5Tokenizer(model_path, extra_ids=EXTRA_IDS, legacy=False)
  decoder = {
      spm_size + EXTRA_IDS - 1 - i: AddedToken(f"<extra_id_{i}>", lstrip=False, rstrip=False,
                                               special=True, normalized=False)
      for i in range(EXTRA_IDS)
  }
  decoder.update({0: AddedToken("<pad>", special=True), 1: AddedToken("</s>", special=True),
                  2: AddedToken("<unk>", special=True)})
  nostrip = T5Tokenizer(model_path, extra_ids=EXTRA_IDS, legacy=False,
                        added_tokens_decoder=decoder)
  for i in (0, EXTRA_IDS - 1):
    tok = nostrip.added_tokens_decoder[spm_size + EXTRA_IDS - 1 - i]
    assert not tok.lstrip and not tok.rstrip, tok
    tok = strip.added_tokens_decoder[spm_size + EXTRA_IDS - 1 - i]
    assert tok.lstrip and tok.rstrip, tok
  return strip, nostrip


SENTINEL_RE = re.compile(r"<extra_id_(0|[1-9][0-9]?)>")


def seqio_recognises_all(text):
  """True when every sentinel sits at the start or after whitespace (seqio's "▁<extra_id_N>")."""
  for m in SENTINEL_RE.finditer(text):
    before = text[:m.start()]
    if before.strip() and not (before[-1].isspace() or before[-1] == "▁"):
      return False
  return True


def other_whitespace_after_sentinel(text):
  """True when a sentinel is followed by whitespace other than " " (tab, newline, ...)."""
  for m in SENTINEL_RE.finditer(text):
    after = text[m.end():m.end() + 1]
    if after and after != " " and after.isspace():
      return True
  return False


def main(out_dir):
  import_v4()
  os.makedirs(out_dir, exist_ok=True)
  model_path, glosses = train_model(out_dir)
  sp = spm.SentencePieceProcessor(model_file=model_path)
  if spm.__version__ != "0.1.97":
    print(f"warning: sentencepiece {spm.__version__}, the C++ library is 0.1.97", file=sys.stderr)
  n = sp.get_piece_size()
  assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
  seqio = seqio_processor(model_path)
  hf_strip, hf = hf_tokenizers(model_path, n)
  assert hf.convert_tokens_to_ids("<extra_id_0>") == n + EXTRA_IDS - 1
  assert hf.convert_tokens_to_ids("<extra_id_99>") == n

  long_text = " ".join(glosses[1000:1012])
  texts = [
      "Hello world",
      "The quick brown fox jumps over the lazy dog.",
      "",
      " ",
      "   leading and trailing spaces   ",
      "multiple     internal   spaces",
      "tabs\tand\nnewlines\r\nmixed",
      "digits 0123456789 and 3.14159, 2,048",
      "café naïve résumé Ünïcödé",
      "fullwidth ＡＢＣ１２３ and circled ①② and ﬁ ligature",
      "emoji 😀 and CJK 漢字 are unknown",
      "<angle> {braces} [brackets] ~tilde^ `back`",
      "▁already▁escaped ▁ x",
      "a\u00a0non-breaking\u3000ideographic\u2003em space",
      "<extra_id_0>",
      "<extra_id_0> foo",
      "<extra_id_0>. Hello",
      "Hello <extra_id_0>.",
      "Hello <extra_id_0>",
      "The <extra_id_0> walks in <extra_id_1> park",
      "the<extra_id_0>cat",
      "a <extra_id_0><extra_id_1> b",
      "x <extra_id_99> y <extra_id_10> z <extra_id_1>",
      "<extra_id_100> is not a sentinel",
      "<extra_id_01> <extra_id_-1> <extra_id_> <extra_id_5",
      "  <extra_id_0>   spaced   <extra_id_1>  ",
      " <extra_id_0> x",
      "<extra_id_<extra_id_0>>",
      "<extra_id_0>\tword\n<extra_id_1>",
      "x\t<extra_id_0>\nnext <extra_id_2>\u3000wide",
      "<extra_id_0>▁word",
      "café <extra_id_3>naïve 42",
      "literal </s> and <pad> and <unk> tokens",
      long_text,
  ]

  cases = []
  differences = []
  for text in texts:
    ids_sp = sp.encode(text) + [1]
    ids_seqio = seqio.encode(text) + [1]
    ids_hf = hf.encode(text)
    ids_hf_strip = hf_strip.encode(text)
    has_literal = any(s in text for s in SPECIAL_LITERALS)
    has_sentinel = "<extra_id_" in text
    if has_literal:
      assert not has_sentinel
      expected, expected_strip, source = ids_sp, ids_sp, "sp"
    elif seqio_recognises_all(text):
      expected, expected_strip, source = ids_seqio, ids_hf_strip, "seqio"
      if not other_whitespace_after_sentinel(text):
        assert ids_hf == ids_seqio, (text, ids_hf, ids_seqio)
    else:
      assert not other_whitespace_after_sentinel(text), text
      expected, expected_strip, source = ids_hf, ids_hf_strip, "hf"
    if not has_sentinel and not has_literal:
      assert ids_hf == ids_sp == ids_hf_strip, (text, ids_hf, ids_sp)
    for name, ids in (("seqio", ids_seqio), ("hf_strip", ids_hf_strip), ("hf", ids_hf)):
      if ids != expected:
        differences.append(f"{name} != expected for {text!r}")
    no_specials = [i for i in expected if i not in (0, 1, 2)]
    cases.append({
        "text": text,
        "sp": ids_sp,
        "seqio": ids_seqio,
        "hf_strip": ids_hf_strip,
        "hf": ids_hf,
        "expected": expected,
        "expected_strip": expected_strip,
        "expected_source": source,
        "pieces": hf.convert_ids_to_tokens(expected),
        "decode": hf.decode(expected, skip_special_tokens=False),
        "decode_skip": hf.decode(expected, skip_special_tokens=True),
        "decode_sentinels": hf.decode(no_specials, skip_special_tokens=False),
        "sp_decode": sp.decode([i for i in ids_sp if i < n]),
    })

  # Hand-made id sequences for decode (what a model might generate).
  def pid(piece):
    i = sp.piece_to_id(piece)
    assert i != sp.unk_id() or piece == "<unk>", piece
    return i

  s0, s1, s99 = n + EXTRA_IDS - 1, n + EXTRA_IDS - 2, n
  word = [pid(p) for p in sp.encode("the dog", out_type=str)]
  tail = [pid(p) for p in sp.encode("runs.", out_type=str)]
  bare = [i for i in range(3, n) if not sp.id_to_piece(i).startswith("▁")][:3]
  decode_ids = [
      [],
      [1],
      [0, 0],
      [2],
      word,
      word + [1, 0, 0],
      [0] + word + [1],
      [s0] + word + [s1] + tail + [1],
      [s0, s1, s99, 1],
      word + [2] + tail,
      word + [0] + tail,
      word + [1] + tail + [1],
      bare + word,
      [pid("▁"), s0] + tail,
      [s0, pid("▁")] + bare,
      word + [s0] + [2, 2] + tail,
  ]
  decodes = []
  for ids in decode_ids:
    decodes.append({
        "ids": ids,
        "decode": hf.decode(ids, skip_special_tokens=False),
        "decode_skip": hf.decode(ids, skip_special_tokens=True),
        "decode_sentinels": hf.decode([i for i in ids if i not in (0, 1, 2)],
                                      skip_special_tokens=False),
    })

  batch_texts = ["short", "a much longer sentence with several words in it", "",
                 "<extra_id_0> sentinel <extra_id_1>"]
  batch_configs = [
      {"padding": "longest", "truncation": False, "max_length": None, "add_eos": True,
       "pad_to_multiple_of": None},
      {"padding": "max_length", "truncation": True, "max_length": 12, "add_eos": True,
       "pad_to_multiple_of": None},
      {"padding": "longest", "truncation": True, "max_length": 5, "add_eos": True,
       "pad_to_multiple_of": None},
      {"padding": "longest", "truncation": False, "max_length": None, "add_eos": True,
       "pad_to_multiple_of": 8},
      {"padding": "longest", "truncation": True, "max_length": 4, "add_eos": False,
       "pad_to_multiple_of": None},
      {"padding": "do_not_pad", "truncation": True, "max_length": 3, "add_eos": True,
       "pad_to_multiple_of": None},
  ]
  batches = encode_batches(hf, batch_texts, batch_configs)

  out = {
      "generator": "scripts/make_tokenizer_fixtures.py",
      "versions": {"sentencepiece": spm.__version__,
                   "transformers": __import__("transformers").__version__},
      "spm_size": n,
      "extra_ids": EXTRA_IDS,
      "vocab_size": n + EXTRA_IDS,
      "pieces": {str(i): sp.id_to_piece(i) for i in (0, 1, 2, 3, n - 1)},
      "differences": differences,
      "cases": cases,
      "decodes": decodes,
      "batch_texts": batch_texts,
      "batches": batches,
  }
  with open(os.path.join(out_dir, "expected.json"), "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
  print(f"wrote {model_path} ({os.path.getsize(model_path)} bytes), {len(cases)} cases, "
        f"{len(decodes)} decodes, {len(batches)} batches")
  for d in differences:
    print("  ", d)


# --- transformers 5 (expected_hf5.json) ------------------------------------------------------

# Texts where transformers 5 differs from the other modes: what follows a sentinel starts a
# word whatever it is, and U+0085 (which nmt_nfkc keeps) is whitespace to WhitespaceSplit.
HF5_TEXTS = [
    "<extra_id_0>.",
    "<extra_id_0>cat",
    "<extra_id_0> cat",
    "x <extra_id_0>y",
    "the dog<extra_id_0>s run<extra_id_1>.",
    "a<extra_id_0><extra_id_1>b",
    "(<extra_id_0>), <extra_id_1>'s <extra_id_2>-",
    "<extra_id_0>   ",
    "   <extra_id_0>x   <extra_id_1>   y   ",
    "<extra_id_0>\u0085word x\u0085y",
    "<extra_id_0>\x0bword\x0b <extra_id_1>\x1fx",
    "x ▁ y <extra_id_0>▁▁z ▁",
    "<extra_id_0>漢字 <extra_id_1>ＡＢＣ１２３",
    "café<extra_id_3>naïve<extra_id_4>42",
    "<extra_id_0>\tword\n<extra_id_1>\nx",
]
HF5_BATCH_TEXTS = ["x <extra_id_0>y.", "the<extra_id_0>cat"]


def main_hf5(fixture_dir):
  import transformers
  from transformers import T5Tokenizer as T5Tokenizer5

  assert transformers.__version__.startswith("5."), transformers.__version__
  with open(os.path.join(fixture_dir, "expected.json"), encoding="utf-8") as f:
    v4 = json.load(f)
  n = v4["spm_size"]
  with tempfile.TemporaryDirectory() as tmp:  # spiece.model alone: no other file is picked up
    shutil.copy(os.path.join(fixture_dir, "spiece.model"), os.path.join(tmp, "spiece.model"))
    tok = T5Tokenizer5.from_pretrained(tmp, extra_ids=EXTRA_IDS)
  assert type(tok.backend_tokenizer.model).__name__ == "Unigram"
  assert tok.convert_tokens_to_ids("<extra_id_0>") == n + EXTRA_IDS - 1
  assert tok.convert_tokens_to_ids("<extra_id_99>") == n
  for i in (0, EXTRA_IDS - 1):
    added = tok.added_tokens_decoder[n + EXTRA_IDS - 1 - i]
    assert not added.lstrip and not added.rstrip and added.special, added

  def decodes_of(ids):
    return {
        "decode": tok.decode(ids, skip_special_tokens=False),
        "decode_skip": tok.decode(ids, skip_special_tokens=True),
        "decode_sentinels": tok.decode([i for i in ids if i not in (0, 1, 2)],
                                       skip_special_tokens=False),
    }

  cases = []
  differences = []
  v4_cases = {c["text"]: c for c in v4["cases"]}
  assert not v4_cases.keys() & set(HF5_TEXTS)
  for text in [c["text"] for c in v4["cases"]] + HF5_TEXTS:
    has_literal = any(s in text for s in SPECIAL_LITERALS)
    ids_hf5 = tok.encode(text)
    if has_literal:
      assert "<extra_id_" not in text and text in v4_cases, text
      expected, source = v4_cases[text]["sp"], "sp"
    else:
      expected, source = ids_hf5, "hf5"
    if text in v4_cases:
      for key in ("expected", "expected_strip"):
        if v4_cases[text][key] != expected:
          differences.append(f"expected.json {key} != expected for {text!r}")
    cases.append({"text": text, "hf5": ids_hf5, "expected": expected,
                  "expected_source": source, "pieces": tok.convert_ids_to_tokens(expected),
                  **decodes_of(expected)})

  def pid(piece):
    i = tok.convert_tokens_to_ids(piece)
    assert i not in (None, 2) or piece == "<unk>", piece
    return i

  s0, s1 = n + EXTRA_IDS - 1, n + EXTRA_IDS - 2
  word = tok.encode("the dog", add_special_tokens=False)
  tail = tok.encode("runs.", add_special_tokens=False)
  space = pid("▁")
  decode_ids = [c["ids"] for c in v4["decodes"]] + [
      word + [s0, pid("s")],
      word + [s0] + tail,
      [space] * 3 + word,
      word + [space] * 2 + tail,
      [s0, space, s1],
      [s0, s1] + word + [1, 0],
      [0] + word,
      [2] + word,
      [space],
      [s0],
      word + [s0, 1, 0, 0],
      [pid("."), s0, pid(".")] + tail,
  ]
  decodes = [{"ids": ids, **decodes_of(ids)} for ids in decode_ids]

  batch_texts = v4["batch_texts"] + HF5_BATCH_TEXTS
  batches = encode_batches(tok, batch_texts, [b["config"] for b in v4["batches"]])

  out = {
      "generator": "scripts/make_tokenizer_fixtures.py --hf5",
      "versions": {"transformers": transformers.__version__,
                   "tokenizers": __import__("tokenizers").__version__},
      "spm_size": n,
      "extra_ids": EXTRA_IDS,
      "vocab_size": n + EXTRA_IDS,
      "differences": differences,
      "cases": cases,
      "decodes": decodes,
      "batch_texts": batch_texts,
      "batches": batches,
  }
  path = os.path.join(fixture_dir, "expected_hf5.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
  print(f"wrote {path}: {len(cases)} cases, {len(decodes)} decodes, {len(batches)} batches, "
        f"{len(differences)} differences from expected.json")


if __name__ == "__main__":
  args = sys.argv[1:]
  hf5 = "--hf5" in args
  args = [a for a in args if a != "--hf5"]
  out_dir = args[0] if args else os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizer")
  if hf5:
    main_hf5(out_dir)
  else:
    main(out_dir)
