// Signal processing operators: DFT (opsets 17 and 20), STFT, the Hann, Hamming and Blackman
// windows, MelWeightMatrix (opset 17), and Det (opset 11).
//
// Transforms run in double on std::complex<double>, whatever the tensor dtype: radix-2 FFT
// for power-of-two lengths, a direct DFT with an exact twiddle table for short other
// lengths, and Bluestein's algorithm (a power-of-two convolution) for long other lengths, so
// every length is O(n log n) or small. Complex tensors hold (real, imaginary) pairs in a
// trailing dim of 2; real tensors have a trailing dim of 1.
//
// DFT follows ONNX 1.23's reference: onesided=1 with inverse=0 is RFFT (a complex input is
// accepted and its spectrum truncated to n/2+1 bins), onesided=1 with inverse=1 is IRFFT
// (the input holds the first n/2+1 bins of a Hermitian spectrum; output is real).
// Window functions and MelWeightMatrix compute in double and convert to output_datatype
// (integer outputs truncate toward zero; NaN, from a symmetric window of size 1 as in the
// spec's formula, becomes 0 for them). Det uses LU with partial pivoting in double.
#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <memory>
#include <numbers>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

using cd = std::complex<double>;

Status check_int(const InferContext& ctx, size_t i, const char* name) {
  const DataType t = ctx.input_dtype(i);
  if (t != DataType::kInt32 && t != DataType::kInt64)
    return ctx.invalid(std::string("input ") + name + " has dtype " + dtype_name(t) +
                       ", expected i32 or i64");
  return Status::ok();
}

// A scalar input (a 1-element tensor is accepted too, as ORT does) when its value is known.
Result<std::optional<int64_t>> int_scalar(const InferContext& ctx, size_t i, const char* name) {
  if (!ctx.has_input(i)) return std::optional<int64_t>();
  const TensorType& t = ctx.input_type(i);
  if (t.has_rank() && t.rank() > 1)
    return ctx.invalid(std::string("input ") + name + " has rank " + std::to_string(t.rank()) +
                       ", expected a scalar");
  const Tensor* v = ctx.input_value(i);
  if (v == nullptr) return std::optional<int64_t>();
  if (v->numel() != 1)
    return ctx.invalid(std::string("input ") + name + " has " + std::to_string(v->numel()) +
                       " values, expected a scalar");
  return std::optional<int64_t>(v->element_as_int64(0));
}

// Converts a double to any numeric element type. Integers truncate toward zero; values
// they cannot hold (NaN included) become 0 instead of undefined behaviour.
template <typename T>
T from_double(double v) {
  if constexpr (is_float_v<T>) {
    return static_cast<T>(v);
  } else {
    if (!(v > static_cast<double>(std::numeric_limits<T>::min()) - 1.0 &&
          v < static_cast<double>(std::numeric_limits<T>::max()) + 1.0))
      return T(0);
    return static_cast<T>(v);
  }
}

// output_datatype of the window ops and MelWeightMatrix: any numeric type but bool.
Result<DataType> output_datatype(const InferContext& ctx) {
  const int64_t code = ctx.node().attr_int("output_datatype", 1);
  const DataType t = static_cast<DataType>(code);
  if (code == static_cast<int64_t>(DataType::kBool) || code > 16 || !dtype_is_supported(t))
    return ctx.unsupported_here("output_datatype is " + std::to_string(code) +
                                ", expected a numeric tensor type code");
  return t;
}

// ---- FFT -----------------------------------------------------------------------------------

