"""Dataset readers: the layouts people have, reduced to clips of consecutive frames.

`open_dataset("KIND:PATH" or "PATH", split)` reads one `--data` entry. Kinds:

- `gopro` / `gopro-gamma`: GOPRO_Large `{train,test}/SEQ/{blur,blur_gamma,sharp}/*.png`
  (`gopro` pairs `blur`, `gopro-gamma` pairs `blur_gamma`, with `sharp`);
- `reds`: REDS `{train,val}_{blur,sharp}/SEQ/*.png` (possibly one folder down); test = val;
- `dvd`: DeepVideoDeblurring `SEQ/{input,GT}` (test = the authors' ten videos) or
  `{train,test}/SEQ/{input,GT}`;
- `paired`: `blur/` + `sharp/` with matching names (sub-folders are sequences, loose images
  single frames), optionally under `train/` and `test/`;
- `sharp`: sharp images and videos only, blurred on the fly by synth.py;
- `average`: real clips (videos, or folders of frames) blurred GoPro-style by averaging
  consecutive frames in linear light, the middle frame being the ground truth.

Without a KIND the layout is recognised from the folder. For `sharp` and `average` PATH may
end in a wildcard pattern (`sharp:photos/*.png`; `**` reaches into sub-folders): only the
files (or clip folders) it globs under the folder before the first wildcard are read, split
as the whole folder is.

Layouts without their own split (`sharp`, `average`, and `paired` without train/test) are
split by a hash of each file's path relative to the root: one in `HELD_OUT` goes to `test`,
so the split does not depend on where the data lives, on file order or on which other files
exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch

from streamdeblur.core.errors import InputError, UsageError
from streamdeblur.core.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from streamdeblur.core.frame import to_rgb8
from streamdeblur.io.stills import read_image
from streamdeblur.train.synth import average_frames

if TYPE_CHECKING:
    from streamdeblur.io.sources import Source

KINDS = ("gopro", "gopro-gamma", "reds", "dvd", "paired", "sharp", "average")
PATTERN_KINDS = ("sharp", "average")  # kinds read file by file, which a wildcard can pick from
WILDCARDS = frozenset("*?[")
SPLITS = ("train", "test", "all")
HELD_OUT = 10  # one file in ten, by name hash, is held out for testing
DVD_TEST = (
    "720p_240fps_2",
    "IMG_0003",
    "IMG_0021",
    "IMG_0030",
    "IMG_0031",
    "IMG_0032",
    "IMG_0033",
    "IMG_0037",
    "IMG_0039",
    "IMG_0049",
)  # the test videos named by the DVD authors (github.com/shuochsu/DeepVideoDeblurring, issue 2)
DEFAULT_AVERAGE = 7  # frames averaged per blurry frame (GoPro used 7-13 at 240 fps)
VIDEO_BUDGET = 256 * 2**20  # bytes of decoded frames kept per training video
STILL_BUDGET = 2 * 2**30  # bytes of decoded stills kept for training (the first ones read)

Image = np.ndarray  # H x W x 3 RGB uint8


def held_out(name: str) -> bool:
    """The test split of data without its own: one name in HELD_OUT, by SHA-256."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % HELD_OUT == 0


def read_rgb8(path: Path) -> Image:
    """An image as 8-bit RGB (16-bit images are reduced: the models work on 8-bit levels)."""
    image, _ = read_image(path)
    return to_rgb8(image)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


@dataclass
class Clip:
    """Consecutive frames of one shot: sharp frames and, for paired data, their blurry twins.

    Frames are read on demand through `read` (a file path or a decoded frame); `blurry` is
    None where blur is synthesised.
    """

    name: str
    sharp: list[Callable[[], Image]]
    blurry: list[Callable[[], Image]] | None = None

    def __len__(self) -> int:
        return len(self.sharp)


def _file_frames(paths: list[Path]) -> list[Callable[[], Image]]:
    return [(lambda p=p: read_rgb8(p)) for p in paths]


