// Recurrent operators: LSTM, GRU and RNN (opsets 7-13, and 14-21 which add `layout`).
//
// Every feature of the spec is implemented: forward / reverse / bidirectional, optional
// bias, per-batch sequence_lens, initial states, LSTM peepholes and input_forget, GRU's
// linear_before_reset, clip, and the activations / activation_alpha / activation_beta
// attributes. Where the spec is silent we follow ONNX Runtime, the implementation models are
// validated against:
//   - a reverse direction runs over each sequence's own valid steps, from its last one back;
//   - Y is zero past a sequence's length, Y_h / Y_c hold the state after its last valid step,
//     and are zero for a sequence of length 0;
//   - clip bounds the pre-activation gate values, not the cell state fed to LSTM's h();
//   - activation_alpha / activation_beta are consumed in order by the activations that take
//     them (Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu), with ORT's
//     defaults when the list runs out (LeakyRelu 0.01, HardSigmoid 0.2 / 0.5, Elu 1, else 0).
// f16 computes in float and keeps the recurrent state in float between steps; f64 computes
// in double.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

enum class CellKind { kLstm, kGru, kRnn };

// Gates per cell in W / R (LSTM: i o f c; GRU: z r h; RNN: i).
int num_gates(CellKind k) {
  return k == CellKind::kLstm ? 4 : k == CellKind::kGru ? 3 : 1;
}
// Activations per direction (LSTM: f g h; GRU: f g; RNN: f).
int num_activations(CellKind k) {
  return k == CellKind::kLstm ? 3 : k == CellKind::kGru ? 2 : 1;
}
const char* cell_name(CellKind k) {
  return k == CellKind::kLstm ? "LSTM" : k == CellKind::kGru ? "GRU" : "RNN";
}

// ---- activations --------------------------------------------------------------------------

enum class ActKind {
  kRelu,
  kTanh,
  kSigmoid,
  kAffine,
  kLeakyRelu,
  kThresholdedRelu,
  kScaledTanh,
  kHardSigmoid,
  kElu,
  kSoftsign,
  kSoftplus
};

struct Activation {
  ActKind kind = ActKind::kTanh;
  float alpha = 0.f, beta = 0.f;

  template <typename C>
  C operator()(C x) const {
    const C a = static_cast<C>(alpha), b = static_cast<C>(beta);
    switch (kind) {
      case ActKind::kRelu:
        return x > C(0) ? x : C(0);
      case ActKind::kTanh:
        return std::tanh(x);
      case ActKind::kSigmoid:
        return C(1) / (C(1) + std::exp(-x));
      case ActKind::kAffine:
        return a * x + b;
      case ActKind::kLeakyRelu:
        return x >= C(0) ? x : a * x;
      case ActKind::kThresholdedRelu:
        return x > a ? x : C(0);
      case ActKind::kScaledTanh:
        return a * std::tanh(b * x);
      case ActKind::kHardSigmoid:
        return std::clamp(a * x + b, C(0), C(1));
      case ActKind::kElu:
        return x >= C(0) ? x : a * (std::exp(x) - C(1));
      case ActKind::kSoftsign:
        return x / (C(1) + std::abs(x));
      case ActKind::kSoftplus:
        return x > C(20) ? x : std::log1p(std::exp(x));
    }
    return x;
  }
};

struct ActInfo {
  const char* name;  // lower case
  ActKind kind;
  bool uses_alpha, uses_beta;
  float default_alpha, default_beta;
};

constexpr ActInfo kActivations[] = {
    {"relu", ActKind::kRelu, false, false, 0.f, 0.f},
    {"tanh", ActKind::kTanh, false, false, 0.f, 0.f},
    {"sigmoid", ActKind::kSigmoid, false, false, 0.f, 0.f},
    {"affine", ActKind::kAffine, true, true, 0.f, 0.f},
    {"leakyrelu", ActKind::kLeakyRelu, true, false, 0.01f, 0.f},
    {"thresholdedrelu", ActKind::kThresholdedRelu, true, false, 0.f, 0.f},
    {"scaledtanh", ActKind::kScaledTanh, true, true, 0.f, 0.f},
    {"hardsigmoid", ActKind::kHardSigmoid, true, true, 0.2f, 0.5f},
    {"elu", ActKind::kElu, true, false, 1.0f, 0.f},
    {"softsign", ActKind::kSoftsign, false, false, 0.f, 0.f},
    {"softplus", ActKind::kSoftplus, false, false, 0.f, 0.f},
};

