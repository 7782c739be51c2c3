// The x86 INT8 micro-kernel, written once over a vector "traits" class and instantiated by
// qgemm_avx2.cc (ymm), qgemm_avx512.cc (zmm, vpmaddubsw) and qgemm_avx512vnni.cc (zmm,
// vpdpbusd), each compiled with its own flags. Internal to those files.
//
// A traits class V provides:
//   I                       the int vector type; kLanes int32 lanes (= columns) per vector
//   load(w)                 an aligned load of kLanes columns x 4 k of the packed panel
//   load_offset(offset)     the accumulators' start: kLanes int32 of the driver's offset
//   A prep_a(uint32_t v)    4 bytes of one row of A (k = 4g..4g+3), made ready for dot
//   B prep_b(I w)           one vector of the panel, made ready for dot
//   I dot(acc, A, B)        acc[c] += sum_{q<4} a[q] * w[c][q], exact
//   finish(acc, offset, scale, p, row, col, valid)   the epilogue of one vector of one row
//                           (offset is already in acc)
// The kernel holds MR x NV accumulators across all taps and all of K; the panel's NR is
// NV * kLanes. See qgemm_ukernel.h for the contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include <immintrin.h>

#include "kernels/qgemm_ukernel.h"

namespace brink::kernels::qgemm_detail {

#if defined(__AVX512BW__) && defined(__AVX512VL__)
// zmm: 16 columns per vector; the epilogue with masked stores.
struct Zmm {
  using I = __m512i;
  static constexpr int kLanes = 16;
  static I load(const int8_t* w) { return _mm512_load_si512(w); }
  static I load_offset(const int32_t* offset) { return _mm512_loadu_si512(offset); }
  static void finish(I acc, const int32_t* offset, const float* scale, const QTileArgs& p, int row,
                     int col, int valid) {
    const __mmask16 m = valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1);
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(scale));
    const size_t at = static_cast<size_t>(row) * p.y_stride + static_cast<size_t>(col);
    if (p.f32) {
      if (p.fbias != nullptr)
        f = add_float_bias(f, _mm512_loadu_ps(p.fbias + col),
                           [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); });
      _mm512_mask_storeu_ps(static_cast<float*>(p.y) + at, m, f);
    } else {
      I q = _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(p.zp));
      q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(p.min)), _mm512_set1_epi32(p.max));
      _mm_mask_storeu_epi8(static_cast<uint8_t*>(p.y) + at, m, _mm512_cvtepi32_epi8(q));
    }
  }
};

// vpmaddubsw + vpmaddwd(ones): exact only for a B without saturating pairs.
struct ZmmMaddubs : Zmm {
  using A = I;
  using B = I;
  static A prep_a(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }
  static B prep_b(I w) { return w; }
  static I dot(I acc, A a, B b) {
    return _mm512_add_epi32(acc,
                            _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), _mm512_set1_epi16(1)));
  }
};

// Exact for any B: A's bytes (0, 2) and (1, 3) as int16 pairs, B's even and odd bytes sign-
// extended to int16, two vpmaddwd.
struct ZmmExact : Zmm {
  struct A {
    I a02, a13;
  };
  struct B {
    I even, odd;
  };
  static A prep_a(uint32_t v) {
    return {_mm512_set1_epi32(static_cast<int>(v & 0x00ff00ffu)),
            _mm512_set1_epi32(static_cast<int>((v >> 8) & 0x00ff00ffu))};
  }
  static B prep_b(I w) {
    return {_mm512_srai_epi16(_mm512_slli_epi16(w, 8), 8), _mm512_srai_epi16(w, 8)};
  }
  static I dot(I acc, const A& a, const B& b) {
    return _mm512_add_epi32(_mm512_add_epi32(acc, _mm512_madd_epi16(a.a02, b.even)),
                            _mm512_madd_epi16(a.a13, b.odd));
  }
};
#endif

