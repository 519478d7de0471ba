"""Per-layer plans: make one from a results tree, show it, export it for ai3 or as CSV.

    python -m analysis.plans make results --model resnet18 --size 32 --out plan.json
    python -m analysis.plans make results --model vgg16 --size 224 --gpu h100 --from find --out find.json
    python -m analysis.plans make results --model resnet18 --size 32 --direction train_step --out train.json
    python -m analysis.plans show plan.json
    python -m analysis.plans export plan.json --ai3 [--torch-as guess] [--out algos.json] [--csv plan.csv]

``make`` chooses per conv layer the fastest algorithm measured at that point, beyond noise (a tie keeps the
baseline: guess where measured, else torch; analysis.plans.make); ``--direction train_step`` chooses per conv
layer per direction from the train_step points (a training plan: analysis.plans.training). The plan file is
described in harness.algorithms.plan. Run it with ``python -m harness algo=per_layer plan=plan.json ...``
(a training plan: ``direction=train_step`` too).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from analysis.errors import AnalysisError
from analysis.plans.find import from_find
from analysis.plans.make import choose
from analysis.plans.predicted import DEFAULT_MARGIN, predicted
from analysis.plans.training import choose_training
from analysis.plans.where import Where
from analysis.tree import SETTINGS, Filters, directions, load, one_setting
from analysis.tree.directions import TRAIN_STEP
from harness import validate
from harness.algorithms import plan as plans
from harness.algorithms.geometry import ConvGeometry
from harness.cli import ArgumentParser, command
from harness.config.spec import DTYPES

# make's --backend says where a predicted plan will run; the results' backend is not filtered here
SETTING_FILTERS_SKIPPED = ("backend",)
SOURCES = ("measured", "find", "predicted")  # make --from
PLAN_DIRECTIONS = ("forward", TRAIN_STEP)  # make --direction: a forward plan, or a training plan
BACKENDS = ("cudnn", "reference")  # make --backend


PROG = "python -m analysis.plans"


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=prog,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1],
    )
    sub = p.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="a plan from measurements in results trees")
    make.add_argument("trees", nargs="+", metavar="TREE", type=validate.input_path, help="results tree(s)")
    make.add_argument("--model", required=True, type=validate.text)
    make.add_argument("--size", type=validate.positive_int, required=True, help="input size of the point")
    make.add_argument("--batch", type=validate.positive_int, default=1, help="batch size of the point (default 1)")
    make.add_argument("--dtype", default="float32", type=validate.choice(DTYPES), metavar="|".join(DTYPES))
    make.add_argument("--gpu", default=None, type=validate.text, help="gpu type (needed where the tree holds several)")
    make.add_argument("--stage", default=None, type=validate.text, help="stage (needed where several hold the point)")
    make.add_argument(
        "--algos",
        default=None,
        type=validate.text,
        help="only these compete, comma-separated (default: every algorithm "
        "measured at the point), e.g. --algos gemm,winograd for a plan ai3 runs without torch",
    )
    make.add_argument(
        "--baseline",
        default=None,
        type=validate.text,
        help="what a tie keeps (default: guess where measured, else " "torch, else the first of --algos)",
    )
    make.add_argument(
        "--from",
        dest="source",
        type=validate.choice(SOURCES),
        default="measured",
        metavar="|".join(SOURCES),
        help="measured (default): the fastest beyond noise among the algorithms measured; find: what "
        "cuDNN's exhaustive search picked per layer in an algo=find run (GPU); predicted: the latency "
        "predictor (--predictor PATH, --algos), for a point never measured",
    )
    make.add_argument(
        "--predictor",
        default=None,
        metavar="PKL",
        type=validate.input_path,
        help="--from predicted: the saved latency model (python -m analysis --predictor writes "
        "<out>/predictor/latency.pkl)",
    )
    make.add_argument(
        "--margin",
        type=validate.non_negative_float,
        default=DEFAULT_MARGIN,
        help="--from predicted: switch from the baseline only when predicted faster by more than this "
        f"(default {DEFAULT_MARGIN}: predictions carry no interval)",
    )
    make.add_argument(
        "--backend",
        default=None,
        type=validate.choice(BACKENDS),
        metavar="|".join(BACKENDS),
        help="--from predicted: where the plan will run (reference: offer no algorithm a layer cannot run)",
    )
    make.add_argument(
        "--direction",
        default="forward",
        type=validate.choice(PLAN_DIRECTIONS),
        metavar="|".join(PLAN_DIRECTIONS),
        help="forward (default): a plan for the forward pass; train_step: a training plan, one algorithm per "
        "layer per direction, from the train_step points (--from measured only)",
    )
    make.add_argument("--out", required=True, type=validate.output_file, help="the plan file to write (JSON)")
    Filters.add_setting_arguments(make, " (where the trees hold several settings)", skip=SETTING_FILTERS_SKIPPED)
    show = sub.add_parser("show", help="print a plan, one line per conv layer")
    show.add_argument("plan", type=validate.input_path)
    export = sub.add_parser("export", help="the plan as ai3's per-layer list and/or a CSV")
    export.add_argument("plan", type=validate.input_path)
    export.add_argument("--ai3", action="store_true", help="print (or --out) the list of ai3 algorithm names")
    export.add_argument(
        "--torch-as",
        default="guess",
        type=validate.choice(sorted(set(plans.AI3_NAMES.values()))),
        help="ai3 name for a layer the plan keeps on torch (default guess: ai3 cannot leave a layer to PyTorch)",
    )
    export.add_argument(
        "--out", default=None, type=validate.output_file, help="write the ai3 list here (JSON) instead of printing it"
    )
    export.add_argument("--csv", default=None, type=validate.output_file, help="write the plan as a CSV table here")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return p


def make(args: argparse.Namespace) -> plans.Plan:
    from harness.algorithms import canonical_name
    from harness.models import meta_model

    trees = [Path(t) for t in args.trees]
    settings = [k for k in SETTINGS if k not in SETTING_FILTERS_SKIPPED]
    filters = replace(Filters.from_arguments(args, settings), model=(args.model,))
    res = one_setting(load(trees, filters), "plan make") if args.source != "predicted" else None
    modules = [(name, ConvGeometry.of(m)) for name, m in plans.conv_layers(meta_model(args.model, {}))]
    where = Where(args.model, args.size, args.batch, args.dtype, args.gpu, args.stage)
    made_by = (
        f"python -m analysis.plan make {' '.join(map(str, trees))} ({where.describe()}"
        + (f", algos {args.algos}" if args.algos else "")
        + ")"
    )
    algos = tuple(canonical_name(a) for a in (args.algos or "").split(",") if a)
    baseline = canonical_name(args.baseline) if args.baseline else None
    if args.direction == TRAIN_STEP:
        if args.source != "measured":
            raise AnalysisError(
                f"--direction train_step --from {args.source}: a training plan is made from measurements only "
                "(--from measured)"
            )
        return choose_training(res.points, res.layers, where, modules, made_by + " for train_step", algos, baseline)
    if args.source == "predicted":
        return make_predicted(args, where, modules, algos, baseline, made_by + " from the predictor")
    res = directions.forward(res)  # a forward plan: the forward points and their layers
    if args.source == "find":
        return from_find(res.points, res.layers, where, modules, made_by + " from find")
    return choose(res.points, res.layers, where, modules, made_by, algos, baseline)


def make_predicted(args: argparse.Namespace, where: Where, modules, algos, baseline, made_by) -> plans.Plan:
    """--from predicted: the saved latency model, the gpu type's datasheet (from the trees' runs or conf/gpu)."""
    from analysis.predict.save import load_model
    from analysis.tree.specs import gpu_specs

    if not args.predictor:
        raise AnalysisError(
            "--from predicted needs --predictor PATH (python -m analysis --predictor writes "
            "<out>/predictor/latency.pkl)"
        )
    try:
        model = load_model(args.predictor)
    except (OSError, EOFError, KeyError, ValueError) as e:
        raise AnalysisError(f"--predictor {args.predictor}: cannot be read ({e})") from None
    gpu = args.gpu or "local"
    where = Where(where.model, where.input_size, where.batch_size, where.dtype, gpu, where.stage)
    specs = gpu_specs([Path(t) for t in args.trees], [gpu])
    return predicted(where, modules, model.predict, specs, algos, baseline, args.margin, args.backend, made_by)


def lines(plan: plans.Plan) -> list[str]:
    k = plan.key
    out = [
        f"plan {plan.digest()}: {k.model}, input {k.input_size}, batch {k.batch_size}, {k.dtype}, gpu {k.gpu} "
        f"({k.device_name}), cuDNN {k.cudnn_version}, backend {k.backend}; baseline {plan.baseline}"
    ]
    for i, row in enumerate(plans.csv_rows(plan)):

        def ev(who: str, row: dict = row) -> str:
            ci = f" [{row[who + '_ci95']}]" if row[who + "_ci95"] else ""
            return f"{row[who]} {row[who + '_p50_ms']:.4g} ms{ci}" if row[who] else "-"

        w, r = ev("winner"), ev("runner_up")
        algo = "/".join(row[c] for c in ("algo", *(f"algo_{d}" for d in plans.BACKWARD)) if c in row)
        out.append(
            f"{i:3d} {row['name']:<28} {row['geometry']:<26} {algo:<22} {row['source']:<9} "
            f"fastest {w}; runner-up {r}"
        )
    if plan.is_training:
        out.insert(1, "a training plan: each layer's forward/backward_data/backward_filter algorithm")
    for d in plans.DIRECTIONS if plan.is_training else ("forward",):
        counts: dict[str, int] = {}
        for layer in plan.layers:
            a = layer.algos()[d]
            counts[a] = counts.get(a, 0) + 1
        what = f"{d} layers" if plan.is_training else "layers"
        out.append(f"{what} per algorithm: " + ", ".join(f"{a} {n}" for a, n in counts.items()))
    e = plan.extra
    if e.get("projected_ms"):
        out.append(
            f"projected: {e['projected_ms']:.4g} ms against the baseline's measured {e['baseline_p50_ms']:.4g} ms "
            f"(x{e['projected_speedup']:.3f}; measure it: python -m harness "
            f"{'direction=train_step ' if plan.is_training else ''}algo=per_layer plan=PATH)"
        )
    if e.get("switch_correction"):
        out.append(f"switches beyond noise: {e['switch_correction']}")
    return out


def device_of(plan: plans.Plan) -> str:
    """Where ``plan`` runs, as ai3 names devices: "cpu" for a plan made on the reference backend (the CPU),
    else "cuda"."""
    return "cpu" if plan.key.backend == "reference" or plan.key.gpu == "cpu" else "cuda"


def ai3_support_note(plan: plans.Plan, torch_as: str) -> str:
    """Which of the plan's algorithms ai3 can run on the plan's device (harness.algorithms.ai3), one line
    each; a layer kept on torch is counted as the algorithm ``torch_as`` names (what the export writes)."""
    from harness.algorithms.ai3 import ai3_device_support, format_device_support

    ours = {ai3: name for name, ai3 in plans.AI3_NAMES.items()}
    names = list(dict.fromkeys(ours.get(torch_as, torch_as) if x.algo == "torch" else x.algo for x in plan.layers))
    device = device_of(plan)
    return format_device_support(ai3_device_support(names, device), device)


@command
def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    args = parser(prog).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command == "make":
        plan = make(args)
        path = plans.write(plan, args.out)
        print("\n".join(lines(plan)))
        print(f"wrote {path}")
        return 0
    plan = plans.read(args.plan)
    if args.command == "show":
        print("\n".join(lines(plan)))
        return 0
    if not args.ai3 and not args.csv:
        raise AnalysisError("export: give --ai3 and/or --csv FILE")
    if args.csv:
        print(f"wrote {plans.write_csv(plan, args.csv)}", file=sys.stderr)
    if args.ai3:
        names = plans.ai3_algorithms(plan, args.torch_as)
        print(ai3_support_note(plan, args.torch_as), file=sys.stderr)
        if args.out:
            Path(args.out).write_text(json.dumps(names) + "\n")
            print(f"wrote {args.out} ({len(names)} conv layers)", file=sys.stderr)
        else:
            print(json.dumps(names))
    return 0
