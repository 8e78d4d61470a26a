"""Training and test loss of several run folders on one plot, and a table of how they end.

    python benchmarks/compare_runs.py runs/digits-plain runs/digits-augmented --out curves.png
    python benchmarks/compare_runs.py runs/a runs/b --label "no --augment" --label "--augment"

For each run (a folder that ``tinyvae.train`` wrote) it reads ``metrics.jsonl`` and draws the
test loss per epoch (solid) and the training loss (dashed, the mean over each epoch's
batches, so on augmented images for an ``--augment`` run), then prints the last epoch's
losses, the mean test loss over the last ``--last`` epochs (one epoch's test loss moves by a
few tenths of a nat: the test pass draws z; a run shorter than that averages all its
epochs, and the table says over how many), and the best epoch. A mistake ends it with one
line, ``error: ...``, and exit status 2.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tinyvae
from tinyvae.errors import UserError  # noqa: E402
from tinyvae.tools.cli import run  # noqa: E402
from tinyvae.tools.files import refuse_link  # noqa: E402
from tinyvae.tools.flags import Parser, positive_int  # noqa: E402
from tinyvae.tools.run_folder import refuse_run_file  # noqa: E402

KEYS = ("epoch", "train_loss", "test_loss")


def read_metrics(run: Path) -> list:
    """The per-epoch rows of ``run/metrics.jsonl``; a UserError if it is missing or damaged."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"{path} not found: give folders that tinyvae.train wrote")
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None
    number = lambda v: type(v) in (int, float) and math.isfinite(v)
    if not rows or not all(
        isinstance(r, dict) and all(number(r.get(k)) for k in KEYS) for r in rows
    ):
        raise UserError(
            f"{path}: {'no epochs' if not rows else 'rows without epoch, train_loss and test_loss'}"
            ": give folders of runs that tinyvae.train wrote and trained for an epoch or more"
        )
    return rows


def summary(rows: list, last: int) -> dict:
    tail = rows[-last:]
    best = min(rows, key=lambda row: row["test_loss"])
    return {"epochs": len(rows), "train_loss": rows[-1]["train_loss"],
            "test_loss": rows[-1]["test_loss"],
            "mean_test_loss_last": statistics.mean(row["test_loss"] for row in tail),
            "mean_over": len(tail),
            "best_test_loss": best["test_loss"], "best_epoch": best["epoch"]}  # fmt: skip


def main(argv=None) -> int:
    parser = Parser(prog="python benchmarks/compare_runs.py", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--label", action="append", help="a name per run, in order")
    parser.add_argument(
        "--last", type=positive_int, default=100, help="epochs in the mean (default 100)"
    )
    parser.add_argument("--out", type=Path, help="write the plot here (PNG, SVG or PDF)")
    parser.add_argument("--title", default="test loss (solid) and training loss (dashed)")
    args = parser.parse_args(argv)
    labels = args.label or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        raise UserError(f"{len(args.runs)} run folder(s) but {len(labels)} --label: "
                        "give one --label per run, or none")  # fmt: skip
    histories = [read_metrics(run) for run in args.runs]
    from tinyvae.tools import plots  # checks the output's name before anything is drawn

    if args.out:
        if args.out.is_dir():
            raise UserError(
                f"--out {args.out} is a folder: give a file name, such as {args.out / 'curves.png'}"
            )
        plots.picture_format(args.out)
        refuse_link(args.out)
        refuse_run_file(args.out)
    fig = plots.Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    mean_header = f"mean test, last <= {args.last}"
    print(f"{'run':24} {'epochs':>6} {'train':>8} {'test':>8} {mean_header:>27} {'best':>14}")
    for rows, label in zip(histories, labels):
        epochs = [row["epoch"] for row in rows]
        line, *_ = ax.plot(epochs, [row["test_loss"] for row in rows], lw=1, label=label)
        ax.plot(epochs, [row["train_loss"] for row in rows], lw=1, ls="--", color=line.get_color())
        s = summary(rows, args.last)
        print(f"{label:24} {s['epochs']:6d} {s['train_loss']:8.3f} {s['test_loss']:8.3f} "
              f"{s['mean_test_loss_last']:15.3f} (of {s['mean_over']:>3d} ep) {s['best_test_loss']:8.3f} "
              f"(ep {s['best_epoch']})")  # fmt: skip
    ax.set(xlabel="epoch", ylabel="loss, nats per image", title=args.title)
    low = min(min(row["test_loss"], row["train_loss"]) for rows in histories for row in rows)
    tenth = max(rows[min(9, len(rows) - 1)]["test_loss"] for rows in histories)
    ax.set_ylim(low - 0.5, tenth + 0.5)  # from about the 10th epoch on: the end is what differs
    ax.grid(alpha=0.3)
    ax.legend()
    if args.out:
        plots.save_figure(fig, args.out, bbox_inches="tight")  # atomic; never through a link
        print(f"plot: {args.out}")
    else:
        print("no plot written: give --out FILE.png to have one")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
