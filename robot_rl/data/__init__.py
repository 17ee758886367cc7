"""Episode data: the zarr episode store, its in-memory twin, recording, videos and summaries.

from robot_rl.data.store import EpisodeStore, StoreError    # zarr v3 store on disk
from robot_rl.data.memory import MemoryEpisodeStore         # same API in RAM
from robot_rl.data.recorder import EpisodeRecorder          # env steps -> episodes
from robot_rl.data.video import write_mp4, read_mp4         # mp4 (mp4v) files
from robot_rl.data.view import episode_frames               # frames of `robot-rl data view`
from robot_rl.data.summary import summarize                 # `robot-rl data info`
from robot_rl.data.demos import record_scripted_demos       # `robot-rl demos record`
"""
