"""Engine speed and memory: prototxt-built nets vs the same nets written by hand.

Figures (ratios measured in this run):
- training step (forward + backward + SGD update) of netlib's FCN-8s and U-Net built
  from prototxt by ``dlp.engine.Net`` vs a plain ``nn.Module`` written by hand with
  the same layers (target <= 1.05);
- achieved GFLOP/s of the engine's training step as a share of this machine's matmul
  peak (a large ``torch.mm`` timed in the same run);
- peak resident memory of a training step, engine vs hand-written, each measured in
  a fresh subprocess (target <= 1.2).

Sizes are reduced from the nets' 256x256 so the whole run takes minutes on 2 cores
(``DLP_BENCH_FCN8S_SIZE`` / ``DLP_BENCH_UNET_SIZE`` override them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from torch import nn

from bench.common import Figure, interleaved_ratio

ROOT = Path(__file__).resolve().parent.parent
SIZES = {
    "fcn8s": int(os.environ.get("DLP_BENCH_FCN8S_SIZE", "96")),
    "unet2d": int(os.environ.get("DLP_BENCH_UNET_SIZE", "128")),
}
BATCH = {"fcn8s": 1, "unet2d": 4}


# -- the same architectures, written by hand ---------------------------------------------------

def _conv(cin: int, cout: int, k: int, pad: int = 0) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=pad)


class HandFCN8s(nn.Module):
    """netlib/fcn8s as one would write it in PyTorch (VGG16 body, pad 100, crops)."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        widths = [(1, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3)]
        self.stages = nn.ModuleList()
        for index, (cin, cout, n) in enumerate(widths):
            convs = [_conv(cin if i == 0 else cout, cout, 3, 100 if index == i == 0 else 1)
                     for i in range(n)]
            self.stages.append(nn.ModuleList(convs))
        self.fc6 = _conv(512, 4096, 7)
        self.fc7 = _conv(4096, 4096, 1)
        self.score_fr = _conv(4096, classes, 1)
        self.score_pool4 = _conv(512, classes, 1)
        self.score_pool3 = _conv(256, classes, 1)
        self.up2 = nn.ConvTranspose2d(classes, classes, 4, 2, groups=classes, bias=False)
        self.up_pool4 = nn.ConvTranspose2d(classes, classes, 4, 2, groups=classes, bias=False)
        self.up8 = nn.ConvTranspose2d(classes, classes, 16, 8, groups=classes, bias=False)
        for deconv in (self.up2, self.up_pool4, self.up8):
            deconv.weight.requires_grad_(False)

    def caffe_order(self) -> list[nn.Module]:
        """The convolutions in the prototxt's layer order (to copy the engine's weights)."""
        body = [conv for convs in self.stages for conv in convs]
        return [*body, self.fc6, self.fc7, self.score_fr, self.up2, self.score_pool4,
                self.up_pool4, self.score_pool3, self.up8]

    def forward(self, data: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        x = data
        pools = []
        for convs in self.stages:
            for conv in convs:
                x = F.relu(conv(x), inplace=True)
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            pools.append(x)
        x = F.dropout(F.relu(self.fc6(x), inplace=True), 0.5, self.training)
        x = F.dropout(F.relu(self.fc7(x), inplace=True), 0.5, self.training)
        up = self.up2(self.score_fr(x))
        s4 = self.score_pool4(pools[3])[:, :, 5:5 + up.shape[2], 5:5 + up.shape[3]]
        up = self.up_pool4(up + s4)
        s3 = self.score_pool3(pools[2])[:, :, 9:9 + up.shape[2], 9:9 + up.shape[3]]
        score = self.up8(up + s3)[:, :, 31:31 + data.shape[2], 31:31 + data.shape[3]]
        return F.cross_entropy(score, label[:, 0].long(), ignore_index=255)


class HandUNet(nn.Module):
    """netlib/unet2d by hand: 5 levels 16...256 channels, deconv 2x2 up, concat skips,
    softmax loss + soft Dice loss."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        widths = [16, 32, 64, 128, 256]
        self.enc = nn.ModuleList()
        cin = 1
        for w in widths:
            self.enc.append(nn.ModuleList([_conv(cin, w, 3, 1), _conv(w, w, 3, 1)]))
            cin = w
        self.ups = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.ups.append(nn.ConvTranspose2d(w * 2, w, 2, 2))
            self.dec.append(nn.ModuleList([_conv(w * 2, w, 3, 1), _conv(w, w, 3, 1)]))
        self.score = _conv(16, classes, 1)

    def caffe_order(self) -> list[nn.Module]:
        """The convolutions in the prototxt's layer order (to copy the engine's weights)."""
        decoder = [m for up, (c1, c2) in zip(self.ups, self.dec, strict=True)
                   for m in (up, c1, c2)]
        return [*[c for pair in self.enc for c in pair], *decoder, self.score]

    def forward(self, data: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        skips = []
        x = data
        for level, (c1, c2) in enumerate(self.enc):
            x = F.relu(c2(F.relu(c1(x), inplace=True)), inplace=True)
            if level < len(self.enc) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        for up, (c1, c2), skip in zip(self.ups, self.dec, reversed(skips), strict=False):
            x = F.relu(up(x), inplace=True)[:, :, :skip.shape[2], :skip.shape[3]]
            x = torch.cat([skip, x], 1)
            x = F.relu(c2(F.relu(c1(x), inplace=True)), inplace=True)
        score = self.score(x)
        target = label[:, 0].long()
        ce = F.cross_entropy(score, target, ignore_index=255)
        prob = torch.softmax(score, 1)
        onehot = F.one_hot(target, score.shape[1]).permute(0, 3, 1, 2).to(prob.dtype)
        inter = (prob * onehot).sum((0, 2, 3))
        sizes = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
        dice = 1 - ((2 * inter + 1) / (sizes + 1))[1:].mean()
        return ce + dice


HAND = {"fcn8s": HandFCN8s, "unet2d": HandUNet}


# -- building the two sides ------------------------------------------------------------------

def _engine_net(name: str, size: int, memory_format: str = "auto"):
    from dlp.engine.net import Net
    from dlp.net.filter import filter_net
    from dlp.net.prototxt import read_net

    net = filter_net(read_net(ROOT / "netlib" / name / "train_val.prototxt"), "TRAIN")
    batch = BATCH[name]
    shapes = {"data": (batch, 1, size, size), "label": (batch, 1, size, size)}
    for layer in net.layer:  # feed the Data layers' blobs directly (no LMDB needed)
        if layer.type == "Data":
            tops = list(layer.top)
            layer_name = layer.name
            layer.Clear()
            layer.name, layer.type = layer_name, "Input"
            layer.top.extend(tops)
            for top in tops:
                layer.input_param.shape.add().dim.extend(shapes[top])
    result = Net(net, "TRAIN", seed=0, memory_format=memory_format)
    return result, shapes, net


def _batch(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"data": torch.rand(shapes["data"], generator=generator),
            "label": torch.randint(0, 2, shapes["label"], generator=generator).float()}


def _sgd(params: list[tuple[torch.Tensor, float]]) -> torch.optim.SGD:
    groups = [{"params": [p], "lr": 1e-3 * lr} for p, lr in params if p.requires_grad]
    return torch.optim.SGD(groups, lr=1e-3, momentum=0.9, weight_decay=5e-4)


def engine_step(name: str, size: int, memory_format: str = "auto") -> Callable[[], None]:
    net, shapes, _ = _engine_net(name, size, memory_format)
    inputs = _batch(shapes)
    optimizer = _sgd([(e.tensor, e.lr_mult) for e in net.learnable_params()])

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        net.loss(net(inputs)).backward()
        optimizer.step()

    return step


def hand_step(name: str, size: int, copy_weights: bool = False) -> Callable[[], None]:
    """A training step of the hand-written net; ``copy_weights`` starts it from the
    engine's initial weights so both do identical arithmetic (not in the memory
    measurement, where building the engine's net would inflate the peak)."""
    model = HAND[name]().train()
    if copy_weights:
        engine, _, _ = _engine_net(name, size, "contiguous")
        convs = [layer for layer, t in zip(engine.layers, engine.layer_types, strict=True)
                 if t in ("Convolution", "Deconvolution")]
        with torch.no_grad():
            for mine, theirs in zip(model.caffe_order(), convs, strict=True):
                mine.weight.copy_(theirs.weight)
                if mine.bias is not None:
                    mine.bias.copy_(theirs.bias)
        del engine, convs
    batch = BATCH[name]
    inputs = _batch({"data": (batch, 1, size, size), "label": (batch, 1, size, size)})
    optimizer = _sgd([(p, 2.0 if n.endswith("bias") else 1.0)
                      for n, p in model.named_parameters()])

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(inputs["data"], inputs["label"]).backward()
        optimizer.step()

    return step


