// com.microsoft MatMulNBits with bits = 4: ONNX Runtime's weight-only INT4 MatMul, what ORT's
// MatMul4BitsQuantizer and `brink quantize --mode int4` emit; and GatherBlockQuantized for
// int4 embedding tables (below).
//   inputs:  A (float32 [..., K]), B (uint8 [N, k_blocks, block_size / 2]),
//            scales (float32 [N * k_blocks] or [N, k_blocks]),
//            zero_points (optional, uint8 [N * ceil(k_blocks / 2)] packed nibbles; absent: 8),
//            g_idx (optional, not supported), bias (optional, float32 [N])
//   attributes: K, N, bits (4), block_size (a power of two >= 16), accuracy_level (ignored:
//            Brink always computes in float32)
//   Y[..., n] = sum_k A[..., k] * (q[n][k] - zp[n][k / block_size]) * scale[n][k / block_size]
//               + bias[n]
// The reference dequantizes B to floats and multiplies with plain loops; the fast path packs
// B once at prepare (constant B, scales, zero points and bias) and runs kernels::nbits_gemm,
// which dequantizes in the inner loop (kernels/nbits_gemm.h).
#include <memory>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/nbits_gemm.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

struct NBitsAttrs {
  int64_t k = 0, n = 0, block_size = 0, k_blocks = 0;
};

Result<NBitsAttrs> nbits_attrs(const ir::Node& node) {
  NBitsAttrs at;
  at.k = node.attr_int("K", -1);
  at.n = node.attr_int("N", -1);
  at.block_size = node.attr_int("block_size", -1);
  const int64_t bits = node.attr_int("bits", 4);
  const std::string where = node.describe();
  if (bits != 4)
    return unsupported(where + ": bits=" + std::to_string(bits) + " (Brink supports bits=4)");
  if (at.k < 1 || at.n < 1)
    return invalid_model(where + ": attributes K and N must be >= 1, found K=" +
                         std::to_string(at.k) + " N=" + std::to_string(at.n));
  if (at.block_size < 16 || (at.block_size & (at.block_size - 1)) != 0)
    return invalid_model(where + ": block_size must be a power of two >= 16, found " +
                         std::to_string(at.block_size));
  at.k_blocks = (at.k + at.block_size - 1) / at.block_size;
  return at;
}

// Checks the sizes of B, scales, zero points and bias against the attributes.
Status check_operands(const NBitsAttrs& at, const Tensor& b, const Tensor& scales, const Tensor* zp,
                      const Tensor* bias, const std::string& where) {
  const int64_t blob = at.block_size / 2;
  if (b.dtype() != DataType::kUInt8 || b.numel() != at.n * at.k_blocks * blob)
    return invalid_model(where + ": B must be uint8 [N=" + std::to_string(at.n) +
                         ", k_blocks=" + std::to_string(at.k_blocks) + ", " + std::to_string(blob) +
                         "], found " + dtype_name(b.dtype()) + shape_to_string(b.shape()));
  if (scales.dtype() != DataType::kFloat32 || scales.numel() != at.n * at.k_blocks)
    return invalid_model(where + ": scales must be float32 with N * k_blocks = " +
                         std::to_string(at.n * at.k_blocks) + " elements, found " +
                         dtype_name(scales.dtype()) + shape_to_string(scales.shape()));
  if (zp != nullptr &&
      (zp->dtype() != DataType::kUInt8 || zp->numel() != at.n * ((at.k_blocks + 1) / 2)))
    return zp->dtype() != DataType::kUInt8
               ? unsupported(where + ": zero_points of type " + dtype_name(zp->dtype()) +
                             " (Brink supports packed uint8 zero points)")
               : invalid_model(where + ": zero_points must have N * ceil(k_blocks / 2) = " +
                               std::to_string(at.n * ((at.k_blocks + 1) / 2)) +
                               " elements, found " + shape_to_string(zp->shape()));
  if (bias != nullptr && (bias->dtype() != DataType::kFloat32 || bias->numel() != at.n))
    return invalid_model(where + ": bias must be float32 [N=" + std::to_string(at.n) + "], found " +
                         dtype_name(bias->dtype()) + shape_to_string(bias->shape()));
  return Status::ok();
}

Status check_a(const NBitsAttrs& at, const Tensor& a, const std::string& where) {
  if (a.rank() < 1 || a.dim(a.rank() - 1) != at.k)
    return invalid_argument(where + ": A has shape " + shape_to_string(a.shape()) +
                            ", expected a last dim of K=" + std::to_string(at.k));
  return Status::ok();
}

