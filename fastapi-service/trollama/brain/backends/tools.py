"""The tools models may call, as plain functions and as strands-agents tools.

``calculate`` evaluates arithmetic by walking the syntax tree of the
expression: only numbers, ``+ - * / // % **`` and parentheses are accepted,
with bounds on the input length, the exponent and the size of every
intermediate number. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from strands import tool
from strands.tools.decorator import DecoratedFunctionTool

from trollama.brain.backends.base import ToolSpec

#: Longest expression ``calculate`` accepts, in characters.
MAX_EXPRESSION_CHARS = 200
#: Largest absolute exponent ``**`` accepts.
MAX_EXPONENT = 1000
#: Largest integer (in bits) any step of a calculation may produce.
MAX_INTEGER_BITS = 4096
#: Significant digits shown for a non-integer result.
RESULT_DIGITS = 12

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class CalculationError(ValueError):
    """The expression was refused; the message says why, for the model."""


def current_time() -> str:
    """The current date and time in UTC, in ISO 8601 format."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression such as ``(2 + 3) * 4 ** 2 / 7``.

    Raises :class:`CalculationError` for anything that is not plain
    arithmetic or that would be too large to compute."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CalculationError("not an arithmetic expression") from exc
    try:
        return _format(_evaluate(tree.body))
    except ZeroDivisionError as exc:
        raise CalculationError("division by zero") from exc
    except (OverflowError, RecursionError, MemoryError) as exc:
        raise CalculationError("result too large") from exc


def _evaluate(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant) and _is_number(node.value):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _bounded(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    raise CalculationError("only numbers, + - * / // % ** and parentheses are allowed")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculationError(f"exponent larger than {MAX_EXPONENT}")
    whole = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if whole and int(base).bit_length() * exponent > MAX_INTEGER_BITS:
        raise CalculationError("result too large")


def _bounded(value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalculationError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INTEGER_BITS:
        raise CalculationError("result too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculationError("result too large")
    return value


def _format(value: Number) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.{RESULT_DIGITS}g}"
    return str(value)


@tool(name="current_time")
def current_time_tool() -> str:
    """Get the current date and time in UTC (ISO 8601)."""
    return current_time()


@tool(name="calculate")
def calculate_tool(expression: str) -> str:
    """Evaluate an arithmetic expression exactly.

    Args:
        expression: Numbers with + - * / // % ** and parentheses, e.g. "(2 + 3) * 4".
    """
    return calculate(expression)


#: The tools models may be offered, by name.
TOOLS: dict[str, DecoratedFunctionTool[..., str]] = {
    "current_time": current_time_tool,
    "calculate": calculate_tool,
}


def tool_spec(name: str) -> ToolSpec:
    """The :class:`ToolSpec` of a registered tool (``KeyError`` if unknown)."""
    spec = TOOLS[name].tool_spec
    return ToolSpec(
        name=spec["name"],
        description=spec["description"],
        parameters=dict(spec["inputSchema"]["json"]),
    )
