"""The training directions (issue 31): direction=train_step|backward_data|backward_filter measured on the CPU for
real, their rows, their keys' refusals, and trees written before them reading as forward."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.algorithms import check_runnable_in
from harness.algorithms import plan as plans
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.swap import AlgoConv2d, swap
from harness.config.spec import TrainSpec
from harness.errors import ConfigError
from harness.measure import train_step
from harness.measure.flops_directions import count_directions
from harness.measure.train_step import (
    GRAD_TOLERANCES,
    TrainStep,
    check_gradients,
    fixed_labels,
    grad_errors,
    kept_buffers,
    masks_in,
    model_mode,
    relative_error,
    saved_operands,
)
from harness.models import meta_model
from harness.results import layout
from harness.results.columns import LAYER_COLUMNS, POINT_COLUMNS
from harness.results.read import latest, read
from harness.results.store import ResultStore
from harness.run import runner
from tests.conftest import FAST, run_cli
from tests.helpers import make_spec

RESNET18_CONVS = 20
EVAL = "train.model_mode=eval"  # the default: resnet18 at batch 1 and size 32 (FAST) runs
TRAIN = "train.model_mode=train"  # resnet18 at batch 1 and size 32: a 1x1 batch norm, refused
NEW_POINT_COLUMNS = (
    "direction",
    "algo_forward",
    "algo_backward_data",
    "algo_backward_filter",
    "train_loss",
    "train_optimizer",
    "train_amp",
    "train_deterministic",
    "train_input_grad",
    "train_model_mode",
    "grad_max_rel_err",
    "grad_ok",
)
NEW_LAYER_COLUMNS = ("direction", "point_direction", "nondeterministic", "determinism_checked")


@pytest.mark.parametrize(
    ("direction", "rows_per_direction"),
    [
        # layer 0's input needs no gradient: no backward_data call (train.input_grad=false)
        ("train_step", {"forward": RESNET18_CONVS, "backward_data": RESNET18_CONVS - 1, "backward_filter": 20}),
        ("backward_data", {"backward_data": RESNET18_CONVS - 1}),
        ("backward_filter", {"backward_filter": RESNET18_CONVS}),
    ],
)
def test_each_direction_runs_end_to_end_from_the_command_line(results: Path, direction: str, rows_per_direction):
    """In train mode: at size 64 every batch norm of resnet18 sees 4 values per channel."""
    proc = run_cli(
        f"direction={direction}",
        "train.model_mode=train",
        "model=resnet18",
        "backend=reference",
        "algo=gemm",
        *FAST,
        "stage.sizes=[64]",
        f"results_dir={results}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (point,) = read(results, "points").to_dict("records")
    assert point["status"] == "ok" and point["direction"] == direction and point["n"] >= 3
    assert bool(point["grad_ok"]) and point["grad_max_rel_err"] < GRAD_TOLERANCES["float32"]
    for d in plans.DIRECTIONS:  # the algorithm asked for in each direction the point times, null in the others
        assert (point[f"algo_{d}"] == "gemm") is (d in rows_per_direction), d
    assert (point["train_loss"], point["train_optimizer"], point["train_amp"]) == ("cross_entropy", "sgd", False)
    assert point["train_model_mode"] == "train"
    assert point["conv_layers"] == RESNET18_CONVS
    layers = read(results, "layers")
    assert layers["direction"].value_counts().to_dict() == rows_per_direction
    assert set(layers["point_direction"]) == {direction}
    assert set(layers["algo_used"]) == {"gemm"} and set(layers["status"]) == {"ok"}  # what ran, per call
    assert layers["p50_ms"].notna().all() and (layers["p50_ms"] > 0).all()
    assert not layers["determinism_checked"].any() and layers["nondeterministic"].isna().all()  # unknown off cuDNN
    if "backward_data" in rows_per_direction:
        assert 0 not in set(layers.loc[layers["direction"] == "backward_data", "layer_index"])
    _check_flops(point, layers, direction, 64)


def _hand_count(n: int, k: int, c: int, r: int, s: int, p: int, q: int) -> int:
    """One conv call's FLOPs in any direction: 2 x N x K x C x R x S x P x Q (groups 1)."""
    return 2 * n * k * c * r * s * p * q


