"""`robot-rl compare`: runs side by side from their eval.jsonl and train_episodes.jsonl."""

import json
from pathlib import Path

from robot_rl.cli import main
from robot_rl.learner import episode_log
from robot_rl.training.curves import append_eval


def _run(path: Path, successes: list[float], episodes: list[tuple[int, int, int]]) -> Path:
    """A run directory with evaluations every 1 k steps and training episodes (end step, steps, intervened)."""
    path.mkdir()
    for i, rate in enumerate(successes):
        append_eval(path, {"env_steps": 1000 * i, "success_rate": rate, "return_mean": rate, "wall_s": 60.0 * i})
    episode_log.write(
        path,
        [
            {
                "episode": i,
                "env_steps": end,
                "steps": n,
                "interventions": k,
                "success": False,
                "return": 0.0,
                "intervention_rate": k / n,
            }
            for i, (end, n, k) in enumerate(episodes)
        ],
    )
    return path


def _episodes(shares: list[float], per_bin: int = 10, steps: int = 100) -> list[tuple[int, int, int]]:
    eps = []
    for b, share in enumerate(shares):
        eps += [(1000 * b + steps * (j + 1) - 1, steps, round(share * steps)) for j in range(per_bin)]
    return eps + [(1000 * len(shares) + 20, steps, 0)]  # a last, partial bin of one episode


def test_compare_reports_first_step_at_threshold_operator_share_and_writes_a_png(tmp_path, capsys):
    op = _run(tmp_path / "op", [0.0, 0.5, 1.0, 0.9], _episodes([0.3, 0.2, 0.1]))
    noop = _run(tmp_path / "noop", [0.0, 0.3, 0.6, 0.8], _episodes([0.0, 0.0, 0.0]))
    png = tmp_path / "fig" / "cmp.png"
    assert main(["compare", str(op), str(noop), "--out", str(png), "--labels", "with", "without"]) == 0
    out = capsys.readouterr().out
    assert "with     first >= 90%:           2k at 2 min (run: 3k steps, 3 min)" in out  # wall-clock of that eval
    assert "without  first >= 90%:    not by 3k (run: 3k steps, 3 min)" in out
    assert "operator share per 1k steps: 0k:0.30 1k:0.20 2k:0.10\n" in out  # the partial 3k bin is left out
    assert out.count("operator share") == 1  # a run without interventions has no share line
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(["compare", str(op), "--out", str(png), "--json", "--threshold", "0.5", "--bin-steps", "500"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["first_at_threshold"] == 1000 and record["label"] == "op" and record["env_steps"] == 3000
    assert (record["first_wall_s"], record["wall_s"]) == (60.0, 180.0)
    assert [s for s, _ in record["operator_share"]] == [0, 500, 1000, 1500, 2000, 2500]


def test_compare_refuses_what_is_not_a_run_with_a_clear_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")]) == 2
    assert "is not a training run directory: it has no eval.jsonl" in capsys.readouterr().err
    run = _run(tmp_path / "run", [0.0], [])
    assert main(["compare", str(run), "--labels", "a", "b", "--out", str(tmp_path / "x.png")]) == 2
    assert "2 labels for 1 runs" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
