"""Judge configuration: a YAML file in the spirit of AlpacaEval's annotator configs.

A judge YAML is flat. The keys every judge shares (``judge``, ``concurrency``, ``check_reachable``
and the scoring settings ``disagreement`` and ``max_failed_fraction``) are :class:`JudgeConfig`'s;
every other key belongs to the chosen judge and is validated by its own ``Options`` model, so a
plugin judge has options of its own, and they enter its verdicts' cache key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cnr_plugin.costs import Price
from cnr_plugin.errors import closest, one_line, read_yaml_mapping
from cnr_plugin.resources import eval_tasks_path

from .base import JudgeConfigError, JudgeOptions


class JudgeConfig(BaseModel):
    """The shared settings of a judge, and the judge's own validated ``options``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # "8" or true for a number is an error

    judge: str = Field("openai", description="registered judge: openai, oracle, or one a plugin adds")
    concurrency: int = Field(8, ge=1, le=256, description="judge calls in flight at once")
    check_reachable: bool = Field(True, description="fail fast if the judge's endpoint does not answer")
    disagreement: Literal["tie", "average"] = Field("tie", description="when the two position orders disagree")
    max_failed_fraction: float = Field(0.2, ge=0, le=1, description="more failed/unparsed pairs than this fail the run")
    price: Price | None = Field(None, description="the judge model's price per million tokens: {input: .., output: ..}"
                                "; turns the tokens of its calls into money in the results")
    options: JudgeOptions = Field(default_factory=JudgeOptions, description="the judge's own options")

    def fingerprint(self) -> dict[str, Any]:
        """What decides a verdict (the cache key): the judge and its options that can change a
        verdict; not concurrency, timeouts, retries or where the key is read from."""
        return {"judge": self.judge, "options": self.options.fingerprint()}

    def describe(self) -> dict[str, Any]:
        """Everything a results file records of the judge (no API key: options hold only where it is read)."""
        return {"judge": self.judge, **self.options.model_dump(mode="json"),
                **self.model_dump(mode="json", include={"concurrency", "disagreement", "max_failed_fraction", "price"})}


SHARED_KEYS = frozenset(JudgeConfig.model_fields) - {"options"}


def _read(spec: str | Path | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    if spec is None or spec == "default":
        spec = eval_tasks_path("judge_default.yaml")
    if not isinstance(spec, (str, Path)):
        return "judge config", dict(spec)
    path = Path(spec)
    if not path.is_file() and isinstance(spec, str) and "/" not in spec and not path.suffix:
        from cnr_plugin.plugins import get_judges

        if spec in get_judges():  # a registered judge's name: that judge with its default options
            return f"judge '{spec}'", {"judge": spec}
    if not path.is_file():
        raise JudgeConfigError(f"judge config {path} not found")
    return str(path), read_yaml_mapping(path, JudgeConfigError, "judge options", empty={})


def load_judge_config(spec: str | Path | dict[str, Any] | None) -> JudgeConfig:
    """A judge config from a YAML path, a dict, a registered judge's name (its default options), or
    None/'default' for the shipped default.

    The judge named by ``judge:`` must be registered (built in, or by a plugin); its options are
    validated by its own ``Options`` model. Errors name the file and the key, with a suggestion."""
    from cnr_plugin.plugins import get_judge

    source, data = _read(spec)
    shared = {k: v for k, v in data.items() if k in SHARED_KEYS}
    own = {k: v for k, v in data.items() if k not in SHARED_KEYS}
    if "options" in own:
        raise JudgeConfigError(f"{source}: a judge's options are keys of the YAML itself, not under 'options:'")
    name = shared.get("judge", JudgeConfig.model_fields["judge"].default)
    if not isinstance(name, str):
        raise JudgeConfigError(f"{source}: 'judge': expected the name of a registered judge")
    judge_cls = get_judge(name)
    known = sorted(SHARED_KEYS | set(judge_cls.Options.model_fields))
    try:
        options = judge_cls.Options.model_validate(own)
        return JudgeConfig.model_validate({**shared, "options": options})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            raise JudgeConfigError(f"{source}: {closest(key, known)} for judge '{name}' "
                                   f"(keys: {', '.join(known)})") from None
        raise JudgeConfigError(f"{source}: {one_line(exc)}") from None
