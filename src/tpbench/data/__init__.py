"""Datasets as LightningDataModules holding tensors in memory (on the training device)."""
