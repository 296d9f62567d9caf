"""A local (or given) Spark session and the lake's pinned files as a Spark DataFrame.

Spark is optional (`pip install -e ".[spark]"`); everything here imports pyspark lazily. The session is
shared per process (JVM start-up costs seconds): small driver memory, few shuffle partitions, UTC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench import settings
from workbench.errors import WorkbenchError

_SESSION: dict[str, Any] = {}
EPOCH_2000_01_03_US = 946_857_600_000_000  # DuckDB time_bucket's default origin for minute widths (a Monday)


def session(master: str | None = None, memory: str | None = None) -> Any:
    """The process's Spark session (settings spark_master, spark_memory: local[2], 1g)."""
    if "spark" in _SESSION:
        return _SESSION["spark"]
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise WorkbenchError("the Spark engine needs pyspark: pip install -e \".[spark]\"") from exc
    master = master or settings.get("spark_master")
    memory = memory or settings.get("spark_memory")
    spark = (SparkSession.builder.master(master).appName("workbench-detect")
             .config("spark.driver.memory", memory)
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
             .config("spark.sql.parquet.int96RebaseModeInRead", "CORRECTED")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    _SESSION["spark"] = spark
    return spark


def stop() -> None:
    """Stop the shared session (tests and benchmarks call it at the end)."""
    spark = _SESSION.pop("spark", None)
    if spark is not None:
        spark.stop()


def decisions(spark: Any, base: Path, files: list[Path]) -> Any:
    """The pinned Parquet files as a DataFrame (hive partition columns as strings, us = ts in microseconds)."""
    from pyspark.sql import functions as F

    if not files:
        raise WorkbenchError("the lake has no files")
    df = spark.read.option("basePath", str(base)).parquet(*[str(f) for f in files])
    return df.withColumn("us", F.unix_micros("ts"))
