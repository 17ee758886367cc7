"""Image encoders: a trunk (pixels -> spatial feature map) and a neck (feature map -> latent vector).

- `ConvTrunk`: the small DrQ/RLPD conv stack, trained through the critic.
- `ResNet10`: BasicBlock x [1, 1, 1, 1] (as HIL-SERL's resnet10), used frozen; 128x128 -> (512, 4, 4).
- `FlattenNeck` (for the conv trunk) and `SpatialEmbeddingNeck` (HIL-SERL's learned spatial embeddings,
  for ResNet-10): trainable, feature map -> (B, latent_dim).
- `random_shift`: DrQ's pad-and-random-crop on a uint8 (B, H, W, C) batch, vectorised as one gather
  (replicate padding comes from clamping indices, so no padded copy is made).
"""

from __future__ import annotations

import os
import time
import warnings

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_shift(images: torch.Tensor, pad_px: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, H, W, C) -> (B, H, W, C): each image shifted by an integer in [-pad_px, pad_px] per axis, edges replicated."""
    if pad_px <= 0:
        return images
    b, h, w = images.shape[:3]
    dev = images.device
    shift = torch.randint(0, 2 * pad_px + 1, (2, b, 1), device=dev, generator=generator) - pad_px  # (2, B, 1)
    rows = (torch.arange(h, device=dev) + shift[0]).clamp_(0, h - 1)  # (B, H)
    cols = (torch.arange(w, device=dev) + shift[1]).clamp_(0, w - 1)  # (B, W)
    batch = torch.arange(b, device=dev)[:, None, None]
    return images[batch, rows[:, :, None], cols[:, None, :]]


def _float_nchw(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float32 (B, C, H, W) in [0, 255] (a channels-last view of the same layout)."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"expected uint8 images (B, H, W, C), got {images.dtype} {tuple(images.shape)}")
    return images.permute(0, 3, 1, 2).float()


class ConvTrunk(nn.Module):
    """DrQ/RLPD conv stack: 4 conv 3x3 layers of 32 channels (strides 2, 2, 1, 1), ReLU. (B, H, W, C) uint8 -> (B, 32, h, w)."""

    def __init__(self, in_channels: int = 3, channels: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for stride in (2, 2, 1, 1):
            layers += [nn.Conv2d(c, channels, 3, stride=stride), nn.ReLU()]
            c = channels
        self.net = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(_float_nchw(images).div_(255.0).sub_(0.5))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with batch norm and a (projected) identity shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        # In place on fresh outputs: neither batch norm nor a convolution keeps its output for backward.
        out = self.bn1(self.conv1(x)).relu_()
        return self.bn2(self.conv2(out)).add_(identity).relu_()


class ResNet10(nn.Module):
    """ResNet-10: stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) + one BasicBlock per stage (64, 128, 256, 512).

    Module names follow torchvision's ResNet (conv1, bn1, layer1.0.conv1, ...). Input uint8 (B, H, W, 3),
    normalised with ImageNet statistics; output (B, 512, H/32, W/32), or with `stages=3` the third stage's
    (B, 256, H/16, W/16): positions on a grid twice as fine, for a pass ~a fifth cheaper (no `layer4`).
    """

    def __init__(self, widths: tuple[int, int, int, int] = (64, 128, 256, 512), stages: int = 4):
        super().__init__()
        if stages not in (3, 4):
            raise ValueError(f"a ResNet-10 keeps 3 or 4 stages, got {stages}")
        self.stages = stages
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = BasicBlock(widths[0], widths[0], 1)
        self.layer2 = BasicBlock(widths[0], widths[1], 2)
        self.layer3 = BasicBlock(widths[1], widths[2], 2)
        self.layer4 = BasicBlock(widths[2], widths[3], 2) if stages == 4 else None
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # (pixel / 255 - mean) / std as one multiply-add on the uint8 -> float conversion
        self.register_buffer("pixel_scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("pixel_shift", -mean / std, persistent=False)
        self.out_channels = widths[stages - 1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.pixel_shift, _float_nchw(images), self.pixel_scale)
        # max-pool before ReLU: the same values (ReLU is monotone), on a map 4x smaller
        x = self.maxpool(self.bn1(self.conv1(x))).relu_()
        x = self.layer3(self.layer2(self.layer1(x)))
        return x if self.layer4 is None else self.layer4(x)


class FlattenNeck(nn.Module):
    """(B, C, h, w) -> flatten -> Linear -> LayerNorm -> tanh -> (B, latent_dim) (DrQ's projection)."""

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(in_features, latent_dim), nn.LayerNorm(latent_dim), nn.Tanh())

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.proj(fmap.float())


