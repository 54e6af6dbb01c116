"""One checkpoint format for every model: class, constructor config, weights, metadata.

:func:`save_model` writes ``{"class": "module.QualName", "config": <constructor kwargs>,
"state_dict": ..., "metadata": {...}}`` atomically (refusing NaN/inf weights) and
:func:`load_model` rebuilds the model from the file alone: it looks the class up by its
qualified name, calls it with the stored config and loads the weights. A model records its
constructor's arguments by deriving from :class:`Configurable` (nothing else to write).

Only classes of the ``deepunfold`` package are rebuilt, and only from modules already
imported: the library never imports a module by a computed name (the code provenance of the
workflow, :mod:`deepunfold.pipeline.provenance`, sees static imports only), so a script that
loads a model imports the model's module, as it does anyway to use it.
"""

from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path

import torch

from deepunfold.io import atomic_path
from deepunfold.train.loop import check_finite

__all__ = ["Configurable", "save_model", "load_model", "read_checkpoint", "class_name"]

FORMAT_KEYS = ("class", "config", "state_dict", "metadata")


def _frozen(value):
    """A copy of a constructor argument that later changes of the caller's object miss."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_frozen(v) for v in value)
    return value


class Configurable:
    """Mixin of models that :func:`save_model` can save: records the constructor's arguments.

    The arguments of the outermost ``__init__`` call (the class actually built, defaults
    filled in, ``**kwargs`` merged) are kept as :attr:`config`, so that ``type(model)(**
    model.config)`` builds the same architecture. Tensors (e.g. LISTA's dictionary) are kept
    as CPU copies. A class may set ``self.config`` itself in its ``__init__``; that wins.
    Arguments must be keywords-able (no ``*args``).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def __init__(self, *args, **kw):
            depth = self.__dict__.get("_config_depth", 0)
            if depth == 0:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                config = {}
                for pname, value in list(bound.arguments.items())[1:]:
                    kind = signature.parameters[pname].kind
                    if kind is inspect.Parameter.VAR_POSITIONAL:
                        if value:
                            raise TypeError(f"{cls.__name__}: *args cannot be saved in a config")
                    elif kind is inspect.Parameter.VAR_KEYWORD:
                        config.update(value)
                    else:
                        config[pname] = value
            self.__dict__["_config_depth"] = depth + 1
            try:
                init(self, *args, **kw)
            finally:
                self.__dict__["_config_depth"] = depth
            if depth == 0:
                del self.__dict__["_config_depth"]
                if "_config" not in self.__dict__:
                    self.__dict__["_config"] = _frozen(config)

        cls.__init__ = __init__

    @property
    def config(self) -> dict:
        """The constructor's keyword arguments (a copy)."""
        return dict(self.__dict__["_config"])

    @config.setter
    def config(self, value: dict) -> None:
        self.__dict__["_config"] = _frozen(dict(value))


def class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def save_model(model: torch.nn.Module, path: str | Path, **metadata) -> None:
    """Save ``model`` (class, config, weights) and ``metadata`` to ``path``, atomically.

    Refuses weights with NaN/inf entries (:class:`~deepunfold.train.loop.NonFiniteError`; the
    file is not written), and models that :func:`load_model` could not rebuild (not a
    :class:`Configurable` of the ``deepunfold`` package). The weights are saved as CPU
    tensors; the same model and metadata give the same bytes.
    """
    cls = type(model)
    name = class_name(cls)
    if not isinstance(model, Configurable) or not name.startswith("deepunfold."):
        raise TypeError(
            f"cannot save a {name}: only deepunfold models deriving from "
            "deepunfold.train.checkpoint.Configurable record the config that rebuilds them"
        )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for key, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(tensor, f"parameter {key!r} of {cls.__name__}")
    ckpt = {"class": name, "config": model.config, "state_dict": state, "metadata": metadata}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # a file object, not a path: torch.save writes a path's name into the archive, and
        # the temporary name would make every checkpoint's bytes differ
        torch.save(ckpt, f)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of ``path`` (CPU tensors), checked to be of :func:`save_model`'s
    format; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; run its training first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); delete it "
            "and rerun its training"
        ) from err
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in FORMAT_KEYS):
        have = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise RuntimeError(
            f"{path} is not a deepunfold model checkpoint (expected keys {list(FORMAT_KEYS)}, "
            f"found {have}); rerun its training"
        )
    return ckpt


def _resolve(name: str, path: Path) -> type:
    if not isinstance(name, str) or not name.startswith("deepunfold."):
        raise RuntimeError(f"{path}: refusing to rebuild {name!r}, not a deepunfold class")
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        if hasattr(module, "__path__") and not hasattr(module, parts[cut]):
            break  # a package whose submodule is not imported
        obj = module
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                raise RuntimeError(f"{path}: {name} no longer exists; rerun its training")
        if not (isinstance(obj, type) and issubclass(obj, Configurable)):
            raise RuntimeError(f"{path}: {name} is not a deepunfold model class")
        return obj
    raise RuntimeError(
        f"{path} holds a {name}, whose module is not imported: import it before load_model "
        "(the library imports no module by a computed name)"
    )


def load_model(
    path: str | Path, expected: type | None = None, *, metadata: bool = False
) -> torch.nn.Module | tuple[torch.nn.Module, dict]:
    """Rebuild the model saved by :func:`save_model` at ``path`` (on the CPU, eval mode).

    Args:
        path: the checkpoint.
        expected: if given, the model must be an instance of this class (a clear error
            otherwise, e.g. an RPCA checkpoint passed where a LISTA one belongs).
        metadata: also return the metadata dict given to :func:`save_model`.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    cls = _resolve(ckpt["class"], path)
    if expected is not None and not issubclass(cls, expected):
        raise RuntimeError(f"{path} holds a {ckpt['class']}, expected a {class_name(expected)}")
    try:
        model = cls(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise RuntimeError(
            f"{path}: the saved {ckpt['class']} does not rebuild ({err}); rerun its training"
        ) from err
    model.eval()
    return (model, dict(ckpt["metadata"])) if metadata else model
