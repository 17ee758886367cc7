"""Contact profiles of the simulated cell: how hard the arm pushes on what blocks it, and how firmly the gripper holds.

`stiff` (the default; every figure in the docs was measured with it): the impedance law pulls the tool towards a
target that may lead it by up to `max_target_lead_m` (6 cm), so a blocked tool is pushed with Kp x that lead,
~300 N down, and the gripper closes with 40 N. A peg that lands on the fixture's top or rim is pushed 10-20 mm into
the hand (`info["grasp_slip_m"]`); then the fingers meet the fixture before the tip is 25 mm deep, and nobody can
finish that episode (`robot-rl failures` counts these as `pushed`).

`bounded` (opt-in, an experiment): the reference ramps over each control period with its velocity fed forward and
stays within 8 mm of the tool (`ImpedanceConfig.ramp`, `max_error_m`: a blocked tool is pushed with ~39 N down, as
error-clipping controllers of real arms do), the gripper closes with 100 N (a Franka Hand holds 70 N continuously,
industrial grippers more), contacts get MuJoCo's no-slip pass (soft contacts otherwise creep under a steady load),
and peg_insert seats the peg at the tool point once the fingers have closed. A full-speed landing on the fixture's
top then moves the peg 2.5 mm in the hand, where `stiff` moves it 19 mm; a full step still moves the tool 25 mm.

Chosen per env (`RobotCellEnv(contact=...)`), or for every env a process makes by ROBOT_RL_SIM_CONTACT, which
`robot-rl train --sim-contact bounded` sets for its run and records in its train_config.json (`robot-rl eval`,
`robot-rl failures` and `--resume` set it again from there; robot_rl.training.env_factory.use_sim_contact). The
profile is also part of the env's `task_meta`, so every episode store records it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mujoco

from robot_rl_sim.controller import ImpedanceConfig

ENV_VAR = "ROBOT_RL_SIM_CONTACT"


@dataclass(frozen=True)
class ContactProfile:
    impedance: ImpedanceConfig
    grip_force_n: float  # the gripper's closing force (its position servo: kp x the finger travel, clamped here)
    noslip_iterations: int  # MuJoCo's no-slip solver passes (0: off)
    reseat_grasp: bool  # peg_insert: put the peg back at the tool point once the fingers have closed on it


PROFILES: dict[str, ContactProfile] = {
    "stiff": ContactProfile(ImpedanceConfig(), grip_force_n=40.0, noslip_iterations=0, reseat_grasp=False),
    "bounded": ContactProfile(
        ImpedanceConfig(ramp=True, max_error_m=0.008), grip_force_n=100.0, noslip_iterations=3, reseat_grasp=True
    ),
}


def contact_profile(name: str | None = None) -> tuple[str, ContactProfile]:
    """The profile called `name`, or the one ROBOT_RL_SIM_CONTACT names, or `stiff`; a clear error for others."""
    chosen = name if name is not None else (os.environ.get(ENV_VAR) or "stiff")
    if chosen not in PROFILES:
        source = "contact" if name is not None else ENV_VAR
        raise ValueError(f"{source}={chosen!r}: choose one of {sorted(PROFILES)}")
    return chosen, PROFILES[chosen]


def apply_to_model(model: mujoco.MjModel, profile: ContactProfile) -> None:
    """Set the gripper's force and the no-slip passes on a compiled cell (robot_rl_sim.scene: the gripper is a
    position servo whose force is kp x the finger's distance from closed, 1 cm on a 2 cm peg)."""
    gripper = model.actuator("gripper").id
    kp = profile.grip_force_n / 0.01
    model.actuator_forcerange[gripper] = (-profile.grip_force_n, profile.grip_force_n)
    model.actuator_gainprm[gripper, 0] = kp
    model.actuator_biasprm[gripper, 1] = -kp
    model.opt.noslip_iterations = profile.noslip_iterations
