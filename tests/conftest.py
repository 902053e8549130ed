"""Shared fixtures: tiny random-weight models of each tokenizer family, built offline in the
test session (tokenizers trained on in-test text), and the real default model.

Families:
  bert     WordPiece, [CLS] … [SEP]                    class token first
  roberta  byte-level BPE, <s> … </s>                  class token first
  xlnet    SentencePiece-style Unigram, … <sep> <cls>  class token LAST
  gpt2     byte-level BPE, no boundary tokens at all
  xlm      XLM's own slow (Python) tokenizer: Moses, lowercased, accents stripped, BPE with
           </w> word ends, <s> … </s>; no character offsets (aligned by strings). Built by
           ``tiny_models`` but not one of FAMILIES: tests name it where they mean it.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# shared/ lies beside the repository, here and in CI.
SHARED_DATA = Path(
    os.environ.get(
        "STREAM_TRF_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)

# In-test training text: accents, CJK, emoji, combining marks, numbers, punctuation.
CORPUS = [
    "Here is some text to encode.",
    "Apple shares rose on the news. Apple sold fewer iPhones this quarter.",
    "The quick brown fox jumps over the lazy dog!",
    "Über café naïve résumé façade coöperate São Paulo.",
    "東京は日本の首都です。北京是中国的首都。",
    "Emoji are fun 😀🎉 and flags 🇫🇷 too; so is e\u0301 with a combining mark.",
    "Numbers like 3.14159, 2,718 and 1e-9 appear in technical text.",
    "Debian packages describe libraries, tools, fonts and documentation.",
    "A sentence with   extra   spaces\tand\ttabs\nand newlines.",
    "Ὅμηρος wrote in Greek; Толстой wrote in Russian; नमस्ते in Hindi.",
    "don't can't won't it's we're they've",
    "URLs like https://example.org/a?b=c and emails like a@b.io are tokens.",
] * 8

TINY_MAX_LENGTH = 64


def _train_and_save(family: str, out: Path) -> Path:
    import torch
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizer,
        GPT2Config,
        GPT2Model,
        GPT2Tokenizer,
        RobertaConfig,
        RobertaModel,
        RobertaTokenizer,
        XLMConfig,
        XLMModel,
        XLMTokenizer,
        XLNetConfig,
        XLNetModel,
        XLNetTokenizer,
    )

    torch.manual_seed(0)
    if family == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train_from_iterator(
            CORPUS, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials)
        )
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[
                ("[CLS]", tok.token_to_id("[CLS]")),
                ("[SEP]", tok.token_to_id("[SEP]")),
            ],
        )
        tok.decoder = decoders.WordPiece()
        hf = BertTokenizer(tokenizer_object=tok, model_max_length=TINY_MAX_LENGTH)
        config = BertConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=TINY_MAX_LENGTH,
        )
        model = BertModel(config)
    elif family in ("roberta", "gpt2"):
        specials = (
            ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
            if family == "roberta"
            else ["<|endoftext|>"]
        )
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(
            CORPUS,
            trainers.BpeTrainer(
                vocab_size=500,
                special_tokens=specials,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            ),
        )
        if family == "roberta":
            tok.post_processor = processors.RobertaProcessing(
                ("</s>", tok.token_to_id("</s>")),
                ("<s>", tok.token_to_id("<s>")),
                trim_offsets=True,
            )
            hf = RobertaTokenizer(tokenizer_object=tok, model_max_length=TINY_MAX_LENGTH)
            config = RobertaConfig(
                vocab_size=tok.get_vocab_size(),
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=TINY_MAX_LENGTH + 2,
                pad_token_id=1,
            )
            model = RobertaModel(config)
        else:
            tok.post_processor = processors.ByteLevel(trim_offsets=False)
            hf = GPT2Tokenizer(tokenizer_object=tok, model_max_length=TINY_MAX_LENGTH)
            config = GPT2Config(
                vocab_size=tok.get_vocab_size(),
                n_embd=32,
                n_layer=2,
                n_head=2,
                n_positions=TINY_MAX_LENGTH,
                bos_token_id=0,
                eos_token_id=0,
            )
            model = GPT2Model(config)
    elif family == "xlnet":
        # XLNet's own order: <unk> is id 0, which is what the Unigram model emits for unknowns.
        specials = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(
            CORPUS,
            trainers.UnigramTrainer(vocab_size=400, special_tokens=specials, unk_token="<unk>"),
        )
        tok.post_processor = processors.TemplateProcessing(
            single="$A:0 <sep>:0 <cls>:2",
            pair="$A:0 <sep>:0 $B:1 <sep>:1 <cls>:2",
            special_tokens=[
                ("<sep>", tok.token_to_id("<sep>")),
                ("<cls>", tok.token_to_id("<cls>")),
            ],
        )
        hf = XLNetTokenizer(tokenizer_object=tok, model_max_length=TINY_MAX_LENGTH)
        config = XLNetConfig(
            vocab_size=tok.get_vocab_size(),
            d_model=32,
            n_layer=2,
            n_head=2,
            d_inner=64,
            pad_token_id=tok.token_to_id("<pad>"),
        )
        model = XLNetModel(config)
    elif family == "xlm":
        # XLM's format: vocab.json + merges.txt of a BPE over lowercased, accent-stripped words
        # whose last symbol carries "</w>"; its specials first, in XLM's order.
        specials = ["<s>", "</s>", "<pad>", "<unk>"] + [f"<special{i}>" for i in range(10)]
        tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]
        )
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.train_from_iterator(
            CORPUS,
            trainers.BpeTrainer(vocab_size=400, special_tokens=specials, end_of_word_suffix="</w>"),
        )
        files = out / "xlm-files"
        files.mkdir(exist_ok=True)
        tok.model.save(str(files))
        hf = XLMTokenizer(
            vocab_file=str(files / "vocab.json"),
            merges_file=str(files / "merges.txt"),
            model_max_length=TINY_MAX_LENGTH,
        )
        config = XLMConfig(
            vocab_size=tok.get_vocab_size(),
            emb_dim=32,
            n_layers=2,
            n_heads=2,
            max_position_embeddings=TINY_MAX_LENGTH,
            n_langs=2,
            use_lang_emb=True,
        )
        model = XLMModel(config)
    else:  # pragma: no cover
        raise ValueError(family)
    path = out / family
    model.save_pretrained(str(path))
    hf.save_pretrained(str(path))
    return path


FAMILIES = ["bert", "roberta", "xlnet", "gpt2"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {family: _train_and_save(family, root) for family in [*FAMILIES, "xlm"]}


@pytest.fixture(scope="session", params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def tiny_dir(tiny_models: dict[str, Path], family: str) -> Path:
    return tiny_models[family]


@pytest.fixture(scope="session")
def minilm_nlp():
    import stream_trf

    return stream_trf.load()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from stream_trf.model.source import DEFAULT_MODEL, resolve_model_dir

    return resolve_model_dir(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def broker():
    """A real Tansu broker on a free port (memory storage), shared by the tests of one module;
    each test uses fresh topic names and consumer groups (worker_harness.fresh_settings)."""
    from stream_trf.stream.broker import EmbeddedBroker

    with EmbeddedBroker() as b:
        yield b


def shared_descriptions(limit: int | None = None) -> list[dict]:
    path = SHARED_DATA / "debian-descriptions.jsonl.gz"
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if limit is not None and len(out) >= limit:
                break
    return out


def hf_reference(model_dir: Path, text: str):
    """The HF model run on one sentence alone, unpadded: an independent reference."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    key = str(model_dir)
    if key not in _HF_CACHE:
        tok = AutoTokenizer.from_pretrained(key, split_special_tokens=True)
        model = AutoModel.from_pretrained(key, attn_implementation="eager").eval()
        _HF_CACHE[key] = (tok, model)
    tok, model = _HF_CACHE[key]
    enc = tok(text, return_tensors="pt", return_special_tokens_mask=True)
    special = enc.pop("special_tokens_mask")[0].tolist()
    ids, _ = guard_injected(tok, enc["input_ids"][0].tolist(), None, special)
    enc["input_ids"] = torch.tensor([ids])
    with torch.no_grad():
        out = model(**enc)
    return enc["input_ids"][0].numpy(), out.last_hidden_state[0].numpy()


_HF_CACHE: dict[str, tuple] = {}


def guard_injected(tok, ids: list[int], strings: list[str] | None, special: list[int]):
    """The library's contract, restated: a content piece that the vocabulary maps to a special
    id (text that spells "<cls>" in a vocabulary holding it as a piece) is fed to the model as
    the unknown token, never as a boundary token."""
    specials = set(tok.all_special_ids) - {tok.unk_token_id}
    ids = list(ids)
    strings = None if strings is None else list(strings)
    for j, (i, m) in enumerate(zip(ids, special)):
        if not m and i in specials:
            ids[j] = tok.unk_token_id
            if strings is not None:
                strings[j] = tok.unk_token
    return ids, strings
