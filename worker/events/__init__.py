"""The event formats: decoding inbound messages, encoding what we emit, ordering, schemas."""
