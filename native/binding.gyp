{
  "targets": [
    {
      "target_name": "diffuse_native",
      "sources": ["src/diffuse_native.cc"],
      "include_dirs": ["/usr/include"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-ffast-math", "-fopenmp", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
