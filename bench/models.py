#!/usr/bin/env python3
"""The benchmark model set (issue 3), exported from PyTorch and cached with the test models.

The torchvision models run at 224x224 with random weights from a fixed seed; the encoder
is a 6-layer BERT-like model (d=384, 6 heads, FFN 1536, sequence 128, 30522-token
vocabulary: MiniLM-L6's shape). Models the differential tests already export at 224
(tests/python/models.py) are shared as they are; the others are added to that module's
registry under their own names, so they land in the same cache
(tests/python/.generated/v<VERSION>/<name>/, or $BRINK_TEST_MODELS_DIR) with the same
export settings and lock.

    python bench/models.py [NAME ...]     # export (all by default) and print the paths
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
_TEST_MODELS_PY = os.path.join(ROOT, "tests", "python", "models.py")


def _load_test_models():
    """tests/python/models.py. Both files are called models.py, so it is loaded by path: the
    copy pytest imported when there is one, else a private one (same cache on disk)."""
    loaded = sys.modules.get("models")
    if loaded is not None and os.path.abspath(getattr(loaded, "__file__", "") or "") == _TEST_MODELS_PY:
        return loaded
    name = "brink_test_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _TEST_MODELS_PY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


test_models = _load_test_models()

# Benchmark name -> generated model name. Test models reused as they are must be 224x224.
_EXTRA_SPECS = [
    test_models.ModelSpec("efficientnet_b0_224", 15, test_models._torchvision("efficientnet_b0", 224), ("logits",),
                          description="efficientnet_b0 at 224x224 (the test set runs it at 160)"),
    test_models.ModelSpec("resnet50_224", 13, test_models._torchvision("resnet50", 224), ("logits",),
                          description="resnet50 at 224x224 (the test set runs it at 128)"),
    test_models.ModelSpec("encoder_6x384", 17,
                          test_models._bert_like(layer_count=6, d=384, heads=6, seq=128, vocab=30522, ffn=1536),
                          ("last_hidden_state", "logits"),
                          description="BERT-like encoder: 6 layers, d=384, 6 heads, FFN 1536, seq 128"),
]
for _spec in _EXTRA_SPECS:
    test_models.SPEC_BY_NAME.setdefault(_spec.name, _spec)

BENCH_MODELS: Dict[str, str] = {
    "squeezenet1_1": "squeezenet1_1",
    "mobilenet_v3_small": "mobilenet_v3_small",
    "mobilenet_v2": "mobilenet_v2",
    "efficientnet_b0": "efficientnet_b0_224",
    "resnet18": "resnet18",
    "resnet50": "resnet50_224",
    "encoder": "encoder_6x384",
}
DEFAULT_MODELS: List[str] = list(BENCH_MODELS)
# Optional extras: any other test model can be benchmarked by its test-set name.
AVAILABLE: List[str] = DEFAULT_MODELS + [s.name for s in test_models.SPECS
                                         if s.name not in BENCH_MODELS and s.name not in BENCH_MODELS.values()]


def ensure(name: str) -> test_models.GeneratedModel:
    """The benchmark model `name` (a key of BENCH_MODELS or a test-set name), exported if needed."""
    return test_models.ensure(BENCH_MODELS.get(name, name))


def main(argv: List[str]) -> int:
    names = argv or DEFAULT_MODELS
    unknown = [n for n in names if n not in AVAILABLE]
    if unknown:
        print(f"error: unknown model(s): {', '.join(unknown)} (known: {', '.join(AVAILABLE)})", file=sys.stderr)
        return 2
    for n in names:
        print(f"{n:20s} {ensure(n).path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
