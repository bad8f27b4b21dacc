"""dto_humans_hub."""