def _paired_clip(name: str, blurry: list[Path], sharp: list[Path]) -> Clip:
    if [p.name for p in blurry] != [p.name for p in sharp]:
        missing = sorted({p.name for p in blurry} ^ {p.name for p in sharp})
        more = ", ..." if len(missing) > 3 else ""
        raise InputError(f"{name}: blurry and sharp frames do not match ({', '.join(missing[:3])}{more})")
    return Clip(name, _file_frames(sharp), _file_frames(blurry))


@dataclass
class Dataset:
    """One `--data` entry for one split.

    `clips` are paired clips or sharp ones (stills are one-frame clips); `videos` are sharp
    video files, decoded on first use. `average` > 0 means: make pairs by averaging that many
    consecutive sharp frames; `synthetic` means: blur with synth.py.
    """

    kind: str
    root: Path
    split: str
    clips: list[Clip] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    average: int = 0
    pattern: str | None = None  # the wildcard pattern that picked the files under root

    @property
    def synthetic(self) -> bool:
        return self.kind == "sharp"

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.root / self.pattern if self.pattern else self.root}"

    def describe(self) -> str:
        frames = sum(len(c) for c in self.clips)
        parts = [f"{len(self.clips)} clips ({frames} frames)"] if self.clips else []
        if self.videos:
            parts.append(f"{len(self.videos)} videos")
        return f"{self.spec} ({self.split} split): {', '.join(parts) or 'empty'}"


def parse_spec(spec: str) -> tuple[str | None, Path]:
    """`KIND:PATH` or `PATH` → (kind or None, path)."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        return kind, Path(rest).expanduser()
    if sep and kind and "/" not in kind and not Path(spec).exists():
        raise UsageError(f"--data {spec}: unknown kind {kind!r} (use one of {', '.join(KINDS)}, or just a path)")
    return None, Path(spec).expanduser()


def split_pattern(path: Path) -> tuple[Path, str | None]:
    """A path with wildcards → (the folder before the first one, the rest as a pattern)."""
    parts = path.parts
    for i, part in enumerate(parts):
        if WILDCARDS & set(part):
            return Path(*parts[:i]) if i else Path("."), "/".join(parts[i:])
    return path, None


def open_dataset(spec: str, split: str = "train", average: int = DEFAULT_AVERAGE) -> Dataset:
    """Read one `--data` entry (layout detected unless given as KIND:PATH) for `split`."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r} (use {', '.join(SPLITS)})")
    if average % 2 == 0:
        raise UsageError(f"frames to average must be odd (the middle one is the ground truth), got {average}")
    kind, path = parse_spec(spec)
    root, pattern = split_pattern(path)
    if pattern and kind not in PATTERN_KINDS:
        raise UsageError(f"--data {spec}: a wildcard pattern needs {' or '.join(k + ':' for k in PATTERN_KINDS)}")
    if not root.is_dir():
        raise InputError(f"--data {spec}: {root} is not a folder")
    kind = kind or detect(root)
    reader = {
        "gopro": lambda: _gopro(root, split, "blur"),
        "gopro-gamma": lambda: _gopro(root, split, "blur_gamma"),
        "reds": lambda: _reds(root, split),
        "dvd": lambda: _dvd(root, split),
        "paired": lambda: _paired(root, split),
        "sharp": lambda: _sharp(root, split, pattern=pattern),
        "average": lambda: _sharp(root, split, as_clips=True, pattern=pattern),
    }[kind]
    clips, videos = reader()
    data = Dataset(kind, root, split, clips, videos, average if kind == "average" else 0, pattern)
    if not data.clips and not data.videos:
        where = "" if split == "all" else f" for the {split} split"
        raise InputError(f"--data {spec}: no data found in the {kind} layout{where}")
    return data


