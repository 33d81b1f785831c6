"""CEM: causal effect maps (Hu, Gu, ..., Dong, TPAMI 2025) of one output ROI, on any image-to-image model.

The official algorithm, for an input cut into blocks of ``block_size // scale`` pixels:

1. the ROI's PSNR against the ground truth, unperturbed (output clipped to [0,1], rounded to 8 bits);
2. coarse stage: every block gets ``coarse`` interventions (a patch of the bank written over it, see
   :mod:`lamfast.cem.interventions`), each scored by the ROI's PSNR;
3. fine stage: blocks where some coarse intervention moved the PSNR by ``tol`` or more get ``fine``
   more interventions;
4. effect = unperturbed PSNR - the mean intervened PSNR (the fine mean where the fine stage ran),
   set to 0 where ``|effect| < tol``.

What lamfast adds, none of which changes the numbers:

- **Reach.** A block outside the model's reach of the ROI cannot change the ROI's output: its PSNR
  is the unperturbed one, its effect 0, and it needs no forward. The reach is measured on the model
  (:func:`lamfast.lam.influence_radius`), and two checks on the image itself decide whether it is
  trusted: the model's output on the crop the interventions run on must equal its output on the
  whole image inside the ROI (as LAM's crops are checked), and one forward with every block outside
  the reach replaced at once must leave the ROI's output unchanged. Either failing, every block runs
  on the whole image, and the result says why.
- **Crops.** Interventions run on the crop of the input that holds the ROI's reach, batched.
- **Repeats.** Interventions of one block that draw the same patch are the same image (tasks
  ``"sr"`` and ``"derain"``): each distinct image runs once.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from lamfast.cem.interventions import COARSE, FINE, NOISE_SIGMA, Rain, block_contents, check_task, draws
from lamfast.cem.patches import PatchBank
from lamfast.cem.result import CEMResult
from lamfast.errors import LamfastError
from lamfast.lam.crop import CHECK_TOLERANCE, crop_boxes, crop_mismatch, parse_crop
from lamfast.lam.progress import BarProgress, PathProgress, Progress
from lamfast.lam.reach import influence_radius
from lamfast.lam.srmodel import SRForward, lam_input
from lamfast.modelstate import attribution_state, exact_float32

Block = tuple[int, int]
# Interventions per forward when none is given: the official 100 on a GPU; fewer on a CPU, where
# larger batches do not pay.
DEFAULT_BATCH = {"cuda": 100}
CPU_BATCH = 16


def _int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise LamfastError(f"{name} must be an integer >= {low}, got {value!r}", param=name)
    return int(value)


def _ground_truth(hr: Any) -> np.ndarray:
    """``hr`` as uint8 [H, W, C]: a uint8 array [H,W,C] or [H,W], or a float tensor [C,H,W] in [0,1]
    (rounded to 8 bits)."""
    if isinstance(hr, torch.Tensor) and hr.is_floating_point():
        if hr.dim() != 3:
            raise LamfastError(f"hr as a float tensor must be [C,H,W] in [0,1], got {tuple(hr.shape)}", param="hr")
        return (hr.detach().cpu().double().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    a = hr.detach().cpu().numpy() if isinstance(hr, torch.Tensor) else np.asarray(hr)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise LamfastError(f"hr must be the ground truth as uint8 [H,W,C] (or a float tensor [C,H,W] in [0,1]), got "
                           f"{a.dtype} {a.shape}", param="hr")
    return a if a.ndim == 3 else a[..., None]


def _psnr(sse: np.ndarray, count: int) -> np.ndarray:
    """The official PSNR from summed squared 8-bit errors: 20 log10(255 / sqrt(mse)), inf for mse 0."""
    mse = np.asarray(sse, dtype=np.float64) / count
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(255.0 / np.sqrt(mse))


class _Rows:
    """Counts the images (batch rows) a module runs on, through a forward pre-hook removed on exit."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module, self.count, self.handle = module, 0, None

    def _hook(self, _module, args) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self.count += int(args[0].shape[0])

    def __enter__(self) -> "_Rows":
        self.handle = self.module.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


