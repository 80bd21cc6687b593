"""What the accelerator runs: the bundled default model image and the host tool.

:func:`default_model` loads ``default.dhq`` (see ``README.txt`` for how it
was made); :mod:`.host` talks to a board over its UART.
"""

from importlib import resources

__all__ = ["default_model", "DEFAULT_MODEL_NAME"]

#: How reports and messages name the bundled model.
DEFAULT_MODEL_NAME = "dhq_rtl.firmware/default.dhq"


def default_model():
    """``(model, name)``: the bundled default model image and how to name it."""
    from dhq_rtl.model_image import load
    with resources.as_file(resources.files(__name__) / "default.dhq") as path:
        return load(path), DEFAULT_MODEL_NAME
