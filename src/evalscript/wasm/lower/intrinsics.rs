//! The prelude helpers and fixed-size arrays as intrinsics.
//!
//! Each intrinsic expands to IR that performs exactly the floating-point operations of
//! src/evalscript/prelude.js in the same order (constant subexpressions such as
//! `limits[i] - limits[i - 1]` are folded here with the same f64 operation), so results
//! are bit-identical to the boa tier.

use super::*;

/// A lowered value: one Number/Boolean, or a fixed-size array whose element expressions
/// must be evaluated once each, in order (the first may carry the side effects of all).
pub(super) enum Val {
    Scalar(Expr),
    Array(Vec<Expr>),
}

impl<'a> Lowerer<'a> {
    /// Lowers `e` as a value that may be a fixed-size array.
    pub(super) fn value(&mut self, e: &'a Expression) -> Result<Val, WasmError> {
        self.count()?;
        match strip_parens(e) {
            Expression::ArrayLiteral(array) => {
                let mut out = Vec::new();
                for element in array.as_ref() {
                    match element {
                        None => return Err(unsupported("hole in an array literal")),
                        Some(Expression::Spread(spread)) => match self.value(spread.target())? {
                            Val::Array(elements) => out.extend(elements),
                            Val::Scalar(_) => return Err(unsupported("spread of a non-array")),
                        },
                        Some(e) => out.push(self.expr(e)?),
                    }
                }
                Ok(Val::Array(out))
            }
            Expression::Identifier(id) => match self.lookup(id.sym()) {
                Some(Bind::Array(locals)) => {
                    Ok(Val::Array(locals.iter().map(|l| get(*l)).collect()))
                }
                Some(Bind::Const(c)) => match c.nums() {
                    Some(n) => Ok(Val::Array(n.into_iter().map(Expr::Num).collect())),
                    None => Err(unsupported("nested table used as a value")),
                },
                _ => Ok(Val::Scalar(self.expr(e)?)),
            },
            Expression::Call(call) => match self.intrinsic(call.function(), call.args())? {
                Some(v) => Ok(v),
                None => match match self.map_call(call)? {
                    Some(v) => Some(v),
                    None => self.concat_call(call)?,
                } {
                    Some(v) => Ok(v),
                    None => match self.user_call(call.function(), call.args())? {
                        Some(v) => Ok(v),
                        None => Ok(Val::Scalar(self.expr(e)?)),
                    },
                },
            },
            _ => Ok(Val::Scalar(self.expr(e)?)),
        }
    }

    /// `array.map(function (v, i) { ... })` on a fixed-size array: the receiver is
    /// evaluated whole, then the callback is inlined once per element, in order.
    pub(super) fn map_call(
        &mut self,
        call: &'a boa_engine::ast::expression::Call,
    ) -> Result<Option<Val>, WasmError> {
        let Some(s) = self.method_call(call, "map") else {
            return Ok(None);
        };
        if call.args().len() != 1 {
            return Ok(None);
        }
        let (params, body) = match strip_parens(&call.args()[0]) {
            Expression::FunctionExpression(f) => (f.parameters(), f.body()),
            Expression::ArrowFunction(f) => (f.parameters(), f.body()),
            _ => return Ok(None),
        };
        if let Expression::Identifier(id) = strip_parens(s.target()) {
            if !matches!(self.lookup(id.sym()), Some(Bind::Array(_) | Bind::Const(_))) {
                return Ok(None);
            }
        }
        if params.as_ref().len() > 2 {
            return Err(unsupported("map callback that takes the array"));
        }
        let Val::Array(elements) = self.value(s.target())? else {
            return Err(unsupported("map on a value that is not a fixed-size array"));
        };
        let mut pre = Vec::new();
        let locals = self.materialize(elements, &mut pre);
        let mut out = Vec::new();
        for (i, local) in locals.iter().enumerate() {
            let args = vec![Arg::Value(get(*local)), Arg::Value(Expr::Num(i as f64))];
            let closure = self.definition_point();
            let Val::Scalar(e) = self.inline_with(params, body, Vec::new(), args, closure)? else {
                return Err(unsupported("map callback that returns an array"));
            };
            out.push(e);
        }
        let Some(first) = out.first_mut() else {
            return Err(unsupported("map on an empty array"));
        };
        let ty = first.ty();
        let head = std::mem::replace(first, Expr::Num(0.0));
        pre.push(Stmt::FnReturn(head));
        *first = Expr::Inline(pre, ty);
        Ok(Some(Val::Array(out)))
    }

