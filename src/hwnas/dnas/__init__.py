"""Differentiable architecture search: one engine (:mod:`hwnas.dnas.engine`) and two problems,
FBNet's layer-wise candidates (:mod:`hwnas.dnas.layerwise`: ``run_dnas``) and FBNetV2's masks
(:mod:`hwnas.dnas.masked`: ``run_dmasking``); their settings in :mod:`hwnas.dnas.config`."""
