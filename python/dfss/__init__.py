"""dfss: fast CPU attention kernels (dense flash-style, N:M, top-k and DSA sparse) for PyTorch.

    import dfss
    out = dfss.attention(q, k, v, attn_mask=None, is_causal=False, scale=None,
                         enable_gqa=False, sparsity="2:4", window=None)

`import dfss.hf` registers attn_implementation="dfss" with Hugging Face transformers.
See docs/python.md.
"""

from . import _C
from ._ops import attention, attention_bwd, attention_fwd, selected_keys

__version__ = _C.__version__
__all__ = ["attention", "attention_fwd", "attention_bwd", "selected_keys", "isa", "kernel_name",
           "measure_peak_gflops"]


def isa() -> str:
    """The instruction set the kernels run with on this CPU (e.g. "avx512")."""
    return _C.isa()


def kernel_name(dtype: str = "f32", sparsity: str = "dense") -> str:
    """Name of the fused kernel dfss.attention runs for a dtype ("f32", "bf16") and sparsity."""
    return _C.kernel_name(dtype, sparsity)


def measure_peak_gflops(threads: int = 0, bf16: bool = False) -> float:
    """The fp32 (or bf16) multiply-add rate of this CPU in GFLOP/s on `threads` threads (0: all),
    measured by a register-only loop: the "100 %" that dfss benchmarks compare against."""
    return _C.measure_peak_gflops(threads, bf16)