// An unnormalized DFT of one fixed length: X[k] = sum_j x[j] e^{-2 pi i jk/n} (forward), or
// with e^{+...} (inverse, computed as conj(F(conj(x)))). Holds its scratch memory, so one
// plan serves one thread.
class Fft {
 public:
  explicit Fft(int64_t n) : n_(n) {
    if (n <= 1) return;
    pow2_ = (n & (n - 1)) == 0;
    if (pow2_ || n <= kDirectMax) {
      twiddle_.resize(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k)
        twiddle_[static_cast<size_t>(k)] = std::polar(
            1.0, -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n));
      scratch_.resize(static_cast<size_t>(n));
      return;
    }
    // Bluestein: jk = (j^2 + k^2 - (k-j)^2) / 2 turns the DFT into a convolution with the
    // chirp e^{i pi m^2/n}, done with power-of-two FFTs of length >= 2n - 1.
    int64_t m = 1;
    while (m < 2 * n - 1) m *= 2;
    sub_ = std::make_unique<Fft>(m);
    chirp_.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      // k^2 mod 2n keeps the angle small, and so exact, for large k.
      const int64_t k2 = (k * k) % (2 * n);
      chirp_[static_cast<size_t>(k)] =
          std::polar(1.0, -std::numbers::pi * static_cast<double>(k2) / static_cast<double>(n));
    }
    kernel_.assign(static_cast<size_t>(m), cd(0, 0));
    kernel_[0] = std::conj(chirp_[0]);
    for (int64_t k = 1; k < n; ++k) {
      kernel_[static_cast<size_t>(k)] = std::conj(chirp_[static_cast<size_t>(k)]);
      kernel_[static_cast<size_t>(m - k)] = std::conj(chirp_[static_cast<size_t>(k)]);
    }
    sub_->run(kernel_.data(), false);
    scratch_.resize(static_cast<size_t>(m));
  }

  void run(cd* x, bool inverse) {
    if (n_ <= 1) return;
    if (inverse)
      for (int64_t i = 0; i < n_; ++i) x[i] = std::conj(x[i]);
    if (pow2_)
      radix2(x);
    else if (sub_)
      bluestein(x);
    else
      direct(x);
    if (inverse)
      for (int64_t i = 0; i < n_; ++i) x[i] = std::conj(x[i]);
  }

 private:
  static constexpr int64_t kDirectMax = 64;

  void radix2(cd* x) {
    for (int64_t i = 1, j = 0; i < n_; ++i) {
      int64_t bit = n_ >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) std::swap(x[i], x[j]);
    }
    for (int64_t len = 2; len <= n_; len <<= 1) {
      const int64_t step = n_ / len, half = len / 2;
      for (int64_t start = 0; start < n_; start += len) {
        for (int64_t k = 0; k < half; ++k) {
          const cd w = twiddle_[static_cast<size_t>(k * step)];
          const cd a = x[start + k], b = x[start + k + half] * w;
          x[start + k] = a + b;
          x[start + k + half] = a - b;
        }
      }
    }
  }

  void direct(cd* x) {
    for (int64_t k = 0; k < n_; ++k) {
      cd sum(0, 0);
      for (int64_t j = 0, jk = 0; j < n_; ++j, jk = (jk + k) % n_)
        sum += x[j] * twiddle_[static_cast<size_t>(jk)];
      scratch_[static_cast<size_t>(k)] = sum;
    }
    std::copy(scratch_.begin(), scratch_.begin() + n_, x);
  }

  void bluestein(cd* x) {
    std::fill(scratch_.begin(), scratch_.end(), cd(0, 0));
    for (int64_t k = 0; k < n_; ++k)
      scratch_[static_cast<size_t>(k)] = x[k] * chirp_[static_cast<size_t>(k)];
    sub_->run(scratch_.data(), false);
    for (size_t i = 0; i < scratch_.size(); ++i) scratch_[i] *= kernel_[i];
    sub_->run(scratch_.data(), true);
    const double scale = 1.0 / static_cast<double>(scratch_.size());
    for (int64_t k = 0; k < n_; ++k)
      x[k] = scratch_[static_cast<size_t>(k)] * chirp_[static_cast<size_t>(k)] * scale;
  }

  int64_t n_;
  bool pow2_ = false;
  std::vector<cd> twiddle_;
  std::vector<cd> scratch_;
  std::vector<cd> chirp_;
  std::vector<cd> kernel_;  // FFT of the conjugate chirp, for Bluestein
  std::unique_ptr<Fft> sub_;
};

// ---- DFT -----------------------------------------------------------------------------------

struct DftConfig {
  int64_t axis;    // normalized
  int64_t length;  // the transform length n
  int64_t out_len;
  bool inverse;
  bool onesided;
};

