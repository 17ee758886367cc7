"""In-process training: the main loop, evaluation, run checkpoints and logging behind `robot-rl train` / `eval`.

    from robot_rl.training.config import TrainConfig
    from robot_rl.training.loop import train
    result = train(TrainConfig(task="pick_cube", steps=10_000, out="runs/pick"))

Submodules are imported where needed (this package import stays light): config, cli_args, loop,
evaluation, checkpoint, curves, wandb_log, env_factory, timers.
"""
