#!/usr/bin/env python3
"""Checks a converted GGUF before it is fetched: its architecture, vocabulary, end-of-turn token
and chat template. Reads only the header, with the standard library (no numpy, no gguf package),
so it runs on any Python 3.

  verify_gguf.py MODEL.gguf --metrics out/metrics.json --out out/verify.json

Exit status 0 when every check passes, 1 when one fails (the report says which), 2 when the
file cannot be read as GGUF.
"""

import json
import os
import struct
import sys

EVENT_PREFIX = "@@invagent "

# GGUF metadata value types (gguf.h).
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED = 3, 4
KNOWN_EOT_TOKENS = ["<|end|>", "<|eot_id|>", "<|im_end|>", "<end_of_turn>"]


class GgufError(Exception):
    pass


class Reader:
    def __init__(self, handle):
        self.handle = handle

    def take(self, size):
        data = self.handle.read(size)
        if len(data) != size:
            raise GgufError("truncated header")
        return data

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        length = self.unpack("<Q")
        if length > 1 << 30:
            raise GgufError("implausible string length %d" % length)
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, kind):
        if kind in SCALARS:
            return self.unpack(SCALARS[kind])
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            element = self.unpack("<I")
            count = self.unpack("<Q")
            if count > 1 << 28:
                raise GgufError("implausible array length %d" % count)
            return [self.value(element) for _ in range(count)]
        raise GgufError("unknown metadata value type %d" % kind)


def read_header(path):
    """The metadata and the tensor shapes (name → dims, ne0 first) of a GGUF file."""
    with open(path, "rb") as handle:
        reader = Reader(handle)
        if reader.take(4) != b"GGUF":
            raise GgufError("not a GGUF file (wrong magic)")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise GgufError("GGUF version %d is not supported" % version)
        tensor_count = reader.unpack("<Q")
        metadata_count = reader.unpack("<Q")
        metadata = {}
        for _ in range(metadata_count):
            key = reader.string()
            metadata[key] = reader.value(reader.unpack("<I"))
        tensors = {}
        for _ in range(tensor_count):
            name = reader.string()
            dims = [reader.unpack("<Q") for _ in range(reader.unpack("<I"))]
            reader.unpack("<I")  # ggml type
            reader.unpack("<Q")  # offset
            tensors[name] = dims
    return version, metadata, tensors


def name_check(metadata, expected_name=None):
    """general.name, as llama.cpp reads it: for a Phi-3 (SentencePiece) model it decides whether the whitespace
    after special tokens is eaten (src/llama-vocab.cpp checks for "phi3" / "phi-3"), as Phi-3's tokenizer does."""
    name = metadata.get("general.name")
    if not isinstance(name, str) or name == "":
        return False, "general.name is missing"
    detail = "general.name is %r" % name
    if expected_name is not None and name != expected_name:
        return False, detail + ", expected %r (the merge stage's name, passed to the converter)" % expected_name
    phi3 = metadata.get("general.architecture") == "phi3" and metadata.get("tokenizer.ggml.model") == "llama"
    if phi3 and not any(marker in name.lower() for marker in ("phi3", "phi-3")):
        return False, detail + (
            ": llama.cpp applies Phi-3's whitespace rule only to names containing phi3 or phi-3, "
            "so it would tokenize chats differently from training"
        )
    return True, detail


