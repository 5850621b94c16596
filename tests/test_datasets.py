"""Dataset readers on tiny fabricated trees: every layout, its splits, sampling, evaluation order."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from media import texture, write_video

from streamdeblur.core.errors import InputError, UsageError
from streamdeblur.train import datasets
from streamdeblur.train.datasets import Sampler, detect, dihedral, eval_clips, held_out, open_dataset


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def frame(seed: int, w: int = 40, h: int = 32) -> np.ndarray:
    return texture(w, h, seed=seed)


def pair_dirs(root: Path, blur: str, sharp: str, names: list[str], seed: int = 0) -> None:
    """Matching frames in root/blur and root/sharp; the blurry one is the sharp one inverted."""
    for i, name in enumerate(names):
        image = frame(seed + i)
        write_png(root / sharp / name, image)
        write_png(root / blur / name, 255 - image)


def names(data: datasets.Dataset) -> list[str]:
    return [c.name for c in data.clips]


def test_gopro(tmp_path: Path) -> None:
    for split, seqs in (("train", ["GOPR0372_07_00", "GOPR0374_11_00"]), ("test", ["GOPR0384_11_00"])):
        for seq in seqs:
            pair_dirs(tmp_path / split / seq, "blur", "sharp", ["000001.png", "000002.png", "000003.png"])
            for name in ("000001.png", "000002.png", "000003.png"):
                write_png(tmp_path / split / seq / "blur_gamma" / name, frame(99))
    assert detect(tmp_path) == "gopro"
    train, test = open_dataset(str(tmp_path), "train"), open_dataset(f"gopro:{tmp_path}", "test")
    assert names(train) == ["GOPR0372_07_00", "GOPR0374_11_00"] and names(test) == ["GOPR0384_11_00"]
    assert len(open_dataset(str(tmp_path), "all").clips) == 3
    clip = test.clips[0]
    assert len(clip) == 3 and np.array_equal(clip.blurry[1](), 255 - clip.sharp[1]())
    gamma = open_dataset(f"gopro-gamma:{tmp_path}", "test").clips[0]
    assert not np.array_equal(gamma.blurry[0](), clip.blurry[0]())  # blur_gamma/, not blur/
    assert names(open_dataset(f"gopro:{tmp_path / 'train'}", "test")) == names(train)  # one split folder


def test_reds_unpacked_one_folder_down(tmp_path: Path) -> None:
    for split in ("train", "val"):
        for seq in ("000", "001"):
            pair_dirs(tmp_path / split, f"{split}_blur/{seq}", f"{split}_sharp/{seq}", ["00000000.png", "00000001.png"])
    assert detect(tmp_path) == "reds"
    assert names(open_dataset(str(tmp_path), "train")) == ["train/000", "train/001"]
    assert names(open_dataset(str(tmp_path), "test")) == ["val/000", "val/001"]


def test_dvd_uses_the_authors_test_videos(tmp_path: Path) -> None:
    for seq in ("IMG_0003", "IMG_0010", "720p_240fps_1"):
        pair_dirs(tmp_path / seq, "input", "GT", ["00000.jpg", "00001.jpg"])
    assert detect(tmp_path) == "dvd"
    assert names(open_dataset(str(tmp_path), "test")) == ["IMG_0003"]
    assert names(open_dataset(f"dvd:{tmp_path}", "train")) == ["720p_240fps_1", "IMG_0010"]


def test_paired_flat_nested_and_split(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    pair_dirs(flat, "blur", "sharp", [f"img{i:02d}.png" for i in range(40)])  # 31 and 33 are held out
    pair_dirs(flat, "blur/clipA", "sharp/clipA", ["1.png", "2.png", "3.png"])
    assert detect(flat) == "paired"
    train, test = open_dataset(str(flat), "train"), open_dataset(str(flat), "test")
    everything = names(open_dataset(str(flat), "all"))
    assert sorted(names(train) + names(test)) == sorted(everything) and not set(names(train)) & set(names(test))
    assert names(test) == ["img31.png", "img33.png"]
    assert len(next(c for c in open_dataset(str(flat), "all").clips if c.name == "clipA")) == 3
    split = tmp_path / "split"
    pair_dirs(split / "train", "blur", "sharp", ["a.png", "b.png"])
    pair_dirs(split / "test", "blur", "sharp", ["c.png"])
    assert names(open_dataset(str(split), "train")) == ["a.png", "b.png"]
    assert names(open_dataset(str(split), "test")) == ["c.png"]


def test_paired_names_must_match(tmp_path: Path) -> None:
    pair_dirs(tmp_path, "blur/s", "sharp/s", ["1.png", "2.png"])
    (tmp_path / "blur" / "s" / "2.png").rename(tmp_path / "blur" / "s" / "3.png")
    with pytest.raises(InputError, match="do not match"):
        open_dataset(f"paired:{tmp_path}", "all")


def test_sharp_images_and_videos_split_by_name_hash(tmp_path: Path) -> None:
    for i in range(30):
        write_png(tmp_path / "photos" / f"p{i:02d}.jpg", frame(i))
    write_video(tmp_path / "clip.mp4", [frame(i, 48, 32) for i in range(6)])
    assert detect(tmp_path) == "sharp"
    train, test = open_dataset(str(tmp_path), "train"), open_dataset(str(tmp_path), "test")
    assert train.synthetic and all(c.blurry is None and len(c) == 1 for c in train.clips)
    assert {c.name for c in test.clips} == {
        f"photos/p{i:02d}.jpg" for i in range(30) if held_out(f"photos/p{i:02d}.jpg")
    }
    assert len(train.clips) + len(test.clips) == 30 and 0 < len(test.clips) < 10
    assert (train.videos, test.videos) == (([tmp_path / "clip.mp4"], []) if not held_out("clip.mp4") else ([], []))
    assert held_out("photos/p00.jpg") == held_out("photos/p00.jpg") and isinstance(held_out("x"), bool)


def test_a_wildcard_picks_files_and_keeps_the_folders_split(tmp_path: Path) -> None:
    for i in range(30):
        write_png(tmp_path / "photos" / f"p{i:02d}.png", frame(i))
        write_png(tmp_path / "photos" / f"q{i:02d}.jpg", frame(i))
    for split in ("train", "test"):
        folder = open_dataset(f"sharp:{tmp_path}/photos", split)
        picked = open_dataset(f"sharp:{tmp_path}/photos/*.png", split)
        assert picked.spec == f"sharp:{tmp_path}/photos/*.png" and picked.root == folder.root
        assert [c.name for c in picked.clips] == [c.name for c in folder.clips if c.name.startswith("p")]
        assert 0 < len(picked.clips) < len(folder.clips)
    write_png(tmp_path / "photos" / "deeper" / "d.png", frame(0))
    assert "deeper/d.png" not in {c.name for c in open_dataset(f"sharp:{tmp_path}/photos/*.png", "all").clips}
    assert "deeper/d.png" in {c.name for c in open_dataset(f"sharp:{tmp_path}/photos/**/*.png", "all").clips}
    with pytest.raises(UsageError, match="wildcard pattern needs sharp: or average:"):
        open_dataset(f"paired:{tmp_path}/*")
    with pytest.raises(InputError, match="no data found"):
        open_dataset(f"sharp:{tmp_path}/photos/*.tif", "all")


def test_average_pairs_are_linear_light_means(tmp_path: Path) -> None:
    frames = [frame(i, 48, 32) for i in range(9)]
    write_video(tmp_path / "clip.mp4", frames, pix_fmt="yuv444p")
    data = open_dataset(f"average:{tmp_path}", "all", average=3)
    [(name, pairs)] = list(eval_clips(data))
    pairs = list(pairs)
    assert name == "clip.mp4" and len(pairs) == 3
    decoded = [f for f in datasets._video_frames(tmp_path / "clip.mp4")]
    for k, (blurry, sharp) in enumerate(pairs):
        group = np.stack(decoded[3 * k : 3 * k + 3]).astype(np.float64) / 255
        expected = np.round((group**2.2).mean(0) ** (1 / 2.2) * 255)
        assert np.abs(blurry.astype(np.float64) - expected).max() <= 1
        assert np.array_equal(sharp, decoded[3 * k + 1])
    with pytest.raises(UsageError, match="odd"):
        open_dataset(f"average:{tmp_path}", "all", average=4)


def test_sampler_crops_pairs_and_sequences_alike(tmp_path: Path) -> None:
    pair_dirs(tmp_path / "train" / "SEQ", "blur", "sharp", [f"{i:06d}.png" for i in range(5)])
    data = open_dataset(str(tmp_path), "train")
    sampler = Sampler(data, frames=3, crop=16, margin=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        sample = sampler(rng)
        assert sample.sharp.shape == sample.blurry.shape == (3, 16, 16, 3)
        assert np.array_equal(sample.blurry, 255 - sample.sharp)  # the same window of both
    first = Sampler(data, 3, 16, 0)(np.random.default_rng(1))
    again = Sampler(data, 3, 16, 0)(np.random.default_rng(1))
    assert np.array_equal(first.sharp, again.sharp)
    with pytest.raises(InputError, match="6 consecutive frames"):
        Sampler(data, frames=6, crop=16, margin=0)


def test_dihedral_gives_the_eight_turns_and_mirrors_of_a_square() -> None:
    frames = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    turns = [np.rot90(f, r, axes=(1, 2)) for f in (frames, frames[:, :, ::-1]) for r in range(4)]
    views = [dihedral(frames, k) for k in range(8)]
    for view in views:
        assert sum(np.array_equal(view, t) for t in turns) == 1
    assert len({v.tobytes() for v in views}) == 8


def test_sampler_for_synthetic_blur_adds_the_margin(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", frame(0, 100, 90))
    write_video(tmp_path / "v.mp4", [frame(i, 64, 48) for i in range(8)])
    data = open_dataset(str(tmp_path), "all")
    sampler = Sampler(data, frames=2, crop=32, margin=10)
    kinds = set()
    for seed in range(20):
        sample = sampler(np.random.default_rng(seed))
        kinds.add(sample.still)
        assert sample.blurry is None and sample.sharp.shape == ((1,) if sample.still else (2,)) + (52, 52, 3)
    assert kinds == {True, False}  # stills and video runs


def test_sampler_keeps_stills_decoded_within_its_budget(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / f"{i}.png", frame(i, 40, 30))
    data = open_dataset(str(tmp_path), "all")
    reads = []
    for clip in data.clips:
        read = clip.sharp[0]
        clip.sharp[0] = lambda read=read: reads.append(1) or read()
    one_kept = Sampler(data, frames=1, crop=16, margin=0, still_budget=40 * 30 * 3)
    uncached = Sampler(data, frames=1, crop=16, margin=0, still_budget=0)
    for seed in range(12):
        cached = one_kept(np.random.default_rng(seed)).sharp.copy()
        assert np.array_equal(cached, uncached(np.random.default_rng(seed)).sharp)
    picks = [int(np.random.default_rng(seed).integers(3)) for seed in range(12)]
    first = picks[0]
    # the uncached sampler reads on every call; the other reads the first still it met once
    assert len(reads) == 12 + 1 + sum(p != first for p in picks)


def test_bad_specs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown kind 'gopr'"):
        open_dataset(f"gopr:{tmp_path}")
    with pytest.raises(InputError, match="is not a folder"):
        open_dataset(str(tmp_path / "missing"))
    with pytest.raises(InputError, match="no data found in the sharp layout for the train split"):
        open_dataset(str(tmp_path))
    with pytest.raises(UsageError, match="unknown split"):
        open_dataset(str(tmp_path), "val")
