//! Lowered IR to a WebAssembly module implementing the block ABI described in `mod.rs`.
//!
//! Two code shapes, both bit-identical to the boa tier:
//! - **SIMD** (the common case): when the IR has no loops, every pixel pair is computed
//!   in `f64x2` lanes. Branches become masked execution: both arms of every `if`, `?:`,
//!   `&&`/`||` run, assignments and returns only take effect in the lanes whose mask is
//!   set (`v128.bitselect`). This is sound because evaluating an IR expression has no
//!   effect besides assigning IR locals (host functions are pure and nothing traps), and
//!   the lane values are computed with the same IEEE operations as the scalar code
//!   (`f64x2.min` is `f64.min` lane-wise, and so on).
//! - **Scalar**: anything with loops (the trip count may differ per pixel) runs one pixel
//!   at a time with structured control flow.
//!
//! Both loops bump one pointer per plane instead of recomputing addresses. The host
//! always passes `n` as a multiple of 4 (see `run.rs`), so the SIMD loop (two pixel
//! pairs per iteration) has no tail.

use wasm_encoder::{
    BlockType, CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
    Ieee64, ImportSection, Instruction as I, MemArg, MemorySection, MemoryType, Module,
    TypeSection, ValType,
};

use super::lower::{Arith, Cmp, Expr, F64Un, Host, Lowered, Stmt, Ty};

/// How the module stores one output band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutKind {
    /// The evaluated f64 (the public ABI).
    F64,
    /// Demoted to f32 with round-to-nearest, which is exactly FLOAT32 formatting
    /// (`sample_type::format_f32` is `value as f32`): the host copies it out as is.
    F32,
    /// UINT8 formatting (`format_u8`), or with `auto` AUTO (`format_auto`: times 255
    /// first): NaN to 0, clamped to 0..255, rounded half away from zero (for values in
    /// 0..255, `trunc(x) + (x - trunc(x) >= 0.5)`, exact), one byte per pixel.
    U8 { auto: bool },
}

impl OutKind {
    /// Bytes per pixel in the output plane.
    pub(crate) fn width(self) -> u32 {
        match self {
            OutKind::F64 => 8,
            OutKind::F32 => 4,
            OutKind::U8 { .. } => 1,
        }
    }
}

/// The input bands a generated module reads, in plane order: only these are copied
/// into linear memory (a script that lists `dataMask` but never reads it costs nothing).
pub(crate) fn input_planes(lowered: &Lowered) -> Vec<usize> {
    let mut planes: Vec<usize> = lowered.bands.iter().map(|(band, _)| *band).collect();
    planes.sort_unstable();
    planes.dedup();
    planes
}

/// True when the SIMD shape applies: no loops anywhere (prologue, body, inlined calls).
pub(crate) fn simd_eligible(lowered: &Lowered) -> bool {
    lowered.prologue.iter().all(stmt_straight) && lowered.body.iter().all(stmt_straight)
}

fn stmt_straight(s: &Stmt) -> bool {
    match s {
        Stmt::Loop { .. } | Stmt::Break | Stmt::Continue => false,
        Stmt::Expr(e) | Stmt::FnReturn(e) => expr_straight(e),
        Stmt::If(c, a, b) => {
            expr_straight(c) && a.iter().all(stmt_straight) && b.iter().all(stmt_straight)
        }
        Stmt::PixelReturn(values) => values.iter().all(expr_straight),
    }
}

fn expr_straight(e: &Expr) -> bool {
    match e {
        Expr::Num(_) | Expr::Bool(_) | Expr::Get(..) => true,
        Expr::Set(_, _, a)
        | Expr::Neg(a)
        | Expr::Not(a)
        | Expr::ToNum(a)
        | Expr::Truthy(a)
        | Expr::Un(_, a) => expr_straight(a),
        Expr::Arith(_, a, b) | Expr::Cmp(_, a, b) | Expr::BoolEq { a, b, .. } => {
            expr_straight(a) && expr_straight(b)
        }
        Expr::Logic { a, b, .. } => expr_straight(a) && expr_straight(b),
        Expr::Cond(c, a, b, _) => expr_straight(c) && expr_straight(a) && expr_straight(b),
        Expr::Host(_, args) => args.iter().all(expr_straight),
        Expr::Inline(body, _) => body.iter().all(stmt_straight),
    }
}

/// True when `stmts` (not counting inlined calls, whose returns are their own) returns.
fn may_return(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::FnReturn(_) | Stmt::PixelReturn(_) => true,
        Stmt::If(_, a, b) => may_return(a) || may_return(b),
        _ => false,
    })
}

