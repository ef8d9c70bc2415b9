#!/usr/bin/env python3
"""QLoRA fine-tuning and merging for an invagent training job.

Run by run.sh from the job bundle's folder, one stage at a time:

  train.py probe-env   (standard library only) which packages this Python has, which are missing, and
                       whether their versions make a combination that works; writes out/missing.txt
  train.py check-env   the packages import and fit together; the base model is a local folder; the
                       tokenizer gives the ids tokenizer.json gives; llama.cpp's converter starts
  train.py train       LoRA on the 4-bit (NF4) base model; loss on assistant turns only
  train.py merge       the adapter merged into the base model loaded in 16 bits (never 4 bits)

Settings come from config.json (validated by invagent before the bundle was written). Progress
goes to stdout as lines `@@invagent {"event": ...}` that invagent parses; everything else is
plain log text. Heavy packages are imported inside the stages, so the helpers below can be
checked with a bare Python.
"""

import json
import math
import os
import random
import sys
import time

EVENT_PREFIX = "@@invagent "
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
ADAPTER_DIR = os.path.join(OUT, "adapter")
CHECKPOINT_DIR = os.path.join(OUT, "checkpoint")
MERGED_DIR = os.path.join(OUT, "merged")
METRICS_FILE = os.path.join(OUT, "metrics.json")
MISSING_FILE = os.path.join(OUT, "missing.txt")
MODEL_NAME_FILE = os.path.join(OUT, "model-name.txt")
CONVERTER = os.path.join(HERE, "llama.cpp", "convert_hf_to_gguf.py")
REQUIREMENTS_FILE = os.path.join(HERE, "requirements.txt")

# The packages whose versions a trained model's manifest records.
REPORTED_PACKAGES = ["torch", "transformers", "peft", "accelerate", "bitsandbytes", "safetensors", "tokenizers", "huggingface-hub", "sentencepiece", "numpy"]

# What training, merging and converting need (distribution name → module). bitsandbytes is optional (QLoRA).
REQUIRED_PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "accelerate": "accelerate",
    "safetensors": "safetensors",
    "tokenizers": "tokenizers",
    "huggingface-hub": "huggingface_hub",
    "sentencepiece": "sentencepiece",
    "numpy": "numpy",
    "jinja2": "jinja2",
    "pyyaml": "yaml",
}

# Versions that work together, as (package, requirement) rules that hold when another package's version
# matches. Read from the libraries: peft before 0.18 imports transformers.HybridCache, which transformers 5
# removed; transformers 5 needs huggingface_hub 1.x and 4.57 needs 0.x; train.py passes `dtype=`, new in 4.56.
COMPATIBILITY = [
    ("transformers", ">=4.56", None, None, "train.py passes dtype= to from_pretrained (transformers 4.56 or later)"),
    ("peft", ">=0.18", "transformers", ">=5", "peft before 0.18 imports HybridCache, which transformers 5 removed"),
    ("huggingface-hub", ">=1.0", "transformers", ">=5", "transformers 5 needs huggingface_hub 1.x"),
    ("huggingface-hub", "<1.0", "transformers", "<5", "transformers 4.x needs huggingface_hub 0.x"),
    ("peft", ">=0.17", None, None, "peft 0.17 or later"),
]

# Advice for a combination that does not work: the two that do.
WORKING_COMBINATIONS = (
    "transformers 4.57 with peft 0.17 and huggingface_hub 0.36 (requirements.txt), "
    "or transformers 5 with peft 0.18 or later and huggingface_hub 1.x"
)

# End-of-turn markers of common chat templates, tried in order when config.json names none.
KNOWN_EOT_TOKENS = ["<|end|>", "<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|endoftext|>", "</s>"]


class StageError(Exception):
    """A problem the user can act on: printed as one line, exit code 2."""


def emit(event, **fields):
    print(EVENT_PREFIX + json.dumps(dict(event=event, **fields), sort_keys=True), flush=True)


def log(message):
    print(message, flush=True)


def load_config():
    with open(os.path.join(HERE, "config.json"), encoding="utf-8") as handle:
        return json.load(handle)


def read_jsonl(path):
    examples = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                example = json.loads(line)
            except ValueError as error:
                raise StageError("%s:%d: invalid JSON: %s" % (path, number, error))
            messages = example.get("messages")
            if not isinstance(messages, list) or not messages:
                raise StageError('%s:%d: expected "messages", a non-empty list' % (path, number))
            examples.append({"id": example.get("id", "line-%d" % number), "messages": messages})
    return examples


def write_json_atomically(path, value):
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


def package_versions():
    from importlib import metadata

    versions = {}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def installed_versions(names):
    """Distribution name → installed version (None when missing), read without importing anything."""
    from importlib import metadata

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# --- versions: which packages work together ------------------------------------------------------


