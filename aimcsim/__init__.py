"""aimcsim: analog in-memory computing crossbar simulator."""
__version__ = "0.1.0"
