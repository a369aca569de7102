"""torch.library integration, torch.compile, threads, concurrency and error reporting."""

import threading

import pytest
import torch

import dfss
from conftest import assert_close, make_qkv, reference


def fwd_args(requires_grad=False, key_padding=False, score_mask=False):
    q, k, v = make_qkv(2, 4, 2, 5, 9, 32, seed=1, requires_grad=requires_grad)
    kp = torch.zeros(2, 9).index_fill_(1, torch.tensor([7, 8]), float("-inf")) \
        if key_padding else None
    sm = torch.randn(1, 1, 5, 9).expand(2, 4, 5, 9) if score_mask else None
    return (q, k, v, kp, sm, None, True, 0, "dense")


@pytest.mark.parametrize("masks", ["none", "key_padding"])
def test_opcheck_forward(masks):
    torch.library.opcheck(torch.ops.dfss.attention_fwd.default,
                          fwd_args(key_padding=masks == "key_padding"))


def test_opcheck_forward_score_mask():
    torch.library.opcheck(torch.ops.dfss.attention_fwd.default, fwd_args(score_mask=True))


def test_opcheck_forward_with_autograd():
    torch.library.opcheck(torch.ops.dfss.attention_fwd.default, fwd_args(requires_grad=True))


def test_opcheck_backward():
    q, k, v, kp, sm, scale, causal, window, sparsity = fwd_args(key_padding=True)
    out, lse = torch.ops.dfss.attention_fwd(q, k, v, kp, sm, scale, causal, window, sparsity)
    d_out = torch.randn_like(out)
    torch.library.opcheck(torch.ops.dfss.attention_bwd.default,
                          (q, k, v, out, d_out, lse, kp, sm, scale, causal, window, sparsity))


def test_eager_call_without_grad_skips_the_dispatch_with_the_same_bits():
    q, k, v, kp, sm, scale, causal, window, sparsity = fwd_args(key_padding=True)
    mask = torch.ones(2, 1, 1, 9, dtype=torch.bool)
    mask[..., 7:] = False  # kp's keys
    with torch.no_grad():
        assert dfss._ops._plain_eager_call(q, k, v)
        direct = dfss.attention(q, k, v, attn_mask=mask, is_causal=True, enable_gqa=True,
                                return_lse=True)
        through_op = torch.ops.dfss.attention_fwd(q, k, v, kp, sm, scale, causal, window, sparsity)
    for got, want in zip(direct, through_op):
        assert torch.equal(got, want)


def test_calls_that_can_be_observed_go_through_the_op():
    from torch.profiler import ProfilerActivity, profile
    from torch.utils._python_dispatch import TorchDispatchMode

    q, k, v = make_qkv(1, 2, 2, 3, 5, 16, seed=2)
    assert dfss._ops._plain_eager_call(q, k, v)
    assert not dfss._ops._plain_eager_call(q.requires_grad_(), k, v)  # autograd records it
    with torch.no_grad():
        assert dfss._ops._plain_eager_call(q, k, v)  # nothing to record
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            dfss.attention(q, k, v)
        assert any(e.key == "dfss::attention_fwd" for e in prof.key_averages())

        class Seen(TorchDispatchMode):
            ops = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                Seen.ops.append(str(func))
                return func(*args, **(kwargs or {}))

        with Seen():
            dfss.attention(q, k, v)
        assert any("dfss.attention_fwd" in op for op in Seen.ops)


class TinyAttention(torch.nn.Module):
    def __init__(self, width=32, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(width, 3 * width)

    def forward(self, x, mask):
        b, l, w = x.shape
        q, k, v = self.qkv(x).view(b, l, 3, self.heads, w // self.heads).unbind(2)
        out = dfss.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                             attn_mask=mask, is_causal=True, sparsity="2:4")
        return out.transpose(1, 2).reshape(b, l, w)


def _compile_inputs():
    torch.manual_seed(0)
    module = TinyAttention()
    x = torch.randn(2, 8, 32)
    mask = torch.ones(2, 1, 1, 8, dtype=torch.bool)
    mask[1, ..., :2] = False
    return module, x, mask


def test_torch_compile_forward():
    module, x, mask = _compile_inputs()
    compiled = torch.compile(module, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x, mask), module(x, mask), atol=1e-6, rtol=1e-6)