// The DFT length when dft_length is absent, and the output length along the axis.
int64_t default_dft_length(int64_t in_len, bool inverse, bool onesided) {
  return inverse && onesided ? 2 * (in_len - 1) : in_len;
}
int64_t dft_out_len(int64_t n, bool inverse, bool onesided) {
  return !inverse && onesided ? n / 2 + 1 : n;
}

template <typename T>
void run_dft(const Tensor& x, Tensor& y, const DftConfig& c) {
  const Shape& s = x.shape();
  const int64_t rank = x.rank();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < c.axis; ++i) outer *= s[static_cast<size_t>(i)];
  for (int64_t i = c.axis + 1; i < rank - 1; ++i) inner *= s[static_cast<size_t>(i)];
  const int64_t in_len = s[static_cast<size_t>(c.axis)];
  const int64_t in_comp = s[static_cast<size_t>(rank - 1)];
  const int64_t out_comp = c.inverse && c.onesided ? 1 : 2;
  const int64_t n = c.length;
  const bool irfft = c.inverse && c.onesided;
  // IRFFT reads the first n/2+1 bins (zero-padded or truncated), forward and complex
  // inverse the first n values.
  const int64_t take = std::min(in_len, irfft ? n / 2 + 1 : n);
  const T* xd = x.data<T>();
  T* yd = y.data<T>();
  Fft fft(n);
  std::vector<cd> line(static_cast<size_t>(n));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      std::fill(line.begin(), line.end(), cd(0, 0));
      for (int64_t k = 0; k < take; ++k) {
        const T* v = xd + ((o * in_len + k) * inner + i) * in_comp;
        line[static_cast<size_t>(k)] =
            cd(static_cast<double>(v[0]), in_comp == 2 ? static_cast<double>(v[1]) : 0.0);
      }
      if (irfft) {
        // Rebuild the full Hermitian spectrum; the imaginary parts of the DC bin and (n
        // even) of the Nyquist bin cannot be represented in a real signal and are dropped.
        for (int64_t k = n / 2 + 1; k < n; ++k)
          line[static_cast<size_t>(k)] = std::conj(line[static_cast<size_t>(n - k)]);
        line[0] = cd(line[0].real(), 0);
        if (n % 2 == 0 && n > 0)
          line[static_cast<size_t>(n / 2)] = cd(line[static_cast<size_t>(n / 2)].real(), 0);
      }
      fft.run(line.data(), c.inverse);
      const double scale = c.inverse ? 1.0 / static_cast<double>(n) : 1.0;
      for (int64_t k = 0; k < c.out_len; ++k) {
        T* v = yd + ((o * c.out_len + k) * inner + i) * out_comp;
        const cd z = line[static_cast<size_t>(k)] * scale;
        v[0] = static_cast<T>(z.real());
        if (out_comp == 2) v[1] = static_cast<T>(z.imag());
      }
    }
  }
}

