// diffuse-ts native accelerator: oneDNN convolutions and matmuls, and fused
// GroupNorm(+SiLU), computed in place on float32 buffers that JavaScript hands
// over as typed arrays (in practice: views of the tfjs wasm backend's heap, so
// nothing is copied). Built by `npm run build:native` (node-gyp, binding.gyp);
// loaded by src/engine/native.ts, which registers these as tfjs kernels of the
// 'native' backend.
//
// Layouts: activations NHWC (oneDNN nhwc, which its AVX-512 kernels run at full
// speed, so no reorders of activations), filters HWIO as tfjs stores them. The
// convolution weights are reordered into the primitive's preferred blocked
// layout once per call (they are small); the gradient of the weights comes back
// through the same reorder.
//
// State (oneDNN engine and stream, primitive cache, scratchpad) is per calling
// thread, so worker threads may each load the addon. Threads: oneDNN uses
// OpenMP here (Debian's libdnnl); setThreads(n) sets the OpenMP team size for the
// calling thread, and our own loops use the same runtime.
#include <node_api.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_version.h>
#include <omp.h>

#include <chrono>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

// ---------------------------------------------------------------- N-API glue

struct JsError {
  std::string msg;
};

void check(napi_env env, napi_status s, const char* what) {
  if (s != napi_ok) throw JsError{std::string("napi: ") + what};
}

struct F32 {
  float* p = nullptr;
  size_t n = 0;
};

// The data and length of a typed array argument of the given type.
std::pair<void*, size_t> typedArg(napi_env env, napi_value v, const char* name, napi_typedarray_type want, const char* typeName) {
  bool is = false;
  check(env, napi_is_typedarray(env, v, &is), "is_typedarray");
  napi_typedarray_type tt = napi_int8_array;
  size_t len = 0, off = 0;
  void* data = nullptr;
  napi_value ab;
  if (is) check(env, napi_get_typedarray_info(env, v, &tt, &len, &data, &ab, &off), "typedarray_info");
  if (!is || tt != want) throw JsError{std::string(name) + ": expected " + typeName};
  return {data, len};
}

// A Float32Array argument (or null/undefined when optional).
F32 f32Arg(napi_env env, napi_value v, const char* name, bool optional = false) {
  napi_valuetype t;
  check(env, napi_typeof(env, v, &t), "typeof");
  if (optional && (t == napi_null || t == napi_undefined)) return {};
  auto [data, len] = typedArg(env, v, name, napi_float32_array, "a Float32Array");
  return {static_cast<float*>(data), len};
}

std::vector<int64_t> intsArg(napi_env env, napi_value v, const char* name) {
  auto [data, len] = typedArg(env, v, name, napi_int32_array, "an Int32Array");
  const int32_t* d = static_cast<const int32_t*>(data);
  return std::vector<int64_t>(d, d + len);
}

int intArg(napi_env env, napi_value v) {
  int32_t r;
  check(env, napi_get_value_int32(env, v, &r), "int32");
  return r;
}

double numArg(napi_env env, napi_value v) {
  double r;
  check(env, napi_get_value_double(env, v, &r), "double");
  return r;
}

bool boolArg(napi_env env, napi_value v) {
  bool r;
  check(env, napi_get_value_bool(env, v, &r), "bool");
  return r;
}

template <size_t K>
void getArgs(napi_env env, napi_callback_info info, napi_value (&argv)[K], size_t need) {
  size_t argc = K;
  check(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr), "cb_info");
  if (argc < need) throw JsError{"too few arguments"};
}

// Runs `body`, turning C++ and oneDNN errors into JS exceptions.
template <typename F>
napi_value guarded(napi_env env, F body) {
  try {
    return body();
  } catch (const JsError& e) {
    napi_throw_error(env, "ERR_DIFFUSE_NATIVE", e.msg.c_str());
  } catch (const dnnl::error& e) {
    std::string m = std::string("oneDNN: ") + e.what();
    napi_throw_error(env, "ERR_DIFFUSE_NATIVE", m.c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, "ERR_DIFFUSE_NATIVE", e.what());
  }
  return nullptr;
}

napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// ------------------------------------------------------- per-thread context

struct AlignedBuf {
  void* p = nullptr;
  size_t size = 0;
  void* get(size_t n) {
    if (n > size) {
      std::free(p);
      size_t want = n + n / 4 + 4096;
      want = (want + 63) / 64 * 64;
      p = std::aligned_alloc(64, want);
      if (p == nullptr) throw JsError{"out of memory"};
      size = want;
    }
    return p;
  }
  ~AlignedBuf() { std::free(p); }
};

struct Entry {
  virtual ~Entry() = default;
};

struct Ctx {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream st{eng};
  AlignedBuf scratch;
  std::unordered_map<std::string, std::unique_ptr<Entry>> cache;
};

Ctx& ctx() {
  thread_local Ctx c;
  return c;
}

