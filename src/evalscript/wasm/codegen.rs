//! Lowered IR to a WebAssembly module implementing the block ABI described in `mod.rs`.

use wasm_encoder::{
    BlockType, CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
    Ieee64, ImportSection, Instruction as I, MemArg, MemorySection, MemoryType, Module,
    TypeSection, ValType,
};

use super::lower::{Arith, Cmp, Expr, F64Un, Host, Lowered, Stmt, Ty};

/// Locals before the IR's own: `n` (param), `i`, input plane bases, output plane bases.
struct Layout {
    n_inputs: u32,
    n_outputs: u32,
}

impl Layout {
    const N: u32 = 0;
    const I: u32 = 1;
    fn in_base(&self, k: u32) -> u32 {
        2 + k
    }
    fn out_base(&self, j: u32) -> u32 {
        2 + self.n_inputs + j
    }
    fn first_ir_local(&self) -> u32 {
        2 + self.n_inputs + self.n_outputs
    }
}

/// What a structured-control label is for, to compute `br` depths.
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

struct Emitter {
    f: Function,
    labels: Vec<Label>,
    layout: Layout,
}

fn valtype(ty: Ty) -> ValType {
    match ty {
        Ty::Num => ValType::F64,
        Ty::Bool => ValType::I32,
    }
}

const F32_MEM: MemArg = MemArg {
    offset: 0,
    align: 2,
    memory_index: 0,
};
const F64_MEM: MemArg = MemArg {
    offset: 0,
    align: 3,
    memory_index: 0,
};

/// Builds the module: imports `js.<host fn>` for every `Host`, exports `memory` and
/// `run(n: i32)`.
pub(crate) fn emit(lowered: &Lowered, n_inputs: usize, out_bands: usize) -> Vec<u8> {
    let layout = Layout {
        n_inputs: n_inputs as u32,
        n_outputs: out_bands as u32,
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
        vec![(1 + layout.n_inputs + layout.n_outputs, ValType::I32)];
    locals.extend(lowered.locals.iter().map(|ty| (1, valtype(*ty))));
    let mut e = Emitter {
        f: Function::new(locals),
        labels: Vec::new(),
        layout,
    };
    e.run_body(lowered);
    let mut code = CodeSection::new();
    code.function(&e.f);

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
    fn i(&mut self, instruction: I) {
        self.f.instruction(&instruction);
    }

    fn ir_local(&self, local: u32) -> u32 {
        self.layout.first_ir_local() + local
    }

    fn depth(&self, target: Label) -> u32 {
        let pos = self.labels.iter().rposition(|l| *l == target).unwrap_or(0);
        (self.labels.len() - 1 - pos) as u32
    }

    fn run_body(&mut self, lowered: &Lowered) {
        let n_in = self.layout.n_inputs;
        // Input plane k at k * n * 4.
        for k in 0..n_in {
            self.i(I::LocalGet(Layout::N));
            self.i(I::I32Const((4 * k) as i32));
            self.i(I::I32Mul);
            self.i(I::LocalSet(self.layout.in_base(k)));
        }
        // Output planes from align8(n_in * n * 4), 8 * n bytes each.
        for j in 0..self.layout.n_outputs {
            self.i(I::LocalGet(Layout::N));
            self.i(I::I32Const((4 * n_in) as i32));
            self.i(I::I32Mul);
            self.i(I::I32Const(7));
            self.i(I::I32Add);
            self.i(I::I32Const(-8));
            self.i(I::I32And);
            self.i(I::LocalGet(Layout::N));
            self.i(I::I32Const((8 * j) as i32));
            self.i(I::I32Mul);
            self.i(I::I32Add);
            self.i(I::LocalSet(self.layout.out_base(j)));
        }
        for stmt in &lowered.prologue {
            self.stmt(stmt);
        }
        self.i(I::I32Const(0));
        self.i(I::LocalSet(Layout::I));
        self.i(I::Block(BlockType::Empty));
        self.labels.push(Label::Other);
        self.i(I::Loop(BlockType::Empty));
        self.labels.push(Label::Other);
        self.i(I::LocalGet(Layout::I));
        self.i(I::LocalGet(Layout::N));
        self.i(I::I32GeU);
        self.i(I::BrIf(1));
        for (band, local) in &lowered.bands {
            self.i(I::LocalGet(self.layout.in_base(*band as u32)));
            self.pixel_offset(2);
            self.i(I::F32Load(F32_MEM));
            self.i(I::F64PromoteF32);
            self.i(I::LocalSet(self.ir_local(*local)));
        }
        self.i(I::Block(BlockType::Empty));
        self.labels.push(Label::Pixel);
        for stmt in &lowered.body {
            self.stmt(stmt);
        }
        self.i(I::End);
        self.labels.pop();
        self.i(I::LocalGet(Layout::I));
        self.i(I::I32Const(1));
        self.i(I::I32Add);
        self.i(I::LocalSet(Layout::I));
        self.i(I::Br(0));
        self.i(I::End);
        self.labels.pop();
        self.i(I::End);
        self.labels.pop();
        self.i(I::End);
    }

    /// Adds `i << shift` to the address on the stack.
    fn pixel_offset(&mut self, shift: i32) {
        self.i(I::LocalGet(Layout::I));
        self.i(I::I32Const(shift));
        self.i(I::I32Shl);
        self.i(I::I32Add);
    }

    fn stmts(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(s);
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
                    if (j as u32) < self.layout.n_outputs {
                        self.i(I::LocalGet(self.layout.out_base(j as u32)));
                        self.pixel_offset(3);
                        self.expr(value);
                        self.i(I::F64Store(F64_MEM));
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
                self.truthy();
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
                    self.truthy();
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

    /// f64 on the stack to its JS truthiness: |x| > 0 is false exactly for ±0 and NaN.
    fn truthy(&mut self) {
        self.i(I::F64Abs);
        self.i(I::F64Const(Ieee64::from(0.0)));
        self.i(I::F64Gt);
    }
}
