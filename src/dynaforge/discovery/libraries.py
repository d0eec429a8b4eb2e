"""Feature libraries Θ(x) for sparse regression: polynomial, Fourier, custom, and combinations.

A library is built from its spec (a short string, see :func:`parse_library`), then ``fit`` to
the state names, which fixes the dimension ``D`` and the ordered list of ``P`` terms. After
that ``transform`` maps states ``(..., D)`` to features ``(..., P)`` with a handful of numpy
operations on index arrays prepared at ``fit`` (no Python loop over samples), so evaluating
one state costs a few microseconds: this is the inner loop of ``SINDy.predict`` and of every
simulation step.

Term order and names (shared with PySINDy and Champion et al., so coefficient matrices line
up): polynomial terms are degree-graded, and within a degree in
``itertools.combinations_with_replacement`` order over the state indices; for states
``(x, y, z)`` and degree 2 with constant: ``1, x, y, z, x^2, x y, x z, y^2, y z, z^2``. Fourier
terms are ``sin(x), cos(x), sin(y), cos(y), ...`` for frequency 1, then ``sin(2 x), ...``.
"""

from __future__ import annotations

import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import sympy

from dynaforge.discovery.expressions import parse_expression

if TYPE_CHECKING:
    from typing_extensions import Self

#: The spec forms :func:`parse_library` understands (for error messages and the CLI help).
SPEC_FORMS = (
    "poly<d> (polynomial up to degree d with a constant, e.g. poly2)",
    "poly<d>-noconst (without the constant)",
    "fourier<n> (sin(k x), cos(k x) for k = 1..n)",
    (
        "custom:<expr>;<expr>... (sympy expressions in the state names; '{}' expands per "
        "state, e.g. custom:exp(-x);tanh({}))"
    ),
    "<a>+<b> (concatenation, duplicate terms dropped)",
    "<a>*<b> (all products of a term of a and a term of b)",
    "parentheses group, e.g. (custom:x*sin(y))+poly2",
)


