"""In-process training: the main loop, evaluation, run checkpoints and logging behind `robot-rl train` / `eval`.

    from robot_rl.training.config import TrainConfig
    from robot_rl.training.loop import train
    result = train(TrainConfig(task="pick_cube", steps=10_000, out="runs/pick"))

Submodules are imported where needed (this package import stays light): config, cli_args, loop (the main
loop), run (its set-up, evaluation, status line), evaluation, checkpoint, curves, wandb_log, env_factory, timers.
The learning itself is `robot_rl.learner.core.Learner`, shared with the learner node.
"""
