"""Learning rules: one LightningModule per rule, all on the thin base in `base.py`."""
