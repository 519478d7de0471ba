#!/usr/bin/env bash
# One lent GPU machine, one suite of the acceptance per call (the `device` tool's run: 15 minutes of device
# time per lease, machine start included, at most 10 minutes a call), in order of value:
#
#   bash scripts/device-session.sh core      [BUDGET_S]   # GPU tests, every algorithm, stability, overhead
#   bash scripts/device-session.sh regimes   [BUDGET_S]   # batch x dtype x layout for the algorithms that matter
#   bash scripts/device-session.sh energy    [BUDGET_S]   # energy windows, idle power, linearity
#   bash scripts/device-session.sh training  [BUDGET_S]   # backward families: GPU tests, support per direction,
#                                                         # gradients, graph capture, a training plan's projection
#
# Each adds its section to docs/validation/<device>-<date>.md (packed under $OUT with the jobs). Run from the
# repository root there, after `.whl/` was filled here with the pure-Python wheels that machine lacks
# (hydra-core, omegaconf, antlr4, submitit; see ../shared/GPU-CHECKS.md).
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
suite=${1:-core}
# training: its estimate is 7.7 min (harness.acceptance.budget, conservative); with 450 s the sweep's deadline cuts
# the sweep's last points if they run late (never the training steps, the plan or its run), and the timeout below
# (540 s) stays under a call's 10 minutes and leaves the 15-minute lease its machine start and a margin
case "$suite" in training) default_budget=450 ;; *) default_budget=420 ;; esac
budget=${2:-$default_budget}
case "$suite" in core|regimes|energy|training) ;; *) echo "unknown suite '$suite'; valid: core, regimes, energy, training"; exit 2 ;; esac

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "wheels did not install"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTEST_ADDOPTS="-n 8"

pack() { tar czf "$OUT/jobs.tgz" jobs docs/validation 2>/dev/null; }
trap pack EXIT

{
  date -u; nvidia-smi; nproc
  python3 -c "import sys, torch, torchvision; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda,
'cudnn', torch.backends.cudnn.version(), 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
  python3 -c "import hydra, omegaconf, submitit; print('hydra', hydra.__version__, 'submitit', submitit.__version__)"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# the suite (verdict section under docs/validation/)
timeout $((budget + 90)) python3 -m harness.acceptance --suite "$suite" --budget-s "$budget" --tests-timeout-s 120 \
  >"$OUT/acceptance-$suite.txt" 2>&1
echo "acceptance ($suite) exit code $?" | tee -a "$OUT/acceptance-$suite.txt"
tail -n 60 "$OUT/acceptance-$suite.txt"
pack

# core only: the harness's timer over a bare CUDA-event loop (goal <= 1.01)
if [ "$suite" = core ]; then
  for m in resnet50 vgg16; do
    timeout 40 python3 benchmarks/overhead.py --model $m --size 224 --rounds 5 --iters 30
  done >"$OUT/overhead.txt" 2>&1
  cat "$OUT/overhead.txt"
fi
