"""Sending what is owed: the ledger and its claim, dispatch, outcomes, the scheduler."""
