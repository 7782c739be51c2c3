// Linear algebra operators: MatMul, Gemm, Einsum.
//
// MatMul and Gemm run on kernels::gemm for float32 (B packed once at prepare when constant;
// the MatMul kernel itself is in fused_matmul.cc, shared with brink.MatMul) and on the
// reference kernels for every other dtype. The reference kernels (matmul_reference,
// gemm_reference: the oracle the fast path is tested against) share one i-k-j loop nest
// (innermost loop over a contiguous row of B and of the result, so g++ -O3 vectorizes it).
// Accumulation is in float for f32/f16/bf16, in double for f64, and in uint64 modular
// arithmetic for integers, which wraps exactly like NumPy's fixed-width integer arithmetic
// once the result is narrowed back.
// Einsum is a plain sum over the index space of its labels: general (ellipsis, repeated
// labels, implicit output) rather than fast.
#include <algorithm>
#include <array>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/gemm.h"
#include "ops/linalg.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

// The accumulation type of the matrix products.
template <typename T>
using mm_acc_t = std::conditional_t<std::is_same_v<T, double>, double,
                                    std::conditional_t<is_float_v<T>, float, uint64_t>>;

// Converts to the accumulation type; integers go through uint64 modular arithmetic.
template <typename A, typename T>
A to_acc(T v) {
  if constexpr (std::is_same_v<A, uint64_t>) {
    if constexpr (std::is_signed_v<T>)
      return static_cast<uint64_t>(static_cast<int64_t>(v));
    else
      return static_cast<uint64_t>(v);
  } else {
    return static_cast<A>(v);
  }
}

std::string dims_to_string(const std::vector<Dim>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + dims[i].to_string();
  return s + "]";
}

// acc[i, j] += sum over k of a(i, k) * b[k, j], for i < m, j < n, k < kk. `a` is read through
// strides (so a transposed A costs nothing), `b` is a contiguous kk x n matrix, `acc` a
// contiguous m x n matrix. Four rows of the result are updated per pass over a row of b, so
// each value of b loaded serves four multiply-adds.
template <typename A, typename T>
void gemm_accumulate(int64_t m, int64_t n, int64_t kk, const T* a, int64_t a_row, int64_t a_col,
                     const A* b, A* acc) {
  constexpr int64_t kRows = 4;
  int64_t i = 0;
  for (; i + kRows <= m; i += kRows) {
    A* c0 = acc + i * n;
    A* c1 = c0 + n;
    A* c2 = c1 + n;
    A* c3 = c2 + n;
    for (int64_t k = 0; k < kk; ++k) {
      const A a0 = to_acc<A>(a[i * a_row + k * a_col]);
      const A a1 = to_acc<A>(a[(i + 1) * a_row + k * a_col]);
      const A a2 = to_acc<A>(a[(i + 2) * a_row + k * a_col]);
      const A a3 = to_acc<A>(a[(i + 3) * a_row + k * a_col]);
      const A* brow = b + k * n;
      for (int64_t j = 0; j < n; ++j) {
        const A bv = brow[j];
        c0[j] += a0 * bv;
        c1[j] += a1 * bv;
        c2[j] += a2 * bv;
        c3[j] += a3 * bv;
      }
    }
  }
  for (; i < m; ++i) {
    A* c = acc + i * n;
    for (int64_t k = 0; k < kk; ++k) {
      const A av = to_acc<A>(a[i * a_row + k * a_col]);
      const A* brow = b + k * n;
      for (int64_t j = 0; j < n; ++j) c[j] += av * brow[j];
    }
  }
}

// A kk x n matrix as a contiguous matrix of A: `b` itself when it already is one, else a
// converted (and, when `transposed`, transposed from n x kk) copy in `buffer`.
template <typename A, typename T>
const A* contiguous_b(const T* b, int64_t kk, int64_t n, bool transposed, std::vector<A>* buffer) {
  if constexpr (std::is_same_v<A, T>) {
    if (!transposed) return b;
  }
  buffer->resize(static_cast<size_t>(kk * n));
  for (int64_t k = 0; k < kk; ++k)
    for (int64_t j = 0; j < n; ++j)
      (*buffer)[static_cast<size_t>(k * n + j)] =
          to_acc<A>(transposed ? b[j * kk + k] : b[k * n + j]);
  return buffer->data();
}

