"""The one target contract (lamfast.targets) shared by CAM, attribution, attention, faithfulness and the CLI."""
from __future__ import annotations

import pytest
import torch

from lamfast.targets import TargetError, resolve_targets, target_indices


def test_every_spelling_of_a_target():
    logits = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]])
    pick = lambda fns: [float(fn(row)) for fn, row in zip(fns, logits)]  # noqa: E731
    assert pick(resolve_targets(None, logits)) == [2.0, 5.0]  # each image's prediction
    assert pick(resolve_targets(2, logits)) == pytest.approx([0.3, 1.0])
    assert pick(resolve_targets([0], logits)) == pytest.approx([0.1, 5.0])  # one target serves the batch
    assert pick(resolve_targets(torch.tensor([2, 1]), logits)) == pytest.approx([0.3, 0.0])
    assert pick(resolve_targets([lambda r: r.sum(), 1], logits)) == pytest.approx([2.4, 0.0])
    assert target_indices(None, 2, logits=logits).tolist() == [1, 0]
    assert target_indices(None, 2) is None  # captum: a model with one output per image
    assert target_indices(torch.tensor(1), 2).tolist() == [1, 1]


@pytest.mark.parametrize("target,match", [
    (3, "out of range for a model with 3 classes"), ([0, 1, 2], "3 targets for a batch of 2"), (True, "class index"),
    (["a"], "class index or a callable"), (2.5, "class index"),
])
def test_one_error_type_one_line(target, match):
    logits = torch.zeros(2, 3)
    with pytest.raises(TargetError, match=match) as info:
        resolve_targets(target, logits)
    assert "\n" not in str(info.value) and "--" not in str(info.value)  # never a CLI flag


def test_all_methods_raise_the_same_error():
    from lamfast import attention, faithfulness
    from lamfast.attr import Saliency
    from lamfast.cam import GradCAM

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(TargetError), GradCAM(net, [net[1]]) as cam:
        cam(x, [7])
    with pytest.raises(TargetError):
        Saliency(net).attribute(x, target=7)
    with pytest.raises(TargetError):
        faithfulness.deletion_auc(net, x, torch.rand(2, 8, 8), target=7)
    assert hasattr(attention, "gradient_weighted")


def test_load_classifier_is_a_library_function_and_not_an_sr_architecture():
    import lamfast.models.classifier as classifier
    from lamfast.models import list_architectures

    c = classifier.load_classifier("bundled")
    assert c.size == (64, 64) and not c.model.training and c.mean is None
    assert "shapes-cnn" not in list_architectures()
    with pytest.raises(ValueError, match="'bundled' or 'timm:NAME\[:CHECKPOINT\]'") as info:
        classifier.load_classifier("resnet")
    assert "--" not in str(info.value)
