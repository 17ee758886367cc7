"""Peer side of `robot-rl bench sim`: gym-hil's PandaPickCubeBase-v0 steps/s, one JSON line per mode.

A standalone script run by the peer's Python (`.peers-venv/bin/python peer_gym_hil.py ...`); it
imports gym-hil and gymnasium from that environment and the sibling module `timing` for the very
loop our side is timed with. Nothing in robot_rl imports this file.

gym-hil 0.1.14 registers `gym_hil/PandaPickCubeBase-v0` (entry point
`gym_hil.envs:PandaPickCubeGymEnv`, max_episode_steps=100); the constructor's `image_obs` flag
adds the `pixels` dict with the `front` and `wrist` (handcam_rgb) cameras rendered at the default
GymRenderingSpec of 128x128 on every step. The action is a 7-d Box in [-1, 1].
"""

from __future__ import annotations

import argparse
import json
import os

ENV_ID = "gym_hil/PandaPickCubeBase-v0"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"Time {ENV_ID} with random actions (peer side of bench sim).")
    parser.add_argument("--steps", type=int, default=200, help="timed env steps per mode")
    parser.add_argument("--warmup-steps", type=int, default=20, help="untimed steps before timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--image-obs",
        choices=("true", "false"),
        nargs="+",
        default=["true", "false"],
        help="which gym-hil observation modes to time (image_obs=True renders both cameras each step)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    # Imported here, not at the top, so that robot_rl can import this module (its package walk does) without
    # the peer packages or this folder on sys.path: `timing` is the sibling module when run as a script.
    import gym_hil  # noqa: F401  (registers the gym_hil/ ids)
    import gymnasium as gym
    from timing import available_cores, progress, time_env_steps

    for flag in args.image_obs:
        image_obs = flag == "true"
        env = gym.make(ENV_ID, image_obs=image_obs)
        progress(f"[peer gym-hil] {ENV_ID} image_obs={image_obs}: {args.steps} steps after {args.warmup_steps} warm-up")
        timing = time_env_steps(env, steps=args.steps, warmup_steps=args.warmup_steps, seed=args.seed)
        env.close()
        print(
            json.dumps(
                {
                    "env": ENV_ID,
                    "image_obs": image_obs,
                    "steps_per_s": timing.steps_per_s,
                    "steps": timing.steps,
                    "episodes": timing.episodes,
                    "max_episode_steps": env.spec.max_episode_steps if env.spec else None,
                    "cores": available_cores(),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
