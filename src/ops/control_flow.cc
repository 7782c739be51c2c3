// Control flow: If, Loop and Scan, whose bodies are subgraphs.
//
// The runtime compiles each subgraph once (KernelCreateContext::compile_subgraph) and the
// kernel runs it per branch taken or per iteration, reading values of enclosing graphs
// through KernelContext::outer_scope(). Only tensor values are supported: sequence and
// optional types are refused by the importer. Scan-8 runs only full-length sequences
// (sequence_lens, when given, equal to the scan axis).
//
// Types at load: a subgraph is compiled for concrete input types when they cannot change
// between iterations (the body maps them onto themselves), otherwise for the same ranks
// with unknown dims. At run time infer gives outputs unknown dims and the kernels set them.
#include <cstring>
#include <limits>

#include "ops/op_groups.h"
#include "ops/op_selection.h"

namespace brink::ops {

namespace {

using Program = std::shared_ptr<const SubgraphProgram>;

const ir::Graph* graph_attr(const ir::Node& node, const std::string& name) {
  const ir::Attribute* a = node.attr(name);
  return a && a->type == ir::AttrType::kGraph ? a->g.get() : nullptr;
}

bool same_type(const TensorType& a, const TensorType& b) {
  return a.dtype == b.dtype && a.dims == b.dims;
}

// The same rank with every dim unknown: what a value that may change shape is known to be.
TensorType rank_only(const TensorType& t) {
  if (!t.dims) return t;
  return TensorType(t.dtype, std::vector<Dim>(t.dims->size()));
}

// The type both `a` and `b` fit (dtypes must agree): dims kept where they are equal.
TensorType merge_types(const TensorType& a, const TensorType& b) {
  if (!a.dims || !b.dims || a.dims->size() != b.dims->size()) return TensorType(a.dtype, {});
  std::vector<Dim> dims = *a.dims;
  for (size_t i = 0; i < dims.size(); ++i)
    if (!(dims[i] == (*b.dims)[i])) dims[i] = Dim();
  return TensorType(a.dtype, std::move(dims));
}

TensorType insert_dim(const TensorType& t, int64_t axis, Dim d) {
  if (!t.dims) return TensorType(t.dtype, {});
  std::vector<Dim> dims = *t.dims;
  dims.insert(dims.begin() + axis, d);
  return TensorType(t.dtype, std::move(dims));
}

// The element type a subgraph declares for its output k (kUndefined when it declares none).
DataType declared_output_dtype(const ir::Graph& g, size_t k) {
  return k < g.outputs.size() ? g.value(g.outputs[k]).type.dtype : DataType::kUndefined;
}

// Index `index` of `t` along `axis`, with that axis removed.
Tensor slice_along(const Tensor& t, int64_t axis, int64_t index) {
  Shape shape = t.shape();
  const int64_t len = shape[static_cast<size_t>(axis)];
  shape.erase(shape.begin() + axis);
  Tensor out = Tensor::empty(t.dtype(), shape);
  const size_t elem = dtype_size(t.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= t.dim(i);
  for (int64_t i = axis + 1; i < t.rank(); ++i) inner *= t.dim(i);
  const size_t block = static_cast<size_t>(inner) * elem;
  const auto* src = static_cast<const char*>(t.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + static_cast<size_t>(o) * block,
                src + static_cast<size_t>(o * len + index) * block, block);
  return out;
}

// Stacks equally shaped `parts` along a new axis `axis`; part i lands at position i, or
// at n-1-i when `reverse`. With no parts the result has length 0 along `axis` and the
// element type's static dims (unknown ones taken as 0).
Result<Tensor> stack_along(const std::vector<Tensor>& parts, int64_t axis, bool reverse,
                           const TensorType& part_type, const std::string& what) {
  if (parts.empty()) {
    Shape shape;
    if (part_type.dims)
      for (const Dim& d : *part_type.dims) shape.push_back(d.known() ? d.value : 0);
    shape.insert(shape.begin() + std::min<int64_t>(axis, static_cast<int64_t>(shape.size())), 0);
    const DataType dt =
        part_type.dtype == DataType::kUndefined ? DataType::kFloat32 : part_type.dtype;
    return Tensor::empty(dt, shape);
  }
  const Tensor& first = parts.front();
  for (size_t i = 1; i < parts.size(); ++i)
    if (parts[i].dtype() != first.dtype() || parts[i].shape() != first.shape())
      return invalid_argument(what + " is " + dtype_name(parts[i].dtype()) +
                              shape_to_string(parts[i].shape()) + " in iteration " +
                              std::to_string(i) + " but " + dtype_name(first.dtype()) +
                              shape_to_string(first.shape()) + " in iteration 0");
  const int64_t n = static_cast<int64_t>(parts.size());
  Shape shape = first.shape();
  shape.insert(shape.begin() + axis, n);
  Tensor out = Tensor::empty(first.dtype(), shape);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= first.dim(i);
  for (int64_t i = axis; i < first.rank(); ++i) inner *= first.dim(i);
  const size_t block = static_cast<size_t>(inner) * dtype_size(first.dtype());
  auto* dst = static_cast<char*>(out.raw_data());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = reverse ? n - 1 - i : i;
    const auto* src = static_cast<const char*>(parts[static_cast<size_t>(i)].raw_data());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + static_cast<size_t>(o * n + pos) * block,
                  src + static_cast<size_t>(o) * block, block);
  }
  return out;
}

Result<bool> scalar_bool(const Tensor& t, const std::string& what) {
  if (t.numel() != 1)
    return invalid_argument(what + " has " + std::to_string(t.numel()) + " elements, expected 1");
  return t.element_as_int64(0) != 0;
}

// Compiles a body whose first inputs are `fixed` and whose next inputs are state values
// (loop-carried) starting as `state`, mapped by the body onto its outputs
// [state_out_offset, state_out_offset + state.size()). The state keeps its exact types when
// the body maps them onto themselves, else only their ranks.
Result<Program> compile_stateful_body(const SubgraphCompileFn& compile, const ir::Graph& body,
                                      const std::vector<TensorType>& fixed,
                                      const std::vector<TensorType>& state,
                                      const std::vector<TensorType>& trailing,
                                      size_t state_out_offset) {
  auto inputs_with = [&](bool exact) {
    std::vector<TensorType> in = fixed;
    for (const TensorType& t : state) in.push_back(exact ? t : rank_only(t));
    in.insert(in.end(), trailing.begin(), trailing.end());
    return in;
  };
  auto exact = compile(body, inputs_with(true));
  if (exact.is_ok()) {
    const auto& out = (*exact)->output_types();
    bool stable = out.size() >= state_out_offset + state.size();
    for (size_t k = 0; stable && k < state.size(); ++k)
      stable = same_type(out[state_out_offset + k], state[k]);
    if (stable) return exact;
  }
  return compile(body, inputs_with(false));
}

Status check_state_dtypes(const InferContext& ctx, const std::vector<TensorType>& out,
                          const std::vector<TensorType>& state, size_t offset) {
  for (size_t k = 0; k < state.size(); ++k)
    if (out[offset + k].dtype != state[k].dtype)
      return ctx.invalid("body output " + std::to_string(offset + k) + " is " +
                         dtype_name(out[offset + k].dtype) + " but the state it updates is " +
                         dtype_name(state[k].dtype));
  return Status::ok();
}

// ---- If ---------------------------------------------------------------------------------

Status if_infer(InferContext& ctx) {
  const ir::Node& node = ctx.node();
  if (!ctx.has_input(0)) return ctx.invalid("input 0 (cond) is missing");
  if (ctx.input_dtype(0) != DataType::kBool)
    return ctx.invalid(std::string("cond is ") + dtype_name(ctx.input_dtype(0)) +
                       ", expected bool");
  const ir::Graph* then_g = graph_attr(node, "then_branch");
  const ir::Graph* else_g = graph_attr(node, "else_branch");
  if (!then_g || !else_g) return ctx.invalid("attributes then_branch and else_branch are required");
  for (const ir::Graph* g : {then_g, else_g})
    if (g->outputs.size() != ctx.num_outputs())
      return ctx.invalid("a branch has " + std::to_string(g->outputs.size()) +
                         " outputs but the node has " + std::to_string(ctx.num_outputs()));
  if (!ctx.compile_subgraph()) {
    for (size_t k = 0; k < ctx.num_outputs(); ++k)
      ctx.set_output(k, TensorType(declared_output_dtype(*then_g, k), {}));
    return Status::ok();
  }
  BRINK_ASSIGN_OR_RETURN(Program then_p, (*ctx.compile_subgraph())(*then_g, {}));
  BRINK_ASSIGN_OR_RETURN(Program else_p, (*ctx.compile_subgraph())(*else_g, {}));
  for (size_t k = 0; k < ctx.num_outputs(); ++k) {
    const TensorType& a = then_p->output_types()[k];
    const TensorType& b = else_p->output_types()[k];
    if (a.dtype != b.dtype)
      return ctx.invalid("output " + std::to_string(k) + " is " + dtype_name(a.dtype) +
                         " in then_branch but " + dtype_name(b.dtype) + " in else_branch");
    ctx.set_output(k, merge_types(a, b));
  }
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> if_create(const KernelCreateContext& c) {
  if (!c.compile_subgraph)
    return c.unsupported_here("If runs only inside a compiled model (its branches are subgraphs)");
  BRINK_ASSIGN_OR_RETURN(Program then_p,
                         c.compile_subgraph(*graph_attr(c.node, "then_branch"), {}));
  BRINK_ASSIGN_OR_RETURN(Program else_p,
                         c.compile_subgraph(*graph_attr(c.node, "else_branch"), {}));
  const std::string desc = c.node.describe();
  return make_kernel([then_p, else_p, desc](KernelContext& ctx) -> Status {
    BRINK_ASSIGN_OR_RETURN(bool cond, scalar_bool(ctx.input(0), desc + ": cond"));
    auto outs = (cond ? then_p : else_p)->run({}, ctx.outer_scope());
    if (!outs.is_ok()) return outs.status().with_context(desc);
    for (size_t k = 0; k < ctx.num_outputs() && k < outs->size(); ++k)
      ctx.output(k) = std::move((*outs)[k]);
    return Status::ok();
  });
}

// ---- Loop -------------------------------------------------------------------------------

// Body inputs: iteration number, condition, N loop-carried values.
// Body outputs: condition, N loop-carried values, K scan outputs.
struct LoopShape {
  size_t n = 0, k = 0;
};

Result<LoopShape> loop_shape(const ir::Node& node, size_t num_inputs, size_t num_outputs,
                             const std::function<Status(const std::string&)>& invalid) {
  const ir::Graph* body = graph_attr(node, "body");
  if (!body) return invalid("attribute body is required");
  if (num_inputs < 2) return invalid("expected at least 2 inputs (M, cond)");
  LoopShape s;
  s.n = num_inputs - 2;
  if (body->inputs.size() != 2 + s.n)
    return invalid("body has " + std::to_string(body->inputs.size()) + " inputs, expected " +
                   std::to_string(2 + s.n) + " (iteration, cond and the loop-carried values)");
  if (body->outputs.size() < 1 + s.n)
    return invalid("body has " + std::to_string(body->outputs.size()) +
                   " outputs, expected at least " + std::to_string(1 + s.n));
  s.k = body->outputs.size() - 1 - s.n;
  if (num_outputs > s.n + s.k)
    return invalid("node has " + std::to_string(num_outputs) + " outputs, the body gives " +
                   std::to_string(s.n + s.k));
  return s;
}

std::vector<TensorType> loop_fixed_types() {
  return {TensorType(DataType::kInt64, std::vector<Dim>{}),
          TensorType(DataType::kBool, std::vector<Dim>{})};
}

Status loop_infer(InferContext& ctx) {
  const ir::Node& node = ctx.node();
  BRINK_ASSIGN_OR_RETURN(LoopShape ls,
                         loop_shape(node, ctx.num_inputs(), ctx.num_outputs(),
                                    [&](const std::string& m) { return ctx.invalid(m); }));
  if (ctx.has_input(0) && ctx.input_dtype(0) != DataType::kInt64)
    return ctx.invalid(std::string("M is ") + dtype_name(ctx.input_dtype(0)) + ", expected i64");
  if (ctx.has_input(1) && ctx.input_dtype(1) != DataType::kBool)
    return ctx.invalid(std::string("cond is ") + dtype_name(ctx.input_dtype(1)) +
                       ", expected bool");
  std::vector<TensorType> state;
  for (size_t i = 0; i < ls.n; ++i) {
    if (!ctx.has_input(2 + i))
      return ctx.invalid("loop-carried input " + std::to_string(2 + i) + " is missing");
    state.push_back(ctx.input_type(2 + i));
  }
  const ir::Graph& body = *graph_attr(node, "body");
  if (!ctx.compile_subgraph()) {
    for (size_t i = 0; i < ctx.num_outputs(); ++i)
      ctx.set_output(
          i, TensorType(i < ls.n ? state[i].dtype : declared_output_dtype(body, 1 + i), {}));
    return Status::ok();
  }
  BRINK_ASSIGN_OR_RETURN(Program p, compile_stateful_body(*ctx.compile_subgraph(), body,
                                                          loop_fixed_types(), state, {}, 1));
  const auto& out = p->output_types();
  BRINK_RETURN_IF_ERROR(check_state_dtypes(ctx, out, state, 1));
  for (size_t i = 0; i < ctx.num_outputs(); ++i)
    ctx.set_output(i,
                   i < ls.n ? merge_types(state[i], out[1 + i]) : insert_dim(out[1 + i], 0, Dim()));
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> loop_create(const KernelCreateContext& c) {
  if (!c.compile_subgraph)
    return c.unsupported_here("Loop runs only inside a compiled model (its body is a subgraph)");
  BRINK_ASSIGN_OR_RETURN(LoopShape ls,
                         loop_shape(c.node, c.input_types.size(), c.node.outputs.size(),
                                    [&](const std::string& m) { return c.invalid(m); }));
  std::vector<TensorType> state;
  for (size_t i = 0; i < ls.n; ++i) state.push_back(*c.input_types[2 + i]);
  BRINK_ASSIGN_OR_RETURN(Program body,
                         compile_stateful_body(c.compile_subgraph, *graph_attr(c.node, "body"),
                                               loop_fixed_types(), state, {}, 1));
  const std::string desc = c.node.describe();
  return make_kernel([body, ls, desc](KernelContext& ctx) -> Status {
    int64_t max_trips = std::numeric_limits<int64_t>::max();
    if (ctx.has_input(0)) {
      if (ctx.input(0).numel() != 1)
        return invalid_argument(desc + ": M has " + std::to_string(ctx.input(0).numel()) +
                                " elements, expected 1");
      max_trips = ctx.input(0).element_as_int64(0);
    }
    // Without a cond input the body's cond output is ignored (ONNX Loop spec).
    const bool use_cond = ctx.has_input(1);
    bool keep_going = true;
    if (use_cond) {
      BRINK_ASSIGN_OR_RETURN(keep_going, scalar_bool(ctx.input(1), desc + ": cond"));
    }
    std::vector<Tensor> state;
    for (size_t i = 0; i < ls.n; ++i) state.push_back(ctx.input(2 + i));
    std::vector<std::vector<Tensor>> scans(ls.k);
    std::vector<const Tensor*> inputs(2 + ls.n);
    for (int64_t it = 0; it < max_trips && keep_going; ++it) {
      const Tensor iter = Tensor::scalar<int64_t>(it);
      const Tensor cond = Tensor::scalar<bool>(keep_going);
      inputs[0] = &iter;
      inputs[1] = &cond;
      for (size_t i = 0; i < ls.n; ++i) inputs[2 + i] = &state[i];
      auto outs = body->run(inputs, ctx.outer_scope());
      if (!outs.is_ok())
        return outs.status().with_context(desc + ": iteration " + std::to_string(it));
      if (use_cond) {
        BRINK_ASSIGN_OR_RETURN(keep_going, scalar_bool((*outs)[0], desc + ": body's cond"));
      }
      for (size_t i = 0; i < ls.n; ++i) state[i] = std::move((*outs)[1 + i]);
      for (size_t i = 0; i < ls.k; ++i) scans[i].push_back(std::move((*outs)[1 + ls.n + i]));
    }
    for (size_t i = 0; i < ctx.num_outputs(); ++i) {
      if (i < ls.n) {
        ctx.output(i) = std::move(state[i]);
        continue;
      }
      const size_t s = i - ls.n;
      BRINK_ASSIGN_OR_RETURN(ctx.output(i),
                             stack_along(scans[s], 0, false, body->output_types()[1 + i],
                                         desc + ": scan output " + std::to_string(s)));
    }
    return Status::ok();
  });
}

// ---- Scan (9+) --------------------------------------------------------------------------

// Inputs: N initial states, then M scan inputs. Body: N states + M slices in, N states + K
// scan output elements out.
struct ScanAttrs {
  size_t n = 0, m = 0, k = 0;
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

Result<ScanAttrs> scan_attrs(const ir::Node& node, const std::vector<const TensorType*>& inputs,
                             size_t num_outputs,
                             const std::function<Status(const std::string&)>& invalid) {
  const ir::Graph* body = graph_attr(node, "body");
  if (!body) return invalid("attribute body is required");
  ScanAttrs a;
  const int64_t m = node.attr_int("num_scan_inputs", -1);
  if (m < 1 || static_cast<size_t>(m) > inputs.size())
    return invalid("num_scan_inputs is " + std::to_string(m) + ", expected 1 to " +
                   std::to_string(inputs.size()));
  a.m = static_cast<size_t>(m);
  a.n = inputs.size() - a.m;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i]) return invalid("input " + std::to_string(i) + " is missing");
  if (body->inputs.size() != a.n + a.m)
    return invalid("body has " + std::to_string(body->inputs.size()) + " inputs, expected " +
                   std::to_string(a.n + a.m));
  if (body->outputs.size() < a.n)
    return invalid("body has " + std::to_string(body->outputs.size()) +
                   " outputs, expected at least " + std::to_string(a.n));
  a.k = body->outputs.size() - a.n;
  if (num_outputs > a.n + a.k)
    return invalid("node has " + std::to_string(num_outputs) + " outputs, the body gives " +
                   std::to_string(a.n + a.k));
  auto list = [&](const char* name, size_t count, std::vector<int64_t>* out) -> Status {
    *out = node.attr_ints(name);
    if (out->empty()) out->assign(count, 0);
    if (out->size() != count)
      return invalid(std::string(name) + " has " + std::to_string(out->size()) +
                     " entries, expected " + std::to_string(count));
    return Status::ok();
  };
  BRINK_RETURN_IF_ERROR(list("scan_input_axes", a.m, &a.in_axes));
  BRINK_RETURN_IF_ERROR(list("scan_input_directions", a.m, &a.in_dirs));
  BRINK_RETURN_IF_ERROR(list("scan_output_axes", a.k, &a.out_axes));
  BRINK_RETURN_IF_ERROR(list("scan_output_directions", a.k, &a.out_dirs));
  for (const auto* dirs : {&a.in_dirs, &a.out_dirs})
    for (int64_t d : *dirs)
      if (d != 0 && d != 1)
        return invalid("scan directions must be 0 or 1, found " + std::to_string(d));
  for (size_t j = 0; j < a.m; ++j) {
    const TensorType& t = *inputs[a.n + j];
    if (!t.dims) return invalid("scan input " + std::to_string(j) + " has unknown rank");
    const int64_t r = t.rank(), ax = a.in_axes[j];
    if (ax < -r || ax >= r)
      return invalid("scan_input_axes[" + std::to_string(j) + "] is " + std::to_string(ax) +
                     ", out of range for rank " + std::to_string(r));
    a.in_axes[j] = ax < 0 ? ax + r : ax;
  }
  return a;
}

// Types of the body's slice inputs, and the sequence length when known (-1 otherwise).
std::vector<TensorType> scan_slice_types(const ScanAttrs& a,
                                         const std::vector<const TensorType*>& inputs,
                                         int64_t* seq_len) {
  std::vector<TensorType> types;
  *seq_len = -1;
  for (size_t j = 0; j < a.m; ++j) {
    std::vector<Dim> dims = *inputs[a.n + j]->dims;
    const Dim d = dims[static_cast<size_t>(a.in_axes[j])];
    if (d.known()) *seq_len = d.value;
    dims.erase(dims.begin() + a.in_axes[j]);
    types.emplace_back(inputs[a.n + j]->dtype, std::move(dims));
  }
  return types;
}

// The output axis of scan output `s` whose element has rank `elem_rank`, or -1 if invalid.
int64_t scan_out_axis(const ScanAttrs& a, size_t s, int64_t elem_rank) {
  const int64_t r = elem_rank + 1, ax = a.out_axes[s];
  if (ax < -r || ax >= r) return -1;
  return ax < 0 ? ax + r : ax;
}

Status scan_infer(InferContext& ctx) {
  const ir::Node& node = ctx.node();
  std::vector<const TensorType*> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    in.push_back(ctx.has_input(i) ? &ctx.input_type(i) : nullptr);
  BRINK_ASSIGN_OR_RETURN(ScanAttrs a,
                         scan_attrs(node, in, ctx.num_outputs(),
                                    [&](const std::string& m) { return ctx.invalid(m); }));
  std::vector<TensorType> state;
  for (size_t i = 0; i < a.n; ++i) state.push_back(*in[i]);
  int64_t seq_len = -1;
  const std::vector<TensorType> slices = scan_slice_types(a, in, &seq_len);
  for (size_t j = 0; j < a.m; ++j) {
    const Dim d = (*in[a.n + j]->dims)[static_cast<size_t>(a.in_axes[j])];
    if (d.known() && seq_len >= 0 && d.value != seq_len)
      return ctx.invalid("scan inputs have different sequence lengths " + std::to_string(d.value) +
                         " and " + std::to_string(seq_len));
  }
  const ir::Graph& body = *graph_attr(node, "body");
  if (!ctx.compile_subgraph()) {
    for (size_t i = 0; i < ctx.num_outputs(); ++i)
      ctx.set_output(i, TensorType(i < a.n ? state[i].dtype : declared_output_dtype(body, i), {}));
    return Status::ok();
  }
  BRINK_ASSIGN_OR_RETURN(
      Program p, compile_stateful_body(*ctx.compile_subgraph(), body, {}, state, slices, 0));
  const auto& out = p->output_types();
  BRINK_RETURN_IF_ERROR(check_state_dtypes(ctx, out, state, 0));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    if (i < a.n) {
      ctx.set_output(i, merge_types(state[i], out[i]));
      continue;
    }
    if (!out[i].dims) {
      ctx.set_output(i, TensorType(out[i].dtype, {}));
      continue;
    }
    const int64_t axis = scan_out_axis(a, i - a.n, out[i].rank());
    if (axis < 0)
      return ctx.invalid("scan_output_axes[" + std::to_string(i - a.n) + "] is " +
                         std::to_string(a.out_axes[i - a.n]) + ", out of range for rank " +
                         std::to_string(out[i].rank() + 1));
    ctx.set_output(i, insert_dim(out[i], axis, seq_len >= 0 ? Dim(seq_len) : Dim()));
  }
  return Status::ok();
}

// Runs the scan over `in` (N states, then M scan inputs) and returns the node's outputs.
Result<std::vector<Tensor>> run_scan(const SubgraphProgram& body, const ScanAttrs& a,
                                     const std::vector<const Tensor*>& in, size_t num_outputs,
                                     const OuterScope* outer, const std::string& desc) {
  const int64_t len = in[a.n]->dim(a.in_axes[0]);
  for (size_t j = 1; j < a.m; ++j)
    if (in[a.n + j]->dim(a.in_axes[j]) != len)
      return invalid_argument(desc + ": scan input " + std::to_string(j) + " has length " +
                              std::to_string(in[a.n + j]->dim(a.in_axes[j])) +
                              ", scan input 0 has " + std::to_string(len));
  std::vector<Tensor> state, slice(a.m);
  for (size_t i = 0; i < a.n; ++i) state.push_back(*in[i]);
  std::vector<std::vector<Tensor>> scans(a.k);
  std::vector<const Tensor*> inputs(a.n + a.m);
  for (int64_t t = 0; t < len; ++t) {
    for (size_t j = 0; j < a.m; ++j) {
      slice[j] = slice_along(*in[a.n + j], a.in_axes[j], a.in_dirs[j] ? len - 1 - t : t);
      inputs[a.n + j] = &slice[j];
    }
    for (size_t i = 0; i < a.n; ++i) inputs[i] = &state[i];
    auto outs = body.run(inputs, outer);
    if (!outs.is_ok()) return outs.status().with_context(desc + ": iteration " + std::to_string(t));
    for (size_t i = 0; i < a.n; ++i) state[i] = std::move((*outs)[i]);
    for (size_t s = 0; s < a.k; ++s) scans[s].push_back(std::move((*outs)[a.n + s]));
  }
  std::vector<Tensor> result(num_outputs);
  for (size_t i = 0; i < num_outputs; ++i) {
    if (i < a.n) {
      result[i] = std::move(state[i]);
      continue;
    }
    const size_t s = i - a.n;
    const TensorType& elem = body.output_types()[i];
    const int64_t elem_rank =
        scans[s].empty() ? std::max<int64_t>(elem.rank(), 0) : scans[s].front().rank();
    const int64_t axis = scan_out_axis(a, s, elem_rank);
    if (axis < 0)
      return invalid_argument(desc + ": scan_output_axes[" + std::to_string(s) +
                              "] is out of range for rank " + std::to_string(elem_rank + 1));
    BRINK_ASSIGN_OR_RETURN(result[i], stack_along(scans[s], axis, a.out_dirs[s] != 0, elem,
                                                  desc + ": scan output " + std::to_string(s)));
  }
  return result;
}

Result<std::unique_ptr<Kernel>> scan_create(const KernelCreateContext& c) {
  if (!c.compile_subgraph)
    return c.unsupported_here("Scan runs only inside a compiled model (its body is a subgraph)");
  BRINK_ASSIGN_OR_RETURN(ScanAttrs a,
                         scan_attrs(c.node, c.input_types, c.node.outputs.size(),
                                    [&](const std::string& m) { return c.invalid(m); }));
  std::vector<TensorType> state;
  for (size_t i = 0; i < a.n; ++i) state.push_back(*c.input_types[i]);
  int64_t seq_len = -1;
  const std::vector<TensorType> slices = scan_slice_types(a, c.input_types, &seq_len);
  BRINK_ASSIGN_OR_RETURN(
      Program body,
      compile_stateful_body(c.compile_subgraph, *graph_attr(c.node, "body"), {}, state, slices, 0));
  const std::string desc = c.node.describe();
  return make_kernel([body, a, desc](KernelContext& ctx) -> Status {
    std::vector<const Tensor*> in;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) in.push_back(&ctx.input(i));
    BRINK_ASSIGN_OR_RETURN(std::vector<Tensor> outs,
                           run_scan(*body, a, in, ctx.num_outputs(), ctx.outer_scope(), desc));
    for (size_t i = 0; i < outs.size(); ++i) ctx.output(i) = std::move(outs[i]);
    return Status::ok();
  });
}

