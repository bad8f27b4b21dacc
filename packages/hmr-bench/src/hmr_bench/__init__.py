"""hmr_bench."""
