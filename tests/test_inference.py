"""Model calls as pipeline steps, against a real OpenAI-compatible HTTP server on 127.0.0.1.

The server (``_Server``) is a ``ThreadingHTTPServer`` that answers ``GET /v1/models`` and
``POST /v1/chat/completions`` deterministically from the request: as a teacher it reads the
true place out of the prompt and writes a rationale (right, wrong, leaking or unparsable,
chosen by a hash of the request); as a base model it answers near or far from the truth of
each image. It returns 429 and 500 on first attempts of some requests, stalls once beyond
the client timeout, checks the bearer key, and records what it saw.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from geodata.engine import build
from geodata.errors import BuildError, SpecError
from geodata.inference import ChatRequest, Endpoint, ResponseCache, chat, probe

KEY = "sk-geodata-test-7f3a9c1e55d2"
KEY_ENV = "GEODATA_TEST_TEACHER_KEY"
MODEL = "stub/teacher-vl"

_PLACE = re.compile(
    r"Country: (?P<country>[^(\n]*?) \((?P<continent>[^)]*)\); state or region: (?P<admin1>[^;]*); "
    r"nearest city: (?P<city>[^;]*); coordinates: \((?P<lat>[-0-9.]+), (?P<lon>[-0-9.]+)\)"
)


class _Server:
    """An OpenAI-compatible chat server answering from the request (see the module docstring)."""

    def __init__(self, *, failures: bool = True, stall: bool = True, delay: float = 0.0,
                 truth: dict[str, tuple[float, float]] | None = None, solved_every: int = 3) -> None:
        self.failures, self.stall, self.delay = failures, stall, delay
        self.truth = truth or {}
        self.solved_every = solved_every
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.answered: dict[str, str] = {}  # request id -> behaviour
        self.chat_requests = 0
        self.completed = 0
        self.inflight = self.max_inflight = 0
        self.stalled = False
        self.statuses: Counter[int] = Counter()
        self.bodies: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [
                        {"id": MODEL, "object": "model", "created": 0, "owned_by": "vllm"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    self._send(401, {"error": {"message": "bad key"}})
                    return
                with server.lock:
                    server.chat_requests += 1
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    server.bodies.append(body)
                try:
                    code, payload, headers = server.answer(body)
                    if server.delay:
                        time.sleep(server.delay)
                finally:
                    with server.lock:
                        server.inflight -= 1
                with server.lock:
                    server.statuses[code] += 1
                    if code == 200:
                        server.completed += 1
                self._send(code, payload, headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- answers --------------------------------------------------------------------------
    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        user = body["messages"][-1]["content"]
        text = next(p["text"] for p in user if p["type"] == "text")
        images = [p["image_url"]["url"] for p in user if p["type"] == "image_url"]
        rid = hashlib.sha256((text + "".join(images)).encode()).hexdigest()
        with self.lock:
            self.attempts[rid] += 1
            attempt = self.attempts[rid]
        h = int(rid[:8], 16)
        if self.failures and attempt == 1 and h % 6 == 0:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}
        if self.failures and attempt == 1 and h % 6 == 1:
            return 500, {"error": {"message": "oops"}}, {}
        if self.stall and attempt == 1 and h % 6 == 2:
            with self.lock:
                first, self.stalled = not self.stalled, True
            if first:
                time.sleep(2.5)  # beyond the client timeout: the client retries
        m = _PLACE.search(text)
        if m:
            kind, reply = self._rationale(m, h)
        else:
            kind, reply = self._prediction(images[0] if images else "", h)
        with self.lock:
            self.answered[rid] = kind
        return 200, {
            "id": "chatcmpl-" + rid[:12], "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": len(reply) // 4,
                      "total_tokens": (len(text) + len(reply)) // 4},
        }, {}

    @staticmethod
    def _rationale(m: re.Match[str], h: int) -> tuple[str, str]:
        g = m.groupdict()
        lat, lon = float(g["lat"]), float(g["lon"])
        answer = f"Country: {g['country']}; State: {g['admin1']}; City: {g['city']}; Coordinates: ({g['lat']}, {g['lon']})"
        story = (f"The vegetation, the light and the architecture fit {g['continent']}. The signs and the road "
                 f"markings point to {g['country']}, and within it to {g['admin1']}. The streets look like "
                 f"those around {g['city']}.")
        kind = ("wrong", "leak", "unparsed", "good", "good", "good")[h % 5 if h % 5 < 3 else 3]
        if kind == "wrong":  # confidently elsewhere: ~3000 km off
            wlat = lat - 27.0 if lat > 0 else lat + 27.0
            return kind, (f"<think>{story} So it was taken at about ({wlat:.4f}, {lon:.4f}).</think>"
                          f"<answer>Country: {g['country']}; Coordinates: ({wlat:.4f}, {lon:.4f})</answer>")
        if kind == "leak":
            return kind, (f"<think>The photo is at ({lat:.3f}, {lon:.3f}). {story} So it is near "
                          f"({g['lat']}, {g['lon']}).</think><answer>{answer}</answer>")
        if kind == "unparsed":
            return kind, f"I think this is {g['city']}, {g['country']}."
        return kind, f"<think>{story} So the photo was taken near ({g['lat']}, {g['lon']}).</think><answer>{answer}</answer>"

    def _prediction(self, image_url: str, h: int) -> tuple[str, str]:
        sha = hashlib.sha256(__import__("base64").b64decode(image_url.split(",", 1)[1])).hexdigest()
        lat, lon = self.truth.get(sha, (0.0, 0.0))
        if h % self.solved_every == 0:
            kind, plat, plon = "solved", lat + 0.01, lon
        else:
            kind, plat, plon = "far", (lat - 30.0 if lat > 0 else lat + 30.0), lon
        return f"{kind}:{sha}", f"<think>It looks familiar.</think><answer>Coordinates: ({plat:.5f}, {plon:.5f})</answer>"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("GEODATA_CACHE", str(d))
    monkeypatch.setenv(KEY_ENV, KEY)
    return d


def _teacher_sets(url: str, n: int = 24, **extra: Any) -> list[str]:
    sets = [f"teacher.base_url={url}", f"teacher.model={MODEL}", f"teacher.api_key_env={KEY_ENV}",
            "teacher.timeout=1", "teacher.backoff=0.01", "teacher.concurrency=4", f"sample.n={n}"]
    return sets + [f"teacher.{k}={v}" for k, v in extra.items()]


def _texts(path: Path, config: str = "data") -> pl.DataFrame:
    df = pl.read_parquet(sorted((path / config).glob("*.parquet")))
    return df.with_columns(text=pl.col("completion").list.first().struct.field("content").list.first().struct.field("text"))


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


# -- the client ---------------------------------------------------------------------------------


def test_client_bounds_concurrency_and_answers_in_order(cache: Path, mp16_small: Path) -> None:
    imgs = sorted((mp16_small / "folder").rglob("*.jpg"))[:12]
    reqs = [ChatRequest(text=f"Country: X (Y); state or region: A; nearest city: Q{i:02d}; coordinates: ({i}.5, 1.25)",
                        images=(str(p),)) for i, p in enumerate(imgs)]
    with _Server(failures=False, stall=False, delay=0.05) as srv:
        ep = Endpoint(base_url=srv.url, model=MODEL, api_key_env=KEY_ENV, concurrency=3, timeout=5)
        res, stats = chat(reqs, ep)
    assert srv.chat_requests == 12 and 1 < srv.max_inflight <= 3
    assert [f"Q{i:02d}" in (r.text or "") for i, r in enumerate(res)] == [True] * 12
    assert stats.kind == "vllm" and stats.model == MODEL and stats.cache_hits == 0
    # images went as base64 data URLs of the files' own bytes
    url = srv.bodies[0]["messages"][-1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")


def test_client_retries_429_500_and_a_stall(cache: Path) -> None:
    reqs = [ChatRequest(text=f"Country: X (Y); state or region: A; nearest city: C{i}; coordinates: ({i}.5, 1.25)")
            for i in range(30)]
    with _Server(failures=True, stall=True) as srv:
        ep = Endpoint(base_url=srv.url, model=MODEL, api_key_env=KEY_ENV, concurrency=4, timeout=1, backoff=0.01)
        res, stats = chat(reqs, ep)
    assert all(r.text is not None for r in res) and stats.errors == 0
    assert srv.statuses[429] > 0 and srv.statuses[500] > 0 and srv.stalled
    assert stats.retried.get("429", 0) == srv.statuses[429]
    assert stats.retried.get("500", 0) == srv.statuses[500]
    assert stats.retried.get("timeout", 0) >= 1  # the stall (a slow machine may add more)
    assert srv.chat_requests == 30 + stats.retries


def test_client_gives_up_after_max_retries_and_fails_fast_on_a_bad_key(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = [ChatRequest(text="Country: X (Y); state or region: A; nearest city: C; coordinates: (1.5, 1.25)")]
    with _Server(failures=False, stall=True) as srv:
        srv.stall = True
        # force a stall on every attempt: the client gives up after max_retries + 1 attempts
        srv.answer = lambda body: (time.sleep(0.6), (500, {"error": {}}, {}))[1]  # type: ignore[method-assign]
        ep = Endpoint(base_url=srv.url, model=MODEL, api_key_env=KEY_ENV, timeout=0.3, max_retries=2, backoff=0.01)
        res, stats = chat(reqs, ep)
        assert res[0].text is None and "3 attempts" in (res[0].error or "") and srv.chat_requests == 3
        # a 400 fails its own request at once, without retries
        srv.answer = lambda body: (400, {"error": {"message": "image too large"}}, {})  # type: ignore[method-assign]
        res, stats = chat(reqs, ep)
        assert res[0].error and res[0].error.startswith("400") and srv.chat_requests == 4 and stats.retries == 0
        # Retry-After is respected over the (tiny) backoff
        calls: list[float] = []

        def limited(body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
            calls.append(time.monotonic())
            if len(calls) == 1:
                return 429, {"error": {}}, {"Retry-After": "1"}
            return _Server.answer(srv, body)

        srv.answer = limited  # type: ignore[method-assign]
        res, stats = chat([ChatRequest(text="Country: X (Y); state or region: A; nearest city: D; coordinates: (2.5, 1.25)")], ep)
        assert res[0].text is not None and len(calls) == 2 and calls[1] - calls[0] >= 0.9
        monkeypatch.setenv(KEY_ENV, "sk-wrong")
        with pytest.raises(BuildError, match="401"):
            chat(reqs, ep)
        with pytest.raises(BuildError, match="not served"):
            probe(Endpoint(base_url=srv.url, model="other/model", api_key_env=KEY_ENV))
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(BuildError, match=KEY_ENV):
        chat(reqs, ep)
    with pytest.raises(SpecError, match="base_url"):
        Endpoint(base_url="127.0.0.1:8000")
    with pytest.raises(SpecError, match="name of an environment variable") as info:
        Endpoint(base_url="http://127.0.0.1:8000/v1", api_key_env=KEY)
    assert KEY not in str(info.value)


# -- teacher-written Geo-R1 exemplars ---------------------------------------------------------


def test_coordinate_leak_reads_hemispheres_truncation_and_only_before_the_last_sentence() -> None:
    from geodata.steps.scaffold import coordinate_leak

    lat, lon = -33.8688, 151.2093  # Sydney
    think = [
        "<think>Sunlight from the north: 33.87° S. Harbour. So near (-33.8688, 151.2093).</think>",  # rounded, S
        "<think>Longitude about 151.20 E. Harbour. So near Sydney.</think>",  # truncated
        "<think>A 12.50 m ferry. Gum trees. So near (-33.8688, 151.2093).</think>",  # other numbers
        "<think>Latitude near -33.9 by the sun. So near (-33.8688, 151.2093).</think>",  # one decimal
        "<answer>(-33.8688, 151.2093)</answer>",  # no think
        None,
    ]
    assert coordinate_leak(think, [lat] * 6, [lon] * 6).tolist() == [True, True, False, False, False, False]
    strict = ["<think>At 33.869 S. Harbour. So near it.</think>", think[0]]
    assert coordinate_leak(strict, [lat] * 2, [lon] * 2, min_decimals=3).tolist() == [True, False]


def test_teacher_build_filters_by_reward_and_leak_and_reruns_from_cache(
    cache: Path, datasets_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="geodata")
    with _Server(failures=True, stall=True) as srv:
        res = build("geo-r1-scaffold", sets=_teacher_sets(srv.url), out=datasets_tmp / "t1")
        sent_first = srv.chat_requests
        kinds = Counter(srv.answered.values())
        assert srv.statuses[429] and srv.statuses[500] and srv.stalled
        # a rebuild is answered from the cache: no request, same shards
        res2 = build("geo-r1-scaffold", sets=_teacher_sets(srv.url), out=datasets_tmp / "t2")
        assert srv.chat_requests == sent_first
    d = res.drops
    assert kinds["good"] == res.rows > 0
    assert d.get("low_reward", 0) == kinds["wrong"] > 0
    assert d.get("coordinate_leak", 0) == kinds["leak"] > 0
    assert d.get("unparsed", 0) == kinds["unparsed"] > 0
    assert "teacher_error" not in d
    rows = _texts(res.path)
    for r in rows.iter_rows(named=True):
        assert r["city"] in r["text"] and r["text"].startswith("<think>") and "The signs" in r["text"]
    m1, m2 = (json.loads((p / "manifest.json").read_text()) for p in (res.path, res2.path))
    assert m1["files"] == m2["files"]  # byte-identical shards
    inf1, inf2 = m1["stats"]["notes"]["teacher.inference"], m2["stats"]["notes"]["teacher.inference"]
    assert inf1["model"] == MODEL and inf1["endpoint"] == "vllm" and inf1["sampling"]["temperature"] == 0.7
    assert inf1["cache_hit_rate"] == 0.0 and inf2["cache_hit_rate"] == 1.0
    card = (res.path / "README.md").read_text()
    assert "teacher.inference" in card and "cache_hit_rate" in card and "low_reward" in card
    # the key is sent (the server checks it) but never logged, carded or cached
    secret = KEY.encode()
    for path, data in _all_bytes(res.path) + _all_bytes(res2.path) + _all_bytes(cache):
        assert secret not in data, path
    assert KEY not in caplog.text
    assert any("req/s" in r.getMessage() and "tok/s" in r.getMessage() for r in caplog.records)


def test_teacher_without_base_url_keeps_templates(datasets_tmp: Path) -> None:
    res = build("geo-r1-scaffold", sets=["sample.n=5"], out=datasets_tmp / "tpl")
    assert res.rows == 5 and res.notes["teacher.rationales"].startswith("templates")


def test_killed_teacher_build_resumes_from_the_cache(cache: Path, datasets_tmp: Path, repo: Path) -> None:
    n = 16
    with _Server(failures=False, stall=False, delay=0.15) as srv:
        sets = _teacher_sets(srv.url, n=n, concurrency=2, timeout=5)
        cmd = [sys.executable, "-c", "from geodata.cli import app; app()", "build", "geo-r1-scaffold",
               "--out", str(datasets_tmp / "killed")] + [a for s in sets for a in ("--set", s)]
        env = dict(os.environ, PYTHONPATH=str(repo))
        proc = subprocess.Popen(cmd, env=env, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        while srv.completed < 5 and time.monotonic() - t0 < 120 and proc.poll() is None:
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        assert srv.completed >= 5, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert not (datasets_tmp / "killed").exists()
        db = sqlite3.connect(cache / "inference.sqlite")
        cached = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        db.close()
        assert 0 < cached < n
        before = srv.chat_requests
        res = build("geo-r1-scaffold", sets=sets, out=datasets_tmp / "killed")
        assert srv.chat_requests - before == n - cached  # only the missing requests
    assert res.notes["teacher.inference"]["cache_hits"] == cached
    assert len(ResponseCache(cache / "inference.sqlite")) == n


# -- base-model predictions for MP16-Hard-200K --------------------------------------------------


def test_hard_200k_builds_from_served_predictions(
    cache: Path, datasets_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geodata.context import StepContext
    from geodata.images import read_ref
    from geodata.sources.mp16 import read_mp16, write_sample

    root = tmp_path / "mp16"
    write_sample(root, n=60, layouts=("folder",), bad_rows=False)
    monkeypatch.setenv("MP16_ROOT", str(root))
    src = read_mp16(StepContext(), root=root).rows
    truth = {hashlib.sha256(read_ref(r[0])).hexdigest(): (la, lo)
             for r, la, lo in zip(src["images"].to_list(), src["lat"].to_list(), src["lon"].to_list())}
    with _Server(failures=True, stall=False, truth=truth) as srv:
        sets = [f"predict.base_url={srv.url}", f"predict.model={MODEL}", f"predict.api_key_env={KEY_ENV}",
                "predict.backoff=0.01", "predict.timeout=5", "sample.n=1000", "exclude.radius_km=50"]
        res = build("mp16-hard-200k", sets=sets, out=datasets_tmp / "hard")
        sent = srv.chat_requests
        res2 = build("mp16-hard-200k", sets=sets, out=datasets_tmp / "hard2")
        assert srv.chat_requests == sent
    answered = {k.split(":", 1)[1]: k.split(":", 1)[0] for k in srv.answered.values()}
    preds = pl.read_parquet(sorted((res.path / "predictions").glob("*.parquet")))
    assert preds.height == src.height and preds["parsed"].all()
    assert set(preds.columns) >= {"id", "pred_lat", "pred_lon", "parsed", "completion"}
    n_solved = sum(1 for v in answered.values() if v == "solved")
    assert res.notes["hotspots.solved"] == n_solved > 0
    assert res.notes["join_predictions.rows_with_prediction"] == src.height
    assert res.notes["predictions.file"].startswith("replaced by step 'predict'")
    assert res.notes["predict.inference"]["endpoint"] == "vllm"
    hot = pl.read_parquet(sorted((res.path / "hotspots").glob("*.parquet")))
    assert hot.height == n_solved
    m1, m2 = (json.loads((p / "manifest.json").read_text()) for p in (res.path, res2.path))
    assert m1["files"] == m2["files"]
    for path, data in _all_bytes(res.path) + _all_bytes(cache):
        assert KEY.encode() not in data, path


def test_stats_count_give_ups_by_reason_with_the_servers_message(cache: Path) -> None:
    reqs = [ChatRequest(text=f"Country: X (Y); state or region: A; nearest city: G{i}; coordinates: (1.5, 1.25)")
            for i in range(3)]
    with _Server(failures=False, stall=False) as srv:
        srv.answer = lambda body: (503, {"error": {"message": "engine overloaded"}}, {})  # type: ignore[method-assign]
        ep = Endpoint(base_url=srv.url, model=MODEL, api_key_env=KEY_ENV, max_retries=1, backoff=0.01, concurrency=1)
        res, stats = chat(reqs, ep)
    assert [r.reason for r in res] == ["503"] * 3 and stats.failed == 3 and stats.retries == 3
    note = stats.note({})
    assert note["gave_up"] == {"503": 3} and note["retried"] == {"503": 3} and note["sent"] == 3
    assert stats.cause() == f"3 requests were answered 503 by {srv.url} after 2 attempts (engine overloaded)"
    assert len(ResponseCache(cache / "inference.sqlite")) == 0  # a failure is never cached: the next run resends it
