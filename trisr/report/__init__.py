"""Shareable reports: ``trisr study`` folders (Pareto plot, verdicts, crops) and single run folders (search
curves, architecture diagram, latency, metrics, crops), each as ``report.md`` plus a self-contained
``report.html`` (images embedded, nothing fetched). Matplotlib is imported only when a figure is drawn."""

from trisr.report.crops import pick_box, write_crop_panels
from trisr.report.pareto import pareto_front, plot_pareto
from trisr.report.run_report import write_run_report
from trisr.report.study_report import write_study_report


def write_report(folder, out=None) -> dict:
    """A study folder (holds ``study.json``) or a run folder: write its report; returns the written paths."""
    from pathlib import Path

    from trisr.report.study_report import STUDY_FILE

    folder = Path(folder)
    if (folder / STUDY_FILE).exists():
        return write_study_report(folder, out)
    return write_run_report(folder, out)


__all__ = ["pareto_front", "plot_pareto", "pick_box", "write_crop_panels", "write_study_report", "write_run_report",
           "write_report"]