// The fast path: B packed at prepare, nbits_gemm at run.
class FastMatMulNBits final : public Kernel {
 public:
  FastMatMulNBits(NBitsAttrs at, kernels::PackedNBits b, std::vector<float> bias, std::string where)
      : at_(at), b_(std::move(b)), bias_(std::move(bias)), where_(std::move(where)) {}

  bool reads_input_data(size_t i) const override { return i == 0; }

  Status run(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    BRINK_RETURN_IF_ERROR(check_a(at_, a, where_));
    Tensor& y = ctx.output(0);
    const int64_t m = a.numel() / at_.k;
    if (y.numel() != m * at_.n)
      return internal_error(where_ + ": output shape " + shape_to_string(y.shape()) +
                            " does not match the product");
    kernels::nbits_gemm(m, a.data<float>(), at_.k, b_, bias_.empty() ? nullptr : bias_.data(),
                        y.data<float>(), at_.n, ctx.thread_pool());
    return Status::ok();
  }

 private:
  NBitsAttrs at_;
  kernels::PackedNBits b_;
  std::vector<float> bias_;
  std::string where_;
};

OpDef matmul_nbits() {
  OpDef d;
  d.op_type = "MatMulNBits";
  d.domain = "com.microsoft";
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_ASSIGN_OR_RETURN(const NBitsAttrs at, nbits_attrs(ctx.node()));
    if (!ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(2))
      return ctx.invalid("needs inputs A, B and scales");
    if (ctx.input_dtype(0) != DataType::kFloat32)
      return ctx.unsupported_here("A of type " + std::string(dtype_name(ctx.input_dtype(0))) +
                                  " (Brink supports float32)");
    if (ctx.input_dtype(1) != DataType::kUInt8)
      return ctx.invalid("B must be uint8, found " + std::string(dtype_name(ctx.input_dtype(1))));
    if (ctx.input_dtype(2) != DataType::kFloat32)
      return ctx.unsupported_here("scales of type " + std::string(dtype_name(ctx.input_dtype(2))) +
                                  " (Brink supports float32)");
    if (ctx.has_input(4)) return ctx.unsupported_here("g_idx (act-order) is not supported");
    const TensorType& a = ctx.input_type(0);
    if (!a.dims) {
      ctx.set_output(0, TensorType(DataType::kFloat32, std::nullopt));
      return Status::ok();
    }
    if (a.dims->empty()) return ctx.invalid("A must have rank >= 1");
    std::vector<Dim> dims = *a.dims;
    if (dims.back().known() && dims.back().value != at.k)
      return ctx.invalid("A has shape " + a.to_string() +
                         ", expected a last dim of K=" + std::to_string(at.k));
    dims.back() = Dim(at.n);
    ctx.set_output(0, TensorType(DataType::kFloat32, std::move(dims)));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(const NBitsAttrs at, nbits_attrs(c.node));
    const std::string where = c.node.describe();
    const auto constant = [&](size_t i) -> const Tensor* {
      return c.has_input(i) && i < c.constant_inputs.size() ? c.constant_inputs[i] : nullptr;
    };
    const Tensor *b = constant(1), *scales = constant(2), *zp = constant(3), *bias = constant(5);
    if (kernels::fast_kernels_enabled() && b != nullptr && scales != nullptr &&
        (!c.has_input(3) || zp != nullptr) && (!c.has_input(5) || bias != nullptr)) {
      BRINK_RETURN_IF_ERROR(check_operands(at, *b, *scales, zp, bias, where));
      std::vector<float> bias_v;
      if (bias != nullptr) bias_v.assign(bias->data<float>(), bias->data<float>() + at.n);
      return std::unique_ptr<Kernel>(std::make_unique<FastMatMulNBits>(
          at,
          kernels::pack_nbits(b->data<uint8_t>(), scales->data<float>(),
                              zp != nullptr ? zp->data<uint8_t>() : nullptr, at.k, at.n,
                              at.block_size, c.isa),
          std::move(bias_v), where));
    }
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& a = ctx.input(0);
      const Tensor* zpt = ctx.has_input(3) ? &ctx.input(3) : nullptr;
      const Tensor* bt = ctx.has_input(5) ? &ctx.input(5) : nullptr;
      BRINK_RETURN_IF_ERROR(check_a(at, a, where));
      BRINK_RETURN_IF_ERROR(check_operands(at, ctx.input(1), ctx.input(2), zpt, bt, where));
      const std::vector<float> w = kernels::dequantize_nbits(
          ctx.input(1).data<uint8_t>(), ctx.input(2).data<float>(),
          zpt != nullptr ? zpt->data<uint8_t>() : nullptr, at.k, at.n, at.block_size);
      const int64_t m = a.numel() / at.k;
      const float* x = a.data<float>();
      float* y = ctx.output(0).data<float>();
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < at.n; ++j) {
          float s = 0.0f;
          for (int64_t kk = 0; kk < at.k; ++kk)
            s += x[i * at.k + kk] * w[static_cast<size_t>(kk * at.n + j)];
          y[i * at.n + j] = s + (bt != nullptr ? bt->data<float>()[j] : 0.0f);
        }
      return Status::ok();
    });
  };
  return d;
}

