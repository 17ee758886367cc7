"""In-process training: the main loop, its env, evaluation and resume behind `robot-rl train` / `eval`.

    from robot_rl.training.config import TrainConfig
    from robot_rl.training.loop import train
    result = train(TrainConfig(task="pick_cube", steps=10_000, out="runs/pick"))

Submodules are imported where needed (this package import stays light): config, cli_args, loop (the main
loop), run (its set-up, evaluation, status line), evaluation, resume, curves, env_factory, intervention (the
simulated operator), residual (base policies). The learning itself is `robot_rl.learner.core.Learner`, shared with
the learner node, with what it needs (checkpoints, corrections, timers, wandb) under `robot_rl.learner`.
"""
