"""The HTTP side: public pages for recipients and an operator API, thin shells over the operations."""