// Opset 17 takes the axis as an attribute (default 1), opset 20 as optional input 2
// (default -2).
OpDef dft_op(int since, int until) {
  OpDef def;
  def.op_type = "DFT";
  def.since_version = since;
  def.max_version = until;
  const bool axis_input = since >= 20;
  def.infer = [axis_input](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "input", true));
    if (ctx.has_input(1)) BRINK_RETURN_IF_ERROR(check_int(ctx, 1, "dft_length"));
    BRINK_ASSIGN_OR_RETURN(std::optional<int64_t> dft_length, int_scalar(ctx, 1, "dft_length"));
    if (dft_length && *dft_length < 1)
      return ctx.invalid("dft_length is " + std::to_string(*dft_length) + ", expected >= 1");
    std::optional<int64_t> axis = ctx.node().attr_int("axis", 1);
    if (axis_input) {
      axis = -2;
      if (ctx.has_input(2)) {
        if (ctx.input_dtype(2) != DataType::kInt64)
          return ctx.invalid(std::string("input axis has dtype ") + dtype_name(ctx.input_dtype(2)) +
                             ", expected i64");
        BRINK_ASSIGN_OR_RETURN(axis, int_scalar(ctx, 2, "axis"));
      }
    }
    const bool inverse = ctx.node().attr_int("inverse", 0) != 0;
    const bool onesided = ctx.node().attr_int("onesided", 0) != 0;
    const TensorType& in = ctx.input_type(0);
    const DataType t = ctx.input_dtype(0);
    if (!in.has_rank()) {
      ctx.set_output(0, TensorType(t, std::nullopt));
      return Status::ok();
    }
    const int64_t rank = in.rank();
    if (rank < 2)
      return ctx.invalid("input has rank " + std::to_string(rank) +
                         ", expected at least 2 (signal dims, then 1 or 2 components)");
    std::vector<Dim> dims = *in.dims;
    const Dim& comp = dims.back();
    if (comp.known() && comp.value != 1 && comp.value != 2)
      return ctx.invalid("input's last dim is " + std::to_string(comp.value) +
                         ", expected 1 (real) or 2 (complex)");
    dims.back() = Dim(inverse && onesided ? 1 : 2);
    if (!axis) {
      // Unknown axis: every signal dim may change.
      for (size_t i = 0; i + 1 < dims.size(); ++i) dims[i] = Dim();
      ctx.set_output(0, t, std::move(dims));
      return Status::ok();
    }
    int64_t a = *axis;
    if (a < -rank || a > rank - 2)
      return ctx.invalid("axis is " + std::to_string(a) + ", expected in [" +
                         std::to_string(-rank) + ", " + std::to_string(rank - 2) +
                         "] and not the last (complex) dim");
    if (a < 0) a += rank;
    if (a == rank - 1)
      return ctx.invalid("axis " + std::to_string(*axis) +
                         " is the last dim, which holds the complex components");
    Dim& d = dims[static_cast<size_t>(a)];
    std::optional<int64_t> n = dft_length;
    // A dft_length input whose value is not known yet leaves the length unknown.
    if (!n && !ctx.has_input(1) && d.known()) n = default_dft_length(d.value, inverse, onesided);
    if (n && *n < 1)
      return ctx.invalid("the DFT length along axis " + std::to_string(a) + " is " +
                         std::to_string(*n) + ", expected >= 1");
    d = n ? Dim(dft_out_len(*n, inverse, onesided)) : Dim();
    ctx.set_output(0, t, std::move(dims));
    return Status::ok();
  };
  def.create = [axis_input](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = axis_input ? -2 : c.node.attr_int("axis", 1);
    const bool inverse = c.node.attr_int("inverse", 0) != 0;
    const bool onesided = c.node.attr_int("onesided", 0) != 0;
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t rank = x.rank();
      int64_t axis = axis_attr;
      if (axis_input && ctx.has_input(2)) axis = ctx.input(2).element_as_int64(0);
      if (axis < 0) axis += rank;
      const int64_t in_len = x.dim(axis);
      DftConfig cfg{axis, default_dft_length(in_len, inverse, onesided), 0, inverse, onesided};
      if (ctx.has_input(1)) cfg.length = ctx.input(1).element_as_int64(0);
      cfg.out_len = dft_out_len(cfg.length, inverse, onesided);
      if (y.dim(axis) != cfg.out_len)
        return internal_error("DFT: output length " + std::to_string(y.dim(axis)) +
                              " does not match the transform's " + std::to_string(cfg.out_len));
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) run_dft<T>(x, y, cfg);
      });
      return Status::ok();
    });
  };
  return def;
}

// ---- STFT ----------------------------------------------------------------------------------

