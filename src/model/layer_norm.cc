#include "model/layer_norm.h"

#include <utility>

#include "model/memory_guard.h"

namespace dfss::model {
namespace {

using dnnl::memory;

memory::desc rows_desc(int64_t count, int64_t width) {
  return {{count, width}, memory::data_type::f32, memory::format_tag::ab};
}

}  // namespace

LayerNorm::LayerNorm(const dnnl::engine& engine, const LayerNormWeights& weights, int64_t width,
                     double eps, std::string name)
    : engine_(engine),
      weights_(weights),
      width_(width),
      eps_(static_cast<float>(eps)),
      name_(std::move(name)) {}

void LayerNorm::run(dnnl::stream& stream, float* rows, int64_t count) const {
  if (count == 0) return;
  const std::string what = "running " + name_ + " on " + std::to_string(count) + " tokens";
  require_onednn_headroom(what);
  naming_allocation_failures(what, [&] {
    const Prepared entry = by_rows_.get(count, [this](int64_t n) {
      const auto flags =
          dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
      const dnnl::layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference,
                                                         rows_desc(n, width_), eps_, flags);
      dnnl::primitive_attr attr;
      // Scratchpads come from here, where their allocation is checked and named.
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      const dnnl::layer_normalization_forward::primitive_desc pd(desc, attr, engine_);
      return Prepared{dnnl::layer_normalization_forward(pd), pd.scratchpad_desc()};
    });
    const memory scratchpad =
        naming_allocation_failures("allocating the scratchpad of " + name_ + " (" +
                                       megabytes(entry.scratchpad.get_size()) + ")",
                                   [&] { return memory(entry.scratchpad, engine_); });
    const memory::desc vector_desc({width_}, memory::data_type::f32, memory::format_tag::a);
    memory data(rows_desc(count, width_), engine_, rows);
    // oneDNN takes non-const handles; it only reads gamma and beta.
    memory scale(vector_desc, engine_, const_cast<float*>(weights_.weight.data()));
    memory shift(vector_desc, engine_, const_cast<float*>(weights_.bias.data()));
    entry.primitive.execute(stream, {{DNNL_ARG_SRC, data},
                                     {DNNL_ARG_DST, data},
                                     {DNNL_ARG_SCALE, scale},
                                     {DNNL_ARG_SHIFT, shift},
                                     {DNNL_ARG_SCRATCHPAD, scratchpad}});
    stream.wait();
  });
}

}  // namespace dfss::model
