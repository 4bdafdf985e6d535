"""Vision: photos to faces, regions and feature rows (nothing here knows of labels or products)."""
