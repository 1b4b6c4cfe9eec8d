"""Thin entry point: `python search.py --help`."""

if __name__ == "__main__":
    import _entry

    _entry.run("search_main")