/// Locals before the IR's own: `n` (param), a pixel-group counter, one pointer per
/// input plane, one per output band.
struct Layout {
    n_planes: u32,
    outs: Vec<OutKind>,
    n_ir: u32,
}

impl Layout {
    const N: u32 = 0;
    const COUNT: u32 = 1;
    fn in_ptr(&self, p: u32) -> u32 {
        2 + p
    }
    fn out_ptr(&self, j: u32) -> u32 {
        2 + self.n_planes + j
    }
    fn first_ir_local(&self) -> u32 {
        2 + self.n_planes + self.outs.len() as u32
    }
    fn first_extra(&self) -> u32 {
        self.first_ir_local() + self.n_ir
    }
}

/// What a structured-control label is for, to compute `br` depths (scalar shape).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Other,
    /// End of the current pixel (`evaluatePixel` returned).
    Pixel,
    /// An inlined function's block: `return` targets it.
    Inline,
    Break,
    Continue,
}

/// A function being returned from, in the SIMD shape: which lanes have returned, and
/// (for an inlined call) the value accumulated per lane.
struct VFrame {
    returned: u32,
    result: Option<u32>,
}

struct Emitter {
    code: Vec<I<'static>>,
    extras: Vec<ValType>,
    labels: Vec<Label>,
    layout: Layout,
    /// SIMD shape: the live-lane mask local (`None`: every lane is live).
    exec: Option<u32>,
    frames: Vec<VFrame>,
    /// SIMD shape: per output band, the local accumulating its value.
    out_acc: Vec<u32>,
}

fn valtype(ty: Ty) -> ValType {
    match ty {
        Ty::Num => ValType::F64,
        Ty::Bool => ValType::I32,
    }
}

const fn mem(align: u32) -> MemArg {
    mem_at(align, 0)
}

const fn mem_at(align: u32, offset: u64) -> MemArg {
    MemArg {
        offset,
        align,
        memory_index: 0,
    }
}

const ALL_ONES: i128 = -1;

fn splat(v: f64) -> i128 {
    let bits = v.to_bits() as u128;
    ((bits << 64) | bits) as i128
}

/// Builds the module: imports `js.<host fn>` for every `Host`, exports `memory` and
/// `run(n: i32)`. `planes` are the input bands in plane order (see `input_planes`),
/// `outs` one entry per output band. With `allow_simd` false the scalar shape is always
/// used (tests compare the two).
pub(crate) fn emit(
    lowered: &Lowered,
    planes: &[usize],
    outs: &[OutKind],
    allow_simd: bool,
) -> Vec<u8> {
    let simd = allow_simd && simd_eligible(lowered);
    let layout = Layout {
        n_planes: planes.len() as u32,
        outs: outs.to_vec(),
        n_ir: lowered.locals.len() as u32,
    };
    let mut types = TypeSection::new();
    types.ty().function([ValType::F64], [ValType::F64]); // 0: unary host fn
    types
        .ty()
        .function([ValType::F64, ValType::F64], [ValType::F64]); // 1: binary host fn
    types.ty().function([ValType::I32], []); // 2: run
    let mut imports = ImportSection::new();
    for host in Host::ALL {
        let ty = if host.arity() == 2 { 1 } else { 0 };
        imports.import("js", host.name(), EntityType::Function(ty));
    }
    let mut functions = FunctionSection::new();
    functions.function(2);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let run_index = Host::ALL.len() as u32;
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("run", ExportKind::Func, run_index);

    let mut locals: Vec<(u32, ValType)> =
        vec![(1 + layout.n_planes + layout.outs.len() as u32, ValType::I32)];
    if simd {
        locals.push((layout.n_ir, ValType::V128));
    } else {
        locals.extend(lowered.locals.iter().map(|ty| (1, valtype(*ty))));
    }
    let mut e = Emitter {
        code: Vec::new(),
        extras: Vec::new(),
        labels: Vec::new(),
        layout,
        exec: None,
        frames: Vec::new(),
        out_acc: Vec::new(),
    };
    e.run_body(lowered, planes, simd);
    locals.extend(e.extras.iter().map(|t| (1, *t)));
    let mut f = Function::new(locals);
    for instruction in &e.code {
        f.instruction(instruction);
    }
    let mut code = CodeSection::new();
    code.function(&f);

    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&memories)
        .section(&exports)
        .section(&code);
    module.finish()
}

impl Emitter {
    fn i(&mut self, instruction: I<'static>) {
        self.code.push(instruction);
    }

    fn ir_local(&self, local: u32) -> u32 {
        self.layout.first_ir_local() + local
    }

    fn new_local(&mut self, ty: ValType) -> u32 {
        self.extras.push(ty);
        self.layout.first_extra() + self.extras.len() as u32 - 1
    }

