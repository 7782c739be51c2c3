"""Brink: run ONNX models fast and small on CPUs.

The API follows ONNX Runtime's, so code written for ``onnxruntime.InferenceSession`` needs
little change::

    import numpy as np
    import brink

    sess = brink.InferenceSession("model.onnx", threads=2)
    x = np.random.rand(1, 3, 224, 224).astype(np.float32)
    (logits,) = sess.run(None, {sess.get_inputs()[0].name: x})

Feeds that are C-contiguous NumPy arrays of the model's element type are read in place,
outputs are NumPy arrays over Brink's own buffers (no copies either way), and the GIL is
released while a model loads and runs, so one session may serve several Python threads.

Errors raise subclasses of :class:`BrinkError` whose text is the message the ``brink``
command line prints for the same problem.
"""
from __future__ import annotations

import os
import resource
import time
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _brink
from ._brink import (BrinkError, Internal, InvalidArgument, InvalidModel, IoError, NotFound,
                     Unsupported, available_isas, cpu_info)

__version__: str = _brink.__version__

__all__ = [
    "BrinkError", "InvalidArgument", "InvalidModel", "Unsupported", "NotFound", "IoError", "Internal",
    "InferenceSession", "NodeArg", "available_isas", "cpu_info", "get_available_providers", "__version__",
    "bench", "pack", "verify",
]

_PROVIDERS = ["CPUExecutionProvider"]


def get_available_providers() -> List[str]:
    """Execution providers this build has (ORT-compatible): ``["CPUExecutionProvider"]``."""
    return list(_PROVIDERS)


class NodeArg:
    """A model input or output, as ONNX Runtime's ``NodeArg`` describes it.

    Attributes:
        name: the tensor's name in the graph.
        type: ONNX Runtime's type string, e.g. ``"tensor(float)"`` or ``"tensor(int64)"``.
        shape: one entry per dim: an ``int`` when fixed, the dim's name (``str``) when
            symbolic, ``None`` when symbolic and unnamed; ``None`` instead of a list when
            even the rank is unknown.
        dtype: the NumPy dtype a feed must have (``None`` for types NumPy lacks).
    """

    __slots__ = ("name", "type", "shape", "dtype")

    def __init__(self, name: str, type: str, shape: Optional[List[Union[int, str, None]]], dtype: Any):
        self.name = name
        self.type = type
        self.shape = shape
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NodeArg) and (self.name, self.type, self.shape) ==
                (other.name, other.type, other.shape))

    __hash__ = None  # type: ignore[assignment]


def _check_providers(providers: Optional[Sequence[Any]]) -> None:
    if providers is None:
        return
    if isinstance(providers, str):
        raise InvalidArgument("providers must be a list of provider names, not a str")
    for p in providers:
        name = p[0] if isinstance(p, tuple) and p else p
        if not isinstance(name, str):
            raise InvalidArgument(f"providers must hold provider names, got {p!r}")
        if name not in _PROVIDERS:
            # ONNX Runtime warns and falls back to the CPU for providers it lacks; so do we,
            # so that code listing ["CUDAExecutionProvider", "CPUExecutionProvider"] runs.
            warnings.warn(f"Specified provider '{name}' is not in available provider names. "
                          f"Available providers: '{', '.join(_PROVIDERS)}'", stacklevel=3)


