// Which oneDNN memory formats for the native engine's convolutions? Times
// forward, backward-data and backward-weights on the U-Net's conv shapes with
//   nhwc  activations as tfjs stores them (no reorder), weights 'any' (blocked)
//   any   activations and weights in oneDNN's preferred (blocked, nChw16c) layouts
//   hwio  nhwc activations and tfjs's HWIO weights as they are (no reorder at all)
// The reorders 'any' would need (in and out of the blocked layout, per op or
// once per step) are not counted: this is its best case.
//
//   g++ -O2 -fopenmp native/bench/conv_layouts.cc -ldnnl -o /tmp/conv_layouts
//   OMP_NUM_THREADS=1 /tmp/conv_layouts [batch]     (and OMP_NUM_THREADS=2)
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Shape { int C, H, O, k, s; };

int main(int argc, char** argv) {
  const int N = argc > 1 ? std::atoi(argv[1]) : 32;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  const std::vector<Shape> shapes = {{32, 32, 32, 3, 1}, {96, 32, 32, 3, 1}, {32, 32, 32, 3, 2}, {64, 16, 64, 3, 1},
                                     {128, 16, 64, 3, 1}, {64, 8, 64, 3, 1}, {128, 8, 64, 3, 1}, {128, 16, 64, 1, 1}};
  std::printf("batch %d, %d thread(s); GFLOP/s fwd / bwd-data / bwd-weights (median of 7)\n", N, omp_get_max_threads());
  for (const char* mode : {"nhwc", "any", "hwio"}) {
    const std::string m(mode);
    const tag act = m == "any" ? tag::any : tag::nhwc;
    const tag wei = m == "hwio" ? tag::hwio : tag::any;
    double sum[3] = {0, 0, 0};
    for (const Shape& s : shapes) {
      const int p = (s.k - 1) / 2, OH = (s.H + 2 * p - s.k) / s.s + 1;
      memory::dims pl = {p, p}, pr = {p, p};
      if (s.s == 2) { pl = {0, 0}; pr = {1, 1}; }  // tfjs 'same' at stride 2 on an even size
      memory::desc src({N, s.C, s.H, s.H}, dt::f32, act), dst({N, s.O, OH, OH}, dt::f32, act);
      memory::desc w({s.O, s.C, s.k, s.k}, dt::f32, wei), b({s.O}, dt::f32, tag::x);
      const memory::dims strides = {s.s, s.s};
      auto fpd = convolution_forward::primitive_desc(convolution_forward::desc(prop_kind::forward_training,
          algorithm::convolution_direct, src, w, b, dst, strides, pl, pr), eng);
      auto dpd = convolution_backward_data::primitive_desc(convolution_backward_data::desc(algorithm::convolution_direct,
          src, w, dst, strides, pl, pr), eng, fpd);
      auto wpd = convolution_backward_weights::primitive_desc(convolution_backward_weights::desc(algorithm::convolution_direct,
          src, w, b, dst, strides, pl, pr), eng, fpd);
      auto mk = [&](const memory::desc& d) {
        memory mm(d, eng);
        float* q = static_cast<float*>(mm.get_data_handle());
        for (size_t i = 0; i < d.get_size() / 4; i++) q[i] = float(i % 7) * 0.1f;
        return mm;
      };
      memory x = mk(fpd.src_desc()), wm = mk(fpd.weights_desc()), bm = mk(fpd.bias_desc()), y = mk(fpd.dst_desc());
      memory dy = mk(dpd.diff_dst_desc()), dx = mk(dpd.diff_src_desc()), wd = mk(dpd.weights_desc());
      memory x2 = mk(wpd.src_desc()), dy2 = mk(wpd.diff_dst_desc()), dw = mk(wpd.diff_weights_desc()), db = mk(wpd.diff_bias_desc());
      convolution_forward f(fpd);
      convolution_backward_data bd(dpd);
      convolution_backward_weights bw(wpd);
      const double flops = 2.0 * N * OH * OH * s.O * s.C * s.k * s.k;
      auto time = [&](auto fn) {
        fn();
        st.wait();
        std::vector<double> t;
        for (int i = 0; i < 7; i++) {
          double t0 = now();
          fn();
          st.wait();
          t.push_back(now() - t0);
        }
        std::sort(t.begin(), t.end());
        return t[3];
      };
      const double t[3] = {
          time([&] { f.execute(st, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, y}}); }),
          time([&] { bd.execute(st, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, wd}, {DNNL_ARG_DIFF_SRC, dx}}); }),
          time([&] { bw.execute(st, {{DNNL_ARG_SRC, x2}, {DNNL_ARG_DIFF_DST, dy2}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_BIAS, db}}); })};
      for (int i = 0; i < 3; i++) sum[i] += t[i];
      std::printf("  %-4s C%-3d %2dx%-2d O%-3d k%d s%d: %6.1f / %6.1f / %6.1f   [%s | %s | %s]\n", mode, s.C, s.H, s.H, s.O, s.k, s.s,
          flops / t[0] / 1e9, flops / t[1] / 1e9, flops / t[2] / 1e9, fpd.impl_info_str(), dpd.impl_info_str(), wpd.impl_info_str());
    }
    std::printf("%s: total %.1f / %.1f / %.1f ms\n", mode, sum[0] * 1e3, sum[1] * 1e3, sum[2] * 1e3);
  }
}