OpDef stft_op() {
  OpDef def;
  def.op_type = "STFT";
  def.since_version = 17;
  def.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "signal", true));
    if (!ctx.has_input(1)) return ctx.invalid("input frame_step is required");
    BRINK_RETURN_IF_ERROR(check_int(ctx, 1, "frame_step"));
    BRINK_ASSIGN_OR_RETURN(std::optional<int64_t> step, int_scalar(ctx, 1, "frame_step"));
    if (step && *step < 1)
      return ctx.invalid("frame_step is " + std::to_string(*step) + ", expected >= 1");
    const DataType t = ctx.input_dtype(0);
    std::optional<int64_t> frame_length;
    if (ctx.has_input(3)) {
      BRINK_RETURN_IF_ERROR(check_int(ctx, 3, "frame_length"));
      BRINK_ASSIGN_OR_RETURN(frame_length, int_scalar(ctx, 3, "frame_length"));
      if (frame_length && *frame_length < 1)
        return ctx.invalid("frame_length is " + std::to_string(*frame_length) + ", expected >= 1");
    }
    if (ctx.has_input(2)) {
      if (ctx.input_dtype(2) != t)
        return ctx.invalid(std::string("input window has dtype ") + dtype_name(ctx.input_dtype(2)) +
                           ", expected " + dtype_name(t) + " like the signal");
      const TensorType& w = ctx.input_type(2);
      if (w.has_rank() && w.rank() != 1)
        return ctx.invalid("input window has rank " + std::to_string(w.rank()) + ", expected 1");
      if (w.has_rank() && (*w.dims)[0].known()) {
        const int64_t wl = (*w.dims)[0].value;
        if (frame_length && *frame_length != wl)
          return ctx.invalid("window has " + std::to_string(wl) + " values but frame_length is " +
                             std::to_string(*frame_length));
        if (!ctx.has_input(3)) frame_length = wl;
      }
    }
    const TensorType& sig = ctx.input_type(0);
    if (sig.has_rank() && sig.rank() != 3)
      return ctx.invalid("input signal has rank " + std::to_string(sig.rank()) +
                         ", expected 3 ([batch, signal_length, 1 or 2])");
    Dim batch, length;
    if (sig.has_rank()) {
      batch = (*sig.dims)[0];
      length = (*sig.dims)[1];
      const Dim& comp = (*sig.dims)[2];
      if (comp.known() && comp.value != 1 && comp.value != 2)
        return ctx.invalid("input signal's last dim is " + std::to_string(comp.value) +
                           ", expected 1 (real) or 2 (complex)");
    }
    if (!frame_length && !ctx.has_input(2) && !ctx.has_input(3) && length.known())
      frame_length = length.value;
    Dim frames;
    if (frame_length && step && length.known()) {
      if (length.value < *frame_length)
        return ctx.invalid("the signal has " + std::to_string(length.value) +
                           " samples, fewer than frame_length " + std::to_string(*frame_length));
      frames = Dim((length.value - *frame_length) / *step + 1);
    }
    const bool onesided = ctx.node().attr_int("onesided", 1) != 0;
    Dim bins = frame_length ? Dim(onesided ? *frame_length / 2 + 1 : *frame_length) : Dim();
    ctx.set_output(0, t, std::vector<Dim>{batch, frames, bins, Dim(2)});
    return Status::ok();
  };
  def.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool onesided = c.node.attr_int("onesided", 1) != 0;
    return make_kernel([onesided](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t batch = x.dim(0), length = x.dim(1), comp = x.dim(2);
      const int64_t step = ctx.input(1).element_as_int64(0);
      int64_t n = length;
      if (ctx.has_input(3))
        n = ctx.input(3).element_as_int64(0);
      else if (ctx.has_input(2))
        n = ctx.input(2).numel();
      std::vector<double> window(static_cast<size_t>(n), 1.0);
      if (ctx.has_input(2)) window = tensor_to_doubles(ctx.input(2));
      const int64_t frames = y.dim(1), bins = y.dim(2);
      if (static_cast<int64_t>(window.size()) != n || bins != (onesided ? n / 2 + 1 : n) ||
          frames != (length - n) / step + 1)
        return internal_error("STFT: output shape " + shape_to_string(y.shape()) +
                              " does not match the inputs");
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          const T* xd = x.data<T>();
          T* yd = y.data<T>();
          Fft fft(n);
          std::vector<cd> line(static_cast<size_t>(n));
          for (int64_t b = 0; b < batch; ++b) {
            for (int64_t f = 0; f < frames; ++f) {
              const T* src = xd + (b * length + f * step) * comp;
              for (int64_t k = 0; k < n; ++k) {
                const double w = window[static_cast<size_t>(k)];
                line[static_cast<size_t>(k)] =
                    cd(static_cast<double>(src[k * comp]) * w,
                       comp == 2 ? static_cast<double>(src[k * comp + 1]) * w : 0.0);
              }
              fft.run(line.data(), false);
              T* dst = yd + (b * frames + f) * bins * 2;
              for (int64_t k = 0; k < bins; ++k) {
                dst[2 * k] = static_cast<T>(line[static_cast<size_t>(k)].real());
                dst[2 * k + 1] = static_cast<T>(line[static_cast<size_t>(k)].imag());
              }
            }
          }
        }
      });
      return Status::ok();
    });
  };
  return def;
}

