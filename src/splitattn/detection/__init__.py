"""Detection: torchvision's Faster / Mask R-CNN over ResNeSt, SE and SK backbones with an FPN."""

from .backbone import FPNBackbone, fpn_backbone
from .models import fasterrcnn, maskrcnn

__all__ = ["FPNBackbone", "fasterrcnn", "fpn_backbone", "maskrcnn"]
