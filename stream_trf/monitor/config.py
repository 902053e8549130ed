"""The monitor's configuration, which is also the monitoring section of the worker's settings:
each field that is a setting is declared here once, with its help and default."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..setting import setting
from .alerts import Thresholds


@dataclass(frozen=True)
class MonitorConfig:
    """Monitoring.

    Windows, the drift reference, the two-sample test on doc vectors and the consumer lag."""

    window_seconds: float = setting(60.0, "length of the monitor's tumbling windows in seconds")
    lag_interval: float = setting(
        5.0,
        "seconds between two readings of the input topic's consumer lag from the broker, for "
        "/metrics, the dashboard and the progress line (0: not read)",
    )
    reference_size: int = setting(
        500, "a model's first N documents are its drift reference when no reference file exists"
    )
    reference_file: str = setting(
        "",
        "reference made by `stream-trf reference`; when the file does not exist yet, the "
        "reference built from the stream is saved there",
    )
    alert_windows: int = setting(2, "a figure beyond its threshold for this many windows alerts")
    # 500 rather than 200: on the drift benchmark 200 gave 7 false embedding alerts in 5,000
    # stationary windows, 500 none; a test costs ~50 ms.
    max_per_side: int = setting(
        500,
        "doc vectors per side of the MMD two-sample test (kept per window and in the reference)",
        name="drift_sample_size",
    )
    permutations: int = setting(
        200,
        "permutations of the MMD two-sample test on doc vectors (its p-value's resolution)",
        name="drift_permutations",
    )
    thresholds: Thresholds = field(default_factory=Thresholds)
    # Not settings:
    reference_sample: int | None = (
        None  # vectors a stream-built reference keeps (None: max_per_side)
    )
    history_size: int = 240  # window records kept for the dashboard
    dedupe_size: int = 50_000  # sources remembered per worker to recognise duplicates

    @property
    def reference_vectors(self) -> int:
        """Doc vectors a reference built from the stream keeps."""
        return self.max_per_side if self.reference_sample is None else self.reference_sample

    def validate(self) -> None:
        if self.window_seconds <= 0 or self.reference_size < 1 or self.alert_windows < 1:
            raise ValueError(
                "window_seconds must be positive, reference_size and alert_windows at least 1"
            )
        if self.lag_interval < 0:
            raise ValueError(f"lag_interval must be 0 (off) or positive, got {self.lag_interval}")
        if self.permutations < 1:
            raise ValueError(f"drift_permutations must be at least 1, got {self.permutations}")
        if self.max_per_side < 2:
            raise ValueError(f"drift_sample_size must be at least 2, got {self.max_per_side}")
        self.thresholds.validate()
