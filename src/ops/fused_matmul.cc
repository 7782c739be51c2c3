// brink.MatMul (Y = act(A @ B + bias), docs/INTERNAL_OPS.md) and the fast float32 MatMul
// kernel it shares with ONNX MatMul.
//
// The kernel maps MatMul's shapes onto kernels::gemm calls:
//   - B without batch (2-D, 1-D, or batch dims all 1): A's batch dims fold into M, one gemm
//     for the whole tensor (a Linear layer on [batch, seq, d] is one [batch*seq, d] product);
//   - batched B: one gemm per output batch matrix, the batches spread over the threads when
//     there are enough of them (attention heads), else each gemm split over the threads;
//   - N == 1 (B a vector): a dot product per row instead, since a packed panel would be
//     NR times wider than the work.
// A constant B is packed at prepare (one PackedB per batch matrix of B); any other B is
// packed per call into the per-thread buffer of gemm_unpacked.
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/memory.h"
#include "kernels/gemm.h"
#include "ops/linalg.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

using kernels::Activation;

// Output batch index -> batch offsets of A and B (numpy broadcasting, right-aligned),
// without heap allocation.
struct BatchMap {
  static constexpr int kMaxRank = 16;
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{}, a_stride{}, b_stride{};
  int64_t batches = 1, b_batches = 1;

  // False when the batch dims do not broadcast or there are too many of them.
  bool init(const Shape& as, int ra, const Shape& bs, int rb) {
    rank = ra > rb ? ra : rb;
    if (rank > kMaxRank) return false;
    int64_t sa = 1, sb = 1;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t ad = d >= rank - ra ? as[static_cast<size_t>(d - (rank - ra))] : 1;
      const int64_t bd = d >= rank - rb ? bs[static_cast<size_t>(d - (rank - rb))] : 1;
      if (ad != bd && ad != 1 && bd != 1) return false;
      dims[static_cast<size_t>(d)] = ad == 1 ? bd : ad;
      a_stride[static_cast<size_t>(d)] = ad == 1 ? 0 : sa;
      b_stride[static_cast<size_t>(d)] = bd == 1 ? 0 : sb;
      sa *= ad;
      sb *= bd;
      batches *= dims[static_cast<size_t>(d)];
    }
    b_batches = sb;
    return true;
  }

  void offsets(int64_t index, int64_t* ao, int64_t* bo) const {
    *ao = 0;
    *bo = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t i = index % dims[static_cast<size_t>(d)];
      index /= dims[static_cast<size_t>(d)];
      *ao += i * a_stride[static_cast<size_t>(d)];
      *bo += i * b_stride[static_cast<size_t>(d)];
    }
  }
};

// y[i] = act(a_i . b + bias) for `rows` rows of A (stride lda) and a contiguous b.
void dot_rows(int64_t rows, int64_t k, const float* a, int64_t lda, const float* b, float bias,
              const Activation& act, float* y) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* ar = a + i * lda;
    float part[8] = {};
    int64_t p = 0;
    for (; p + 8 <= k; p += 8)
      for (int l = 0; l < 8; ++l) part[l] += ar[p + l] * b[p + l];
    float sum = 0.0f;
    for (; p < k; ++p) sum += ar[p] * b[p];
    for (float v : part) sum += v;
    y[i] = kernels::apply_activation_scalar(act, sum + bias);
  }
}

class FastMatMul final : public Kernel {
 public:
  FastMatMul(Isa isa, bool trans_b, Activation act) : isa_(isa), trans_b_(trans_b), act_(act) {}

