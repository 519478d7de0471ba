"""What a job measures on: the device's NVML inventory, the SKU it matches and the peaks its roofline uses.

``detect_hardware`` is the border (torch for the device's name, memory and SM count, NVML for the rest);
``hardware_of`` decides from what was read, and is what the CPU tests exercise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from harness.config.skus import Peaks, Sku, load_skus, match_sku, resolve_peaks
from harness.measure.energy import pci_bus_id
from harness.measure.inventory import GpuInventory, read_inventory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hardware:
    """The device (its inventory; None on the CPU) and the peaks its roofline uses."""

    inventory: GpuInventory | None
    peaks: Peaks

    def columns(self) -> dict[str, Any]:
        """The rows' gpu_* columns (null on the CPU), the matched SKU and where the peaks came from."""
        return (self.inventory or GpuInventory()).columns() | {
            "gpu_sku": self.peaks.sku,
            "peaks_source": self.peaks.source,
        }

    def to_dict(self) -> dict[str, Any]:
        """The run manifest's record (the analysis reads the peaks from it)."""
        return {"inventory": asdict(self.inventory) if self.inventory else None, "peaks": self.peaks.to_dict()}


def hardware_of(
    device_name: str,
    inventory: GpuInventory | None,
    memory_bytes: int | None,
    gpu_spec: Mapping[str, Any] | None,
    skus: tuple[Sku, ...],
) -> Hardware:
    """The SKU of a device by its NVML name (torch's where NVML gave none) and memory (NVML's, else
    ``memory_bytes``), and its peaks (``gpu_spec``'s set fields override the SKU's)."""
    name = (inventory.nvml_name if inventory else None) or device_name
    memory = (inventory.memory_bytes if inventory else None) or memory_bytes
    sku = match_sku(name, memory, skus)
    shown = name if memory is None else f"{name} ({memory / 1024**3:.1f} GiB)"
    return Hardware(inventory, resolve_peaks(sku, gpu_spec, shown))


def nvml_inventory(device: torch.device, nvml: Any = None) -> GpuInventory | None:
    """The NVML inventory of a CUDA device; None (and a warning why) where NVML cannot be used."""
    try:
        if nvml is None:
            import pynvml as nvml
        nvml.nvmlInit()
    except Exception as e:  # no library, no driver
        log.warning("NVML is not usable here (%s): the rows' gpu_* columns stay null", e)
        return None
    try:
        return read_inventory(nvml, nvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id(device)))
    except nvml.NVMLError as e:
        log.warning("NVML has no device at %s (%s): the rows' gpu_* columns stay null", pci_bus_id(device), e)
        return None
    finally:
        nvml.nvmlShutdown()


def detect_hardware(device: torch.device, gpu_spec: Mapping[str, Any] | None, nvml: Any = None) -> Hardware:
    """The hardware a job measures on (``gpu_spec``: the GPU type's ``gpu.spec``, an explicit override)."""
    skus = load_skus()
    if device.type != "cuda":
        return hardware_of("the CPU", None, None, gpu_spec, ())
    props = torch.cuda.get_device_properties(device)
    inventory = nvml_inventory(device, nvml)
    inventory = replace(inventory or GpuInventory(), sm_count=props.multi_processor_count)
    return hardware_of(torch.cuda.get_device_name(device), inventory, props.total_memory, gpu_spec, skus)


def log_peaks(hardware: Hardware, on_gpu: bool) -> None:
    """One line: which SKU and peaks the roofline uses; a warning where a GPU has none."""
    if on_gpu and hardware.peaks.spec is None:
        log.warning("%s", hardware.peaks.why)
    else:
        log.info("%s", hardware.peaks.why)
