"""A researcher's own model: model.path (state_dict, pickled module, torch.export, TorchScript, ONNX) and
model.factory, each saved from a small model, measured on the CPU, and the bad files refused by name."""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import torchvision
from torch import nn

from harness.errors import ConfigError
from harness.launch.submit import make_task
from harness.model_files import lift_convs
from harness.results import read
from harness.run.runner import run
from tests.conftest import run_cli
from tests.helpers import compose_config, make_spec

TINY = ["stage.sizes=[64]", "stage.warmup_iters=1", "stage.min_iters=3", "stage.max_iters=3", "stage.layer_iters=1"]
HAS_ONNX = importlib.util.find_spec("onnx2torch") is not None and importlib.util.find_spec("onnx") is not None

FACTORY_CODE = '''
from torch import nn


def tiny_cnn(channels=1, width=8):
    """A small CNN of the user's own (grey-scale input by default)."""
    return nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, stride=2),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))
'''


def tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """resnet18 saved each way (export and TorchScript at 64 x 64), and a factory module."""
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(1)
    model, x = torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 64, 64)
    out = {
        "state_dict": d / "r18_weights.pt",
        "module": d / "r18_full.pt",
        "export": d / "r18_export.pt2",
        "torchscript": d / "r18_script.pt",
        "factory": d / "user_nets.py",
    }
    torch.save(model.state_dict(), out["state_dict"])
    torch.save(model, out["module"])
    torch.export.save(torch.export.export(model, (x,)), out["export"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated: still what many have on disk
        torch.jit.save(torch.jit.trace(model, x), str(out["torchscript"]))
        if HAS_ONNX:
            out["onnx"] = d / "tiny.onnx"
            torch.onnx.export(
                tiny_cnn(), (torch.randn(1, 3, 64, 64),), str(out["onnx"]), dynamo=False, opset_version=17
            )
    out["factory"].write_text(FACTORY_CODE)
    return out


@pytest.fixture
def on_path(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(files["factory"].parent))
    yield
    sys.modules.pop("user_nets", None)


def model_args(source: str, files: dict[str, Path]) -> list[str]:
    if source == "state_dict":
        return ["model.name=resnet18", f"model.path={files['state_dict']}"]
    if source == "factory":
        return ["model.factory=user_nets:tiny_cnn", "+model.kwargs.width=4"]
    return [f"model.path={files[source]}"]


SOURCES = [
    "state_dict",
    "module",
    "export",
    "torchscript",
    "factory",
    pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra is not installed")),
]


@pytest.mark.parametrize("source", SOURCES)
def test_each_model_source_round_trips(source: str, files: dict[str, Path], tmp_path: Path, on_path: None):
    """Saved, named, measured: every row says where the model came from and the hash of its file; where the
    convolutions are nn.Conv2d layers (all but TorchScript), a swapped algorithm runs them and is verified."""
    algo = "torch" if source == "torchscript" else "gemm"
    spec = make_spec(tmp_path / "results", *model_args(source, files), f"algo={algo}", *TINY)
    result = run(spec)
    (point,) = result.points
    assert point["status"] == "ok", point["error"]
    expected_name = {"factory": "tiny_cnn", "onnx": "tiny"}.get(source, files[source].stem if source in files else "")
    assert spec.model.name == point["model"] == expected_name
    assert point["model_source"] == source
    assert point["model_hash"] == sha256(files[source])
    assert point["flops"] > 0
    layers = read(tmp_path / "results", "layers")
    if source == "torchscript":
        assert layers.empty  # no nn.Conv2d to time one by one
    else:
        assert point["verified"] and len(layers) == point["conv_layers"] > 0
        assert set(layers["algo_used"]) == {"gemm"} and set(layers["model_hash"]) == {point["model_hash"]}
    if source == "factory":  # kwargs reached the function; one input channel read from its first layer
        assert layers["in_channels"].iloc[0] == 1 and layers["out_channels"].iloc[0] == 4


def test_torchscript_refuses_a_non_torch_algorithm_with_the_reason(files: dict[str, Path], tmp_path: Path):
    with pytest.raises(
        ConfigError,
        match=r"algo=gemm cannot run on model.path=.*r18_script.pt: a TorchScript "
        r"program's convolutions .* Only algo=torch",
    ):
        make_spec(tmp_path / "results", f"model.path={files['torchscript']}", "algo=gemm", *TINY)
    assert not (tmp_path / "results").exists()


class ConvInCode(nn.Module):
    """A convolution written in the forward's code (F.conv2d on its own weight), not an nn.Conv2d module."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.nn.functional.conv2d(x, self.weight, padding=1))


def test_an_export_program_with_a_convolution_in_code_runs_torch_only(tmp_path: Path):
    path = tmp_path / "inline.pt2"
    torch.export.save(torch.export.export(ConvInCode().eval(), (torch.randn(1, 3, 64, 64),)), path)
    spec = make_spec(tmp_path / "results", f"model.path={path}", "algo=gemm", *TINY)
    with pytest.raises(
        ConfigError,
        match=r"algo=gemm cannot run on model.path=.*inline.pt2: 1 of the program's 2 "
        r"convolutions are not in a submodule of their own.*Only algo=torch",
    ):
        run(spec)
    (point,) = run(make_spec(tmp_path / "results", f"model.path={path}", *TINY)).points
    assert point["status"] == "ok" and point["model_source"] == "export"


def test_an_export_program_becomes_conv2d_layers_that_compute_the_same(files: dict[str, Path]):
    program = torch.export.load(str(files["export"]))
    module = torch.export.unflatten(program)
    assert lift_convs(module) == (20, 20)
    assert sum(isinstance(m, nn.Conv2d) for m in module.modules()) == 20
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(module(x), program.module()(x))


def test_a_fixed_size_program_refuses_other_sizes_and_batches(files: dict[str, Path], tmp_path: Path):
    path = f"model.path={files['export']}"
    with pytest.raises(ConfigError, match=r"takes only input size 64 .* stage.sizes=\[64\]"):
        run(make_spec(tmp_path, path, "stage.sizes=[64,96]"))
    with pytest.raises(ConfigError, match=r"takes only batch size 1 .* batch_size=1"):
        run(make_spec(tmp_path, path, "batch_size=[1,4]", *TINY))


def test_two_files_with_one_name_have_two_hashes_and_config_hashes(files: dict[str, Path], tmp_path: Path):
    other = tmp_path / files["state_dict"].name
    torch.manual_seed(2)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)
    a = make_spec(tmp_path, "model.name=resnet18", f"model.path={files['state_dict']}")
    b = make_spec(tmp_path, "model.name=resnet18", f"model.path={other}")
    assert a.model.name == b.model.name and a.partition() == b.partition()
    assert a.model.content_hash != b.model.content_hash and a.config_hash() != b.config_hash()
    # a torchvision model's identity in the config hash is what it always was: old results still resume
    assert make_spec(tmp_path).measurement_config()["model"] == {"name": "resnet18", "kwargs": {}}


def test_the_analysis_keeps_two_files_with_one_name_apart(files: dict[str, Path], tmp_path: Path):
    from analysis.load import load

    other = tmp_path / "copy" / files["module"].name
    other.parent.mkdir()
    torch.manual_seed(3)
    torch.save(torchvision.models.resnet18(weights=None), other)
    results = tmp_path / "results"
    for path in (files["module"], other):
        run(make_spec(results, f"model.path={path}", *TINY))
    loaded = load(results)
    names = {f"r18_full@{sha256(p)[:8]}" for p in (files["module"], other)}
    assert set(loaded.points["model"]) == names and len(loaded.points) == 2
    assert set(loaded.layers["model"].astype(str)) == names
    assert loaded.report.separated_models == {"r18_full": sorted(names)}
    from analysis.checks import findings
    from analysis.report import load_lines

    assert any("kept apart as" in line for line in load_lines(loaded.report))
    found = findings(loaded.points, loaded.report)
    assert list(found.loc[found["kind"] == "one name, several models", "model"]) == ["r18_full"]


def test_make_task_gives_a_slurm_job_the_absolute_model_path(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(files["module"].parent)
    config = compose_config("device=cpu", f"model.path={files['module'].name}")
    task = make_task(config)
    assert task.config["model"]["path"] == str(files["module"]) and task.spec.model.path == files["module"]


# -- bad files -----------------------------------------------------------------------------------------------------


def bad_files(d: Path, files: dict[str, Path]) -> dict[str, tuple[list[str], str]]:
    truncated = d / "truncated.pt"
    truncated.write_bytes(files["module"].read_bytes()[: files["module"].stat().st_size // 2])
    text = d / "notes.pt"
    text.write_text("not a model\n")
    not_module = d / "numbers.pt"
    torch.save({"epoch": 3, "lr": 0.1}, not_module)
    return {
        "missing": ([f"model.path={d / 'nowhere.pt'}"], r"nowhere.pt: no such file; expected .*state_dict"),
        "truncated": ([f"model.path={truncated}"], r"truncated.pt: not a readable model file, or truncated"),
        "not a model": ([f"model.path={text}"], r"notes.pt: not a readable model file"),
        "not a module": ([f"model.path={not_module}"], r"numbers.pt: holds a dict, not a state_dict"),
        "wrong architecture": (
            ["model.name=resnet50", f"model.path={files['state_dict']}"],
            r"r18_weights.pt: this state_dict does not fit model.name=resnet50: tensors .*missing",
        ),
        "no architecture": (
            ["model.name=resnet_18", f"model.path={files['state_dict']}"],
            r"unknown model 'resnet_18'. Did you mean resnet18",
        ),
        "kwargs for a file": (
            [f"model.path={files['module']}", "+model.kwargs.num_classes=10"],
            r"model.kwargs=.*a module file is built as saved",
        ),
        "path and factory": (
            [f"model.path={files['module']}", "model.factory=user_nets:tiny_cnn"],
            r"give one of them",
        ),
        "factory not found": (["model.factory=user_nets:nothing"], r"user_nets has no function nothing"),
        "factory syntax": (["model.factory=user_nets.tiny_cnn"], r"write package.module:function"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "truncated",
        "not a model",
        "not a module",
        "wrong architecture",
        "no architecture",
        "kwargs for a file",
        "path and factory",
        "factory not found",
        "factory syntax",
    ],
)
def test_a_bad_model_is_refused_naming_the_file_and_what_was_expected(
    case: str, files: dict[str, Path], tmp_path: Path, on_path: None
):
    args, message = bad_files(tmp_path, files)[case]
    with pytest.raises(ConfigError, match=message):
        make_spec(tmp_path / "results", *args)


def test_a_bad_model_file_exits_with_code_2(files: dict[str, Path], tmp_path: Path):
    args, _ = bad_files(tmp_path, files)["truncated"]
    proc = run_cli(*args, *TINY, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: model.path=") and "truncated" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_onnx_without_the_extra_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    onnx_file = tmp_path / "net.onnx"
    onnx_file.write_bytes(b"\x08\x07")  # never read: the extra is missing
    real_import = builtins.__import__

    def no_onnx(name: str, *args, **kwargs):
        if name.split(".")[0] in ("onnx", "onnx2torch"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ConfigError, match=r"ONNX models need the onnx extra.*pip install '\.\[onnx\]'"):
        make_spec(tmp_path / "results", f"model.path={onnx_file}")


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra is not installed")
def test_a_truncated_onnx_file_is_refused(files: dict[str, Path], tmp_path: Path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(files["onnx"].read_bytes()[:200])
    with pytest.raises(ConfigError, match=r"cut.onnx: not a readable ONNX file, or truncated"):
        run(make_spec(tmp_path / "results", f"model.path={cut}", *TINY))


def test_rows_of_torchvision_models_say_so(tmp_path: Path):
    run(make_spec(tmp_path / "results", "model=resnet18", *TINY))
    points = read(tmp_path / "results")
    assert list(points["model_source"]) == ["torchvision"] and points["model_hash"].isna().all()
    assert isinstance(points, pd.DataFrame)


def test_a_size_below_the_minimum_of_a_factory_model_is_refused(tmp_path: Path, on_path: None):
    with pytest.raises(
        ConfigError,
        match=r"input size 2 is below the minimum input size of " r"model.factory=user_nets:tiny_cnn, which is 3",
    ):
        run(make_spec(tmp_path / "results", "model.factory=user_nets:tiny_cnn", "stage.sizes=[2,64]"))


def test_input_channels_where_the_first_conv2d_is_not_the_input_layer(tmp_path: Path):
    """ConvInCode's first nn.Conv2d module takes 4 channels; its input has 3: model.input_channels says so."""
    path = tmp_path / "incode.pt"
    torch.save(ConvInCode().eval(), path)
    (point,) = run(make_spec(tmp_path / "results", f"model.path={path}", "model.input_channels=3", *TINY)).points
    assert point["status"] == "ok" and point["model_source"] == "module"