memory scratchMem(Ctx& c, const dnnl::primitive_desc_base& pd) {
  memory::desc sd = pd.scratchpad_desc();
  size_t n = sd.get_size();
  return memory(sd, c.eng, n > 0 ? c.scratch.get(n) : nullptr);
}

std::string keyOf(const char* kind, const std::vector<int64_t>& v) {
  std::string k(kind);
  for (int64_t x : v) {
    k += ',';
    k += std::to_string(x);
  }
  return k;
}

// Threads for one call. Small problems run on the calling thread alone: an
// OpenMP region costs microseconds when the other core is idle, and up to a
// scheduler time slice when it is busy, far more than the work itself. The
// count is part of each cached primitive's key (oneDNN fixes a primitive's
// thread count when it creates it) and is set for its creation and execution.
constexpr double kParallelFlops = 4e6;
constexpr int64_t kParallelElems = 1 << 16;

int threadsFor(double work, double threshold) {
  return work < threshold ? 1 : omp_get_max_threads();
}

struct ThreadScope {
  int prev;
  explicit ThreadScope(int n) : prev(omp_get_max_threads()) {
    if (n != prev) omp_set_num_threads(n);
  }
  ~ThreadScope() {
    if (omp_get_max_threads() != prev) omp_set_num_threads(prev);
  }
};

// ------------------------------------------------------------ convolutions

// p = [N, H, W, C, OH, OW, O, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr] (tfjs
// dilations, 1 = none).
struct ConvDims {
  int64_t N, H, W, C, OH, OW, O, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  explicit ConvDims(const std::vector<int64_t>& p) {
    if (p.size() != 17) throw JsError{"conv: expected 17 dims"};
    N = p[0]; H = p[1]; W = p[2]; C = p[3]; OH = p[4]; OW = p[5]; O = p[6];
    kh = p[7]; kw = p[8]; sh = p[9]; sw = p[10]; dh = p[11]; dw = p[12];
    pt = p[13]; pl = p[14]; pb = p[15]; pr = p[16];
  }
  memory::desc src(tag t) const { return {{N, C, H, W}, dt::f32, t}; }
  memory::desc dst(tag t) const { return {{N, O, OH, OW}, dt::f32, t}; }
  memory::desc wei(tag t) const { return {{O, C, kh, kw}, dt::f32, t}; }
  memory::desc bias() const { return {{O}, dt::f32, tag::x}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dil() const { return {dh - 1, dw - 1}; }
  memory::dims padL() const { return {pt, pl}; }
  memory::dims padR() const { return {pb, pr}; }
  size_t srcSize() const { return size_t(N * H * W * C); }
  size_t dstSize() const { return size_t(N * OH * OW * O); }
  size_t weiSize() const { return size_t(kh * kw * C * O); }
  double flops() const { return 2.0 * double(N * OH * OW * O) * double(C * kh * kw); }
};

dnnl::primitive_attr userScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc fwdPd(const ConvDims& d, bool bias, const dnnl::engine& eng) {
  const auto pk = dnnl::prop_kind::forward_training;
  const auto algo = dnnl::algorithm::convolution_direct;
  auto desc = bias
      ? dnnl::convolution_forward::desc(pk, algo, d.src(tag::nhwc), d.wei(tag::any), d.bias(), d.dst(tag::nhwc),
            d.strides(), d.dil(), d.padL(), d.padR())
      : dnnl::convolution_forward::desc(pk, algo, d.src(tag::nhwc), d.wei(tag::any), d.dst(tag::nhwc),
            d.strides(), d.dil(), d.padL(), d.padR());
  return dnnl::convolution_forward::primitive_desc(desc, userScratchpad(), eng);
}

// Weights between the user's HWIO buffer and the primitive's layout: a reorder
// through an owned buffer, or the user's buffer itself when the layouts agree.
struct WeightsIo {
  memory::desc user, prim;
  bool reorder = false;
  dnnl::reorder r;
  AlignedBuf buf;
  void init(const memory::desc& u, const memory::desc& w, bool toPrim, const dnnl::engine& eng) {
    user = u;
    prim = w;
    reorder = !(u == w);
    if (reorder) r = toPrim ? dnnl::reorder(dnnl::reorder::primitive_desc(eng, u, eng, w)) : dnnl::reorder(dnnl::reorder::primitive_desc(eng, w, eng, u));
  }
  // The memory to pass to the primitive; for inputs, filled from the user's buffer.
  memory in(Ctx& c, float* p) {
    memory um(user, c.eng, p);
    if (!reorder) return um;
    memory wm(prim, c.eng, buf.get(prim.get_size()));
    r.execute(c.st, um, wm);
    return wm;
  }
  memory out(Ctx& c, float* p) { return reorder ? memory(prim, c.eng, buf.get(prim.get_size())) : memory(user, c.eng, p); }
  // After the primitive wrote `m` (from out()): into the user's buffer.
  void finish(Ctx& c, memory& m, float* p) {
    if (!reorder) return;
    memory um(user, c.eng, p);
    r.execute(c.st, m, um);
  }
};

template <typename Pd, typename Prim>
struct Cached : Entry {
  Pd pd;
  Prim prim;
  WeightsIo w;
  bool bias = false;
};
using ConvFwd = Cached<dnnl::convolution_forward::primitive_desc, dnnl::convolution_forward>;
using ConvBwdData = Cached<dnnl::convolution_backward_data::primitive_desc, dnnl::convolution_backward_data>;
using ConvBwdWeights = Cached<dnnl::convolution_backward_weights::primitive_desc, dnnl::convolution_backward_weights>;

// This thread's entry for (kind, dims, threads), made by `make` on first use.
template <typename T, typename Make>
T& entry(Ctx& c, const char* kind, const std::vector<int64_t>& p, int nthr, Make make) {
  std::string key = keyOf(kind, p) + "/t" + std::to_string(nthr);
  auto it = c.cache.find(key);
  if (it != c.cache.end()) return *static_cast<T*>(it->second.get());
  auto e = std::make_unique<T>();
  make(*e);
  T& r = *e;
  c.cache[key] = std::move(e);
  return r;
}

// Each buffer's length against what the dims need.
void checkSizes(const char* fn, std::initializer_list<std::pair<size_t, size_t>> haveWant) {
  for (auto [have, want] : haveWant) {
    if (have != want) throw JsError{std::string(fn) + ": buffer sizes do not match the dims"};
  }
}

// conv2dForward(x, w, bias|null, y, dims)
napi_value Conv2dForward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[5];
    getArgs(env, info, a, 5);
    F32 x = f32Arg(env, a[0], "x"), w = f32Arg(env, a[1], "w"), b = f32Arg(env, a[2], "bias", true), y = f32Arg(env, a[3], "y");
    const auto p = intsArg(env, a[4], "dims");
    ConvDims d(p);
    checkSizes("conv2dForward", {{x.n, d.srcSize()}, {w.n, d.weiSize()}, {y.n, d.dstSize()}, {b.p != nullptr ? b.n : size_t(d.O), size_t(d.O)}});
    Ctx& c = ctx();
    const int nthr = threadsFor(d.flops(), kParallelFlops);
    ThreadScope threads(nthr);
    const bool bias = b.p != nullptr;
    ConvFwd& e = entry<ConvFwd>(c, bias ? "cf1" : "cf0", p, nthr, [&](ConvFwd& n) {
      n.bias = bias;
      n.pd = fwdPd(d, bias, c.eng);
      n.prim = dnnl::convolution_forward(n.pd);
      n.w.init(d.wei(tag::hwio), n.pd.weights_desc(), true, c.eng);
    });
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(e.pd.src_desc(), c.eng, x.p)},
        {DNNL_ARG_WEIGHTS, e.w.in(c, w.p)},
        {DNNL_ARG_DST, memory(e.pd.dst_desc(), c.eng, y.p)},
        {DNNL_ARG_SCRATCHPAD, scratchMem(c, e.pd)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, memory(e.pd.bias_desc(), c.eng, b.p));
    e.prim.execute(c.st, args);
    c.st.wait();
    return undef(env);
  });
}

