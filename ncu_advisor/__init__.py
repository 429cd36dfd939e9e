"""ncu-advisor: Nsight Compute metrics in, Triton tuning advice out."""

__version__ = "0.1.0"
