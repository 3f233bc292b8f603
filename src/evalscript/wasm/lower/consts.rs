//! Compile-time values: constant tables and visualizers (`CVal`), the escape analysis
//! that decides when folding them is sound, and the visualizer constructors evaluated
//! at compile time exactly as prelude.js does at run time.

use super::*;

/// A compile-time value: a Number, a string, a (nested) array of them, an object of
/// fixed shape, or a visualizer.
#[derive(Debug, Clone)]
pub(super) enum CVal {
    Num(f64),
    Str(String),
    Arr(Vec<CVal>),
    /// An object literal with constant values, keys in source order (a later duplicate
    /// key replaces the earlier value, as in JS).
    Obj(Vec<(String, CVal)>),
    Viz(Viz),
}

impl CVal {
    /// True for an array of Numbers or an object of Numbers and strings: reading an
    /// element gives a primitive, so element reads cannot alias the table.
    pub(super) fn is_flat(&self) -> bool {
        match self {
            CVal::Arr(items) => items.iter().all(|c| matches!(c, CVal::Num(_))),
            CVal::Obj(fields) => fields
                .iter()
                .all(|(_, c)| matches!(c, CVal::Num(_) | CVal::Str(_))),
            _ => false,
        }
    }

    pub(super) fn nums(&self) -> Option<Vec<f64>> {
        match self {
            CVal::Arr(items) => items
                .iter()
                .map(|c| match c {
                    CVal::Num(v) => Some(*v),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

/// A helper-library visualizer constructed at top level with constant arguments.
#[derive(Debug, Clone)]
pub(super) enum Viz {
    /// HighlightCompressVisualizer (`compress`), its `Single` variant, or DefaultVisualizer.
    Stretch {
        min: f64,
        max: f64,
        gain: f64,
        offset: f64,
        gamma: f64,
        kind: StretchKind,
    },
    /// ColorRampVisualizer: breakpoints and 0..255 channels.
    Ramp { vals: Vec<f64>, rgb: Vec<[f64; 3]> },
    /// ColorMapVisualizer: sorted breakpoints and 0..255 channels.
    Map { vals: Vec<f64>, rgb: Vec<[f64; 3]> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StretchKind {
    Highlight,
    HighlightSingle,
    Default,
}

/// Helper names that are intrinsics (when the script does not redefine them).
pub(super) const INTRINSIC_FNS: [&str; 6] = [
    "index",
    "colorBlend",
    "valueInterpolate",
    "valueMap",
    "colorMap",
    "combine",
];
pub(super) const VIZ_CLASSES: [&str; 5] = [
    "HighlightCompressVisualizer",
    "HighlightCompressVisualizerSingle",
    "DefaultVisualizer",
    "ColorRampVisualizer",
    "ColorMapVisualizer",
];
/// Methods whose call does not let a receiver escape or change.
pub(super) const SAFE_METHODS: [&str; 6] = [
    "process",
    "processList",
    "createDefaultColorMap",
    "createRedTemperature",
    "createWhiteGreen",
    "createBlueRed",
];

/// Which names are used in ways that could alias or mutate what they hold, anywhere in
/// the script (setup and hooks included, which boa runs and the compiler never sees).
/// A table or visualizer is only folded at compile time when its name appears solely as
/// a whole argument of an intrinsic or `new`, as a `process`/`processList` receiver, or
/// (flat Number arrays only) in element reads.
#[derive(Default)]
pub(super) struct Escapes {
    /// Used as a plain value, mutated, or receiver of another method.
    pub(super) escaped: HashSet<Sym>,
    /// Roots of property reads (`x[0]`, `x.points`).
    pub(super) read: HashSet<Sym>,
    /// Names of the helpers, visualizer classes, safe methods and `Math`/`Number`.
    pub(super) interner_names: HashMap<Sym, String>,
    /// Functions the script declares (they shadow helpers of the same name).
    pub(super) user_fns: HashSet<Sym>,
    /// `this`, `globalThis` or `eval` appear: globals may change behind any name.
    pub(super) dynamic: bool,
}

impl Escapes {
    pub(super) fn new(interner: &Interner, user_fns: HashSet<Sym>) -> Self {
        let mut interner_names = HashMap::new();
        for name in INTRINSIC_FNS
            .iter()
            .chain(&VIZ_CLASSES)
            .chain(&SAFE_METHODS)
            .chain(&["Math", "Number", "globalThis", "eval", "Function"])
        {
            if let Some(sym) = interner.get(*name) {
                interner_names.insert(sym, name.to_string());
            }
        }
        Escapes {
            interner_names,
            user_fns,
            ..Escapes::default()
        }
    }

    pub(super) fn whole_only(&self, sym: Sym, value: &CVal) -> bool {
        // A string is immutable: using it as a value cannot change it.
        !self.dynamic
            && (matches!(value, CVal::Str(_))
                || (!self.escaped.contains(&sym) && (value.is_flat() || !self.read.contains(&sym))))
    }

    pub(super) fn named(&self, sym: Sym, list: &[&str]) -> bool {
        self.interner_names
            .get(&sym)
            .is_some_and(|n| list.contains(&n.as_str()))
    }

    pub(super) fn finish(&mut self) {
        let dynamic = self
            .escaped
            .iter()
            .any(|s| self.named(*s, &["globalThis", "eval", "Function"]));
        self.dynamic |= dynamic;
    }
}

pub(super) fn root_ident(e: &Expression) -> Option<Sym> {
    match strip_parens(e) {
        Expression::Identifier(id) => Some(id.sym()),
        Expression::PropertyAccess(PropertyAccess::Simple(s)) => root_ident(s.target()),
        _ => None,
    }
}

impl<'ast> Visitor<'ast> for Escapes {
    type BreakTy = ();

    fn visit_expression(&mut self, node: &'ast Expression) -> ControlFlow<()> {
        match node {
            Expression::Identifier(id) => {
                self.escaped.insert(id.sym());
                ControlFlow::Continue(())
            }
            Expression::PropertyAccess(PropertyAccess::Simple(s)) => {
                if let Some(root) = root_ident(s.target()) {
                    self.read.insert(root);
                    let mut t = strip_parens(s.target());
                    // Visit computed keys along the chain, not the root itself.
                    if let PropertyAccessField::Expr(k) = s.field() {
                        self.visit_expression(k)?;
                    }
                    while let Expression::PropertyAccess(PropertyAccess::Simple(inner)) = t {
                        if let PropertyAccessField::Expr(k) = inner.field() {
                            self.visit_expression(k)?;
                        }
                        t = strip_parens(inner.target());
                    }
                    ControlFlow::Continue(())
                } else {
                    node.visit_with(self)
                }
            }
            Expression::Call(call) => {
                let callee = strip_parens(call.function());
                let mut args_safe = false;
                match callee {
                    Expression::Identifier(f) => {
                        // A helper function called directly only reads its arguments.
                        args_safe = self.named(f.sym(), &INTRINSIC_FNS)
                            && !self.user_fns.contains(&f.sym());
                    }
                    Expression::PropertyAccess(PropertyAccess::Simple(s)) => {
                        let method = match s.field() {
                            PropertyAccessField::Const(m) => Some(m.sym()),
                            PropertyAccessField::Expr(_) => None,
                        };
                        let safe = method.is_some_and(|m| self.is_safe_method(m));
                        match (strip_parens(s.target()), safe) {
                            (Expression::Identifier(_), true) => {}
                            (Expression::Identifier(id), false) => {
                                if !self.is_math(id.sym()) {
                                    self.escaped.insert(id.sym());
                                }
                            }
                            _ => {
                                if let Some(root) = root_ident(s.target()) {
                                    self.escaped.insert(root);
                                }
                                self.visit_expression(s.target())?;
                            }
                        }
                        if let PropertyAccessField::Expr(k) = s.field() {
                            self.visit_expression(k)?;
                        }
                    }
                    other => self.visit_expression(other)?,
                }
                for a in call.args() {
                    match (args_safe, strip_parens(a)) {
                        (true, Expression::Identifier(_)) => {}
                        _ => self.visit_expression(a)?,
                    }
                }
                ControlFlow::Continue(())
            }
            Expression::New(new) => {
                // The visualizer constructors copy their tables (never keep a reference
                // that `process` reads).
                let safe = match strip_parens(new.constructor()) {
                    Expression::Identifier(c) => {
                        self.named(c.sym(), &VIZ_CLASSES) && !self.user_fns.contains(&c.sym())
                    }
                    other => {
                        self.visit_expression(other)?;
                        false
                    }
                };
                for a in new.arguments() {
                    if !safe || !matches!(strip_parens(a), Expression::Identifier(_)) {
                        self.visit_expression(a)?;
                    }
                }
                ControlFlow::Continue(())
            }
            Expression::Unary(u) if u.op() == UnaryOp::Delete => {
                if let Some(root) = root_ident(u.target()) {
                    self.escaped.insert(root);
                }
                node.visit_with(self)
            }
            Expression::Assign(a) => {
                if let AssignTarget::Access(PropertyAccess::Simple(s)) = a.lhs() {
                    if let Some(root) = root_ident(s.target()) {
                        self.escaped.insert(root);
                    }
                }
                node.visit_with(self)
            }
            Expression::Update(u) => {
                if let UpdateTarget::PropertyAccess(PropertyAccess::Simple(s)) = u.target() {
                    if let Some(root) = root_ident(s.target()) {
                        self.escaped.insert(root);
                    }
                }
                node.visit_with(self)
            }
            Expression::This(_) => {
                self.dynamic = true;
                ControlFlow::Continue(())
            }
            Expression::Spread(spread) => match strip_parens(spread.target()) {
                // Spreading copies the elements: only a read.
                Expression::Identifier(id) => {
                    self.read.insert(id.sym());
                    ControlFlow::Continue(())
                }
                _ => node.visit_with(self),
            },
            _ => node.visit_with(self),
        }
    }

    fn visit_property_definition(&mut self, node: &'ast PropertyDefinition) -> ControlFlow<()> {
        if let PropertyDefinition::IdentifierReference(id) = node {
            self.escaped.insert(id.sym());
        }
        node.visit_with(self)
    }
}

impl Escapes {
    pub(super) fn is_safe_method(&self, m: Sym) -> bool {
        self.named(m, &SAFE_METHODS)
    }

    pub(super) fn is_math(&self, s: Sym) -> bool {
        self.named(s, &["Math", "Number"])
    }
}

/// JS ToInt32.
pub(super) fn to_int32(x: f64) -> i32 {
    if !x.is_finite() {
        return 0;
    }
    let m = x.trunc().rem_euclid(4_294_967_296.0);
    (if m >= 2_147_483_648.0 {
        m - 4_294_967_296.0
    } else {
        m
    }) as i32
}

/// prelude `to255`: a hex int as its channels, or a normalized `[r, g, b]` times 255.
pub(super) fn to255(color: &CVal) -> Option<[f64; 3]> {
    match color {
        CVal::Num(c) => {
            let c = to_int32(*c);
            Some([
                f64::from((c >> 16) & 0xff),
                f64::from((c >> 8) & 0xff),
                f64::from(c & 0xff),
            ])
        }
        CVal::Arr(_) => {
            let n = color.nums()?;
            if n.len() < 3 {
                return None;
            }
            Some([n[0] * 255.0, n[1] * 255.0, n[2] * 255.0])
        }
        CVal::Viz(_) | CVal::Str(_) | CVal::Obj(_) => None,
    }
}

/// `[position, colour]` pairs with Number positions (never NaN: JS sort would then
/// depend on the algorithm).
pub(super) fn pairs(c: &CVal) -> Option<Vec<(f64, CVal)>> {
    let CVal::Arr(items) = c else { return None };
    items
        .iter()
        .map(|p| match p {
            CVal::Arr(pc) if pc.len() >= 2 => match &pc[0] {
                CVal::Num(v) if !v.is_nan() => Some((*v, pc[1].clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Stable ascending sort by position, as `sort((a, b) => a[0] - b[0])`.
pub(super) fn sort_pairs<T>(p: &mut [(f64, T)]) {
    p.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
}

/// `new ColorRampVisualizer(ramps, minVal, maxVal)`.
pub(super) fn color_ramp(ramps: &CVal, min: Option<f64>, max: Option<f64>) -> Option<Viz> {
    let mut pts: Vec<(f64, [f64; 3])> = pairs(ramps)?
        .into_iter()
        .map(|(v, c)| to255(&c).map(|rgb| (v, rgb)))
        .collect::<Option<_>>()?;
    if pts.is_empty() {
        return None;
    }
    sort_pairs(&mut pts);
    let (lo, hi) = (pts[0].0, pts[pts.len() - 1].0);
    if (min.is_some() || max.is_some()) && hi != lo {
        let (nlo, nhi) = (min.unwrap_or(lo), max.unwrap_or(hi));
        for p in &mut pts {
            p.0 = nlo + (p.0 - lo) * (nhi - nlo) / (hi - lo);
        }
    }
    Some(Viz::Ramp {
        vals: pts.iter().map(|p| p.0).collect(),
        rgb: pts.iter().map(|p| p.1).collect(),
    })
}

/// `new ColorMapVisualizer(pairs)`.
pub(super) fn color_map(p: &CVal) -> Option<Viz> {
    let mut pts = pairs(p)?;
    if pts.is_empty() {
        return None;
    }
    sort_pairs(&mut pts);
    let rgb = pts.iter().map(|(_, c)| to255(c)).collect::<Option<_>>()?;
    Some(Viz::Map {
        vals: pts.iter().map(|p| p.0).collect(),
        rgb,
    })
}

pub(super) fn hex_pairs(table: &[(f64, i32)]) -> CVal {
    CVal::Arr(
        table
            .iter()
            .map(|(p, c)| CVal::Arr(vec![CVal::Num(*p), CVal::Num(f64::from(*c))]))
            .collect(),
    )
}

pub(super) const DEFAULT_COLOR_MAP: [(f64, i32); 13] = [
    (-1.0, 0x000000),
    (-0.2, 0xff0000),
    (-0.1, 0x9a0000),
    (0.0, 0x660000),
    (0.1, 0xffff33),
    (0.2, 0xcccc33),
    (0.3, 0x666600),
    (0.4, 0x33ffff),
    (0.5, 0x33cccc),
    (0.6, 0x006666),
    (0.7, 0x33ff33),
    (0.8, 0x33cc33),
    (0.9, 0x006600),
];
pub(super) const BLUE_RED: [(f64, i32); 6] = [
    (1.0, 0x000080),
    (0.875, 0x0000ff),
    (0.625, 0x00ffff),
    (0.375, 0xffff00),
    (0.125, 0xff0000),
    (0.0, 0x800000),
];
pub(super) const RED_TEMPERATURE: [(f64, i32); 5] = [
    (1.0, 0x000000),
    (0.525, 0xae0000),
    (0.3, 0xff6e00),
    (0.25, 0xff8600),
    (0.0, 0xffffff),
];
pub(super) const GREEN_WHITE: [(f64, i32); 4] = [
    (1.0, 0x000000),
    (0.6, 0x006600),
    (0.3, 0x80b300),
    (0.0, 0xffffff),
];

/// A colour-table entry: a Number (scalar result) or an array of Numbers.
pub(super) fn entry(c: &CVal) -> Option<(bool, Vec<f64>)> {
    match c {
        CVal::Num(v) => Some((false, vec![*v])),
        CVal::Arr(_) => c.nums().map(|n| (true, n)),
        CVal::Viz(_) | CVal::Str(_) | CVal::Obj(_) => None,
    }
}

/// Entries of one shape (all Numbers, or all arrays of one length).
pub(super) fn entries(c: &CVal, min_array_len: usize) -> Option<(bool, Vec<Vec<f64>>)> {
    let CVal::Arr(items) = c else { return None };
    let mut shape = None;
    let mut out = Vec::new();
    for item in items {
        let (is_array, values) = entry(item)?;
        if is_array && values.len() < min_array_len {
            return None;
        }
        match shape {
            None => shape = Some((is_array, values.len())),
            Some(s) if s != (is_array, values.len()) => return None,
            _ => {}
        }
        out.push(values);
    }
    shape.map(|(is_array, _)| (is_array, out))
}

impl<'a> Lowerer<'a> {
    /// A compile-time value, if `e` is one (no side effects).
    pub(super) fn const_eval(&self, e: &Expression) -> Option<CVal> {
        match strip_parens(e) {
            Expression::Literal(lit) => match lit.kind() {
                LiteralKind::String(sym) => Some(CVal::Str(self.name(*sym))),
                kind => literal_number(kind).map(CVal::Num),
            },
            Expression::PropertyAccess(PropertyAccess::Simple(s)) => self.const_access(s),
            Expression::ObjectLiteral(object) => {
                let mut fields: Vec<(String, CVal)> = Vec::new();
                for property in object.properties() {
                    let PropertyDefinition::Property(name, value) = property else {
                        return None;
                    };
                    let key = match name {
                        PropertyName::Literal(id) => self.name(id.sym()),
                        PropertyName::Computed(e) => match self.const_eval(e)? {
                            CVal::Str(s) => s,
                            _ => return None,
                        },
                    };
                    let value = self.const_eval(value)?;
                    match fields.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => fields.push((key, value)),
                    }
                }
                Some(CVal::Obj(fields))
            }
            Expression::Unary(u) => match (u.op(), self.const_eval(u.target())?) {
                (UnaryOp::Minus, CVal::Num(v)) => Some(CVal::Num(-v)),
                (UnaryOp::Plus, CVal::Num(v)) => Some(CVal::Num(v)),
                _ => None,
            },
            Expression::ArrayLiteral(array) => array
                .as_ref()
                .iter()
                .map(|el| match el {
                    Some(Expression::Spread(_)) | None => None,
                    Some(e) => self.const_eval(e),
                })
                .collect::<Option<Vec<_>>>()
                .map(CVal::Arr),
            Expression::Identifier(id) => match self.lookup(id.sym()) {
                Some(Bind::Const(c)) => Some(c.clone()),
                Some(Bind::Local { local, .. }) => {
                    self.global_nums.get(local).map(|v| CVal::Num(*v))
                }
                Some(_) => None,
                None => match self.name(id.sym()).as_str() {
                    "NaN" => Some(CVal::Num(f64::NAN)),
                    "Infinity" => Some(CVal::Num(f64::INFINITY)),
                    _ => None,
                },
            },
            Expression::New(new) => {
                let Expression::Identifier(class) = strip_parens(new.constructor()) else {
                    return None;
                };
                if !self.helper_ok(class.sym()) {
                    return None;
                }
                let args: Vec<CVal> = new
                    .arguments()
                    .iter()
                    .map(|a| self.const_eval(a))
                    .collect::<Option<_>>()?;
                let num = |k: usize| -> Option<Option<f64>> {
                    match args.get(k) {
                        None => Some(None),
                        Some(CVal::Num(v)) => Some(Some(*v)),
                        Some(_) => None,
                    }
                };
                let class = self.name(class.sym());
                let kind = match class.as_str() {
                    "HighlightCompressVisualizer" => Some(StretchKind::Highlight),
                    "HighlightCompressVisualizerSingle" => Some(StretchKind::HighlightSingle),
                    "DefaultVisualizer" => Some(StretchKind::Default),
                    _ => None,
                };
                if let Some(kind) = kind {
                    return Some(CVal::Viz(Viz::Stretch {
                        min: num(0)?.unwrap_or(0.0),
                        max: num(1)?.unwrap_or(1.0),
                        gain: num(2)?.unwrap_or(1.0),
                        offset: num(3)?.unwrap_or(0.0),
                        gamma: num(4)?.unwrap_or(1.0),
                        kind,
                    }));
                }
                match class.as_str() {
                    "ColorRampVisualizer" => {
                        color_ramp(args.first()?, num(1)?, num(2)?).map(CVal::Viz)
                    }
                    "ColorMapVisualizer" => color_map(args.first()?).map(CVal::Viz),
                    _ => None,
                }
            }
            Expression::Call(call) => {
                let Expression::PropertyAccess(PropertyAccess::Simple(s)) =
                    strip_parens(call.function())
                else {
                    return None;
                };
                let (Expression::Identifier(class), PropertyAccessField::Const(method)) =
                    (strip_parens(s.target()), s.field())
                else {
                    return None;
                };
                if !self.helper_ok(class.sym()) {
                    return None;
                }
                let (class, method) = (self.name(class.sym()), self.name(method.sym()));
                let args: Vec<f64> = call
                    .args()
                    .iter()
                    .map(|a| match self.const_eval(a)? {
                        CVal::Num(v) => Some(v),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                match (class.as_str(), method.as_str(), args.as_slice()) {
                    ("ColorMapVisualizer", "createDefaultColorMap", []) => {
                        color_map(&hex_pairs(&DEFAULT_COLOR_MAP)).map(CVal::Viz)
                    }
                    ("ColorRampVisualizer", m, [min, max]) => {
                        let table: &[(f64, i32)] = match m {
                            "createRedTemperature" => &RED_TEMPERATURE,
                            "createWhiteGreen" => &GREEN_WHITE,
                            "createBlueRed" => &BLUE_RED,
                            _ => return None,
                        };
                        // fromPositions: p = 1 is min.
                        let moved: Vec<(f64, i32)> = table
                            .iter()
                            .map(|(p, c)| (min * p + max * (1.0 - p), *c))
                            .collect();
                        color_ramp(&hex_pairs(&moved), None, None).map(CVal::Viz)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `table[k]`, `table.key`, `table.length` on a compile-time table with a constant
    /// key (nested reads included), if `s` is one.
    pub(super) fn const_access(
        &self,
        s: &boa_engine::ast::expression::access::SimplePropertyAccess,
    ) -> Option<CVal> {
        let target = self.const_eval(s.target())?;
        let key = match s.field() {
            PropertyAccessField::Const(id) => self.name(id.sym()),
            PropertyAccessField::Expr(e) => match self.const_eval(e)? {
                CVal::Str(k) => k,
                CVal::Num(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
                _ => return None,
            },
        };
        match target {
            CVal::Arr(items) => {
                if key == "length" {
                    return Some(CVal::Num(items.len() as f64));
                }
                let k: usize = key.parse().ok()?;
                (k.to_string() == key).then(|| items.get(k).cloned())?
            }
            CVal::Obj(fields) => fields.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            CVal::Str(s) if key == "length" => Some(CVal::Num(s.encode_utf16().count() as f64)),
            _ => None,
        }
    }

    /// True when the prelude helper `sym` is what the script sees under that name.
    pub(super) fn helper_ok(&self, sym: Sym) -> bool {
        self.lookup(sym).is_none()
            && !self.functions.contains_key(&sym)
            && !self.assigned.contains(&sym)
            && !self.escapes.escaped.contains(&sym)
            && !self.escapes.read.contains(&sym)
    }
}
