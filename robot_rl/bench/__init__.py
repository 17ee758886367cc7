"""Benchmarks: against the peer projects, side by side in one run (`robot-rl bench sim | learner`), and the ROS 2
control loop's timing (`robot-rl bench ros`).

    timing.py            the timing loops both sides use (standard library only)
    step_timing.py       wall and thread-CPU time of every control step's action (`eval --bench`, `bc eval --bench`)
    sim.py               env steps/s: robot_rl/PickCube-v0 vs gym-hil PandaPickCubeBase-v0
    learner.py           critic updates/s: our agent vs LeRobot 0.4.4's SAC learner
    ros.py               control jitter, obs->command latency, inference, weights broadcast, learner ingest
                         (its ROS side: robot_rl/nodes/bench_probe.py)
    peer.py              runs a peer script with the peers' Python and reads its JSON lines
    peer_gym_hil.py      standalone, peers venv only: times gym-hil
    peer_lerobot_sac.py  standalone, peers venv only: times LeRobot's learner step
    peer_lerobot_dataset.py  standalone, peers venv only: LeRobot's LeRobotDataset reads our export
                         (compared with the store by robot_rl/data/lerobot_check.py)

The peers are never dependencies: only the `peer_*.py` scripts import them, in their own process.
"""
