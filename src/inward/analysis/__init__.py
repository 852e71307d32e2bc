"""Analysis: accuracy, baselines, significance tests and calibration of predictions."""

from inward.analysis.stats import (
    AccuracySummary,
    CalibrationBin,
    PairedTest,
    accuracy_summary,
    bootstrap_interval,
    calibration_mad,
    entropy_bits,
    equal_frequency_bins,
    mcnemar_test,
    mode_baseline,
    two_proportion_ztest,
)

__all__ = [
    "AccuracySummary",
    "CalibrationBin",
    "PairedTest",
    "accuracy_summary",
    "bootstrap_interval",
    "calibration_mad",
    "entropy_bits",
    "equal_frequency_bins",
    "mcnemar_test",
    "mode_baseline",
    "two_proportion_ztest",
]
