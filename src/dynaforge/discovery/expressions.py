"""Expressions typed by a user (custom library terms), parsed without evaluating anything.

``sympy.sympify`` evaluates its input as Python, so a custom term read from a colleague's
``model.json`` could run code. :func:`parse_expression` instead reads the text with Python's
own parser (``ast``, which builds a syntax tree and runs nothing) and accepts only:

- the state names (and the constants ``pi`` and ``E``);
- numbers (integers and decimals; no complex, no booleans);
- ``+ - * / **`` (``^`` is read as ``**``, as sympy reads it) and unary ``+ -``;
- calls of the functions in :data:`FUNCTIONS` with positional arguments.

Everything else (attributes, subscripts, keywords, lambdas, comprehensions, strings, names
that are not states) is refused with a message saying what was found. The tree is then built
into a sympy expression node by node. Powers whose value would be astronomically large
(``10**10**10``) are refused before sympy computes them.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence

import sympy

__all__ = ["FUNCTIONS", "MAX_LENGTH", "parse_expression"]

#: The functions a term may call, by the name it is written with.
FUNCTIONS: dict[str, tuple[object, int]] = {
    # name: (sympy function, number of arguments)
    "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1),
    "tan": (sympy.tan, 1),
    "asin": (sympy.asin, 1),
    "acos": (sympy.acos, 1),
    "atan": (sympy.atan, 1),
    "atan2": (sympy.atan2, 2),
    "sinh": (sympy.sinh, 1),
    "cosh": (sympy.cosh, 1),
    "tanh": (sympy.tanh, 1),
    "exp": (sympy.exp, 1),
    "log": (sympy.log, 1),
    "sqrt": (sympy.sqrt, 1),
    "abs": (sympy.Abs, 1),
    "Abs": (sympy.Abs, 1),
    "sign": (sympy.sign, 1),
}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
#: The longest term accepted (characters): a library term is short; a megabyte is an attack.
MAX_LENGTH = 500
#: The largest power exponent (in absolute value) applied to a number.
_MAX_NUMERIC_EXPONENT = 1000
#: The most decimal digits a power of two numbers may have.
_MAX_DIGITS = 300

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def parse_expression(text: str, state_names: Sequence[str]) -> sympy.Expr:
    """The sympy expression written in ``text``, in the symbols named by ``state_names``.

    Raises:
        ValueError: ``text`` is not such an expression (naming what was not allowed).
    """
    if not isinstance(text, str):
        raise ValueError(f"an expression must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression of {len(text)} characters (at most {MAX_LENGTH})")
    try:
        tree = ast.parse(text.replace("^", "**").strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"cannot parse {text!r}: {exc.msg}") from None
    except ValueError as exc:  # e.g. null bytes
        raise ValueError(f"cannot parse {text!r}: {exc}") from None
    symbols = {name: sympy.Symbol(name) for name in state_names}
    expr = _build(tree.body, symbols, text)
    if not isinstance(expr, sympy.Expr):  # pragma: no cover - every node above builds an Expr
        raise ValueError(f"{text!r} is not an expression")
    return expr


def _build(node: ast.AST, symbols: dict[str, sympy.Symbol], text: str) -> sympy.Expr:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{text!r}: {value!r} is not a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{text!r}: {value!r} is not a finite number")
        return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)
    if isinstance(node, ast.Name):
        if node.id in symbols:
            return symbols[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ValueError(
            f"{text!r} uses {node.id}, which is not a state name (states: "
            f"{', '.join(symbols)}) or a known constant (pi, E)"
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _build(node.operand, symbols, text)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left = _build(node.left, symbols, text)
        right = _build(node.right, symbols, text)
        if isinstance(node.op, ast.Pow):
            if right.is_number and (not right.is_finite or abs(right) > _MAX_NUMERIC_EXPONENT):
                raise ValueError(
                    f"{text!r}: an exponent of {right} is too large "
                    f"(at most {_MAX_NUMERIC_EXPONENT} in absolute value)"
                )
            if left.is_number and right.is_number:
                # Both numbers: sympy would compute the value exactly (10**10**10 never ends).
                try:
                    digits = abs(float(right)) * math.log10(max(abs(float(left)), 1e-300))
                except (OverflowError, TypeError, ValueError):
                    digits = math.inf
                if not digits <= _MAX_DIGITS:
                    raise ValueError(f"{text!r}: a number with more than {_MAX_DIGITS} digits")
            return left**right
        if type(node.op) in _BINARY:
            return _BINARY[type(node.op)](left, right)
        raise ValueError(f"{text!r}: the operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ValueError(
                f"{text!r} calls {called}, which is not an allowed function "
                f"({', '.join(FUNCTIONS)})"
            )
        function, arity = FUNCTIONS[node.func.id]
        if (
            node.keywords
            or len(node.args) != arity
            or any(isinstance(a, ast.Starred) for a in node.args)
        ):
            raise ValueError(
                f"{text!r}: {node.func.id} takes {arity} positional argument"
                f"{'s' if arity > 1 else ''}"
            )
        return function(*(_build(a, symbols, text) for a in node.args))  # type: ignore[operator]
    raise ValueError(
        f"{text!r}: {type(node).__name__} is not allowed in an expression (only state names, "
        "numbers, + - * / ** and the allowed functions)"
    )
