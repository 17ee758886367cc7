"""The learner: one ROS-free learning core (`core.Learner`) run by `robot-rl train` and by the learner node.

core_config.py  LearnerCoreConfig: the core's settings, inherited by TrainConfig and LearnerConfig (declared once)
core.py         Learner: agent building and resume, replays (online, demos, corrections), sampler, update budget,
                the take-over penalty (applied once, as episodes enter replay), checkpoints, the episode log
budget.py       the update budget: utd_ratio updates per received env step once replay holds enough data
episode_log.py  <out>/train_episodes.jsonl (one schema for both processes) and its rolling success-rate curve
config.py       LearnerConfig (the node's parameters) and the agent config it trains with
ledger.py       per-actor episode counts: which episode is next from each actor (ordering, dedupe, gaps),
                and the per-step source columns that make those counts recoverable from the episode store
episode_layout.py, episodes.py, refusals.py  what an incoming episode must look like, and refusing it for good
checkpoint.py   checkpoints (save, find, verify) with RunCounters and the rng state; corrections.py  learning from
                take-overs (HIL-SERL replay rows, RLIF penalty); timers.py, wandb_log.py  section timers, wandb
service.py      LearnerService: the node's shell around the core -- ingest order, acks, decoding, refusals

The ROS shell (`robot_rl.nodes.learner`) only moves bytes between the service and the topics of
`robot_rl.ros.protocol`.
"""