// ---- window functions ----------------------------------------------------------------------

enum class WindowKind { kHann, kHamming, kBlackman };

// Sample i of a window over `denom` = size (periodic) or size - 1 (symmetric). The
// operations and their order follow the ONNX reference implementation, so that values that
// are exactly 1 there (the peak) are exactly 1 here too, which matters when an integer
// output_datatype truncates them.
double window_value(WindowKind kind, int64_t i, double denom) {
  constexpr double pi = std::numbers::pi;
  const double n = static_cast<double>(i);
  switch (kind) {
    case WindowKind::kHann: {
      const double s = std::sin(n * pi / denom);
      return s * s;
    }
    case WindowKind::kHamming: {
      constexpr double alpha = 25.0 / 46.0, beta = 1.0 - alpha;
      return alpha - std::cos(n * pi * 2.0 / denom) * beta;
    }
    case WindowKind::kBlackman:
      return std::cos(n * (pi * 2.0) / denom) * -0.5 + std::cos(n * (pi * 4.0) / denom) * 0.08 +
             0.42;
  }
  return 0;
}

OpDef window_op(const char* op_type, WindowKind kind) {
  OpDef def;
  def.op_type = op_type;
  def.since_version = 17;
  def.infer = [](InferContext& ctx) -> Status {
    if (!ctx.has_input(0)) return ctx.invalid("input size is required");
    BRINK_RETURN_IF_ERROR(check_int(ctx, 0, "size"));
    BRINK_ASSIGN_OR_RETURN(const DataType out, output_datatype(ctx));
    BRINK_ASSIGN_OR_RETURN(std::optional<int64_t> size, int_scalar(ctx, 0, "size"));
    if (size && *size < 0)
      return ctx.invalid("size is " + std::to_string(*size) + ", expected >= 0");
    ctx.set_output(0, out, std::vector<Dim>{size ? Dim(*size) : Dim()});
    return Status::ok();
  };
  def.create = [kind](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool periodic = c.node.attr_int("periodic", 1) != 0;
    return make_kernel([=](KernelContext& ctx) -> Status {
      Tensor& y = ctx.output(0);
      const int64_t size = y.numel();
      const double denom = static_cast<double>(periodic ? size : size - 1);
      visit_dtype(y.dtype(), [&]<typename T>() {
        if constexpr (!std::is_same_v<T, bool>) {
          T* yd = y.data<T>();
          for (int64_t i = 0; i < size; ++i) yd[i] = from_double<T>(window_value(kind, i, denom));
        }
      });
      return Status::ok();
    });
  };
  return def;
}

// ---- MelWeightMatrix -----------------------------------------------------------------------

