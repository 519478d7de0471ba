"""Models the user brings: a file (state_dict, pickled module, torch.export program, TorchScript, ONNX) or
a factory function in their own code. Nothing is downloaded; every failure is a ConfigError naming the file.

Two steps. ``inspect_file`` (at the config border, cheap: the zip directory, a memory-mapped weights-only
read, the content hash) tells which kind of file it is and refuses missing, truncated or foreign files and a
state_dict that does not fit the named architecture. ``load`` (once per job, before anything is measured)
builds the module and says what the harness can do with it: its input channels, a fixed input size or
batch where the file has one, and whether its convolutions are ``nn.Conv2d`` layers that an algorithm can
be swapped into (``swappable``; TorchScript's are not).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import ConfigError, brief

log = logging.getLogger(__name__)

# model_source of a row: where the model came from.
SOURCES = ("torchvision", "state_dict", "module", "export", "torchscript", "onnx", "factory")
FILE_SOURCES = ("state_dict", "module", "export", "torchscript", "onnx")
ONNX_EXTRA = "pip install '.[onnx]' (onnx2torch and onnx)"
_EXPECTED = (
    "a torch.save'd state_dict (with model.name=<torchvision architecture>) or nn.Module, a "
    "torch.export program (.pt2), a TorchScript file (torch.jit.save) or an ONNX file (.onnx)"
)


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes (hex): two files with one name never share it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _refuse(path: Path, what: str) -> ConfigError:
    return ConfigError(f"model.path={path}: {what}; expected {_EXPECTED}")


def file_kind(path: Path) -> str:
    """export, torchscript, onnx or torch_save (a state_dict or a pickled module: see ``inspect_file``)."""
    if not path.is_file():
        raise ConfigError(
            f"model.path={path}: no such file"
            + (" (it is a folder)" if path.exists() else "")
            + f"; expected {_EXPECTED}"
        )
    if path.suffix.lower() == ".onnx":
        return "onnx"
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise _refuse(path, f"not a readable model file, or truncated ({type(e).__name__}: {e})") from None
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return "export"
    if any("/code/" in n or n.startswith("code/") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch_save"
    raise _refuse(path, "a zip archive that is none of these")


@dataclass(frozen=True)
class FileInfo:
    source: str  # one of FILE_SOURCES
    content_hash: str


def inspect_file(path: Path, arch: str, kwargs: dict[str, Any]) -> FileInfo:
    """What the file is, checked without building it (the config border); ``arch``/``kwargs``: the
    torchvision architecture (and its kwargs) a state_dict must fit."""
    kind = file_kind(path)
    try:
        digest = content_hash(path)
    except OSError as e:
        raise _refuse(path, f"cannot be read ({type(e).__name__}: {e})") from None
    if kind == "onnx":
        _onnx_modules()  # the extra is installed
        return FileInfo("onnx", digest)
    if kind != "torch_save":
        return FileInfo(kind, digest)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle_errors() as e:
        if "Weights only load failed" in str(e):
            return FileInfo("module", digest)  # a pickled object: loaded (weights_only=False) by the job
        raise _refuse(path, f"cannot be read ({brief(e)})") from None
    state = _state_dict_of(path, obj)
    from harness.torchvision_models import check_model_name

    check_model_name(arch)  # a state_dict is weights only: model.name must give its architecture
    _check_fits(path, state, arch, kwargs)
    return FileInfo("state_dict", digest)


def pickle_errors() -> tuple[type[BaseException], ...]:
    import pickle

    return (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError)


def _state_dict_of(path: Path, obj: Any) -> dict[str, torch.Tensor]:
    if (
        isinstance(obj, dict)
        and obj
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        return obj
    raise _refuse(
        path, f"holds a {type(obj).__name__}, not a state_dict (a mapping of names to tensors) or an " "nn.Module"
    )


def _check_fits(path: Path, state: dict[str, torch.Tensor], arch: str, kwargs: dict[str, Any]) -> None:
    """Refuse a state_dict whose names or shapes are not those of the architecture (compared on meta)."""
    from harness.torchvision_models import check_model_kwargs, meta_model

    check_model_kwargs(arch, kwargs)
    expected = meta_model(arch, kwargs).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = [
            f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "",
            f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})" if unexpected else "",
            f"{len(shapes)} of another shape (e.g. {'; '.join(shapes[:2])})" if shapes else "",
        ]
        raise ConfigError(
            f"model.path={path}: this state_dict does not fit model.name={arch}"
            f"{' with model.kwargs=' + str(kwargs) if kwargs else ''}: tensors {', '.join(p for p in parts if p)}. "
            f"Give the torchvision architecture it was saved from (model.name=..., and model.kwargs such as "
            f"num_classes where they differ), or save the whole module (torch.save(model))"
        )


@dataclass
class LoadedModel:
    """A model ready to measure, and what the harness can do with it."""

    module: nn.Module
    source: str
    input_channels: int
    swappable: bool = True  # its convolutions are nn.Conv2d layers an algorithm can replace
    not_swappable_why: str | None = None
    fixed_size: int | None = None  # the only input size the file accepts (static H = W)
    fixed_batch: int | None = None
    meta_factory: Callable[[], nn.Module] | None = None  # a copy on the meta device (shapes only)
    _meta: nn.Module | None = field(default=None, repr=False)

    def meta(self) -> nn.Module | None:
        """The model on the meta device (for FLOPs and the smallest input size), made once; None if it
        cannot be moved there."""
        if self._meta is None and self.meta_factory is not None:
            try:
                self._meta = self.meta_factory()
            except Exception as e:  # noqa: BLE001 - some programs do not run on meta; the checks are skipped
                log.info("the model cannot run on the meta device (%s: %s)", type(e).__name__, e)
                self.meta_factory = None
        return self._meta


def first_conv_channels(module: nn.Module) -> int | None:
    """in_channels of the first nn.Conv2d (TorchScript: of the first submodule scripted from one)."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            return sub.in_channels
        if getattr(sub, "original_name", None) == "Conv2d" and hasattr(sub, "weight"):
            return int(sub.weight.shape[1])  # in_channels / groups: groups is 1 for a first layer in practice
    return None