def _pool_bmm(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(B, C*S) -> (B, C*F), h[b, c, f] = sum_s x[b, c, s] kernel[c, s, f]: one batched product over channels.

    Returned as a (B, C*F) view of a (C*F, B) result (no copy)."""
    c, s, f = kernel.shape
    b = x.shape[0]
    x_csb = x.to(kernel.dtype).view(b, c, s).permute(1, 2, 0)  # (C, S, B), a strided view
    return torch.bmm(kernel.transpose(1, 2), x_csb).view(c * f, b).t()


def _pool_fused(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The same pooling as one elementwise-and-reduce expression, for torch.compile to fuse into one loop over x
    (reading bfloat16 cached features directly): on 2 AVX2 cores 1.1 ms against 2.5 ms for conversion + bmm."""
    c, s, f = kernel.shape
    return (x.to(kernel.dtype).view(-1, c, s, 1) * kernel).sum(2).view(-1, c * f)


# Inductor's code for `_pool_fused` with 512-bit vectors (its default on AVX-512 CPUs) puts an OpenMP parallel
# region around the 16-long spatial sum, once per (row, channel): 117 ms against 1 ms with 256-bit vectors.
_POOL_COMPILE_OPTIONS = {"cpp.simdlen": 256}


class _Pooler:
    """Picks the pooling per shape: compiled `_pool_fused` or `_pool_bmm`, whichever ran faster on this machine.

    Only CPU batches of at least `min_rows` rows (training batches; acting sends one) and at most `max_shapes`
    distinct shapes per process are considered. On a shape's first use the kernel is compiled (seconds;
    inductor caches it on disk) and both ways are timed on that batch: code generation differs by CPU (the
    kernel won on the AVX2 and the AVX-512 hosts measured, but 512-bit code for it ran 100x slower than bmm),
    so the measurement decides, not a rule.
    Any failure to compile (no C++ compiler, an unsupported platform) falls back to `_pool_bmm` for good.
    `ROBOT_RL_POOL=bmm` turns the compiled path off."""

    def __init__(self, min_rows: int = 64, max_shapes: int = 4, timing_calls: int = 3) -> None:
        self.min_rows = min_rows
        self.max_shapes = max_shapes
        self.timing_calls = timing_calls
        self._compiled = None
        self.choice: dict[tuple, str] = {}  # shape key -> "compiled" or "bmm"
        self.failed = False

    def use_compiled(self, x: torch.Tensor, kernel: torch.Tensor) -> bool:
        if self.failed or x.device.type != "cpu" or x.shape[0] < self.min_rows:
            return False
        if os.environ.get("ROBOT_RL_POOL", "auto") == "bmm":
            return False
        key = self._key(x, kernel)
        if key in self.choice:
            return self.choice[key] == "compiled"
        return len(self.choice) < self.max_shapes

    @staticmethod
    def _key(x: torch.Tensor, kernel: torch.Tensor) -> tuple:
        return tuple(x.shape), x.dtype, tuple(kernel.shape)

    def _faster(self, x: torch.Tensor, kernel: torch.Tensor) -> str:
        """ "compiled" or "bmm": the lower of `timing_calls` timed calls each, on this batch, without autograd."""
        with torch.no_grad():
            best = {}
            for name, fn in (("compiled", self._compiled), ("bmm", _pool_bmm)):
                fn(x, kernel)
                times = []
                for _ in range(self.timing_calls):
                    t0 = time.perf_counter()
                    fn(x, kernel)
                    times.append(time.perf_counter() - t0)
                best[name] = min(times)
        return min(best, key=best.get)

    def __call__(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        if not self.use_compiled(x, kernel):
            return _pool_bmm(x, kernel)
        key = self._key(x, kernel)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(_pool_fused, dynamic=False, options=_POOL_COMPILE_OPTIONS)
            if key not in self.choice:
                self.choice[key] = self._faster(x, kernel)
                if self.choice[key] == "bmm":
                    return _pool_bmm(x, kernel)
            out = self._compiled(x, kernel)
        except Exception as e:  # noqa: BLE001 - any compile failure: the eager product is always right
            warnings.warn(
                f"compiled spatial pooling unavailable ({type(e).__name__}: {e}); using torch.bmm", stacklevel=2
            )
            self.failed = True
            return _pool_bmm(x, kernel)
        return out


_pool = _Pooler()


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 in hardware: a CPU with AVX512-BF16 or AMX, a CUDA GPU of compute
    capability 8 or newer. Elsewhere bfloat16 products are emulated and slower than float32."""
    if device.type == "cpu":
        return any(
            getattr(torch.cpu, probe, lambda: False)()
            for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        )
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    return False


_BF16_MODES = ("off", "auto", "on")
_native_cache: dict[torch.device, bool] = {}


def compute_dtype(device: torch.device) -> torch.dtype:
    """The dtype the necks' dense products of training batches compute in on `device`.

    `ROBOT_RL_BF16`: "off" (default) float32; "auto" bfloat16 where the device multiplies it in hardware
    (`native_bfloat16`), else float32; "on" bfloat16 anyway (slow where emulated). Weights, optimiser state,
    losses, LayerNorms, the critics' MLPs and the frozen trunk stay float32 (bfloat16 operands, float32
    accumulation: mixed precision). Opt-in because learning from pixels suffered: pick_cube (2 AVX512-BF16
    cores), success at 1, 2, ... k env steps, necks in bfloat16 / all float32: seed 0 .1 .8 .9 .9 .9 /
    .1 .8 .8 1.0 .9; seed 1 .4 .5 0 0 0 0 0 .1 .1 / .3 .6 .5 .4 .3 .6 .8 .9 .8; seed 2 first 1.0 at 6 k / 6 k;
    seed 3 .2 .5 0 0 .2 / .3 .8 .9 .7 .8. The trunk's convolutions in bfloat16 as well (1.7x faster per frame)
    were worse still (seeds 0 and 2 at 5 k: 0.5 and 0.1); they stay float32 in every mode."""
    mode = os.environ.get("ROBOT_RL_BF16", "off")
    if mode not in _BF16_MODES:
        raise ValueError(f"ROBOT_RL_BF16={mode!r}; choose one of {_BF16_MODES}")
    if mode != "auto":
        return torch.bfloat16 if mode == "on" else torch.float32
    if device not in _native_cache:
        _native_cache[device] = native_bfloat16(device)
    return torch.bfloat16 if _native_cache[device] else torch.float32


NECK_BF16_MIN_ROWS = 64  # acting (one row) keeps float32 products: bfloat16 buys nothing there


class _SpatialEmbeddingLinear(torch.autograd.Function):
    """Per-channel pooling then dense, (B, C*S) -> (B, L), with a backward written for the CPU.

    h[b, c, f] = sum_s kernel[c, s, f] x[b, c, s]      pooled (see _pool_bmm / _pool_fused)
    out = h (B, C*F) @ dense (C*F, L) + bias            one GEMM

    Half the FLOPs of folding kernel and dense into one (C*S, L) matrix first (at HIL-SERL's shapes the fold
    costs a 256 x 8192 x 256 GEMM per pass and another for its weight gradient), and no (C*S, L) temporaries.
    The backward reuses h and shares g = dense @ grad^T between the kernel's and the input's gradients.
    x may be bfloat16 (cached trunk features): it is kept as it came and converted where it is read.
    Where `compute_dtype` is bfloat16 (opt-in, ROBOT_RL_BF16), a training batch's three dense products (out, the
    dense weight's gradient and g) take bfloat16 operands: on an AVX512-BF16 CPU 2.1x faster each (256 x 4096 x
    256 on 2 cores), the largest cost of an image update. The pooling, the kernel's and the input's gradients
    stay float32.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, dense: torch.Tensor, bias: torch.Tensor):
        c, s, f = kernel.shape
        h = _pool(x, kernel)  # (B, C*F)
        dense = dense.view(c * f, -1)
        if (
            kernel.dtype == torch.float32
            and x.shape[0] >= NECK_BF16_MIN_ROWS
            and compute_dtype(x.device) == torch.bfloat16
        ):
            # mixed precision: bfloat16 operands (saved as such for backward), float32 accumulation and result
            h, dense = h.to(torch.bfloat16), dense.to(torch.bfloat16)
            out = torch.mm(h, dense).float().add_(bias)
        else:
            out = torch.addmm(bias, h, dense)
        ctx.save_for_backward(x, kernel, dense, h)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, kernel, dense, h = ctx.saved_tensors  # dense (C*F, L), h (B, C*F): float32 or both bfloat16
        c, s, f = kernel.shape
        b = x.shape[0]
        grad_l = grad.to(h.dtype)
        grad_dense = torch.mm(h.t(), grad_l).view(c, f, -1).to(kernel.dtype)  # (C, F, L)
        g = torch.mm(dense, grad_l.t()).view(c, f, b).to(kernel.dtype)  # (C, F, B): the loss's gradient at h
        x = x.to(kernel.dtype)
        grad_kernel = torch.bmm(g, x.view(b, c, s).transpose(0, 1)).transpose(1, 2)  # (C, S, F)
        grad_x = None
        if ctx.needs_input_grad[0]:  # cached trunk features need none
            grad_x = torch.bmm(kernel, g).permute(2, 0, 1).reshape(b, c * s)  # (C, S, B) -> (B, C*S)
        return grad_x, grad_kernel, grad_dense, grad.sum(0)