def _check_flops(point: dict, layers: pd.DataFrame, direction: str, size: int) -> None:
    """The rows' FLOPs, bytes and intensity are flops_directions' for resnet18 at 1x3xSIZExSIZE, per layer and
    direction; the point's are its direction's total (a step's: torch's own counter over forward and backward)."""
    costs = count_directions(meta_model("resnet18", {}), torch.empty(1, 3, size, size, device="meta"))
    for r in layers.itertuples():
        cost = costs.layers[(r.layer_name, r.direction)]
        assert (r.flops, r.bytes) == (cost.flops, cost.bytes), (r.layer_name, r.direction)
        assert r.arithmetic_intensity == pytest.approx(cost.flops / cost.bytes)
    assert pd.isna(layers["roofline_bound"]).all()  # no known peaks on the CPU
    by = layers.set_index(["layer_name", "direction"])["flops"]
    if direction != "backward_data":  # conv1: 3 -> 64 channels, 7x7, stride 2
        assert by[("conv1", "backward_filter")] == _hand_count(1, 64, 3, 7, 7, size // 2, size // 2)
    if direction != "backward_filter":  # layer1.0.conv1: 64 -> 64 channels, 3x3 at a quarter of the size
        assert by[("layer1.0.conv1", "backward_data")] == _hand_count(1, 64, 64, 3, 3, size // 4, size // 4)
    if direction == "train_step":
        model = meta_model("resnet18", {})  # torch's counter over a whole forward and backward, no loss
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.empty(1, 3, size, size, device="meta")).sum().backward()
        assert point["flops"] == counter.get_total_flops() > layers["flops"].sum()  # the classifier's matmuls too
    else:
        assert point["flops"] == layers["flops"].sum()  # the timed calls, nothing else
        nbytes = layers["bytes"].sum()
        assert point["arithmetic_intensity"] == pytest.approx(point["flops"] / nbytes)
    assert point["achieved_tflops"] == pytest.approx(point["flops"] / point["p50_ms"] / 1e9)


def test_input_grad_and_the_determinism_check(tmp_path: Path):
    spec = make_spec(
        tmp_path,
        *FAST,
        "model=resnet18",
        "algo=fft",
        "direction=backward_data",
        "train.input_grad=true",
        "train.check_determinism=true",
        "train.deterministic=true",
        "train.model_mode=eval",  # the step as before the key: batch 1 at size 32 runs
    )
    result = runner.run(spec)
    (point,) = result.points
    assert point["status"] == "ok" and bool(point["train_input_grad"]) and bool(point["grad_ok"])
    assert point["train_model_mode"] == "eval"
    assert bool(point["train_deterministic"]) and not torch.are_deterministic_algorithms_enabled()  # restored
    layers = read(tmp_path, "layers")
    assert len(layers) == RESNET18_CONVS and 0 in set(layers["layer_index"])  # layer 0's backward_data too
    conv1 = layers.set_index("layer_index").loc[0]
    assert conv1["flops"] == _hand_count(1, 3, 64, 7, 7, 16, 16) and conv1["bytes"] > 0  # grad_input: 64 -> 3
    assert point["flops"] == layers["flops"].sum()
    assert layers["determinism_checked"].all() and not layers["nondeterministic"].any()  # the CPU references
    assert set(layers["algo_used"]) == {"fft"}


def test_algo_torch_is_timed_per_direction_through_its_own_runners_and_undone(tmp_path: Path):
    spec = make_spec(
        tmp_path,
        *FAST,
        "model=resnet18",
        "algo=torch",
        "direction=backward_filter",
        "train.loss=mse",
        "train.optimizer=adam",
        "train.model_mode=eval",
    )
    device, model = runner.checked_job(spec)
    from harness.measure.point import PointMeasurer

    measurer = PointMeasurer(spec, device, model)
    result = measurer.measure_point(32, 1)
    assert result.status == "ok" and result.extra["grad_ok"]
    assert {r["algo_used"] for r in result.layers} == {"torch"} and len(result.layers) == RESNET18_CONVS
    assert not any(isinstance(m, AlgoConv2d) for m in measurer.model.modules())  # the timing swap is gone


def test_a_training_plan_runs_per_layer_per_direction(tmp_path: Path):
    convs = plans.conv_layers(meta_model("resnet18", {}))
    algos = ("gemm", "fft", "winograd", "direct")

    def pick(i: int, g: ConvGeometry, shift: int) -> str:
        algo = algos[(i + shift) % len(algos)]
        return "gemm" if algo == "winograd" and (g.kernel != (3, 3) or g.stride != (1, 1)) else algo

    layers = []
    for i, (name, conv) in enumerate(convs):
        g = ConvGeometry.of(conv)
        layers.append(
            plans.PlanLayer(
                name, g, pick(i, g, 0), "measured", algo_backward_data=pick(i, g, 1), algo_backward_filter=pick(i, g, 2)
            )
        )
    plan = plans.Plan(plans.PlanKey("resnet18", input_size=32, batch_size=1, backend="reference"), tuple(layers))
    path = plans.write(plan, tmp_path / "train-plan.json")
    assert plans.read(path).is_training
    spec = make_spec(
        tmp_path / "r", *FAST, "model=resnet18", "algo=per_layer", f"plan={path}", "direction=train_step", EVAL
    )
    (point,) = runner.run(spec).points
    assert point["status"] == "ok" and bool(point["grad_ok"]) and point["plan_hash"] == plan.digest()
    rows = read(tmp_path / "r", "layers")
    chosen = plan.choice()
    got = {(r.layer_name, r.direction): r.algo_used for r in rows.itertuples()}
    want = {(n, d): chosen[n][d] for n in chosen for d in plans.DIRECTIONS if (n, d) != ("conv1", "backward_data")}
    assert got == want and len(set(got.values())) == 4  # every layer and direction ran its own choice


def test_forward_and_training_rows_of_a_point_never_replace_each_other(tmp_path: Path):
    forward = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm")
    step = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "direction=train_step", EVAL)
    assert forward.config_hash() != step.config_hash()
    runner.run(forward)
    runner.run(step)
    again = runner.run(step)  # resumes: its point is measured with its hash
    assert again.skipped == [(32, 1, "float32")] and not again.points
    won = latest(read(tmp_path, "points"))
    assert sorted(won["direction"]) == ["forward", "train_step"]
    assert pd.isna(won.set_index("direction").loc["forward", "algo_backward_data"])


