"""dfss: fast CPU attention kernels (dense flash-style and N:M sparse) for PyTorch.

    import dfss
    out = dfss.attention(q, k, v, attn_mask=None, is_causal=False, scale=None,
                         enable_gqa=False, sparsity="2:4", window=None)

`import dfss.hf` registers attn_implementation="dfss" with Hugging Face transformers.
See docs/python.md.
"""

from . import _C
from ._ops import attention, attention_bwd, attention_fwd

__version__ = _C.__version__
__all__ = ["attention", "attention_fwd", "attention_bwd", "isa", "kernel_name"]


def isa() -> str:
    """The instruction set the kernels run with on this CPU (e.g. "avx512")."""
    return _C.isa()


def kernel_name(dtype: str = "f32", sparsity: str = "dense") -> str:
    """Name of the fused kernel dfss.attention runs for a dtype ("f32", "bf16") and sparsity."""
    return _C.kernel_name(dtype, sparsity)