class _Scorer:
    """The ROI of a batch of outputs, 8-bit as the official code rounds it, scored against the ground truth:
    summed squared errors per image, kept on the device until read."""

    def __init__(self, gt_roi: np.ndarray, device: torch.device) -> None:
        self.gt = torch.from_numpy(np.array(gt_roi)).permute(2, 0, 1).to(device, torch.float64)
        self.parts: list[torch.Tensor] = []

    @staticmethod
    def quantised(roi: torch.Tensor) -> torch.Tensor:
        # clip to [0,1], x 255 and round half to even in the model's dtype, as numpy does on its output
        return (roi.clamp(0, 1) * 255).round().to(torch.float64)

    def sse(self, roi: torch.Tensor) -> torch.Tensor:
        return ((self.quantised(roi) - self.gt) ** 2).sum(dim=(1, 2, 3))

    def add(self, roi: torch.Tensor) -> None:
        self.parts.append(self.sse(roi))

    def read(self) -> np.ndarray:
        out = torch.cat(self.parts).cpu().numpy() if self.parts else np.zeros(0)
        self.parts = []
        return out


class _Plan:
    """Where the interventions run: the input box, the blocks inside the reach, and why."""

    def __init__(self, box: tuple[int, int, int, int] | None, reached: np.ndarray, path: str) -> None:
        self.box, self.reached, self.path = box, reached, path


