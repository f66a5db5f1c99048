#!/usr/bin/env python3
"""Real architectures exported from PyTorch to ONNX, random weights: the models people bring to a
Raspberry Pi-class board. Writes ``<dir>/<name>.onnx`` (default benchmarks/results/onnx_models;
4-47 MB each, not committed).

    python -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch torchvision onnx onnxscript ultralytics transformers
    /tmp/torchvenv/bin/python benchmarks/onnx_models.py [--models a,b] [--dir DIR]

``yolov8n`` is ultralytics' detector built from its bundled yaml (random weights, nothing
downloaded), exported at 640x640 with its detection head's decoding, as ``yolo export`` does.
``bert_tiny`` is transformers' BertModel from a config (random weights), sequence length 128.

torch and torchvision are heavy and are not part of the project's install: this script runs in
a venv of its own, and `benchmarks/onnx_cpu.py` reads what it wrote.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "mnasnet0_5",
          "squeezenet1_1", "regnet_x_400mf", "resnet18", "shufflenet_v2_x0_5"]
ULTRALYTICS = {"yolov8n": 640}
TRANSFORMERS = {"bert_tiny": 128}  # name -> sequence length


def export_bert(size: int, path: Path) -> None:
    """A BERT of bert-tiny's shape (2 layers, 2 heads, hidden 128, the bert-base vocabulary),
    built from its config with random weights, exported with its token ids and attention
    mask as inputs at sequence length ``size``; outputs the hidden states and the pooled one."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512)
    bert = BertModel(config).eval()

    class Encoder(torch.nn.Module):  # plain tensors in and out, named as users feed them
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    ids = torch.randint(0, config.vocab_size, (1, size))
    mask = torch.ones(1, size, dtype=torch.int64)
    torch.onnx.export(Encoder(), (ids, mask), str(path), opset_version=17, dynamo=False,
                      input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state", "pooler_output"])


def export_yolo(name: str, size: int, path: Path) -> None:
    """An ultralytics detector from its yaml, random weights, in export mode (the head returns
    decoded boxes and class scores in one tensor), traced at ``size`` x ``size``."""
    import os

    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(f"{name}.yaml", verbose=False).eval()
    for module in model.modules():
        if hasattr(module, "export"):
            module.export, module.format = True, "onnx"
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        model(x)  # builds the head's anchors for this size
        torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False,
                          input_names=["images"], output_names=["output0"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated names (default: " + ", ".join(
        [*MODELS, *ULTRALYTICS, *TRANSFORMERS]) + ")")
    ap.add_argument("--dir", default=str(ROOT / "benchmarks" / "results" / "onnx_models"))
    args = ap.parse_args()
    import torch

    # A torchvision wheel built for another torch build cannot register its C++ operators
    # (nms...); the classification networks use none of them.
    torch.library.register_fake = lambda *a, **k: (lambda f: f)
    import torchvision

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (args.models.split(",") if args.models
                 else [*MODELS, *ULTRALYTICS, *TRANSFORMERS]):
        torch.manual_seed(0)
        if name in ULTRALYTICS or name in TRANSFORMERS:
            if name in ULTRALYTICS:
                export_yolo(name, ULTRALYTICS[name], out / f"{name}.onnx")
            else:
                export_bert(TRANSFORMERS[name], out / f"{name}.onnx")
            print(f"wrote {out / f'{name}.onnx'}", flush=True)
            continue
        model = getattr(torchvision.models, name)(weights=None).eval()
        x = torch.randn(1, 3, 224, 224)
        torch.onnx.export(model, (x,), str(out / f"{name}.onnx"), opset_version=17,
                          dynamo=False, input_names=["input"], output_names=["logits"])
        print(f"wrote {out / f'{name}.onnx'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
