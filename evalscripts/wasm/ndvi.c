// NDVI as a precompiled WebAssembly evalscript (the ABI is documented in
// src/evalscript/wasm/precompiled.rs). Build with ./build.sh; no libc is needed.
//
// The host writes the block at the I/O base (the module's __heap_base rounded up to 8):
// one f32 plane of n values per input band, in setup order, then, 8-aligned, one f64
// plane of n values per output band. run(n) reads the inputs and writes the outputs.

// The setup, as the JSON a V3 setup() would return.
static const char SETUP[] =
    "{\"input\": [\"B04\", \"B08\"],"
    " \"output\": [{\"id\": \"default\", \"bands\": 1, \"sampleType\": \"FLOAT32\"}]}";

__attribute__((export_name("setup_json_ptr"))) const char *setup_json_ptr(void) {
    return SETUP;
}

__attribute__((export_name("setup_json_len"))) int setup_json_len(void) {
    return (int)sizeof SETUP - 1; // without the terminating NUL
}

// Defined by wasm-ld: the first byte after static data and the stack.
extern unsigned char __heap_base;

static unsigned long align8(unsigned long x) { return (x + 7) & ~7ul; }

__attribute__((export_name("run"))) void run(int n) {
    unsigned long base = align8((unsigned long)&__heap_base);
    const float *b04 = (const float *)base;
    const float *b08 = b04 + n;
    double *ndvi = (double *)align8(base + 2ul * (unsigned long)n * 4);
    for (int i = 0; i < n; i++) {
        // In double, as JavaScript computes (B08 - B04) / (B08 + B04).
        double red = b04[i], nir = b08[i];
        ndvi[i] = (nir - red) / (nir + red);
    }
}
