#include "model/linear.h"

#include <mutex>
#include <unordered_map>
#include <utility>

#include "model/memory_guard.h"
#include "model/thread_count_scope.h"

namespace dfss::model {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

// Guards build_onednn_gemm_kernels(). Not std::call_once: an exception leaving it unwinds
// through pthread_once, which needs memory to load the unwinder and aborts without it.
std::mutex gemm_kernels_mutex;
bool gemm_kernels_built = false;

}  // namespace

bool onednn_has_bf16_gemm() {
  const auto mask = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & mask) == mask;
}

void build_onednn_gemm_kernels(const dnnl::engine& engine) {
  std::lock_guard lock(gemm_kernels_mutex);
  if (gemm_kernels_built) return;
  const std::string what = "building oneDNN's GEMM kernels";
  require_onednn_headroom(what);
  naming_allocation_failures(what, [&] {
    // One thread: oneDNN then runs the GEMM, and builds the kernels, on this thread.
    const ThreadCountScope one_thread(1);
    dnnl::stream stream(engine);
    // [rows, in] x [in, out]: a matrix-vector product, a small GEMM (oneDNN's "no-copy"
    // kernels) and a large, flat one (its packing kernels), on every ISA's thresholds.
    struct Shape {
      int64_t rows, in, out;
    };
    for (const Shape shape : {Shape{1, 16, 16}, Shape{16, 16, 16}, Shape{1100, 16, 1100}}) {
      const std::vector<float> weight(static_cast<size_t>(shape.out * shape.in), 0.0f);
      const std::vector<float> bias(static_cast<size_t>(shape.out), 0.0f);
      const std::vector<float> x(static_cast<size_t>(shape.rows * shape.in), 0.0f);
      std::vector<float> y(static_cast<size_t>(shape.rows * shape.out));
      const Linear layer(engine, weight, bias, shape.out, shape.in, LinearEpilogue::none,
                         "oneDNN's GEMM kernels");
      layer.execute(stream, x.data(), shape.rows, y.data());
      // The int8 layers' GEMM has kernels of its own.
      const std::vector<int8_t> weight_s8(weight.size(), 0);
      const std::vector<uint8_t> x_u8(x.size(), 0);
      std::vector<int32_t> y_s32(y.size());
      const Linear integer(engine, weight_s8, shape.out, shape.in, "oneDNN's int8 GEMM kernels");
      integer.execute(stream, x_u8.data(), shape.rows, y_s32.data());
      // So do the bf16 layers', where oneDNN has them.
      if (onednn_has_bf16_gemm()) {
        const std::vector<uint16_t> weight_bf16(weight.size(), 0);
        const std::vector<uint16_t> x_bf16(x.size(), 0);
        const Linear bf16(engine, weight_bf16, bias, shape.out, shape.in, LinearEpilogue::none,
                          "oneDNN's bf16 GEMM kernels");
        bf16.execute(stream, x_bf16.data(), shape.rows, y.data());
      }
    }
  });
  gemm_kernels_built = true;
}

Linear::Linear(const dnnl::engine& engine, std::span<const float> weight,
               std::span<const float> bias, int64_t out_features, int64_t in_features,
               LinearEpilogue epilogue, std::string name)
    : engine_(engine),
      weight_(weight.data()),
      bias_(bias),
      x_type_(DataType::f32),
      weight_type_(DataType::f32),
      y_type_(DataType::f32),
      out_features_(out_features),
      in_features_(in_features),
      epilogue_(epilogue),
      name_(std::move(name)) {}

Linear::Linear(const dnnl::engine& engine, std::span<const int8_t> weight, int64_t out_features,
               int64_t in_features, std::string name)
    : engine_(engine),
      weight_(weight.data()),
      x_type_(DataType::u8),
      weight_type_(DataType::s8),
      y_type_(DataType::s32),
      out_features_(out_features),
      in_features_(in_features),
      epilogue_(LinearEpilogue::none),
      name_(std::move(name)) {}

Linear::Linear(const dnnl::engine& engine, std::span<const uint16_t> weight,
               std::span<const float> bias, int64_t out_features, int64_t in_features,
               LinearEpilogue epilogue, std::string name)
    : engine_(engine),
      weight_(weight.data()),
      bias_(bias),
      x_type_(DataType::bf16),
      weight_type_(DataType::bf16),
      y_type_(DataType::f32),
      out_features_(out_features),
      in_features_(in_features),
      epilogue_(epilogue),
      name_(std::move(name)) {}

