"""simreg: similarity-regularized CNNs and their robustness (Attias, Pehlevan & Obeid 2024)."""

__version__ = "0.1.0"
