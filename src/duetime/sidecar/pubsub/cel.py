"""CEL routing rules evaluated by celpy: the implementation behind
`duetime.sidecar.pubsub.rules` (whose docstring says what rules do and cost)."""

from __future__ import annotations

import logging
import operator
import sys
from collections.abc import Callable, Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, CELFunction, CELSyntaxError, base_functions

from duetime.sidecar.pubsub.rules import Predicate, RuleError

log = logging.getLogger(__name__)

_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


def _plain(number: Any) -> int | float:
    return float(number) if isinstance(number, celtypes.DoubleType) else int(number)


def _relation(name: str, op: Callable[[Any, Any], bool]) -> CELFunction:
    """celpy's `name` operator as cel-go has it: numbers compare across int, uint and
    double; other values of different types are unequal, and not ordered (an error)."""
    base = base_functions[name]

    def relation(left: Any, right: Any) -> Any:
        if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
            return celtypes.BoolType(op(_plain(left), _plain(right)))
        errors = isinstance(left, CELEvalError) or isinstance(right, CELEvalError)
        if type(left) is not type(right) and not errors:
            if name in ("_==_", "_!=_"):
                return celtypes.BoolType(name == "_!=_")
            raise TypeError(
                f"no such overload: {type(left).__name__} {name} {type(right).__name__}"
            )
        return base(left, right)  # an error operand stays the error

    return relation


_RELATIONS: dict[str, CELFunction] = {
    name: _relation(name, op)
    for name, op in (
        ("_==_", operator.eq),
        ("_!=_", operator.ne),
        ("_<_", operator.lt),
        ("_<=_", operator.le),
        ("_>_", operator.gt),
        ("_>=_", operator.ge),
    )
}


def _environment() -> celpy.Environment:
    # celpy.Environment() sets the recursion limit to 2500; never let it lower ours.
    limit = sys.getrecursionlimit()
    env = celpy.Environment()
    sys.setrecursionlimit(max(limit, sys.getrecursionlimit()))
    return env


def compile_cel(match: str) -> Predicate:
    """`rules.compile_rule`: the predicate for `match`, evaluated by celpy."""
    if not match.strip():
        raise RuleError("an empty match expression")
    env = _environment()
    try:
        program = env.program(env.compile(match), functions=_RELATIONS)
    except (CELParseError, CELSyntaxError) as exc:
        raise RuleError(f"cannot parse {match!r}: {exc}") from None

    def predicate(event: Mapping[str, Any]) -> bool:
        try:
            document = event if isinstance(event, dict) else dict(event)
            result = program.evaluate({"event": json_to_cel(document)})
        except CELEvalError:
            return False
        except Exception as exc:  # a celpy defect or a value JSON does not have
            log.warning("routing rule %r failed on an event: %r", match, exc)
            return False
        return isinstance(result, bool | celtypes.BoolType) and bool(result)

    return predicate
