"""kernelnn: generalized neurons and neural operators for PyTorch."""
__version__ = "0.1.0"