// conv2dBackwardData(dy, w, dx, dims)
napi_value Conv2dBackwardData(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    getArgs(env, info, a, 4);
    F32 dy = f32Arg(env, a[0], "dy"), w = f32Arg(env, a[1], "w"), dx = f32Arg(env, a[2], "dx");
    const auto p = intsArg(env, a[3], "dims");
    ConvDims d(p);
    checkSizes("conv2dBackwardData", {{dy.n, d.dstSize()}, {w.n, d.weiSize()}, {dx.n, d.srcSize()}});
    Ctx& c = ctx();
    const int nthr = threadsFor(d.flops(), kParallelFlops);
    ThreadScope threads(nthr);
    ConvBwdData& e = entry<ConvBwdData>(c, "cbd", p, nthr, [&](ConvBwdData& n) {
      auto desc = dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, d.src(tag::nhwc), d.wei(tag::any),
          d.dst(tag::nhwc), d.strides(), d.dil(), d.padL(), d.padR());
      n.pd = dnnl::convolution_backward_data::primitive_desc(desc, userScratchpad(), c.eng, fwdPd(d, false, c.eng));
      n.prim = dnnl::convolution_backward_data(n.pd);
      n.w.init(d.wei(tag::hwio), n.pd.weights_desc(), true, c.eng);
    });
    e.prim.execute(c.st, {{DNNL_ARG_DIFF_DST, memory(e.pd.diff_dst_desc(), c.eng, dy.p)},
                          {DNNL_ARG_WEIGHTS, e.w.in(c, w.p)},
                          {DNNL_ARG_DIFF_SRC, memory(e.pd.diff_src_desc(), c.eng, dx.p)},
                          {DNNL_ARG_SCRATCHPAD, scratchMem(c, e.pd)}});
    c.st.wait();
    return undef(env);
  });
}

