"""SQL expressions a user writes (spec expectations, ``tables show --where``): checked, then
rendered from the checked tree.

An expression is parsed with sqlglot's Spark dialect (no Spark session needed, so a spec is
checked the moment it loads) and may hold only column references, literals, operators and
the pure functions in :data:`FUNCTIONS`. Anything else is refused with one line naming the
forbidden part: unknown function names (Spark's ``reflect`` and ``java_method``, UDFs),
subqueries, table or file relations (``text.`/etc/passwd```), qualified names, lambdas.

The engine never sees the text as written: it gets SQL rendered from the checked tree
(:func:`spark_sql`, :func:`datafusion_sql`), every identifier quoted and comments
dropped. So a difference between sqlglot's reading of the text and the engine's (string
escapes, nested comments) cannot smuggle in anything the check did not see.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

from kubricks.errors import KubricksError

if TYPE_CHECKING:
    from sqlglot import exp

DIALECT = "spark"

# Pure functions, by the name a user writes. Each name parses to one sqlglot class; only those
# classes are allowed, and the engine gets the function under sqlglot's canonical name.
FUNCTION_NAMES = (
    # numbers
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "power",
    "pow",
    "sign",
    "greatest",
    "least",
    "mod",
    "isnan",
    "nanvl",
    # missing values and conditions
    "coalesce",
    "nvl",
    "ifnull",
    "nullif",
    "if",
    # text
    "length",
    "char_length",
    "lower",
    "upper",
    "trim",
    "ltrim",
    "rtrim",
    "substring",
    "substr",
    "concat",
    "startswith",
    "endswith",
    "contains",
    "left",
    "right",
    "replace",
    "initcap",
    "regexp_like",
    # dates and times
    "year",
    "quarter",
    "month",
    "day",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "weekofyear",
    "hour",
    "minute",
    "second",
    "datediff",
    "months_between",
    "last_day",
    "to_date",
)


class ExpressionError(KubricksError):
    """A user's SQL expression is not a plain expression (or cannot be parsed)."""


def _sqlglot():
    """sqlglot, imported on first use: commands that load no expression do not pay for it."""
    import sqlglot

    return sqlglot


@lru_cache(maxsize=1)
def _allowed() -> tuple[frozenset[type], frozenset[type]]:
    """(operator and literal node classes, function classes) an expression may contain."""
    sqlglot = _sqlglot()
    exp = sqlglot.exp
    structure = frozenset(
        {
            exp.Column,
            exp.Identifier,
            exp.Literal,
            exp.Boolean,
            exp.Null,
            exp.Paren,
            exp.Neg,
            exp.Not,
            exp.And,
            exp.Or,
            exp.EQ,
            exp.NEQ,
            exp.GT,
            exp.GTE,
            exp.LT,
            exp.LTE,
            exp.NullSafeEQ,
            exp.NullSafeNEQ,
            exp.Is,
            exp.In,
            exp.Between,
            exp.Like,
            exp.ILike,
            exp.RegexpLike,
            exp.Escape,
            exp.Add,
            exp.Sub,
            exp.Mul,
            exp.Div,
            exp.Mod,
            exp.IntDiv,
            exp.DPipe,
            exp.Case,
            exp.If,
            exp.Cast,
            exp.TryCast,
            exp.DataType,
            exp.DataTypeParam,
        }
    )
    # every class a sample call parses to (``year(d)`` holds a to_date node, for one)
    functions = frozenset(
        type(node)
        for name in FUNCTION_NAMES
        for node in sqlglot.parse_one(_sample(name), read=DIALECT).walk()
        if not isinstance(node, exp.Column | exp.Identifier)
    )
    return structure, functions


def _sample(name: str) -> str:
    """A call of ``name`` that parses, to learn which sqlglot class the name maps to."""
    arity = {"round": 2, "power": 2, "pow": 2, "greatest": 2, "least": 2, "mod": 2}
    arity |= {"nanvl": 2, "coalesce": 2, "nvl": 2, "ifnull": 2, "nullif": 2, "if": 3}
    arity |= {"substring": 3, "substr": 3, "concat": 2, "startswith": 2, "endswith": 2}
    arity |= {"contains": 2, "left": 2, "right": 2, "replace": 3, "regexp_like": 2}
    arity |= {"datediff": 2, "months_between": 2}
    return f"{name}({', '.join(['x'] * arity.get(name, 1))})"