def _channels(label: str, found: int | None, given: int | None, fixed: bool = False) -> int:
    if given is not None:
        if fixed and found is not None and found != given:
            raise ConfigError(f"model.input_channels={given}, but {label} takes {found} input channels")
        return given
    if found is None:
        raise ConfigError(
            f"{label}: the number of input channels cannot be read from the model (no nn.Conv2d "
            f"found); give it, e.g. model.input_channels=3"
        )
    return found


def _meta_copy(module: nn.Module) -> Callable[[], nn.Module]:
    return lambda: copy.deepcopy(module).to("meta")


def load_file(path: Path, source: str, arch: str, kwargs: dict[str, Any], input_channels: int | None) -> LoadedModel:
    """Build the model from the file the config border inspected (``source``)."""
    label = f"model.path={path}"
    if source == "state_dict":
        from harness.torchvision_models import build_model

        model = build_model(arch, kwargs)
        state = _state_dict_of(path, torch.load(path, map_location="cpu", weights_only=True))
        model.load_state_dict(state)
        return LoadedModel(
            model.eval(),
            source,
            _channels(label, first_conv_channels(model), input_channels),
            meta_factory=_meta_copy(model),
        )
    if source == "module":
        try:  # the user's own file: unpickling runs code, which is why only model.path is ever read this way
            model = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - truncated, or a class that is not importable here
            raise _refuse(path, f"cannot be unpickled ({brief(e)})") from None
        if not isinstance(model, nn.Module):
            raise _refuse(path, f"holds a {type(model).__name__}, not an nn.Module or a state_dict")
        return LoadedModel(
            model.eval(),
            source,
            _channels(label, first_conv_channels(model), input_channels),
            meta_factory=_meta_copy(model),
        )
    if source == "torchscript":
        return _load_torchscript(path, input_channels)
    if source == "export":
        return _load_export(path, input_channels)
    if source == "onnx":
        return _load_onnx(path, input_channels)
    raise ValueError(f"not a file source: {source}")


TORCHSCRIPT_WHY = (
    "a TorchScript program's convolutions are compiled into its code, not nn.Conv2d layers that "
    "an algorithm can be swapped into"
)


def _load_torchscript(path: Path, input_channels: int | None) -> LoadedModel:
    def jit_load(device: str) -> nn.Module:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=FutureWarning)
            return torch.jit.load(str(path), map_location=device)

    try:
        model = jit_load("cpu")
    except Exception as e:  # noqa: BLE001
        raise _refuse(path, f"cannot be loaded as TorchScript ({brief(e)})") from None
    return LoadedModel(
        model.eval(),
        "torchscript",
        _channels(f"model.path={path}", first_conv_channels(model), input_channels),
        swappable=False,
        not_swappable_why=TORCHSCRIPT_WHY,
        meta_factory=lambda: jit_load("meta"),
    )


_CONV_OPS = ("aten.conv2d.default", "aten.conv2d.padding", "aten.convolution.default")


def lift_convs(module: nn.Module) -> tuple[int, int]:
    """Replace each submodule of an unflattened torch.export program whose graph is one aten.conv2d call on
    its own parameters by an nn.Conv2d sharing them. Returns (convolutions lifted, convolutions in all)."""
    total, lifted, plans = 0, 0, []
    for name, sub in module.named_modules():
        graph = getattr(sub, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        calls = [n for n in graph.nodes if n.op == "call_function"]
        convs = [n for n in calls if str(n.target) in _CONV_OPS]
        total += len(convs)
        if name and len(calls) == 1 and convs and str(convs[0].target) == "aten.conv2d.default":
            conv = _as_conv2d(sub, convs[0])
            if conv is not None:
                plans.append((name, conv))
    for name, conv in plans:
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, child, conv)
        lifted += 1
    return lifted, total