    /// The receiver access of `call` when it calls method `name` (`x.name(...)`).
    fn method_call(
        &self,
        call: &'a boa_engine::ast::expression::Call,
        name: &str,
    ) -> Option<&'a boa_engine::ast::expression::access::SimplePropertyAccess> {
        let Expression::PropertyAccess(PropertyAccess::Simple(s)) = strip_parens(call.function())
        else {
            return None;
        };
        match s.field() {
            PropertyAccessField::Const(method) if self.name(method.sym()) == name => Some(s),
            _ => None,
        }
    }

    /// `array.concat(a, b, ...)` on a fixed-size array: the receiver's elements, then
    /// each argument's (an array's elements, or the value itself), in order.
    pub(super) fn concat_call(
        &mut self,
        call: &'a boa_engine::ast::expression::Call,
    ) -> Result<Option<Val>, WasmError> {
        let Some(s) = self.method_call(call, "concat") else {
            return Ok(None);
        };
        if let Expression::Identifier(id) = strip_parens(s.target()) {
            if !self.is_array(id.sym()) {
                return Ok(None);
            }
        }
        let Val::Array(mut out) = self.value(s.target())? else {
            return Err(unsupported(
                "concat on a value that is not a fixed-size array",
            ));
        };
        for a in call.args() {
            if matches!(a, Expression::Spread(_)) {
                return Err(unsupported("spread argument"));
            }
            match self.value(a)? {
                Val::Array(elements) => out.extend(elements),
                Val::Scalar(e) => out.push(e),
            }
        }
        Ok(Some(Val::Array(out)))
    }

    /// Evaluates array elements in order into fresh locals.
    pub(super) fn materialize(&mut self, elements: Vec<Expr>, out: &mut Vec<Stmt>) -> Vec<u32> {
        elements
            .into_iter()
            .map(|e| {
                let e = to_num(e);
                let local = self.new_local(Ty::Num);
                out.push(Stmt::Expr(Expr::Set(local, Ty::Num, bx(e))));
                local
            })
            .collect()
    }

    /// `x[k]` (literal index) or `x.length` on a fixed-size array or table.
    pub(super) fn element(&mut self, sym: Sym, field: &str) -> Result<Option<Expr>, WasmError> {
        if !self.is_array(sym) {
            if let Some(Bind::Const(CVal::Obj(_))) = self.lookup(sym) {
                return Err(unsupported(format!(
                    "non-numeric field '{field}' of a table"
                )));
            }
            return Ok(None);
        }
        let values = self.array_values(sym)?;
        self.index_into(values, Some(field), None).map(Some)
    }

    /// True when `sym` is a fixed-size array or a constant table of Numbers.
    pub(super) fn is_array(&self, sym: Sym) -> bool {
        match self.lookup(sym) {
            Some(Bind::Array(_)) => true,
            Some(Bind::Const(c)) => c.nums().is_some(),
            _ => false,
        }
    }

    /// The element values of a fixed-size array or a Number table.
    pub(super) fn array_values(&self, sym: Sym) -> Result<Vec<Expr>, WasmError> {
        match self.lookup(sym) {
            Some(Bind::Array(locals)) => Ok(locals.iter().map(|l| get(*l)).collect()),
            Some(Bind::Const(c)) => match c.nums() {
                Some(n) => Ok(n.into_iter().map(Expr::Num).collect()),
                None => Err(unsupported("run-time index into a nested table")),
            },
            Some(Bind::Unusable(reason)) => Err(unsupported(reason.clone())),
            _ => Err(unsupported("computed property access")),
        }
    }

    /// `values[key]`: a literal key (`length`, an index in range), or a run-time index
    /// `k` (evaluated once) giving element `i` when `k == i` (the property key of a
    /// Number is its string form, so -0 reads element 0 and 0.5 nothing) and undefined
    /// (NaN) otherwise; a Boolean index reads nothing.
    pub(super) fn index_into(
        &mut self,
        values: Vec<Expr>,
        field: Option<&str>,
        key: Option<&'a PropertyAccessField>,
    ) -> Result<Expr, WasmError> {
        if let Some(field) = field {
            if field == "length" {
                return Ok(Expr::Num(values.len() as f64));
            }
            return match field.parse::<usize>() {
                Ok(k) if k < values.len() && k.to_string() == field => {
                    Ok(values.into_iter().nth(k).unwrap_or(Expr::Num(f64::NAN)))
                }
                _ => Err(unsupported("array index that is not a literal in range")),
            };
        }
        let Some(PropertyAccessField::Expr(key)) = key else {
            return Err(unsupported("computed property access"));
        };
        let index = self.expr(key)?;
        let mut stmts = Vec::new();
        if index.ty() == Ty::Bool {
            stmts.push(Stmt::Expr(index));
            stmts.push(Stmt::FnReturn(Expr::Num(f64::NAN)));
            return Ok(Expr::Inline(stmts, Ty::Num));
        }
        let k = self.tmp(index, &mut stmts);
        let result =
            values
                .into_iter()
                .enumerate()
                .rev()
                .fold(Expr::Num(f64::NAN), |acc, (i, v)| {
                    Expr::Cond(
                        bx(cmp(Cmp::Eq, get(k), Expr::Num(i as f64))),
                        bx(to_num(v)),
                        bx(acc),
                        Ty::Num,
                    )
                });
        stmts.push(Stmt::FnReturn(result));
        Ok(Expr::Inline(stmts, Ty::Num))
    }
}

