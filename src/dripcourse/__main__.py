"""`python -m dripcourse` runs the command line."""

from dripcourse.cli.main import main

main()
