"""Build the compiled core ``autograd._core`` from ``src/_core.pyx``.

All metadata lives in ``pyproject.toml``; this file only declares the extension.
"""
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "autograd._core",
        ["src/_core.pyx"],
        extra_compile_args=["-O3"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        include_path=["src"],  # the declarations: src/autograd/_core.pxd
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
