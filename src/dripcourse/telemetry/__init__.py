"""What an operator watches: the Prometheus metrics every layer counts (`metrics`), the folder their
counts share across processes (`folder`), and the log formats with secrets taken out (`logs`).

Ranked just above `config` in the layer contract: the backends, the engine and the operations all
count, so the definitions must sit below them all.
"""
