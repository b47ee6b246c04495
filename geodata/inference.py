"""Model calls over an OpenAI-compatible chat-completions endpoint, cached by content.

vLLM (``vllm serve``), TGI, SGLang and hosted APIs all answer ``POST {base_url}/chat/completions``
with images given as ``image_url`` parts; :func:`chat` sends a batch of requests there with

* **bounded concurrency**: ``concurrency`` workers, so at most that many requests are in flight;
* **retries** on 429, 5xx, timeouts and dropped connections: exponential backoff with jitter
  (``backoff * 2**attempt`` seconds, times a factor in [0.5, 1.5), capped at ``max_backoff``),
  or the server's ``Retry-After`` when it sends one; other 4xx fail the request with the
  server's own message (401, 403 and 404 fail the whole run, as no request can succeed; a 404
  from a base URL without ``/v1`` says to add it);
* **images checked first**: a request whose image does not decode
  (:func:`geodata.images.image_problem`) is never sent; its result says why
  (``ChatResult.skipped``), so the caller drops and counts the row;
* **failures told apart**: every result that has no answer carries a ``reason``
  (``connection``, ``timeout``, ``429``, ``5xx`` codes, ``4xx``, ``empty``); :class:`RunStats`
  counts requests sent, retries and give-ups by reason and answers cut by the token limit
  (``finish_reason: length``). Failed requests are never cached, so the next run sends them
  again;
* a **per-request timeout** (``timeout`` seconds);
* **images as base64 data URLs** read from the dataset's own bytes
  (:func:`geodata.images.read_ref`);
* **progress**: requests/s and generated tokens/s, as a live bar on a terminal and log lines
  otherwise.

Every response is stored in a SQLite file under the geodata cache dir
(``$GEODATA_CACHE/inference.sqlite``, WAL mode, one transaction per response) keyed by the
sha256 of the model id, the messages (each image replaced by the sha256 of its bytes) and
the sampling parameters. A killed run therefore resumes where it stopped, a rerun sends no
request, and a rebuild from cached responses writes the same bytes.

The API key is read from the environment variable named by ``api_key_env`` at call time
and is never logged, cached, fingerprinted or written to a card: the spec holds only the
variable's name.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import email.utils
import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ._cache import cache_dir
from .errors import BuildError, SpecError
from .images import read_ref

__all__ = [
    "Endpoint",
    "ChatRequest",
    "ChatResult",
    "RunStats",
    "ResponseCache",
    "chat",
    "probe",
    "request_key",
    "image_data_url",
    "endpoint_kind",
    "endpoint_from_params",
]

log = logging.getLogger("geodata")

#: ``owned_by`` values that servers are known to give their own models in ``/v1/models``.
_OWNED_BY = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "tgi": "tgi"}


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call a model; a step's spec parameters map onto these fields.

    ``model`` may be ``None`` when the server serves exactly one model (:func:`probe` then
    names it). ``seed`` is the default sampling seed; a request's own seed wins.
    """

    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int = 1024
    top_p: float | None = None
    seed: int | None = None
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise SpecError(f"base_url must start with http:// or https:// (got {self.base_url!r})")
        if self.api_key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            # never echo the value: it may be the key itself, pasted by mistake
            raise SpecError("api_key_env must be the name of an environment variable, not the key itself")
        if self.concurrency < 1:
            raise SpecError(f"concurrency must be >= 1 (got {self.concurrency})")
        if self.timeout <= 0 or self.max_retries < 0 or self.max_tokens < 1:
            raise SpecError(
                f"timeout must be > 0, max_retries >= 0, max_tokens >= 1 "
                f"(got {self.timeout}, {self.max_retries}, {self.max_tokens})"
            )

    def sampling(self, seed: int | None = None) -> dict[str, Any]:
        """The sampling parameters sent with (and keying) a request."""
        out: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            out["top_p"] = self.top_p
        s = seed if seed is not None else self.seed
        if s is not None:
            out["seed"] = int(s)
        return out

    def api_key(self) -> str:
        """The key from ``$<api_key_env>``; ``"EMPTY"`` (vLLM's convention) without one."""
        if not self.api_key_env:
            return "EMPTY"
        key = os.environ.get(self.api_key_env)
        if not key:
            raise BuildError(f"api_key_env: environment variable {self.api_key_env} is not set")
        return key


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn: optional system text, then a user turn of images and text.

    An image is a reference :func:`geodata.images.read_ref` reads (a path, ``msgpack://``,
    ``tar://``) or the encoded bytes themselves.
    """

    text: str
    images: tuple[str | bytes, ...] = ()
    system: str | None = None
    seed: int | None = None


@dataclass
class ChatResult:
    """A response (``text``) or why there is none (``error``); ``cached`` when no call was made.

    ``reason`` is the short cause of an error (``connection``, ``timeout``, ``429``, ``503``,
    ``400`` ..., ``empty``, or an image problem such as ``undecodable_image``); ``skipped`` is
    true when the request was never sent because an image failed the decode check.
    """

    text: str | None = None
    error: str | None = None
    cached: bool = False
    reason: str | None = None
    skipped: bool = False
    #: the server's message or the exception behind ``error`` (no URL, no key)
    detail: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class RunStats:
    """What one :func:`chat` run did; :meth:`note` is what the card records."""

    model: str = ""
    kind: str = "openai-compatible"
    base_url: str = ""
    requests: int = 0
    cache_hits: int = 0
    sent: int = 0
    errors: int = 0
    retries: int = 0
    retried: dict[str, int] = field(default_factory=dict)
    #: requests that failed for good, by reason (``connection``, ``timeout``, ``500``, ``400`` ...)
    gave_up: dict[str, int] = field(default_factory=dict)
    #: requests never sent because an image failed the decode check, by reason
    skipped: dict[str, int] = field(default_factory=dict)
    #: answers cut by the token limit (``finish_reason: length``)
    truncated: int = 0
    #: the server's message (or the exception) of the first give-up of each reason
    examples: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.requests if self.requests else 0.0

    @property
    def failed(self) -> int:
        """Requests sent that still have no answer (give-ups of every reason)."""
        return sum(self.gave_up.values())

    def note(self, sampling: dict[str, Any]) -> dict[str, Any]:
        """Model, endpoint kind, sampling, cache and failure facts (no URL secrets, no key, no timings)."""
        return {
            "model": self.model,
            "endpoint": self.kind,
            "sampling": sampling,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "cache_hit_rate": round(self.hit_rate, 4),
            "sent": self.sent,
            "retries": self.retries,
            "retried": dict(sorted(self.retried.items())),
            "gave_up": dict(sorted(self.gave_up.items())),
            "skipped_images": dict(sorted(self.skipped.items())),
            "truncated": self.truncated,
            "errors": self.errors,
        }

    def cause(self) -> str:
        """The give-ups in words, most frequent first, e.g. ``103 requests gave up on the connection
        to http://h:8000/v1 after 6 attempts``; each reason with the server's first message."""
        parts = []
        for reason, n in sorted(self.gave_up.items(), key=lambda t: (-t[1], t[0])):
            what = _REASON_WORDS.get(reason) or (
                f"{'was' if n == 1 else 'were'} answered {reason} by" if reason.isdigit() else f"failed ({reason}) at")
            line = f"{n} request{'s' if n != 1 else ''} {what} {self.base_url}"
            if reason in _RETRIED_REASONS:
                line += f" after {self.max_attempts} attempt{'s' if self.max_attempts != 1 else ''}"
            ex = self.examples.get(reason)
            if ex:
                line += f" ({ex})"
            parts.append(line)
        return "; ".join(parts)


#: how :meth:`RunStats.cause` words each give-up reason (status codes: ``were answered <code> by``)
_REASON_WORDS = {
    "connection": "gave up on the connection to",
    "timeout": "timed out at",
    "empty": "got an empty answer from",
}
#: reasons that are retried before a request gives up
_RETRIED_REASONS = {"connection", "timeout", "429"} | {str(c) for c in range(500, 600)}


# -- content keys and the cache -----------------------------------------------------------


def image_data_url(data: bytes) -> str:
    """``data:image/<type>;base64,…`` for encoded image bytes (type sniffed from the header).

    Examples
    --------
    >>> image_data_url(b"\\x89PNG\\r\\n\\x1a\\n")[:30]
    'data:image/png;base64,iVBORw0K'
    """
    if data[:3] == b"\xff\xd8\xff":
        mime = "jpeg"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        mime = "png"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "webp"
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        mime = "tiff"
    elif data[:3] == b"GIF":
        mime = "gif"
    else:
        mime = "jpeg"
    return f"data:image/{mime};base64," + base64.b64encode(data).decode("ascii")


def request_key(model: str, req: ChatRequest, image_sha256: Sequence[str], sampling: dict[str, Any]) -> str:
    """sha256 of model id, messages (images as their bytes' sha256) and sampling parameters.

    Examples
    --------
    >>> a = request_key("m", ChatRequest("hi"), [], {"temperature": 0.0})
    >>> a == request_key("m", ChatRequest("hi"), [], {"temperature": 0.0}), a == request_key("m2", ChatRequest("hi"), [], {"temperature": 0.0})
    (True, False)
    """
    blob = json.dumps(
        {"model": model, "system": req.system, "images": list(image_sha256), "text": req.text, "sampling": sampling},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """Responses by content key in one SQLite file (WAL; each response its own transaction)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "inference.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, response TEXT NOT NULL)"
        )

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, response) VALUES (?, ?, ?)",
            (key, model, json.dumps(response, sort_keys=True, ensure_ascii=False)),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()


# -- the endpoint ---------------------------------------------------------------------------


def endpoint_kind(owned_by: str | None, headers: dict[str, str] | None = None) -> str:
    """The server behind an endpoint, from ``owned_by`` or response headers.

    Examples
    --------
    >>> endpoint_kind("vllm"), endpoint_kind("sglang"), endpoint_kind("me"), endpoint_kind(None, {"x-compute-type": "gpu+optimized"})
    ('vllm', 'sglang', 'openai-compatible', 'tgi')
    """
    if owned_by and owned_by.lower() in _OWNED_BY:
        return _OWNED_BY[owned_by.lower()]
    h = {k.lower(): v for k, v in (headers or {}).items()}
    if "x-compute-type" in h:  # TGI's router adds x-compute-* headers to its responses
        return "tgi"
    if "openai-organization" in h or "openai-processing-ms" in h:
        return "openai"
    return "openai-compatible"


def _client(ep: Endpoint) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=ep.base_url, api_key=ep.api_key(), max_retries=0, timeout=ep.timeout)


async def _probe(ep: Endpoint, client: Any) -> tuple[str, str]:
    import openai

    try:
        raw = await client.models.with_raw_response.list()
        headers = dict(raw.headers)
        models = list(raw.parse().data)
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise BuildError(f"cannot reach {ep.base_url}: {type(exc).__name__}: {exc}") from None
    except openai.AuthenticationError:
        raise BuildError(f"{ep.base_url}: the server refused the API key (401); check api_key_env") from None
    except openai.APIStatusError as exc:  # no /models: a plain chat endpoint
        if ep.model is None:
            raise BuildError(f"{ep.base_url}/models answered {exc.status_code}: set model explicitly"
                             f"{_v1_hint(ep.base_url, exc.status_code)}") from None
        return ep.model, endpoint_kind(None, dict(exc.response.headers))
    served = {m.id: getattr(m, "owned_by", None) for m in models}
    if ep.model is None:
        if len(served) != 1:
            raise BuildError(f"{ep.base_url} serves {sorted(served) or 'no model'}: set model to one of them")
        model = next(iter(served))
    else:
        model = ep.model
        if served and model not in served:
            raise BuildError(f"model '{model}' is not served at {ep.base_url} (served: {', '.join(sorted(served))})")
    return model, endpoint_kind(served.get(model), headers)


def probe(ep: Endpoint) -> tuple[str, str]:
    """``(model id, endpoint kind)`` from ``GET {base_url}/models``; errors name the URL."""

    async def go() -> tuple[str, str]:
        client = _client(ep)
        try:
            return await _probe(ep, client)
        finally:
            await client.close()

    return _run_sync(go())


def _v1_hint(base_url: str, status: int | None) -> str:
    """``; the base URL has no /v1 ...`` for a 404 from a base URL whose path does not end in /v1.

    Examples
    --------
    >>> _v1_hint("http://h:8000", 404)
    '; the base URL has no /v1: try http://h:8000/v1'
    >>> _v1_hint("http://h:8000/v1", 404), _v1_hint("http://h:8000", 400)
    ('', '')
    """
    from urllib.parse import urlparse

    path = urlparse(base_url).path.rstrip("/")
    if status != 404 or path.endswith("/v1"):
        return ""
    return f"; the base URL has no /v1: try {base_url.rstrip('/')}/v1"


def server_message(exc: Any) -> str:
    """The server's own words in an error response (``error.message``, ``message``, ``detail``
    or the body's text), one line, at most 300 characters; the exception's name without one."""
    body = getattr(exc, "body", None)
    msg: Any = None
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg is None:
            msg = body.get("message") or body.get("detail")
    elif isinstance(body, str):
        msg = body
    if not msg:
        resp = getattr(exc, "response", None)
        try:
            msg = resp.text if resp is not None else None
        except Exception:  # a streamed or closed response
            msg = None
    text = " ".join(str(msg).split()) if msg else type(exc).__name__
    return text[:300]


def _retry_after(exc: Any) -> float | None:
    resp = getattr(exc, "response", None)
    value = resp.headers.get("retry-after") if resp is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


class _Progress:
    """requests/s and tokens/s: a bar in the build's live display ``ui`` when given (a step's
    ``ctx.progress``), else its own on a terminal, and a log line every ``every`` seconds."""

    def __init__(self, label: str, total: int, every: float = 10.0, ui: Any = None) -> None:
        self.label, self.total, self.every = label, total, every
        self.t0 = self.last = time.monotonic()
        self.done = self.sent = self.tokens = 0
        self._ui = ui
        self._bar: Any = None
        self._task: Any = None
        if self._ui is not None and total:
            self._task = self._ui.add_counter(label, total)
        elif sys.stderr.isatty() and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def rate(self) -> str:
        dt = max(time.monotonic() - self.t0, 1e-9)
        return f"{self.sent / dt:.1f} req/s, {self.tokens / dt:.0f} tok/s"

    def update(self, res: ChatResult) -> None:
        self.done += 1
        if not res.cached:
            self.sent += 1
            self.tokens += res.completion_tokens
        desc = f"{self.label}: {self.rate()}"
        if self._ui is not None:
            self._ui.update_counter(self._task, advance=1, description=desc)
        elif self._bar is not None:
            self._bar.update(self._task, advance=1, description=desc)
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            log.info("%s: %d/%d done, %s", self.label, self.done, self.total, self.rate())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self.total:
            log.info("%s: %d/%d done (%d sent), %s", self.label, self.done, self.total, self.sent, self.rate())


async def _call(client: Any, ep: Endpoint, model: str, messages: list[dict], sampling: dict[str, Any],
                stats: RunStats) -> ChatResult:
    import openai

    last, reason = "", "connection"
    for attempt in range(ep.max_retries + 1):
        try:
            resp = await client.chat.completions.create(model=model, messages=messages, **sampling)
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            raise BuildError(
                f"{ep.base_url}: {exc.status_code} for model '{model}' ({server_message(exc)}): no request can "
                f"succeed{_v1_hint(ep.base_url, exc.status_code)}"
            ) from None
        except (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                openai.InternalServerError) as exc:
            status = getattr(exc, "status_code", None)
            reason = str(status) if status else ("timeout" if isinstance(exc, openai.APITimeoutError) else "connection")
            last = server_message(exc) if status else type(exc).__name__
            if attempt == ep.max_retries:
                break
            stats.retries += 1
            stats.retried[reason] = stats.retried.get(reason, 0) + 1
            wait = _retry_after(exc)
            if wait is None:
                wait = ep.backoff * (2**attempt) * (0.5 + random.random())
            await asyncio.sleep(min(wait, ep.max_backoff))
            continue
        except openai.APIStatusError as exc:  # other 4xx: this request is at fault; say what the server said
            msg = server_message(exc)
            return ChatResult(error=f"{exc.status_code}: {msg}", reason=str(exc.status_code), detail=msg)
        choice = resp.choices[0] if resp.choices else None
        text = choice.message.content if choice is not None and choice.message is not None else None
        if text is None:
            return ChatResult(error="empty response", reason="empty", detail="no message content")
        usage = resp.usage
        return ChatResult(
            text=text,
            finish_reason=choice.finish_reason,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )
    return ChatResult(error=f"gave up after {ep.max_retries + 1} attempts ({reason}: {last})", reason=reason,
                      detail=last)


def _read_images(refs: Sequence[str | bytes], max_pixels: int | None) -> tuple[list[bytes], str | None]:
    """The encoded bytes of ``refs``, or the first problem (``missing_image``, ``undecodable_image``,
    ``image_too_large``) when one cannot be read or fails the decode check."""
    from .images import image_problem

    blobs = []
    for ref in refs:
        try:
            data = bytes(ref) if isinstance(ref, (bytes, bytearray)) else read_ref(ref)
        except (OSError, ValueError):
            return [], "missing_image"
        problem = image_problem(data, max_pixels)
        if problem is not None:
            return [], problem
        blobs.append(data)
    return blobs, None


async def _chat(requests: Sequence[ChatRequest], ep: Endpoint, cache_path: Path | None, label: str,
                on_result: Callable[[int, ChatResult], None] | None,
                max_pixels: int | None = None, ui: Any = None) -> tuple[list[ChatResult], RunStats]:
    client = _client(ep)
    cache = ResponseCache(cache_path)
    stats = RunStats(requests=len(requests), base_url=ep.base_url, max_attempts=ep.max_retries + 1)
    results: list[ChatResult | None] = [None] * len(requests)
    t0 = time.monotonic()
    try:
        stats.model, stats.kind = await _probe(ep, client)
        progress = _Progress(label, len(requests), ui=ui)
        todo = iter(range(len(requests)))

        async def one(i: int) -> ChatResult:
            req = requests[i]
            blobs, problem = await asyncio.to_thread(_read_images, req.images, max_pixels)
            if problem is not None:  # never sent: the caller drops and counts the row
                return ChatResult(error=f"image not sent: {problem}", reason=problem, skipped=True)
            sampling = ep.sampling(req.seed)
            key = request_key(stats.model, req, [hashlib.sha256(b).hexdigest() for b in blobs], sampling)
            hit = cache.get(key)
            if hit is not None:
                stats.cache_hits += 1
                return ChatResult(text=hit["text"], cached=True, finish_reason=hit.get("finish_reason"),
                                  prompt_tokens=hit.get("prompt_tokens", 0),
                                  completion_tokens=hit.get("completion_tokens", 0))
            content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": image_data_url(b)}} for b in blobs]
            content.append({"type": "text", "text": req.text})
            messages = ([{"role": "system", "content": req.system}] if req.system else []) + [
                {"role": "user", "content": content}
            ]
            stats.sent += 1
            res = await _call(client, ep, stats.model, messages, sampling, stats)
            if res.text is not None:
                cache.put(key, stats.model, {"text": res.text, "finish_reason": res.finish_reason,
                                             "prompt_tokens": res.prompt_tokens,
                                             "completion_tokens": res.completion_tokens})
            return res

        async def worker() -> None:
            for i in todo:  # one shared iterator: each index goes to exactly one worker
                res = await one(i)
                results[i] = res
                if res.skipped:
                    stats.skipped[res.reason or "image"] = stats.skipped.get(res.reason or "image", 0) + 1
                elif res.error is not None:
                    stats.errors += 1
                    r = res.reason or "error"
                    stats.gave_up[r] = stats.gave_up.get(r, 0) + 1
                    stats.examples.setdefault(r, (res.detail or res.error or "")[:300])
                if res.finish_reason == "length":
                    stats.truncated += 1
                stats.prompt_tokens += res.prompt_tokens if not res.cached else 0
                stats.completion_tokens += res.completion_tokens if not res.cached else 0
                progress.update(res)
                if on_result is not None:
                    on_result(i, res)

        try:
            await asyncio.gather(*(worker() for _ in range(min(ep.concurrency, len(requests)))))
        finally:
            progress.close()
    finally:
        cache.close()
        await client.close()
        stats.seconds = time.monotonic() - t0
    return [r if r is not None else ChatResult(error="not run") for r in results], stats


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from inside an event loop (notebooks)
        return pool.submit(asyncio.run, coro).result()


def chat(
    requests: Sequence[ChatRequest],
    endpoint: Endpoint,
    *,
    cache_path: Path | None = None,
    label: str = "inference",
    on_result: Callable[[int, ChatResult], None] | None = None,
    max_pixels: int | None = None,
    progress: Any = None,
) -> tuple[list[ChatResult], RunStats]:
    """Answer ``requests`` at ``endpoint``; results come back in request order.

    Responses are looked up in, and written to, the response cache first (``cache_path``,
    default ``$GEODATA_CACHE/inference.sqlite``). A request that still fails after its
    retries gets a result with ``error`` and ``reason`` set (and is not cached: the next run
    sends it again); the caller decides what that row becomes. A request whose image cannot
    be read or fails the decode check (more than ``max_pixels`` pixels included) is not sent
    (``skipped``). ``on_result(i, result)`` is called as each request completes. ``progress``:
    the build's live display (a step passes ``ctx.progress``) to add the requests' bar to.
    """
    if not requests:
        return [], RunStats(model=endpoint.model or "", base_url=endpoint.base_url)
    return _run_sync(_chat(list(requests), endpoint, cache_path, label, on_result, max_pixels, progress))


def endpoint_from_params(where: str, **params: Any) -> Endpoint:
    """An :class:`Endpoint` from a step's parameters; errors name the step."""
    try:
        return Endpoint(**params)
    except SpecError as exc:
        raise SpecError(f"step '{where}': {exc}") from None