class SpatialEmbeddingNeck(nn.Module):
    """HIL-SERL's learned spatial embeddings: per channel, `n_features` learned weightings of the h x w map,
    then a dense layer: (B, C, h, w) -> (B, C * n_features) -> Linear -> LayerNorm -> tanh -> (B, latent_dim).

    The pooling and the dense layer run as one autograd function (`_SpatialEmbeddingLinear`): the pooling as
    one batched product over channels (on CPU training batches: one compiled kernel, see `_Pooler`) and one
    GEMM each way, with no per-channel copies of the feature map.
    """

    def __init__(self, channels: int, height: int, width: int, latent_dim: int, n_features: int = 8):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(channels, height * width, n_features))  # (C, S, F)
        nn.init.kaiming_normal_(self.kernel, mode="fan_in")
        bound = (channels * n_features) ** -0.5  # nn.Linear's default init
        self.dense_weight = nn.Parameter(
            torch.empty(channels, n_features, latent_dim).uniform_(-bound, bound)
        )  # (C, F, L)
        self.dense_bias = nn.Parameter(torch.empty(latent_dim).uniform_(-bound, bound))
        self.out = nn.Sequential(nn.LayerNorm(latent_dim), nn.Tanh())

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        x = fmap.reshape(fmap.shape[0], -1)  # (B, C*S); copies a channels-last map into channel-major order
        return self.out(_SpatialEmbeddingLinear.apply(x, self.kernel, self.dense_weight, self.dense_bias))


