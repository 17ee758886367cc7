"""Rerun views of episodes and training (`robot-rl data view --rerun`, `robot-rl train --viz rerun`, the actor
node's `viz:=rerun`): one entity layout (`robot_rl.viz.rerun_log`), a whole stored episode logged in bulk
(`robot_rl.viz.episodes`), and a queue and a thread that keep logging off a control loop (`robot_rl.viz.stream`).

rerun-sdk is imported only inside these modules' functions, so nothing else pays for it (install the `interop`
extra)."""

VIZ_MODES = ("none", "rerun")  # --viz of `robot-rl train`, viz:= of the actor node
