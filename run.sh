#!/usr/bin/env bash
# robot_rl's one entry point for a fresh machine: sets everything up the first time, then runs.
#
#   ./run.sh train [robot-rl train options]   train in simulation on the default task (pick_cube)
#   ./run.sh test  [pytest options]           run the test suite (ROS tests in a private network namespace)
#   ./run.sh robot-rl ...                     any robot-rl command inside the project environment
#   ./run.sh setup                            only set up
#
# Set-up (idempotent, repeated only when pyproject.toml changes): Debian packages for headless
# EGL rendering, a virtual environment in .venv (override with ROBOT_RL_VENV), the CPU torch
# wheel, and this package with its sim, ROS 2 and test extras.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${ROBOT_RL_VENV:-$root/.venv}
py=${PYTHON:-python3}

log() { printf '\033[1m[robot_rl]\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  log "need root for: $*  (run it yourself, or install sudo)"; return 1; fi; }

system_packages() {
  local need=()
  ldconfig -p | grep -q 'libEGL_mesa.so' || need+=(libegl1 libegl-mesa0 libgl1-mesa-dri)
  ldconfig -p | grep -q 'libGL.so.1' || need+=(libgl1)
  command -v ip >/dev/null || need+=(iproute2)
  command -v unshare >/dev/null || need+=(util-linux)
  command -v tmux >/dev/null || need+=(tmux)  # the keyboard teleop tests type into a real terminal
  command -v nft >/dev/null || need+=(nftables)  # bench fleet / tests/test_fleet.py: packet loss on the virtual network
  command -v iptables >/dev/null || need+=(iptables)  # bench fleet: delay/jitter without netem (its NFQUEUE target)
  command -v g++ >/dev/null || need+=(g++)  # torch.compile's CPU kernels (the learner's pooling; it falls back without)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

python_env() {
  local stamp="$venv/.robot_rl-setup" want
  want=$(cat "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  if [ ! -x "$venv/bin/python" ]; then
    log "creating virtual environment $venv"
    "$py" -m venv "$venv"
  fi
  local pip=("$venv/bin/python" -m pip -q --disable-pip-version-check) setup_log="$venv/setup.log"
  log "installing torch (CPU wheel), then robot_rl[all] — first time only, a few minutes (log: $setup_log)"
  { "${pip[@]}" install -U pip && "${pip[@]}" install "torch==2.13.0" && "${pip[@]}" install -e "$root[all]"; } \
    >"$setup_log" 2>&1 || { grep -v '^WARNING: Location' "$setup_log" | tail -30; log "pip failed (full log: $setup_log)"; exit 1; }
  "$venv/bin/python" -c "import robot_rl, robot_rl_sim, torch, mujoco, zarr" \
    || { log "set-up failed: the imports above did not succeed"; exit 1; }
  echo "$want" > "$stamp"
}

setup() { system_packages; python_env; }

# The ROS 2 pip wheels re-exec Python once with this guard set; children must not inherit it.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE || true
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}

cmd=${1:-help}; [ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  train)
    setup
    exec "$venv/bin/robot-rl" train --task pick_cube "$@" ;;
  test)
    setup
    export HF_HUB_OFFLINE=1 WANDB_MODE=offline
    # All DDS traffic stays inside a private network namespace with only loopback up, and Fast DDS's shared memory
    # in a private /dev/shm: segments left by killed processes on a long-lived machine made ROS tests fail.
    if [ "$(id -u)" = 0 ] && unshare -n -m true 2>/dev/null; then
      set +e
      unshare -n -m bash -c 'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm && ip link set lo up &&
        ip link set lo multicast on && exec "$0" -m pytest "$@"' "$venv/bin/python" "$@"
      rc=$?
    else
      log "no private network namespace available: keeping DDS on localhost instead"
      export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=$(( RANDOM % 90 + 10 ))
      set +e; "$venv/bin/python" -m pytest "$@"; rc=$?
    fi
    set -e
    if [ $rc -eq 5 ]; then log "pytest collected no tests: that is a failure"; exit 1; fi
    exit $rc ;;
  robot-rl) setup; exec "$venv/bin/robot-rl" "$@" ;;
  help|-h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) log "unknown command '$cmd'; choose one of: train, test, robot-rl, setup"; exit 2 ;;
esac