// conv2dBackwardWeights(x, dy, dw, dbias|null, dims): dw in HWIO, dbias = sum of dy over N, H, W.
napi_value Conv2dBackwardWeights(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[5];
    getArgs(env, info, a, 5);
    F32 x = f32Arg(env, a[0], "x"), dy = f32Arg(env, a[1], "dy"), dw = f32Arg(env, a[2], "dw"), db = f32Arg(env, a[3], "dbias", true);
    const auto p = intsArg(env, a[4], "dims");
    ConvDims d(p);
    checkSizes("conv2dBackwardWeights", {{x.n, d.srcSize()}, {dy.n, d.dstSize()}, {dw.n, d.weiSize()}, {db.p != nullptr ? db.n : size_t(d.O), size_t(d.O)}});
    Ctx& c = ctx();
    const int nthr = threadsFor(d.flops(), kParallelFlops);
    ThreadScope threads(nthr);
    const bool bias = db.p != nullptr;
    ConvBwdWeights& e = entry<ConvBwdWeights>(c, bias ? "cbw1" : "cbw0", p, nthr, [&](ConvBwdWeights& n) {
      n.bias = bias;
      const auto algo = dnnl::algorithm::convolution_direct;
      auto desc = bias
          ? dnnl::convolution_backward_weights::desc(algo, d.src(tag::nhwc), d.wei(tag::any), d.bias(), d.dst(tag::nhwc),
                d.strides(), d.dil(), d.padL(), d.padR())
          : dnnl::convolution_backward_weights::desc(algo, d.src(tag::nhwc), d.wei(tag::any), d.dst(tag::nhwc),
                d.strides(), d.dil(), d.padL(), d.padR());
      n.pd = dnnl::convolution_backward_weights::primitive_desc(desc, userScratchpad(), c.eng, fwdPd(d, bias, c.eng));
      n.prim = dnnl::convolution_backward_weights(n.pd);
      n.w.init(d.wei(tag::hwio), n.pd.diff_weights_desc(), false, c.eng);
    });
    memory dwm = e.w.out(c, dw.p);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(e.pd.src_desc(), c.eng, x.p)},
        {DNNL_ARG_DIFF_DST, memory(e.pd.diff_dst_desc(), c.eng, dy.p)},
        {DNNL_ARG_DIFF_WEIGHTS, dwm},
        {DNNL_ARG_SCRATCHPAD, scratchMem(c, e.pd)}};
    if (bias) args.emplace(DNNL_ARG_DIFF_BIAS, memory(e.pd.diff_bias_desc(), c.eng, db.p));
    e.prim.execute(c.st, args);
    e.w.finish(c, dwm, dw.p);
    c.st.wait();
    return undef(env);
  });
}

// ------------------------------------------------------------------ matmul

using MatMul = Cached<dnnl::matmul::primitive_desc, dnnl::matmul>;

// matmul(a, b, out, [batchA, batchB, M, K, N, transA, transB]): out[batch, M, N] =
// op(a)[batch] x op(b)[batch], a batch of 1 broadcast against the other.
napi_value MatMulFn(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    getArgs(env, info, a, 4);
    F32 A = f32Arg(env, a[0], "a"), B = f32Arg(env, a[1], "b"), O = f32Arg(env, a[2], "out");
    const auto p = intsArg(env, a[3], "dims");
    if (p.size() != 7) throw JsError{"matmul: expected 7 dims"};
    const int64_t ba = p[0], bb = p[1], M = p[2], K = p[3], N = p[4];
    const bool ta = p[5] != 0, tb = p[6] != 0;
    const int64_t bo = std::max(ba, bb);
    if ((ba != bo && ba != 1) || (bb != bo && bb != 1)) throw JsError{"matmul: batch sizes do not broadcast"};
    if (A.n != size_t(ba * M * K) || B.n != size_t(bb * K * N) || O.n != size_t(bo * M * N)) {
      throw JsError{"matmul: buffer sizes do not match the dims"};
    }
    Ctx& c = ctx();
    const int nthr = threadsFor(2.0 * double(bo * M * N) * double(K), kParallelFlops);
    ThreadScope threads(nthr);
    MatMul& e = entry<MatMul>(c, "mm", p, nthr, [&](MatMul& n) {
      memory::desc amd({ba, M, K}, dt::f32, ta ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1});
      memory::desc bmd({bb, K, N}, dt::f32, tb ? memory::dims{K * N, 1, K} : memory::dims{K * N, N, 1});
      memory::desc omd({bo, M, N}, dt::f32, memory::dims{M * N, N, 1});
      n.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(amd, bmd, omd), userScratchpad(), c.eng);
      n.prim = dnnl::matmul(n.pd);
    });
    e.prim.execute(c.st, {{DNNL_ARG_SRC, memory(e.pd.src_desc(), c.eng, A.p)},
                          {DNNL_ARG_WEIGHTS, memory(e.pd.weights_desc(), c.eng, B.p)},
                          {DNNL_ARG_DST, memory(e.pd.dst_desc(), c.eng, O.p)},
                          {DNNL_ARG_SCRATCHPAD, scratchMem(c, e.pd)}});
    c.st.wait();
    return undef(env);
  });
}

