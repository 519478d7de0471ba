"""The geometry of a 2-d convolution layer, independent of any backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only for the type: the analysis reads geometries without importing torch
    from torch import nn


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


@dataclass(frozen=True)
class ConvGeometry:
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @classmethod
    def of(cls, conv: nn.Conv2d) -> ConvGeometry:
        if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            raise ValueError(
                f"only numeric zero padding is supported (got padding={conv.padding!r}, "
                f"padding_mode={conv.padding_mode!r})"
            )
        return cls(
            conv.in_channels,
            conv.out_channels,
            _pair(conv.kernel_size),
            _pair(conv.stride),
            _pair(conv.padding),
            _pair(conv.dilation),
            conv.groups,
        )

    def effective_kernel(self) -> tuple[int, int]:
        return (self.dilation[0] * (self.kernel[0] - 1) + 1, self.dilation[1] * (self.kernel[1] - 1) + 1)

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        keh, kew = self.effective_kernel()
        oh = (h + 2 * self.padding[0] - keh) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - kew) // self.stride[1] + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"input {h}x{w} is smaller than the kernel of this layer ({self})")
        return oh, ow

    def describe(self) -> str:
        return (
            f"{self.in_channels}->{self.out_channels} k{self.kernel[0]}x{self.kernel[1]} "
            f"s{self.stride[0]} p{self.padding[0]} d{self.dilation[0]} g{self.groups}"
        )
