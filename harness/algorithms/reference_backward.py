"""Reference backward convolutions: the gradient of the input (backward_data) and of the weight
(backward_filter), each written as the backward of its own formulation, in plain PyTorch tensor ops.

For a layer y = conv(x, w) (cross-correlation, zero padding p, stride s, dilation d, groups) and the gradient
dy of a loss with respect to y:

- ``direct``: per kernel tap (i, j), the tap's strided window of the padded input; backward_data adds
  dy x w[:, :, i, j] into that window of a zero padded-input buffer (a scatter per tap), backward_filter
  sums window x dy over the batch and the output pixels into w's tap (i, j).
- ``gemm`` (im2col): backward_filter is one matrix product per group, dy as (K/G, N*L) times the im2col
  matrix of x as (N*L, C/G*R*S); backward_data is W^T x dy (the gradient of the im2col matrix), scattered
  back onto the input by col2im (``F.fold`` in NCHW, a scatter-add per tap in NHWC).
- ``fft``: both in the frequency domain of the padded input's size. dy is first dilated by the stride (s-1
  zeros between its pixels: the positions a stride-1 convolution would also have produced), the kernel
  spread by its dilation. backward_data is the full convolution of the dilated dy with the spread kernel (the
  full correlation with the flipped kernel): the product of their spectra, summed over the output channels
  per frequency, cropped by the padding. backward_filter is the correlation of the padded x with the dilated
  dy: the spectrum of x times the conjugate spectrum of dy, summed over the batch per frequency, read at the
  dilated tap positions. Both transforms are the padded input's size, so nothing wraps around.
- ``winograd`` F(2x2,3x3), the forward's limits kept (3x3, stride 1, dilation 1): backward_data of such a
  layer is itself a 3x3, stride-1 convolution, of dy padded by 2-p (cropped by p-2 where p > 2) with the
  kernel flipped and its input and output channels exchanged, so it runs the forward's Winograd transform
  (``reference.WinogradConv``). backward_filter is Winograd F(3x3,2x2): dy in 2x2 tiles, the padded input in
  the 4x4 tiles they see, the product per tile element summed over the batch and the tiles before the one
  output transform gives the 3x3 gradient (as cuDNN's non-fused Winograd backward-filter does; cuDNN's fused
  BWD_FILTER_ALGO_WINOGRAD is documented as not implemented).

Each has an NHWC form (layout=nhwc) computing on the channels_last memory as it lies, as the forward's do
(reference.py): the channels the innermost index of every product, gradients returned channels_last (the
input's gradient as an (N, C, H, W) view of (N, H, W, C) memory, the weight's as a (K, C/G, R, S) view of KRSC
memory), as torch's autograd returns them for channels_last operands.

``supports(direction, algo, g, layout)`` says why a layer cannot run an algorithm in a direction (None if it
can); ``make_runner`` builds, for one layer and one input size, backward_data's ``run(grad_out) -> grad_input``
or backward_filter's ``run(x, grad_out) -> grad_weight``. The bias gradient is not a convolution: the caller
sums grad_out over (N, H, W). Which algorithm has which backward is its registry record's
(``Algorithm.reference_backward_data`` / ``reference_backward_filter``); an algorithm registered with a
forward reference only is unsupported in the backward directions, with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.reference import (
    WinogradConv,
    _krsc,
    _nhwc_in,
    _nhwc_out,
    _taps,
    cols_nhwc,
    reference_algorithms,
    spread_kernel,
)

DIRECTIONS = ("backward_data", "backward_filter")
HW = tuple[int, int]
DataRunner = Callable[[torch.Tensor], torch.Tensor]  # run(grad_out) -> grad_input
FilterRunner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # run(x, grad_out) -> grad_weight


def check_direction(direction: str) -> str:
    """``direction`` if it is a backward direction, else ValueError naming the valid ones."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown backward direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    return direction


def _factory(algo: str, direction: str):  # type: ignore[no-untyped-def]
    from harness.algorithms import registry

    record = registry.get(algo)
    return record.reference_backward_data if direction == "backward_data" else record.reference_backward_filter


