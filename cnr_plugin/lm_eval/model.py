"""``--model cnr``: the CnR reviser around any lm-eval model.

    lm_eval --model cnr --model_args inner=hf,pretrained=runs/cnr-tiny-cpu --tasks cnr_winrate

lm-eval sends each request type to the model in one pass and only then scores, so the K
iterations cannot be ordinary task requests. This wrapper receives the task's documents, runs
the critique-and-revise loop with the inner model (one ``generate_until`` batch per
iteration, so hf / vllm / API models batch as usual) and returns every iteration's critique
and revision; the task's filter judges them and its metrics turn verdicts into win rates.
Model arguments other than those below go to the inner model unchanged.

Requests of other tasks (``--tasks cnr_winrate,gsm8k``) go to the inner model unchanged, so one
command evaluates CnR and a usual suite. lm-eval's options that would change the reviser's input
(``--num_fewshot``, ``--apply_chat_template``, ``--fewshot_as_multiturn``, ``--system_instruction``)
and ``--use_cache`` (its key is the request text, which does not hold the run options) are refused
for cnr_winrate in one line before any generation; ``--gen_kwargs max_gen_toks=N`` is honoured.

Own arguments: ``inner`` (lm-eval model name, required), ``cache_revisions`` (default true: every
generation is kept in the sqlite cache as it arrives, so a re-run or a resumed run never generates
it again; false to always generate), ``cache`` (cache file path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import get_model
from lm_eval.utils import simple_parse_args_string

from cnr_plugin.cache import Cache, several_processes
from cnr_plugin.costs import Tally
from cnr_plugin.evaluation import DEFAULT_MAX_INPUT_TOKENS, JudgeGate, RunConfig, check_lengths, examples_for, revise
from cnr_plugin.judges import load_judge_config, make_judge
from cnr_plugin.formats import Prompted
from cnr_plugin.plugins import get_format

from .errors import CnRRunError, run_errors
from .docs import doc_items, forget_built_docs, wrapper_made

OWN_ARGS = ("inner", "cache_revisions", "cache")


def local_fingerprint(args: dict[str, Any]) -> str:
    """Names, sizes and mtimes of the files of every argument that is a local directory: a model
    retrained in place gets new revisions instead of cached ones."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    for key in sorted(args):
        path = Path(str(args[key]))
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                st = f.stat()
                h.update(f"{key}:{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def make_gate(run: RunConfig) -> JudgeGate | None:
    """``accept: judge``: the run's judge decides whether each revision replaces the previous text."""
    if run.accept != "judge":
        return None
    config = load_judge_config(run.judge)
    return JudgeGate(make_judge(config), config, Cache(run.cache))


def _truthy(v: Any) -> bool:
    return v is True or str(v).lower() in ("1", "true", "yes")


class LMEvalBackend:
    """One ``generate_until`` batch of the inner lm-eval model per call. lm-eval models report no
    ``usage``: where the inner model has a tokenizer (``tok_encode``: hf, vllm, ...), the tokens in
    and out are counted with it; elsewhere the calls count 0 tokens, and the report says so."""

    reports_each = True

    def __init__(self, inner: LM, gen_kwargs: dict[str, Any], identity: str):
        self.inner, self.gen_kwargs, self.identity = inner, gen_kwargs, identity

    def _count(self, text: str) -> int | None:
        """Tokens of ``text`` by the inner model's tokenizer; None where it has none (an API model
        with ``tokenizer_backend=None`` "encodes" a text as the text itself)."""
        try:
            ids = self.inner.tok_encode(text)  # type: ignore[attr-defined]
        except Exception:  # a model without tok_encode, or one whose tokenizer is not there
            return None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            return None
        return len(ids)

    def generate(self, requests: Sequence[Prompted],
                 on_done: Callable[[int, str, dict[str, int] | None], None] | None = None) -> list[str]:
        instances, contexts = [], []
        for i, req in enumerate(requests):
            context = req.text if req.messages is None else self.inner.apply_chat_template(req.messages)
            contexts.append(str(context))
            instances.append(Instance(request_type="generate_until", doc={}, arguments=(context, dict(self.gen_kwargs)),
                                      idx=0, metadata=("cnr_revise", i, 1)))
        outs = [str(out) for out in self.inner.generate_until(instances)]
        if on_done is not None:
            for i, (context, out) in enumerate(zip(contexts, outs)):
                n_in, n_out = self._count(context), self._count(out)
                on_done(i, out, {"in": n_in, "out": n_out} if n_in is not None and n_out is not None else None)
        return outs


class _ProcessGroup:
    """What lm-eval asks of an accelerator (``gather`` of a tensor, ``wait_for_everyone``), from
    torch.distributed's default process group."""

    def gather(self, tensor: Any) -> Any:
        import torch
        import torch.distributed as dist

        parts = [torch.zeros_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor)
        return torch.stack(parts) if tensor.dim() == 0 else torch.cat(parts)

    def wait_for_everyone(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def _end_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


class CnRLM(LM):
    def __init__(self, inner_lm: LM, inner_name: str, inner_kwargs: dict[str, Any], cache_revisions: bool = True,
                 cache: str | None = None):
        super().__init__()
        forget_built_docs()  # lm-eval makes the model, then loads the tasks: the documents of this evaluation follow
        self.inner = inner_lm
        self.identity = f"lm_eval:{inner_name}:{json.dumps(inner_kwargs, sort_keys=True, default=str)}"
        if cache_revisions:
            self.identity += ":" + local_fingerprint(inner_kwargs)
        self.cache = Cache(cache) if cache_revisions else None
        self._device: Any = "cpu"
        self.accelerator: Any = None
        self._join_ranks()

    def _join_ranks(self) -> None:
        """Rank, world size and the accelerator lm-eval shards documents and gathers results by: the inner
        model's where it is data-parallel itself (``accelerate launch`` with ``hf`` on several GPUs), else the
        process group's (torchrun; one is started with gloo where torchrun set one up and nobody joined it)."""
        inner = self.inner
        if int(getattr(inner, "world_size", 1) or 1) > 1:
            self._rank, self._world_size = int(inner.rank), int(inner.world_size)
            self.accelerator = getattr(inner, "accelerator", None) or _ProcessGroup()
            self._device = getattr(inner, "device", "cpu")
            return
        if not several_processes():
            return
        try:
            import torch.distributed as dist
        except ImportError:
            raise CnRRunError("WORLD_SIZE is above 1 (torchrun, accelerate launch) but torch is not installed: "
                              "the ranks cannot split the documents; run one process, or install torch") from None
        if not dist.is_initialized():
            dist.init_process_group("gloo")
            # whoever starts a group ends it: left to the interpreter's finalization, gloo's threads may
            # abort the process ("terminate called without an active exception", pytorch/pytorch#190489),
            # which a rank did here after its last gather
            import atexit

            atexit.register(_end_process_group)
        if dist.get_world_size() > 1:
            self._rank, self._world_size = dist.get_rank(), dist.get_world_size()
            self.accelerator = _ProcessGroup()

    @property
    def device(self) -> Any:
        return self._device

    @classmethod
    def _split(cls, args: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        args = dict(args)
        inner = args.pop("inner", None)
        if not inner:
            raise CnRRunError("--model cnr wraps another lm-eval model: give it as --model_args inner=<model>,... "
                              "(e.g. inner=hf,pretrained=runs/cnr-tiny-cpu)")
        if inner == "cnr":
            raise CnRRunError("--model cnr cannot wrap itself (inner=cnr)")
        own = {k: args.pop(k) for k in OWN_ARGS if k in args}
        wrapper_made({*own, *args})  # lm-eval merges them into the task's metadata
        return inner, own, args

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> CnRLM:
        inner, own, rest = cls._split(simple_parse_args_string(arg_string))
        inner_args = ",".join(f"{k}={v}" for k, v in rest.items())
        inner_lm = get_model(inner).create_from_arg_string(inner_args, additional_config)
        return cls(inner_lm, inner, rest, _truthy(own.get("cache_revisions", True)), own.get("cache"))

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> CnRLM:
        inner, own, rest = cls._split(arg_dict)
        inner_lm = get_model(inner).create_from_arg_obj(rest, additional_config)
        return cls(inner_lm, inner, rest, _truthy(own.get("cache_revisions", True)), own.get("cache"))

    # --apply_chat_template: lm-eval asks the model for these; the inner model answers (the
    # reviser's requests are built by the format core and templated by the inner model anyway)
    @property
    def tokenizer_name(self) -> str:
        try:
            return str(getattr(self.inner, "tokenizer_name", "") or "")
        except NotImplementedError:
            return ""

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        try:
            return self.inner.chat_template(chat_template)
        except (NotImplementedError, AttributeError):
            return None

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> Any:
        return self.inner.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt)

    def set_cache_hook(self, cache_hook: Any) -> None:
        """lm-eval's ``--use_cache`` wraps the model in a ``CachingLM`` that keys each answer by the
        request text: a cnr_winrate re-run with other options (iterations, judge, format) would get
        the old answers. Refused; this model caches every generation and verdict itself, by keys
        that hold all of them."""
        if getattr(cache_hook, "dbdict", None) is not None:
            raise CnRRunError("--use_cache is not supported with --model cnr: lm-eval keys it by the request text, "
                              "which does not hold the run options (iterations, judge, format), so a re-run with "
                              "other options would return old numbers; drop it — --model cnr keeps every "
                              "generation and verdict in its own cache (cache_revisions, on by default)")
        super().set_cache_hook(cache_hook)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """cnr_winrate's requests run the loop, one batch per run configuration; every other task's
        requests go to the inner model, and the answers come back in the order asked."""
        groups: dict[str, list[int]] = {}
        others: list[int] = []
        for i, req in enumerate(requests):
            doc = req.doc if isinstance(req.doc, dict) else {}
            if "cnr_run" in doc:
                groups.setdefault(doc["cnr_run"], []).append(i)
            else:
                others.append(i)
        for idx in groups.values():
            self._check_requests([requests[i] for i in idx])
        out: list[str] = [""] * len(requests)
        if others:
            answers = self.inner.generate_until([requests[i] for i in others], disable_tqdm=disable_tqdm)
            for i, answer in zip(others, answers):
                out[i] = answer
        for idx in groups.values():
            # one revision per document: a request asked twice (lm-eval pads the ranks of a data-parallel run
            # to equal counts with copies of their last request) gets the same answer, not a second loop
            first: dict[str, int] = {}
            for i in idx:
                first.setdefault(requests[i].doc["id"], i)
            unique = sorted(set(first.values()))
            answers = dict(zip(unique, self._revise([requests[i] for i in unique], disable_tqdm)))
            for i in idx:
                out[i] = answers[first[requests[i].doc["id"]]]
        return out

    def _check_requests(self, requests: list[Instance]) -> None:
        """Before any generation: lm-eval's options that cnr_winrate cannot honour are refused in one line."""
        from .docs import built_here, doc_to_text

        doc = requests[0].doc
        if not built_here(doc):
            raise CnRRunError("these requests were built with other run options than this command's (lm-eval's "
                              "--cache_requests kept them from an earlier run); re-run with --cache_requests refresh "
                              "or without it")
        run = RunConfig.from_doc(doc)
        for req in requests:
            # format chat: lm-eval's --apply_chat_template is the switch some chat models need; the
            # CnR format still builds the messages, so it is accepted there
            if run.format != "chat" and req.args[0] != doc_to_text(req.doc):
                raise CnRRunError("the reviser's input is built by the CnR format, so --num_fewshot, "
                                  "--apply_chat_template, --fewshot_as_multiturn and --system_instruction cannot reach "
                                  "it; drop them (solved examples: --metadata '{\"fewshot\": N}'; the chat template: "
                                  "'{\"format\": \"chat\"}')")
        if run.format != "chat" and _chat_only(self.inner):
            raise CnRRunError(f"the inner model {type(self.inner).__name__} takes chat messages only: add "
                              "\"format\": \"chat\" to --metadata (or use local-completions)")
        asked = requests[0].args[1].get("max_gen_toks")
        if asked is not None and "max_gen_toks" in json.loads(doc.get("cnr_set") or "[]") \
                and int(asked) != run.max_gen_toks:
            raise CnRRunError(f"--gen_kwargs max_gen_toks={asked} and --metadata max_gen_toks={run.max_gen_toks} "
                              "disagree: give one of them")

    def _revise(self, requests: list[Instance], disable_tqdm: bool) -> list[str]:
        docs = [req.doc for req in requests]
        run = RunConfig.from_doc(docs[0])
        fmt = get_format(run.format)
        gen_kwargs = dict(requests[0].args[1])
        until = list(gen_kwargs.get("until") or [])
        gen_kwargs["until"] = until + [s for s in fmt.stop_sequences() if s not in until]
        # --gen_kwargs max_gen_toks=N wins over the run's default (a conflict with --metadata was refused)
        gen_kwargs["max_gen_toks"] = int(gen_kwargs.get("max_gen_toks") or run.max_gen_toks)
        if gen_kwargs["max_gen_toks"] != run.max_gen_toks:
            run = run.model_copy(update={"max_gen_toks": gen_kwargs["max_gen_toks"]})
        backend = LMEvalBackend(self.inner, gen_kwargs, f"{self.identity}:{json.dumps(gen_kwargs, sort_keys=True)}")
        with run_errors():
            examples = examples_for(run)
            limit, count = self._input_limit(run)
            items, skipped = check_lengths(doc_items(docs), fmt, max_tokens=limit, policy=run.oversized,
                                           count_tokens=count, examples=examples, source=run.responses)
            gate = make_gate(run)
            tally = Tally("reviser")
            steps = revise(items, fmt, backend, run.iterations, examples=examples, cache=self.cache,
                           progress=not disable_tqdm, stop_when=run.stop_when, gate=gate, sampling=run.sampling,
                           tally=tally)
        usage = tally.report(run.reviser_price)
        out = []
        for doc in docs:
            if doc["id"] in skipped:
                out.append({"steps": [], "skipped": "oversized"})
                continue
            data: dict[str, Any] = {"steps": [s.as_dict() for s in steps[doc["id"]]], "reviser_usage": usage}
            if gate is not None:
                data["accept_judgments"] = gate.judgments.get(doc["id"], 0)
                data["accept_judge_calls"] = gate.calls
            out.append(data)
        return [json.dumps(d) for d in out]

    def _input_limit(self, run: RunConfig) -> tuple[int, Any]:
        """The longest input the inner model takes, and how to count it: its own tokenizer and
        context (less the tokens to generate) where it has them, else an estimate."""
        tokenizer = getattr(self.inner, "tokenizer", None)
        count = None
        if tokenizer is not None and callable(getattr(tokenizer, "encode", None)):
            def count(text: str) -> int:
                return len(tokenizer.encode(text, add_special_tokens=False))
        if run.max_input_tokens is not None:
            return run.max_input_tokens, count
        context = getattr(self.inner, "max_length", None) if count is not None else None
        if isinstance(context, int) and context > run.max_gen_toks:
            return context - run.max_gen_toks, count
        return DEFAULT_MAX_INPUT_TOKENS, count

    # other tasks' requests are the inner model's (cnr_winrate asks only generate_until)
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self.inner.loglikelihood(requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self.inner.loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)


def _chat_only(inner: LM) -> bool:
    """lm-eval's chat-completions models (local, OpenAI, Azure) take a list of messages only."""
    try:
        from lm_eval.models.openai_completions import LocalChatCompletion
    except ImportError:  # an lm-eval without them
        return False
    return isinstance(inner, LocalChatCompletion)
