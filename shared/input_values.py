"""Values for model inputs: ``--input-value NAME=VALUE``, ``--input-file NAME=FILE.npy``.

Why: some models take inputs whose *values* decide what runs: a sample rate that picks an
``If`` branch, a recurrent state, an attention mask, a ``k``. Synthesized random data would
then silently choose the control flow and the shapes being timed or counted. The user states
such values once, in the spelling TFLite's ``benchmark_model --input_layer_value_files`` and
``onnxruntime_perf_test``'s test data give them, and ``flopgap flops``, ``flopgap-agent bench``
and campaigns read them through this one module: one grammar, one wire form, one set of
errors. Checking a value against a model input (its dtype and declared dims) needs no onnx or
onnxruntime, only numpy, so both sides share ``to_array`` too.

Grammar of VALUE:
- a scalar: ``16000``, ``-1``, ``0.5``, ``1e-3``, ``true``/``false``;
- a filled tensor: ``zeros[2,1,128]``, ``ones[1,128]``, ``full[2,3](0.5)`` (``x`` also
  separates dims: ``zeros[2x1x128]``; ``zeros[]`` is a scalar);
- a literal tensor: ``[1,2,3]`` or ``[[0,1],[1,0]]`` (JSON numbers or booleans, rectangular).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.errors import UsageError

Scalar = bool | int | float
Declared = Sequence[int | str | None] | None  # a model input's dims; None: unknown rank

MAX_LITERAL_ELEMENTS = 4096  # a literal longer than this belongs in a .npy file
MAX_FILL_ELEMENTS = 1 << 28  # a filled tensor is built where it is used; 1 GiB of float32
# A file's bytes travel inside the job's settings, whose canonical JSON protocol caps at
# 256 KiB; base64 costs 4/3, so 160 KiB of array data leaves room for everything else.
MAX_FILE_BYTES = 160 << 10

_VALUE_HINT = (
    "write --input-value NAME=VALUE with VALUE a number (16000, 0.5, true), "
    "zeros[2,1,128], ones[1,128], full[2,3](0.5) or a list [1,2,3]"
)
_FILL = re.compile(r"(zeros|ones|full)\[([^\]]*)\](?:\((.*)\))?")


@dataclass(frozen=True)
class InputValue:
    """One input's given value: a fill, a literal, or an array read from a ``.npy`` file.

    Exactly one of ``fill``, ``data`` and ``array`` is set. ``shape`` is the value's own
    shape; ``to_array`` checks it, and the dtype, against the model input it is given for.
    """

    name: str
    shape: tuple[int, ...]
    fill: Scalar | None = None
    data: tuple[Scalar, ...] | None = None
    array: npt.NDArray[Any] | None = None
    source: str = ""  # what the user wrote, or the file's path

    @property
    def kind(self) -> str:
        """ "file", "literal" or "fill": where the value came from."""
        if self.array is not None:
            return "file"
        return "literal" if self.data is not None else "fill"

    def text(self) -> str:
        """The value as the user would write it again (a file by its path)."""
        if self.array is not None:
            return self.source
        dims = ",".join(map(str, self.shape))
        if self.data is not None:
            if not self.shape:
                return _scalar_text(self.data[0])
            return json.dumps(np.asarray(self.data, dtype=object).reshape(self.shape).tolist())
        if self.fill in (0, 1) and not isinstance(self.fill, bool) and self.shape:
            return f"{'zeros' if self.fill == 0 else 'ones'}[{dims}]"
        if not self.shape:
            return _scalar_text(self.fill if self.fill is not None else 0)
        return f"full[{dims}]({_scalar_text(self.fill if self.fill is not None else 0)})"

    def describe(self) -> dict[str, Any]:
        """What a result document says about this value: kind, shape, and the value or file."""
        out: dict[str, Any] = {"source": self.kind, "shape": list(self.shape)}
        if self.array is not None:
            out |= {"file": os.path.basename(self.source), "sha256": _sha256(self.array)}
            out["dtype"] = str(self.array.dtype)
        else:
            out["value"] = self.text()
        return out

    def to_wire(self) -> dict[str, Any]:
        """A JSON-safe dict for a job's settings; ``from_wire`` reads it back."""
        if self.array is not None:
            buf = io.BytesIO()
            np.save(buf, self.array, allow_pickle=False)
            return {
                "npy_b64": base64.b64encode(buf.getvalue()).decode("ascii"),
                "file": os.path.basename(self.source),
            }
        if self.data is not None:
            return {"shape": list(self.shape), "data": list(self.data)}
        return {"shape": list(self.shape), "fill": self.fill}

    def to_array(self, name: str, dtype: npt.DTypeLike, declared: Declared) -> npt.NDArray[Any]:
        """The value as an array of the input's ``dtype``, checked against its declared dims.

        A scalar given for an input declared with only 1-sized dims (``[1]``, ``[1, 1]``) is
        reshaped to it, as exporters often declare a scalar that way. Every refusal is one
        line naming the input, what the model expects and what was given.
        """
        want = np.dtype(dtype)
        shape = _fit_shape(name, self, declared)
        if self.array is not None:
            if self.array.dtype != want:
                raise UsageError(
                    f"input '{name}': the model expects {want}, {self.source} holds "
                    f"{self.array.dtype}",
                    hint=f"save it as {want}: np.save(path, a.astype(np.{want.name}))",
                )
            return self.array.reshape(shape)
        values = self.data if self.data is not None else (self.fill,)
        for v in values:
            _check_fits(name, v, want, self)
        if self.data is not None:
            return np.asarray(self.data, dtype=want).reshape(shape)
        return np.full(shape, self.fill, dtype=want)