impl<'a> Lowerer<'a> {
    /// Runs `stmts`, which set `locals`, and yields their values as the result.
    pub(super) fn pack(&self, mut stmts: Vec<Stmt>, locals: &[u32], array: bool) -> Val {
        let first = locals.first().copied().unwrap_or(0);
        stmts.push(Stmt::FnReturn(get(first)));
        let head = Expr::Inline(stmts, Ty::Num);
        if !array {
            return Val::Scalar(head);
        }
        let mut out = vec![head];
        out.extend(locals.iter().skip(1).map(|l| get(*l)));
        Val::Array(out)
    }

    pub(super) fn sets(locals: &[u32], values: Vec<Expr>) -> Vec<Stmt> {
        locals
            .iter()
            .zip(values)
            .map(|(l, v)| Stmt::Expr(Expr::Set(*l, Ty::Num, bx(v))))
            .collect()
    }

    pub(super) fn consts(values: &[f64]) -> Vec<Expr> {
        values.iter().map(|v| Expr::Num(*v)).collect()
    }

    pub(super) fn tmp(&mut self, e: Expr, out: &mut Vec<Stmt>) -> u32 {
        let local = self.new_local(Ty::Num);
        out.push(Stmt::Expr(Expr::Set(local, Ty::Num, bx(to_num(e)))));
        local
    }