def backward_algorithms(direction: str) -> tuple[str, ...]:
    """The algorithms with a reference in backward ``direction``, in the registry's order."""
    check_direction(direction)
    return tuple(a for a in reference_algorithms() if _factory(a, direction) is not None)


def supports(direction: str, algo: str, g: ConvGeometry, layout: str = "nchw") -> str | None:
    """None if the reference ``algo`` can compute layer ``g``'s gradient in ``direction`` and ``layout``, else
    the reason it cannot. The backward of an algorithm keeps its forward's limits (its record's ``supports``
    rule and ``reference_layouts``)."""
    from harness.algorithms import registry

    check_direction(direction)
    known = reference_algorithms()
    if algo not in known:
        return f"{algo} has no reference implementation (only {', '.join(known)})"
    if _factory(algo, direction) is None:
        has = f"the references with one: {', '.join(backward_algorithms(direction))}"
        if all(_factory(algo, d) is None for d in DIRECTIONS):
            return f"{algo} has a forward reference only, no {direction} reference ({has})"
        return f"{algo} has no {direction} reference ({has})"
    return registry.get(algo).reason_unsupported(g, layout)


def make_runner(
    direction: str, algo: str, weight: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw"
) -> Callable[..., torch.Tensor]:
    """The runner of layer ``g``'s gradient in ``direction`` by ``algo`` for inputs of ``in_hw``, computing in
    memory ``layout`` (its result is in that layout too): backward_data ``run(grad_out) -> grad_input`` (the
    input's shape), backward_filter ``run(x, grad_out) -> grad_weight`` (the weight's shape). ValueError where
    ``supports`` gives a reason, and for a gradient or input of another shape than the layer's."""
    reason = supports(direction, algo, g, layout)
    if reason:
        raise ValueError(reason)
    in_hw = (int(in_hw[0]), int(in_hw[1]))
    out_hw = g.output_hw(*in_hw)
    # detached: the runners compute gradients, never record a graph of their own (the detached tensor shares
    # the weight's memory and version counter, so an optimizer's in-place step is seen)
    run = _factory(algo, direction)(weight.detach(), g, in_hw, layout)
    if direction == "backward_data":

        def run_data(grad_out: torch.Tensor) -> torch.Tensor:
            _check_shape("grad_out", grad_out, (g.out_channels, *out_hw))
            return run(grad_out)

        return run_data

    def run_filter(x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
        _check_shape("x", x, (g.in_channels, *in_hw))
        _check_shape("grad_out", grad_out, (g.out_channels, *out_hw))
        if x.shape[0] != grad_out.shape[0]:
            raise ValueError(f"x has batch {x.shape[0]} but grad_out has batch {grad_out.shape[0]}")
        return run(x, grad_out)

    return run_filter


def _check_shape(name: str, t: torch.Tensor, chw: tuple[int, int, int]) -> None:
    if t.dim() != 4 or tuple(t.shape[1:]) != chw:
        raise ValueError(
            f"{name} of shape {tuple(t.shape)} does not fit this layer: expected (N, {', '.join(map(str, chw))})"
        )


# ---- shared pieces ----


def _pad(g: ConvGeometry) -> tuple[int, int, int, int]:
    """F.pad's argument for the layer's zero padding of the last two dimensions."""
    return (g.padding[1], g.padding[1], g.padding[0], g.padding[0])


def _taps_nchw(t: torch.Tensor, g: ConvGeometry, oh: int, ow: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Each kernel tap (i, j) and the strided (..., OH, OW) window of the padded ``t`` it meets (a view, so an
    in-place add writes ``t``); the NCHW twin of reference._taps."""
    sh, sw = g.stride
    for i in range(g.kernel[0]):
        r0 = i * g.dilation[0]
        for j in range(g.kernel[1]):
            c0 = j * g.dilation[1]
            yield i, j, t[..., r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw]


def _crop(t: torch.Tensor, g: ConvGeometry, in_hw: HW, dims: tuple[int, int]) -> torch.Tensor:
    """The input's (h, w) out of a padded-input-sized ``t`` (dimensions ``dims``)."""
    (ph, pw), (h, w) = g.padding, in_hw
    return t.narrow(dims[0], ph, h).narrow(dims[1], pw, w)


def _split(g: ConvGeometry) -> tuple[int, int, int]:
    """(groups, output channels per group, input channels per group)."""
    return g.groups, g.out_channels // g.groups, g.in_channels // g.groups


def _nhwc_grad_out(dy: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """The (N, OH, OW, G, K/G) view of grad_out's NHWC memory (a view where it is channels_last)."""
    n, _, oh, ow = dy.shape
    return dy.permute(0, 2, 3, 1).reshape(n, oh, ow, g.groups, g.out_channels // g.groups)


def _krsc_out(dw: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """A (G, K/G, R, S, C/G) weight gradient as the (K, C/G, R, S) view of its KRSC memory: channels_last."""
    return dw.contiguous().reshape(g.out_channels, *g.kernel, g.in_channels // g.groups).permute(0, 3, 1, 2)


# ---- direct ----


def direct_backward_data(dy: torch.Tensor, w: torch.Tensor, g: ConvGeometry, in_hw: HW) -> torch.Tensor:
    """Per tap, dy times the tap's (K, C) matrix, added into the tap's window of a padded-input buffer."""
    (n, _, oh, ow), (gr, go, gc) = dy.shape, _split(g)
    hp, wp = in_hw[0] + 2 * g.padding[0], in_hw[1] + 2 * g.padding[1]
    dxp = dy.new_zeros(n, gr, gc, hp, wp)
    dyg, wg = dy.reshape(n, gr, go, oh, ow), w.reshape(gr, go, gc, *g.kernel)
    for i, j, window in _taps_nchw(dxp, g, oh, ow):
        window += torch.einsum("ngohw,goc->ngchw", dyg, wg[..., i, j])
    return _crop(dxp.view(n, g.in_channels, hp, wp), g, in_hw, (2, 3)).contiguous()


def direct_backward_filter(x: torch.Tensor, dy: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """Per tap, the tap's window of the padded input times dy, summed over the batch and the output pixels."""
    (n, _, oh, ow), (gr, go, gc) = dy.shape, _split(g)
    xp = F.pad(x, _pad(g))
    xg, dyg = xp.reshape(n, gr, gc, *xp.shape[2:]), dy.reshape(n, gr, go, oh, ow)
    dw = x.new_empty(gr, go, gc, *g.kernel)
    for i, j, window in _taps_nchw(xg, g, oh, ow):
        dw[..., i, j] = torch.einsum("ngchw,ngohw->goc", window, dyg)
    return dw.view(g.out_channels, gc, *g.kernel)


def direct_backward_data_nhwc(dy: torch.Tensor, w: torch.Tensor, g: ConvGeometry, in_hw: HW) -> torch.Tensor:
    """``direct`` backward_data on NHWC memory: per tap, the (N, OH, OW, K) gradient times the tap's (K, C)
    matrix, added into the tap's (N, OH, OW, C) window of a padded (N, Hp, Wp, C) buffer."""
    (n, _, oh, ow), (gr, _, gc) = dy.shape, _split(g)
    hp, wp = in_hw[0] + 2 * g.padding[0], in_hw[1] + 2 * g.padding[1]
    dxp = dy.new_zeros(n, hp, wp, gr, gc)
    dyh, wk = _nhwc_grad_out(dy, g), _krsc(w, g)
    for i, j, window in _taps(dxp, g, oh, ow):
        window += torch.einsum("nhwgo,goc->nhwgc", dyh, wk[:, :, i, j])
    return _nhwc_out(_crop(dxp.view(n, hp, wp, g.in_channels), g, in_hw, (1, 2)), None)


def direct_backward_filter_nhwc(x: torch.Tensor, dy: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """``direct`` backward_filter on NHWC memory: per tap, the (N, OH, OW, C) window times the (N, OH, OW, K)
    gradient, summed over pixels into the tap's (K, C) slice of the KRSC gradient."""
    (n, _, oh, ow), (gr, go, gc) = dy.shape, _split(g)
    dyh = _nhwc_grad_out(dy, g)
    dw = x.new_empty(gr, go, *g.kernel, gc)
    for i, j, window in _taps(_nhwc_in(x, g), g, oh, ow):
        dw[:, :, i, j] = torch.einsum("nhwgc,nhwgo->goc", window.reshape(n, oh, ow, gr, gc), dyh)
    return _krsc_out(dw, g)


# ---- gemm (im2col) ----


def gemm_backward_data(dy: torch.Tensor, w: torch.Tensor, g: ConvGeometry, in_hw: HW) -> torch.Tensor:
    """W^T x dy per group: the gradient of the im2col matrix, then col2im (F.fold) sums it onto the input."""
    (n, _, oh, ow), (gr, go, _) = dy.shape, _split(g)
    wg = w.reshape(gr, go, -1)  # (G, K/G, C/G*R*S)
    cols = torch.matmul(wg.transpose(1, 2), dy.reshape(n, gr, go, oh * ow))  # (N, G, C/G*R*S, L)
    return F.fold(
        cols.reshape(n, -1, oh * ow), in_hw, g.kernel, dilation=g.dilation, padding=g.padding, stride=g.stride
    )


def gemm_backward_filter(x: torch.Tensor, dy: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """One matrix product per group: dy as (K/G, N*L) times the im2col matrix of x as (N*L, C/G*R*S)."""
    (n, _, oh, ow), (gr, go, gc) = dy.shape, _split(g)
    cols = F.unfold(x, g.kernel, dilation=g.dilation, padding=g.padding, stride=g.stride)  # (N, C*R*S, L)
    cols = cols.reshape(n, gr, gc * g.kernel[0] * g.kernel[1], oh * ow).permute(1, 0, 3, 2).reshape(gr, n * oh * ow, -1)
    dyg = dy.reshape(n, gr, go, oh * ow).permute(1, 2, 0, 3).reshape(gr, go, n * oh * ow)
    return torch.matmul(dyg, cols).view(g.out_channels, gc, *g.kernel)


def gemm_backward_data_nhwc(dy: torch.Tensor, w: torch.Tensor, g: ConvGeometry, in_hw: HW) -> torch.Tensor:
    """im2col's backward on NHWC memory: dy as (L, K/G) times the KRSC weight gives one R*S*C/G row per
    output pixel; col2im adds each tap's C/G block of the rows into its (N, OH, OW, C) window."""
    (n, _, oh, ow), (gr, go, gc) = dy.shape, _split(g)
    dyl = _nhwc_grad_out(dy, g).reshape(n * oh * ow, gr, go).transpose(0, 1)  # (G, L, K/G)
    cols = torch.matmul(dyl, _krsc(w, g).reshape(gr, go, -1))  # (G, L, R*S*C/G)
    cols = cols.view(gr, n, oh, ow, g.kernel[0] * g.kernel[1], gc).permute(4, 1, 2, 3, 0, 5)  # (R*S, N, OH, OW, G, C/G)
    hp, wp = in_hw[0] + 2 * g.padding[0], in_hw[1] + 2 * g.padding[1]
    dxp = dy.new_zeros(n, hp, wp, gr, gc)
    for t, (_, _, window) in enumerate(_taps(dxp, g, oh, ow)):  # taps in R*S order, as cols_nhwc stacks them
        window += cols[t]
    return _nhwc_out(_crop(dxp.view(n, hp, wp, g.in_channels), g, in_hw, (1, 2)), None)


def gemm_backward_filter_nhwc(x: torch.Tensor, dy: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """im2col on NHWC memory: dy as (K/G, L) times the (L, R*S*C/G) im2col matrix gives the KRSC gradient."""
    (n, _, oh, ow), (gr, go, _) = dy.shape, _split(g)
    dyl = _nhwc_grad_out(dy, g).reshape(n * oh * ow, gr, go).permute(1, 2, 0)  # (G, K/G, L)
    return _krsc_out(torch.matmul(dyl, cols_nhwc(x, g, oh, ow)), g)


def _direct_factory(direction: str):  # type: ignore[no-untyped-def]
    def factory(weight: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw"):  # type: ignore[no-untyped-def]
        nhwc = layout == "nhwc"
        if direction == "backward_data":
            conv = direct_backward_data_nhwc if nhwc else direct_backward_data
            return lambda dy: conv(dy, weight, g, in_hw)
        conv_f = direct_backward_filter_nhwc if nhwc else direct_backward_filter
        return lambda x, dy: conv_f(x, dy, g)

    return factory


def _gemm_factory(direction: str):  # type: ignore[no-untyped-def]
    def factory(weight: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw"):  # type: ignore[no-untyped-def]
        nhwc = layout == "nhwc"
        if direction == "backward_data":
            conv = gemm_backward_data_nhwc if nhwc else gemm_backward_data
            return lambda dy: conv(dy, weight, g, in_hw)
        conv_f = gemm_backward_filter_nhwc if nhwc else gemm_backward_filter
        return lambda x, dy: conv_f(x, dy, g)

    return factory


direct_backward_data_runner = _direct_factory("backward_data")
direct_backward_filter_runner = _direct_factory("backward_filter")
gemm_backward_data_runner = _gemm_factory("backward_data")
gemm_backward_filter_runner = _gemm_factory("backward_filter")


# ---- fft ----


def _dilate(dy: torch.Tensor, g: ConvGeometry, dims: tuple[int, int]) -> torch.Tensor:
    """dy with stride-1 zeros between its pixels along ``dims``: the stride-1 output positions it stands for."""
    sh, sw = g.stride
    if (sh, sw) == (1, 1):
        return dy
    shape = list(dy.shape)
    shape[dims[0]], shape[dims[1]] = sh * (shape[dims[0]] - 1) + 1, sw * (shape[dims[1]] - 1) + 1
    out = dy.new_zeros(shape)
    index = [slice(None)] * dy.dim()
    index[dims[0]], index[dims[1]] = slice(None, None, sh), slice(None, None, sw)
    out[tuple(index)] = dy
    return out


class FFTBackwardData:
    """backward_data by the FFT: the spread kernel's spectra (padded-input size) computed once per weight
    version; per call, the dilated gradient's spectra times them, summed over output channels per frequency."""

    def __init__(self, w: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> None:
        self.w, self.g, self.in_hw, self.layout = w, g, in_hw, layout
        self.hp, self.wp = in_hw[0] + 2 * g.padding[0], in_hw[1] + 2 * g.padding[1]
        self.version = -1
        self.kernel = w  # replaced by _spectra before first use

    def _spectra(self) -> torch.Tensor:
        """(F, G, K/G, C/G): the kernel spectra, redone only where the weight changed (an optimizer step)."""
        if self.version != self.w._version:
            gr, go, gc = _split(self.g)
            spectrum = torch.fft.rfft2(spread_kernel(self.w.detach(), self.g), s=(self.hp, self.wp))
            self.kernel = spectrum.reshape(gr, go, gc, -1).permute(3, 0, 1, 2).contiguous()
            self.version = self.w._version
        return self.kernel

    def __call__(self, dy: torch.Tensor) -> torch.Tensor:
        g, n, kernel = self.g, dy.shape[0], self._spectra()
        gr, go, _ = _split(g)
        if self.layout == "nhwc":  # transforms over H and W of (N, H, W, K); channels innermost per frequency
            spec = torch.fft.rfft2(_dilate(dy.permute(0, 2, 3, 1), g, (1, 2)), s=(self.hp, self.wp), dim=(1, 2))
            fh, fw = spec.shape[1:3]
            spec = spec.reshape(n, fh * fw, gr, go).permute(1, 2, 0, 3)  # (F, G, N, K/G)
            prod = torch.matmul(spec, kernel).permute(2, 0, 1, 3).reshape(n, fh, fw, g.in_channels)
            full = torch.fft.irfft2(prod, s=(self.hp, self.wp), dim=(1, 2))  # (N, Hp, Wp, C)
            return _nhwc_out(_crop(full, g, self.in_hw, (1, 2)), None)
        spec = torch.fft.rfft2(_dilate(dy, g, (2, 3)), s=(self.hp, self.wp))  # (N, K, Hp, Wp//2+1)
        fh, fw = spec.shape[-2:]
        spec = spec.reshape(n, gr, go, fh * fw).permute(3, 1, 0, 2)  # (F, G, N, K/G)
        prod = torch.matmul(spec, kernel).permute(2, 1, 3, 0).reshape(n, g.in_channels, fh, fw)
        full = torch.fft.irfft2(prod, s=(self.hp, self.wp))  # (N, C, Hp, Wp)
        return _crop(full, g, self.in_hw, (2, 3)).contiguous()


def fft_backward_filter(x: torch.Tensor, dy: torch.Tensor, g: ConvGeometry, layout: str = "nchw") -> torch.Tensor:
    """backward_filter by the FFT: per frequency, the conjugate spectra of the dilated dy times the spectra of
    the padded x, summed over the batch; the inverse transform read at the dilated tap positions."""
    (n, _, _, _), (gr, go, gc) = dy.shape, _split(g)
    keh, kew = g.effective_kernel()
    (dh, dw), (kh, kw) = g.dilation, g.kernel
    if layout == "nhwc":
        xp = _nhwc_in(x, g)  # (N, Hp, Wp, C)
        hp, wp = xp.shape[1:3]
        xs = torch.fft.rfft2(xp, dim=(1, 2))
        fh, fw = xs.shape[1:3]
        xs = xs.reshape(n, fh * fw, gr, gc).permute(1, 2, 0, 3)  # (F, G, N, C/G)
        ds = torch.fft.rfft2(_dilate(dy.permute(0, 2, 3, 1), g, (1, 2)), s=(hp, wp), dim=(1, 2))
        ds = ds.reshape(n, fh * fw, gr, go).permute(1, 2, 3, 0)  # (F, G, K/G, N)
        prod = torch.matmul(ds.conj(), xs).reshape(fh, fw, gr, go, gc)
        full = torch.fft.irfft2(prod, s=(hp, wp), dim=(0, 1))  # (Hp, Wp, G, K/G, C/G)
        return _krsc_out(full[:keh:dh, :kew:dw].permute(2, 3, 0, 1, 4), g)
    xp = F.pad(x, _pad(g))
    hp, wp = xp.shape[2:]
    xs = torch.fft.rfft2(xp)
    fh, fw = xs.shape[-2:]
    xs = xs.reshape(n, gr, gc, fh * fw).permute(3, 1, 0, 2)  # (F, G, N, C/G)
    ds = torch.fft.rfft2(_dilate(dy, g, (2, 3)), s=(hp, wp)).reshape(n, gr, go, fh * fw).permute(3, 1, 2, 0)
    prod = torch.matmul(ds.conj(), xs).permute(1, 2, 3, 0).reshape(gr, go, gc, fh, fw)
    full = torch.fft.irfft2(prod, s=(hp, wp))  # (G, K/G, C/G, Hp, Wp)
    return full[..., :keh:dh, :kew:dw].reshape(g.out_channels, gc, kh, kw).contiguous()


def fft_backward_data_runner(weight: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> DataRunner:
    """The registry's backward_data factory for ``fft``."""
    return FFTBackwardData(weight, g, in_hw, layout)


def fft_backward_filter_runner(weight: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> FilterRunner:
    """The registry's backward_filter factory for ``fft``."""
    return lambda x, dy: fft_backward_filter(x, dy, g, layout)


# ---- winograd ----


class WinogradBackwardData:
    """backward_data of a 3x3, stride-1 layer as the forward Winograd F(2x2,3x3) of a 3x3, stride-1 layer:
    grad_out (padded by 2-p, or cropped by p-2) correlated with the flipped kernel, channels exchanged. The
    kernel transform is done once per weight version."""

    def __init__(self, w: torch.Tensor, g: ConvGeometry, layout: str = "nchw") -> None:
        self.w, self.layout = w, layout
        self.g_t = ConvGeometry(
            g.out_channels,
            g.in_channels,
            g.kernel,
            padding=(max(0, 2 - g.padding[0]), max(0, 2 - g.padding[1])),
            groups=g.groups,
        )
        self.crop = (max(0, g.padding[0] - 2), max(0, g.padding[1] - 2))
        self.g, self.version, self.conv = g, -1, None

    def _conv(self) -> WinogradConv:
        if self.conv is None or self.version != self.w._version:
            gr, go, gc = _split(self.g)
            w_t = self.w.detach().reshape(gr, go, gc, *self.g.kernel).transpose(1, 2).flip(-2, -1)
            self.conv = WinogradConv(w_t.reshape(self.g.in_channels, go, *self.g.kernel), self.g_t, self.layout)
            self.version = self.w._version
        return self.conv

    def __call__(self, dy: torch.Tensor) -> torch.Tensor:
        (ch, cw), (oh, ow) = self.crop, dy.shape[2:]
        return self._conv()(dy[:, :, ch : oh - ch, cw : ow - cw], None)


# Winograd F(3x3, 2x2) for backward_filter: the 3x3 correlation of a 4x4 input tile d with a 2x2 gradient
# tile e is A^T [(G e G^T) * (B^T d B)] A. From Toom-Cook at the points 0, 1, -1 and infinity: G evaluates the
# 2-term polynomial there, A the 3-term one, B^T is the transposed interpolation (its halves moved into G).
_BT_F32 = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]]
_G_F32 = [[1, 0], [0.5, 0.5], [0.5, -0.5], [0, 1]]
_AT_F32 = [[1, 1, 1, 0], [0, 1, -1, 0], [0, 1, 1, 1]]


def winograd_backward_filter(x: torch.Tensor, dy: torch.Tensor, g: ConvGeometry, layout: str = "nchw") -> torch.Tensor:
    """backward_filter by Winograd F(3x3,2x2): dy in 2x2 tiles, the padded input in the 4x4 tiles they see
    (step 2), each transformed; per tile element one product over the batch and tiles, then the output
    transform once."""
    n, (gr, go, gc) = x.shape[0], _split(g)
    oh, ow = dy.shape[2:]
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    (ph, pw), (h, w) = g.padding, x.shape[2:]
    bt, gm, at = (torch.tensor(m, dtype=x.dtype, device=x.device) for m in (_BT_F32, _G_F32, _AT_F32))
    if layout == "nhwc":  # tiles over H and W of (N, H, W, C); the channels stay innermost
        xt = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, 2 * tw + 2 - w - pw, ph, 2 * th + 2 - h - ph))
        et = F.pad(dy.permute(0, 2, 3, 1), (0, 0, 0, 2 * tw - ow, 0, 2 * th - oh))
        v = bt @ xt.unfold(1, 4, 2).unfold(2, 4, 2) @ bt.T  # (N, th, tw, C, 4, 4)
        u = gm @ et.unfold(1, 2, 2).unfold(2, 2, 2) @ gm.T  # (N, th, tw, K, 4, 4)
        v = v.reshape(n * th * tw, gr, gc, 16).permute(3, 1, 0, 2)  # (16, G, N*T, C/G)
        u = u.reshape(n * th * tw, gr, go, 16).permute(3, 1, 2, 0)  # (16, G, K/G, N*T)
        m = torch.matmul(u, v).permute(1, 2, 3, 0).reshape(gr, go, gc, 4, 4)
        return _krsc_out((at @ m @ at.T).permute(0, 1, 3, 4, 2), g)  # (G, K/G, 3, 3, C/G)
    xt = F.pad(x, (pw, 2 * tw + 2 - w - pw, ph, 2 * th + 2 - h - ph))
    et = F.pad(dy, (0, 2 * tw - ow, 0, 2 * th - oh))
    v = bt @ xt.unfold(2, 4, 2).unfold(3, 4, 2) @ bt.T  # (N, C, th, tw, 4, 4)
    u = gm @ et.unfold(2, 2, 2).unfold(3, 2, 2) @ gm.T  # (N, K, th, tw, 4, 4)
    v = v.reshape(n, gr, gc, th * tw, 16).permute(4, 1, 0, 3, 2).reshape(16, gr, n * th * tw, gc)
    u = u.reshape(n, gr, go, th * tw, 16).permute(4, 1, 2, 0, 3).reshape(16, gr, go, n * th * tw)
    m = torch.matmul(u, v).permute(1, 2, 3, 0).reshape(g.out_channels, gc, 4, 4)
    return (at @ m @ at.T).contiguous()


def winograd_backward_data_runner(weight: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw") -> DataRunner:
    """The registry's backward_data factory for ``winograd``."""
    return WinogradBackwardData(weight, g, layout)


def winograd_backward_filter_runner(
    weight: torch.Tensor, g: ConvGeometry, in_hw: HW, layout: str = "nchw"
) -> FilterRunner:
    """The registry's backward_filter factory for ``winograd``."""
    return lambda x, dy: winograd_backward_filter(x, dy, g, layout)
