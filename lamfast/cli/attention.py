"""``lamfast attention``: ViT attention of a classifier, window and channel attention inside an SR
transformer, or the attention-visualisation guide's ViT figures.

Three modes, chosen by ``--method`` (``guide`` is the default when the
guide's ``--image-path`` is given); a flag of another mode is refused.
The classifier helpers (loading, image, overlays) are
:mod:`lamfast.cli.classify`'s.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lamfast.cli.classify import _common, _image, _save, _save_overlay, _target, load_classifier
from lamfast.cli.common import CLIError, note, resolve_device


def sr_attention_cmd(args: argparse.Namespace) -> int:
    """``lamfast attention IMG --method sr-window|sr-channel --modelpath CKPT``: inside an SR transformer."""
    import json

    import numpy as np
    from PIL import Image

    from lamfast.attention import SRAttentionError, attention_grid, attention_overlays, sr_attention
    from lamfast.cli.common import check_output_dir, note, parse_arch_kwargs_flag
    from lamfast.imageio import read_rgb
    from lamfast.overlay import jet
    from lamfast.request import ModelSpec, prepare_input

    out_dir = Path(args.output_dir)
    check_output_dir(out_dir, "--output-dir")
    location = None
    if args.location:
        try:
            location = tuple(int(v) for v in args.location.split(","))
        except ValueError:
            location = ()
        if len(location) != 2:
            raise CLIError(f"--location takes ROW,COL in LR pixels, got {args.location!r}")
    arch_kwargs = parse_arch_kwargs_flag(args.arch_kwargs)
    if not args.img:
        raise CLIError("give an image")
    read_rgb(args.img)  # a bad image fails before any model work
    device = resolve_device(args.device)
    loaded = ModelSpec.of(args.modelpath, args.arch).load(device=device, arch_kwargs=arch_kwargs)
    for line in loaded.notes:
        note(line)
    sr_input = prepare_input(loaded.model, args.img, args.lr_input, device=device)
    lr = sr_input.views()[1]
    try:
        res = sr_attention(loaded.model, sr_input.tensor(), location=location)
    except SRAttentionError as exc:
        raise CLIError(f"{sr_input.name}: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if args.method.lower() == "sr-window":
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
    from lamfast.cli.common import check_output_dir
    from lamfast.models.checkpoint import fit_state_dict, read_checkpoint
    from lamfast.errors import first_line
    from lamfast.optional import MissingDependency, import_optional
    from lamfast.overlay import jet

    out_dir = Path(args.output_dir)
    check_output_dir(out_dir, "--output-dir")
    if not args.arch:
        raise CLIError("--arch names the ViT (e.g. vit_small, or a timm model name)")
    if args.patch_size < 1 or args.image_size < args.patch_size:
        raise CLIError(f"--patch-size {args.patch_size} and --image-size {args.image_size} do not make a patch grid")
    name = args.arch
    if name in ("vit_tiny", "vit_small", "vit_base", "vit_large"):  # the guide's DINO-style names
        name = f"{name}_patch{args.patch_size}_224"  # timm's name; the size is set with img_size
    try:
        timm = import_optional("timm", f"the ViT {args.arch}")
    except MissingDependency as exc:
        raise CLIError(f"--arch: {exc}") from None
    sd = None
    if args.model_path:
        sd, notes = read_checkpoint(args.model_path)  # weights-only; params / state_dict / bare
        for line in notes:
            note(line)
    kwargs = {"img_size": args.image_size}
    if sd is not None and not any(k.startswith("head.") for k in sd):
        kwargs["num_classes"] = 0  # a backbone checkpoint (DINO): no classifier head
    try:
        model = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as exc:
        raise CLIError(f"--arch {args.arch} ({name}): {first_line(exc)}") from None
    if sd is not None:
        fit_state_dict(model, sd, name)
    else:
        note(f"{name} has random weights (pass --model-path for trained ones)")
    device = resolve_device(args.device)
    model = model.to(device).eval()
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    raw, x = _image(args.image_path, (args.image_size, args.image_size), cfg.get("mean"), cfg.get("std"), device)
    extra = getattr(model, "num_prefix_tokens", 1)
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
        raise CLIError(f"--arch {args.arch}: {first_line(exc)}") from None
    _save_overlay(raw, heat, str(out_dir / "gradcam_overlay.png"), "Grad-CAM")
    g = grid / grid.max().clamp_min(1e-12)
    _save_overlay(raw, g, str(out_dir / "patch_attention_overlay.png"), "patch attention")
    _save(np.kron(jet(g), np.ones((args.patch_size, args.patch_size, 1), dtype=np.uint8)),
          str(out_dir / "patch_grid.png"))
    print(f"{name}: Grad-CAM of {what}, CLS attention on a {tuple(grid.shape)} patch grid -> {out_dir}/"
          "gradcam_overlay.png, patch_attention_overlay.png, patch_grid.png")
    return 0


# The three modes of ``lamfast attention``, each with the flags only it reads
# (dests), so that a flag of another mode is refused rather than ignored.
ATTENTION_MODES = {
    "classifier": ("cls, rollout, chefer", ("model", "checkpoint", "target_category", "save_path", "discard_ratio")),
    "sr": ("sr-window, sr-channel", ("modelpath", "arch_kwargs", "lr_input", "location")),
    "guide": ("guide", ("image_path", "model_path", "patch_size", "image_size")),
}
ATTENTION_DEFAULT_DIR = {"sr": "attention_results", "guide": "attention_viz"}


def attention_mode(args: argparse.Namespace, parser) -> str:
    """Which mode a ``lamfast attention`` call is (classifier, sr or guide); CLIError for a flag of another mode."""
    method = (args.method or ("guide" if args.image_path else "rollout")).lower()
    args.method = method
    mode = "guide" if method == "guide" else "sr" if method in ("sr-window", "sr-channel") else "classifier"
    if mode == "guide" and not args.image_path:
        raise CLIError("--method guide reads the image from --image-path")
    for other, (methods, dests) in ATTENTION_MODES.items():
        if other == mode:
            continue
        for dest in dests:
            if getattr(args, dest) != parser.get_default(dest):
                flag = next(a.option_strings[0] for a in parser._actions if a.dest == dest)
                raise CLIError(f"{flag} belongs to --method {methods}, not {method}")
    if mode == "classifier" and args.output_dir is not None:
        raise CLIError(f"--output-dir is for --method sr-window, sr-channel and guide; {method} writes --save-path")
    if mode in ATTENTION_DEFAULT_DIR and args.output_dir is None:
        args.output_dir = ATTENTION_DEFAULT_DIR[mode]
    return mode


def attention_cmd(args: argparse.Namespace) -> int:
    import numpy as np

    mode = attention_mode(args, args.command_parser)
    if mode == "guide":
        return guide_cmd(args)
    if mode == "sr":
        return sr_attention_cmd(args)
    if not args.img:
        raise CLIError("an image path is required")

    from lamfast import attention
    from lamfast.overlay import jet

    device = resolve_device(args.device)
    model, size, mean, std = load_classifier(args.model, args.checkpoint, device)
    raw, x = _image(args.img, size, mean, std, device)
    method = args.method.lower()
    try:
        if method == "cls":
            grid = attention.cls_attention(model, x, num_extra_tokens=args.num_extra_tokens)
        elif method == "rollout":
            grid = attention.rollout(model, x, discard_ratio=args.discard_ratio, num_extra_tokens=args.num_extra_tokens)
        elif method == "chefer":
            target, _ = _target(model, x, args.target_category)
            grid = attention.gradient_weighted(model, x, [target], num_extra_tokens=args.num_extra_tokens)
        else:
            raise CLIError(f"unknown method {args.method!r}; choose from cls, rollout, chefer")
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    g = grid[0] / grid[0].max().clamp_min(1e-12)
    _save_overlay(raw, g, args.save_path, method)
    patch = np.kron(jet(g), np.ones((16, 16, 1), dtype=np.uint8))
    grid_path = str(Path(args.save_path).with_name(Path(args.save_path).stem + "_grid.png"))
    _save(patch, grid_path)
    print(f"{method}: {tuple(grid.shape[-2:])} patch grid -> {args.save_path}, {grid_path}")
    return 0


def add_parser(sub) -> None:
    t = sub.add_parser("attention", help="ViT attention map (CLS attention, rollout, Chefer), or window and "
                       "channel attention inside an SR transformer (sr-window, sr-channel)")
    t.add_argument("img", nargs="?")
    _common(t)
    t.add_argument("--method", default=None, help="the mode: cls, rollout or chefer (a classifier, default "
                   "rollout); sr-window or sr-channel (an SR model, --modelpath); guide (a ViT with the guide's flags, "
                   "the default when --image-path is given)")
    g = t.add_argument_group("--method sr-window / sr-channel: inside an SR transformer (--output-dir also for guide)")
    g.add_argument("--modelpath", help="SR checkpoint (SwinIR, HAT, RCAN, ...; weights-only load)")
    g.add_argument("--arch", help="architecture name or FILE.py:Class (default: detect)")
    g.add_argument("--arch-kwargs", "--arch_kwargs", default=None, metavar="JSON")
    g.add_argument("--lr-input", "--lr_input", action="store_true", help="IMG is the LR input already")
    g.add_argument("--location", default=None, metavar="ROW,COL", help="LR pixel to look from (default: centre)")
    g.add_argument("--output-dir", "--output_dir", default=None,
                   help="where the figures go (default ./attention_results, or ./attention_viz for guide)")
    g = t.add_argument_group("--method guide: the attention-visualisation guide's flags (a ViT; writes "
                             "gradcam_overlay.png, patch_attention_overlay.png and patch_grid.png into --output-dir)")
    g.add_argument("--image-path", "--image_path", help="the image (switches to the guide's mode)")
    g.add_argument("--model-path", "--model_path", help="checkpoint: {'params': ...}, {'state_dict': ...} or bare; weights-only")
    g.add_argument("--patch-size", "--patch_size", type=int, default=16)
    g.add_argument("--image-size", "--image_size", type=int, default=224)
    t.add_argument("--num-extra-tokens", "--num_extra_tokens", type=int, default=None, help="default: the model's num_prefix_tokens")
    t.add_argument("--discard-ratio", "--discard_ratio", type=float, default=0.9)
    t.set_defaults(func=attention_cmd, save_path="attention.png")
