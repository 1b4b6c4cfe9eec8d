"""Thin entry point: `python export.py --help`."""

if __name__ == "__main__":
    import _entry

    _entry.run("export_main")