def test_the_training_keys_stay_out_of_a_forward_points_hash(tmp_path: Path):
    base = make_spec(tmp_path, "stage=sanity")
    assert base.direction == "forward" and base.train == TrainSpec()
    assert "direction" not in base.measurement_config() and "train" not in base.measurement_config()
    assert make_spec(tmp_path, "stage=sanity", "train.lr=0.5").config_hash() == base.config_hash()
    data = make_spec(tmp_path, "stage=sanity", "direction=backward_data")
    assert data.config_hash() != base.config_hash()
    assert replace(data, train=replace(data.train, lr=0.5)).config_hash() != data.config_hash()


def _strip(path: Path, columns: tuple[str, ...]) -> None:
    table = pq.read_table(path)
    pq.write_table(table.drop_columns([c for c in columns if c in table.column_names]), path)


def test_a_tree_written_before_the_directions_reads_as_forward_and_is_resumed(tmp_path: Path):
    spec = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm")
    runner.run(spec)
    leaf = spec.partition().path(tmp_path)
    for path in layout.table_files(leaf, "points"):  # as a harness before the training step wrote them
        _strip(path, NEW_POINT_COLUMNS)
    for path in layout.table_files(leaf, "layers"):
        _strip(path, NEW_LAYER_COLUMNS)
    assert "direction" not in pq.read_schema(layout.table_files(leaf, "points")[0]).names
    points, layers = read(tmp_path, "points"), read(tmp_path, "layers")
    assert list(points["direction"]) == ["forward"]
    assert set(layers["direction"]) == {"forward"} and set(layers["point_direction"]) == {"forward"}
    store = ResultStore(tmp_path, spec.partition(), "probe")
    assert store.measured(spec.resolved_for("cpu").config_hash()) == {(32, 1, "float32")}  # a rerun skips it
    runner.run(make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "direction=backward_filter", EVAL))
    won = latest(read(tmp_path, "points"))
    assert sorted(won["direction"]) == ["backward_filter", "forward"]


