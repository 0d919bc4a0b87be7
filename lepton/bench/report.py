"""The benchmark table: one row per workload, one column per framework, Lepton's ratios, and a
footer that says how it was measured and why any cell is not a number.

    workload  NumPy  torch  jax    Lepton  Lepton/NumPy  Lepton/fastest  compile s
    W5        16.9   20.8   9.84   12.1    0.72          1.23            0.41

A cell is a median in ms (µs on the call-overhead row), or WRONG / ERROR / TIMEOUT / CRASH
(explained in the footer), or "-" when that framework did not run it. Under the table, a legend
names each workload in words (its `Workload.title`):

    W5    matmul 1024x1024 @ 1024x1024
"""
from __future__ import annotations

from dataclasses import dataclass

from .harness import Report
from .timing import Result

_STATUS_WORD = {"wrong": "WRONG", "error": "ERROR", "timeout": "TIMEOUT", "crash": "CRASH"}
# Frameworks whose prepare() is a real compile worth a footer line.
_COMPILERS = ("torch.compile", "jax", "onnxruntime")


def fmt_time(v: float) -> str:
    """Three significant figures, no exponent: 0.0912 -> '0.091', 201.4 -> '201'."""
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def columns(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(wd) if i else c.ljust(wd)
                               for i, (c, wd) in enumerate(zip(r, widths)))
                     for r in [header, *rows])


def _value(r: Result | None, unit: str) -> float | None:
    if r is None or r.status != "ok" or r.ms is None:
        return None
    return r.ms * 1e3 if unit == "us" else r.ms


def _cell(r: Result | None, unit: str) -> str:
    v = _value(r, unit)
    if v is not None:
        return fmt_time(v)
    return _STATUS_WORD.get(r.status, "-") if r is not None else "-"


@dataclass(frozen=True)
class Standing:
    """Lepton on one workload: its time (the row's unit), and its ratios when both sides ran."""
    lepton: float | None
    vs_numpy: float | None
    vs_fastest: float | None       # against the fastest of NumPy and the peers
    compile_s: float | None
    warm_s: float | None = None


def standing(report: Report, w) -> Standing:
    cells = {f.name: f.results.get(w.id) for f in report.frameworks}
    lep = _value(cells.get("Lepton"), w.unit)
    numpy = _value(cells.get("NumPy"), w.unit)
    others = [v for n, r in cells.items() if n != "Lepton"
              if (v := _value(r, w.unit)) is not None]
    comp = cells["Lepton"].compile_s if lep is not None else None
    warm = cells["Lepton"].warm_s if lep is not None else None
    return Standing(lep, lep / numpy if lep and numpy else None,
                    lep / min(others) if lep and others else None, comp, warm)


def rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of the table, as strings."""
    names = [f.name for f in report.frameworks]
    has_lepton = "Lepton" in names
    header = ["workload", *names]
    if has_lepton:
        header += ["Lepton/NumPy", "Lepton/fastest", "compile s", "warm ms"]
    out = []
    for w in report.workloads:
        label = w.id if w.unit == "ms" else f"{w.id} (µs)"
        cells = {f.name: f.results.get(w.id) for f in report.frameworks}
        row = [label, *(_cell(cells[n], w.unit) for n in names)]
        if has_lepton:
            st = standing(report, w)
            row += ["-" if v is None else f"{v:.2f}"
                    for v in (st.vs_numpy, st.vs_fastest, st.compile_s)]
            row.append("-" if st.warm_s is None else f"{st.warm_s * 1e3:.1f}")
        out.append(row)
    return header, out


def legend(report: Report) -> list[tuple[str, str]]:
    """(id, what it is in words) for every workload of the table, in table order."""
    return [(w.id, w.title) for w in report.workloads]


def footer(report: Report) -> list[str]:
    """How the numbers were taken, and every reason a cell is not a number."""
    lines = ["median time per call after warm-up"
             + (" (--quick: fewer samples, same shapes)" if report.quick else "")
             + "; ms, µs on the call row (x + 1 on f32[1])",
             "one thread: each framework in its own process, thread pools sized for one CPU "
             "(*_NUM_THREADS=1, LEPTON_NUM_THREADS=1, torch/ORT/XLA settings); results "
             "checked against a float64 reference before timing",
             "Lepton/fastest: against the fastest of NumPy and the peers in this run; "
             "compile s: Lepton's cold lp.compile (trace, passes, LLVM, JIT); warm ms: the "
             "same compile again, its code loaded from the on-disk cache"]
    lines += report.notes
    for f in report.frameworks:
        if f.note:
            lines.append(f"{f.name}: {f.note}")
    for f in report.frameworks:
        for w in report.workloads:
            r = f.results.get(w.id)
            if r is not None and r.status != "ok" and r.detail:
                word = _STATUS_WORD.get(r.status, r.status)
                lines.append(f"{w.id} {f.name} {word}: {r.detail}")
    lines += cpu_notes(report)
    for f in report.frameworks:
        times = [r.compile_s for r in f.results.values()
                 if r.status == "ok" and r.compile_s is not None and r.workload != "call"]
        if f.name in _COMPILERS and times:
            lines.append(f"{f.name} compile: {min(times):.3g}-{max(times):.3g} s per workload")
    versions = [f"{f.name} {f.version}" for f in report.frameworks if f.version]
    if versions:
        lines.append("versions: " + ", ".join(versions))
    return lines


# CPU seconds per wall second while timing: above MANY, the framework ran on more than one CPU;
# below BUSY, the process waited for a CPU (other load on the machine) and the cell is noisy.
MANY, BUSY = 1.3, 0.75


def cpu_notes(report: Report) -> list[str]:
    """Footer lines for cells that were not one thread on one otherwise idle CPU."""
    many, busy = [], []
    for f in report.frameworks:
        for w in report.workloads:
            r = f.results.get(w.id)
            share = r.cpu_per_wall if r is not None and r.status == "ok" else None
            if share is None:
                continue
            if share > MANY:
                many.append(f"{w.id} {f.name} ({share:.1f})")
            elif share < BUSY:
                busy.append(f"{w.id} {f.name} ({share:.2f})")
    lines = []
    if many:
        lines.append("more than one CPU busy while timed (CPU s per s): " + ", ".join(many))
    if len(busy) > 4:
        low = min(busy, key=lambda b: float(b.rsplit("(", 1)[1][:-1]))
        lines.append(f"machine busy: {len(busy)} cells got under {BUSY} CPU s per s (lowest "
                     f"{low}); their times are inflated, rerun on a quieter machine")
    elif busy:
        lines.append("machine busy, these cells waited for a CPU (CPU s per s): "
                     + ", ".join(busy))
    return lines


def format_table(report: Report, markdown: bool = False) -> str:
    """The table and its footer as text (aligned columns, or a Markdown table)."""
    header, body = rows(report)
    if markdown:
        text = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        text += ["| " + " | ".join(r) + " |" for r in body]
        text += ["", "| workload | what it is |", "|---|---|"]
        text += [f"| {wid} | {title} |" for wid, title in legend(report)]
        return "\n".join(text + [""] + [f"- {ln}" for ln in footer(report)])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(wd) if i == 0 else c.rjust(wd)
                         for i, (c, wd) in enumerate(zip(r, widths))).rstrip()
    text = [line(header), "-" * len(line(header)), *map(line, body), ""]
    names = legend(report)
    if names:
        wd = max(len(wid) for wid, _ in names)
        text += [f"{wid.ljust(wd)}  {title}" for wid, title in names] + [""]
    return "\n".join(text + [f"  {ln}" for ln in footer(report)])
