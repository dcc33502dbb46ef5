"""The command line: thin click shells over the operations in the package."""