    /// Calls of helper functions and visualizer methods; `None` when `callee` is not one.
    pub(super) fn intrinsic(
        &mut self,
        callee: &'a Expression,
        args: &'a [Expression],
    ) -> Result<Option<Val>, WasmError> {
        match strip_parens(callee) {
            Expression::Identifier(id) => {
                let name = self.name(id.sym());
                if !INTRINSIC_FNS.contains(&name.as_str()) || !self.helper_ok(id.sym()) {
                    return Ok(None);
                }
                if args.iter().any(|a| matches!(a, Expression::Spread(_))) {
                    return Err(unsupported("spread argument"));
                }
                match name.as_str() {
                    "index" => self.index(args).map(Some),
                    "combine" => self.combine(args).map(Some),
                    _ => self.table_lookup(&name, args).map(Some),
                }
            }
            Expression::PropertyAccess(PropertyAccess::Simple(s)) => {
                let (Expression::Identifier(object), PropertyAccessField::Const(method)) =
                    (strip_parens(s.target()), s.field())
                else {
                    return Ok(None);
                };
                let viz = match self.lookup(object.sym()) {
                    Some(Bind::Const(CVal::Viz(viz))) => viz.clone(),
                    Some(Bind::Unusable(reason)) => return Err(unsupported(reason.clone())),
                    _ => return Ok(None),
                };
                let method = self.name(method.sym());
                if args.len() != 1 || matches!(args[0], Expression::Spread(_)) {
                    return Err(unsupported(format!(
                        "{method} with other than one argument"
                    )));
                }
                match method.as_str() {
                    "process" => {
                        let v = self.expr(&args[0])?;
                        Ok(Some(self.process(&viz, v)))
                    }
                    "processList" => {
                        let Viz::Stretch { .. } = viz else {
                            return Err(unsupported("processList of a colour visualizer"));
                        };
                        let Val::Array(elements) = self.value(&args[0])? else {
                            return Err(unsupported("processList of a non-array"));
                        };
                        let mut pre = Vec::new();
                        let locals = self.materialize(elements, &mut pre);
                        let mut out = Vec::new();
                        for l in locals {
                            let Val::Scalar(e) = self.stretch(&viz, get(l), false) else {
                                return Err(unsupported("processList"));
                            };
                            out.push(e);
                        }
                        if let Some(first) = out.first_mut() {
                            let head = std::mem::replace(first, Expr::Num(0.0));
                            pre.push(Stmt::FnReturn(head));
                            *first = Expr::Inline(pre, Ty::Num);
                        } else {
                            return Err(unsupported("processList of an empty array"));
                        }
                        Ok(Some(Val::Array(out)))
                    }
                    other => Err(unsupported(format!("visualizer method {other}"))),
                }
            }
            _ => Ok(None),
        }
    }

    /// prelude `index(x, y)`.
    pub(super) fn index(&mut self, args: &'a [Expression]) -> Result<Val, WasmError> {
        let mut values = self.args(args, 2)?.into_iter();
        let mut stmts = Vec::new();
        let x = self.tmp(values.next().unwrap_or(Expr::Num(f64::NAN)), &mut stmts);
        let y = self.tmp(values.next().unwrap_or(Expr::Num(f64::NAN)), &mut stmts);
        let s = self.tmp(add(get(x), get(y)), &mut stmts);
        stmts.push(Stmt::FnReturn(Expr::Cond(
            bx(cmp(Cmp::Eq, get(s), Expr::Num(0.0))),
            bx(Expr::Num(0.0)),
            bx(div(sub(get(x), get(y)), get(s))),
            Ty::Num,
        )));
        Ok(Val::Scalar(Expr::Inline(stmts, Ty::Num)))
    }

    /// prelude `combine(c1, c2, alpha)` on two arrays of one length.
    pub(super) fn combine(&mut self, args: &'a [Expression]) -> Result<Val, WasmError> {
        if args.len() != 3 {
            return Err(unsupported("combine with other than three arguments"));
        }
        let (Val::Array(a), Val::Array(b)) = (self.value(&args[0])?, self.value(&args[1])?) else {
            return Err(unsupported("combine of hex colours"));
        };
        if a.len() != b.len() || a.is_empty() {
            return Err(unsupported("combine of arrays of different lengths"));
        }
        let alpha = self.expr(&args[2])?;
        let mut stmts = Vec::new();
        let a = self.materialize(a, &mut stmts);
        let b = self.materialize(b, &mut stmts);
        let alpha = self.tmp(alpha, &mut stmts);
        let locals: Vec<u32> = (0..a.len()).map(|_| self.new_local(Ty::Num)).collect();
        let values = a
            .iter()
            .zip(&b)
            .map(|(x, y)| {
                add(
                    mul(get(alpha), get(*x)),
                    mul(sub(Expr::Num(1.0), get(alpha)), get(*y)),
                )
            })
            .collect();
        stmts.extend(Self::sets(&locals, values));
        Ok(self.pack(stmts, &locals, true))
    }

