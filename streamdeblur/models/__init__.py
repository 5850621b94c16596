"""Deblurring models, registered by name (see `registry`)."""

from streamdeblur.models import mrfnet, msdeblur, rt_focuser, uhdvd  # noqa: F401  (registers the models)
from streamdeblur.models.registry import (
    DeblurModel,
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    model_names,
    register_model,
)

__all__ = [
    "DeblurModel",
    "ModelSpec",
    "create_model",
    "get_spec",
    "list_models",
    "model_names",
    "register_model",
]
