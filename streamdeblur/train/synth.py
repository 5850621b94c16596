"""Synthetic motion blur that behaves like the real thing, from sharp images or video frames.

A camera integrates the scene while its shutter is open. So, per sequence, a smooth random
camera path (a pan, hand shake as a sum of sinusoids, a little rotation and zoom) is sampled
at many instants inside each frame's exposure, the sharp image is warped to every pose with
`grid_sample`, and the warps are averaged in *linear* light (the 2.2 gamma undone first:
averaging gamma-encoded values darkens highlights and looks wrong). An optional foreground
layer moves on a path of its own. Sensor noise (shot + read, in linear light), JPEG
compression (block DCT, in torch) and 8-bit quantisation follow. Each frame's ground truth is
the sharp view at mid-exposure, so a sequence is consecutive blurry frames along one
continuous path with their sharp mid-exposure frames.

Everything runs on the tensors' device (the GPU when training there) and draws from an
explicit `torch.Generator`, so a batch is a pure function of its seed. `average_frames` is the
other source of real-looking blur: consecutive video frames averaged (GoPro-style).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from streamdeblur.core.errors import UsageError
from streamdeblur.train.jpeg import jpeg

GAMMA = 2.2
SUBFRAME_STEP = 0.5  # px: sub-frame views at most this far apart, so the average shows no ghosts
MAX_SUBFRAMES = 96
# Sub-frame views rendered per call on a GPU, as output pixels of the whole batch: a view is
# a few dozen small kernels, so one at a time leaves a GPU launch-bound (5 steps/s for a light
# model, whatever the batch, on an H200). A CPU renders one view a call: batched views outgrow
# its caches (2x slower; benchmarks/synth_views.py measures both).
GPU_VIEW_ELEMENTS = 2**25
SHAKE_COMPONENTS = 3  # sinusoids per axis: body sway to hand tremor
SHAKE_FREQ = (0.05, 0.6)  # cycles per frame interval (1.5-18 Hz at 30 fps)
EDGE_SOFTNESS = 1.0  # px: anti-aliased foreground border


@dataclass(frozen=True)
class BlurConfig:
    """The ranges a sequence's camera motion and sensor are drawn from.

    Distances are pixels per frame interval at the resolution blurred; `exposure` is the
    fraction of the frame interval the shutter is open (blur length scales with it).
    """

    pan: tuple[float, float] = (0.0, 16.0)
    pan_prob: float = 0.6
    shake: tuple[float, float] = (0.0, 5.0)  # amplitude, px
    rotation: float = 0.5  # degrees, largest shake amplitude
    zoom: float = 0.01  # largest log-zoom change per frame interval
    exposure: tuple[float, float] = (0.25, 1.0)
    foreground_prob: float = 0.25
    foreground_speed: tuple[float, float] = (2.0, 24.0)
    shot_noise: tuple[float, float] = (0.0, 0.002)  # variance per unit of linear signal
    read_noise: tuple[float, float] = (0.0, 0.002)  # standard deviation, linear
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 95)

    def margin(self, frames: int, size: tuple[int, int]) -> int:
        """Pixels of source needed around an output of `size` (h, w) so warps stay inside it."""
        radius = math.hypot(*size) / 2
        rotation = math.radians(self.rotation) * (2 + frames / 8) + self.zoom * frames / 2
        return math.ceil(self.pan[1] * frames / 2 + 2 * self.shake[1] + radius * rotation) + 2


PRESETS = {
    "default": BlurConfig(),
    # Nearly sharp: a steady hand, short exposure. Models must not make such frames worse.
    "mild": BlurConfig(
        pan=(0.0, 2.0),
        shake=(0.0, 0.8),
        rotation=0.05,
        zoom=0.001,
        exposure=(0.25, 0.6),
        foreground_prob=0.0,
        shot_noise=(0.0, 0.0005),
        read_noise=(0.0, 0.001),
        jpeg_quality=(85, 95),
    ),
    "strong": BlurConfig(pan=(4.0, 32.0), pan_prob=0.8, shake=(2.0, 10.0), rotation=1.0, exposure=(0.5, 1.0)),
    # The default blur on a small, dim sensor: about 4x the shot and read noise (for
    # measuring whether a denoiser before the model helps, docs/benchmarks.md).
    "noisy": BlurConfig(shot_noise=(0.004, 0.008), read_noise=(0.004, 0.008), jpeg_prob=0.0),
}


def preset(name: str) -> BlurConfig:
    """The blur preset `name` (--blur), or a usage error naming the presets."""
    if name not in PRESETS:
        raise UsageError(f"unknown blur preset {name!r} (use {', '.join(PRESETS)})")
    return PRESETS[name]


def blur_mix(text: str) -> list[tuple[str, float]]:
    """Training's `--blur`: one preset, or presets with weights drawn per step, e.g.
    `default:0.6,mild:0.3,still:0.1` (`still`: no motion, no noise: the identity).

    Training only on blurry frames teaches a model to sharpen whatever it sees, and nearly
    sharp frames come out worse (docs/training.md): mixing in `mild` and `still` steps
    teaches it to leave them alone. The weights are normalised; held-out evaluations
    run once per preset, and the first preset named gives the run's figure.
    """
    mix = []
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if name != "still":
            preset(name)
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            w = -1.0
        if not w > 0 or not math.isfinite(w):
            raise UsageError(f"--blur {text}: the weight of {name!r} must be a positive number")
        mix.append((name, w))
    if mix[0][0] == "still":
        raise UsageError(f"--blur {text}: name a blur preset first (it sets the evaluation's blur)")
    total = sum(w for _, w in mix)
    return [(name, w / total) for name, w in mix]


def mix_config(name: str) -> BlurConfig:
    """A preset of a `blur_mix`, `still` included."""
    return STATIC if name == "still" else preset(name)


STATIC = BlurConfig(
    pan=(0.0, 0.0),
    shake=(0.0, 0.0),
    rotation=0.0,
    zoom=0.0,
    foreground_prob=0.0,
    shot_noise=(0.0, 0.0),
    read_noise=(0.0, 0.0),
    jpeg_prob=0.0,
)


def to_linear(srgb: torch.Tensor) -> torch.Tensor:
    return srgb.clamp(0, 1) ** GAMMA


def to_srgb(linear: torch.Tensor) -> torch.Tensor:
    return linear.clamp(0, 1) ** (1 / GAMMA)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels: what a camera or codec hands over."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def _uniform(bounds: tuple[float, float], shape: tuple[int, ...], g: torch.Generator, device) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(shape, generator=g, device=device)


@dataclass
class CameraPath:
    """A batch of smooth camera paths; time `t` is in frame intervals.

    At time t the view is: translation `offset + pan*t + shake`, rotation `spin*t + shake`,
    log-zoom `zoom*t`. Shake is a sum of sinusoids per axis (x, y, rotation), scaled by
    `envelope` when one is given (shake gain at t = 0, 1, 2, ..., linear in between), so a
    clip can alternate steady and shaky stretches on one continuous path.
    """

    pan: torch.Tensor  # [B, 2] px per frame interval
    offset: torch.Tensor  # [B, 2] px
    shake_amp: torch.Tensor  # [B, K, 3] px, px, radians
    shake_freq: torch.Tensor  # [B, K, 3] cycles per frame interval
    shake_phase: torch.Tensor  # [B, K, 3]
    spin: torch.Tensor  # [B] radians per frame interval
    zoom: torch.Tensor  # [B] log-scale per frame interval
    envelope: torch.Tensor | None = None  # [B, F]

    @classmethod
    def random(cls, batch: int, config: BlurConfig, g: torch.Generator, device: torch.device) -> CameraPath:
        panning = torch.rand(batch, generator=g, device=device) < config.pan_prob
        speed = _uniform(config.pan, (batch,), g, device) * panning
        heading = _uniform((0, 2 * math.pi), (batch,), g, device)
        weights = _uniform((0.2, 1.0), (batch, SHAKE_COMPONENTS, 3), g, device)
        weights = weights / weights.sum(1, keepdim=True)
        gain = torch.stack(
            [
                _uniform(config.shake, (batch,), g, device),
                _uniform(config.shake, (batch,), g, device),
                _uniform((0, math.radians(config.rotation)), (batch,), g, device),
            ],
            -1,
        )
        return cls(
            pan=torch.stack([speed * torch.cos(heading), speed * torch.sin(heading)], -1),
            offset=torch.zeros(batch, 2, device=device),
            shake_amp=weights * gain[:, None],
            shake_freq=_uniform(SHAKE_FREQ, (batch, SHAKE_COMPONENTS, 3), g, device),
            shake_phase=_uniform((0, 2 * math.pi), (batch, SHAKE_COMPONENTS, 3), g, device),
            spin=_uniform((-1, 1), (batch,), g, device) * math.radians(config.rotation) / 4,
            zoom=_uniform((-config.zoom, config.zoom), (batch,), g, device),
        )

    def motion(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tx, ty, angle, log_zoom) at times `t` [B, N], each [B, N]."""
        wave = torch.sin(2 * math.pi * self.shake_freq[:, None] * t[..., None, None] + self.shake_phase[:, None])
        shake = (self.shake_amp[:, None] * wave).sum(2)  # [B, N, 3]
        if self.envelope is not None:
            shake = shake * _interp(self.envelope, t)[..., None]
        tx = self.offset[:, :1] + self.pan[:, :1] * t + shake[..., 0]
        ty = self.offset[:, 1:] + self.pan[:, 1:] * t + shake[..., 1]
        return tx, ty, self.spin[:, None] * t + shake[..., 2], self.zoom[:, None] * t

    def poses(self, t: torch.Tensor) -> torch.Tensor:
        """[B, N, 2, 3] affine maps from output-centred to source-centred pixel coordinates."""
        tx, ty, angle, log_zoom = self.motion(t)
        scale = torch.exp(log_zoom)
        c, s = scale * torch.cos(angle), scale * torch.sin(angle)
        return torch.stack([torch.stack([c, -s, tx], -1), torch.stack([s, c, ty], -1)], -2)

    def centred(self, t: torch.Tensor) -> CameraPath:
        """The same motion shifted so the view at times `t` [B] is centred on the source."""
        tx, ty, _, _ = self.motion(t[:, None])
        return dataclasses.replace(self, offset=self.offset - torch.cat([tx, ty], 1))

    def scaled(self, k: float) -> CameraPath:
        """The path with every movement multiplied by `k` (0: a locked-off camera)."""
        return dataclasses.replace(
            self,
            pan=self.pan * k,
            offset=self.offset * k,
            shake_amp=self.shake_amp * k,
            spin=self.spin * k,
            zoom=self.zoom * k,
        )


