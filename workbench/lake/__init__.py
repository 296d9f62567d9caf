"""Lakes: export a workspace as partitioned Parquet, attach Parquet/Delta lakes read-only, detect on Spark."""

from workbench.lake.attach import attach, detach, list_lakes, verify
from workbench.lake.export import export_lake

__all__ = ["attach", "detach", "export_lake", "list_lakes", "verify"]