def _scalar_text(v: Scalar | None) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def _sha256(array: npt.NDArray[Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _bad(name: str, text: str, why: str, hint: str = _VALUE_HINT) -> UsageError:
    return UsageError(f"--input-value {name}={text}: {why}", hint=hint)


def _split(flag: str, text: str) -> tuple[str, str]:
    """NAME and the rest of ``NAME=VALUE`` (split at the first ``=``)."""
    name, sep, rest = text.partition("=")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        example = "sr=16000" if flag == "--input-value" else "audio=clip.npy"
        raise UsageError(f"{flag} {text!r}: write NAME=VALUE", hint=f"e.g. {flag} {example}")
    return name, rest


def _parse_scalar(name: str, text: str) -> Scalar:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        raise _bad(name, text, "is not a number, a boolean, a fill or a list") from None
    return value


def _parse_dims(name: str, text: str, dims: str) -> tuple[int, ...]:
    parts = [p.strip() for p in dims.replace("x", ",").split(",")] if dims.strip() else []
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise _bad(name, text, f"dims [{dims}] must be non-negative integers")
    return tuple(int(p) for p in parts)


def _flatten(name: str, text: str, node: Any) -> tuple[tuple[int, ...], list[Scalar]]:
    """Shape and row-major elements of a nested JSON list; refuses ragged or non-numbers."""
    if not isinstance(node, list):
        if isinstance(node, bool | int | float):
            return (), [node]
        raise _bad(name, text, f"element {node!r} is not a number or a boolean")
    if not node:
        return (0,), []
    parts = [_flatten(name, text, item) for item in node]
    inner = parts[0][0]
    if any(shape != inner for shape, _ in parts):
        raise _bad(name, text, "is ragged: every row must have the same length")
    return (len(node), *inner), [v for _, flat in parts for v in flat]


def parse_value(name: str, text: str) -> InputValue:
    """One VALUE (the part after ``NAME=``) in the grammar of the module docstring."""
    text = text.strip()
    fill = _FILL.fullmatch(text.replace(" ", ""))
    if fill:
        kind, dims, arg = fill.groups()
        shape = _parse_dims(name, text, dims)
        if kind == "full" and arg is None:
            raise _bad(name, text, "full[...] needs its value", "e.g. full[2,3](0.5)")
        if kind != "full" and arg is not None:
            raise _bad(name, text, f"{kind}[...] takes no value", f"e.g. {kind}[{dims}]")
        value: Scalar = (
            _parse_scalar(name, arg) if arg is not None else (0 if kind == "zeros" else 1)
        )
        if math.prod(shape) > MAX_FILL_ELEMENTS:
            raise _bad(name, text, f"has {math.prod(shape):,} elements, over {MAX_FILL_ELEMENTS:,}")
        return InputValue(name, shape, fill=value, source=text)
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad(name, text, f"is not a valid list ({exc.msg})") from None
        shape, flat = _flatten(name, text, parsed)
        if len(flat) > MAX_LITERAL_ELEMENTS:
            raise _bad(
                name, text, f"lists {len(flat):,} elements, over {MAX_LITERAL_ELEMENTS:,}",
                hint="save larger data with np.save and pass --input-file NAME=FILE.npy",
            )  # fmt: skip
        return InputValue(name, shape, data=tuple(flat), source=text)
    return InputValue(name, (), data=(_parse_scalar(name, text),), source=text)


def load_file(name: str, path: str | os.PathLike[str], limit: int | None = None) -> InputValue:
    """The array in a ``.npy`` file, for ``--input-file``; ``limit`` bounds its bytes."""
    shown = os.fspath(path)
    try:
        array = np.load(shown, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(
            f"--input-file {name}={shown}: no such file", hint="give the path of a .npy file"
        ) from None
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(
            f"--input-file {name}={shown}: not a readable .npy file ({exc})",
            hint="write it with numpy.save(path, array); object arrays and .npz are not read",
        ) from None
    if not isinstance(array, np.ndarray):
        raise UsageError(f"--input-file {name}={shown}: not a .npy array", hint="use numpy.save")
    if limit is not None and array.nbytes > limit:
        raise UsageError(
            f"--input-file {name}={shown}: {array.nbytes:,} bytes, over the {limit:,} that "
            "travel with a job",
            hint="campaign input files must be small; give larger inputs a shape and let the "
            "agent synthesize them",
        )
    return InputValue(name, tuple(int(d) for d in array.shape), array=array, source=shown)


def parse_values(
    values: Iterable[str] = (), files: Iterable[str] = (), file_limit: int | None = None
) -> dict[str, InputValue]:
    """Every ``--input-value`` and ``--input-file`` flag of one command, by input name."""
    out: dict[str, InputValue] = {}
    for flag, texts in (("--input-value", values), ("--input-file", files)):
        for text in texts:
            name, rest = _split(flag, text)
            if name in out:
                raise UsageError(
                    f"input '{name}' is given a value twice",
                    hint="pass one --input-value or --input-file per input",
                )
            out[name] = (
                parse_value(name, rest)
                if flag == "--input-value"
                else load_file(name, rest, file_limit)
            )
    return out


def from_wire(name: str, raw: Mapping[str, Any]) -> InputValue:
    """Read ``InputValue.to_wire``'s dict back; malformed ones are a UsageError."""
    if not isinstance(raw, Mapping):
        raise UsageError(f"input value '{name}' is {type(raw).__name__}, not a table")
    if "npy_b64" in raw:
        try:
            data = base64.b64decode(str(raw["npy_b64"]), validate=True)
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UsageError(f"input value '{name}': unreadable .npy data ({exc})") from None
        return InputValue(name, tuple(array.shape), array=array, source=str(raw.get("file", "")))
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise UsageError(f"input value '{name}': shape {shape!r} is not a list of sizes")
    dims = tuple(shape)
    if "data" in raw:
        data = raw["data"]
        if not isinstance(data, list) or not all(isinstance(v, bool | int | float) for v in data):
            raise UsageError(f"input value '{name}': data is not a list of numbers")
        if len(data) != math.prod(dims) or len(data) > MAX_LITERAL_ELEMENTS:
            raise UsageError(
                f"input value '{name}': {len(data)} elements for shape {list(dims)} "
                f"(at most {MAX_LITERAL_ELEMENTS})"
            )
        return InputValue(name, dims, data=tuple(data), source="")
    fill = raw.get("fill")
    if not isinstance(fill, bool | int | float) or math.prod(dims) > MAX_FILL_ELEMENTS:
        raise UsageError(f"input value '{name}': fill {fill!r} is not a number within bounds")
    return InputValue(name, dims, fill=fill, source="")


def values_to_wire(values: Mapping[str, InputValue]) -> dict[str, dict[str, Any]]:
    """The ``input_values`` setting of a job."""
    return {name: value.to_wire() for name, value in values.items()}


def values_from_wire(raw: Mapping[str, Any] | None) -> dict[str, InputValue]:
    """The ``input_values`` setting of a job, read back."""
    return {str(name): from_wire(str(name), v) for name, v in (raw or {}).items()}


def check_names(values: Mapping[str, InputValue], inputs: Sequence[str]) -> None:
    """Refuse a value for a name that is not one of the model's inputs."""
    for name in values:
        if name not in inputs:
            raise UsageError(
                f"--input-value/--input-file names '{name}', which is not an input of the model",
                hint=f"its inputs are: {', '.join(inputs) or '(none)'}",
            )


def _declared_text(declared: Declared) -> str:
    if declared is None:
        return "of unknown rank"
    return "scalar" if not declared else "[" + ", ".join(str(d) for d in declared) + "]"


def _fit_shape(name: str, value: InputValue, declared: Declared) -> tuple[int, ...]:
    """The shape the value takes for this input; a UsageError if it cannot fit."""
    given = value.shape
    if declared is None:
        return given
    dims = list(declared)
    if not given and all(d == 1 for d in dims):
        return tuple(1 for _ in dims)
    fits = len(dims) == len(given) and all(
        not isinstance(d, int) or d == g for d, g in zip(dims, given, strict=True)
    )
    if fits:
        return given
    example = ",".join(str(d) if isinstance(d, int) else "N" for d in dims)
    if not dims:
        what = "a single value, e.g. 16000 or 0.5"
    elif value.array is not None:
        what = f"a .npy array of shape [{example}]"
    else:
        what = f"a value of shape [{example}], e.g. zeros[{example.replace('N', '1')}]"
    raise UsageError(
        f"input '{name}' is declared {_declared_text(declared)}; the value given "
        f"({value.text()}) has shape {list(given)}",
        hint=f"give {what}",
    )


def _check_fits(name: str, v: Scalar | None, want: np.dtype[Any], value: InputValue) -> None:
    """Refuse an element the input's dtype cannot hold exactly (1.5 for int64, 300 for uint8)."""
    if v is None:
        return
    kind = want.kind
    ok = True
    if kind == "b":
        ok = isinstance(v, bool) or v in (0, 1)
    elif kind in "iu":
        ok = not isinstance(v, float | bool) and np.iinfo(want).min <= int(v) <= np.iinfo(want).max
    elif kind == "f":
        ok = isinstance(v, bool) is False and (
            not math.isfinite(float(v)) or abs(float(v)) <= float(np.finfo(want).max)
        )
    else:
        raise UsageError(
            f"input '{name}' has dtype {want}, which --input-value cannot give",
            hint="give it with --input-file NAME=FILE.npy",
        )
    if not ok:
        examples = {"b": "true or false", "i": "a whole number", "u": "a whole number >= 0"}
        shown, element = value.text(), _scalar_text(v)
        raise UsageError(
            f"input '{name}' is {want}; the value {shown} does not fit it"
            + (f" (element {element})" if element != shown else ""),
            hint=f"give {examples.get(kind, 'a number in range')} for '{name}'",
        )


def missing_scalar_values(
    inputs: Iterable[tuple[str, str, Declared]], values: Mapping[str, InputValue]
) -> list[str]:
    """Integer or boolean scalar inputs (rank 0, or ``[1]``) with no value.

    ``inputs`` holds (name, numpy dtype kind, declared dims) of each model input.

    Such an input is almost always a switch (a sample rate, a flag, a ``k``): synthesizing it
    would decide the model's control flow at random, so callers refuse to guess it.
    """
    return [
        name
        for name, kind, declared in inputs
        if name not in values
        and kind in ("i", "u", "b")
        and declared is not None
        and len(declared) <= 1
        and all(d == 1 for d in declared)
    ]


def missing_value_error(names: Sequence[str]) -> UsageError:
    """The error for ``missing_scalar_values``: names each input and says how to give it."""
    shown = ", ".join(f"'{n}'" for n in names)
    example = " ".join(f"--input-value {n}=VALUE" for n in names)
    return UsageError(
        f"input {shown} is an integer or boolean scalar with no value: its value can decide "
        "the model's control flow, so flopgap does not make one up",
        hint=f"give it, e.g. {example} (a sample rate, a flag or a count the model expects)",
    )


def with_value_shapes(
    shapes: Mapping[str, Sequence[int]], value_shapes: Mapping[str, Sequence[int]]
) -> dict[str, tuple[int, ...]]:
    """``--input`` shapes plus each given value's shape (a value sets its input's shape); an
    input given both, with different shapes, is refused naming both."""
    out = {name: tuple(int(d) for d in dims) for name, dims in shapes.items()}
    for name, dims in value_shapes.items():
        shape = tuple(int(d) for d in dims)
        given = out.get(name)
        if given is not None and given != shape:
            raise UsageError(
                f"input '{name}': --input gives shape {list(given)}, its value has shape "
                f"{list(shape)}",
                hint=f"drop --input {name}=... (a given value sets its input's shape) or give "
                f"a value of shape {list(given)}",
            )
        out[name] = shape
    return out
