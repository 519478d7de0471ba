"""The training directions (issue 31): direction=train_step|backward_data|backward_filter measured on the CPU for
real, their rows, their keys' refusals, and trees written before them reading as forward."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from harness.algorithms import check_runnable_in
from harness.algorithms import plan as plans
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.swap import AlgoConv2d, swap
from harness.config.spec import TrainSpec
from harness.errors import ConfigError
from harness.measure.train_step import GRAD_TOLERANCES, check_gradients, fixed_labels
from harness.models import meta_model
from harness.results import layout
from harness.results.columns import LAYER_COLUMNS, POINT_COLUMNS
from harness.results.read import latest, read
from harness.results.store import ResultStore
from harness.run import runner
from tests.conftest import FAST, run_cli
from tests.helpers import make_spec

RESNET18_CONVS = 20
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
    proc = run_cli(
        f"direction={direction}", "model=resnet18", "backend=reference", "algo=gemm", *FAST, f"results_dir={results}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (point,) = read(results, "points").to_dict("records")
    assert point["status"] == "ok" and point["direction"] == direction and point["n"] >= 3
    assert bool(point["grad_ok"]) and point["grad_max_rel_err"] < GRAD_TOLERANCES["float32"]
    for d in plans.DIRECTIONS:  # the algorithm asked for in each direction the point times, null in the others
        assert (point[f"algo_{d}"] == "gemm") is (d in rows_per_direction), d
    assert (point["train_loss"], point["train_optimizer"], point["train_amp"]) == ("cross_entropy", "sgd", False)
    assert point["conv_layers"] == RESNET18_CONVS and pd.isna(point["achieved_tflops"])
    layers = read(results, "layers")
    assert layers["direction"].value_counts().to_dict() == rows_per_direction
    assert set(layers["point_direction"]) == {direction}
    assert set(layers["algo_used"]) == {"gemm"} and set(layers["status"]) == {"ok"}  # what ran, per call
    assert layers["p50_ms"].notna().all() and (layers["p50_ms"] > 0).all()
    assert not layers["determinism_checked"].any() and layers["nondeterministic"].isna().all()  # unknown off cuDNN
    if "backward_data" in rows_per_direction:
        assert 0 not in set(layers.loc[layers["direction"] == "backward_data", "layer_index"])
    forward = layers[layers["direction"] == "forward"]
    assert forward["flops"].notna().all() if len(forward) else True
    assert layers.loc[layers["direction"] != "forward", "flops"].isna().all()  # until flops_directions counts them


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
    )
    result = runner.run(spec)
    (point,) = result.points
    assert point["status"] == "ok" and bool(point["train_input_grad"]) and bool(point["grad_ok"])
    assert bool(point["train_deterministic"]) and not torch.are_deterministic_algorithms_enabled()  # restored
    layers = read(tmp_path, "layers")
    assert len(layers) == RESNET18_CONVS and 0 in set(layers["layer_index"])  # layer 0's backward_data too
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
    spec = make_spec(tmp_path / "r", *FAST, "model=resnet18", "algo=per_layer", f"plan={path}", "direction=train_step")
    (point,) = runner.run(spec).points
    assert point["status"] == "ok" and bool(point["grad_ok"]) and point["plan_hash"] == plan.digest()
    rows = read(tmp_path / "r", "layers")
    chosen = plan.choice()
    got = {(r.layer_name, r.direction): r.algo_used for r in rows.itertuples()}
    want = {(n, d): chosen[n][d] for n in chosen for d in plans.DIRECTIONS if (n, d) != ("conv1", "backward_data")}
    assert got == want and len(set(got.values())) == 4  # every layer and direction ran its own choice


def test_forward_and_training_rows_of_a_point_never_replace_each_other(tmp_path: Path):
    forward = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm")
    step = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "direction=train_step")
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
    runner.run(make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "direction=backward_filter"))
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
    spec = make_spec(tmp_path, *FAST, "device=cuda", "model=resnet18", "algo=guess", f"direction={direction}")
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
    spec = make_spec(tmp_path, *FAST, "device=cuda", "algo=torch", "direction=train_step", "train.amp=true")
    (point,) = runner.run(spec).points
    assert point["status"] == "ok" and bool(point["train_amp"])
    assert point["cuda_graph"] is False and "GradScaler" in point["graph_error"]


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