def _interp(keys: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear keys [B, F] (at t = 0..F-1, held beyond) read at t [B, N]."""
    last = keys.shape[1] - 1
    pos = t.clamp(0, last)
    lo = pos.floor().long().clamp(0, max(last - 1, 0))
    hi = (lo + 1).clamp(max=last)
    frac = pos - lo
    return torch.gather(keys, 1, lo) * (1 - frac) + torch.gather(keys, 1, hi) * frac


@dataclass
class Foreground:
    """An object moving on its own: a soft ellipse cut from another texture, drifting steadily.

    Its shape is in scene (source-centred) pixels around `centre` at time `t_ref`; it moves
    by `velocity` px per frame interval. The texture is the batch's next source (a mirrored
    copy of the source itself for a batch of one), so it differs from the background.
    """

    present: torch.Tensor  # [B] bool
    centre: torch.Tensor  # [B, 2]
    radii: torch.Tensor  # [B, 2]
    angle: torch.Tensor  # [B]
    velocity: torch.Tensor  # [B, 2]
    t_ref: torch.Tensor  # [B]

    @classmethod
    def random(
        cls, batch: int, size: tuple[int, int], t_ref: torch.Tensor, config: BlurConfig, g: torch.Generator
    ) -> Foreground:
        device = t_ref.device
        h, w = size
        speed = _uniform(config.foreground_speed, (batch,), g, device)
        heading = _uniform((0, 2 * math.pi), (batch,), g, device)
        half = torch.tensor([w / 2, h / 2], device=device)
        return cls(
            present=torch.rand(batch, generator=g, device=device) < config.foreground_prob,
            centre=_uniform((-0.6, 0.6), (batch, 2), g, device) * half,
            radii=_uniform((0.1, 0.35), (batch, 2), g, device) * min(h, w),
            angle=_uniform((0, math.pi), (batch,), g, device),
            velocity=torch.stack([speed * torch.cos(heading), speed * torch.sin(heading)], -1),
            t_ref=t_ref,
        )

    @staticmethod
    def texture(linear: torch.Tensor) -> torch.Tensor:
        return linear.roll(1, 0) if linear.shape[0] > 1 else linear.flip(-1, -2)

    def alpha_and_coords(self, scene: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coverage [B, N, h, w] and texture coordinates at scene points [B, N, h, w, 2], times [B, N]."""
        shift = self.velocity[:, None] * (t - self.t_ref[:, None])[..., None]  # [B, N, 2]
        local = scene - shift[:, :, None, None]
        rel = local - self.centre[:, None, None, None]
        c, s = torch.cos(self.angle)[:, None, None, None], torch.sin(self.angle)[:, None, None, None]
        u = (c * rel[..., 0] + s * rel[..., 1]) / self.radii[:, None, None, None, 0]
        v = (-s * rel[..., 0] + c * rel[..., 1]) / self.radii[:, None, None, None, 1]
        rho = torch.sqrt(u * u + v * v)
        edge = (1 - rho) * self.radii.min(1).values[:, None, None, None] / EDGE_SOFTNESS
        alpha = (edge + 0.5).clamp(0, 1) * self.present[:, None, None, None]
        return alpha, local


