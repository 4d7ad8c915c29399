"""The CnR record: a (prompt, response) pair with a person's critique and revision.

One record teaches the reviser both halves of the method (Jin et al. 2023): read the
prompt and the response, write a critique (pros and cons), then write the revised
response. Readers here turn jsonl / json / parquet / arrow files into validated records and
name the file, the line and the field of anything wrong with them.

A prompt is a string or a conversation (role/content turns ending with a user turn, see
:mod:`cnr_plugin.formats.base`). A field map (``cnr_fields`` in axolotl, ``--fields`` on the
command line, ``fields`` in lm-eval's ``--metadata``) reads datasets whose columns have other
names: each CnR field takes the value at a dotted path of the row (``conversation.0.content``);
``cai`` names the Constitutional-AI shape (``init_prompt``, ``init_response``,
``critic_response``, ``revision_response``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .errors import CnRError, closest, did_you_mean, validation_error
from .formats.base import NO_CONS

__all__ = ["CnRRecord", "ResponseRecord", "PromptRecord", "RevisedRecord", "CnRDataError", "FieldMapError", "read_records",
           "read_responses", "read_candidates", "iter_records", "iter_rows", "iter_located", "validate_row", "field_map",
           "FIELD_MAP_PRESETS", "DATA_SUFFIXES"]

#: file types the readers take
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".arrow")


class CnRDataError(CnRError, ValueError):
    """A record that cannot be used, located by file, line (or row) and field."""

    def __init__(self, source: str, line: int | None, message: str, field: str | None = None, unit: str = "line",
                 mapped_from: str | None = None):
        self.source, self.line, self.field, self.unit = source, line, field, unit
        where = f"{source}:{line}" if unit == "line" and line is not None else (
            f"{source} ({unit} {line})" if line is not None else source
        )
        mapped = f" (mapped from '{mapped_from}')" if mapped_from else ""
        what = f"field '{field}'{mapped}: {message}" if field else message
        super().__init__(f"{where}: {what}")


def _id_to_str(v: Any) -> Any:
    if isinstance(v, bool):  # bool is an int: refuse it rather than turn it into "True"
        raise ValueError("must be a string or an integer")
    return str(v) if isinstance(v, int) else v


def _conversation(v: Any) -> Any:
    """A prompt given as turns: role/content dicts (keys a columnar file fills with None are
    dropped), roles system/user/assistant, a system turn only first, the last turn the user's."""
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        return v
    if not v:
        raise ValueError("a conversation needs at least one turn")
    turns = []
    for i, t in enumerate(v, start=1):
        t = {k: x for k, x in t.items() if x is not None} if isinstance(t, dict) else t
        if not isinstance(t, dict) or set(t) != {"role", "content"}:
            raise ValueError(f"turn {i}: must be an object with exactly 'role' and 'content'")
        if t["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"turn {i}: role must be system, user or assistant, not {t['role']!r}")
        if not isinstance(t["content"], str) or not t["content"].strip():
            raise ValueError(f"turn {i}: content must be a non-empty string")
        if t["role"] == "system" and i != 1:
            raise ValueError(f"turn {i}: a system turn can only come first")
        turns.append({"role": t["role"], "content": t["content"]})
    if turns[-1]["role"] != "user":
        raise ValueError("the last turn must be the user's (the response answers it)")
    return turns


def _not_empty(v: Any) -> Any:
    """Texts are kept byte-exact (indentation is meaning in code); only blank ones are refused."""
    if isinstance(v, str) and not v.strip():
        raise ValueError("must not be empty")
    return v


def _one_system_text(record: Any) -> Any:
    if record.system is not None and not isinstance(record.prompt, str) and record.prompt[0]["role"] == "system":
        raise ValueError("system: the prompt's conversation has a system turn already; give the system text once")
    return record


class CnRRecord(BaseModel):
    """One critique-and-revise example.

    Texts are kept exactly as given (no whitespace is stripped); a blank text is refused.

    ``critique`` may be given as free text, as structured ``pros`` / ``cons`` lists, or both;
    :attr:`critique_text` is what the model is trained on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_kind: ClassVar[str] = "a CnR record"

    prompt: str | list[dict[str, str]]
    response: str
    critique: str | None = None
    revision: str
    pros: list[str] | None = None
    cons: list[str] | None = None
    id: str | None = None
    system: str | None = None
    meta: dict[str, Any] | None = None

    _id = field_validator("id", mode="before")(_id_to_str)
    _turns = field_validator("prompt", mode="before")(_conversation)
    _required = field_validator("prompt", "revision")(_not_empty)

    @field_validator("pros", "cons")
    @classmethod
    def _items_not_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and any(not item.strip() for item in v):
            raise ValueError("items must not be empty")
        return v

    @model_validator(mode="after")
    def _one_system(self) -> CnRRecord:
        return _one_system_text(self)

    @model_validator(mode="after")
    def _has_critique(self) -> CnRRecord:
        if not (self.critique or "").strip() and not (self.pros or self.cons):
            state = "is missing" if self.critique is None and self.pros is None and self.cons is None else \
                "must not be empty"
            raise ValueError(f"critique: {state} (give 'critique' text or 'pros'/'cons' lists)")
        return self

    @property
    def critique_text(self) -> str:
        """The critique as the model sees it: free text, then pros and cons as bullet lists."""
        parts = [self.critique] if self.critique and self.critique.strip() else []
        if self.pros:
            parts.append("Pros:\n" + "\n".join(f"- {p}" for p in self.pros))
        if self.cons:
            parts.append("Cons:\n" + "\n".join(f"- {c}" for c in self.cons))
        elif self.cons is not None:  # an empty list: the response is already right, and the critique says so
            parts.append(f"Cons:\n- {NO_CONS}")
        return "\n\n".join(parts)


class ResponseRecord(BaseModel):
    """A (prompt, response) pair to be critiqued and revised at evaluation time."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_kind: ClassVar[str] = "a responses file"

    prompt: str | list[dict[str, str]]
    response: str
    id: str | None = None
    system: str | None = None
    meta: dict[str, Any] | None = None

    _id = field_validator("id", mode="before")(_id_to_str)
    _turns = field_validator("prompt", mode="before")(_conversation)
    _required = field_validator("prompt", "response")(_not_empty)

    @model_validator(mode="after")
    def _one_system(self) -> ResponseRecord:
        return _one_system_text(self)


class PromptRecord(BaseModel):
    """A prompt to be answered by a model (``cnr annotate responses``): the responses people will critique."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_kind: ClassVar[str] = "a prompts file"

    prompt: str | list[dict[str, str]]
    id: str | None = None
    system: str | None = None
    meta: dict[str, Any] | None = None

    _id = field_validator("id", mode="before")(_id_to_str)
    _turns = field_validator("prompt", mode="before")(_conversation)
    _required = field_validator("prompt")(_not_empty)

    @model_validator(mode="after")
    def _one_system(self) -> PromptRecord:
        return _one_system_text(self)


class RevisionStep(BaseModel):
    """One iteration of a ``cnr revise`` output row (see :class:`cnr_plugin.evaluation.Step`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iteration: int
    response: str
    generation: str
    critique: str | None = None
    revision: str | None = None
    problem: str | None = None
    result: str
    stopped: bool = False
    stop_signal: str | None = None
    accepted: bool | None = None


class RevisedRecord(BaseModel):
    """A row of ``cnr revise`` output: the item and every iteration's critique and revision."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_kind: ClassVar[str] = "a `cnr revise` output file"
    #: the project's own output: a field map (the columns of a user's dataset) does not apply to it
    own_format: ClassVar[bool] = True

    id: str
    prompt: str | list[dict[str, str]]
    response: str
    system: str | None = None
    meta: dict[str, Any] | None = None
    steps: list[RevisionStep]
    final: str

    _id = field_validator("id", mode="before")(_id_to_str)

    @field_validator("steps")
    @classmethod
    def _iterations_in_order(cls, v: list[RevisionStep]) -> list[RevisionStep]:
        if not v or [s.iteration for s in v] != list(range(1, len(v) + 1)):
            raise ValueError("must hold iterations 1, 2, ... in order")
        return v


def _first_error(exc: ValidationError, model: type[BaseModel]) -> tuple[str | None, str]:
    err = exc.errors()[0]
    key, msg = validation_error(exc)
    if err["type"] == "extra_forbidden":
        kind = getattr(model, "file_kind", model.__name__)
        msg = (f"is not a field of {kind} (fields: {', '.join(model.model_fields)}; put extra data under 'meta')")
    field = key or None
    head, sep, rest = msg.partition(": ")
    if field is None and sep and head in model.model_fields:  # a check across fields names its field first
        field, msg = head, rest
    if field and field.startswith("prompt.") and err["type"] != "value_error":
        field = "prompt"  # the union's branches (str | list) would name themselves; the validator's message says it
    return field, msg


#: field maps of public CnR-like datasets, by name (``cnr_fields: cai``)
FIELD_MAP_PRESETS: dict[str, dict[str, str]] = {
    # Constitutional AI (Bai et al. 2022) as in HuggingFaceH4/cai-conversation-harmless
    "cai": {"prompt": "init_prompt", "response": "init_response", "critique": "critic_response",
            "revision": "revision_response"},
    # IFEval (Zhou et al. 2023) as in google/IFEval (key, prompt, instruction_id_list, kwargs) with a
    # response column: the whole row is the item's meta, where the ifeval judge reads its instructions
    "ifeval": {"id": "key", "meta": "*"},
}


class FieldMapError(CnRError, ValueError):
    """A field map that cannot be used (unknown CnR field, empty path)."""


def field_map(spec: Any, *, option: str = "cnr_fields", model: Any = CnRRecord) -> dict[str, str] | None:
    """A field map from a preset name, ``{cnr_field: dotted.path}``, or ``"prompt=a.b,revision=c"``
    (the command line's form); checked against ``model``'s fields, with a suggestion for a misspelt one."""
    if spec is None or spec == {} or spec == "":
        return None
    where = f"{option}: " if option else ""
    if isinstance(spec, str) and "=" not in spec:
        if spec not in FIELD_MAP_PRESETS:
            raise FieldMapError(f"{where}{closest(spec, FIELD_MAP_PRESETS, 'preset')} (presets: "
                                f"{', '.join(FIELD_MAP_PRESETS)}; or map fields as {{prompt: column, ...}})")
        spec = FIELD_MAP_PRESETS[spec]
    elif isinstance(spec, str):
        pairs = [part.split("=", 1) for part in spec.split(",") if part.strip()]
        if any(len(p) != 2 for p in pairs):
            raise FieldMapError(f"{where}expected field=path pairs separated by commas, got {spec!r}")
        spec = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(spec, dict):
        raise FieldMapError(f"{where}expected a preset name or a mapping of CnR fields to columns")
    known = [f for f in model.model_fields if f != "steps"]
    for key, path in spec.items():
        if key not in known:
            raise FieldMapError(f"{where}'{key}' is not a field of {model.file_kind}{did_you_mean(key, known)} "
                                f"(fields: {', '.join(known)})")
        if not isinstance(path, str) or not path.strip() or any(not p for p in path.split(".")):
            raise FieldMapError(f"{where}field '{key}' needs a column name or dotted path, got {path!r}")
    return {str(k): str(v) for k, v in spec.items()}


_MISSING = object()


def _at(row: Any, path: str) -> Any:
    """The value at a dotted path: dict keys, and integer indices into lists (``turns.-1.content``);
    ``*`` is the whole row."""
    if path == "*":
        return row
    value = row
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def map_row(row: dict[str, Any], fields: dict[str, str], model: Any) -> dict[str, Any]:
    """The record's fields read through ``fields``; an unmapped field is read under its own
    name; the dataset's other columns are left out."""
    out = {}
    for name in model.model_fields:
        value = _at(row, fields[name]) if name in fields else row.get(name, _MISSING)
        if value is not _MISSING and value is not None:
            out[name] = value
    return out


def validate_row(row: Any, source: str = "<row>", line: int | None = None, unit: str = "line",
                 model: Any = CnRRecord, fields: dict[str, str] | None = None) -> Any:
    """Validate one decoded row; raise :class:`CnRDataError` naming where and which field.
    ``model`` is a record model, or a function of the row that picks one; ``fields`` a field
    map (see :func:`field_map`), named in errors as ``revision (from 'revision_response')``."""
    if not isinstance(row, dict):
        raise CnRDataError(source, line, f"expected a JSON object, got {type(row).__name__}", unit=unit)
    if not isinstance(model, type):
        model = model(row)
    if fields and not getattr(model, "own_format", False):
        row = map_row(row, fields, model)
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        field, msg = _first_error(exc, model)
        top = (field or "").split(".")[0]
        preset = None if fields else matching_preset(row)
        if preset:
            msg += f" (the columns match the field map preset '{preset}': --fields {preset}, or cnr_fields: {preset})"
        raise CnRDataError(source, line, msg, field=field, unit=unit,
                           mapped_from=(fields or {}).get(top)) from None


def matching_preset(row: dict[str, Any]) -> str | None:
    """The field map preset whose columns a row has, if any (for a hint when a row does not validate)."""
    return next((name for name, spec in FIELD_MAP_PRESETS.items()
                 if all(_at(row, path) is not _MISSING for path in spec.values())), None)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CnRDataError(str(path), lineno, f"invalid UTF-8 at byte {exc.start}") from None
        try:
            yield lineno, json.loads(text)
        except json.JSONDecodeError as exc:
            raise CnRDataError(str(path), lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None


def _iter_json(path: Path) -> Iterator[tuple[int, Any]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CnRDataError(str(path), data.count(b"\n", 0, exc.start) + 1, "invalid UTF-8") from None
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text.startswith("[", pos):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CnRDataError(str(path), exc.lineno, f"invalid JSON: {exc.msg}") from None
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            for item in obj["data"]:
                yield None, item  # type: ignore[misc]
            return
        raise CnRDataError(str(path), 1, "expected a JSON array of records (or {\"data\": [...]})")
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise CnRDataError(str(path), text.count("\n") + 1, "invalid JSON: unterminated array")
        if text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise CnRDataError(str(path), exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        yield line, obj


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CnRDataError(str(path), None, "reading parquet needs pyarrow (pip install pyarrow)") from exc
    for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
        yield i, {k: v for k, v in row.items() if v is not None}


def _iter_arrow(path: Path) -> Iterator[tuple[int, Any]]:
    """An Arrow IPC file or stream (``datasets``' ``save_to_disk`` writes the stream form)."""
    try:
        import pyarrow as pa
        import pyarrow.ipc as ipc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CnRDataError(str(path), None, "reading arrow needs pyarrow (pip install pyarrow)") from exc
    try:
        with pa.memory_map(str(path)) as source:
            try:
                table = ipc.open_file(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                table = ipc.open_stream(source).read_all()
    except pa.ArrowInvalid as exc:
        raise CnRDataError(str(path), None, f"not an Arrow file: {exc}") from None
    for i, row in enumerate(table.to_pylist(), start=1):
        yield i, {k: v for k, v in row.items() if v is not None}


def iter_rows(path: str | Path, model: Any = CnRRecord,
              fields: dict[str, str] | None = None) -> Iterator[tuple[int, str, Any]]:
    """Yield (line or row number, ``"line"`` or ``"row"``, validated record) from a .jsonl, .json,
    .parquet or .arrow file, its columns read through the field map ``fields`` if one is given."""
    path = Path(path)
    if not path.exists():
        raise CnRDataError(str(path), None, "file not found")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows, unit = _iter_jsonl(path), "line"
    elif suffix == ".json":
        rows, unit = _iter_json(path), "line"
    elif suffix == ".parquet":
        rows, unit = _iter_parquet(path), "row"
    elif suffix == ".arrow":
        rows, unit = _iter_arrow(path), "row"
    else:
        raise CnRDataError(str(path), None, f"unknown file type '{suffix}' (use .jsonl, .json, .parquet or .arrow)")
    seen: dict[str, int | None] = {}
    for line, row in rows:
        record = validate_row(row, str(path), line, unit=unit, model=model, fields=fields)
        if record.id is not None:
            if record.id in seen:
                raise CnRDataError(str(path), line, f"duplicate id {record.id!r} (first at {unit} {seen[record.id]})",
                                   field="id", unit=unit)
            seen[record.id] = line
        yield line, unit, record


def iter_located(path: str | Path, model: Any = CnRRecord,
                 fields: dict[str, str] | None = None) -> Iterator[tuple[str, Any]]:
    """Yield (``file:line`` or ``file (row N)``, validated record), as :func:`iter_rows` reads them."""
    for line, unit, record in iter_rows(path, model, fields):
        yield (f"{path}:{line}" if unit == "line" else f"{path} (row {line})"), record


def iter_records(path: str | Path, model: Any = CnRRecord, fields: dict[str, str] | None = None) -> Iterator[Any]:
    """Yield validated records (``model``: CnR records by default) from a data file."""
    for _where, record in iter_located(path, model, fields):
        yield record


def read_records(paths: str | Path | Iterable[str | Path], fields: dict[str, str] | None = None) -> list[CnRRecord]:
    """Read and validate every record of one or more files."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return [rec for p in paths for rec in iter_records(p, fields=fields)]


def read_candidates(path: str | Path, fields: dict[str, str] | None = None
                    ) -> list[tuple[int, str, ResponseRecord | RevisedRecord]]:
    """What ``cnr judge`` compares with a baseline: (prompt, response) pairs (read through the
    field map ``fields``), or ``cnr revise`` output (rows with ``steps``), each with its line (or
    row) so that a later check can name it; ids default to the 1-based position."""
    return _with_ids(path, list(iter_rows(path, model=lambda row: RevisedRecord if "steps" in row else ResponseRecord,
                                          fields=fields)))


def read_responses(path: str | Path, model: Any = ResponseRecord, fields: dict[str, str] | None = None) -> list[Any]:
    """Read (prompt, response) pairs to be revised; ids default to the 1-based position."""
    return [rec for _line, _unit, rec in _with_ids(path, list(iter_rows(path, model=model, fields=fields)))]


def _with_ids(path: str | Path, rows: list[tuple[int, str, Any]]) -> list[tuple[int, str, Any]]:
    if not rows:
        raise CnRDataError(str(path), None, "no (prompt, response) pairs in the file")
    out = [(line, unit, r if r.id is not None else r.model_copy(update={"id": str(i)}))
           for i, (line, unit, r) in enumerate(rows, start=1)]
    ids = [r.id for _line, _unit, r in out]
    if len(set(ids)) != len(ids):
        raise CnRDataError(str(path), None, "ids repeat once positions fill in missing ones; give every row an id",
                           field="id")
    return out


def too_long(records: Iterable[CnRRecord], fmt: Any, max_tokens: int, tokenizer: Any = None) -> list[str]:
    """Ids (``#position`` where there is none) of records whose rendering in ``fmt`` is longer than
    ``max_tokens``: counted with ``tokenizer``, else estimated from characters (a chat format,
    which renders only through a tokenizer, is then not counted)."""
    return [rec.id or f"#{i}" for i, rec in enumerate(records, start=1)
            if (fmt.record_tokens(rec, tokenizer) or 0) > max_tokens]
