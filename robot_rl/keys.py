"""Names of observation, action and bookkeeping fields, defined once.

The same strings are used by gymnasium observation dicts, the episode store (`data/<key>`),
replay tensors and ROS topic assembly, so a field is spelled one way everywhere.
"""

from __future__ import annotations

# --- observation -------------------------------------------------------------------------
STATE = "state"  # float32 (D,): proprioception (+ object state in obs_mode="state")
IMAGE_PREFIX = "image_"  # uint8 (H, W, 3) per camera: "image_front", "image_wrist"


def image_key(camera: str) -> str:
    """Observation key of a camera's image, e.g. image_key("front") == "image_front"."""
    return f"{IMAGE_PREFIX}{camera}"


def is_image_key(key: str) -> bool:
    return key.startswith(IMAGE_PREFIX)


def camera_of(key: str) -> str:
    """Inverse of image_key: camera_of("image_front") == "front"."""
    if not is_image_key(key):
        raise ValueError(f"{key!r} is not an image key (expected the prefix {IMAGE_PREFIX!r})")
    return key[len(IMAGE_PREFIX) :]


# --- per-step bookkeeping (episode store and replay) -------------------------------------
ACTION = "action"  # float32 (A,): the action sent to the robot (after arbitration)
BASE_ACTION = "base_action"  # float32 (A,): the base (BC) policy's action; zeros without one
POLICY_ACTION = "policy_action"  # float32 (A,): what the policy proposed (differs when teleop acted)
IS_INTERVENTION = "is_intervention"  # bool: teleop (a person, the scripted operator) replaced the policy's action
REWARD = "reward"  # float32
TERMINATED = "terminated"  # bool: the MDP ended (success or failure); no bootstrap
TRUNCATED = "truncated"  # bool: cut by a time limit; bootstrap
SUCCESS = "success"  # bool: ground-truth (sim) or teleop (a person's or the scripted operator's) success label
T_CAPTURE = "t_capture"  # float64 seconds (monotonic clock) the robot state was captured
NOISE_ACTION = "noise_action"  # float32 (K * A,): the latent action of a noise-steered run (DSRL); only there

STEP_KEYS = (ACTION, BASE_ACTION, POLICY_ACTION, IS_INTERVENTION, REWARD, TERMINATED, TRUNCATED, SUCCESS, T_CAPTURE)
OPTIONAL_STEP_KEYS = (NOISE_ACTION,)  # per-step bookkeeping that only some runs record (never an observation)


def t_capture_key(camera: str) -> str:
    """Store key of a camera frame's capture time, e.g. "t_capture_front"."""
    return f"{T_CAPTURE}_{camera}"
