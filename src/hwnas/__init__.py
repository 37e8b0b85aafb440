"""hwnas: hardware-aware neural architecture search (FBNet, ChamNet, FBNetV2) with measured
costs."""

__version__ = "0.1.0"