OpDef mel_weight_matrix_op() {
  OpDef def;
  def.op_type = "MelWeightMatrix";
  def.since_version = 17;
  def.infer = [](InferContext& ctx) -> Status {
    static const char* names[] = {"num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz",
                                  "upper_edge_hertz"};
    for (size_t i = 0; i < 5; ++i)
      if (!ctx.has_input(i)) return ctx.invalid(std::string("input ") + names[i] + " is required");
    for (size_t i = 0; i < 3; ++i) {
      BRINK_RETURN_IF_ERROR(check_int(ctx, i, names[i]));
      if (ctx.input_dtype(i) != ctx.input_dtype(0))
        return ctx.invalid(std::string("input ") + names[i] + " has dtype " +
                           dtype_name(ctx.input_dtype(i)) + ", expected " +
                           dtype_name(ctx.input_dtype(0)) + " like num_mel_bins");
    }
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 3, names[3], true));
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 4, names[4], true));
    if (ctx.input_dtype(3) != ctx.input_dtype(4))
      return ctx.invalid("inputs lower_edge_hertz and upper_edge_hertz have different dtypes");
    BRINK_ASSIGN_OR_RETURN(const DataType out, output_datatype(ctx));
    BRINK_ASSIGN_OR_RETURN(std::optional<int64_t> mel_bins, int_scalar(ctx, 0, names[0]));
    BRINK_ASSIGN_OR_RETURN(std::optional<int64_t> dft_length, int_scalar(ctx, 1, names[1]));
    BRINK_ASSIGN_OR_RETURN(std::optional<int64_t> rate, int_scalar(ctx, 2, names[2]));
    if (mel_bins && *mel_bins < 1)
      return ctx.invalid("num_mel_bins is " + std::to_string(*mel_bins) + ", expected >= 1");
    if (dft_length && *dft_length < 1)
      return ctx.invalid("dft_length is " + std::to_string(*dft_length) + ", expected >= 1");
    if (rate && *rate < 1)
      return ctx.invalid("sample_rate is " + std::to_string(*rate) + ", expected >= 1");
    ctx.set_output(0, out,
                   std::vector<Dim>{dft_length ? Dim(*dft_length / 2 + 1) : Dim(),
                                    mel_bins ? Dim(*mel_bins) : Dim()});
    return Status::ok();
  };
  def.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([](KernelContext& ctx) -> Status {
      const int64_t mel_bins = ctx.input(0).element_as_int64(0);
      const int64_t dft_length = ctx.input(1).element_as_int64(0);
      const int64_t rate = ctx.input(2).element_as_int64(0);
      const double lower = ctx.input(3).element_as_double(0);
      const double upper = ctx.input(4).element_as_double(0);
      const int64_t spectrogram_bins = dft_length / 2 + 1;
      // mel(f) = 2595 log10(1 + f / 700); num_mel_bins + 2 points evenly spaced in mel
      // (the step divides by that count, as the reference implementation does), mapped
      // back to hertz and then to a DFT bin.
      const double ln10 = std::log(10.0);
      const auto to_mel = [&](double hz) { return 2595.0 * std::log1p(hz / 700.0) / ln10; };
      const double low_mel = to_mel(lower), high_mel = to_mel(upper);
      const int64_t points = mel_bins + 2;
      const double step = (high_mel - low_mel) / static_cast<double>(points);
      std::vector<int64_t> bin(static_cast<size_t>(points));
      for (int64_t i = 0; i < points; ++i) {
        const double mel = static_cast<double>(i) * step + low_mel;
        const double hz = 700.0 * std::expm1(mel / 2595.0 * ln10);
        const double b =
            std::floor(static_cast<double>(dft_length + 1) * hz / static_cast<double>(rate));
        if (!(b >= 0 && b < static_cast<double>(spectrogram_bins)))
          return invalid_argument(
              "MelWeightMatrix: the edges [" + std::to_string(lower) + ", " +
              std::to_string(upper) + "] Hz map outside the " + std::to_string(spectrogram_bins) +
              " spectrogram bins (expected 0 <= lower_edge_hertz <= upper_edge_hertz <= "
              "sample_rate / 2)");
        bin[static_cast<size_t>(i)] = static_cast<int64_t>(b);
      }
      std::vector<double> w(static_cast<size_t>(spectrogram_bins * mel_bins), 0.0);
      const auto at = [&](int64_t row, int64_t col) -> double& {
        return w[static_cast<size_t>(row * mel_bins + col)];
      };
      for (int64_t i = 0; i < mel_bins; ++i) {
        const int64_t lo = bin[static_cast<size_t>(i)], center = bin[static_cast<size_t>(i + 1)],
                      hi = bin[static_cast<size_t>(i + 2)];
        if (center == lo)
          at(center, i) = 1;
        else
          for (int64_t j = lo; j <= center; ++j)
            at(j, i) = static_cast<double>(j - lo) / static_cast<double>(center - lo);
        for (int64_t j = center; j < hi; ++j)
          at(j, i) = static_cast<double>(hi - j) / static_cast<double>(hi - center);
      }
      Tensor& y = ctx.output(0);
      visit_dtype(y.dtype(), [&]<typename T>() {
        if constexpr (!std::is_same_v<T, bool>) {
          T* yd = y.data<T>();
          for (size_t i = 0; i < w.size(); ++i) yd[i] = from_double<T>(w[i]);
        }
      });
      return Status::ok();
    });
  };
  return def;
}

