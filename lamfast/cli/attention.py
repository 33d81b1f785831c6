"""``lamfast attention`` (a ViT classifier), ``attention-sr`` (window and channel attention inside an SR
transformer) and ``attention-guide`` (the attention-visualisation guide's ViT figures).

Each mode is its own parser, so a flag of another mode is refused. The
seed tools' single-command spellings still work (``attention --method
sr-window ...``, ``attention --image-path ...``: see :func:`route`). The
classifier helpers (loading, image, overlays) are :mod:`lamfast.cli.classify`'s.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lamfast.cli.classify import _image, _save, _save_overlay, _target, load_classifier
from lamfast.cli.common import CLIError, resolve_device
from lamfast.outputs import check_output_file


def sr_attention_cmd(args: argparse.Namespace) -> int:
    """``lamfast attention-sr IMG --method sr-window|sr-channel --model CKPT``: inside an SR transformer."""
    import json

    import numpy as np
    from PIL import Image

    from lamfast.attention import SRAttentionError, attention_grid, attention_overlays, sr_attention
    from lamfast.cli.common import load_noted
    from lamfast.outputs import check_output_dir
    from lamfast.imageio import read_rgb
    from lamfast.overlay import jet
    from lamfast.request import prepare_input

    out_dir = Path(args.output)
    check_output_dir(out_dir)
    location = None
    if args.location:
        try:
            location = tuple(int(v) for v in args.location.split(","))
        except ValueError:
            location = ()
        if len(location) != 2:
            raise CLIError(f"--location takes ROW,COL in LR pixels, got {args.location!r}")
    read_rgb(args.img)  # a bad image fails before any model work
    device = resolve_device(args.device)
    loaded = load_noted(args.model, arch=args.arch, model_kwargs=args.model_kwargs, unsafe_pickle=args.unsafe_pickle,
                        rgb_range=args.rgb_range, device=device)
    sr_input = prepare_input(loaded, args.img, args.lr_input, device=device)
    lr = sr_input.views()[1]
    try:
        res = sr_attention(loaded.model, sr_input.tensor(), location=location)
    except SRAttentionError as exc:
        raise CLIError(f"{sr_input.name}: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if args.method == "sr-window":
        if not res.window:
            raise CLIError(f"{loaded.arch} has no window attention (SwinIR/HAT-style) to record")
        attention_grid(res, lr).save(out_dir / "attention_grid.png")
        attention_overlays(res, lr).save(out_dir / "attention_overlays.png")
        written += ["attention_grid.png", "attention_overlays.png"]
        info = [{"layer": w.name, "window_size": w.window_size, "shift": w.shift, "heads": int(w.maps.shape[0])}
                for w in res.window]
    else:
        if not res.channel:
            raise CLIError(f"{loaded.arch} has no channel attention (CAB/RCAN-style) to record")
        strip = np.stack([jet(g[None, :].clamp(0, 1))[0] for _, g in res.channel])
        Image.fromarray(np.kron(strip, np.ones((8, 8, 1), dtype=np.uint8))).save(out_dir / "channel_attention.png")
        written.append("channel_attention.png")
        info = [{"layer": name, "gates": [round(float(v), 6) for v in g]} for name, g in res.channel]
    (out_dir / "attention.json").write_text(json.dumps({"model": loaded.arch, "image": str(args.img),
                                                        "location": list(res.location), "method": args.method,
                                                        "layers": info}, indent=2) + "\n")
    print(f"{args.method}: {len(info)} layers at LR location {res.location} -> "
          + ", ".join(str(out_dir / f) for f in [*written, "attention.json"]))
    return 0


def guide_cmd(args: argparse.Namespace) -> int:
    """The attention-visualisation guide's flags (``--image_path --model_path --arch --patch_size
    --image_size --output_dir``) for a ViT: writes gradcam_overlay.png, patch_attention_overlay.png
    and patch_grid.png into the output dir."""
    import numpy as np

    from lamfast import attention
    from lamfast.cam import GradCAM, vit_reshape
    from lamfast.outputs import check_output_dir
    from lamfast.errors import first_line
    from lamfast.overlay import jet

    out_dir = Path(args.output)
    check_output_dir(out_dir)
    if args.patch_size < 1 or args.image_size < args.patch_size:
        raise CLIError(f"--patch-size {args.patch_size} and --image-size {args.image_size} do not make a patch grid")
    if args.model is None:
        if not args.arch:
            raise CLIError("--arch names the ViT (e.g. vit_small, or a timm model name), or --model timm:NAME")
        name = args.arch
        if name in ("vit_tiny", "vit_small", "vit_base", "vit_large"):  # the guide's DINO-style names
            name = f"{name}_patch{args.patch_size}_224"  # timm's name; the size is set with img_size
        spec = f"timm:{name}"
    else:
        spec = args.model
    kwargs = {"img_size": args.image_size, **(args.model_kwargs or {})}
    device = resolve_device(args.device)
    c = load_classifier(spec, args.model_path, kwargs, device)
    model, name = c.model, c.name
    raw, x = _image(args.image_path, c.size, c.mean, c.std, device)
    extra = args.num_extra_tokens if args.num_extra_tokens is not None else getattr(model, "num_prefix_tokens", 1)
    if getattr(model, "num_classes", 0):
        target, _ = _target(model, x, args.target_category)
        targets: list = [target]
        what = f"class {target}"
    else:
        targets = [lambda features: features.sum()]  # a backbone: the embedding's sum
        what = "the embedding"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with GradCAM(model, [model.blocks[-1].norm1], reshape_transform=vit_reshape(extra)) as cam:
            heat = cam(x, targets)[0]
        grid = attention.cls_attention(model, x, num_extra_tokens=extra)[0]
    except (ValueError, AttributeError) as exc:
        raise CLIError(f"{name}: {first_line(exc)}") from None
    _save_overlay(raw, heat, str(out_dir / "gradcam_overlay.png"), "Grad-CAM")
    g = grid / grid.max().clamp_min(1e-12)
    _save_overlay(raw, g, str(out_dir / "patch_attention_overlay.png"), "patch attention")
    _save(np.kron(jet(g), np.ones((args.patch_size, args.patch_size, 1), dtype=np.uint8)),
          str(out_dir / "patch_grid.png"))
    print(f"{name}: Grad-CAM of {what}, CLS attention on a {tuple(grid.shape)} patch grid -> {out_dir}/"
          "gradcam_overlay.png, patch_attention_overlay.png, patch_grid.png")
    return 0


def attention_cmd(args: argparse.Namespace) -> int:
    """``lamfast attention IMG --method cls|rollout|chefer``: a ViT classifier's attention."""
    import numpy as np

    from lamfast import attention
    from lamfast.overlay import jet

    device = resolve_device(args.device)
    check_output_file(args.output)
    c = load_classifier(args.model, args.checkpoint, args.model_kwargs, device)
    raw, x = _image(args.img, c.size, c.mean, c.std, device)
    extra = args.num_extra_tokens
    try:
        if args.method == "cls":
            grid = attention.cls_attention(c.model, x, num_extra_tokens=extra)
        elif args.method == "rollout":
            grid = attention.rollout(c.model, x, discard_ratio=args.discard_ratio, num_extra_tokens=extra)
        else:
            target, _ = _target(c.model, x, args.target_category)
            grid = attention.gradient_weighted(c.model, x, [target], num_extra_tokens=extra)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    g = grid[0] / grid[0].max().clamp_min(1e-12)
    _save_overlay(raw, g, args.output, args.method)
    patch = np.kron(jet(g), np.ones((16, 16, 1), dtype=np.uint8))
    grid_path = str(Path(args.output).with_name(Path(args.output).stem + "_grid.png"))
    _save(patch, grid_path)
    print(f"{args.method}: {tuple(grid.shape[-2:])} patch grid -> {args.output}, {grid_path}")
    return 0


