"""``gpucal report``: rewrite OUT_DIR's QA report from its database and products."""


def _cmd_report(args):
    from ..pipeline.report import write_report

    report = write_report(args.out_dir, night=args.night, progress=True)
    print(f"wrote {report.text()}")
    for note in report.notes:
        print(f"  {note}")
    return 0


def add_command(sub):
    """Add ``report`` to the ``gpucal`` parser's subcommands."""
    p = sub.add_parser("report", help="write the QA report (report.html) of gpucal reduce's "
                                      "products",
                       description="Write OUT_DIR/report.html from OUT_DIR's results database "
                                   "and products, recomputing nothing: the nights' summaries, "
                                   "a picture of each master and mask, the trends of each "
                                   "night per filter, science thumbnails with their cosmic "
                                   "rays marked, and the tables of gpucal list. gpucal reduce "
                                   "writes it at the end of every run. Pictures need "
                                   "matplotlib: pip install \"gpucal[report]\".")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--night", metavar="NIGHT",
                   help="only rewrite this night's page (shell wildcards allowed); the index "
                        "is always rewritten")
    p.set_defaults(func=_cmd_report)
