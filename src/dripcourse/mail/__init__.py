"""One owed lesson becomes one finished message: rendering, stencils, the text part, MIME, DKIM,
VERP and signed links."""
