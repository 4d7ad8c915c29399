"""A fault-injecting OpenAI-compatible server, for testing judge and reviser setups under faults.

Standard library only; listens on 127.0.0.1; bounded in requests and in time. It answers
``/v1/chat/completions`` as a deterministic judge (the response that contains ``IMPROVED`` more
often wins; equal counts tie) and ``/v1/completions`` as a deterministic reviser (appends
``IMPROVED`` to the response it is shown). Faults follow a seeded plan keyed by the request body
and the attempt number, so an interrupted run that is re-run meets the same faults for the same
requests as an uninterrupted one::

    python -m cnr_plugin.testing.fault_server --port 8799 --seed 1 --transient 0.3 --permanent 0.05

Fault kinds. Transient (clients retry): ``429`` (no Retry-After), ``429_retry_after``, ``500``,
``502``, ``503``, ``hang`` (no answer until ``hang_s``, past the client's timeout),
``close_mid_body`` (the connection drops inside the body). Final (HTTP 200, so no retry):
``truncated``, ``empty``, ``no_verdict``, ``prose`` (the verdict wrapped in prose). Any request
may also be ``slow`` (``latency_s`` before answering). ``permanent``: 500 on every attempt
(judge requests; ``reviser_permanent`` for reviser requests).

Replies carry ``usage`` (a token counted as 4 characters). The Batch API is there too
(``/v1/files`` upload and content, ``/v1/batches`` create and retrieve): a batch stays in progress
for ``batch_polls`` retrievals, then its requests are answered like chat requests (a ``permanent``
request goes to the error file with HTTP 500), the batch may expire after ``batch_expire_after``
requests (the rest: ``batch_expired``) or fail as a whole (``batch_fail``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRANSIENT = ("429", "429_retry_after", "500", "502", "503", "hang", "close_mid_body")
#: what a reviser request may meet: lm-eval's API models retry HTTP errors, with their own timeouts
REVISER_TRANSIENT = ("429_retry_after", "500", "503")
FINAL = ("truncated", "empty", "no_verdict", "prose")


@dataclass
class FaultPlan:
    seed: int = 0
    transient: float = 0.0           # chance that a request meets 1-2 transient faults before it succeeds
    transient_kinds: tuple[str, ...] = TRANSIENT
    reviser_kinds: tuple[str, ...] = REVISER_TRANSIENT
    final: float = 0.0               # chance of a final (HTTP 200) fault, judge requests only
    final_kinds: tuple[str, ...] = FINAL
    permanent: float = 0.0           # chance that a judge request fails on every attempt
    reviser_permanent: float = 0.0   # the same for reviser requests
    latency_s: float = 0.0           # added to every answer
    hang_s: float = 5.0
    batch_polls: int = 2             # a batch is in progress for this many retrievals, then done
    batch_expire_after: int | None = None  # the batch expires after this many requests (the rest: batch_expired)
    batch_fail: bool = False         # the whole batch fails (its input is "invalid")

    def outcome(self, key: str, attempt: int, judge: bool) -> str:
        rng = random.Random(f"{self.seed}:{key}")
        if rng.random() < (self.permanent if judge else self.reviser_permanent):
            return "permanent"
        n_transient = rng.choice((1, 2)) if rng.random() < self.transient else 0
        kinds = [rng.choice(self.transient_kinds if judge else self.reviser_kinds) for _ in range(n_transient)]
        final = rng.choice(self.final_kinds) if judge and rng.random() < self.final else "ok"
        return kinds[attempt] if attempt < len(kinds) else final


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)       # path -> count
    outcomes: Counter = field(default_factory=Counter)       # fault kind -> count
    attempts: Counter = field(default_factory=Counter)       # request key -> count
    answered: Counter = field(default_factory=Counter)       # path -> 200 answers with a body
    succeeded: set = field(default_factory=set)              # keys that got a whole 200 answer
    distinct: Counter = field(default_factory=Counter)       # path -> distinct request bodies
    max_tokens: Counter = field(default_factory=Counter)     # max_tokens asked by reviser (completions) requests
    usage_in: int = 0                                        # tokens of the usage sent with whole answers
    usage_out: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self, payload: dict[str, Any]) -> None:
        """Count the ``usage`` of an answer that goes out whole (call with the lock held)."""
        usage = payload.get("usage") or {}
        self.usage_in += usage.get("prompt_tokens", 0)
        self.usage_out += usage.get("completion_tokens", 0)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": dict(self.requests), "outcomes": dict(self.outcomes),
                    "answered": dict(self.answered), "distinct_requests": len(self.attempts),
                    "max_tokens": {str(k): v for k, v in self.max_tokens.items()},
                    "distinct_by_path": dict(self.distinct),
                    "usage_in": self.usage_in, "usage_out": self.usage_out,
                    "repeated_requests": sum(n - 1 for n in self.attempts.values())}


def judge_reply(prompt: str) -> str:
    m = re.search(r"\[Response A\]\n(.*)\n\n\[Response B\]\n(.*)\n\n", prompt, re.S)
    if not m:
        return json.dumps({"winner": "tie"})
    a, b = m.group(1).count("IMPROVED"), m.group(2).count("IMPROVED")
    return json.dumps({"winner": "A" if a > b else "B" if b > a else "tie"})


def verdict_logprobs(probs: dict[str, float]) -> list[dict[str, Any]]:
    """OpenAI-style token log-probabilities of the reply ``{"winner": "<X>"}``: the verdict token
    carries the distribution over A / B / tie as its top log-probabilities."""
    import math

    winner = max(probs, key=lambda k: probs[k])
    top = [{"token": k, "logprob": math.log(max(v, 1e-12)), "bytes": None} for k, v in probs.items()]
    tokens = ['{"', "winner", '":', ' "', winner, '"}']
    return [{"token": t, "logprob": (math.log(probs[winner]) if t == winner else 0.0), "bytes": None,
             "top_logprobs": top if t == winner else [{"token": t, "logprob": 0.0, "bytes": None}]}
            for t in tokens]


def reviser_reply(prompt: str) -> str:
    m = re.search(r"### Response:\n(.*?)\n\n### Critique:\n$", prompt, re.S)
    response = m.group(1) if m else ""
    return f"Right idea, could be sharper.\n\n### Revision:\n{response} IMPROVED"


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None,
              cut: bool = False) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(data)

    def do_GET(self) -> None:
        srv = self.server
        batch = re.fullmatch(r"/v1/batches/([^/]+)", self.path)
        content = re.fullmatch(r"/v1/files/([^/]+)/content", self.path)
        listing = self.path.split("?", 1)[0]
        if listing in ("/v1/batches", "/v1/files"):  # newest first, one page, as OpenAI lists them
            with srv.stats.lock:
                srv.stats.requests[f"GET {listing}"] += 1
                rows = ([srv.public(b) for b in srv.batches.values()] if listing == "/v1/batches" else
                        [srv.file_object(i) for i in srv.files])
            self._send(200, {"object": "list", "data": rows[::-1], "has_more": False,
                             "first_id": rows[-1]["id"] if rows else None, "last_id": rows[0]["id"] if rows else None})
        elif self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})
        elif self.path == "/stats":
            self._send(200, srv.stats.snapshot())
        elif batch and batch.group(1) in srv.batches:
            with srv.stats.lock:
                srv.stats.requests["GET /v1/batches/{id}"] += 1
            self._send(200, srv.retrieve_batch(batch.group(1)))
        elif content and content.group(1) in srv.files:
            data = srv.files[content.group(1)]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        if self.path in ("/v1/files", "/v1/batches"):
            return self._batch_api()
        if self.server.slots is None:
            return self._post()
        with self.server.slots:
            return self._post()

    def _batch_api(self) -> None:
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with srv.stats.lock:
            srv.stats.requests[self.path] += 1
        if srv.api_key and self.headers.get("Authorization") != f"Bearer {srv.api_key}":
            return self._send(401, {"error": {"message": "invalid api key"}})
        try:
            if self.path == "/v1/files":
                return self._send(200, srv.upload(self.headers.get("Content-Type", ""), body))
            return self._send(200, srv.create_batch(json.loads(body)))
        except (KeyError, ValueError) as exc:
            return self._send(400, {"error": {"message": f"bad request: {exc}"}})

    def _post(self) -> None:
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with srv.stats.lock:
            srv.stats.requests[self.path] += 1
            total = sum(srv.stats.requests.values())
        if srv.api_key and self.headers.get("Authorization") != f"Bearer {srv.api_key}":
            return self._send(401, {"error": {"message": "invalid api key"}})
        if total > srv.max_requests:
            return self._send(503, {"error": {"message": "request budget of the fault server is spent"}})
        req = json.loads(body or b"{}")
        judge = self.path.endswith("/chat/completions")
        if not judge:
            with srv.stats.lock:
                srv.stats.max_tokens[req.get("max_tokens")] += 1
        key = hashlib.sha256(self.path.encode() + body).hexdigest()
        with srv.stats.lock:
            attempt = srv.stats.attempts[key]
            srv.stats.attempts[key] += 1
            srv.stats.distinct[self.path] += attempt == 0
        kind = srv.plan.outcome(key, attempt, judge)
        with srv.stats.lock:
            srv.stats.outcomes[kind] += 1
        if srv.plan.latency_s:
            time.sleep(srv.plan.latency_s)
        if kind == "permanent" or kind in ("500", "502", "503"):
            return self._send(500 if kind == "permanent" else int(kind), {"error": {"message": f"injected {kind}"}})
        if kind == "429":
            return self._send(429, {"error": {"message": "injected rate limit"}})
        if kind == "429_retry_after":
            return self._send(429, {"error": {"message": "injected rate limit"}}, {"Retry-After": "0.2"})
        if kind == "hang":
            time.sleep(srv.plan.hang_s)
            return self._send(503, {"error": {"message": "injected hang"}})
        if judge:
            payload = srv.chat_payload(req, kind)
        else:
            prompts = req.get("prompt")
            prompts = prompts if isinstance(prompts, list) else [prompts]
            texts = [self.server.reviser(p) for p in prompts]
            payload = {"id": "x", "object": "text_completion", "created": 0, "model": req.get("model"),
                       "choices": [{"index": i, "finish_reason": "stop", "text": t, "logprobs": None}
                                   for i, t in enumerate(texts)],
                       **srv.usage(sum(len(p or "") for p in prompts), "".join(texts))}
        if kind == "close_mid_body":
            return self._send(200, payload, cut=True)
        with srv.stats.lock:
            srv.stats.answered[self.path] += 1
            srv.stats.succeeded.add(key)
            srv.stats.delivered(payload)
        self._send(200, payload)


def _multipart_file(content_type: str, body: bytes) -> tuple[str, bytes]:
    """(filename, bytes) of the file part of a multipart/form-data upload."""
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    for part in msg.iter_parts():
        name, data = part.get_filename(), part.get_payload(decode=True)
        if name and isinstance(data, bytes):
            return name, data
    raise ValueError("no file part")


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # socketserver's default backlog of 5 drops bursts of connections (1 s SYN retry)

    def __init__(self, plan: FaultPlan, port: int = 0, api_key: str | None = None, max_requests: int = 100_000,
                 max_seconds: float = 3600.0, concurrency: int | None = None,
                 reviser: Callable[[str], str] | None = None,
                 judge_probs: Callable[[str], dict[str, float]] | None = None, send_usage: bool = True):
        super().__init__(("127.0.0.1", port), _Handler)
        self.plan, self.api_key, self.max_requests = plan, api_key, max_requests
        #: the scripted reviser behind /v1/completions (prompt -> completion text)
        self.reviser = reviser or reviser_reply
        #: a scripted judge with log-probabilities: prompt -> {"A": p, "B": p, "tie": p}
        self.judge_probs = judge_probs
        # at most `concurrency` requests are served at once (the others wait), like a real server's slots
        self.slots = threading.BoundedSemaphore(concurrency) if concurrency else None
        self.stats = Stats()
        #: replies carry OpenAI's ``usage`` (tokens in and out)
        self.send_usage = send_usage
        self.files: dict[str, bytes] = {}
        self.file_names: dict[str, str] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._deadline = time.monotonic() + max_seconds
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout, our cut connections) is part of the plan, not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def usage(self, prompt_chars: int, text: str) -> dict[str, Any]:
        """OpenAI's ``usage`` of a reply (a token is counted as 4 characters), unless ``send_usage`` is off."""
        if not self.send_usage:
            return {}
        tokens_in, tokens_out = -(-prompt_chars // 4), -(-len(text) // 4)
        return {"usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                          "total_tokens": tokens_in + tokens_out}}

    def chat_payload(self, req: dict[str, Any], kind: str) -> dict[str, Any]:
        """The judge's chat completion for a request that meets ``kind`` (ok or a final fault)."""
        prompt = req["messages"][-1]["content"]
        probs = self.judge_probs(prompt) if self.judge_probs else None
        text = judge_reply(prompt) if probs is None else json.dumps({"winner": max(probs, key=lambda k: probs[k])})
        text = {"truncated": text[: len(text) // 2], "empty": "", "no_verdict": "I cannot decide.",
                "prose": f"Having read both, my verdict is {text}."}.get(kind, text)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        if req.get("logprobs") and probs is not None:
            choice["logprobs"] = {"content": verdict_logprobs(probs)}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": req.get("model"), "choices": [choice],
                **self.usage(sum(len(m["content"]) for m in req["messages"]), text)}

    # -- the Batch API: files + batches -----------------------------------------------------------------

    def upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        name, data = _multipart_file(content_type, body)
        with self.stats.lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = data
            self.file_names[file_id] = name
        return self.file_object(file_id)

    def file_object(self, file_id: str) -> dict[str, Any]:
        return {"id": file_id, "object": "file", "bytes": len(self.files[file_id]), "created_at": int(time.time()),
                "filename": self.file_names.get(file_id, "output.jsonl"), "purpose": "batch", "status": "processed"}

    def create_batch(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("input_file_id") not in self.files:
            raise KeyError(req.get("input_file_id"))
        lines = [json.loads(x) for x in self.files[req["input_file_id"]].decode().splitlines() if x.strip()]
        with self.stats.lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": req["endpoint"], "input_file_id": req["input_file_id"],
                "completion_window": req.get("completion_window", "24h"), "status": "validating",
                "created_at": int(time.time()),
                "output_file_id": None, "error_file_id": None, "errors": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": req.get("metadata"),
                "_lines": lines, "_polls": 0}
        return self.public(self.batches[batch_id])

    @staticmethod
    def public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        """Each retrieval is a step of time: in progress for ``batch_polls`` retrievals, then done."""
        with self.stats.lock:
            batch = self.batches[batch_id]
            if batch["status"] in ("validating", "in_progress"):
                batch["_polls"] += 1
                batch["status"] = "in_progress"
                n = batch["request_counts"]["total"]
                batch["request_counts"]["completed"] = min(n, n * batch["_polls"] // max(1, self.plan.batch_polls))
                if batch["_polls"] >= self.plan.batch_polls:
                    self._finish(batch)
            return self.public(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        if self.plan.batch_fail:
            batch.update(status="failed", errors={"object": "list", "data": [
                {"code": "invalid_request", "message": "injected batch failure", "line": 1, "param": None}]})
            batch["request_counts"].update(completed=0, failed=batch["request_counts"]["total"])
            return
        out, err = [], []
        for i, line in enumerate(batch["_lines"]):
            body = json.dumps(line["body"]).encode()
            key = hashlib.sha256(line["url"].encode() + body).hexdigest()
            kind = self.plan.outcome(key, 10**6, judge=True)  # past every transient fault: the batch retried them
            rid = f"batch_req_{i}"
            if self.plan.batch_expire_after is not None and i >= self.plan.batch_expire_after:
                err.append({"id": rid, "custom_id": line["custom_id"], "response": None,
                            "error": {"code": "batch_expired", "message": "This request could not be executed "
                                      "before the completion window expired."}})
            elif self.plan.outcome(key, 0, judge=True) == "permanent":
                err.append({"id": rid, "custom_id": line["custom_id"], "error": None, "response": {
                    "status_code": 500, "request_id": rid, "body": {"error": {"message": "injected permanent"}}}})
            else:
                reply = self.chat_payload(line["body"], kind)
                self.stats.delivered(reply)
                out.append({"id": rid, "custom_id": line["custom_id"], "error": None, "response": {
                    "status_code": 200, "request_id": rid, "body": reply}})
            self.stats.answered["batch"] += 1
        for rows, field_name in ((out, "output_file_id"), (err, "error_file_id")):
            if rows:
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[field_name] = file_id
        expired = self.plan.batch_expire_after is not None and self.plan.batch_expire_after < len(batch["_lines"])
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"].update(completed=len(out), failed=len(err))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def service_actions(self) -> None:
        if time.monotonic() > self._deadline:
            threading.Thread(target=self.shutdown, daemon=True).start()

    def start(self) -> FaultServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8799)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transient", type=float, default=0.0)
    ap.add_argument("--final", type=float, default=0.0)
    ap.add_argument("--permanent", type=float, default=0.0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--hang", type=float, default=5.0)
    ap.add_argument("--max-requests", type=int, default=100_000)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    ap.add_argument("--concurrency", type=int, default=None, help="requests served at once (default: no limit)")
    a = ap.parse_args(argv)
    plan = FaultPlan(a.seed, a.transient, final=a.final, permanent=a.permanent, latency_s=a.latency, hang_s=a.hang)
    server = FaultServer(plan, a.port, max_requests=a.max_requests, max_seconds=a.max_seconds,
                         concurrency=a.concurrency)
    print(f"fault server on {server.base_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