def verify(path, expected_eot=None, expected_vocabulary=None, expected_name=None):
    """Every check with its outcome; the report is the same whichever way it goes."""
    version, metadata, tensors = read_header(path)
    checks = []

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    architecture = metadata.get("general.architecture")
    check("architecture", isinstance(architecture, str) and architecture != "" and ("%s.block_count" % architecture) in metadata, "general.architecture is %r" % (architecture,))

    tokens = metadata.get("tokenizer.ggml.tokens") or []
    types = metadata.get("tokenizer.ggml.token_type") or []
    embedding = tensors.get("token_embd.weight")
    rows = embedding[1] if embedding and len(embedding) > 1 else None
    detail = "%d tokens, token_embd.weight has %s rows" % (len(tokens), rows)
    ok = len(tokens) > 0 and rows == len(tokens) and (not types or len(types) == len(tokens))
    if expected_vocabulary is not None:
        ok = ok and len(tokens) >= expected_vocabulary
        detail += ", the tokenizer trained with has %d" % expected_vocabulary
    check("vocabulary", ok, detail)

    eot_id = metadata.get("tokenizer.ggml.eot_token_id")
    if expected_eot is not None:
        index = tokens.index(expected_eot) if expected_eot in tokens else None
        special = index is not None and (not types or types[index] in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED))
        check("eot_token", special, "%r is %s" % (expected_eot, "token %d (%s)" % (index, "control" if special else "a normal token") if index is not None else "not in the vocabulary"))
    elif isinstance(eot_id, int):
        check("eot_token", 0 <= eot_id < len(tokens), "tokenizer.ggml.eot_token_id is %r" % (eot_id,))
    else:
        # llama.cpp recognises these markers by their text when the header names no eot token.
        known = [token for token in KNOWN_EOT_TOKENS if token in tokens]
        check("eot_token", bool(known), "no tokenizer.ggml.eot_token_id; %s" % ("%r is in the vocabulary" % known[0] if known else "none of %s is in the vocabulary" % ", ".join(KNOWN_EOT_TOKENS)))

    ok, detail = name_check(metadata, expected_name)
    check("name", ok, detail)

    template = metadata.get("tokenizer.chat_template")
    ok = isinstance(template, str) and template.strip() != ""
    detail = "present (%d characters)" % len(template) if ok else "missing"
    if ok and expected_eot is not None and expected_eot not in template and "eos_token" not in template:
        ok = False
        detail += ", but it never writes %r" % expected_eot
    check("chat_template", ok, detail)

    return {
        "file": os.path.basename(path),
        "ggufVersion": version,
        "architecture": architecture,
        "name": metadata.get("general.name"),
        "vocabularySize": len(tokens),
        "tensorCount": len(tensors),
        "fileType": metadata.get("general.file_type"),
        "eotToken": expected_eot,
        "ok": all(item["ok"] for item in checks),
        "checks": checks,
    }


def main(argv):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--metrics", help="metrics.json of the train stage: the end-of-turn token and vocabulary size to expect")
    parser.add_argument("--name-file", help="a file whose first line is the general.name to expect (merge writes it)")
    parser.add_argument("--out", help="where to write the report (JSON)")
    args = parser.parse_args(argv[1:])
    expected_eot = expected_vocabulary = None
    if args.metrics and os.path.exists(args.metrics):
        with open(args.metrics, encoding="utf-8") as handle:
            metrics = json.load(handle)
        expected_eot = metrics.get("eotToken")
        expected_vocabulary = metrics.get("vocabularySize")
    expected_name = None
    if args.name_file and os.path.exists(args.name_file):
        with open(args.name_file, encoding="utf-8") as handle:
            expected_name = handle.readline().strip() or None
    try:
        report = verify(args.model, expected_eot, expected_vocabulary, expected_name)
    except (GgufError, OSError) as error:
        sys.stderr.write("%s: %s\n" % (args.model, error))
        print(EVENT_PREFIX + json.dumps({"event": "verify-failed", "message": str(error)}), flush=True)
        return 2
    if args.out:
        with open(args.out + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(args.out + ".tmp", args.out)
    print(EVENT_PREFIX + json.dumps({"event": "verified", "ok": report["ok"], "architecture": report["architecture"], "name": report["name"], "vocabularySize": report["vocabularySize"], "checks": report["checks"]}, sort_keys=True), flush=True)
    for item in report["checks"]:
        print("%s %s: %s" % ("ok  " if item["ok"] else "FAIL", item["check"], item["detail"]), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