// -------------------------------------------------------- GroupNorm + SiLU

// Same semantics as groupNormForward/groupNormBackward in src/engine/fused.ts:
// x NHWC [N, HW, C], G groups of C/G channels, biased variance, float64
// accumulators, stats[n, g] = (mean, 1/sqrt(var + eps)) rounded to float32.
// One image per task; every loop runs along the C contiguous channels of a
// pixel (so it vectorises for any group size), with per-channel constants.

__attribute__((target_clones("avx512f", "avx2", "default")))
void channelSums(const float* x, double* s1, double* s2, int64_t HW, int64_t C) {
  for (int64_t c = 0; c < C; c++) s1[c] = s2[c] = 0;
  for (int64_t i = 0; i < HW; i++) {
    const float* row = x + i * C;
    for (int64_t c = 0; c < C; c++) {
      double v = row[c];
      s1[c] += v;
      s2[c] += v * v;
    }
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void affineAct(const float* x, float* y, const float* sc, const float* sh, int64_t HW, int64_t C, bool silu) {
  for (int64_t i = 0; i < HW; i++) {
    const float* row = x + i * C;
    float* out = y + i * C;
    if (silu) {
      for (int64_t c = 0; c < C; c++) {
        float v = row[c] * sc[c] + sh[c];
        out[c] = v / (1.0f + std::exp(-v));
      }
    } else {
      for (int64_t c = 0; c < C; c++) out[c] = row[c] * sc[c] + sh[c];
    }
  }
}

void gnForwardImage(const float* x, const float* gamma, const float* beta, float* y, float* stats,
    int64_t HW, int64_t C, int64_t G, bool silu, double eps) {
  std::vector<double> s1(static_cast<size_t>(C)), s2(static_cast<size_t>(C));
  std::vector<float> sc(static_cast<size_t>(C)), sh(static_cast<size_t>(C));
  channelSums(x, s1.data(), s2.data(), HW, C);
  const int64_t cg = C / G;
  const double M = double(HW * cg);
  for (int64_t g = 0; g < G; g++) {
    double s = 0, q = 0;
    for (int64_t k = g * cg; k < (g + 1) * cg; k++) {
      s += s1[size_t(k)];
      q += s2[size_t(k)];
    }
    const double mean = s / M;
    const float m = float(mean);
    const float r = float(1.0 / std::sqrt(std::max(0.0, q / M - mean * mean) + eps));
    stats[2 * g] = m;
    stats[2 * g + 1] = r;
    for (int64_t k = g * cg; k < (g + 1) * cg; k++) {
      sc[size_t(k)] = r * gamma[k];
      sh[size_t(k)] = beta[k] - m * sc[size_t(k)];
    }
  }
  affineAct(x, y, sc.data(), sh.data(), HW, C, silu);
}

// Pass 1 of the backward: gz = dL/d(gamma*xn + beta) through SiLU; dx <- gz*gamma;
// per-channel sums of gz*xn and gz (float64).
__attribute__((target_clones("avx512f", "avx2", "default")))
void gnBackPass1(const float* dz, const float* x, float* dx, const float* mc, const float* rc, const float* ga,
    const float* sc, const float* sh, double* sgx, double* sg, int64_t HW, int64_t C, bool silu) {
  for (int64_t c = 0; c < C; c++) sgx[c] = sg[c] = 0;
  for (int64_t i = 0; i < HW; i++) {
    const float* xr = x + i * C;
    const float* dr = dz + i * C;
    float* o = dx + i * C;
    for (int64_t c = 0; c < C; c++) {
      float xi = xr[c];
      float xn = (xi - mc[c]) * rc[c];
      float gz = dr[c];
      if (silu) {
        float v = xi * sc[c] + sh[c];
        float sig = 1.0f / (1.0f + std::exp(-v));
        gz = gz * sig * (1.0f + v * (1.0f - sig));
      }
      sgx[c] += double(gz) * double(xn);
      sg[c] += double(gz);
      o[c] = gz * ga[c];
    }
  }
}

// Pass 2: dx = r * (dxn - mean(dxn) - xn * mean(dxn * xn)) = r*dxn + x*k1 + k0.
__attribute__((target_clones("avx512f", "avx2", "default")))
void gnBackPass2(const float* x, float* dx, const float* rc, const float* k1, const float* k0, int64_t HW, int64_t C) {
  for (int64_t i = 0; i < HW; i++) {
    const float* xr = x + i * C;
    float* o = dx + i * C;
    for (int64_t c = 0; c < C; c++) o[c] = rc[c] * o[c] + xr[c] * k1[c] + k0[c];
  }
}

void gnBackwardImage(const float* dz, const float* x, const float* gamma, const float* beta, const float* stats,
    float* dx, double* pg, double* pb, int64_t HW, int64_t C, int64_t G, bool silu) {
  const int64_t cg = C / G;
  const size_t nc = static_cast<size_t>(C);
  std::vector<float> mc(nc), rc(nc), sc(nc), sh(nc), k1(nc), k0(nc);
  for (int64_t c = 0; c < C; c++) {
    const int64_t g = c / cg;
    mc[size_t(c)] = stats[2 * g];
    rc[size_t(c)] = stats[2 * g + 1];
    sc[size_t(c)] = rc[size_t(c)] * gamma[c];
    sh[size_t(c)] = beta[c] - mc[size_t(c)] * sc[size_t(c)];
  }
  gnBackPass1(dz, x, dx, mc.data(), rc.data(), gamma, sc.data(), sh.data(), pg, pb, HW, C, silu);
  const double M = double(HW * cg);
  for (int64_t g = 0; g < G; g++) {
    // sum(dxn) = sum(gamma*gz), sum(dxn*xn) = sum(gamma*gz*xn).
    double t1 = 0, t2 = 0;
    for (int64_t k = g * cg; k < (g + 1) * cg; k++) {
      t1 += double(gamma[k]) * pb[k];
      t2 += double(gamma[k]) * pg[k];
    }
    const double m = stats[2 * g], r = stats[2 * g + 1];
    const double A = t1 / M, B = t2 / M;
    const float kk1 = float(-r * r * B), kk0 = float(-r * A + r * r * B * m);
    for (int64_t k = g * cg; k < (g + 1) * cg; k++) {
      k1[size_t(k)] = kk1;
      k0[size_t(k)] = kk0;
    }
  }
  gnBackPass2(x, dx, rc.data(), k1.data(), k0.data(), HW, C);
}

struct GnDims {
  int64_t N, HW, C, G;
};

GnDims gnDims(napi_env env, napi_value v) {
  auto p = intsArg(env, v, "dims");
  if (p.size() != 4) throw JsError{"groupNorm: expected dims [N, HW, C, G]"};
  GnDims d{p[0], p[1], p[2], p[3]};
  if (d.N < 0 || d.HW < 0 || d.G < 1 || d.C % d.G != 0) throw JsError{"groupNorm: bad dims"};
  return d;
}

// groupNormForward(x, gamma, beta, y, stats, [N, HW, C, G], silu, eps)
napi_value GroupNormForward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[8];
    getArgs(env, info, a, 8);
    F32 x = f32Arg(env, a[0], "x"), gamma = f32Arg(env, a[1], "gamma"), beta = f32Arg(env, a[2], "beta"),
        y = f32Arg(env, a[3], "y"), stats = f32Arg(env, a[4], "stats");
    GnDims d = gnDims(env, a[5]);
    bool silu = boolArg(env, a[6]);
    double eps = numArg(env, a[7]);
    size_t total = size_t(d.N * d.HW * d.C);
    if (x.n != total || y.n != total || gamma.n != size_t(d.C) || beta.n != size_t(d.C) || stats.n != size_t(d.N * d.G * 2)) {
      throw JsError{"groupNormForward: buffer sizes do not match the dims"};
    }
#pragma omp parallel for schedule(static) if (total >= size_t(kParallelElems))
    for (int64_t n = 0; n < d.N; n++) {
      size_t base = size_t(n * d.HW * d.C);
      gnForwardImage(x.p + base, gamma.p, beta.p, y.p + base, stats.p + 2 * n * d.G, d.HW, d.C, d.G, silu, eps);
    }
    return undef(env);
  });
}

