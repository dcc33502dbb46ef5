"""The rules, free of I/O: when each lesson is owed, what input is valid, who may be mailed."""
