"""Reference convolution algorithms in plain PyTorch tensor ops: direct, gemm (im2col), fft, winograd.

They run on the CPU (and the GPU), make the whole pipeline testable without a GPU, and serve as the
reference for the cuDNN path's correctness. Each computes what ``F.conv2d`` computes (cross-correlation,
zero padding, stride, dilation, groups), and each is checked against it in the tests.

``supports(algo, geometry, layout)`` says in words why a layer cannot run an algorithm (None if it can), and
``make_runner`` builds a callable for one layer and one input shape, doing once what can be done once
(the FFT of the kernels, the Winograd transform of the kernels).

Each has an NHWC form (layout=nhwc) that computes on channels_last memory as it lies: the input read through
its (N, H, W, C) view (no copy for a channels_last tensor), the channels the innermost index of every product
(im2col rows of R*S*C per output pixel, as an NHWC implicit GEMM reads them; per-tap, per-frequency and
per-tile channel products), the output written as (N, H, W, K) and returned as its (N, K, H, W) view, which is
channels_last, as torch's convolution returns for channels_last operands.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from harness.algorithms.geometry import ConvGeometry

REFERENCE_ALGORITHMS = ("direct", "gemm", "fft", "winograd")

Runner = Callable[[torch.Tensor], torch.Tensor]


def reference_algorithms() -> tuple[str, ...]:
    """The algorithms with a reference implementation: the built-in four, then any registered since."""
    from harness.algorithms import registry

    return (*REFERENCE_ALGORITHMS, *(n for n in registry.reference_names() if n not in REFERENCE_ALGORITHMS))


def supports(algo: str, g: ConvGeometry, layout: str = "nchw") -> str | None:
    """None if the reference ``algo`` can run layer ``g`` in ``layout``, else the reason it cannot."""
    from harness.algorithms import registry

    known = reference_algorithms()
    if algo not in known:
        return f"{algo} has no reference implementation (only {', '.join(known)})"
    return registry.get(algo).reason_unsupported(g, layout)


def winograd_supports(g: ConvGeometry) -> str | None:
    """Winograd F(2x2,3x3) needs a 3x3 kernel, stride 1 and dilation 1."""
    if g.kernel != (3, 3) or g.stride != (1, 1) or g.dilation != (1, 1):
        return (
            f"winograd F(2x2,3x3) needs kernel 3x3, stride 1, dilation 1; this layer has kernel "
            f"{g.kernel[0]}x{g.kernel[1]}, stride {g.stride[0]}x{g.stride[1]}, dilation {g.dilation[0]}x{g.dilation[1]}"
        )
    return None


def _bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def _nhwc_in(x: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """The (N, H, W, C) view of an (N, C, H, W) input, zero-padded by the layer's padding (padded: a new,
    dense NHWC tensor; the view itself is dense where ``x`` is channels_last)."""
    return F.pad(x.permute(0, 2, 3, 1), (0, 0, g.padding[1], g.padding[1], g.padding[0], g.padding[0]))


def _nhwc_out(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """An (N, H, W, K) result plus bias, as its (N, K, H, W) view: a channels_last tensor."""
    y = y.contiguous()  # dense (N, H, W, K) first: an elementwise op on a strided view may keep its strides
    return (y if bias is None else y + bias).permute(0, 3, 1, 2)


def _taps(xp: torch.Tensor, g: ConvGeometry, oh: int, ow: int):  # type: ignore[no-untyped-def]
    """Each kernel tap (i, j) and the (N, OH, OW, C) slice of the padded NHWC input it multiplies."""
    sh, sw = g.stride
    for i in range(g.kernel[0]):
        r0 = i * g.dilation[0]
        for j in range(g.kernel[1]):
            c0 = j * g.dilation[1]
            yield i, j, xp[:, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw]


def _krsc(w: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """The weight (K, C/G, R, S) as (G, K/G, R, S, C/G): the KRSC order channels_last stores it in."""
    go, gc = g.out_channels // g.groups, g.in_channels // g.groups
    return w.permute(0, 2, 3, 1).reshape(g.groups, go, *g.kernel, gc)


def direct_nhwc(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry) -> torch.Tensor:
    """``direct`` on NHWC memory: per kernel tap, the (N, OH, OW, C) slice times the tap's (K, C) matrix."""
    n, gc = x.shape[0], g.in_channels // g.groups
    oh, ow = g.output_hw(x.shape[2], x.shape[3])
    xp = _nhwc_in(x, g)
    wk = _krsc(w, g)
    y = x.new_zeros(n, oh, ow, g.groups, g.out_channels // g.groups)
    for i, j, tap in _taps(xp, g, oh, ow):
        y += torch.einsum("nhwgc,goc->nhwgo", tap.reshape(n, oh, ow, g.groups, gc), wk[:, :, i, j])
    return _nhwc_out(y.reshape(n, oh, ow, g.out_channels), bias)


def cols_nhwc(x: torch.Tensor, g: ConvGeometry, oh: int, ow: int) -> torch.Tensor:
    """im2col on NHWC memory: (G, N*OH*OW, R*S*C/G), one row per output pixel and group, taps outer and the
    channels innermost (the order of the KRSC weight)."""
    n, gc = x.shape[0], g.in_channels // g.groups
    taps = [tap.reshape(n * oh * ow, g.groups, gc) for _, _, tap in _taps(_nhwc_in(x, g), g, oh, ow)]
    return torch.stack(taps, dim=2).permute(1, 0, 2, 3).reshape(g.groups, n * oh * ow, -1)


def gemm_nhwc(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry) -> torch.Tensor:
    """im2col on NHWC memory: one row of R*S*C/G values per output pixel and group, times the KRSC weight."""
    n = x.shape[0]
    oh, ow = g.output_hw(x.shape[2], x.shape[3])
    cols = cols_nhwc(x, g, oh, ow)  # (G, L, R*S*C/G)
    wg = _krsc(w, g).reshape(g.groups, g.out_channels // g.groups, -1)  # (G, K/G, R*S*C/G)
    y = torch.matmul(cols, wg.transpose(1, 2))  # (G, L, K/G)
    return _nhwc_out(y.permute(1, 0, 2).reshape(n, oh, ow, g.out_channels), bias)


def direct(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry) -> torch.Tensor:
    """Direct convolution: for each kernel tap, a shifted, strided slice of the input times that tap."""
    n = x.shape[0]
    oh, ow = g.output_hw(x.shape[2], x.shape[3])
    xp = F.pad(x, (g.padding[1], g.padding[1], g.padding[0], g.padding[0]))
    xg = xp.view(n, g.groups, g.in_channels // g.groups, xp.shape[2], xp.shape[3])
    wg = w.view(g.groups, g.out_channels // g.groups, g.in_channels // g.groups, *g.kernel)
    y = x.new_zeros(n, g.groups, g.out_channels // g.groups, oh, ow)
    sh, sw = g.stride
    for i in range(g.kernel[0]):
        r0 = i * g.dilation[0]
        for j in range(g.kernel[1]):
            c0 = j * g.dilation[1]
            tap = xg[:, :, :, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw]
            y += torch.einsum("ngchw,goc->ngohw", tap, wg[..., i, j])
    return _bias(y.view(n, g.out_channels, oh, ow), bias)


def gemm(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry) -> torch.Tensor:
    """im2col (unfold) followed by one matrix product per group."""
    n = x.shape[0]
    oh, ow = g.output_hw(x.shape[2], x.shape[3])
    cols = F.unfold(x, g.kernel, dilation=g.dilation, padding=g.padding, stride=g.stride)  # (N, C*kh*kw, L)
    cols = cols.view(n, g.groups, -1, oh * ow)
    wg = w.reshape(g.groups, g.out_channels // g.groups, -1)
    y = torch.matmul(wg, cols)  # (N, G, O/G, L)
    return _bias(y.reshape(n, g.out_channels, oh, ow), bias)


def spread_kernel(w: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """The weight with its taps spread by the dilation: (K, C/G, dilated R, dilated S), zeros between taps."""
    keh, kew = g.effective_kernel()
    spread = w.new_zeros(w.shape[0], w.shape[1], keh, kew)
    spread[:, :, :: g.dilation[0], :: g.dilation[1]] = w
    return spread


class FFTConv:
    """Convolution by the FFT: kernel spectra computed once per input shape, then per-frequency products.

    Cross-correlation is convolution with the flipped kernel; with an FFT the size of the padded input,
    the circular wrap-around only touches outputs that are discarded. Stride is applied by subsampling the
    stride-1 result, dilation by spreading the kernel taps.
    """

    def __init__(self, w: torch.Tensor, g: ConvGeometry, in_hw: tuple[int, int], layout: str = "nchw") -> None:
        self.g, self.layout = g, layout
        self.hp, self.wp = in_hw[0] + 2 * g.padding[0], in_hw[1] + 2 * g.padding[1]
        self.keh, self.kew = g.effective_kernel()
        spectrum = torch.fft.rfft2(spread_kernel(w, g).flip(-2, -1), s=(self.hp, self.wp))
        # (G, O/G, C/G, F) -> (F, G, C/G, O/G): one matrix product per frequency and group
        go, gc = g.out_channels // g.groups, g.in_channels // g.groups
        self.kernel = spectrum.reshape(g.groups, go, gc, -1).permute(3, 0, 2, 1).contiguous()
        self.weight_version = w._version

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.layout == "nhwc":
            return self._nhwc(x, bias)
        g, n = self.g, x.shape[0]
        oh, ow = g.output_hw(x.shape[2], x.shape[3])
        xp = F.pad(x, (g.padding[1], g.padding[1], g.padding[0], g.padding[0]))
        spec = torch.fft.rfft2(xp)  # (N, C, Hp, Wp//2+1)
        fh, fw = spec.shape[-2:]
        spec = spec.reshape(n, g.groups, g.in_channels // g.groups, fh * fw).permute(3, 1, 0, 2)  # (F, G, N, C/G)
        prod = torch.matmul(spec, self.kernel)  # (F, G, N, O/G)
        prod = prod.permute(2, 1, 3, 0).reshape(n, g.out_channels, fh, fw)
        full = torch.fft.irfft2(prod, s=(self.hp, self.wp))
        r0, c0 = self.keh - 1, self.kew - 1
        sh, sw = g.stride
        y = full[:, :, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw]
        return _bias(y.contiguous(), bias)

    def _nhwc(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The same on NHWC memory: 2-d FFTs over the H and W dimensions of (N, H, W, C), then per
        frequency a product over the channels, which are innermost."""
        g, n = self.g, x.shape[0]
        oh, ow = g.output_hw(x.shape[2], x.shape[3])
        spec = torch.fft.rfft2(_nhwc_in(x, g), dim=(1, 2))  # (N, Hp, Wp//2+1, C)
        fh, fw = spec.shape[1:3]
        spec = spec.reshape(n, fh * fw, g.groups, g.in_channels // g.groups).permute(1, 2, 0, 3)  # (F, G, N, C/G)
        prod = torch.matmul(spec, self.kernel)  # (F, G, N, K/G)
        prod = prod.permute(2, 0, 1, 3).reshape(n, fh, fw, g.out_channels)
        full = torch.fft.irfft2(prod, s=(self.hp, self.wp), dim=(1, 2))  # (N, Hp, Wp, K)
        r0, c0 = self.keh - 1, self.kew - 1
        sh, sw = g.stride
        return _nhwc_out(full[:, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw], bias)


# Winograd F(2x2, 3x3) (Lavin & Gray, 2016): Y = A^T [ (G g G^T) * (B^T d B) ] A over 4x4 input tiles.
_BT = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
_G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
_AT = [[1, 1, 1, 0], [0, 1, -1, -1]]


class WinogradConv:
    """Winograd F(2x2,3x3) for 3x3, stride 1, dilation 1 layers; the kernel transform is done once."""

    def __init__(self, w: torch.Tensor, g: ConvGeometry, layout: str = "nchw") -> None:
        self.g, self.layout = g, layout
        G = torch.tensor(_G, dtype=w.dtype, device=w.device)
        u = G @ w @ G.T  # (O, C/G, 4, 4)
        go, gc = g.out_channels // g.groups, g.in_channels // g.groups
        self.kernel = u.reshape(g.groups, go, gc, 16).permute(3, 0, 1, 2).contiguous()  # (16, G, O/G, C/G)
        self.bt = torch.tensor(_BT, dtype=w.dtype, device=w.device)
        self.at = torch.tensor(_AT, dtype=w.dtype, device=w.device)
        self.weight_version = w._version

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.layout == "nhwc":
            return self._nhwc(x, bias)
        g, n = self.g, x.shape[0]
        oh, ow = g.output_hw(x.shape[2], x.shape[3])
        th, tw = (oh + 1) // 2, (ow + 1) // 2
        ph, pw = g.padding
        # pad so that th x tw tiles of 4x4 with step 2 fit: rows 0 .. 2*th+1
        xp = F.pad(x, (pw, 2 * tw + 2 - x.shape[3] - pw, ph, 2 * th + 2 - x.shape[2] - ph))
        tiles = xp.unfold(2, 4, 2).unfold(3, 4, 2)  # (N, C, th, tw, 4, 4)
        v = self.bt @ tiles @ self.bt.T
        gc = g.in_channels // g.groups
        v = v.reshape(n, g.groups, gc, th * tw, 16).permute(4, 1, 2, 0, 3).reshape(16, g.groups, gc, n * th * tw)
        m = torch.matmul(self.kernel, v)  # (16, G, O/G, N*T)
        m = m.reshape(4, 4, g.out_channels, n, th, tw).permute(3, 2, 4, 5, 0, 1)  # (N, O, th, tw, 4, 4)
        y = self.at @ m @ self.at.T  # (N, O, th, tw, 2, 2)
        y = y.permute(0, 1, 2, 4, 3, 5).reshape(n, g.out_channels, 2 * th, 2 * tw)[:, :, :oh, :ow]
        return _bias(y.contiguous(), bias)

    def _nhwc(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The same on NHWC memory: 4x4 tiles over the H and W dimensions of (N, H, W, C), then per tile
        element a product over the channels, which are innermost."""
        g, n = self.g, x.shape[0]
        oh, ow = g.output_hw(x.shape[2], x.shape[3])
        th, tw = (oh + 1) // 2, (ow + 1) // 2
        ph, pw = g.padding
        xh = x.permute(0, 2, 3, 1)
        xp = F.pad(xh, (0, 0, pw, 2 * tw + 2 - x.shape[3] - pw, ph, 2 * th + 2 - x.shape[2] - ph))
        tiles = xp.unfold(1, 4, 2).unfold(2, 4, 2)  # (N, th, tw, C, 4, 4)
        v = self.bt @ tiles @ self.bt.T
        gc = g.in_channels // g.groups
        v = v.reshape(n * th * tw, g.groups, gc, 16).permute(3, 1, 0, 2)  # (16, G, N*T, C/G)
        m = torch.matmul(v, self.kernel.transpose(2, 3))  # (16, G, N*T, K/G)
        m = m.permute(2, 1, 3, 0).reshape(n, th, tw, g.out_channels, 4, 4)
        y = self.at @ m @ self.at.T  # (N, th, tw, K, 2, 2)
        y = y.permute(0, 1, 4, 2, 5, 3).reshape(n, 2 * th, 2 * tw, g.out_channels)[:, :oh, :ow]
        return _nhwc_out(y, bias)


Bias = torch.Tensor | None
HW = tuple[int, int]


def direct_runner(weight: torch.Tensor, bias: Bias, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> Runner:
    """The registry's factory for ``direct``."""
    conv = direct_nhwc if layout == "nhwc" else direct
    return lambda x: conv(x, weight, bias, g)


def gemm_runner(weight: torch.Tensor, bias: Bias, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> Runner:
    """The registry's factory for ``gemm``."""
    conv = gemm_nhwc if layout == "nhwc" else gemm
    return lambda x: conv(x, weight, bias, g)


def fft_runner(weight: torch.Tensor, bias: Bias, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> Runner:
    """The registry's factory for ``fft``: the kernel spectra are computed here, once."""
    return _guarded(FFTConv(weight, g, in_hw, layout), weight, bias)


def winograd_runner(weight: torch.Tensor, bias: Bias, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> Runner:
    """The registry's factory for ``winograd``: the kernel transform is done here, once."""
    return _guarded(WinogradConv(weight, g, layout), weight, bias)


def _guarded(conv: FFTConv | WinogradConv, weight: torch.Tensor, bias: torch.Tensor | None) -> Runner:
    """``conv`` as a runner that refuses weights changed since its precomputation."""

    def run(x: torch.Tensor) -> torch.Tensor:
        if conv.weight_version != weight._version:
            raise RuntimeError("the layer's weights changed after its plan was built; prepare the model again")
        return conv(x, bias)

    return run


def make_runner(
    algo: str, weight: torch.Tensor, bias: Bias, g: ConvGeometry, in_hw: HW, layout: str = "nchw"
) -> Runner:
    """A callable computing this layer with ``algo`` (its registry record's reference) for inputs of ``in_hw``
    in the memory ``layout`` (nchw or nhwc: its output is in that layout too)."""
    from harness.algorithms import registry

    reason = supports(algo, g, layout)
    if reason:
        raise ValueError(reason)
    factory = registry.get(algo).reference
    if layout == "nchw":  # a factory written before layouts takes four arguments
        return factory(weight, bias, g, in_hw)  # type: ignore[misc]
    return factory(weight, bias, g, in_hw, layout=layout)  # type: ignore[misc,call-arg]