#if defined(__AVX2__)
// ymm: 8 columns per vector; partial vectors go through a stack buffer.
struct Ymm {
  using I = __m256i;
  static constexpr int kLanes = 8;
  static I load(const int8_t* w) { return _mm256_load_si256(reinterpret_cast<const I*>(w)); }
  static I load_offset(const int32_t* offset) {
    return _mm256_loadu_si256(reinterpret_cast<const I*>(offset));
  }
  static void finish(I acc, const int32_t* offset, const float* scale, const QTileArgs& p, int row,
                     int col, int valid) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(scale));
    const size_t at = static_cast<size_t>(row) * p.y_stride + static_cast<size_t>(col);
    if (p.f32) {
      if (p.fbias != nullptr)
        f = add_float_bias(f, _mm256_loadu_ps(p.fbias + col),
                           [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); });
      float* y = static_cast<float*>(p.y) + at;
      if (valid == 8) {
        _mm256_storeu_ps(y, f);
      } else {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, f);
        std::memcpy(y, tmp, static_cast<size_t>(valid) * sizeof(float));
      }
    } else {
      I q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(p.zp));
      q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(p.min)), _mm256_set1_epi32(p.max));
      // Byte 0 of each int32 (all in 0..255 now): to the low 4 bytes of each 128-bit lane,
      // then lane 1's dword next to lane 0's.
      const I bytes = _mm256_shuffle_epi8(
          q, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8,
                              12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
      const __m128i packed = _mm256_castsi256_si128(
          _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0)));
      uint8_t* y = static_cast<uint8_t*>(p.y) + at;
      if (valid == 8) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(y), packed);
      } else {
        alignas(16) uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), packed);
        std::memcpy(y, tmp, static_cast<size_t>(valid));
      }
    }
  }
};

struct YmmMaddubs : Ymm {
  using A = I;
  using B = I;
  static A prep_a(uint32_t v) { return _mm256_set1_epi32(static_cast<int>(v)); }
  static B prep_b(I w) { return w; }
  static I dot(I acc, A a, B b) {
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
  }
};

struct YmmExact : Ymm {
  struct A {
    I a02, a13;
  };
  struct B {
    I even, odd;
  };
  static A prep_a(uint32_t v) {
    return {_mm256_set1_epi32(static_cast<int>(v & 0x00ff00ffu)),
            _mm256_set1_epi32(static_cast<int>((v >> 8) & 0x00ff00ffu))};
  }
  static B prep_b(I w) {
    return {_mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8), _mm256_srai_epi16(w, 8)};
  }
  static I dot(I acc, const A& a, const B& b) {
    return _mm256_add_epi32(_mm256_add_epi32(acc, _mm256_madd_epi16(a.a02, b.even)),
                            _mm256_madd_epi16(a.a13, b.odd));
  }
};
#endif

template <class V, int MR, int NV>
void qtile_x86(const QTileArgs& p) {
  using I = typename V::I;
  constexpr int L = V::kLanes;
  I acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V::load_offset(p.offset + j * L);
  const int8_t* w = p.w;
  const size_t groups = p.kc / 4, rem = p.kc % 4;
  const uint8_t* const* ap = p.a;
  for (size_t t = 0; t < p.ks; ++t, ap += MR) {
    const uint8_t* a[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) a[i] = ap[i];
    for (size_t g = 0; g < groups; ++g) {
      typename V::B b[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) b[j] = V::prep_b(V::load(w + j * L * 4));
      w += NV * L * 4;
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const typename V::A av = V::prep_a(load_u32(a[i] + 4 * g));
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = V::dot(acc[i][j], av, b[j]);
      }
    }
    if (rem != 0) {
      typename V::B b[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) b[j] = V::prep_b(V::load(w + j * L * 4));
      w += NV * L * 4;
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const typename V::A av = V::prep_a(load_tail(a[i] + 4 * groups, rem));
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = V::dot(acc[i][j], av, b[j]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const int valid = p.n - j * L;
      if (valid > 0)
        V::finish(acc[i][j], p.offset + j * L, p.scale + j * L, p, i, j * L, valid < L ? valid : L);
    }
}

// Fills uk->tile (with V) and uk->exact (with VE) for rows 1..MR.
template <class V, class VE, int MR, int NV>
void fill_x86(QUkernel* uk) {
  uk->mr = MR;
  uk->nr = NV * V::kLanes;
  uk->a_bias = 0;
  [&]<int... R>(std::integer_sequence<int, R...>) {
    ((uk->tile[R + 1] = &qtile_x86<V, R + 1, NV>), ...);
    ((uk->exact[R + 1] = &qtile_x86<VE, R + 1, NV>), ...);
  }
  (std::make_integer_sequence<int, MR>{});
}

}  // namespace brink::kernels::qgemm_detail