def training_flops(name: str, size: int) -> int:
    """Forward FLOPs from dlp.net.shapes x 3 (backward ≈ twice the forward)."""
    from dlp.net.shapes import infer_shapes

    _, _, net = _engine_net(name, size)
    info = infer_shapes(net, "TRAIN")
    return 3 * sum(layer.flops or 0 for layer in info.layers)


def matmul_peak_gflops(n: int = 2048) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's VmHWM belongs to the address space, so it starts afresh at exec;
    ``ru_maxrss`` would carry over the (larger) parent's peak into a child.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child_peak_rss(kind: str, name: str, size: int) -> float:
    """Peak RSS (MiB) of two training steps in a fresh interpreter."""
    make = "engine_step" if kind == "engine" else "hand_step"
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r});"
        "from bench import bench_engine as b;"
        f"step = b.{make}({name!r}, {size}); step(); step();"
        "print(b.peak_rss_mib())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def balanced_ratio(candidate: Callable[[], None], reference: Callable[[], None],
                   repeats: int = 3) -> tuple[float, float, float]:
    """``interleaved_ratio`` in both orders, combined by geometric mean.

    With gigabyte-sized nets whichever step runs first in a pair measured ~5 % faster
    here (allocator and cache state), so one order alone biases the ratio.
    """
    first, t_cand1, t_ref1 = interleaved_ratio(candidate, reference, repeats)
    second, t_ref2, t_cand2 = interleaved_ratio(reference, candidate, repeats)
    return (first / second) ** 0.5, (t_cand1 + t_cand2) / 2, (t_ref1 + t_ref2) / 2