// num_directions * num_activations(kind) activations, direction-major.
Result<std::vector<Activation>> parse_activations(const ir::Node& node, CellKind kind,
                                                  int num_dirs) {
  const size_t per_dir = static_cast<size_t>(num_activations(kind));
  std::vector<std::string> names;
  if (const ir::Attribute* a = node.attr("activations")) names = a->strings;
  if (names.empty()) {
    static const char* const kLstm[] = {"Sigmoid", "Tanh", "Tanh"};
    static const char* const kGru[] = {"Sigmoid", "Tanh"};
    static const char* const kRnn[] = {"Tanh"};
    const char* const* defaults = kind == CellKind::kLstm  ? kLstm
                                  : kind == CellKind::kGru ? kGru
                                                           : kRnn;
    for (int d = 0; d < num_dirs; ++d)
      for (size_t i = 0; i < per_dir; ++i) names.push_back(defaults[i]);
  }
  if (names.size() != per_dir * static_cast<size_t>(num_dirs))
    return invalid_model(node.describe() + ": activations has " + std::to_string(names.size()) +
                         " entries, expected " +
                         std::to_string(per_dir * static_cast<size_t>(num_dirs)) + " (" +
                         std::to_string(per_dir) + " per direction)");
  const std::vector<float> alphas = node.attr_floats("activation_alpha");
  const std::vector<float> betas = node.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::vector<Activation> out;
  for (const std::string& name : names) {
    std::string lower = name;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const ActInfo* info = nullptr;
    for (const ActInfo& a : kActivations)
      if (lower == a.name) info = &a;
    if (!info)
      return unsupported(node.describe() + ": activation '" + name +
                         "' is not supported (expected one of Relu, Tanh, Sigmoid, Affine, "
                         "LeakyRelu, ThresholdedRelu, "
                         "ScaledTanh, HardSigmoid, Elu, Softsign, Softplus)");
    Activation act;
    act.kind = info->kind;
    if (info->uses_alpha) act.alpha = ai < alphas.size() ? alphas[ai++] : info->default_alpha;
    if (info->uses_beta) act.beta = bi < betas.size() ? betas[bi++] : info->default_beta;
    out.push_back(act);
  }
  return out;
}

// ---- attributes ---------------------------------------------------------------------------

struct RnnConfig {
  CellKind kind = CellKind::kLstm;
  int num_dirs = 1;
  bool reverse_only = false;  // direction == "reverse"
  int64_t hidden_size = -1;   // -1: taken from R
  std::optional<float> clip;
  bool input_forget = false;
  bool linear_before_reset = false;
  int64_t layout = 0;
  std::vector<Activation> acts;
  bool want_y = false, want_yh = false, want_yc = false;
};