def test_torch_compile_backward():
    module, x, mask = _compile_inputs()
    compiled = torch.compile(module, fullgraph=True)
    compiled(x, mask).square().sum().backward()
    got = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    module(x, mask).square().sum().backward()
    for g, e in zip(got, (p.grad for p in module.parameters())):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_thread_count_does_not_change_results(restore_threads):
    q, k, v = make_qkv(2, 8, 2, 67, 131, 64, seed=3)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        results.append([dfss.attention(q, k, v, is_causal=True, enable_gqa=True, sparsity=s)
                        for s in ("dense", "2:4")])
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_thread_count_does_not_change_gradients(restore_threads):
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        q, k, v = make_qkv(2, 4, 2, 33, 47, 64, seed=4, requires_grad=True)
        dfss.attention(q, k, v, is_causal=True, enable_gqa=True).square().sum().backward()
        results.append((q.grad, k.grad, v.grad))
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_concurrent_python_threads_match_serial():
    cases = [make_qkv(2, 4, 2, 20 + i, 40 + 3 * i, 64, seed=i) for i in range(6)]
    serial = [dfss.attention(*c, is_causal=True, enable_gqa=True,
                             sparsity="2:4" if i % 2 else None) for i, c in enumerate(cases)]
    results = [[None] * len(cases) for _ in range(4)]
    errors = []

    def work(worker):
        try:
            for _ in range(3):
                for i, c in enumerate(cases):
                    results[worker][i] = dfss.attention(*c, is_causal=True, enable_gqa=True,
                                                        sparsity="2:4" if i % 2 else None)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for worker in results:
        for got, expected in zip(worker, serial):
            assert torch.equal(got, expected)


# ---- errors: type of exception and the argument named in the message --------------------


def _qkv():
    return make_qkv(1, 2, 2, 3, 4, 8)


@pytest.mark.parametrize("case,exception,pattern", [
    ("query_not_tensor", TypeError, "query"),
    ("meta_tensor", RuntimeError, "CPU only: key is on meta"),
    ("float16", TypeError, "query: expected dtype"),
    ("dtype_mismatch", TypeError, "value: expected the dtype of query"),
    ("rank", ValueError, "query: expected a 4-D tensor"),
    ("batch_mismatch", ValueError, "key: expected shape"),
    ("value_length", ValueError, "value: expected shape"),
    ("gqa_not_enabled", ValueError, "enable_gqa"),
    ("gqa_not_dividing", ValueError, "key: expected a number of heads that divides"),
    ("head_dim_too_large", ValueError, "q: expected head dimension"),
    ("bad_sparsity", ValueError, "sparsity"),
    ("sparsity_type", TypeError, "sparsity"),
    ("mask_shape", ValueError, r"attn_mask: expected a shape broadcastable to \[B, Hq, Lq, Lk\]"),
    ("mask_rank", ValueError, "attn_mask"),
    ("mask_dtype", TypeError, "attn_mask"),
    ("mask_meta", RuntimeError, "CPU only: attn_mask is on meta"),
    ("window", ValueError, "window"),
    ("window_type", TypeError, "window"),
    ("scale", ValueError, "scale"),
    ("dropout", ValueError, "dropout_p"),
    ("is_causal_type", TypeError, "is_causal"),
])
def test_errors(case, exception, pattern):
    q, k, v = _qkv()
    kwargs = {}
    if case == "query_not_tensor":
        q = q.numpy()
    elif case == "meta_tensor":
        k = k.to("meta")
    elif case == "float16":
        q, k, v = q.half(), k.half(), v.half()
    elif case == "dtype_mismatch":
        v = v.bfloat16()
    elif case == "rank":
        q = q[0]
    elif case == "batch_mismatch":
        k = torch.cat([k, k])
    elif case == "value_length":
        v = v[:, :, :3]
    elif case == "gqa_not_enabled":
        k, v = k[:, :1], v[:, :1]
    elif case == "gqa_not_dividing":
        q = torch.randn(1, 3, 3, 8)
        kwargs["enable_gqa"] = True
    elif case == "head_dim_too_large":
        q, k, v = make_qkv(1, 2, 2, 3, 4, 264)
    elif case == "bad_sparsity":
        kwargs["sparsity"] = "4:2"
    elif case == "sparsity_type":
        kwargs["sparsity"] = 2
    elif case == "mask_shape":
        kwargs["attn_mask"] = torch.ones(3, 5, dtype=torch.bool)
    elif case == "mask_rank":
        kwargs["attn_mask"] = torch.ones(1, 1, 1, 3, 4, dtype=torch.bool)
    elif case == "mask_dtype":
        kwargs["attn_mask"] = torch.ones(3, 4, dtype=torch.int32)
    elif case == "mask_meta":
        kwargs["attn_mask"] = torch.ones(3, 4, device="meta")
    elif case == "window":
        kwargs["window"] = -1
    elif case == "window_type":
        kwargs["window"] = 2.5
    elif case == "scale":
        kwargs["scale"] = float("nan")
    elif case == "dropout":
        kwargs["dropout_p"] = 0.1
    elif case == "is_causal_type":
        kwargs["is_causal"] = "yes"
    with pytest.raises(exception, match=pattern):
        dfss.attention(q, k, v, **kwargs)


