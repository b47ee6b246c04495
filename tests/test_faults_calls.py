"""Model calls under faults: a server stopped and restarted during a build, 4xx with the
server's message, a base URL without /v1, an image that fails the decode check.

The stub (``tests/stub_openai.py``) is a ``ThreadingHTTPServer`` on 127.0.0.1 speaking the
OpenAI chat API. With ``outage_after=N`` the request after the N-th answer finds the server
going down: it is stopped (its listening socket closed, so every later attempt is refused)
for ``outage_seconds`` and then started again on the same port. Everything is bounded: daemon
threads, short client timeouts, few retries, outages of at most three seconds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from geodata.engine import build
from geodata.errors import BuildError
from geodata.inference import ChatRequest, Endpoint, chat
from stub_openai import MODEL, _Stub


@pytest.fixture()
def mp16_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from geodata.sources.mp16 import write_sample

    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "mp16"
    write_sample(root, n=30, layouts=("folder",), bad_rows=False)
    monkeypatch.setenv("MP16_ROOT", str(root))
    return root


def _sets(url: str, **extra: Any) -> list[str]:
    base = {"base_url": url, "model": MODEL, "concurrency": 1, "timeout": 2, "max_retries": 1, "backoff": 0.01}
    base.update(extra)
    return [f"predict.{k}={v}" for k, v in base.items()] + ["sample.n=1000", "exclude.radius_km=50"]


def _rows(root: Path) -> int:
    return pl.read_csv(root / "mp16_places365.csv", infer_schema=False).height


# -- a server outage during a build ------------------------------------------------------------


def test_outage_fails_the_build_naming_the_cause_and_the_rebuild_retries_only_the_failed(
    mp16_root: Path, datasets_tmp: Path
) -> None:
    n = _rows(mp16_root)
    with _Stub(outage_after=18, outage_seconds=3.0) as srv:
        with pytest.raises(BuildError) as info:
            build("mp16-hard-200k", sets=_sets(srv.url), out=datasets_tmp / "hard")
        msg = str(info.value)
        failed = n - 18
        assert f"{failed} of {n} requests failed" in msg
        assert f"{failed} requests gave up on the connection to {srv.url} after 2 attempts" in msg
        assert "rerun the build to send only the failed requests" in msg and "max_failed_fraction=" in msg
        assert not (datasets_tmp / "hard").exists()  # nothing half-made at the path
        assert srv.up_again.wait(10)  # the server is back
        before = srv.chat_requests
        res = build("mp16-hard-200k", sets=_sets(srv.url), out=datasets_tmp / "hard")
        assert srv.chat_requests - before == failed  # only the failed rows are sent again
    assert res.status == "built"
    inf = res.notes["predict.inference"]
    assert inf["cache_hits"] == 18 and inf["sent"] == failed and inf["gave_up"] == {}
    assert res.notes["join_predictions.rows_with_prediction"] == n
    preds = pl.read_parquet(sorted((res.path / "predictions").glob("*.parquet")))
    assert preds.height == n and preds["parsed"].all()
    assert preds.columns == ["id", "config", "task", "completion", "pred_lat", "pred_lon", "answer", "parsed",
                             "finish_reason", "engine", "model"]
    assert set(preds["engine"]) == {"openai"} and set(preds["model"]) == {MODEL}


def test_accepted_failures_are_noted_and_the_next_build_is_not_up_to_date(
    mp16_root: Path, datasets_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="geodata")
    n = _rows(mp16_root)
    sets = None
    with _Stub(outage_after=20, outage_seconds=3.0) as srv:
        sets = _sets(srv.url, max_failed_fraction=0.5)
        res = build("mp16-hard-200k", sets=sets, out=datasets_tmp / "hard")
        failed = n - 20
        notes = res.notes
        assert notes["predict.inference"]["gave_up"] == {"connection": failed}
        assert notes["predict.inference"]["retries"] == failed  # one retry each before giving up
        assert notes["predict.predictions"]["failed"] == failed
        assert f"{failed} of {n} requests failed" in notes["predict.incomplete"]
        assert notes["join_predictions.rows_without_prediction"] == failed
        assert any("the next build sends them again" in r.getMessage() for r in caplog.records)
        card = (res.path / "README.md").read_text()
        assert "predict.incomplete" in card and "gave_up" in card and "truncated" in card
        assert srv.up_again.wait(10)
        before = srv.chat_requests
        res2 = build("mp16-hard-200k", sets=sets, out=datasets_tmp / "hard")  # not "up to date"
        assert res2.status == "built" and srv.chat_requests - before == failed
        assert "predict.incomplete" not in res2.notes
        assert res2.notes["join_predictions.rows_with_prediction"] == n
        res3 = build("mp16-hard-200k", sets=sets, out=datasets_tmp / "hard")
        assert res3.status == "up to date" and srv.chat_requests - before == failed


def test_retries_ride_out_a_short_outage(mp16_root: Path, datasets_tmp: Path) -> None:
    n = _rows(mp16_root)
    with _Stub(outage_after=10, outage_seconds=0.5) as srv:
        res = build("mp16-hard-200k", sets=_sets(srv.url, max_retries=6, backoff=0.1), out=datasets_tmp / "h")
    inf = res.notes["predict.inference"]
    assert inf["gave_up"] == {} and inf["retries"] >= 1 and inf["retried"].get("connection", 0) >= 1
    assert res.notes["join_predictions.rows_with_prediction"] == n and "predict.incomplete" not in res.notes


# -- what the server says, where the URL points, what is never sent ------------------------------


def test_4xx_shows_the_servers_message_and_a_url_without_v1_gets_the_hint(mp16_root: Path) -> None:
    img = sorted((mp16_root / "images").rglob("*.jpg"))[0]
    reqs = [ChatRequest(text="Where?", images=(str(img),))]
    said = "Qwen/Qwen2.5-7B-Instruct is not a multimodal model"
    with _Stub(status=400, message=said) as srv:
        res, stats = chat(reqs, Endpoint(base_url=srv.url, model=MODEL, backoff=0.01))
        assert res[0].error == f"400: {said}" and stats.gave_up == {"400": 1} and stats.retries == 0
        assert said in stats.cause() and "1 request was answered 400 by" in stats.cause()
        bare = srv.url[: -len("/v1")]
        with pytest.raises(BuildError, match=r"404 .*no request can succeed; the base URL has no /v1: try "
                                             + bare.replace(".", r"\.") + "/v1"):
            chat(reqs, Endpoint(base_url=bare, model=MODEL, backoff=0.01))


def test_truncated_answers_are_counted(mp16_root: Path) -> None:
    img = sorted((mp16_root / "images").rglob("*.jpg"))[0]
    with _Stub(finish_reason="length") as srv:
        res, stats = chat([ChatRequest(text="Where?", images=(str(img),))], Endpoint(base_url=srv.url, model=MODEL))
    assert res[0].finish_reason == "length" and stats.truncated == 1 and stats.note({})["truncated"] == 1


def test_an_image_failing_the_decode_check_is_dropped_before_any_request(mp16_root: Path, datasets_tmp: Path) -> None:
    n = _rows(mp16_root)
    victim = sorted((mp16_root / "images").rglob("*.jpg"))[3]
    victim.write_bytes(victim.read_bytes()[:200])  # a JPEG cut short: exists, does not decode
    with _Stub() as srv:
        res = build("mp16-hard-200k", sets=_sets(srv.url), out=datasets_tmp / "h")
        assert srv.chat_requests == n - 1  # never sent, never retried
        res2 = build("mp16-hard-200k", sets=_sets(srv.url), out=datasets_tmp / "h2")
        assert srv.chat_requests == n - 1  # nor on the next build
    assert res.drops.get("undecodable_image") == 1
    assert res.notes["predict.inference"]["skipped_images"] == {"undecodable_image": 1}
    assert res.notes["predict.inference"]["gave_up"] == {} and "predict.incomplete" not in res.notes
    assert res2.drops.get("undecodable_image") == 1
