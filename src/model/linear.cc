#include "model/linear.h"

#include <utility>

namespace dfss::model {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

}  // namespace

Linear::Linear(const dnnl::engine& engine, std::span<const float> weight,
               std::span<const float> bias, int64_t out_features, int64_t in_features,
               LinearEpilogue epilogue)
    : engine_(engine),
      weight_(weight),
      bias_(bias),
      out_features_(out_features),
      in_features_(in_features),
      epilogue_(epilogue) {}

Linear::Prepared Linear::prepare(int64_t rows) const {
  const memory::desc src({rows, in_features_}, DataType::f32, Tag::ab);
  const memory::desc weights_any({in_features_, out_features_}, DataType::f32, Tag::any);
  const memory::desc bias({1, out_features_}, DataType::f32, Tag::ab);
  const memory::desc dst({rows, out_features_}, DataType::f32, Tag::ab);
  dnnl::post_ops post_ops;
  if (epilogue_ == LinearEpilogue::add_residual) post_ops.append_sum(1.0f);
  if (epilogue_ == LinearEpilogue::gelu_erf) {
    post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(post_ops);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights_any, bias, dst), attr,
                                        engine_);

  Prepared entry{dnnl::matmul(pd), {}};
  for (const auto& [layout, packed] : packed_) {
    if (layout == pd.weights_desc()) entry.weights = packed;
  }
  if (!entry.weights) {
    // nn.Linear stores W [out, in]: as the [in, out] matrix matmul wants, that is layout "ba".
    const memory::desc user_layout({in_features_, out_features_}, DataType::f32, Tag::ba);
    memory user(user_layout, engine_, const_cast<float*>(weight_.data()));
    memory packed(pd.weights_desc(), engine_);
    dnnl::stream stream(engine_);
    dnnl::reorder(user, packed).execute(stream, user, packed);
    stream.wait();
    packed_.emplace_back(pd.weights_desc(), packed);
    entry.weights = packed;
  }
  return entry;
}

void Linear::run(dnnl::stream& stream, const float* x, int64_t rows, float* y) const {
  if (rows == 0) return;
  const Prepared entry = by_rows_.get(rows, [this](int64_t n) { return prepare(n); });
  const memory::desc src_layout({rows, in_features_}, DataType::f32, Tag::ab);
  const memory::desc dst_layout({rows, out_features_}, DataType::f32, Tag::ab);
  const memory::desc bias_layout({1, out_features_}, DataType::f32, Tag::ab);
  // oneDNN takes non-const handles; it only reads src, weights and bias.
  memory src(src_layout, engine_, const_cast<float*>(x));
  memory bias(bias_layout, engine_, const_cast<float*>(bias_.data()));
  memory dst(dst_layout, engine_, y);
  entry.primitive.execute(stream, {{DNNL_ARG_SRC, src},
                                   {DNNL_ARG_WEIGHTS, entry.weights},
                                   {DNNL_ARG_BIAS, bias},
                                   {DNNL_ARG_DST, dst}});
  stream.wait();
}

}  // namespace dfss::model
