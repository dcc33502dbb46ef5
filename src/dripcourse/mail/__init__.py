"""One owed lesson becomes one finished message: rendering, stencils, text part, MIME, DKIM, VERP, signed links."""