def _block_slices(block: Block, blk: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    i, j = block
    return slice(i * blk, min((i + 1) * blk, shape[0])), slice(j * blk, min((j + 1) * blk, shape[1]))


def cem(model: Any, lr: torch.Tensor, hr: Any, h: int, w: int, roi_size: int, *, block_size: int = 8,
        patches: Any = "bundled", coarse: int = 3, fine: int = 50, tol: float = 0.01, seed: int = 0,
        task: str = "sr", rain: Any = None, batch_size: int | None = None, crop: str | int = "auto",
        device: str | torch.device | None = None, progress: Progress = False) -> CEMResult:
    """Causal effect map of one ROI of a restoration model's output: which input blocks help it, which hurt.

    The model is treated as LAM treats it: an ``nn.Module`` or a ModelDescriptor, never moved, cast
    or left changed (eval mode and frozen parameters for the call only).

    Args:
        model: [B,C,H,W] in [0,1] -> [B,C',sH,sW] (s = 1 for denoising and deraining).
        lr: the input [C,H,W], float in [0,1], as ``ToTensor`` makes it from the 8-bit input image.
        hr: the ground truth of the output: uint8 [sH,sW,C'] (or [sH,sW]), or a float tensor
            [C',sH,sW] in [0,1] (rounded to 8 bits).
        h, w: top-left (row, column) of the ROI, output pixels; roi_size: its side, output pixels.
        block_size: block side in output pixels (the official ``mask_block_size``); a block is
            ``block_size // scale`` input pixels.
        patches: the bank interventions draw from: ``"bundled"`` (:func:`lamfast.cem.default_bank`),
            a folder of images (read as RGB), or a list of uint8 arrays [h,w,C] or image paths. A
            patch is resized to the block (cubic) when its size differs. The official code reads
            patch files BGR with OpenCV and writes them into the RGB input unswapped; to reproduce
            that, give the arrays with their channels reversed.
        coarse, fine: interventions per block in each stage; tol: the dB threshold of the fine stage
            and of a zero effect.
        seed: the draws of block (i, j) come from ``numpy.random.default_rng((seed, stage, i, j))``.
        task: ``"sr"``, ``"denoise"`` (each patch gets Gaussian noise of σ 50/255, as the official
            noisy input) or ``"derain"`` (each patch gets the image's rain; needs ``rain``).
        rain: ``(layer, beta)`` for ``task="derain"``: the uint8 rain layer [H,W,C] and its weight,
            the input being ``addWeighted(clean, 1, layer, beta, 0)``.
        batch_size: interventions per forward (default 100 on a GPU, 16 on a CPU).
        crop: ``"auto"``: interventions run on the crop of the input within the model's measured
            reach of the ROI, and blocks beyond it get 0 with no forward, where the checks on the
            image allow; ``"off"``: every block, on the whole image; an int sets the reach in input
            pixels (still checked).
        device: the model's device (the default); naming another is an error.
        progress: True draws a tqdm bar over the interventions and prints an estimate after the
            first batch; or a :class:`lamfast.lam.progress.PathProgress`.
    Returns:
        CEMResult: ``effect`` [ceil(H/b), ceil(W/b)] in dB, ``psnr``, ``counts``, ``effect_range``,
        ``forwards`` against ``official_forwards``, and which path ran.
    Raises:
        LamfastError: bad arguments, a ground truth that is not the output's size, an ROI outside
            the output, blocks smaller than one input pixel, a bank of other channels.

    Example:
        >>> import numpy as np, lamfast
        >>> from lamfast.request import prepare_input
        >>> model = lamfast.load_model()  # the bundled x4 TinySR
        >>> x = prepare_input(model, "bundled")  # astronaut: HR 256x256, LR 64x64
        >>> r = lamfast.cem(model, x.tensor(), np.asarray(x.hr), 152, 96, 32, coarse=2, fine=4)
        >>> r.effect.shape, r.forwards < r.official_forwards
        ((32, 32), True)
    """
    started = time.perf_counter()
    h, w = _int(h, "h", 0), _int(w, "w", 0)
    roi_size, block_size = _int(roi_size, "roi_size", 1), _int(block_size, "block_size", 1)
    coarse, fine, seed = _int(coarse, "coarse", 1), _int(fine, "fine", 0), _int(seed, "seed", 0)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise LamfastError(f"tol must be a number >= 0 (dB), got {tol!r}", param="tol")
    batch = None if batch_size is None else _int(batch_size, "batch_size", 1)
    crop = parse_crop(crop)
    if not isinstance(lr, torch.Tensor) or lr.dim() != 3:
        raise LamfastError(f"lr must be the input image [C,H,W], got "
                           f"{tuple(lr.shape) if isinstance(lr, torch.Tensor) else type(lr).__name__}", param="lr")
    fwd, x = lam_input(model, lr, None, device)
    C, H, W = x.shape
    the_rain = check_task(task, rain, (C, H, W))
    bank = PatchBank.of(patches)
    if bank.channels not in (1, C):
        raise LamfastError(f"the patches have {bank.channels} channels and the input {C}", param="patches")
    gt = _ground_truth(hr)
    if not isinstance(progress, (bool, PathProgress)):
        raise LamfastError(f"progress must be True, False or a PathProgress, got {progress!r}", param="progress")
    bar: PathProgress = (BarProgress("CEM", item="ROI", noun="intervention", bar="interventions") if progress is True
                         else progress if isinstance(progress, PathProgress) else PathProgress())
    params = {"task": task, "block_size": block_size, "coarse": coarse, "fine": fine, "tol": float(tol), "seed": seed,
              "crop": crop}
    try:
        with attribution_state(fwd.model), torch.no_grad(), _Rows(fwd.model) as rows:
            bar.phase(f"forward of the model on the whole {H}x{W} input")
            fwd, full = fwd.first(x[None].clone())  # a copy: some models scale their input in place
            sH, sW = full.shape[-2:]
            scale = sW // W
            if gt.shape[:2] != (sH, sW) or gt.shape[2] != full.shape[1]:
                raise LamfastError(f"hr is {gt.shape[0]}x{gt.shape[1]}x{gt.shape[2]} but the model's output is "
                                   f"{sH}x{sW}x{full.shape[1]}: hr is the ground truth of the output (the official "
                                   f"code crops HR to a multiple of the scale)", param="hr")
            if h + roi_size > sH or w + roi_size > sW:
                raise LamfastError(f"the ROI ({h}, {w}) of side {roi_size} runs outside the {sH}x{sW} output",
                                   param="roi_size")
            blk = block_size // scale
            if blk < 1:
                raise LamfastError(f"block_size {block_size} is smaller than the scale {scale}: a block must hold at "
                                   f"least one input pixel", param="block_size")
            resized, resize = bank.resized(blk)
            if resized.shape[-1] != C:
                resized = np.repeat(resized, C, axis=-1)
            nb = (math.ceil(H / blk), math.ceil(W / blk))
            roi = (slice(h, h + roi_size), slice(w, w + roi_size))
            scorer = _Scorer(gt[roi], x.device)
            origin = float(_psnr(scorer.sse(full[:, :, roi[0], roi[1]]).cpu().numpy(), gt[roi].size)[0])
            t_first = time.perf_counter()
            bar.phase("measuring the model's reach, to skip the blocks beyond it")
            run = _Run(fwd, x, full, scale, blk, nb, (h, w, roi_size), task, resized, seed, the_rain, scorer,
                       batch or DEFAULT_BATCH.get(x.device.type, CPU_BATCH), bar)
            plan = run.plan(crop)
            t_plan = time.perf_counter()
            psnr_c = np.full((*nb, coarse), origin)
            reached = [tuple(b) for b in np.argwhere(plan.reached)]
            run.stage(COARSE, reached, coarse, psnr_c, gt[roi].size, plan.box)
            t_coarse = time.perf_counter()
            selected = np.max(np.abs(origin - psnr_c), axis=2) >= tol
            psnr_f = np.zeros((*nb, fine))
            psnr_f[selected] = origin  # blocks beyond the reach that tol=0 selects: unchanged, no forward
            fine_blocks = [b for b in reached if selected[b]] if fine else []
            run.stage(FINE, fine_blocks, fine, psnr_f, gt[roi].size, plan.box)
            forwards = rows.count
    finally:
        bar.close()
    t_end = time.perf_counter()
    mean = np.mean(psnr_c, 2)
    if fine:
        mean[selected] = np.mean(psnr_f, 2)[selected]
    effect = origin - mean
    effect[np.abs(effect) < tol] = 0
    roi_blocks = np.zeros(nb, bool)
    cell = scale * blk
    roi_blocks[h // cell:(h + roi_size) // cell, w // cell:(w + roi_size) // cell] = True
    official = 1 + coarse * nb[0] * nb[1] + (fine * int(selected.sum()) if fine else 0)
    return CEMResult(effect=effect, psnr=origin, roi=(h, w, roi_size), scale=scale, block=blk, roi_blocks=roi_blocks,
                     reached=plan.reached, coarse_psnr=psnr_c, fine_psnr=psnr_f, forwards=forwards,
                     official_forwards=official, box=plan.box, path=plan.path, patches=bank.source, resize=resize,
                     params=params,
                     timings={"forward": t_first - started, "plan": t_plan - t_first, "coarse": t_coarse - t_plan,
                              "fine": t_end - t_coarse, "total": t_end - started})


class _Run:
    """One CEM call's model, input and interventions."""

    def __init__(self, fwd: SRForward, x: torch.Tensor, full: torch.Tensor, scale: int, blk: int,
                 nb: tuple[int, int], roi: tuple[int, int, int], task: str, resized: np.ndarray, seed: int,
                 rain: Rain | None, scorer: _Scorer, batch: int, bar: PathProgress) -> None:
        self.fwd, self.x, self.full, self.scale, self.blk, self.nb, self.roi = fwd, x, full, scale, blk, nb, roi
        self.task, self.resized, self.seed, self.rain, self.scorer = task, resized, seed, rain, scorer
        self.batch, self.bar = batch, bar

    def contents(self, stage: int, block: Block, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct images' block contents [u, b, b, C] uint8, each intervention's row in them [n])."""
        idx = draws(self.seed, stage, block, n, len(self.resized))
        rows, cols = _block_slices(block, self.blk, self.x.shape[-2:])
        if self.task == "denoise":  # fresh noise every time: no two are the same image
            return block_contents(self.task, self.resized, idx, seed=self.seed, stage=stage, block=block, rows=rows,
                                  cols=cols, rain=self.rain), np.arange(n)
        unique, inverse = np.unique(idx, return_inverse=True)
        return block_contents(self.task, self.resized, unique, seed=self.seed, stage=stage, block=block, rows=rows,
                              cols=cols, rain=self.rain), inverse.reshape(-1)

    def _write(self, images: torch.Tensor, k: int, block: Block, content: torch.Tensor,
               box: tuple[int, int, int, int]) -> None:
        """Block ``block``'s content into row ``k`` of ``images`` (the input cut to ``box``), clipped to both."""
        t, lft, b, r = box
        rows, cols = _block_slices(block, self.blk, self.x.shape[-2:])
        r0, r1, c0, c1 = max(rows.start, t), min(rows.stop, b), max(cols.start, lft), min(cols.stop, r)
        if r0 >= r1 or c0 >= c1:
            return
        images[k, :, r0 - t:r1 - t, c0 - lft:c1 - lft] = \
            content[:, r0 - rows.start:r1 - rows.start, c0 - cols.start:c1 - cols.start]

    def _as_input(self, contents: np.ndarray) -> torch.Tensor:
        # as ToTensor makes the official intervention: uint8 / 255 in float32, then the model's dtype
        t = torch.from_numpy(np.ascontiguousarray(contents)).to(self.x.device).permute(0, 3, 1, 2)
        return (t.float() / 255).to(self.x.dtype)

    def _roi_of(self, out: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        h, w, size = self.roi
        t, lft = box[0] * self.scale, box[1] * self.scale
        return out[:, :, h - t:h - t + size, w - lft:w - lft + size]

    def stage(self, stage: int, blocks: list[Block], n: int, psnr: np.ndarray, count: int,
              box: tuple[int, int, int, int] | None) -> None:
        """Every intervention of ``blocks`` (n each), batched; their PSNRs into ``psnr[i, j, :]``."""
        if not blocks or not n:
            return
        H, W = self.x.shape[-2:]
        box = box or (0, 0, H, W)
        base = self.x[:, box[0]:box[2], box[1]:box[3]]
        jobs: list[tuple[Block, torch.Tensor]] = []
        slots: list[tuple[Block, np.ndarray]] = []
        for block in blocks:
            contents, inverse = self.contents(stage, block, n)
            start = len(jobs)
            t = self._as_input(contents)
            jobs.extend((block, t[u]) for u in range(len(contents)))
            slots.append((block, start + inverse))
        self.bar.expect(len(jobs), 1 if stage == COARSE else 0)
        for g in range(0, len(jobs), self.batch):
            group = jobs[g:g + self.batch]
            t0 = time.perf_counter()
            images = base.expand(len(group), *base.shape).clone()
            for k, (block, content) in enumerate(group):
                self._write(images, k, block, content, box)
            self.scorer.add(self._roi_of(self.fwd(images), box))
            if g == 0:  # the one read before the end: the time of the first batch, for the estimate
                if self.x.is_cuda:
                    torch.cuda.synchronize(self.x.device)
                self.bar.estimate((time.perf_counter() - t0) / len(group))
            self.bar.advance(len(group))
        values = _psnr(self.scorer.read(), count)
        for block, where in slots:
            psnr[block] = values[where]

    def plan(self, crop: str | int) -> _Plan:
        """The blocks inside the reach and the box they run on; every block on the whole image where a check
        fails or the reach covers the image."""
        H, W = self.x.shape[-2:]
        everything = np.ones(self.nb, bool)

        def whole(why: str) -> _Plan:
            return _Plan(None, everything, why)

        if crop == "off":
            return whole("every block on the whole image (crop='off')")
        if crop == "auto":
            reach = influence_radius(self.fwd, (H, W), self.x.device, self.x.dtype, channels=self.x.shape[0])
            if reach.radius is None:
                return whole(f"every block on the whole image: {reach.reason}")
            radius, how = reach.radius, reach.reason
        else:
            radius, how = int(crop), f"reach {crop} input px as given"
        h, w, size = self.roi
        s, blk = self.scale, self.blk
        r0, r1 = max(0, h // s - radius), min(H, (h + size - 1) // s + 1 + radius)
        c0, c1 = max(0, w // s - radius), min(W, (w + size - 1) // s + 1 + radius)
        reached = np.zeros(self.nb, bool)
        reached[r0 // blk:(r1 - 1) // blk + 1, c0 // blk:(c1 - 1) // blk + 1] = True
        if reached.all():
            return whole(f"every block: the model's reach ({radius} input px) of the ROI covers the whole {H}x{W} "
                         f"input")
        (box,) = crop_boxes([self.roi], s, (H, W), radius, self.fwd.size)
        if box == (0, 0, H, W):
            box = None
        elif crop_mismatch(self.fwd, self.x, self.full, [self.roi], [box], s) is not None:
            return whole("every block on the whole image: the model's output on the crop of the ROI differs from its "
                         "output on the whole image (a strided, padding or position-dependent model)")
        moved = self._beyond_reach_moves(reached)
        if moved is not None:
            return whole(f"every block on the whole image: replacing every block beyond the measured reach "
                         f"({radius} input px) moved the ROI's output by {moved:.2e}")
        where = f"on the {box[2] - box[0]}x{box[3] - box[1]} crop at ({box[0]}, {box[1]})" if box else \
            "on the whole input"
        return _Plan(box, reached, f"{int(reached.sum())} of {reached.size} blocks within the reach, {where}; "
                                   f"{how}")

    def _beyond_reach_moves(self, reached: np.ndarray) -> float | None:
        """The ROI's output with every block beyond the reach replaced at once (their first coarse draw), on
        the whole image: None when it equals the unperturbed output, else the largest difference."""
        images = self.x[None].repeat(2, 1, 1, 1)
        H, W = self.x.shape[-2:]
        for block in map(tuple, np.argwhere(~reached)):
            contents, inverse = self.contents(COARSE, block, 1)
            self._write(images, 1, block, self._as_input(contents)[inverse[0]], (0, 0, H, W))
        with exact_float32():  # both in one batch, in exact arithmetic: only the replaced blocks differ
            full, out = self._roi_of(self.fwd(images), (0, 0, H, W))
        diff = float((out - full).abs().max())
        tol = CHECK_TOLERANCE.get(full.dtype, 2e-5) * max(1.0, float(full.abs().max()))
        return None if diff <= tol else diff


__all__ = ["cem"]