// com.microsoft GatherBlockQuantized with uint8 data and bits = 4 (what `brink quantize
// --mode int4 --int4-embeddings` writes for embedding tables): data [V, D / 2] uint8 (two
// 4-bit values a byte, the even one in the low nibble), indices (int32 / int64, negative
// ones count from the end), scales float [V, ceil(D / block_size)], no zero points (8).
//   Y[i..., d] = (q[idx][d] - 8) * scales[idx][d / block_size]
// Only gather_axis = 0 and quantize_axis = 1 (the last) are supported.
OpDef gather_block_quantized() {
  OpDef d;
  d.op_type = "GatherBlockQuantized";
  d.domain = "com.microsoft";
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    const ir::Node& n = ctx.node();
    if (n.attr_int("bits", 4) != 4 || n.attr_int("gather_axis", 0) != 0 ||
        n.attr_int("quantize_axis", 1) != 1)
      return ctx.unsupported_here(
          "Brink supports bits=4, gather_axis=0 and quantize_axis=1 (a 2-D table)");
    const int64_t bs = n.attr_int("block_size", 128);
    if (bs < 16 || (bs & (bs - 1)) != 0)
      return ctx.invalid("block_size must be a power of two >= 16, found " + std::to_string(bs));
    if (!ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(2))
      return ctx.invalid("needs inputs data, indices and scales");
    if (ctx.has_input(3)) return ctx.unsupported_here("zero_points are not supported");
    if (ctx.input_dtype(0) != DataType::kUInt8)
      return ctx.unsupported_here("data of type " + std::string(dtype_name(ctx.input_dtype(0))) +
                                  " (Brink supports packed uint8)");
    if (ctx.input_dtype(1) != DataType::kInt64 && ctx.input_dtype(1) != DataType::kInt32)
      return ctx.invalid("indices must be int32 or int64");
    if (ctx.input_dtype(2) != DataType::kFloat32)
      return ctx.unsupported_here("scales must be float32");
    const TensorType& data = ctx.input_type(0);
    const TensorType& idx = ctx.input_type(1);
    if (data.dims && data.rank() != 2) return ctx.invalid("data must be 2-D");
    if (!idx.dims) {
      ctx.set_output(0, TensorType(DataType::kFloat32, std::nullopt));
      return Status::ok();
    }
    std::vector<Dim> dims = *idx.dims;
    Dim dd;
    if (data.dims && (*data.dims)[1].known()) dd = Dim((*data.dims)[1].value * 2);
    dims.push_back(dd);
    ctx.set_output(0, TensorType(DataType::kFloat32, std::move(dims)));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const std::string where = c.node.describe();
    const int64_t bs = c.node.attr_int("block_size", 128);
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& data = ctx.input(0);
      const Tensor& idx = ctx.input(1);
      const Tensor& scales = ctx.input(2);
      const int64_t v = data.dim(0), dd = data.dim(1) * 2, blocks = (dd + bs - 1) / bs;
      if (scales.numel() != v * blocks)
        return invalid_model(where + ": scales must have " + std::to_string(v) + " x " +
                             std::to_string(blocks) + " elements, found " +
                             shape_to_string(scales.shape()));
      const uint8_t* q = data.data<uint8_t>();
      const float* s = scales.data<float>();
      float* y = ctx.output(0).data<float>();
      for (int64_t i = 0; i < idx.numel(); ++i) {
        int64_t r = idx.element_as_int64(i);
        if (r < 0) r += v;
        if (r < 0 || r >= v)
          return invalid_argument(where + ": index " + std::to_string(idx.element_as_int64(i)) +
                                  " is out of range for " + std::to_string(v) + " rows");
        for (int64_t k = 0; k < dd; ++k) {
          const uint8_t byte = q[r * (dd / 2) + k / 2];
          const int nib = (k % 2 == 0) ? (byte & 15) : (byte >> 4);
          y[i * dd + k] = static_cast<float>(nib - 8) * s[r * blocks + k / bs];
        }
      }
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

void register_matmul_nbits_ops(OpRegistry& r) {
  if constexpr (op_selected("com.microsoft", "MatMulNBits")) r.add(matmul_nbits());
  if constexpr (op_selected("com.microsoft", "GatherBlockQuantized"))
    r.add(gather_block_quantized());
}

}  // namespace brink::ops
