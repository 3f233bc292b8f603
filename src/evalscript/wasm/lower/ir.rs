//! The typed IR that lowering produces and `codegen` turns into WebAssembly, and small
//! builders for it.

/// The static type of a value: JS Number (wasm f64) or Boolean (wasm i32 0/1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Num,
    Bool,
}

/// f64 binary operations that wasm has as single instructions (JS-exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    /// IEEE maximum: NaN if either is NaN, +0 > -0 (= boa's `Math.max`).
    Max,
    Min,
}

/// f64 unary operations that wasm has as single instructions (JS-exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum F64Un {
    Abs,
    Sqrt,
    Floor,
    Ceil,
    Trunc,
    /// `Math.fround`: through f32 and back.
    Fround,
}

/// Number comparisons; NaN compares unequal and unordered, as in JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// Host functions imported by the module (module `js`), computed with the same Rust f64
/// methods boa uses so results are bit-identical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// JS `%`: `(x % y).copysign(x)`.
    Rem,
    /// `Math.pow` and `**` with a non-int32 exponent.
    Pow,
    /// `**` with an int32 exponent: boa uses `powi` there (f64 exponent argument).
    Powi,
    Round,
    Sign,
    Exp,
    Expm1,
    Log,
    Log1p,
    Log2,
    Log10,
    Cbrt,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Atan2,
    /// One step of `Math.hypot`: `acc.hypot(x)`.
    Hypot,
}

impl Host {
    /// Every import, in import-index order.
    pub(crate) const ALL: [Host; 26] = [
        Host::Rem,
        Host::Pow,
        Host::Powi,
        Host::Round,
        Host::Sign,
        Host::Exp,
        Host::Expm1,
        Host::Log,
        Host::Log1p,
        Host::Log2,
        Host::Log10,
        Host::Cbrt,
        Host::Sin,
        Host::Cos,
        Host::Tan,
        Host::Asin,
        Host::Acos,
        Host::Atan,
        Host::Sinh,
        Host::Cosh,
        Host::Tanh,
        Host::Asinh,
        Host::Acosh,
        Host::Atanh,
        Host::Atan2,
        Host::Hypot,
    ];

    pub(crate) fn index(self) -> u32 {
        Self::ALL.iter().position(|h| *h == self).unwrap_or(0) as u32
    }

    pub(crate) fn arity(self) -> usize {
        match self {
            Host::Rem | Host::Pow | Host::Powi | Host::Atan2 | Host::Hypot => 2,
            _ => 1,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Host::Rem => "rem",
            Host::Pow => "pow",
            Host::Powi => "powi",
            Host::Round => "round",
            Host::Sign => "sign",
            Host::Exp => "exp",
            Host::Expm1 => "expm1",
            Host::Log => "log",
            Host::Log1p => "log1p",
            Host::Log2 => "log2",
            Host::Log10 => "log10",
            Host::Cbrt => "cbrt",
            Host::Sin => "sin",
            Host::Cos => "cos",
            Host::Tan => "tan",
            Host::Asin => "asin",
            Host::Acos => "acos",
            Host::Atan => "atan",
            Host::Sinh => "sinh",
            Host::Cosh => "cosh",
            Host::Tanh => "tanh",
            Host::Asinh => "asinh",
            Host::Acosh => "acosh",
            Host::Atanh => "atanh",
            Host::Atan2 => "atan2",
            Host::Hypot => "hypot",
        }
    }

    /// The host implementation, mirroring boa 0.22's `Math` and number operators.
    pub(crate) fn eval(self, x: f64, y: f64) -> f64 {
        match self {
            Host::Rem => (x % y).copysign(x),
            Host::Pow => {
                if y.is_nan() || (x.abs() == 1.0 && y.is_infinite()) {
                    f64::NAN
                } else {
                    x.powf(y)
                }
            }
            Host::Powi => x.powi(y as i32),
            Host::Round => {
                if x.fract() == -0.5 {
                    x.ceil()
                } else {
                    x.round()
                }
            }
            Host::Sign => {
                if x == 0.0 {
                    x
                } else {
                    x.signum()
                }
            }
            Host::Exp => x.exp(),
            Host::Expm1 => x.exp_m1(),
            Host::Log => x.ln(),
            Host::Log1p => x.ln_1p(),
            Host::Log2 => x.log2(),
            Host::Log10 => x.log10(),
            Host::Cbrt => x.cbrt(),
            Host::Sin => x.sin(),
            Host::Cos => x.cos(),
            Host::Tan => x.tan(),
            Host::Asin => x.asin(),
            Host::Acos => x.acos(),
            Host::Atan => x.atan(),
            Host::Sinh => x.sinh(),
            Host::Cosh => x.cosh(),
            Host::Tanh => x.tanh(),
            Host::Asinh => x.asinh(),
            Host::Acosh => x.acosh(),
            Host::Atanh => x.atanh(),
            Host::Atan2 => x.atan2(y),
            Host::Hypot => x.hypot(y),
        }
    }
}

