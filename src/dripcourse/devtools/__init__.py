"""For development and the demo: the capturing SMTP server, the demo, the local spam check."""