class InferenceSession:
    """A loaded model, ready to run many times.

    Args:
        path_or_bytes: a path to a ``.onnx`` file or a ``.brink`` package (``str`` or
            ``os.PathLike``), or a serialized ONNX model (``bytes``, ``bytearray``,
            ``memoryview``).
        threads: threads one ``run`` may use; 0 picks the number of physical cores.
        providers: accepted for ONNX Runtime compatibility; Brink runs on the CPU, and
            names other than ``"CPUExecutionProvider"`` only draw a warning.
        dim_values: fixed sizes for symbolic input dims by name, e.g. ``{"batch": 1}``;
            fixing them lets Brink plan memory and pick kernels at load.
        pubkey: for a ``.brink`` package, a public key file (``brink keygen``): the package
            must be signed by that key. Without it an unsigned package is accepted.
        key: for an encrypted ``.brink`` package, its key file (``brink keygen --encryption``).
        int8_kernels: quantized layers' kernels, as ``brink run --int8-kernels``: ``"faster"``
            (integer, or float where that measured faster on a small layer at load),
            ``"integer"`` or ``"float"``.

    Raises:
        NotFound: the file does not exist.
        InvalidModel: the file is not a valid ONNX model, or a package failed a check
            (damaged, modified, not signed by ``pubkey``).
        Unsupported: the model uses operators, element types or opsets Brink lacks (all of
            them are named in one message).
        InvalidArgument: a bad argument (negative ``threads``, say).

    Every reason a model cannot run is found here, at load; ``run`` only fails for bad feeds.
    """

    def __init__(self, path_or_bytes: Union[str, "os.PathLike[str]", bytes, bytearray, memoryview],
                 threads: int = 0, providers: Optional[Sequence[Any]] = None,
                 dim_values: Optional[Mapping[str, int]] = None,
                 pubkey: Optional[Union[str, "os.PathLike[str]"]] = None,
                 key: Optional[Union[str, "os.PathLike[str]"]] = None, int8_kernels: str = "faster"):
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise InvalidArgument(f"threads must be an int, got {type(threads).__name__}")
        _check_providers(providers)
        dims: List[Tuple[str, int]] = []
        for k, v in (dim_values or {}).items():
            if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidArgument(f"dim_values must map dim names (str) to sizes (int >= 0), got {k!r}: {v!r}")
            dims.append((k, v))
        self._model_path = None if isinstance(path_or_bytes, (bytes, bytearray, memoryview)) \
            else os.fspath(path_or_bytes)
        if not isinstance(int8_kernels, str):
            raise InvalidArgument(f"int8_kernels must be 'faster', 'integer' or 'float', got {int8_kernels!r}")
        self._session = _brink.Session(path_or_bytes, threads, dims, "" if pubkey is None else os.fspath(pubkey),
                                       "" if key is None else os.fspath(key), int8_kernels)
        self._inputs = [NodeArg(*i) for i in self._session.inputs()]
        self._outputs = [NodeArg(*o) for o in self._session.outputs()]

    def get_inputs(self) -> List[NodeArg]:
        """The model's inputs, in graph order."""
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        """The model's outputs, in graph order."""
        return list(self._outputs)

    def get_providers(self) -> List[str]:
        """``["CPUExecutionProvider"]``, for ONNX Runtime compatibility."""
        return list(_PROVIDERS)

    @property
    def num_threads(self) -> int:
        """Threads one ``run`` uses (``threads``, or the core count it picked for 0)."""
        return self._session.num_threads

    @property
    def model_path(self) -> Optional[str]:
        """The path the model was loaded from; ``None`` when it came as bytes."""
        return self._model_path

    def info(self) -> Dict[str, Any]:
        """What the compiled model needs: ``macs`` and ``flops`` per run (0 for layers whose
        shapes are not fixed), ``arena_bytes`` (activation memory; ``None`` when shapes are
        symbolic), ``parameter_count``, ``parameter_bytes``, ``folded_nodes``, ``layers``,
        ``opset``."""
        return self._session.info()

    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any],
            run_options: None = None) -> List[Any]:
        """Runs the model.

        Args:
            output_names: the outputs wanted, in the order wanted; ``None`` or ``[]`` for
                all of them in graph order.
            input_feed: every input by name. NumPy arrays of the input's element type are
                read in place when C-contiguous (copied once otherwise); other array-likes
                go through ``numpy.asarray`` (so Python floats become float64, which a
                float32 input refuses).
            run_options: accepted for ONNX Runtime compatibility; must be ``None``.

        Returns:
            One NumPy array per output asked for. Each owns its memory (Brink's output
            buffer, handed over without a copy) and is writable.

        Raises:
            InvalidArgument: an unknown, missing or repeated input, or a feed of the wrong
                element type or shape; every problem is named in one message.
        """
        if run_options is not None:
            raise InvalidArgument("run_options is not supported (pass None)")
        return self._session.run(output_names, input_feed)

    def __repr__(self) -> str:
        source = repr(self._model_path) if self._model_path is not None else "<bytes>"
        return f"<brink.InferenceSession {source} inputs={[i.name for i in self._inputs]} " \
               f"outputs={[o.name for o in self._outputs]} threads={self.num_threads}>"


