#!/usr/bin/env python3
"""Builds a tiny Phi-3 checkpoint offline: the real Phi-3 tokenizer, a Phi3ForCausalLM config with a few
small layers, and (with --weights, which needs torch and transformers) random weights.

  tiny_phi3.py OUT --vocab ggml-vocab-phi-3.gguf [--layers 4] [--hidden 256] [--weights] [--seed 7]

The tokenizer comes from the vocabulary llama.cpp ships for its tokenizer tests
(models/ggml-vocab-phi-3.gguf): its pieces, scores and token types become

  tokenizer.model        a SentencePiece BPE model (protobuf, written by hand here: no sentencepiece needed)
  tokenizer.json         the Hugging Face tokenizer, merges derived from the piece scores
  tokenizer_config.json  special tokens, added tokens and Phi-3-mini-instruct's chat template
  special_tokens_map.json

so a model trained on it meets the same tokenization questions as microsoft/Phi-3-mini-4k-instruct:
llama.cpp's converter reads tokenizer.model, transformers reads tokenizer.json or rebuilds it, and
llama.cpp tokenizes from the GGUF. Only the standard library is needed without --weights.
"""

import argparse
import importlib.util
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SPIECE_UNDERLINE = "\u2581"

# llama.cpp token types (tokenizer.ggml.token_type) and SentencePiece piece types share their numbers.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# The first piece ids of the SentencePiece model; the ids from 32000 on are added tokens.
SENTENCEPIECE_SIZE = 32000

# Phi-3-mini-4k-instruct's chat template (tokenizer_config.json), which renders the system role.
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

# Added tokens whose following whitespace Phi-3's tokenizer strips (rstrip); llama.cpp applies the same rule
# to GGUFs named phi3 / phi-3 (src/llama-vocab.cpp): every special token but <unk>, <s> and <|endoftext|>.
NOT_RSTRIPPED = {"<unk>", "<s>", "<|endoftext|>"}


def load_gguf_reader():
    """verify_gguf.py's standard-library GGUF header reader, from the job bundle's files."""
    path = os.path.join(HERE, "..", "src", "train", "bundle-files", "verify_gguf.py")
    spec = importlib.util.spec_from_file_location("verify_gguf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_vocabulary(gguf_path):
    """Tokens, scores, types and special ids of a llama.cpp vocabulary GGUF."""
    _, metadata, _ = load_gguf_reader().read_header(gguf_path)
    if metadata.get("tokenizer.ggml.model") != "llama":
        found = metadata.get("tokenizer.ggml.model")
        raise SystemExit("%s: expected a SentencePiece (llama) vocabulary, found %r" % (gguf_path, found))
    return {
        "tokens": metadata["tokenizer.ggml.tokens"],
        "scores": metadata["tokenizer.ggml.scores"],
        "types": metadata["tokenizer.ggml.token_type"],
        "bos": metadata.get("tokenizer.ggml.bos_token_id", 1),
        "eos": metadata.get("tokenizer.ggml.eos_token_id", 2),
        "unk": metadata.get("tokenizer.ggml.unknown_token_id", 0),
        "pad": metadata.get("tokenizer.ggml.padding_token_id"),
        "add_bos": bool(metadata.get("tokenizer.ggml.add_bos_token", True)),
        "context": metadata.get("phi3.context_length", 4096),
    }


def sentencepiece_pieces(vocabulary):
    """(piece, score, type) of the SentencePiece model: ids below 32000, as Llama's tokenizer.model has them."""
    pieces = []
    for index in range(SENTENCEPIECE_SIZE):
        token, kind = vocabulary["tokens"][index], vocabulary["types"][index]
        if index == vocabulary["unk"]:
            pieces.append((token, 0.0, UNKNOWN))
        elif index in (vocabulary["bos"], 2) or kind == CONTROL:
            # The GGUF marks </s> user-defined (an added token of tokenizer.json); in the model it is a control piece.
            pieces.append((token, 0.0, CONTROL))
        elif kind == BYTE:
            pieces.append((token, 0.0, BYTE))
        else:
            pieces.append((token, float(vocabulary["scores"][index]), NORMAL))
    return pieces


# --- protobuf, by hand (sentencepiece_model.proto field numbers) ----------------------------------


def _varint(value):
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number, value):
    return _varint(number << 3) + _varint(value)


def _field_bytes(number, data):
    return _varint((number << 3) | 2) + _varint(len(data)) + data


def _field_float(number, value):
    return _varint((number << 3) | 5) + struct.pack("<f", value)


def sentencepiece_model_bytes(pieces, unk_id=0, bos_id=1, eos_id=2):
    """A ModelProto: the pieces, a BPE TrainerSpec with byte fallback, and Llama's NormalizerSpec."""
    out = bytearray()
    for piece, score, kind in pieces:
        message = _field_bytes(1, piece.encode("utf-8")) + _field_float(2, score)
        if kind != NORMAL:
            message += _field_varint(3, kind)
        out += _field_bytes(1, message)
    trainer = (
        _field_varint(3, 2)  # model_type: BPE
        + _field_varint(4, len(pieces))  # vocab_size
        + _field_varint(35, 1)  # byte_fallback
        + _field_varint(40, unk_id)
        + _field_varint(41, bos_id)
        + _field_varint(42, eos_id)
        + _field_varint(43, -1)  # pad_id: none
    )
    out += _field_bytes(2, trainer)
    normalizer = (
        _field_bytes(1, b"identity")
        + _field_varint(3, 1)  # add_dummy_prefix
        + _field_varint(4, 0)  # remove_extra_whitespaces: off
        + _field_varint(5, 1)  # escape_whitespaces
    )
    out += _field_bytes(3, normalizer)
    return bytes(out)