// ---- MatMul ------------------------------------------------------------------------------------

// Which dtypes a MatMul/Gemm version accepts: floats (f16/f32/f64, bf16 from 13), and
// i32/i64/u32/u64 from 9.
bool mm_dtype_ok(DataType t, int since) {
  switch (t) {
    case DataType::kFloat16:
    case DataType::kFloat32:
    case DataType::kFloat64:
      return true;
    case DataType::kInt32:
    case DataType::kInt64:
    case DataType::kUInt32:
    case DataType::kUInt64:
      return since >= 9;
    case DataType::kBFloat16:
      return since >= 13;
    default:
      return false;
  }
}

Status check_mm_types(const InferContext& ctx, int since, size_t inputs) {
  for (size_t i = 0; i < inputs; ++i) {
    if (!ctx.has_input(i)) continue;
    const DataType t = ctx.input_dtype(i);
    if (i == 0 && !mm_dtype_ok(t, since))
      return ctx.unsupported_here(std::string("input A has dtype ") + dtype_name(t) +
                                  ", which is not supported at opset " +
                                  std::to_string(ctx.opset()));
    if (t != ctx.input_dtype(0))
      return ctx.invalid("input " + std::to_string(i) + " has dtype " + dtype_name(t) +
                         ", expected " + dtype_name(ctx.input_dtype(0)) + " like input A");
  }
  return Status::ok();
}

OpDef matmul_op(int since, int until) {
  OpDef d;
  d.op_type = "MatMul";
  d.since_version = since;
  d.max_version = until;
  d.infer = [since](InferContext& ctx) -> Status {
    if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("inputs A and B are required");
    BRINK_RETURN_IF_ERROR(check_mm_types(ctx, since, 2));
    return infer_matmul_shape(ctx, false);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    if (c.has_input(0) && c.input_dtype(0) == DataType::kFloat32)
      return create_fast_matmul(c, /*trans_b=*/false, kernels::Activation{});
    return make_kernel([](KernelContext& ctx) -> Status {
      return matmul_reference(ctx.input(0), ctx.input(1), ctx.output(0));
    });
  };
  return d;
}

// ---- Gemm --------------------------------------------------------------------------------------

// Rows of A' as a row-major M x K matrix: `a` itself, or A transposed into a per-thread buffer.
const float* gemm_a_rows(const float* a, int64_t m, int64_t k, bool trans_a) {
  if (!trans_a) return a;
  thread_local std::vector<float> buffer;
  if (buffer.size() < static_cast<size_t>(m * k)) buffer.resize(static_cast<size_t>(m * k));
  for (int64_t p = 0; p < k; ++p)
    for (int64_t i = 0; i < m; ++i) buffer[static_cast<size_t>(i * k + p)] = a[p * m + i];
  return buffer.data();
}

// C's shape as Gemm sees it after broadcasting to (M, N): true when every row gets the same
// values (C is a scalar, [N], [1, N] or [1, 1]), so C is a bias of the product.
bool gemm_c_is_row(const Shape& c) {
  for (size_t i = 0; i + 1 < c.size(); ++i)
    if (c[i] != 1) return false;
  return true;
}

// beta * C broadcast to a row of n floats, C being a row (gemm_c_is_row).
void gemm_row_bias(const Tensor& c, float beta, int64_t n, float* out) {
  const float* cd = c.data<float>();
  const bool scalar = c.numel() == 1;
  for (int64_t j = 0; j < n; ++j) out[j] = beta * cd[scalar ? 0 : j];
}

// Float32 Gemm on kernels::gemm. alpha is folded into the packed B; C is a bias when it is one
// row (precomputed when constant), else beta * C is written to Y and the product accumulated.
class FastGemm final : public Kernel {
 public:
  FastGemm(Isa isa, bool trans_a, bool trans_b, float alpha, float beta)
      : isa_(isa), trans_a_(trans_a), trans_b_(trans_b), alpha_(alpha), beta_(beta) {}