def parse_version(text):
    """The leading numbers of a version ("2.11.0+cu128" → (2, 11, 0), "5.0.0rc1" → (5, 0, 0))."""
    numbers = []
    for part in str(text).split("+")[0].split("."):
        digits = ""
        for character in part:
            if not character.isdigit():
                break
            digits += character
        if digits == "":
            break
        numbers.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(numbers)


def version_matches(version, requirement):
    """Whether a version meets requirements like ">=0.18", "<5" or ">=4.56,<5" (compared number by number)."""
    have = parse_version(version)
    for clause in requirement.split(","):
        clause = clause.strip()
        for operator in (">=", "<=", "==", "!=", ">", "<"):
            if clause.startswith(operator):
                want = parse_version(clause[len(operator) :])
                break
        else:
            raise ValueError("unknown requirement %r" % clause)
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        if operator == "==":
            # "==4.57" accepts every 4.57.x
            ok = have[: len(want)] == want
        elif operator == "!=":
            ok = have[: len(want)] != want
        else:
            ok = {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[operator]
        if not ok:
            return False
    return True


def combination_problems(versions):
    """Why these installed versions do not work together (empty when they do); missing packages are no problem here."""
    problems = []
    for package, requirement, when_package, when_requirement, reason in COMPATIBILITY:
        version = versions.get(package)
        if version is None:
            continue
        if when_package is not None:
            other = versions.get(when_package)
            if other is None or not version_matches(other, when_requirement):
                continue
        if not version_matches(version, requirement):
            where = " with %s %s" % (when_package, versions[when_package]) if when_package else ""
            problems.append("%s %s%s: needs %s%s (%s)" % (package, version, where, package, requirement, reason))
    return problems


def requirement_for(package, versions, pins):
    """What to install for a missing package so that it fits what is installed: the pin when that fits,
    else the rule's requirement (pip picks a matching wheel from the carried ones)."""
    def applies(rule):
        other = versions.get(rule[2]) if rule[2] is not None else None
        return rule[0] == package and (rule[2] is None or (other is not None and version_matches(other, rule[3])))

    rules = [rule for rule in COMPATIBILITY if applies(rule)]
    pin = pins.get(package)
    if pin is not None and all(version_matches(pin, rule[1]) for rule in rules):
        return "%s==%s" % (package, pin)
    requirement = ",".join(rule[1] for rule in rules)
    return package + requirement if requirement else package


def read_pins(path):
    """requirements.txt's `name==version` lines, names lower-cased."""
    pins = {}
    if not os.path.exists(path):
        return pins
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower()] = version.strip().split(";")[0].strip()
    return pins


def pin_differences(versions, pins):
    """One line per installed package whose version differs from its pin."""
    differing = [name for name in sorted(versions) if versions[name] not in (None, pins.get(name, versions[name]))]
    return ["%s %s is installed, requirements.txt pins %s" % (name, versions[name], pins[name]) for name in differing]


# --- the base model and the files around it -------------------------------------------------------


def looks_like_hub_id(name):
    """"owner/model" (or "model"): no path separators beyond the one, not starting like a path."""
    return not name.startswith((".", "/", "~")) and name.count("/") <= 1 and os.sep not in name.replace("/", "")


def base_model_dir(config):
    """The base model as a local folder. Without a network (HF_HUB_OFFLINE=1) a Hub id works only when the
    model is already in the Hugging Face cache; otherwise the job stops here, before any GPU time."""
    name = config["baseModel"]
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            raise StageError(
                "baseModel %s is a folder without config.json: expected a Hugging Face model folder "
                "(config.json, weights, tokenizer files)" % name
            )
        return os.path.abspath(path)
    if not looks_like_hub_id(name):
        raise StageError("baseModel %s: no such folder on this host" % name)
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:  # any failure means: not (completely) in the cache
        raise StageError(
            "baseModel %s is a Hugging Face Hub id, and this job runs offline (HF_HUB_OFFLINE=1) "
            "without it in the cache: copy the model to this host (on a machine with a network: "
            "`hf download %s --local-dir DIR`, then copy DIR here) "
            "and set baseModel to that folder" % (name, name)
        )


# The files that make up a model's tokenizer and chat template, copied from the base into the merged folder:
# transformers 5 saves only tokenizer.json, and llama.cpp's converter reads tokenizer.model for Phi-3 and Llama 2.
TOKENIZER_FILES = [
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
]


def copy_tokenizer_files(base_dir, target_dir):
    """Copies the base model's own tokenizer files over whatever save_pretrained wrote; returns their names."""
    import shutil

    copied = []
    for name in TOKENIZER_FILES:
        source = os.path.join(base_dir, name)
        if os.path.isfile(source):
            shutil.copyfile(source, os.path.join(target_dir, name))
            copied.append(name)
    return copied


