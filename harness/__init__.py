"""An experiment harness that measures convolution algorithms across CNN models, input sizes and GPUs."""

__version__ = "0.1.0"