    fn depth(&self, target: Label) -> u32 {
        let pos = self.labels.iter().rposition(|l| *l == target).unwrap_or(0);
        (self.labels.len() - 1 - pos) as u32
    }

    /// Plane pointers, the prologue, then the pixel loop (`step` pixels per iteration).
    fn run_body(&mut self, lowered: &Lowered, planes: &[usize], simd: bool) {
        let step: i32 = if simd { 4 } else { 1 };
        // Input plane p at p * n * 4; outputs after them, each n * width bytes.
        for p in 0..self.layout.n_planes {
            self.i(I::LocalGet(Layout::N));
            self.i(I::I32Const((4 * p) as i32));
            self.i(I::I32Mul);
            self.i(I::LocalSet(self.layout.in_ptr(p)));
        }
        let mut offset = 4 * self.layout.n_planes;
        for j in 0..self.layout.outs.len() as u32 {
            self.i(I::LocalGet(Layout::N));
            self.i(I::I32Const(offset as i32));
            self.i(I::I32Mul);
            self.i(I::LocalSet(self.layout.out_ptr(j)));
            offset += self.layout.outs[j as usize].width();
        }
        if simd {
            self.out_acc = (0..self.layout.outs.len())
                .map(|_| self.new_local(ValType::V128))
                .collect();
            let dummy = self.new_local(ValType::V128);
            self.frames.push(VFrame {
                returned: dummy,
                result: None,
            });
            self.vstmts(&lowered.prologue);
            self.frames.pop();
            self.exec = None;
        } else {
            self.stmts(&lowered.prologue);
        }
        // count = n / step; nothing to do for n == 0.
        self.i(I::LocalGet(Layout::N));
        self.i(I::I32Const(step.trailing_zeros() as i32));
        self.i(I::I32ShrU);
        self.i(I::LocalTee(Layout::COUNT));
        self.i(I::I32Eqz);
        self.i(I::If(BlockType::Empty));
        self.i(I::Return);
        self.i(I::End);
        self.i(I::Loop(BlockType::Empty));
        self.labels.push(Label::Other);
        // The SIMD body runs twice per iteration (two pixel pairs, memarg offsets), to
        // halve the loop overhead; `n` is a multiple of 4.
        let copies = if simd { 2 } else { 1 };
        for copy in 0..copies {
            for (band, local) in &lowered.bands {
                let p = planes.iter().position(|b| b == band).unwrap_or(0) as u32;
                self.i(I::LocalGet(self.layout.in_ptr(p)));
                if simd {
                    self.i(I::V128Load64Zero(mem_at(3, 8 * copy)));
                    self.i(I::F64x2PromoteLowF32x4);
                } else {
                    self.i(I::F32Load(mem(2)));
                    self.i(I::F64PromoteF32);
                }
                self.i(I::LocalSet(self.ir_local(*local)));
            }
            if simd {
                self.simd_pixel(&lowered.body, copy);
            } else {
                self.i(I::Block(BlockType::Empty));
                self.labels.push(Label::Pixel);
                self.stmts(&lowered.body);
                self.i(I::End);
                self.labels.pop();
            }
        }
        for p in 0..self.layout.n_planes {
            let ptr = self.layout.in_ptr(p);
            self.bump(ptr, 4 * step);
        }
        for j in 0..self.layout.outs.len() as u32 {
            let ptr = self.layout.out_ptr(j);
            let width = self.layout.outs[j as usize].width() as i32;
            self.bump(ptr, width * step);
        }
        self.i(I::LocalGet(Layout::COUNT));
        self.i(I::I32Const(1));
        self.i(I::I32Sub);
        self.i(I::LocalTee(Layout::COUNT));
        self.i(I::BrIf(0));
        self.i(I::End);
        self.labels.pop();
        self.i(I::End);
    }

    fn bump(&mut self, ptr: u32, by: i32) {
        self.i(I::LocalGet(ptr));
        self.i(I::I32Const(by));
        self.i(I::I32Add);
        self.i(I::LocalSet(ptr));
    }

    // ---------------------------------------------------------------- scalar shape