def _describe(node: exp.Expression) -> str:
    """The forbidden part, as a person reads it."""
    exp = _sqlglot().exp
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}() (not a known pure function)"
    if isinstance(node, exp.Subquery | exp.Select | exp.Exists | exp.Union):
        relations = [t.sql(dialect=DIALECT) for t in node.find_all(exp.Table)]
        reading = f" reading {', '.join(relations)}" if relations else ""
        return f"a subquery{reading}"
    if isinstance(node, exp.Table):
        return f"a table or file relation {node.sql(dialect=DIALECT)}"
    if isinstance(node, exp.Column):
        return f"the qualified name {node.sql(dialect=DIALECT)} (only plain column names)"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name().lower()}()"
    text = node.sql(dialect=DIALECT)
    return f"{text[:60]!r} ({type(node).__name__})"


@lru_cache(maxsize=512)
def check(text: str) -> exp.Expression:
    """The parsed expression, or ExpressionError naming the first forbidden part."""
    sqlglot = _sqlglot()
    exp = sqlglot.exp
    try:
        trees = [t for t in sqlglot.parse(text, read=DIALECT) if t is not None]
    except sqlglot.errors.SqlglotError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExpressionError(f"cannot be parsed as a SQL expression: {first}") from None
    if len(trees) != 1:
        raise ExpressionError("must be one SQL expression (no ';', nothing empty)")
    tree = trees[0]
    if "${" in tree.sql(dialect=DIALECT):
        # Spark substitutes ${name} with a configuration value before it parses anything
        raise ExpressionError("a ${...} variable reference is not allowed")
    structure, functions = _allowed()
    for node in tree.walk():
        if isinstance(node, exp.Column) and len(node.parts) > 1:
            raise ExpressionError(f"{_describe(node)} is not allowed")
        if isinstance(node, exp.TsOrDsToDate) and node.args.get("format") is not None:
            # rendered without its format, it would parse dates differently: say so instead
            raise ExpressionError("to_date() with a format is not allowed: use to_date(column)")
        if type(node) in structure or type(node) in functions:
            continue
        raise ExpressionError(
            f"{_describe(node)} is not allowed: only column names, literals, operators and"
            f" the functions {', '.join(FUNCTION_NAMES)}"
        )
    return tree


def columns(text: str) -> set[str]:
    """The column names an expression reads."""
    exp = _sqlglot().exp
    return {c.name for c in check(text).find_all(exp.Column)}


@lru_cache(maxsize=512)
def spark_sql(text: str) -> str:
    """The checked expression as Spark SQL: identifiers quoted, comments dropped."""
    return check(text).sql(dialect=DIALECT, identify=True, comments=False)


@lru_cache(maxsize=512)
def datafusion_sql(text: str) -> str:
    """The checked expression for DataFusion (the query engine of delta-rs), which reads
    double-quoted identifiers and Postgres-like SQL."""
    return check(text).sql(dialect=_datafusion(), identify=True, comments=False)


@lru_cache(maxsize=1)
def _datafusion() -> type:
    """Postgres' rendering, with DataFusion's names where the two differ."""
    from sqlglot import exp
    from sqlglot.dialects.postgres import Postgres

    def cast(self, node: exp.Expression) -> str:
        keyword = "TRY_CAST" if node.args.get("safe") else "CAST"
        return f"{keyword}({self.sql(node, 'this')} AS {self.sql(node, 'to')})"

    def date_part(part: str):
        return lambda self, node: f"date_part('{part}', {self.sql(node, 'this')})"

    class DataFusion(Postgres):
        # sqlglot binds Generator by plain assignment, which mypy does not take as a class
        class Generator(Postgres.Generator):  # type: ignore[misc, valid-type]
            TRANSFORMS: ClassVar[dict] = {
                **Postgres.Generator.TRANSFORMS,
                exp.TryCast: cast,
                exp.IsNan: lambda self, node: f"isnan({self.sql(node, 'this')})",
                exp.Hour: date_part("hour"),
                exp.Minute: date_part("minute"),
                exp.Second: date_part("second"),
            }

    return DataFusion
