"""Raw patient data: the feature schema, reading and cleaning, splits, and the GX data contract."""
