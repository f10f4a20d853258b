"""Input: file readers with one-line errors, rows, candidate tables and the LightningDataModules."""
