"""``python -m deltaglider``: the ``deltaglider`` command line."""

from deltaglider.cli import main

if __name__ == "__main__":
    main()
