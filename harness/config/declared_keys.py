"""The harness's own config keys, declared once each (the table; the registry that reads and checks it is
harness.config.keys, which re-exports ``KEYS``). Add a key here with its role and why."""

from __future__ import annotations

from harness.config.key_record import Key, Role

_P, _S, _H, _E, _N = Role.POINT, Role.SETTING, Role.HASHED, Role.ENVIRONMENT, Role.NEUTRAL
_SAMPLING = "how long and how often the same point is sampled: the precision, not the quantity"

KEYS: tuple[Key, ...] = (
    # the point key, declared in its column order (point_key(): the leaf's stage, gpu, model, algo, then the
    # point within the leaf)
    Key(
        "stage.name",
        "config group (conf/stage)",
        _P,
        "the stage: which sizes and how hard (stage column)",
        column="stage",
    ),
    Key(
        "gpu.name",
        "config group (conf/gpu)",
        _P,
        "the GPU type (gpu column); local: whatever this machine has, named by device_name",
        column="gpu",
    ),
    Key("model.name", "str", _P, "the model (model column; a file's content hash in model_hash)", column="model"),
    Key(
        "model.path",
        "path",
        _P,
        "a model file: its stem names the model, its content hash is model_hash",
        column="model",
        nullable=True,
    ),
    Key(
        "model.factory",
        "str",
        _P,
        "the user's model function: names the model, its source's hash is model_hash",
        column="model",
        nullable=True,
    ),
    Key("algo.name", "config group (conf/algo)", _P, "what runs the conv layers (algo column)", column="algo"),
    Key("stage.sizes", "sizes", _P, "the input sizes: one point each (input_size column)", column="input_size"),
    Key("stage.size_range", "mapping", _P, "deprecated spelling of stage.sizes", column="input_size", nullable=True),
    Key("batch_size", "int | list[int]", _P, "one point per batch size (batch_size column)", column="batch_size"),
    Key("dtype", "str", _P, "the data type (dtype column)", ("float32", "float16", "bfloat16"), column="dtype"),
    Key(
        "layout",
        "str",
        _P,
        "the memory layout of activations and weights: nchw (contiguous) or nhwc (channels_last) (layout column)",
        ("nchw", "nhwc"),
        column="layout",
    ),
    Key(
        "l2",
        "str",
        _P,
        "the L2 cache at each timed iteration: warm (as left by the last one) or cold (flushed outside the timed "
        "interval) (l2 column)",
        ("warm", "cold"),
        column="l2",
    ),
    Key(
        "direction",
        "str",
        _P,
        "what one timed iteration is: the forward, the conv layers' input gradients (backward_data), their weight "
        "gradients (backward_filter), or a whole training step (train_step) (direction column)",
        ("forward", "backward_data", "backward_filter", "train_step"),
        column="direction",
    ),
    # settings: what is measured
    Key(
        "device",
        "str",
        _S,
        "cpu and cuda measure different hardware (device column; auto: cuda where there is one)",
        ("auto", "cpu", "cuda"),
        column="device",
        option="device",
    ),
    Key(
        "backend",
        "str",
        _S,
        "cuDNN's kernels or the reference implementation run the layers (backend column)",
        ("auto", "cudnn", "reference"),
        column="backend",
        option="backend",
    ),
    Key(
        "math",
        "str",
        _S,
        "strict FP32 (fma) or tensor cores (tensor_op: TF32) (math_type column)",
        ("auto", "fma", "tensor_op"),
        column="math_type",
        option="math",
    ),
    Key(
        "fallback",
        "str",
        _S,
        "what runs the layers the algorithm cannot: it changes a row where a layer fell back "
        "(fallback_policy column)",
        ("none", "guess", "torch"),
        column="fallback_policy",
        option="fallback",
    ),
    Key(
        "cudnn_benchmark",
        "bool",
        _S,
        "the framework's convolutions use the heuristic's or the timed-fastest " "algorithm (cudnn_benchmark column)",
        ("false", "true"),
        column="cudnn_benchmark",
        option="benchmark",
    ),
    Key(
        "graph",
        "bool | auto",
        _S,
        "CUDA-graph replays time the GPU's work, eager launches the host's issuing too " "(cuda_graph column)",
        ("auto", "false", "true"),
        column="cuda_graph",
        option="graph",
    ),
    Key(
        "cpu_threads",
        "positive int | auto",
        _S,
        "the framework's CPU threads set a CPU point's speed (cpu_threads column; "
        "auto: torch's default, the CPUs the job may use)",
        column="cpu_threads",
        option="cpu_threads",
    ),
    Key(
        "plan",
        "path",
        _S,
        "algo=per_layer: which algorithm runs each layer (plan_hash column)",
        column="plan_hash",
        option="plan",
        nullable=True,
    ),
    # hashed: how the same quantity is measured
    Key("stage.warmup_iters", "int", _H, _SAMPLING),
    Key("stage.warmup_s", "float", _H, _SAMPLING),
    Key("stage.min_iters", "int", _H, _SAMPLING),
    Key("stage.max_iters", "int", _H, _SAMPLING),
    Key("stage.max_time_s", "float", _H, _SAMPLING),
    Key("stage.target_ci_rel", "float", _H, _SAMPLING),
    Key("stage.layer_iters", "int", _H, _SAMPLING + " (the per-layer pass)"),
    Key("stage.energy_window_s", "float", _H, "the length of the energy window: the counter's granularity"),
    # the energy procedure (harness.measure.energy): hashed only where set to a non-default value
    # (harness.config.spec.ENERGY_DEFAULTS), so that earlier points are not measured again
    Key("stage.energy_windows", "int", _H, "energy windows per point: the interval of the energy per inference"),
    Key("stage.steady_power_slope", "float", _H, "when power counts as steady before the windows (per second)"),
    Key("stage.steady_temp_slope_c_s", "float", _H, "when temperature counts as steady before the windows"),
    Key("stage.steady_span_s", "float", _H, "the span the steady-state slopes are fitted over"),
    Key("stage.steady_cap_s", "float", _H, "the longest warm-up to steady state before the windows"),
    Key("stage.cooldown_margin", "float", _H, "how close to idle the cooldown waits for (the idle measured after)"),
    Key("stage.cooldown_cap_s", "float", _H, "the longest cooldown before the idle power is measured again"),
    Key(
        "stage.verify_every_point",
        "bool",
        _H,
        "which points are checked against the baseline (their status)",
        ("false", "true"),
    ),
    Key("tolerance.*", "mapping of float", _H, "the verification threshold per dtype decides a point's status"),
    # the training step (direction != forward; harness.measure.train_step): hashed where the direction is not
    # forward (a forward point never runs them, so its hash is as before the keys existed). Those that change the
    # step's work are settings: a step under two of them is two steps, never compared, never replacing each other
    # (analysis.tree.settings: they apply to rows of a direction other than forward)
    Key(
        "train.loss",
        "str",
        _S,
        "the step's loss (train_loss column)",
        ("cross_entropy", "mse"),
        column="train_loss",
        option="loss",
    ),
    Key(
        "train.optimizer",
        "str",
        _S,
        "the step's optimizer (train_optimizer column)",
        ("sgd", "adam"),
        column="train_optimizer",
        option="optimizer",
    ),
    Key("train.lr", "float", _H, "the optimizer's learning rate (> 0): the weights each step leaves"),
    Key("train.momentum", "float", _H, "SGD's momentum (>= 0; sgd only): the optimizer's work per step"),
    Key(
        "train.input_grad",
        "bool",
        _S,
        "layer 0 computes its input's gradient (a backward_data call more; train_input_grad column)",
        ("false", "true"),
        column="train_input_grad",
        option="input_grad",
    ),
    Key(
        "train.amp",
        "bool",
        _S,
        "mixed precision: torch.autocast (float16) and a GradScaler (GPU only; train_amp column)",
        ("false", "true"),
        column="train_amp",
        option="amp",
    ),
    Key(
        "train.deterministic",
        "bool",
        _S,
        "torch.use_deterministic_algorithms for the job: which kernels may run (train_deterministic column)",
        ("false", "true"),
        column="train_deterministic",
        option="deterministic",
    ),
    Key(
        "train.model_mode",
        "str",
        _S,
        "the model's mode during the step: train (batch norm on the batch's statistics, dropout on) or eval "
        "(running statistics, no dropout: the step before the key existed); train_model_mode column",
        ("train", "eval"),
        column="train_model_mode",
        option="train_mode",
    ),
    Key(
        "train.check_determinism",
        "bool",
        _H,
        "each backward layer call run twice and compared bitwise (nondeterministic, determinism_checked columns)",
        ("false", "true"),
    ),
    Key("seed", "int", _H, "the random weights' and input's values: the same work at the same shapes"),
    Key(
        "model.kwargs.*",
        "mapping",
        _H,
        "the model's constructor arguments: part of the model's identity in the "
        "hash (not in model_hash for a torchvision model)",
    ),
    Key(
        "model.input_channels", "int", _H, "a file or factory model's input channels: the input's shape", nullable=True
    ),
    Key(
        "stage.slurm.cpus_per_task",
        "int",
        _H,
        "the job's CPU allowance: what cpu_threads=auto resolves to (the "
        "cpu_threads column records the count, the setting); in the hash where it differs from the stage's default",
    ),
    # environment: recorded per row, not hashed
    Key(
        "gpu.slurm.*",
        "mapping",
        _E,
        "where a SLURM job runs (partition, gres, constraint, other sbatch options): "
        "the device it got is device_name",
        nullable=True,
    ),
    Key(
        "gpu.python", "path", _E, "the interpreter: its torch, CUDA and cuDNN versions are on every row", nullable=True
    ),
    Key(
        "gpu.container",
        "path",
        _E,
        "the image jobs run in: its torch, CUDA and cuDNN versions are on every row",
        nullable=True,
    ),
    Key("gpu.container_exec", "str", _E, "how the image runs a command; what runs is recorded as for gpu.container"),
    # neutral: cannot change a measured number
    Key("gpu.nvml_name", "str", _N, "a check: a run refuses a device whose name does not contain it", nullable=True),
    Key(
        "gpu.spec.*",
        "mapping of float",
        _N,
        "an explicit override of the detected SKU's datasheet peaks (conf/skus.yaml), field by field (null: the "
        "SKU's): only the roofline columns derived from them",
        nullable=True,
    ),
    Key(
        "stage.reference_tolerance",
        "float",
        _N,
        "a check against references after measuring (reference_status)",
        nullable=True,
    ),
    Key(
        "stage.adaptive.*",
        "mapping",
        _N,
        "the adaptive grid's parameters (stage.sizes=adaptive): which sizes are planned, not how one is measured",
        nullable=True,
    ),
    Key(
        "stage.budget_gpu_h",
        "float",
        _N,
        "the adaptive grid's budget in GPU-hours: which sizes are planned, not how one is measured",
        nullable=True,
    ),
    Key("stage.slurm.timeout_min", "int", _N, "the job's time limit: a job cut short resumes where it stopped"),
    Key("stage.slurm.mem_gb", "int", _N, "the job's host memory limit"),
    # the launcher: how jobs are submitted and followed, not how they measure (harness.launch.submit.LauncherSpec)
    Key(
        "launcher.name",
        "config group (conf/launcher)",
        _N,
        "where jobs run: here, on SLURM, or auto",
        ("auto", "local", "slurm"),
    ),
    Key("launcher.folder", "path", _N, "submitit's job folders and the sweep manifests"),
    Key("launcher.array_parallelism", "int", _N, "how many tasks of a job array run at the same time"),
    Key("launcher.max_requeues", "int", _N, "requeues after a timeout or preemption"),
    Key("launcher.signal_delay_s", "int", _N, "how long before its time limit SLURM signals a job"),
    Key("launcher.account", "str", _N, "sbatch --account", nullable=True),
    Key("launcher.qos", "str", _N, "sbatch --qos", nullable=True),
    Key("launcher.wait", "bool", _N, "whether the command stays until the jobs end", ("false", "true")),
    Key("launcher.time_factor", "float", _N, "safety factor on a job's predicted duration: its --time"),
    Key("launcher.time_min_minutes", "int", _N, "the least --time a job asks for"),
    Key("launcher.time_max_minutes", "int", _N, "the most --time a job asks for (null: the stage's)", nullable=True),
    Key("launcher.time_growth", "float", _N, "each requeue's --time: the previous one's x this"),
    Key("launcher.time_arrays", "str", _N, "how an array's tasks share one --time", ("bins", "max")),
    Key("dry_run", "bool", _N, "print the plan and its predicted cost; submit and measure nothing", ("false", "true")),
    Key(
        "stage.cost_default_ms",
        "float",
        _N,
        "the dry run's latency per inference where neither the results tree nor the size law covers a point",
    ),
    Key("results_dir", "path", _N, "where results are written"),
    Key("force", "bool", _N, "whether a stage whose sanity stage failed runs", ("false", "true")),
    Key("remeasure", "bool", _N, "whether measured points are measured again (adds rows)", ("false", "true")),
    Key(
        "repeats",
        "int",
        _N,
        "how many separate processes measure each point: replicates of one point, pooled by "
        "the analysis (repeats column), never a new point or another setting",
    ),
    Key("trace", "bool", _N, "a profiler trace of extra iterations after the timed ones", ("false", "true")),
    Key(
        "kernels",
        "bool",
        _N,
        "a pass after the timed ones records what ran each layer (kernels, kernel_family, tensor_cores columns)",
        ("false", "true"),
    ),
    Key("references", "path", _N, "a check of each point against blessed references (reference_status)", nullable=True),
)
