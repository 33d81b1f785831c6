"""Gradient and path attribution for classifiers, with captum's ``attribute(...)`` API.

IG and BlurIG run on :mod:`lamfast.path`, the engine LAM uses (BlurIG on the
:func:`lamfast.blur_path` op).
"""
from lamfast.attr.base import AttrError
from lamfast.attr.blur_ig import BlurIG
from lamfast.attr.combined import Combined
from lamfast.attr.gradient import InputXGradient, Saliency
from lamfast.attr.guided_backprop import GuidedBackprop
from lamfast.attr.integrated_gradients import IntegratedGradients
from lamfast.attr.noise_tunnel import NoiseTunnel

__all__ = ["AttrError", "BlurIG", "Combined", "GuidedBackprop", "InputXGradient", "IntegratedGradients", "NoiseTunnel",
           "Saliency"]