  // Packs a constant B: one PackedB per batch matrix, all in one buffer (64-byte aligned
  // each), or adopts that buffer from a package. An error only for packed weights that do
  // not fit.
  Status prepare(const KernelCreateContext& c) {
    const Tensor* b = c.constant_inputs.size() > 1 ? c.constant_inputs[1] : nullptr;
    const bool usable = b != nullptr && b->rank() >= 2 && b->dtype() == DataType::kFloat32;
    int64_t k = 0, n = 0;
    if (usable) {
      const Shape& bs = b->shape();
      const size_t r = bs.size();
      k = trans_b_ ? bs[r - 1] : bs[r - 2];
      n = trans_b_ ? bs[r - 2] : bs[r - 1];
    }
    if (!usable || n == 1 || k * n == 0) {  // dot_rows or nothing to pack
      if (c.prepacked != nullptr)
        return c.unsupported_here(
            "the package holds packed weights for a B this kernel does not pack");
      return Status::ok();
    }
    const int64_t mats = b->numel() / (k * n);
    const size_t stride = (kernels::packed_b_floats(k, n, isa_) + 15) / 16 * 16;
    layout_ = kernels::packed_b_layout(k, isa_);
    floats_ = stride * static_cast<size_t>(mats);
    const float* base = nullptr;
    if (c.prepacked != nullptr) {
      if (c.prepacked->layout != layout_ || c.prepacked->floats != floats_ ||
          reinterpret_cast<uintptr_t>(c.prepacked->data) % 64 != 0)
        return c.unsupported_here("the package's packed weights are in layout " +
                                  c.prepacked->layout + " (" + std::to_string(c.prepacked->floats) +
                                  " floats); this build packs " + layout_ + " (" +
                                  std::to_string(floats_) + " floats)");
      storage_ = c.prepacked->owner;
      base = c.prepacked->data;
    } else {
      std::shared_ptr<void> buffer = shared_aligned(floats_ * sizeof(float));
      float* dst = static_cast<float*>(buffer.get());
      std::memset(dst, 0, floats_ * sizeof(float));  // padding too: packages are reproducible
      for (int64_t i = 0; i < mats; ++i)
        kernels::pack_b_into(dst + static_cast<size_t>(i) * stride, b->data<float>() + i * k * n, k,
                             n, trans_b_ ? k : n, trans_b_, isa_);
      storage_ = std::move(buffer);
      base = dst;
    }
    packed_.reserve(static_cast<size_t>(mats));
    for (int64_t i = 0; i < mats; ++i)
      packed_.push_back(kernels::packed_b_view(base + static_cast<size_t>(i) * stride, k, n, isa_));
    packed_data_ = base;
    packed_shape_ = b->shape();
    return Status::ok();
  }

  std::optional<PackedWeights> packed_weights() const override {
    if (packed_.empty()) return std::nullopt;
    return PackedWeights{layout_, packed_data_, floats_, {}};
  }

  // A packed constant B is read from packed_ only (its shape is fixed, so every run uses it).
  bool reads_input_data(size_t i) const override { return i != 1 || packed_.empty(); }

  Status run(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    Tensor& y = ctx.output(0);
    const Shape& as = a.shape();
    const Shape& bs = b.shape();
    if (as.empty() || bs.empty()) return invalid_argument("MatMul: inputs must not be scalars");
    const size_t ra = as.size(), rb = bs.size();
    const int64_t k = as[ra - 1];
    const int64_t m = ra == 1 ? 1 : as[ra - 2];
    int64_t n = 1, kb = bs[0];
    if (rb > 1) {
      n = trans_b_ ? bs[rb - 2] : bs[rb - 1];
      kb = trans_b_ ? bs[rb - 1] : bs[rb - 2];
    }
    BatchMap map;
    if (kb != k || !map.init(as, ra > 2 ? static_cast<int>(ra - 2) : 0, bs,
                             rb > 2 ? static_cast<int>(rb - 2) : 0))
      return invalid_argument("MatMul: shapes " + shape_to_string(as) + " and " +
                              shape_to_string(bs) + " do not match");
    if (bias != nullptr && bias->numel() != n)
      return invalid_argument("MatMul: bias has " + std::to_string(bias->numel()) +
                              " values, expected " + std::to_string(n));
    if (y.numel() == 0) return Status::ok();
    const bool use_packed = !packed_.empty() && bs == packed_shape_;
    const float* ad = a.data<float>();
    const float* bd = b.data<float>();
    const float* biasd = bias != nullptr ? bias->data<float>() : nullptr;
    float* yd = y.data<float>();
    // One product: rows of A (stride k) times batch matrix `bo` of B into y.
    auto multiply = [&](int64_t rows, const float* a_rows, int64_t bo, float* out,
                        ThreadPool* pool) {
      if (n == 1) {
        dot_rows(rows, k, a_rows, k, bd + bo * k, biasd != nullptr ? biasd[0] : 0.0f, act_, out);
      } else if (use_packed) {
        kernels::gemm(rows, a_rows, k, packed_[static_cast<size_t>(bo)], biasd, out, n, act_, pool);
      } else {
        kernels::gemm_unpacked(rows, n, k, a_rows, k, bd + bo * k * n, trans_b_ ? k : n, trans_b_,
                               biasd, out, n, act_, pool, isa_);
      }
    };
    ThreadPool* pool = ctx.thread_pool();
    if (map.b_batches == 1) {
      multiply(y.numel() / n, ad, 0, yd, pool);
      return Status::ok();
    }
    const int threads = pool == nullptr ? 1 : pool->num_threads();
    const bool across = threads > 1 && map.batches >= threads &&
                        (map.batches % threads == 0 || map.batches >= 4 * threads);
    auto one_batch = [&](int64_t bi, ThreadPool* inner) {
      int64_t ao = 0, bo = 0;
      map.offsets(bi, &ao, &bo);
      multiply(m, ad + ao * m * k, bo, yd + bi * m * n, inner);
    };
    if (across) {
      parallel_for(pool, map.batches, [&](int64_t bi) { one_batch(bi, nullptr); });
    } else {
      for (int64_t bi = 0; bi < map.batches; ++bi) one_batch(bi, pool);
    }
    return Status::ok();
  }