class AbstractLibrary(ABC):
    """A list of candidate functions of the state, fixed by :meth:`fit`.

    After ``fit`` the attributes ``state_names_`` (length ``D``) and the term list are set.
    ``lib1 + lib2`` concatenates (:class:`ConcatLibrary`), ``lib1 * lib2`` forms products
    (:class:`TensoredLibrary`).
    """

    state_names_: tuple[str, ...]

    # -- to implement -----------------------------------------------------------------------
    @abstractmethod
    def _fit(self, state_names: tuple[str, ...]) -> None:
        """Prepare the term list (and any index arrays) for these states."""

    @abstractmethod
    def _transform(self, x: np.ndarray) -> np.ndarray:
        """``(..., D)`` float64 -> ``(..., P)`` float64 (input already checked)."""

    @abstractmethod
    def _names(self) -> list[str]:
        """The ``P`` term names."""

    @abstractmethod
    def _exprs(self) -> list[sympy.Expr]:
        """The ``P`` terms as sympy expressions in ``sympy.Symbol(name)`` per state."""

    @abstractmethod
    def spec(self) -> str:
        """The string :func:`parse_library` turns back into an equal library."""

    # -- public -----------------------------------------------------------------------------
    def fit(self, state_names: Sequence[str]) -> Self:
        """Fix the state dimension ``D`` and the term list; returns ``self``."""
        if isinstance(state_names, str) or len(state_names) == 0:
            raise ValueError(
                f"state_names must be a non-empty sequence of names, got {state_names!r}"
            )
        names = tuple(str(n) for n in state_names)
        if len(set(names)) != len(names):
            raise ValueError(f"state_names must be distinct, got {names!r}")
        self._fit(names)
        self.state_names_ = names
        return self

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "state_names_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ValueError(f"library {self.spec()!r} is not fitted: call fit(state_names) first")

    @property
    def dim(self) -> int:
        self._check_fitted()
        return len(self.state_names_)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Features of states ``x`` ``(..., D)``: ``(..., P)`` float64."""
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != len(self.state_names_):
            raise ValueError(
                f"library {self.spec()!r} was fitted on {len(self.state_names_)} states "
                f"{self.state_names_}, got input of shape {x.shape}"
            )
        return self._transform(x)

    def names(self) -> list[str]:
        """The ``P`` term names (see the module docstring for the convention)."""
        self._check_fitted()
        return self._names()

    @property
    def n_terms(self) -> int:
        return len(self.names())

    def to_sympy(self, symbols: Sequence[sympy.Symbol] | None = None) -> list[sympy.Expr]:
        """The ``P`` terms as sympy expressions in ``symbols`` (default: one Symbol per state
        name)."""
        self._check_fitted()
        exprs = self._exprs()
        if symbols is None:
            return exprs
        if len(symbols) != len(self.state_names_):
            raise ValueError(f"need {len(self.state_names_)} symbols, got {len(symbols)}")
        mapping = {sympy.Symbol(n): s for n, s in zip(self.state_names_, symbols)}
        return [e.xreplace(mapping) for e in exprs]

    def __add__(self, other: AbstractLibrary) -> ConcatLibrary:
        if not isinstance(other, AbstractLibrary):
            return NotImplemented
        return ConcatLibrary([self, other])

    def __mul__(self, other: AbstractLibrary) -> TensoredLibrary:
        if not isinstance(other, AbstractLibrary):
            return NotImplemented
        return TensoredLibrary(self, other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec()!r})"


def _symbols(state_names: Sequence[str]) -> list[sympy.Symbol]:
    return [sympy.Symbol(n) for n in state_names]


class PolynomialLibrary(AbstractLibrary):
    """All monomials of the states up to ``degree`` (and the constant ``1`` if asked).

    ``transform`` pads the state with a column of ones and takes one gather and one product
    over an index matrix ``(P, degree)``, so a monomial of lower degree simply picks the ones
    column for its missing factors.
    """

    def __init__(self, degree: int = 2, include_constant: bool = True) -> None:
        if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 1:
            raise ValueError(f"polynomial degree must be an integer >= 1, got {degree!r}")
        self.degree = int(degree)
        self.include_constant = bool(include_constant)

    def spec(self) -> str:
        return f"poly{self.degree}" + ("" if self.include_constant else "-noconst")

    def _fit(self, state_names: tuple[str, ...]) -> None:
        d = len(state_names)
        combos = [
            c
            for deg in range(0 if self.include_constant else 1, self.degree + 1)
            for c in itertools.combinations_with_replacement(range(d), deg)
        ]
        self._combos = combos
        # Column 0 of the padded state is 1; state i is column i + 1.
        index = np.zeros((len(combos), self.degree), dtype=np.intp)
        for row, combo in enumerate(combos):
            index[row, : len(combo)] = np.asarray(combo, dtype=np.intp) + 1
        self._index = index
        self._flat_index = index.T.copy()  # (degree, P): one contiguous gather per factor

    def _transform(self, x: np.ndarray) -> np.ndarray:
        padded = np.empty(x.shape[:-1] + (x.shape[-1] + 1,))
        padded[..., 0] = 1.0
        padded[..., 1:] = x
        out = padded[..., self._flat_index[0]]
        for k in range(1, self.degree):
            out *= padded[..., self._flat_index[k]]
        return out

    def _names(self) -> list[str]:
        names = []
        for combo in self._combos:
            if not combo:
                names.append("1")
                continue
            parts = []
            for i, group in itertools.groupby(combo):
                power = len(list(group))
                parts.append(self.state_names_[i] + (f"^{power}" if power > 1 else ""))
            names.append(" ".join(parts))
        return names

    def _exprs(self) -> list[sympy.Expr]:
        syms = _symbols(self.state_names_)
        return [sympy.Mul(*[syms[i] for i in combo]) for combo in self._combos]


class FourierLibrary(AbstractLibrary):
    """``sin(k x_i), cos(k x_i)`` for ``k = 1..n_frequencies`` and every state ``x_i``.

    Order (as PySINDy): frequency outermost, then state, then sin before cos.
    """

    def __init__(self, n_frequencies: int = 1) -> None:
        if (
            isinstance(n_frequencies, bool)
            or not isinstance(n_frequencies, (int, np.integer))
            or n_frequencies < 1
        ):
            raise ValueError(f"n_frequencies must be an integer >= 1, got {n_frequencies!r}")
        self.n_frequencies = int(n_frequencies)

    def spec(self) -> str:
        return f"fourier{self.n_frequencies}"

    def _fit(self, state_names: tuple[str, ...]) -> None:
        d = len(state_names)
        self._state_index = np.tile(np.arange(d), self.n_frequencies)
        self._freq = np.repeat(np.arange(1, self.n_frequencies + 1, dtype=np.float64), d)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        arg = x[..., self._state_index] * self._freq
        out = np.empty(arg.shape[:-1] + (2 * arg.shape[-1],))
        np.sin(arg, out=out[..., 0::2])
        np.cos(arg, out=out[..., 1::2])
        return out

    def _names(self) -> list[str]:
        names = []
        for k, i in zip(self._freq.astype(int), self._state_index):
            arg = self.state_names_[i] if k == 1 else f"{k} {self.state_names_[i]}"
            names += [f"sin({arg})", f"cos({arg})"]
        return names

    def _exprs(self) -> list[sympy.Expr]:
        syms = _symbols(self.state_names_)
        exprs = []
        for k, i in zip(self._freq.astype(int), self._state_index):
            exprs += [sympy.sin(k * syms[i]), sympy.cos(k * syms[i])]
        return exprs


class CustomLibrary(AbstractLibrary):
    """Terms given as expressions in the state names (read by
    :func:`~dynaforge.discovery.expressions.parse_expression`: state names, numbers,
    arithmetic and a whitelist of functions; nothing is evaluated as Python).

    ``"exp(-x)"`` or ``"x*sin(y)"`` is one term; an expression holding ``"{}"`` is a template
    that expands to one term per state (``"tanh({})"`` -> ``tanh(x), tanh(y), tanh(z)``). Each
    term is compiled with ``sympy.lambdify`` to numpy at ``fit``. Names are the expressions as
    written (templates filled in).
    """

    def __init__(self, expressions: Sequence[str]) -> None:
        if isinstance(expressions, str):
            expressions = [expressions]
        exprs = [e.strip() if isinstance(e, str) else e for e in expressions]
        if not exprs or not all(isinstance(e, str) and e for e in exprs):
            raise ValueError(
                f"custom library needs non-empty expression strings, got {expressions!r}"
            )
        bad = [e for e in exprs if ";" in e]
        if bad:
            raise ValueError(
                f"custom expressions cannot contain ';' (the separator), got {bad[0]!r}"
            )
        self.expressions = tuple(exprs)

    def spec(self) -> str:
        return "custom:" + ";".join(self.expressions)

    def _fit(self, state_names: tuple[str, ...]) -> None:
        syms = _symbols(state_names)
        texts: list[str] = []
        for e in self.expressions:
            texts += [e.replace("{}", n) for n in state_names] if "{}" in e else [e]
        exprs, funcs = [], []
        for text in texts:
            try:  # parsed, never evaluated: a term from a saved model.json cannot run code
                expr = parse_expression(text, state_names)
            except ValueError as exc:
                hint = ""
                if _POLY.search(text) or _FOURIER.search(text):
                    hint = (
                        "; a custom: part runs to the end of the spec or of its parentheses, "
                        "so write e.g. (custom:exp(-x))+poly1"
                    )
                raise ValueError(f"custom library term: {exc}{hint}") from None
            exprs.append(expr)
            funcs.append(sympy.lambdify(syms, expr, modules="numpy"))
        self._texts, self._sym_exprs, self._funcs = texts, exprs, funcs

    def _transform(self, x: np.ndarray) -> np.ndarray:
        cols = [x[..., i] for i in range(x.shape[-1])]
        out = np.empty(x.shape[:-1] + (len(self._funcs),))
        with np.errstate(all="ignore"):  # overflow is reported by the caller's finiteness check
            for j, f in enumerate(self._funcs):
                out[..., j] = f(*cols)
        return out

    def _names(self) -> list[str]:
        return list(self._texts)

    def _exprs(self) -> list[sympy.Expr]:
        return list(self._sym_exprs)


def _unique_columns(exprs: list[sympy.Expr]) -> np.ndarray:
    """Indices of the first occurrence of each distinct term (equal sympy expressions)."""
    seen: set = set()
    keep = []
    for j, expr in enumerate(exprs):
        key = sympy.expand(expr)
        if key in seen:
            continue
        seen.add(key)
        keep.append(j)
    return np.asarray(keep, dtype=np.intp)


class ConcatLibrary(AbstractLibrary):
    """The terms of several libraries one after another; a term equal (as a sympy expression)
    to an earlier one is dropped, so ``poly2 + poly1`` is ``poly2``."""

    def __init__(self, libraries: Sequence[AbstractLibrary]) -> None:
        flat: list[AbstractLibrary] = []
        for lib in libraries:
            if not isinstance(lib, AbstractLibrary):
                raise ValueError(f"ConcatLibrary takes libraries, got {lib!r}")
            flat += lib.libraries if isinstance(lib, ConcatLibrary) else [lib]
        if not flat:
            raise ValueError("ConcatLibrary needs at least one library")
        self.libraries = flat

    def spec(self) -> str:
        return "+".join(_wrap(lib, "+") for lib in self.libraries)

    def _fit(self, state_names: tuple[str, ...]) -> None:
        for lib in self.libraries:
            lib.fit(state_names)
        names = [n for lib in self.libraries for n in lib.names()]
        exprs = [e for lib in self.libraries for e in lib.to_sympy()]
        self._keep = _unique_columns(exprs)
        self._all_kept = len(self._keep) == len(names)
        self._kept_names = [names[j] for j in self._keep]
        self._kept_exprs = [exprs[j] for j in self._keep]

    def _transform(self, x: np.ndarray) -> np.ndarray:
        out = np.concatenate([lib._transform(x) for lib in self.libraries], axis=-1)
        return out if self._all_kept else out[..., self._keep]

    def _names(self) -> list[str]:
        return list(self._kept_names)

    def _exprs(self) -> list[sympy.Expr]:
        return list(self._kept_exprs)


class TensoredLibrary(AbstractLibrary):
    """Products ``a_i * b_j`` of every term of ``a`` with every term of ``b`` (``i`` outer).

    A product with the constant ``1`` is named after the other factor; products equal to an
    earlier one (``x y`` and ``y x``) are dropped.
    """

    def __init__(self, a: AbstractLibrary, b: AbstractLibrary) -> None:
        if not (isinstance(a, AbstractLibrary) and isinstance(b, AbstractLibrary)):
            raise ValueError(f"TensoredLibrary takes two libraries, got {a!r}, {b!r}")
        self.a, self.b = a, b

    def spec(self) -> str:
        return f"{_wrap(self.a, '*')}*{_wrap(self.b, '*', right=True)}"

    def _fit(self, state_names: tuple[str, ...]) -> None:
        self.a.fit(state_names)
        self.b.fit(state_names)
        names, exprs = [], []
        for na, ea in zip(self.a.names(), self.a.to_sympy()):
            for nb, eb in zip(self.b.names(), self.b.to_sympy()):
                names.append(nb if na == "1" else na if nb == "1" else f"{na} {nb}")
                exprs.append(ea * eb)
        self._keep = _unique_columns(exprs)
        self._kept_names = [names[j] for j in self._keep]
        self._kept_exprs = [exprs[j] for j in self._keep]

    def _transform(self, x: np.ndarray) -> np.ndarray:
        fa = self.a._transform(x)
        fb = self.b._transform(x)
        prod = (fa[..., :, None] * fb[..., None, :]).reshape(fa.shape[:-1] + (-1,))
        return prod[..., self._keep]

    def _names(self) -> list[str]:
        return list(self._kept_names)

    def _exprs(self) -> list[sympy.Expr]:
        return list(self._kept_exprs)


def _wrap(lib: AbstractLibrary, op: str, right: bool = False) -> str:
    """A child's spec, in parentheses where the grammar needs them."""
    spec = lib.spec()
    needs = isinstance(lib, (CustomLibrary, ConcatLibrary)) or (
        op == "*" and right and isinstance(lib, TensoredLibrary)
    )
    return f"({spec})" if needs else spec


