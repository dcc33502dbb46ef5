"""The operations every shell calls: subscribe, confirm, pause, import, queue, forget, bounces,
reports and timelines."""