def test_every_new_column_is_documented():
    assert set(NEW_POINT_COLUMNS) <= set(POINT_COLUMNS)
    assert set(NEW_LAYER_COLUMNS) <= set(LAYER_COLUMNS)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("direction=sideways", ["'sideways'", "forward, backward_data, backward_filter, train_step"]),
        ("train.loss=hinge", ["'hinge'", "cross_entropy, mse"]),
        ("train.optimizer=lbfgs", ["'lbfgs'", "sgd, adam"]),
        ("train.lr=0", ["train.lr=0", "> 0"]),
        ("train.lr=fast", ["train.lr='fast'", "give a number"]),
        ("train.momentum=-0.5", ["train.momentum=-0.5", ">= 0"]),
        ("train.input_grad=maybe", ["train.input_grad='maybe'", "true, false"]),
        ("train.amp=2", ["train.amp=2", "true, false"]),
        ("train.deterministic=sometimes", ["'sometimes'", "true, false"]),
        ("train.check_determinism=twice", ["'twice'", "true, false"]),
        ("train.model_mode=test", ["'test'", "train, eval"]),
    ],
)
def test_a_bad_value_of_every_new_key_is_refused_naming_it_and_the_choices(tmp_path: Path, override: str, words):
    with pytest.raises(ConfigError) as e:
        make_spec(tmp_path, override)
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_a_bad_direction_is_one_error_line_from_the_command_line(results: Path):
    proc = run_cli("direction=sideways", *FAST, f"results_dir={results}")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "sideways" in errors[0] and "train_step" in errors[0]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["direction=train_step", "train.amp=true"], ["train.amp=true", "needs a GPU"]),
        (["direction=train_step", "l2=cold"], ["l2=cold", "direction=train_step", "l2=warm"]),
        (["direction=backward_data", "kernels=true"], ["kernels=True", "direction=backward_data"]),
    ],
)
def test_what_a_training_direction_cannot_run_here_is_refused_before_measuring(tmp_path: Path, overrides, words):
    spec = make_spec(tmp_path, *FAST, "algo=gemm", *overrides)
    with pytest.raises(ConfigError) as e:
        runner.validate(spec)
    for word in words:
        assert word in str(e.value), (word, str(e.value))
    assert not list(tmp_path.glob("stage=*"))


def test_an_algorithm_without_an_enum_in_a_direction_is_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match="algo=implicit_precomp_gemm has no cuDNN backward_data algorithm") as e:
        check_runnable_in("implicit_precomp_gemm", "backward_data", torch.device("cuda"), "cudnn")
    valid = str(e.value).split("valid choices there: ")[1].split(", ")
    assert {"implicit_gemm", "gemm", "winograd", "guess", "find", "torch"} <= set(valid)
    assert "implicit_precomp_gemm" not in valid and "direct" not in valid
    with pytest.raises(ConfigError, match="algo=winograd has no cuDNN backward_filter algorithm"):
        check_runnable_in("winograd", "backward_filter", torch.device("cuda"), "cudnn")
    check_runnable_in("implicit_precomp_gemm", "backward_filter", torch.device("cuda"), "cudnn")  # ALGO_3
    with pytest.raises(ConfigError, match="valid choices there: direct, gemm, fft, winograd, torch"):
        check_runnable_in("implicit_gemm", "backward_data", torch.device("cpu"), "reference")


def test_a_forward_only_plan_is_refused_for_a_backward_direction(tmp_path: Path):
    convs = plans.conv_layers(meta_model("resnet18", {}))
    plan = plans.Plan(
        plans.PlanKey("resnet18"), tuple(plans.PlanLayer(n, ConvGeometry.of(c), "gemm", "measured") for n, c in convs)
    )
    path = plans.write(plan, tmp_path / "forward.json")
    with pytest.raises(ConfigError, match="forward-only plan .version 1.; direction=backward_filter needs a training"):
        make_spec(tmp_path, "algo=per_layer", f"plan={path}", "direction=backward_filter")


class _Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(y.mean(dim=(2, 3)))


