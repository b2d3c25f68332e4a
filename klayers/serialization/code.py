"""Marshalled Python functions, as Keras 2 stores Lambda code (only loaded with safe_mode=False)."""

from __future__ import annotations

import codecs
import marshal
import types
from typing import Any, Callable, Tuple, Union


def func_dump(func: Callable) -> Union[str, Tuple[Any, Any, Any]]:
    """Serialize a function as Keras 2 does: ``(code, defaults, closure)``, the code as
    base64 of its marshalled bytecode."""
    raw = marshal.dumps(func.__code__)
    code = codecs.encode(raw, "base64").decode("ascii")
    defaults = func.__defaults__
    closure = tuple(c.cell_contents for c in func.__closure__) if func.__closure__ else None
    return code, defaults, closure


def func_load(code: Any, defaults: Any = None, closure: Any = None, globs: Any = None) -> Callable:
    """Rebuild a function from :func:`func_dump`'s output. EXECUTES CODE FROM THE CONFIG:
    only reachable with ``safe_mode=False``.

    Raises:
        ValueError: the code was marshalled by another Python version or is not code.
    """
    if isinstance(code, (tuple, list)):
        code, defaults, closure = (list(code) + [None, None])[:3]
        if isinstance(defaults, list):
            defaults = tuple(defaults)

    def ensure_cell(value):
        def dummy():
            value  # noqa: B018

        return dummy.__closure__[0]

    if closure is not None:
        closure = tuple(ensure_cell(c) for c in closure)
    try:
        raw = codecs.decode(code.encode("ascii"), "base64")
        code_obj = marshal.loads(raw)
    except (UnicodeEncodeError, ValueError, EOFError, TypeError) as e:
        raise ValueError(
            "Could not load the Lambda function: its code was marshalled by another Python "
            f"version or is corrupt ({e}). Recreate the Lambda with its Python function."
        ) from e
    except (AttributeError, binascii_error()) as e:
        raise ValueError(f"Could not decode the Lambda function's code: {e}") from e
    if not isinstance(code_obj, types.CodeType):
        raise ValueError("The Lambda config's code is not a Python code object.")
    if globs is None:
        globs = globals()
    return types.FunctionType(code_obj, globs, name=code_obj.co_name, argdefs=defaults, closure=closure)


def binascii_error():
    import binascii

    return binascii.Error