# --- tokenizer.json ---------------------------------------------------------------------------------


def bpe_merges(pieces):
    """Merges that make a BPE tokenizer choose what SentencePiece's BPE chooses: every split of a normal
    piece into two normal pieces, ranked by the merged piece's score (highest first), ties by piece id
    and then by the ids of the two halves."""
    normal = {piece: index for index, (piece, _score, kind) in enumerate(pieces) if kind == NORMAL}
    ranked = []
    for piece, index in normal.items():
        score = pieces[index][1]
        splits = []
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                splits.append((normal[left], normal[right], left, right))
        for left_id, right_id, left, right in sorted(splits):
            ranked.append((-score, index, left_id, right_id, left, right))
    ranked.sort()
    return [[left, right] for *_ignored, left, right in ranked]


def added_tokens(vocabulary):
    """tokenizer.json's added tokens: <unk>, <s>, </s> and the chat markers from id 32000 on."""
    tokens = []
    for index, token in enumerate(vocabulary["tokens"]):
        kind = vocabulary["types"][index]
        if index >= SENTENCEPIECE_SIZE and kind not in (CONTROL, USER_DEFINED):
            continue  # [PAD…] rows: the model's vocabulary is larger than the tokenizer's
        if index < SENTENCEPIECE_SIZE and index not in (vocabulary["unk"], vocabulary["bos"], 2):
            continue
        special = kind == CONTROL
        tokens.append({
            "id": index,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": token not in NOT_RSTRIPPED,
            "normalized": False,
            "special": special,
        })
    return tokens


def tokenizer_json(vocabulary, pieces):
    bos = vocabulary["tokens"][vocabulary["bos"]]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens(vocabulary),
        # Llama's SentencePiece normalisation: a ▁ before the text, every space a ▁ (legacy, as Phi-3 ships it).
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SPIECE_UNDERLINE},
                {"type": "Replace", "pattern": {"String": " "}, "content": SPIECE_UNDERLINE},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": bos, "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {bos: {"id": bos, "ids": [vocabulary["bos"]], "tokens": [bos]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPIECE_UNDERLINE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": vocabulary["tokens"][vocabulary["unk"]],
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": {piece: index for index, (piece, _score, _kind) in enumerate(pieces)},
            "merges": bpe_merges(pieces),
        },
    }


def tokenizer_config(vocabulary):
    tokens = vocabulary["tokens"]
    eos = tokens[vocabulary["eos"]]
    return {
        "add_bos_token": vocabulary["add_bos"],
        "add_eos_token": False,
        "added_tokens_decoder": {
            str(item["id"]): {key: value for key, value in item.items() if key != "id"} for item in added_tokens(vocabulary)
        },
        "bos_token": tokens[vocabulary["bos"]],
        "chat_template": PHI3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "legacy": False,
        "model_max_length": vocabulary["context"],
        "pad_token": tokens[vocabulary["pad"]] if vocabulary["pad"] is not None else eos,
        "padding_side": "left",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": tokens[vocabulary["unk"]],
        "use_default_system_prompt": False,
    }


def model_config(vocabulary, layers, hidden, heads):
    """A Phi3ForCausalLM config.json, Phi-3-mini's shape made small."""
    return {
        "architectures": ["Phi3ForCausalLM"],
        "model_type": "phi3",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": vocabulary["bos"],
        "eos_token_id": vocabulary["eos"],
        "pad_token_id": vocabulary["pad"] if vocabulary["pad"] is not None else vocabulary["eos"],
        "embd_pdrop": 0.0,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": hidden * 2,
        "max_position_embeddings": vocabulary["context"],
        "original_max_position_embeddings": vocabulary["context"],
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": heads,
        "resid_pdrop": 0.0,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "sliding_window": vocabulary["context"] - 1,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": len(vocabulary["tokens"]),
    }


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def write_tokenizer(out, vocabulary):
    pieces = sentencepiece_pieces(vocabulary)
    with open(os.path.join(out, "tokenizer.model"), "wb") as handle:
        handle.write(sentencepiece_model_bytes(pieces, vocabulary["unk"], vocabulary["bos"], 2))
    write_json(os.path.join(out, "tokenizer.json"), tokenizer_json(vocabulary, pieces))
    config = tokenizer_config(vocabulary)
    write_json(os.path.join(out, "tokenizer_config.json"), config)
    special = {key: config[key] for key in ("bos_token", "eos_token", "pad_token", "unk_token")}
    write_json(os.path.join(out, "special_tokens_map.json"), special)


def write_weights(out, seed):
    """Random weights through transformers itself (torch needed), saved as safetensors with its config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(out)
    model = AutoModelForCausalLM.from_config(config)
    model.to(torch.bfloat16).save_pretrained(out)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--vocab", required=True, help="llama.cpp's models/ggml-vocab-phi-3.gguf")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--weights", action="store_true", help="also random weights (needs torch and transformers)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv[1:])
    vocabulary = read_vocabulary(args.vocab)
    os.makedirs(args.out, exist_ok=True)
    write_tokenizer(args.out, vocabulary)
    write_json(os.path.join(args.out, "config.json"), model_config(vocabulary, args.layers, args.hidden, args.heads))
    stops = [vocabulary["eos"], vocabulary["tokens"].index("<|end|>")]
    generation = {"bos_token_id": vocabulary["bos"], "eos_token_id": stops, "pad_token_id": vocabulary["eos"]}
    write_json(os.path.join(args.out, "generation_config.json"), generation)
    if args.weights:
        write_weights(args.out, args.seed)
    summary = {"out": os.path.abspath(args.out), "vocabularySize": len(vocabulary["tokens"]), "layers": args.layers}
    print(json.dumps(dict(summary, hidden=args.hidden, weights=args.weights)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