def test_the_gradient_check_catches_a_wrong_gradient_and_names_its_parameter():
    torch.manual_seed(0)
    model = _Small()
    x = torch.randn(2, 3, 8, 8)
    labels = fixed_labels(model(x), "cross_entropy", 0)
    s = swap(model, "gemm", backend="reference")
    good = check_gradients(s, x, labels, TrainSpec(), "float32")
    assert good.ok and good.max_rel_err < 1e-5
    layer = s.swapped["conv2"]
    planned = layer.runner_to_call

    def wrong(x: torch.Tensor, direction: str):
        run = planned(x, direction)
        return (lambda *a: run(*a) * 1.01) if direction == "backward_filter" else run

    layer.runner_to_call = wrong
    bad = check_gradients(s, x, labels, TrainSpec(), "float32")
    assert not bad.ok and bad.worst == "conv2.weight" and bad.max_rel_err == pytest.approx(0.01, rel=1e-3)
    assert "conv2.weight" in bad.problem() and "1e-03" not in bad.problem() and "0.001" in bad.problem()


def test_mse_labels_are_targets_of_the_outputs_shape_and_fixed():
    out = torch.zeros(2, 5)
    a, b = fixed_labels(out, "mse", 3), fixed_labels(out, "mse", 3)
    assert a.shape == out.shape and torch.equal(a, b)
    classes = fixed_labels(out, "cross_entropy", 3)
    assert classes.dtype == torch.int64 and classes.shape == (2,) and int(classes.max()) < 5


@pytest.mark.gpu
@pytest.mark.parametrize("direction", ["train_step", "backward_data", "backward_filter"])
def test_a_gpu_point_of_each_direction_is_captured_as_a_graph(tmp_path: Path, direction: str):
    """GPU only: cuDNN's heuristic in each direction, the step (or the gradient calls) timed as a CUDA graph."""
    spec = make_spec(
        tmp_path, *FAST, "stage.sizes=[64]", "device=cuda", "model=resnet18", "algo=guess", f"direction={direction}"
    )
    (point,) = runner.run(spec).points
    assert point["status"] == "ok" and bool(point["grad_ok"]), point.get("error")
    assert point["cuda_graph"] is True and point["graph_error"] is None
    assert point["peak_allocated_bytes"] > 0
    layers = read(tmp_path, "layers")
    assert set(layers["backend"]) == {"cudnn"} and layers["p50_ms"].notna().all()
    backward = layers[layers["direction"] != "forward"]
    assert backward["nondeterministic"].notna().all()  # cuDNN says, per enum


@pytest.mark.gpu
def test_amp_runs_on_a_gpu_eagerly_and_says_why(tmp_path: Path):
    """GPU only: train.amp with torch's layers; the GradScaler's host sync keeps it out of a graph."""
    spec = make_spec(
        tmp_path, *FAST, "stage.sizes=[64]", "device=cuda", "algo=torch", "direction=train_step", "train.amp=true"
    )
    (point,) = runner.run(spec).points
    assert point["status"] == "ok" and bool(point["train_amp"])
    assert point["cuda_graph"] is False and "GradScaler" in point["graph_error"]


# -- train.model_mode ---------------------------------------------------------------------------------------------


