"""geodata publish: the assembled folder loads with datasets; the upload is checked at the huggingface_hub boundary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub
import pyarrow.parquet as pq
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.hf_api import RepoFile
from typer.testing import CliRunner

from dataset_fixture import make_dataset, make_rows, rewrite_shard, write_dataset, FEATURES
from geodata.cli import app
from geodata.publish import (
    MAX_FILES_PER_COMMIT,
    PublishError,
    UploadError,
    assemble,
    check_repo_id,
    publish,
)
from geodata.validate import ValidationError

TOKEN = "hf_testTOKENnotreal1234567890"


class FakeHub:
    """Stands in for ``HfApi``: records calls and keeps the repo's files in memory."""

    def __init__(self, fail_on_commit: int | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.files: dict[str, bytes] = {}
        self.commits: list[list[Any]] = []
        self.fail_on_commit = fail_on_commit
        self.private: bool | None = None

    def __call__(self, *a: Any, **k: Any) -> "FakeHub":  # so the class can replace HfApi()
        return self

    def create_repo(self, repo_id: str, **kw: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        if self.private is None:
            self.private = bool(kw.get("private"))
        return f"https://huggingface.co/datasets/{repo_id}"

    def repo_info(self, repo_id: str, **kw: Any) -> Any:
        self.calls.append(("repo_info", {"repo_id": repo_id, **kw}))
        return type("Info", (), {"private": self.private})()

    def list_repo_tree(self, repo_id: str, **kw: Any) -> list[RepoFile]:
        self.calls.append(("list_repo_tree", {"repo_id": repo_id, **kw}))
        out = []
        for path, data in self.files.items():
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            lfs = None
            if path.endswith((".parquet", ".png")):
                lfs = {"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 130}
                blob = hashlib.sha1(path.encode()).hexdigest()  # the pointer's id, not the content's
            out.append(RepoFile(path=path, size=len(data), oid=blob, lfs=lfs))
        return out

    def create_commit(self, repo_id: str, operations: list[Any], **kw: Any) -> Any:
        self.calls.append(("create_commit", {"repo_id": repo_id, "n": len(operations), **kw}))
        if self.fail_on_commit is not None and len(self.commits) + 1 == self.fail_on_commit:
            self.fail_on_commit = None
            raise ConnectionError("connection reset by peer")
        for op in operations:
            if isinstance(op, CommitOperationAdd):
                self.files[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
            elif isinstance(op, CommitOperationDelete):
                self.files.pop(op.path_in_repo)
        self.commits.append(list(operations))
        return type("CommitInfo", (), {"commit_url": f"https://hf.co/c/{len(self.commits)}"})()

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "datasets", name="mp16-hard-200k", n=12, shards=2, hotspots=True)


@pytest.fixture()
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return TOKEN


def test_dry_run_folder_loads_with_datasets(dataset: Path, tmp_path: Path) -> None:
    res = publish(dataset, "my-org/mp16-hard-200k", dry_run=True, out=tmp_path / "hub")
    assert res.dry_run and res.validation is not None and res.validation.ok
    folder = res.folder
    tree = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert tree == ["README.md", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet",
                    "hotspots/train-00000-of-00001.parquet", "manifest.json"]
    assert datasets.get_dataset_config_names(str(folder)) == ["default", "hotspots"]
    ds = datasets.load_dataset(str(folder))
    assert list(ds) == ["train"] and ds["train"].num_rows == 12
    feats = ds["train"].features
    assert isinstance(feats["images"], datasets.List) and isinstance(feats["images"].feature, datasets.Image)
    assert feats["solution"] == datasets.Value("string")
    assert ds["train"][0]["images"][0].size == (8, 8)  # decoded to PIL
    hot = datasets.load_dataset(str(folder), "hotspots")
    assert hot["train"].column_names == ["id", "lat", "lon", "n"] and hot["train"].num_rows == 2


def test_card_is_completed(dataset: Path, tmp_path: Path) -> None:
    from geodata.validate import split_card

    folder = publish(dataset, "my-org/mp16-hard-200k", dry_run=True, out=tmp_path / "hub").folder
    header, body = split_card((folder / "README.md").read_text())
    assert header["license"] == "cc-by-4.0"
    assert header["size_categories"] == ["n<1K"]
    assert header["task_categories"] == ["image-text-to-text"]
    assert "yfcc100m" in header["source_datasets"]
    assert "geodata" in header["tags"]
    assert [c["config_name"] for c in header["configs"]] == ["default", "hotspots"]
    for needle in ("2510.00072", "2509.25026", "Vision-Language Reasoning for Geolocalization", "AAAI",
                   "larson2017benchmarking", "## Licenses", "## Provenance", "ffffffffffffffff",
                   "## Validation", "fixture_echo | fixture_echo | 12 | 12"):
        assert needle in body, needle
    # idempotent: a second assembly does not repeat the sections
    again = assemble(dataset, out=tmp_path / "hub").joinpath("README.md").read_text()
    assert again.count("## Citation") == 1 and again.count("## Licenses") == 1


def test_card_license_falls_back_to_other_for_mixed_sources(dataset: Path, tmp_path: Path) -> None:
    man = json.loads((dataset / "manifest.json").read_text())
    man["spec"]["sources"]["im2gps"] = {"reader": "im2gps3k"}
    man["spec"]["card"]["license"] = "other"
    (dataset / "manifest.json").write_text(json.dumps(man))
    folder = publish(dataset, "my-org/x", dry_run=True, out=tmp_path / "hub").folder
    text = (folder / "README.md").read_text()
    assert "license: other" in text and "license_name: mixed-source-licenses" in text
    assert "| IM2GPS3K" in text and "vo2017revisiting" in text


def test_upload_at_the_hub_boundary(tmp_path: Path, token: str) -> None:
    rows = make_rows(60)
    shards = [[r] for r in rows]  # 60 shards + README + manifest = 62 files -> 2 commits
    folder = write_dataset(tmp_path / "datasets", "many", {"default": {"train": shards}}, {"default": FEATURES})
    hub = FakeHub()
    logs: list[str] = []
    res = publish(folder, "my-org/many", private=True, api=hub, out=tmp_path / "hub", log=logs.append)
    create = [c for n, c in hub.calls if n == "create_repo"]
    assert create == [{"repo_id": "my-org/many", "repo_type": "dataset", "private": True, "exist_ok": True, "token": token}]
    assert all(c.get("token") == token for n, c in hub.calls)
    assert hub.names()[:3] == ["create_repo", "repo_info", "list_repo_tree"]
    assert len(hub.commits) == 2 and all(len(c) <= MAX_FILES_PER_COMMIT for c in hub.commits)
    assert [o.path_in_repo for o in hub.commits[-1]][-2:] == ["manifest.json", "README.md"]  # card last
    assert all(c.get("repo_type") == "dataset" for n, c in hub.calls if n == "create_commit")
    assert sorted(hub.files) == sorted(p.relative_to(res.folder).as_posix() for p in res.folder.rglob("*") if p.is_file())
    assert len(res.uploaded) == 62 and res.skipped == [] and res.url.endswith("datasets/my-org/many")
    # the token is never printed, logged or written
    assert all(token not in m for m in logs)
    assert all(token.encode() not in data for data in hub.files.values())
    # a rerun finds everything there and commits nothing
    again = publish(folder, "my-org/many", api=hub, out=tmp_path / "hub")
    assert len(hub.commits) == 2 and again.uploaded == [] and len(again.skipped) == 62


def test_interrupted_upload_resumes(dataset: Path, tmp_path: Path, token: str) -> None:
    rows = make_rows(70)
    folder = write_dataset(tmp_path / "d2", "big", {"default": {"train": [[r] for r in rows]}}, {"default": FEATURES})
    hub = FakeHub(fail_on_commit=2)
    with pytest.raises(UploadError, match=r"commit 2/2 failed .*50 files committed before it; rerun"):
        publish(folder, "org/big", api=hub, out=tmp_path / "hub")
    assert len(hub.files) == 50 and "README.md" not in hub.files  # no card without its shards
    res = publish(folder, "org/big", api=hub, out=tmp_path / "hub")
    assert len(res.skipped) == 50 and len(res.uploaded) == 22 and len(hub.commits) == 2
    assert "README.md" in hub.files


def test_stale_remote_files_are_deleted_and_changed_ones_reuploaded(dataset: Path, tmp_path: Path, token: str) -> None:
    hub = FakeHub()
    publish(dataset, "org/x", api=hub, out=tmp_path / "hub")
    hub.files["data/train-00000-of-00009.parquet"] = b"stale shard of an older build"
    rows = pq.read_table(dataset / "data/train-00001-of-00002.parquet").to_pylist()
    rows[0]["country"] = "Fiji"
    rewrite_shard(dataset, "data/train-00001-of-00002.parquet", rows)
    res = publish(dataset, "org/x", api=hub, out=tmp_path / "hub")
    assert res.deleted == ["data/train-00000-of-00009.parquet"]
    # the card did not change (same rows, same fingerprints): only the shard and the manifest go up
    assert set(res.uploaded) == {"data/train-00001-of-00002.parquet", "manifest.json"}
    assert "data/train-00000-of-00002.parquet" in res.skipped


@pytest.mark.parametrize("repo_id", ["my org/x", "noslash", "a/b/c", "org/a--b", "org/x.git", "-org/x", "org/" + "x" * 100, "org/x;rm"])
def test_bad_repo_id_fails_before_anything(dataset: Path, tmp_path: Path, token: str, repo_id: str) -> None:
    hub = FakeHub()
    with pytest.raises(PublishError, match="repo id"):
        publish(dataset, repo_id, api=hub, out=tmp_path / "hub")
    assert hub.calls == [] and not (tmp_path / "hub").exists()


def test_good_repo_ids() -> None:
    for rid in ("org/x", "My-Org_1/mp16.rand-500k", "a/b"):
        assert check_repo_id(rid) == rid


def test_failed_validation_publishes_nothing(dataset: Path, tmp_path: Path, token: str) -> None:
    rel = "data/train-00000-of-00002.parquet"
    rows = pq.read_table(dataset / rel).to_pylist()
    rows[1]["solution"] = json.dumps({"answer": "somewhere else"})
    rewrite_shard(dataset, rel, rows)
    hub = FakeHub()
    with pytest.raises(ValidationError, match=r"fails validation, nothing was published: reward: .*row 1"):
        publish(dataset, "org/x", api=hub, out=tmp_path / "hub")
    assert hub.calls == [] and not (tmp_path / "hub").exists()


def test_missing_token_fails_before_upload(dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # no login cache
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    hub = FakeHub()
    with pytest.raises(PublishError, match="no hugging face token: set HF_TOKEN"):
        publish(dataset, "org/x", api=hub, out=tmp_path / "hub")
    assert hub.calls == [] and not (tmp_path / "hub").exists()
    # a dry run needs no token
    assert publish(dataset, "org/x", dry_run=True, out=tmp_path / "hub").folder.is_dir()


def test_offline_mode_is_refused_for_a_real_upload(dataset: Path, tmp_path: Path, token: str) -> None:
    # conftest sets HF_HUB_OFFLINE=1; with no api injected, publish must stop before creating HfApi
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE=1"):
        publish(dataset, "org/x", out=tmp_path / "hub")


def test_cli_publish(dataset: Path, tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    out = tmp_path / "hub"
    dry = runner.invoke(app, ["publish", str(dataset), "--repo-id", "org/x", "--dry-run", "--out", str(out)])
    assert dry.exit_code == 0, dry.output
    assert "dry run: assembled 5 files" in dry.output and "nothing uploaded" in dry.output

    bad = runner.invoke(app, ["publish", str(dataset), "--repo-id", "org/x y", "--out", str(out)])
    assert bad.exit_code == 2 and "repo id 'org/x y'" in bad.output

    hub = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", hub)
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False)
    up = runner.invoke(app, ["publish", str(dataset), "--repo-id", "org/x", "--out", str(out)])
    assert up.exit_code == 0, up.output
    assert "published https://huggingface.co/datasets/org/x: 5 files uploaded in 1 commits" in up.output
    assert TOKEN not in up.output
    assert sorted(hub.files) == ["README.md", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet",
                                 "hotspots/train-00000-of-00001.parquet", "manifest.json"]

    rel = "data/train-00000-of-00002.parquet"
    rows = pq.read_table(dataset / rel).to_pylist()
    rows[0]["images"][0]["bytes"] = b"not an image"
    rewrite_shard(dataset, rel, rows)
    failed = runner.invoke(app, ["publish", str(dataset), "--repo-id", "org/x", "--out", str(out)])
    assert failed.exit_code == 1 and "nothing was published" in failed.output
    assert len(hub.commits) == 1


def test_real_sample_build_dry_run_loads(tmp_path: Path) -> None:
    from geodata.engine import build

    res = build("mp16-rand-500k", sets=["sample.n=20"], out=tmp_path / "mp16-rand-500k")
    from geodata.errors import SpecError
    from geodata.registry import reward_for_task

    try:
        reward_for_task("geolocation")
    except SpecError:
        pytest.skip("the geolocation reward is not registered yet (validate would fail on every row)")
    folder = publish(res.path, "org/mp16-rand-500k", dry_run=True, out=tmp_path / "hub").folder
    ds = datasets.load_dataset(str(folder), split="train")
    assert ds.num_rows == 20 and isinstance(ds.features["images"].feature, datasets.Image)
