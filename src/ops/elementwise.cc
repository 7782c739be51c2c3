// Elementwise operators: unary math and activations, broadcasting binary arithmetic,
// comparisons and logic, variadic Sum/Mean/Max/Min, Where, Cast.
#include <cmath>

#include "ops/op_groups.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

// ---- unary float ops: y = f(x) -------------------------------------------------------

template <typename F>
OpDef unary_float_op(const std::string& name, int since, F f) {
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.infer = [name](InferContext& ctx) -> Status {
    if (!dtype_is_float(ctx.input_dtype(0)))
      return ctx.unsupported_here(std::string("input dtype ") + dtype_name(ctx.input_dtype(0)) +
                                  " is not supported (expected a float type)");
    return propagate_input_type(ctx);
  };
  d.create = [f](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const float alpha = c.node.attr_float("alpha", 0.01f);
    return make_kernel([f, alpha](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (std::is_floating_point_v<compute_t<T>>) {
          using C = compute_t<T>;
          const T* in = x.data<T>();
          T* out = y.data<T>();
          for (int64_t i = 0; i < x.numel(); ++i) out[i] = static_cast<T>(f(static_cast<C>(in[i]), static_cast<C>(alpha)));
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- binary broadcasting ops: z = f(x, y) ------------------------------------------------

template <typename F>
OpDef binary_arith_op(const std::string& name, int since, F f) {
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.infer = [](InferContext& ctx) -> Status {
    if (ctx.input_dtype(0) != ctx.input_dtype(1))
      return ctx.invalid(std::string("input dtypes differ: ") + dtype_name(ctx.input_dtype(0)) + " and " +
                         dtype_name(ctx.input_dtype(1)));
    if (ctx.input_dtype(0) == DataType::kBool) return ctx.unsupported_here("bool inputs are not supported");
    BRINK_ASSIGN_OR_RETURN(auto dims, broadcast_dims(ctx, {&ctx.input_type(0), &ctx.input_type(1)}));
    ctx.set_output(0, TensorType(ctx.input_dtype(0), std::move(dims)));
    return Status::ok();
  };
  d.create = [f](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([f](KernelContext& ctx) -> Status {
      const Tensor& a = ctx.input(0);
      const Tensor& b = ctx.input(1);
      Tensor& z = ctx.output(0);
      visit_dtype(a.dtype(), [&]<typename T>() {
        if constexpr (!std::is_same_v<T, bool>) {
          using C = compute_t<T>;
          const T* pa = a.data<T>();
          const T* pb = b.data<T>();
          T* pz = z.data<T>();
          StridedIterator it(z.shape(), {broadcast_strides(a.shape(), z.shape()), broadcast_strides(b.shape(), z.shape())});
          for (int64_t i = 0; !it.done(); it.next(), ++i)
            pz[i] = static_cast<T>(f(static_cast<C>(pa[it.offset(0)]), static_cast<C>(pb[it.offset(1)])));
        }
      });
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  r.add(unary_float_op("Relu", 6, [](auto x, auto) { return x > 0 ? x : decltype(x)(0); }));
  r.add(binary_arith_op("Add", 7, [](auto x, auto y) { return x + y; }));
}

}  // namespace brink::ops