  void prepare(const KernelCreateContext& c) {
    const Tensor* b = c.constant_inputs.size() > 1 ? c.constant_inputs[1] : nullptr;
    if (b != nullptr && b->rank() == 2) {
      const int64_t k = trans_b_ ? b->dim(1) : b->dim(0), n = trans_b_ ? b->dim(0) : b->dim(1);
      packed_ = kernels::pack_b(b->data<float>(), k, n, b->dim(1), trans_b_, isa_, alpha_);
    }
    const Tensor* cc = c.constant_inputs.size() > 2 ? c.constant_inputs[2] : nullptr;
    if (cc != nullptr && cc->rank() <= 2 && gemm_c_is_row(cc->shape()) && b != nullptr &&
        b->rank() == 2) {
      const int64_t n = trans_b_ ? b->dim(0) : b->dim(1);
      if (cc->numel() == 1 || cc->numel() == n) {
        const_bias_.resize(static_cast<size_t>(n));
        gemm_row_bias(*cc, beta_, n, const_bias_.data());
        has_const_bias_ = true;
      }
    }
  }

  Status run(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Tensor* cin = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    Tensor& y = ctx.output(0);
    const int64_t m = y.dim(0), n = y.dim(1);
    const int64_t k = trans_a_ ? a.dim(0) : a.dim(1);
    if (m == 0 || n == 0) return Status::ok();
    float* yd = y.data<float>();
    const float* ap = gemm_a_rows(a.data<float>(), m, k, trans_a_);
    const float* bias = nullptr;
    bool accumulate = false;
    if (has_const_bias_) {
      bias = const_bias_.data();
    } else if (cin != nullptr && beta_ != 0.0f) {
      if (gemm_c_is_row(cin->shape())) {
        if (beta_ == 1.0f && cin->numel() == n) {
          bias = cin->data<float>();
        } else {
          thread_local std::vector<float> row;
          if (row.size() < static_cast<size_t>(n)) row.resize(static_cast<size_t>(n));
          gemm_row_bias(*cin, beta_, n, row.data());
          bias = row.data();
        }
      } else {
        // C is [M, N] or [M, 1]: Y = beta * C, then Y += alpha * A' B'.
        const std::vector<int64_t> cs = broadcast_strides(cin->shape(), {m, n});
        const float* cd = cin->data<float>();
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) yd[i * n + j] = beta_ * cd[i * cs[0] + j * cs[1]];
        accumulate = true;
      }
    }
    if (!packed_.empty())
      kernels::gemm(m, ap, k, packed_, bias, yd, n, {}, ctx.thread_pool(), accumulate);
    else
      kernels::gemm_unpacked(m, n, k, ap, k, b.data<float>(), b.dim(1), trans_b_, bias, yd, n, {},
                             ctx.thread_pool(), isa_, accumulate, alpha_);
    return Status::ok();
  }

 private:
  Isa isa_;
  bool trans_a_, trans_b_;
  float alpha_, beta_;
  kernels::PackedB packed_;        // constant B, scaled by alpha
  std::vector<float> const_bias_;  // beta * C for a constant row C
  bool has_const_bias_ = false;
};