// groupNormBackward(dz, x, gamma, beta, stats, dx, dgamma, dbeta, [N, HW, C, G], silu)
napi_value GroupNormBackward(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[10];
    getArgs(env, info, a, 10);
    F32 dz = f32Arg(env, a[0], "dz"), x = f32Arg(env, a[1], "x"), gamma = f32Arg(env, a[2], "gamma"),
        beta = f32Arg(env, a[3], "beta"), stats = f32Arg(env, a[4], "stats"), dx = f32Arg(env, a[5], "dx"),
        dgamma = f32Arg(env, a[6], "dgamma"), dbeta = f32Arg(env, a[7], "dbeta");
    GnDims d = gnDims(env, a[8]);
    bool silu = boolArg(env, a[9]);
    size_t total = size_t(d.N * d.HW * d.C);
    if (x.n != total || dz.n != total || dx.n != total || gamma.n != size_t(d.C) || beta.n != size_t(d.C) ||
        dgamma.n != size_t(d.C) || dbeta.n != size_t(d.C) || stats.n != size_t(d.N * d.G * 2)) {
      throw JsError{"groupNormBackward: buffer sizes do not match the dims"};
    }
    // Per-image partials of dgamma/dbeta, summed over images in order afterwards (deterministic).
    std::vector<double> pg(size_t(d.N * d.C)), pb(size_t(d.N * d.C));
#pragma omp parallel for schedule(static) if (total >= size_t(kParallelElems))
    for (int64_t n = 0; n < d.N; n++) {
      size_t base = size_t(n * d.HW * d.C);
      gnBackwardImage(dz.p + base, x.p + base, gamma.p, beta.p, stats.p + 2 * n * d.G, dx.p + base, pg.data() + n * d.C,
          pb.data() + n * d.C, d.HW, d.C, d.G, silu);
    }
    for (int64_t c = 0; c < d.C; c++) {
      double sg = 0, sb = 0;
      for (int64_t n = 0; n < d.N; n++) {
        sg += pg[size_t(n * d.C + c)];
        sb += pb[size_t(n * d.C + c)];
      }
      dgamma.p[c] = float(sg);
      dbeta.p[c] = float(sb);
    }
    return undef(env);
  });
}

