"""Install aimcsim: the library, with the Numba kernels mapped in as ``aimcsim.kernels``."""
from setuptools import find_packages, setup

setup(
    name="aimcsim",
    version="0.1.0",
    description="Analog in-memory computing (PCM crossbar) simulator for PyTorch models",
    python_requires=">=3.10",
    packages=find_packages(include=["aimcsim", "aimcsim.*"]) + ["aimcsim.kernels"],
    package_dir={"aimcsim.kernels": "kernels"},
    install_requires=[
        "numpy>=1.24",
        "numba>=0.58",
        "scipy>=1.10",
        "torch>=2.1",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "threadpoolctl>=3.0",
    ],
    extras_require={
        # Dask distributed: drift-study points on a local cluster or a real one
        "dist": ["distributed>=2024.1"],
        "test": ["pytest>=7", "hypothesis>=6", "distributed>=2024.1"],
        "bench": ["pytest>=7"],
    },
    entry_points={"console_scripts": ["aimcsim=aimcsim.__main__:main"]},
)