 private:
  Isa isa_;
  bool trans_b_;
  Activation act_;
  std::vector<kernels::PackedB> packed_;  // constant B, one per batch matrix, views of storage_
  std::shared_ptr<const void> storage_;   // the packed buffer, or the package mapping
  const float* packed_data_ = nullptr;
  std::string layout_;
  size_t floats_ = 0;
  Shape packed_shape_;
};

OpDef fused_matmul_op() {
  OpDef d;
  d.op_type = "MatMul";
  d.domain = "brink";
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("inputs A and B are required");
    for (size_t i = 0; i < ctx.num_inputs() && i < 3; ++i) {
      if (!ctx.has_input(i)) continue;
      if (ctx.input_dtype(i) != DataType::kFloat32)
        return ctx.unsupported_here("input " + std::to_string(i) + " has dtype " +
                                    dtype_name(ctx.input_dtype(i)) + ", only float32 is supported");
    }
    BRINK_RETURN_IF_ERROR(kernels::parse_activation(ctx.node()).status());
    const bool trans_b = ctx.node().attr_int("trans_b", 0) != 0;
    BRINK_RETURN_IF_ERROR(infer_matmul_shape(ctx, trans_b));
    if (ctx.has_input(2) && ctx.input_type(2).has_rank()) {
      const TensorType& bias = ctx.input_type(2);
      if (bias.rank() != 1)
        return ctx.invalid("bias has rank " + std::to_string(bias.rank()) + ", expected 1");
      const TensorType& bt = ctx.input_type(1);
      if (bt.has_rank() && bt.rank() > 0) {
        const std::vector<Dim>& bd = *bt.dims;
        const Dim n = bd.size() == 1 ? Dim(1) : (trans_b ? bd[bd.size() - 2] : bd.back());
        const Dim& len = (*bias.dims)[0];
        if (n.known() && len.known() && n.value != len.value)
          return ctx.invalid("bias has " + std::to_string(len.value) +
                             " values, expected N = " + std::to_string(n.value));
      }
    }
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(Activation act, kernels::parse_activation(c.node));
    return create_fast_matmul(c, c.node.attr_int("trans_b", 0) != 0, act);
  };
  return d;
}

}  // namespace

Result<std::unique_ptr<Kernel>> create_fast_matmul(const KernelCreateContext& c, bool trans_b,
                                                   const Activation& act) {
  auto kernel = std::make_unique<FastMatMul>(c.isa, trans_b, act);
  BRINK_RETURN_IF_ERROR(kernel->prepare(c));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

Status fused_matmul_reference(const Tensor& a, const Tensor& b, const Tensor* bias, bool trans_b,
                              const Activation& act, Tensor& y) {
  Tensor bt = b;
  if (trans_b && b.rank() >= 2) {
    Shape s = b.shape();
    const size_t r = s.size();
    const int64_t rows = s[r - 2], cols = s[r - 1];
    std::swap(s[r - 2], s[r - 1]);
    bt = Tensor::empty(DataType::kFloat32, s);
    const float* src = b.data<float>();
    float* dst = bt.data<float>();
    for (int64_t mat = 0; mat < b.numel() / std::max<int64_t>(rows * cols, 1); ++mat)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j)
          dst[mat * rows * cols + j * rows + i] = src[mat * rows * cols + i * cols + j];
  }
  BRINK_RETURN_IF_ERROR(matmul_reference(a, bt, y));
  float* yd = y.data<float>();
  const int64_t n = bias != nullptr ? bias->numel() : 1;
  for (int64_t i = 0; i < y.numel(); ++i) {
    float v = yd[i];
    if (bias != nullptr) v += bias->data<float>()[i % n];
    yd[i] = kernels::apply_activation_scalar(act, v);
  }
  return Status::ok();
}

void register_fused_matmul_ops(OpRegistry& r) {
  if constexpr (op_selected("brink", "MatMul")) r.add(fused_matmul_op());
}

}  // namespace brink::ops