// ------------------------------------------------------------------ sums

__attribute__((target_clones("avx512f", "avx2", "default")))
void sumBlock(const float* x, double* acc, int64_t r0, int64_t r1, int64_t C) {
  for (int64_t c = 0; c < C; c++) acc[c] = 0;
  for (int64_t r = r0; r < r1; r++) {
    const float* row = x + r * C;
    for (int64_t c = 0; c < C; c++) acc[c] += double(row[c]);
  }
}

// sumMiddle(x, out, [A, R, C]): out[a, c] = sum over r of x[a, r, c] (float64
// accumulators). Per a, the rows go in a fixed number of blocks summed in
// order, so the result does not depend on the thread count.
napi_value SumMiddle(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[3];
    getArgs(env, info, a, 3);
    F32 x = f32Arg(env, a[0], "x"), out = f32Arg(env, a[1], "out");
    auto p = intsArg(env, a[2], "dims");
    if (p.size() != 3) throw JsError{"sumMiddle: expected dims [A, R, C]"};
    const int64_t A = p[0], R = p[1], C = p[2];
    if (x.n != size_t(A * R * C) || out.n != size_t(A * C)) throw JsError{"sumMiddle: buffer sizes do not match the dims"};
    const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(R, 64 / std::min<int64_t>(A, 64)));
    std::vector<double> part(size_t(A * blocks * C));
#pragma omp parallel for schedule(static) if (A * R * C >= kParallelElems)
    for (int64_t t = 0; t < A * blocks; t++) {
      int64_t ai = t / blocks, b = t % blocks;
      sumBlock(x.p + ai * R * C, part.data() + t * C, R * b / blocks, R * (b + 1) / blocks, C);
    }
    for (int64_t ai = 0; ai < A; ai++) {
      for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t b = 0; b < blocks; b++) s += part[size_t((ai * blocks + b) * C + c)];
        out.p[ai * C + c] = float(s);
      }
    }
    return undef(env);
  });
}

// ---------------------------------------------------- elementwise, copies

__attribute__((target_clones("avx512f", "avx2", "default")))
void addRow(const float* x, const float* y, float* o, int64_t C) {
  for (int64_t c = 0; c < C; c++) o[c] = x[c] + y[c];
}

// addBroadcast(x, y, out, [A, R, C]): out[a, r, c] = x[a, r, c] + y[a, c]
// (R = 1: same shapes; A = 1: a bias over the last axis; else e.g. [N,H,W,C] + [N,1,1,C]).
napi_value AddBroadcast(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    getArgs(env, info, a, 4);
    F32 x = f32Arg(env, a[0], "x"), y = f32Arg(env, a[1], "y"), o = f32Arg(env, a[2], "out");
    auto p = intsArg(env, a[3], "dims");
    if (p.size() != 3) throw JsError{"addBroadcast: expected dims [A, R, C]"};
    const int64_t A = p[0], R = p[1], C = p[2];
    if (x.n != size_t(A * R * C) || o.n != x.n || y.n != size_t(A * C)) throw JsError{"addBroadcast: buffer sizes do not match the dims"};
    if (R == 1) {
      // Same shapes: split the flat range in chunks.
      const int64_t n = A * C, chunk = 1 << 14, chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
      for (int64_t k = 0; k < chunks; k++) {
        int64_t s0 = k * chunk, len = std::min(chunk, n - s0);
        addRow(x.p + s0, y.p + s0, o.p + s0, len);
      }
    } else {
#pragma omp parallel for schedule(static) if (A * R * C >= kParallelElems)
      for (int64_t t = 0; t < A * R; t++) {
        int64_t ai = t / R;
        addRow(x.p + t * C, y.p + ai * C, o.p + t * C, C);
      }
    }
    return undef(env);
  });
}

// copyBlocks(src, dst, [outer, srcStride, srcOffset, dstStride, dstOffset, len]):
// for o < outer: dst[o*dstStride + dstOffset .. +len] = src[o*srcStride + srcOffset .. +len].
// A slice along one axis, one part of a split, or one input of a concat.
napi_value CopyBlocks(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[3];
    getArgs(env, info, a, 3);
    F32 src = f32Arg(env, a[0], "src"), dst = f32Arg(env, a[1], "dst");
    auto p = intsArg(env, a[2], "dims");
    if (p.size() != 6) throw JsError{"copyBlocks: expected 6 dims"};
    const int64_t outer = p[0], ss = p[1], so = p[2], ds = p[3], dof = p[4], len = p[5];
    if (outer < 0 || len < 0 || so < 0 || dof < 0) throw JsError{"copyBlocks: negative dims"};
    if (outer == 0 || len == 0) return undef(env);
    if (size_t((outer - 1) * ss + so + len) > src.n || size_t((outer - 1) * ds + dof + len) > dst.n) {
      throw JsError{"copyBlocks: out of range"};
    }
    const size_t bytes = size_t(len) * sizeof(float);
#pragma omp parallel for schedule(static) if (outer * len >= kParallelElems)
    for (int64_t o = 0; o < outer; o++) std::memcpy(dst.p + o * ds + dof, src.p + o * ss + so, bytes);
    return undef(env);
  });
}