class _Normed(nn.Module):
    """A conv with a bias before a batch norm (its bias's gradient is zero in train mode, in exact arithmetic),
    dropout, and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.drop(y.mean(dim=(2, 3))))


def _normed(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = _Normed().eval()  # as the harness loads a model
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        labels = fixed_labels(model(x), "cross_entropy", 0)
    return model, x, labels


def _buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b.clone() for b in model.buffers()]


def test_model_mode_sets_the_mode_for_the_block_and_gives_every_modules_own_back():
    model, _, _ = _normed()
    model.fc.train()  # a module in a mode of its own
    with model_mode(model, "train"):
        assert all(m.training for m in model.modules())
    assert not model.training and not model.bn1.training and model.fc.training
    with model_mode(model, "eval"):
        assert not any(m.training for m in model.modules())
    assert model.fc.training


def test_a_train_mode_step_moves_the_running_statistics_and_kept_buffers_gives_them_back_in_place():
    model, x, labels = _normed()
    before, mean = _buffers(model), model.bn1.running_mean
    with model_mode(model, "train"), kept_buffers(model):
        TrainStep(model, x, labels, TrainSpec())()
        assert not torch.equal(model.bn1.running_mean, before[0])  # a training step updates them
        assert int(model.bn1.num_batches_tracked) == 1
    assert model.bn1.running_mean is mean  # the same tensor (a CUDA graph's address), its values back
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), before))
    with model_mode(model, "eval"):
        TrainStep(model, x, labels, TrainSpec())()
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), before))  # eval: running statistics only read


def test_the_compared_steps_leave_the_buffers_and_see_the_same_dropout_masks():
    model, x, labels = _normed()
    s = swap(model, "gemm", backend="reference")
    before, state = _buffers(model), copy.deepcopy(model.state_dict())
    with model_mode(model, "train"):
        check = check_gradients(s, x, labels, TrainSpec(), "float32")
        calls = saved_operands(model, TrainStep(model, x, labels, TrainSpec()))
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), before))
    assert check.ok and check.max_rel_err < 1e-5, check
    assert len(calls) == 2 and all(c.grad_out is not None for c in calls)
    # the same operands again from the same weights: the step's dropout mask is the compared steps' fixed one
    model.load_state_dict(state)
    with model_mode(model, "train"):
        again = saved_operands(model, TrainStep(model, x, labels, TrainSpec()))
    assert all(torch.equal(a.grad_out, b.grad_out) for a, b in zip(calls, again))


def test_without_the_same_random_numbers_the_gradient_check_fails_on_dropout(monkeypatch):
    model, x, labels = _normed()
    s = swap(model, "gemm", backend="reference")
    monkeypatch.setattr(train_step, "same_random", lambda device, seed=0: contextlib.nullcontext())
    with model_mode(model, "train"):
        assert not check_gradients(s, x, labels, TrainSpec(), "float32").ok  # two masks: two different steps


def test_a_reference_in_float64_draws_the_measured_dtypes_dropout_mask():
    drop = nn.Dropout(0.3).train()
    reference = nn.Sequential(copy.deepcopy(drop)).double()
    masks_in(reference, torch.float32)
    x = torch.randn(64, 32)
    with train_step.same_random(x.device):
        want = drop(x)
    with train_step.same_random(x.device):
        got = reference(x.double())
    assert torch.equal(got != 0, want != 0) and torch.allclose(got, want.double(), rtol=1e-6)


def test_a_gradient_zero_in_exact_arithmetic_is_compared_at_the_models_scale():
    model, x, labels = _normed()
    s = swap(model, "gemm", backend="reference")
    with model_mode(model, "train"):
        got = train_step.gradients(s.model, x, labels, TrainSpec())
        with s.original() as original:
            reference = copy.deepcopy(original).double()
        want = train_step.gradients(reference, x.double(), labels, TrainSpec())
    largest = max(float(w.abs().max()) for w in want.values())
    assert float(want["conv1.bias"].abs().max()) < 1e-12 * largest  # batch norm removes any constant shift
    assert relative_error(got["conv1.bias"], want["conv1.bias"]) > 1.0  # rounding noise over rounding noise
    errors = grad_errors(got, want)
    assert errors["conv1.bias"] < 1e-6 and errors["conv1.weight"] == relative_error(
        got["conv1.weight"], want["conv1.weight"]
    )


def test_eval_mode_is_the_model_as_loaded_and_train_mode_is_not():
    model, x, labels = _normed()
    as_loaded = train_step.gradients(model, x, labels, TrainSpec())  # the step before train.model_mode
    with model_mode(model, "eval"):
        evaluated = train_step.gradients(model, x, labels, TrainSpec(model_mode="eval"))
    with model_mode(model, "train"):
        trained = train_step.gradients(model, x, labels, TrainSpec())
    assert all(torch.equal(as_loaded[n], evaluated[n]) for n in as_loaded)
    assert not torch.equal(as_loaded["conv1.weight"], trained["conv1.weight"])


@pytest.mark.parametrize(
    ("overrides", "earlier"),
    [(["direction=backward_data"], "cae7404b3b3f4851"), (["direction=train_step", "stage=quick"], "88be8849a8029bf0")],
)
def test_eval_mode_keeps_the_hash_training_points_had_before_the_key(tmp_path: Path, overrides, earlier: str):
    """Hashes as the harness wrote them before train.model_mode (the step ran in eval then): train hashes apart."""
    default = make_spec(tmp_path, "results_dir=results", *overrides).resolved_for("cpu")
    eval_ = make_spec(tmp_path, "results_dir=results", *overrides, EVAL).resolved_for("cpu")
    train = make_spec(tmp_path, "results_dir=results", *overrides, TRAIN).resolved_for("cpu")
    assert default.train.model_mode == "eval" and default.config_hash() == eval_.config_hash() == earlier
    assert train.train.model_mode == "train" and train.config_hash() != earlier


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["batch_size=1"], ["layer4.0.bn1", "1 value(s)", "input size 32", "batch_size=1", "1x512x1x1", "cannot"]),
        (["batch_size=2"], ["layer4.0.bn1", "2 value(s)", "-1 and +1", "at least 3; 8 or more"]),
        (["batch_size=[8,1]", "stage.sizes=[64,32]"], ["input size 32", "batch_size=1"]),
    ],
)
def test_a_batch_norm_with_too_few_values_per_channel_is_refused_in_train_mode(tmp_path: Path, overrides, words):
    spec = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "direction=backward_filter", TRAIN, *overrides)
    with pytest.raises(ConfigError) as e:
        runner.validate(spec)
    for word in [*words, "a larger batch_size", "or input size", "train.model_mode=eval"]:
        assert word in str(e.value), (word, str(e.value))
    for fine in ([EVAL], [], [TRAIN, "batch_size=3"]):  # eval, the default, runs at any batch and size
        runner.validate(make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "direction=backward_filter", *fine))
    runner.validate(make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm"))  # forward: eval, always


def test_the_refusal_is_one_error_line_from_the_command_line(results: Path):
    proc = run_cli("direction=train_step", "model=resnet18", "algo=gemm", TRAIN, *FAST, f"results_dir={results}")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "layer4.0.bn1" in errors[0] and "train.model_mode=eval" in errors[0]
    assert not list(results.glob("stage=*"))


def test_a_training_point_not_timed_still_has_its_directions_flops(tmp_path: Path):
    """winograd cannot run resnet18's strided and 1x1 convs (no fallback): the point is unsupported, not timed,
    and its flops are backward_data's (layer 0 left out: not the forward's, which the row would otherwise carry)."""
    spec = make_spec(tmp_path, *FAST, "model=resnet18", "algo=winograd", "direction=backward_data", EVAL)
    (point,) = runner.run(spec).points
    assert point["status"] == "unsupported" and "layer2.0.conv1 (backward_data)" in point["error"]
    costs = count_directions(meta_model("resnet18", {}), torch.empty(1, 3, 32, 32, device="meta"))
    assert point["flops"] == costs.model.flops["backward_data"] < costs.model.flops["forward"]


@pytest.mark.gpu
@pytest.mark.parametrize("algo", ["guess", "torch"])
def test_a_captured_training_steps_replay_gives_the_eager_steps_gradients(algo: str):
    """GPU only: resnet18's step (cuDNN's heuristic in every direction, or torch's own layers) captured as a CUDA
    graph the way the measurement captures it (capture_step); a replay's gradients are those of an eager
    forward and backward at the same weights (strict FP32), and its optimizer step moves the weights."""
    from harness.algorithms import backend_flags
    from harness.measure.train_point import capture_step
    from harness.measure.train_step import TrainStep, first_output, loss_function
    from harness.models import build_model

    torch.manual_seed(0)
    device = torch.device("cuda")
    model = build_model("resnet18").to(device).eval()
    x = torch.randn(4, 3, 64, 64, device=device)
    train = TrainSpec()
    with backend_flags("fma", False):
        swapped = swap(model, algo, backend="cudnn", fallback="torch", math="fma") if algo != "torch" else None
        try:
            if swapped is not None:
                swapped.plan_step(x)
            with torch.no_grad():
                labels = fixed_labels(first_output(model(x)), train.loss, 0)
            step = TrainStep(model, x, labels, train)
            replay, why = capture_step(step, device)
            assert replay is not None, why
            params = [p for p in model.parameters() if p.requires_grad]
            before = [p.detach().clone() for p in params]
            replay()
            torch.cuda.synchronize()
            replayed = [p.grad.detach().clone() for p in params]
            assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True)), "no optimizer step"
            with torch.no_grad():
                for p, b in zip(params, before, strict=True):
                    p.copy_(b)  # the weights the replay's gradients were computed at
            with torch.enable_grad():
                loss = loss_function(train.loss)(first_output(model(x)), labels)
                eager = torch.autograd.grad(loss, params)
        finally:
            if swapped is not None:
                swapped.undo()
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for name, got, want in zip(names, replayed, eager, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()) + 1e-12, msg=name)
