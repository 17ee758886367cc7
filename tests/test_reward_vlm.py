"""VLM reward classifiers with a tiny SigLIP built from a config (random weights, a word-level tokenizer), saved to
a local directory as a real checkpoint would be: zero-shot scoring, a linear head fine-tuned on sim frames,
save / load, and no download ever."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from robot_rl.cli import main as cli_main  # noqa: E402
from robot_rl.reward.collect import CollectConfig, collect_reward_data  # noqa: E402
from robot_rl.reward.evaluate import load_predictor  # noqa: E402
from robot_rl.reward.frames import load_frames  # noqa: E402
from robot_rl.reward.vlm import VLM, VLMTrainConfig, train_vlm_classifier  # noqa: E402

WORDS = "a robot gripper holding red cube lifted above the table empty".split()
PROMPT = "a robot gripper holding a red cube lifted above the table"


def _make_tiny_siglip(path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipModel

    torch.manual_seed(0)
    vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    cfg = SiglipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=None,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
    )
    SiglipModel(cfg).save_pretrained(path)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", model_max_length=16
    ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward_vlm")
    store = root / "store"
    collect_reward_data(
        CollectConfig(
            "pick_cube",
            store,
            episodes=10,
            mix=("expert", "no_grasp", "expert", "drop", "random"),
            episode_steps=30,
            image_size=64,
            progress=False,
        )
    )
    return {"root": root, "store": store, "model": _make_tiny_siglip(root / "tiny_siglip")}


def _average_precision(probs, labels):
    order = np.argsort(-probs)
    hits = labels[order].astype(bool)
    return float(np.mean((np.cumsum(hits) / np.arange(1, len(hits) + 1))[hits]))


def test_the_tiny_siglip_loads_from_its_directory_and_embeds_frames_and_prompts(setup):
    vlm = VLM(str(setup["model"]))
    frames = load_frames([setup["store"]], ("front",))
    emb = vlm.image_embeddings(frames.images["image_front"][:5])
    assert emb.shape == (5, 32) and torch.allclose(emb.norm(dim=-1), torch.ones(5), atol=1e-5)
    text = vlm.text_embedding(PROMPT)
    assert text.shape == (32,) and not torch.allclose(text, vlm.text_embedding("empty table"))


def test_a_model_that_is_neither_local_nor_cached_is_refused_without_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        VLM("google/siglip-base-patch16-224")


def test_a_linear_head_on_vlm_embeddings_learns_success_that_zero_shot_random_weights_miss(setup):
    common = dict(
        data=(str(setup["store"]),),
        model=str(setup["model"]),
        cameras=("front", "wrist"),
        prompt=PROMPT,
        steps=300,
        progress=False,
    )
    zero = train_vlm_classifier(VLMTrainConfig(out=setup["root"] / "zero", zero_shot=True, **common))
    linear = train_vlm_classifier(VLMTrainConfig(out=setup["root"] / "linear", **common))
    frames = load_frames([setup["store"]], ("front", "wrist"))
    held = json.loads((setup["root"] / "linear" / "report.json").read_text())
    assert held["mode"] == "linear" and zero["mode"] == "zero_shot"
    ap = {}
    for name in ("zero", "linear"):
        predictor = load_predictor(setup["root"] / name)
        probs = np.concatenate(
            [predictor.probs({k: v[i : i + 100] for k, v in frames.images.items()}) for i in range(0, len(frames), 100)]
        )
        ap[name] = _average_precision(probs, frames.labels)
    base_rate = float(frames.labels.mean())
    assert ap["linear"] > max(0.8, ap["zero"] + 0.2), (ap, base_rate)
    assert linear["held_out_at_threshold"]["precision"] >= 0.8, linear["held_out_at_threshold"]


def test_robot_rl_reward_train_and_eval_run_a_vlm_classifier_from_a_local_path(setup, capsys):
    out = setup["root"] / "cli"
    assert (
        cli_main(
            [
                "reward",
                "train",
                "--kind",
                "vlm",
                "--vlm",
                str(setup["model"]),
                "--data",
                str(setup["store"]),
                "--out",
                str(out),
                "--steps",
                "100",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "held-out" in capsys.readouterr().out
    assert cli_main(["reward", "eval", str(out), "--data", str(setup["store"]), "--latency-calls", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 300 and report["latency_batch1"]["n"] == 5
    assert cli_main(["reward", "train", "--kind", "vlm", "--data", str(setup["store"]), "--out", str(out)]) == 2