OpDef gemm_op(int since, int until) {
  OpDef d;
  d.op_type = "Gemm";
  d.since_version = since;
  d.max_version = until;
  d.infer = [since](InferContext& ctx) -> Status {
    if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("inputs A and B are required");
    if (since < 11 && !ctx.has_input(2)) return ctx.invalid("input C is required before opset 11");
    BRINK_RETURN_IF_ERROR(check_mm_types(ctx, since, 3));
    const TensorType& at = ctx.input_type(0);
    const TensorType& bt = ctx.input_type(1);
    const bool ta = ctx.node().attr_int("transA", 0) != 0;
    const bool tb = ctx.node().attr_int("transB", 0) != 0;
    Dim m, n, ka, kb;
    if (at.has_rank()) {
      if (at.rank() != 2)
        return ctx.invalid("input A has rank " + std::to_string(at.rank()) + ", expected 2");
      m = (*at.dims)[ta ? 1 : 0];
      ka = (*at.dims)[ta ? 0 : 1];
    }
    if (bt.has_rank()) {
      if (bt.rank() != 2)
        return ctx.invalid("input B has rank " + std::to_string(bt.rank()) + ", expected 2");
      kb = (*bt.dims)[tb ? 1 : 0];
      n = (*bt.dims)[tb ? 0 : 1];
    }
    if (ka.known() && kb.known() && ka.value != kb.value)
      return ctx.invalid("inner dims differ: A' has K=" + std::to_string(ka.value) +
                         ", B' has K=" + std::to_string(kb.value) + " (after transA/transB)");
    if (ctx.has_input(2) && ctx.input_type(2).has_rank()) {
      // C broadcasts unidirectionally to (M, N).
      const std::vector<Dim>& cd = *ctx.input_type(2).dims;
      if (cd.size() > 2)
        return ctx.invalid("input C has rank " + std::to_string(cd.size()) +
                           ", expected at most 2");
      const std::array<const Dim*, 2> target{&m, &n};
      for (size_t i = 0; i < cd.size(); ++i) {
        const Dim& want = *target[2 - cd.size() + i];
        if (cd[i].known() && cd[i].value != 1 && want.known() && cd[i].value != want.value)
          return ctx.invalid("input C " + dims_to_string(cd) + " does not broadcast to (" +
                             want.to_string() + ") along dim " + std::to_string(i));
      }
    }
    ctx.set_output(0, at.dtype, std::vector<Dim>{m, n});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool ta = c.node.attr_int("transA", 0) != 0;
    const bool tb = c.node.attr_int("transB", 0) != 0;
    const float alpha = c.node.attr_float("alpha", 1.0f);
    const float beta = c.node.attr_float("beta", 1.0f);
    if (c.has_input(0) && c.input_dtype(0) == DataType::kFloat32) {
      auto kernel = std::make_unique<FastGemm>(c.isa, ta, tb, alpha, beta);
      kernel->prepare(c);
      return std::unique_ptr<Kernel>(std::move(kernel));
    }
    return make_kernel([=](KernelContext& ctx) -> Status {
      return gemm_reference(ctx.input(0), ctx.input(1), ctx.has_input(2) ? &ctx.input(2) : nullptr,
                            ta, tb, alpha, beta, ctx.output(0));
    });
  };
  return d;
}

// ---- Einsum ------------------------------------------------------------------------------------

// A parsed equation. Labels are numbered: letters by first appearance, then one label per
// ellipsis dim (right-aligned across operands, as NumPy broadcasts them).
struct EinsumSpec {
  std::vector<std::vector<int>> operands;  // label of each axis of each operand
  std::vector<int> output;                 // label of each output axis
  int num_labels = 0;
};

