"""The encoder's provider choice and session options, where mutation testing
(benchmarks/mutation_score.py) found them untested: a CUDA toolkit without a GPU driver on Linux,
the thread count asked for, and the optimisation level that keeps fp16 graphs from crashing on CPU."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest
from onnx import TensorProto, helper

from desktop_app import encoder as encoder_module
from desktop_app.errors import PackError

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@pytest.fixture
def graph(tmp_path) -> Path:
    """The smallest real ONNX model: y = x + x."""
    node = helper.make_node("Add", ["x", "x"], ["y"])
    model = helper.make_model(
        helper.make_graph([node], "double", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    onnx.save(model, tmp_path / "double.onnx")
    return tmp_path / "double.onnx"


@pytest.mark.skipif(os.name == "nt", reason="CUDA_PATH is how a Windows driver is found")
@pytest.mark.skipif(Path("/proc/driver/nvidia").exists(), reason="this machine has a GPU driver")
def test_a_cuda_toolkit_without_a_driver_on_linux_stays_on_cpu(monkeypatch):
    # CUDA_PATH (set by CUDA toolkit installers) says nothing about a GPU outside Windows.
    monkeypatch.delenv("PIXFIND_PROVIDERS", raising=False)
    monkeypatch.setenv("CUDA_PATH", "/usr/local/cuda")
    assert encoder_module._cuda_device_present() is False
    assert encoder_module.default_providers() == [CPU]


def test_sessions_use_the_thread_count_asked_for(graph):
    options = encoder_module._open_session(graph, [CPU], 2, "fp32").get_session_options()
    assert options.intra_op_num_threads == 2
    assert encoder_module._open_session(graph, [CPU], None, "fp32").get_session_options().intra_op_num_threads == 0


def test_fp16_graphs_on_cpu_skip_the_layout_optimisations_that_crash(graph):
    level = encoder_module._ort().GraphOptimizationLevel

    def opened(providers, precision):
        return encoder_module._open_session(graph, providers, None, precision).get_session_options().graph_optimization_level

    assert opened([CPU], "fp16") == level.ORT_ENABLE_EXTENDED
    assert opened([CPU], "fp32") == opened([CPU], "int8") == level.ORT_ENABLE_ALL
    assert opened([CUDA, CPU], "fp16") == level.ORT_ENABLE_ALL  # asked for the GPU first: its own kernels


def test_a_model_onnx_runtime_cannot_load_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "visual.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(PackError) as info:
        encoder_module._open_session(bad, [CPU], None, "fp32")
    assert str(info.value).startswith(f"{bad}: ONNX Runtime cannot load it (") and "\n" not in str(info.value)


@pytest.mark.skipif(Path("/proc/driver/nvidia").exists(), reason="this machine has a GPU driver")
def test_on_windows_the_driver_is_found_through_cuda_path(monkeypatch):
    # The OS is the edge of the world here: the probe is shown a Windows machine (its os.name and
    # environment), nothing else changes.
    windows = SimpleNamespace(name="nt", environ={"CUDA_PATH": r"C:\Program Files\NVIDIA GPU Computing Toolkit\CUDA\v12.4"})
    monkeypatch.setattr(encoder_module, "os", windows)
    assert encoder_module._cuda_device_present() is True
    windows.environ = {}
    assert encoder_module._cuda_device_present() is False
    windows.environ = {"CUDA_PATH": ""}
    assert encoder_module._cuda_device_present() is False