# -- parsing ----------------------------------------------------------------------------------
_POLY = re.compile(r"poly(\d+)(-noconst)?")
_FOURIER = re.compile(r"fourier(\d+)")


def _bad_spec(spec: str, why: str) -> ValueError:
    forms = "; ".join(SPEC_FORMS)
    return ValueError(f"unknown library {spec!r} ({why}); valid forms: {forms}")


class _Parser:
    """Recursive descent: sum := product ('+' product)*; product := atom ('*' atom)*;
    atom := '(' sum ')' | 'custom:' <text to the end of the enclosing group> | name."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        """The next character, skipping whitespace."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> AbstractLibrary:
        lib = self.sum()
        if self.peek():
            raise _bad_spec(self.text, f"unexpected {self.text[self.pos :]!r}")
        return lib

    def sum(self) -> AbstractLibrary:
        parts = [self.product()]
        while self.peek() == "+":
            self.pos += 1
            parts.append(self.product())
        return parts[0] if len(parts) == 1 else ConcatLibrary(parts)

    def product(self) -> AbstractLibrary:
        lib = self.atom()
        while self.peek() == "*":
            self.pos += 1
            lib = TensoredLibrary(lib, self.atom())
        return lib

    def atom(self) -> AbstractLibrary:
        if self.peek() == "(":
            self.pos += 1
            lib = self.sum()
            if self.peek() != ")":
                raise _bad_spec(self.text, "unbalanced parentheses")
            self.pos += 1
            return lib
        if self.text.startswith("custom:", self.pos):
            start = self.pos + len("custom:")
            depth, end = 0, start
            while end < len(self.text):
                ch = self.text[end]
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    if depth == 0:
                        break
                    depth -= 1
                end += 1
            self.pos = end
            exprs = [e for e in self.text[start:end].split(";") if e.strip()]
            if not exprs:
                raise _bad_spec(self.text, "custom: needs at least one expression")
            return CustomLibrary(exprs)
        match = re.compile(r"[a-z]+\d*(-noconst)?").match(self.text, self.pos)
        if match is None:
            raise _bad_spec(self.text, f"cannot read a library at {self.text[self.pos :]!r}")
        word = match.group(0)
        self.pos = match.end()
        if m := _POLY.fullmatch(word):
            degree = int(m.group(1))
            if degree < 1:
                raise _bad_spec(self.text, "polynomial degree must be >= 1")
            return PolynomialLibrary(degree, include_constant=m.group(2) is None)
        if m := _FOURIER.fullmatch(word):
            n = int(m.group(1))
            if n < 1:
                raise _bad_spec(self.text, "need at least one Fourier frequency")
            return FourierLibrary(n)
        raise _bad_spec(self.text, f"{word!r} is not a library name")


def parse_library(spec: str) -> AbstractLibrary:
    """Build an (unfitted) library from its spec string.

    Examples: ``"poly3"``, ``"poly2-noconst"``, ``"fourier2"``, ``"poly2+fourier1"``,
    ``"poly1*fourier1"``, ``"custom:exp(-x);tanh({})"``, ``"poly2+(custom:x*sin(y))"``. A
    ``custom:`` part runs to the end of the spec or of its parenthesised group (its
    expressions may hold ``+`` and ``*``). Whitespace outside custom expressions is ignored.
    Unknown forms raise ``ValueError`` listing the valid ones.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise _bad_spec(str(spec), "empty")
    return _Parser(spec.strip()).parse()