    /// prelude `colorBlend`/`valueInterpolate`, `valueMap` and `colorMap` with constant
    /// tables.
    pub(super) fn table_lookup(
        &mut self,
        name: &str,
        args: &'a [Expression],
    ) -> Result<Val, WasmError> {
        if args.len() != 3 {
            return Err(unsupported(format!(
                "{name} with other than three arguments"
            )));
        }
        let limits = self.const_eval(&args[1]).and_then(|c| c.nums());
        let blend = name == "colorBlend" || name == "valueInterpolate";
        let table = self
            .const_eval(&args[2])
            .and_then(|c| entries(&c, if blend { 2 } else { 1 }));
        let (Some(limits), Some((is_array, colors))) = (limits, table) else {
            for arg in &args[1..] {
                if let Expression::Identifier(id) = strip_parens(arg) {
                    if let Some(Bind::Unusable(reason)) = self.lookup(id.sym()) {
                        return Err(unsupported(reason.clone()));
                    }
                }
            }
            return Err(unsupported(format!(
                "{name} with tables that are not constant"
            )));
        };
        let n = limits.len();
        if n == 0 || colors.len() < n {
            return Err(unsupported(format!(
                "{name} with fewer colours than limits"
            )));
        }
        let value = self.expr(&args[0])?;
        let mut stmts = Vec::new();
        let v = self.tmp(value, &mut stmts);
        let width = colors[0].len();
        let locals: Vec<u32> = (0..width).map(|_| self.new_local(Ty::Num)).collect();
        let set = |values: Vec<Expr>| Self::sets(&locals, values);
        let mut arms = Vec::new();
        let last = if blend {
            arms.push((
                cmp(Cmp::Le, get(v), Expr::Num(limits[0])),
                set(Self::consts(&colors[0])),
            ));
            for i in 1..n {
                let w = limits[i] - limits[i - 1];
                let body = if w == 0.0 {
                    set(Self::consts(&colors[i]))
                } else {
                    let t = || div(sub(get(v), Expr::Num(limits[i - 1])), Expr::Num(w));
                    set(colors[i - 1]
                        .iter()
                        .zip(&colors[i])
                        .map(|(a, b)| add(Expr::Num(*a), mul(Expr::Num(b - a), t())))
                        .collect())
                };
                arms.push((cmp(Cmp::Le, get(v), Expr::Num(limits[i])), body));
            }
            set(Self::consts(&colors[n - 1]))
        } else {
            let op = if name == "valueMap" { Cmp::Le } else { Cmp::Lt };
            for (i, limit) in limits.iter().enumerate() {
                arms.push((
                    cmp(op, get(v), Expr::Num(*limit)),
                    set(Self::consts(&colors[i])),
                ));
            }
            set(Self::consts(&colors[colors.len() - 1]))
        };
        stmts.extend(chain(arms, last));
        Ok(self.pack(stmts, &locals, is_array))
    }

    /// `viz.process(v)`.
    pub(super) fn process(&mut self, viz: &Viz, v: Expr) -> Val {
        match viz {
            Viz::Stretch { kind, .. } => {
                let single = *kind == StretchKind::HighlightSingle;
                self.stretch(viz, v, single)
            }
            Viz::Ramp { vals, rgb } => {
                let mut stmts = Vec::new();
                let v = self.tmp(v, &mut stmts);
                let locals: Vec<u32> = (0..3).map(|_| self.new_local(Ty::Num)).collect();
                let n = vals.len();
                let fixed = |i: usize| -> Vec<Expr> {
                    rgb[i]
                        .iter()
                        .map(|c| Expr::Num(Host::Round.eval(*c, 0.0) / 255.0))
                        .collect()
                };
                let mut arms = vec![
                    (
                        Expr::Not(bx(cmp(Cmp::Gt, get(v), Expr::Num(vals[0])))),
                        Self::sets(&locals, fixed(0)),
                    ),
                    (
                        cmp(Cmp::Ge, get(v), Expr::Num(vals[n - 1])),
                        Self::sets(&locals, fixed(n - 1)),
                    ),
                ];
                // v is in (vals[0], vals[n-1]): `while (v > vals[i]) i++` stops at i <= n-1.
                let segment = |i: usize| -> Vec<Expr> {
                    let f = || {
                        div(
                            sub(get(v), Expr::Num(vals[i - 1])),
                            Expr::Num(vals[i] - vals[i - 1]),
                        )
                    };
                    (0..3)
                        .map(|k| {
                            let (a, b) = (rgb[i - 1][k], rgb[i][k]);
                            div(
                                Expr::Host(
                                    Host::Round,
                                    vec![add(Expr::Num(a), mul(Expr::Num(b - a), f()))],
                                ),
                                Expr::Num(255.0),
                            )
                        })
                        .collect()
                };
                let last = if n >= 2 {
                    for (i, val) in vals.iter().enumerate().take(n - 1).skip(1) {
                        arms.push((
                            Expr::Not(bx(cmp(Cmp::Gt, get(v), Expr::Num(*val)))),
                            Self::sets(&locals, segment(i)),
                        ));
                    }
                    Self::sets(&locals, segment(n - 1))
                } else {
                    Self::sets(&locals, fixed(0))
                };
                stmts.extend(chain(arms, last));
                self.pack(stmts, &locals, true)
            }
            Viz::Map { vals, rgb } => {
                let mut stmts = Vec::new();
                let v = self.tmp(v, &mut stmts);
                let locals: Vec<u32> = (0..3).map(|_| self.new_local(Ty::Num)).collect();
                let color = |i: usize| -> Vec<Expr> {
                    rgb[i].iter().map(|c| Expr::Num(c / 255.0)).collect()
                };
                let n = vals.len();
                let arms = (1..n)
                    .map(|i| {
                        (
                            Expr::Not(bx(cmp(Cmp::Le, Expr::Num(vals[i]), get(v)))),
                            Self::sets(&locals, color(i - 1)),
                        )
                    })
                    .collect();
                stmts.extend(chain(arms, Self::sets(&locals, color(n - 1))));
                self.pack(stmts, &locals, true)
            }
        }
    }