def fold_batchnorm(trunk: nn.Module) -> nn.Module:
    """An inference-only copy of `trunk` with each BatchNorm2d folded into the conv before it (one op, not three).

    Valid for a trunk in eval mode (fixed statistics), which is how a frozen trunk runs; outputs equal the
    original's up to float rounding. A trunk without batch norm comes back as a plain copy.
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(trunk).eval().requires_grad_(False)
    for module in list(folded.modules()):
        if isinstance(module, (ResNet10, BasicBlock)):
            for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
                if hasattr(module, conv) and isinstance(getattr(module, bn, None), nn.BatchNorm2d):
                    setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
                    setattr(module, bn, nn.Identity())
        if isinstance(module, BasicBlock) and module.downsample is not None:
            module.downsample = fuse_conv_bn_eval(module.downsample[0], module.downsample[1])
    return folded


def trunk_output_shape(trunk: nn.Module, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(C, h, w) the trunk produces for one (H, W, C) image."""
    with torch.no_grad():
        dev = next(trunk.parameters()).device
        was_training = trunk.training
        trunk.eval()
        out = trunk(torch.zeros((1, *image_shape), dtype=torch.uint8, device=dev))
        trunk.train(was_training)
    return tuple(out.shape[1:])  # type: ignore[return-value]