// ---- Det -----------------------------------------------------------------------------------

OpDef det_op() {
  OpDef def;
  def.op_type = "Det";
  def.since_version = 11;
  def.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "X", false));
    const TensorType& in = ctx.input_type(0);
    if (!in.has_rank()) {
      ctx.set_output(0, TensorType(in.dtype, std::nullopt));
      return Status::ok();
    }
    if (in.rank() < 2)
      return ctx.invalid("input X has rank " + std::to_string(in.rank()) +
                         ", expected at least 2 ([*, M, M])");
    const std::vector<Dim>& dims = *in.dims;
    const Dim &rows = dims[dims.size() - 2], &cols = dims.back();
    if (rows.known() && cols.known() && rows.value != cols.value)
      return ctx.invalid("input X has shape " + in.to_string() +
                         ", expected square matrices in the last two dims");
    ctx.set_output(0, in.dtype, std::vector<Dim>(dims.begin(), dims.end() - 2));
    return Status::ok();
  };
  def.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t m = x.dim(x.rank() - 1);
      if (x.dim(x.rank() - 2) != m)
        return invalid_argument("Det: input has shape " + shape_to_string(x.shape()) +
                                ", expected square matrices in the last two dims");
      Tensor& y = ctx.output(0);
      const int64_t batch = y.numel();
      std::vector<double> a(static_cast<size_t>(m * m));
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          const T* xd = x.data<T>();
          T* yd = y.data<T>();
          for (int64_t b = 0; b < batch; ++b) {
            for (int64_t i = 0; i < m * m; ++i)
              a[static_cast<size_t>(i)] = static_cast<double>(xd[b * m * m + i]);
            const auto at = [&](int64_t r, int64_t c) -> double& {
              return a[static_cast<size_t>(r * m + c)];
            };
            double det = 1;
            for (int64_t k = 0; k < m && det != 0; ++k) {
              int64_t pivot = k;
              for (int64_t r = k + 1; r < m; ++r)
                if (std::abs(at(r, k)) > std::abs(at(pivot, k))) pivot = r;
              if (at(pivot, k) == 0) {
                det = 0;
                break;
              }
              if (pivot != k) {
                for (int64_t c = 0; c < m; ++c) std::swap(at(k, c), at(pivot, c));
                det = -det;
              }
              det *= at(k, k);
              for (int64_t r = k + 1; r < m; ++r) {
                const double f = at(r, k) / at(k, k);
                for (int64_t c = k + 1; c < m; ++c) at(r, c) -= f * at(k, c);
              }
            }
            yd[b] = static_cast<T>(det);
          }
        }
      });
      return Status::ok();
    });
  };
  return def;
}

}  // namespace

void register_signal_ops(OpRegistry& r) {
  if constexpr (op_selected("", "DFT")) r.add(dft_op(17, 19));
  if constexpr (op_selected("", "DFT")) r.add(dft_op(20, 21));
  if constexpr (op_selected("", "STFT")) r.add(stft_op());
  if constexpr (op_selected("", "HannWindow")) r.add(window_op("HannWindow", WindowKind::kHann));
  if constexpr (op_selected("", "HammingWindow"))
    r.add(window_op("HammingWindow", WindowKind::kHamming));
  if constexpr (op_selected("", "BlackmanWindow"))
    r.add(window_op("BlackmanWindow", WindowKind::kBlackman));
  if constexpr (op_selected("", "MelWeightMatrix")) r.add(mel_weight_matrix_op());
  if constexpr (op_selected("", "Det")) r.add(det_op());
}

}  // namespace brink::ops
