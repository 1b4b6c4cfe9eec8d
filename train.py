"""Thin entry point: `python train.py --help`."""

if __name__ == "__main__":
    import _entry

    _entry.run("train_main")
