"""Worker faults: a chunk that kills its worker (native crash / OOM, simulated by SIGKILL).

The fault is planted through geodata's own extension points, so the worker processes see it:
a plugin package (``geodata.plugins`` entry point, on ``sys.path`` / ``PYTHONPATH``) with a
test-only map step ``fault_kill`` that SIGKILLs its own process on one chunk, and a runner
whose image plane SIGKILLs its worker on the row group holding one image. A transient death
is retried to the same bytes as a clean build; one that kills every time ends the build after
``max_retries`` retries with one line naming the chunk, leaving the previous dataset at the
path; a driver killed with ``-9`` leaves no pool worker alive.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geodata import registry
from geodata.engine import build
from geodata.errors import SpecError
from geodata.runners import WorkerLost, get_runner
from geodata.runners.local import LocalRunner
from geodata.dataset.writer import embed_images

PLUGIN = '''
"""Test-only geodata plugin: a map step that kills its own worker process on one chunk."""
import os
import signal
import time

from geodata.registry import step


@step("fault_kill", kind="map")
def fault_kill(df, ctx, *, part: int = 1, times: int = -1, marker: str = "", sleep: float = 0.0):
    """On chunk ``part``: sleep ``sleep`` s, then SIGKILL this process (the first ``times`` times; -1: always).

    Deaths are counted in the file ``marker``; the file ``<marker>.off`` turns the fault off.
    """
    if ctx.part != part or os.path.exists(marker + ".off"):
        return df
    if sleep:
        with open(marker + ".started", "a") as fh:
            fh.write("s")
        time.sleep(sleep)
    done = os.path.getsize(marker) if os.path.exists(marker) else 0
    if times < 0 or done < times:
        with open(marker, "a") as fh:
            fh.write("k")
        os.kill(os.getpid(), signal.SIGKILL)
    return df


def boom(x):
    """A chunk whose step raises a geodata error (not a worker death: never retried)."""
    from geodata.errors import SourceError

    with open(x, "a") as fh:
        fh.write("r")
    raise SourceError(f"{x}: a bad row")
'''

SPEC = """name: faults-{name}
seed: 7
sources:
  mp16: {{reader: mp16}}
steps:
  - step: validate_coords
  - step: fault_kill
    part: {part}
    times: {times}
    marker: {marker}
    sleep: {sleep}
  - step: require_images
  - step: reverse_geocode
  - step: chain_of_region
output:
  map_chunk_rows: 7
  row_group_rows: 16
  shard_max_mb: 0.05
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> Path:
    """The plugin package on ``sys.path`` (spawned workers inherit it) and in ``PYTHONPATH`` (Ray, CLI)."""
    d = tmp_path_factory.mktemp("plugin")
    (d / "geodata_faultplug.py").write_text(PLUGIN)
    info = d / "geodata_faultplug-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: geodata-faultplug\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[geodata.plugins]\nfaultplug = geodata_faultplug\n")
    sys.path.insert(0, str(d))
    old_pp = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(d), *([old_pp] if old_pp else [])])
    importlib.invalidate_caches()
    loaded = registry._loaded
    registry._loaded = False
    registry._load_all()
    assert "fault_kill" in registry.STEPS
    yield d
    registry.STEPS.pop("fault_kill", None)
    registry._loaded = loaded
    sys.path.remove(str(d))
    sys.modules.pop("geodata_faultplug", None)
    if old_pp is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old_pp


@pytest.fixture(scope="module")
def mp16_root(tmp_path_factory) -> Path:
    from geodata.sources.mp16 import write_sample

    root = tmp_path_factory.mktemp("mp16-faults") / "mp16"
    write_sample(root, n=40, layouts=("folder",), bad_rows=False)
    return root


