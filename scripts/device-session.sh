#!/usr/bin/env bash
# One lent GPU machine, one command (the `device` tool's run): the acceptance verdict, the harness's timer
# against a bare CUDA-event loop, then the issue-15 plan checks on resnet50 at 224 (eager and as CUDA
# graphs), everything packed under $OUT. Run from the repository root there, after `.whl/` was filled here
# with the pure-Python wheels that machine lacks (hydra-core, omegaconf, antlr4, submitit; see
# ../shared/GPU-CHECKS.md). Sized for one call of under 8.5 minutes on an H100.
#
#   bash scripts/device-session.sh [ACCEPTANCE_BUDGET_S]
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
budget=${1:-330}

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

# 1. the acceptance command (GPU tests, sweep, extra runs, verdict under docs/validation/)
timeout $((budget + 60)) python3 -m harness.acceptance --budget-s "$budget" --tests-timeout-s 120 \
  >"$OUT/acceptance.txt" 2>&1
echo "acceptance exit code $?" | tee -a "$OUT/acceptance.txt"
tail -n 60 "$OUT/acceptance.txt"
pack

# 2. the harness's timer over a bare CUDA-event loop (goal <= 1.01)
for m in resnet50 vgg16; do
  timeout 40 python3 benchmarks/overhead.py --model $m --size 224 --rounds 5 --iters 30
done >"$OUT/overhead.txt" 2>&1
cat "$OUT/overhead.txt"

# 3. issue 15 on the GPU: a measured plan for resnet50 at 224 (layer times behind a head start), run end to
#    end eagerly and as a CUDA graph beside guess and torch as graphs
P=jobs/plans R=jobs/plans/results
mkdir -p $P
common="gpu=local device=cuda stage=sanity stage.sizes=[224] model=resnet50 math=fma results_dir=$R"
{
  set -x
  timeout 100 python3 -m harness -m $common fallback=torch \
    algo=implicit_gemm,implicit_precomp_gemm,gemm,fft,fft_tiling,winograd,winograd_nonfused,guess,torch
  python3 -m analysis.plan make $R --model resnet50 --size 224 --out $P/plan-measured.json
  timeout 40 python3 -m harness $common algo=per_layer plan=$P/plan-measured.json
  timeout 40 python3 -m harness $common algo=per_layer plan=$P/plan-measured.json graph=true
  timeout 50 python3 -m harness -m $common algo=guess,torch graph=true
  set +x
} >"$OUT/plans.txt" 2>&1
tail -n 40 "$OUT/plans.txt"
