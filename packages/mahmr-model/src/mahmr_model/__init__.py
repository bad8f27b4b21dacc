"""mahmr_model."""
