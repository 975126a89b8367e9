"""Data layer: loaders, validation, the demo shop generator, splits and features."""