def read_json_file(path):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def sentencepiece_tokenizer(folder):
    """Whether llama.cpp's converter will read this folder's tokenizer with sentencepiece (tokenizer.model):
    Llama-2-style tokenizers (Phi-3, Mistral v0.1, Llama 2) do; byte-level BPE ones (Qwen, Llama 3) do not."""
    tokenizer_class = read_json_file(os.path.join(folder, "tokenizer_config.json")).get("tokenizer_class") or ""
    if os.path.exists(os.path.join(folder, "tokenizer.model")):
        return True
    return tokenizer_class.replace("Fast", "") in ("LlamaTokenizer", "CodeLlamaTokenizer")


def merged_folder_problems(folder):
    """What llama.cpp's converter will miss in a merged model folder."""
    problems = []
    if not os.path.exists(os.path.join(folder, "config.json")):
        problems.append("config.json is missing")
    if not any(name.endswith(".safetensors") for name in os.listdir(folder)):
        problems.append("no .safetensors weights")
    if sentencepiece_tokenizer(folder) and not os.path.exists(os.path.join(folder, "tokenizer.model")):
        problems.append("tokenizer.model is missing (the converter reads it for this tokenizer)")
    def has(name):
        return os.path.exists(os.path.join(folder, name))

    if not has("tokenizer.json") and not has("tokenizer.model"):
        problems.append("no tokenizer.json or tokenizer.model")
    config = read_json_file(os.path.join(folder, "tokenizer_config.json"))
    if not config.get("chat_template") and not has("chat_template.jinja") and not has("chat_template.json"):
        problems.append("no chat template (tokenizer_config.json chat_template or chat_template.jinja)")
    return problems


def gguf_model_name(model_config, base_model, job_name):
    """The GGUF's general.name. llama.cpp decides by this name whether Phi-3's rule of eating the whitespace
    after special tokens applies (src/llama-vocab.cpp: it must contain "phi3" or "phi-3"), so a Phi-3 model is
    always named so, whatever its folder is called."""
    name = job_name or os.path.basename(os.path.normpath(base_model)) or "model"
    if model_config.get("model_type") == "phi3" and not any(marker in name.lower() for marker in ("phi3", "phi-3")):
        name = "Phi-3 " + name
    return name


# --- tokenizer parity: the ids training sees are the ids llama.cpp will see -----------------------

PROBE_CHAT = [
    {"role": "system", "content": "You audit an inventory.  Use the tools."},
    {"role": "user", "content": "Finding negative_on_hand on P-000123:\n on_hand is -4 ünits."},
    {"role": "assistant", "content": '{"thought": "Check the part.", "tool": "get_part", "args": {"part_id": "P-1"}}'},
    {"role": "user", "content": '{"ok": true, "result": {"on_hand": -4}}'},
    {"role": "assistant", "content": '{"tool": "escalate", "args": {"reason": "no cause"}}'},
]


def first_difference(a, b):
    """The first index where two id lists differ, or None when they are equal."""
    index = common_prefix_length(a, b)
    return None if index == len(a) == len(b) else index


# --- labels: which tokens the loss is computed on ------------------------------------------------


def common_prefix_length(a, b):
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index


def assistant_spans(render, messages):
    """The rendered conversation and the character spans of its assistant turns.

    `render(messages, add_generation_prompt)` is the chat template. An assistant turn starts where
    the prompt for it ends (the conversation before it, rendered with the generation prompt) and
    ends where the conversation rendered through it stops agreeing with the whole conversation:
    that covers the answer, its end-of-turn marker and what the template writes after it. The
    agreement may run a few characters into the next turn's header ("<|" of "<|user|>" and of
    "<|endoftext|>"): label_mask counts only tokens wholly inside a span, so no such token does.
    """
    full = render(messages, False)
    spans = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = render(messages[:index], True)
        if not full.startswith(prompt):
            raise StageError("the chat template renders the conversation before turn %d differently from the whole conversation: cannot tell the assistant's tokens apart" % (index + 1))
        through = render(messages[: index + 1], False)
        end = common_prefix_length(through, full)
        if end <= len(prompt):
            raise StageError("assistant turn %d renders as nothing" % (index + 1))
        spans.append((len(prompt), end))
    return full, spans


def label_mask(offsets, spans):
    """For each token (its character offsets), whether it belongs to an assistant turn.

    A token counts when it lies wholly inside a span. Tokens the tokenizer adds itself (offsets
    (0, 0)) never count.
    """
    mask = []
    for start, end in offsets:
        inside = end > start and any(span_start <= start and end <= span_end for span_start, span_end in spans)
        mask.append(inside)
    return mask