Result<RnnConfig> parse_config(const ir::Node& node, int64_t opset, CellKind kind) {
  RnnConfig c;
  c.kind = kind;
  const std::string where = node.describe();
  const std::string dir = node.attr_string("direction", "forward");
  if (dir == "bidirectional") {
    c.num_dirs = 2;
  } else if (dir == "reverse") {
    c.reverse_only = true;
  } else if (dir != "forward") {
    return invalid_model(where + ": direction '" + dir +
                         "' is not one of forward, reverse, bidirectional");
  }
  if (node.attr("hidden_size")) {
    c.hidden_size = node.attr_int("hidden_size", -1);
    if (c.hidden_size < 1)
      return invalid_model(where + ": hidden_size must be >= 1, found " +
                           std::to_string(c.hidden_size));
  }
  if (node.attr("clip")) {
    c.clip = node.attr_float("clip", 0.f);
    if (!(*c.clip > 0.f))
      return invalid_model(where + ": clip must be > 0, found " + std::to_string(*c.clip));
  }
  if (kind == CellKind::kLstm) c.input_forget = node.attr_int("input_forget", 0) != 0;
  if (kind == CellKind::kGru) c.linear_before_reset = node.attr_int("linear_before_reset", 0) != 0;
  if (opset >= 14) {
    c.layout = node.attr_int("layout", 0);
    if (c.layout != 0 && c.layout != 1)
      return invalid_model(where + ": layout must be 0 or 1, found " + std::to_string(c.layout));
  }
  BRINK_ASSIGN_OR_RETURN(c.acts, parse_activations(node, kind, c.num_dirs));
  auto present = [&](size_t i) {
    return node.outputs.size() > i && node.outputs[i] != ir::kNoValue;
  };
  c.want_y = present(0);
  c.want_yh = present(1);
  c.want_yc = kind == CellKind::kLstm && present(2);
  return c;
}

// ---- shape inference ---------------------------------------------------------------------

// Compares an input's dims with the expected ones where both are known.
Status expect_dims(const InferContext& ctx, size_t i, const char* name,
                   const std::vector<Dim>& want) {
  if (!ctx.has_input(i) || !ctx.input_type(i).dims) return Status::ok();
  const auto& have = *ctx.input_type(i).dims;
  auto render = [](const std::vector<Dim>& d) {
    std::string s = "[";
    for (size_t k = 0; k < d.size(); ++k) s += (k ? ", " : "") + d[k].to_string();
    return s + "]";
  };
  bool ok = have.size() == want.size();
  for (size_t k = 0; ok && k < have.size(); ++k)
    if (have[k].known() && want[k].known() && have[k].value != want[k].value) ok = false;
  if (!ok)
    return ctx.invalid(std::string(name) + " has shape " + render(have) + ", expected " +
                       render(want));
  return Status::ok();
}

Status infer_rnn(InferContext& ctx, CellKind kind) {
  BRINK_ASSIGN_OR_RETURN(RnnConfig c, parse_config(ctx.node(), ctx.opset(), kind));
  for (size_t i : {0, 1, 2}) {
    if (!ctx.has_input(i))
      return ctx.invalid("input " + std::to_string(i) + " (X, W, R) is required");
  }
  const DataType t = ctx.input_dtype(0);
  if (t != DataType::kFloat32 && t != DataType::kFloat64 && t != DataType::kFloat16)
    return ctx.unsupported_here(std::string("X has element type ") + dtype_name(t) +
                                ", expected f32, f64 or f16");
  for (size_t i : {1, 2, 3, 5, 6, 7})
    if (ctx.has_input(i) && ctx.input_dtype(i) != t)
      return ctx.invalid("input " + std::to_string(i) + " has element type " +
                         dtype_name(ctx.input_dtype(i)) + ", expected X's " + dtype_name(t));
  if (ctx.has_input(4) && ctx.input_dtype(4) != DataType::kInt32 &&
      ctx.input_dtype(4) != DataType::kInt64)
    return ctx.invalid(std::string("sequence_lens must be i32, found ") +
                       dtype_name(ctx.input_dtype(4)));
  if (kind != CellKind::kLstm && ctx.num_inputs() > 6)
    return ctx.invalid(std::string(cell_name(kind)) + " takes at most 6 inputs");

  const int64_t G = num_gates(kind);
  Dim seq, batch, input;
  if (const auto& xd = ctx.input_type(0).dims) {
    if (xd->size() != 3)
      return ctx.invalid("X has rank " + std::to_string(xd->size()) + ", expected 3");
    seq = (*xd)[c.layout ? 1 : 0];
    batch = (*xd)[c.layout ? 0 : 1];
    input = (*xd)[2];
  }
  Dim hidden = c.hidden_size >= 0 ? Dim(c.hidden_size) : Dim();
  if (!hidden.known()) {
    if (const auto& rd = ctx.input_type(2).dims; rd && rd->size() == 3 && (*rd)[2].known())
      hidden = (*rd)[2];
  }
  const Dim gh = hidden.known() ? Dim(G * hidden.value) : Dim();
  const Dim nd(c.num_dirs);
  BRINK_RETURN_IF_ERROR(expect_dims(ctx, 1, "W", {nd, gh, input}));
  BRINK_RETURN_IF_ERROR(expect_dims(ctx, 2, "R", {nd, gh, hidden}));
  BRINK_RETURN_IF_ERROR(
      expect_dims(ctx, 3, "B", {nd, hidden.known() ? Dim(2 * G * hidden.value) : Dim()}));
  BRINK_RETURN_IF_ERROR(expect_dims(ctx, 4, "sequence_lens", {batch}));
  const std::vector<Dim> state =
      c.layout ? std::vector<Dim>{batch, nd, hidden} : std::vector<Dim>{nd, batch, hidden};
  BRINK_RETURN_IF_ERROR(expect_dims(ctx, 5, "initial_h", state));
  if (kind == CellKind::kLstm) {
    BRINK_RETURN_IF_ERROR(expect_dims(ctx, 6, "initial_c", state));
    BRINK_RETURN_IF_ERROR(
        expect_dims(ctx, 7, "P", {nd, hidden.known() ? Dim(3 * hidden.value) : Dim()}));
  }
  const std::vector<Dim> y = c.layout ? std::vector<Dim>{batch, seq, nd, hidden}
                                      : std::vector<Dim>{seq, nd, batch, hidden};
  ctx.set_output(0, t, y);
  ctx.set_output(1, t, state);
  if (kind == CellKind::kLstm) ctx.set_output(2, t, state);
  return Status::ok();
}

