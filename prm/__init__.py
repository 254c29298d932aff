"""prm: train and use process-supervision reward models (PRMs) on modest hardware."""

__version__ = "0.1.0"
