"""The axolotl plugin class (``plugins: [cnr_plugin.axolotl.CnRPlugin]``).

The plugin adds the ``cnr_*`` config keys (see :mod:`.args`), checks CnR dataset files before
axolotl touches them (errors name file and line), keeps the prepared-dataset cache apart for
each set of CnR options and strategy code, and can evaluate the trained model with
``cnr_winrate`` after training.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin

from cnr_plugin.errors import closest

from .args import OPTION_NAMES, CnRArgs, CnRConfigError

# under "axolotl." so that axolotl's logging setup shows our INFO lines like its own
LOG = logging.getLogger("axolotl.integrations.cnr_plugin")
STRATEGY = "cnr_plugin.axolotl.strategy"
DEFAULT_PREPARED_PATH = "last_run_prepared"


def _is_cnr_dataset(ds: Any) -> bool:
    return str((ds or {}).get("type") or "").startswith(STRATEGY)


def check_option_names(cfg: dict[str, Any]) -> None:
    """A misspelled ``cnr_*`` key is an error, not a silently ignored option."""
    for key in cfg:
        if str(key).startswith("cnr_") and key not in OPTION_NAMES:
            raise CnRConfigError(f"{closest(key, OPTION_NAMES, 'CnR option')} (known: {', '.join(sorted(OPTION_NAMES))})")


def options_fingerprint(options: CnRArgs) -> str:
    """Hash of what decides the tokenized CnR data: options, format code and strategy code."""
    from cnr_plugin import __version__
    from cnr_plugin.plugins import get_format, plugin_versions

    fmt = get_format(options.cnr_format)
    code = hashlib.sha256()
    for module_name in sorted({type(fmt).__module__, "cnr_plugin.formats.base", "cnr_plugin.records",
                               "cnr_plugin.axolotl.strategy"}):
        module_file = getattr(importlib.import_module(module_name), "__file__", None)
        code.update(module_name.encode() + (Path(module_file).read_bytes() if module_file else b""))
    payload = {
        "options": options.model_dump(include={"cnr_format", "cnr_loss_on", "cnr_fields"}),
        "version": __version__,
        "code": code.hexdigest(),
        "plugins": plugin_versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def local_records(cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    """(``file:line``, record) of every local CnR dataset file (or folder of them), read with the
    CnR reader through ``cnr_fields`` so that errors name file, line and the mapped field. Hub
    datasets are axolotl's to load; the strategy validates their rows."""
    from cnr_plugin.records import DATA_SUFFIXES, CnRDataError, field_map, iter_located

    fields = field_map(cfg.get("cnr_fields"))
    out: list[tuple[str, Any]] = []
    for ds in cfg.get("datasets") or []:
        if not _is_cnr_dataset(ds):
            continue
        path = Path(str(ds.get("path")))  # relative to the working directory, as axolotl reads it
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES) \
            if path.is_dir() else []
        for f in files:
            located = list(iter_located(f, fields=fields))
            # `datasets` gives a column one type: text prompts and conversations cannot share a file
            text = next((w for w, rec in located if isinstance(rec.prompt, str)), None)
            turns = next((w for w, rec in located if not isinstance(rec.prompt, str)), None)
            if text and turns:
                raise CnRDataError(str(f), None, f"field 'prompt': text at {text} but a conversation at {turns}; "
                                   "axolotl loads a column with one type: write single-turn prompts as one user turn")
            out += located
    return out


def validate_dataset_files(cfg: dict[str, Any]) -> None:
    """Check the local CnR files and remember where each record comes from, so the strategy can
    name a record it drops by file and line."""
    from .strategy import SOURCES, record_key

    for where, record in local_records(cfg):
        SOURCES.setdefault(record_key(record), where)


