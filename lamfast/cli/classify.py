"""``lamfast cam`` / ``attr``: explain a classifier's prediction on one image (``attention``: :mod:`lamfast.cli.attention`).

The flags follow the popular vis_cam.py (``--target-layers --preview-model
--method --target-category --vit-like --num-extra-tokens --aug-smooth
--eigen-smooth --device --save-path``, kept as aliases). ``--model bundled``
(the default) is the shapes classifier shipped with lamfast;
``--model timm:NAME[:CHECKPOINT]`` builds a timm model (weights loaded
weights-only; ``--checkpoint`` names them apart).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lamfast.cli.common import CLIError, note, resolve_device
from lamfast.outputs import check_output_file



def load_classifier(spec: str, checkpoint: str | None, model_kwargs: dict | None, device):
    """:func:`lamfast.models.classifier.load_classifier`, its notes printed (its errors carry
    ``param="model"``: printed as --model)."""
    from lamfast.models.classifier import load_classifier as load

    loaded = load(spec or "bundled", checkpoint, model_kwargs=model_kwargs, device=device)
    for line in loaded.notes:
        note(line)
    return loaded


def class_label(name: str, index: int) -> str:
    """``3 (cross)`` for the bundled classifier, whose class names lamfast knows; ``3`` otherwise."""
    if name == "bundled":
        from lamfast.shapes import CLASSES

        return f"{index} ({CLASSES[index]})"
    return str(index)


def _image(path: str, size, mean, std, device):
    """(the image as read [3,H,W] on the CPU, the model input [1,3,h,w] on ``device``)."""
    import torch
    from PIL import Image

    from lamfast.imageio import read_rgb, to_tensor

    img, notes = read_rgb(path)
    for line in notes:
        note(f"{Path(path).name}: {line}")
    x = to_tensor(img.resize((size[1], size[0]), Image.BICUBIC)).to(device)
    if mean is not None and std is not None:
        x = (x - torch.tensor(mean, device=device)[:, None, None]) / torch.tensor(std, device=device)[:, None, None]
    return to_tensor(img), x[None]


def _save_overlay(raw, heat, path: str, what: str) -> None:
    """Overlay ``heat`` [h,w] in [0,1] on the image as read [3,H,W] (at its own size) and save it."""
    import torch
    import torch.nn.functional as F

    from lamfast.overlay import overlay

    if not bool(torch.isfinite(heat).all()):
        raise CLIError(f"the {what} map holds NaN or Inf (check the model and its weights); nothing written")
    heat = F.interpolate(heat.detach().float().cpu()[None, None], size=raw.shape[-2:], mode="bilinear",
                         align_corners=False)[0, 0]
    _save(overlay(raw, heat.clamp(0, 1)), path)


def _save(array, path: str) -> None:
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _target(model, x, category):
    import torch

    from lamfast.targets import TargetError, target_indices

    with torch.no_grad():
        logits = model(x)
    if not bool(torch.isfinite(logits).all()):
        raise CLIError("the model's output holds NaN or Inf for this image (check the model and its weights)")
    try:
        return int(target_indices(category, 1, logits=logits)[0]), logits
    except TargetError as exc:
        raise CLIError(f"--target-category: {exc}") from None


def cam_cmd(args: argparse.Namespace) -> int:
    from lamfast.cam import METHODS, vit_reshape
    from lamfast.cam.layers import default_target_layers, get_layer, list_layers

    device = resolve_device(args.device)
    if not args.preview_model:
        check_output_file(args.output)
    c = load_classifier(args.model, args.checkpoint, args.model_kwargs, device)
    model = c.model
    if args.preview_model:
        print("\n".join(list_layers(model)))
        return 0
    if not args.img:
        raise CLIError("an image path is required (or --preview-model)")
    method = args.method.lower()
    if method not in METHODS:
        raise CLIError(f"unknown method {args.method!r}; choose from {', '.join(METHODS)}")
    try:
        layers = [get_layer(model, n) for n in args.target_layers] if args.target_layers else default_target_layers(
            model, args.vit_like)
    except ValueError as exc:
        raise CLIError(f"{exc} (--preview-model lists the layers; --target-layers names them)") from None
    reshape = vit_reshape(args.num_extra_tokens) if args.vit_like else None
    raw, x = _image(args.img, c.size, c.mean, c.std, device)
    target, logits = _target(model, x, args.target_category)
    with METHODS[method](model, layers, reshape_transform=reshape) as cam:
        heat = cam(x, [target], aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth)[0]
    _save_overlay(raw, heat, args.output, method)
    print(f"{method}: class {class_label(c.name, target)} (logit {float(logits[0, target]):.3f}) -> {args.output}")
    return 0


ATTR_METHODS = ("saliency", "inputxgradient", "ig", "blurig", "guidedbackprop", "smoothgrad")


def attr_cmd(args: argparse.Namespace) -> int:
    import torch

    from lamfast import attr
    from lamfast.overlay import normalise_attribution

    device = resolve_device(args.device)
    check_output_file(args.output)
    c = load_classifier(args.model, args.checkpoint, args.model_kwargs, device)
    model = c.model
    method = args.method.lower()
    if method not in ATTR_METHODS:
        raise CLIError(f"unknown method {args.method!r}; choose from {', '.join(ATTR_METHODS)}")
    raw, x = _image(args.img, c.size, c.mean, c.std, device)
    target, _ = _target(model, x, args.target_category)
    runners = {
        "saliency": lambda: attr.Saliency(model).attribute(x, target=target),
        "inputxgradient": lambda: attr.InputXGradient(model).attribute(x, target=target),
        "ig": lambda: attr.IntegratedGradients(model).attribute(x, target=target, n_steps=args.n_steps,
                                                                internal_batch_size=args.batch_size),
        "blurig": lambda: attr.BlurIG(model).attribute(x, target=target, n_steps=args.n_steps,
                                                       internal_batch_size=args.batch_size),
        "guidedbackprop": lambda: attr.GuidedBackprop(model).attribute(x, target=target),
        "smoothgrad": lambda: attr.NoiseTunnel(attr.Saliency(model)).attribute(x, target=target, nt_samples=16,
                                                                               stdevs=0.15),
    }
    attribution = runners[method]()[0]
    if not bool(torch.isfinite(attribution).all()):
        raise CLIError(f"the {method} attribution holds NaN or Inf (check the model and its weights); nothing written")
    heat = normalise_attribution(attribution)  # captum's display scale: |sum over channels|, 2 % outliers clipped
    _save_overlay(raw, heat, args.output, method)
    print(f"{method}: class {class_label(c.name, target)} -> {args.output}")
    return 0


def add_classifier_arguments(p, default_output: str) -> None:
    """The model, target and output flags of the classifier commands (cam, attr, attention)."""
    from lamfast.cli.common import add_model_arguments, add_output_argument

    add_model_arguments(p, what="'bundled' (the shapes classifier) or timm:NAME[:CHECKPOINT]", loader=False)
    p.add_argument("--checkpoint", help="the weights of a timm --model, named apart (loaded weights-only)")
    p.add_argument("--target-category", "--target_category", type=int, default=None,
                   help="class to explain (default: the prediction)")
    add_output_argument(p, default=default_output, aliases=("--save-path", "--save_path"), what="the output PNG")


def add_parser(sub) -> None:
    from lamfast.cli.common import add_batch_size

    c = sub.add_parser("cam", help="Grad-CAM family map of a classifier (vis_cam.py flags)")
    c.add_argument("img", nargs="?", help="the image (not needed with --preview-model)")
    add_classifier_arguments(c, "cam.png")
    c.add_argument("--method", default="gradcam", help="gradcam, gradcam++, xgradcam, eigencam, eigengradcam, layercam, "
                   "hirescam, scorecam, ablationcam (case-insensitive; default gradcam)")
    c.add_argument("--target-layers", "--target_layers", nargs="+",
                   help="module names, e.g. features.-1 or blocks.-1.norm1 (default: the last convolutional stage)")
    c.add_argument("--preview-model", "--preview_model", action="store_true", help="list the layers and exit")
    c.add_argument("--vit-like", "--vit_like", action="store_true", help="tokens [B,N,C]: drop extra tokens, square grid")
    c.add_argument("--num-extra-tokens", "--num_extra_tokens", type=int, default=1,
                   help="with --vit-like: the class (and distillation) tokens before the patches (default 1)")
    c.add_argument("--aug-smooth", "--aug_smooth", action="store_true",
                   help="average over flips and scalings (6 passes), as pytorch-grad-cam's aug_smooth")
    c.add_argument("--eigen-smooth", "--eigen_smooth", action="store_true",
                   help="the first principal component of the weighted activations, as pytorch-grad-cam's eigen_smooth")
    c.set_defaults(func=cam_cmd)

    a = sub.add_parser("attr", help="gradient / path attribution of a classifier")
    a.add_argument("img", help="the image")
    add_classifier_arguments(a, "attr.png")
    a.add_argument("--method", default="ig", help=", ".join(ATTR_METHODS) + " (default ig)")
    a.add_argument("--n-steps", "--n_steps", type=int, default=50, help="path steps of ig and blurig (default 50)")
    add_batch_size(a, "path points of ig and blurig")
    a.set_defaults(func=attr_cmd)
