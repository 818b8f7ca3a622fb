"""User SQL expressions: forbidden forms are refused at spec load, allowed ones mean in Spark
exactly what the user wrote."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from kubricks import expressions
from kubricks.errors import SpecError
from kubricks.expressions import ExpressionError
from kubricks.spec import BUNDLED_USECASES, load_spec

REPO = Path(__file__).resolve().parents[2]

# Each form a security review reproduced or named, and the part the error must name.
FORBIDDEN = {
    "reflect('org.apache.hadoop.fs.FileUtil', 'chmod', '/tmp/x', '777') IS NOT NULL": (
        "function reflect()"
    ),
    "(SELECT count(*) FROM text.`/etc/passwd`) > 0": "a subquery reading text.`/etc/passwd`",
    "java_method('java.lang.Runtime', 'getRuntime') IS NULL": "function java_method()",
    "churn_score_udf(Age) > 0.5": "function churn_score_udf()",
    "Age IN (SELECT Age FROM parquet.`/data/x.parquet`)": "a subquery reading parquet.",
    "EXISTS (SELECT 1)": "a subquery",
    "Age > 1; DROP TABLE silver": "one SQL expression",
    "transform(array(Age), x -> reflect('a', 'b', x)) IS NOT NULL": "transform",
    "other.Age > 1": "the qualified name other.Age",
    "rand() > 0.5": "function rand()",
    "Surname = '${spark.hadoop.fs.s3a.secret.key}'": "a ${...} variable reference",
}


def spec_with(tmp_path: Path, expr: str, name: str = "evil") -> Path:
    raw = yaml.safe_load((BUNDLED_USECASES / "churn.yaml").read_text())
    raw["expectations"] = [*raw["expectations"], {"name": name, "expr": expr}]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("expr", sorted(FORBIDDEN))
def test_each_forbidden_form_is_refused_at_spec_load_in_one_line(tmp_path: Path, expr: str) -> None:
    path = spec_with(tmp_path, expr)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: expectations.")
    assert "expectation 'evil'" in message  # names the expectation
    assert FORBIDDEN[expr] in message, message  # and the forbidden part


def test_every_bundled_and_test_spec_still_loads() -> None:
    """Every expectation the project ships or tests with passes the guard."""
    paths = sorted(BUNDLED_USECASES.glob("*.yaml")) + sorted((REPO / "tests").rglob("*.yaml"))
    specs = [p for p in paths if "expectations:" in p.read_text()]
    assert BUNDLED_USECASES / "churn.yaml" in specs
    for path in specs:
        for expectation in load_spec(path).expectations:
            assert expressions.spark_sql(expectation.expr)


def test_the_text_spark_gets_is_rendered_from_the_checked_tree() -> None:
    # a comment and an odd column name: the comment is dropped, the name stays one identifier
    assert expressions.spark_sql("`my col` >= 0 -- note") == "`my col` >= 0"
    assert expressions.spark_sql("`a``b` = 'it\\'s'") == "`a``b` = 'it\\'s'"
    assert expressions.columns("Age BETWEEN 18 AND 110 AND `Exited` IN (0, 1)") == {
        "Age",
        "Exited",
    }


def test_parse_errors_and_dated_formats_are_one_line() -> None:
    with pytest.raises(ExpressionError, match="cannot be parsed"):
        expressions.check("Age >")
    with pytest.raises(ExpressionError, match="one SQL expression"):
        expressions.check("")
    with pytest.raises(ExpressionError, match="to_date\\(\\) with a format"):
        expressions.check("to_date(d, 'dd/MM/yyyy') IS NOT NULL")


# One use of every allowed function and operator, over the columns of ``typed_rows``.
ALLOWED = [
    "n BETWEEN 1 AND 3",
    "n IN (1, 2) OR s IS NULL",
    "NOT (x > 1.5) AND n <> 2",
    "n <=> NULL",
    "s LIKE 'a%' OR s ILIKE 'B%'",
    "s RLIKE '^[a-z]+$'",
    "regexp_like(s, 'b')",
    "x + n * 2 - 1 > n / 2",
    "n % 2 = 0",
    "mod(n, 3) = 1",
    "n div 2 = 1",
    "-x < 0",
    "CASE WHEN n > 1 THEN 'big' ELSE 'small' END = 'big'",
    "if(n > 1, 1, 0) = 1",
    "CAST(s AS STRING) = 'ab'",
    "try_cast(s AS INT) IS NULL",
    "CAST(x AS DECIMAL(10, 2)) > 1",
    "d > DATE '2024-03-01'",
    "t < TIMESTAMP '2024-06-01 00:00:00'",
    "abs(x) > 1 AND ceil(x) > 1 AND floor(x) >= 1",
    "round(x, 1) = 1.5",
    "sqrt(abs(x)) > 1 AND exp(0) = 1 AND ln(exp(1)) = 1",
    "power(n, 2) > 3 AND pow(n, 2) > 3",
    "sign(x) = 1",
    "greatest(n, 2) = 2 AND least(n, 2) = 1",
    "isnan(x) OR nanvl(x, 0) > 1",
    "coalesce(s, 'none') = 'none'",
    "nvl(s, 'none') = 'ab' OR ifnull(s, '') = ''",
    "nullif(n, 1) IS NULL",
    "length(s) = 2 AND char_length(s) = 2",
    "lower(s) = upper(s) OR initcap(s) = 'Ab'",
    "trim(s) = s AND ltrim(s) = s AND rtrim(s) = s",
    "substring(s, 1, 1) = 'a' OR substr(s, 2, 1) = 'c'",
    "concat(s, '!') = 'ab!' OR s || '?' = 'cd?'",
    "startswith(s, 'a') OR endswith(s, 'd') OR contains(s, 'x')",
    "left(s, 1) = 'a' OR right(s, 1) = 'd'",
    "replace(s, 'a', 'z') = 'zb'",
    "year(d) = 2024 AND quarter(d) >= 1 AND month(d) > 1",
    "day(d) = 15 OR dayofmonth(d) = 1 OR dayofweek(d) = 2 OR dayofyear(d) > 60",
    "weekofyear(d) > 5",
    "hour(t) = 10 OR minute(t) = 30 OR second(t) = 0",
    "datediff(d, DATE '2024-01-01') > 45",
    "months_between(d, DATE '2024-01-01') > 1",
    "last_day(d) = DATE '2024-03-31'",
    "to_date(ds) = d",
]


def test_every_allowed_function_is_listed_by_name_and_exercised() -> None:
    used = {
        name
        for name in expressions.FUNCTION_NAMES
        if any(f"{name}(" in expr.replace(" (", "(") for expr in ALLOWED)
    }
    assert used == set(expressions.FUNCTION_NAMES)


@pytest.fixture(scope="module")
def typed_rows(spark: SparkSession):
    rows = [
        (1, 1.5, "ab", date(2024, 3, 15), datetime(2024, 5, 1, 10, 30), "2024-03-15"),
        (2, -2.25, "cd", date(2024, 1, 1), datetime(2024, 7, 1, 0, 0), "2024-01-01"),
        (3, float("nan"), None, date(2024, 2, 29), datetime(2024, 1, 1, 23, 59), "2024-02-29"),
        (None, None, "", None, None, None),
    ]
    return spark.createDataFrame(
        rows, "n int, x double, s string, d date, t timestamp, ds string"
    ).cache()


def test_spark_evaluates_the_rendered_text_exactly_as_the_written_one(typed_rows) -> None:
    columns = []
    for i, expr in enumerate(ALLOWED):
        rendered = expressions.spark_sql(expr)
        columns += [F.expr(expr).alias(f"w{i}"), F.expr(rendered).alias(f"r{i}")]
    rows = typed_rows.select(*columns).collect()  # one Spark job for every expression
    for i, expr in enumerate(ALLOWED):
        written = [row[f"w{i}"] for row in rows]
        assert written == [row[f"r{i}"] for row in rows], (expr, expressions.spark_sql(expr))
        assert any(value is not None for value in written), expr  # the rows exercise it