// Parses `equation` for operands of the given ranks; an error message, empty when valid.
std::string parse_einsum(const std::string& equation, const std::vector<int64_t>& ranks,
                         EinsumSpec* spec) {
  std::string eq;
  for (char ch : equation)
    if (ch != ' ') eq += ch;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(
        lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != ranks.size())
    return "equation '" + equation + "' has " + std::to_string(terms.size()) +
           " operand terms, but the node has " + std::to_string(ranks.size()) + " inputs";

  // Splits a term into letters before and after its ellipsis; `has` tells whether there is one.
  auto split = [&](const std::string& term, std::string* before, std::string* after,
                   bool* has) -> std::string {
    const size_t e = term.find("...");
    *has = e != std::string::npos;
    *before = *has ? term.substr(0, e) : term;
    *after = *has ? term.substr(e + 3) : "";
    for (const std::string* part : {before, after})
      for (char ch : *part)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
          return "equation '" + equation + "' has the invalid character '" + std::string(1, ch) +
                 "'";
    return "";
  };

  std::array<int, 128> letter_label;
  letter_label.fill(-1);
  std::array<int, 128> letter_count{};
  std::vector<char> letters;
  int64_t ellipsis_rank = 0;
  struct Term {
    std::string before, after;
    bool has_ellipsis;
  };
  std::vector<Term> parsed(terms.size());
  for (size_t i = 0; i < terms.size(); ++i) {
    Term& t = parsed[i];
    if (std::string err = split(terms[i], &t.before, &t.after, &t.has_ellipsis); !err.empty())
      return err;
    const int64_t named = static_cast<int64_t>(t.before.size() + t.after.size());
    if (ranks[i] >= 0) {
      if (t.has_ellipsis ? named > ranks[i] : named != ranks[i])
        return "term '" + terms[i] + "' does not match input " + std::to_string(i) + " of rank " +
               std::to_string(ranks[i]);
      if (t.has_ellipsis) ellipsis_rank = std::max(ellipsis_rank, ranks[i] - named);
    } else if (t.has_ellipsis) {
      return "the rank of input " + std::to_string(i) + " is needed for its ellipsis";
    }
    for (const std::string* part : {&t.before, &t.after})
      for (char ch : *part) {
        const size_t c = static_cast<size_t>(ch);
        if (letter_label[c] < 0) {
          letter_label[c] = static_cast<int>(letters.size());
          letters.push_back(ch);
        }
        ++letter_count[c];
      }
  }
  const int first_ellipsis = static_cast<int>(letters.size());
  spec->num_labels = first_ellipsis + static_cast<int>(ellipsis_rank);
  auto ellipsis_labels = [&](int64_t count, std::vector<int>* out) {
    for (int64_t e = ellipsis_rank - count; e < ellipsis_rank; ++e)
      out->push_back(first_ellipsis + static_cast<int>(e));
  };
  spec->operands.assign(terms.size(), {});
  for (size_t i = 0; i < terms.size(); ++i) {
    const Term& t = parsed[i];
    std::vector<int>& labels = spec->operands[i];
    for (char ch : t.before) labels.push_back(letter_label[static_cast<size_t>(ch)]);
    if (t.has_ellipsis)
      ellipsis_labels(ranks[i] - static_cast<int64_t>(t.before.size() + t.after.size()), &labels);
    for (char ch : t.after) labels.push_back(letter_label[static_cast<size_t>(ch)]);
  }

  spec->output.clear();
  if (arrow == std::string::npos) {
    // Implicit output: the ellipsis dims, then the letters used exactly once, in
    // alphabetical (ASCII) order as NumPy does.
    ellipsis_labels(ellipsis_rank, &spec->output);
    std::vector<char> once;
    for (char ch : letters)
      if (letter_count[static_cast<size_t>(ch)] == 1) once.push_back(ch);
    std::sort(once.begin(), once.end());
    for (char ch : once) spec->output.push_back(letter_label[static_cast<size_t>(ch)]);
    return "";
  }
  Term out;
  if (std::string err = split(eq.substr(arrow + 2), &out.before, &out.after, &out.has_ellipsis);
      !err.empty())
    return err;
  if (!out.has_ellipsis && ellipsis_rank > 0)
    return "equation '" + equation + "' has an ellipsis in its inputs but not in its output";
  std::array<bool, 128> seen{};
  auto add_letters = [&](const std::string& part) -> std::string {
    for (char ch : part) {
      const size_t c = static_cast<size_t>(ch);
      if (letter_label[c] < 0)
        return "output label '" + std::string(1, ch) + "' does not appear in any input";
      if (seen[c]) return "output label '" + std::string(1, ch) + "' appears twice";
      seen[c] = true;
      spec->output.push_back(letter_label[c]);
    }
    return "";
  };
  if (std::string err = add_letters(out.before); !err.empty()) return err;
  if (out.has_ellipsis) ellipsis_labels(ellipsis_rank, &spec->output);
  if (std::string err = add_letters(out.after); !err.empty()) return err;
  return "";
}

// The size of each label over the operands' dims (1 broadcasts); an error message on conflict.
std::string einsum_label_dims(const EinsumSpec& spec, const std::vector<std::vector<Dim>>& dims,
                              std::vector<Dim>* sizes) {
  sizes->assign(static_cast<size_t>(spec.num_labels), Dim(1));
  for (size_t i = 0; i < spec.operands.size(); ++i) {
    for (size_t ax = 0; ax < spec.operands[i].size(); ++ax) {
      const Dim& d = dims[i][ax];
      Dim& s = (*sizes)[static_cast<size_t>(spec.operands[i][ax])];
      if (d.known() && d.value == 1) continue;
      if (s.known() && s.value == 1) {
        s = d;
      } else if (d.known() && s.known() && d.value != s.value) {
        return "a label has the sizes " + std::to_string(s.value) + " and " +
               std::to_string(d.value);
      } else if (d.known()) {
        s = d;
      }
    }
  }
  return "";
}