@pytest.fixture()
def env(mp16_root, plugin_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("MP16_ROOT", str(mp16_root))
    return tmp_path


def spec(folder: Path, name: str, *, part: int = 2, times: int = 0, sleep: float = 0.0) -> Path:
    marker = folder / f"{name}.marker"
    p = folder / f"{name}.yaml"
    p.write_text(SPEC.format(name=name, part=part, times=times, marker=marker, sleep=sleep))
    return p


def deaths(specfile: Path) -> int:
    m = specfile.with_suffix(".marker")
    return m.stat().st_size if m.exists() else 0


def files(folder: Path) -> dict[str, bytes]:
    """Every file of a built dataset but build_stats.json (the one place timings go)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "build_stats.json"}


def clean(env: Path, s: Path | None = None, out: str = "clean") -> dict[str, bytes]:
    """A build of spec ``s`` with its fault turned off (the spec, so the bytes, are the same)."""
    s = s or spec(env, "clean", times=0)
    off = s.with_suffix(".marker.off")
    off.touch()
    res = build(s, out=env / out, force=True)
    off.unlink()
    assert res.status == "built" and res.rows > 20
    return files(env / out)


# -- an image hook: the row group holding one image kills its worker --------------------------------
def embed_or_die(bad: str, marker: str, times: int, refs, *rest):
    """``embed_images``, but the worker dies (SIGKILL) on the row group that references ``bad``."""
    if any(bad in (r or []) for r in refs):
        done = os.path.getsize(marker) if os.path.exists(marker) else 0
        if times < 0 or done < times:
            with open(marker, "a") as fh:
                fh.write("k")
            os.kill(os.getpid(), signal.SIGKILL)
    return embed_images(refs, *rest)


class ImageKiller(LocalRunner):
    """A local pool whose image plane dies on the row group of image ``bad`` (``times`` times; -1: always)."""

    def __init__(self, bad: str, marker: Path, times: int, workers: int = 2, **kw) -> None:
        super().__init__(workers, **kw)
        self.hook = functools.partial(embed_or_die, bad, str(marker), times)

    def imap(self, fn, args, describe=None):
        return super().imap(self.hook if fn is embed_images else fn, args, describe)


def an_image(mp16_root: Path) -> str:
    return str(sorted((mp16_root / "images").rglob("*.jpg"))[25].resolve())


# -- local pool ------------------------------------------------------------------------------------
def test_transient_worker_death_is_retried_to_the_same_bytes(env, mp16_root):
    s = spec(env, "once", times=1)  # the worker running map chunk 2 dies once
    ref = clean(env, s)
    res = build(s, out=env / "once", force=True, workers=2)
    assert res.status == "built" and deaths(s) == 1
    assert files(env / "once") == ref
    # the image plane: the worker embedding one row group dies once (the step's fault off)
    s.with_suffix(".marker.off").touch()
    marker = env / "img-once.marker"
    res = build(s, out=env / "img-once", force=True, runner=ImageKiller(an_image(mp16_root), marker, times=1))
    assert res.status == "built" and marker.stat().st_size == 1
    assert files(env / "img-once") == ref


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_killed_from_outside_mid_build_is_retried_to_the_same_bytes(env):
    import threading

    s = spec(env, "outside", times=0, sleep=2)  # chunk 2 sleeps in a worker; nothing kills itself
    ref = clean(env, s)
    killed: list[int] = []

    def kill_a_worker() -> None:
        started = s.with_suffix(".marker.started")
        deadline = time.time() + 60
        while not started.exists() and time.time() < deadline:
            time.sleep(0.05)
        pool = [p for p in _children(os.getpid()) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        if pool:
            os.kill(pool[0], signal.SIGKILL)  # as the OOM killer would
            killed.append(pool[0])

    t = threading.Thread(target=kill_a_worker)
    t.start()
    res = build(s, out=env / "outside", force=True, workers=2)
    t.join()
    assert killed and res.status == "built"
    assert files(env / "outside") == ref


def test_chunk_that_always_kills_its_worker_is_one_line_and_keeps_the_dataset(env):
    from geodata.cli import app

    s = spec(env, "always", times=-1)
    ref = clean(env, s)
    res = CliRunner().invoke(app, ["build", str(s), "--out", str(env / "clean"), "--force", "--workers", "2"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "BrokenProcessPool" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert "map step 'fault_kill' (fault_kill) chunk 2: rows 14..20 of its input, ids " in lines[0]
    assert "its worker process died 3 times (--runner local --workers 2, max_retries=2)" in lines[0]
    assert deaths(s) == 3  # bounded: the first run + max_retries
    assert files(env / "clean") == ref  # the previous dataset is still at the path, untouched
    assert sorted(p.name for p in env.iterdir() if p.is_dir()) == ["clean"]  # no temp folder left


def test_image_that_always_kills_its_worker_names_the_row_group(env, mp16_root):
    marker = env / "img-always.marker"
    bad = an_image(mp16_root)
    with pytest.raises(WorkerLost) as exc:
        build(spec(env, "img", times=0), out=env / "img", force=True,
              runner=ImageKiller(bad, marker, times=-1, max_retries=1))
    msg = str(exc.value)
    assert re.match(r"writing default/train row group \d+: rows \d+\.\.\d+, ids \S+ … \S+, first image /\S+: "
                    r"its worker process died 2 times \(--runner local --workers 2, max_retries=1\)", msg), msg
    assert "\n" not in msg and marker.stat().st_size == 2 and not (env / "img").exists()
    with pytest.raises(SpecError, match="max_retries: must be an integer >= 0, got -1"):
        get_runner("local", 2, max_retries=-1)


# -- a killed driver leaves no worker behind --------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_driver_leaves_no_worker_behind(env):
    s = spec(env, "driver", times=0, sleep=60)  # chunk 2 sleeps in a worker: the build is mid-way
    cmd = [sys.executable, "-c", "from geodata.cli import app; app()"]
    proc = subprocess.Popen([*cmd, "build", str(s), "--out", str(env / "driver"), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = s.with_suffix(".marker.started")
        deadline = time.time() + 60
        while not started.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert started.exists(), "the build never reached the sleeping chunk"
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers  # the pool (and multiprocessing's resource tracker)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 15
    while any(map(_alive, workers)) and time.time() < deadline:
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)], "pool workers outlived the killed driver"


# -- ray ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_session(plugin_dir):
    """One local Ray (2 CPUs) started after PYTHONPATH names the plugin, so its workers find it."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=128 * 1024 * 1024)
    yield ray
    ray.shutdown()


def test_ray_transient_death_retried_and_endless_death_bounded(env, ray_session):
    s = spec(env, "ray-once", times=1)
    ref = clean(env, s, "ray-clean")
    res = build(s, out=env / "ray-once", force=True, runner="ray", workers=2)
    assert res.status == "built" and deaths(s) == 1
    assert files(env / "ray-once") == ref
    s = spec(env, "ray-always", times=-1)
    t = time.time()
    with pytest.raises(WorkerLost) as exc:
        build(s, out=env / "ray-clean", force=True, runner="ray", workers=2)
    msg = str(exc.value)
    assert "\n" not in msg and "map step 'fault_kill' (fault_kill) chunk 2: rows 14..20" in msg
    assert "--runner ray" in msg and "died 3 times" in msg
    assert deaths(s) == 3 and time.time() - t < 120  # bounded, not until an outside timeout
    assert files(env / "ray-clean") == ref
    # an error raised by the step is the build's error, as itself (one line), and is not retried
    from geodata.errors import SourceError
    from geodata_faultplug import boom

    with get_runner("ray", 2) as run, pytest.raises(SourceError, match=r"^\S+runs: a bad row$"):
        list(run.imap(boom, [(str(env / "runs"),)]))
    assert (env / "runs").read_text() == "r"