// ---- Scan-8 -----------------------------------------------------------------------------

// Scan-8 batches: input 0 is the optional sequence_lens, the states and scan inputs have
// the batch on axis 0 and (scan inputs) the sequence on axis 1. Each batch entry runs as a
// Scan-9 over axis 0 of its slices. Sequences shorter than the scan axis (sequence_lens
// below the maximum) are not supported.

// The per-batch-entry types of inputs 1..: axis 0 removed.
std::vector<TensorType> scan8_entry_types(const std::vector<const TensorType*>& inputs) {
  std::vector<TensorType> types;
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (!inputs[i] || !inputs[i]->dims || inputs[i]->dims->empty()) {
      types.emplace_back(inputs[i] ? inputs[i]->dtype : DataType::kUndefined, std::nullopt);
      continue;
    }
    std::vector<Dim> dims(inputs[i]->dims->begin() + 1, inputs[i]->dims->end());
    types.emplace_back(inputs[i]->dtype, std::move(dims));
  }
  return types;
}

Result<ScanAttrs> scan8_attrs(const ir::Node& node, const std::vector<const TensorType*>& inputs,
                              const std::vector<TensorType>& entry_types, size_t num_outputs,
                              const std::function<Status(const std::string&)>& invalid) {
  if (inputs.size() < 2) return invalid("expected at least 2 inputs");
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (!inputs[i]) return invalid("input " + std::to_string(i) + " is missing");
    if (inputs[i]->dims && inputs[i]->dims->empty())
      return invalid("input " + std::to_string(i) + " is a scalar, expected a batch axis");
  }
  if (inputs[0] && inputs[0]->dtype != DataType::kInt64)
    return invalid(std::string("sequence_lens is ") + dtype_name(inputs[0]->dtype) +
                   ", expected i64");
  std::vector<const TensorType*> entry;
  for (const TensorType& t : entry_types) entry.push_back(&t);
  ir::Node as9 = node;  // Scan-8's directions are Scan-9's scan_input_directions
  for (ir::Attribute& attr : as9.attributes)
    if (attr.name == "directions") attr.name = "scan_input_directions";
  return scan_attrs(as9, entry, num_outputs, invalid);
}