def check_lengths(cfg: Any, tokenizer: Any) -> None:
    """Records longer than ``sequence_len`` are named by file and line; when dropping them leaves
    fewer than two (axolotl then fails with ``empty range for randrange()``), stop in one line."""
    from cnr_plugin.plugins import get_format

    located = local_records(cfg)
    if not located:
        return
    fmt = get_format(cfg.get("cnr_format") or "plain")
    seq = int(cfg.get("sequence_len") or 2048)
    too_long = [where for where, rec in located if (fmt.record_tokens(rec, tokenizer) or 0) > seq]
    if too_long:
        LOG.warning("cnr: %d of %d records are longer than sequence_len=%d tokens and axolotl drops them: %s",
                    len(too_long), len(located), seq, ", ".join(too_long))
    if too_long and len(located) - len(too_long) < 2:  # a single record that fits does train
        raise CnRConfigError(f"cnr: only {len(located) - len(too_long)} of {len(located)} CnR records fit in "
                         f"sequence_len={seq} tokens and axolotl needs at least 2 to train: raise sequence_len or "
                         f"shorten {', '.join(too_long[:5])}{' ...' if len(too_long) > 5 else ''}")


#: the files a finished axolotl training leaves at the top of output_dir (a full model or an adapter)
MODEL_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
               "pytorch_model.bin", "pytorch_model.bin.index.json")


def saved_by_this_run(output_dir: Path, since: float) -> bool:
    """Whether a training that started at ``since`` saved its model in ``output_dir``: a model file
    written after the start (a failed run, or an older run's model, does not count)."""
    return any((output_dir / name).is_file() and (output_dir / name).stat().st_mtime >= since
               for name in MODEL_FILES)


class CnRPlugin(BasePlugin):
    """Critique-and-revise training (and post-training evaluation) for axolotl."""

    #: when this process registered the plugin: a model saved before then is not this run's
    started = 0.0

    def get_input_args(self) -> str:
        return "cnr_plugin.axolotl.args.CnRArgs"

    def register(self, cfg: dict[str, Any]) -> None:
        self.started = time.time() - 1  # file times can be a little coarser than the clock
        check_option_names(cfg)
        options = CnRArgs.model_validate({k: v for k, v in cfg.items() if k in OPTION_NAMES})
        if not any(_is_cnr_dataset(ds) for ds in cfg.get("datasets") or []):
            LOG.warning("cnr: no dataset has `type: %s`; the cnr_* options change nothing", STRATEGY)
            return
        validate_dataset_files(cfg)
        # axolotl's prepared-dataset hash ignores plugin keys and strategy code: keep one
        # cache folder per fingerprint so a changed option or format never reuses stale tokens
        fp = options_fingerprint(options)
        base = str(cfg.get("dataset_prepared_path") or DEFAULT_PREPARED_PATH)
        if not re.fullmatch(r"cnr-[0-9a-f]{16}", Path(base).name):
            cfg["dataset_prepared_path"] = str(Path(base) / f"cnr-{fp}")
        LOG.info("cnr: format=%s loss_on=%s prepared data in %s", options.cnr_format, options.cnr_loss_on,
                 cfg["dataset_prepared_path"])

    def load_datasets(self, cfg: Any, preprocess: bool = False) -> None:
        """Before axolotl tokenizes anything: check record lengths with the tokenizer axolotl will
        use. Returns None, so axolotl loads the datasets itself."""
        if any(_is_cnr_dataset(ds) for ds in cfg.get("datasets") or []):
            from axolotl.loaders import load_tokenizer

            check_lengths(cfg, load_tokenizer(cfg))
        return None

    def post_train_unload(self, cfg: Any) -> None:
        """After training (model saved and unloaded): cnr_winrate on it, once, from rank 0 — only
        when this run saved a model. Axolotl 0.21 calls this hook in a ``finally``, after a training
        that failed too; then one line says why there is no evaluation, and the real error stands."""
        if not cfg.get("cnr_eval_post_train"):
            return
        from axolotl.utils.distributed import is_main_process

        if not is_main_process():
            return
        output_dir = Path(str(cfg.get("output_dir") or "./model-out"))
        if not saved_by_this_run(output_dir, self.started):
            LOG.warning("cnr: post-train evaluation not run: the training did not finish (no model saved in %s "
                        "by this run)", output_dir)
            return
        from .evaluate import evaluate_trained

        evaluate_trained(cfg)

