// Small C++ shim over libtorch.
//
// oneDNN fused convolutions that libtorch registers as operators but tch's generated API does not
// expose: `mkldnn::_convolution_pointwise` (conv + bias + unary post-op such as ReLU),
// and `mkldnn::_convolution_pointwise_.binary` (conv + bias added in place into another tensor).
//
// Called through the dispatcher with boxed arguments, so nothing here depends on the kernels'
// C++ signatures. Every function returns nullptr on success or a malloc'd error message (C++
// exceptions never cross into Rust). Tensors are `at::Tensor*`, as in torch-sys's C API.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <cstring>
#include <string>
#include <vector>

namespace {

char *error_message(const char *what) {
  char *s = static_cast<char *>(std::malloc(std::strlen(what) + 1));
  if (s) std::strcpy(s, what);
  return s;
}

std::vector<int64_t> ints(const int64_t *v, int n) { return std::vector<int64_t>(v, v + n); }

c10::IValue optional_tensor(const at::Tensor *t) {
  return t ? c10::IValue(*t) : c10::IValue();
}

c10::IValue no_scalars() {
  return c10::IValue(c10::List<std::optional<at::Scalar>>());
}

c10::OperatorHandle op(const char *name, const char *overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

}  // namespace

#define SLZ_TRY(...)                       \
  try {                                    \
    __VA_ARGS__;                           \
    return nullptr;                        \
  } catch (const std::exception &e) {      \
    return error_message(e.what());        \
  } catch (...) {                          \
    return error_message("unknown error"); \
  }

extern "C" {

void slz_free_error(char *e) { std::free(e); }

// 1 when `t` is the only handle to its TensorImpl and the only tensor using its storage (no
// view, no other handle, nothing saved for autograd): writing into it in place is invisible to
// anyone else.
int slz_is_exclusive(const at::Tensor *t) {
  if (!t->defined() || !t->has_storage()) return 0;
  return t->use_count() == 1 && t->storage().use_count() == 1 ? 1 : 0;
}

// 1 when `t` is contiguous in the channels-last memory format (NHWC in memory).
int slz_is_channels_last(const at::Tensor *t) {
  return t->defined() && t->dim() == 4 && t->is_contiguous(at::MemoryFormat::ChannelsLast) ? 1 : 0;
}

// y = attr(conv(x, w) + b), attr in {"none", "relu", ...}; pad/stride/dilation are 2 values each.
char *slz_conv_pointwise(at::Tensor **out, const at::Tensor *x, const at::Tensor *w, const at::Tensor *b,
                         const int64_t *pad, const int64_t *stride, const int64_t *dilation, int64_t groups,
                         const char *attr) {
  SLZ_TRY({
    static const c10::OperatorHandle handle = op("mkldnn::_convolution_pointwise", "");
    torch::jit::Stack stack{*x, *w, optional_tensor(b), ints(pad, 2), ints(stride, 2), ints(dilation, 2),
                            groups, std::string(attr), no_scalars(), c10::IValue()};
    handle.callBoxed(&stack);
    *out = new at::Tensor(stack.at(0).toTensor());
  })
}

// w reordered once into the blocked layout oneDNN's convolution wants for this geometry (an
// opaque MKLDNN tensor with the same sizes); the fused convolutions take it as their weight.
char *slz_reorder_conv_weight(at::Tensor **out, const at::Tensor *w, const int64_t *pad, const int64_t *stride,
                              const int64_t *dilation, int64_t groups, const int64_t *input_size) {
  SLZ_TRY({
    static const c10::OperatorHandle handle = op("mkldnn::_reorder_convolution_weight", "");
    torch::jit::Stack stack{*w, ints(pad, 2), ints(stride, 2), ints(dilation, 2), groups, ints(input_size, 4)};
    handle.callBoxed(&stack);
    *out = new at::Tensor(stack.at(0).toTensor());
  })
}

// other += conv(x, w) + b, then `unary` ("none" or "relu") on the sum, in place.
char *slz_conv_add_(const at::Tensor *other, const at::Tensor *x, const at::Tensor *w, const at::Tensor *b,
                    const int64_t *pad, const int64_t *stride, const int64_t *dilation, int64_t groups,
                    const char *unary) {
  SLZ_TRY({
    static const c10::OperatorHandle handle = op("mkldnn::_convolution_pointwise_", "binary");
    c10::IValue u = std::strcmp(unary, "none") == 0 ? c10::IValue() : c10::IValue(std::string(unary));
    torch::jit::Stack stack{*other, *x, *w, optional_tensor(b), ints(pad, 2), ints(stride, 2),
                            ints(dilation, 2), groups, std::string("add"), c10::IValue(), u,
                            no_scalars(), c10::IValue()};
    handle.callBoxed(&stack);
  })
}

}  // extern "C"