    /// HighlightCompressVisualizer / DefaultVisualizer `process(v)` (prelude `highlight`
    /// and `stretch`).
    pub(super) fn stretch(&mut self, viz: &Viz, v: Expr, single: bool) -> Val {
        let Viz::Stretch {
            min,
            max,
            gain,
            offset,
            gamma,
            kind,
        } = viz
        else {
            return Val::Scalar(Expr::Num(f64::NAN));
        };
        let mut stmts = Vec::new();
        let v = self.tmp(v, &mut stmts);
        let x = self.new_local(Ty::Num);
        let stretched = add(
            div(
                mul(Expr::Num(*gain), sub(get(v), Expr::Num(*min))),
                Expr::Num(max - min),
            ),
            Expr::Num(*offset),
        );
        stmts.push(Stmt::Expr(Expr::Set(x, Ty::Num, bx(stretched))));
        let pow = || {
            Expr::Host(
                Host::Pow,
                vec![
                    Expr::Arith(Arith::Max, bx(Expr::Num(0.0)), bx(get(x))),
                    Expr::Num(*gamma),
                ],
            )
        };
        let clamp = Expr::Cond(
            bx(cmp(Cmp::Lt, get(x), Expr::Num(0.0))),
            bx(Expr::Num(0.0)),
            bx(Expr::Cond(
                bx(cmp(Cmp::Gt, get(x), Expr::Num(1.0))),
                bx(Expr::Num(1.0)),
                bx(get(x)),
                Ty::Num,
            )),
            Ty::Num,
        );
        if *kind == StretchKind::Default {
            if *gamma != 1.0 {
                stmts.push(Stmt::FnReturn(pow()));
            } else {
                stmts.push(Stmt::FnReturn(clamp));
            }
        } else {
            if *gamma != 1.0 {
                stmts.push(Stmt::Expr(Expr::Set(x, Ty::Num, bx(pow()))));
            }
            if *max > 0.0 && *max < 1.0 {
                let compressed = add(
                    Expr::Num(0.92),
                    mul(sub(get(x), Expr::Num(0.92)), Expr::Num(0.08 / 1.08)),
                );
                stmts.push(Stmt::If(
                    cmp(Cmp::Gt, get(x), Expr::Num(0.92)),
                    vec![Stmt::Expr(Expr::Set(x, Ty::Num, bx(compressed)))],
                    Vec::new(),
                ));
            }
            stmts.push(Stmt::FnReturn(clamp));
        }
        let e = Expr::Inline(stmts, Ty::Num);
        if single {
            Val::Array(vec![e])
        } else {
            Val::Scalar(e)
        }
    }
}
