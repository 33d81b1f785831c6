"""Class activation maps, one method per file, each overriding one hook of :class:`BaseCAM`.

``with GradCAM(model, [model.layer4]) as cam: maps = cam(x)`` gives
[B,H,W] maps in [0,1] on the input's device, like pytorch-grad-cam.
"""
from lamfast.cam.ablation_cam import AblationCAM
from lamfast.cam.base import BaseCAM, CAMError
from lamfast.cam.eigen_cam import EigenCAM
from lamfast.cam.eigen_grad_cam import EigenGradCAM
from lamfast.cam.grad_cam import GradCAM
from lamfast.cam.grad_cam_plusplus import GradCAMPlusPlus
from lamfast.cam.hires_cam import HiResCAM
from lamfast.cam.layer_cam import LayerCAM
from lamfast.cam.reshape import swin_reshape, vit_reshape
from lamfast.cam.score_cam import ScoreCAM
from lamfast.cam.xgrad_cam import XGradCAM

METHODS = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "eigencam": EigenCAM,
    "eigengradcam": EigenGradCAM,
    "layercam": LayerCAM,
    "hirescam": HiResCAM,
    "scorecam": ScoreCAM,
    "ablationcam": AblationCAM,
}

__all__ = ["METHODS", "AblationCAM", "BaseCAM", "CAMError", "EigenCAM", "EigenGradCAM", "GradCAM", "GradCAMPlusPlus", "HiResCAM",
           "LayerCAM", "ScoreCAM", "XGradCAM", "swin_reshape", "vit_reshape"]