def _as_conv2d(sub: nn.Module, node: torch.fx.Node) -> nn.Conv2d | None:
    args = node.normalized_arguments(sub, normalize_to_only_use_kwargs=True)
    if args is None:
        return None
    a = args.kwargs

    def attr(n: Any) -> Any:
        return getattr(sub, n.target) if isinstance(n, torch.fx.Node) and n.op == "get_attr" else False

    weight, bias = attr(a["weight"]), (None if a["bias"] is None else attr(a["bias"]))
    if not isinstance(weight, nn.Parameter) or bias is False or weight.dim() != 4:
        return None
    groups = int(a["groups"])
    conv = nn.Conv2d(
        weight.shape[1] * groups,
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=tuple(a["stride"]),
        padding=tuple(a["padding"]),
        dilation=tuple(a["dilation"]),
        groups=groups,
        bias=bias is not None,
        device="meta",
    )
    conv.weight = weight
    if bias is not None:
        conv.bias = bias
    return conv


def _static(dims: list[Any]) -> list[int | None]:
    return [d if isinstance(d, int) else None for d in dims]


def _fixed(path: Path, dims: list[int | None]) -> tuple[int | None, int | None]:
    """(fixed size, fixed batch) from an NCHW input's static dimensions."""
    if len(dims) != 4:
        raise _refuse(path, f"its input has {len(dims)} dimensions, not 4 (N, C, H, W)")
    n, _, h, w = dims
    if (h is None) != (w is None) or (h is not None and h != w):
        raise ConfigError(
            f"model.path={path}: its input is {h} x {w} pixels; the harness measures square inputs "
            f"(re-export with a square size, or with dynamic height and width)"
        )
    return h, n


def _load_export(path: Path, input_channels: int | None) -> LoadedModel:
    try:
        program = torch.export.load(str(path))
    except Exception as e:  # noqa: BLE001
        raise _refuse(path, f"cannot be loaded as a torch.export program ({brief(e)})") from None
    inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    if len(inputs) != 1 or not hasattr(inputs[0].meta.get("val"), "shape"):
        raise _refuse(path, f"a program of {len(inputs)} tensor inputs; the harness feeds one image batch")
    dims = _static(list(inputs[0].meta["val"].shape))
    size, batch = _fixed(path, dims)
    module = torch.export.unflatten(program)
    lifted, total = lift_convs(module)
    why = None
    if lifted < total:
        why = (
            f"{total - lifted} of the program's {total} convolutions are not in a submodule of their own "
            f"(only a module that is one aten.conv2d becomes an nn.Conv2d again)"
        )
    label = f"model.path={path}"
    return LoadedModel(
        module,
        "export",
        _channels(label, dims[1], input_channels, fixed=dims[1] is not None),
        swappable=why is None,
        not_swappable_why=why,
        fixed_size=size,
        fixed_batch=batch,
        meta_factory=_meta_copy(module),
    )


def _onnx_modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnx2torch
    except ImportError as e:
        raise ConfigError(
            f"ONNX models need the onnx extra, which is not installed here ({e.name} missing): " f"{ONNX_EXTRA}"
        ) from None
    return onnx, onnx2torch


def _load_onnx(path: Path, input_channels: int | None) -> LoadedModel:
    onnx, onnx2torch = _onnx_modules()
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - DecodeError and friends: truncated, or not ONNX
        raise _refuse(path, f"not a readable ONNX file, or truncated ({type(e).__name__}: {str(e)[:300]})") from None
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise _refuse(path, f"an ONNX graph of {len(inputs)} inputs; the harness feeds one image batch")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    size, batch = _fixed(path, dims)
    try:
        module = onnx2torch.convert(proto)
    except Exception as e:  # noqa: BLE001 - an operator or opset onnx2torch does not convert
        raise ConfigError(
            f"model.path={path}: onnx2torch cannot convert this ONNX graph ({type(e).__name__}: "
            f"{str(e)[:300]}); an older opset may convert (torch.onnx.export(..., opset_version=17))"
        ) from None
    convs = sum(n.op_type == "Conv" for n in proto.graph.node)
    lifted = sum(isinstance(m, nn.Conv2d) for m in module.modules())
    why = None if lifted >= convs else f"{convs - lifted} of its {convs} Conv nodes did not become nn.Conv2d layers"
    return LoadedModel(
        module.eval(),
        "onnx",
        _channels(f"model.path={path}", dims[1], input_channels, fixed=dims[1] is not None),
        swappable=why is None,
        not_swappable_why=why,
        fixed_size=size,
        fixed_batch=batch,
        meta_factory=_meta_copy(module),
    )