def detect(root: Path) -> str:
    """The layout of `root`, from its folder names."""
    names = {p.name for p in _subdirs(root)}
    splits = [root / s for s in ("train", "test") if (root / s).is_dir()]
    seq_dirs = [d for s in (splits or [root]) for d in _subdirs(s)]
    if any((d / "sharp").is_dir() and ((d / "blur").is_dir() or (d / "blur_gamma").is_dir()) for d in seq_dirs):
        return "gopro"
    if _reds_dirs(root, "train") or _reds_dirs(root, "val"):
        return "reds"
    if any((d / "input").is_dir() and (d / "GT").is_dir() for d in seq_dirs):
        return "dvd"
    if {"blur", "sharp"} <= names or any((s / "blur").is_dir() and (s / "sharp").is_dir() for s in splits):
        return "paired"
    return "sharp"


def _split_roots(root: Path, split: str) -> list[Path] | None:
    """The layout's own split folders for `split` (root/train, root/test), or None if it has none."""
    if not ((root / "train").is_dir() or (root / "test").is_dir()):
        return None
    wanted = ("train", "test") if split == "all" else (split,)
    return [root / n for n in wanted if (root / n).is_dir()]


def _in_split(name: str, split: str) -> bool:
    """Whether `name` belongs to `split` under the name-hash rule."""
    return split == "all" or held_out(name) == (split == "test")


def _gopro(root: Path, split: str, blur: str) -> tuple[list[Clip], list[Path]]:
    dirs = _split_roots(root, split)
    clips = []
    for seq in (d for s in (dirs if dirs is not None else [root]) for d in _subdirs(s)):
        if (seq / "sharp").is_dir():
            if not (seq / blur).is_dir():
                raise InputError(f"{seq}: no {blur}/ folder (GoPro sequences have blur/, blur_gamma/ and sharp/)")
            clips.append(_paired_clip(seq.name, _images(seq / blur), _images(seq / "sharp")))
    return clips, []


def _reds_dirs(root: Path, split: str) -> tuple[Path, Path] | None:
    """`{split}_blur` and `{split}_sharp` in root or one folder down (REDS unpacks as train/train_blur)."""
    for base in (root, *_subdirs(root)):
        blur, sharp = base / f"{split}_blur", base / f"{split}_sharp"
        if blur.is_dir() and sharp.is_dir():
            return blur, sharp
    return None


def _reds(root: Path, split: str) -> tuple[list[Clip], list[Path]]:
    clips = []
    for name in {"train": ["train"], "test": ["val"], "all": ["train", "val"]}[split]:
        found = _reds_dirs(root, name)
        if found:
            blur, sharp = found
            for seq in _subdirs(sharp):
                clips.append(_paired_clip(f"{name}/{seq.name}", _images(blur / seq.name), _images(seq)))
    return clips, []


def _dvd(root: Path, split: str) -> tuple[list[Clip], list[Path]]:
    dirs = _split_roots(root, split)
    clips = []
    for seq in (d for s in (dirs if dirs is not None else [root]) for d in _subdirs(s)):
        if not ((seq / "input").is_dir() and (seq / "GT").is_dir()):
            continue
        if dirs is None and split != "all" and (seq.name in DVD_TEST) != (split == "test"):
            continue
        clips.append(_paired_clip(seq.name, _images(seq / "input"), _images(seq / "GT")))
    return clips, []


def _paired(root: Path, split: str) -> tuple[list[Clip], list[Path]]:
    dirs = _split_roots(root, split)
    wanted = (lambda name: True) if dirs is not None else (lambda name: _in_split(name, split))
    clips = []
    for base in dirs if dirs is not None else [root]:
        blur, sharp = base / "blur", base / "sharp"
        if not (blur.is_dir() and sharp.is_dir()):
            raise InputError(f"{base}: a paired folder needs blur/ and sharp/ side by side")
        clips += [_paired_clip(s.name, _images(blur / s.name), _images(s)) for s in _subdirs(sharp) if wanted(s.name)]
        clips += [_paired_clip(i.name, [blur / i.name], [i]) for i in _images(sharp) if wanted(i.name)]
    return clips, []


