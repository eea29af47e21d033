"""ONNX Runtime copies of sentence-transformers models: exported once, verified, cached, reopened fast.

Only the transformer is exported (token ids in, last hidden state out); pooling stays in numpy
(``search.encoding.pooling``). The export is traced with plain ("eager") attention, whose graph ONNX Runtime's
transformer optimizer recognises and fuses into one Attention node per layer; traced through PyTorch's
fused attention kernel it fuses nothing there. Each export is checked against the PyTorch model before it
is kept, and the outcome is stored beside it, so a model that does not survive export is tried once,
not at every start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.encoding.pooling import pool, pooling_mode_of
from search.errors import DeviceUnavailable, first_line

logger = logging.getLogger(__name__)

# Part of every cache key: change it whenever the export recipe changes, so old exports are not reused.
_RECIPE = "semsearch-onnx-2"
_MIN_COSINE = {None: 0.9999, "int8": 0.98}
# Lengths from a few tokens to a long passage, so shapes unlike the traced example are checked too.
_CHECK_TEXTS = (
    "Hello.",
    "How do I rotate the API keys of a running server?",
    "The Roman aqueducts carried water over long distances using only gravity and careful surveying.",
    "Vector search finds passages by meaning rather than by shared words; "
    "the index stores one unit vector per passage and ranks them by inner product with the query. " * 4,
)

Tokenize = Callable[[list[str]], dict[str, np.ndarray]]

CUDA = "CUDAExecutionProvider"
CPU = ("CPUExecutionProvider",)
_CUDA_FIRST = (CUDA, "CPUExecutionProvider")


def providers_for(device: str) -> tuple[str, ...]:
    """The execution providers for ``device`` ("cpu", "cuda" or "auto"), CUDA first where it is asked for.

    "cuda" without ONNX Runtime's CUDA build raises ``DeviceUnavailable``; "auto" takes CUDA where that build
    is installed (onnxruntime-gpu, the ``gpu`` extra) and the CPU otherwise.
    """
    if device == "cpu":
        return CPU
    import onnxruntime as ort

    offered = CUDA in ort.get_available_providers()
    if device == "auto":
        return _CUDA_FIRST if offered else CPU
    if device != "cuda":
        raise ValueError(f"device must be cpu, cuda or auto, not {device!r}")
    if not offered:
        raise DeviceUnavailable(
            "--device cuda needs ONNX Runtime with CUDA (pip install 'semsearch[gpu]') and an NVIDIA GPU; use --device cpu"
        )
    return _CUDA_FIRST


def available_cores() -> int:
    """The cores this process may run on (its affinity, within any cgroup CPU quota): ONNX Runtime's own
    default counts the host's physical cores, more than a container may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    return cores if quota == "max" else max(1, min(cores, -(-int(quota) // int(period))))


class ExportFailed(Exception):
    """The model could not be exported, or its export does not reproduce the PyTorch vectors."""