def _random_feed(arg: NodeArg, dims: Mapping[str, int], rng: Any) -> Any:
    """Seeded data for one input, as ``brink bench`` makes it: uniform [0, 1) for floats, 0 or
    1 for integers and bools (valid token ids, masks and indices); symbolic dims are
    ``dims[name]`` or 1."""
    import numpy as np
    if arg.dtype is None or arg.shape is None:
        raise InvalidArgument(f"bench: input '{arg.name}' has type {arg.type} and shape "
                              f"{arg.shape}; pass it in feeds")
    shape = [d if isinstance(d, int) else int(dims.get(d, 1)) if isinstance(d, str) else 1
             for d in arg.shape]
    dtype = np.dtype(arg.dtype)
    if dtype.kind == "f":
        return rng.random(shape, dtype=np.float32).astype(dtype)
    return rng.integers(0, 2, size=shape).astype(dtype)


def bench(model: Union[str, "os.PathLike[str]", bytes], threads: int = 0, warmup: int = 5,
          iterations: Optional[int] = None, seconds: float = 2.0,
          feeds: Optional[Mapping[str, Any]] = None, seed: int = 0,
          dim_values: Optional[Mapping[str, int]] = None) -> Dict[str, Any]:
    """Loads and times a model as ``brink bench --json`` does, and returns the same fields
    (docs/BENCH_JSON.md): ``load_ms``, ``first_inference_ms``, ``latency_ms`` (``p50``,
    ``p90``, ``p99``, ``mean``, ``min``, ``max``), ``throughput_per_s``, ``peak_rss_bytes``,
    ``model_flops``, ``gflops``, ``isa``, ``threads`` and ``iterations``.

    Args:
        model: a ``.onnx`` path or the model's bytes.
        threads: as for :class:`InferenceSession`; 0 is one per physical core.
        warmup: untimed runs after the first one.
        iterations: timed runs; ``None`` times for ``seconds`` instead.
        seconds: how long to time when ``iterations`` is ``None``.
        feeds: inputs by name; the others get seeded random data (``seed``).
        dim_values: sizes for symbolic dims, as for :class:`InferenceSession` (others are 1).

    Timing goes through ``InferenceSession.run``, so it includes the Python call (a few
    microseconds); ``brink bench`` times the C++ call alone.
    """
    import numpy as np
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise InvalidArgument(f"bench: warmup must be an int >= 0, got {warmup!r}")
    if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, int)
                                   or iterations < 1):
        raise InvalidArgument(f"bench: iterations must be an int >= 1 or None, got {iterations!r}")
    if iterations is None and not seconds > 0:
        raise InvalidArgument(f"bench: seconds must be > 0, got {seconds!r}")
    start = time.perf_counter()
    sess = InferenceSession(model, threads=threads, dim_values=dim_values)
    load_ms = (time.perf_counter() - start) * 1e3

    rng = np.random.default_rng(seed)
    known = {i.name for i in sess.get_inputs()}
    for name in (feeds or {}):
        if name not in known:
            raise InvalidArgument(f"bench: feeds has '{name}', which is not an input of the model "
                                  f"(inputs: {', '.join(sorted(known))})")
    feed = {i.name: (feeds[i.name] if feeds and i.name in feeds else
                     _random_feed(i, dim_values or {}, rng)) for i in sess.get_inputs()}

    start = time.perf_counter()
    sess.run(None, feed)
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        sess.run(None, feed)

    times: List[float] = []
    begin = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        sess.run(None, feed)
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        if iterations is not None:
            if len(times) >= iterations:
                break
        elif t1 - begin >= seconds:
            break
    wall = time.perf_counter() - begin

    ordered = sorted(times)

    def rank(p: float) -> float:  # nearest rank, as the CLI computes it
        k = max(1, int(np.ceil(p / 100.0 * len(ordered))))
        return ordered[k - 1]

    p50 = rank(50)
    flops = 2 * int(sess.info()["macs"])  # MAC-shaped layers only, as the CLI counts
    return {
        "schema_version": 1,
        "model": sess.model_path if sess.model_path is not None else "<bytes>",
        "threads": sess.num_threads,
        "iterations": len(times),
        "load_ms": load_ms,
        "first_inference_ms": first_ms,
        "latency_ms": {"p50": p50, "p90": rank(90), "p99": rank(99),
                       "mean": sum(times) / len(times), "min": ordered[0], "max": ordered[-1]},
        "throughput_per_s": len(times) / wall,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "model_flops": flops,
        "gflops": flops / (p50 * 1e6) if p50 > 0 else 0.0,
        "isa": cpu_info()["best_isa"],
    }


