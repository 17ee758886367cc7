"""Rerun views: `robot-rl data view --rerun` and `robot-rl train --viz rerun` write .rrd files whose entities, read
back with rerun's own chunk reader, hold the stored episodes' values; the actor's view queue never blocks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_train import pick_cube_config

from robot_rl import keys
from robot_rl.cli import main
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.store import EpisodeStore
from robot_rl.training.loop import train
from robot_rl.viz.episodes import parse_episodes

rr = pytest.importorskip("rerun")


def _rrd_rows(path: Path) -> dict[str, int]:
    """entity path (no leading /) -> rows logged over time (static rows, e.g. series styles, left out)."""
    rows: dict[str, int] = {}
    for chunk in rr.chunk.RrdReader(path).stream():
        if not chunk.is_static:
            name = chunk.entity_path.lstrip("/")
            rows[name] = rows.get(name, 0) + chunk.num_rows
    return rows


def _rrd_series(path: Path, entity: str) -> dict[int, float]:
    """step -> value of one Scalars entity, read back from the file."""
    out: dict[int, float] = {}
    for chunk in rr.chunk.RrdReader(path).stream():
        if chunk.entity_path.lstrip("/") != entity or chunk.is_static:
            continue
        batch = chunk.to_record_batch()
        steps = batch.column(batch.schema.get_field_index("step")).to_pylist()
        values = batch.column(batch.schema.get_field_index("Scalars:scalars")).to_pylist()
        out |= {int(s): float(v[0]) for s, v in zip(steps, values)}
    return out


def _rrd_texts(path: Path, entity: str = "events") -> list[str]:
    texts = []
    for chunk in rr.chunk.RrdReader(path).stream():
        if chunk.entity_path.lstrip("/") == entity:
            batch = chunk.to_record_batch()
            texts += [t[0] for t in batch.column(batch.schema.get_field_index("TextLog:text")).to_pylist()]
    return texts


@pytest.fixture(scope="module")
def pixel_store(tmp_path_factory):
    """3 scripted pick_cube episodes from the real sim, with both cameras (128 px)."""
    path = tmp_path_factory.mktemp("viz") / "demos.zarr"
    record_scripted_demos(DemoConfig(task="pick_cube", episodes=3, out=path, obs_mode="pixels", progress=False))
    return path


def test_data_view_rerun_writes_every_step_of_every_episode_with_the_stored_values(pixel_store, tmp_path, capsys):
    store = EpisodeStore.open(pixel_store)
    out = tmp_path / "view.rrd"
    assert main(["data", "view", str(pixel_store), "--rerun", "--save", str(out)]) == 0
    assert f"wrote {out}: episodes all (3), {store.n_steps} steps, cameras front, wrist" in capsys.readouterr().out
    rows = _rrd_rows(out)
    n = store.n_steps
    for cam in ("front", "wrist"):
        assert rows[f"cameras/{cam}"] == n
    for dim in ("dx", "dy", "dz", "gripper"):
        assert rows[f"action/{dim}/executed"] == n and rows[f"action/{dim}/policy"] == n
        assert f"action/{dim}/base" not in rows  # no base policy in scripted demos
    for signal in ("reward", "intervention", "success"):
        assert rows[f"signals/{signal}"] == n
    assert rows["episode/index"] == n
    # the values are the store's, at the store's rows; episode boundaries as text events
    gripper = _rrd_series(out, "action/gripper/executed")
    success = _rrd_series(out, "signals/success")
    index = _rrd_series(out, "episode/index")
    for i in range(store.n_episodes):
        episode, rows_i = store.get_episode(i), range(*store.episode_slice(i).indices(n))
        assert [gripper[r] for r in rows_i] == pytest.approx(episode[keys.ACTION][:, 3].tolist(), abs=1e-6)
        assert [success[r] for r in rows_i] == episode[keys.SUCCESS].astype(float).tolist()
        assert {index[r] for r in rows_i} == {float(i)}
    texts = _rrd_texts(out)
    assert texts[0] == "episode 0 starts" and len(texts) == 2 * store.n_episodes
    assert texts[1].startswith("episode 0 ends: success, ")


def test_data_view_rerun_logs_only_the_episodes_asked_for_and_refuses_bad_lists(pixel_store, tmp_path, capsys):
    store = EpisodeStore.open(pixel_store)
    out = tmp_path / "one.rrd"
    assert main(["data", "view", str(pixel_store), "--rerun", "--episodes", "-1", "--save", str(out)]) == 0
    last = store.episode_slice(2)
    steps = sorted(_rrd_series(out, "signals/reward"))
    assert steps == list(range(last.start, last.stop))
    refusals = {
        ("--episodes", "0,7", "--save", str(out)): "7 is out of range; the store has 3 episodes",
        ("--save", str(tmp_path / "x.mp4")): "must be an .rrd file path",
    }
    for extra, message in refusals.items():
        assert main(["data", "view", str(pixel_store), "--rerun", *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["data", "view", str(pixel_store)]) == 2
    assert "needs --episode K for an mp4, or --rerun" in capsys.readouterr().err


def test_episode_lists_parse_to_sorted_unique_indices():
    assert parse_episodes(None, 4) == [0, 1, 2, 3]
    assert parse_episodes("3,0-1,1", 10) == [0, 1, 3]
    assert parse_episodes("-2,5-7", 10) == [5, 6, 7, 8]
    for bad in ("a", "4-2", "10"):
        with pytest.raises(ValueError):
            parse_episodes(bad, 10)


def test_train_viz_rerun_logs_every_env_step_the_learner_and_evaluations(tmp_path):
    out = tmp_path / "run"
    cfg = pick_cube_config(out, 100, eval_episodes=1, viz="rerun")
    train(cfg)
    rrd = out / "viz.rrd"
    rows = _rrd_rows(rrd)
    assert rows["action/dx/executed"] == 100 and rows["action/dx/policy"] == 100 and rows["signals/reward"] == 100
    assert not any(k.startswith("cameras/") for k in rows)  # state observations: no cameras
    learner = [k for k in rows if k.startswith("learner/")]
    assert any("critic" in k for k in learner), sorted(rows)
    assert sorted(_rrd_series(rrd, "eval/success_rate")) == [0, 100]  # the first and the last evaluation
    # executed actions are the ones stored in <run>/episodes, row for row
    store = EpisodeStore.open(out / "episodes")
    dx = _rrd_series(rrd, "action/dx/executed")
    stored_dx = np.concatenate([e[keys.ACTION][:, 0] for e in store.iter_episodes()])
    assert [dx[r] for r in range(store.n_steps)] == pytest.approx(stored_dx.tolist(), abs=1e-6)
    assert len(_rrd_texts(rrd)) == 2 * store.n_episodes


class _SlowLog:
    """Stands for a RerunLog whose sink stalls (a viewer gone slow): every call takes 50 ms."""

    def __init__(self):
        self.calls, self.closed = [], False

    def step(self, **kwargs):
        time.sleep(0.05)
        self.calls.append(kwargs)

    def close(self):
        self.closed = True


def test_the_view_thread_never_blocks_the_caller_and_drops_what_does_not_fit():
    from robot_rl.viz.stream import VizThread

    log = _SlowLog()
    viz = VizThread(log, max_queue=4)
    image = np.zeros((128, 128, 3), np.uint8)
    t0 = time.perf_counter()
    accepted = sum(viz.submit("step", step=i, images={"front": image}) for i in range(40))
    elapsed_s = time.perf_counter() - t0
    assert elapsed_s < 0.05, elapsed_s  # 40 submits in far less than one 50 ms log call
    assert accepted + viz.dropped == 40 and 4 <= accepted <= 6
    image[:] = 255  # the caller reuses its buffer: what was queued is a copy
    viz.close()
    assert log.closed and len(log.calls) == accepted
    assert all(int(c["images"]["front"].max()) == 0 for c in log.calls)
    assert threading.active_count() >= 1 and not viz._thread.is_alive()
