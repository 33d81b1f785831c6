"""The shipped shapes classifier: accurate, and Grad-CAM points at the shape."""
from __future__ import annotations

import torch

from lamfast.cam import GradCAM
from lamfast.cli.classify import load_classifier
from lamfast.models import data_path
from lamfast.shapes import make_shapes


def test_weights_are_small():
    assert data_path("shapes_cnn.pt").stat().st_size < 1_000_000


def test_accuracy_and_gradcam_localisation_on_held_out_images():
    model, size, _, _ = load_classifier("bundled", None, torch.device("cpu"))
    images, labels, boxes = make_shapes(200, seed=10_000)  # never seen in training (scripts/ uses seed 1)
    with torch.no_grad():
        accuracy = (model(images).argmax(-1) == labels).float().mean().item()
    assert accuracy >= 0.9
    with GradCAM(model, [model.features[-1]]) as cam:
        maps = cam(images, labels.tolist())
    peaks = maps.flatten(1).argmax(1)
    ys, xs = peaks // size[1], peaks % size[1]
    inside = (ys >= boxes[:, 0]) & (ys <= boxes[:, 2]) & (xs >= boxes[:, 1]) & (xs <= boxes[:, 3])
    assert inside.float().mean().item() >= 0.9
