"""Axolotl prompt strategy for CnR records: ``type: cnr_plugin.axolotl.strategy``.

Tokenizes a batch of records in one fast-tokenizer call and masks labels from the character
offsets, so the input (prompt + response) carries no loss unless ``train_on_inputs`` is set.
"""

from __future__ import annotations

import logging
from typing import Any

from axolotl.prompt_tokenizers import PromptTokenizingStrategy

from cnr_plugin.formats import CnRFormat
from cnr_plugin.plugins import get_format
from cnr_plugin.records import CnRDataError, validate_row

from .args import CnRConfigError

# under "axolotl." so that axolotl's logging setup shows our INFO lines like its own
LOG = logging.getLogger("axolotl.integrations.cnr_plugin")
IGNORE = -100
PLUGIN = "cnr_plugin.axolotl.CnRPlugin"
#: record identity -> ``file:line``, filled by the plugin from the local dataset files, so a
#: record dropped for length is named where the user can find it
SOURCES: dict[str, str] = {}


def record_key(record: Any) -> str:
    from cnr_plugin.cache import make_key

    return make_key(record.model_dump(mode="json"))


class CnRStrategy(PromptTokenizingStrategy):
    def __init__(self, fmt: CnRFormat, tokenizer: Any, *, loss_on: str = "critique_and_revision",
                 train_on_inputs: bool = False, sequence_len: int = 2048, fields: dict[str, str] | None = None):
        super().__init__(None, tokenizer, train_on_inputs=train_on_inputs, sequence_len=sequence_len)
        if not getattr(tokenizer, "is_fast", False):
            raise CnRConfigError("cnr_plugin needs a fast tokenizer (character offsets mark where the target starts)")
        self.fmt, self.loss_on, self.fields = fmt, loss_on, fields

    @property
    def supports_batched(self) -> bool:
        return True

    def _span(self, rendered: Any) -> tuple[int, int]:
        """Character range of the full text that carries the loss."""
        base, end = len(rendered.input), len(rendered.input) + len(rendered.target)
        if self.loss_on == "revision":
            return base + rendered.revision_span[0], end
        if self.loss_on == "critique":
            return base + rendered.critique_span[0], base + rendered.critique_span[1]
        return base, end

    def tokenize_prompt(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        n = len(next(iter(batch.values())))
        texts, spans, ids = [], [], []
        for i in range(n):
            row = {k: v[i] for k, v in batch.items() if v[i] is not None}
            try:
                record = validate_row(row, source="training dataset", line=i + 1, unit="row of batch",
                                      fields=self.fields)
            except CnRDataError as exc:
                raise CnRConfigError(f"{exc} (run `cnr validate <file>` for file and line)") from None
            rendered = self.fmt.render_record(record, tokenizer=self.tokenizer)
            texts.append(rendered.input + rendered.target)
            spans.append(self._span(rendered))
            ids.append((i, record))
        enc = self.tokenizer(texts, return_offsets_mapping=True, add_special_tokens=True,
                             truncation=False, padding=False)
        eos = self.tokenizer.eos_token_id
        out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        too_long = []
        for input_ids, offsets, (lo, hi), (i, record) in zip(enc["input_ids"], enc["offset_mapping"], spans, ids):
            input_ids = list(input_ids)
            if self.train_on_inputs:
                labels = list(input_ids)
            else:
                # a token belongs to the trained part when it starts inside [lo, hi)
                labels = [t if lo <= s < hi and e > s else IGNORE for t, (s, e) in zip(input_ids, offsets)]
            if self.fmt.append_eos and eos is not None and (not input_ids or input_ids[-1] != eos):
                input_ids.append(eos)
                labels.append(eos if self.train_on_inputs or self.loss_on != "critique" else IGNORE)
            if len(input_ids) > self.sequence_len:
                too_long.append(SOURCES.get(record_key(record))
                                or (f"id {record.id}" if record.id else f"row {i + 1} of a batch"))
            out["input_ids"].append(input_ids)
            out["attention_mask"].append([1] * len(input_ids))
            out["labels"].append(labels)
        if too_long:
            LOG.warning("cnr: %d record(s) of a batch of %d are longer than sequence_len=%d tokens and will be "
                        "dropped by axolotl: %s", len(too_long), n, self.sequence_len, ", ".join(too_long))
        return out


def load(tokenizer: Any, cfg: Any, ds_cfg: Any = None) -> CnRStrategy:
    plugins = list(cfg.get("plugins") or [])
    if PLUGIN not in plugins:
        raise CnRConfigError(f"dataset type cnr_plugin.axolotl.strategy needs `plugins: [{PLUGIN}]` in the config "
                         "(it carries the cnr_* options, which axolotl drops otherwise)")
    from cnr_plugin.records import field_map

    return CnRStrategy(
        get_format(cfg.get("cnr_format") or "plain"),
        tokenizer,
        fields=field_map(cfg.get("cnr_fields")),
        loss_on=cfg.get("cnr_loss_on") or "critique_and_revision",
        train_on_inputs=bool(cfg.get("train_on_inputs")),
        sequence_len=int(cfg.get("sequence_len") or 2048),
    )
