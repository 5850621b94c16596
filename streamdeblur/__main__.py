"""`python -m streamdeblur` is the same as the `streamdeblur` command."""

from streamdeblur.cli import main

if __name__ == "__main__":
    main()