template <typename T>
void einsum_run(const EinsumSpec& spec, const std::vector<const Tensor*>& inputs,
                const Shape& label_size, Tensor& y) {
  using A = std::conditional_t<is_float_v<T>, double, uint64_t>;
  const size_t nops = inputs.size();
  // Output labels first (outer), then the summed labels (inner).
  std::vector<int> order = spec.output;
  std::vector<bool> in_output(label_size.size(), false);
  for (int l : spec.output) in_output[static_cast<size_t>(l)] = true;
  for (size_t l = 0; l < label_size.size(); ++l)
    if (!in_output[l]) order.push_back(static_cast<int>(l));
  const size_t n_out = spec.output.size();
  // strides[op][position in order]: how far operand op moves when that label steps; a
  // label repeated within an operand (a diagonal) moves along all its axes at once.
  std::vector<std::vector<int64_t>> strides(nops, std::vector<int64_t>(order.size(), 0));
  for (size_t op = 0; op < nops; ++op) {
    const std::vector<int64_t> own = strides_of(inputs[op]->shape());
    for (size_t ax = 0; ax < spec.operands[op].size(); ++ax) {
      if (inputs[op]->dim(static_cast<int64_t>(ax)) == 1) continue;  // broadcast
      const int l = spec.operands[op][ax];
      for (size_t p = 0; p < order.size(); ++p)
        if (order[p] == l) strides[op][p] += own[ax];
    }
  }
  Shape out_shape, sum_shape;
  for (size_t p = 0; p < order.size(); ++p)
    (p < n_out ? out_shape : sum_shape).push_back(label_size[static_cast<size_t>(order[p])]);
  std::vector<std::vector<int64_t>> out_strides(nops), sum_strides(nops);
  for (size_t op = 0; op < nops; ++op) {
    out_strides[op].assign(strides[op].begin(), strides[op].begin() + static_cast<int64_t>(n_out));
    sum_strides[op].assign(strides[op].begin() + static_cast<int64_t>(n_out), strides[op].end());
  }
  std::vector<const T*> data(nops);
  for (size_t op = 0; op < nops; ++op) data[op] = inputs[op]->data<T>();
  T* yd = y.data<T>();
  int64_t yi = 0;
  for (StridedIterator out(out_shape, out_strides); !out.done(); out.next(), ++yi) {
    A sum = 0;
    for (StridedIterator in(sum_shape, sum_strides); !in.done(); in.next()) {
      A prod = 1;
      for (size_t op = 0; op < nops; ++op) {
        const T v = data[op][out.offset(op) + in.offset(op)];
        if constexpr (std::is_same_v<A, uint64_t>) {
          if constexpr (std::is_signed_v<T>)
            prod *= static_cast<uint64_t>(static_cast<int64_t>(v));
          else
            prod *= static_cast<uint64_t>(v);
        } else {
          prod *= static_cast<double>(v);
        }
      }
      sum += prod;
    }
    yd[yi] = static_cast<T>(sum);
  }
}

