"""pure package."""
