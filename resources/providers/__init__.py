"""One module per provider; everything they share lives in `resources.http`."""
