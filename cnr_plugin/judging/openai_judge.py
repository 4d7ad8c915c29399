"""The ``openai`` judge: any OpenAI-compatible chat endpoint through the ``openai`` client.

Retries (with exponential backoff, honouring ``Retry-After``) are the client's own, bounded by
``max_retries``; what still fails is returned as a ``failed`` verdict, never as a tie.
"""

from __future__ import annotations

import logging
from typing import Any

from cnr_plugin.endpoints import check_reachable, make_client
from cnr_plugin.errors import CnRError
from cnr_plugin.evaluation.judging import JudgeBase

from .base import VERDICT_JSON_SCHEMA, JudgePair, Verdict, parse_verdict, render_judge_prompt, verdict_probs
from .config import JudgeConfig, JudgeConfigError

LOG = logging.getLogger("cnr_plugin.judging")


class OpenAIJudge(JudgeBase):
    #: the request is made of the prompt and the two texts only (and the config)
    reads = frozenset({"prompt", "a", "b"})
    cacheable = True

    def __init__(self, config: JudgeConfig):
        if not config.model or not config.base_url:
            raise JudgeConfigError("the openai judge needs `model:` and `base_url:`")
        self.config = config
        self.client = make_client(config.base_url, config.api_key(), timeout_s=config.timeout_s,
                                  max_retries=config.max_retries, command="the openai judge")
        import threading

        import openai

        self._openai = openai
        self._lock, self._warned = threading.Lock(), False

    def check_reachable(self) -> None:
        """Fail fast, before any generation, when the judge endpoint does not answer."""
        try:
            check_reachable(self.client, str(self.config.base_url), "judge", self.config.timeout_s)
        except CnRError as exc:
            raise JudgeConfigError(str(exc)) from None

    def _request(self, pair: JudgePair) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            model=self.config.model,
            messages=[{"role": "user", "content": render_judge_prompt(self.config.prompt_template, pair)}],
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
        )
        if self.config.verdict == "probability":
            kwargs.update(logprobs=True, top_logprobs=self.config.top_logprobs)
        if self.config.verdict_format == "json" and self.config.structured_output == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "verdict", "strict": True, "schema": VERDICT_JSON_SCHEMA}}
        elif self.config.verdict_format == "json" and self.config.structured_output == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": VERDICT_JSON_SCHEMA}
        return kwargs

    def judge_one(self, pair: JudgePair) -> Verdict:
        try:
            completion = self.client.chat.completions.create(**self._request(pair))
        except self._openai.APIStatusError as exc:
            return Verdict(None, "failed", "", f"HTTP {exc.status_code} after {self.config.max_retries} retries")
        except self._openai.APIError as exc:  # connection errors and timeouts, after retries
            return Verdict(None, "failed", "", f"{type(exc).__name__} after {self.config.max_retries} retries")
        choice = completion.choices[0] if completion.choices else None
        content = (choice.message.content or "") if choice is not None else ""
        if not content.strip():
            return Verdict(None, "unparsed", content, "empty reply")
        verdict = parse_verdict(content, self.config.verdict_format)
        if self.config.verdict != "probability" or verdict.status != "ok":
            return verdict
        logprobs = getattr(getattr(choice, "logprobs", None), "content", None)
        probs = verdict_probs(list(logprobs)) if logprobs else None
        if probs is None:
            self._warn_no_logprobs()
            return verdict
        return Verdict(verdict.winner, "ok", content, probs=probs)

    def _warn_no_logprobs(self) -> None:
        with self._lock:
            if not self._warned:
                self._warned = True
                LOG.warning("cnr: the judge at %s returned no log-probabilities for the verdict token: verdicts "
                            "are letters (verdict: probability falls back)", self.config.base_url)