def _path_or_empty(value: Optional[Union[str, "os.PathLike[str]"]]) -> str:
    return "" if value is None else os.fspath(value)


def pack(model: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"], *,
         target: Optional[str] = None, sign: Optional[Union[str, "os.PathLike[str]"]] = None,
         encrypt: Optional[Union[str, "os.PathLike[str]"]] = None, name: Optional[str] = None,
         version: str = "0.0.0", meta: Optional[Mapping[str, Any]] = None,
         labels: Optional[Sequence[str]] = None, chunk_size: int = 4 << 20, prepack: bool = True,
         dim_values: Optional[Mapping[str, int]] = None, fallback: Optional[Sequence[str]] = None,
         int8_kernels: str = "faster") -> Dict[str, Any]:
    """Compiles an ONNX model into a ``.brink`` package, as ``brink pack`` does (docs/FORMAT.md).

    Args:
        model: the ``.onnx`` file.
        out: the package to write (written all or nothing).
        target: ``"x86-64-v4"``, ``"x86-64-v3"``, ``"aarch64"`` or ``"portable"``; ``None`` is
            this machine's.
        sign: a secret key file (``brink keygen``) to sign with.
        encrypt: an encryption key file (``brink keygen --encryption``).
        name, version: the model card's name (default: the file's stem) and semver.
        meta: JSON-serializable metadata stored with the model (preprocessing and the like).
        labels: class labels.
        chunk_size: weight bytes per chunk.
        prepack: store weights packed for the target's kernels (loading then maps them).
        dim_values: fixed sizes for symbolic input dims.
        fallback: targets whose kernels the package also serves (``["portable"]``), as
            ``brink pack --fallback``: a CPU without the primary target's runs the first of
            these it can.
        int8_kernels: the kernels the quantized layers are compiled for, as ``brink pack
            --int8-kernels``: ``"faster"`` (the default), ``"integer"`` or ``"float"``.

    Returns the same fields as ``brink pack --json``: ``file_bytes``, ``chunks``,
    ``arena_bytes``, ``signer``, ``prepacked_nodes``, ...
    """
    import json
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 64:
        raise InvalidArgument(f"pack: chunk_size must be an int >= 64, got {chunk_size!r}")
    dims = [(k, v) for k, v in (dim_values or {}).items()]
    if isinstance(fallback, str) or not all(isinstance(t, str) for t in (fallback or [])):
        raise InvalidArgument(f"pack: fallback must be a list of target names, got {fallback!r}")
    if not isinstance(int8_kernels, str):
        raise InvalidArgument(f"pack: int8_kernels must be 'faster', 'integer' or 'float', got {int8_kernels!r}")
    model_path = os.fspath(model)
    stem = os.path.splitext(os.path.basename(model_path))[0]
    try:
        meta_json = "" if meta is None else json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"pack: meta must be JSON-serializable: {e}") from None
    return _brink.pack(model_path, os.fspath(out), target or "", _path_or_empty(sign), _path_or_empty(encrypt),
                       name if name is not None else stem, version, meta_json, list(labels or []), chunk_size,
                       bool(prepack), dims, list(fallback or []), int8_kernels)


def verify(package: Union[str, "os.PathLike[str]"], *, pubkey: Optional[Union[str, "os.PathLike[str]"]] = None,
           key: Optional[Union[str, "os.PathLike[str]"]] = None) -> Dict[str, Any]:
    """Checks a ``.brink`` package as the loader does (layout, seal, every chunk's SHA-256, the
    signature, and with ``pubkey`` that this key signed it) and returns its card: ``name``,
    ``version``, ``target``, ``runs_here``, ``signer``, ``signer_trusted``, ``encrypted``,
    ``chunks``, ``labels``, ... Raises :class:`InvalidModel` naming what failed.
    """
    return _brink.verify(os.fspath(package), _path_or_empty(pubkey), _path_or_empty(key))