def run() -> list[Figure]:
    figures: list[Figure] = []
    # Other work on a shared machine lowers a single measurement of the peak; the best
    # of several taken around the timed steps is the machine's.
    peaks = [matmul_peak_gflops()]
    for name in ("unet2d", "fcn8s"):
        size = SIZES[name]
        engine = engine_step(name, size)
        hand = hand_step(name, size, copy_weights=True)
        ratio, t_engine, t_hand = balanced_ratio(engine, hand, repeats=3)
        peaks.append(matmul_peak_gflops())
        peak = max(peaks)
        figures.append(Figure(
            f"{name} train step, engine / hand-written", ratio, 1.05,
            detail=f"{BATCH[name]}x1x{size}x{size}: {t_engine * 1e3:.0f} ms vs "
                   f"{t_hand * 1e3:.0f} ms"))
        plain = engine_step(name, size, "contiguous")
        last = engine_step(name, size, "channels_last")
        layout_ratio, _, _ = balanced_ratio(plain, last, repeats=2)
        chosen = "channels_last" if _engine_net(name, size)[0].channels_last else "contiguous"
        figures.append(Figure(f"{name} train step, contiguous / channels_last layout",
                              layout_ratio, detail=f"> 1: channels_last faster; auto chose "
                                                   f"{chosen}"))
        del plain, last
        flops = training_flops(name, size)
        gflops = flops / t_engine / 1e9
        figures.append(Figure(f"{name} train step GFLOP/s share of matmul peak",
                              gflops / peak, detail=f"{gflops:.1f} GFLOP/s of {peak:.1f}"))
        del engine, hand
        rss_engine = _child_peak_rss("engine", name, size)
        rss_hand = _child_peak_rss("hand", name, size)
        figures.append(Figure(f"{name} peak RSS, engine / hand-written", rss_engine / rss_hand,
                              1.2, detail=f"{rss_engine:.0f} MiB vs {rss_hand:.0f} MiB"))
    figures.insert(0, Figure("matmul peak GFLOP/s (torch.mm 2048^2, best of "
                             f"{len(peaks)})", max(peaks)))
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
