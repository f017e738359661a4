"""Sliding-window inference for images larger than a network's input (MONAI's habit).

Tiling (where the windows go) is separate from blending (how overlapping outputs are
merged), and the same job is offered as a plain function,
:func:`sliding_window_inference`, and as a configured callable,
:class:`SlidingWindowInferer`.  The predictor is any callable mapping an
``(B, C, h, w)`` tensor to ``(B, K, h, w)`` scores or probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as functional

Predictor = Callable[[torch.Tensor], torch.Tensor]
BLEND_MODES = ("gaussian", "constant")


def tile_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start offsets along one axis so windows of ``window`` cover ``0..size``.

    Windows step by ``window x (1 - overlap)``; the last window is aligned to the end so
    no window reaches outside the image (when ``size >= window``).
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if size <= window:
        return [0]
    step = max(1, int(window * (1.0 - overlap)))
    starts = list(range(0, size - window + 1, step))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def tile_grid(
    image_size: Sequence[int], window: Sequence[int], overlap: float
) -> list[tuple[slice, slice]]:
    """``(row slice, column slice)`` of every window over an ``(H, W)`` image."""
    rows = tile_starts(image_size[0], window[0], overlap)
    cols = tile_starts(image_size[1], window[1], overlap)
    return [
        (slice(r, r + window[0]), slice(c, c + window[1])) for r in rows for c in cols
    ]


def importance_map(
    window: Sequence[int], mode: str = "gaussian", sigma_scale: float = 0.125
) -> np.ndarray:
    """``(h, w)`` float32 blending weights of one window.

    ``gaussian`` favours a window's centre, where a convolutional net has seen the most
    context, so seams between tiles vanish; ``constant`` averages overlaps equally.
    """
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode must be one of {BLEND_MODES}, got {mode!r}")
    h, w = int(window[0]), int(window[1])
    if mode == "constant":
        return np.ones((h, w), dtype=np.float32)
    axes = []
    for n in (h, w):
        centre = (n - 1) / 2.0
        sigma = max(n * sigma_scale, 1e-3)
        axes.append(np.exp(-0.5 * ((np.arange(n) - centre) / sigma) ** 2))
    weights = np.outer(axes[0], axes[1]).astype(np.float32)
    weights /= weights.max()
    # A floor keeps every pixel's total weight above zero at the image border.
    return np.maximum(weights, 1e-3).astype(np.float32)


def sliding_window_inference(
    inputs: torch.Tensor,
    window: Sequence[int],
    predictor: Predictor,
    overlap: float = 0.25,
    mode: str = "gaussian",
    window_batch_size: int = 4,
    pad_value: float = 0.0,
) -> torch.Tensor:
    """Run ``predictor`` on overlapping ``window``-sized tiles of ``inputs`` and blend.

    Args:
        inputs: ``(N, C, H, W)`` tensor; images smaller than the window are padded
            with ``pad_value`` and the result cropped back.
        window: ``(h, w)`` the network's input size.
        predictor: maps ``(B, C, h, w)`` to ``(B, K, h, w)``.
    Returns:
        ``(N, K, H, W)`` float32 weighted average of the tile outputs.
    """
    if inputs.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(inputs.shape)}")
    n, _, height, width = inputs.shape
    wh, ww = int(window[0]), int(window[1])
    pad_h, pad_w = max(0, wh - height), max(0, ww - width)
    if pad_h or pad_w:
        inputs = functional.pad(inputs, (0, pad_w, 0, pad_h), value=pad_value)
    ph, pw = inputs.shape[-2:]
    tiles = tile_grid((ph, pw), (wh, ww), overlap)
    weights = torch.from_numpy(importance_map((wh, ww), mode)).to(inputs.device)
    output: torch.Tensor | None = None
    norm = torch.zeros((1, 1, ph, pw), dtype=torch.float32, device=inputs.device)
    for rs, cs in tiles:
        norm[..., rs, cs] += weights
    # Every (image, tile) pair is one unit of work, batched across images and tiles.
    units = [(i, t) for i in range(n) for t in range(len(tiles))]
    for begin in range(0, len(units), max(1, window_batch_size)):
        chunk = units[begin : begin + window_batch_size]
        batch = torch.stack([inputs[i, :, tiles[t][0], tiles[t][1]] for i, t in chunk])
        scores = predictor(batch).float()
        if scores.shape[-2:] != (wh, ww):
            raise ValueError(
                f"the network's output is {tuple(scores.shape[-2:])} for a {wh}x{ww} input; "
                "sliding-window inference needs outputs the size of the input (add a Crop layer)"
            )
        if output is None:
            output = torch.zeros(
                (n, scores.shape[1], ph, pw), dtype=torch.float32, device=inputs.device
            )
        for (i, t), score in zip(chunk, scores, strict=False):
            rs, cs = tiles[t]
            output[i, :, rs, cs] += score * weights
    assert output is not None
    output /= norm
    return output[..., :height, :width]


class SlidingWindowInferer:
    """:func:`sliding_window_inference` with its settings fixed; call with (inputs, predictor)."""

    def __init__(
        self,
        window: Sequence[int],
        overlap: float = 0.25,
        mode: str = "gaussian",
        window_batch_size: int = 4,
        pad_value: float = 0.0,
    ) -> None:
        if mode not in BLEND_MODES:
            raise ValueError(f"blend mode must be one of {BLEND_MODES}, got {mode!r}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        self.window = (int(window[0]), int(window[1]))
        self.overlap = overlap
        self.mode = mode
        self.window_batch_size = window_batch_size
        self.pad_value = pad_value

    def __call__(self, inputs: torch.Tensor, predictor: Predictor) -> torch.Tensor:
        return sliding_window_inference(
            inputs, self.window, predictor, self.overlap, self.mode,
            self.window_batch_size, self.pad_value,
        )

    def describe(self) -> str:
        return (
            f"sliding window {self.window[0]}x{self.window[1]}, "
            f"{self.overlap:.0%} overlap, {self.mode} blending"
        )