// ---- compute -----------------------------------------------------------------------------

template <typename C, typename T>
std::vector<C> to_compute(const Tensor& t) {
  std::vector<C> v(static_cast<size_t>(t.numel()));
  const T* p = t.data<T>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<C>(p[i]);
  return v;
}

// out[r] += M[r, :] . v for r in [0, rows).
template <typename C>
void matvec_add(const C* m, const C* v, int64_t rows, int64_t cols, C* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const C* row = m + r * cols;
    C acc = 0;
    for (int64_t k = 0; k < cols; ++k) acc += row[k] * v[k];
    out[r] += acc;
  }
}

template <typename T>
Status run_rnn(const RnnConfig& c, KernelContext& ctx) {
  using C = compute_t<T>;
  const Tensor& X = ctx.input(0);
  const int64_t seq = X.dim(c.layout ? 1 : 0), batch = X.dim(c.layout ? 0 : 1), I = X.dim(2);
  const int64_t H = ctx.input(2).dim(2);
  const int64_t G = num_gates(c.kind), GH = G * H, nd = c.num_dirs;

  std::vector<int64_t> lens(static_cast<size_t>(batch), seq);
  if (ctx.has_input(4)) {
    const Tensor& sl = ctx.input(4);
    for (int64_t b = 0; b < batch; ++b) {
      lens[static_cast<size_t>(b)] = sl.element_as_int64(b);
      if (lens[static_cast<size_t>(b)] < 0 || lens[static_cast<size_t>(b)] > seq)
        return invalid_argument(
            std::string(cell_name(c.kind)) + ": sequence_lens[" + std::to_string(b) + "] is " +
            std::to_string(lens[static_cast<size_t>(b)]) + ", expected 0.." + std::to_string(seq));
    }
  }
  const std::vector<C> x = to_compute<C, T>(X);
  const std::vector<C> W = to_compute<C, T>(ctx.input(1));
  const std::vector<C> R = to_compute<C, T>(ctx.input(2));
  const std::vector<C> B = ctx.has_input(3)
                               ? to_compute<C, T>(ctx.input(3))
                               : std::vector<C>(static_cast<size_t>(nd * 2 * GH), C(0));
  const bool lstm = c.kind == CellKind::kLstm;
  const std::vector<C> h0 = ctx.has_input(5) ? to_compute<C, T>(ctx.input(5)) : std::vector<C>();
  const std::vector<C> c0 =
      lstm && ctx.has_input(6) ? to_compute<C, T>(ctx.input(6)) : std::vector<C>();
  const std::vector<C> P = lstm && ctx.has_input(7)
                               ? to_compute<C, T>(ctx.input(7))
                               : std::vector<C>(static_cast<size_t>(nd * 3 * H), C(0));

  T* Y = c.want_y ? ctx.output(0).data<T>() : nullptr;
  T* Yh = c.want_yh ? ctx.output(1).data<T>() : nullptr;
  T* Yc = c.want_yc ? ctx.output(2).data<T>() : nullptr;
  if (Y) std::fill(Y, Y + ctx.output(0).numel(), T(0.0f));

  // Flat offsets under either layout.
  auto x_at = [&](int64_t t, int64_t b) { return (c.layout ? b * seq + t : t * batch + b) * I; };
  auto y_at = [&](int64_t t, int64_t d, int64_t b) {
    return (c.layout ? (b * seq + t) * nd + d : (t * nd + d) * batch + b) * H;
  };
  auto state_at = [&](int64_t d, int64_t b) { return (c.layout ? b * nd + d : d * batch + b) * H; };
  const C clip = c.clip ? static_cast<C>(*c.clip) : C(0);
  auto clipped = [&](C v) { return c.clip ? std::clamp(v, -clip, clip) : v; };

  std::vector<C> gates(static_cast<size_t>(GH)), h(static_cast<size_t>(H)),
      cell(static_cast<size_t>(H));
  std::vector<C> rh(static_cast<size_t>(H)), hlin(static_cast<size_t>(H));
  const size_t na = static_cast<size_t>(num_activations(c.kind));
  const bool lbr = c.kind == CellKind::kGru && c.linear_before_reset;
  for (int64_t d = 0; d < nd; ++d) {
    const bool reverse = c.reverse_only || d == 1;
    const C* Wd = W.data() + d * GH * I;
    const C* Rd = R.data() + d * GH * H;
    const C* wb = B.data() + d * 2 * GH;
    const C* rb = wb + GH;
    const C* Pd = P.data() + d * 3 * H;  // peepholes in i, o, f order
    const Activation& f = c.acts[static_cast<size_t>(d) * na];
    const Activation& g = c.acts[static_cast<size_t>(d) * na + (na > 1 ? 1 : 0)];
    const Activation& ha = c.acts[static_cast<size_t>(d) * na + (na > 2 ? 2 : 0)];
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t len = lens[static_cast<size_t>(b)];
      for (int64_t j = 0; j < H; ++j) {
        h[static_cast<size_t>(j)] = h0.empty() ? C(0) : h0[static_cast<size_t>(state_at(d, b) + j)];
        cell[static_cast<size_t>(j)] =
            c0.empty() ? C(0) : c0[static_cast<size_t>(state_at(d, b) + j)];
      }
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        const C* xt = x.data() + x_at(t, b);
        // With linear_before_reset, GRU's recurrent candidate bias goes inside the reset product.
        for (int64_t j = 0; j < GH; ++j)
          gates[static_cast<size_t>(j)] = wb[j] + (lbr && j >= 2 * H ? C(0) : rb[j]);
        if (c.kind == CellKind::kGru) {
          // z and r see R h directly; the candidate gate's recurrent term depends on the reset
          // gate, so it is computed separately below.
          matvec_add(Wd, xt, GH, I, gates.data());
          matvec_add(Rd, h.data(), 2 * H, H, gates.data());
          C* gz = gates.data();
          C* gr = gates.data() + H;
          C* gh = gates.data() + 2 * H;
          for (int64_t j = 0; j < 2 * H; ++j) gz[j] = f(clipped(gz[j]));
          if (lbr) {
            // h~ = g(Wh x + Wbh + r * (Rh h + Rbh)); gh holds Wh x + Wbh so far.
            for (int64_t j = 0; j < H; ++j) hlin[static_cast<size_t>(j)] = rb[2 * H + j];
            matvec_add(Rd + 2 * H * H, h.data(), H, H, hlin.data());
            for (int64_t j = 0; j < H; ++j) gh[j] += gr[j] * hlin[static_cast<size_t>(j)];
          } else {
            for (int64_t j = 0; j < H; ++j)
              rh[static_cast<size_t>(j)] = gr[j] * h[static_cast<size_t>(j)];
            matvec_add(Rd + 2 * H * H, rh.data(), H, H, gh);
          }
          for (int64_t j = 0; j < H; ++j) {
            const C cand = g(clipped(gh[j]));
            h[static_cast<size_t>(j)] = (C(1) - gz[j]) * cand + gz[j] * h[static_cast<size_t>(j)];
          }
        } else {
          matvec_add(Wd, xt, GH, I, gates.data());
          matvec_add(Rd, h.data(), GH, H, gates.data());
          if (c.kind == CellKind::kRnn) {
            for (int64_t j = 0; j < H; ++j)
              h[static_cast<size_t>(j)] = f(clipped(gates[static_cast<size_t>(j)]));
          } else {
            const C* gi = gates.data();
            const C* go = gi + H;
            const C* gf = gi + 2 * H;
            const C* gc = gi + 3 * H;
            for (int64_t j = 0; j < H; ++j) {
              const size_t k = static_cast<size_t>(j);
              const C c_prev = cell[k];
              const C i = f(clipped(gi[j] + Pd[j] * c_prev));
              const C fg = c.input_forget ? C(1) - i : f(clipped(gf[j] + Pd[2 * H + j] * c_prev));
              const C cand = g(clipped(gc[j]));
              cell[k] = fg * c_prev + i * cand;
              const C o = f(clipped(go[j] + Pd[H + j] * cell[k]));
              h[k] = o * ha(cell[k]);
            }
          }
        }
        if (Y)
          for (int64_t j = 0; j < H; ++j)
            Y[y_at(t, d, b) + j] = static_cast<T>(h[static_cast<size_t>(j)]);
      }
      for (int64_t j = 0; j < H; ++j) {
        if (Yh)
          Yh[state_at(d, b) + j] = len > 0 ? static_cast<T>(h[static_cast<size_t>(j)]) : T(0.0f);
        if (Yc)
          Yc[state_at(d, b) + j] = len > 0 ? static_cast<T>(cell[static_cast<size_t>(j)]) : T(0.0f);
      }
    }
  }
  return Status::ok();
}

