"""Time a LeRobotDataset round trip against reading the store: `python -m robot_rl.data.lerobot_bench STORE`.

Four timings, each the best of `--repeats` runs (the page cache warm after the first):

* read: open the store and decode every array of every episode (`EpisodeStore.iter_episodes`: every chunk
  read, CRC-checked and decompressed, images included) -- the issue's baseline;
* read_bulk: the same arrays read in one `EpisodeStore.get_rows` call, each chunk decoded once (`iter_episodes`
  decodes an image chunk that two episodes share twice) -- the least a full read costs, reported beside it;
* export: `export_lerobot` to a new directory (parquet, stats, one H.264 mp4 per camera);
* import: `import_lerobot` of that directory to a new store (mp4 decoding, zarr writing).

Wall seconds and CPU seconds (all threads of the process; steadier than wall time on a shared machine) are both
reported; the ratio is of wall times.

Then the imported store is compared with the original: every non-image array equal, every image frame's PSNR
(the issue's target: >= 40 dB, and export + import in under 2x the read). Prints one JSON line (`--table` adds
a readable line); exit 1 when the arrays differ or a frame is under 40 dB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.lerobot_check import psnr_db
from robot_rl.data.lerobot_export import export_lerobot
from robot_rl.data.lerobot_import import import_lerobot
from robot_rl.data.store import EpisodeStore

MIN_PSNR_DB = 40.0
_NEW_STORE_META = ("created_utc",)  # set by EpisodeStore.create for the imported store itself


def read_all(store_path: Path) -> int:
    """Open the store and decode every array of every episode; returns the rows read."""
    store = EpisodeStore.open(store_path, mode="r")
    return sum(len(episode[keys.ACTION]) for episode in store.iter_episodes())


def read_bulk(store_path: Path) -> int:
    """Open the store and read every array's committed rows at once; returns the rows read."""
    store = EpisodeStore.open(store_path, mode="r")
    return len(store.get_rows(0, store.n_steps)[keys.ACTION])


def _best_s(fn: Callable[[int], object], repeats: int) -> tuple[float, float]:
    """(wall s, CPU s of this process's threads), each the least over `repeats` runs."""
    wall, cpu = [], []
    for i in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def compare_stores(original: Path, imported: Path) -> dict:
    """Non-image keys equal, image PSNR per frame; {"equal": bool, "min_psnr_db": {key: dB}, "differ": [...]}."""
    a, b = EpisodeStore.open(original, mode="r"), EpisodeStore.open(imported, mode="r")
    differ, psnr = [], {}
    for key in a.spec:
        ours, theirs = a.get_key(key), b.get_key(key) if key in b.spec else None
        if theirs is None or ours.shape != theirs.shape:
            differ.append(key)
        elif keys.is_image_key(key):
            psnr[key] = round(float(psnr_db(ours, theirs).min()), 2)
        elif not np.array_equal(ours, theirs):
            differ.append(key)
    fixed = {k: v for k, v in a.meta.items() if k not in _NEW_STORE_META}
    same_meta = fixed == {k: v for k, v in b.meta.items() if k not in _NEW_STORE_META}
    same_meta = same_meta and np.array_equal(a.episode_ends, b.episode_ends)
    return {"equal": not differ and same_meta, "differ": differ, "min_psnr_db": psnr}


def bench(store_path: Path, repeats: int = 3, work: Path | None = None) -> dict:
    """The timings and the comparison of the module docstring, as one dict."""
    store = EpisodeStore.open(store_path, mode="r")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        tmp = Path(tmp)
        read = _best_s(lambda i: read_all(store_path), repeats)
        bulk = _best_s(lambda i: read_bulk(store_path), repeats)

        def export(i: int) -> None:
            shutil.rmtree(tmp / "ds", ignore_errors=True)
            export_lerobot(store_path, tmp / "ds")

        def imp(i: int) -> None:
            shutil.rmtree(tmp / "back", ignore_errors=True)
            import_lerobot(tmp / "ds", tmp / "back")

        exported = _best_s(export, repeats)
        imported = _best_s(imp, repeats)
        check = compare_stores(store_path, tmp / "back")
    timings = {"read": read, "read_bulk": bulk, "export": exported, "import": imported}
    return {
        "store": str(store_path),
        "episodes": store.n_episodes,
        "steps": store.n_steps,
        **{f"{name}_s": round(wall, 3) for name, (wall, _) in timings.items()},
        **{f"{name}_cpu_s": round(cpu, 3) for name, (_, cpu) in timings.items()},
        "round_trip_over_read": round((exported[0] + imported[0]) / read[0], 2),
        "round_trip_over_read_bulk": round((exported[0] + imported[0]) / bulk[0], 2),
        **check,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="an episode store (e.g. 20 pixel demos from `robot-rl demos record`)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing; the best is reported (default 3)")
    parser.add_argument("--table", action="store_true", help="also print a readable line")
    args = parser.parse_args(argv)
    result = bench(args.store, max(1, args.repeats))
    print(json.dumps(result))
    if args.table:
        psnr = min(result["min_psnr_db"].values(), default=float("inf"))
        print(
            f"{result['episodes']} episodes, {result['steps']} steps: read {result['read_s']:.2f} s, export "
            f"{result['export_s']:.2f} s, import {result['import_s']:.2f} s: round trip "
            f"{result['round_trip_over_read']:.1f}x the read ({result['round_trip_over_read_bulk']:.1f}x a bulk read, "
            f"{result['read_bulk_s']:.2f} s); arrays {'equal' if result['equal'] else 'DIFFER'}, "
            f"images >= {psnr:.1f} dB"
        )
    ok = result["equal"] and all(v >= MIN_PSNR_DB for v in result["min_psnr_db"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