def _sharp(root: Path, split: str, as_clips: bool = False, pattern: str | None = None) -> tuple[list[Clip], list[Path]]:
    """Sharp images (stills) and videos under root (those `pattern` globs, if given, with
    pathlib's rules: `*` stays in one folder, `**` crosses them); with `as_clips`, folders of
    frames are clips."""
    clips, videos = [], []
    for path in sorted(root.glob(pattern) if pattern else root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not _in_split(rel, split):
            continue
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append(path)
        elif path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not as_clips:
            clips.append(Clip(rel, _file_frames([path])))
        elif path.is_dir() and as_clips:
            frames = _images(path)
            if len(frames) > 1:
                clips.append(Clip(rel, _file_frames(frames)))
    return clips, videos


# -- Sampling for training ----------------------------------------------------------------------


@dataclass
class Sample:
    """One training example before any synthetic blur: uint8 [T, H, W, 3] arrays."""

    sharp: np.ndarray
    blurry: np.ndarray | None = None  # None: blur with synth.py
    still: bool = False  # one picture filmed T times (sharp has a single frame)


def decode_runs(path: Path, run: int, budget: int = VIDEO_BUDGET) -> list[np.ndarray]:
    """Evenly spaced runs of `run` consecutive frames of a video, as many as fit in `budget` bytes."""
    with _open_video(path) as source:
        info = source.info
        total = info.frame_count or 0
        per_run = run * info.width * info.height * 3
        count = max(1, min(budget // max(per_run, 1), total // run if total else 1))
        stride = max(run, total // count) if total else run
        runs, current = [], []
        for frame in source.frames():
            offset = frame.index % stride
            if offset < run and len(runs) < count:
                image = to_rgb8(frame.image)
                current.append(image)
                if len(current) == run:
                    runs.append(np.stack(current))
                    current = []
            if len(runs) == count:
                break
    if not runs:
        raise InputError(f"{path}: fewer than {run} frames")
    return runs


class Sampler:
    """Random training crops from one dataset: T consecutive frames, one crop window for all.

    Each call takes a numpy Generator, so a batch is a function of the step's seed. Paired
    data is cropped to `crop`; sharp data for synth.py to `crop + 2 * margin`, so the camera's
    motion has picture to move over. Videos are decoded once, into runs of frames; stills are
    kept decoded up to `still_budget` bytes (decoding a photo costs far more than cropping it:
    at GPU speeds the one thread that prepares batches would otherwise hold the GPU back).
    """

    def __init__(self, data: Dataset, frames: int, crop: int, margin: int, still_budget: int = STILL_BUDGET) -> None:
        self.data = data
        self._stills: dict[int, np.ndarray] = {}
        self._still_room = still_budget
        self.size = crop + 2 * margin if data.synthetic else crop
        self.run = frames * max(data.average, 1)
        self._runs: list[np.ndarray] | None = None
        self.clips = [c for c in data.clips if len(c) >= (self.run if data.average or c.blurry else 1)]
        if data.clips and not self.clips and not data.videos:
            raise InputError(f"{data.spec}: no clip has the {self.run} consecutive frames a sample needs")

    @property
    def runs(self) -> list[np.ndarray]:
        if self._runs is None:
            self._runs = [r for v in self.data.videos for r in decode_runs(v, self.run)]
        return self._runs

    def __call__(self, rng: np.random.Generator) -> Sample:
        n_runs = len(self.runs) if self.data.videos else 0
        pick = int(rng.integers(len(self.clips) + n_runs))
        if pick < len(self.clips):
            clip = self.clips[pick]
            if len(clip) == 1 and clip.blurry is None:  # a still
                return Sample(self._crop(self._still(pick)[None], rng), still=True)
            start = int(rng.integers(len(clip) - self.run + 1))
            sharp = np.stack([read() for read in clip.sharp[start : start + self.run]])
            blurry = np.stack([read() for read in clip.blurry[start : start + self.run]]) if clip.blurry else None
        else:
            sharp, blurry = self.runs[pick - len(self.clips)], None
        if self.data.average:
            blurry, sharp = _average_runs(sharp, self.data.average)
        stacked = self._crop(np.concatenate([sharp, blurry]) if blurry is not None else sharp, rng)
        if blurry is None:
            return Sample(stacked)
        return Sample(stacked[: len(sharp)], stacked[len(sharp) :])

    def _still(self, pick: int) -> np.ndarray:
        """Still `pick`, decoded: from memory if kept, else read (and kept while there is room)."""
        if (image := self._stills.get(pick)) is not None:
            return image
        image = self.clips[pick].sharp[0]()
        if image.nbytes <= self._still_room:
            self._stills[pick] = image
            self._still_room -= image.nbytes
        return image

    def _crop(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The same random `size` x `size` window of every frame (mirror-padded if smaller),
        in one of its eight orientations."""
        _, h, w, _ = frames.shape
        s = self.size
        if h < s or w < s:
            py, px = max(0, s - h), max(0, s - w)
            frames = np.pad(frames, ((0, 0), (py // 2, py - py // 2), (px // 2, px - px // 2), (0, 0)), mode="reflect")
            _, h, w, _ = frames.shape
        y, x = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
        return dihedral(frames[:, y : y + s, x : x + s], int(rng.integers(8)))


def dihedral(frames: np.ndarray, k: int) -> np.ndarray:
    """One of the eight flips and quarter turns of square [T, H, W, C] frames (k in 0..7).

    A crop turned or mirrored is as plausible a photo as the original for deblurring (the
    synthetic blur's paths have no preferred direction), so the eight give a small photo set
    eight times the views: BasicSR's `use_hflip` + `use_rot`.
    """
    if k & 1:
        frames = frames[:, :, ::-1]  # left-right
    if k & 2:
        frames = frames[:, ::-1]  # upside down
    if k & 4:
        frames = frames.transpose(0, 2, 1, 3)  # across the diagonal
    return frames


def _average_runs(frames: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(blurry, sharp) uint8 [T, H, W, 3] from T*n consecutive frames."""
    t = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)
    t = t.view(-1, n, *t.shape[1:])
    blurry, sharp = average_frames(t)
    to8 = lambda x: x.mul(255).round().byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
    return to8(blurry), to8(sharp)


# -- Sequences for evaluation -----------------------------------------------------------------


Pair = tuple[np.ndarray | None, np.ndarray]  # (blurry or None: to be blurred, sharp)


def eval_clips(data: Dataset) -> Iterator[tuple[str, Iterator[Pair]]]:
    """(name, frames) per clip: whole frames in order, as (blurry or None, sharp) pairs.

    Videos are streamed; `average` data averages each group of consecutive frames as it goes.
    """
    for clip in data.clips:
        sharp = (read() for read in clip.sharp)
        blurry = (read() for read in clip.blurry) if clip.blurry else None
        if data.average:
            yield clip.name, _averaged(sharp, data.average)
        else:
            yield clip.name, zip(blurry, sharp, strict=True) if blurry else ((None, s) for s in sharp)
    for video in data.videos:
        name = video.relative_to(data.root).as_posix()
        frames = _video_frames(video)
        yield name, _averaged(frames, data.average) if data.average else ((None, f) for f in frames)


def _open_video(path: Path) -> Source:
    """A video, through FFmpeg: imported only here, so that training on photos alone runs
    without PyAV (io/stills.py)."""
    from streamdeblur.io.sources import open_source

    return open_source(path)


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    with _open_video(path) as source:
        for frame in source.frames():
            yield to_rgb8(frame.image)


def _averaged(frames: Iterator[np.ndarray], n: int) -> Iterator[Pair]:
    """GoPro-style pairs from consecutive, non-overlapping groups of n frames."""
    group: list[np.ndarray] = []
    for frame in frames:
        group.append(frame)
        if len(group) == n:
            blurry, sharp = _average_runs(np.stack(group), n)
            yield blurry[0], sharp[0]
            group = []