    fn stmts(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn store_scalar(&mut self, j: u32, value: &Expr) {
        self.i(I::LocalGet(self.layout.out_ptr(j)));
        self.expr(value);
        match self.layout.outs[j as usize] {
            OutKind::F64 => self.i(I::F64Store(mem(3))),
            OutKind::F32 => {
                self.i(I::F32DemoteF64);
                self.i(I::F32Store(mem(2)));
            }
            OutKind::U8 { auto } => {
                let x = self.new_local(ValType::F64);
                if auto {
                    self.i(I::F64Const(Ieee64::from(255.0)));
                    self.i(I::F64Mul);
                }
                // NaN -> 0, then clamp (f64.max/min propagate NaN, so test first).
                self.i(I::LocalTee(x));
                self.i(I::F64Const(Ieee64::from(0.0)));
                self.i(I::LocalGet(x));
                self.i(I::LocalGet(x));
                self.i(I::F64Eq);
                self.i(I::Select);
                self.i(I::F64Const(Ieee64::from(0.0)));
                self.i(I::F64Max);
                self.i(I::F64Const(Ieee64::from(255.0)));
                self.i(I::F64Min);
                self.i(I::LocalTee(x));
                self.i(I::F64Trunc);
                let t = self.new_local(ValType::F64);
                self.i(I::LocalTee(t));
                self.i(I::LocalGet(x));
                self.i(I::LocalGet(t));
                self.i(I::F64Sub);
                self.i(I::F64Const(Ieee64::from(0.5)));
                self.i(I::F64Ge);
                self.i(I::F64ConvertI32U);
                self.i(I::F64Add);
                self.i(I::I32TruncSatF64U);
                self.i(I::I32Store8(mem(0)));
            }
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::Expr(Expr::Set(local, _, value)) => {
                self.expr(value);
                self.i(I::LocalSet(self.ir_local(*local)));
            }
            Stmt::Expr(e) => {
                self.expr(e);
                self.i(I::Drop);
            }
            Stmt::If(cond, then, otherwise) => {
                self.expr(cond);
                self.i(I::If(BlockType::Empty));
                self.labels.push(Label::Other);
                self.stmts(then);
                if !otherwise.is_empty() {
                    self.i(I::Else);
                    self.stmts(otherwise);
                }
                self.i(I::End);
                self.labels.pop();
            }
            Stmt::Loop {
                cond,
                body,
                update,
                test_first,
            } => {
                self.i(I::Block(BlockType::Empty));
                self.labels.push(Label::Break);
                self.i(I::Loop(BlockType::Empty));
                self.labels.push(Label::Other);
                if let (true, Some(cond)) = (*test_first, cond) {
                    self.expr(cond);
                    self.i(I::I32Eqz);
                    self.i(I::BrIf(self.depth(Label::Break)));
                }
                self.i(I::Block(BlockType::Empty));
                self.labels.push(Label::Continue);
                self.stmts(body);
                self.i(I::End);
                self.labels.pop();
                if let Some(update) = update {
                    self.stmt(&Stmt::Expr(update.clone()));
                }
                match (*test_first, cond) {
                    (false, Some(cond)) => {
                        self.expr(cond);
                        self.i(I::BrIf(0));
                    }
                    _ => self.i(I::Br(0)),
                }
                self.i(I::End);
                self.labels.pop();
                self.i(I::End);
                self.labels.pop();
            }
            Stmt::Break => self.i(I::Br(self.depth(Label::Break))),
            Stmt::Continue => self.i(I::Br(self.depth(Label::Continue))),
            Stmt::FnReturn(value) => {
                self.expr(value);
                self.i(I::Br(self.depth(Label::Inline)));
            }
            Stmt::PixelReturn(values) => {
                for (j, value) in values.iter().enumerate() {
                    if j < self.layout.outs.len() {
                        self.store_scalar(j as u32, value);
                    } else {
                        self.expr(value);
                        self.i(I::Drop);
                    }
                }
                self.i(I::Br(self.depth(Label::Pixel)));
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Num(v) => self.i(I::F64Const(Ieee64::from(*v))),
            Expr::Bool(b) => self.i(I::I32Const(i32::from(*b))),
            Expr::Get(local, _) => self.i(I::LocalGet(self.ir_local(*local))),
            Expr::Set(local, _, value) => {
                self.expr(value);
                self.i(I::LocalTee(self.ir_local(*local)));
            }
            Expr::Neg(a) => {
                self.expr(a);
                self.i(I::F64Neg);
            }
            Expr::Not(a) => {
                self.expr(a);
                self.i(I::I32Eqz);
            }
            Expr::ToNum(a) => {
                self.expr(a);
                self.i(I::F64ConvertI32U);
            }
            Expr::Truthy(a) => {
                self.expr(a);
                self.i(I::F64Abs);
                self.i(I::F64Const(Ieee64::from(0.0)));
                self.i(I::F64Gt);
            }
            Expr::Arith(op, a, b) => {
                self.expr(a);
                self.expr(b);
                self.i(match op {
                    Arith::Add => I::F64Add,
                    Arith::Sub => I::F64Sub,
                    Arith::Mul => I::F64Mul,
                    Arith::Div => I::F64Div,
                    Arith::Max => I::F64Max,
                    Arith::Min => I::F64Min,
                });
            }
            Expr::Un(op, a) => {
                self.expr(a);
                match op {
                    F64Un::Abs => self.i(I::F64Abs),
                    F64Un::Sqrt => self.i(I::F64Sqrt),
                    F64Un::Floor => self.i(I::F64Floor),
                    F64Un::Ceil => self.i(I::F64Ceil),
                    F64Un::Trunc => self.i(I::F64Trunc),
                    F64Un::Fround => {
                        self.i(I::F32DemoteF64);
                        self.i(I::F64PromoteF32);
                    }
                }
            }
            Expr::Cmp(op, a, b) => {
                self.expr(a);
                self.expr(b);
                self.i(match op {
                    Cmp::Lt => I::F64Lt,
                    Cmp::Le => I::F64Le,
                    Cmp::Gt => I::F64Gt,
                    Cmp::Ge => I::F64Ge,
                    Cmp::Eq => I::F64Eq,
                    Cmp::Ne => I::F64Ne,
                });
            }
            Expr::BoolEq { ne, a, b } => {
                self.expr(a);
                self.expr(b);
                self.i(if *ne { I::I32Ne } else { I::I32Eq });
            }
            Expr::Host(Host::Round, args) if args.len() == 1 => self.round(&args[0]),
            Expr::Host(host, args) => {
                for a in args {
                    self.expr(a);
                }
                self.i(I::Call(host.index()));
            }
            Expr::Cond(cond, a, b, ty) => {
                self.expr(cond);
                self.i(I::If(BlockType::Result(valtype(*ty))));
                self.labels.push(Label::Other);
                self.expr(a);
                self.i(I::Else);
                self.expr(b);
                self.i(I::End);
                self.labels.pop();
            }
            Expr::Logic { or, a, b, ty, tmp } => {
                self.expr(a);
                let tmp = self.ir_local(*tmp);
                if *ty == Ty::Num {
                    self.i(I::LocalTee(tmp));
                    self.i(I::F64Abs);
                    self.i(I::F64Const(Ieee64::from(0.0)));
                    self.i(I::F64Gt);
                }
                self.i(I::If(BlockType::Result(valtype(*ty))));
                self.labels.push(Label::Other);
                // `a || b`: a if truthy else b; `a && b`: b if a truthy else a.
                let keep_a = |s: &mut Self| match ty {
                    Ty::Num => s.i(I::LocalGet(tmp)),
                    Ty::Bool => s.i(I::I32Const(i32::from(*or))),
                };
                if *or {
                    keep_a(self);
                    self.i(I::Else);
                    self.expr(b);
                } else {
                    self.expr(b);
                    self.i(I::Else);
                    keep_a(self);
                }
                self.i(I::End);
                self.labels.pop();
            }
            Expr::Inline(body, ty) => {
                self.i(I::Block(BlockType::Result(valtype(*ty))));
                self.labels.push(Label::Inline);
                self.stmts(body);
                // Falling off the end: undefined, i.e. NaN as a Number.
                match ty {
                    Ty::Num => self.i(I::F64Const(Ieee64::from(f64::NAN))),
                    Ty::Bool => self.i(I::I32Const(0)),
                }
                self.i(I::End);
                self.labels.pop();
            }
        }
    }

    // ------------------------------------------------------------------ SIMD shape

    /// One pixel pair (`copy` 0 or 1 of the iteration): the body under masks, then one
    /// store per output band.
    fn simd_pixel(&mut self, body: &[Stmt], copy: u64) {
        let done = self.new_local(ValType::V128);
        self.i(I::V128Const(0));
        self.i(I::LocalSet(done));
        self.exec = None;
        self.frames.push(VFrame {
            returned: done,
            result: None,
        });
        self.vstmts(body);
        self.frames.pop();
        self.exec = None;
        for j in 0..self.layout.outs.len() {
            self.i(I::LocalGet(self.layout.out_ptr(j as u32)));
            self.i(I::LocalGet(self.out_acc[j]));
            match self.layout.outs[j] {
                OutKind::F64 => self.i(I::V128Store(mem_at(4, 16 * copy))),
                OutKind::F32 => {
                    self.i(I::F32x4DemoteF64x2Zero);
                    self.i(I::V128Store64Lane {
                        memarg: mem_at(3, 8 * copy),
                        lane: 0,
                    });
                }
                OutKind::U8 { auto } => {
                    self.vformat_u8(auto);
                    self.i(I::V128Store16Lane {
                        memarg: mem_at(1, 2 * copy),
                        lane: 0,
                    });
                }
            }
        }
    }

    /// A new mask local holding `exec & mask` (`negate`: `exec & !mask`).
    fn narrowed(&mut self, mask: u32, negate: bool) -> u32 {
        let out = self.new_local(ValType::V128);
        match (self.exec, negate) {
            (Some(exec), false) => {
                self.i(I::LocalGet(exec));
                self.i(I::LocalGet(mask));
                self.i(I::V128And);
            }
            (Some(exec), true) => {
                self.i(I::LocalGet(exec));
                self.i(I::LocalGet(mask));
                self.i(I::V128AndNot);
            }
            (None, false) => self.i(I::LocalGet(mask)),
            (None, true) => {
                self.i(I::LocalGet(mask));
                self.i(I::V128Not);
            }
        }
        self.i(I::LocalSet(out));
        out
    }

    /// Merges the value on the stack into `target` in the live lanes only.
    fn masked_set(&mut self, target: u32) {
        match self.exec {
            None => self.i(I::LocalSet(target)),
            Some(exec) => {
                self.i(I::LocalGet(target));
                self.i(I::LocalGet(exec));
                self.i(I::V128Bitselect);
                self.i(I::LocalSet(target));
            }
        }
    }

    /// After a return in straight-line code no lane of this path is live.
    fn kill_all(&mut self) {
        let dead = self.new_local(ValType::V128);
        self.i(I::V128Const(0));
        self.i(I::LocalSet(dead));
        self.exec = Some(dead);
    }

    /// Marks the live lanes as returned from the innermost frame.
    fn mark_returned(&mut self) {
        let returned = self.frames.last().map(|f| f.returned).unwrap_or(0);
        match self.exec {
            None => self.i(I::V128Const(ALL_ONES)),
            Some(exec) => {
                self.i(I::LocalGet(returned));
                self.i(I::LocalGet(exec));
                self.i(I::V128Or);
            }
        }
        self.i(I::LocalSet(returned));
    }

    fn vstmts(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.vstmt(s);
        }
    }

    fn vstmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::Expr(e) => {
                self.vexpr(e);
                self.i(I::Drop);
            }
            Stmt::If(cond, then, otherwise) => {
                self.vexpr(cond);
                let mask = self.new_local(ValType::V128);
                self.i(I::LocalSet(mask));
                let saved = self.exec;
                let then_mask = self.narrowed(mask, false);
                let else_mask = self.narrowed(mask, true);
                self.exec = Some(then_mask);
                self.vstmts(then);
                self.exec = Some(else_mask);
                self.vstmts(otherwise);
                self.exec = saved;
                if may_return(then) || may_return(otherwise) {
                    // Live after the `if`: live before it and not returned since.
                    let returned = self.frames.last().map(|f| f.returned).unwrap_or(0);
                    let live = self.narrowed(returned, true);
                    self.exec = Some(live);
                }
            }
            Stmt::FnReturn(value) => {
                self.vexpr(value);
                let result = self.frames.last().and_then(|f| f.result).unwrap_or(0);
                self.masked_set(result);
                self.mark_returned();
                self.kill_all();
            }
            Stmt::PixelReturn(values) => {
                for (j, value) in values.iter().enumerate() {
                    self.vexpr(value);
                    match self.out_acc.get(j).copied() {
                        Some(acc) => self.masked_set(acc),
                        None => self.i(I::Drop),
                    }
                }
                self.mark_returned();
                self.kill_all();
            }
            // Not SIMD-eligible (`simd_eligible`): unreachable here, emit nothing.
            Stmt::Loop { .. } | Stmt::Break | Stmt::Continue => {}
        }
    }

    /// JS `Math.round` inline, equal to boa's (`fract() == -0.5 ? ceil : round`) for every
    /// input: `f = floor(x)`, plus 1 when `x - f >= 0.5` (exact for every finite double),
    /// with the sign of `x` (so -0.5..-0 gives -0). NaN and infinities pass through.
    /// A host call per pixel costs more than the whole colour ramp around it.
    fn round(&mut self, x: &Expr) {
        let xl = self.new_local(ValType::F64);
        let fl = self.new_local(ValType::F64);
        self.expr(x);
        self.i(I::LocalTee(xl));
        self.i(I::F64Floor);
        self.i(I::LocalTee(fl));
        self.i(I::F64Const(Ieee64::from(1.0)));
        self.i(I::F64Const(Ieee64::from(0.0)));
        self.i(I::LocalGet(xl));
        self.i(I::LocalGet(fl));
        self.i(I::F64Sub);
        self.i(I::F64Const(Ieee64::from(0.5)));
        self.i(I::F64Ge);
        self.i(I::Select);
        self.i(I::F64Add);
        self.i(I::LocalGet(xl));
        self.i(I::F64Copysign);
    }

    /// [`Self::round`] on both lanes.
    fn vround(&mut self, x: &Expr) {
        const ONE: i128 = 0x3FF0_0000_0000_0000_3FF0_0000_0000_0000;
        const HALF: i128 = 0x3FE0_0000_0000_0000_3FE0_0000_0000_0000;
        const SIGN: i128 = 0x8000_0000_0000_0000_8000_0000_0000_0000u128 as i128;
        let xl = self.new_local(ValType::V128);
        let fl = self.new_local(ValType::V128);
        self.vexpr(x);
        self.i(I::LocalTee(xl));
        self.i(I::F64x2Floor);
        self.i(I::LocalTee(fl));
        self.i(I::LocalGet(xl));
        self.i(I::LocalGet(fl));
        self.i(I::F64x2Sub);
        self.i(I::V128Const(HALF));
        self.i(I::F64x2Ge);
        self.i(I::V128Const(ONE));
        self.i(I::V128And);
        self.i(I::F64x2Add);
        // copysign(r, x) = (r & !SIGN) | (x & SIGN)
        self.i(I::V128Const(!SIGN));
        self.i(I::V128And);
        self.i(I::LocalGet(xl));
        self.i(I::V128Const(SIGN));
        self.i(I::V128And);
        self.i(I::V128Or);
    }

    fn vexpr(&mut self, e: &Expr) {
        match e {
            Expr::Num(v) => self.i(I::V128Const(splat(*v))),
            Expr::Bool(b) => self.i(I::V128Const(if *b { ALL_ONES } else { 0 })),
            Expr::Get(local, _) => self.i(I::LocalGet(self.ir_local(*local))),
            Expr::Set(local, _, value) => {
                self.vexpr(value);
                let tmp = self.new_local(ValType::V128);
                self.i(I::LocalTee(tmp));
                self.masked_set(self.ir_local(*local));
                self.i(I::LocalGet(tmp));
            }
            Expr::Neg(a) => {
                self.vexpr(a);
                self.i(I::F64x2Neg);
            }
            Expr::Not(a) => {
                self.vexpr(a);
                self.i(I::V128Not);
            }
            Expr::ToNum(a) => {
                // Mask lanes to 1.0 or +0.0, as f64.convert_i32_u of 1 or 0.
                self.vexpr(a);
                self.i(I::V128Const(splat(1.0)));
                self.i(I::V128And);
            }
            Expr::Truthy(a) => {
                self.vexpr(a);
                self.vtruthy();
            }
            Expr::Arith(op, a, b) => {
                self.vexpr(a);
                self.vexpr(b);
                self.i(match op {
                    Arith::Add => I::F64x2Add,
                    Arith::Sub => I::F64x2Sub,
                    Arith::Mul => I::F64x2Mul,
                    Arith::Div => I::F64x2Div,
                    Arith::Max => I::F64x2Max,
                    Arith::Min => I::F64x2Min,
                });
            }
            Expr::Un(op, a) => {
                self.vexpr(a);
                match op {
                    F64Un::Abs => self.i(I::F64x2Abs),
                    F64Un::Sqrt => self.i(I::F64x2Sqrt),
                    F64Un::Floor => self.i(I::F64x2Floor),
                    F64Un::Ceil => self.i(I::F64x2Ceil),
                    F64Un::Trunc => self.i(I::F64x2Trunc),
                    F64Un::Fround => {
                        self.i(I::F32x4DemoteF64x2Zero);
                        self.i(I::F64x2PromoteLowF32x4);
                    }
                }
            }
            Expr::Cmp(op, a, b) => {
                self.vexpr(a);
                self.vexpr(b);
                self.i(match op {
                    Cmp::Lt => I::F64x2Lt,
                    Cmp::Le => I::F64x2Le,
                    Cmp::Gt => I::F64x2Gt,
                    Cmp::Ge => I::F64x2Ge,
                    Cmp::Eq => I::F64x2Eq,
                    Cmp::Ne => I::F64x2Ne,
                });
            }
            Expr::BoolEq { ne, a, b } => {
                self.vexpr(a);
                self.vexpr(b);
                self.i(I::I64x2Eq);
                if *ne {
                    self.i(I::V128Not);
                }
            }
            Expr::Host(Host::Round, args) if args.len() == 1 => self.vround(&args[0]),
            Expr::Host(host, args) => {
                // Per lane: extract the arguments, call, and rebuild the vector.
                let temps: Vec<u32> = args
                    .iter()
                    .map(|a| {
                        self.vexpr(a);
                        let t = self.new_local(ValType::V128);
                        self.i(I::LocalSet(t));
                        t
                    })
                    .collect();
                for lane in 0..2u8 {
                    for t in &temps {
                        self.i(I::LocalGet(*t));
                        self.i(I::F64x2ExtractLane(lane));
                    }
                    self.i(I::Call(host.index()));
                    if lane == 0 {
                        self.i(I::F64x2Splat);
                    } else {
                        self.i(I::F64x2ReplaceLane(1));
                    }
                }
            }
            Expr::Cond(cond, a, b, _) => {
                self.vexpr(cond);
                let mask = self.new_local(ValType::V128);
                self.i(I::LocalSet(mask));
                let saved = self.exec;
                let a_mask = self.narrowed(mask, false);
                let b_mask = self.narrowed(mask, true);
                self.exec = Some(a_mask);
                self.vexpr(a);
                self.exec = Some(b_mask);
                self.vexpr(b);
                self.exec = saved;
                self.i(I::LocalGet(mask));
                self.i(I::V128Bitselect);
            }
            Expr::Logic { or, a, b, ty, .. } => {
                self.vexpr(a);
                let a_val = self.new_local(ValType::V128);
                self.i(I::LocalTee(a_val));
                if *ty == Ty::Num {
                    self.vtruthy();
                }
                let truthy = self.new_local(ValType::V128);
                self.i(I::LocalSet(truthy));
                // `b` runs where `a` is falsy (`||`) or truthy (`&&`).
                let saved = self.exec;
                let b_mask = self.narrowed(truthy, *or);
                self.exec = Some(b_mask);
                if *or {
                    self.i(I::LocalGet(a_val));
                    self.vexpr(b);
                } else {
                    self.vexpr(b);
                    self.i(I::LocalGet(a_val));
                }
                self.exec = saved;
                self.i(I::LocalGet(truthy));
                self.i(I::V128Bitselect);
            }
            Expr::Inline(body, ty) => {
                let returned = self.new_local(ValType::V128);
                self.i(I::V128Const(0));
                self.i(I::LocalSet(returned));
                let result = self.new_local(ValType::V128);
                // Falling off the end: undefined, i.e. NaN as a Number.
                self.i(I::V128Const(match ty {
                    Ty::Num => splat(f64::NAN),
                    Ty::Bool => 0,
                }));
                self.i(I::LocalSet(result));
                let saved = self.exec;
                self.frames.push(VFrame {
                    returned,
                    result: Some(result),
                });
                self.vstmts(body);
                self.frames.pop();
                self.exec = saved;
                self.i(I::LocalGet(result));
            }
        }
    }

    /// The f64x2 on the stack to two bytes in lanes 0 and 1 (`OutKind::U8`).
    fn vformat_u8(&mut self, auto: bool) {
        let x = self.new_local(ValType::V128);
        if auto {
            self.i(I::V128Const(splat(255.0)));
            self.i(I::F64x2Mul);
        }
        // NaN lanes to +0 (x == x is false only for NaN), then clamp to 0..255.
        self.i(I::LocalTee(x));
        self.i(I::LocalGet(x));
        self.i(I::LocalGet(x));
        self.i(I::F64x2Eq);
        self.i(I::V128And);
        self.i(I::V128Const(splat(0.0)));
        self.i(I::F64x2Max);
        self.i(I::V128Const(splat(255.0)));
        self.i(I::F64x2Min);
        self.i(I::LocalTee(x));
        self.i(I::F64x2Trunc);
        let t = self.new_local(ValType::V128);
        self.i(I::LocalTee(t));
        // + 1.0 where the fraction is at least one half.
        self.i(I::LocalGet(x));
        self.i(I::LocalGet(t));
        self.i(I::F64x2Sub);
        self.i(I::V128Const(splat(0.5)));
        self.i(I::F64x2Ge);
        self.i(I::V128Const(splat(1.0)));
        self.i(I::V128And);
        self.i(I::F64x2Add);
        self.i(I::I32x4TruncSatF64x2UZero);
        self.i(I::LocalTee(x));
        self.i(I::LocalGet(x));
        self.i(I::I16x8NarrowI32x4U);
        self.i(I::LocalTee(x));
        self.i(I::LocalGet(x));
        self.i(I::I8x16NarrowI16x8U);
    }

    /// f64x2 to JS truthiness masks: |x| > 0 is false exactly for ±0 and NaN.
    fn vtruthy(&mut self) {
        self.i(I::F64x2Abs);
        self.i(I::V128Const(0));
        self.i(I::F64x2Gt);
    }
}