Status scan8_infer(InferContext& ctx) {
  std::vector<const TensorType*> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    in.push_back(ctx.has_input(i) ? &ctx.input_type(i) : nullptr);
  const std::vector<TensorType> entry = scan8_entry_types(in);
  BRINK_ASSIGN_OR_RETURN(ScanAttrs a,
                         scan8_attrs(ctx.node(), in, entry, ctx.num_outputs(),
                                     [&](const std::string& m) { return ctx.invalid(m); }));
  const Dim batch = in[1]->dims ? (*in[1]->dims)[0] : Dim();
  const ir::Graph& body = *graph_attr(ctx.node(), "body");
  if (!ctx.compile_subgraph()) {
    for (size_t i = 0; i < ctx.num_outputs(); ++i)
      ctx.set_output(i, TensorType(i < a.n ? entry[i].dtype : declared_output_dtype(body, i), {}));
    return Status::ok();
  }
  const std::vector<TensorType> state(entry.begin(), entry.begin() + static_cast<long>(a.n));
  std::vector<const TensorType*> entry_ptrs;
  for (const TensorType& t : entry) entry_ptrs.push_back(&t);
  int64_t seq_len = -1;
  const std::vector<TensorType> slices = scan_slice_types(a, entry_ptrs, &seq_len);
  BRINK_ASSIGN_OR_RETURN(
      Program p, compile_stateful_body(*ctx.compile_subgraph(), body, {}, state, slices, 0));
  const auto& out = p->output_types();
  BRINK_RETURN_IF_ERROR(check_state_dtypes(ctx, out, state, 0));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    const TensorType t = i < a.n ? merge_types(state[i], out[i])
                                 : insert_dim(out[i], 0, seq_len >= 0 ? Dim(seq_len) : Dim());
    ctx.set_output(i, insert_dim(t, 0, batch));
  }
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> scan8_create(const KernelCreateContext& c) {
  if (!c.compile_subgraph)
    return c.unsupported_here("Scan runs only inside a compiled model (its body is a subgraph)");
  const std::vector<TensorType> entry = scan8_entry_types(c.input_types);
  BRINK_ASSIGN_OR_RETURN(ScanAttrs a,
                         scan8_attrs(c.node, c.input_types, entry, c.node.outputs.size(),
                                     [&](const std::string& m) { return c.invalid(m); }));
  const std::vector<TensorType> state(entry.begin(), entry.begin() + static_cast<long>(a.n));
  std::vector<const TensorType*> entry_ptrs;
  for (const TensorType& t : entry) entry_ptrs.push_back(&t);
  int64_t seq_len = -1;
  const std::vector<TensorType> slices = scan_slice_types(a, entry_ptrs, &seq_len);
  BRINK_ASSIGN_OR_RETURN(
      Program body,
      compile_stateful_body(c.compile_subgraph, *graph_attr(c.node, "body"), {}, state, slices, 0));
  const std::string desc = c.node.describe();
  return make_kernel([body, a, desc](KernelContext& ctx) -> Status {
    const int64_t batch = ctx.input(1).dim(0);
    for (size_t i = 2; i < ctx.num_inputs(); ++i)
      if (ctx.input(i).dim(0) != batch)
        return invalid_argument(desc + ": input " + std::to_string(i) + " has batch size " +
                                std::to_string(ctx.input(i).dim(0)) + ", input 1 has " +
                                std::to_string(batch));
    if (ctx.has_input(0)) {
      const Tensor& lens = ctx.input(0);
      const int64_t max_len = ctx.input(1 + a.n).dim(1);
      for (int64_t b = 0; b < lens.numel(); ++b)
        if (lens.element_as_int64(b) != max_len)
          return unsupported(desc + ": sequence_lens[" + std::to_string(b) + "] is " +
                             std::to_string(lens.element_as_int64(b)) +
                             "; only sequences of the full length " + std::to_string(max_len) +
                             " are supported");
    }
    std::vector<std::vector<Tensor>> per_output(ctx.num_outputs());
    std::vector<Tensor> entry(ctx.num_inputs() - 1);
    std::vector<const Tensor*> entry_ptrs(entry.size());
    for (int64_t b = 0; b < batch; ++b) {
      for (size_t i = 0; i < entry.size(); ++i) {
        entry[i] = slice_along(ctx.input(1 + i), 0, b);
        entry_ptrs[i] = &entry[i];
      }
      BRINK_ASSIGN_OR_RETURN(
          std::vector<Tensor> outs,
          run_scan(*body, a, entry_ptrs, ctx.num_outputs(), ctx.outer_scope(), desc));
      for (size_t i = 0; i < outs.size(); ++i) per_output[i].push_back(std::move(outs[i]));
    }
    for (size_t i = 0; i < ctx.num_outputs(); ++i) {
      const TensorType& elem = body->output_types()[i];
      const TensorType part = i < a.n ? elem : insert_dim(elem, 0, Dim());
      BRINK_ASSIGN_OR_RETURN(ctx.output(i), stack_along(per_output[i], 0, false, part,
                                                        desc + ": output " + std::to_string(i)));
    }
    return Status::ok();
  });
}

OpDef def(const char* op, int since, InferFn infer, CreateFn create) {
  OpDef d;
  d.op_type = op;
  d.since_version = since;
  d.infer = std::move(infer);
  d.create = std::move(create);
  return d;
}

}  // namespace

void register_control_flow_ops(OpRegistry& r) {
  if constexpr (op_selected("", "If")) r.add(def("If", 1, if_infer, if_create));
  if constexpr (op_selected("", "Loop")) r.add(def("Loop", 1, loop_infer, loop_create));
  if constexpr (op_selected("", "Scan")) {
    OpDef d = def("Scan", 8, scan8_infer, scan8_create);
    d.max_version = 8;
    r.add(std::move(d));
  }
  if constexpr (op_selected("", "Scan")) r.add(def("Scan", 9, scan_infer, scan_create));
}

}  // namespace brink::ops