OpDef einsum_op() {
  OpDef d;
  d.op_type = "Einsum";
  d.since_version = 12;
  d.infer = [](InferContext& ctx) -> Status {
    if (ctx.num_inputs() == 0) return ctx.invalid("expected at least one input");
    const ir::Attribute* eq = ctx.node().attr("equation");
    if (!eq) return ctx.invalid("attribute 'equation' is required");
    const DataType t = ctx.input_dtype(0);
    if (t == DataType::kBool || !dtype_is_supported(t))
      return ctx.unsupported_here(std::string("input dtype ") + dtype_name(t) +
                                  " is not supported");
    std::vector<int64_t> ranks;
    std::vector<std::vector<Dim>> dims;
    bool all_ranked = true;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) return ctx.invalid("input " + std::to_string(i) + " is missing");
      if (ctx.input_dtype(i) != t)
        return ctx.invalid("input " + std::to_string(i) + " has dtype " +
                           dtype_name(ctx.input_dtype(i)) + ", expected " + dtype_name(t) +
                           " like input 0");
      const TensorType& it = ctx.input_type(i);
      ranks.push_back(it.rank());
      all_ranked = all_ranked && it.has_rank();
      dims.push_back(it.has_rank() ? *it.dims : std::vector<Dim>());
    }
    if (!all_ranked) {
      ctx.set_output(0, TensorType(t, std::nullopt));
      return Status::ok();
    }
    EinsumSpec spec;
    if (std::string err = parse_einsum(eq->s, ranks, &spec); !err.empty()) return ctx.invalid(err);
    std::vector<Dim> sizes;
    if (std::string err = einsum_label_dims(spec, dims, &sizes); !err.empty())
      return ctx.invalid(err);
    std::vector<Dim> out;
    for (int l : spec.output) out.push_back(sizes[static_cast<size_t>(l)]);
    ctx.set_output(0, t, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const std::string equation = c.node.attr_string("equation", "");
    const std::string where = c.node.describe();
    return make_kernel([equation, where](KernelContext& ctx) -> Status {
      std::vector<const Tensor*> inputs;
      std::vector<int64_t> ranks;
      std::vector<std::vector<Dim>> dims;
      for (size_t i = 0; i < ctx.num_inputs(); ++i) {
        inputs.push_back(&ctx.input(i));
        ranks.push_back(ctx.input(i).rank());
        dims.push_back(dims_of(ctx.input(i).shape()));
      }
      EinsumSpec spec;
      std::vector<Dim> sizes;
      if (std::string err = parse_einsum(equation, ranks, &spec); !err.empty())
        return invalid_argument(where + ": " + err);
      if (std::string err = einsum_label_dims(spec, dims, &sizes); !err.empty())
        return invalid_argument(where + ": " + err);
      Shape label_size;
      for (const Dim& s : sizes) label_size.push_back(s.value);
      Tensor& y = ctx.output(0);
      visit_dtype(y.dtype(), [&]<typename T>() {
        if constexpr (!std::is_same_v<T, bool>) einsum_run<T>(spec, inputs, label_size, y);
      });
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

Status infer_matmul_shape(InferContext& ctx, bool trans_b) {
  const TensorType& at = ctx.input_type(0);
  const TensorType& bt = ctx.input_type(1);
  const DataType t = at.dtype;
  if (!at.has_rank() || !bt.has_rank()) {
    ctx.set_output(0, TensorType(t, std::nullopt));
    return Status::ok();
  }
  if (at.rank() == 0 || bt.rank() == 0) return ctx.invalid("MatMul inputs must not be scalars");
  // NumPy semantics: a 1-D A is a row vector, a 1-D B a column vector; the added dim is
  // dropped from the result. With trans_b, B is [..., N, K], so a 1-D B is [1, K].
  std::vector<Dim> ad = *at.dims, bd = *bt.dims;
  if (ad.size() == 1) ad.insert(ad.begin(), Dim(1));
  if (bd.size() == 1) {
    if (trans_b)
      bd.insert(bd.begin(), Dim(1));
    else
      bd.push_back(Dim(1));
  }
  const Dim& ka = ad.back();
  const Dim& kb = trans_b ? bd.back() : bd[bd.size() - 2];
  const Dim& n = trans_b ? bd[bd.size() - 2] : bd.back();
  if (ka.known() && kb.known() && ka.value != kb.value)
    return ctx.invalid("inner dims differ: A " + dims_to_string(*at.dims) + " and B " +
                       dims_to_string(*bt.dims) + (trans_b ? " (B transposed)" : ""));
  TensorType abatch(t, std::vector<Dim>(ad.begin(), ad.end() - 2));
  TensorType bbatch(t, std::vector<Dim>(bd.begin(), bd.end() - 2));
  BRINK_ASSIGN_OR_RETURN(auto batch, broadcast_dims(ctx, {&abatch, &bbatch}));
  std::vector<Dim> out = *batch;
  if (at.rank() > 1) out.push_back(ad[ad.size() - 2]);
  if (bt.rank() > 1) out.push_back(n);
  ctx.set_output(0, t, std::move(out));
  return Status::ok();
}

Status matmul_reference(const Tensor& a, const Tensor& b, Tensor& y) {
  Shape as = a.shape(), bs = b.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t m = as[as.size() - 2], kk = as.back(), n = bs.back();
  const Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  Shape batch;
  if (!broadcast_shapes(abatch, bbatch, &batch) || bs[bs.size() - 2] != kk)
    return invalid_argument("MatMul: shapes " + shape_to_string(a.shape()) + " and " +
                            shape_to_string(b.shape()) + " do not match");
  // Strides in whole matrices, 0 along broadcast batch dims.
  StridedIterator it(batch, {broadcast_strides(abatch, batch), broadcast_strides(bbatch, batch)});
  visit_dtype(a.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool> && !std::is_same_v<T, int8_t> &&
                  !std::is_same_v<T, uint8_t> && !std::is_same_v<T, int16_t> &&
                  !std::is_same_v<T, uint16_t>) {
      using A = mm_acc_t<T>;
      std::vector<A> bbuf, acc_buf;
      if constexpr (!std::is_same_v<A, T>) acc_buf.resize(static_cast<size_t>(m * n));
      T* yd = y.data<T>();
      if (shape_numel(batch) == 0 || m * n == 0) return;
      for (int64_t bi = 0; !it.done(); it.next(), ++bi) {
        const T* ap = a.data<T>() + it.offset(0) * m * kk;
        const A* bp = contiguous_b<A>(b.data<T>() + it.offset(1) * kk * n, kk, n, false, &bbuf);
        A* acc;
        if constexpr (std::is_same_v<A, T>)
          acc = yd + bi * m * n;
        else
          acc = acc_buf.data();
        std::fill(acc, acc + m * n, A(0));
        gemm_accumulate<A>(m, n, kk, ap, kk, 1, bp, acc);
        if constexpr (!std::is_same_v<A, T>)
          for (int64_t i = 0; i < m * n; ++i) yd[bi * m * n + i] = static_cast<T>(acc[i]);
      }
    }
  });
  return Status::ok();
}

Status gemm_reference(const Tensor& a, const Tensor& b, const Tensor* cin, bool ta, bool tb,
                      float alpha_f, float beta_f, Tensor& y) {
  const double alpha = alpha_f, beta = beta_f;
  const int64_t m = y.dim(0), n = y.dim(1);
  const int64_t kk = ta ? a.dim(0) : a.dim(1);
  const std::vector<int64_t> cstr =
      cin ? broadcast_strides(cin->shape(), {m, n}) : std::vector<int64_t>{0, 0};
  visit_dtype(a.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool> && !std::is_same_v<T, int8_t> &&
                  !std::is_same_v<T, uint8_t> && !std::is_same_v<T, int16_t> &&
                  !std::is_same_v<T, uint16_t>) {
      using A = mm_acc_t<T>;
      std::vector<A> bbuf, acc(static_cast<size_t>(m * n), A(0));
      const A* bp = contiguous_b<A>(b.data<T>(), kk, n, tb, &bbuf);
      // A' (i, k) is a[i][k], or a[k][i] with transA.
      const int64_t a_row = ta ? 1 : kk, a_col = ta ? m : 1;
      gemm_accumulate<A>(m, n, kk, a.data<T>(), a_row, a_col, bp, acc.data());
      T* yd = y.data<T>();
      const T* cd = cin ? cin->data<T>() : nullptr;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          const A s = acc[static_cast<size_t>(i * n + j)];
          if constexpr (std::is_same_v<A, uint64_t>) {
            // Integers: exact when alpha = beta = 1 (the usual case), else through double.
            const uint64_t cv = cd ? to_acc<A>(cd[i * cstr[0] + j * cstr[1]]) : 0;
            if (alpha == 1.0 && beta == 1.0) {
              yd[i * n + j] = static_cast<T>(s + cv);
            } else {
              const double sv = static_cast<double>(static_cast<T>(s));
              const double cvd = cd ? static_cast<double>(cd[i * cstr[0] + j * cstr[1]]) : 0.0;
              yd[i * n + j] = static_cast<T>(alpha * sv + beta * cvd);
            }
          } else {
            A r = static_cast<A>(alpha) * s;
            if (cd) r += static_cast<A>(beta) * static_cast<A>(cd[i * cstr[0] + j * cstr[1]]);
            yd[i * n + j] = static_cast<T>(r);
          }
        }
      }
    }
  });
  return Status::ok();
}

void register_linalg_ops(OpRegistry& r) {
  // MatMul: 9 adds i32/i64/u32/u64, 13 bf16.
  if constexpr (op_selected("", "MatMul")) r.add(matmul_op(1, 8));
  if constexpr (op_selected("", "MatMul")) r.add(matmul_op(9, 12));
  if constexpr (op_selected("", "MatMul")) r.add(matmul_op(13, 21));
  // Gemm: 7 makes C broadcast unidirectionally, 9 adds integer types, 11 makes C optional,
  // 13 adds bf16.
  if constexpr (op_selected("", "Gemm")) r.add(gemm_op(7, 8));
  if constexpr (op_selected("", "Gemm")) r.add(gemm_op(9, 10));
  if constexpr (op_selected("", "Gemm")) r.add(gemm_op(11, 12));
  if constexpr (op_selected("", "Gemm")) r.add(gemm_op(13, 21));
  if constexpr (op_selected("", "Einsum")) r.add(einsum_op());
}

}  // namespace brink::ops