def test_cuda_tensor_message():
    # Without a GPU, the message is checked on the validation function itself.
    from dfss._ops import _check_tensor

    t = torch.empty(0, device="meta")
    with pytest.raises(RuntimeError, match=r"dfss.attention is CPU only: q is on meta"):
        _check_tensor(t, "q")


def test_cpp_errors_map_to_python_exceptions():
    q, k, v = _qkv()
    spec = dfss._ops._spec
    out = torch.empty(1, 2, 3, 8)
    with pytest.raises(ValueError, match="sparsity"):
        dfss._C.parse_pattern("9:9")
    # A C++ dfss::InvalidArgument (negative window) becomes ValueError naming the option.
    with pytest.raises(ValueError, match="options.window"):
        dfss._C.forward(spec(q), spec(k), spec(v), spec(out), 0, -1, None, None, False, -1, 0, 1,
                        "dense", "fused")
    # Out overlapping an input is refused before anything is written.
    with pytest.raises(ValueError, match="out"):
        dfss._C.forward(spec(q), spec(k), spec(v), spec(q), 0, -1, None, None, False, 0, 0, 1,
                        "dense", "fused")


@pytest.mark.parametrize("text", ["dense", "2:4", "1:2", "7:8", "02:4", "4:2", "0:4", "2:9",
                                  "2:", ":4", "2:4 ", " 2:4", "+2:4", "-1:4", "2:4:8", "",
                                  "Dense", "2/4", "1:1", "3:8", "topk:1", "topk:256", "topk:0",
                                  "topk:-4", "topk:+4", "topk:007", "topk:4:block=4", "topk:",
                                  "topk", "dsa:256", "dsa:24", "dsa:7", "dsa:256:block=64",
                                  "dsa:256:block=256", "dsa:48:block=32", "dsa:64:block=3",
                                  "dsa:64:block=", "dsa:64:blk=8", "dsa:64,block=8",
                                  "dsa:99999999999999999999", "dsa:9223372036854775807",
                                  "dsa:64:block=16:x", "top:4"])
def test_python_sparsity_parser_agrees_with_cpp(text):
    from dfss._ops import _normalize_sparsity

    try:
        expected = dfss._C.parse_pattern(text)
    except ValueError as e:
        with pytest.raises(ValueError) as got:
            _normalize_sparsity(text)
        assert str(got.value) == str(e)
    else:
        assert _normalize_sparsity(text) == expected