/// An IR expression; `ty()` gives its static type.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Num(f64),
    Bool(bool),
    /// Reads IR local `.0` of type `.1`.
    Get(u32, Ty),
    /// Assigns and yields the value (`local.tee`).
    Set(u32, Ty, Box<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    /// Boolean to Number (0 or 1).
    ToNum(Box<Expr>),
    /// Number to Boolean: neither ±0 nor NaN.
    Truthy(Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    Un(F64Un, Box<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    /// Boolean equality (`ne` = true for `!=`).
    BoolEq {
        ne: bool,
        a: Box<Expr>,
        b: Box<Expr>,
    },
    Host(Host, Vec<Expr>),
    /// `cond ? a : b` where `cond` is Bool and `a`, `b` have type `.3`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>, Ty),
    /// `a && b` / `a || b` with both operands of type `ty`; `tmp` holds `a` when Num.
    Logic {
        or: bool,
        a: Box<Expr>,
        b: Box<Expr>,
        ty: Ty,
        tmp: u32,
    },
    /// An inlined function call: runs `body`; `Stmt::FnReturn` leaves with the value.
    /// Falling off the end yields NaN (ToNumber(undefined)); only allowed for Num.
    Inline(Vec<Stmt>, Ty),
}

impl Expr {
    pub(crate) fn ty(&self) -> Ty {
        match self {
            Expr::Num(_)
            | Expr::Neg(_)
            | Expr::ToNum(_)
            | Expr::Arith(..)
            | Expr::Un(..)
            | Expr::Host(..) => Ty::Num,
            Expr::Bool(_)
            | Expr::Not(_)
            | Expr::Truthy(_)
            | Expr::Cmp(..)
            | Expr::BoolEq { .. } => Ty::Bool,
            Expr::Get(_, ty) | Expr::Set(_, ty, _) | Expr::Cond(_, _, _, ty) => *ty,
            Expr::Logic { ty, .. } | Expr::Inline(_, ty) => *ty,
        }
    }
}

/// An IR statement.
#[derive(Debug, Clone)]
pub(crate) enum Stmt {
    /// Evaluates and drops.
    Expr(Expr),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// `while (cond) body` (`test_first`) or `do body while (cond)`; `update` runs after
    /// the body and after `continue`, as a `for` loop's final expression.
    Loop {
        cond: Option<Expr>,
        body: Vec<Stmt>,
        update: Option<Expr>,
        test_first: bool,
    },
    Break,
    Continue,
    /// `return` inside an inlined function.
    FnReturn(Expr),
    /// `evaluatePixel`'s return: one Number per output band, stored and the pixel ends.
    PixelReturn(Vec<Expr>),
}

/// The lowered program: what `codegen` needs.
#[derive(Debug)]
pub(crate) struct Lowered {
    /// Types of the IR locals, by index.
    pub locals: Vec<Ty>,
    /// `(band index, IR local)`: bands `evaluatePixel` reads, loaded at each pixel start.
    pub bands: Vec<(usize, u32)>,
    /// Runs once per `run` call before the pixel loop (top-level constants).
    pub prologue: Vec<Stmt>,
    /// `evaluatePixel`'s body.
    pub body: Vec<Stmt>,
}

/// Nested `if`/`else if` chain: the first arm whose condition holds runs.
pub(crate) fn chain(arms: Vec<(Expr, Vec<Stmt>)>, last: Vec<Stmt>) -> Vec<Stmt> {
    arms.into_iter()
        .rev()
        .fold(last, |acc, (cond, body)| vec![Stmt::If(cond, body, acc)])
}

pub(crate) fn get(local: u32) -> Expr {
    Expr::Get(local, Ty::Num)
}

pub(crate) fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

pub(crate) fn add(a: Expr, b: Expr) -> Expr {
    Expr::Arith(Arith::Add, bx(a), bx(b))
}
pub(crate) fn sub(a: Expr, b: Expr) -> Expr {
    Expr::Arith(Arith::Sub, bx(a), bx(b))
}
pub(crate) fn mul(a: Expr, b: Expr) -> Expr {
    Expr::Arith(Arith::Mul, bx(a), bx(b))
}
pub(crate) fn div(a: Expr, b: Expr) -> Expr {
    Expr::Arith(Arith::Div, bx(a), bx(b))
}
pub(crate) fn cmp(op: Cmp, a: Expr, b: Expr) -> Expr {
    Expr::Cmp(op, bx(a), bx(b))
}
