#include "model/layer_norm.h"

namespace dfss::model {
namespace {

using dnnl::memory;

memory::desc rows_desc(int64_t count, int64_t width) {
  return {{count, width}, memory::data_type::f32, memory::format_tag::ab};
}

}  // namespace

LayerNorm::LayerNorm(const dnnl::engine& engine, const LayerNormWeights& weights, int64_t width,
                     double eps)
    : engine_(engine), weights_(weights), width_(width), eps_(static_cast<float>(eps)) {}

void LayerNorm::run(dnnl::stream& stream, float* rows, int64_t count) const {
  if (count == 0) return;
  const auto primitive = by_rows_.get(count, [this](int64_t n) {
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    const dnnl::layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference,
                                                       rows_desc(n, width_), eps_, flags);
    return dnnl::layer_normalization_forward(
        dnnl::layer_normalization_forward::primitive_desc(desc, engine_));
  });
  const memory::desc vector_desc({width_}, memory::data_type::f32, memory::format_tag::a);
  memory data(rows_desc(count, width_), engine_, rows);
  // oneDNN takes non-const handles; it only reads gamma and beta.
  memory scale(vector_desc, engine_, const_cast<float*>(weights_.weight.data()));
  memory shift(vector_desc, engine_, const_cast<float*>(weights_.bias.data()));
  primitive.execute(stream, {{DNNL_ARG_SRC, data},
                             {DNNL_ARG_DST, data},
                             {DNNL_ARG_SCALE, scale},
                             {DNNL_ARG_SHIFT, shift}});
  stream.wait();
}

}  // namespace dfss::model
