"""The `.lepton` model format: `save` a traced, optimised model with its weights and
signature in one versioned file; `load_model` it in another process, without the model's
source (API.md "A model's life cycle").

    lp.save(model, "model.lepton", (x,), batch_axis=0)
    m = lp.load_model("model.lepton")
    y = m.predict(x)
"""
from .load import load_model
from .model import LoadedModel
from .save import save
from .signature import Signature, TensorSpec

__all__ = ["save", "load_model", "LoadedModel", "Signature", "TensorSpec"]