SR_METHODS = ("sr-window", "sr-channel")


def route(argv: list[str]) -> str | None:
    """``attention --method sr-window|sr-channel`` is ``attention-sr``; ``--method guide`` or the guide's
    ``--image-path`` is ``attention-guide``."""
    method = None
    for i, a in enumerate(argv):
        if a == "--method" and i + 1 < len(argv):
            method = argv[i + 1].lower()
        elif a.startswith("--method="):
            method = a.split("=", 1)[1].lower()
    if method in SR_METHODS:
        return "attention-sr"
    if method == "guide" or any(a.split("=", 1)[0] in ("--image-path", "--image_path") for a in argv):
        return "attention-guide"
    return None


def _method(choices: tuple[str, ...]):
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}, got {text!r}")
        return text.lower()
    return parse


def add_parser(sub) -> None:
    from lamfast.cli.classify import add_classifier_arguments
    from lamfast.cli.common import add_model_arguments, add_output_argument

    def extra_tokens(p) -> None:
        p.add_argument("--num-extra-tokens", "--num_extra_tokens", type=int, default=None,
                       help="the class (and distillation) tokens before the patches (default: the model's "
                            "num_prefix_tokens)")

    t = sub.add_parser("attention", help="a ViT classifier's attention map (CLS attention, rollout, Chefer); "
                                         "attention-sr and attention-guide for the other modes",
                       description="A ViT classifier's attention: CLS attention, rollout or Chefer's "
                                   "gradient-weighted attention.")
    t.add_argument("img", help="the image")
    add_classifier_arguments(t, "attention.png")
    t.add_argument("--method", type=_method(("cls", "rollout", "chefer")), default="rollout",
                   help="cls, rollout or chefer (default rollout)")
    extra_tokens(t)
    t.add_argument("--discard-ratio", "--discard_ratio", type=float, default=0.9,
                   help="rollout: the share of the weakest attention dropped per layer (default 0.9)")
    t.set_defaults(func=attention_cmd)

    s = sub.add_parser("attention-sr", help="window or channel attention inside an SR transformer at one LR pixel "
                                            "(also: attention --method sr-window|sr-channel)",
                       description="Window attention (SwinIR/HAT-style) or channel attention (CAB/RCAN-style) "
                                   "inside an SR network, seen from one LR pixel.")
    s.add_argument("img", help="the image (HR, made LR with the model's scale, unless --lr-input)")
    s.add_argument("--method", type=_method(SR_METHODS), default="sr-window",
                   help="sr-window or sr-channel (default sr-window)")
    add_model_arguments(s, aliases=("--modelpath",), arch=True,
                        what="an SR checkpoint (SwinIR, HAT, RCAN, ...; weights-only load) or ARCH:CHECKPOINT")
    s.add_argument("--lr-input", "--lr_input", action="store_true", help="IMG is the LR input already")
    s.add_argument("--location", default=None, metavar="ROW,COL", help="LR pixel to look from (default: centre)")
    add_output_argument(s, default="attention_results", aliases=("--output-dir", "--output_dir"),
                        what="the folder the figures and attention.json go to")
    s.set_defaults(func=sr_attention_cmd)

    g = sub.add_parser("attention-guide", help="the attention-visualisation guide's ViT figures (also: attention "
                                               "--image-path ...)",
                       description="The attention-visualisation guide's flags for a ViT: writes gradcam_overlay.png, "
                                   "patch_attention_overlay.png and patch_grid.png.")
    g.add_argument("--image-path", "--image_path", required=True, help="the image")
    g.add_argument("--method", type=_method(("guide",)), default="guide", help="guide (the only one)")
    g.add_argument("--arch", default=None, help="the ViT: the guide's vit_tiny|vit_small|vit_base|vit_large (with "
                                                "--patch-size), or a timm model name")
    add_model_arguments(g, what="the ViT as timm:NAME[:CHECKPOINT], instead of --arch", default="from --arch",
                        loader=False)
    g.add_argument("--model-path", "--model_path", default=None,
                   help="the ViT's checkpoint: {'params': ...}, {'state_dict': ...} or bare; weights-only")
    g.add_argument("--patch-size", "--patch_size", type=int, default=16, help="the ViT's patch side (default 16)")
    g.add_argument("--image-size", "--image_size", type=int, default=224, help="the input side (default 224)")
    g.add_argument("--target-category", "--target_category", type=int, default=None,
                   help="class to explain (default: the prediction; a backbone explains its embedding)")
    extra_tokens(g)
    add_output_argument(g, default="attention_viz", aliases=("--output-dir", "--output_dir"),
                        what="the folder the figures go to")
    g.set_defaults(func=guide_cmd)
