"""The CnR record: a (prompt, response) pair with a person's critique and revision.

One record teaches the reviser both halves of the method (Jin et al. 2023): read the
prompt and the response, write a critique (pros and cons), then write the revised
response. Readers here turn jsonl / json / parquet files into validated records and
name the file, the line and the field of anything wrong with them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .errors import CnRError
from .formats.base import NO_CONS

__all__ = ["CnRRecord", "ResponseRecord", "RevisedRecord", "CnRDataError", "read_records", "read_responses",
           "read_candidates", "iter_records", "iter_located", "validate_row"]


class CnRDataError(CnRError, ValueError):
    """A record that cannot be used, located by file, line (or row) and field."""

    def __init__(self, source: str, line: int | None, message: str, field: str | None = None, unit: str = "line"):
        self.source, self.line, self.field, self.unit = source, line, field, unit
        where = f"{source}:{line}" if unit == "line" and line is not None else (
            f"{source} ({unit} {line})" if line is not None else source
        )
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


def _id_to_str(v: Any) -> Any:
    if isinstance(v, bool):  # bool is an int: refuse it rather than turn it into "True"
        raise ValueError("must be a string or an integer")
    return str(v) if isinstance(v, int) else v


def _not_empty(v: str) -> str:
    """Texts are kept byte-exact (indentation is meaning in code); only blank ones are refused."""
    if not v.strip():
        raise ValueError("must not be empty")
    return v


class CnRRecord(BaseModel):
    """One critique-and-revise example.

    Texts are kept exactly as given (no whitespace is stripped); a blank text is refused.

    ``critique`` may be given as free text, as structured ``pros`` / ``cons`` lists, or both;
    :attr:`critique_text` is what the model is trained on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_kind: ClassVar[str] = "a CnR record"

    prompt: str
    response: str
    critique: str | None = None
    revision: str
    pros: list[str] | None = None
    cons: list[str] | None = None
    id: str | None = None
    system: str | None = None
    meta: dict[str, Any] | None = None

    _id = field_validator("id", mode="before")(_id_to_str)
    _required = field_validator("prompt", "revision")(_not_empty)

    @field_validator("pros", "cons")
    @classmethod
    def _items_not_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and any(not item.strip() for item in v):
            raise ValueError("items must not be empty")
        return v

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

    prompt: str
    response: str
    id: str | None = None
    system: str | None = None
    meta: dict[str, Any] | None = None

    _id = field_validator("id", mode="before")(_id_to_str)
    _required = field_validator("prompt", "response")(_not_empty)


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

    id: str
    prompt: str
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
    loc = [str(p) for p in err["loc"]]
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is missing"
    elif err["type"] == "extra_forbidden":
        kind = getattr(model, "file_kind", model.__name__)
        msg = (f"is not a field of {kind} (fields: {', '.join(model.model_fields)}; put extra data under 'meta')")
    field = ".".join(loc) if loc else None
    if field is None and msg.startswith("critique: "):
        field, msg = "critique", msg.removeprefix("critique: ")
    return field, msg


def validate_row(row: Any, source: str = "<row>", line: int | None = None, unit: str = "line",
                 model: Any = CnRRecord) -> Any:
    """Validate one decoded row; raise :class:`CnRDataError` naming where and which field.
    ``model`` is a record model, or a function of the row that picks one."""
    if not isinstance(row, dict):
        raise CnRDataError(source, line, f"expected a JSON object, got {type(row).__name__}", unit=unit)
    if not isinstance(model, type):
        model = model(row)
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        field, msg = _first_error(exc, model)
        raise CnRDataError(source, line, msg, field=field, unit=unit) from None


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


def iter_located(path: str | Path, model: Any = CnRRecord) -> Iterator[tuple[str, Any]]:
    """Yield (``file:line`` or ``file (row N)``, validated record) from a .jsonl, .json or .parquet file."""
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
    else:
        raise CnRDataError(str(path), None, f"unknown file type '{suffix}' (use .jsonl, .json or .parquet)")
    seen: dict[str, int | None] = {}
    for line, row in rows:
        record = validate_row(row, str(path), line, unit=unit, model=model)
        if record.id is not None:
            if record.id in seen:
                raise CnRDataError(str(path), line, f"duplicate id {record.id!r} (first at {unit} {seen[record.id]})",
                                   field="id", unit=unit)
            seen[record.id] = line
        yield (f"{path}:{line}" if unit == "line" else f"{path} (row {line})"), record


def iter_records(path: str | Path, model: Any = CnRRecord) -> Iterator[Any]:
    """Yield validated records (``model``: CnR records by default) from a .jsonl, .json or .parquet file."""
    for _where, record in iter_located(path, model):
        yield record


def read_records(paths: str | Path | Iterable[str | Path]) -> list[CnRRecord]:
    """Read and validate every record of one or more files."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return [rec for p in paths for rec in iter_records(p)]


def read_candidates(path: str | Path) -> list[ResponseRecord | RevisedRecord]:
    """What ``cnr judge`` compares with a baseline: (prompt, response) pairs, or ``cnr revise``
    output (rows with ``steps``); ids default to the 1-based position."""
    return read_responses(path, model=lambda row: RevisedRecord if "steps" in row else ResponseRecord)


def read_responses(path: str | Path, model: Any = ResponseRecord) -> list[Any]:
    """Read (prompt, response) pairs to be revised; ids default to the 1-based position."""
    rows = list(iter_records(path, model=model))
    if not rows:
        raise CnRDataError(str(path), None, "no (prompt, response) pairs in the file")
    out = [r if r.id is not None else r.model_copy(update={"id": str(i)}) for i, r in enumerate(rows, start=1)]
    ids = [r.id for r in out]
    if len(set(ids)) != len(ids):
        raise CnRDataError(str(path), None, "ids repeat once positions fill in missing ones; give every row an id",
                           field="id")
    return out
