"""Agent state <-> safetensors (every tensor) + JSON (config, step, optimiser hyper-parameters). Never pickle.

A saved agent directory holds:
  config.json        {"format", "agent_config", "obs_spec", "action_dim"}
  agent.safetensors  "<module>/<name>" for nets and targets, "optim/<opt>/<param index>/<slot>", "log_alpha", "rng"
  agent_state.json   {"step", "optim": {<opt>: {"param_groups": [...], "scalars": {...}}}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

AGENT_FORMAT = "robot_rl.agent/1"
AGENT_CONFIG = "config.json"
AGENT_WEIGHTS = "agent.safetensors"
AGENT_STATE = "agent_state.json"


def flatten_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Agent.state_dict() -> (tensors, json-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    for module, sd in state["modules"].items():
        for name, value in sd.items():
            tensors[f"{module}/{name}"] = value.detach().contiguous().cpu()
    tensors["log_alpha"] = state["log_alpha"].detach().reshape(1).cpu()
    tensors["rng"] = state["rng"].cpu()
    optim_json: dict[str, Any] = {}
    for opt_name, osd in state["optimizers"].items():
        scalars: dict[str, Any] = {}
        for index, slots in osd["state"].items():
            for slot, value in slots.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{opt_name}/{index}/{slot}"] = value.detach().contiguous().cpu()
                else:
                    scalars[f"{index}/{slot}"] = value
        optim_json[opt_name] = {"param_groups": osd["param_groups"], "scalars": scalars}
    return tensors, {"step": state["step"], "optim": optim_json}


def unflatten_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    """Inverse of flatten_state."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    optim_state: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in rest["optim"]}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, opt_name, index, slot = key.split("/", 3)
            optim_state[opt_name].setdefault(int(index), {})[slot] = value
        elif "/" in key:
            module, name = key.split("/", 1)
            modules.setdefault(module, {})[name] = value
    optimizers = {}
    for opt_name, info in rest["optim"].items():
        for key, value in info["scalars"].items():
            index, slot = key.split("/", 1)
            optim_state[opt_name].setdefault(int(index), {})[slot] = value
        optimizers[opt_name] = {"state": optim_state[opt_name], "param_groups": info["param_groups"]}
    return {
        "modules": modules,
        "log_alpha": tensors["log_alpha"].reshape(()),
        "rng": tensors["rng"],
        "optimizers": optimizers,
        "step": int(rest["step"]),
    }


def save_agent_files(path: Path, config: dict[str, Any], state: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tensors, rest = flatten_state(state)
    save_file(tensors, str(path / AGENT_WEIGHTS))
    (path / AGENT_STATE).write_text(json.dumps(rest))
    (path / AGENT_CONFIG).write_text(json.dumps({"format": AGENT_FORMAT, **config}, indent=2))


def load_agent_files(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config dict, state dict) from a saved agent directory; a clear error when it is not one."""
    for name in (AGENT_CONFIG, AGENT_WEIGHTS, AGENT_STATE):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"{path / name} not found; a saved agent directory holds {AGENT_CONFIG}, {AGENT_WEIGHTS}, {AGENT_STATE}"
            )
    config = json.loads((path / AGENT_CONFIG).read_text())
    if config.get("format") != AGENT_FORMAT:
        raise ValueError(f"{path / AGENT_CONFIG}: format {config.get('format')!r}, expected {AGENT_FORMAT!r}")
    try:
        tensors = load_file(str(path / AGENT_WEIGHTS))
    except SafetensorError as e:  # a truncated or overwritten file: name it instead of a bare parser message
        raise ValueError(
            f"{path / AGENT_WEIGHTS} is not a readable safetensors file ({e}); it is truncated or corrupt"
        ) from e
    state = unflatten_state(tensors, json.loads((path / AGENT_STATE).read_text()))
    return config, state