// ------------------------------------------------------------------ peak

// FMA throughput of one core: 12 independent chains of 16-float vector
// multiply-adds (contracted to FMAs; one zmm or two ymm registers each), enough
// to cover the latency of two FMA ports.
typedef float v16f __attribute__((vector_size(64)));

__attribute__((target_clones("avx512f", "arch=haswell", "default")))
double fmaLoop(int64_t iters) {
  v16f a[12];
  for (int k = 0; k < 12; k++) {
    for (int j = 0; j < 16; j++) a[k][j] = float(k * 16 + j) * 1e-6f;
  }
  v16f m, b;
  for (int j = 0; j < 16; j++) {
    m[j] = 0.999999f;
    b[j] = 1e-7f;
  }
  for (int64_t i = 0; i < iters; i++) {
    for (int k = 0; k < 12; k++) a[k] = a[k] * m + b;
  }
  double s = 0;
  for (int k = 0; k < 12; k++) s += double(a[k][0]);
  return s;
}

// peakGflops(threads): float32 FMA GFLOP/s of `threads` cores together (best of 5 runs of ~20 ms).
napi_value PeakGflops(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[1];
    getArgs(env, info, a, 1);
    const int threads = std::max(1, intArg(env, a[0]));
    const int64_t iters = 2000000;
    const double flopsPerThread = double(iters) * 12 * 16 * 2;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
      double sink = 0;
      auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
      sink += fmaLoop(iters);
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (sink == 42.0) sec += 1e-9;  // keep the result alive
      best = std::max(best, flopsPerThread * threads / sec / 1e9);
    }
    napi_value r;
    check(env, napi_create_double(env, best, &r), "double");
    return r;
  });
}

// ------------------------------------------------------------------ misc

const char* isaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::sse41: return "sse41";
    default: return "other";
  }
}

void setProp(napi_env env, napi_value obj, const char* name, napi_value v) {
  check(env, napi_set_named_property(env, obj, name, v), "set_named_property");
}

// info(): { onednn: "2.6.3", isa, threads, runtime }
napi_value Info(napi_env env, napi_callback_info) {
  return guarded(env, [&]() -> napi_value {
    napi_value o, s, n;
    check(env, napi_create_object(env, &o), "object");
    const dnnl_version_t* v = dnnl_version();
    std::string ver = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    check(env, napi_create_string_utf8(env, ver.c_str(), NAPI_AUTO_LENGTH, &s), "string");
    setProp(env, o, "onednn", s);
    check(env, napi_create_string_utf8(env, isaName(dnnl::get_effective_cpu_isa()), NAPI_AUTO_LENGTH, &s), "string");
    setProp(env, o, "isa", s);
    check(env, napi_create_int32(env, omp_get_max_threads(), &n), "int");
    setProp(env, o, "threads", n);
    check(env, napi_create_string_utf8(env, "OpenMP", NAPI_AUTO_LENGTH, &s), "string");
    setProp(env, o, "runtime", s);
    check(env, napi_create_int32(env, int(ctx().cache.size()), &n), "int");
    setProp(env, o, "cachedPrimitives", n);
    return o;
  });
}

// setThreads(n): OpenMP team size for oneDNN and our loops, for the calling thread.
napi_value SetThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[1];
    getArgs(env, info, a, 1);
    int n = intArg(env, a[0]);
    if (n < 1) throw JsError{"setThreads: n must be >= 1"};
    omp_set_num_threads(n);
    return undef(env);
  });
}

}  // namespace

NAPI_MODULE_INIT() {
  struct Fn {
    const char* name;
    napi_callback cb;
  };
  const Fn fns[] = {
      {"conv2dForward", Conv2dForward},
      {"conv2dBackwardData", Conv2dBackwardData},
      {"conv2dBackwardWeights", Conv2dBackwardWeights},
      {"matmul", MatMulFn},
      {"groupNormForward", GroupNormForward},
      {"groupNormBackward", GroupNormBackward},
      {"sumMiddle", SumMiddle},
      {"addBroadcast", AddBroadcast},
      {"copyBlocks", CopyBlocks},
      {"peakGflops", PeakGflops},
      {"info", Info},
      {"setThreads", SetThreads},
  };
  for (const Fn& f : fns) {
    napi_value v;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &v) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, f.name, v) != napi_ok) return nullptr;
  }
  return exports;
}