@dataclass(frozen=True)
class OnnxExport:
    """A verified export on disk and how far its vectors are from PyTorch's on the check texts."""

    path: Path
    min_cosine: float

    def session(self, spin: bool = False, providers: tuple[str, ...] = CPU):
        """A new session on the export. With ``spin`` its worker threads busy-wait between the steps of a run
        (a lone query 0.4 ms faster) and stop at its end; without, they sleep, which leaves the cores to
        other work: searches ranking concurrently, or queries during a build. ``providers`` in order of
        preference; ONNX Runtime falls back along them."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = available_cores()
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        return ort.InferenceSession(str(self.path), options, providers=list(providers))


def load_export(model, location: str, quantize: str | None, cache_dir: Path, tokenize: Tokenize) -> OnnxExport:
    """The cached export of ``model``, made and verified first if it is missing or damaged.

    Raises ``ExportFailed`` (or ``UnsupportedModel``) with a one-line reason.
    """
    mode = pooling_mode_of(model)
    stem = _cache_stem(model, location, quantize)
    path, record_path = cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json"
    record = _read_record(record_path, path)
    if record is None:
        record = _export(model, quantize, mode, tokenize, cache_dir, path, record_path)
    if not record["passed"]:
        raise ExportFailed(f"export differs from PyTorch (min cosine {record['min_cosine']:.5f})")
    export = OnnxExport(path, record["min_cosine"])
    try:
        export.session()
    except Exception:  # noqa: BLE001 - a file that will not open is replaced like a missing one
        logger.warning("cached ONNX export %s does not open; exporting again", path.name)
        record = _export(model, quantize, mode, tokenize, cache_dir, path, record_path)
        export = OnnxExport(path, record["min_cosine"])
    return export


def run_session(session, features: dict[str, np.ndarray]) -> np.ndarray:
    """Token vectors (batch, seq, hidden) for tokenizer output, feeding the inputs the export takes."""
    names = [node.name for node in session.get_inputs()]
    return session.run(None, {name: features[name].astype(np.int64) for name in names})[0]


def _cache_stem(model, location: str, quantize: str | None) -> str:
    """A file stem unique to the model's weights, its location, the quantization and the recipe.

    The weights are hashed from the loaded tensors rather than from files, so a model given by hub name
    (whose files live wherever the hub cache put them) is keyed the same way as a local folder.
    """
    import torch

    digest = hashlib.sha256(f"{_RECIPE}\0{location}\0{quantize}".encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(location).name or location)[:60]
    return f"{readable}-{quantize or 'fp32'}-{digest.hexdigest()[:20]}"


def _read_record(record_path: Path, path: Path) -> dict | None:
    """The stored verification outcome, or None when it or a passed export is missing or truncated."""
    try:
        record = json.loads(record_path.read_text())
        if record["passed"] and path.stat().st_size != record["bytes"]:
            return None
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _export(model, quantize, mode, tokenize, cache_dir, path, record_path) -> dict:
    """Export, quantize if asked, verify, then move into place; the record is written last."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as work:
            fp32 = Path(work) / "model.onnx"
            _export_transformer(model, tokenize, fp32)
            fused = _fuse(model, fp32)
            final = fp32
            if quantize == "int8":
                final = Path(work) / "int8.onnx"
                _quantize_int8(fp32, final)
            min_cosine = _min_cosine(model, OnnxExport(final, 0.0), mode, tokenize)
            passed = min_cosine >= _MIN_COSINE[quantize]
            if passed:
                os.replace(final, path)
            record = {"passed": passed, "min_cosine": min_cosine, "bytes": path.stat().st_size if passed else 0, "fused": fused}
            record_file = Path(work) / "record.json"
            record_file.write_text(json.dumps(record, indent=2))
            os.replace(record_file, record_path)
    except Exception as exc:
        raise ExportFailed(first_line(exc)) from exc
    logger.info("exported %s (min cosine to PyTorch %.6f)", path.name, min_cosine)
    return record


def _export_transformer(model, tokenize: Tokenize, path: Path) -> None:
    """Trace the transformer with dynamic batch and sequence axes, feeding only the inputs it takes, with
    eager attention where the model offers it (same numbers, a graph the optimizer can fuse)."""
    import torch

    transformer = model[0].auto_model.eval()
    example = tokenize(["an example to trace", "a second, longer example to trace the padding"])
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in example]

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(names, inputs, strict=True)), return_dict=True).last_hidden_state

    axes = {0: "batch", 1: "sequence"}
    attention = getattr(transformer.config, "_attn_implementation", None)
    switch = attention is not None and hasattr(transformer, "set_attn_implementation")
    # The tracer warns about shape checks it freezes; the verification step is what tells if they matter.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if switch:
            transformer.set_attn_implementation("eager")
        try:
            torch.onnx.export(
                HiddenStates(),
                tuple(torch.from_numpy(example[name].astype(np.int64)) for name in names),
                str(path),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={name: axes for name in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        finally:
            if switch:
                transformer.set_attn_implementation(attention)


def _fuse(model, path: Path) -> dict[str, int]:
    """Rewrite the export in place with ONNX Runtime's BERT fusions (attention, embedding and skip layer
    norms, bias GELU) and return what was fused; a model they do not fit is left as exported. Verification
    against PyTorch follows either way."""
    from onnxruntime.transformers import optimizer

    config = model[0].auto_model.config
    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    if not heads or not hidden:
        return {}
    try:
        optimized = optimizer.optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
    except Exception as exc:  # noqa: BLE001 - an unfusable graph still runs unfused
        logger.info("ONNX Runtime's fusions do not apply to %s: %s", path.name, first_line(exc))
        return {}
    optimized.save_model_to_file(str(path))
    return {name: count for name, count in optimized.get_fused_operator_statistics().items() if count}


def _quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 weights for the matrix products only, per output channel: on MiniLM this keeps the
    cosine to fp32 near 0.99, where quantizing every op type drops short texts to 0.96."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=True,
        # Fused nodes are ONNX Runtime's own operators, which shape inference cannot type.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _min_cosine(model, export: OnnxExport, mode: str, tokenize: Tokenize) -> float:
    """The lowest cosine between export and PyTorch vectors over the check texts."""
    texts = list(_CHECK_TEXTS)
    features = tokenize(texts)
    vectors = pool(run_session(export.session(), features), features["attention_mask"], mode)
    reference = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return float(np.min(np.sum(vectors * reference, axis=1)))
