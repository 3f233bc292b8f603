// The evalscript helper library (evalscript-v3.md §4), evaluated once per boa Context.
//
// Every helper is installed as an ordinary, writable and configurable property of the
// global object (never a global `var`, `function`, `let` or `class` binding), so a
// script that declares its own `index`, `colorBlend` or `ColorRampVisualizer` shadows
// the helper instead of failing with a redeclaration SyntaxError. Written from the
// documented behaviour; the documented examples are the unit tests' vectors.
(function (G) {
  "use strict";
  var JAVA_DOUBLE_MAX_VAL = 1.7976931348623157e308;

  function def(name, value) {
    Object.defineProperty(G, name, {
      value: value, writable: true, configurable: true, enumerable: false
    });
  }

  // ---- colours ----
  function int2rgb(c) { return [(c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff]; }
  function rgb2int(rgb) { return ((rgb[0] & 0xff) << 16) | ((rgb[1] & 0xff) << 8) | (rgb[2] & 0xff); }
  function normalizeRGB(rgb) { return rgb.map(function (v) { return v / 255; }); }
  /** A colour (hex int or normalized [r,g,b]) as 0..255 channels. */
  function to255(color) {
    if (typeof color === "number") return int2rgb(color);
    return [color[0] * 255, color[1] * 255, color[2] * 255];
  }

  function index(x, y) { var s = x + y; return s === 0 ? 0 : (x - y) / s; }
  function inverse(x) { return x === 0 ? JAVA_DOUBLE_MAX_VAL : 1 / x; }

  /** Arrays: alpha*c1 + (1-alpha)*c2 per component. Hex ints (legacy): rounded hex int. */
  function combine(c1, c2, alpha) {
    if (typeof c1 === "number" && typeof c2 === "number") {
      var a = int2rgb(c1), b = int2rgb(c2), out = [];
      for (var i = 0; i < 3; i++) out.push(Math.round(alpha * a[i] + (1 - alpha) * b[i]));
      return rgb2int(out);
    }
    var res = new Array(c1.length);
    for (var k = 0; k < c1.length; k++) res[k] = alpha * c1[k] + (1 - alpha) * c2[k];
    return res;
  }

  function valueMap(value, intervals, values) {
    if (!intervals || !values) return value;
    for (var i = 0; i < intervals.length; i++) {
      if (value <= intervals[i]) return values[i];
    }
    return values[values.length - 1];
  }

  function isScalar(c) { return typeof c === "number" || !isNaN(c); }
  function blendEntry(a, b, t) {
    if (isScalar(a) && isScalar(b)) { a = +a; b = +b; return a + (b - a) * t; }
    if (Array.isArray(a) && Array.isArray(b)) {
      var out = new Array(a.length);
      for (var k = 0; k < a.length; k++) out[k] = a[k] + (b[k] - a[k]) * t;
      return out;
    }
    throw "colorBlend: colors must be numbers or arrays of equal length";
  }
  /** Piecewise-linear interpolation over ascending limits, clamped to the end entries.
   *  Does not mutate `colors` (the legacy in-place blend corrupted reused palettes). */
  function colorBlend(value, limits, colors) {
    if (!limits || !colors) return value;
    var n = limits.length;
    if (value <= limits[0]) return colors[0];
    for (var i = 1; i < n; i++) {
      if (value <= limits[i]) {
        var w = limits[i] - limits[i - 1];
        if (w === 0) return colors[i];
        return blendEntry(colors[i - 1], colors[i], (value - limits[i - 1]) / w);
      }
    }
    return colors[n - 1];
  }
  /** Legacy step function with a strict `<`: colors[i] for the first value < limits[i]. */
  function colorMap(value, limits, colors) {
    if (!limits || !colors) return value;
    for (var i = 0; i < limits.length; i++) {
      if (value < limits[i]) return colors[i];
    }
    return colors[colors.length - 1];
  }

  // ---- visualizers ----
  function ColorMapVisualizer(valColPairs) {
    this.pairs = valColPairs.slice().sort(function (a, b) { return a[0] - b[0]; })
      .map(function (p) { return [p[0], to255(p[1])]; });
  }
  ColorMapVisualizer.prototype.process = function (v) {
    var pick = this.pairs[0];
    for (var i = 1; i < this.pairs.length; i++) {
      if (this.pairs[i][0] <= v) pick = this.pairs[i]; else break;
    }
    var c = pick[1];
    return [c[0] / 255, c[1] / 255, c[2] / 255];
  };
  ColorMapVisualizer.createDefaultColorMap = function () {
    return new ColorMapVisualizer([
      [-1.0, 0x000000], [-0.2, 0xff0000], [-0.1, 0x9a0000], [0.0, 0x660000],
      [0.1, 0xffff33], [0.2, 0xcccc33], [0.3, 0x666600], [0.4, 0x33ffff],
      [0.5, 0x33cccc], [0.6, 0x006666], [0.7, 0x33ff33], [0.8, 0x33cc33],
      [0.9, 0x006600]
    ]);
  };

  /** Ramp points sorted ascending; colours kept as 0..255 channels. Each interpolated
   *  channel is rounded to an integer and divided by 255 (the documented outputs). */
  function ColorRampVisualizer(ramps, minVal, maxVal) {
    var pts = ramps.map(function (p) { return [p[0], to255(p[1])]; })
      .sort(function (a, b) { return a[0] - b[0]; });
    var lo = pts[0][0], hi = pts[pts.length - 1][0];
    if ((minVal !== undefined || maxVal !== undefined) && hi !== lo) {
      var nlo = minVal === undefined ? lo : minVal, nhi = maxVal === undefined ? hi : maxVal;
      pts = pts.map(function (p) { return [nlo + (p[0] - lo) * (nhi - nlo) / (hi - lo), p[1]]; });
    }
    this.ramps = ramps;
    this.points = pts;
  }
  /** Flat per-channel arrays, rebuilt when `points` changes (keeps process() cheap). */
  function rampTables(viz) {
    var pts = viz.points, n = pts.length, t = { src: pts, v: [], r: [], g: [], b: [] };
    for (var i = 0; i < n; i++) {
      t.v.push(pts[i][0]); t.r.push(pts[i][1][0]); t.g.push(pts[i][1][1]); t.b.push(pts[i][1][2]);
    }
    return t;
  }
  ColorRampVisualizer.prototype.process = function (v) {
    var t = this.__tables;
    if (t === undefined || t.src !== this.points) {
      t = rampTables(this);
      Object.defineProperty(this, "__tables", { value: t, writable: true, configurable: true });
    }
    var vals = t.v, n = vals.length, i;
    if (!(v > vals[0])) i = 0;
    else if (v >= vals[n - 1]) i = n - 1;
    else {
      i = 1;
      while (v > vals[i]) i++;
      var f = (v - vals[i - 1]) / (vals[i] - vals[i - 1]);
      return [
        Math.round(t.r[i - 1] + (t.r[i] - t.r[i - 1]) * f) / 255,
        Math.round(t.g[i - 1] + (t.g[i] - t.g[i - 1]) * f) / 255,
        Math.round(t.b[i - 1] + (t.b[i] - t.b[i - 1]) * f) / 255
      ];
    }
    return [Math.round(t.r[i]) / 255, Math.round(t.g[i]) / 255, Math.round(t.b[i]) / 255];
  };
  ColorRampVisualizer.prototype.processList = function (vs) {
    var self = this;
    return vs.map(function (v) { return self.process(v); });
  };
  /** Same breakpoints, colours in reverse order. */
  ColorRampVisualizer.prototype.inverse = function () {
    var pts = this.points, n = pts.length, inv = Object.create(ColorRampVisualizer.prototype);
    inv.ramps = this.ramps;
    inv.points = pts.map(function (p, i) { return [p[0], pts[n - 1 - i][1]]; });
    return inv;
  };
  /** Preset positions p in [0,1] map to value min*p + max*(1-p) (p = 1 is min). */
  function fromPositions(pairs, min, max) {
    return new ColorRampVisualizer(pairs.map(function (p) {
      return [min * p[0] + max * (1 - p[0]), p[1]];
    }));
  }

  var blueRed = [[1.0, 0x000080], [0.875, 0x0000ff], [0.625, 0x00ffff],
    [0.375, 0xffff00], [0.125, 0xff0000], [0.0, 0x800000]];
  var redTemperature = [[1.0, 0x000000], [0.525, 0xae0000], [0.3, 0xff6e00],
    [0.25, 0xff8600], [0.0, 0xffffff]];
  var greenWhite = [[1.0, 0x000000], [0.6, 0x006600], [0.3, 0x80b300], [0.0, 0xffffff]];
  var oceanRgb = [[0.0, [147, 0, 108]], [0.0471, [111, 0, 144]], [0.098, [72, 0, 183]],
    [0.149, [33, 0, 222]], [0.2, [0, 10, 255]], [0.2471, [0, 74, 255]],
    [0.298, [0, 144, 255]], [0.349, [0, 213, 255]], [0.4, [0, 255, 215]],
    [0.4471, [0, 255, 119]], [0.498, [0, 255, 15]], [0.549, [96, 255, 0]],
    [0.6, [200, 255, 0]], [0.6471, [255, 235, 0]], [0.698, [255, 183, 0]],
    [0.749, [255, 131, 0]], [0.8, [255, 79, 0]], [0.8471, [255, 31, 0]],
    [0.898, [230, 0, 0]], [0.949, [165, 0, 0]], [1.0, [105, 0, 0]]];
  var oceanColor = oceanRgb.map(function (p) { return [p[0], normalizeRGB(p[1])]; });

  ColorRampVisualizer.createRedTemperature = function (min, max) { return fromPositions(redTemperature, min, max); };
  ColorRampVisualizer.createWhiteGreen = function (min, max) { return fromPositions(greenWhite, min, max); };
  ColorRampVisualizer.createBlueRed = function (min, max) { return fromPositions(blueRed, min, max); };
  /** Ocean colour positions run from min (p = 0) to max (p = 1) [unverified]. */
  ColorRampVisualizer.createOceanColor = function (min, max) {
    return new ColorRampVisualizer(oceanColor.map(function (p) {
      return [min + (max - min) * p[0], p[1]];
    }));
  };

  function stretch(v, min, max, gain, offset) {
    return gain * (v - min) / (max - min) + offset;
  }
  function HighlightCompressVisualizer(minValue, maxValue, gain, offset, gamma) {
    this.minValue = minValue === undefined ? 0 : minValue;
    this.maxValue = maxValue === undefined ? 1 : maxValue;
    this.gain = gain === undefined ? 1 : gain;
    this.offset = offset === undefined ? 0 : offset;
    this.gamma = gamma === undefined ? 1 : gamma;
  }
  function highlight(self, v) {
    var min = self.minValue, max = self.maxValue;
    var x = self.gain * (v - min) / (max - min) + self.offset;
    if (self.gamma !== 1) x = Math.pow(Math.max(0, x), self.gamma);
    if (max > 0 && max < 1 && x > 0.92) x = 0.92 + (x - 0.92) * (0.08 / 1.08);
    return x < 0 ? 0 : (x > 1 ? 1 : x);
  }
  HighlightCompressVisualizer.prototype.process = function (v) { return highlight(this, v); };
  HighlightCompressVisualizer.prototype.processList = function (vs) {
    var n = vs.length, out = new Array(n), direct = this.process === HighlightCompressVisualizer.prototype.process;
    for (var i = 0; i < n; i++) out[i] = direct ? highlight(this, vs[i]) : this.process(vs[i], i);
    return out;
  };
  function HighlightCompressVisualizerSingle(a, b, c, d, e) {
    HighlightCompressVisualizer.call(this, a, b, c, d, e);
  }
  HighlightCompressVisualizerSingle.prototype = Object.create(HighlightCompressVisualizer.prototype);
  HighlightCompressVisualizerSingle.prototype.constructor = HighlightCompressVisualizerSingle;
  HighlightCompressVisualizerSingle.prototype.process = function (v) {
    return [HighlightCompressVisualizer.prototype.process.call(this, v)];
  };
  HighlightCompressVisualizerSingle.prototype.processList = function (vs) {
    var self = this;
    return vs.map(function (v) { return HighlightCompressVisualizer.prototype.process.call(self, v); });
  };

  function DefaultVisualizer(minValue, maxValue, gain, offset, gamma) {
    HighlightCompressVisualizer.call(this, minValue, maxValue, gain, offset, gamma);
  }
  DefaultVisualizer.prototype.process = function (v) {
    var x = stretch(v, this.minValue, this.maxValue, this.gain, this.offset);
    if (this.gamma !== 1) return Math.pow(Math.max(0, x), this.gamma);
    return x < 0 ? 0 : (x > 1 ? 1 : x);
  };
  DefaultVisualizer.prototype.processList = HighlightCompressVisualizer.prototype.processList;

  /** Legacy gradient: positions p in [0,1] with p = 1 at minVal, hex colours blended with
   *  the rounding `combine`, returned normalized. */
  function ColorGradientVisualizer(valColPairs, minVal, maxVal) {
    this.minVal = minVal === undefined ? 0 : minVal;
    this.maxVal = maxVal === undefined ? 1 : maxVal;
    var lo = this.minVal, hi = this.maxVal;
    this.pairs = valColPairs.map(function (p) { return [lo * p[0] + hi * (1 - p[0]), p[1]]; })
      .sort(function (a, b) { return a[0] - b[0]; });
  }
  ColorGradientVisualizer.prototype.process = function (v) {
    var p = this.pairs, n = p.length, c;
    if (v <= p[0][0]) c = p[0][1];
    else if (v >= p[n - 1][0]) c = p[n - 1][1];
    else {
      var i = 1;
      while (v > p[i][0]) i++;
      c = combine(p[i][1], p[i - 1][1], (v - p[i - 1][0]) / (p[i][0] - p[i - 1][0]));
    }
    return normalizeRGB(int2rgb(c));
  };
  ColorGradientVisualizer.createBlueRed = function (min, max) { return new ColorGradientVisualizer(blueRed, min, max); };
  ColorGradientVisualizer.createRedTemperature = function (min, max) { return new ColorGradientVisualizer(redTemperature, min, max); };
  ColorGradientVisualizer.createWhiteGreen = function (min, max) { return new ColorGradientVisualizer(greenWhite, min, max); };

  function Identity() {}
  Identity.prototype.process = function (v) { return Array.isArray(v) ? v : [v]; };

  // ---- QA decoders ----
  function bits(v, shift, count) { return Math.floor(v / Math.pow(2, shift)) % Math.pow(2, count); }
  function decodeL8C2Qa(v) {
    return {
      fill: bits(v, 0, 1), dilatedCloud: bits(v, 1, 1), cirrus: bits(v, 2, 1),
      cloud: bits(v, 3, 1), cloudShadow: bits(v, 4, 1), snow: bits(v, 5, 1),
      clear: bits(v, 6, 1), water: bits(v, 7, 1), cloudConfidence: bits(v, 8, 2),
      cloudShadowConfidence: bits(v, 10, 2), snowIceConfidence: bits(v, 12, 2),
      cirrusConfidence: bits(v, 14, 2)
    };
  }
  function decodeLs8Qa(v) {
    return {
      designatedFill: bits(v, 0, 1), terrainOcclusion: bits(v, 1, 1),
      radiometricSaturation: bits(v, 2, 2), cloud: bits(v, 4, 1),
      cloudConfidence: bits(v, 5, 2), cloudShadowConfidence: bits(v, 7, 2),
      snowIceConfidence: bits(v, 9, 2), cirrusConfidence: bits(v, 11, 2)
    };
  }
  /** OLCI L1 quality flag layout (bit positions assumed from the OLCI product spec). */
  function decodeS3OLCIQualityFlags(v) {
    var names = ["land", "coastline", "fresh_inland_water", "tidal_region", "bright",
      "straylight_risk", "invalid", "cosmetic", "duplicated", "sun_glint_risk", "dubious"];
    var shifts = [31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21];
    var out = {};
    for (var i = 0; i < names.length; i++) out[names[i]] = bits(v, shifts[i], 1);
    for (var b = 1; b <= 21; b++) out["saturatedB" + (b < 10 ? "0" + b : b)] = bits(v, 21 - b, 1);
    return out;
  }

  // ---- V1/V2 function-style setup API ----
  var legacy = { inputs: null, outputs: null };
  def("__tessera_legacy", legacy);
  def("setInputComponents", function (components) { legacy.inputs = Array.prototype.slice.call(components); });
  def("setOutputComponentCount", function (n) { legacy.outputs = n; });

  var helpers = {
    JAVA_DOUBLE_MAX_VAL: JAVA_DOUBLE_MAX_VAL, blueRed: blueRed, redTemperature: redTemperature,
    greenWhite: greenWhite, oceanColor: oceanColor, int2rgb: int2rgb, rgb2int: rgb2int,
    hex2rgb: int2rgb, rgb2hex: rgb2int, normalizeRGB: normalizeRGB, index: index,
    inverse: inverse, combine: combine, valueMap: valueMap, colorBlend: colorBlend,
    valueInterpolate: colorBlend, colorMap: colorMap, ColorMapVisualizer: ColorMapVisualizer,
    ColorRampVisualizer: ColorRampVisualizer,
    HighlightCompressVisualizer: HighlightCompressVisualizer,
    HighlightCompressVisualizerSingle: HighlightCompressVisualizerSingle,
    DefaultVisualizer: DefaultVisualizer, ColorGradientVisualizer: ColorGradientVisualizer,
    Identity: Identity, decodeL8C2Qa: decodeL8C2Qa, decodeLs8Qa: decodeLs8Qa,
    decodeS3OLCIQualityFlags: decodeS3OLCIQualityFlags
  };
  Object.keys(helpers).forEach(function (k) { def(k, helpers[k]); });


  // ---- internal entry points called by the Rust runtime (names start with __tessera) ----
  /** `dss` for V1/V2 `setup(dss)`: `dss.B04` is the band name "B04". */
  def("__tessera_dss", new Proxy({}, {
    get: function (t, k) { return typeof k === "string" ? k : undefined; }
  }));
  function hide(o, i) {
    Object.defineProperty(o, "__idx", { value: i, enumerable: false, configurable: true });
  }
  function keptIndices(list, what) {
    if (!Array.isArray(list)) throw new TypeError(what + " must return an array of scenes");
    return list.map(function (s) {
      if (s === null || typeof s !== "object" || typeof s.__idx !== "number") {
        throw new TypeError(what + " must return scenes it was given, not new objects");
      }
      return s.__idx;
    });
  }
  /**
   * Builds the scene structures of one ORBIT/TILE evaluation and runs the scene hooks.
   * `metas`: JSON array of {date (ms), dateTo?, shId, tileId, orbitId, cloudCoverage,
   * dataPath}. Returns {keep: [input indices], scenes: the legacy array (Date `date`)
   * carrying `.orbits`/`.tiles`, bands: output band counts after updateOutput}.
   */
  def("__tessera_prepare", function (metasJson, mosaicking, range, hooks, inputMetadata, outputs) {
    var metas = JSON.parse(metasJson), orbit = mosaicking === "ORBIT";
    var entries = metas.map(function (m, i) {
      var tile = { date: new RealDate(m.date).toISOString(), shId: m.shId,
        cloudCoverage: m.cloudCoverage, dataPath: m.dataPath, tileId: m.tileId };
      var e = tile;
      if (orbit) {
        var from = m.dateFrom === null ? Math.floor(m.date / 864e5) * 864e5 : m.dateFrom;
        var to = m.dateTo === null ? from + 864e5 : m.dateTo;
        e = { dateFrom: new RealDate(from).toISOString(), dateTo: new RealDate(to).toISOString(),
          tiles: [tile] };
      }
      hide(e, i);
      return e;
    });
    var keep = entries.map(function (e, i) { return i; });
    var from = new RealDate(range[0]), to = new RealDate(range[1]);
    inputMetadata.from = from;
    inputMetadata.to = to;
    if (typeof hooks.preProcessScenes === "function") {
      var sc = {};
      sc[orbit ? "orbits" : "tiles"] = entries.map(function (e) {
        if (!orbit) return e;
        var c = { dateFrom: e.dateFrom, dateTo: e.dateTo }; hide(c, e.__idx); return c;
      });
      var res = hooks.preProcessScenes({ from: from, to: to, scenes: sc });
      var list = res && res.scenes ? res.scenes[orbit ? "orbits" : "tiles"] : undefined;
      keep = keptIndices(list, "preProcessScenes");
    }
    function legacy(ids) {
      return ids.map(function (i) {
        var m = metas[i], s = { date: new RealDate(m.date), tileId: m.tileId,
          orbitId: m.orbitId, cloudCoverage: m.cloudCoverage, dataPath: m.dataPath, shId: m.shId };
        hide(s, i);
        return s;
      });
    }
    if (typeof hooks.filterScenes === "function") {
      keep = keptIndices(hooks.filterScenes(legacy(keep), inputMetadata), "filterScenes");
    }
    var scenes = legacy(keep);
    var kept = keep.map(function (i) { return entries[i]; });
    scenes[orbit ? "orbits" : "tiles"] = kept;
    if (typeof hooks.updateOutput === "function") {
      var outs = {};
      Object.keys(outputs).forEach(function (k) { outs[k] = { bands: outputs[k] }; });
      hooks.updateOutput(outs, { scenes: scenes.map(function (s) { return { date: s.date }; }) });
      Object.keys(outputs).forEach(function (k) { outputs[k] = outs[k] ? outs[k].bands : outputs[k]; });
    }
    return { keep: keep, scenes: scenes, bands: outputs };
  });
  /** A comparable snapshot of script-defined global state (to detect writes per pixel). */
  def("__tessera_snapshot", function (names) {
    var geval = eval, parts = [];
    for (var i = 0; i < names.length; i++) {
      var v;
      try { v = geval(names[i]); } catch (e) { v = "<unreadable>"; }
      var text;
      try {
        text = typeof v === "function" ? "fn" : (v === undefined ? "undefined" : JSON.stringify(v));
      } catch (e) { text = "<cyclic>"; }
      if (typeof v === "number" && v !== v) text = "NaN";
      parts.push(names[i] + "=" + text);
    }
    return parts.join("\n");
  });
  def("__tessera_builtin_globals", Object.getOwnPropertyNames(G));

  // ---- sandbox: no clock ----
  // `Date.now()` and `new Date()` without arguments would read the host clock; both are
  // pinned to the epoch so that output never depends on when a tile ran.
  var RealDate = Date;
  function SandboxDate(a, b, c, d, e, f, g) {
    var n = arguments.length;
    if (!(this instanceof SandboxDate)) return new RealDate(0).toString();
    if (n === 0) return new RealDate(0);
    if (n === 1) return new RealDate(a);
    return new RealDate(a, b, n > 2 ? c : 1, n > 3 ? d : 0, n > 4 ? e : 0, n > 5 ? f : 0, n > 6 ? g : 0);
  }
  SandboxDate.prototype = RealDate.prototype;
  SandboxDate.UTC = RealDate.UTC;
  SandboxDate.parse = RealDate.parse;
  SandboxDate.now = function () { return 0; };
  Object.defineProperty(RealDate.prototype, "constructor", { value: SandboxDate, writable: true, configurable: true });
  def("Date", SandboxDate);
})(globalThis);