Linear::Prepared Linear::prepare(int64_t rows) const {
  const memory::desc src({rows, in_features_}, x_type_, Tag::ab);
  const memory::desc weights_any({in_features_, out_features_}, weight_type_, Tag::any);
  const memory::desc bias =
      bias_.empty() ? memory::desc() : memory::desc({1, out_features_}, DataType::f32, Tag::ab);
  const memory::desc dst({rows, out_features_}, y_type_, Tag::ab);
  dnnl::post_ops post_ops;
  if (epilogue_ == LinearEpilogue::add_residual) post_ops.append_sum(1.0f);
  if (epilogue_ == LinearEpilogue::gelu_erf) {
    post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(post_ops);
  // Scratchpads come from run(), where their allocation is checked and named.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights_any, bias, dst), attr,
                                        engine_);

  Prepared entry{dnnl::matmul(pd), {}, pd.scratchpad_desc()};
  for (const auto& [layout, packed] : packed_) {
    if (layout == pd.weights_desc()) entry.weights = packed;
  }
  if (!entry.weights) {
    // nn.Linear stores W [out, in]: as the [in, out] matrix matmul wants, that is layout "ba".
    const memory::desc user_layout({in_features_, out_features_}, weight_type_, Tag::ba);
    memory user(user_layout, engine_, const_cast<void*>(weight_));
    const memory::desc& packed_layout = pd.weights_desc();
    memory packed = naming_allocation_failures("allocating the packed weights of " + name_ + " (" +
                                                   megabytes(packed_layout.get_size()) + ")",
                                               [&] { return memory(packed_layout, engine_); });
    dnnl::primitive_attr reorder_attr;
    reorder_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::reorder::primitive_desc reorder_pd(user, packed, reorder_attr);
    const memory reorder_scratchpad = allocate_scratchpad(reorder_pd.scratchpad_desc());
    dnnl::stream stream(engine_);
    dnnl::reorder(reorder_pd)
        .execute(stream, {{DNNL_ARG_FROM, user},
                          {DNNL_ARG_TO, packed},
                          {DNNL_ARG_SCRATCHPAD, reorder_scratchpad}});
    stream.wait();
    packed_.emplace_back(pd.weights_desc(), packed);
    entry.weights = packed;
  }
  return entry;
}

dnnl::memory Linear::allocate_scratchpad(const memory::desc& layout) const {
  return naming_allocation_failures(
      "allocating the scratchpad of " + name_ + " (" + megabytes(layout.get_size()) + ")",
      [&] { return memory(layout, engine_); });
}

void Linear::run_any(dnnl::stream& stream, const void* x, int64_t rows, void* y) const {
  if (rows == 0) return;
  build_onednn_gemm_kernels(engine_);
  const std::string what = "running " + name_ + " on " + std::to_string(rows) + " tokens";
  require_onednn_headroom(what);
  naming_allocation_failures(what, [&] { execute(stream, x, rows, y); });
}

void Linear::execute(dnnl::stream& stream, const void* x, int64_t rows, void* y) const {
  const Prepared entry = by_rows_.get(rows, [this](int64_t n) { return prepare(n); });
  const memory scratchpad = allocate_scratchpad(entry.scratchpad);
  const memory::desc src_layout({rows, in_features_}, x_type_, Tag::ab);
  const memory::desc dst_layout({rows, out_features_}, y_type_, Tag::ab);
  // oneDNN takes non-const handles; it only reads src, weights and bias.
  memory src(src_layout, engine_, const_cast<void*>(x));
  memory dst(dst_layout, engine_, y);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                       {DNNL_ARG_WEIGHTS, entry.weights},
                                       {DNNL_ARG_DST, dst},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad}};
  if (!bias_.empty()) {
    const memory::desc bias_layout({1, out_features_}, DataType::f32, Tag::ab);
    args.emplace(DNNL_ARG_BIAS, memory(bias_layout, engine_, const_cast<float*>(bias_.data())));
  }
  entry.primitive.execute(stream, args);
  stream.wait();
}

}  // namespace dfss::model