OpDef rnn_op(CellKind kind, int since, int max) {
  OpDef d;
  d.op_type = cell_name(kind);
  d.since_version = since;
  d.max_version = max;
  d.infer = [kind](InferContext& ctx) -> Status { return infer_rnn(ctx, kind); };
  d.create = [kind](const KernelCreateContext& kc) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(RnnConfig c, parse_config(kc.node, kc.opset, kind));
    return make_kernel([c](KernelContext& ctx) -> Status {
      Status s = Status::ok();
      visit_dtype(ctx.input(0).dtype(), [&]<typename T>() {
        if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                      std::is_same_v<T, Float16>)
          s = run_rnn<T>(c, ctx);
      });
      return s;
    });
  };
  return d;
}

}  // namespace

void register_rnn_ops(OpRegistry& r) {
  if constexpr (op_selected("", "LSTM")) r.add(rnn_op(CellKind::kLstm, 7, 13));
  if constexpr (op_selected("", "LSTM")) r.add(rnn_op(CellKind::kLstm, 14, 21));
  if constexpr (op_selected("", "GRU")) r.add(rnn_op(CellKind::kGru, 7, 13));
  if constexpr (op_selected("", "GRU")) r.add(rnn_op(CellKind::kGru, 14, 21));
  if constexpr (op_selected("", "RNN")) r.add(rnn_op(CellKind::kRnn, 7, 13));
  if constexpr (op_selected("", "RNN")) r.add(rnn_op(CellKind::kRnn, 14, 21));
}

}  // namespace brink::ops
