"""DTO core."""