def _sample(source: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of `source` [B, C, H, W] at source-centred pixel coordinates
    [B, N, h, w, 2]: all N views in one call (stacked along the grid's height, so the source
    is not copied). Returns [B, N, C, h, w].
    """
    b, n, h, w, _ = coords.shape
    size = torch.tensor([source.shape[-1] / 2, source.shape[-2] / 2], device=coords.device, dtype=coords.dtype)
    grid = (coords / size).reshape(b, n * h, w, 2)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.view(b, -1, n, h, w).transpose(1, 2)


def _output_grid(size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Output-centred pixel-centre coordinates [h, w, 3] (x, y, 1)."""
    h, w = size
    y = torch.arange(h, device=device, dtype=torch.float32) + 0.5 - h / 2
    x = torch.arange(w, device=device, dtype=torch.float32) + 0.5 - w / 2
    gy, gx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([gx, gy, torch.ones_like(gx)], -1)


def view(
    linear: torch.Tensor,
    path: CameraPath,
    t: torch.Tensor,
    size: tuple[int, int],
    foreground: Foreground | None = None,
) -> torch.Tensor:
    """What the camera sees of `linear` [B, 3, H, W] at times `t` [B, N]: [B, N, 3, h, w] in linear light."""
    grid = _output_grid(size, linear.device)
    scene = torch.einsum("bnij,hwj->bnhwi", path.poses(t), grid)
    frames = _sample(linear, scene)
    if foreground is not None and bool(foreground.present.any()):
        alpha, coords = foreground.alpha_and_coords(scene, t)
        alpha = alpha[:, :, None]
        frames = frames * (1 - alpha) + _sample(Foreground.texture(linear), coords) * alpha
    return frames


def subframes(
    path: CameraPath,
    starts: torch.Tensor,
    exposure: torch.Tensor,
    size: tuple[int, int],
    foreground: Foreground | None = None,
) -> int:
    """Views per exposure so that no image corner, nor the foreground, moves more than
    SUBFRAME_STEP between them."""
    h, w = size
    corners = torch.tensor([[-w / 2, -h / 2, 1], [w / 2, -h / 2, 1], [-w / 2, h / 2, 1], [w / 2, h / 2, 1]])
    fine = torch.linspace(0, 1, 33, device=starts.device)
    t = starts[..., None] + exposure[:, None, None] * fine  # [B, T, 33]
    pts = torch.einsum("bnij,cj->bnci", path.poses(t.flatten(1)), corners.to(starts.device))
    pts = pts.view(*t.shape, 4, 2)
    length = (pts[:, :, 1:] - pts[:, :, :-1]).norm(dim=-1).sum(2).amax((1, 2))  # [B]
    if foreground is not None:
        length = length + foreground.present * foreground.velocity.norm(dim=-1) * exposure
    length = length.max().item()
    return int(min(MAX_SUBFRAMES, max(1, math.ceil(length / SUBFRAME_STEP))))


def views_per_call(linear: torch.Tensor, size: tuple[int, int]) -> int:
    """Sub-frame views `expose` renders in one call (see GPU_VIEW_ELEMENTS)."""
    return max(1, GPU_VIEW_ELEMENTS // (linear.shape[0] * size[0] * size[1])) if linear.is_cuda else 1


def expose(
    linear: torch.Tensor,
    path: CameraPath,
    starts: torch.Tensor,
    exposure: torch.Tensor,
    size: tuple[int, int],
    foreground: Foreground | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blurry and sharp frames in linear light, [B, T, 3, h, w] each.

    Frame i integrates the views over [starts_i, starts_i + exposure] (midpoint rule, evenly
    spaced sub-frames, as many as its own motion needs, so a frame comes out the same whether
    rendered alone or in a sequence); its ground truth is the view at mid-exposure.
    """
    blurry, sharp = [], []
    per_call = views_per_call(linear, size)
    for i in range(starts.shape[1]):
        source = linear[:, i] if linear.dim() == 5 else linear  # one image for all its views
        start = starts[:, i : i + 1]
        n = subframes(path, start, exposure, size, foreground)
        times = start + exposure[:, None] * (torch.arange(n, device=start.device) + 0.5) / n  # [B, n]
        total = sum(view(source, path, t, size, foreground).sum(1, keepdim=True) for t in times.split(per_call, 1))
        blurry.append(total / n)
        sharp.append(view(source, path, start + exposure[:, None] / 2, size, foreground))
    return torch.cat(blurry, 1), torch.cat(sharp, 1)


@dataclass
class SequenceBlur:
    """Everything random about blurring a batch of sequences, drawn once per sequence.

    The camera path, exposure, foreground, noise levels and JPEG quality hold for the whole
    sequence, so `render` can produce it in one go (training) or frame by frame (evaluating a
    long clip): frames rendered separately are the same frames as one continuous sequence.
    """

    config: BlurConfig
    size: tuple[int, int]
    path: CameraPath
    exposure: torch.Tensor  # [B] fraction of the frame interval
    foreground: Foreground | None
    shot: torch.Tensor  # [B]
    read: torch.Tensor  # [B]
    quality: torch.Tensor  # [B]
    compress: torch.Tensor  # [B] bool

    @classmethod
    def random(
        cls,
        batch: int,
        config: BlurConfig,
        frames: int,
        size: tuple[int, int],
        g: torch.Generator,
        path: CameraPath | None = None,
    ) -> SequenceBlur:
        """Draw a batch; the path is centred on the middle of `frames` frames' time span."""
        device = g.device
        exposure = _uniform(config.exposure, (batch,), g, device)
        t_mid = (frames - 1 + exposure) / 2
        if path is None:
            path = CameraPath.random(batch, config, g, device).centred(t_mid)
        foreground = Foreground.random(batch, size, t_mid, config, g) if config.foreground_prob > 0 else None
        return cls(
            config=config,
            size=size,
            path=path,
            exposure=exposure,
            foreground=foreground,
            shot=_uniform(config.shot_noise, (batch,), g, device),
            read=_uniform(config.read_noise, (batch,), g, device),
            quality=_uniform(config.jpeg_quality, (batch,), g, device).round(),
            compress=torch.rand(batch, generator=g, device=device) < config.jpeg_prob,
        )

    def render(
        self, sharp: torch.Tensor, g: torch.Generator, first: int = 0, count: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames `first` .. `first + count - 1`: (blurry, sharp) [B, count, 3, h, w] in [0, 1].

        `sharp` is sRGB in [0, 1]: [B, 3, H, W] (a still, filmed `count` times) or
        [B, count, 3, H, W] (video frames), at least `size` plus `config.margin` on each
        side (less works, with mirrored borders); outputs are centred views on 8-bit levels.
        """
        b, device = sharp.shape[0], sharp.device
        starts = first + torch.arange(count, device=device, dtype=torch.float32).expand(b, count)
        blurry, target = expose(to_linear(sharp), self.path, starts, self.exposure, self.size, self.foreground)
        if self.config.shot_noise[1] > 0 or self.config.read_noise[1] > 0:
            shape = (b, 1, 1, 1, 1)
            sigma = torch.sqrt(self.shot.view(shape) * blurry.clamp(min=0) + self.read.view(shape) ** 2)
            blurry = blurry + sigma * torch.randn(blurry.shape, generator=g, device=device)
        blurry = to_srgb(blurry)
        if self.config.jpeg_prob > 0 and bool(self.compress.any()):  # only the frames of compressed sequences
            flat = blurry.flatten(0, 1)
            chosen = self.compress.repeat_interleave(count).nonzero().squeeze(1)
            quality = self.quality.repeat_interleave(count)[chosen]
            blurry = flat.index_copy(0, chosen, jpeg(flat[chosen], quality)).view_as(blurry)
        return quantize(blurry), quantize(to_srgb(target))


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image of [B, ..., H, W] blurred by an isotropic Gaussian of its own `sigma` [B]
    (px), separably, with mirrored borders."""
    radius = max(1, math.ceil(3 * float(sigma.max())))
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    taps = torch.exp(-0.5 * (x / sigma.to(images)[:, None].clamp(min=1e-3)) ** 2)
    taps = taps / taps.sum(1, keepdim=True)  # [B, K]
    b, (h, w) = images.shape[0], images.shape[-2:]
    planes = images.reshape(b, -1, h, w)
    taps = taps.repeat_interleave(planes.shape[1], 0)  # one kernel per plane: [B * P, K]
    flat = F.pad(planes.reshape(1, -1, h, w), (radius,) * 4, mode="reflect")
    flat = F.conv2d(flat, taps[:, None, None, :], groups=taps.shape[0])
    flat = F.conv2d(flat, taps[:, None, :, None], groups=taps.shape[0])
    return flat.view_as(images)


def soften(sharp: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A scene that is soft itself (haze, distance, a soft lens): sRGB sources [B, ..., H, W]
    blurred in linear light by a Gaussian of `sigma` [B] px, with no direction to it.

    Blurred before the camera moves, such a source is the ground truth as well as what the
    camera blurs, so a model is taught to leave the scene's own softness alone instead of
    taking every soft edge for blur. The price: a strongly blurred frame could have been a
    soft scene too, and the model sharpens it less (docs/training.md, 2026-12-07).
    """
    return to_srgb(gaussian_blur(to_linear(sharp), sigma))


def synthesize(
    sharp: torch.Tensor,
    config: BlurConfig,
    frames: int,
    size: tuple[int, int],
    g: torch.Generator,
    path: CameraPath | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur a batch of sharp sources into `frames`-frame sequences (see `SequenceBlur.render`).

    `path` overrides the random camera path (tests, the sample clip).
    """
    blur = SequenceBlur.random(sharp.shape[0], config, frames, size, g, path)
    return blur.render(sharp, g, 0, frames)


def average_frames(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GoPro-style blur: consecutive real frames [..., n, 3, H, W] averaged in linear light.

    Returns (blurry, sharp) [..., 3, H, W]: the average and the middle frame (n odd).
    """
    n = frames.shape[-4]
    blurry = to_srgb(to_linear(frames).mean(-4))
    return quantize(blurry), frames.select(-4, n // 2)