def detect_eot_token(render, special_tokens):
    """The token the chat template closes an assistant turn with: the first special token after
    the answer in a rendered probe conversation."""
    probe = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "PONG-7f3a"}]
    text = render(probe, False)
    after = text[text.index("PONG-7f3a") + len("PONG-7f3a") :].lstrip(" \n")
    for token in sorted(special_tokens, key=len, reverse=True):
        if token and after.startswith(token):
            return token
    for token in KNOWN_EOT_TOKENS:
        if token in after:
            return token
    raise StageError("cannot tell which token ends an assistant turn in this chat template (after an answer it writes %r): set chat.eotToken in the training config" % after[:40])


def build_example(tokenizer, render, messages, eot_id, max_length):
    """input_ids and labels (-100 where no loss is computed) for one conversation, or the reason it is skipped."""
    full, spans = assistant_spans(render, messages)
    if not spans:
        return None, "no assistant turn"
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and full.startswith(bos))
    encoded = tokenizer(full, add_special_tokens=add_special, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    mask = label_mask(encoded["offset_mapping"], spans)
    if len(ids) > max_length:
        return None, "longer than training.maxLength (%d > %d tokens)" % (len(ids), max_length)
    labels = [token if keep else -100 for token, keep in zip(ids, mask)]
    trained = [token for token in labels if token != -100]
    # Every assistant turn must teach the model to stop: its end-of-turn token is in the loss.
    if trained.count(eot_id) < len(spans):
        raise StageError("the end-of-turn token (id %d) is not inside every assistant turn: the chat template and chat.eotToken disagree" % eot_id)
    return {"input_ids": ids, "labels": labels}, None


# --- stages --------------------------------------------------------------------------------------


def seed_everything(seed):
    import torch

    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:
        pass


def load_bitsandbytes():
    """bitsandbytes, or the reason it cannot be used (not installed, no CUDA build, …)."""
    try:
        import bitsandbytes  # noqa: F401
        import bitsandbytes.nn  # noqa: F401

        return True, None
    except Exception as error:  # bitsandbytes raises many kinds of errors when its CUDA library is missing
        return False, "%s: %s" % (type(error).__name__, str(error).splitlines()[0] if str(error) else "")


def stage_probe_env(config):
    """Standard library only: run by the host's Python before anything is installed."""
    versions = installed_versions(list(REQUIRED_PACKAGES) + ["bitsandbytes"])
    pins = read_pins(REQUIREMENTS_FILE)
    problems = combination_problems(versions)
    folder = os.path.expanduser(config.get("baseModel") or "")
    # sentencepiece only serves the converter's reading of tokenizer.model (Phi-3, Llama 2); byte-level BPE
    # models (Qwen, Llama 3) do not need it.
    optional = {"sentencepiece"} if os.path.isdir(folder) and not sentencepiece_tokenizer(folder) else set()
    missing = [name for name in REQUIRED_PACKAGES if versions.get(name) is None and name not in optional]
    emit("packages", python="%d.%d.%d" % sys.version_info[:3], versions=versions, missing=missing)
    for difference in pin_differences(versions, pins):
        emit("warning", message="%s (the host's version is used and recorded in the model's manifest)" % difference)
    if problems:
        raise StageError(
            "this Python's packages do not work together: %s. Use %s" % ("; ".join(problems), WORKING_COMBINATIONS)
        )
    requirements = [requirement_for(name, versions, pins) for name in missing]
    with open(MISSING_FILE + ".tmp", "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in requirements))
    os.replace(MISSING_FILE + ".tmp", MISSING_FILE)


def check_converter(base_dir):
    """llama.cpp's converter starts (its imports: torch, numpy, yaml, gguf-py, transformers), and sentencepiece
    imports when it will read tokenizer.model."""
    import subprocess

    command = [sys.executable, CONVERTER, "--help"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        tail = result.stdout.strip().splitlines()[-1:] or ["no output"]
        raise StageError("llama.cpp's convert_hf_to_gguf.py does not start with this Python: %s" % tail[0])
    if sentencepiece_tokenizer(base_dir):
        try:
            import sentencepiece  # noqa: F401
        except ImportError as error:
            raise StageError(
                "the converter reads this base model's tokenizer.model with sentencepiece, which does not import: %s"
                % error
            )


def stage_check_env(config):
    missing = []
    for module in ("torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers", "huggingface_hub"):
        try:
            __import__(module)
        except ImportError as error:
            missing.append("%s (%s)" % (module, error))
    versions = package_versions()
    problems = combination_problems(versions)
    if problems:
        raise StageError(
            "the installed packages do not work together: %s. Use %s" % ("; ".join(problems), WORKING_COMBINATIONS)
        )
    if missing:
        raise StageError(
            "missing Python packages: %s. Carry wheels for them (runtime.wheels), or use %s"
            % (", ".join(missing), WORKING_COMBINATIONS)
        )
    import torch

    if not torch.cuda.is_available():
        raise StageError("PyTorch %s sees no CUDA GPU (a CPU-only build, or a driver it cannot use)" % torch.__version__)
    base_dir = base_model_dir(config)
    check_converter(base_dir)
    tokenizer, parity = load_tokenizer(config, base_dir)
    usable, reason = load_bitsandbytes()
    if config["quantization"]["load4bit"] and not usable:
        emit("warning", message="bitsandbytes cannot load (%s): training will use LoRA on the 16-bit model instead of 4-bit QLoRA" % reason)
    emit(
        "environment",
        packages=versions,
        python=sys.executable,
        cuda=torch.version.cuda,
        gpu=torch.cuda.get_device_name(0),
        bitsandbytes=usable,
        baseModel=base_dir,
        tokenizer=parity["loadedAs"],
    )


def chat_settings(base_dir):
    """Special tokens and chat template as the base's tokenizer_config.json (or chat_template.jinja) gives them."""
    config = read_json_file(os.path.join(base_dir, "tokenizer_config.json"))
    settings = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            settings[key] = value
    template = config.get("chat_template")
    jinja = os.path.join(base_dir, "chat_template.jinja")
    if not template and os.path.exists(jinja):
        with open(jinja, encoding="utf-8") as handle:
            template = handle.read()
    if template:
        settings["chat_template"] = template
    return settings


def tokenizer_as_is(base_dir):
    """tokenizer.json exactly as the file says (no class rebuilding it), with the base's special tokens and template."""
    from tokenizers import Tokenizer

    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError:  # transformers 5 names the class TokenizersBackend (and may drop the old alias)
        from transformers import TokenizersBackend as PreTrainedTokenizerFast

    settings = chat_settings(base_dir)
    template = settings.pop("chat_template", None)
    path = os.path.join(base_dir, "tokenizer.json")
    try:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(path), **settings)
    except TypeError:
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=path, **settings)
    if template:
        tokenizer.chat_template = template
    return tokenizer


def has_offsets(tokenizer):
    """Whether the tokenizer gives character offsets (a fast, Rust-backed one does)."""
    try:
        return "offset_mapping" in tokenizer("a b", add_special_tokens=False, return_offsets_mapping=True)
    except Exception:  # slow tokenizers raise NotImplementedError; some versions other errors
        return False


def probe_ids(tokenizer, text):
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def load_tokenizer(config, base_dir):
    """The tokenizer to train with, and how its ids compare with tokenizer.json's.

    transformers may rebuild a tokenizer from its class instead of reading tokenizer.json (transformers 5
    rebuilds Llama-2-style ones such as Phi-3's, and drops the ▁ word prefix after special tokens), so its ids
    can differ from those llama.cpp produces from the converted GGUF: the model would be trained on another
    tokenization than it is served with. The ids of a probe chat are compared with tokenizer.json read by the
    tokenizers library as the file says; on a difference tokenizer.json is loaded as it is, and training
    refuses to start if even that differs.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir, trust_remote_code=config["trustRemoteCode"])
    if not getattr(tokenizer, "chat_template", None):
        raise StageError(
            "%s has no chat template: invagent trains chat models only (a local folder with its own chat template "
            "in tokenizer_config.json or chat_template.jinja)" % config["baseModel"]
        )
    if not has_offsets(tokenizer):
        raise StageError("%s has no fast tokenizer: character offsets are needed to find the assistant's tokens" % config["baseModel"])
    text = renderer_for(tokenizer)(PROBE_CHAT, False)
    probe = {"text": text, "ids": probe_ids(tokenizer, text)}
    parity = {"loadedAs": type(tokenizer).__name__, "probe": probe, "reference": None}
    if os.path.exists(os.path.join(base_dir, "tokenizer.json")):
        from tokenizers import Tokenizer

        reference_tokenizer = Tokenizer.from_file(os.path.join(base_dir, "tokenizer.json"))
        reference = reference_tokenizer.encode(text, add_special_tokens=False).ids
        parity["reference"] = "tokenizer.json"
        difference = first_difference(parity["probe"]["ids"], reference)
        if difference is not None:
            around = (probe["ids"][difference : difference + 4], reference[difference : difference + 4])
            message = "%s gives other token ids than tokenizer.json on a probe chat (from token %d: %s vs %s)"
            message = message % ((type(tokenizer).__name__, difference) + around)
            emit("warning", message=message + ": loading tokenizer.json as it is")
            tokenizer = tokenizer_as_is(base_dir)
            parity["loadedAs"] = "tokenizer.json as-is"
            parity["probe"]["ids"] = probe_ids(tokenizer, text)
            difference = first_difference(parity["probe"]["ids"], reference)
            if difference is not None:
                raise StageError(
                    "the tokenizer's ids differ from tokenizer.json's on a probe chat even when tokenizer.json "
                    "is loaded as it is (from token %d): training would not see the tokens llama.cpp will" % difference
                )
    probe_tokens = len(parity["probe"]["ids"])
    emit("tokenizer-parity", ok=True,
         loadedAs=parity["loadedAs"], reference=parity["reference"], probeTokens=probe_tokens)
    if tokenizer.pad_token is None:
        # Padding positions are masked out of the loss by their labels, so any token will do.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, parity


def renderer_for(tokenizer):
    def render(messages, add_generation_prompt):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    return render


def eot_token_of(config, tokenizer, render):
    token = config["chat"].get("eotToken") or detect_eot_token(render, tokenizer.all_special_tokens + list(getattr(tokenizer, "added_tokens_encoder", {}).keys()))
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise StageError("the end-of-turn token %r is not in the vocabulary of %s" % (token, config["baseModel"]))
    return token, token_id


def prepare_dataset(name, path, tokenizer, render, eot_id, max_length):
    features, skipped = [], {}
    for example in read_jsonl(path):
        feature, reason = build_example(tokenizer, render, example["messages"], eot_id, max_length)
        if feature is None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        features.append(feature)
    for reason, count in sorted(skipped.items()):
        emit("warning", message="%s: %d example(s) skipped: %s" % (name, count, reason))
    if not features:
        raise StageError("%s: no example left to train on" % path)
    emit("dataset", name=name, examples=len(features), skipped=sum(skipped.values()), tokens=sum(len(f["input_ids"]) for f in features))
    return features


def collate(features, pad_id):
    import torch

    width = max(len(feature["input_ids"]) for feature in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    labels = torch.full((len(features), width), -100, dtype=torch.long)
    attention = torch.zeros((len(features), width), dtype=torch.long)
    for row, feature in enumerate(features):
        length = len(feature["input_ids"])
        ids[row, :length] = torch.tensor(feature["input_ids"])
        labels[row, :length] = torch.tensor(feature["labels"])
        attention[row, :length] = 1
    return ids, labels, attention


def epoch_order(count, seed, epoch):
    order = list(range(count))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return order


def load_base_model(config, base_dir, four_bit):
    import torch
    from transformers import AutoModelForCausalLM

    compute = getattr(torch, config["quantization"]["computeDtype"])
    kwargs = {"trust_remote_code": config["trustRemoteCode"], "device_map": {"": 0}}
    if four_bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=config["quantization"]["quantType"],
            bnb_4bit_use_double_quant=config["quantization"]["doubleQuant"],
            bnb_4bit_compute_dtype=compute,
        )
    return AutoModelForCausalLM.from_pretrained(base_dir, dtype=compute, **kwargs)


def evaluate(model, features, batch_size, pad_id, eot_id):
    """The loss over the eval set's assistant tokens, and how often the model's most likely next token at
    the end of an assistant turn is the end-of-turn token (it must learn to stop)."""
    import torch

    model.eval()
    total, tokens, turn_ends, stops = 0.0, 0, 0, 0
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            ids, labels, attention = collate(features[start : start + batch_size], pad_id)
            ids, labels, attention = ids.to(model.device), labels.to(model.device), attention.to(model.device)
            # The model's loss is the mean over the predicted (shifted) label tokens: weigh it by their count.
            count = int((labels[:, 1:] != -100).sum().item())
            output = model(input_ids=ids, attention_mask=attention, labels=labels)
            total += output.loss.item() * count
            tokens += count
            at_end = labels[:, 1:] == eot_id
            predicted = output.logits[:, :-1, :].argmax(dim=-1)
            turn_ends += int(at_end.sum().item())
            stops += int((at_end & (predicted == eot_id)).sum().item())
    model.train()
    return total / max(tokens, 1), (stops / turn_ends if turn_ends else None)


def save_checkpoint(model, optimizer, scheduler, state):
    import torch

    temporary = CHECKPOINT_DIR + ".tmp"
    if os.path.isdir(temporary):
        import shutil

        shutil.rmtree(temporary)
    model.save_pretrained(temporary)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all()}, os.path.join(temporary, "trainer-state.pt"))
    write_json_atomically(os.path.join(temporary, "progress.json"), state)
    if os.path.isdir(CHECKPOINT_DIR):
        import shutil

        shutil.rmtree(CHECKPOINT_DIR)
    os.replace(temporary, CHECKPOINT_DIR)


def stage_train(config):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training, set_peft_model_state_dict
    from transformers import get_scheduler

    started = time.time()
    training = config["training"]
    seed_everything(config["seed"])
    base_dir = base_model_dir(config)
    tokenizer, parity = load_tokenizer(config, base_dir)
    render = renderer_for(tokenizer)
    eot_token, eot_id = eot_token_of(config, tokenizer, render)
    emit("chat", eotToken=eot_token, eotTokenId=eot_id)
    train_set = prepare_dataset("train", os.path.join(HERE, config["data"]["train"]), tokenizer, render, eot_id, training["maxLength"])
    eval_set = prepare_dataset("eval", os.path.join(HERE, config["data"]["eval"]), tokenizer, render, eot_id, training["maxLength"]) if config["data"].get("eval") else []

    four_bit = config["quantization"]["load4bit"]
    half = {"bfloat16": "bf16", "float16": "fp16"}[config["quantization"]["computeDtype"]]
    mode = "qlora-%s" % config["quantization"]["quantType"] if four_bit else "lora-%s" % half
    if four_bit:
        usable, reason = load_bitsandbytes()
        if not usable:
            # Same adapter, more GPU memory: the base stays in 16 bits (bf16 by default).
            four_bit = False
            mode = "lora-%s" % half
            emit("warning", message="bitsandbytes cannot load (%s): training LoRA on the %s model instead of 4-bit QLoRA" % (reason, half))
    emit("mode", mode=mode)
    model = load_base_model(config, base_dir, four_bit)
    if four_bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=training["gradientCheckpointing"])
    elif training["gradientCheckpointing"]:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model.config.use_cache = False
    lora = config["lora"]
    model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=lora["targetModules"], bias="none", task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    emit("model", trainableParameters=trainable, totalParameters=sum(p.numel() for p in model.parameters()))

    batch, accumulate = training["batchSize"], training["gradientAccumulationSteps"]
    batches_per_epoch = math.ceil(len(train_set) / batch)
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / accumulate))
    total_steps = max(1, math.ceil(training["epochs"] * steps_per_epoch))
    warmup = training["warmupSteps"] if training.get("warmupSteps") is not None else int(round(training["warmupRatio"] * total_steps))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=training["learningRate"], weight_decay=training["weightDecay"])
    scheduler = get_scheduler(training["lrScheduler"] if training["lrScheduler"] != "constant" else "constant_with_warmup", optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    eval_every = training.get("evalSteps") or steps_per_epoch

    state = {"step": 0, "batchesDone": 0, "history": [], "evals": []}
    progress_file = os.path.join(CHECKPOINT_DIR, "progress.json")
    if os.path.exists(progress_file):
        # A restarted train stage continues from its last checkpoint instead of starting over.
        with open(progress_file, encoding="utf-8") as handle:
            state = json.load(handle)
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(os.path.join(CHECKPOINT_DIR, "adapter_model.safetensors")))
        saved = torch.load(os.path.join(CHECKPOINT_DIR, "trainer-state.pt"), weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
        emit("resumed", step=state["step"], totalSteps=total_steps)

    emit("train-start", examples=len(train_set), evalExamples=len(eval_set), totalSteps=total_steps, stepsPerEpoch=steps_per_epoch, epochs=training["epochs"])
    model.train()
    window_loss, window_batches, window_tokens = 0.0, 0, 0
    accumulated = 0
    last_logged = time.time()
    batches_done = state["batchesDone"]
    while state["step"] < total_steps:
        epoch, position = divmod(batches_done, batches_per_epoch)
        order = epoch_order(len(train_set), config["seed"], epoch)
        chunk = [train_set[i] for i in order[position * batch : (position + 1) * batch]]
        ids, labels, attention = collate(chunk, tokenizer.pad_token_id)
        ids, labels, attention = ids.to(model.device), labels.to(model.device), attention.to(model.device)
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        (loss / accumulate).backward()
        window_loss += loss.item()
        window_batches += 1
        window_tokens += int(attention.sum().item())
        accumulated += 1
        batches_done += 1
        # The last, smaller group of an epoch makes a step of its own, so epochs never blend.
        if accumulated < accumulate and batches_done % batches_per_epoch != 0:
            continue
        accumulated = 0
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], training["maxGradNorm"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["batchesDone"] = batches_done
        step = state["step"]
        if step % training["loggingSteps"] == 0 or step == total_steps:
            elapsed = max(time.time() - last_logged, 1e-6)
            average = window_loss / window_batches
            state["history"].append({"step": step, "loss": average})
            emit("loss", step=step, totalSteps=total_steps, epoch=round(batches_done / batches_per_epoch, 4), loss=round(average, 6), learningRate=scheduler.get_last_lr()[0], tokensPerSecond=round(window_tokens / elapsed, 1))
            window_loss, window_batches, window_tokens, last_logged = 0.0, 0, 0, time.time()
        if eval_set and (step % eval_every == 0 or step == total_steps):
            eval_loss, stops = evaluate(model, eval_set, batch, tokenizer.pad_token_id, eot_id)
            state["evals"].append({"step": step, "loss": eval_loss, "eotAccuracy": stops})
            emit("eval", step=step, totalSteps=total_steps, loss=round(eval_loss, 6), eotAccuracy=stops)
        if step % training["saveSteps"] == 0 and step < total_steps:
            save_checkpoint(model, optimizer, scheduler, state)
            emit("checkpoint", step=step)

    temporary = ADAPTER_DIR + ".tmp"
    model.save_pretrained(temporary)
    tokenizer.save_pretrained(temporary)
    copy_tokenizer_files(base_dir, temporary)
    if os.path.isdir(ADAPTER_DIR):
        import shutil

        shutil.rmtree(ADAPTER_DIR)
    os.replace(temporary, ADAPTER_DIR)
    history = state["history"]
    metrics = {
        "mode": mode,
        "eotToken": eot_token,
        "eotTokenId": eot_id,
        "vocabularySize": len(tokenizer),
        "steps": state["step"],
        "examples": len(train_set),
        "evalExamples": len(eval_set),
        "trainLoss": history[-1]["loss"] if history else None,
        "evalLoss": state["evals"][-1]["loss"] if state["evals"] else None,
        "eotAccuracy": state["evals"][-1].get("eotAccuracy") if state["evals"] else None,
        "tokenizer": {"loadedAs": parity["loadedAs"], "reference": parity["reference"]},
        "probe": parity["probe"],
        "baseModelDir": base_dir,
        "lossHistory": history,
        "evalHistory": state["evals"],
        "trainableParameters": trainable,
        "packages": package_versions(),
        "gpu": torch.cuda.get_device_name(0),
        "seconds": round(time.time() - started, 1),
    }
    write_json_atomically(METRICS_FILE, metrics)
    emit("train-done", trainLoss=metrics["trainLoss"], evalLoss=metrics["evalLoss"], steps=state["step"], seconds=metrics["seconds"])


def stage_merge(config):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = base_model_dir(config)
    dtype = getattr(torch, config["merge"]["dtype"])
    # The base is loaded again at 16 bits: merging into 4-bit weights would round the update away.
    device_map = {"": 0} if torch.cuda.is_available() else None
    remote_code = config["trustRemoteCode"]
    base = AutoModelForCausalLM.from_pretrained(
        base_dir, dtype=dtype, trust_remote_code=remote_code, device_map=device_map
    )
    model = PeftModel.from_pretrained(base, ADAPTER_DIR).merge_and_unload()
    four_bit = [name for name, module in model.named_modules() if "4bit" in type(module).__name__ or "Params4bit" in type(getattr(module, "weight", None)).__name__]
    if four_bit:
        raise StageError("the merged model still has 4-bit layers (%s): refusing to save it" % ", ".join(four_bit[:3]))
    dtypes = sorted({str(parameter.dtype) for parameter in model.parameters()})
    temporary = MERGED_DIR + ".tmp"
    if os.path.isdir(temporary):
        import shutil

        shutil.rmtree(temporary)
    # Safetensors is the only format transformers 5 writes (its save_pretrained has no safe_serialization).
    model.save_pretrained(temporary)
    # The base model's own tokenizer files, byte for byte: what the model was trained with, and what
    # llama.cpp's converter reads (tokenizer.model for Phi-3; transformers 5 writes only tokenizer.json).
    copied = copy_tokenizer_files(base_dir, temporary)
    problems = merged_folder_problems(temporary)
    if problems:
        message = "the merged model cannot be converted: %s (the base model %s lacks them too)"
        raise StageError(message % ("; ".join(problems), base_dir))
    merged_config = read_json_file(os.path.join(temporary, "config.json"))
    name = gguf_model_name(merged_config, config["baseModel"], config.get("modelName") or config.get("jobId"))
    if os.path.isdir(MERGED_DIR):
        import shutil

        shutil.rmtree(MERGED_DIR)
    os.replace(temporary, MERGED_DIR)
    with open(MODEL_NAME_FILE, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
    emit("merged", dtype=config["merge"]["dtype"], parameterDtypes=dtypes, tokenizerFiles=copied, ggufName=name)


STAGES = {"probe-env": stage_probe_env, "check-env": stage_check_env, "train": stage_train, "merge": stage_merge}


def main(argv):
    if len(argv) != 2 or argv[1] not in STAGES:
        sys.stderr.write("usage: train.py {%s}\n" % "|".join(STAGES))
        return 64
    os.makedirs(OUT, exist_ok=True)
    # No network on the training host is the normal case: the Hub is never asked (run.sh exports these too).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        STAGES[argv[1]](load_config())
    except StageError as error:
        emit("error", stage=argv[1], message=str(error))
        sys.stderr.write("train.py %s: %s\n" % (argv[1], error))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
